"""Shared fixtures: test databases (VICIdial's on real MariaDB), a VICIdial writer, a spool folder."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connections
from django.test.utils import setup_databases, teardown_databases

from recordings.demo.vicidial_schema import VicidialWriter
from tests.factories import VicidialData

try:  # the S3 server fixtures come with the archive pipeline
    from tests.s3_fixtures import *  # noqa: F403
except ImportError:  # pragma: no cover
    pass


def _create_vicidial_test_database() -> None:
    """Point the "vicidial" alias at a fresh database of this test run and create VICIdial's tables."""
    conn = connections["vicidial"]
    conn.close()
    if settings.VICIDIAL_BACKEND == "mariadb":
        import MySQLdb

        name = f"{conn.settings_dict['NAME']}_{os.getpid()}"
        admin = MySQLdb.connect(
            host=conn.settings_dict["HOST"] or "127.0.0.1",
            port=int(conn.settings_dict["PORT"] or 3306),
            user=conn.settings_dict["USER"],
            password=conn.settings_dict["PASSWORD"] or "",
        )
        with admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
            cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8")
        admin.close()
        conn.settings_dict["NAME"] = name
    with VicidialWriter() as writer:
        writer.create_tables()


def _drop_vicidial_test_database() -> None:
    conn = connections["vicidial"]
    conn.close()
    if settings.VICIDIAL_BACKEND == "mariadb":
        import MySQLdb

        admin = MySQLdb.connect(
            host=conn.settings_dict["HOST"] or "127.0.0.1",
            port=int(conn.settings_dict["PORT"] or 3306),
            user=conn.settings_dict["USER"],
            password=conn.settings_dict["PASSWORD"] or "",
        )
        with admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{conn.settings_dict['NAME']}`")
        admin.close()


@pytest.fixture(scope="session")
def django_db_setup(django_test_environment: None, django_db_blocker: pytest.FixtureRequest) -> Iterator[None]:
    """vicirec's own test database as Django makes it; VICIdial's made from the unmanaged models."""
    with django_db_blocker.unblock():  # type: ignore[attr-defined]
        old = setup_databases(verbosity=0, interactive=False, aliases={"default"})
        _create_vicidial_test_database()
    yield
    with django_db_blocker.unblock():  # type: ignore[attr-defined]
        _drop_vicidial_test_database()
        teardown_databases(old, verbosity=0)


@pytest.fixture
def vicidial(django_db_blocker: pytest.FixtureRequest) -> Iterator[VicidialData]:
    """An empty set of VICIdial tables (MyISAM: no transactions, so they are emptied around each test)."""
    with django_db_blocker.unblock():  # type: ignore[attr-defined]
        writer = VicidialWriter()
        writer.truncate()
        yield VicidialData(writer)
        writer.truncate()
        writer.close()


@pytest.fixture
def spool_dir(tmp_path: Path, settings: pytest.FixtureRequest) -> Path:
    """A VICIdial-shaped monitorDONE folder, set as the only spool folder."""
    root = tmp_path / "monitorDONE"
    for sub in ("", "MP3", "OGG", "GSM", "GSW"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    settings.VICIREC_SPOOL_DIRS = [root]  # type: ignore[attr-defined]
    return root
