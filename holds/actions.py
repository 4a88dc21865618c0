"""Placing and releasing legal holds, with history (who, when, why) and, where the bucket has S3 Object
Lock, the matching per-object legal hold. R2 has no per-object legal hold: there vicirec's own checks are
the guard, and set_legal_hold simply reports that the target does not support it."""

from __future__ import annotations

from collections.abc import Iterable

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from holds.models import Case, LegalHold
from recordings.models import Campaign, Recording
from recordings.pipeline.target import get_target
from vicirec import clock
from vicirec.actors import Actor


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
    with transaction.atomic():
        hold.save()
        if ids:
            _stamp(hold, actor, f"recordings put on hold: {reason}")
            hold.recordings.add(*ids)
    apply_object_locks(Recording.objects.filter(hold.condition()), on=True)
    return hold


def release_hold(hold: LegalHold, *, reason: str, actor: Actor) -> LegalHold:
    """Release a hold (needs holds.release_legalhold); what no other hold covers becomes deletable again."""
    if actor.user is not None and not actor.user.has_perm("holds.release_legalhold"):
        raise PermissionDenied("Releasing a legal hold needs the 'Can release legal holds' permission.")
    if not reason.strip():
        raise ValidationError("Releasing a legal hold needs a reason.")
    if hold.released_at is not None:
        raise ValidationError(f"{hold} was already released on {hold.released_at:%Y-%m-%d %H:%M}.")
    covered = list(Recording.objects.filter(hold.condition()).stored().values_list("pk", flat=True))
    hold.released_at = clock.now()
    hold.released_by = actor.user
    hold.released_by_name = actor.name
    hold.release_reason = reason.strip()
    _stamp(hold, actor, f"hold released: {reason}")
    with transaction.atomic():  # the release and its history row's custody-ledger entry commit together
        hold.save()
    still_held = set(Recording.objects.filter(pk__in=covered).held().values_list("pk", flat=True))
    apply_object_locks(Recording.objects.filter(pk__in=[pk for pk in covered if pk not in still_held]), on=False)
    return hold


def apply_object_locks(recordings, *, on: bool) -> int:  # type: ignore[no-untyped-def]
    """Set or clear the bucket's per-object legal hold on stored recordings; returns how many were set.

    Stops at the first "not supported" answer (filesystem target, R2, a bucket without Object Lock).
    """
    target = get_target()
    done = 0
    stored = recordings.stored().exclude(object_key="").values_list("object_key", "version_id")
    for key, version_id in stored.iterator(chunk_size=1000):
        if not target.set_legal_hold(key, version_id, on):
            break
        done += 1
    return done
