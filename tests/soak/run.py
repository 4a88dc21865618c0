"""`make soak`: the soak's passes side by side, then one line of figures (tests/soak/figures.py).

    python tests/soak/run.py [DATABASE_URL ...]

Four passes run at once, each a pytest session of its own (its own test databases, SeaweedFS and
spool): the reliability suite with the storage-fault storm, the full scratch folder and the broker
outages; the SIGKILL rounds; and the database-fault part with vicirec's own database on each
DATABASE_URL (MariaDB, PostgreSQL). Most of a pass is one process at a time, waiting on a subprocess,
a stall or django-q2's guard cycle, so side by side they share the two cores instead of leaving one
idle. Each pass writes tests/artifacts/soak-<pass>.json (its figures) and soak-<pass>.log (its output,
shown when it fails); the figures line adds them up.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
PYTEST = [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "--durations=8"]
BIG = "tests/reliability/test_hostile_input.py::test_a_200_mb_recording_is_archived_and_verified_with_bounded_memory"


def passes(databases: list[str]) -> dict[str, tuple[list[str], dict[str, str]]]:
    found = {
        "sqlite-faults": (
            [
                "tests/reliability",
                "tests/soak/test_soak.py::test_storage_fault_storm_loses_nothing",
                "tests/soak/test_soak.py::test_a_full_scratch_folder_fails_the_encode_keeps_every_file_and_recovers",
                "tests/soak/test_broker.py",
                "--deselect",
                BIG,  # 200 MB on disk and a minute of hashing: the suite runs it, the soak leaves it out
            ],
            {"VICIREC_HYPOTHESIS_EXAMPLES": "30"},
        ),
        "sqlite-kills": (
            [
                "tests/soak/test_soak.py::test_sigkill_of_every_stage_with_jumping_clocks_loses_nothing",
            ],
            {},
        ),
    }
    for url in databases:
        name = url.split(":", 1)[0].replace("postgresql", "postgres")
        found[name] = (["tests/soak/test_db_faults.py"], {"VICIREC_TEST_DATABASE_URL": url})
    return found


def main(argv: list[str]) -> int:
    ARTIFACTS.mkdir(exist_ok=True)
    for old in ARTIFACTS.glob("soak-*"):
        old.unlink()
    started = time.monotonic()
    running = {}
    for name, (args, extra) in passes(argv).items():
        env = {**os.environ, "VICIREC_SOAK": "full", "VICIREC_SOAK_PASS": name, **extra}
        log = (ARTIFACTS / f"soak-{name}.log").open("wb")
        print(f"== soak pass {name}: pytest {' '.join(args)}", flush=True)
        running[name] = (
            subprocess.Popen([*PYTEST, *args], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT),
            log,
        )
    failed = []
    while running:
        time.sleep(1)
        for name, (proc, log) in list(running.items()):
            code = proc.poll()
            if code is None:
                continue
            log.close()
            del running[name]
            print(f"== soak pass {name}: exit {code} after {(time.monotonic() - started) / 60:.1f} min", flush=True)
            if code:
                failed.append(name)
                print((ARTIFACTS / f"soak-{name}.log").read_text(errors="replace")[-6000:], flush=True)
    # CPU time of every process the passes started and reaped (workers, SeaweedFS, qcluster, redis …):
    # divided by the two cores, what the soak needs of a machine with nothing else running.
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (usage.ru_utime + usage.ru_stime) / 60
    print(
        f"== soak: {(time.monotonic() - started) / 60:.1f} min wall, {cpu:.1f} min of CPU "
        f"({cpu / (os.cpu_count() or 1):.1f} min on {os.cpu_count()} idle cores), "
        f"load average {os.getloadavg()[1]:.1f} (5 min)",
        flush=True,
    )
    figures = subprocess.run([sys.executable, str(ROOT / "tests" / "soak" / "figures.py"), "--full"], cwd=ROOT)
    return 1 if failed else figures.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
