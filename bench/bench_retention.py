"""Benchmark: enforce_retention over a catalog of N rows on MariaDB (default 1,000,000). Goals: at least
5,000 catalog rows/s, and peak memory that stays flat as the catalog grows.

Half the catalog is past its campaign's 90-day policy; one campaign in ten is under a legal hold. The
retention run happens in a fresh child process so its peak RSS is its own. Cloud deletes go to the
local-folder target (objects absent count as deleted): this measures vicirec's own work per row.
Usage: .venv/bin/python bench/bench_retention.py [--rows 1000000] [--sizes 100000,1000000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

from _setup import django_on_mariadb, peak_rss_mb

NOW = datetime(2026, 11, 20, tzinfo=UTC)


def populate(rows: int) -> None:
    from holds.actions import place_hold
    from recordings.models import Campaign, Recording
    from tests.factories import make_policy  # policies shorter than the default need an approver
    from vicirec.actors import Actor

    campaigns = [Campaign.objects.create(kind="outbound", campaign_id=f"C{n}", name=f"Campaign {n}") for n in range(10)]
    for c in campaigns:
        make_policy(campaign=c, keep_local_days=3, retain_days=90, codec="none")
    place_hold(reason="bench: campaign under litigation", actor=Actor.command("bench"), campaign=campaigns[0])
    batch = []
    for n in range(rows):
        age = 400 if (n // 10) % 2 else 30  # every campaign, the held one included, has old and new calls
        batch.append(
            Recording(
                recording_id=n + 1,
                filename=f"20250101-000000_{n}",
                server_ip="10.0.0.11",
                start_time=NOW - timedelta(days=age, seconds=n % 86400),
                phone_number=f"312555{n % 10000:04d}",
                agent="1001",
                campaign=campaigns[n % 10],
                state=Recording.State.CLEARED,
                object_key=f"C{n % 10}/k{n}.mp3",
                stored_sha256="0" * 64,
                stored_size=200_000,
                original_sha256="1" * 64,
                original_size=1_000_000,
            )
        )
        if len(batch) == 10_000:
            Recording.objects.bulk_create(batch)
            batch = []
    Recording.objects.bulk_create(batch)


def measure() -> None:
    from recordings.models import Recording
    from recordings.pipeline.retention import enforce_retention

    rows = Recording.objects.count()
    t0 = time.perf_counter()
    report = enforce_retention(now=NOW, dry_run=False, confirm=True)
    elapsed = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "catalog_rows": rows,
                "deleted": report.deleted,
                "held_skipped": report.held,
                "seconds": round(elapsed, 2),
                "catalog_rows_per_second": round(rows / elapsed),
                "deleted_per_second": round(report.deleted / elapsed),
                "peak_rss_mb": round(peak_rss_mb(), 1),
            }
        )
    )


OWN_DB = "mysql://root@127.0.0.1:3306/vicirec_bench_retention"
VICIDIAL_DB = "vicirec_bench_retention_vicidial"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100000,1000000", help="catalog sizes to compare, comma-separated")
    parser.add_argument("--json", action="store_true", help="accepted for bench/run.py; JSON is always printed")
    parser.add_argument("--child", choices=["populate", "measure"], help=argparse.SUPPRESS)
    parser.add_argument("--rows", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "populate":
        django_on_mariadb(VICIDIAL_DB, own_db=OWN_DB)
        populate(args.rows)
        return
    if args.child == "measure":
        django_on_mariadb(VICIDIAL_DB, own_db=OWN_DB, recreate=False)
        measure()
        return
    results = []
    for size in [int(s) for s in args.sizes.split(",")]:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, __file__, "--child", "populate", "--rows", str(size)], check=True)
        print(f"populated {size:,} rows in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        child = subprocess.run([sys.executable, __file__, "--child", "measure"], capture_output=True, text=True)
        if child.returncode:
            sys.exit(child.stderr)
        results.append(json.loads(child.stdout.strip().splitlines()[-1]))
    growth = results[-1]["peak_rss_mb"] / results[0]["peak_rss_mb"]
    summary = {
        "runs": results,
        "memory_growth_ratio": round(growth, 2),
        "goal_rows_per_second": 5000,
        "goal_met": all(r["catalog_rows_per_second"] >= 5000 for r in results),
    }
    print(json.dumps(summary))
    for r in results:
        print(
            f"retention over {r['catalog_rows']:,} rows: {r['seconds']} s, "
            f"{r['catalog_rows_per_second']:,} catalog rows/s, {r['deleted']:,} deleted "
            f"({r['deleted_per_second']:,}/s), peak RSS {r['peak_rss_mb']} MB",
            file=sys.stderr,
        )
    print(f"peak memory, largest vs smallest catalog: {growth:.2f}x", file=sys.stderr)


if __name__ == "__main__":
    main()
