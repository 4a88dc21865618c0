"""Hostile and broken input through the real stages: each bad row or file gets a clear recorded reason
(on the recording and in its custody log) and the rest of the batch goes on."""

from __future__ import annotations

import io
import os
import resource
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from recordings.demo.speech import synthesize_speech_like_wav
from recordings.lib import codec
from recordings.lib.storage import S3Target
from recordings.models import Recording, RecordingEvent
from recordings.pipeline.archive import archive_due
from recordings.pipeline.catalog import sync_recordings
from recordings.pipeline.cleanup import cleanup_local
from tests.factories import VicidialData, make_recording, write_file
from tests.reliability.builders import campaign
from tests.reliability.invariants import Baseline, Figures, check_invariants, sha256_of
from tests.s3server import S3Server

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]


def wav(path: Path, seconds: float = 2, seed: int = 1) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    synthesize_speech_like_wav(path, seconds=seconds, seed=seed)
    return path


def truncated_wav(path: Path) -> Path:
    """A WAV whose header promises a minute of audio but whose file was cut off after 0.1 s."""
    wav(path, seconds=0.1)
    data = bytearray(path.read_bytes())
    data[40:44] = struct.pack("<I", 960_000)
    path.write_bytes(bytes(data))
    return path


def reason(recording_id: int) -> tuple[str, str, str]:
    r = Recording.objects.get(recording_id=recording_id)
    last = RecordingEvent.objects.filter(recording=r).latest("at", "id")
    return r.state, r.error, last.detail


@pytest.mark.django_db(databases=["default", "vicidial"])
def test_a_batch_of_hostile_rows_and_files_gets_reasons_and_the_good_ones_are_archived(
    vicidial: VicidialData,
    spool_dir: Path,
    tmp_path: Path,
    archive_s3_settings: str,
    s3_server: S3Server,
    figures: Figures,
) -> None:
    vicidial.campaign("SALES")
    start = NOW - timedelta(days=19)
    (tmp_path / "secret").write_text("not a recording")
    (spool_dir / "evil-all.wav").symlink_to(tmp_path / "secret")
    good = vicidial.outbound_call(campaign="SALES", start=start)
    wav(spool_dir / f"{good['filename']}-all.wav")
    unicode_ = vicidial.recording_log(filename="20261101-ünïcode_名前_ça", start=start)
    write_file(spool_dir, f"MP3/{unicode_['filename']}-all.mp3", b"ID3\x03" + os.urandom(4000))
    rows: dict[str, dict[str, Any]] = {
        "dotdot": vicidial.recording_log(filename="../../etc/passwd", start=start),
        "absolute": vicidial.recording_log(filename="/etc/passwd", start=start),
        "nul": vicidial.recording_log(filename="a\x00b", start=start),
        "newline": vicidial.recording_log(filename="20261101\n-x", start=start),
        "backslash": vicidial.recording_log(filename="..\\..\\windows", start=start),
        "symlink": vicidial.recording_log(filename="evil", start=start),
        "zero_byte": vicidial.recording_log(filename="zero", start=start),
        "truncated": vicidial.recording_log(filename="cut", start=start),
        "not_audio": vicidial.recording_log(filename="html", start=start),
        "too_short": vicidial.recording_log(filename="tiny", start=start),
        # VICIdial writes a second row for the same file when a recording is restarted.
        "duplicate": vicidial.recording_log(filename=good["filename"], vicidial_id=good["vicidial_id"], start=start),
        "nulls": vicidial.recording_log(
            filename=None,
            channel=None,
            server_ip=None,
            extension=None,
            start_time=None,
            start_epoch=None,
            end_time=None,
            end_epoch=None,
            length_in_sec=None,
            length_in_min=None,
            location=None,
            user=None,
            vicidial_id=None,
        ),
        "malformed_link": vicidial.recording_log(
            filename="linkless",
            vicidial_id="x'; DROP TABLE--",
            lead_id=0,
            start=start,
            location="http://10.0.0.11/RECORDINGS/MP3/../../../../etc/passwd-all.mp3",
        ),
        # clocks that disagree: VICIdial's epoch a day before its own DATETIME column
        "epoch_vs_time": vicidial.recording_log(
            filename="skewed", start=start, start_epoch=int((start - timedelta(days=1)).timestamp())
        ),
        "mtime_future": vicidial.recording_log(filename="future_mtime", start=start),
    }
    write_file(spool_dir, "zero-all.wav", b"")
    truncated_wav(spool_dir / "cut-all.wav")
    write_file(spool_dir, "html-all.wav", b"<html><body>502 Bad Gateway</body></html>\n" * 20)
    write_file(spool_dir, "tiny-all.wav", b"RIFF\x00")
    write_file(spool_dir, "MP3/linkless-all.mp3", b"ID3\x03" + os.urandom(3000))
    wav(spool_dir / "skewed-all.wav", seed=3)
    future = wav(spool_dir / "future_mtime-all.wav", seed=4)
    os.utime(future, (time.time() + 86400 * 30, time.time() + 86400 * 30))  # the NAS clock runs a month ahead
    after = vicidial.recording_log(filename="after_the_mess", start=start)
    wav(spool_dir / "after_the_mess-all.wav", seed=5)
    figures.hostile_inputs_tried += len(rows)

    report = sync_recordings(now=NOW, node="")
    assert report.recordings_added == len(rows) + 3

    archive = archive_due(now=NOW, node="", threads=1)
    cleanup = cleanup_local(now=NOW, node="")

    state = {name: reason(row["recording_id"]) for name, row in rows.items()}
    for name in ("dotdot", "absolute", "backslash"):
        assert state[name][0] == "rejected" and "path separator" in state[name][1], name
    assert state["nul"][0] == "rejected" and "NUL" in state["nul"][1]
    assert state["newline"][0] == "rejected" and "control characters" in state["newline"][1]
    assert state["symlink"][0] == "rejected" and "outside the spool" in state["symlink"][1]
    assert state["nulls"][0] == "rejected" and "empty" in state["nulls"][1] and "call time unknown" in state["nulls"][1]
    assert state["zero_byte"][0] == "missing" and "empty (0 bytes)" in state["zero_byte"][1]
    assert state["not_audio"][0] == "failed" and "not a WAV file" in state["not_audio"][1]
    assert state["too_short"][0] == "failed" and "too short for a WAV header" in state["too_short"][1]
    for name in ("not_audio", "too_short"):  # bytes that cannot be a recording wait for a person, not a retry
        assert state[name][1].startswith("needs a person"), name
    for name, (_, error, detail) in state.items():
        assert error or name in {"truncated", "duplicate", "malformed_link", "epoch_vs_time", "mtime_future"}, name
        assert error in detail or not error, (name, error, detail)
    truncated = Recording.objects.get(recording_id=rows["truncated"]["recording_id"])
    assert truncated.state == "cleared" and any("truncated WAV" in w for w in truncated.encoder["warnings"])
    skewed = Recording.objects.get(recording_id=rows["epoch_vs_time"]["recording_id"])
    assert skewed.start_time == start - timedelta(days=1) and skewed.state == "cleared"
    linkless = Recording.objects.get(recording_id=rows["malformed_link"]["recording_id"])
    assert linkless.state == "cleared" and linkless.local_path == "MP3/linkless-all.mp3"
    assert linkless.direction == "unknown" and linkless.campaign is None
    future_mtime = Recording.objects.get(recording_id=rows["mtime_future"]["recording_id"])
    assert future_mtime.state == "cleared" and any("in the future" in w for w in future_mtime.encoder["warnings"])
    # The good ones, and the duplicate row of the same file, all end verified in the bucket.
    for row in (good, unicode_, after, rows["duplicate"]):
        r = Recording.objects.get(recording_id=row["recording_id"])
        assert r.state == "cleared" and r.stored_sha256, (r, r.error)
    dup = Recording.objects.get(recording_id=rows["duplicate"]["recording_id"])
    assert dup.object_key != Recording.objects.get(recording_id=good["recording_id"]).object_key
    assert archive.archived >= 7 and cleanup.kept == 0
    # Nothing escaped the spool: the secret the symlink pointed at is untouched, nothing stored under odd keys.
    assert (tmp_path / "secret").read_text() == "not a recording"
    target = S3Target(s3_server.client(), archive_s3_settings)
    assert all(k.isascii() and ".." not in k and not k.startswith("/") for k in target.iter_keys())


@pytest.mark.django_db(databases=["default", "vicidial"])
def test_an_open_call_with_a_clock_in_the_future_does_not_stall_the_catalog(
    vicidial: VicidialData, spool_dir: Path, figures: Figures
) -> None:
    skewed = vicidial.recording_log(start=NOW + timedelta(days=400), end_time=None, end_epoch=None)
    later = [vicidial.recording_log() for _ in range(3)]
    figures.hostile_inputs_tried += 1

    report = sync_recordings(now=NOW, node="")

    assert report.recordings_added == 4, report
    entry = Recording.objects.get(recording_id=skewed["recording_id"])
    assert "in the future" in entry.error and entry.start_time <= NOW
    assert Recording.objects.filter(recording_id__in=[r["recording_id"] for r in later]).count() == 3


@pytest.mark.django_db
def test_a_file_still_being_written_during_upload_waits_and_is_archived_whole_once_settled(
    spool_dir: Path,
    archive_s3_settings: str,
    s3_server: S3Server,
    monkeypatch: pytest.MonkeyPatch,
    figures: Figures,
    settings: Any,
) -> None:
    settings.VICIREC_ENCODE_PROCESSES = 0  # the writer is simulated in this process (the check is here either way)
    sales = campaign("GROW")
    r = make_recording(start_time=NOW - timedelta(days=10), campaign=sales)
    path = wav(spool_dir / f"{r.filename}-all.wav", seconds=3)
    real_open = codec._open_source

    class StillWriting(io.FileIO):
        """The settle check passed, then VICIdial's mixer appends while we read."""

        appended = False

        def readinto(self, buffer: Any) -> int | None:
            if not self.appended:  # once: the mixer writes its last block
                self.appended = True
                with open(path, "ab") as writer:
                    writer.write(b"\x01\x00" * 4000)
            return super().readinto(buffer)

    def open_while_writing(source: Path) -> Any:
        raw = StillWriting(source, "r")
        return raw, codec.HashingReader(raw)

    monkeypatch.setattr(codec, "_open_source", open_while_writing)
    figures.hostile_inputs_tried += 1
    report = archive_due(now=NOW, node="", threads=1)

    r.refresh_from_db()
    assert report.failed == 1 and r.state == "failed" and "changed while it was being read" in r.error
    assert list(S3Target(s3_server.client(), archive_s3_settings).iter_keys()) == []

    monkeypatch.setattr(codec, "_open_source", real_open)  # the mixer is done
    final = sha256_of(path)
    assert archive_due(now=r.next_attempt_at, node="", threads=1).archived == 1
    r.refresh_from_db()
    assert r.original_sha256 == final and r.original_size == path.stat().st_size
    target = S3Target(s3_server.client(), archive_s3_settings)
    baseline = {r.pk: Baseline(r.local_path, final)}
    assert check_invariants(target=target, spool=spool_dir, baseline=baseline, now=NOW)


def _sparse_wav(path: Path, size: int) -> None:
    """A µ-law WAV header followed by a sparse hole: ``size`` bytes on paper, almost none on disk."""
    header = b"RIFF" + struct.pack("<I", size - 8) + b"WAVE"
    header += b"fmt " + struct.pack("<IHHIIHH", 16, 7, 1, 8000, 8000, 1, 8)
    header += b"data" + struct.pack("<I", size - 44)
    with path.open("wb") as handle:
        handle.write(header)
        handle.truncate(size)


def _archive_in_subprocess(env: dict[str, str]) -> tuple[int, str]:
    """Run archive_recordings; returns its peak RSS in KiB (this child's own, from wait4) and stderr."""
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "archive_recordings", "--json"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    err = proc.stderr.read() if proc.stderr else b""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.returncode == 0, err.decode()[-2000:]
    return usage.ru_maxrss, err.decode()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_200_mb_recording_is_archived_and_verified_with_bounded_memory(
    env: dict[str, str], spool_dir: Path, s3_server: S3Server, locked_bucket: str, figures: Figures
) -> None:
    assert resource.RLIMIT_AS  # POSIX only
    camp = campaign("BIG")
    small = make_recording(start_time=NOW - timedelta(days=10), campaign=camp)
    _sparse_wav(spool_dir / f"{small.filename}-all.wav", 64 * 1024)
    small_rss, _ = _archive_in_subprocess(env)

    big = make_recording(start_time=NOW - timedelta(days=10), campaign=camp)
    path = spool_dir / f"{big.filename}-all.wav"
    _sparse_wav(path, 200 * 1024 * 1024)
    figures.hostile_inputs_tried += 1
    big_rss, _ = _archive_in_subprocess(env)

    big.refresh_from_db()
    assert big.state == "archived" and big.stored_size == 200 * 1024 * 1024, big.error
    assert big.encoder["name"] == "none" and "µ-law" in big.encoder["reason"]
    assert big_rss - small_rss < 64 * 1024, f"peak RSS grew {(big_rss - small_rss) // 1024} MiB for a 200 MiB file"
    target = S3Target(s3_server.client(), locked_bucket)
    baseline = {big.pk: Baseline(big.local_path, sha256_of(path))}
    assert check_invariants(target=target, spool=spool_dir, baseline=baseline, now=NOW)


# --- more kinds: one batch, each kind set up by its own function, judged by its own check ------------------


def wav_header(*, magic: bytes = b"RIFF", form: bytes = b"WAVE", channels: int = 1, rate: int = 8000) -> bytes:
    """A 16-bit PCM WAV header (fields as given, however absurd) and a second of samples."""
    samples = os.urandom(16000)
    align = 2 * max(channels, 1)
    fmt = struct.pack("<HHIIHH", 1, channels, rate, (rate * align) & 0xFFFFFFFF, align, 16)
    body = form + b"fmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", len(samples)) + samples
    return magic + struct.pack("<I", len(body)) + body


@dataclass
class Kind:
    """One kind of hostile or broken input: ``setup`` writes its recording_log row(s) and files and returns
    the row; ``between`` (optional) acts after the catalog read the spool and before the archive does;
    ``check`` gets the recording once sync, archive and cleanup ran and asserts its outcome and reason."""

    setup: Callable[[VicidialData, Path, Path, datetime], dict[str, Any]]
    check: Callable[[Recording, Path], None]
    between: Callable[[Path], None] | None = None


def _row(vicidial: VicidialData, name: str, start: datetime, **fields: Any) -> dict[str, Any]:
    return vicidial.recording_log(filename=name, start=start, **fields)


def _events(r: Recording) -> str:
    return " | ".join(RecordingEvent.objects.filter(recording=r).values_list("detail", flat=True))


def _cleared(r: Recording) -> None:
    assert r.state == "cleared" and r.stored_sha256, (r.state, r.error)


def _missing_because(text: str) -> Callable[[Recording, Path], None]:
    def check(r: Recording, spool: Path) -> None:
        assert r.state == "missing" and text in r.error and text in _events(r), (r.state, r.error)

    return check


def _warned(text: str) -> Callable[[Recording, Path], None]:
    def check(r: Recording, spool: Path) -> None:
        _cleared(r)
        assert any(text in w for w in r.encoder.get("warnings", [])) or text in r.encoder.get("reason", ""), r.encoder

    return check


def _setup_shell(v: VicidialData, spool: Path, tmp: Path, start: datetime) -> dict[str, Any]:
    name = "20261101 $(rm -rf ~); `id` 'q' \"x\" & | > <"
    wav(spool / f"{name}-all.wav", seed=11)
    return _row(v, name, start)


def _check_shell(r: Recording, spool: Path) -> None:
    _cleared(r)
    assert r.object_key.isascii() and not set("$`;'\"&|<> ") & set(r.object_key), r.object_key


LONG_NAME = "録音" * 50  # 100 characters (the column's width), 300 bytes in UTF-8: more than a file name holds


def _setup_utf8_on_disk(v: VicidialData, spool: Path, tmp: Path, start: datetime) -> dict[str, Any]:
    # VICIdial's row says café in UTF-8; the file on disk was named in Latin-1 (not valid UTF-8).
    (spool / "MP3").mkdir(exist_ok=True)
    with open(os.fsencode(spool / "MP3") + b"/20261101-caf\xe9-all.mp3", "wb") as handle:
        handle.write(b"ID3\x03" + os.urandom(2000))
    return _row(v, "20261101-café", start)


def _setup_directory(v: VicidialData, spool: Path, tmp: Path, start: datetime) -> dict[str, Any]:
    (spool / "adir-all.wav").mkdir()
    return _row(v, "adir", start)


def _setup_fifo(v: VicidialData, spool: Path, tmp: Path, start: datetime) -> dict[str, Any]:
    os.mkfifo(spool / "afifo-all.wav")  # opening it would block for ever: it must never be opened
    return _row(v, "afifo", start)


def _setup_symlink_loop(v: VicidialData, spool: Path, tmp: Path, start: datetime) -> dict[str, Any]:
    (spool / "loop-all.wav").symlink_to(spool / "loop2-all.wav")
    (spool / "loop2-all.wav").symlink_to(spool / "loop-all.wav")
    return _row(v, "loop", start)


def _setup_hard_link(v: VicidialData, spool: Path, tmp: Path, start: datetime) -> dict[str, Any]:
    outside = wav(tmp / "elsewhere" / "kept.wav", seed=12)
    os.link(outside, spool / "hardlinked-all.wav")
    return _row(v, "hardlinked", start)


def _check_hard_link(r: Recording, spool: Path) -> None:
    _cleared(r)
    kept = spool.parent / "elsewhere" / "kept.wav"
    assert kept.is_file() and kept.stat().st_nlink == 1  # only the spool's name was removed


def _setup_in_root_and_orig(v: VicidialData, spool: Path, tmp: Path, start: datetime) -> dict[str, Any]:
    # VICIdial's move into ORIG/ was cut off after the copy: the same capture in both places.
    wav(spool / "twice-all.wav", seed=13)
    (spool / "ORIG").mkdir(exist_ok=True)
    (spool / "ORIG" / "twice-all.wav").write_bytes((spool / "twice-all.wav").read_bytes())
    return _row(v, "twice", start)


def _check_in_root_and_orig(r: Recording, spool: Path) -> None:
    _cleared(r)
    assert sorted(c["path"] for c in r.local_copies) == ["ORIG/twice-all.wav", "twice-all.wav"]
    assert not (spool / "twice-all.wav").exists() and not (spool / "ORIG" / "twice-all.wav").exists()


def _setup_file(name: str, relative: str, data: bytes, **fields: Any) -> Callable[..., dict[str, Any]]:
    def setup(v: VicidialData, spool: Path, tmp: Path, start: datetime) -> dict[str, Any]:
        write_file(spool, relative, data)
        return _row(v, name, start, **fields)

    return setup


def _delete(relative: str) -> Callable[[Path], None]:
    return lambda spool: (spool / relative).unlink()


def _replace(relative: str, data: bytes) -> Callable[[Path], None]:
    return lambda spool: (spool / relative).write_bytes(data)


def _check_campaign_unknown(r: Recording, spool: Path) -> None:
    _cleared(r)
    assert r.campaign is not None and r.campaign.campaign_id == "GHOST" and not r.campaign.active


def _check_dated_by_catalog(text: str) -> Callable[[Recording, Path], None]:
    def check(r: Recording, spool: Path) -> None:
        # Dated by the catalog, it waits out its campaign's local window like a call of today: never taken
        # for one past its retention (which is never uploaded, and deleted with a certificate).
        assert r.state == "captured" and text in r.error and r.start_time == NOW, (r.state, r.error, r.start_time)
        assert (spool / r.local_path).is_file()

    return check


def _check_lead_null(r: Recording, spool: Path) -> None:
    _cleared(r)
    assert r.lead_id is None and r.phone_number == ""


def _check_vicidial_id_blank(r: Recording, spool: Path) -> None:
    _cleared(r)
    assert r.direction == "unknown" and r.campaign is None


def _check_rejected(text: str) -> Callable[[Recording, Path], None]:
    def check(r: Recording, spool: Path) -> None:
        assert r.state == "rejected" and text in r.error and text in _events(r), (r.state, r.error)

    return check


def _check_needs_person(text: str) -> Callable[[Recording, Path], None]:
    def check(r: Recording, spool: Path) -> None:
        assert r.state == "failed" and r.error.startswith("needs a person") and text in r.error, r.error
        assert text in _events(r)

    return check


def _kinds() -> dict[str, Kind]:
    mp3 = b"ID3\x03" + bytes(range(256)) * 8
    kinds = {
        "blank_filename": Kind(lambda v, s, t, st: _row(v, "   ", st), _check_rejected("empty")),
        "shell_metacharacters": Kind(_setup_shell, _check_shell),
        "name_too_long_for_the_filesystem": Kind(
            _setup_file(LONG_NAME, "MP3/short-all.mp3", mp3), _check_rejected("255-byte")
        ),
        "latin1_name_on_disk": Kind(_setup_utf8_on_disk, _missing_because("no file for")),
        "directory_not_file": Kind(_setup_directory, _missing_because("not a regular file")),
        "fifo": Kind(_setup_fifo, _missing_because("not a regular file")),
        "symlink_loop": Kind(_setup_symlink_loop, _missing_because("symlink loop")),
        "hard_link_from_outside": Kind(_setup_hard_link, _check_hard_link),
        "in_root_and_orig": Kind(_setup_in_root_and_orig, _check_in_root_and_orig),
        "wrong_riff_form": Kind(
            _setup_file("avi", "avi-all.wav", wav_header(form=b"AVI ")), _check_needs_person("not a WAV file")
        ),
        "rifx_magic": Kind(_setup_file("rifx", "rifx-all.wav", wav_header(magic=b"RIFX")), _warned("RIFX")),
        "zero_channels": Kind(_setup_file("nochan", "nochan-all.wav", wav_header(channels=0)), _warned("0 channels")),
        "absurd_sample_rate": Kind(
            _setup_file("fastrate", "fastrate-all.wav", wav_header(rate=3_000_000_000)), _warned("3000000000 Hz")
        ),
        "mp3_that_is_text": Kind(
            _setup_file("textmp3", "MP3/textmp3-all.mp3", b"<html><body>404 Not Found</body></html>\n" * 30),
            _warned("does not look like MP3"),
        ),
        "gsm_only": Kind(_setup_file("gsmonly", "GSM/gsmonly-all.gsm", os.urandom(3300)), _warned(".gsm is not WAV")),
        "deleted_after_listing": Kind(
            _setup_file("vanished", "MP3/vanished-all.mp3", mp3),
            _missing_because("no file for"),
            between=_delete("MP3/vanished-all.mp3"),
        ),
        "replaced_after_listing": Kind(
            _setup_file("swapped", "MP3/swapped-all.mp3", mp3),
            _warned("when it was cataloged"),
            between=_replace("MP3/swapped-all.mp3", b"ID3\x04" + os.urandom(5000)),
        ),
        "start_time_null": Kind(
            _setup_file("undated", "undated-all.wav", wav_header(), start_time=None, start_epoch=None, end_epoch=None),
            _check_dated_by_catalog("call time unknown"),
        ),
        "start_time_1970": Kind(
            _setup_file(
                "epoch0", "epoch0-all.wav", wav_header(), start_time=datetime(1970, 1, 1, tzinfo=UTC), start_epoch=0
            ),
            _check_dated_by_catalog("1970-01-01"),
        ),
        "campaign_unknown_to_vicidial": Kind(
            lambda v, s, t, st: (
                write_file(s, "MP3/ghost-all.mp3", mp3),
                v.outbound_call(campaign="GHOST", start=st, filename="ghost"),
            )[1],
            _check_campaign_unknown,
        ),
        "lead_id_null": Kind(_setup_file("nolead", "MP3/nolead-all.mp3", mp3, lead_id=None), _check_lead_null),
        "vicidial_id_blank": Kind(
            _setup_file("noid", "MP3/noid-all.mp3", mp3, vicidial_id=""), _check_vicidial_id_blank
        ),
    }
    return kinds


@pytest.mark.django_db(databases=["default", "vicidial"])
def test_more_kinds_of_hostile_input_each_get_their_outcome_and_the_batch_goes_on(
    vicidial: VicidialData,
    spool_dir: Path,
    tmp_path: Path,
    archive_s3_settings: str,
    s3_server: S3Server,
    figures: Figures,
) -> None:
    vicidial.campaign("SALES")
    start = NOW - timedelta(days=19)
    kinds = _kinds()
    rows = {name: kind.setup(vicidial, spool_dir, tmp_path, start) for name, kind in kinds.items()}
    before = vicidial.outbound_call(campaign="SALES", start=start)
    wav(spool_dir / f"{before['filename']}-all.wav", seed=20)
    after = vicidial.recording_log(filename="after_the_kinds", start=start)
    wav(spool_dir / "after_the_kinds-all.wav", seed=21)
    figures.hostile_inputs_tried += len(kinds)

    report = sync_recordings(now=NOW, node="")
    assert report.recordings_added == len(rows) + 2
    for kind in kinds.values():
        if kind.between is not None:
            kind.between(spool_dir)
    archive_due(now=NOW, node="", threads=1)
    cleanup_local(now=NOW, node="")

    wrong = {}
    for name, kind in kinds.items():
        recording = Recording.objects.get(recording_id=rows[name]["recording_id"])
        try:
            kind.check(recording, spool_dir)
        except AssertionError as exc:
            wrong[name] = f"{recording.state}: {exc}"
    assert not wrong, "\n".join(f"{k}: {v}" for k, v in wrong.items())
    for row in (before, after):  # the batch went on around them
        _cleared(Recording.objects.get(recording_id=row["recording_id"]))
    target = S3Target(s3_server.client(), archive_s3_settings)
    assert all(k.isascii() and ".." not in k and not k.startswith("/") for k in target.iter_keys())
    cleared = Recording.objects.filter(state="cleared", recording_id__in=[r["recording_id"] for r in rows.values()])
    assert check_invariants(
        target=target,
        spool=spool_dir,
        baseline={r.pk: Baseline(r.local_path, r.original_sha256) for r in cleared},
        now=NOW,
    )
