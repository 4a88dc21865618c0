"""Placing and releasing legal holds, with history (who, when, why) and, where the bucket has S3 Object
Lock, the matching per-object legal hold. R2 has no per-object legal hold: there vicirec's own checks are
the guard, and set_legal_hold simply reports that the target does not support it."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import QuerySet

from holds.guards import narrowing, proposed, releasing, snapshot
from holds.models import Case, DeletionGate, LegalHold, PartialRelease
from recordings.lib.storage import StorageError
from recordings.models import Campaign, Recording
from recordings.pipeline.erasure import carry_out_after_release
from recordings.pipeline.target import get_target
from vicirec import clock
from vicirec.actors import Actor

log = logging.getLogger("vicirec.holds")


def _stamp(instance: object, actor: Actor, reason: str) -> None:
    instance._history_user = actor.user  # type: ignore[attr-defined]
    instance._change_reason = f"{reason} [{actor.name}]"[:100]  # type: ignore[attr-defined]


def place_hold(
    *,
    reason: str,
    actor: Actor,
    recording_ids: Iterable[int] = (),
    campaign: Campaign | None = None,
    case: Case | None = None,
) -> LegalHold:
    """Place one hold on recordings picked by hand, a case, or a campaign (exactly one of them)."""
    ids = sorted(set(recording_ids))
    chosen = [bool(ids), campaign is not None, case is not None]
    if sum(chosen) != 1:
        raise ValidationError("A hold covers exactly one of: recordings, a campaign, a case.")
    if not reason.strip():
        raise ValidationError("A legal hold needs a reason.")
    scope = LegalHold.Scope.RECORDINGS if ids else LegalHold.Scope.CAMPAIGN if campaign else LegalHold.Scope.CASE
    if ids:
        found = set(Recording.objects.filter(pk__in=ids).values_list("pk", flat=True))
        unknown = [i for i in ids if i not in found]
        if unknown:
            raise ValidationError(f"No recording with id {', '.join(map(str, unknown[:10]))} in the catalog.")
    hold = LegalHold(
        scope=scope,
        campaign=campaign,
        case=case,
        reason=reason.strip(),
        placed_at=clock.now(),
        placed_by=actor.user,
        placed_by_name=actor.name,
    )
    hold.full_clean()
    _stamp(hold, actor, f"hold placed: {reason}")
    with DeletionGate.closed():  # committed before a retention batch's last check, or after its deletions
        hold.save()
        if case is not None:  # pin what the case covers now: it stays covered until this hold is released
            ids = list(Recording.objects.filter(case.covered()).with_copies().values_list("pk", flat=True))
        if ids:
            _stamp(hold, actor, f"recordings put on hold: {reason}")
            hold.recordings.add(*ids)
    try:
        apply_object_locks(Recording.objects.filter(hold.covered()), on=True)
    except StorageError as exc:
        # The hold is committed and every stage honours it; only the bucket's own copy of it is missing.
        # verify_archive reports that drift until a later placement or check sets it.
        hold.object_lock_problem = exc.message  # type: ignore[attr-defined]
        log.warning("hold #%s is in place, but the bucket refused its Object Lock legal hold: %s", hold.pk, exc.message)
    return hold


def release_hold(hold: LegalHold, *, reason: str, actor: Actor) -> LegalHold:
    """Release a hold (needs holds.release_legalhold); what no other hold covers becomes deletable again."""
    check_release(actor, reason)
    if hold.released_at is not None:
        raise ValidationError(f"{hold} was already released on {hold.released_at:%Y-%m-%d %H:%M}.")
    refused_ids = list(_refused_erasures().values_list("recording_id", flat=True))
    refused = list(Recording.objects.filter(pk__in=refused_ids).filter(hold.condition()).values_list("pk", flat=True))
    hold.released_at = clock.now()
    hold.released_by = actor.user
    hold.released_by_name = actor.name
    hold.release_reason = reason.strip()
    _stamp(hold, actor, f"hold released: {reason}")
    with transaction.atomic(), releasing():  # the release and its history's ledger entry commit together
        hold.save()
    unlock_unheld(Recording.objects.filter(hold.covered()).stored())  # its coverage as it was left
    carry_out_after_release(refused, now=clock.now())  # erasures this hold refused, if no other hold covers them
    return hold


def _refused_erasures():  # type: ignore[no-untyped-def]
    from retention.models import ErasureItem

    return ErasureItem.objects.filter(status=ErasureItem.Status.REFUSED)


def check_release(actor: Actor, reason: str) -> None:
    """A release, whole or partial, needs holds.release_legalhold (a command run without --user acts as
    the machine's operator) and a reason."""
    if actor.user is not None and not actor.user.has_perm("holds.release_legalhold"):
        raise PermissionDenied("Releasing a legal hold needs the 'Can release legal holds' permission.")
    if not reason.strip():
        raise ValidationError("Releasing a legal hold needs a reason.")


def unlock_unheld(recordings: Iterable[int] | QuerySet) -> None:
    """Clear the bucket's legal hold on those of the recordings (ids, or a queryset read in key order) that
    no active hold covers any more, a batch at a time (LOCK_BATCH), up to the first answer that the target
    has no per-object legal hold: a target without them costs one batch, whatever the hold covered."""
    for chunk in _batches(recordings):
        still_held = set(Recording.objects.filter(pk__in=chunk).held().values_list("pk", flat=True))
        free = Recording.objects.filter(pk__in=[pk for pk in chunk if pk not in still_held])
        if not _set_locks(free, on=False)[1]:
            return


CASE_FIELDS = ("name", "external_reference", "description", "phone_numbers", "lead_ids", "agents")
CASE_FIELDS += ("calls_from", "calls_until")


def change_case(case: Case, *, actor: Actor, reason: str = "", **changes: Any) -> list[PartialRelease]:
    """Change a case: fields of CASE_FIELDS, ``recordings`` and ``campaigns`` (the whole new sets, as ids or
    objects). Widening is free; a change that narrows a case under an active hold releases that part of each
    such hold: it needs the release permission and a reason, unpins what it gives up, and leaves a
    PartialRelease and a history entry on the hold. Returns the partial releases (none if nothing narrowed)."""
    unknown = set(changes) - set(CASE_FIELDS) - {"recordings", "campaigns"}
    if unknown:
        raise ValidationError(f"A case has no field {', '.join(sorted(unknown))}.")
    m2m = {k: [getattr(v, "pk", v) for v in changes.pop(k)] for k in ("recordings", "campaigns") if k in changes}
    with transaction.atomic():
        case = Case.objects.select_for_update().get(pk=case.pk)
        old = snapshot(case)
        new = proposed(old, {**changes, **m2m})
        narrowed = narrowing(old, new)
        holds = list(case.holds.filter(released_at__isnull=True)) if narrowed else []
        if holds:
            check_release(actor, reason)
        before = {h.pk: _covered(h) for h in holds}
        with releasing():
            _apply_case(case, actor, reason or "case changed", changes, m2m)
            released = [_release_part_of(h, before[h.pk], narrowed, actor=actor, reason=reason) for h in holds]
    for part in released:
        unlock_unheld(part.recording_ids)
        carry_out_after_release(part.recording_ids, now=clock.now())
    return released


def _covered(hold: LegalHold) -> set[int]:
    return set(Recording.objects.filter(hold.covered()).with_copies().values_list("pk", flat=True))


def _apply_case(case: Case, actor: Actor, reason: str, changes: dict[str, Any], m2m: dict[str, list]) -> None:
    for key, value in changes.items():
        setattr(case, key, value)
    _stamp(case, actor, f"case changed: {reason}")
    case.save()
    for key, ids in m2m.items():
        _stamp(case, actor, f"case changed: {reason}")
        getattr(case, key).set(ids)


def _release_part_of(
    hold: LegalHold, before: set[int], narrowed: list[str], *, actor: Actor, reason: str
) -> PartialRelease:
    """Inside ``releasing()``: what the hold's case no longer covers is unpinned and recorded as released."""
    assert hold.case is not None
    now_covered = set(
        Recording.objects.filter(pk__in=before).filter(hold.case.condition()).values_list("pk", flat=True)
    )
    freed = sorted(before - now_covered)
    if freed:
        _stamp(hold, actor, f"part released: {reason}")
        hold.recordings.remove(*freed)
    _stamp(hold, actor, f"part released: {reason}")
    hold.save()  # a history entry naming who and why, like a release
    return PartialRelease.objects.create(
        hold=hold,
        released_at=clock.now(),
        released_by=actor.user,
        released_by_name=actor.name,
        reason=reason.strip(),
        change="; ".join(narrowed),
        recording_ids=freed,
    )


def release_part(hold: LegalHold, *, recording_ids: Iterable[int], actor: Actor, reason: str) -> PartialRelease:
    """Take recordings picked by hand off an active hold (a hold on recordings): a release of that part."""
    ids = sorted(set(recording_ids))
    if hold.scope != LegalHold.Scope.RECORDINGS:
        raise ValidationError(f"{hold} covers a {hold.scope}: change the case (or release the hold) instead.")
    if not hold.is_active:
        raise ValidationError(f"{hold} is already released.")
    check_release(actor, reason)
    with transaction.atomic(), releasing():
        _stamp(hold, actor, f"part released: {reason}")
        hold.recordings.remove(*ids)
        hold.save()
        part = PartialRelease.objects.create(
            hold=hold,
            released_at=clock.now(),
            released_by=actor.user,
            released_by_name=actor.name,
            reason=reason.strip(),
            change=f"recordings taken off the hold ({', '.join(map(str, ids[:20]))})",
            recording_ids=ids,
        )
    unlock_unheld(ids)
    carry_out_after_release(ids, now=clock.now())
    return part


LOCK_BATCH = 1000


def _batches(recordings: Iterable[int] | QuerySet) -> Iterator[list[int]]:
    if not isinstance(recordings, QuerySet):
        ids = sorted(set(recordings))
        yield from (ids[start : start + LOCK_BATCH] for start in range(0, len(ids), LOCK_BATCH))
        return
    keys, last = recordings.order_by("pk").values_list("pk", flat=True), None
    while True:
        batch = list((keys.filter(pk__gt=last) if last is not None else keys)[:LOCK_BATCH])
        if batch:
            yield batch
        if len(batch) < LOCK_BATCH:
            return
        last = batch[-1]


def apply_object_locks(recordings, *, on: bool) -> int:  # type: ignore[no-untyped-def]
    """Set or clear the bucket's per-object legal hold on stored recordings; returns how many were set.

    Stops at the first "not supported" answer (filesystem target, R2, a bucket without Object Lock).
    """
    return _set_locks(recordings, on=on)[0]


def _set_locks(recordings, *, on: bool) -> tuple[int, bool]:  # type: ignore[no-untyped-def]
    """(how many were set, whether the target supports it). The recordings are read LOCK_BATCH at a time
    in key order, so a target without legal holds costs one batch, not a read of all of them."""
    target = get_target()
    done, last = 0, None
    stored = recordings.stored().exclude(object_key="").order_by("pk")
    while True:
        rows = stored.filter(pk__gt=last) if last is not None else stored
        batch = list(rows.values_list("pk", "object_key", "version_id")[:LOCK_BATCH])
        for _, key, version_id in batch:
            if not target.set_legal_hold(key, version_id, on):
                return done, False
            done += 1
        if len(batch) < LOCK_BATCH:
            return done, True
        last = batch[-1][0]
