"""Acceptance: two real qcluster workers, one per telephony server, driven by the schedules on Redis.

Each node's worker has its own spool folder (its own disk); both share the test database and a real
SeaweedFS bucket. Every recording must be archived exactly once, by its own node, and a worker killed
with SIGKILL in the middle of a run and started again must lose nothing and redo nothing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
import redis
from django.core.management import call_command
from django_q.models import Schedule, Success

from recordings.demo.speech import synthesize_speech_like_wav
from recordings.models import Campaign, Recording, RecordingEvent
from recordings.ops.schedules import node_cluster
from tests.factories import make_policy, make_recording
from tests.s3server import S3Server
from tests.workers import worker_env
from vicirec import clock

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
NODES = ("10.0.0.11", "10.0.0.12")
REDIS_URL = os.environ.get("VICIREC_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def q_name(settings: Any) -> Iterator[str]:
    """A cluster name of this test run alone, so parallel runs on one Redis never share a queue."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"Redis at {REDIS_URL} is unreachable in CI: {exc}")
        pytest.skip(f"Redis at {REDIS_URL} is unreachable: {exc}")
    name = f"vicirec-test-{uuid.uuid4().hex[:10]}"
    settings.VICIREC_Q_NAME = name
    yield name
    keys = list(client.scan_iter(f"django_q:{name}*"))
    if keys:
        client.delete(*keys)


class Node:
    """One telephony server: its spool folder and its qcluster process (in a process group of its own)."""

    def __init__(self, ip: str, root: Path, base_env: dict[str, str]) -> None:
        self.ip = ip
        self.spool = root / ip / "monitorDONE"
        self.spool.mkdir(parents=True)
        self.log = root / ip / "qcluster.log"
        self.env = {
            **base_env,
            "VICIREC_NODE": ip,
            "VICIREC_SPOOL_DIRS": str(self.spool),
            "VICIREC_HOME": str(root / ip),
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "manage.py", "qcluster"],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill(self, sig: int = signal.SIGKILL, timeout: float = 15) -> None:
        """Signal the whole process group (the guard, pusher, monitor and workers), as systemd would."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(timeout=timeout)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=timeout)
        try:  # orphaned children of a killed guard
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        # Like systemd before a restart, wait until every process of the group is gone (reaped, not a zombie
        # whose pid still looks alive to the claim-release check).
        deadline = time.monotonic() + timeout
        while _group_members(self.proc.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        self.proc = None


def _group_members(pgid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid:
                members.append(int(entry.name))
    return members


@pytest.fixture
def nodes(q_name: str, s3_server: S3Server, s3_bucket: str, tmp_path: Path) -> Iterator[dict[str, Node]]:
    base_env = worker_env(
        s3_server,
        s3_bucket,
        home=tmp_path / "home",
        VICIREC_SECRET_KEY="one-secret-for-the-whole-installation",
        VICIREC_REDIS_URL=REDIS_URL,
        VICIREC_Q_NAME=q_name,
        VICIREC_Q_WORKERS="2",
        VICIREC_Q_GUARD_CYCLE="30",  # run the scheduler as soon as the cluster is up
        VICIREC_UPLOAD_THREADS="1",
        VICIREC_LOG_LEVEL="INFO",
    )
    found = {ip: Node(ip, tmp_path, base_env) for ip in NODES}
    yield found
    for node in found.values():
        node.kill()  # the test is over; a graceful stop would wait out the 30 s guard cycle


def recordings_on(node: Node, campaign: Campaign, count: int, seconds: int) -> list[Recording]:
    made = []
    for n in range(count):
        recording = make_recording(
            server_ip=node.ip, campaign=campaign, start_time=clock.now() - timedelta(days=10, minutes=n)
        )
        synthesize_speech_like_wav(node.spool / f"{recording.filename}-all.wav", seconds=seconds, seed=n)
        made.append(recording)
    return made


def archived(recordings: list[Recording]) -> int:
    return RecordingEvent.objects.filter(recording__in=recordings, to_state="archived").count()


def archived_by_runs(node: Node) -> int:
    runs = Success.objects.filter(group=f"vicirec.archive.{node.ip}")
    return sum((run.result or {}).get("archived", 0) for run in runs)


def wait_for(condition: Callable[[], bool], *, seconds: float, nodes: dict[str, Node], what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {n.ip}\n{n.log.read_text()[-3000:]}" for n in nodes.values() if n.log.exists())
            pytest.fail(f"timed out waiting for {what}\n{logs}")
        time.sleep(0.05)


def test_two_node_workers_archive_each_recording_once_on_its_own_node_and_survive_kill_9(
    nodes: dict[str, Node], q_name: str, s3_server: S3Server, s3_bucket: str
) -> None:
    campaign = Campaign.objects.create(kind="outbound", campaign_id="COLLECT", name="Collections")
    make_policy(campaign=campaign, keep_local_days=3, retain_days=1000, codec="mp3")
    a, b = nodes["10.0.0.11"], nodes["10.0.0.12"]
    on_a = recordings_on(a, campaign, count=16, seconds=30)
    on_b = recordings_on(b, campaign, count=6, seconds=10)
    call_command("setup_schedules", "--json", "--nodes", ",".join(NODES), stdout=StringIO())

    a.start()
    b.start()
    # Uploads in flight: their hash chain and plan are recorded before each PUT.
    planned = Recording.objects.filter(pk__in=[r.pk for r in on_a]).exclude(object_key="")
    wait_for(lambda: planned.count() >= 2, seconds=45, nodes=nodes, what="node A's first uploads")
    a.kill()  # SIGKILL in the middle of node A's archive run
    done_before_kill = archived(on_a)
    assert done_before_kill < len(on_a), "the kill must land mid-run"

    wait_for(lambda: archived(on_b) == len(on_b), seconds=45, nodes=nodes, what="node B's uploads")
    # Time passes: node A's schedules come due again, and its worker is started again.
    Schedule.objects.filter(cluster=node_cluster(a.ip)).update(next_run=clock.now() - timedelta(seconds=1))
    a.start()
    wait_for(lambda: archived(on_a) == len(on_a), seconds=45, nodes=nodes, what="node A to finish after restart")
    # Each run's result as django-q2's monitor saves it: the killed run left none, the others add up.
    expected = {a.ip: len(on_a) - done_before_kill, b.ip: len(on_b)}
    wait_for(lambda: archived_by_runs(a) == expected[a.ip], seconds=15, nodes=nodes, what="node A's run results")
    wait_for(lambda: archived_by_runs(b) == expected[b.ip], seconds=15, nodes=nodes, what="node B's run results")

    everyone = on_a + on_b
    # Exactly once: one "archived" custody event per recording, one object per catalog key.
    assert set(
        Counter(
            RecordingEvent.objects.filter(recording__in=everyone, to_state="archived").values_list(
                "recording_id", flat=True
            )
        ).values()
    ) == {1}
    client = s3_server.client()
    keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket=s3_bucket).get("Contents", []))
    assert keys == sorted(
        Recording.objects.filter(pk__in=[r.pk for r in everyone]).values_list("object_key", flat=True)
    )
    # By its own node: a worker that took another server's recording would not find the file on its own disk
    # and would have logged it missing or failed; and each node's runs were executed by its own cluster.
    states = Counter(RecordingEvent.objects.filter(recording__in=everyone).values_list("to_state", flat=True))
    assert set(states) <= {"archived", "cleared"}, states
    for node in (a, b):
        clusters = Success.objects.filter(group=f"vicirec.archive.{node.ip}").values_list("cluster", flat=True)
        assert set(clusters) == {node_cluster(node.ip)}
