"""Shared set-up for benchmarks: a throwaway VICIREC_HOME, VICIdial's tables on MariaDB, Django ready."""

from __future__ import annotations

import os
import resource
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def django_on_mariadb(name: str, *, own_db: str | None = None, recreate: bool = True) -> Path:
    """Configure and set up Django with VICIdial's database `name` (re)created on local MariaDB.

    ``own_db`` optionally puts vicirec's own database on MariaDB too (a mysql:// URL whose database is
    recreated along with VICIdial's unless ``recreate`` is False).
    """
    import MySQLdb

    home = Path(tempfile.mkdtemp(prefix=f"vicirec-bench-{name}-"))
    url = os.environ.get("VICIREC_BENCH_MARIADB", "mysql://root@127.0.0.1:3306")
    if recreate:
        admin = MySQLdb.connect(host="127.0.0.1", port=3306, user="root")
        with admin.cursor() as cursor:
            names = [name] + ([own_db.rsplit("/", 1)[1]] if own_db and own_db.startswith("mysql://") else [])
            for db in names:
                cursor.execute(f"DROP DATABASE IF EXISTS `{db}`")
                cursor.execute(f"CREATE DATABASE `{db}` CHARACTER SET utf8mb4")
        admin.close()
    os.environ.update(
        VICIREC_HOME=str(home),
        VICIDIAL_DATABASE_URL=f"{url}/{name}",
        VICIREC_DATABASE_URL=own_db or f"sqlite:///{home / 'vicirec.sqlite3'}",
        VICIREC_LOG_LEVEL="WARNING",
        DJANGO_SETTINGS_MODULE="vicirec.settings",
    )
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    return home


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def django_on_sqlite(name: str, *, env: dict[str, str] | None = None) -> Path:
    """Configure and set up Django with vicirec's own database on SQLite in a throwaway VICIREC_HOME.

    For stages that never read VICIdial's database (archive, cleanup, retention): no MariaDB needed.
    ``env`` is applied before ``django.setup()`` (for example VICIREC_STORAGE and the bucket settings).
    Returns the VICIREC_HOME folder; the caller removes it.
    """
    home = Path(tempfile.mkdtemp(prefix=f"vicirec-bench-{name}-"))
    os.environ.update(
        VICIREC_HOME=str(home),
        VICIREC_DATABASE_URL=f"sqlite:///{home / 'vicirec.sqlite3'}",
        VICIREC_LOG_LEVEL="WARNING",
        DJANGO_SETTINGS_MODULE="vicirec.settings",
        **(env or {}),
    )
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    return home


def server_cpu_seconds() -> float | None:
    """CPU seconds the database server has spent on Django's default connection so far: PostgreSQL serves
    each connection in a process of its own (read from /proc when the server runs on this machine); None
    elsewhere (MariaDB serves connections from threads of one shared process)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
