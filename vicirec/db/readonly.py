"""A cursor guard for the read-only VICIdial backends.

The router already refuses ORM writes; this catches everything else (raw SQL, a stray ``.using()``):
any statement that is not a read is rejected before it reaches VICIdial's server. Savepoints and SET
are allowed because Django's transaction handling and connection set-up issue them.
"""

from __future__ import annotations

import re
from typing import Any

from vicirec.dbrouter import ReadOnlyDatabaseError

_READ = re.compile(
    r"^\s*(?:/\*.*?\*/\s*)*(SELECT|SHOW|EXPLAIN|DESCRIBE|DESC|SET|SAVEPOINT|RELEASE\s+SAVEPOINT|ROLLBACK\s+TO\s+SAVEPOINT|PRAGMA\s+\w+\s*$)\b",
    re.IGNORECASE | re.DOTALL,
)
_WRITE_INSIDE = re.compile(r"\b(INTO\s+OUTFILE|INTO\s+DUMPFILE|FOR\s+UPDATE|LOCK\s+IN\s+SHARE\s+MODE)\b", re.IGNORECASE)


def check_read_only(sql: Any) -> None:
    text = sql.decode() if isinstance(sql, bytes) else str(sql)
    if not _READ.match(text) or (text.lstrip()[:6].upper() == "SELECT" and _WRITE_INSIDE.search(text)):
        first = text.strip().split(None, 1)[0] if text.strip() else "(empty)"
        raise ReadOnlyDatabaseError(f"refusing a {first.upper()} statement on VICIdial's read-only database")


class ReadOnlyCursor:
    """Wraps a DB-API cursor and lets only reads through."""

    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor

    def execute(self, sql: Any, params: Any = None) -> Any:
        check_read_only(sql)
        return self._cursor.execute(sql, params) if params is not None else self._cursor.execute(sql)

    def executemany(self, sql: Any, param_list: Any) -> Any:
        check_read_only(sql)
        return self._cursor.executemany(sql, param_list)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)

    def __iter__(self) -> Any:
        return iter(self._cursor)


class ReadOnlyWrapperMixin:
    def create_cursor(self, name: Any = None) -> Any:
        return ReadOnlyCursor(super().create_cursor(name))  # type: ignore[misc]
