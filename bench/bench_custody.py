"""Benchmark: what the custody ledger costs the archive, and how long verify_custody takes at scale.

    .venv/bin/python bench/bench_custody.py [--files 300] [--codec-files 40] [--seconds 30] [--repeat 5]
        [--entries 1000000] [--json]

Django on SQLite in a throwaway VICIREC_HOME, the archive target a real SeaweedFS bucket (tests/s3server.py)
on this machine: no WAN round trip, so the ledger's share of archive time is, if anything, overstated here.

1. Archive overhead. Each round catalogs --files recordings twice and archives them with archive_due, once
   with the ledger as shipped and once with ``recordings.ledger.append_rows`` and ``append_values`` replaced
   by no-ops (the baseline, same process, back to back), in two modes: pass-through (fresh files of 32 KiB,
   codec "none", nothing encoded: the ledger's largest possible share) and the default codec (speech-like WAVs of
   --seconds each, encoded as the default policy does). The ledger's cost is taken three ways, each a median
   over the rounds: ``ledger_share`` = the wall time spent inside those two / the archive's wall time
   (measured directly, so the machine's drift between runs does not enter it; goal <= 0.05),
   ``cpu_overhead`` = this process's CPU time with the ledger / without it - 1, and ``wall_overhead`` = the
   same for wall time (the noisiest: one run's wall time drifts by more than the ledger costs).
2. verify_custody over --entries ledger entries, each copying a custody event (so the cross-check reads
   the events too), written straight into the tables; one checkpoint signed. Measured at a tenth of the
   entries and at all of them: seconds, and the peak RSS growth of each run (flat memory: the two growths
   are about the same). Goal: < 60 s for 1,000,000 entries. Beside it, at each size: the checkpoint (which
   brings the Merkle tree's kept nodes up to date over the entries added since the last one) and the
   inclusion paths of 1,000 entries spread over the ledger (as an evidence export writes them).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _setup import django_on_sqlite, peak_rss_mb  # noqa: E402

from tests.s3server import make_bucket, seaweedfs  # noqa: E402


def archive_round(
    spool: Path, *, files: int, tag: str, first_id: int, now: datetime, campaign_id: str, seconds: float
) -> tuple[float, float]:
    """Catalog ``files`` new recordings and archive them: (wall seconds, this process's CPU seconds)."""
    from recordings.demo.speech import synthesize_speech_like_wav
    from recordings.models import Campaign, Recording
    from recordings.pipeline.archive import archive_due

    campaign = Campaign.objects.get(campaign_id=campaign_id)
    rows = []
    for i in range(files):
        name = f"20261119-{tag}{i:05d}_3125550000_1001"
        if seconds:
            synthesize_speech_like_wav(spool / f"{name}-all.wav", seconds=seconds, seed=first_id + i)
        else:
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
    wall, cpu = time.perf_counter(), time.process_time()
    report = archive_due(now=now, node="", threads=4)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    if report.archived != files:
        raise RuntimeError(f"archived {report.archived} of {files}: {report.as_dict()}")
    return wall, cpu


class TimedLedger:
    """``recordings.ledger``'s two appending functions with the wall time spent inside them added up (every
    thread)."""

    NAMES = ("append_rows", "append_values")

    def __init__(self, module: Any) -> None:
        self.module, self.real = module, {name: getattr(module, name) for name in self.NAMES}
        self.seconds, self.lock = 0.0, threading.Lock()

    def timed(self, name: str) -> Any:
        real = self.real[name]

        def call(kind: str, rows: Any) -> Any:
            start = time.perf_counter()
            try:
                return real(kind, rows)
            finally:
                with self.lock:
                    self.seconds += time.perf_counter() - start

        return call

    def install(self, mode: str) -> None:
        """``timed``: the real functions, timed; ``off``: no-ops (the baseline)."""
        for name in self.NAMES:
            setattr(self.module, name, self.timed(name) if mode == "timed" else (lambda kind, rows: None))

    def restore(self) -> None:
        for name, real in self.real.items():
            setattr(self.module, name, real)


def measure_archive(spool: Path, *, mode: str, files: int, repeat: int, seconds: float) -> dict[str, Any]:
    from django.conf import settings
    from django.utils import timezone

    from recordings import ledger
    from recordings.models import Campaign
    from retention.models import RetentionPolicy

    codec = "none" if mode == "pass-through" else settings.VICIREC_DEFAULT_CODEC
    campaign_id = "BENCH" if mode == "pass-through" else "BENCHC"
    campaign = Campaign.objects.create(kind="outbound", campaign_id=campaign_id, name=f"Benchmark, {mode}")
    RetentionPolicy.objects.create(campaign=campaign, keep_local_days=0, retain_days=3650, codec=codec)
    base = 1_000_000 if mode == "pass-through" else 50_000_000
    now, runs = timezone.now(), []
    secs = 0 if mode == "pass-through" else seconds
    round_ = {"spool": spool, "files": files, "now": now, "campaign_id": campaign_id, "seconds": secs}
    archive_round(**{**round_, "files": 10}, tag=f"w{mode[0]}", first_id=base + 990_000)  # warm-up
    for r in range(repeat):
        timed = TimedLedger(ledger)
        timed.install("timed")
        try:
            wall, cpu = archive_round(**round_, tag=f"{mode[0]}a{r}", first_id=base + 20_000 * r)
        finally:
            timed.restore()
        timed.install("off")
        try:
            wall0, cpu0 = archive_round(**round_, tag=f"{mode[0]}b{r}", first_id=base + 20_000 * r + 10_000)
        finally:
            timed.restore()
        run = {
            "wall_s": wall,
            "cpu_s": cpu,
            "ledger_s": timed.seconds,
            "baseline_wall_s": wall0,
            "baseline_cpu_s": cpu0,
        }
        runs.append({k: round(v, 4) for k, v in run.items()})
        print(
            f"archive {mode} round {r}: {wall:.2f} s wall ({cpu:.2f} s CPU), {timed.seconds * 1000:.0f} ms in the "
            f"ledger ({timed.seconds / wall:.1%}); without the ledger {wall0:.2f} s wall ({cpu0:.2f} s CPU)",
            file=sys.stderr,
        )
    share = statistics.median(r["ledger_s"] / r["wall_s"] for r in runs)
    return {
        "mode": mode,
        "codec": codec,
        "files": files,
        "runs": runs,
        "ledger_share": round(share, 4),
        "ledger_us_per_recording": round(statistics.median(r["ledger_s"] for r in runs) / files * 1e6, 1),
        "cpu_overhead": round(statistics.median(r["cpu_s"] / r["baseline_cpu_s"] - 1 for r in runs), 4),
        "wall_overhead": round(statistics.median(r["wall_s"] / r["baseline_wall_s"] - 1 for r in runs), 4),
        "recordings_per_s_with_ledger": round(files / statistics.median(r["wall_s"] for r in runs), 1),
        "goal_met": share <= 0.05,
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


def measure_proofs(count: int, root: str, n: int = 1000) -> dict[str, Any]:
    """Inclusion paths of ``n`` entries spread over the ledger, as an evidence export of ``n`` entries
    writes them (one tree, shared reads), each checked against the signed root."""
    import random

    from recordings import ledger_tree
    from recordings.lib import ledger as chain
    from recordings.models import LedgerEntry

    picks = sorted(random.Random(count).sample(range(count), min(n, count)))
    start = time.perf_counter()
    tree = ledger_tree.Tree(count)
    paths = [tree.path(i) for i in picks]
    seconds = time.perf_counter() - start
    wanted = LedgerEntry.objects.filter(seq__in=[i + 1 for i in picks])
    leaves = dict(wanted.values_list("seq", "entry_sha256"))
    if any(chain.audit_path_root(leaves[i + 1], i, count, p) != root for i, p in zip(picks, paths, strict=True)):
        raise RuntimeError("an inclusion path does not lead to the signed root")
    size = max(sum(len(f"{side} {h}\n") for side, h in p) for p in paths)
    return {"proofs": len(paths), "proofs_s": round(seconds, 2), "proof_bytes": size}


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
        fill_s = time.perf_counter() - start
        start = time.perf_counter()
        made = make_checkpoint(now=datetime.now(UTC))  # brings the Merkle tree's kept nodes up to date
        checkpoint_s = time.perf_counter() - start
        proofs = measure_proofs(made.count, made.root)
        before = peak_rss_mb()
        start, cpu = time.perf_counter(), time.process_time()
        report = verify_custody(now=datetime.now(UTC), record=False)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        if not report.ok:
            raise RuntimeError(f"verify_custody failed on a clean ledger: {report.problems[:3]}")
        result[label] = {
            "entries": report.entries,
            "verify_s": round(seconds, 2),
            "verify_cpu_s": round(cpu, 2),  # SQLite runs in this process: the database's work included
            "fill_s": round(fill_s, 1),
            "checkpoint_s": round(checkpoint_s, 2),
            **proofs,
            "rss_growth_mb": round(peak_rss_mb() - before, 1),
            "entries_per_s": round(report.entries / seconds),
        }
        print(
            f"verify_custody over {report.entries} entries: {seconds:.1f} s ({cpu:.1f} s CPU); "
            f"checkpoint {checkpoint_s:.2f} s; {proofs['proofs']} inclusion paths {proofs['proofs_s']:.2f} s, "
            f"{proofs['proof_bytes']} bytes each",
            file=sys.stderr,
        )
    result["goal_met_verify"] = result["all"]["verify_s"] < 60
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=5, help="archive rounds (0: measure verify_custody only)")
    parser.add_argument("--codec-files", type=int, default=40, help="recordings a round in the default-codec mode")
    parser.add_argument("--seconds", type=float, default=30, help="length of each default-codec recording")
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
            result = (
                {}
                if not args.repeat
                else {
                    "archive": measure_archive(
                        spool, mode="pass-through", files=args.files, repeat=args.repeat, seconds=args.seconds
                    ),
                    "archive_default_codec": measure_archive(
                        spool, mode="default codec", files=args.codec_files, repeat=args.repeat, seconds=args.seconds
                    ),
                }
            )
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
