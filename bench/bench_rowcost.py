"""Benchmark: the per-row cost of sync and of retention, on vicirec's own database on MariaDB and PostgreSQL.

    .venv/bin/python bench/bench_rowcost.py [--databases mariadb,postgres] [--sync-rows 10000] [--due 3000]
        [--rounds 3] [--base PATH] [--profile]

Each round catalogs --sync-rows new recording_log rows (VICIdial on MariaDB, 20 % of the files on the spool)
and then deletes --due of the cataloged recordings under retention (made due with one UPDATE: cleared, in
the bucket, past a 30-day policy; local-folder target). Each measurement runs in a fresh process and
reports wall seconds, CPU seconds of this process (less sensitive to other work on the machine than the
wall clock), SQL statements and their time, and rows per second.

``--base PATH`` names another checkout of vicirec (e.g. ``git archive <commit> | tar -x -C PATH``): every
round then measures both, in alternating order (A B, B A, …), on the same databases, and the summary gives
the medians and the ratios (base seconds / this tree's seconds). The catalog grows by --sync-rows per
measurement; the per-row costs measured do not depend on its size (README, "At scale").
``--profile`` runs this tree's stages once under cProfile and prints the top functions instead.
Databases: ``VICIREC_BENCH_PREFIX`` (default vicirec_rowcost) + _own / _vd, dropped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _setup import server_cpu_seconds  # noqa: E402  (before --code puts another checkout first)

ROOT = HERE.parent
NOW = datetime(2026, 11, 20, tzinfo=UTC)
MARIADB = "mysql://root@127.0.0.1:3306"
POSTGRES = "postgres://postgres@127.0.0.1:5432"
PREFIX = os.environ.get("VICIREC_BENCH_PREFIX", "vicirec_rowcost")


def names(db: str) -> tuple[str, str]:
    return f"{PREFIX}_own_{db[:2]}", f"{PREFIX}_vd_{db[:2]}"


def _admin(db: str, statements: list[str]) -> None:
    import MySQLdb

    own, vicidial = names(db)
    conn = MySQLdb.connect(host="127.0.0.1", port=3306, user="root")
    with conn.cursor() as cursor:
        for name in [vicidial] + ([own] if db == "mariadb" else []):
            for statement in statements:
                cursor.execute(statement.format(name=f"`{name}`"))
    conn.close()
    if db == "postgres":
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres")
        conn.autocommit = True
        with conn.cursor() as cursor:
            for statement in statements:
                statement = statement.replace(" CHARACTER SET utf8mb4", "")
                if statement.startswith("DROP"):
                    statement += " WITH (FORCE)"
                cursor.execute(statement.format(name=f'"{own}"'))
        conn.close()


def django_for(db: str, code: Path) -> Path:
    sys.path.insert(0, str(code))
    own, vicidial = names(db)
    home = Path(tempfile.mkdtemp(prefix="vicirec-bench-rowcost-"))
    os.environ.update(
        VICIREC_HOME=str(home),
        VICIDIAL_DATABASE_URL=f"{MARIADB}/{vicidial}",
        VICIREC_DATABASE_URL=f"{MARIADB if db == 'mariadb' else POSTGRES}/{own}",
        VICIREC_SPOOL_DIRS=str(home / "spool"),
        VICIREC_LOG_LEVEL="WARNING",
        DJANGO_SETTINGS_MODULE="vicirec.settings",
    )
    (home / "spool").mkdir()
    import django

    django.setup()
    return home


def setup() -> dict:
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from recordings.demo.vicidial_schema import VicidialWriter
    from recordings.models import Campaign
    from recordings.vicidial import VicidialCampaign
    from tests.factories import make_policy

    campaigns = [Campaign.objects.create(kind="outbound", campaign_id=f"C{n}", name=f"Campaign {n}") for n in range(20)]
    short = Campaign.objects.create(kind="outbound", campaign_id="CSHORT", name="Short retention")
    make_policy(campaign=short, keep_local_days=3, retain_days=30, codec="none")
    with VicidialWriter() as writer:
        writer.create_tables()
        writer.insert(
            VicidialCampaign,
            [{"campaign_id": c.campaign_id, "campaign_name": c.name, "active": "Y"} for c in campaigns],
        )
    return {}


class Counter:
    """SQL statements and their time, through Django's execute_wrapper."""

    def __init__(self) -> None:
        self.count, self.seconds = 0, 0.0
        self.by_statement: dict[str, list[float]] = {}

    def __call__(self, execute, sql, params, many, context):
        t0 = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            spent = time.perf_counter() - t0
            self.count += 1
            self.seconds += spent
            entry = self.by_statement.setdefault(sql[:70], [0, 0.0])
            entry[0] += 1
            entry[1] += spent


def timed(fn, profile: bool) -> tuple[dict, object]:
    from django.db import connection

    counter = Counter()
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
    s0 = server_cpu_seconds()
    w0, c0 = time.perf_counter(), time.process_time()
    with connection.execute_wrapper(counter):
        if profiler:
            profiler.enable()
        result = fn()
        if profiler:
            profiler.disable()
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    server = None if s0 is None else server_cpu_seconds() - s0
    if profiler:
        import pstats

        stats = pstats.Stats(profiler, stream=sys.stderr)
        stats.sort_stats("cumulative").print_stats(45)
        stats.sort_stats("tottime").print_stats(30)
        for sql, (n, spent) in sorted(counter.by_statement.items(), key=lambda kv: -kv[1][1])[:25]:
            print(f"{spent:8.3f} s {n:5d}x  {sql}", file=sys.stderr)
    out = {"wall_s": wall, "cpu_s": cpu, "server_cpu_s": server, "sql": counter.count, "sql_s": counter.seconds}
    return out, result


def sync_stage(rows: int, home: Path, profile: bool) -> dict:
    from recordings.demo.vicidial_schema import VicidialWriter
    from recordings.models import Recording
    from recordings.pipeline.catalog import sync_recordings
    from recordings.vicidial import RecordingLog, VicidialLead, VicidialLog

    rng = random.Random(rows)
    spool = home / "spool"
    base = (RecordingLog.objects.order_by("-recording_id").values_list("recording_id", flat=True).first() or 0) + 1
    with VicidialWriter() as writer:
        leads, calls, recs = [], [], []
        for k in range(rows):
            rid = base + k
            start = NOW - timedelta(seconds=rows - k)
            epoch, phone = int(start.timestamp()), f"312{rid % 9_000_000 + 1_000_000}"
            vid = f"{epoch}.{rid}"
            leads.append({"lead_id": rid, "phone_number": phone, "list_id": 101})
            calls.append(
                {"uniqueid": vid, "lead_id": rid, "call_date": start, "start_epoch": epoch,
                 "phone_number": phone, "user": "1001", "campaign_id": f"C{rid % 20}"}
            )  # fmt: skip
            filename = f"{start:%Y%m%d-%H%M%S}_{phone}_{rid}"
            recs.append(
                {"recording_id": rid, "server_ip": "10.0.0.11", "start_time": start, "start_epoch": epoch,
                 "end_time": start + timedelta(seconds=60), "end_epoch": epoch + 60, "length_in_sec": 60,
                 "filename": filename, "lead_id": rid, "user": "1001", "vicidial_id": vid}
            )  # fmt: skip
            if rng.random() < 0.2:
                (spool / f"{filename}-all.wav").write_bytes(b"RIFF")
        writer.insert(VicidialLead, leads)
        writer.insert(VicidialLog, calls)
        writer.insert(RecordingLog, recs)
    before = Recording.objects.count()
    out, report = timed(lambda: sync_recordings(now=NOW + timedelta(days=1), node="", spools=[spool]), profile)
    assert report.recordings_added == rows, report
    return out | {"rows": rows, "catalog_rows_before": before}


def retention_stage(due: int, profile: bool) -> dict:
    from django.db import connection

    from recordings.models import Campaign, Recording
    from recordings.pipeline.retention import enforce_retention

    short = Campaign.objects.get(campaign_id="CSHORT").pk
    ids = list(
        Recording.objects.filter(state__in=["captured", "missing"])
        .order_by("-recording_id")[:due]
        .values_list("pk", flat=True)
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE recordings_recording SET state = 'cleared', campaign_id = %s, start_time = %s,"
            " object_key = " + ("CONCAT('C/k', recording_id, '.mp3')" if connection.vendor == "mysql" else
                                "'C/k' || recording_id || '.mp3'") +
            ", stored_sha256 = %s, stored_size = 200000, original_sha256 = %s, original_size = 1000000,"
            " local_path = '', next_attempt_at = NULL WHERE recording_id IN (" + ",".join(map(str, ids)) + ")",
            [short, NOW - timedelta(days=60), "0" * 64, "1" * 64],
        )  # fmt: skip
    before = Recording.objects.count()
    out, report = timed(lambda: enforce_retention(now=NOW, dry_run=False, confirm=True), profile)
    assert report.deleted == due, report
    return out | {"rows": due, "catalog_rows_before": before}


def verify_stage() -> dict:
    from django.core.management import call_command

    t0 = time.perf_counter()
    call_command("verify_custody", verbosity=0)
    return {"verify_custody_s": round(time.perf_counter() - t0, 2)}


def child(args: argparse.Namespace) -> None:
    home = django_for(args.db, Path(args.code))
    import recordings

    if args.child == "setup":
        out = setup()
    elif args.child == "sync":
        out = sync_stage(args.rows, home, args.profile)
    elif args.child == "retention":
        out = retention_stage(args.rows, args.profile)
    else:
        out = verify_stage()
    out["code"] = str(Path(recordings.__file__).resolve().parent.parent)
    shutil.rmtree(home, ignore_errors=True)
    print(json.dumps(out))


def run_child(stage: str, db: str, code: Path, rows: int = 0, profile: bool = False) -> dict:
    command = [sys.executable, __file__, "--child", stage, "--db", db, "--code", str(code), "--rows", str(rows)]
    done = subprocess.run(command + (["--profile"] if profile else []), stdout=subprocess.PIPE, text=True)
    if done.returncode:
        sys.exit(f"{db} {stage} ({code}) failed: {done.stdout[-2000:]}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert Path(out["code"]) == code.resolve(), (out["code"], code)
    return out


def load() -> str:
    return os.getloadavg().__repr__()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--databases", default="mariadb,postgres")
    parser.add_argument("--sync-rows", type=int, default=10_000)
    parser.add_argument("--due", type=int, default=3_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--base", help="another checkout of vicirec to measure against, round by round")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--json", action="store_true", help="accepted for bench/run.py; JSON is always printed")
    parser.add_argument("--child", choices=["setup", "sync", "retention", "verify"], help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--code", help=argparse.SUPPRESS)
    parser.add_argument("--rows", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    trees = {"this": ROOT} | ({"base": Path(args.base).resolve()} if args.base else {})
    results: dict = {}
    for db in [d.strip() for d in args.databases.split(",") if d.strip()]:
        _admin(db, ["DROP DATABASE IF EXISTS {name}", "CREATE DATABASE {name} CHARACTER SET utf8mb4"])
        try:
            run_child("setup", db, ROOT)
            if args.profile:
                run_child("sync", db, ROOT, args.sync_rows, profile=True)
                run_child("retention", db, ROOT, args.due, profile=True)
                continue
            runs: dict[str, dict[str, list[dict]]] = {name: {"sync": [], "retention": []} for name in trees}
            for n in range(args.rounds):
                order = list(trees) if n % 2 == 0 else list(reversed(trees))
                for name in order:
                    for stage, rows in (("sync", args.sync_rows), ("retention", args.due)):
                        out = run_child(stage, db, trees[name], rows) | {"load": os.getloadavg()[0]}
                        runs[name][stage].append(out)
                        print(
                            f"{db} round {n + 1} {name:>4} {stage:<9}: {out['wall_s']:.2f} s wall, "
                            f"{out['cpu_s']:.2f} s CPU, {rows / out['wall_s']:,.0f} rows/s, "
                            f"{1e3 * out['cpu_s'] / rows:.3f} ms CPU/row"
                            + (
                                f" + server {1e3 * out['server_cpu_s'] / rows:.3f}"
                                if out["server_cpu_s"] is not None
                                else ""
                            )
                            + f", {out['sql']} SQL "
                            f"({out['sql_s']:.2f} s), catalog {out['catalog_rows_before']:,}, load {out['load']:.1f}",
                            file=sys.stderr,
                        )
            verified = run_child("verify", db, ROOT)
            summary: dict = {"verify_custody_s": verified["verify_custody_s"]}
            for stage, goal_rows, goal_s in (("sync", 100_000, 60), ("retention", 10_000, 10)):
                for name in trees:
                    rs = runs[name][stage]
                    rate = statistics.median(r["rows"] / r["wall_s"] for r in rs)
                    cpu_ms = statistics.median(1e3 * r["cpu_s"] / r["rows"] for r in rs)
                    summary[f"{stage}_{name}"] = {
                        "rows_per_s": round(rate),
                        "cpu_ms_per_row": round(cpu_ms, 3),
                        f"extrapolated_{goal_rows}_s": round(goal_rows / rate, 1),
                        "goal_s": goal_s,
                        "server_cpu_ms_per_row": None
                        if rs[0]["server_cpu_s"] is None
                        else round(statistics.median(1e3 * r["server_cpu_s"] / r["rows"] for r in rs), 3),
                        "sql_per_run": statistics.median(r["sql"] for r in rs),
                        "load": [round(r["load"], 1) for r in rs],
                    }
                if "base" in trees:
                    summary[f"{stage}_ratio_wall"] = round(
                        statistics.median(
                            b["wall_s"] / t["wall_s"]
                            for b, t in zip(runs["base"][stage], runs["this"][stage], strict=True)
                        ),
                        2,
                    )
                    summary[f"{stage}_ratio_cpu"] = round(
                        statistics.median(
                            b["cpu_s"] / t["cpu_s"]
                            for b, t in zip(runs["base"][stage], runs["this"][stage], strict=True)
                        ),
                        2,
                    )
            results[db] = summary
            print(f"{db}: {json.dumps(summary)}", file=sys.stderr)
        finally:
            if not args.keep:
                _admin(db, ["DROP DATABASE IF EXISTS {name}"])
    print(json.dumps(results))


if __name__ == "__main__":
    main()
