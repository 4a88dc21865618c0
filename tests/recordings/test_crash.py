"""kill -9 in the middle of an archive run, and two workers at once: nothing lost, nothing done twice."""

from __future__ import annotations

import base64
import json
import random
import socket
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from recordings.demo.speech import synthesize_speech_like_wav
from recordings.models import Campaign, Recording, RecordingEvent
from tests import workers
from tests.factories import make_policy, make_recording
from tests.s3server import S3Server
from vicirec import clock

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def worker_env(s3_server: S3Server, s3_bucket: str, spool_dir: Path, tmp_path: Path) -> dict[str, str]:
    """The environment of a separate vicirec process sharing this test's database, spool and bucket."""
    return workers.worker_env(s3_server, s3_bucket, home=tmp_path / "home", spool=spool_dir)


@pytest.fixture
def due_recordings(spool_dir: Path) -> list[Recording]:
    campaign = Campaign.objects.create(kind="outbound", campaign_id="COLLECT", name="Collections")
    make_policy(campaign=campaign, keep_local_days=3, retain_days=1000, codec="mp3")
    recordings = []
    for n in range(24):
        recording = make_recording(start_time=clock.now() - timedelta(days=10, minutes=n), campaign=campaign)
        synthesize_speech_like_wav(spool_dir / f"{recording.filename}-all.wav", seconds=20, seed=n)
        recordings.append(recording)
    return recordings


def archive_process(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "manage.py", "archive_recordings", "--json"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def assert_each_recording_uploaded_once(recordings: list[Recording], s3_server: S3Server, bucket: str) -> None:
    client = s3_server.client()
    keys = [
        o["Key"]
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for o in page.get("Contents", [])
    ]
    catalog = {r.object_key: r for r in Recording.objects.filter(pk__in=[r.pk for r in recordings])}
    assert all(r.state == "archived" for r in catalog.values()), Counter(r.state for r in catalog.values())
    assert sorted(keys) == sorted(catalog), "no object without a catalog entry, none missing"
    for key, recording in catalog.items():
        head = client.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
        assert base64.b64decode(head["ChecksumSHA256"]).hex() == recording.stored_sha256
    archived_events = Counter(
        RecordingEvent.objects.filter(recording__in=recordings, to_state="archived").values_list(
            "recording_id", flat=True
        )
    )
    assert set(archived_events.values()) == {1}, "each recording archived exactly once"


def test_archive_killed_mid_batch_is_finished_by_the_next_run(
    worker_env: dict[str, str], due_recordings: list[Recording], s3_server: S3Server, s3_bucket: str
) -> None:
    rng = random.Random(20261125)
    kills = 0
    for _ in range(6):
        proc = archive_process(worker_env)
        # Kill it mid-batch: after a few uploads are planned (and some done), before the batch is marked.
        uploading = Recording.objects.exclude(object_key="")
        goal = uploading.count() + rng.randint(1, 5)
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            if uploading.count() >= goal:
                break
            time.sleep(0.01)
        if proc.poll() is None:
            proc.kill()  # SIGKILL: no cleanup, claims and temp files left behind
            kills += 1
        proc.communicate(timeout=30)
        # A kill that left work behind is what the next run must finish; on a fast database a run may
        # finish its batch before the kill lands, so try again rather than stop at an empty case.
        if kills and Recording.objects.filter(state="archived").count() < len(due_recordings):
            break
    assert kills >= 1
    assert Recording.objects.filter(state="archived").count() < len(due_recordings)

    final = subprocess.run(
        [sys.executable, "manage.py", "archive_recordings", "--json"],
        cwd=ROOT,
        env=worker_env,
        capture_output=True,
        timeout=300,
    )

    assert final.returncode == 0, final.stderr.decode()
    report = json.loads(final.stdout)
    assert report["failed"] == 0
    assert_each_recording_uploaded_once(due_recordings, s3_server, s3_bucket)


def test_two_workers_at_once_never_take_the_same_recording(
    worker_env: dict[str, str], due_recordings: list[Recording], s3_server: S3Server, s3_bucket: str
) -> None:
    workers = [archive_process(worker_env) for _ in range(2)]
    reports = []
    for proc in workers:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()
        reports.append(json.loads(out))

    assert sum(r["archived"] for r in reports) == len(due_recordings)
    assert sum(r["claimed"] for r in reports) == len(due_recordings)
    assert_each_recording_uploaded_once(due_recordings, s3_server, s3_bucket)


def test_a_killed_workers_claims_are_released_at_once_on_the_same_host(due_recordings: list[Recording]) -> None:
    from recordings.pipeline.workqueue import claim, release_dead_claims

    # A worker that claimed a batch and was killed (its process now a zombie, then reaped).
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    token = f"archive@{socket.gethostname()}:{child.pid}:deadbeef"
    won = claim(
        Recording.objects.filter(pk__in=[r.pk for r in due_recordings[:3]]), token=token, now=clock.now(), limit=3
    )
    assert len(won) == 3
    assert release_dead_claims("archive", now=clock.now()) == 0  # alive: its claims stand
    child.kill()
    time.sleep(0.2)  # killed but not reaped yet: a zombie
    assert release_dead_claims("archive", now=clock.now()) == 3
    child.wait()
    assert not Recording.objects.filter(claimed_by=token).exists()


def test_each_stage_finds_its_live_claims_through_an_index() -> None:
    """release_dead_claims runs at the start of every stage: its query must be an index range over the few
    claimed rows, not a scan of the catalog (seconds a run at 10 million recordings)."""
    from django.db import connection

    if connection.vendor != "sqlite":
        pytest.skip(
            "MariaDB's and PostgreSQL's planners rightly scan a table this small; the plan is checked on SQLite"
        )
    from recordings.pipeline.workqueue import live_claims

    sql, params = live_claims("archive", now=clock.now()).values_list("claimed_by").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
        plan = " / ".join(str(row[-1]) for row in cursor.fetchall())
    assert "USING INDEX rec_claim_idx" in plan, plan
