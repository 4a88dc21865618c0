"""The soak, SQLite pass: a storm of storage faults, SIGKILLs of every stage (sync included) with clocks
jumping back and forward and stages racing each other, and a scratch folder that runs out of space.

The invariant checker runs after every round; its findings and the injectors' counts are the figures.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.db import connections

from holds.actions import place_hold
from recordings.demo.speech import synthesize_speech_like_wav
from recordings.lib.storage import S3Target
from recordings.models import Recording, RecordingEvent
from recordings.pipeline.archive import archive_due
from recordings.pipeline.cleanup import cleanup_local
from recordings.pipeline.retention import enforce_retention
from retention.models import DeletionCertificate
from tests.factories import VicidialData
from tests.faultproxy import Fault, FaultProxy, Request
from tests.reliability.builders import add_recordings, campaign
from tests.reliability.conftest import proxied_storage
from tests.reliability.invariants import FIGURES, Baseline, check_invariants, sha256_of
from tests.s3server import S3Server
from tests.soak.conftest import FULL, Scale
from tests.tcpproxy import TcpFaultProxy
from vicirec import clock
from vicirec.actors import Actor

ROOT = Path(__file__).resolve().parents[2]
SEED = int(os.environ.get("VICIREC_SOAK_SEED", "20261201"))
ACTOR = Actor.command("tests")
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _sqlite_pass_only() -> None:
    """The soak's SQLite parts run once, in the first pass; the database passes run test_db_faults.py."""
    if connections["default"].vendor != "sqlite" and not FULL:
        pytest.skip("the short soak runs in the SQLite pass of `make test`")


# --- storage faults --------------------------------------------------------------------------------------

FAULTS = [
    (Fault.drop(), 3),
    (Fault.drop_response(), 2),
    (Fault.error(500), 3),
    (Fault.error(503), 2),
    (Fault.slow_down(), 3),
    (Fault.stall(0.5), 1),
    (Fault.stall(0.5, after_forwarding=True), 1),
    (Fault.flip(), 2),
]


def storm(rng: random.Random, rate: float) -> Any:
    kinds, weights = zip(*FAULTS, strict=True)

    def rule(request: Request) -> Fault | None:
        if not request.key or rng.random() >= rate:
            return None
        fault = rng.choices(kinds, weights=weights)[0]
        if fault.kind == "flip" and request.method != "PUT":
            return Fault.error(500)
        return fault

    return rule


@pytest.mark.django_db
def test_storage_fault_storm_loses_nothing(
    settings: Any, s3_server: S3Server, s3_bucket: str, proxy: FaultProxy, spool_dir: Path, scale: Scale
) -> None:
    rng = random.Random(SEED)
    settings.STORAGES = {
        **settings.STORAGES,
        "archive": proxied_storage(s3_server, s3_bucket, proxy, read_timeout=0.35, max_attempts=1),
    }
    direct = S3Target(s3_server.client(), s3_bucket)
    short, long_ = campaign("STORMS", retain_days=90), campaign("STORML", retain_days=3000)
    baseline: dict[int, Baseline] = {}
    proxy.rule = storm(rng, rate=0.5)
    now = NOW
    held: set[int] = set()
    rounds = 0
    while proxy.faults_injected < scale.storage_faults:
        rounds += 1
        add_recordings(
            spool_dir, short, 3, now=now, age_days=200, seed=rng.randrange(1 << 30), baseline=baseline, wav_share=0.1
        )
        add_recordings(
            spool_dir, long_, 3, now=now, age_days=5, seed=rng.randrange(1 << 30), baseline=baseline, wav_share=0.1
        )
        if rounds % 5 == 1:
            alive = Recording.objects.filter(pk__in=list(baseline)).exclude(state="expired")
            pick = rng.sample(sorted(alive.values_list("pk", flat=True)), 2)
            # A refused Object Lock call leaves the hold standing and says so (hold.object_lock_problem).
            place_hold(reason="complaint under review", actor=ACTOR, recording_ids=pick)
            assert set(pick) <= set(Recording.objects.filter(pk__in=pick).held().values_list("pk", flat=True))
            held |= set(pick)
        archive_due(now=now, node="", threads=1)
        cleanup_local(now=now, node="")
        if rounds % 3 == 0:
            enforce_retention(now=now, dry_run=False, confirm=True, max_share=1.0)
        verdict = check_invariants(target=direct, spool=spool_dir, baseline=baseline, now=now)
        assert verdict, f"storm round {rounds}:\n{verdict.summary()}"
        now += timedelta(hours=12)
        assert rounds < 400, proxy.faults_injected

    proxy.reset()  # the network heals: everything ends cleared or expired with a certificate
    later = now + timedelta(days=60)
    for _ in range(3):
        archive_due(now=later, node="", threads=1)
        cleanup_local(now=later, node="")
        enforce_retention(now=later, dry_run=False, confirm=True, max_share=1.0)
    verdict = check_invariants(target=direct, spool=spool_dir, baseline=baseline, now=later, in_flight_ok=False)
    assert verdict, verdict.summary()
    states = Counter(Recording.objects.filter(pk__in=list(baseline)).values_list("state", flat=True))
    stuck = Recording.objects.filter(pk__in=list(baseline)).exclude(state__in=["cleared", "expired"])
    # What waits for a person (bytes the server refused as corrupt are retried, never dropped) keeps its file.
    assert all((spool_dir / baseline[r.pk].relative).is_file() for r in stuck), states
    assert not Recording.objects.filter(pk__in=held, state="expired").exists()


# --- SIGKILL of every stage, clocks that jump, stages racing each other -------------------------------------

COMMANDS = {
    "sync": ["sync_recordings", "--json"],
    "archive": ["archive_recordings", "--json"],
    "cleanup": ["cleanup_local", "--json"],
    "retention": ["enforce_retention", "--confirm", "--json"],
}
OFFSETS = [-2 * 86400, -3600, 3600, 2 * 86400]


def _vicidial_url(port: int) -> str:
    config = connections["vicidial"].settings_dict
    return f"mysql://{config['USER']}:{config['PASSWORD'] or ''}@127.0.0.1:{port}/{config['NAME']}"


def _start(stage: str, env: dict[str, str], offset: int) -> subprocess.Popen[bytes]:
    extra = {"VICIREC_TEST_CLOCK_OFFSET_SECONDS": str(offset)} if offset else {}
    return subprocess.Popen(
        [sys.executable, "manage.py", *COMMANDS[stage]],
        cwd=ROOT,
        env=env | extra,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _kill_round(stages: list[str], env: dict[str, str], rng: random.Random) -> list[tuple[str, bool]]:
    """Start ``stages`` at once (each maybe with a jumped clock), SIGKILL them at a random point."""
    goal = RecordingEvent.objects.count() + rng.randint(1, 8)
    procs = []
    for stage in stages:
        offset = rng.choice(OFFSETS) if rng.random() < 0.4 else 0
        FIGURES.clock_jumps += bool(offset)
        procs.append((stage, _start(stage, env, offset)))
    deadline = time.monotonic() + 60
    while any(p.poll() is None for _, p in procs) and time.monotonic() < deadline:
        if RecordingEvent.objects.count() >= goal:
            time.sleep(rng.uniform(0, 0.05))
            break
        time.sleep(0.005)
    outcome = []
    for stage, proc in procs:
        killed = proc.poll() is None
        if killed:
            proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate(timeout=60)
        assert killed or proc.returncode == 0, (stage, err.decode()[-2000:])
        outcome.append((stage, killed))
    return outcome


def _run(stage: str, env: dict[str, str]) -> None:
    done = subprocess.run(
        [sys.executable, "manage.py", *COMMANDS[stage]], cwd=ROOT, env=env, capture_output=True, timeout=300
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]


@pytest.mark.django_db(transaction=True, databases=["default", "vicidial"])
def test_sigkill_of_every_stage_with_jumping_clocks_loses_nothing(
    env: dict[str, str],
    vicidial: VicidialData,
    spool_dir: Path,
    s3_server: S3Server,
    locked_bucket: str,
    scale: Scale,
) -> None:
    rng = random.Random(SEED + 1)
    now = clock.now()
    on_mariadb = connections["vicidial"].vendor == "mysql"
    wire = (
        TcpFaultProxy(
            (
                connections["vicidial"].settings_dict["HOST"] or "127.0.0.1",
                int(connections["vicidial"].settings_dict["PORT"] or 3306),
            ),
            protocol="mysql",
        )
        if on_mariadb
        else None
    )
    stages = ["sync", "archive", "cleanup", "retention"] if on_mariadb else ["archive", "cleanup", "retention"]
    if wire is not None:
        env = env | {"VICIDIAL_DATABASE_URL": _vicidial_url(wire.port)}
    short = campaign("SHORT", keep_local_days=1, retain_days=90)
    long_ = campaign("LONG", keep_local_days=1, retain_days=3000)
    vicidial.campaign("SOAK")
    baseline: dict[int, Baseline] = {}
    synced: dict[str, Baseline] = {}
    held: set[int] = set()
    target = S3Target(s3_server.client(), locked_bucket)
    kills: Counter[str] = Counter()

    def more_work() -> None:
        fresh = add_recordings(spool_dir, short, 3, now=now, age_days=200, seed=rng.randrange(1 << 30), wav_share=0.2)
        add_recordings(
            spool_dir, long_, 2, now=now, age_days=10, seed=rng.randrange(1 << 30), baseline=fresh, wav_share=0.2
        )
        pick = rng.choice(sorted(fresh))
        place_hold(reason="complaint under review", actor=ACTOR, recording_ids=[pick])
        held.add(pick)
        baseline.update(fresh)
        if on_mariadb:
            for _ in range(3):
                row = vicidial.outbound_call(
                    campaign="SOAK", start=now - timedelta(days=10, minutes=rng.randrange(9999))
                )
                relative = f"{row['filename']}-all.mp3"
                (spool_dir / "MP3").mkdir(exist_ok=True)
                (spool_dir / "MP3" / relative).write_bytes(b"ID3\x03" + rng.randbytes(rng.randrange(2_000, 9_000)))
                synced[row["filename"]] = Baseline(f"MP3/{relative}", sha256_of(spool_dir / "MP3" / relative))

    def adopt_synced() -> None:
        for pk, filename in Recording.objects.filter(filename__in=list(synced)).values_list("pk", "filename"):
            baseline.setdefault(pk, synced[filename])

    more_work()
    rounds = 0
    while sum(kills.values()) < scale.kills:
        rounds += 1
        assert rounds < scale.kills * 4, kills
        # The least killed stage, alone (40%) or racing one or two others (60%), each with its own clock.
        order = sorted(stages, key=lambda s: (kills[s], rng.random()))
        draw = rng.random()
        together = 1 if draw < 0.4 else 2 if draw < 0.85 or len(stages) < 3 else 3
        chosen = [order[0], *rng.sample(order[1:], together - 1)]
        outcome = _kill_round(chosen, env, rng)
        for stage, killed in outcome:
            kills[stage] += killed
            FIGURES.crashes_survived += killed
        adopt_synced()
        verdict = check_invariants(target=target, spool=spool_dir, baseline=baseline, now=clock.now())
        assert verdict, f"round {rounds} {outcome} (seed {SEED}):\n{verdict.summary()}"
        if not all(killed for _, killed in outcome):
            more_work()

    assert all(kills[s] >= (scale.kills // len(stages)) // 2 for s in stages), kills
    for stage in (*stages, "archive", "cleanup"):
        _run(stage, env)
    adopt_synced()
    real_now = clock.now()
    verdict = check_invariants(target=target, spool=spool_dir, baseline=baseline, now=real_now, in_flight_ok=False)
    assert verdict, verdict.summary()
    mine = Recording.objects.filter(pk__in=list(baseline))
    expired = set(mine.filter(state="expired").values_list("pk", flat=True))
    assert expired == set(mine.filter(campaign=short).values_list("pk", flat=True)) - held
    assert (
        set(DeletionCertificate.objects.filter(recording_id__in=list(baseline)).values_list("recording_id", flat=True))
        == expired
    )
    assert set(mine.exclude(pk__in=expired).values_list("state", flat=True)) == {"cleared"}
    assert not mine.exclude(claimed_by="").exists()
    assert not mine.filter(pk__in=held, state="expired").exists()
    if wire is not None:
        assert wire.statements > 0
        FIGURES.vicidial_writes += wire.writes
        assert wire.writes == 0, wire.written[:5]
        wire.close()


# --- a full scratch folder --------------------------------------------------------------------------------


def _mount_tmpfs(where: Path, size: str) -> bool:
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True)
    return done.returncode == 0


@pytest.mark.django_db
def test_a_full_scratch_folder_fails_the_encode_keeps_every_file_and_recovers(
    settings: Any, tmp_path: Path, spool_dir: Path, scale: Scale
) -> None:
    work = tmp_path / "scratch"
    if not _mount_tmpfs(work, "256k"):
        if os.environ.get("CI"):
            pytest.fail("cannot mount a tmpfs for the ENOSPC soak in CI (it runs as root)")
        pytest.skip("mounting a small tmpfs was refused (needs root): the ENOSPC part of the soak did not run")
    try:
        settings.VICIREC_WORK_DIR = work
        settings.STORAGES = {
            **settings.STORAGES,
            "archive": {
                "BACKEND": "django.core.files.storage.FileSystemStorage",
                "OPTIONS": {"location": tmp_path / "a"},
            },
        }
        from recordings.lib.storage import FilesystemTarget

        target = FilesystemTarget(tmp_path / "a")
        camp = campaign("FULL", codec="mp3")
        baseline: dict[int, Baseline] = {}
        now = NOW
        for n in range(scale.enospc_rounds):
            fresh = {}
            for k in range(3):
                r = Recording.objects.create(
                    recording_id=900000 + n * 10 + k,
                    server_ip="10.0.0.11",
                    start_time=now - timedelta(days=10),
                    length_in_sec=20,
                    filename=f"full_{n}_{k}",
                    campaign=camp,
                )
                synthesize_speech_like_wav(spool_dir / f"full_{n}_{k}-all.wav", seconds=20, seed=k)
                Recording.objects.filter(pk=r.pk).update(local_path=f"full_{n}_{k}-all.wav")
                fresh[r.pk] = Baseline(f"full_{n}_{k}-all.wav", sha256_of(spool_dir / f"full_{n}_{k}-all.wav"))
            baseline |= fresh
            filler = work / "filler"
            with filler.open("wb", buffering=0) as handle:  # the scratch folder is full (other work filled it)
                try:
                    while True:
                        handle.write(b"\0" * 4096)
                except OSError:
                    pass
            report = archive_due(now=now, node="", threads=1)
            assert report.archived == 0 and report.failed == len(fresh), report
            errors = set(Recording.objects.filter(pk__in=list(fresh)).values_list("error", flat=True))
            assert all("space" in e.lower() for e in errors), errors
            FIGURES.enospc_faults += report.failed
            assert cleanup_local(now=now + timedelta(days=30), node="").cleared == 0
            verdict = check_invariants(target=target, spool=spool_dir, baseline=baseline, now=now)
            assert verdict, verdict.summary()
            filler.unlink()  # space comes back: the next attempt archives them
            now = max(Recording.objects.filter(pk__in=list(fresh)).values_list("next_attempt_at", flat=True))
            assert archive_due(now=now, node="", threads=1).archived == len(fresh)
            assert cleanup_local(now=now, node="").cleared == len(fresh)
            verdict = check_invariants(target=target, spool=spool_dir, baseline=baseline, now=now, in_flight_ok=False)
            assert verdict, verdict.summary()
    finally:
        subprocess.run(["umount", "-l", str(work)], check=False)
        shutil.rmtree(work, ignore_errors=True)
