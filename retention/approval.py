"""Does a policy change shorten the retention that applies to any recording? And who may approve it?

One answer for every way a policy changes (the admin, the proposal flow, ``set_policy``, plain ORM code):
the change is compared with the *effective* policy of every scope it touches today — a campaign's own
policy, else the default policy (else the configured default, before the default row exists). So a new
campaign policy, a policy moved to another campaign (the old campaign falls back to the default), a
deleted policy, a record class with a lower legal minimum and a shorter default (which covers every campaign
without its own policy) all count as shortening.

``RetentionPolicy.save()`` and ``delete()`` call :func:`guard`: a shortening needs ``approved_by`` naming an
active user with :data:`APPROVE_PERMISSION` (a Legal approver) and a reason, and both go into the policy's
history. Queryset ``update()``/``delete()``/``bulk_create()`` write no history, so they refuse a shortening
outright: shorten through ``save()``/``delete()`` of each policy.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Q

from retention import classes

APPROVE_PERMISSION = "retention.approve_policy_override"
Scope = int | None  # a campaign's primary key, or None for the default policy


@dataclass(frozen=True)
class Terms:
    """What a policy promises: how long recordings are kept, and the legal minimum of its record class."""

    retain_days: int
    record_class: str

    @property
    def floor_days(self) -> int:
        return classes.get(self.record_class).floor_days


@dataclass(frozen=True)
class Shortening:
    """One scope whose effective retention a change shortens."""

    campaign_id: Scope
    before: Terms
    after: Terms

    def __str__(self) -> str:
        where = (
            "the default policy (every campaign without its own)"
            if self.campaign_id is None
            else (f"campaign #{self.campaign_id}")
        )
        parts = []
        if self.after.retain_days < self.before.retain_days:
            parts.append(f"{self.before.retain_days} → {self.after.retain_days} days")
        if self.after.floor_days < self.before.floor_days:
            parts.append(f"record class {self.before.record_class} → {self.after.record_class} (lower legal minimum)")
        return f"{where}: {', '.join(parts)}"


class ApprovalRequired(ValidationError):
    """A change that shortens retention, made without a Legal approver's approval."""

    def __init__(self, changes: list[Shortening], message: str) -> None:
        super().__init__(message)
        self.changes = changes


def _terms(policy: Any) -> Terms:
    return Terms(retain_days=policy.retain_days, record_class=policy.record_class)


def _configured_default() -> Terms:
    return Terms(retain_days=settings.VICIREC_DEFAULT_RETAIN_DAYS, record_class="general")


def _effective(snapshot: dict[Scope, Terms], scope: Scope) -> Terms:
    return snapshot.get(scope) or snapshot.get(None) or _configured_default()


def diff(model: Any, old_rows: Iterable[Any], new_rows: Iterable[Any]) -> list[Shortening]:
    """The shortenings of replacing the stored ``old_rows`` by ``new_rows`` (unsaved states; none: a deletion)."""
    old_rows, new_rows = list(old_rows), list(new_rows)
    scopes = {row.campaign_id for row in old_rows} | {row.campaign_id for row in new_rows}
    stored = model._default_manager.filter(Q(campaign_id__in=[s for s in scopes if s]) | Q(campaign=None))
    before = {row.campaign_id: _terms(row) for row in stored}
    after = dict(before)
    for row in old_rows:
        after.pop(row.campaign_id, None)
    after.update({row.campaign_id: _terms(row) for row in new_rows})
    changes = []
    for scope in sorted(scopes, key=lambda s: -1 if s is None else s):
        old, new = _effective(before, scope), _effective(after, scope)
        if new.retain_days < old.retain_days or new.floor_days < old.floor_days:
            changes.append(Shortening(scope, old, new))
    return changes


def shortenings(policy: Any, *, deleting: bool = False) -> list[Shortening]:
    """What saving (or deleting) ``policy`` in its present, unsaved state would shorten."""
    model = type(policy)
    stored = model._default_manager.filter(pk=policy.pk).first() if policy.pk else None
    return diff(model, [stored] if stored else [], [] if deleting else [policy])


def is_approver(user: Any) -> bool:
    return bool(user is not None and user.is_active and user.has_perm(APPROVE_PERMISSION))


def approvers() -> list[str]:
    """User names of the active users who may approve a shortening (directly, by group, or superusers)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission

    app_label, codename = APPROVE_PERMISSION.split(".")
    permission = Permission.objects.filter(content_type__app_label=app_label, codename=codename).first()
    holds = Q(is_superuser=True)
    if permission is not None:
        holds |= Q(groups__permissions=permission) | Q(user_permissions=permission)
    users = get_user_model().objects.filter(holds, is_active=True).distinct().order_by("username")
    return [user.get_username() for user in users]


def describe(changes: list[Shortening]) -> str:
    """The shortenings in words, campaigns named by their VICIdial id."""
    from django.apps import apps

    campaign_ids = [c.campaign_id for c in changes if c.campaign_id is not None]
    names = dict(
        apps.get_model("recordings", "Campaign").objects.filter(pk__in=campaign_ids).values_list("pk", "campaign_id")
    )
    return "; ".join(
        str(c).replace(f"campaign #{c.campaign_id}:", f"campaign {names[c.campaign_id]}:", 1)
        if c.campaign_id in names
        else str(c)
        for c in changes
    )


def refusal(changes: list[Shortening]) -> ApprovalRequired:
    return ApprovalRequired(
        changes,
        f"This change shortens retention ({describe(changes)}) and needs a Legal approver: file it as a policy "
        "proposal, or have an approver make it.",
    )


def guard(policy: Any, *, approved_by: Any, reason: str, deleting: bool = False) -> list[Shortening]:
    """Refuse a shortening without an approver and a reason; an approved one is recorded in the history as
    made by the approver, with the reason."""
    changes = shortenings(policy, deleting=deleting)
    if not changes:
        return changes
    if not is_approver(approved_by):
        raise refusal(changes)
    if not reason.strip():
        raise ValidationError("A change that shortens retention needs a reason (kept in the policy's history).")
    policy._history_user = approved_by
    policy._change_reason = reason[:100]
    return changes


def forget(policy: Any) -> None:
    """Drop the history user and reason of the last save, so a later save never reuses an approval."""
    for name in ("_history_user", "_change_reason"):
        policy.__dict__.pop(name, None)


def guard_bulk(queryset: Any, values: dict[str, Any] | None) -> None:
    """Refuse a queryset ``update(**values)`` (or, with None, ``delete()``) that shortens retention."""
    values = values or {}
    if {"campaign", "campaign_id", "scope"} & set(values):
        raise ValidationError("Move a policy to another campaign with save(), which keeps its scope and history.")
    if values and not {"retain_days", "record_class"} & set(values):
        return
    if any(hasattr(value, "resolve_expression") for value in values.values()):
        raise ValidationError("Change retention with plain values through save(), so the change can be checked.")
    old_rows = list(queryset.model._default_manager.filter(pk__in=queryset.values("pk")))
    new_rows = [queryset.model(**{**_fields(row), **values}) for row in old_rows] if values else []
    changes = diff(queryset.model, old_rows, new_rows)
    if changes:
        raise refusal(changes)


def _fields(row: Any) -> dict[str, Any]:
    return {"campaign_id": row.campaign_id, "retain_days": row.retain_days, "record_class": row.record_class}
