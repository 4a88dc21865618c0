"""Benchmark (arithmetic, no network): what each storage class saves against STANDARD for a demo-like mix of
retention policies, on Cloudflare R2 and AWS S3, at today's list prices (recordings.lib.pricing).

    .venv/bin/python bench/bench_storage_class.py [--calls-per-month N] [--kb K] [--playback-share P]

Each policy takes N calls a month of K KB each (a three-minute call in MP3 at 24 kbit/s is about 530 KB) and
a share P of them is played back once. For every class it prints the monthly bill once the bucket is full
(steady state) and the cost of one month of calls over the policy's whole retention, with the saving
against STANDARD at the same provider; a class that costs more than it saves (vicirec refuses it) is
marked. Prints one JSON object on stdout and a table on stderr. Needs no Django.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recordings.lib import pricing  # noqa: E402

# name, days on local disk before upload, days retained (the demo's default policy and typical campaigns)
POLICIES = (
    ("default (general, 1 year)", 3, 365),
    ("debt collection (Reg F, 3 years)", 3, 1100),
    ("telemarketing consent (TSR, 5 years)", 3, 1830),
    ("short QA sample (20 days)", 3, 20),
)


def policy_costs(name: str, keep: int, retain: int, *, calls: int, size: int, share: float) -> dict[str, Any]:
    days = retain - keep
    reads = int(calls * share)
    month = pricing.Volume(
        objects=calls,
        bytes=calls * size,
        billable_bytes=calls * pricing.billable(size),
        days=days,
        reads=reads,
        read_bytes=reads * size,
    )
    classes: dict[str, dict[str, Any]] = {}
    for provider in pricing.PROVIDERS:
        standard = pricing.cost(pricing.offer(provider, pricing.STANDARD), month)["total"]  # type: ignore[arg-type]
        for storage_class in pricing.CLASSES:
            offer = pricing.offer(provider, storage_class)
            if offer is None:
                continue
            whole = pricing.cost(offer, month)["total"]
            classes[f"{provider}:{storage_class}"] = {
                "label": offer.label,
                "monthly_full_bucket": round(whole, 2),  # a full bucket's month = one month of calls' lifetime
                "whole_retention": round(whole, 2),
                "saving_vs_standard": round(standard - whole, 2),
                "saving_percent": round(100 * (standard - whole) / standard, 1) if standard else 0.0,
                "refused": pricing.refusal(storage_class, providers=(provider,), size=size, days=days),
            }
    return {"policy": name, "bucket_days": days, "classes": classes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls-per-month", type=int, default=100_000)
    parser.add_argument("--kb", type=int, default=530, help="stored size of one recording, KB")
    parser.add_argument("--playback-share", type=float, default=0.02, help="share of calls played back once")
    parser.add_argument("--json", action="store_true", help="accepted for bench/run.py; JSON is always printed")
    args = parser.parse_args()
    size = args.kb * 1024
    rows = [
        policy_costs(name, keep, retain, calls=args.calls_per_month, size=size, share=args.playback_share)
        for name, keep, retain in POLICIES
    ]
    best = {
        row["policy"]: max(
            (c for c in row["classes"].values() if not c["refused"]), key=lambda c: c["saving_vs_standard"]
        )
        for row in rows
    }
    for row in rows:
        print(f"{row['policy']} ({row['bucket_days']} days in the bucket)", file=sys.stderr)
        for c in row["classes"].values():
            mark = "  refused: costs more than it saves" if c["refused"] else ""
            print(
                f"  {c['label']:<36} ${c['whole_retention']:>11,.2f}  saves ${c['saving_vs_standard']:>10,.2f}"
                f" ({c['saving_percent']:>5}%){mark}",
                file=sys.stderr,
            )
    print("Per month of calls over the whole retention (= the monthly bill once the bucket is full).", file=sys.stderr)
    summary = {
        "calls_per_month": args.calls_per_month,
        "kb_per_call": args.kb,
        "playback_share": args.playback_share,
        "policies": rows,
        "best": {name: {"class": c["label"], "saving_percent": c["saving_percent"]} for name, c in best.items()},
        "ratio_best_saving_percent": max(c["saving_percent"] for c in best.values()),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
