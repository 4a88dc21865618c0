"""Template filters of the history pages: who acted, in words (vicirec.records.history_actor)."""

from __future__ import annotations

from typing import Any

from django import template
from simple_history.models import DeletedObject

from vicirec.records import history_actor

register = template.Library()


@register.filter
def actor(record: Any) -> str:
    return history_actor(record)


@register.filter
def change_value(value: Any) -> Any:
    """A value of a history diff: a dash for nothing (simple-history shows an empty foreign key as
    "Deleted user (pk=None)"), "<model> #pk, since deleted" for a row that is gone."""
    if value is None or value == "":
        return "—"
    if isinstance(value, DeletedObject):
        return "—" if value.pk is None else f"{value.model._meta.verbose_name} #{value.pk}, since deleted"
    return value
