"""Stage 4, retention: delete the expired copies of recordings that no legal hold covers.

SAFETY RULES
- A held recording is never deleted: holds are checked when the batch is chosen and again, in one query,
  immediately before its files are deleted, under the deletion gate (holds.models.DeletionGate): a hold
  being placed waits until the batch's deletions are done, so none is committed between that last check
  and the delete calls (within the gate's lease); a hold placed while a run is under way wins.
- A run that would delete more than VICIREC_RETENTION_MAX_SHARE of the archive stops and asks for
  --confirm (a mistyped policy must not empty the bucket).
- --dry-run walks the same selection and deletes nothing.
- A record class under disposition review (VICIREC_REVIEW_CLASSES, recordings.pipeline.disposition) is not
  deleted on its own: its deletable recordings go into a disposition batch, and only the items a Legal
  approver approved are deleted, and only if the deletion gate's re-check finds them still expired and not
  held; an excluded item is never deleted by its batch.
- Every deletion leaves the catalog row in place (state "expired") and writes a permanent deletion
  certificate in the same transaction as the state change. A recording already past its retention when
  it would have been archived is never uploaded (archive.due_for_upload): its local copies are deleted
  here, under the same safety stop and dry run, with a certificate whose ``call.location`` is "local".
- Local copies: every copy VICIdial keeps under the recording's name (spool.locate_all: monitorDONE,
  MP3/…, ORIG/) and every copy recorded at archive time, each resolved inside a spool folder.
Work is claimed like every other stage, so two runs never delete the same recording twice and a run
killed half-way is finished by the next one (a cloud object already gone counts as deleted).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db import transaction

from holds.models import DeletionGate, LegalHold
from recordings import ledger
from recordings.custody import transition_batch
from recordings.lib import spool
from recordings.lib.storage import StorageError
from recordings.models import Recording, RecordingQuerySet
from recordings.pipeline import disposition
from recordings.pipeline.cleanup import recorded_copies
from recordings.pipeline.target import get_target
from recordings.pipeline.workqueue import claim, fail, new_token, release, release_dead_claims
from retention.models import DeletionCertificate, RetentionPolicy
from vicirec.db import inserts
from vicirec.reports import Report

log = logging.getLogger("vicirec.retention")
ACTOR = "enforce_retention"
DELETE_BATCH = 1000  # S3 DeleteObjects takes at most 1,000 keys per call


# The exit code of every command that runs retention (enforce_retention, run_lifecycle) when the safety
# stop held the run back: distinct from 1 (an error) so cron and monitoring can tell "a person must
# confirm" from "something broke".
SAFETY_STOP_EXIT_CODE = 3


@dataclass
class RetentionReport(Report, limits={"would_delete": 1000, "errors": 20}):
    dry_run: bool
    expired_total: int = 0
    held: int = 0
    deleted: int = 0
    held_at_deletion: int = 0
    failed: int = 0
    bytes_deleted: int = 0
    archive_size: int = 0
    would_delete: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    run: str = ""
    # The safety stop, reported as a result and never raised: the sentence for a person (empty when the
    # run was not stopped), how many recordings it would have deleted and their share of the archive.
    stopped: str = ""
    stopped_recordings: int = 0
    stopped_share_percent: float = 0.0
    # Disposition review (reviewed record classes only): recordings added to a batch by this run, recordings
    # waiting for a Legal approver's decision, and recordings held back at the moment of deletion for want of
    # a live approval (an approval that lapsed because the recording was held or no longer expired).
    review_added: int = 0
    awaiting_review: int = 0
    review_not_approved: int = 0


def deletable(now: datetime) -> RecordingQuerySet:
    """Expired recordings that no active hold covers and that no disposition review holds back (a reviewed
    record class's recordings go only once approved): what this stage deletes."""
    return disposition.restrict(Recording.objects.expired(now).not_held())


def _policy_snapshot(recording: Recording, default: RetentionPolicy, policies: dict[int, RetentionPolicy]) -> dict:
    policy = policies.get(recording.campaign_id or 0, default)
    klass = policy.klass
    return {
        "policy_id": policy.pk,
        "policy": str(policy),
        "retain_days": policy.retain_days,
        "record_class": klass.key,
        "record_class_label": klass.label,
        "floor_days": klass.floor_days,
        "floor_source": klass.source,
        "override_reason": policy.override_reason,
    }


def _call_snapshot(recording: Recording) -> dict:
    return {
        "recording_id": recording.recording_id,
        "filename": recording.filename,
        "call_time": recording.start_time.isoformat() if recording.start_time else None,
        "length_in_sec": recording.length_in_sec,
        "campaign": recording.campaign.campaign_id if recording.campaign else None,
        "direction": recording.direction,
        "phone_number": recording.phone_number,
        "lead_id": recording.lead_id,
        "agent": recording.agent,
        "server_ip": recording.server_ip,
        "vicidial_id": recording.vicidial_id,
    }


def _delete_local(recording: Recording) -> bool:
    """Delete every local copy vicirec still manages; True if a file was deleted."""
    if recording.state not in Recording.LOCAL_STATES:
        return False
    spools = settings.VICIREC_SPOOL_DIRS
    paths = {c["path"] for c in recorded_copies(recording)}
    day = recording.start_time.date() if recording.start_time else None
    found = spool.locate_all(recording.filename, recording.vicidial_location, spools, day)
    if isinstance(found, list):
        paths.update(c.relative for c in found)
    deleted = False
    for relative in sorted(paths):
        try:
            path = spool.resolve(spools, relative)
        except FileNotFoundError:
            continue
        os.unlink(path)
        deleted = True
    return deleted


def _location(recording: Recording) -> str:
    """Where the certificate's copies were: "local" for a recording never archived (expired first)."""
    if recording.state in Recording.STORED_STATES:
        return "cloud+local" if recording.state == Recording.State.ARCHIVED else "cloud"
    return "local"


def _drop_held(batch: list[Recording], *, token: str, report: RetentionReport) -> tuple[list[Recording], int]:
    """The moment of deletion: ask once more, in one query, which of the batch are held; give those back.
    Returns the rest and how many holds were active when asked."""
    held_now = set(Recording.objects.filter(pk__in=[r.pk for r in batch]).held().values_list("pk", flat=True))
    active_holds = LegalHold.objects.active().count()
    for recording in batch:
        if recording.pk in held_now:
            report.held_at_deletion += 1
            release(recording, token=token)
    return [r for r in batch if r.pk not in held_now], active_holds


def _delete_cloud(batch: list[Recording], target) -> tuple[set[int], dict[int, str]]:
    """Delete the batch's cloud copies in as few requests as the bucket allows; returns the recordings
    whose copy is gone and the refusals by recording."""
    in_cloud = [r for r in batch if r.object_key and r.state in Recording.STORED_STATES]
    failed: dict[int, str] = {}
    try:
        result = target.delete([(r.object_key, r.version_id) for r in in_cloud])
        by_key = {(f.key, f.version_id): f for f in result.failed}
        for r in in_cloud:
            failure = by_key.get((r.object_key, r.version_id))
            if failure is not None:
                failed[r.pk] = f"bucket refused to delete {r.object_key}: {failure.code} {failure.message}"
    except StorageError as exc:
        failed.update({r.pk: exc.message for r in in_cloud})
    return {r.pk for r in in_cloud} - set(failed), failed


def _delete_local_copies(
    batch: list[Recording], failed: dict[int, str], *, token: str, now: datetime, report: RetentionReport
) -> dict[int, bool]:
    """Delete the local files of the recordings whose cloud copy is gone; returns, for each recording
    that is now deleted everywhere, whether a local file was deleted. Failures are recorded."""
    gone: dict[int, bool] = {}
    for recording in batch:
        if recording.pk in failed:
            report.failed += 1
            report.errors.append(f"{recording.pk}: {failed[recording.pk]}")
            fail(recording, token=token, actor=ACTOR, error=failed[recording.pk], now=now)
            continue
        try:
            gone[recording.pk] = _delete_local(recording)
        except OSError as exc:
            report.failed += 1
            fail(recording, token=token, actor=ACTOR, error=f"cannot delete {recording.local_path}: {exc}", now=now)
    return gone


def _delete_batch(batch: list[Recording], *, target, token: str, now: datetime, report: RetentionReport) -> None:
    # The deletion gate: one short transaction locks it, takes a lease and re-checks holds; a hold being
    # placed waits for the lease, so it is committed either before this check or after these deletions.
    # Disposition review is re-checked there too: a reviewed class's recording goes only with a live approval
    # and while still expired (an approval of a recording held now lapses).
    with transaction.atomic():
        DeletionGate.enter()
        free, active_holds = _drop_held(batch, token=token, report=report)
        kept = {r.pk for r in free}
        held = [r for r in batch if r.pk not in kept]
        batch, review, given_back = disposition.at_deletion(free, held, token=token, now=now, actor=ACTOR)
        report.review_not_approved += given_back
    try:
        _delete_checked(batch, active_holds, target=target, token=token, now=now, report=report, review=review)
    finally:
        DeletionGate.leave()


CERTIFICATE_FIELDS = (
    "recording_id",
    "deleted_at",
    "run",
    "call",
    "object_key",
    "version_id",
    "original_sha256",
    "stored_sha256",
    "stored_size",
    "cloud_deleted",
    "local_deleted",
    "policy",
    "hold_check",
)


def _delete_checked(
    batch: list[Recording],
    active_holds: int,
    *,
    target,
    token: str,
    now: datetime,
    report: RetentionReport,
    review: dict[int, dict] | None = None,
) -> None:
    review = review or {}
    default, policies = RetentionPolicy.objects.for_campaign_ids()
    cloud_deleted, failed = _delete_cloud(batch, target)
    local_deleted = _delete_local_copies(batch, failed, token=token, now=now, report=report)
    if not local_deleted:
        return
    hold_check = {"checked_at": now.isoformat(), "held": False, "active_holds_checked": active_holds}

    snapshots: dict[int, dict] = {}  # by campaign: the batch's recordings share a few policies

    def snapshot(r: Recording) -> dict:
        key = r.campaign_id or 0
        if key not in snapshots:
            snapshots[key] = _policy_snapshot(r, default, policies)
        return snapshots[key]

    def certify(moved: list[Recording]) -> None:
        # One INSERT of plain values and one of their ledger entries, built from the values written.
        rows = [
            (
                r.pk,
                now,
                token,
                {**_call_snapshot(r), "location": _location(r)},
                r.object_key,
                r.version_id,
                r.original_sha256,
                r.stored_sha256,
                r.stored_size,
                r.pk in cloud_deleted,
                local_deleted[r.pk],
                {**snapshot(r), **({"review": review[r.pk]} if r.pk in review else {})},
                hold_check,
            )
            for r in moved
        ]
        keys = inserts.insert_rows(DeletionCertificate, CERTIFICATE_FIELDS, rows, returning=True)
        ledger.append_values(
            "deletion_certificate",
            [dict(zip(CERTIFICATE_FIELDS, row, strict=True), id=key) for key, row in zip(keys, rows, strict=True)],
        )

    # One transaction per batch, a fixed number of queries: the state change, certificates, custody log.
    def detail(r: Recording) -> str:
        approved = review.get(r.pk)
        by = f"; approved in {approved['batch_name']} by {approved['approved_by']}" if approved else ""
        return f"deleted under retention (run {token}); not held at deletion{by}"

    moved = transition_batch(
        [(r, detail(r)) for r in batch if r.pk in local_deleted],
        to=Recording.State.EXPIRED,
        token=token,
        actor=ACTOR,
        now=now,
        fields=lambda r: {"expired_at": now},
        then=certify,
    )
    report.deleted += len(moved)
    report.bytes_deleted += sum(r.stored_size or r.original_size or 0 for r in moved)


def _archive_size_for_stop(to_delete: int, max_share: float) -> int:
    """The archive's size as far as the safety stop needs it: counted up to to_delete / max_share + 1 rows at
    most (a bigger archive cannot stop the run), so a run's cost follows what is due, not the catalog's
    size; 0 when nothing is due. A figure equal to that bound means "at least"."""
    if not to_delete:
        return 0
    bound = int(to_delete / max_share) + 1 if max_share > 0 else to_delete + 1
    return Recording.objects.with_copies().order_by()[:bound].count()


def enforce_retention(
    *, now: datetime, dry_run: bool, confirm: bool = False, limit: int | None = None, max_share: float | None = None
) -> RetentionReport:
    max_share = settings.VICIREC_RETENTION_MAX_SHARE if max_share is None else max_share
    token = new_token("retention")
    report = RetentionReport(dry_run=dry_run, run=token)
    expired = Recording.objects.expired(now)
    report.expired_total = expired.count()
    report.held = expired.held().count() if report.expired_total else 0
    to_delete = report.expired_total - report.held
    if report.expired_total and disposition.reviewed_condition() is not None:
        to_delete = deletable(now).count()  # a reviewed class's recordings count once approved
    report.awaiting_review = disposition.awaiting_review()
    report.archive_size = _archive_size_for_stop(to_delete, max_share)
    if dry_run:
        report.would_delete = list(deletable(now).order_by("start_time").values_list("pk", flat=True)[:1000])
        return report
    if to_delete and report.archive_size and to_delete / report.archive_size > max_share and not confirm:
        report.stopped_recordings = to_delete
        report.stopped_share_percent = round(100 * to_delete / report.archive_size, 1)
        report.stopped = (
            f"stopped, nothing deleted: this run would delete {to_delete} of {report.archive_size} recordings "
            f"({to_delete / report.archive_size:.1%}, more than the {max_share:.0%} allowed at once); "
            "check the policies with --dry-run, then run again with --confirm"
        )
        log.warning("retention: %s", report.stopped)
        return report
    release_dead_claims("retention", now=now)
    if report.expired_total and disposition.reviewed_condition() is not None:
        report.review_not_approved += disposition.lapse_held(now=now, actor=ACTOR)
        report.review_added = disposition.build_batches(expired.not_held(), now=now, token=token)
        report.awaiting_review = disposition.awaiting_review()
    target = get_target()
    cursor = 0  # walk the catalog once in primary-key order, so each batch's query starts where the last ended
    # Ask for no more than were counted: a query in key order with a LIMIT that finds fewer rows than it asks
    # for reads the rest of the catalog's key index to be sure, which at 10M rows costs seconds per run.
    # Recordings that fall due while the run goes on wait for the next run.
    left = to_delete
    while left > 0 and (limit is None or report.deleted + report.failed < limit):
        size = min(DELETE_BATCH, left)
        if limit is not None:
            size = min(size, limit - report.deleted - report.failed)
        # A recording whose deletion failed waits out its back-off (fail() sets next_attempt_at) before the
        # next try, instead of costing every run a refused request.
        candidates = deletable(now).retry_due(now).filter(recording_id__gt=cursor)
        batch = claim(candidates, token=token, now=now, limit=size, order=("recording_id",))
        if not batch:
            break
        left -= len(batch)
        cursor = batch[-1].recording_id
        _delete_batch(batch, target=target, token=token, now=now, report=report)
    log.info("retention: %s", {k: v for k, v in report.as_dict().items() if k != "would_delete"})
    return report
