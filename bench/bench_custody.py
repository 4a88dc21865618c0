"""Benchmark: what the custody ledger costs the archive, and how long verify_custody takes at scale.

    .venv/bin/python bench/bench_custody.py [--files 300] [--repeat 5] [--entries 1000000] [--json]

Django on SQLite in a throwaway VICIREC_HOME, the archive target a real SeaweedFS bucket (tests/s3server.py)
on this machine: no WAN round trip, so the ledger's share of archive time is, if anything, overstated here.

1. Archive overhead. Each round catalogs --files recordings twice (fresh files of 32 KiB, codec "none", so
   nothing is encoded) and archives them with archive_due, once with the ledger as shipped and once with
   ``recordings.ledger.append_rows`` and ``append_values`` replaced by no-ops (the baseline, same process,
   back to back).
   ``overhead_archive`` is the median of the rounds' (ledger seconds / baseline seconds - 1); goal <= 0.05.
2. verify_custody over --entries ledger entries, each copying a custody event (so the cross-check reads
   the events too), written straight into the tables; one checkpoint signed. Measured at a tenth of the
   entries and at all of them: seconds, and the peak RSS growth of each run (flat memory: the two growths
   are about the same). Goal: < 60 s for 1,000,000 entries.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _setup import django_on_sqlite, peak_rss_mb  # noqa: E402

from tests.s3server import make_bucket, seaweedfs  # noqa: E402


def archive_round(spool: Path, *, files: int, tag: str, first_id: int, now: datetime) -> float:
    from recordings.models import Campaign, Recording
    from recordings.pipeline.archive import archive_due

    campaign = Campaign.objects.get(campaign_id="BENCH")
    rows = []
    for i in range(files):
        name = f"20261119-{tag}{i:05d}_3125550000_1001"
        (spool / f"{name}-all.wav").write_bytes(os.urandom(32 * 1024))
        rows.append(
            Recording(
                recording_id=first_id + i,
                filename=name,
                server_ip="10.0.0.11",
                start_time=now - timedelta(days=1, seconds=i),
                campaign=campaign,
            )
        )
    Recording.objects.bulk_create(rows)
    start = time.perf_counter()
    report = archive_due(now=now, node="", threads=4)
    seconds = time.perf_counter() - start
    if report.archived != files:
        raise RuntimeError(f"archived {report.archived} of {files}: {report.as_dict()}")
    return seconds


def measure_archive(spool: Path, *, files: int, repeat: int) -> dict[str, Any]:
    from django.utils import timezone

    from recordings import ledger
    from recordings.models import Campaign
    from retention.models import RetentionPolicy

    campaign = Campaign.objects.create(kind="outbound", campaign_id="BENCH", name="Benchmark")
    RetentionPolicy.objects.create(campaign=campaign, keep_local_days=0, retain_days=3650, codec="none")
    now, real, runs = timezone.now(), (ledger.append_rows, ledger.append_values), []
    archive_round(spool, files=20, tag="w", first_id=90_000_000, now=now)  # warm-up
    for r in range(repeat):
        with_ledger = archive_round(spool, files=files, tag=f"a{r}", first_id=1_000_000 * (2 * r + 1), now=now)
        ledger.append_rows = ledger.append_values = lambda kind, rows: None  # type: ignore[assignment,misc]
        try:
            without = archive_round(spool, files=files, tag=f"b{r}", first_id=1_000_000 * (2 * r + 2), now=now)
        finally:
            ledger.append_rows, ledger.append_values = real  # type: ignore[misc]
        runs.append({"ledger_s": round(with_ledger, 3), "baseline_s": round(without, 3)})
        print(f"archive round {r}: ledger {with_ledger:.2f} s, baseline {without:.2f} s", file=sys.stderr)
    ratios = [run["ledger_s"] / run["baseline_s"] - 1 for run in runs]
    per_rec = [(run["ledger_s"] - run["baseline_s"]) / files * 1e6 for run in runs]
    return {
        "files": files,
        "runs": runs,
        "overhead_archive": round(statistics.median(ratios), 4),
        "overhead_us_per_recording": round(statistics.median(per_rec), 1),
        "recordings_per_s_with_ledger": round(files / statistics.median(r["ledger_s"] for r in runs), 1),
        "goal_met_archive": statistics.median(ratios) <= 0.05,
    }


EVENT_IDS = 10_000_000  # clear of the events the archive rounds made
AT0 = datetime(2026, 1, 1, tzinfo=UTC)


def _page(first: int, last: int, prev: str, adapt: Any) -> tuple[list[tuple], list[tuple], str]:
    """Events first..last and their chained ledger entries, as rows to insert; returns them and the head."""
    from recordings import ledger
    from recordings.lib import ledger as chain

    source = ledger.sources()["custody_event"]
    events, rows = [], []
    for i in range(first, last + 1):
        row = {
            "id": EVENT_IDS + i,
            "recording_id": 1 + i % 1000,
            "at": AT0 + timedelta(seconds=i),
            "from_state": "captured",
            "to_state": "archived",
            "actor": "archive@bench",
            "detail": f"archived as key {i}",
        }
        text = chain.canonical(source.content(row))
        digest = chain.content_sha256(text)
        entry = chain.entry_sha256(i, "custody_event", prev, digest)
        events.append(
            (row["id"], row["recording_id"], adapt(row["at"]), "captured", "archived", row["actor"], row["detail"])
        )
        rows.append((i, "custody_event", str(row["id"]), row["recording_id"], adapt(AT0), text, digest, prev, entry))
        prev = entry
    return events, rows, prev


def fill(entries: int) -> None:
    """Custody events and their ledger entries up to ``entries``, chained onto the current head."""
    from django.db import connection, transaction

    from recordings import ledger
    from recordings.models import LedgerHead, RecordingEvent

    seq, prev = ledger.head()
    while seq < entries:
        last = min(seq + 20_000, entries)
        events, rows, prev = _page(seq + 1, last, prev, connection.ops.adapt_datetimefield_value)
        seq = last
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO {RecordingEvent._meta.db_table} (id, recording_id, at, from_state, to_state, actor, "
                "detail) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                events,
            )
            cursor.executemany(
                "INSERT INTO recordings_ledgerentry (seq, kind, ref, recording_id, at, content, "
                "content_sha256, prev_sha256, entry_sha256) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                rows,
            )
            LedgerHead.objects.update_or_create(pk=1, defaults={"count": seq, "head_sha256": prev})


def measure_verify(entries: int) -> dict[str, Any]:
    from recordings.models import LedgerEntry, Recording, RecordingEvent
    from recordings.pipeline.checkpoints import make_checkpoint
    from recordings.pipeline.custody_check import verify_custody

    Recording.objects.bulk_create([Recording(recording_id=i, filename=f"r{i}") for i in range(1, 1001)])
    # the baseline archive rounds wrote events with the ledger switched off: not part of this ledger
    ledgered = {int(r) for r in LedgerEntry.objects.filter(kind="custody_event").values_list("ref", flat=True)}
    RecordingEvent.objects.exclude(pk__in=ledgered)._raw_delete(RecordingEvent.objects.db)
    result: dict[str, Any] = {}
    for label, n in (("tenth", entries // 10), ("all", entries)):
        start = time.perf_counter()
        fill(n)
        make_checkpoint(now=datetime.now(UTC))
        fill_s = time.perf_counter() - start
        before = peak_rss_mb()
        start = time.perf_counter()
        report = verify_custody(now=datetime.now(UTC), record=False)
        seconds = time.perf_counter() - start
        if not report.ok:
            raise RuntimeError(f"verify_custody failed on a clean ledger: {report.problems[:3]}")
        result[label] = {
            "entries": report.entries,
            "verify_s": round(seconds, 2),
            "fill_s": round(fill_s, 1),
            "rss_growth_mb": round(peak_rss_mb() - before, 1),
            "entries_per_s": round(report.entries / seconds),
        }
        print(f"verify_custody over {report.entries} entries: {seconds:.1f} s", file=sys.stderr)
    result["goal_met_verify"] = result["all"]["verify_s"] < 60
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--json", action="store_true", help="print the JSON compact, on one line")
    args = parser.parse_args()
    s3_dir = Path(tempfile.mkdtemp(prefix="vicirec-bench-custody-s3-"))
    spool = Path(tempfile.mkdtemp(prefix="vicirec-bench-custody-spool-"))
    try:
        with seaweedfs(s3_dir) as server:
            make_bucket(server, "custody")
            env = {
                "VICIREC_STORAGE": "s3",
                "VICIREC_S3_BUCKET": "custody",
                "VICIREC_S3_ENDPOINT_URL": server.endpoint_url,
                "VICIREC_S3_REGION": server.region,
                "VICIREC_S3_ACCESS_KEY_ID": server.access_key,
                "VICIREC_S3_SECRET_ACCESS_KEY": server.secret_key,
                "VICIREC_SETTLE_SECONDS": "0",
                "VICIREC_UPLOAD_THREADS": "4",
                "VICIREC_SPOOL_DIRS": str(spool),
            }
            home = django_on_sqlite("custody", env=env)
            result = {"archive": measure_archive(spool, files=args.files, repeat=args.repeat)}
            result["verify"] = measure_verify(args.entries)
    finally:
        for folder in (s3_dir, spool):
            shutil.rmtree(folder, ignore_errors=True)
        if "home" in locals():
            shutil.rmtree(home, ignore_errors=True)
    result["peak_rss_mb"] = round(peak_rss_mb(), 1)
    print(json.dumps(result, separators=(",", ":")) if args.json else json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
