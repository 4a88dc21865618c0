"""The daily statistics snapshot: a few indexed aggregates, kept one row a day for the dashboard and for
pipeline_status's days-to-full forecast.

Every query is bounded: the waiting states are counted over the (state, server_ip, start_time) index, the
day's transitions over the custody log's ``at`` index, and disk usage comes from the nodes' own reports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, F, Sum
from django_q.models import Success

from recordings.models import Recording, RecordingEvent
from recordings.schedules import PREFIX

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
class SnapshotReport:
    day: str = ""
    waiting: dict[str, dict[str, int]] = field(default_factory=dict)
    transitions: dict[str, int] = field(default_factory=dict)
    archived_original_bytes: int = 0
    archived_stored_bytes: int = 0
    disk: dict[str, dict[str, Any]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


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
        },
    )
    return report
