"""The soak, broker part: django-q2's Redis goes away under a running `manage.py qcluster` and comes back.

The test owns its Redis (a `redis-server` on a free loopback port, no persistence, like a broker that
restarts empty) and one real qcluster pointed at it, driven by the schedules `setup_schedules` creates
(sync, archive, cleanup; the guard runs the scheduler on every cycle). Redis is killed with SIGKILL while
the pipeline works, stays away for a while (long enough, in one outage of the full soak, for the guard's
scheduler and a new pusher to meet a dead broker), and is started again on the same port. Work added
after each outage must be synced, archived and cleared by the same qcluster, and the invariant checker
must find nothing lost. Last, a qcluster started while Redis is away exits 1 and, started again once Redis
is back (systemd's Restart=on-failure), works.

What django-q2 does meanwhile (1.11): the pusher's BLPOP fails, it logs, sleeps 10 s and exits, and the
guard starts a new one; the scheduler logs "Could not create task from schedule" and rolls back, so the
schedule stays due; status saves fail and are logged. A task queued in Redis and not yet pulled is lost
with a broker that restarts empty; its schedule runs it again at its next run.
"""

from __future__ import annotations

import itertools
import os
import random
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
import redis
from django.core.management import call_command
from django.db import connections
from django_q.models import Schedule, Success

from recordings.lib.storage import S3Target
from recordings.models import Recording, RecordingEvent
from tests.factories import VicidialData
from tests.reliability.builders import add_recordings, campaign
from tests.reliability.invariants import FIGURES, Baseline, check_invariants, sha256_of
from tests.s3server import S3Server
from tests.soak.conftest import Scale
from vicirec import clock

ROOT = Path(__file__).resolve().parents[2]
SEED = int(os.environ.get("VICIREC_SOAK_SEED", "20261201"))
STAGES = ("vicirec.sync", "vicirec.archive", "vicirec.cleanup")
GUARD_CYCLE = 30  # seconds; django-q2 runs the scheduler on a guard cycle once 30 s of cycles have passed
pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True, databases=["default", "vicidial"])]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RedisServer:
    """A redis-server this test starts, kills with SIGKILL and starts again on the same port."""

    def __init__(self, workdir: Path) -> None:
        self.port = _free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
            + ["--daemonize", "no", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        deadline = time.monotonic() + 15
        while True:
            try:
                client.ping()
                return
            except redis.RedisError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server on port {self.port} did not start") from None
                time.sleep(0.05)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=15)
        self.proc = None


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    if not any(os.access(os.path.join(d, "redis-server"), os.X_OK) for d in os.environ["PATH"].split(os.pathsep)):
        if os.environ.get("CI"):
            pytest.fail("redis-server is not installed in CI")
        pytest.skip("redis-server is not installed: the broker outage part of the soak did not run")
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.kill()


class QCluster:
    """One `manage.py qcluster` in a process group of its own (the guard, pusher, monitor and workers)."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log = env, log
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

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=15)
        self.proc = None

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def tail(self) -> str:
        return self.text()[-4000:]


def _vicidial_url() -> str:
    config = connections["vicidial"].settings_dict
    return (
        f"mysql://{config['USER']}:{config['PASSWORD'] or ''}@{config['HOST'] or '127.0.0.1'}:"
        f"{config['PORT'] or 3306}/{config['NAME']}"
    )


def _due_again() -> None:
    """Time passes: the pipeline's schedules come due (the guard's next cycle enqueues them)."""
    Schedule.objects.filter(name__in=STAGES).update(next_run=clock.now() - timedelta(seconds=1))


def test_the_broker_going_away_under_qcluster_loses_nothing_and_work_goes_on(
    env: dict[str, str],
    vicidial: VicidialData,
    spool_dir: Path,
    s3_server: S3Server,
    locked_bucket: str,
    redis_server: RedisServer,
    settings: Any,
    tmp_path: Path,
    scale: Scale,
) -> None:
    if not scale.broker_outages:
        pytest.skip(
            "the broker outage runs in the full soak only (`make soak`): each recovery waits out django-q2's "
            "30 s guard cycle, too long for the short version in `make test`"
        )
    if connections["vicidial"].vendor != "mysql":
        pytest.skip("the qcluster's sync reads VICIdial's tables over MariaDB (unreachable: SQLite fallback)")
    rng = random.Random(SEED + 3)
    settings.VICIREC_Q_NAME = f"soak-{uuid.uuid4().hex[:10]}"
    settings.VICIREC_NODES, settings.VICIREC_NODE = [], ""
    cluster = QCluster(
        env
        | {
            "VICIDIAL_DATABASE_URL": _vicidial_url(),
            "VICIREC_REDIS_URL": redis_server.url,
            "VICIREC_Q_NAME": settings.VICIREC_Q_NAME,
            "VICIREC_NODE": "",
            "VICIREC_Q_WORKERS": "1",  # one worker: each cycle's sync, archive and cleanup run in that order
            "VICIREC_Q_GUARD_CYCLE": str(GUARD_CYCLE),
            "VICIREC_UPLOAD_THREADS": "1",
            "VICIREC_SECRET_KEY": "one-secret-for-the-whole-installation",
            "VICIREC_LOG_LEVEL": "INFO",
        },
        tmp_path / "qcluster.log",
    )
    now = clock.now()
    local = campaign("BROKER", keep_local_days=1, retain_days=3000)
    vicidial.campaign("BRKSYNC")
    baseline: dict[int, Baseline] = {}
    synced: dict[str, Baseline] = {}
    vicidial_ids = itertools.count(50_000_000)

    def more_work() -> dict[int, Baseline]:
        fresh = add_recordings(spool_dir, local, 4, now=now, age_days=10, seed=rng.randrange(1 << 30), wav_share=0.5)
        baseline.update(fresh)
        for _ in range(2):
            row = vicidial.outbound_call(
                campaign="BRKSYNC",
                start=now - timedelta(days=10, minutes=rng.randrange(9999)),
                recording_id=next(vicidial_ids),  # above the catalog's own entries: the sync watermark
            )
            relative = f"MP3/{row['filename']}-all.mp3"
            (spool_dir / relative).write_bytes(b"ID3\x03" + rng.randbytes(rng.randrange(2_000, 9_000)))
            synced[row["filename"]] = Baseline(relative, sha256_of(spool_dir / relative))
        return fresh

    def adopt_synced() -> None:
        for pk, filename in Recording.objects.filter(filename__in=list(synced)).values_list("pk", "filename"):
            baseline.setdefault(pk, synced[filename])

    def all_cleared() -> bool:
        adopt_synced()
        cataloged = Recording.objects.filter(filename__in=list(synced)).count() == len(synced)
        return cataloged and not Recording.objects.filter(pk__in=list(baseline)).exclude(state="cleared").exists()

    def wait_for(condition: Callable[[], bool], what: str, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not condition():
            if time.monotonic() > deadline:
                pytest.fail(f"timed out waiting for {what}\n--- qcluster log\n{cluster.tail()}")
            if not cluster.alive():
                pytest.fail(f"qcluster exited ({cluster.proc and cluster.proc.returncode})\n{cluster.tail()}")
            # The schedules ran but something is left (a task lost with the broker, a file not settled):
            # the next cycle runs them again, as their next period would in production.
            if not Schedule.objects.filter(name__in=STAGES, next_run__lte=clock.now()).exists():
                _due_again()
            time.sleep(0.2)

    more_work()
    call_command("setup_schedules", "--json", stdout=StringIO())
    Schedule.objects.filter(name__startswith="vicirec.").exclude(name__in=STAGES).delete()
    assert set(Schedule.objects.values_list("name", flat=True)) >= set(STAGES)
    target = S3Target(s3_server.client(), locked_bucket)
    cluster.start()
    try:
        for outage in range(scale.broker_outages):
            batch = more_work()
            _due_again()
            # The broker dies while the pipeline works: as soon as this batch's first upload is planned.
            planned = Recording.objects.filter(pk__in=list(batch)).exclude(object_key="")
            wait_for(planned.exists, f"outage {outage + 1}: the batch's first upload", seconds=GUARD_CYCLE * 3)
            redis_server.kill()
            killed_at = clock.now()
            _due_again()  # the schedules come due while the broker is away
            # Outage 2 (full soak) outlasts a guard cycle: the scheduler and a new pusher meet the dead broker.
            away = 6 if outage % 2 == 0 else GUARD_CYCLE + 6
            deadline = time.monotonic() + away
            while time.monotonic() < deadline:
                assert cluster.alive(), f"qcluster died with the broker\n{cluster.tail()}"
                time.sleep(0.2)
            redis_server.start()
            FIGURES.broker_outages += 1
            after = more_work()  # work that arrives after the broker is back
            _due_again()
            wait_for(all_cleared, f"outage {outage + 1}: every recording cleared", seconds=GUARD_CYCLE * 6)
            assert cluster.alive(), cluster.tail()
            # Work enqueued after the outage ran on this same qcluster, through a broker that restarted empty.
            for stage in STAGES:
                assert Success.objects.filter(group=stage, started__gt=killed_at).exists(), (stage, cluster.tail())
            events = RecordingEvent.objects.filter(recording_id__in=list(after), to_state="cleared")
            assert events.count() == len(after)
            verdict = check_invariants(target=target, spool=spool_dir, baseline=baseline, now=clock.now())
            assert verdict, f"after outage {outage + 1}:\n{verdict.summary()}"

        # A machine that boots before its broker: qcluster cannot start without Redis and exits 1 (django-q2
        # pings the broker first); systemd's Restart=on-failure (docs/operations.md) starts it again, and
        # once Redis is back it comes up and works.
        cluster.kill()
        redis_server.kill()
        cluster.start()
        assert cluster.proc is not None
        assert cluster.proc.wait(timeout=60) == 1, cluster.tail()
        assert "failed to start" in cluster.tail()
        redis_server.start()
        cluster.start()  # what Restart=on-failure does RestartSec later
        late = more_work()
        _due_again()
        wait_for(all_cleared, "the restarted qcluster: every recording cleared", seconds=GUARD_CYCLE * 6)
        assert RecordingEvent.objects.filter(recording_id__in=list(late), to_state="cleared").count() == len(late)
    finally:
        cluster.kill()
    verdict = check_invariants(target=target, spool=spool_dir, baseline=baseline, now=clock.now(), in_flight_ok=False)
    assert verdict, verdict.summary()
    mine = Recording.objects.filter(pk__in=list(baseline))
    assert len(baseline) == (scale.broker_outages * 2 + 2) * 4 + len(synced)
    assert set(mine.values_list("state", flat=True)) == {"cleared"}
    assert not mine.exclude(claimed_by="").exists()
    # django-q2's pusher met the dead broker (and a new one took over): the outage was real. In the long
    # outage the guard's scheduler met it too, rolled back, and the schedules ran once the broker was back.
    log = cluster.text()
    assert "Failed to pull task from broker" in log and "reincarnated pusher" in log
    assert "Could not create task from schedule" in log or scale.broker_outages < 2
