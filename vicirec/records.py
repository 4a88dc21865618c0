"""Permanent records: rows that are written once and never changed or removed.

The custody log, the access log, deletion certificates and the change history of policies, holds, cases,
campaigns and recordings are evidence. Their models refuse ``save()`` of an existing row and ``delete()``,
their querysets refuse ``update()`` and ``delete()``, and their admins offer no change or delete. A
history row also keeps the acting username as text (``history_username``), so it still says who made a
change if the user row ever went away; users who made history are deactivated, never deleted.
What this cannot stop is SQL run directly against the database: the signed custody checkpoints exist for
that.
"""

from __future__ import annotations

import re
from typing import Any, NoReturn

from django.core.exceptions import ValidationError
from django.db import models
from simple_history.manager import HistoricalQuerySet
from simple_history.models import HistoricalRecords
from simple_history.signals import pre_create_historical_record


class PermanentRecordError(ValidationError):
    """Someone tried to change or remove a permanent record."""


def _refuse(what: str, action: str) -> NoReturn:
    raise PermanentRecordError(f"{what} are permanent records and cannot be {action}.")


class PermanentQuerySet(models.QuerySet):
    """Refuses bulk changes and bulk removal; creating rows (also in bulk) is what a record is for."""

    def update(self, **kwargs: Any) -> NoReturn:
        _refuse(str(self.model._meta.verbose_name_plural).capitalize(), "changed")

    def delete(self) -> NoReturn:
        _refuse(str(self.model._meta.verbose_name_plural).capitalize(), "deleted")

    def bulk_update(self, objs: Any, fields: Any, batch_size: int | None = None) -> NoReturn:
        _refuse(str(self.model._meta.verbose_name_plural).capitalize(), "changed")


class PermanentRecord(models.Model):
    """Abstract base of an append-only model: a new row may be saved, an existing one never again."""

    objects = PermanentQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            _refuse(str(self._meta.verbose_name_plural).capitalize(), "changed")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        _refuse(str(self._meta.verbose_name_plural).capitalize(), "deleted")


class PermanentHistoricalQuerySet(HistoricalQuerySet):
    def update(self, **kwargs: Any) -> NoReturn:
        _refuse("History entries", "changed")

    def bulk_update(self, objs: Any, fields: Any, batch_size: int | None = None) -> NoReturn:
        _refuse("History entries", "changed")

    def delete(self) -> NoReturn:
        _refuse("History entries", "deleted")


class PermanentHistory(models.Model):
    """Abstract base of every historical model: append-only, and the acting username kept as text."""

    history_username = models.CharField(
        max_length=150, blank=True, help_text="Who made the change, kept as text so it survives the user."
    )

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            _refuse("History entries", "changed")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        _refuse("History entries", "deleted")


class PermanentM2MHistory(models.Model):
    """Abstract base of the history rows of many-to-many changes (a case's recordings, a hold's)."""

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            _refuse("History entries", "changed")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        _refuse("History entries", "deleted")


def audit_history(**options: Any) -> HistoricalRecords:
    """django-simple-history as vicirec keeps it: append-only rows that name who acted."""
    return HistoricalRecords(
        bases=[PermanentHistory],
        historical_queryset=PermanentHistoricalQuerySet,
        m2m_bases=[PermanentM2MHistory],
        **options,
    )


def _keep_username(sender: Any, *, history_instance: Any, history_user: Any = None, **kwargs: Any) -> None:
    if history_user is not None and not getattr(history_instance, "history_username", ""):
        history_instance.history_username = history_user.get_username()[:150]


pre_create_historical_record.connect(_keep_username, dispatch_uid="vicirec.records.keep_username")


def refuse_deleting_users_with_history(sender: Any, *, instance: Any, **kwargs: Any) -> None:
    """A user who made history is deactivated, never deleted: the history must keep naming them."""
    from django.apps import apps

    for model in apps.get_models():
        if issubclass(model, PermanentHistory) and model._default_manager.filter(history_user_id=instance.pk).exists():
            raise PermanentRecordError(
                f"{instance.get_username()} made changes that history records; deactivate the account instead "
                "of deleting it."
            )


_COMMAND_ACTOR = re.compile(r"\[([^\[\]]+ via [^\[\]]+)\]\s*$")


def history_actor(record: Any) -> str:
    """Who made a history entry, in words: the username kept with it, else the "[OS user X via command]"
    a command writes at the end of its change reason, else "the system" (a pipeline stage, a migration)."""
    name = getattr(record, "history_username", "") or ""
    if name:
        return name
    user = getattr(record, "history_user", None)
    if user is not None:
        return str(user.get_username())
    found = _COMMAND_ACTOR.search(getattr(record, "history_change_reason", None) or "")
    return found.group(1) if found else "the system (no user)"
