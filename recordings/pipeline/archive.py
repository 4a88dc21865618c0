"""Stage 2, archive: compress, upload with a server-verified SHA-256, and confirm each recording that is
past its campaign's local window.

Order of work for one recording, each step safe to interrupt:
1. find every copy VICIdial keeps on this node's spool (spool.locate_all: monitorDONE, MP3/…, ORIG/), and
   leave it for the next run if one is still being written;
2. hash the original capture (the WAV, in monitorDONE or ORIG/: the root of the hash chain) and every
   other copy, and take the upload: VICIdial's compressed copy as it is when there is one, else the
   original encoded in the same pass as its hash; record every copy's SHA-256 and size, the encoded
   bytes' SHA-256, the encoder and the object key *before* uploading, so a crash after the upload is
   recognised by the next run (the object already there, with the planned checksum) and not redone
   (an upload thread does this for up to PLAN_BATCH recordings, in one transaction, before uploading any);
3. PUT once, single-part, with ``x-amz-checksum-sha256``: the server refuses bytes that do not match;
4. only a checksum the server reports back counts: the one in its answer to the PUT (it verified the
   bytes on receipt), else the one HEAD returns, else the object's bytes read back and hashed here; only
   then is the recording marked archived.
A local file is never touched here; cleanup_local deletes it later, after asking the bucket again.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from threading import Condition, Lock, Thread
from typing import Any

from django.conf import settings
from django.db import connections
from django.db.models import Q

from holds.models import held_condition
from recordings.custody import transition, transition_batch
from recordings.lib import spool
from recordings.lib.codec import CodecError, Prepared, prepare
from recordings.lib.disk import spool_usage, under_pressure
from recordings.lib.encoders import EncoderPool, usable_cpus
from recordings.lib.hashing import hash_file
from recordings.lib.storage import ArchiveTarget, StorageError, object_key
from recordings.models import Recording, RecordingQuerySet
from recordings.pipeline.target import get_target
from recordings.pipeline.tiering import storage_class_for
from recordings.pipeline.workqueue import (
    claim,
    ended,
    fail,
    new_token,
    record,
    release,
    release_dead_claims,
)
from retention.models import RetentionPolicy
from vicirec.reports import Report

log = logging.getLogger("vicirec.archive")
ACTOR = "archive_recordings"


def due_for_upload(now: datetime, *, node: str, past_window: Q | None = None) -> RecordingQuerySet:
    """Recordings on this node's disk that are past their campaign's local window and due a (re)try.

    Under disk pressure (this node's spool filesystem at VICIREC_DISK_PRESSURE_PERCENT or more) the
    recordings still inside their window are due as well; claim() takes them oldest first. Only uploads
    move earlier: local files are still deleted by cleanup_local alone, after verification.
    ``past_window`` is the policies' age condition when the caller has already read it (once per run).

    A recording already past its retention and not held is never uploaded (a first install over years of
    recordings, a backfill from the _archive tables): retention deletes its local copies with a
    certificate instead. A held one is archived as usual.
    """
    expired_unheld = RetentionPolicy.objects.age_condition(now, "retain_days") & ~held_condition()
    waiting = (
        Recording.objects.filter(state__in=Recording.WAITING_STATES)
        .for_node(node)
        .retry_due(now)
        .exclude(expired_unheld)
    )
    if node == settings.VICIREC_NODE and _under_pressure():  # only this node's own disk can be measured here
        return waiting
    if past_window is None:
        past_window = RetentionPolicy.objects.age_condition(now, "keep_local_days")
    return waiting.filter(past_window)


def _under_pressure() -> bool:
    """Whether this node's spool filesystem is at VICIREC_DISK_PRESSURE_PERCENT or more."""
    return under_pressure(spool_usage(settings.VICIREC_SPOOL_DIRS), percent=settings.VICIREC_DISK_PRESSURE_PERCENT)


@dataclass
class ArchiveReport(Report, limits={"errors": 20}):
    claimed: int = 0
    archived: int = 0
    already_in_bucket: int = 0
    missing: int = 0
    rejected: int = 0
    failed: int = 0
    not_settled: int = 0
    original_bytes: int = 0
    stored_bytes: int = 0
    errors: list[str] = field(default_factory=list)


class _Outcome:
    ARCHIVED, ALREADY, MISSING, REJECTED, FAILED, NOT_SETTLED, LOST = (
        "archived",
        "already",
        "missing",
        "rejected",
        "failed",
        "not_settled",
        "lost",
    )


def _codec_for(recording: Recording, policies: dict[int | None, str]) -> str:
    return policies.get(recording.campaign_id, policies[None])


# A file modified this far "in the future" was not stamped by a write happening now: the clocks disagree.
FUTURE_MTIME_SECONDS = 300


def _settled(found: spool.Found, now_ts: float) -> bool:
    """Unchanged for VICIREC_SETTLE_SECONDS. A future mtime cannot settle until our clock catches up (a
    month, a year …), so it counts as settled; the size/mtime comparison around the read still catches a
    file that is being written, and the encoder warnings record the skew."""
    age = now_ts - found.mtime
    return age < -FUTURE_MTIME_SECONDS or age >= settings.VICIREC_SETTLE_SECONDS


def _metadata(recording: Recording, original_sha256: str) -> dict[str, str]:
    return {
        "vicirec-recording-id": str(recording.recording_id),
        "vicirec-original-sha256": original_sha256,
        "vicirec-campaign": recording.campaign.campaign_id if recording.campaign else "",
        "vicirec-call-time": recording.start_time.isoformat() if recording.start_time else "",
        "vicirec-server": recording.server_ip,
        "vicirec-filename": recording.filename,
    }


class _Job:
    """One claimed recording on its way to the bucket; every exit records what happened and why."""

    def __init__(self, recording: Recording, *, target: ArchiveTarget, token: str, now: datetime) -> None:
        self.recording, self.target, self.token, self.now = recording, target, token, now
        self.prepared: Prepared | None = None  # the hashed (and encoded) file
        self.plan: dict[str, object] = {}  # the fields recorded before the upload
        self.detail = ""  # what the custody log says once the copy is confirmed

    def discard_encoded(self) -> None:
        """Remove the encoded copy made for the upload (never the original)."""
        if self.prepared and self.prepared.transformed:
            self.prepared.output_path.unlink(missing_ok=True)

    def fail(self, error: str, *, permanent: bool = False, outcome: str = _Outcome.FAILED) -> str:
        fail(self.recording, token=self.token, actor=ACTOR, now=self.now, error=error, permanent=permanent)
        return outcome

    def move(self, to: str, detail: str, **fields: object) -> None:
        transition(self.recording, to=to, token=self.token, actor=ACTOR, now=self.now, detail=detail, **fields)

    def confirm_and_finish(self, *, already: bool, version_id: str = "") -> str:
        """Ask the target for the object's checksum; only a confirmed copy is marked archived."""
        r = self.recording
        confirmation = self.target.confirm(r.object_key, sha256_hex=r.stored_sha256, size=r.stored_size or 0)
        if not confirmation.ok:
            detail = confirmation.detail or f"{r.object_key} not found in the bucket after upload"
            return self.fail(f"upload not confirmed: {detail}")
        verb = "found already" if already else "uploaded"
        return self.finish(
            f"{verb} as {r.object_key}; server confirmed sha256 {confirmation.sha256_hex} ({confirmation.method})",
            method=confirmation.method,
            version_id=confirmation.version_id or version_id,
            outcome=_Outcome.ALREADY if already else _Outcome.ARCHIVED,
        )

    def finish(self, detail: str, *, method: str, version_id: str, outcome: str) -> str:
        """Note the verified copy. The "archived" mark itself is written for many recordings at once
        (mark_archived): until then the recording keeps its claim, and a run killed in between finds the
        confirmed object on its next run and adopts it."""
        r = self.recording
        r.version_id, r.verified_at, r.verify_method = version_id, self.now, method
        r.uploaded_at = r.uploaded_at or self.now
        self.detail = detail
        return outcome


def mark_archived(jobs: list[_Job], *, token: str, now: datetime, run: _Run | None = None) -> int:
    """Mark a batch's confirmed recordings archived: one transaction for the state changes and custody log.

    Held recordings get the bucket's own legal hold first, so none counts as archived without it: one the
    bucket refuses the hold for is failed with the reason (the next run adopts its confirmed object and
    sets the hold again), and the rest of the batch goes on (``run``'s report counts it failed). Only
    rows this run still holds the claim on are marked; returns how many were. The rows share every value
    but the version id (and, for adopted objects, how and when they were confirmed), so they are written
    with one UPDATE per group and the version ids with one more, not a CASE per field per row.
    """
    if not jobs:
        return 0
    by_pk = {job.recording.pk: job for job in jobs}
    held = set(Recording.objects.filter(pk__in=list(by_pk)).held().values_list("pk", flat=True))
    for pk in held:
        job = by_pk[pk]
        try:
            job.target.set_legal_hold(job.recording.object_key, job.recording.version_id, True)
        except StorageError as exc:
            job.fail(
                f"not marked archived: the bucket's legal hold could not be set: {exc.message}", permanent=exc.permanent
            )
            del by_pk[pk]
            if run is not None:
                with run.lock:
                    run.report.archived -= 1
                    run.report.failed += 1
                    run.report.errors.append(f"{job.recording.recording_id}: {job.recording.error}")
    if not by_pk:
        return 0
    moved = transition_batch(
        [(job.recording, job.detail) for job in by_pk.values()],
        to=Recording.State.ARCHIVED,
        token=token,
        actor=ACTOR,
        now=now,
        fields=lambda r: {
            "error": "",
            "next_attempt_at": None,
            "verified_at": r.verified_at,
            "verify_method": r.verify_method,
            "uploaded_at": r.uploaded_at,
        },
        each=("version_id",),
    )
    return len(moved)


# How many recordings an upload thread takes at once. Their plans go on record in one transaction before
# any of them is uploaded: a commit per recording, from every thread, cost more than anything but the PUT.
PLAN_BATCH = 8
# A batch is cut short once its encoded copies (in VICIREC_WORK_DIR until uploaded) take this much space.
ENCODED_AT_ONCE = 32 * 1024 * 1024


def archive_batch(
    jobs: list[_Job], *, codecs: dict[int | None, str], workdir: Path, encode: Callable[..., Prepared] | None = None
) -> list[str]:
    """Take claimed recordings up to confirmed copies; returns each one's outcome.

    Each is found, hashed and encoded; then every plan (hash chain, object key) is on record, in one
    transaction, before a byte of any of them leaves the machine; then they are uploaded one by one. A
    failure is recorded on its own recording and the others go on. ``encode`` takes a WAV to be encoded
    (an EncoderPool's prepare, in another process); anything else is hashed here (codec.prepare).
    """
    outcomes: dict[int, str] = {}
    waiting = deque(jobs)
    try:
        while waiting:
            planned: list[_Job] = []
            encoded = 0
            while waiting and encoded < ENCODED_AT_ONCE:
                job = waiting.popleft()
                codec = _codec_for(job.recording, codecs)
                outcome = _guarded(job, _prepare, codec=codec, workdir=workdir, encode=encode)
                if outcome is not None:
                    outcomes[id(job)] = outcome
                    continue
                planned.append(job)
                if job.prepared and job.prepared.transformed:
                    encoded += job.prepared.output_size
            kept = record([(job.recording, job.plan) for job in planned], token=jobs[0].token)
            for job, still_mine in zip(planned, kept, strict=True):
                # A lost claim (lease expired) means another worker has this recording now: leave it alone.
                outcomes[id(job)] = _guarded(job, _upload) if still_mine else _Outcome.FAILED
                job.discard_encoded()
    finally:
        for job in jobs:
            job.discard_encoded()
    return [outcomes[id(job)] for job in jobs]


def _guarded(job: _Job, step: Callable[..., str | None], **kwargs: Any) -> str | None:
    try:
        return step(job, **kwargs)
    except StorageError as exc:
        return job.fail(exc.message, permanent=exc.permanent)
    except Exception as exc:  # one broken recording must not stop the batch
        log.exception("archive of recording %s failed", job.recording.pk)
        return job.fail(f"unexpected error: {exc!r}")


def _adopt(job: _Job) -> str | None:
    """A previous run may have uploaded and crashed before recording it: adopt its object if it matches.
    Returns the outcome when the planned key already answered, None when there is nothing to adopt."""
    recording = job.recording
    if not (recording.object_key and recording.stored_sha256):
        return None
    confirmation = job.target.confirm(
        recording.object_key, sha256_hex=recording.stored_sha256, size=recording.stored_size or 0
    )
    if confirmation.ok:
        return job.confirm_and_finish(already=True)
    if confirmation.found:
        return job.fail(
            f"{recording.object_key} holds other content than planned: {confirmation.detail}", permanent=True
        )
    return None


def _not_found(job: _Job, found: spool.NotFound) -> str:
    """A recording whose file is not on the spool: refused, lost, or missing for now (retried later)."""
    recording = job.recording
    if found.permanent:
        job.move(Recording.State.REJECTED, found.reason, error=found.reason, next_attempt_at=None)
        return _Outcome.REJECTED
    if recording.original_sha256:
        # It was hashed here once and is gone now without a verified copy: that needs a person.
        return job.fail(
            f"local file disappeared before a verified upload: {found.reason}", permanent=True, outcome=_Outcome.LOST
        )
    recording.attempts += 1
    job.move(
        Recording.State.MISSING,
        found.reason,
        error=found.reason,
        attempts=recording.attempts,
        next_attempt_at=job.now + recording.retry_delay(),
    )
    return _Outcome.MISSING


def _unchanged(job: _Job, found: spool.Found, prepared: Prepared, root_sha256: str) -> str | None:
    """Refuse a file that changed while it was read, or an original whose SHA-256 is no longer the one
    first recorded (``root_sha256``: the original capture's hash as read now)."""
    recording = job.recording
    if found.mtime - time.time() > FUTURE_MTIME_SECONDS:
        prepared.encoder.setdefault("warnings", []).append(
            f"{found.relative} is dated {datetime.fromtimestamp(found.mtime, tz=UTC):%Y-%m-%d %H:%M} UTC, in "
            "the future: the clock of the server that wrote it is wrong"
        )
    cataloged = recording.original_size
    if (
        not recording.original_sha256
        and cataloged
        and recording.local_path == found.relative
        and cataloged != prepared.original_size
    ):
        prepared.encoder.setdefault("warnings", []).append(
            f"{found.relative} was {cataloged} bytes when it was cataloged and is {prepared.original_size} bytes "
            "now: replaced or rewritten since"
        )
    after = found.path.stat()
    if after.st_size != prepared.original_size or after.st_mtime != found.mtime:
        return job.fail(f"{found.relative} changed while it was being read; it will be retried once it settles")
    if recording.original_sha256 and recording.original_sha256 != root_sha256:
        return job.fail(
            f"{found.relative} no longer has the SHA-256 recorded when it was first read "
            f"({recording.original_sha256} → {root_sha256})",
            permanent=True,
        )
    return None


def _copies(copies: list[spool.Found], upload: spool.Found, prepared: Prepared) -> list[dict[str, object]]:
    """Every local copy with its SHA-256 and size: the upload's from the encoding pass, the others read
    here (an original in ORIG/ besides VICIdial's MP3, a second compressed copy)."""
    recorded = []
    for copy in copies:
        if copy.relative == upload.relative:
            digest, size = prepared.original_sha256, prepared.original_size
        else:
            digest, size = hash_file(copy.path)
        recorded.append({"path": copy.relative, "kind": copy.kind, "size": size, "sha256": digest})
    return recorded


def _plan(recording: Recording, upload: spool.Found, prepared: Prepared, copies: list[dict]) -> dict[str, object]:
    """The hash chain and the plan, recorded (by archive_batch) before a byte leaves the machine. The
    original's SHA-256 is the WAV capture's when there is one, else the uploaded file's own."""
    root = next((c for c in copies if c["kind"] in spool.ORIGINAL_KINDS), None) or next(
        c for c in copies if c["path"] == upload.relative
    )
    return {
        "local_path": upload.relative,
        "local_copies": copies,
        "original_sha256": root["sha256"],
        "original_size": root["size"],
        "stored_sha256": prepared.output_sha256,
        "stored_size": prepared.output_size,
        "encoder": prepared.encoder,
        "storage_class": storage_class_for(recording),
        "object_key": object_key(
            campaign_id=recording.campaign.campaign_id if recording.campaign else "",
            start_time=recording.start_time,
            filename=f"{recording.filename}_rec{recording.recording_id}",
            ext=prepared.extension,
        ),
    }


def _prepare(job: _Job, *, codec: str, workdir: Path, encode: Callable[..., Prepared] | None = None) -> str | None:
    """Everything before the plan is recorded. Returns the outcome if the recording is done with here
    (adopted, missing, refused, not settled, failed); None when ``job.plan`` is ready."""
    adopted = _adopt(job)
    if adopted is not None:
        return adopted
    r = job.recording
    day = r.start_time.date() if r.start_time else None
    copies = spool.locate_all(r.filename, r.vicidial_location, settings.VICIREC_SPOOL_DIRS, day)
    if isinstance(copies, spool.NotFound):
        return _not_found(job, copies)
    if not all(_settled(copy, time.time()) for copy in copies):
        return _Outcome.NOT_SETTLED  # the caller gives the claim back
    upload = spool.upload_source(copies)
    try:
        # a WAV to encode goes to the encoder processes when there are some; a pass-through is only hashed
        to_encode = encode is not None and codec != "none" and upload.path.suffix.lower() == ".wav"
        prepared = job.prepared = (encode if to_encode else prepare)(upload.path, codec=codec, workdir=workdir)
        recorded = _copies(copies, upload, prepared)
    except CodecError as exc:  # the bytes are not what a recording should be: retrying will not change them
        return job.fail(f"cannot encode {upload.relative}: {exc}", permanent=True)
    except OSError as exc:
        return job.fail(f"cannot read {upload.relative}: {exc}")
    job.plan = _plan(r, upload, prepared, recorded)
    refused = _unchanged(job, upload, prepared, str(job.plan["original_sha256"]))
    if refused is not None:
        return refused
    return None


def _upload(job: _Job) -> str:
    """PUT once with the SHA-256 the server verifies; only a checksum it reports back confirms the copy."""
    recording, prepared, key = job.recording, job.prepared, job.recording.object_key
    if prepared is None:
        raise RuntimeError("_upload before _prepare")
    stored = job.target.put(
        key,
        prepared.output_path,
        sha256_hex=prepared.output_sha256,
        size=prepared.output_size,
        metadata=_metadata(recording, prepared.original_sha256),
        content_type=prepared.content_type,
        storage_class=recording.storage_class,
    )
    recording.uploaded_at = job.now
    if not stored.already_present and stored.server_sha256_hex == prepared.output_sha256:
        # The server checked the bytes against our SHA-256 before storing them and said so in its
        # answer: that is the read-back. (cleanup_local asks the bucket again before deleting anything.)
        return job.finish(
            f"uploaded as {key}; server verified sha256 {stored.server_sha256_hex} on receipt (put-checksum)",
            method="put-checksum",
            version_id=stored.version_id,
            outcome=_Outcome.ARCHIVED,
        )
    return job.confirm_and_finish(already=stored.already_present, version_id=stored.version_id)


def _remove_dead_runs_folders(root: Path) -> None:
    """Remove the work folders (encoded copies only) of archive runs on this host whose process is gone:
    a run killed with ``kill -9`` leaves its folder, named after its claim token, behind."""
    if root.is_dir():
        for folder in root.iterdir():
            if ended(folder.name, "archive"):
                shutil.rmtree(folder, ignore_errors=True)


MARK_EVERY_S = 5.0  # confirmed recordings are marked archived at least this often (and every batch_size)


@dataclass
class _Run:
    """One archive run: what its upload threads share with the thread that claims and marks."""

    target: ArchiveTarget
    token: str
    now: datetime
    codecs: dict[int | None, str]
    workdir: Path
    progress: Callable[[int, int], None] | None
    encoders: EncoderPool | None = None
    report: ArchiveReport = field(default_factory=ArchiveReport)
    left_unsettled: set[int] = field(default_factory=set)  # given back untouched; skipped for the rest of the run
    lock: Lock = field(default_factory=Lock)

    def work(self, recordings: list[Recording]) -> list[_Job | None]:
        """Runs on an upload thread; returns each job whose copy is confirmed (None for the others)."""
        jobs = [_Job(recording, target=self.target, token=self.token, now=self.now) for recording in recordings]
        encode = self.encoders.prepare if self.encoders else None
        outcomes = archive_batch(jobs, codecs=self.codecs, workdir=self.workdir, encode=encode)
        for job, outcome in zip(jobs, outcomes, strict=True):
            if outcome == _Outcome.NOT_SETTLED:
                with self.lock:  # noted before the claim is given back, so this run does not claim it again
                    self.left_unsettled.add(job.recording.pk)
                release(job.recording, token=self.token)
        with self.lock:
            report = self.report
            for job, outcome in zip(jobs, outcomes, strict=True):
                _count(report, job.recording, outcome)
            if self.progress:
                done = report.archived + report.missing + report.rejected + report.failed + report.not_settled
                self.progress(done, report.claimed)
        confirmed = (_Outcome.ARCHIVED, _Outcome.ALREADY)
        return [job if outcome in confirmed else None for job, outcome in zip(jobs, outcomes, strict=True)]


def _codecs() -> dict[int | None, str]:
    """Each campaign's codec (None: the default policy's), read once per run."""
    codecs: dict[int | None, str] = {None: RetentionPolicy.objects.default().codec}
    codecs.update(RetentionPolicy.objects.exclude(campaign=None).values_list("campaign_id", "codec"))
    return codecs


def _claim_and_mark(
    run: _Run,
    pool: _UploadThreads,
    due: Callable[[], RecordingQuerySet],
    *,
    limit: int | None,
    batch_size: int,
    claim_size: int,
) -> None:
    """Claim work whenever the upload threads run low, and mark confirmed copies archived in batches.
    ``due()`` is asked at each claim (disk pressure can begin during a run)."""
    report = run.report
    low_water = claim_size // 2  # claim the next batch while this much is still in flight
    confirmed: list[_Job] = []
    exhausted, marked_at = False, time.monotonic()
    while True:
        room = claim_size if limit is None else min(claim_size, limit - report.claimed)
        more = not exhausted and room > 0
        if more and pool.in_flight <= low_water:
            with run.lock:
                skip = list(run.left_unsettled)
            batch = claim(due().exclude(pk__in=skip), token=run.token, now=run.now, limit=room)
            exhausted = not batch
            report.claimed += len(batch)
            pool.submit(batch)
            continue
        if not pool.in_flight:
            break
        confirmed.extend(job for job in pool.finished(claim_at=low_water if more else 0, timeout=MARK_EVERY_S) if job)
        if len(confirmed) >= batch_size or not pool.in_flight or time.monotonic() - marked_at > MARK_EVERY_S:
            mark_archived(confirmed, token=run.token, now=run.now, run=run)
            confirmed.clear()
            marked_at = time.monotonic()
    mark_archived(confirmed, token=run.token, now=run.now, run=run)


def archive_due(
    *,
    now: datetime,
    node: str | None = None,
    limit: int | None = None,
    threads: int | None = None,
    batch_size: int = 200,
    progress: Callable[[int, int], None] | None = None,
) -> ArchiveReport:
    """Archive every recording due on this node (at most ``limit``), ``threads`` uploads at a time.

    The calling thread claims work and marks confirmed recordings archived while the upload threads
    keep uploading: the next batch is claimed when the queue runs low, not after the last upload of the
    previous one, and the "archived" marks are written every ``batch_size`` confirmations.
    """
    node = settings.VICIREC_NODE if node is None else node
    threads = threads or settings.VICIREC_UPLOAD_THREADS
    token = new_token("archive")
    release_dead_claims("archive", now=now)
    past_window = RetentionPolicy.objects.age_condition(now, "keep_local_days")  # policies as of the run's start
    workdir = settings.VICIREC_WORK_DIR / token  # its claim token, so a later run can tell it was left behind
    _remove_dead_runs_folders(settings.VICIREC_WORK_DIR)
    processes = settings.VICIREC_ENCODE_PROCESSES
    processes = (usable_cpus() if usable_cpus() > 1 else 0) if processes < 0 else processes
    encoders = EncoderPool(processes) if processes else None  # its workers start with the first WAV to encode
    run = _Run(
        target=get_target(),
        token=token,
        now=now,
        codecs=_codecs(),
        workdir=workdir,
        progress=progress,
        encoders=encoders,
    )
    pool = _UploadThreads(run.work, threads, enough=batch_size)

    def due() -> RecordingQuerySet:
        return due_for_upload(now, node=node, past_window=past_window)

    try:
        # Claims are small, so that workers on one spool share the work evenly to the end; marks are batched.
        _claim_and_mark(run, pool, due, limit=limit, batch_size=batch_size, claim_size=min(batch_size, 16 * threads))
    finally:
        pool.close()
        if encoders:
            encoders.close()
        shutil.rmtree(workdir, ignore_errors=True)
    log.info("archive: %s", run.report.as_dict())
    return run.report


class _UploadThreads:
    """Upload threads that live for the whole run, each keeping its own database connection until the
    end (reconnecting per recording cost more than the upload itself). One thread means the caller's.

    A thread takes up to PLAN_BATCH recordings at a time, and no more than its share of what waits, so
    the last ones of a run are still spread over every thread. The caller is woken when it has something
    to do (the work in flight has fallen to where it should claim more, ``enough`` results wait to be
    marked, or all is done), not once per recording: under the GIL every wake-up is taken from the uploads."""

    def __init__(self, work: Callable[[list[Recording]], list[_Job | None]], threads: int, *, enough: int) -> None:
        self.work, self.enough = work, enough
        self.in_flight, self.claim_at = 0, 0
        self.results: list[_Job | None] = []
        self.ready = Condition()  # results for the caller
        self.todo: deque[Recording] = deque()
        self.queued = Condition()  # work for the threads
        self.closing = False
        self.threads = [Thread(target=self._loop, name=f"upload-{n}") for n in range(threads)] if threads > 1 else []
        for thread in self.threads:
            thread.start()

    def _loop(self) -> None:
        try:
            while batch := self._take():
                results = self._run(batch)
                with self.ready:
                    self.results.extend(results)
                    if self._worth_waking():
                        self.ready.notify()
        finally:
            connections.close_all()

    def _take(self) -> list[Recording]:
        """Wait for work and take this thread's share of it; empty once closing and nothing is left."""
        with self.queued:
            self.queued.wait_for(lambda: self.todo or self.closing)
            share = min(PLAN_BATCH, -(-len(self.todo) // len(self.threads)))
            return [self.todo.popleft() for _ in range(share)]

    def _run(self, batch: list[Recording]) -> list[_Job | None]:
        try:
            return self.work(batch)
        except Exception:  # e.g. the database went away while recording an error: the run must still end
            log.exception("archive: %d recordings not finished; retried once their claims expire", len(batch))
            return [None] * len(batch)

    def _worth_waking(self) -> bool:
        left = self.in_flight - len(self.results)
        return bool(self.results) and (left <= self.claim_at or len(self.results) >= self.enough)

    def submit(self, batch: list[Recording]) -> None:
        with self.ready:
            self.in_flight += len(batch)
        if not self.threads:
            for start in range(0, len(batch), PLAN_BATCH):
                self.results.extend(self._run(batch[start : start + PLAN_BATCH]))
            return
        with self.queued:
            self.todo.extend(batch)
            self.queued.notify(len(batch))

    def finished(self, *, claim_at: int, timeout: float) -> list[_Job | None]:
        """Wait (at most ``timeout`` seconds) until the work in flight falls to ``claim_at`` or ``enough``
        results are in, then return the results since the last call."""
        with self.ready:
            self.claim_at = claim_at
            self.ready.wait_for(self._worth_waking, timeout=timeout)
            results, self.results = self.results, []
            self.in_flight -= len(results)
        return results

    def close(self) -> None:
        """Let the threads finish what is queued, then stop them."""
        with self.queued:
            self.closing = True
            self.queued.notify_all()
        for thread in self.threads:
            thread.join()


def _count(report: ArchiveReport, recording: Recording, outcome: str) -> None:
    if outcome in (_Outcome.ARCHIVED, _Outcome.ALREADY):
        report.archived += 1
        report.already_in_bucket += outcome == _Outcome.ALREADY
        report.original_bytes += recording.original_size or 0
        report.stored_bytes += recording.stored_size or 0
    elif outcome == _Outcome.MISSING:
        report.missing += 1
    elif outcome == _Outcome.REJECTED:
        report.rejected += 1
    elif outcome == _Outcome.NOT_SETTLED:
        report.not_settled += 1
    else:
        report.failed += 1
        if recording.error:
            report.errors.append(f"{recording.recording_id}: {recording.error}")
