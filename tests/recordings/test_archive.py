"""The archive pipeline end to end: compress, upload with a server-checked SHA-256, confirm, clear local."""

from __future__ import annotations

import base64
import hashlib
import socket
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from recordings.demo.speech import synthesize_speech_like_wav
from recordings.lib import storage
from recordings.models import Campaign, Recording, RecordingEvent
from recordings.pipeline import archive
from recordings.pipeline.archive import archive_due
from recordings.pipeline.cleanup import cleanup_local
from recordings.pipeline.target import get_target
from recordings.pipeline.verify import verify_archive
from recordings.pipeline.workqueue import claim, record
from tests.factories import make_policy, make_recording, write_file
from tests.faults import FlipOneByte

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["filesystem", "s3"])
def target(request: pytest.FixtureRequest, settings: Any, tmp_path: Path) -> str:
    """Run each test against the local archive folder and against a real SeaweedFS bucket."""
    if request.param == "filesystem":
        settings.STORAGES = {
            **settings.STORAGES,
            "archive": {
                "BACKEND": "django.core.files.storage.FileSystemStorage",
                "OPTIONS": {"location": tmp_path / "archive"},
            },
        }
    else:
        request.getfixturevalue("archive_s3_settings")
    return request.param


@pytest.fixture
def sales(db: None) -> Campaign:
    campaign = Campaign.objects.create(kind="outbound", campaign_id="SALES", name="Sales")
    make_policy(campaign=campaign, keep_local_days=3, retain_days=365, codec="mp3")
    return campaign


def wav_recording(
    spool: Path, *, age_days: float, campaign: Campaign | None, seconds: float = 6, **kw: Any
) -> Recording:
    recording = make_recording(start_time=NOW - timedelta(days=age_days), campaign=campaign, **kw)
    path = spool / f"{recording.filename}-all.wav"
    synthesize_speech_like_wav(path, seconds=seconds, seed=recording.recording_id)
    Recording.objects.filter(pk=recording.pk).update(local_path=path.name)
    return recording


def stored_bytes(recording: Recording) -> bytes:
    target = get_target()
    if isinstance(target, storage.FilesystemTarget):
        return (target.root / recording.object_key).read_bytes()
    return target.client.get_object(Bucket=target.bucket, Key=recording.object_key)["Body"].read()


def test_recordings_past_their_window_end_up_verified_in_the_bucket_and_leave_local_disk(
    target: str, spool_dir: Path, sales: Campaign
) -> None:
    old = wav_recording(spool_dir, age_days=10, campaign=sales)
    young = wav_recording(spool_dir, age_days=1, campaign=sales)
    mp3 = make_recording(start_time=NOW - timedelta(days=20), campaign=sales)
    mp3_bytes = b"ID3" + bytes(range(256)) * 20
    write_file(spool_dir, f"MP3/{mp3.filename}-all.mp3", mp3_bytes)
    original = (spool_dir / f"{old.filename}-all.wav").read_bytes()

    report = archive_due(now=NOW, node="", threads=1)

    assert (report.archived, report.failed, report.missing) == (2, 0, 0)
    old.refresh_from_db()
    assert old.state == "archived" and old.verified_at == NOW
    assert old.original_sha256 == hashlib.sha256(original).hexdigest() and old.original_size == len(original)
    body = stored_bytes(old)
    assert hashlib.sha256(body).hexdigest() == old.stored_sha256 and len(body) == old.stored_size
    assert body[:3] == b"ID3" or body[0] == 0xFF  # an MP3 stream
    assert old.stored_size < old.original_size / 3
    assert old.encoder["settings"]["codec"] == "mp3" and old.object_key.startswith("SALES/")
    assert old.object_key.endswith(f"{old.filename}_rec{old.recording_id}.mp3")
    if target == "s3":
        t = get_target()
        head = t.client.head_object(Bucket=t.bucket, Key=old.object_key, ChecksumMode="ENABLED")
        assert base64.b64decode(head["ChecksumSHA256"]).hex() == hashlib.sha256(body).hexdigest()
        assert head["Metadata"]["vicirec-original-sha256"] == old.original_sha256
    mp3.refresh_from_db()
    assert mp3.state == "archived" and stored_bytes(mp3) == mp3_bytes and mp3.encoder["name"] == "none"
    young.refresh_from_db()
    assert young.state == "captured" and young.object_key == ""

    cleared = cleanup_local(now=NOW, node="")

    assert cleared.cleared == 2 and cleared.kept == 0
    assert not (spool_dir / f"{old.filename}-all.wav").exists()
    assert not (spool_dir / f"MP3/{mp3.filename}-all.mp3").exists()
    assert (spool_dir / f"{young.filename}-all.wav").exists()
    old.refresh_from_db()
    assert old.state == "cleared" and old.local_cleared_at == NOW
    assert list(old.events.values_list("to_state", flat=True)) == ["archived", "cleared"]
    assert verify_archive(now=NOW, sample=10).clean


def test_a_body_corrupted_in_flight_is_refused_by_the_server_and_the_file_kept(
    archive_s3_settings: str, spool_dir: Path, sales: Campaign, monkeypatch: pytest.MonkeyPatch
) -> None:
    recording = wav_recording(spool_dir, age_days=10, campaign=sales)

    original_open = storage.S3Target._open_body
    monkeypatch.setattr(storage.S3Target, "_open_body", lambda self, path: FlipOneByte(path, "rb"))

    report = archive_due(now=NOW, node="", threads=1)

    recording.refresh_from_db()
    assert report.failed == 1 and report.archived == 0
    assert recording.state == "failed" and "BadDigest" in recording.error
    assert recording.verified_at is None and recording.attempts == 1 and recording.next_attempt_at > NOW
    t = get_target()
    assert list(t.iter_keys()) == []
    assert cleanup_local(now=NOW, node="").cleared == 0
    assert (spool_dir / f"{recording.filename}-all.wav").exists()

    monkeypatch.setattr(storage.S3Target, "_open_body", original_open)
    retry = archive_due(now=recording.next_attempt_at, node="", threads=1)
    recording.refresh_from_db()
    assert retry.archived == 1 and recording.state == "archived" and recording.error == ""


def test_a_key_holding_other_content_is_an_error_for_a_person_not_an_overwrite(
    target: str, spool_dir: Path, sales: Campaign
) -> None:
    recording = wav_recording(spool_dir, age_days=10, campaign=sales)
    first = archive_due(now=NOW, node="", threads=1)
    recording.refresh_from_db()
    assert first.archived == 1
    # Someone (or something) puts a different recording under the same key; the catalog forgets it.
    intruder = spool_dir / "intruder.mp3"
    intruder.write_bytes(b"not the recording")
    digest = hashlib.sha256(b"not the recording").hexdigest()
    get_target().delete([(recording.object_key, recording.version_id)])
    get_target().put(recording.object_key, intruder, sha256_hex=digest, size=17, metadata={}, content_type="audio/mpeg")
    Recording.objects.filter(pk=recording.pk).update(state="captured", stored_sha256="", object_key="")

    again = archive_due(now=NOW + timedelta(minutes=1), node="", threads=1)

    recording.refresh_from_db()
    assert again.failed == 1 and recording.state == "failed"
    assert recording.error.startswith("needs a person") and "different content" in recording.error
    assert stored_bytes(recording) == b"not the recording"


def test_missing_file_and_unsettled_file_are_left_for_later(
    spool_dir: Path, sales: Campaign, settings: Any, tmp_path: Path
) -> None:
    settings.STORAGES = {
        **settings.STORAGES,
        "archive": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": tmp_path / "archive"},
        },
    }
    missing = make_recording(start_time=NOW - timedelta(days=9), campaign=sales)
    fresh = wav_recording(spool_dir, age_days=9, campaign=sales)
    settings.VICIREC_SETTLE_SECONDS = 3600  # the file was just written

    report = archive_due(now=NOW, node="", threads=1)

    missing.refresh_from_db()
    fresh.refresh_from_db()
    assert (report.missing, report.not_settled, report.archived) == (1, 1, 0)
    assert missing.state == "missing" and "no file" in missing.error and missing.next_attempt_at > NOW
    assert fresh.state == "captured" and fresh.claimed_by == "" and fresh.original_sha256 == ""


def test_only_this_nodes_recordings_are_archived(
    spool_dir: Path, sales: Campaign, settings: Any, tmp_path: Path
) -> None:
    settings.STORAGES = {
        **settings.STORAGES,
        "archive": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": tmp_path / "archive"},
        },
    }
    mine = wav_recording(spool_dir, age_days=9, campaign=sales, server_ip="10.0.0.11")
    theirs = wav_recording(spool_dir, age_days=9, campaign=sales, server_ip="10.0.0.12")

    report = archive_due(now=NOW, node="10.0.0.11", threads=1)

    assert report.archived == 1
    assert Recording.objects.get(pk=mine.pk).state == "archived"
    assert Recording.objects.get(pk=theirs.pk).state == "captured"


def test_cleanup_keeps_a_file_that_changed_after_it_was_archived(target: str, spool_dir: Path, sales: Campaign) -> None:
    recording = wav_recording(spool_dir, age_days=10, campaign=sales)
    archive_due(now=NOW, node="", threads=1)
    with open(spool_dir / f"{recording.filename}-all.wav", "ab") as f:
        f.write(b"appended later")

    report = cleanup_local(now=NOW, node="")

    recording.refresh_from_db()
    assert report.cleared == 0 and report.kept == 1
    assert recording.state == "archived" and "changed since it was archived" in recording.error
    assert (spool_dir / f"{recording.filename}-all.wav").exists()


def test_cleanup_keeps_the_file_when_the_cloud_copy_is_gone(target: str, spool_dir: Path, sales: Campaign) -> None:
    recording = wav_recording(spool_dir, age_days=10, campaign=sales)
    archive_due(now=NOW, node="", threads=1)
    recording.refresh_from_db()
    get_target().delete([(recording.object_key, recording.version_id)])

    report = cleanup_local(now=NOW, node="")

    recording.refresh_from_db()
    assert report.cleared == 0 and recording.state == "archived"
    assert "no longer confirmed" in recording.error
    assert (spool_dir / f"{recording.filename}-all.wav").exists()
    audit = verify_archive(now=NOW, sample=10)
    assert audit.missing == 1 and not audit.clean
    assert RecordingEvent.objects.filter(recording=recording, actor="verify_archive").exists()


def test_verify_archive_reports_a_tampered_object(target: str, spool_dir: Path, sales: Campaign) -> None:
    recording = wav_recording(spool_dir, age_days=10, campaign=sales)
    archive_due(now=NOW, node="", threads=1)
    recording.refresh_from_db()
    t = get_target()
    t.delete([(recording.object_key, recording.version_id)])
    tampered = spool_dir / "tampered"
    tampered.write_bytes(b"x" * 100)
    t.put(
        recording.object_key,
        tampered,
        sha256_hex=hashlib.sha256(b"x" * 100).hexdigest(),
        size=100,
        metadata={},
        content_type="audio/mpeg",
    )

    with pytest.raises(Exception, match="1 mismatched"):
        call_command("verify_archive", "--sample", "5")

    recording.refresh_from_db()
    assert recording.state == "archived" and "integrity check failed" in recording.error


def test_a_file_two_recording_log_rows_share_stays_until_both_have_a_verified_copy(
    target: str, spool_dir: Path, sales: Campaign
) -> None:
    first = wav_recording(spool_dir, age_days=10, campaign=sales)
    first.refresh_from_db()
    later = make_recording(  # VICIdial logged the same file twice; the second row is not due yet
        filename=first.filename, start_time=NOW - timedelta(days=1), campaign=sales, local_path=first.local_path
    )
    path = spool_dir / first.local_path

    assert archive_due(now=NOW, node="", threads=1).archived == 1
    assert cleanup_local(now=NOW, node="").claimed == 0  # the file is still needed
    assert path.exists()

    assert archive_due(now=NOW + timedelta(days=3), node="", threads=1).archived == 1
    cleanup = cleanup_local(now=NOW + timedelta(days=3), node="")

    assert (cleanup.cleared, cleanup.already_gone) == (1, 1) and not path.exists()
    for r in (first, later):
        r.refresh_from_db()
        assert r.state == "cleared" and r.verified_at is not None
    assert first.original_sha256 == later.original_sha256 and first.object_key != later.object_key


class Killed(BaseException):
    """Stands in for the process dying: nothing in the archive stage catches it."""


def test_a_batchs_plans_are_on_record_before_its_first_upload_and_a_crash_in_between_redoes_nothing(
    target: str, spool_dir: Path, sales: Campaign, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    recordings = [make_recording(start_time=NOW - timedelta(days=10, minutes=n), campaign=sales) for n in range(5)]
    for n, recording in enumerate(recordings):
        write_file(spool_dir, f"MP3/{recording.filename}-all.mp3", b"ID3" + bytes([n]) * 4000)
    pks = [r.pk for r in recordings]
    target_class = type(get_target())
    real_put = target_class.put
    planned_at_first_put: list[int] = []
    puts: list[str] = []

    def dying_put(self: Any, key: str, path: Path, **kwargs: Any) -> storage.StoredObject:
        if not puts:
            planned_at_first_put.append(Recording.objects.filter(pk__in=pks).exclude(object_key="").count())
        puts.append(key)
        if len(puts) == 3:
            raise Killed  # the process dies as its third upload starts
        return real_put(self, key, path, **kwargs)

    monkeypatch.setattr(target_class, "put", dying_put)
    with pytest.raises(Killed):
        archive_due(now=NOW, node="", threads=1)

    assert planned_at_first_put == [5]  # one transaction put every plan of the batch on record first
    assert not Recording.objects.filter(pk__in=pks, state="archived").exists()

    puts.clear()

    def counted_put(self: Any, key: str, path: Path, **kwargs: Any) -> storage.StoredObject:
        puts.append(key)
        return real_put(self, key, path, **kwargs)

    monkeypatch.setattr(target_class, "put", counted_put)
    later = NOW + timedelta(seconds=settings.VICIREC_CLAIM_LEASE_SECONDS + 1)  # the dead run's claims ran out
    report = archive_due(now=later, node="", threads=1)

    assert (report.archived, report.already_in_bucket, report.failed) == (5, 2, 0)
    assert len(puts) == 3  # the two uploads that finished before the crash were adopted, not sent again
    for recording in Recording.objects.filter(pk__in=pks):
        assert recording.state == "archived"
        assert hashlib.sha256(stored_bytes(recording)).hexdigest() == recording.stored_sha256


def test_a_plan_is_not_recorded_on_a_recording_whose_claim_was_lost(sales: Campaign) -> None:
    mine, taken = (make_recording(start_time=NOW - timedelta(days=10), campaign=sales) for _ in range(2))
    claim(Recording.objects.filter(pk__in=[mine.pk, taken.pk]), token="run-1", now=NOW, limit=2)
    Recording.objects.filter(pk=taken.pk).update(claimed_by="run-2")  # run-1's lease ran out; run-2 took it

    saved = record([(mine, {"object_key": "SALES/a.mp3"}), (taken, {"object_key": "SALES/b.mp3"})], token="run-1")

    assert saved == [True, False]
    assert Recording.objects.get(pk=mine.pk).object_key == mine.object_key == "SALES/a.mp3"
    assert Recording.objects.get(pk=taken.pk).object_key == taken.object_key == ""


@pytest.mark.django_db(transaction=True)  # archive_due runs on a thread of its own, with its own connection
def test_an_error_outside_any_one_recording_still_ends_the_run(
    spool_dir: Path, sales: Campaign, monkeypatch: pytest.MonkeyPatch, settings: Any, tmp_path: Path
) -> None:
    settings.STORAGES = {
        **settings.STORAGES,
        "archive": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": tmp_path / "a"}},
    }
    recordings = [wav_recording(spool_dir, age_days=9, campaign=sales, seconds=1) for _ in range(3)]

    def broken(jobs: list[Any], **kwargs: Any) -> list[str]:
        raise RuntimeError("database went away")

    monkeypatch.setattr(archive, "archive_batch", broken)
    result: list[Any] = []
    run = threading.Thread(target=lambda: result.append(archive_due(now=NOW, node="", threads=2)), daemon=True)
    run.start()
    run.join(timeout=60)

    assert not run.is_alive(), "archive_due hung waiting for uploads that had died"
    assert result[0].claimed == 3 and result[0].archived == 0
    # Nothing was done to them: their claims run out and a later run takes them again.
    assert all(r.state == "captured" for r in Recording.objects.filter(pk__in=[r.pk for r in recordings]))


def test_encoded_copies_waiting_for_their_upload_are_bounded(
    target: str, spool_dir: Path, sales: Campaign, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(archive, "ENCODED_AT_ONCE", 1)  # each encoded copy is uploaded before the next is made
    recordings = [wav_recording(spool_dir, age_days=9, campaign=sales, seconds=2) for _ in range(3)]
    target_class = type(get_target())
    real_put = target_class.put
    on_disk: list[int] = []

    def put(self: Any, key: str, path: Path, **kwargs: Any) -> storage.StoredObject:
        on_disk.append(sum(1 for p in Path(settings.VICIREC_WORK_DIR).rglob("*") if p.is_file()))
        return real_put(self, key, path, **kwargs)

    monkeypatch.setattr(target_class, "put", put)
    report = archive_due(now=NOW, node="", threads=1)

    assert report.archived == 3 and on_disk == [1, 1, 1]
    assert all(r.state == "archived" for r in Recording.objects.filter(pk__in=[r.pk for r in recordings]))
    assert not any(p.is_file() for p in Path(settings.VICIREC_WORK_DIR).rglob("*"))


def test_the_encoded_copies_a_killed_run_left_are_removed_by_the_next_run_on_the_host(
    spool_dir: Path, sales: Campaign, settings: Any, tmp_path: Path
) -> None:
    settings.STORAGES = {
        **settings.STORAGES,
        "archive": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": tmp_path / "a"}},
    }
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    work, host = Path(settings.VICIREC_WORK_DIR), socket.gethostname()
    left = work / f"archive@{host}:{dead.pid}:deadbeef"  # a folder is named after its run's claim token
    running = work / f"archive@{host}:{alive.pid}:cafebabe"
    for folder in (left, running):
        write_file(folder, "20261101-142501_3125550100-all.mp3", b"ID3 an encoded copy")
    try:
        archive_due(now=NOW, node="", threads=1)
    finally:
        alive.kill()
        alive.wait()

    assert not left.exists()
    assert (running / "20261101-142501_3125550100-all.mp3").exists()  # another run, still going
