"""Benchmark: peak memory of each stage as the catalog grows (default 10k -> 100k rows; --sizes for 1M) and
as calls get longer (1 -> 60 minutes). Goal: every stage under 300 MB, whatever the catalog size.

Each measurement runs in a fresh child process and reports its peak RSS minus the RSS it had once Django
was set up (the "baseline" in the same process), so the figure is the stage's own.
Usage: .venv/bin/python bench/bench_memory.py [--sizes 10000,100000] [--minutes 1,60]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _setup import django_on_mariadb, peak_rss_mb

NOW = datetime(2026, 11, 20, tzinfo=UTC)
OWN_DB = "mysql://root@127.0.0.1:3306/vicirec_bench_memory"
VICIDIAL_DB = "vicirec_bench_memory_vicidial"
STAGES = ("sync", "archive", "cleanup", "retention", "verify", "forecast", "status")


def rss_now_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def populate(rows: int, spool: Path) -> None:
    """recording_log rows for sync; catalog rows (old ones archived/cleared, 200 due now) for the rest."""
    from recordings.demo.speech import synthesize_speech_like_wav
    from recordings.demo.vicidial_schema import VicidialWriter
    from recordings.models import Campaign, Recording
    from recordings.vicidial import RecordingLog
    from tests.factories import make_policy  # policies shorter than the default need an approver

    with VicidialWriter() as writer:
        writer.create_tables()
        writer.insert(
            RecordingLog,
            [
                {
                    "recording_id": 20_000_000 + n,
                    "server_ip": "10.0.0.11",
                    "start_time": NOW - timedelta(seconds=n),
                    "start_epoch": int((NOW - timedelta(seconds=n)).timestamp()),
                    "end_epoch": 1,
                    "end_time": NOW,
                    "length_in_sec": 60,
                    "filename": f"f{n}",
                    "lead_id": n + 1,
                    "user": "1001",
                    "vicidial_id": f"{n}.1",
                }
                for n in range(rows)
            ],
        )
    campaign = Campaign.objects.create(kind="outbound", campaign_id="C", name="C")
    make_policy(campaign=campaign, keep_local_days=1, retain_days=365, codec="mp3")
    batch = []
    for n in range(rows):
        due = n < 200
        state = Recording.State.CAPTURED if due else Recording.State.CLEARED
        batch.append(
            Recording(
                recording_id=10_000_000 + n,
                filename=f"m{n}",
                server_ip="10.0.0.11",
                campaign=campaign,
                start_time=NOW - timedelta(days=2 if due else 400 + n % 100),
                state=state,
                phone_number="3125550000",
                object_key="" if due else f"C/x{n}.mp3",
                stored_sha256="0" * 64,
                stored_size=1000,
                original_size=5000,
            )
        )
        if len(batch) == 10_000:
            Recording.objects.bulk_create(batch)
            batch = []
    Recording.objects.bulk_create(batch)
    for n in range(200):
        synthesize_speech_like_wav(spool / f"m{n}-all.wav", seconds=20, seed=n)
        os.utime(spool / f"m{n}-all.wav", (1, 1))


def measure(stage: str, spool: Path) -> dict[str, object]:
    from recordings.ops.status import pipeline_status
    from recordings.pipeline.archive import archive_due
    from recordings.pipeline.catalog import sync_recordings
    from recordings.pipeline.cleanup import cleanup_local
    from recordings.pipeline.retention import enforce_retention
    from recordings.pipeline.verify import verify_archive
    from retention.forecast import forecast

    base = rss_now_mb()
    run = {
        "sync": lambda: sync_recordings(now=NOW, node="", spools=[spool]),
        "archive": lambda: archive_due(now=NOW, node="", threads=4),
        "cleanup": lambda: cleanup_local(now=NOW, node=""),
        "retention": lambda: enforce_retention(now=NOW, dry_run=False, confirm=True),
        "verify": lambda: verify_archive(now=NOW, sample=100),
        "forecast": lambda: forecast(now=NOW),
        "status": lambda: pipeline_status(now=NOW),
    }[stage]
    run()
    return {"stage": stage, "peak_mb": round(peak_rss_mb(), 1), "stage_mb": round(peak_rss_mb() - base, 1)}


def measure_call_length(minutes: int) -> dict[str, object]:
    from recordings.demo.speech import synthesize_speech_like_wav
    from recordings.lib.codec import prepare

    work = Path(tempfile.mkdtemp(prefix="vicirec-bench-mem-"))
    wav = work / "call.wav"
    synthesize_speech_like_wav(wav, seconds=minutes * 60, seed=1)
    base = rss_now_mb()
    prepared = prepare(wav, codec="mp3", workdir=work)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {
        "minutes": minutes,
        "wav_mb": round(wav.stat().st_size / 2**20, 1),
        "mp3_mb": round(prepared.output_size / 2**20, 2),
        "peak_mb": round(peak, 1),
        "encode_mb_over_base": round(peak - base, 1),
    }
    shutil.rmtree(work, ignore_errors=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--minutes", default="1,60")
    parser.add_argument("--json", action="store_true", help="accepted for bench/run.py; JSON is always printed")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--spool", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        os.environ.update(VICIREC_SETTLE_SECONDS="0", VICIREC_DISK_PRESSURE_PERCENT="100")
        if args.child.startswith("populate:"):
            django_on_mariadb(VICIDIAL_DB, own_db=OWN_DB)
            populate(int(args.child.split(":")[1]), Path(args.spool))
        elif args.child.startswith("minutes:"):
            print(json.dumps(measure_call_length(int(args.child.split(":")[1]))))
        else:
            os.environ["VICIREC_SPOOL_DIRS"] = args.spool
            django_on_mariadb(VICIDIAL_DB, own_db=OWN_DB, recreate=False)
            print(json.dumps(measure(args.child, Path(args.spool))))
        return

    def child(what: str, spool: str = "") -> dict[str, object]:
        out = subprocess.run(
            [sys.executable, __file__, "--child", what, "--spool", spool], capture_output=True, text=True, check=False
        )
        if out.returncode:
            sys.exit(f"{what} failed:\n{out.stderr[-3000:]}")
        return json.loads(out.stdout.strip().splitlines()[-1]) if out.stdout.strip() else {}

    by_size: dict[str, list[dict[str, object]]] = {}
    for size in [int(s) for s in args.sizes.split(",")]:
        spool = tempfile.mkdtemp(prefix="vicirec-bench-mem-spool-")
        child(f"populate:{size}", spool)
        by_size[str(size)] = [child(stage, spool) for stage in STAGES]
        shutil.rmtree(spool, ignore_errors=True)
        for r in by_size[str(size)]:
            print(
                f"{size:>9,} rows  {r['stage']:>9}: peak {r['peak_mb']} MB ({r['stage_mb']} MB above set-up)",
                file=sys.stderr,
            )
    calls = [child(f"minutes:{m}") for m in [int(m) for m in args.minutes.split(",")]]
    for c in calls:
        print(
            f"{c['minutes']:>3}-minute call ({c['wav_mb']} MB WAV): hash+encode peak {c['peak_mb']} MB", file=sys.stderr
        )
    worst = max(float(r["peak_mb"]) for runs in by_size.values() for r in runs)  # type: ignore[arg-type]
    worst = max([worst] + [float(c["peak_mb"]) for c in calls])  # type: ignore[arg-type]
    summary = {
        "by_catalog_size": by_size,
        "by_call_length": calls,
        "worst_peak_mb": worst,
        "goal_mb": 300,
        "goal_met": worst < 300,
    }
    print(json.dumps(summary))
    print(f"worst peak of any stage: {worst} MB (goal < 300 MB: {'met' if worst < 300 else 'MISSED'})", file=sys.stderr)


if __name__ == "__main__":
    main()
