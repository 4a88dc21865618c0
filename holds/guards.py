"""While a hold is active, what it covers only grows: the ORM refuses every change that would narrow it.

Narrowing a held case (removing a recording, removing a criterion value, adding a value to an empty
criterion, moving a date bound inwards, removing every criterion) or taking recordings off an active hold
is a release of that part. It is allowed only inside ``releasing()``, which holds.actions enters after it
has checked the release permission and a reason, and where it records the partial release. A save, an
m2m add/remove/clear or a delete from anywhere else (admin, shell, a command, a bulk action) raises
HoldIsActive. Changing an active hold's scope, case or campaign, releasing it without release_hold, or
deleting it is refused outright: release it and place another.

Connected in HoldsConfig.ready().
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db.models.signals import m2m_changed, pre_delete, pre_save

from holds.models import Case, LegalHold, until_end

_authorized: ContextVar[bool] = ContextVar("hold_release_authorized", default=False)
LIST_CRITERIA = {"phone_numbers": "phone numbers", "lead_ids": "lead ids", "agents": "agents", "campaigns": "campaigns"}


class HoldIsActive(PermissionDenied):
    """A change that would narrow an active legal hold, made outside holds.actions."""


@contextmanager
def releasing() -> Iterator[None]:
    """Let narrowing changes through: only for holds.actions, after the permission and reason checks."""
    token = _authorized.set(True)
    try:
        yield
    finally:
        _authorized.reset(token)


def snapshot(case: Case) -> dict[str, Any]:
    """What decides a case's coverage, in comparable form (values of a criterion as a set of strings)."""
    saved = case.pk is not None
    return {
        "phone_numbers": {str(v) for v in case.phone_numbers or []},
        "lead_ids": {str(v) for v in case.lead_ids or []},
        "agents": {str(v) for v in case.agents or []},
        "campaigns": {str(v) for v in case.campaigns.values_list("pk", flat=True)} if saved else set(),
        "calls_from": case.calls_from,
        "calls_until": case.calls_until,
        "recordings": {str(v) for v in case.recordings.values_list("pk", flat=True)} if saved else set(),
    }


def proposed(old: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """The snapshot after ``changes`` (field values; recordings and campaigns as objects or ids)."""
    new = dict(old)
    for key, value in changes.items():
        if key in ("calls_from", "calls_until"):
            new[key] = value
        elif key in old:  # a list criterion, recordings or campaigns
            new[key] = {str(getattr(v, "pk", v)) for v in value or []}
    return new


def _has_criteria(state: dict[str, Any]) -> bool:
    return any(state[key] for key in LIST_CRITERIA) or bool(state["calls_from"] or state["calls_until"])


def narrowing(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The changes from ``old`` to ``new`` (snapshots) that make the case cover less, in words; [] if none.
    Values of one criterion are alternatives and criteria AND together, so removing a value narrows, adding
    a value to an empty criterion narrows, and emptying a criterion widens (unless it was the last one)."""
    found: list[str] = []
    for key, label in LIST_CRITERIA.items():
        before, after = old[key], new[key]
        if after and not before:
            found.append(f"{label} added as a new criterion ({', '.join(sorted(after))})")
        elif after and before - after:
            found.append(f"{label} removed ({', '.join(sorted(before - after))})")
    if new["calls_from"] and (not old["calls_from"] or new["calls_from"] > old["calls_from"]):
        found.append(f"calls from moved to {new['calls_from']:%Y-%m-%d %H:%M}")
    if new["calls_until"] and (
        not old["calls_until"] or until_end(new["calls_until"])[0] < until_end(old["calls_until"])[0]
    ):
        found.append(f"calls until moved to {new['calls_until']:%Y-%m-%d %H:%M}")
    if _has_criteria(old) and not _has_criteria(new):
        found.append("every criterion removed (the case would match only its hand-picked recordings)")
    removed = old["recordings"] - new["recordings"]
    if removed:
        found.append(f"recordings removed ({', '.join(sorted(removed, key=int)[:20])})")
    return found


def _refuse(what: str) -> None:
    raise HoldIsActive(
        f"{what}. While a legal hold is active what it covers can only grow: this is a release of part of "
        "the hold and needs the 'Can release legal holds' permission and a reason."
    )


def _held_case_ids(case_ids: Any) -> set[int]:
    return set(LegalHold.objects.active().filter(case_id__in=list(case_ids)).values_list("case_id", flat=True))


def _case_pre_save(sender: Any, instance: Case, raw: bool = False, **kwargs: Any) -> None:
    if raw or instance.pk is None or _authorized.get() or not _held_case_ids([instance.pk]):
        return
    stored = Case.objects.filter(pk=instance.pk).first()
    if stored is None:
        return
    old = snapshot(stored)
    changes = narrowing(old, {**snapshot(instance), "campaigns": old["campaigns"], "recordings": old["recordings"]})
    if changes:
        _refuse(f"Case {stored} is under an active legal hold; refused: {'; '.join(changes)}")


def _case_recordings_changed(sender: Any, instance: Any, action: str, reverse: bool, pk_set: Any, **kw: Any) -> None:
    if action not in ("pre_remove", "pre_clear") or _authorized.get():
        return
    case_ids = [instance.pk] if not reverse else pk_set or instance.cases.values_list("pk", flat=True)
    if _held_case_ids(case_ids):
        _refuse("Removing recordings from a case under an active legal hold is refused")


def _case_campaigns_changed(sender: Any, instance: Any, action: str, reverse: bool, pk_set: Any, **kw: Any) -> None:
    if action not in ("pre_add", "pre_remove", "pre_clear") or _authorized.get():
        return
    if reverse:  # campaign.cases.add/remove/clear: the cases are in pk_set (clear: all of the campaign's)
        cases = list(Case.objects.filter(pk__in=pk_set if pk_set is not None else instance.cases.values("pk")))
    else:
        cases = [instance]
    for case in cases:
        if not _held_case_ids([case.pk]):
            continue
        old = snapshot(case)
        ids = {str(instance.pk)} if reverse else {str(pk) for pk in pk_set or ()}
        if action == "pre_add":
            after = old["campaigns"] | ids
        elif action == "pre_clear" and not reverse:
            after = set()
        else:
            after = old["campaigns"] - ids
        changes = narrowing(old, {**old, "campaigns": after})
        if changes:
            _refuse(f"Case {case} is under an active legal hold; refused: {'; '.join(changes)}")


def _hold_recordings_changed(sender: Any, instance: Any, action: str, reverse: bool, pk_set: Any, **kw: Any) -> None:
    if action not in ("pre_remove", "pre_clear") or _authorized.get():
        return
    hold_ids = [instance.pk] if not reverse else pk_set or instance.legal_holds.values_list("pk", flat=True)
    if LegalHold.objects.active().filter(pk__in=list(hold_ids)).exists():
        _refuse("Taking recordings off an active legal hold is refused")


def _hold_pre_save(sender: Any, instance: LegalHold, raw: bool = False, **kwargs: Any) -> None:
    if raw or instance.pk is None or _authorized.get():
        return
    stored = LegalHold.objects.filter(pk=instance.pk).values("scope", "case_id", "campaign_id", "released_at").first()
    if stored is None or stored["released_at"] is not None:
        return
    if any(stored[f] != getattr(instance, f) for f in ("scope", "case_id", "campaign_id")):
        raise HoldIsActive(f"{instance} is active: its scope, case and campaign cannot change (release it first).")
    if instance.released_at is not None:
        raise HoldIsActive(f"{instance} is released only through release_hold (permission, reason, history).")


def _hold_pre_delete(sender: Any, instance: LegalHold, **kwargs: Any) -> None:
    if instance.released_at is None:
        raise HoldIsActive(f"{instance} is active: a hold is released, never deleted.")


def connect() -> None:
    pre_save.connect(_case_pre_save, sender=Case, dispatch_uid="holds.guard.case")
    pre_save.connect(_hold_pre_save, sender=LegalHold, dispatch_uid="holds.guard.hold")
    pre_delete.connect(_hold_pre_delete, sender=LegalHold, dispatch_uid="holds.guard.hold_delete")
    m2m_changed.connect(_case_recordings_changed, sender=Case.recordings.through, dispatch_uid="holds.guard.cr")
    m2m_changed.connect(_case_campaigns_changed, sender=Case.campaigns.through, dispatch_uid="holds.guard.cc")
    m2m_changed.connect(_hold_recordings_changed, sender=LegalHold.recordings.through, dispatch_uid="holds.guard.hr")
