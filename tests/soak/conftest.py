"""The soak (`make soak`; a short version runs in CI): the pipeline under storage faults, SIGKILLs of
every stage, clock jumps, a full scratch folder, database connections cut mid-transaction and the broker
going away. Every figure is counted by the reliability suite's checker (tests/reliability/invariants.py)
or by the fault injectors; the session writes them to tests/artifacts/soak-<database>.json and
`tests/soak/figures.py` adds the passes up into one line.

VICIREC_SOAK=full sets the sizes `make soak` promises; unset, each part runs a short version.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

import pytest
from django.db import connections

from tests.reliability.conftest import (  # noqa: F401  (fixtures shared with the reliability suite)
    direct_target,
    env,
    locked_bucket,
    proxied_bucket,
    proxy,
)
from tests.reliability.invariants import FIGURES

ARTIFACTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "artifacts")
FULL = os.environ.get("VICIREC_SOAK", "") == "full"


@dataclass(frozen=True)
class Scale:
    storage_faults: int
    kills: int
    db_cuts: int
    enospc_rounds: int
    broker_outages: int


SCALE = (
    Scale(storage_faults=1100, kills=110, db_cuts=20, enospc_rounds=3, broker_outages=2)
    if FULL
    else Scale(storage_faults=60, kills=6, db_cuts=4, enospc_rounds=1, broker_outages=0)
)


@pytest.fixture(scope="session")
def scale() -> Scale:
    return SCALE


def vendor() -> str:
    return connections["default"].vendor


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if not FIGURES.used:
        return
    figures = {**FIGURES.as_dict(), "kills": FIGURES.crashes_survived}
    os.makedirs(ARTIFACTS, exist_ok=True)
    # One file per pass: tests/soak/run.py names its passes; a pass run by hand is named by its database.
    name = os.environ.get("VICIREC_SOAK_PASS") or vendor()
    with open(os.path.join(ARTIFACTS, f"soak-{name}.json"), "w") as handle:
        json.dump({**figures, "full": FULL, "exitstatus": int(exitstatus)}, handle, indent=2)
    terminalreporter.write_sep("-", "soak figures (this pass)")
    terminalreporter.write_line(json.dumps(figures))
