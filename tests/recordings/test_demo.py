"""The embedded demo (`make demo`): VICIdial-shaped data that the real pipeline catalogs completely."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from recordings.demo.generate import generate_demo
from recordings.demo.vicidial_schema import VicidialWriter
from recordings.models import Recording
from recordings.pipeline.catalog import sync_recordings

pytestmark = pytest.mark.django_db(databases=["default", "vicidial"])

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.fixture
def demo_tables() -> object:
    """generate_demo creates VICIdial's tables itself; they are emptied afterwards for the other tests."""
    yield
    with VicidialWriter() as writer:
        writer.truncate()


def test_every_demo_call_is_cataloged_including_those_in_vicidials_archive_tables(
    demo_tables: None, spool_dir: Path
) -> None:
    demo = generate_demo(spool=spool_dir, now=NOW, calls=30, max_seconds=5)

    report = sync_recordings(now=NOW, node="")

    assert demo.in_archive_tables > 0 and demo.recordings == 30
    assert report.recordings_added == 30 and report.from_archive_table == demo.in_archive_tables
    assert report.missing == demo.missing_files and report.not_read == []
    assert Recording.objects.filter(campaign__isnull=False).count() == 30  # every call found in a call log
    files = [p for p in spool_dir.rglob("*-all.*") if "ORIG" not in p.parts]  # ORIG: the compress cron's copies
    assert len(files) == demo.wav_files + demo.mp3_files
