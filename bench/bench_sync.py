"""Benchmark: catalog N recording_log rows from MariaDB (default 100,000). Goal: all in under 60 s.

Baseline, in the same process: a plain MySQLdb SELECT of the same rows (the floor any sync pays).
Usage: .venv/bin/python bench/bench_sync.py [--rows 100000] [--present 0.2]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import time
from datetime import UTC, datetime, timedelta

from _setup import django_on_mariadb, peak_rss_mb


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--present", type=float, default=0.2, help="share of rows whose file is on the spool")
    args = parser.parse_args()
    home = django_on_mariadb("vicirec_bench_sync")

    from django.db import connections

    from recordings.demo.vicidial_schema import VicidialWriter
    from recordings.pipeline.catalog import sync_recordings
    from recordings.vicidial import (
        RecordingLog,
        VicidialCampaign,
        VicidialCloserLog,
        VicidialInboundGroup,
        VicidialLead,
        VicidialLog,
    )

    rng = random.Random(1)
    spool = home / "monitorDONE"
    spool.mkdir()
    now = datetime(2026, 11, 20, tzinfo=UTC)
    t0 = time.perf_counter()
    with VicidialWriter() as writer:
        writer.create_tables()
        writer.insert(
            VicidialCampaign,
            [{"campaign_id": f"C{n}", "campaign_name": f"Campaign {n}", "active": "Y"} for n in range(20)],
        )
        writer.insert(
            VicidialInboundGroup, [{"group_id": f"IG{n}", "group_name": f"Queue {n}", "active": "Y"} for n in range(10)]
        )
        leads, outbound, inbound, recs = [], [], [], []
        for n in range(args.rows):
            start = now - timedelta(seconds=args.rows - n)
            epoch, phone, rid = int(start.timestamp()), f"312555{n % 10000:04d}", 1_000_000 + n
            leads.append({"lead_id": n + 1, "phone_number": phone, "list_id": 101})
            call = {"lead_id": n + 1, "call_date": start, "start_epoch": epoch, "phone_number": phone, "user": "1001"}
            if n % 3 == 0:
                vid = str(n + 1)
                inbound.append(call | {"closecallid": n + 1, "campaign_id": f"IG{n % 10}", "uniqueid": f"{epoch}.{n}"})
            else:
                vid = f"{epoch}.{n}"
                outbound.append(call | {"uniqueid": vid, "campaign_id": f"C{n % 20}"})
            filename = f"{start:%Y%m%d-%H%M%S}_{phone}_{n}"
            recs.append(
                {
                    "recording_id": rid,
                    "server_ip": "10.0.0.11",
                    "start_time": start,
                    "start_epoch": epoch,
                    "end_time": start + timedelta(seconds=60),
                    "end_epoch": epoch + 60,
                    "length_in_sec": 60,
                    "filename": filename,
                    "lead_id": n + 1,
                    "user": "1001",
                    "vicidial_id": vid,
                }
            )
            if rng.random() < args.present:
                (spool / f"{filename}-all.wav").write_bytes(b"RIFF")
        for model, rows in (
            (VicidialLead, leads),
            (VicidialLog, outbound),
            (VicidialCloserLog, inbound),
            (RecordingLog, recs),
        ):
            writer.insert(model, rows)
    prepared = time.perf_counter() - t0

    t0 = time.perf_counter()
    with connections["vicidial"].cursor() as cursor:
        cursor.execute(
            "SELECT recording_id, channel, server_ip, extension, start_time, start_epoch, end_time, end_epoch,"
            " length_in_sec, filename, location, lead_id, user, vicidial_id FROM recording_log ORDER BY recording_id"
        )
        baseline_rows = len(cursor.fetchall())
    baseline = time.perf_counter() - t0

    t0 = time.perf_counter()
    report = sync_recordings(now=now + timedelta(days=1), node="", spools=[spool])
    elapsed = time.perf_counter() - t0
    assert report.recordings_added == args.rows == baseline_rows, report
    result = {
        "rows": args.rows,
        "seconds": round(elapsed, 2),
        "rows_per_second": round(args.rows / elapsed),
        "baseline_plain_select_seconds": round(baseline, 2),
        "ratio_vs_plain_select": round(baseline / elapsed, 3),
        "batches": report.batches,
        "located": report.located,
        "missing": report.missing,
        "goal_seconds": 60,
        "goal_met": elapsed < 60,
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "setup_seconds": round(prepared, 1),
    }
    print(json.dumps(result))
    print(
        f"sync {args.rows:,} rows: {elapsed:.1f} s ({result['rows_per_second']:,} rows/s; goal < 60 s: "
        f"{'met' if result['goal_met'] else 'MISSED'}); plain SELECT of the same rows {baseline:.2f} s; "
        f"peak RSS {result['peak_rss_mb']} MB"
    )
    shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
