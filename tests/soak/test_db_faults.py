"""The soak, database passes: vicirec's own database (MariaDB or PostgreSQL) behind tests/tcpproxy.py,
which cuts worker processes' connections in the middle of their transactions (a statement that never
arrives, one that arrives but whose answer is lost, a COMMIT whose answer is lost).

A process whose connection is cut may die (that is allowed) but the catalog, the bucket and the spool
must still agree: the invariant checker runs after every round, and once the network is sound again the
stages finish every recording exactly.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connections

from holds.actions import place_hold
from recordings.lib.storage import S3Target
from recordings.models import Recording
from retention.models import DeletionCertificate
from tests.reliability.builders import add_recordings, campaign
from tests.reliability.invariants import FIGURES, Baseline, check_invariants
from tests.s3server import S3Server
from tests.soak.conftest import Scale
from tests.tcpproxy import TcpFaultProxy
from vicirec import clock
from vicirec.actors import Actor

ROOT = Path(__file__).resolve().parents[2]
SEED = int(os.environ.get("VICIREC_SOAK_SEED", "20261201"))
COMMANDS = {
    "archive": ["archive_recordings", "--json"],
    "cleanup": ["cleanup_local", "--json"],
    "retention": ["enforce_retention", "--confirm", "--json"],
}
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def proxied_url(port: int) -> str:
    config = connections["default"].settings_dict
    scheme = "mysql" if connections["default"].vendor == "mysql" else "postgres"
    return f"{scheme}://{config['USER']}:{config['PASSWORD'] or ''}@127.0.0.1:{port}/{config['NAME']}"


def test_database_connections_cut_mid_transaction_lose_nothing(
    env: dict[str, str], spool_dir: Path, s3_server: S3Server, locked_bucket: str, scale: Scale
) -> None:
    vendor = connections["default"].vendor
    if vendor == "sqlite":
        pytest.skip(
            "vicirec's own database is SQLite in this pass: no connection to cut (the MariaDB and "
            "PostgreSQL passes run this test)"
        )
    config = connections["default"].settings_dict
    rng = random.Random(SEED + 2)
    now = clock.now()
    short = campaign("DBSHORT", keep_local_days=1, retain_days=90)
    long_ = campaign("DBLONG", keep_local_days=1, retain_days=3000)
    baseline: dict[int, Baseline] = {}
    held: set[int] = set()
    target = S3Target(s3_server.client(), locked_bucket)
    outcomes: Counter[tuple[str, int]] = Counter()

    def more_work() -> None:
        fresh = add_recordings(spool_dir, short, 4, now=now, age_days=200, seed=rng.randrange(1 << 30), wav_share=0.2)
        add_recordings(
            spool_dir, long_, 4, now=now, age_days=10, seed=rng.randrange(1 << 30), baseline=fresh, wav_share=0.2
        )
        pick = rng.choice(sorted(fresh))
        place_hold(reason="complaint under review", actor=Actor.command("tests"), recording_ids=[pick])
        held.add(pick)
        baseline.update(fresh)

    protocol = "mysql" if vendor == "mysql" else "postgres"
    upstream = (config["HOST"] or "127.0.0.1", int(config["PORT"] or (3306 if vendor == "mysql" else 5432)))
    with TcpFaultProxy(upstream, protocol=protocol, cut_rate=0.15, seed=SEED) as cutter:
        cut_env = env | {"VICIREC_DATABASE_URL": proxied_url(cutter.port)}
        rounds = 0
        while cutter.cuts < scale.db_cuts:
            rounds += 1
            assert rounds < scale.db_cuts * 6, (cutter.cuts, outcomes)
            if rounds % 3 == 1:
                more_work()
            stage = rng.choice(list(COMMANDS))
            done = subprocess.run(
                [sys.executable, "manage.py", *COMMANDS[stage]], cwd=ROOT, env=cut_env, capture_output=True, timeout=300
            )
            outcomes[stage, done.returncode] += 1
            verdict = check_invariants(target=target, spool=spool_dir, baseline=baseline, now=clock.now())
            assert verdict, f"round {rounds} ({stage}, exit {done.returncode}):\n{verdict.summary()}"
        FIGURES.db_cuts += cutter.cuts
        assert cutter.statements > 0 and cutter.cuts >= scale.db_cuts

    # The network is sound again and two days pass (a run that failed waits out its back-off first).
    later = env | {"VICIREC_TEST_CLOCK_OFFSET_SECONDS": str(2 * 86400)}
    for stage in ("archive", "cleanup", "retention", "archive", "cleanup"):
        done = subprocess.run(
            [sys.executable, "manage.py", *COMMANDS[stage]], cwd=ROOT, env=later, capture_output=True, timeout=300
        )
        assert done.returncode == 0, done.stderr.decode()[-2000:]
    real_now = clock.now() + timedelta(days=2)
    verdict = check_invariants(target=target, spool=spool_dir, baseline=baseline, now=real_now, in_flight_ok=False)
    assert verdict, verdict.summary()
    mine = Recording.objects.filter(pk__in=list(baseline))
    expired = set(mine.filter(state="expired").values_list("pk", flat=True))
    assert expired == set(mine.filter(campaign=short).values_list("pk", flat=True)) - held
    certified = DeletionCertificate.objects.filter(recording_id__in=list(baseline)).values_list(
        "recording_id", flat=True
    )
    assert set(certified) == expired
    assert set(mine.exclude(pk__in=expired).values_list("state", flat=True)) == {"cleared"}
    assert not mine.exclude(claimed_by="").exists()
