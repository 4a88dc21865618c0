"""Permanent records: rows that are written once and never changed or removed.

The custody log, the access log, deletion certificates and the change history of policies, holds, cases,
campaigns and recordings are evidence. Their models refuse ``save()`` of an existing row and ``delete()``,
their querysets refuse ``update()`` and ``delete()``, and their admins offer no change or delete. A
history row also keeps the acting username as text (``history_username``), so it still says who made a
change if the user row ever went away; users who made history are deactivated, never deleted.
What this cannot stop is SQL run directly against the database: the signed custody checkpoints exist for
that.

Erasure (GDPR Art. 17, CCPA) is the one exception, and it is narrow: personal data in these rows may be
*redacted* (the phone number, lead, agent, file names replaced), never anything else changed, and only

* inside ``redaction()``, which the erasure stage (recordings/pipeline/erasure.py) alone opens (a test reads
  the source tree to keep it so), inside a transaction;
* through ``<queryset>.redact(rows, fields)``, and only for the fields the model declares redactable
  (``REDACTABLE`` on a permanent model; ``PERSONAL_FIELDS`` of the tracked model plus the change reason on a
  history model);
* recorded: every redacted table, row count and field goes into the ``RedactionLog`` that the stage must
  store (in the erasure certificate) and mark recorded before ``redaction()`` ends; otherwise the whole
  transaction rolls back. ``save()``, ``update()``, ``bulk_update()`` and ``delete()`` still refuse, also
  inside a redaction.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, ClassVar, NoReturn

from django.core.exceptions import ValidationError
from django.db import models, transaction
from simple_history.manager import HistoricalQuerySet
from simple_history.models import HistoricalRecords
from simple_history.signals import pre_create_historical_record


class PermanentRecordError(ValidationError):
    """Someone tried to change or remove a permanent record."""


def _refuse(what: str, action: str) -> NoReturn:
    raise PermanentRecordError(f"{what} are permanent records and cannot be {action}.")


@dataclass
class RedactionLog:
    """What one redaction changed: the legal basis and, per table, the rows and fields redacted."""

    basis: str
    entries: list[dict[str, Any]] = field(default_factory=list)
    recorded: bool = False

    def as_list(self) -> list[dict[str, Any]]:
        return [dict(entry) for entry in self.entries]


_redaction: ContextVar[RedactionLog | None] = ContextVar("vicirec_redaction", default=None)


@contextmanager
def redaction(*, basis: str) -> Iterator[RedactionLog]:
    """Allow ``redact()`` of personal data in permanent records, inside the caller's transaction.

    Only the erasure stage opens it. The caller stores the log (an erasure certificate) and sets
    ``log.recorded``; leaving without doing so raises, which rolls the caller's transaction back.
    """
    if not basis.strip():
        raise PermanentRecordError("A redaction needs its legal basis.")
    if not transaction.get_connection().in_atomic_block:
        raise PermanentRecordError("A redaction runs inside the transaction that records it.")
    log = RedactionLog(basis=basis)
    token = _redaction.set(log)
    try:
        yield log
    finally:
        _redaction.reset(token)
    if log.entries and not log.recorded:
        raise PermanentRecordError("A redaction of permanent records must itself be recorded.")


def redactable_fields(model: Any) -> set[str]:
    tracked = getattr(model, "instance_type", None)
    if tracked is not None and issubclass(model, PermanentHistory):
        return {*getattr(tracked, "PERSONAL_FIELDS", ()), "history_change_reason"}
    return set(getattr(model, "REDACTABLE", ()))


def _redact(queryset: models.QuerySet, rows: Iterable[Any], fields: Sequence[str]) -> int:
    log = _redaction.get()
    what = str(queryset.model._meta.verbose_name_plural).capitalize()
    if log is None:
        _refuse(what, "changed")
    not_allowed = set(fields) - redactable_fields(queryset.model)
    if not_allowed:
        raise PermanentRecordError(f"{what}: {', '.join(sorted(not_allowed))} cannot be redacted.")
    rows = list(rows)
    if not rows or not fields:
        return 0
    changed = 0
    base = models.QuerySet(model=queryset.model, using=queryset.db)  # the plain queryset: no refusal
    for row in rows:
        changed += base.filter(pk=row.pk).update(**{name: getattr(row, name) for name in fields})
    log.entries.append({"table": queryset.model._meta.db_table, "rows": len(rows), "fields": sorted(fields)})
    return changed


class PermanentQuerySet(models.QuerySet):
    """Refuses bulk changes and bulk removal; creating rows (also in bulk) is what a record is for."""

    def redact(self, rows: Iterable[Any], fields: Sequence[str]) -> int:
        """Write the redacted ``fields`` of ``rows`` (instances of this model): inside ``redaction()`` only."""
        return _redact(self, rows, fields)

    def update(self, **kwargs: Any) -> NoReturn:
        _refuse(str(self.model._meta.verbose_name_plural).capitalize(), "changed")

    def delete(self) -> NoReturn:
        _refuse(str(self.model._meta.verbose_name_plural).capitalize(), "deleted")

    def bulk_update(self, objs: Any, fields: Any, batch_size: int | None = None) -> NoReturn:
        _refuse(str(self.model._meta.verbose_name_plural).capitalize(), "changed")


class _AppendOnly(models.Model):
    """A new row may be saved, an existing one never again, and none deleted (``what`` names them)."""

    what: ClassVar[str] = ""  # "" : the model's plural name

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            _refuse(self._what(), "changed")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        _refuse(self._what(), "deleted")

    def _what(self) -> str:
        return self.what or str(self._meta.verbose_name_plural).capitalize()


class PermanentRecord(_AppendOnly):
    """Abstract base of an append-only model: a new row may be saved, an existing one never again."""

    objects = PermanentQuerySet.as_manager()

    class Meta:
        abstract = True


class PermanentHistoricalQuerySet(HistoricalQuerySet):
    def redact(self, rows: Iterable[Any], fields: Sequence[str]) -> int:
        return _redact(self, rows, fields)

    def update(self, **kwargs: Any) -> NoReturn:
        _refuse("History entries", "changed")

    def bulk_update(self, objs: Any, fields: Any, batch_size: int | None = None) -> NoReturn:
        _refuse("History entries", "changed")

    def delete(self) -> NoReturn:
        _refuse("History entries", "deleted")


class PermanentHistory(_AppendOnly):
    """Abstract base of every historical model: append-only, and the acting username kept as text."""

    what = "History entries"
    history_username = models.CharField(
        max_length=150, blank=True, help_text="Who made the change, kept as text so it survives the user."
    )

    class Meta:
        abstract = True


class PermanentM2MHistory(_AppendOnly):
    """Abstract base of the history rows of many-to-many changes (a case's recordings, a hold's)."""

    what = "History entries"

    class Meta:
        abstract = True


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
