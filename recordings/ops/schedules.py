"""The django-q2 schedules of an installation, as data: what runs, where, and how often.

Central stages (sync, retention, verify, stats) run once for the installation on the central cluster,
"<VICIREC_Q_NAME>". Node-local stages (archive, cleanup) get one schedule per telephony server, routed to
that server's cluster, "<VICIREC_Q_NAME>-<server_ip>", so only the worker whose disk holds the files runs
them. Node "" (VICIREC_NODE empty: one machine serving every server) routes to the central cluster.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django_q.models import Schedule

from recordings.models import Recording
from vicirec.reports import Report

PREFIX = "vicirec."
NODE_STAGES = ("archive", "cleanup")


def central_cluster() -> str:
    return settings.VICIREC_Q_NAME


def node_cluster(node: str) -> str:
    return f"{settings.VICIREC_Q_NAME}-{node}" if node else settings.VICIREC_Q_NAME


def schedule_name(stage: str, node: str = "") -> str:
    return f"{PREFIX}{stage}.{node}" if node else f"{PREFIX}{stage}"


def configured_nodes() -> list[str]:
    """VICIREC_NODES; else this node plus every server with recordings waiting on local disk.

    With neither VICIREC_NODES nor VICIREC_NODE set this machine serves every server: one node, "".
    The discovery query groups the (state, server_ip, start_time) index over the waiting states only.
    """
    if settings.VICIREC_NODES:
        return sorted(set(settings.VICIREC_NODES))
    if not settings.VICIREC_NODE:
        return [""]
    waiting = (*Recording.LOCAL_STATES, Recording.State.MISSING)
    found = set(
        Recording.objects.filter(state__in=waiting)
        .exclude(server_ip="")
        .order_by()
        .values_list("server_ip", flat=True)
        .distinct()
    )
    return sorted(found | {settings.VICIREC_NODE})


@dataclass(frozen=True)
class PlannedSchedule:
    name: str
    func: str
    minutes: int
    cluster: str
    kwargs: dict[str, object] = field(default_factory=dict)
    node: str | None = None  # the node of a node-local stage


def planned_schedules(nodes: list[str]) -> list[PlannedSchedule]:
    central = central_cluster()
    plans = [
        PlannedSchedule(
            schedule_name("sync"), "recordings.tasks.sync", settings.VICIREC_SCHEDULE_SYNC_MINUTES, central
        ),
        PlannedSchedule(
            schedule_name("retention"), "retention.tasks.enforce", settings.VICIREC_SCHEDULE_RETENTION_MINUTES, central
        ),
        PlannedSchedule(
            schedule_name("verify"),
            "recordings.tasks.verify",
            settings.VICIREC_SCHEDULE_VERIFY_MINUTES,
            central,
            {"sample": settings.VICIREC_SCHEDULE_VERIFY_SAMPLE},
        ),
        PlannedSchedule(
            schedule_name("stats"), "recordings.tasks.snapshot", settings.VICIREC_SCHEDULE_STATS_MINUTES, central
        ),
        PlannedSchedule(
            schedule_name("custody"), "recordings.tasks.custody", settings.VICIREC_SCHEDULE_CUSTODY_MINUTES, central
        ),
    ]
    for node in nodes:
        plans += [
            PlannedSchedule(
                schedule_name("archive", node),
                "recordings.tasks.archive",
                settings.VICIREC_SCHEDULE_ARCHIVE_MINUTES,
                node_cluster(node),
                {"node": node, "limit": settings.VICIREC_SCHEDULE_ARCHIVE_LIMIT},
                node,
            ),
            PlannedSchedule(
                schedule_name("cleanup", node),
                "recordings.tasks.cleanup",
                settings.VICIREC_SCHEDULE_CLEANUP_MINUTES,
                node_cluster(node),
                {"node": node, "limit": settings.VICIREC_SCHEDULE_CLEANUP_LIMIT},
                node,
            ),
        ]
    return plans


@dataclass
class ScheduleReport(Report):
    nodes: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)


def setup_schedules(*, now: datetime, nodes: list[str] | None = None, prune: bool = False) -> ScheduleReport:
    """Create or update one Schedule per planned name; idempotent (a second run changes nothing).

    A new schedule first runs at ``now``; an existing one keeps its next run. Other "vicirec.*" schedules
    (e.g. of a server no longer listed) are reported as stale and deleted only with ``prune``.
    """
    report = ScheduleReport(nodes=configured_nodes() if nodes is None else nodes)
    plans = planned_schedules(report.nodes)
    for plan in plans:
        values = {
            "func": plan.func,
            "args": None,
            "kwargs": repr(dict(sorted(plan.kwargs.items()))) if plan.kwargs else None,
            "schedule_type": Schedule.MINUTES,
            "minutes": plan.minutes,
            "repeats": -1,
            "cluster": plan.cluster,
        }
        _, created = Schedule.objects.update_or_create(
            name=plan.name, defaults=values, create_defaults={**values, "next_run": now}
        )
        (report.created if created else report.updated).append(plan.name)
    wanted = {plan.name for plan in plans}
    stale = Schedule.objects.filter(name__startswith=PREFIX).exclude(name__in=wanted)
    report.stale = sorted(stale.values_list("name", flat=True))
    if prune and report.stale:
        stale.delete()
        report.deleted, report.stale = report.stale, []
    return report
