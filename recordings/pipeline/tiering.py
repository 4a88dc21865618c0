"""Storage classes: the class each upload is written with, and ``retier``, which moves objects already in the
bucket to their policy's class.

SAFETY RULE: retier never loses or weakens a copy. It claims only stored recordings that are not held; it
copies the object server-side onto its own key in the new class and confirms the copy's SHA-256 against the
catalog before anything is deleted; it deletes the old version only if the recording is still not held at
that moment, and otherwise deletes its own new copy instead, leaving the held version (and its Object Lock
legal hold) exactly as it was. An old version the bucket refuses to delete (Object Lock retention) is kept
and the new copy removed, so the catalog always names exactly one version. A move that costs more than it
saves (the class's minimum storage duration or billable size against the retention left) is not made.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Q
from django.db.models.signals import post_save

from recordings import custody
from recordings.lib import pricing
from recordings.lib.storage import ArchiveTarget, StorageError
from recordings.models import Recording, RecordingQuerySet
from recordings.pipeline.target import get_target
from recordings.pipeline.workqueue import claim, new_token, release, release_dead_claims
from retention.models import RetentionPolicy, archive_providers, prices
from vicirec.reports import Report

log = logging.getLogger("vicirec.retier")
ACTOR = "retier"
# Uploads read the policies' classes at most this often per process (a policy saved in this process is
# seen at once); a changed class applies to the uploads that start after that.
CACHE_SECONDS = 60.0
_cache: dict[str, Any] = {"at": -CACHE_SECONDS, "classes": {}}


def policy_classes() -> dict[int | None, str]:
    """Each campaign's storage class (None: the default policy's), read at most every CACHE_SECONDS."""
    if time.monotonic() - _cache["at"] >= CACHE_SECONDS:
        classes: dict[int | None, str] = {None: RetentionPolicy.objects.default().storage_class}
        classes.update(RetentionPolicy.objects.exclude(campaign=None).values_list("campaign_id", "storage_class"))
        _cache.update(at=time.monotonic(), classes=classes)
    return dict(_cache["classes"])


def storage_class_for(recording: Recording) -> str:
    """The class a new upload of ``recording`` is written with: its campaign policy's."""
    classes = policy_classes()
    return classes.get(recording.campaign_id, classes[None])


def _forget(**kwargs: Any) -> None:
    _cache["at"] = -CACHE_SECONDS


post_save.connect(_forget, sender=RetentionPolicy, dispatch_uid="vicirec-storage-class-cache")


@dataclass
class RetierReport(Report, limits={"errors": 20}):
    dry_run: bool = False
    due: int = 0
    claimed: int = 0
    moved: int = 0
    moved_bytes: int = 0
    not_worth_it: int = 0
    held: int = 0
    failed: int = 0
    by_class: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


def due_for_retier() -> RecordingQuerySet:
    """Stored, unheld recordings whose object is not in their policy's class ("" counts as STANDARD)."""
    classes = policy_classes()
    explicit = [pk for pk in classes if pk is not None]
    wrong = Q()
    for storage_class in set(classes.values()):
        current = ["", storage_class] if storage_class == pricing.STANDARD else [storage_class]
        campaigns = [pk for pk, value in classes.items() if pk is not None and value == storage_class]
        scope = Q(campaign_id__in=campaigns)
        if classes[None] == storage_class:
            scope |= Q(campaign__isnull=True) | ~Q(campaign_id__in=explicit)
        wrong |= scope & ~Q(storage_class__in=current)
    return Recording.objects.stored().not_held().exclude(object_key="").filter(wrong)


def _not_worth_it(recording: Recording, storage_class: str, *, now: datetime, retain_days: int) -> str:
    """Why moving this object costs more than it saves (retention left, size), or ""."""
    if recording.start_time is None:
        return "no call date, so the retention left is unknown"
    left = (recording.start_time + timedelta(days=retain_days) - now).total_seconds() / 86400
    return pricing.refusal(
        storage_class,
        providers=archive_providers(),
        size=recording.stored_size or 0,
        days=max(left, 0.0),
        prices=prices(),
    )


def retier(*, now: datetime, limit: int | None = None, dry_run: bool = False) -> RetierReport:
    """Move up to ``limit`` stored objects to their policy's storage class (see the SAFETY RULE above)."""
    report = RetierReport(dry_run=dry_run)
    due = due_for_retier()
    report.due = due.count()
    if dry_run or not report.due:
        return report
    release_dead_claims(ACTOR, now=now)
    classes = policy_classes()
    default, explicit = RetentionPolicy.objects.for_campaign_ids()
    target, token = get_target(), new_token(ACTOR)
    while limit is None or report.claimed < limit:
        room = 200 if limit is None else min(200, limit - report.claimed)
        batch = claim(due, token=token, now=now, limit=room)
        if not batch:
            break
        report.claimed += len(batch)
        for recording in batch:
            policy = explicit.get(recording.campaign_id, default)  # type: ignore[arg-type]
            to = classes.get(recording.campaign_id, classes[None])
            _retier_one(recording, to, target=target, token=token, now=now, report=report, retain=policy.retain_days)
        due = due.exclude(pk__in=[r.pk for r in batch])
    return report


def _retier_one(
    recording: Recording,
    to: str,
    *,
    target: ArchiveTarget,
    token: str,
    now: datetime,
    report: RetierReport,
    retain: int,
) -> None:
    """One claimed recording: copy, confirm, remove the old version, note the move; the claim is released."""
    try:
        if _not_worth_it(recording, to, now=now, retain_days=retain):
            report.not_worth_it += 1
            return
        key, old = recording.object_key, recording.version_id
        try:
            stored = target.change_class(
                key, old, storage_class=to, sha256_hex=recording.stored_sha256, size=recording.stored_size or 0
            )
            outcome = _drop_old_version(recording, target, key=key, old=old, new=stored.version_id)
        except StorageError as exc:
            outcome = f"not moved to {to}: {exc.message}"
        if outcome:
            report.held += outcome == "held"
            report.failed += outcome != "held"
            if outcome != "held":
                report.errors.append(f"recording {recording.pk}: {outcome}")
            return
        new = stored.version_id or old
        detail = (
            f"moved to {to} (was {recording.storage_class or 'the bucket default'}) by a server-side copy; "
            f"sha256 {recording.stored_sha256} confirmed on the copy"
            + (f"; version {old} replaced by {new}" if new != old else "")
        )
        custody.note(recording, actor=ACTOR, detail=detail, now=now, storage_class=to, version_id=new, verified_at=now)
        if Recording.objects.filter(pk=recording.pk).held().exists():  # a hold placed while we moved it
            target.set_legal_hold(key, new, True)
        report.moved += 1
        report.moved_bytes += recording.stored_size or 0
        report.by_class[to] = report.by_class.get(to, 0) + 1
        log.info("retier: recording %s: %s", recording.pk, detail)
    finally:
        release(recording, token=token)


def _drop_old_version(recording: Recording, target: ArchiveTarget, *, key: str, old: str, new: str) -> str:
    """Delete the old version now the copy is confirmed: "" when done (or nothing to delete), "held" when a
    hold arrived meanwhile, else why not; in both refusals the new copy is deleted and the old one kept."""
    if not new or new == old:
        return ""  # replaced in place (unversioned bucket, folder): nothing else to delete
    if Recording.objects.filter(pk=recording.pk).held().exists():
        target.delete([(key, new)])
        return "held"
    result = target.delete([(key, old)])
    if result.ok:
        return ""
    target.delete([(key, new)])
    failure = result.failed[0]
    return f"the bucket refused to delete the old version ({failure.code}: {failure.message}); it is kept"
