"""Add up the soak's passes (tests/artifacts/soak-<database>.json) into the one line `make soak` prints,
and fail when a figure is below what the soak promises or a figure that must be zero is not.

    python tests/soak/figures.py [--full]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
AT_LEAST = {"faults_injected": 1000, "kills": 100, "hostile_inputs_tried": 30}  # --full only
ZERO = (
    "recordings_lost",
    "held_recordings_deleted",
    "unverified_local_deletions",
    "vicidial_writes",
    "other_violations",
)


def main(argv: list[str]) -> int:
    total: dict[str, int] = {}
    passes = sorted(ARTIFACTS.glob("soak-*.json"))
    failed = False
    for path in passes:
        data = json.loads(path.read_text())
        failed |= bool(data.get("exitstatus"))
        for key, value in data.items():
            if isinstance(value, int) and not isinstance(value, bool) and key != "exitstatus":
                total[key] = total.get(key, 0) + value
    t = total.get
    print(
        f"soak: {t('faults_injected', 0)} storage faults, {t('kills', 0)} SIGKILLs, {t('hostile_inputs_tried', 0)} "
        f"hostile inputs, {t('db_cuts', 0)} database connections cut mid-transaction, {t('enospc_faults', 0)} "
        f"ENOSPC failures, {t('clock_jumps', 0)} clock jumps, {t('broker_outages', 0)} broker outages | "
        f"{t('recordings_lost', 0)} recordings lost, {t('held_recordings_deleted', 0)} held recordings deleted, "
        f"{t('unverified_local_deletions', 0)} unverified local deletions, {t('vicidial_writes', 0)} VICIdial writes "
        f"({t('invariant_checks', 0)} invariant checks over {len(passes)} passes)"
    )
    short = [k for k, v in AT_LEAST.items() if "--full" in argv and t(k, 0) < v]
    nonzero = [k for k in ZERO if t(k, 0)]
    if short or nonzero or failed or not passes:
        print(f"soak: FAILED (below target: {short}, not zero: {nonzero}, a pass failed: {failed})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
