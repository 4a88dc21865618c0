"""Disposition review: retention of a reviewed record class deletes only what a Legal approver approved.

A record class is reviewed when its key is in ``VICIREC_REVIEW_CLASSES`` (comma-separated; default none, so
retention runs exactly as before). For such a class, retention (recordings.pipeline.retention) deletes
nothing on its own:

* each run puts the recordings that became deletable (expired, no active hold) and are not in review yet
  into the open disposition batch of their class (one open batch per class: open while any item waits for a
  decision; the next is opened when every item is decided), with their bytes and the reason (age, policy,
  record class);
* a Legal approver (retention.approval.is_approver) approves or excludes items, each with a reason
  (:func:`decide`); a decision is written once and never changed;
* the run deletes approved items only, and only if, at the moment of deletion, under the deletion gate
  (holds.models.DeletionGate), the recording is still expired and no hold covers it. An approval that fails
  that check lapses (a permanent decision of its own) and the recording goes back to review in the open
  batch; an excluded recording is never deleted by its batch and is not proposed again. Each deletion
  certificate names the batch, the item and the approver.

Batches, items and decisions are permanent records in the custody ledger. Switching a class's review off
returns its recordings to ordinary retention (excluded ones included): the switch is the customer's policy.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Max, Q, QuerySet

from recordings import ledger
from recordings.models import Recording, RecordingQuerySet
from recordings.pipeline.workqueue import release
from retention.approval import is_approver
from retention.models import DispositionBatch, DispositionDecision, DispositionItem, RetentionPolicy

CHUNK = 1000
Decision = DispositionDecision.Decision
REVIEW, LAPSE = DispositionDecision.REVIEW, DispositionDecision.LAPSE


def reviewed_classes() -> list[str]:
    return list(dict.fromkeys(settings.VICIREC_REVIEW_CLASSES))


def class_condition(keys: Iterable[str]) -> Q | None:
    """Recordings whose effective policy (their campaign's, else the default) has one of these record classes;
    None when no policy does (two queries over the policies)."""
    keys = set(keys)
    if not keys:
        return None
    default, explicit = RetentionPolicy.objects.for_campaign_ids()
    condition = Q(campaign_id__in=[cid for cid, p in explicit.items() if p.record_class in keys])
    if default.record_class in keys:
        condition |= Q(campaign__isnull=True) | ~Q(campaign_id__in=list(explicit))
    return condition


def reviewed_condition() -> Q | None:
    """Recordings of a reviewed record class, or None when no class is reviewed."""
    return class_condition(reviewed_classes())


def live_approvals() -> QuerySet[DispositionItem]:
    """Items approved by a Legal approver whose approval has not lapsed."""
    return DispositionItem.objects.filter(decisions__step=REVIEW, decisions__decision=Decision.APPROVE).exclude(
        decisions__step=LAPSE
    )


def undecided() -> QuerySet[DispositionItem]:
    return DispositionItem.objects.exclude(decisions__step=REVIEW)


def restrict(deletable: RecordingQuerySet) -> RecordingQuerySet:
    """Of what retention would delete, what it may delete: recordings of classes not reviewed, and those with
    a live approval."""
    reviewed = reviewed_condition()
    if reviewed is None:
        return deletable
    return deletable.filter(~reviewed | Q(pk__in=live_approvals().values("recording_id")))


def awaiting_review() -> int:
    """Recordings in a disposition batch that wait for a decision."""
    return undecided().values("recording_id").distinct().count()


# --- building the batches --------------------------------------------------------------------------------


def _open_batch(record_class: str) -> DispositionBatch | None:
    return (
        DispositionBatch.objects.filter(record_class=record_class, pk__in=undecided().values("batch_id"))
        .order_by("-number")
        .first()
    )


def _reason(recording: Recording, policy: RetentionPolicy, now: datetime) -> str:
    age = (now - recording.start_time).days if recording.start_time else None
    klass = policy.klass
    floor = f"legal minimum {klass.floor_days} days" if klass.floor_years else "no legal minimum"
    return (f"{age} days old; {policy} keeps {policy.retain_days} days; {klass.label} ({floor}); not held when added")[
        :500
    ]


def build_batches(deletable: RecordingQuerySet, *, now: datetime, token: str) -> int:
    """Add every deletable recording of a reviewed class that is not in review yet (no item, or only lapsed
    ones; an excluded recording stays out) to the open batch of its class; returns how many were added."""
    added = 0
    in_review = DispositionItem.objects.exclude(decisions__step=LAPSE).values("recording_id")
    default, policies = RetentionPolicy.objects.for_campaign_ids()
    for record_class in reviewed_classes():
        condition = class_condition([record_class])
        due = deletable.filter(condition).exclude(pk__in=in_review).order_by("recording_id")
        cursor = 0
        while True:
            chunk = list(due.filter(recording_id__gt=cursor).select_related("campaign")[:CHUNK])
            if not chunk:
                break
            cursor = chunk[-1].recording_id
            with transaction.atomic():
                batch = _open_batch(record_class)
                if batch is None:
                    top = DispositionBatch.objects.filter(record_class=record_class).aggregate(n=Max("number"))["n"]
                    batch = DispositionBatch.objects.create(
                        record_class=record_class, number=(top or 0) + 1, opened_at=now, run=token
                    )
                    ledger.append_rows("disposition_batch", [batch.pk])
                items = DispositionItem.objects.bulk_create(
                    DispositionItem(
                        batch=batch,
                        recording=r,
                        added_at=now,
                        run=token,
                        bytes=r.stored_size or r.original_size or 0,
                        call_time=r.start_time,
                        reason=_reason(r, policies.get(r.campaign_id or 0, default), now),
                    )
                    for r in chunk
                )
                pks = [i.pk for i in items] or list(
                    DispositionItem.objects.filter(batch=batch, recording__in=chunk).values_list("pk", flat=True)
                )
                ledger.append_rows("disposition_item", pks)
            added += len(chunk)
    return added


# --- deciding --------------------------------------------------------------------------------------------


def decide(
    items: Iterable[DispositionItem], *, approver: Any, decision: str, reason: str, now: datetime
) -> list[DispositionDecision]:
    """A Legal approver approves (or excludes) items, with a reason. Items already decided are left as they
    were (a decision is never changed); returns the decisions written."""
    if not is_approver(approver):
        raise PermissionDenied("Approving or excluding recordings of a disposition batch needs a Legal approver.")
    if decision not in (Decision.APPROVE, Decision.EXCLUDE):
        raise ValidationError(f"A reviewer approves or excludes, not {decision!r}.")
    if not reason.strip():
        raise ValidationError("A disposition decision needs a reason.")
    pks = [item.pk for item in items]
    with transaction.atomic():
        fresh = list(undecided().filter(pk__in=pks).select_for_update().values_list("pk", flat=True))
        made = DispositionDecision.objects.bulk_create(
            DispositionDecision(
                item_id=pk,
                step=REVIEW,
                decision=decision,
                decided_by=approver,
                decided_by_name=approver.get_username(),
                reason=reason.strip(),
                at=now,
            )
            for pk in fresh
        )
        if fresh:
            ledger.append_rows(
                "disposition_decision",
                DispositionDecision.objects.filter(item_id__in=fresh, step=REVIEW).values_list("pk", flat=True),
            )
    return made


# --- at the moment of deletion ---------------------------------------------------------------------------


def _lapse(items: list[DispositionItem], *, why: str, now: datetime, actor: str) -> None:
    if not items:
        return
    DispositionDecision.objects.bulk_create(
        DispositionDecision(item=item, step=LAPSE, decision=Decision.LAPSED, decided_by_name=actor, reason=why, at=now)
        for item in items
    )
    ledger.append_rows(
        "disposition_decision",
        DispositionDecision.objects.filter(item__in=items, step=LAPSE).values_list("pk", flat=True),
    )


def lapse_held(*, now: datetime, actor: str) -> int:
    """Approvals of recordings an active hold covers now lapse: the hold wins, and once it is released the
    recording goes back to review instead of being deleted on a decision made before the hold."""
    approved = live_approvals()
    held = Recording.objects.filter(pk__in=approved.values("recording_id")).held().values("pk")
    items = list(approved.filter(recording_id__in=held))
    _lapse(items, why="a legal hold covers it: back to review once no hold covers it", now=now, actor=actor)
    return len(items)


def at_deletion(
    batch: list[Recording], held: list[Recording], *, token: str, now: datetime, actor: str
) -> tuple[list[Recording], dict[int, dict[str, Any]], int]:
    """Inside the deletion gate's transaction, after the hold check: keep the recordings that may go now.

    A recording of a reviewed class goes only with a live approval and only if it is still expired; an
    approval of a recording held now or no longer expired lapses. Returns the recordings that may go, the
    review each deletion certificate names (by recording), and how many were given back."""
    if not reviewed_classes():
        return batch, {}, 0  # no class reviewed: ordinary retention, not one query more
    ids = [r.pk for r in batch] + [r.pk for r in held]
    approvals = {
        item.recording_id: item
        for item in live_approvals().filter(recording_id__in=ids).select_related("batch").prefetch_related("decisions")
    }
    _lapse(
        [approvals[r.pk] for r in held if r.pk in approvals],
        why="held at the moment of deletion: back to review once no hold covers it",
        now=now,
        actor=actor,
    )
    reviewed = reviewed_condition()
    of_reviewed = set()
    if reviewed is not None:
        of_reviewed = set(
            Recording.objects.filter(pk__in=[r.pk for r in batch]).filter(reviewed).values_list("pk", flat=True)
        )
    approved_ids = [r.pk for r in batch if r.pk in approvals]
    still_expired = set(Recording.objects.filter(pk__in=approved_ids).expired(now).values_list("pk", flat=True))
    lapsed = [approvals[pk] for pk in approved_ids if pk not in still_expired]
    _lapse(lapsed, why="no longer expired at the moment of deletion: back to review", now=now, actor=actor)
    keep: list[Recording] = []
    review: dict[int, dict[str, Any]] = {}
    given_back = 0
    for recording in batch:
        item = approvals.get(recording.pk)
        if item is not None and recording.pk in still_expired:
            approval = next(d for d in item.decisions.all() if d.step == REVIEW)
            review[recording.pk] = {
                "batch": item.batch_id,
                "batch_name": str(item.batch),
                "item": item.pk,
                "approved_by": approval.decided_by_name,
                "approved_at": approval.at.isoformat(),
                "reason": approval.reason,
            }
            keep.append(recording)
        elif item is None and recording.pk not in of_reviewed:
            keep.append(recording)
        else:
            given_back += 1
            release(recording, token=token)
    return keep, review, given_back
