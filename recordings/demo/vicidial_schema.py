"""Create and fill VICIdial-shaped tables: for the demo database and for tests, never for production.

vicirec itself never writes to VICIdial's database (the "vicidial" alias is read-only). The demo and the
tests need such a database to read from, so this module opens its own, separate, writable connection to
it, creates the tables from the unmanaged models (MyISAM on MySQL/MariaDB, as VICIdial does) and inserts
rows as VICIdial's scripts would.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from django.db import connections
from django.db.models import Model
from django.db.utils import load_backend

from recordings.vicidial import VICIDIAL_MODELS

PLAIN_ENGINES = {
    "vicirec.db.vicidial_mysql": "django.db.backends.mysql",
    "vicirec.db.vicidial_sqlite": "django.db.backends.sqlite3",
}


class VicidialWriter:
    """A writable connection to the database behind the "vicidial" alias (demo and tests only)."""

    def __init__(self, alias: str = "vicidial") -> None:
        settings_dict = copy.deepcopy(connections[alias].settings_dict)
        settings_dict["ENGINE"] = PLAIN_ENGINES.get(settings_dict["ENGINE"], settings_dict["ENGINE"])
        name = str(settings_dict["NAME"])
        if name.startswith("file:"):  # the demo opens SQLite read-only through a URI
            settings_dict["NAME"] = name[5:].split("?", 1)[0]
        if settings_dict["ENGINE"] == "django.db.backends.mysql":
            settings_dict["OPTIONS"] = {
                **settings_dict.get("OPTIONS", {}),
                "init_command": "SET default_storage_engine=MyISAM",
            }
        backend = load_backend(settings_dict["ENGINE"])
        self.connection = backend.DatabaseWrapper(settings_dict, alias=f"{alias}_writer")
        # Registered (in this thread only) because Django's schema editor looks its alias up there.
        connections[self.connection.alias] = self.connection

    def create_tables(self, *, drop: bool = True) -> None:
        existing = set(self.connection.introspection.table_names())
        with self.connection.schema_editor() as editor:
            for model in VICIDIAL_MODELS:
                if model._meta.db_table in existing:
                    if not drop:
                        continue
                    editor.delete_model(model)
                editor.create_model(model)

    def truncate(self) -> None:
        with self.connection.cursor() as cursor:
            for model in VICIDIAL_MODELS:
                cursor.execute(f"DELETE FROM {self.connection.ops.quote_name(model._meta.db_table)}")

    def insert(self, model: type[Model], rows: Iterable[dict[str, Any]]) -> int:
        """Insert rows given as {field name: value}; columns not given take the model's defaults."""
        fields = [f for f in model._meta.concrete_fields]
        quote = self.connection.ops.quote_name
        columns = ", ".join(quote(f.column) for f in fields)
        placeholders = ", ".join(["%s"] * len(fields))
        sql = f"INSERT INTO {quote(model._meta.db_table)} ({columns}) VALUES ({placeholders})"
        values = [
            [f.get_db_prep_save(row.get(f.name, f.get_default()), self.connection) for f in fields] for row in rows
        ]
        with self.connection.cursor() as cursor:
            for start in range(0, len(values), 2000):
                cursor.executemany(sql, values[start : start + 2000])
        if not self.connection.get_autocommit():
            self.connection.commit()
        return len(values)

    def close(self) -> None:
        self.connection.close()
        del connections[self.connection.alias]

    def __enter__(self) -> VicidialWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
