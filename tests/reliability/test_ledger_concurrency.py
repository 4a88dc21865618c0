"""Two processes append to the custody ledger at once, on MariaDB and on PostgreSQL: one valid chain."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ROUNDS = 60


def _mariadb(name: str) -> str:
    import MySQLdb

    admin = MySQLdb.connect(host="127.0.0.1", port=3306, user="root", connect_timeout=3)
    with admin.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    admin.close()
    return f"mysql://root@127.0.0.1:3306/{name}"


def _postgres(name: str) -> str:
    import psycopg2

    admin = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres", connect_timeout=3)
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    admin.close()
    return f"postgres://postgres@127.0.0.1:5432/{name}"


def _drop(backend: str, name: str) -> None:
    if backend == "mariadb":
        import MySQLdb

        admin = MySQLdb.connect(host="127.0.0.1", port=3306, user="root")
        with admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()
    else:
        import psycopg2

        admin = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres")
        admin.autocommit = True
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture(params=["mariadb", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    backend, name = request.param, f"vicirec_ledger_{uuid.uuid4().hex[:8]}"
    try:
        url = (_mariadb if backend == "mariadb" else _postgres)(name)
    except Exception as exc:  # noqa: BLE001 - any reason the server is not there
        pytest.skip(f"{backend} is not reachable at 127.0.0.1: {exc}")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "vicirec.settings",
        "VICIREC_HOME": str(tmp_path),
        "VICIREC_DATABASE_URL": url,
        "VICIREC_LOG_LEVEL": "WARNING",
    }
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    yield env
    _drop(backend, name)


def test_two_writers_keep_one_valid_chain(database: dict[str, str]) -> None:
    writers = [
        subprocess.Popen([sys.executable, "-m", "tests.ledger_writer", str(rid), str(ROUNDS)], cwd=ROOT, env=database)
        for rid in (1, 2)
    ]
    assert [w.wait(timeout=300) for w in writers] == [0, 0]
    done = subprocess.run(
        [sys.executable, "manage.py", "verify_custody", "--checkpoint", "--json"],
        cwd=ROOT,
        env=database,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    # per writer: one catalog event, and per round one note and one access; then the key and the checkpoint
    assert report["ok"] and report["entries"] == 2 * (1 + 2 * ROUNDS) + 2
