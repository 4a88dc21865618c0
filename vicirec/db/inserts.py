"""A lean multi-row INSERT for the pipeline's largest bulk writes (new recordings, ledger entries).

Django's bulk_create compiles every value through the generic insert compiler (pre_save, prepare,
placeholder and expression checks per value): on MariaDB that cost 270 µs per 38-column Recording row,
five times the INSERT itself. Here each value is converted only when its type needs it (a datetime, a
JSON value, a string for an integer column…: through the field's own ``get_db_prep_save``, exactly as
bulk_create converts it); plain strings, integers and booleans of text, integer and boolean columns and
NULLs go as they are. Same statement, same values, same conflict handling. Primary keys are never read
back: rows either all carry their key, or (an auto key) none does and the database numbers them, the
objects keeping ``pk`` None (for rows nobody refers to by key, such as ledger entries).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connections, models
from django.db.models.constants import OnConflict

_PLAIN: tuple[tuple[type[models.Field], type], ...] = (
    (models.CharField, str),
    (models.TextField, str),
    (models.BooleanField, bool),
    (models.IntegerField, int),  # Big/Positive/Small…IntegerField and AutoFields are IntegerFields
)


def _plain_types(field: models.Field) -> tuple[type, ...]:
    """The value types this field stores as they are (``get_db_prep_save`` would return them unchanged).
    Matched on the exact type: a bool for an integer column, a str for a date, goes through the field."""
    if isinstance(field, models.JSONField) or hasattr(field, "get_placeholder"):
        return ()
    target = field.target_field if isinstance(field, models.ForeignKey) else field
    for kind, plain in _PLAIN:
        if isinstance(target, kind) and not isinstance(target, models.JSONField):
            return (plain, type(None))
    return ()


def insert(
    model: type[models.Model], objs: Sequence[models.Model], *, ignore_conflicts: bool = False, batch_size: int = 1000
) -> None:
    """INSERT ``objs`` like ``bulk_create(objs, ignore_conflicts=…, batch_size=…)``: at most ``batch_size``
    rows a statement (a statement stays well inside MariaDB's max_allowed_packet)."""
    if not objs:
        return
    connection = connections[model._default_manager.db]
    opts = model._meta
    auto = isinstance(opts.pk, models.AutoField) and all(obj.pk is None for obj in objs)
    fields = [f for f in opts.concrete_fields if not (auto and f is opts.pk)]  # the database numbers the rows
    for field in fields:
        if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            raise ValueError(f"{field} is set on save: use bulk_create")
    if not auto and any(obj.pk is None for obj in objs):
        raise ValueError("every row needs its primary key (or none does, with an auto key): use bulk_create")
    plain = [_plain_types(f) for f in fields]
    on_conflict = OnConflict.IGNORE if ignore_conflicts else None
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    head = f"{connection.ops.insert_statement(on_conflict=on_conflict)} {connection.ops.quote_name(opts.db_table)}"
    suffix = connection.ops.on_conflict_suffix_sql(fields, on_conflict, None, None)
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    batch = max(min(connection.ops.bulk_batch_size(fields, objs), batch_size), 1)
    with connection.cursor() as cursor:
        for start in range(0, len(objs), batch):
            chunk = objs[start : start + batch]
            params: list[Any] = []
            for obj in chunk:
                for field, types in zip(fields, plain, strict=True):
                    value = getattr(obj, field.attname)
                    params.append(value if type(value) in types else field.get_db_prep_save(value, connection))
            sql = f"{head} ({columns}) VALUES {', '.join([row] * len(chunk))}"
            cursor.execute(f"{sql} {suffix}" if suffix else sql, params)
    for obj in objs:  # as bulk_create leaves them
        obj._state.adding, obj._state.db = False, connection.alias
