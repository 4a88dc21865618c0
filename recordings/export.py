"""Evidence export: a discovery package for counsel, streamed as one ZIP.

Layout (inside one top folder ``evidence-<export id>/``):

* ``audio/<recording_id>_<filename>.<ext>`` — the archived copy (the bytes the bucket confirmed), or the
  original capture while the recording is not archived yet; read from the bucket through a short-lived
  presigned URL, from the archive folder, or from the spool, and never held whole in memory.
* ``manifest.json`` / ``manifest.csv`` — per recording: call metadata, original and stored SHA-256, encoder
  settings, upload and verification times, the holds and cases covering it, the deletion certificate of a
  recording that retention deleted, and the SHA-256 of the file in this package.
* ``custody_log.csv`` — every state change (custody log), model history entry, legal hold placed or released
  and access (including this export) of each recording. Released holds stay listed, marked RELEASED.
* In the two CSV files a text cell that starts with ``=``, ``+``, ``-`` or ``@`` gets a leading ``'``, so a
  spreadsheet shows it instead of running it as a formula (csv_cell); ``manifest.json`` keeps raw values.
* ``README.txt`` — what this is and how to verify it; ``SHA256SUMS`` — ``sha256sum -c SHA256SUMS`` checks
  every other file.

Memory stays bounded whatever the size of the case: audio is copied in 1 MiB chunks, manifests and the
custody log are spooled to temporary files, and recordings are read in batches. Every export first writes
one AccessEvent per recording (action "export"), so an export that is interrupted is still on record.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import tempfile
import uuid
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import IO, Any

from django.conf import settings
from django.db import transaction

from holds.models import holds_by_recording
from recordings import ledger
from recordings.export_custody import write_custody
from recordings.lib import spool
from recordings.lib.storage import StorageError, iter_file
from recordings.models import AccessEvent, Recording, RecordingEvent, RecordingQuerySet
from recordings.pipeline.erasure import blocked_erasures
from recordings.pipeline.target import get_target
from vicirec.actors import Actor
from vicirec.reports import Report

log = logging.getLogger("vicirec.export")
CHUNK = 1024 * 1024
BATCH = 200
CONTENT_TYPES = {
    "mp3": "audio/mpeg",
    "wav": "audio/wav",
    "ogg": "audio/ogg",
    "opus": "audio/ogg",
    "flac": "audio/flac",
    "gsm": "audio/x-gsm",
}


FORMULA_STARTS = ("=", "+", "-", "@")


def csv_cell(value: Any) -> Any:
    """A CSV cell a spreadsheet cannot run: text starting with = + - @ gets a leading single quote."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


# --- the access log (who is looking: vicirec.actors.Actor) ---------------------------------------


def log_access(recording_ids: Iterable[int], *, action: str, who: Actor, detail: str = "") -> int:
    """Append one AccessEvent per recording (in batches); returns how many were written."""
    from vicirec import clock

    at = clock.now()
    written = 0
    batch: list[AccessEvent] = []
    for recording_id in recording_ids:
        batch.append(
            AccessEvent(
                recording_id=recording_id,
                action=action,
                at=at,
                user=who.user,
                username=who.name[:200],
                ip=who.ip,
                user_agent=who.user_agent[:300],
                detail=detail[:300],
            )
        )
        if len(batch) >= 1000:
            written += _log_batch(batch)
            batch = []
    if batch:
        written += _log_batch(batch)
    return written


def _log_batch(batch: list[AccessEvent]) -> int:
    """Write a batch of access events and their custody-ledger entries in one transaction."""
    with transaction.atomic():
        created = AccessEvent.objects.bulk_create(batch)
        ledger.append_rows("access", [a.pk for a in created])
    return len(created)


# --- where a recording's bytes are -------------------------------------------------------------


@dataclass(frozen=True)
class Copy:
    """One readable copy of a recording: in the bucket (url), the archive folder or the spool (path)."""

    source: str  # "bucket", "archive folder", "local disk"
    name: str  # file name with its extension
    expected_sha256: str
    size: int | None
    url: str | None = None
    path: Path | None = None
    target: Any = None
    key: str = ""
    version_id: str = ""

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES.get(PurePosixPath(self.name).suffix.lstrip(".").lower(), "application/octet-stream")

    def chunks(self, *, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """The copy's bytes (from `start` to `end` inclusive: a ranged read of the bucket or the file)."""
        if self.target is not None:
            yield from self.target.iter_object(self.key, self.version_id, start=start, end=end)
            return
        assert self.path is not None
        with self.path.open("rb") as handle:
            yield from iter_file(handle, start=start, end=end)

    def byte_size(self) -> int | None:
        """The size served: the file's own for a local copy, the size the bucket confirmed for an archived one."""
        if self.path is not None:
            try:
                return self.path.stat().st_size
            except OSError:
                return None
        return self.size


def find_copy(recording: Recording, *, target: Any = None, expires: int | None = None) -> Copy | None:
    """The copy to serve or export: the archived one if there is one, else the original on the spool.

    Only the catalog's own key and local path are ever read (the spool path goes through spool.resolve,
    which refuses anything outside the spool folders). None when no copy can be reached from here.
    """
    if recording.state in Recording.STORED_STATES and recording.object_key:
        target = target or get_target()
        name = PurePosixPath(recording.object_key).name
        url = target.presigned_url(recording.object_key, expires=expires or settings.VICIREC_PRESIGN_SECONDS)
        source = "bucket" if url else "archive folder"
        return Copy(
            source,
            name,
            recording.stored_sha256,
            recording.stored_size,
            url=url,
            target=target,
            key=recording.object_key,
            version_id=recording.version_id,
        )
    if recording.state in Recording.LOCAL_STATES:
        spools = list(settings.VICIREC_SPOOL_DIRS)
        if recording.local_path:
            try:
                path = spool.resolve(spools, recording.local_path)
            except FileNotFoundError:
                return None
        else:  # not hashed yet: look where VICIdial leaves it (spool.locate refuses unsafe names)
            found = spool.locate(recording.filename, recording.vicidial_location, spools)
            if isinstance(found, spool.NotFound):
                return None
            path = found.path
        return Copy("local disk", path.name, recording.original_sha256, recording.original_size, path=path)
    return None


# --- which recordings --------------------------------------------------------------------------


def evidence_recordings(*, hold: Any = None, case: Any = None, recording_ids: Iterable[int] = ()) -> RecordingQuerySet:
    """The recordings of a hold, a case (picked by hand or matching its criteria), or a list of ids."""
    if hold is not None:
        chosen = Recording.objects.filter(hold.condition())
    elif case is not None:
        chosen = Recording.objects.filter(case.condition())
    else:
        chosen = Recording.objects.filter(pk__in=list(recording_ids))
    return chosen.select_related("campaign", "certificate").order_by("pk")


# --- the package -------------------------------------------------------------------------------


@dataclass
class ExportReport(Report, limits={"problems": 50}):
    export_id: str
    scope: str
    recordings: int = 0
    audio_files: int = 0
    audio_bytes: int = 0
    without_audio: int = 0
    mismatched: int = 0
    problems: list[str] = field(default_factory=list)


MANIFEST_COLUMNS = [
    "recording_id",
    "file",
    "file_sha256",
    "source",
    "matches_catalog",
    "call_start",
    "length_in_sec",
    "campaign",
    "direction",
    "phone_number",
    "lead_id",
    "agent",
    "server_ip",
    "vicidial_filename",
    "vicidial_location",
    "state",
    "original_sha256",
    "original_size",
    "encoder",
    "stored_sha256",
    "stored_size",
    "object_key",
    "version_id",
    "uploaded_at",
    "verified_at",
    "verify_method",
    "local_cleared_at",
    "expired_at",
    "holds",
    "cases",
    "deletion_certificate",
    "problem",
]
CUSTODY_COLUMNS = ["recording_id", "at", "kind", "actor", "from", "to", "detail"]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _batches(recordings: RecordingQuerySet) -> Iterator[list[Recording]]:
    batch: list[Recording] = []
    for recording in recordings.iterator(chunk_size=BATCH):
        batch.append(recording)
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def hold_label(hold: Any) -> str:
    """A hold as the manifest names it: scope, who placed it when and why, and its release if released."""
    label = (
        f"hold #{hold.pk} ({hold.get_scope_display()}; placed {hold.placed_at:%Y-%m-%d} "
        f"by {hold.placed_by_name}: {hold.reason})"
    )
    if hold.released_at:
        label += f" RELEASED {hold.released_at:%Y-%m-%d} by {hold.released_by_name}: {hold.release_reason}"
    return label


def _holds_and_cases(ids: list[int], by_recording: dict[int, list[Any]]) -> tuple[dict[int, list[str]], dict]:
    """{recording id: holds covering it, active or released}, {recording id: cases it belongs to}."""
    from holds.models import Case

    holds: dict[int, list[str]] = {}
    cases: dict[int, list[str]] = {}
    for pk, covering in by_recording.items():
        for hold in covering:
            holds.setdefault(pk, []).append(hold_label(hold))
            if hold.case is not None and str(hold.case) not in cases.get(pk, []):
                cases.setdefault(pk, []).append(str(hold.case))
    picked = Case.recordings.through.objects.filter(recording_id__in=ids).select_related("case")
    for row in picked:
        if str(row.case) not in cases.get(row.recording_id, []):
            cases.setdefault(row.recording_id, []).append(str(row.case))
    return holds, cases


def _hold_rows(by_recording: dict[int, list[Any]]) -> Iterator[tuple[int, str, list[Any]]]:
    """The placing and the release of each hold that covered a recording, as custody-log rows."""
    for pk, covering in by_recording.items():
        for hold in covering:
            yield (pk, hold.placed_at.isoformat(), ["hold", hold.placed_by_name, "", "placed", hold_label(hold)])
            if hold.released_at:
                detail = f"hold #{hold.pk} released: {hold.release_reason}"
                yield (pk, hold.released_at.isoformat(), ["hold", hold.released_by_name, "", "released", detail])


def _custody_rows(ids: list[int], by_recording: dict[int, list[Any]]) -> Iterator[list[Any]]:
    """State changes, model history, holds and access of a batch of recordings, in time order per recording."""
    rows: list[tuple[int, str, list[Any]]] = list(_hold_rows(by_recording))
    for e in RecordingEvent.objects.filter(recording_id__in=ids).order_by():
        rows.append((e.recording_id, e.at.isoformat(), ["state", e.actor, e.from_state, e.to_state, e.detail]))
    history = Recording.history.filter(recording_id__in=ids).select_related("history_user").order_by()
    for h in history:
        who = h.history_user.get_username() if h.history_user else "(system)"
        kind = {"+": "created", "~": "changed", "-": "deleted"}.get(h.history_type, h.history_type)
        rows.append(
            (h.recording_id, h.history_date.isoformat(), ["history", who, "", kind, h.history_change_reason or ""])
        )
    for a in AccessEvent.objects.filter(recording_id__in=ids).order_by():
        where = " ".join(x for x in (a.ip or "", a.user_agent) if x)
        rows.append(
            (a.recording_id, a.at.isoformat(), ["access", a.username, "", a.action, f"{a.detail} {where}".strip()])
        )
    rows.sort(key=lambda r: (r[0], r[1]))
    for recording_id, at, rest in rows:
        yield [recording_id, at, rest[0], rest[1], rest[2], rest[3], rest[4]]


def _certificate(recording: Recording) -> dict[str, Any] | None:
    cert = getattr(recording, "certificate", None)
    if cert is None:
        return None
    return {
        "deleted_at": _iso(cert.deleted_at),
        "run": cert.run,
        "object_key": cert.object_key,
        "version_id": cert.version_id,
        "original_sha256": cert.original_sha256,
        "stored_sha256": cert.stored_sha256,
        "cloud_deleted": cert.cloud_deleted,
        "local_deleted": cert.local_deleted,
        "policy": cert.policy,
        "hold_check": cert.hold_check,
    }


def _metadata(r: Recording, holds: list[str], cases: list[str]) -> dict[str, Any]:
    return {
        "recording_id": r.pk,
        "call_start": _iso(r.start_time),
        "length_in_sec": r.length_in_sec,
        "campaign": r.campaign.campaign_id if r.campaign else None,
        "direction": r.direction,
        "phone_number": r.phone_number,
        "lead_id": r.lead_id,
        "agent": r.agent,
        "server_ip": r.server_ip,
        "vicidial_filename": r.filename,
        "vicidial_location": r.vicidial_location,
        "state": r.state,
        "original_sha256": r.original_sha256,
        "original_size": r.original_size,
        "encoder": r.encoder,
        "stored_sha256": r.stored_sha256,
        "stored_size": r.stored_size,
        "object_key": r.object_key,
        "version_id": r.version_id,
        "uploaded_at": _iso(r.uploaded_at),
        "verified_at": _iso(r.verified_at),
        "verify_method": r.verify_method,
        "local_cleared_at": _iso(r.local_cleared_at),
        "expired_at": _iso(r.expired_at),
        "holds": holds,
        "cases": cases,
        "deletion_certificate": _certificate(r),
    }


README = """\
EVIDENCE PACKAGE {export_id}
============================

What this is
  Call recordings exported from vicirec, the recording archive of a VICIdial call center.
  Scope:        {scope}
  Exported at:  {created_at}
  Exported by:  {who}
  Recordings:   {recordings} ({audio_files} audio files, {without_audio} without audio)

Contents
  audio/            one file per recording: the archived copy exactly as the storage server confirmed it
                    (or the original capture if the recording was not archived yet)
  manifest.json     per recording: call metadata (time, campaign, phone number, lead, agent, server),
  manifest.csv      the SHA-256 of the original capture and of the stored copy, encoder settings, upload
                    and verification times, the legal holds and cases covering it, and for recordings
                    deleted under the retention policy their deletion certificate
  custody_log.csv   every state change, change of record, legal hold (placed, released) and access of
                    each recording, with who and when
  SHA256SUMS        the SHA-256 of every other file in this folder
  custody/          this package's entries in vicirec's hash-chained custody ledger, the chain up to a
                    signed checkpoint, and the public key that signed it; VERIFY.txt says how to check
                    everything with standard tools, and verify.py does it all (Python standard library)

How to verify it
  1. Unzip the package and open a terminal in the folder evidence-{export_id}/
  2. Run:  sha256sum -c SHA256SUMS      (macOS: shasum -a 256 -c SHA256SUMS)
     Every line must end in "OK". Any other answer means a file was changed after export.
  3. For each recording, "file_sha256" in manifest.csv equals "stored_sha256" (archived copies) or
     "original_sha256" (captures not yet archived): the audio is byte-for-byte what vicirec recorded when
     it archived the call. "matches_catalog" says so for each file (empty for a capture not hashed yet).
{mismatch_note}
The "original_sha256" was computed when vicirec first read the capture, before any compression; "encoder"
names the codec and settings used to make the stored copy from it.
"""


class _Pipe(io.RawIOBase):
    """A write-only, unseekable sink that hands what zipfile wrote to a generator, chunk by chunk."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._position = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self._chunks.append(chunk)
        self._position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self._position

    def flush(self) -> None:
        pass

    def drain(self) -> bytes:
        data = b"".join(self._chunks)
        self._chunks.clear()
        return data


class EvidenceExport:
    """One export: records the access, then writes the package to a file or streams it."""

    def __init__(self, recordings: RecordingQuerySet, *, who: Actor, scope: str, now: datetime) -> None:
        self.recordings = recordings
        self.who = who
        self.scope = scope
        self.now = now
        self.report = ExportReport(export_id=f"{now:%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:8]}", scope=scope)
        self.folder = f"evidence-{self.report.export_id}"
        self.logged = log_access(
            recordings.values_list("pk", flat=True).iterator(chunk_size=2000),
            action=AccessEvent.Action.EXPORT,
            who=who,
            detail=f"evidence export {self.report.export_id} ({scope})"[:300],
        )

    @property
    def filename(self) -> str:
        return f"{self.folder}.zip"

    def write_to(self, out: IO[bytes]) -> ExportReport:
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
            for _ in self._entries(zf):
                pass
        return self.report

    def stream(self) -> Iterator[bytes]:
        pipe = _Pipe()
        with zipfile.ZipFile(pipe, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as zf:  # type: ignore[arg-type]
            for _ in self._entries(zf):
                data = pipe.drain()
                if data:
                    yield data
        yield pipe.drain()

    def _entries(self, zf: zipfile.ZipFile) -> Iterator[None]:
        """Write every entry; yields after each chunk so stream() can pass the bytes on."""
        sums: list[tuple[str, str]] = []
        date_time = self.now.timetuple()[:6]
        with (
            tempfile.TemporaryFile("w+", encoding="utf-8", newline="") as manifest_json,
            tempfile.TemporaryFile("w+", encoding="utf-8", newline="") as manifest_csv,
            tempfile.TemporaryFile("w+", encoding="utf-8", newline="") as custody_csv,
        ):
            yield from self._recordings(zf, manifest_json, manifest_csv, custody_csv, date_time, sums)
            manifest_json.write('\n],\n"export": ' + json.dumps(self._summary(), sort_keys=True) + "\n}\n")
            for name, handle in (
                ("manifest.json", manifest_json),
                ("manifest.csv", manifest_csv),
                ("custody_log.csv", custody_csv),
            ):
                handle.seek(0)
                yield from self._text_entry(zf, name, handle, date_time, sums)
        yield from self._text_entry(zf, "README.txt", io.StringIO(self._readme()), date_time, sums)
        yield from write_custody(self, zf, date_time, sums)
        lines = "".join(f"{digest}  {name}\n" for name, digest in sums)
        zf.writestr(zipfile.ZipInfo(f"{self.folder}/SHA256SUMS", date_time), lines)
        yield None

    def _recordings(
        self,
        zf: zipfile.ZipFile,
        manifest_json: IO[str],
        manifest_csv: IO[str],
        custody_csv: IO[str],
        date_time: Any,
        sums: list[tuple[str, str]],
    ) -> Iterator[None]:
        """Each recording's audio into the package, its manifest entries and custody rows into the files."""
        target = get_target()
        manifest_rows = csv.writer(manifest_csv)
        manifest_rows.writerow(MANIFEST_COLUMNS)
        custody_rows = csv.writer(custody_csv)
        custody_rows.writerow(CUSTODY_COLUMNS)
        manifest_json.write('{\n"recordings": [\n')
        first = True
        for batch in _batches(self.recordings):
            ids = [r.pk for r in batch]
            by_recording = holds_by_recording(Recording.objects.filter(pk__in=ids))
            holds, cases = _holds_and_cases(ids, by_recording)
            for recording in batch:
                entry = _metadata(recording, holds.get(recording.pk, []), cases.get(recording.pk, []))
                yield from self._audio(zf, recording, entry, target, date_time, sums)
                manifest_json.write(("" if first else ",\n") + json.dumps(entry, sort_keys=True))
                first = False
                manifest_rows.writerow(
                    [
                        csv_cell(
                            json.dumps(entry[c], sort_keys=True)
                            if isinstance(entry.get(c), (dict, list))
                            else entry.get(c)
                        )
                        for c in MANIFEST_COLUMNS
                    ]
                )
                self.report.recordings += 1
            for row in _custody_rows(ids, by_recording):
                custody_rows.writerow([csv_cell(cell) for cell in row])

    def _summary(self) -> dict[str, Any]:
        return {
            "export_id": self.report.export_id,
            "scope": self.scope,
            "created_at": self.now.isoformat(),
            "exported_by": self.who.name,
            "recordings": self.report.recordings,
            "audio_files": self.report.audio_files,
            "audio_bytes": self.report.audio_bytes,
            "without_audio": self.report.without_audio,
            "mismatched": self.report.mismatched,
            "erasure_requests_blocked": blocked_erasures(self.recordings),
        }

    def _readme(self) -> str:
        mismatch_note = (
            f"\n  WARNING: {self.report.mismatched} file(s) did not match the SHA-256 in vicirec's catalog when "
            "exported (see matches_catalog in manifest.csv).\n"
            if self.report.mismatched
            else ""
        )
        return README.format(
            export_id=self.report.export_id,
            scope=self.scope,
            created_at=self.now.isoformat(),
            who=self.who.name,
            recordings=self.report.recordings,
            audio_files=self.report.audio_files,
            without_audio=self.report.without_audio,
            mismatch_note=mismatch_note,
        )

    def _text_entry(
        self, zf: zipfile.ZipFile, name: str, handle: IO[str], date_time: Any, sums: list[tuple[str, str]]
    ) -> Iterator[None]:
        info = zipfile.ZipInfo(f"{self.folder}/{name}", date_time)
        info.compress_type = zipfile.ZIP_DEFLATED
        digest = hashlib.sha256()
        with zf.open(info, "w", force_zip64=True) as entry:
            while text := handle.read(CHUNK):
                data = text.encode("utf-8")
                digest.update(data)
                entry.write(data)
                yield None
        sums.append((name, digest.hexdigest()))

    def _audio(
        self,
        zf: zipfile.ZipFile,
        recording: Recording,
        entry: dict[str, Any],
        target: Any,
        date_time: Any,
        sums: list[tuple[str, str]],
    ) -> Iterator[None]:
        entry.update(file=None, file_sha256=None, source=None, matches_catalog=None, problem="")
        try:
            copy = find_copy(recording, target=target)
        except (StorageError, ValueError) as exc:
            copy, entry["problem"] = None, f"copy not reachable: {exc}"
        if copy is None:
            self.report.without_audio += 1
            entry["problem"] = entry["problem"] or (
                "deleted under retention (see deletion_certificate)"
                if recording.state == Recording.State.EXPIRED
                else f"no copy reachable from here (state {recording.state})"
            )
            return
        name = f"audio/{recording.pk}_{copy.name}"
        info = zipfile.ZipInfo(f"{self.folder}/{name}", date_time)
        info.compress_type = zipfile.ZIP_STORED  # audio is already compressed
        digest = hashlib.sha256()
        size = 0
        try:
            with zf.open(info, "w", force_zip64=True) as out:
                for chunk in copy.chunks():
                    digest.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
                    yield None
        except (OSError, StorageError) as exc:
            # The entry is already in the ZIP (possibly short); its hash below tells the truth about it.
            entry["problem"] = f"reading the copy failed after {size} bytes: {exc}"
            self.report.problems.append(f"recording {recording.pk}: {entry['problem']}")
        actual = digest.hexdigest()
        # None: the capture was not hashed yet (it is still inside its local window), so nothing to compare.
        matches = actual == copy.expected_sha256 if copy.expected_sha256 else None
        entry.update(file=name, file_sha256=actual, source=copy.source, matches_catalog=matches)
        if matches is False:
            self.report.mismatched += 1
            self.report.problems.append(f"recording {recording.pk}: exported bytes do not match the catalog's SHA-256")
            log.warning("export %s: recording %s does not match its catalog hash", self.report.export_id, recording.pk)
        sums.append((name, actual))
        self.report.audio_files += 1
        self.report.audio_bytes += size
