"""What retention will delete soon: per campaign, how many recordings and bytes expire within each window,
and how much of that is held (and so will not go while the hold stands)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

from django.db.models import Count, Sum
from django.db.models.functions import Coalesce

from recordings.models import Recording
from retention.approval import Shortening
from retention.models import RetentionPolicy


@dataclass
class WindowForecast:
    days: int
    recordings: int = 0
    bytes: int = 0
    held_recordings: int = 0
    held_bytes: int = 0
    by_campaign: list[dict[str, object]] = field(default_factory=list)


def _totals(queryset) -> dict[str, tuple[int, int]]:  # type: ignore[no-untyped-def]
    rows = queryset.values("campaign__campaign_id").annotate(
        n=Count("pk"), size=Coalesce(Sum(Coalesce("stored_size", "original_size")), 0)
    )
    return {row["campaign__campaign_id"] or "(no campaign)": (row["n"], row["size"]) for row in rows}


def forecast(*, now: datetime, windows: tuple[int, ...] = (30, 90)) -> dict[str, object]:
    result: dict[str, object] = {"as_of": now.isoformat(), "windows": []}
    for days in windows:
        expiring = Recording.objects.expiring(now, days)
        totals, held = _totals(expiring), _totals(expiring.held())
        window = WindowForecast(days=days)
        for campaign, (count, size) in sorted(totals.items()):
            held_count, held_size = held.get(campaign, (0, 0))
            window.recordings += count
            window.bytes += size
            window.held_recordings += held_count
            window.held_bytes += held_size
            window.by_campaign.append(
                {
                    "campaign": campaign,
                    "recordings": count,
                    "bytes": size,
                    "held_recordings": held_count,
                    "held_bytes": held_size,
                }
            )
        result["windows"].append(asdict(window))  # type: ignore[attr-defined]
    return result


def policy_change_impact(policy: RetentionPolicy, *, new_retain_days: int, now: datetime) -> dict[str, object]:
    """What a change of ``retain_days`` would make eligible for deletion at once, and over the next 90 days."""
    covered = Recording.objects.with_copies()
    if policy.campaign_id is None:
        covered = covered.exclude(campaign_id__in=RetentionPolicy.objects.exclude(campaign=None).values("campaign_id"))
    else:
        covered = covered.filter(campaign_id=policy.campaign_id)
    current_cutoff = now - timedelta(days=policy.retain_days)
    new_cutoff = now - timedelta(days=new_retain_days)
    if new_retain_days >= policy.retain_days:
        return {
            "newly_eligible_now": 0,
            "bytes_now": 0,
            "held_now": 0,
            "eligible_within_90_days": 0,
            "bytes_within_90_days": 0,
            "earliest_new_deletion": None,
            "note": "longer or equal retention: nothing becomes eligible earlier",
        }
    newly = covered.filter(start_time__lt=new_cutoff, start_time__gte=current_cutoff)
    soon = covered.filter(start_time__lt=new_cutoff + timedelta(days=90), start_time__gte=new_cutoff)
    size = Coalesce(Sum(Coalesce("stored_size", "original_size")), 0)
    now_totals = newly.aggregate(n=Count("pk"), size=size)
    soon_totals = soon.aggregate(n=Count("pk"), size=size)
    return {
        "newly_eligible_now": now_totals["n"],
        "bytes_now": now_totals["size"],
        "held_now": newly.held().count() if now_totals["n"] else 0,
        "eligible_within_90_days": soon_totals["n"],
        "bytes_within_90_days": soon_totals["size"],
        "earliest_new_deletion": now.isoformat() if now_totals["n"] else None,
    }


IMPACT_COUNTS = ("newly_eligible_now", "bytes_now", "held_now", "eligible_within_90_days", "bytes_within_90_days")


def shortening_impact(changes: list[Shortening], *, now: datetime) -> dict[str, object]:
    """What a change would make eligible for deletion, summed over every scope it shortens
    (retention.approval.shortenings: a new or moved policy touches two scopes, a shorter default all of its own)."""
    total: dict[str, object] = dict.fromkeys(IMPACT_COUNTS, 0) | {"earliest_new_deletion": None}
    for change in changes:
        current = RetentionPolicy(campaign_id=change.campaign_id, retain_days=change.before.retain_days)
        part = policy_change_impact(current, new_retain_days=change.after.retain_days, now=now)
        for key in IMPACT_COUNTS:
            total[key] += part[key]  # type: ignore[operator]
        total["earliest_new_deletion"] = total["earliest_new_deletion"] or part["earliest_new_deletion"]
    if not any(c.after.retain_days < c.before.retain_days for c in changes):
        total["note"] = "no retention period gets shorter: nothing becomes eligible earlier"
    return total
