"""Security properties the pipeline keeps under real runs: VICIdial's database is only ever read, and the
bucket's secret key reaches neither vicirec's database (any column of any table, history included), nor
its logs, nor the custody log, nor a command's output — even when the credentials are wrong and every
request fails. (Presigned download links expire: tests/recordings/test_storage.py::
test_presigned_url_downloads_the_bytes_and_then_expires. The admin permission matrix lives with the admin.)
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connections
from django.test.utils import CaptureQueriesContext

from holds.actions import place_hold
from recordings.models import Recording
from recordings.pipeline.archive import archive_due
from recordings.pipeline.catalog import sync_recordings
from recordings.pipeline.cleanup import cleanup_local
from recordings.pipeline.retention import enforce_retention
from recordings.pipeline.verify import verify_archive
from tests.factories import VicidialData, write_file
from tests.reliability.builders import add_recordings, campaign
from tests.s3_fixtures import s3_archive_storage
from tests.s3server import S3Server
from vicirec.actors import Actor

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
READS = {"SELECT", "SAVEPOINT", "RELEASE"}


def statements(queries: CaptureQueriesContext) -> set[str]:
    return {q["sql"].lstrip().split(None, 1)[0].upper() for q in queries.captured_queries}


@pytest.mark.django_db(databases=["default", "vicidial"])
def test_no_stage_sends_anything_but_reads_to_vicidial(
    vicidial: VicidialData, spool_dir: Path, archive_s3_settings: str
) -> None:
    vicidial.campaign("SALES")
    vicidial.ingroup("SUPPORT")
    start = NOW - timedelta(days=200)
    rows = [vicidial.outbound_call(campaign="SALES", start=start) for _ in range(3)]
    rows += [vicidial.inbound_call(ingroup="SUPPORT", start=start) for _ in range(2)]
    for row in rows:
        write_file(spool_dir, f"MP3/{row['filename']}-all.mp3", b"ID3\x03" + row["filename"].encode() * 40)
    seen: dict[str, set[str]] = {}
    stages = {
        "sync": lambda: sync_recordings(now=NOW, node=""),
        "archive": lambda: archive_due(now=NOW, node="", threads=1),
        "hold": lambda: place_hold(
            reason="audit", actor=Actor.command("tests"), recording_ids=[rows[0]["recording_id"]]
        ),
        "cleanup": lambda: cleanup_local(now=NOW, node=""),
        "verify": lambda: verify_archive(now=NOW, sample=10),
        "retention": lambda: enforce_retention(now=NOW + timedelta(days=3000), dry_run=False, confirm=True),
        "commands": lambda: call_command("run_lifecycle", "--json", stdout=StringIO()),
    }
    for name, run in stages.items():
        with CaptureQueriesContext(connections["vicidial"]) as queries:
            run()
        seen[name] = statements(queries)
        assert seen[name] <= READS, (name, seen[name])
    assert "SELECT" in seen["sync"]
    assert Recording.objects.filter(state="expired").count() == len(rows) - 1  # the pipeline really ran


@pytest.mark.django_db
def test_a_wrong_secret_key_never_reaches_the_database_logs_history_or_output(
    settings: Any, s3_server: S3Server, s3_bucket: str, spool_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    canary = f"canary-secret-{uuid.uuid4().hex}"
    key_id = f"CANARYKEY{uuid.uuid4().hex[:11].upper()}"
    settings.STORAGES = {
        **settings.STORAGES,
        "archive": s3_archive_storage(s3_server, s3_bucket, secret_access_key=canary),
    }
    short = campaign("LEAK", keep_local_days=1, retain_days=90)
    add_recordings(spool_dir, short, 3, now=NOW, age_days=200, seed=5)
    caplog.set_level(logging.DEBUG)  # everything, botocore's request logging included
    out, err = StringIO(), StringIO()

    # archived while still inside retention (150 days ago): one already past it is never uploaded
    report = archive_due(now=NOW - timedelta(days=150), node="", threads=1)
    call_command("archive_recordings", "--json", "--threads", "1", stdout=out, stderr=err)
    Recording.objects.update(state="archived", object_key="LEAK/x.mp3", stored_sha256="0" * 64, stored_size=1)
    cleanup_local(now=NOW, node="")
    verify_archive(now=NOW, sample=10)
    Recording.objects.update(next_attempt_at=None)  # past cleanup's back-off: retention tries now
    retention = enforce_retention(now=NOW, dry_run=False, confirm=True)
    settings.STORAGES = {**settings.STORAGES, "archive": s3_archive_storage(s3_server, s3_bucket, access_key_id=key_id)}
    Recording.objects.update(next_attempt_at=None)
    cleanup_local(now=NOW + timedelta(days=2), node="")

    assert report.failed == 3 and retention.failed == 3
    errors = list(Recording.objects.values_list("error", flat=True))
    assert all("credentials" in e or "refused" in e for e in errors), errors
    assert any("VICIREC_S3_SECRET_ACCESS_KEY" in e for e in errors)  # the message names the setting, not the value
    logged = "\n".join(f"{r.getMessage()} {r.exc_text or ''} {r.args!r}" for r in caplog.records)
    assert logged and canary not in logged
    assert key_id not in "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("vicirec"))
    assert canary not in out.getvalue() + err.getvalue()
    for table, text in _every_row_as_text():
        assert canary not in text and key_id not in text, table


def _every_row_as_text() -> list[tuple[str, str]]:
    """Every row of every table of vicirec's own database (history, events, certificates, django-q …)."""
    connection = connections["default"]
    found = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            found.append((table, "\n".join(map(repr, cursor.fetchall()))))
    assert any(t == "recordings_recordingevent" and text for t, text in found)
    return found


def test_credentials_never_reach_an_error_page(settings: Any, rf: Any) -> None:
    """Django's error report (shown with DEBUG on, mailed to admins with it off) masks the bucket keys."""
    from django.views.debug import SafeExceptionReporterFilter

    from vicirec.config import s3_storage_options

    secret, key_id = "wJalrXUtnFEMI-this-is-the-secret", "AKIA-the-key-id"
    options = s3_storage_options(
        bucket="b",
        endpoint_url="http://127.0.0.1:9",
        region="us-east-1",
        access_key_id=key_id,
        secret_access_key=secret,
    )
    settings.STORAGES = {
        **settings.STORAGES,
        "archive": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": options},
    }
    settings.DEBUG = True
    masked = SafeExceptionReporterFilter().get_safe_settings()["STORAGES"]["archive"]["OPTIONS"]
    assert masked["secret_key"] != secret and masked["access_key"] != key_id
    page = _error_page(rf)
    assert "boom" in page and "STORAGES" in page
    assert secret not in page and key_id not in page


def _error_page(rf: Any) -> str:
    """Django's technical 500 page for an error raised where no credential is a local variable."""
    import sys

    from django.views.debug import technical_500_response

    try:
        raise RuntimeError("boom")
    except RuntimeError:
        return technical_500_response(rf.get("/admin/"), *sys.exc_info()).content.decode()
