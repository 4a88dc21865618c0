"""What retention will delete soon: per campaign, how many recordings and bytes expire within each window,
and how much of that is held (and so will not go while the hold stands)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db.models import BigIntegerField, Count, Sum, Value
from django.db.models.functions import Coalesce, Greatest

from recordings.lib import pricing
from recordings.models import AccessEvent, InventoryBlock, Recording
from retention.approval import Shortening
from retention.models import RetentionPolicy
from retention.models import prices as prices_in_force


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


# --- what storage costs, per policy, on R2 and S3 ------------------------------------------------------

CENTS = 4  # USD rounded to hundredths of a cent: a small installation's month is a few cents
READ_ACTIONS = (AccessEvent.Action.PLAY, AccessEvent.Action.DOWNLOAD, AccessEvent.Action.LINK)


def _covered(policy: RetentionPolicy, explicit: list[int]):  # type: ignore[no-untyped-def]
    recordings = Recording.objects.all()
    if policy.campaign_id is not None:
        return recordings.filter(campaign_id=policy.campaign_id)
    return recordings.exclude(campaign_id__in=explicit)


def _stored_from_blocks(policy: RetentionPolicy, explicit: list[int]) -> pricing.Volume:
    """What the policy stores today, summed from the statistics snapshot's InventoryBlock rows (kept up to
    date block by block, so this costs a few thousand rows, not a pass over the catalog)."""
    rows = InventoryBlock.objects.filter(state__in=Recording.STORED_STATES)
    if policy.campaign_id is not None:
        rows = rows.filter(campaign_id=policy.campaign_id)
    else:
        rows = rows.exclude(campaign_id__in=explicit)
    total = rows.aggregate(
        n=Coalesce(Sum("n"), 0), size=Coalesce(Sum("size"), 0), billable=Coalesce(Sum("billable_min"), 0)
    )
    return pricing.Volume(
        objects=total["n"], bytes=total["size"], billable_bytes=total["billable"], days=pricing.DAYS_PER_MONTH
    )


def _volumes(
    policy: RetentionPolicy,
    explicit: list[int],
    now: datetime,
    counted: dict[str, Any] | None = None,
    *,
    stored_from_blocks: bool = False,
) -> tuple[pricing.Volume, pricing.Volume]:
    """(what is stored today, one month of calls at the last 30 days' volume kept its whole retention);
    from ``counted`` (``policy_volumes``, taken with the statistics snapshot) when it has this policy; what
    is stored from the InventoryBlock rows when ``stored_from_blocks`` (the snapshot, once they are current)."""
    found = (counted or {}).get(_volume_key(policy))
    if found is not None:
        stored = pricing.Volume(**found["stored"], days=pricing.DAYS_PER_MONTH)
        return stored, pricing.Volume(**found["month"], days=policy.bucket_days)
    covered = _covered(policy, explicit)
    big = BigIntegerField()
    billable = Greatest(
        Coalesce("stored_size", "original_size", Value(0), output_field=big),
        Value(pricing.MIN_BILLABLE_OBJECT),
        output_field=big,
    )
    size = Coalesce(Sum(Coalesce("stored_size", "original_size")), 0)
    since = now - timedelta(days=30)
    month = covered.filter(start_time__gte=since, start_time__lt=now).aggregate(
        n=Count("pk"), size=size, billable=Coalesce(Sum(billable), 0)
    )
    reads = AccessEvent.objects.filter(at__gte=since, at__lt=now, action__in=READ_ACTIONS, recording__in=covered)
    read = reads.aggregate(n=Count("pk"), size=Coalesce(Sum("recording__stored_size"), 0))
    if stored_from_blocks:
        stored = _stored_from_blocks(policy, explicit)
    else:
        today = covered.stored().aggregate(n=Count("pk"), size=size, billable=Coalesce(Sum(billable), 0))
        stored = pricing.Volume(
            objects=today["n"], bytes=today["size"], billable_bytes=today["billable"], days=pricing.DAYS_PER_MONTH
        )
    # In a steady state a month of calls is read, over its whole life, as often as the bucket is read in a
    # month: so one month's intake over its retention costs what the full bucket costs a month.
    lifetime = pricing.Volume(
        objects=month["n"],
        bytes=month["size"],
        billable_bytes=month["billable"],
        days=policy.bucket_days,
        reads=read["n"],
        read_bytes=read["size"],
    )
    return stored, lifetime


def _volume_key(policy: RetentionPolicy) -> str:
    return "default" if policy.campaign_id is None else f"campaign {policy.campaign_id}"


def policy_volumes(now: datetime) -> dict[str, Any]:
    """What each policy stores and its last 30 days of calls and playback, counted for the statistics
    snapshot (recordings.ops.stats) right after it brought InventoryBlock up to date: what is stored comes
    from the blocks (the day's changes, not a pass over the catalog), the month from the call-time index.
    The dashboard prices these counts at the prices in force when it is shown, instead of summing every
    policy's recordings on each view (minutes at 1,000,000 rows)."""
    default, explicit = RetentionPolicy.objects.for_campaign_ids()
    counted = {}
    for policy in [default, *explicit.values()]:
        stored, month = _volumes(policy, list(explicit), now, stored_from_blocks=True)
        counted[_volume_key(policy)] = {
            "stored": {"objects": stored.objects, "bytes": stored.bytes, "billable_bytes": stored.billable_bytes},
            "month": {k: v for k, v in asdict(month).items() if k != "days"},
            "object_bytes": _object_bytes(policy, month),
        }
    return counted


def _object_bytes(policy: RetentionPolicy, month: pricing.Volume) -> int:
    """A typical object's size: the last 30 days' average, else the policy's stored average (a scan)."""
    return month.bytes // max(month.objects, 1) or policy.typical_object_bytes()


def _policy_costs(
    policy: RetentionPolicy, explicit: list[int], now: datetime, counted: dict[str, Any] | None = None
) -> dict[str, Any]:
    stored, lifetime = _volumes(policy, explicit, now, counted)
    object_bytes = (counted or {}).get(_volume_key(policy), {}).get("object_bytes") or _object_bytes(policy, lifetime)
    prices = prices_in_force()
    offers = []
    for offer in pricing.offers(prices):
        monthly = pricing.cost(offer, stored, minimums=False)
        whole = pricing.cost(offer, lifetime)
        offers.append(
            {
                "provider": offer.provider,
                "storage_class": offer.storage_class,
                "label": offer.label,
                "chosen": offer.storage_class == policy.storage_class,
                "monthly_storage_today": round(monthly["storage"], CENTS),
                "whole_retention": {name: round(value, CENTS) for name, value in whole.items()},
                "playback": round(whole["retrieval"] + whole["egress"], CENTS),
                "refused": pricing.refusal(
                    offer.storage_class,
                    providers=(offer.provider,),
                    size=object_bytes,
                    days=policy.bucket_days,
                    prices=prices,
                ),
            }
        )
    return {
        "policy": str(policy),
        "storage_class": policy.storage_class,
        "retain_days": policy.retain_days,
        "bucket_days": policy.bucket_days,
        "stored": {"objects": stored.objects, "bytes": stored.bytes},
        "last_30_days": {
            "recordings": lifetime.objects,
            "bytes": lifetime.bytes,
            "reads": lifetime.reads,
            "read_bytes": lifetime.read_bytes,
        },
        "offers": offers,
    }


def cost_forecast(*, now: datetime, counted: dict[str, Any] | None = None) -> dict[str, Any]:
    """For each policy: today's stored bytes and their monthly storage cost, and the cost of one month of
    calls (at the last 30 days' volume and playback) over the policy's whole retention, for every R2 and S3
    storage class; then the totals of each policy's own class on R2 and on S3, and which is cheaper. The
    volumes come from ``counted`` (``policy_volumes``) where it has them, else are counted now."""
    default, explicit = RetentionPolicy.objects.for_campaign_ids()
    policies = [default, *sorted(explicit.values(), key=lambda p: str(p))]
    rows = [_policy_costs(policy, list(explicit), now, counted) for policy in policies]
    totals: dict[str, float] = {}
    for provider in pricing.PROVIDERS:
        chosen = [
            offer
            for row in rows
            for offer in row["offers"]
            if offer["provider"] == provider and (offer["chosen"] or _fallback(row, offer, provider))
        ]
        totals[provider] = round(sum(o["whole_retention"]["total"] for o in chosen), CENTS)
    cheaper = min(totals, key=totals.__getitem__)
    other = max(totals, key=totals.__getitem__)
    return {
        "as_of": now.isoformat(),
        "policies": rows,
        "whole_retention_total": totals,
        "cheaper": cheaper,
        "saving": round(totals[other] - totals[cheaper], CENTS),
    }


def _fallback(row: dict[str, Any], offer: dict[str, Any], provider: str) -> bool:
    """A policy whose class a provider lacks (Glacier IR on R2) is priced there in STANDARD."""
    has_chosen = any(o["chosen"] and o["provider"] == provider for o in row["offers"])
    return not has_chosen and offer["storage_class"] == pricing.STANDARD
