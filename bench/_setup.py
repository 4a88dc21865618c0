"""Shared set-up for benchmarks: a throwaway VICIREC_HOME, VICIdial's tables on MariaDB, Django ready."""

from __future__ import annotations

import os
import resource
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def django_on_mariadb(name: str, *, own_db: str | None = None) -> Path:
    """Configure and set up Django with VICIdial's database `name` (re)created on local MariaDB."""
    import MySQLdb

    home = Path(tempfile.mkdtemp(prefix=f"vicirec-bench-{name}-"))
    url = os.environ.get("VICIREC_BENCH_MARIADB", "mysql://root@127.0.0.1:3306")
    admin = MySQLdb.connect(host="127.0.0.1", port=3306, user="root")
    with admin.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8")
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
