"""Stage 3, cleanup: delete local files whose cloud copy is verified.

SAFETY RULE: a local file is deleted only when, at that moment, (1) the recording is archived, (2) the
bucket confirms again that it holds the object with the recorded SHA-256 and size, and (3) the file on
disk still has a SHA-256 and size recorded for this recording when it was archived. A recorded copy that
changed since is an error for a person, and then none of the recording's copies is deleted. No verified
copy, no deletion.

Every local copy is cleared: those recorded at archive time (VICIdial's MP3 and the original in ORIG/),
and any copy found now under the recording's name whose bytes are one of them (VICIdial's compression
cron may have moved the original into ORIG/ after the upload). A copy found now with other bytes (an MP3
VICIdial made after the upload) was never verified: it is left and named in the custody log.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.db.models import Exists, OuterRef

from recordings.custody import transition
from recordings.lib import spool
from recordings.lib.hashing import hash_file
from recordings.lib.storage import StorageError
from recordings.models import Recording, RecordingQuerySet
from recordings.pipeline.target import get_target
from recordings.pipeline.workqueue import claim, fail, new_token, release_dead_claims
from vicirec.reports import Report

log = logging.getLogger("vicirec.cleanup")
ACTOR = "cleanup_local"


def local_copies_to_clear(now: datetime, *, node: str) -> RecordingQuerySet:
    """Archived recordings on this node's disk, except those whose file another recording still waits to
    upload: VICIdial can log two recording_log rows for one file (the same filename on the same server),
    and the file stays until every row that needs it has its own verified copy."""
    file_still_needed = Recording.objects.filter(
        filename=OuterRef("filename"), server_ip=OuterRef("server_ip"), state__in=Recording.WAITING_STATES
    )
    return (
        Recording.objects.filter(state=Recording.State.ARCHIVED)
        .for_node(node)
        .retry_due(now)
        .exclude(Exists(file_still_needed))
    )


@dataclass
class CleanupReport(Report, limits={"errors": 20}):
    claimed: int = 0
    cleared: int = 0
    already_gone: int = 0
    bytes_freed: int = 0
    kept: int = 0
    errors: list[str] = field(default_factory=list)


def clear_one(recording: Recording, *, target: object, token: str, now: datetime, report: CleanupReport) -> None:
    def keep(error: str, *, permanent: bool = False) -> None:
        report.kept += 1
        report.errors.append(f"{recording.recording_id}: {error}")
        fail(recording, token=token, actor=ACTOR, error=error, now=now, permanent=permanent)

    def cleared(detail: str) -> None:
        transition(
            recording,
            to=Recording.State.CLEARED,
            token=token,
            actor=ACTOR,
            now=now,
            detail=detail,
            local_cleared_at=now,
            error="",
            next_attempt_at=None,
        )

    try:
        confirmation = target.confirm(  # type: ignore[attr-defined]
            recording.object_key,
            sha256_hex=recording.stored_sha256,
            size=recording.stored_size or 0,
            version_id=recording.version_id,
        )
    except StorageError as exc:
        return keep(f"bucket could not confirm the copy, local file kept: {exc.message}", permanent=exc.permanent)
    if not confirmation.ok:
        detail = confirmation.detail or f"{recording.object_key} is not in the bucket"
        return keep(f"cloud copy no longer confirmed, local file kept: {detail}", permanent=True)
    try:
        deletable, unverified = _checked_copies(recording)
    except _Changed as exc:
        return keep(str(exc), permanent=True)
    except OSError as exc:
        return keep(f"cannot read a local copy to check it before deletion: {exc}")
    if not deletable:
        # Already gone (e.g. a run killed between unlink and this update): the verified copy stands.
        report.already_gone += 1
        return cleared("local file already gone; cloud copy re-confirmed" + unverified)
    for path, _, _ in deletable:
        os.unlink(path)
    freed = sum(size for _, _, size in deletable)
    report.cleared += 1
    report.bytes_freed += freed
    names = ", ".join(f"{relative} ({size} bytes)" for _, relative, size in deletable)
    cleared(
        f"deleted {names} after the bucket re-confirmed sha256 {confirmation.sha256_hex} ({confirmation.method})"
        + unverified
    )
    return None


class _Changed(Exception):
    """A recorded local copy no longer has its recorded SHA-256: a person must look, nothing is deleted."""


def recorded_copies(recording: Recording) -> list[dict]:
    """The local copies recorded at archive time (older catalog rows: the one local_path)."""
    if recording.local_copies:
        return list(recording.local_copies)
    if recording.local_path:
        return [{"path": recording.local_path, "sha256": recording.original_sha256, "size": recording.original_size}]
    return []


def _checked_copies(recording: Recording) -> tuple[list[tuple[Path, str, int]], str]:
    """The local copies to delete, each re-hashed: (path, relative, size); and a note naming copies found
    under the recording's name whose bytes were never verified (left on disk). Raises _Changed."""
    spools = settings.VICIREC_SPOOL_DIRS
    recorded = recorded_copies(recording)
    known = {(c["sha256"], c["size"]) for c in recorded if c.get("sha256")}
    paths = {c["path"] for c in recorded}
    day = recording.start_time.date() if recording.start_time else None
    found = spool.locate_all(recording.filename, recording.vicidial_location, spools, day)
    if isinstance(found, list):
        paths.update(c.relative for c in found)
    deletable, unverified = [], []
    for relative in sorted(paths):
        try:
            path = spool.resolve(spools, relative)
        except FileNotFoundError:
            continue
        digest, size = hash_file(path)
        if (digest, size) in known:
            deletable.append((path, relative, size))
        elif relative in {c["path"] for c in recorded}:
            raise _Changed(f"{relative} changed since it was archived (sha256 {digest}); no local copy deleted")
        else:
            unverified.append(relative)
    note = f"; left {', '.join(unverified)}: not the bytes archived" if unverified else ""
    return deletable, note


def cleanup_local(
    *, now: datetime, node: str | None = None, limit: int | None = None, batch_size: int = 500
) -> CleanupReport:
    node = settings.VICIREC_NODE if node is None else node
    target = get_target()
    token = new_token("cleanup")
    release_dead_claims("cleanup", now=now)
    report = CleanupReport()
    while limit is None or report.claimed < limit:
        size = batch_size if limit is None else min(batch_size, limit - report.claimed)
        batch = claim(local_copies_to_clear(now, node=node), token=token, now=now, limit=size)
        if not batch:
            break
        report.claimed += len(batch)
        for recording in batch:
            try:
                clear_one(recording, target=target, token=token, now=now, report=report)
            except Exception as exc:  # one broken recording must not stop the batch
                log.exception("cleanup of recording %s failed", recording.pk)
                report.kept += 1
                fail(recording, token=token, actor=ACTOR, error=f"unexpected error: {exc!r}", now=now)
    log.info("cleanup: %s", report.as_dict())
    return report
