"""The daily statistics snapshot, kept one row a day for the dashboard and for pipeline_status's
days-to-full forecast.

The waiting states are counted over the (state, server_ip, start_time) index, the day's transitions over
the custody log's ``at`` index, and disk usage comes from the nodes' own reports. The dashboard's
table-wide totals (inventory) are taken here, by the central worker, so that no page view has to, and
incrementally: InventoryBlock keeps the totals of each block of BLOCK recording ids, and a snapshot
recounts only the blocks that a custody event touched since the previous snapshot (every change of state,
upload or expiry writes one), by primary-key range. The first snapshot (no blocks yet) counts every block
once; ``take_snapshot(full=True)`` (``rebuild_inventory``) does that again on demand.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Count, DateField, F, Max, Min, Sum, Value
from django.db.models.functions import Coalesce, Greatest, TruncMonth
from django_q.models import Success

from recordings.models import InventoryBlock, Recording, RecordingEvent
from recordings.ops.schedules import PREFIX
from retention.forecast import policy_volumes
from vicirec.reports import Report

NODE_WORK_STATES = (*Recording.WAITING_STATES, Recording.State.ARCHIVED)  # to upload, or to clear locally


def waiting_counts() -> dict[str, dict[str, int]]:
    """{state: {server_ip: count}} for the states with work left on a node."""
    counts: dict[str, dict[str, int]] = {}
    rows = (
        Recording.objects.filter(state__in=NODE_WORK_STATES)
        .order_by()
        .values_list("state", "server_ip")
        .annotate(n=Count("pk"))
    )
    for state, server_ip, n in rows:
        counts.setdefault(state, {})[server_ip] = n
    return counts


GIB = 1024**3
MIN_BILLABLE_OBJECT = 128 * 1024  # S3 Standard-IA and Glacier Instant Retrieval bill small objects as 128 KB


def inventory(now: datetime) -> dict[str, Any]:
    """The catalog's totals: recordings and bytes by state, local bytes per telephony server, the bucket's
    totals and its size at the end of each of the last 12 months. JSON-ready (stored in the snapshot)."""
    size = Coalesce("stored_size", "original_size")
    by_state = {
        row["state"]: row
        for row in Recording.objects.order_by().values("state").annotate(n=Count("pk"), size=Coalesce(Sum(size), 0))
    }
    states = [
        {
            "state": state,
            "label": label,
            "n": by_state.get(state, {}).get("n", 0),
            "bytes": by_state.get(state, {}).get("size", 0),
        }
        for state, label in Recording.State.choices
    ]
    local = list(
        Recording.objects.filter(state__in=Recording.LOCAL_STATES)
        .order_by()
        .values("server_ip")
        .annotate(n=Count("pk"), bytes=Coalesce(Sum("original_size"), 0))
        .order_by("server_ip")
    )
    cloud = Recording.objects.stored().aggregate(
        n=Count("pk"),
        bytes=Coalesce(Sum("stored_size"), 0),
        billable_min=Coalesce(Sum(Greatest("stored_size", Value(MIN_BILLABLE_OBJECT))), 0),
    )
    return {
        "states": states,
        "total": {"n": sum(s["n"] for s in states), "bytes": sum(s["bytes"] for s in states)},
        "local": local,
        "local_bytes": sum(row["bytes"] for row in local),
        "cloud": cloud,
        "chart": _chart(now, cloud["bytes"]),
    }


def _month_starts(now: datetime, months: int) -> list[datetime]:
    first = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    starts = [first]
    for _ in range(months - 1):
        starts.append((starts[-1] - timedelta(days=1)).replace(day=1))
    return list(reversed(starts))


def _chart(now: datetime, stored_now: int, months: int = 12) -> dict[str, Any]:
    """Bytes in the bucket at the end of each of the last ``months`` months, from two grouped queries."""
    since = _month_starts(now, months)[0]
    uploaded = dict(
        Recording.objects.filter(uploaded_at__gte=since, stored_size__isnull=False)
        .annotate(month=TruncMonth("uploaded_at"))
        .order_by()
        .values_list("month")
        .annotate(size=Sum("stored_size"))
    )
    expired = dict(
        Recording.objects.filter(expired_at__gte=since, stored_size__isnull=False, state=Recording.State.EXPIRED)
        .annotate(month=TruncMonth("expired_at"))
        .order_by()
        .values_list("month")
        .annotate(size=Sum("stored_size"))
    )

    up = {(k.year, k.month): v or 0 for k, v in uploaded.items() if k}
    gone = {(k.year, k.month): v or 0 for k, v in expired.items() if k}
    return _draw_chart(now, stored_now, up, gone, months)


def _draw_chart(
    now: datetime, stored_now: int, up: dict[tuple[int, int], int], gone: dict[tuple[int, int], int], months: int = 12
) -> dict[str, Any]:
    """The chart's bars from the bytes uploaded and expired by (year, month)."""
    starts = _month_starts(now, months)
    points = []
    level = stored_now
    for start in reversed(starts):  # walk back: the end of a month is now minus what came after it
        points.append({"label": f"{start:%b %Y}", "short": f"{start:%b}", "bytes": max(level, 0)})
        key = (start.year, start.month)
        level = level - up.get(key, 0) + gone.get(key, 0)
    points.reverse()
    width, height, pad = 600, 160, 24
    top = max([p["bytes"] for p in points] + [1])
    bar = (width - pad) / len(points)
    for i, p in enumerate(points):
        h = round((height - pad) * p["bytes"] / top, 1)
        p.update(x=round(pad + i * bar + 2, 1), w=round(bar - 4, 1), h=h, y=round(height - pad - h, 1))
        p["tx"] = round(p["x"] + p["w"] / 2, 1)
    return {"points": points, "width": width, "height": height, "base": height - pad, "top": top}


BLOCK = 100_000  # recording ids per InventoryBlock: a primary-key range the snapshot recounts in one query
CHANGED_SINCE_MARGIN = timedelta(days=1)  # custody events are dated by their stage run's start


def count_block(block: int) -> int:
    """Recount one block of recording ids into InventoryBlock (replacing its rows); returns its rows."""
    size = Coalesce("stored_size", "original_size")
    rows = (
        Recording.objects.filter(recording_id__gte=block * BLOCK, recording_id__lt=(block + 1) * BLOCK)
        .annotate(
            uploaded_month=TruncMonth("uploaded_at", output_field=DateField()),
            expired_month=TruncMonth("expired_at", output_field=DateField()),
        )
        .order_by()
        .values("state", "server_ip", "campaign_id", "uploaded_month", "expired_month")
        .annotate(
            n=Count("pk"),
            size=Coalesce(Sum(size), 0),
            original_bytes=Coalesce(Sum("original_size"), 0),
            stored_n=Count("stored_size"),
            stored_bytes=Coalesce(Sum("stored_size"), 0),
            billable_min=Coalesce(Sum(Greatest("stored_size", Value(MIN_BILLABLE_OBJECT))), 0),
        )
    )
    found = [InventoryBlock(block=block, **row) for row in rows]
    with transaction.atomic():
        InventoryBlock.objects.filter(block=block).delete()
        InventoryBlock.objects.bulk_create(found)
    return len(found)


def rebuild_inventory() -> int:
    """Recount every block of the catalog (the first snapshot, or on demand); returns the blocks counted."""
    span = Recording.objects.aggregate(lo=Min("recording_id"), hi=Max("recording_id"))
    InventoryBlock.objects.all().delete()
    if span["lo"] is None:
        return 0
    blocks = range(span["lo"] // BLOCK, span["hi"] // BLOCK + 1)
    for block in blocks:
        count_block(block)
    return len(blocks)


def changed_blocks(since: datetime) -> set[int]:
    """The blocks holding a recording with a custody event since ``since`` (and the newest block)."""
    ids = RecordingEvent.objects.filter(at__gte=since).order_by().values_list("recording_id", flat=True)
    blocks = {rid // BLOCK for rid in ids.iterator(chunk_size=10_000)}
    top = Recording.objects.aggregate(hi=Max("recording_id"))["hi"]
    if top is not None:
        blocks.add(top // BLOCK)
    return blocks


def update_inventory(since: datetime | None) -> int:
    """Bring InventoryBlock up to date: every block if it is empty or ``since`` is None, else the blocks
    changed since ``since``. Returns the blocks counted."""
    if since is None or not InventoryBlock.objects.exists():
        return rebuild_inventory()
    blocks = changed_blocks(since - CHANGED_SINCE_MARGIN)
    for block in sorted(blocks):
        count_block(block)
    return len(blocks)


def inventory_from_blocks(now: datetime) -> dict[str, Any]:
    """The same totals as ``inventory``, summed from InventoryBlock (a few rows per block)."""
    by_state: dict[str, dict[str, int]] = {}
    local: dict[str, dict[str, Any]] = {}
    cloud = {"n": 0, "bytes": 0, "billable_min": 0}
    up: dict[tuple[int, int], int] = {}
    gone: dict[tuple[int, int], int] = {}
    since = _month_starts(now, 12)[0].date()
    rows = (
        InventoryBlock.objects.order_by()
        .values("state", "server_ip", "uploaded_month", "expired_month")
        .annotate(
            n=Sum("n"),
            size=Sum("size"),
            original_bytes=Sum("original_bytes"),
            stored_n=Sum("stored_n"),
            stored_bytes=Sum("stored_bytes"),
            billable_min=Sum("billable_min"),
        )
    )
    for row in rows:
        entry = by_state.setdefault(row["state"], {"n": 0, "size": 0})
        entry["n"] += row["n"]
        entry["size"] += row["size"]
        if row["state"] in Recording.LOCAL_STATES:
            server = local.setdefault(row["server_ip"], {"server_ip": row["server_ip"], "n": 0, "bytes": 0})
            server["n"] += row["n"]
            server["bytes"] += row["original_bytes"]
        if row["state"] in Recording.STORED_STATES:
            cloud["n"] += row["n"]
            cloud["bytes"] += row["stored_bytes"]
            cloud["billable_min"] += row["billable_min"]
        month = row["uploaded_month"]
        if month and month >= since and row["stored_n"]:
            up[(month.year, month.month)] = up.get((month.year, month.month), 0) + row["stored_bytes"]
        month = row["expired_month"]
        if month and month >= since and row["stored_n"] and row["state"] == Recording.State.EXPIRED:
            gone[(month.year, month.month)] = gone.get((month.year, month.month), 0) + row["stored_bytes"]
    states = [
        {
            "state": state,
            "label": label,
            "n": by_state.get(state, {}).get("n", 0),
            "bytes": by_state.get(state, {}).get("size", 0),
        }
        for state, label in Recording.State.choices
    ]
    servers = [local[k] for k in sorted(local)]
    return {
        "states": states,
        "total": {"n": sum(s["n"] for s in states), "bytes": sum(s["bytes"] for s in states)},
        "local": servers,
        "local_bytes": sum(row["bytes"] for row in servers),
        "cloud": cloud,
        "chart": _draw_chart(now, cloud["bytes"], up, gone),
    }


def reported_disks() -> dict[str, dict[str, Any]]:
    """{node: disk usage} from the latest successful archive or cleanup run of each node."""
    disks: dict[str, dict[str, Any]] = {}
    for stage in ("archive", "cleanup"):
        groups = (
            Success.objects.filter(group__startswith=f"{PREFIX}{stage}")
            .order_by()
            .values_list("group", flat=True)
            .distinct()
        )
        for group in groups:
            task = Success.objects.filter(group=group).order_by("-stopped").first()
            result = task.result if task else None
            if not isinstance(result, dict) or not result.get("disk"):
                continue
            node = (task.kwargs or {}).get("node", "") if isinstance(task.kwargs, dict) else ""
            seen = disks.get(node)
            if seen is None or seen["reported_at"] < task.stopped.isoformat():
                disks[node] = {**result["disk"], "reported_at": task.stopped.isoformat()}
    return disks


@dataclass
class SnapshotReport(Report):
    day: str = ""
    waiting: dict[str, dict[str, int]] = field(default_factory=dict)
    transitions: dict[str, int] = field(default_factory=dict)
    archived_original_bytes: int = 0
    archived_stored_bytes: int = 0
    disk: dict[str, dict[str, Any]] = field(default_factory=dict)
    inventory: dict[str, Any] = field(default_factory=dict)
    policy_volumes: dict[str, Any] = field(default_factory=dict)  # kept with the inventory, for the cost panel
    blocks_counted: int = 0


def take_snapshot(*, now: datetime, full: bool = False) -> SnapshotReport:
    """Write (or rewrite) today's snapshot. The inventory recounts only the blocks changed since the
    previous snapshot was taken (every block when there is none, or with ``full``)."""
    from recordings.models import PipelineSnapshot

    previous = PipelineSnapshot.objects.filter(day__lt=now.date()).order_by("-day").first()
    blocks_counted = update_inventory(None if full or previous is None else previous.taken_at)
    since = now - timedelta(days=1)
    # changes of state only (a failure noted on an archived recording is archived → archived)
    day_events = RecordingEvent.objects.filter(at__gte=since, at__lt=now).exclude(from_state=F("to_state"))
    transitions = dict(day_events.order_by().values_list("to_state").annotate(n=Count("pk")))
    archived_ids = day_events.filter(to_state=Recording.State.ARCHIVED).values("recording_id")
    sizes = Recording.objects.filter(pk__in=archived_ids).aggregate(
        original=Sum("original_size"), stored=Sum("stored_size")
    )
    report = SnapshotReport(
        day=now.date().isoformat(),
        waiting=waiting_counts(),
        transitions=transitions,
        archived_original_bytes=sizes["original"] or 0,
        archived_stored_bytes=sizes["stored"] or 0,
        disk=reported_disks(),
        inventory=inventory_from_blocks(now),
        policy_volumes=policy_volumes(now),
        blocks_counted=blocks_counted,
    )
    PipelineSnapshot.objects.update_or_create(
        day=now.date(),
        defaults={
            "taken_at": now,
            "waiting": report.waiting,
            "transitions": report.transitions,
            "archived_original_bytes": report.archived_original_bytes,
            "archived_stored_bytes": report.archived_stored_bytes,
            "disk": report.disk,
            "inventory": {**report.inventory, "policy_volumes": report.policy_volumes},
        },
    )
    return report
