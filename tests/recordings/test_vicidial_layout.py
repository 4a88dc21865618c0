"""VICIdial as it really runs: the cron scripts' folder layout (flat and dated ORIG/ and MP3/, FTP-moved MP3s,
location URLs), the spool root, calls still open, recordings already past retention, paths that escape."""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from holds.actions import place_hold
from recordings.demo.speech import synthesize_speech_like_wav
from recordings.lib import spool
from recordings.models import Campaign, Recording
from recordings.pipeline.archive import archive_due
from recordings.pipeline.catalog import sync_recordings
from recordings.pipeline.cleanup import cleanup_local
from recordings.pipeline.retention import enforce_retention
from retention.models import DeletionCertificate
from tests.factories import VicidialData, make_policy, write_file
from vicirec.actors import Actor

pytestmark = pytest.mark.django_db(databases=["default", "vicidial"])

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
CALL = NOW - timedelta(days=10)
DAY = f"{CALL:%Y-%m-%d}"
URL = "http://10.0.0.11/RECORDINGS"


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def policy(campaign_id: str = "SALES", *, retain_days: int = 365) -> None:
    camp, _ = Campaign.objects.get_or_create(kind="outbound", campaign_id=campaign_id, defaults={"name": campaign_id})
    make_policy(campaign=camp, keep_local_days=1, retain_days=retain_days, codec="mp3", override_reason="tests")


def wav(path: Path, seed: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    synthesize_speech_like_wav(path, seconds=1, seed=seed)
    return path


def mp3(path: Path, seed: int) -> Path:
    return write_file(path.parent, path.name, b"ID3\x03" + bytes([seed % 256]) * 3000)


def spool_tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if not p.is_dir())


def lay_out_like_the_cron_scripts(vicidial: VicidialData, done: Path) -> dict[str, dict[str, Any]]:
    """One recording per way VICIdial's AST_CRON_audio_* scripts leave it (docs/vicidial.md)."""
    vicidial.campaign()
    rows = {
        name: vicidial.outbound_call(start=CALL + timedelta(minutes=n))
        for n, name in enumerate(["dated", "flat", "ftp_moved", "orig_flat", "mixed_only"])
    }
    f = {name: row["filename"] for name, row in rows.items()}
    # compress --MP3 --file-sorting: MP3 in a dated folder, the WAV moved to ORIG/<date>/
    mp3(done / f"MP3/{DAY}/{f['dated']}-all.mp3", 1)
    wav(done / f"ORIG/{DAY}/{f['dated']}-all.wav", 1)
    # compress --MP3: MP3 flat, the WAV in ORIG/<date>/
    mp3(done / f"MP3/{f['flat']}-all.mp3", 2)
    wav(done / f"ORIG/{DAY}/{f['flat']}-all.wav", 2)
    # the FTP step moved the MP3 away: the ORIG/ original is the only local copy
    wav(done / f"ORIG/{DAY}/{f['ftp_moved']}-all.wav", 3)
    # an original left flat in ORIG/, its MP3 archived away
    wav(done / f"ORIG/{f['orig_flat']}-all.wav", 4)
    # mixed by step 1 only
    wav(done / f"{f['mixed_only']}-all.wav", 5)
    locations = {
        "dated": f"{URL}/MP3/{DAY}/{f['dated']}-all.mp3",
        "flat": f"{URL}/MP3/{f['flat']}-all.mp3",
        "ftp_moved": f"http://ftp.example.com/RECORDINGS/{DAY}/{f['ftp_moved']}-all.mp3",
        "orig_flat": f"http://ftp.example.com/{DAY}/{f['orig_flat']}-all.mp3",
        "mixed_only": f"{URL}/{f['mixed_only']}-all.wav",
    }
    with vicidial.writer.connection.cursor() as cursor:
        for name, location in locations.items():
            cursor.execute(
                "UPDATE recording_log SET location=%s WHERE recording_id=%s", [location, rows[name]["recording_id"]]
            )
    return rows


@pytest.mark.parametrize("configured", ["root", "monitorDONE"])
def test_a_spool_as_the_cron_scripts_leave_it_is_archived_and_cleared_to_the_last_byte(
    vicidial: VicidialData, archive_s3_settings: str, settings: Any, tmp_path: Path, configured: str
) -> None:
    root = tmp_path / "asterisk"
    done = root / "monitorDONE"
    (root / "monitor" / "MIX").mkdir(parents=True)
    settings.VICIREC_SPOOL_DIRS = [root if configured == "root" else done]
    rows = lay_out_like_the_cron_scripts(vicidial, done)
    policy()
    originals = {p.name: sha(p) for p in done.rglob("*-all.wav")}
    mp3s = {p.name: sha(p) for p in done.rglob("*-all.mp3")}

    synced = sync_recordings(now=NOW, node="")
    archived = archive_due(now=NOW, node="", threads=1)
    cleaned = cleanup_local(now=NOW, node="")

    assert (synced.located, synced.missing, synced.empty_spools) == (5, 0, [])
    assert (archived.archived, archived.failed, cleaned.cleared) == (5, 0, 5)
    assert spool_tree(done) == []  # no byte left for a recording whose cloud copy is verified
    by_name = {name: Recording.objects.get(pk=row["recording_id"]) for name, row in rows.items()}
    assert {r.state for r in by_name.values()} == {"cleared"}
    dated = by_name["dated"]
    assert dated.local_path == f"MP3/{DAY}/{dated.filename}-all.mp3"  # VICIdial's MP3, uploaded as it is
    assert dated.original_sha256 == originals[f"{dated.filename}-all.wav"]  # the capture: root of the chain
    assert dated.stored_sha256 == mp3s[f"{dated.filename}-all.mp3"]
    assert {c["kind"] for c in dated.local_copies} == {"mp3", "orig"}
    ftp = by_name["ftp_moved"]
    assert ftp.local_path == f"ORIG/{DAY}/{ftp.filename}-all.wav" and ftp.encoder.get("codec") != "none"
    assert ftp.original_sha256 == originals[f"{ftp.filename}-all.wav"] != ftp.stored_sha256
    assert by_name["orig_flat"].local_path == f"ORIG/{by_name['orig_flat'].filename}-all.wav"
    assert by_name["mixed_only"].local_copies[0]["kind"] == "wav"


def test_the_spool_root_and_monitordone_give_the_same_paths(tmp_path: Path) -> None:
    done = tmp_path / "asterisk" / "monitorDONE"
    wav(done / "ORIG/2026-11-10/call-all.wav", 1)
    mp3(done / "MP3/call-all.mp3", 1)
    by_root = spool.locate_all("call", None, [tmp_path / "asterisk"], CALL.date())
    by_done = spool.locate_all("call", None, [done], CALL.date())
    assert isinstance(by_root, list) and isinstance(by_done, list)
    assert [(c.relative, c.kind) for c in by_root] == [(c.relative, c.kind) for c in by_done]
    assert [(c.relative, c.kind) for c in by_root] == [
        ("MP3/call-all.mp3", "mp3"),
        (f"ORIG/{DAY}/call-all.wav", "orig"),
    ]


def test_a_spool_folder_without_recordings_is_named_not_left_to_a_silent_missing(
    vicidial: VicidialData, settings: Any, tmp_path: Path
) -> None:
    wrong = tmp_path / "var" / "spool"  # neither the root (no monitorDONE/) nor monitorDONE
    (wrong / "asterisk" / "monitorDONE").mkdir(parents=True)
    settings.VICIREC_SPOOL_DIRS = [wrong]
    vicidial.recording_log()

    report = sync_recordings(now=NOW, node="")

    assert report.missing == 1 and report.empty_spools == [f"no recordings found under {wrong}"]


def test_one_call_left_open_does_not_hold_back_a_thousand_finished_ones(
    vicidial: VicidialData, spool_dir: Path, settings: Any, tmp_path: Path
) -> None:
    settings.STORAGES = {
        **settings.STORAGES,
        "archive": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": tmp_path / "bucket"},
        },
    }
    policy()
    open_call = vicidial.recording_log(start=NOW - timedelta(minutes=30), end_time=None, end_epoch=None)
    start = NOW - timedelta(days=10)
    rows = [
        {
            "recording_id": 5000 + n,
            "start": start + timedelta(seconds=n),
            "filename": f"call{n}",
            "location": f"{URL}/MP3/call{n}-all.mp3",
        }
        for n in range(1000)
    ]
    for row in rows:
        vicidial.recording_log(**row)
        mp3(spool_dir / f"MP3/{row['filename']}-all.mp3", row["recording_id"])

    synced = sync_recordings(now=NOW, node="")
    archived = archive_due(now=NOW, node="", threads=1)

    assert synced.recordings_added == 1000 and synced.held_open == 1
    assert not Recording.objects.filter(pk=open_call["recording_id"]).exists()
    assert archived.archived == 1000 and archived.failed == 0
    assert Recording.objects.filter(state="archived").count() == 1000


def test_first_install_over_eight_years_never_uploads_what_is_already_expired(
    vicidial: VicidialData, archive_s3_settings: str, spool_dir: Path
) -> None:
    vicidial.campaign()
    policy(retain_days=2 * 366)
    ages = [1, 30, 200, 800, 1500, 2200, 2900]  # days: a first install over eight years of recordings
    rows = [vicidial.outbound_call(start=NOW - timedelta(days=age)) for age in ages]
    for n, row in enumerate(rows):
        mp3(spool_dir / f"MP3/{row['filename']}-all.mp3", n)
        wav(spool_dir / f"ORIG/{row['filename']}-all.wav", n)
    sync_recordings(now=NOW, node="")
    held = rows[-1]["recording_id"]
    place_hold(reason="litigation", actor=Actor.command("tests"), recording_ids=[held])
    expired_ids = {r["recording_id"] for r, age in zip(rows, ages, strict=True) if age > 2 * 366} - {held}

    archived = archive_due(now=NOW, node="", threads=1)
    assert archived.archived == len(rows) - len(expired_ids) - 1  # the one-day-old call is in its local window
    assert not Recording.objects.filter(pk__in=expired_ids).exclude(object_key="").exists()  # never uploaded
    dry = enforce_retention(now=NOW, dry_run=True)
    assert set(dry.would_delete) == expired_ids
    assert enforce_retention(now=NOW, dry_run=False).stopped  # 3 of 7 at once: the safety stop holds
    report = enforce_retention(now=NOW, dry_run=False, confirm=True)

    assert report.deleted == len(expired_ids)
    for pk in expired_ids:
        cert = DeletionCertificate.objects.get(recording_id=pk)
        assert cert.call["location"] == "local" and cert.local_deleted and not cert.cloud_deleted
        assert cert.object_key == "" and Recording.objects.get(pk=pk).state == "expired"
    assert Recording.objects.get(pk=held).state == "archived"
    left = spool_tree(spool_dir)
    assert not [name for name in left for pk in expired_ids if str(pk) in name and "_" in name]
    for row in rows:
        if row["recording_id"] in expired_ids:
            assert not (spool_dir / f"MP3/{row['filename']}-all.mp3").exists()
            assert not (spool_dir / f"ORIG/{row['filename']}-all.wav").exists()


def test_a_location_with_an_empty_sub_folder_never_names_an_absolute_path(tmp_path: Path) -> None:
    location = "http://10.0.0.11/RECORDINGS//2026-11-20/x-all.wav"
    assert spool.location_hint("x", location) is None
    assert spool.location_hint("x", f"{URL}/MP3/../../x-all.mp3") is None
    assert spool.location_hint("x", f"{URL}/MP3/2026-11-20/other-all.mp3") is None
    assert spool.location_hint("x", f"{URL}/MP3/2026-11-20/x-all.mp3") == ("MP3/2026-11-20/x-all.mp3", "mp3")
    for relative, _ in spool.candidates("x", location, CALL.date()):
        assert not relative.startswith("/") and "" not in relative.split("/") and ".." not in relative.split("/")
    done = tmp_path / "monitorDONE"
    done.mkdir()
    assert isinstance(spool.locate_all("x", location, [done]), spool.NotFound)
    with pytest.raises(FileNotFoundError):
        spool.resolve([done], "/etc/passwd")


@pytest.mark.parametrize("folder", ["MP3", "ORIG"])
def test_a_symlinked_dated_folder_leading_outside_the_spool_is_refused(tmp_path: Path, folder: str) -> None:
    done = tmp_path / "monitorDONE"
    outside = tmp_path / "elsewhere"
    ext = "mp3" if folder == "MP3" else "wav"
    write_file(outside, f"x-all.{ext}", b"ID3 not the spool's")
    (done / folder).mkdir(parents=True)
    os.symlink(outside, done / folder / DAY)

    found = spool.locate_all("x", f"{URL}/{folder}/{DAY}/x-all.{ext}", [done], CALL.date())

    assert isinstance(found, spool.NotFound) and found.permanent and "outside the spool" in found.reason
    with pytest.raises(FileNotFoundError):
        spool.resolve([done], f"{folder}/{DAY}/x-all.{ext}")
