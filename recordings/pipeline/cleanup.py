"""Stage 3, cleanup: delete local files whose cloud copy is verified.

SAFETY RULE: a local file is deleted only when, at that moment, (1) the recording is archived, (2) the
bucket confirms again that it holds the object with the recorded SHA-256 and size, and (3) the file on
disk still has the SHA-256 recorded when it was first read. A file that changed since is an error for a
person, never a deletion. No verified copy, no deletion.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from datetime import datetime

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
        path = spool.resolve(settings.VICIREC_SPOOL_DIRS, recording.local_path)
    except FileNotFoundError:
        # Already gone (e.g. a run killed between unlink and this update): the verified copy stands.
        report.already_gone += 1
        return cleared("local file already gone; cloud copy re-confirmed")
    try:
        digest, size = hash_file(path)
    except OSError as exc:
        return keep(f"cannot read {recording.local_path} to check it before deletion: {exc}")
    if (digest, size) != (recording.original_sha256, recording.original_size):
        return keep(
            f"{recording.local_path} changed since it was archived (sha256 {digest}, expected "
            f"{recording.original_sha256}); not deleted",
            permanent=True,
        )
    os.unlink(path)
    report.cleared += 1
    report.bytes_freed += size
    cleared(
        f"deleted {recording.local_path} ({size} bytes) after the bucket re-confirmed sha256 "
        f"{confirmation.sha256_hex} ({confirmation.method})"
    )
    return None


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
