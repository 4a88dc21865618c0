"""The figures of the compliance desk's dashboard (the admin index), for the view in recordings.views.

The table-wide totals (by state, per server, in the bucket, month by month, and what each retention policy
stores and took in over the last 30 days, which the cost panel prices) come from the latest statistics
snapshot, where the central worker computes them (recordings.ops.stats.inventory): a page view
never scans the catalog. Only a catalog without any snapshot yet is counted live. The backlog and the
latest failures are live queries bounded by the (state, server_ip, start_time) index.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Count, Min, Sum
from django.db.models.functions import Coalesce

from holds.models import LegalHold
from recordings.lib import pricing
from recordings.models import PipelineSnapshot, Recording
from recordings.ops.stats import GIB, NODE_WORK_STATES, inventory
from recordings.ops.status import last_custody_check
from recordings.pipeline.erasure import figures as erasure_figures
from recordings.pipeline.retention import deletable
from retention.forecast import cost_forecast, forecast
from retention.models import PolicyProposal, prices

# List prices (USD; Cloudflare R2; AWS S3 us-east-1, first 50 TB), dated and explained in recordings.lib.pricing.
PRICE_DEFAULTS = pricing.PRICE_DEFAULTS

# The backlog rows, in the order the dashboard shows them.
STAGE_LABELS = (
    (Recording.State.CAPTURED, "waiting to be archived"),
    (Recording.State.MISSING, "file not found yet"),
    (Recording.State.FAILED, "failed, will retry"),
    (Recording.State.ARCHIVED, "archived, local copy still to clear"),
)
FAILURES_SHOWN = 10
HOLDS_SHOWN = 10
PROPOSALS_SHOWN = 10


def price(name: str) -> float:
    """A price in USD (per GB-month, GB or request, by its name): the setting if set, else the list price."""
    return float(prices()(name))


def dashboard_data(now: datetime) -> dict[str, Any]:
    """Every figure of the admin index, as one dict for its template (the view caches it)."""
    totals, totals_as_of = _totals(now)
    return {
        "as_of": now,
        "totals_as_of": totals_as_of,
        **totals,
        "stages": _stages(now),
        "failures": _latest_failures(),
        "overdue": _overdue(now),
        "forecast": forecast(now=now)["windows"],
        "holds": list(LegalHold.objects.active().select_related("case", "campaign")[:HOLDS_SHOWN]),
        "active_holds": LegalHold.objects.active().count(),
        "erasures": erasure_figures(now=now),
        "bill": _bill(totals["cloud"]),
        "proposals": list(_pending_proposals()[:PROPOSALS_SHOWN]),
        "pending_proposals": _pending_proposals().count(),
        "costs": cost_forecast(now=now, counted=totals.get("policy_volumes")),
        "custody": last_custody_check(),
    }


def _overdue(now: datetime) -> dict[str, int]:
    """Recordings already past their retention: those a retention run would delete now (its dry run's very
    query, recordings.pipeline.retention.deletable) and those kept only by a hold."""
    size = Coalesce(Sum(Coalesce("stored_size", "original_size")), 0)
    due = deletable(now).aggregate(n=Count("pk"), bytes=size)
    held = Recording.objects.expired(now).held().aggregate(n=Count("pk"), bytes=size)
    return {"n": due["n"], "bytes": due["bytes"], "held": held["n"], "held_bytes": held["bytes"]}


def _pending_proposals():  # type: ignore[no-untyped-def]
    return (
        PolicyProposal.objects.filter(status=PolicyProposal.Status.PENDING)
        .select_related("campaign")
        .order_by("proposed_at")
    )


def _totals(now: datetime) -> tuple[dict[str, Any], datetime]:
    """The table-wide totals and when they were taken: the latest snapshot's, or counted now if none."""
    snapshot = PipelineSnapshot.objects.exclude(inventory={}).order_by("-day").first()
    if snapshot:
        return snapshot.inventory, snapshot.taken_at
    return inventory(now), now


def _stages(now: datetime) -> list[dict[str, Any]]:
    """One row per state with work left on a node: how many, the oldest call's start and its age in days."""
    backlog = {
        row["state"]: row
        for row in Recording.objects.filter(state__in=NODE_WORK_STATES)
        .order_by()
        .values("state")
        .annotate(n=Count("pk"), oldest=Min("start_time"))
    }
    stages = []
    for state, label in STAGE_LABELS:
        row = backlog.get(state, {})
        oldest = row.get("oldest")
        stages.append(
            {
                "state": state,
                "label": label,
                "n": row.get("n", 0),
                "oldest": oldest,
                "age_days": round((now - oldest).total_seconds() / 86400, 1) if oldest else None,
            }
        )
    return stages


def _latest_failures() -> list[dict[str, Any]]:
    """The most recent failed or rejected recordings that carry an error, newest first."""
    return list(
        Recording.objects.filter(state__in=(Recording.State.FAILED, Recording.State.REJECTED))
        .exclude(error="")
        .order_by("-state_changed_at")
        .values("recording_id", "state", "server_ip", "error", "state_changed_at", "attempts")[:FAILURES_SHOWN]
    )


def _bill(cloud: dict[str, Any]) -> list[dict[str, Any]]:
    """What the bucket's content would cost a month on each offer. The infrequent-access classes bill every
    object as at least 128 KB, so they are priced on ``billable_min``, not on the bytes stored."""
    gib = cloud["bytes"] / GIB
    gib_min = cloud["billable_min"] / GIB
    bill: list[dict[str, Any]] = [
        {"name": "Cloudflare R2 Standard (no egress fees)", "rate": price("VICIREC_PRICE_R2_GB_MONTH"), "gib": gib},
        {"name": "AWS S3 Standard", "rate": price("VICIREC_PRICE_S3_STANDARD_GB_MONTH"), "gib": gib},
        {
            "name": "AWS S3 Standard-IA (128 KB minimum per object, 30-day minimum)",
            "rate": price("VICIREC_PRICE_S3_STANDARD_IA_GB_MONTH"),
            "gib": gib_min,
        },
        {
            "name": "AWS S3 Glacier Instant Retrieval (128 KB minimum, 90-day minimum)",
            "rate": price("VICIREC_PRICE_S3_GLACIER_IR_GB_MONTH"),
            "gib": gib_min,
        },
    ]
    for line in bill:
        line["monthly"] = round(line["gib"] * line["rate"], 2)
    return bill
