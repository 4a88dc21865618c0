"""The archive pipeline end to end: compress, upload with a server-checked SHA-256, confirm, clear local."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from recordings import storage
from recordings.archive import archive_due
from recordings.cleanup import cleanup_local
from recordings.codec import synthesize_speech_like_wav
from recordings.models import Campaign, Recording, RecordingEvent
from recordings.verify import verify_archive
from retention.models import RetentionPolicy
from tests.factories import make_recording, write_file
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
    RetentionPolicy.objects.create(campaign=campaign, keep_local_days=3, retain_days=365, codec="mp3")
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
    target = storage.get_target()
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
        t = storage.get_target()
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
    t = storage.get_target()
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
    storage.get_target().delete([(recording.object_key, recording.version_id)])
    storage.get_target().put(
        recording.object_key, intruder, sha256_hex=digest, size=17, metadata={}, content_type="audio/mpeg"
    )
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
    storage.get_target().delete([(recording.object_key, recording.version_id)])

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
    t = storage.get_target()
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
