"""SIGKILL the archive, cleanup and retention processes at seeded random points, round after round, and
check after every round that nothing was lost, nothing held was deleted and nothing was uploaded twice.

Each round starts one real `manage.py` process (archive_recordings, cleanup_local or enforce_retention
--confirm) on the shared test database, spool and a versioned bucket with Object Lock, waits for a random
number of custody-log rows (i.e. a random point inside its work), then kills it with SIGKILL a few
milliseconds later. The default run is small and seeded; `pytest tests/reliability --long` runs many more
rounds (VICIREC_RELIABILITY_SEED picks another seed).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from holds.actions import place_hold
from recordings.lib.storage import S3Target
from recordings.models import Recording, RecordingEvent
from retention.models import DeletionCertificate
from tests.reliability.builders import add_recordings, campaign
from tests.reliability.invariants import Baseline, Figures, check_invariants
from tests.s3server import S3Server
from vicirec import clock
from vicirec.actors import Actor

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
COMMANDS = {
    "archive": ["archive_recordings", "--json"],
    "cleanup": ["cleanup_local", "--json"],
    "retention": ["enforce_retention", "--confirm", "--json"],
}
SEED = int(os.environ.get("VICIREC_RELIABILITY_SEED", "20261125"))


def run_to_completion(stage: str, env: dict[str, str]) -> None:
    done = subprocess.run(
        [sys.executable, "manage.py", *COMMANDS[stage]], cwd=ROOT, env=env, capture_output=True, timeout=300
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]


def kill_at_random_point(stage: str, env: dict[str, str], rng: random.Random) -> bool:
    """Start ``stage``, let it write a random number of custody-log rows, SIGKILL it. True if it was killed."""
    before = RecordingEvent.objects.count()
    goal = before + rng.randint(1, 6)
    jitter = rng.uniform(0, 0.04)
    proc = subprocess.Popen(
        [sys.executable, "manage.py", *COMMANDS[stage]],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        if RecordingEvent.objects.count() >= goal:
            time.sleep(jitter)
            break
        time.sleep(0.005)
    killed = proc.poll() is None
    if killed:
        proc.send_signal(signal.SIGKILL)
    _, err = proc.communicate(timeout=30)
    assert killed or proc.returncode == 0, err.decode()[-2000:]
    return killed


def test_seeded_sigkill_rounds_lose_nothing_and_delete_nothing_held(
    env: dict[str, str], spool_dir: Path, s3_server: S3Server, locked_bucket: str, long_run: bool, figures: Figures
) -> None:
    rounds = 60 if long_run else 10
    rng = random.Random(SEED)
    now = clock.now()
    short = campaign("SHORT", keep_local_days=1, retain_days=90)
    long_ = campaign("LONG", keep_local_days=1, retain_days=3000)
    frozen = campaign("FROZEN", keep_local_days=1, retain_days=90)
    size = 3 if long_run else 1
    baseline: dict[int, Baseline] = {}
    add_recordings(spool_dir, short, 8 * size, now=now, age_days=200, seed=rng.randrange(1 << 30), baseline=baseline)
    add_recordings(spool_dir, short, 3 * size, now=now, age_days=30, seed=rng.randrange(1 << 30), baseline=baseline)
    add_recordings(spool_dir, long_, 6 * size, now=now, age_days=10, seed=rng.randrange(1 << 30), baseline=baseline)
    add_recordings(spool_dir, frozen, 3 * size, now=now, age_days=300, seed=rng.randrange(1 << 30), baseline=baseline)
    expired_short = sorted(
        Recording.objects.filter(campaign=short, start_time__lt=now - timedelta(days=90)).values_list("pk", flat=True)
    )
    by_hand = rng.sample(expired_short, 3)
    place_hold(reason="complaint under review", actor=Actor.command("tests"), recording_ids=by_hand)
    place_hold(reason="litigation about FROZEN", actor=Actor.command("tests"), campaign=frozen)
    held = set(by_hand) | set(Recording.objects.filter(campaign=frozen).values_list("pk", flat=True))
    target = S3Target(s3_server.client(), locked_bucket)
    stages = Counter()

    for n in range(rounds):
        stage = rng.choices(["archive", "cleanup", "retention"], weights=[3, 2, 2])[0]
        killed = kill_at_random_point(stage, env, rng)
        stages[stage, killed] += 1
        verdict = check_invariants(target=target, spool=spool_dir, baseline=baseline, now=clock.now())
        assert verdict, f"round {n} ({stage}, killed={killed}, seed {SEED}):\n{verdict.summary()}"
        figures.crashes_survived += killed
        if not killed:  # the stage ran out of work before the kill: give the next rounds something to cut into
            fresh = add_recordings(spool_dir, short, 2, now=now, age_days=150, seed=rng.randrange(1 << 30))
            expired_short += list(fresh)
            add_recordings(spool_dir, long_, 2, now=now, age_days=5, seed=rng.randrange(1 << 30), baseline=fresh)
            frozen_fresh = add_recordings(spool_dir, frozen, 1, now=now, age_days=150, seed=rng.randrange(1 << 30))
            held |= set(frozen_fresh)
            baseline |= fresh | frozen_fresh

    assert sum(count for (_, killed), count in stages.items() if killed) >= rounds // 2, stages
    # Restarted without interruption, the stages finish every recording.
    for stage in ("archive", "cleanup", "retention", "archive", "cleanup"):
        run_to_completion(stage, env)
    verdict = check_invariants(target=target, spool=spool_dir, baseline=baseline, now=clock.now(), in_flight_ok=False)
    assert verdict, verdict.summary()
    final = dict(Recording.objects.filter(pk__in=list(baseline)).values_list("pk", "state"))
    deletable = set(expired_short) - held
    assert {pk for pk, state in final.items() if state == "expired"} == deletable
    assert (
        set(DeletionCertificate.objects.filter(recording_id__in=list(baseline)).values_list("recording_id", flat=True))
        == deletable
    )
    assert all(final[pk] == "cleared" for pk in set(baseline) - deletable), Counter(final.values())
    assert all(target.legal_hold_status(r.object_key, r.version_id) for r in Recording.objects.filter(pk__in=held))
    assert not Recording.objects.exclude(claimed_by="").filter(pk__in=list(baseline)).exists()
