"""The daily statistics snapshot, kept one row a day for the dashboard and for pipeline_status's
days-to-full forecast.

The waiting states are counted over the (state, server_ip, start_time) index, the day's transitions over
the custody log's ``at`` index, and disk usage comes from the nodes' own reports. The dashboard's
table-wide totals (inventory) read the whole catalog: they are taken here, by the central worker, so that
no page view has to.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, F, Sum, Value
from django.db.models.functions import Coalesce, Greatest, TruncMonth
from django_q.models import Success

from recordings.models import Recording, RecordingEvent
from recordings.ops.schedules import PREFIX
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
    starts = _month_starts(now, months)
    since = starts[0]
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

    def month_key(value: datetime) -> tuple[int, int]:
        return (value.year, value.month)

    up = {month_key(k): v or 0 for k, v in uploaded.items() if k}
    gone = {month_key(k): v or 0 for k, v in expired.items() if k}
    points = []
    level = stored_now
    for start in reversed(starts):  # walk back: the end of a month is now minus what came after it
        points.append({"label": f"{start:%b %Y}", "short": f"{start:%b}", "bytes": max(level, 0)})
        key = month_key(start)
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


def take_snapshot(*, now: datetime) -> SnapshotReport:
    """Write (or rewrite) today's snapshot."""
    from recordings.models import PipelineSnapshot

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
        inventory=inventory(now),
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
            "inventory": report.inventory,
        },
    )
    return report
