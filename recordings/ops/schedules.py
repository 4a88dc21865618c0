"""The django-q2 schedules of an installation, as data: what runs, where, and how often.

Central stages (sync, retention, erasure, verify, stats) run once for the installation on the central cluster,
"<VICIREC_Q_NAME>". Node-local stages (archive, cleanup) get one schedule per telephony server, routed to
that server's cluster, "<VICIREC_Q_NAME>-<server_ip>", so only the worker whose disk holds the files runs
them. Node "" (VICIREC_NODE empty: one machine serving every server) routes to the central cluster.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django_q.models import Schedule

from recordings.models import Recording
from vicirec.reports import Report

PREFIX = "vicirec."
NODE_STAGES = ("archive", "cleanup")
# The only modules a schedule may call into. Named, not imported: tasks sit beside this module in the
# layers, and django-q2 itself calls a schedule's func by its dotted name.
TASK_MODULES = ("recordings.tasks", "retention.tasks")


def task_functions() -> set[str]:
    """Dotted names of vicirec's task functions: the public functions defined in TASK_MODULES."""
    names = set()
    for module_name in TASK_MODULES:
        module = importlib.import_module(module_name)
        for name, obj in vars(module).items():
            if inspect.isfunction(obj) and obj.__module__ == module_name and not name.startswith("_"):
                names.add(f"{module_name}.{name}")
    return names


def validate_schedule_func(func: str) -> None:
    """ValidationError unless ``func`` names one of vicirec's own task functions."""
    if func not in task_functions():
        raise ValidationError(
            f"A schedule can only run vicirec's own tasks ({', '.join(sorted(task_functions()))}), not {func!r}.",
            code="not_a_task",
        )


def refuse_foreign_schedule(sender: Any, instance: Schedule, **kwargs: Any) -> None:
    """pre_save of django-q2's Schedule: no schedule is saved that runs anything but a vicirec task."""
    validate_schedule_func(instance.func)


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
            schedule_name("erasure"), "recordings.tasks.erase", settings.VICIREC_SCHEDULE_ERASURE_MINUTES, central
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
    foreign: list[str] = field(default_factory=list)  # schedules whose func is not a vicirec task


def setup_schedules(*, now: datetime, nodes: list[str] | None = None, prune: bool = False) -> ScheduleReport:
    """Create or update one Schedule per planned name; idempotent (a second run changes nothing).

    A new schedule first runs at ``now``; an existing one keeps its next run. Other "vicirec.*" schedules
    (e.g. of a server no longer listed) are reported as stale and deleted only with ``prune``.
    """
    report = ScheduleReport(nodes=configured_nodes() if nodes is None else nodes)
    plans = planned_schedules(report.nodes)
    tasks = task_functions()
    report.foreign = sorted(n for n, f in Schedule.objects.values_list("name", "func") if f not in tasks)
    for plan in plans:
        validate_schedule_func(plan.func)
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
    if prune and report.foreign:
        Schedule.objects.filter(name__in=report.foreign).delete()
        report.deleted, report.foreign = sorted(report.deleted + report.foreign), []
    return report
