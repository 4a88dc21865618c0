"""A lean multi-row INSERT for the pipeline's largest bulk writes (new recordings, custody events,
certificates, ledger entries).

Django's bulk_create compiles every value through the generic insert compiler (pre_save, prepare,
placeholder and expression checks per value): on MariaDB that cost 270 µs per 38-column Recording row,
five times the INSERT itself. Here each value is converted only when its type needs it (a datetime, a
JSON value, a string for an integer column…: through the field's own ``get_db_prep_save``, exactly as
bulk_create converts it); plain strings, integers and booleans of text, integer and boolean columns and
NULLs go as they are, and a value that repeats through a batch (the batch's time) is converted once; a
column that holds the same NULL, boolean, integer or empty string on every row of a statement is written
as that literal instead of a parameter per row. Same values, same conflict handling.

``insert`` writes model instances whose primary keys are never read back: rows either all carry their
key, or (an auto key) none does and the database numbers them, the objects keeping ``pk`` None (for rows
nobody refers to by key, such as ledger entries). ``insert_rows`` writes plain tuples of values (no model
instance at all) and, with ``returning=True``, returns the keys the database gave them, in row order
(``INSERT … RETURNING``, as bulk_create reads them back; a database without it: one INSERT per row).
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
    Matched on the exact type: a bool for an integer column, a str for a date, goes through the field.
    None is NULL for every column but a JSON one (whose None is the JSON ``null``)."""
    if isinstance(field, models.JSONField) or hasattr(field, "get_placeholder"):
        return ()
    target = field.target_field if isinstance(field, models.ForeignKey) else field
    for kind, plain in _PLAIN:
        if isinstance(target, kind) and not isinstance(target, models.JSONField):
            return (plain, type(None))
    return (type(None),)


def _cacheable(field: models.Field) -> bool:
    """Whether the field's conversion of a value depends on the value alone (times, dates, decimals): a
    value repeated through a batch is then converted once."""
    return isinstance(field, (models.DateTimeField, models.DateField, models.TimeField, models.DecimalField))


class Builder:
    """New instances of ``model`` for a bulk insert, built from their values positionally (as Django builds
    the rows it reads): half the cost of ``model(**values)``, which looks every field up by keyword. Every
    field not given takes its default, a callable default called for each instance."""

    def __init__(self, model: type[models.Model]) -> None:
        fields = model._meta.concrete_fields
        self.model = model
        self.index = {f.attname: i for i, f in enumerate(fields)}
        self.fresh = [(i, f) for i, f in enumerate(fields) if f.has_default() and callable(f.default)]
        fresh = {i for i, _ in self.fresh}
        self.template = [None if i in fresh else f.get_default() for i, f in enumerate(fields)]

    def __call__(self, **values: Any) -> Any:
        row = list(self.template)
        for i, field in self.fresh:
            if field.attname not in values:
                row[i] = field.get_default()
        index = self.index
        for name, value in values.items():
            row[index[name]] = value
        return self.model(*row)


def insert(
    model: type[models.Model], objs: Sequence[models.Model], *, ignore_conflicts: bool = False, batch_size: int = 1000
) -> None:
    """INSERT ``objs`` like ``bulk_create(objs, ignore_conflicts=…, batch_size=…)``: at most ``batch_size``
    rows a statement (a statement stays well inside MariaDB's max_allowed_packet)."""
    if not objs:
        return
    opts = model._meta
    connection = connections[model._default_manager.db]
    auto = isinstance(opts.pk, models.AutoField) and all(obj.pk is None for obj in objs)
    fields = [f for f in opts.concrete_fields if not (auto and f is opts.pk)]  # the database numbers the rows
    if not auto and any(obj.pk is None for obj in objs):
        raise ValueError("every row needs its primary key (or none does, with an auto key): use bulk_create")
    names = [f.attname for f in fields]
    rows = [[getattr(obj, name) for name in names] for obj in objs]
    _execute(model, fields, rows, ignore_conflicts=ignore_conflicts, batch_size=batch_size, returning=False)
    for obj in objs:  # as bulk_create leaves them
        obj._state.adding, obj._state.db = False, connection.alias


def insert_rows(
    model: type[models.Model],
    names: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    ignore_conflicts: bool = False,
    returning: bool = False,
    batch_size: int = 1000,
) -> list[Any]:
    """INSERT ``rows`` (tuples of values for the fields ``names``, by attname) into ``model``'s table, every
    other column taking its field's default. With ``returning``, the primary keys the database gave the
    rows, in row order (not with ``ignore_conflicts``: a skipped row has none)."""
    if not rows:
        return []
    opts = model._meta
    given = [opts.get_field(name) for name in names]
    fields = list(given)
    defaults: list[models.Field] = []
    for field in opts.concrete_fields:
        if field not in given and not (field is opts.pk and isinstance(field, models.AutoField)):
            defaults.append(field)  # what a model instance would hold: the default, "" for text, else None
    fields += defaults
    if any(callable(field.default) for field in defaults):  # a fresh default for every row
        full = [[*row, *(field.get_default() for field in defaults)] for row in rows]
    else:
        values = [field.get_default() for field in defaults]
        full = [[*row, *values] for row in rows] if defaults else rows
    connection = connections[model._default_manager.db]
    if returning and ignore_conflicts:
        raise ValueError("the keys of rows that may be skipped cannot be returned")
    if returning and not connection.features.can_return_rows_from_bulk_insert:  # MySQL, MariaDB < 10.5
        objs = [model(**dict(zip([f.attname for f in fields], row, strict=True))) for row in full]
        for obj in objs:
            obj.save(force_insert=True)  # one INSERT each: the key from the driver's last insert id
        return [obj.pk for obj in objs]
    return _execute(model, fields, full, ignore_conflicts=ignore_conflicts, batch_size=batch_size, returning=returning)


def _execute(
    model: type[models.Model],
    fields: list[models.Field],
    rows: Sequence[Sequence[Any]],
    *,
    ignore_conflicts: bool,
    batch_size: int,
    returning: bool,
) -> list[Any]:
    connection = connections[model._default_manager.db]
    opts = model._meta
    for field in fields:
        if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            raise ValueError(f"{field} is set on save: use bulk_create")
    plain = [_plain_types(f) for f in fields]
    cached: list[dict[Any, Any] | None] = [{} if _cacheable(f) else None for f in fields]
    on_conflict = OnConflict.IGNORE if ignore_conflicts else None
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    head = f"{connection.ops.insert_statement(on_conflict=on_conflict)} {connection.ops.quote_name(opts.db_table)}"
    suffix = connection.ops.on_conflict_suffix_sql(fields, on_conflict, None, None)
    if returning:
        returned, _ = connection.ops.return_insert_columns([opts.pk])
        suffix = f"{suffix} {returned}".strip()
    batch = max(min(connection.ops.bulk_batch_size(fields, rows), batch_size), 1)
    columns_of = list(zip(fields, plain, cached, strict=True))
    keys: list[Any] = []
    with connection.cursor() as cursor:
        for start in range(0, len(rows), batch):
            chunk = rows[start : start + batch]
            converted: list[list[Any]] = []
            for row in chunk:
                values: list[Any] = []
                append = values.append
                for (field, types, memo), value in zip(columns_of, row, strict=True):
                    if type(value) in types:
                        append(value)
                    elif memo is not None:
                        try:
                            append(memo[value])
                        except KeyError:
                            append(memo.setdefault(value, field.get_db_prep_save(value, connection)))
                    else:
                        append(field.get_db_prep_save(value, connection))
                converted.append(values)
            row_sql, params = _values(converted)
            sql = f"{head} ({columns}) VALUES {', '.join([row_sql] * len(chunk))}"
            cursor.execute(f"{sql} {suffix}" if suffix else sql, params)
            if returning:
                keys.extend(row[0] for row in cursor.fetchall())
    if returning and len(keys) != len(rows):
        raise RuntimeError(f"{model.__name__}: {len(rows)} rows inserted, {len(keys)} keys returned")
    return keys


def _literal(value: Any) -> str | None:
    """The SQL literal of a value that is the same on every database and needs no escaping, else None."""
    if value is None:
        return "NULL"
    if type(value) is bool:
        return "TRUE" if value else "FALSE"
    if type(value) is int:
        return str(value)
    if type(value) is str and value == "":
        return "''"
    return None


def _values(rows: list[list[Any]]) -> tuple[str, list[Any]]:
    """One row's placeholder list and the statement's parameters. A column holding the same NULL, boolean,
    integer or empty string on every row of the statement is written once, as that literal: the drivers
    quote every parameter in Python (MySQLdb), and a catalog row has many such columns (no error yet,
    no upload yet…)."""
    first = rows[0]
    placeholders: list[str] = []
    varying: list[int] = []
    for i, value in enumerate(first):
        literal = _literal(value)
        kind = type(value)
        if literal is not None and all(row[i] == value and type(row[i]) is kind for row in rows):
            placeholders.append(literal)
        else:
            placeholders.append("%s")
            varying.append(i)
    if len(varying) == len(first):
        return "(" + ", ".join(placeholders) + ")", [value for row in rows for value in row]
    return "(" + ", ".join(placeholders) + ")", [row[i] for row in rows for i in varying]
