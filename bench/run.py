"""Run every benchmark in bench/ (bench_*.py) in turn and collect their results into one JSON object.

    .venv/bin/python bench/run.py [NAME ...] [--timeout SECONDS] [--out bench/results.json]

Each script runs in its own process with this interpreter (with --json when it accepts it); its table and
progress go to stderr as they come, and the JSON object it prints on stdout is collected. NAME selects
scripts ("archive" or "bench_archive.py"); by default all run. bench_sync.py and bench_scale.py need MariaDB
at 127.0.0.1:3306 (user root, no password) and are skipped, with the reason, when nothing answers there
(bench_scale.py also PostgreSQL at 127.0.0.1:5432, user postgres; `bench/run.py scale` runs it alone).

Prints {"benchmarks": {name: result | {"skipped": why} | {"error": why}}, ...} on stdout, saves the same
to bench/results.json, and ends with a short combined table on stderr. Exit status 1 if a script failed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
MARIADB = ("127.0.0.1", 3306)


def mariadb_problem() -> str | None:
    """None if MariaDB answers at 127.0.0.1:3306 as root (what bench/_setup.py uses), else why not."""
    try:
        with socket.create_connection(MARIADB, timeout=3):
            pass
    except OSError as exc:
        return f"nothing answers at {MARIADB[0]}:{MARIADB[1]} ({exc.strerror or exc})"
    try:
        import MySQLdb
    except ImportError as exc:
        return f"mysqlclient is not installed in {sys.executable} ({exc})"
    try:
        MySQLdb.connect(host=MARIADB[0], port=MARIADB[1], user="root", connect_timeout=3).close()
    except MySQLdb.Error as exc:
        return f"cannot log in as root at {MARIADB[0]}:{MARIADB[1]} ({exc})"
    return None


NEEDS = {"bench_sync.py": mariadb_problem, "bench_scale.py": mariadb_problem}


def accepts_json(script: Path) -> bool:
    return '"--json"' in script.read_text()


def parse_json(stdout: str) -> Any:
    """The first JSON object in a script's stdout (some print a human line after it)."""
    try:
        return json.loads(stdout)
    except json.JSONDecodeError:
        pass
    start = stdout.find("{")
    while start != -1:
        try:
            value, _end = json.JSONDecoder().raw_decode(stdout[start:])
            return value
        except json.JSONDecodeError:
            start = stdout.find("{", start + 1)
    raise ValueError("no JSON object on stdout")


def run_one(script: Path, *, timeout: float) -> dict[str, Any]:
    check = NEEDS.get(script.name)
    if check and (why := check()):
        print(f"== {script.name}: skipped: {why}", file=sys.stderr)
        return {"skipped": why}
    command = [sys.executable, str(script)] + (["--json"] if accepts_json(script) else [])
    print(f"== {script.name}: {' '.join(command[1:])}", file=sys.stderr, flush=True)
    start = time.perf_counter()
    try:
        done = subprocess.run(command, cwd=ROOT, stdout=subprocess.PIPE, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s", "wall_s": round(time.perf_counter() - start, 1)}
    wall = round(time.perf_counter() - start, 1)
    if done.returncode != 0:
        return {"error": f"exit status {done.returncode}", "wall_s": wall, "stdout_tail": done.stdout[-2000:]}
    try:
        result = parse_json(done.stdout)
    except ValueError as exc:
        return {"error": str(exc), "wall_s": wall, "stdout_tail": done.stdout[-2000:]}
    return {"result": result, "wall_s": wall}


def headline(result: Any) -> str:
    """Ratio and goal fields, top level and one level down, e.g. "ratio_upload_only=0.57 goal_met=False"."""
    if not isinstance(result, dict):
        return ""
    parts = []
    for key, value in result.items():
        if isinstance(value, dict):
            parts += [
                f"{key}.{k}={v}" for k, v in value.items() if k.startswith("ratio") and not isinstance(v, dict | list)
            ]
        elif key.startswith("ratio") or key.startswith("goal_met"):
            parts.append(f"{key}={value}")
    return " ".join(parts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all bench_*.py)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds allowed per benchmark")
    parser.add_argument("--out", type=Path, default=BENCH / "results.json")
    args = parser.parse_args()

    scripts = sorted(BENCH.glob("bench_*.py"))
    if args.names:
        wanted = {n.removeprefix("bench_").removesuffix(".py") for n in args.names}
        unknown = wanted - {s.stem.removeprefix("bench_") for s in scripts}
        if unknown:
            parser.error(f"no such benchmark: {', '.join(sorted(unknown))}")
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") in wanted]

    started = datetime.now(UTC)
    benchmarks: dict[str, Any] = {}
    for script in scripts:
        outcome = run_one(script, timeout=args.timeout)
        name = script.stem.removeprefix("bench_")
        if "result" in outcome:
            value = outcome["result"] if isinstance(outcome["result"], dict) else {"result": outcome["result"]}
            benchmarks[name] = {**value, "bench_wall_s": outcome["wall_s"]}
        else:
            benchmarks[name] = outcome
    report = {
        "started_at": started.isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs",
        "benchmarks": benchmarks,
    }
    text = json.dumps(report, indent=2)
    args.out.write_text(text + "\n")
    print(text)

    print(f"\n{'benchmark':<10}{'status':<9}{'wall s':>8}  headline", file=sys.stderr)
    failed = False
    for name, value in benchmarks.items():
        if "skipped" in value:
            print(f"{name:<10}{'skipped':<9}{'':>8}  {value['skipped']}", file=sys.stderr)
        elif "error" in value:
            failed = True
            print(f"{name:<10}{'FAILED':<9}{value.get('wall_s', ''):>8}  {value['error']}", file=sys.stderr)
        else:
            print(f"{name:<10}{'ok':<9}{value.get('bench_wall_s', ''):>8}  {headline(value)}", file=sys.stderr)
    print(f"saved to {args.out}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
