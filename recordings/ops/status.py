"""pipeline_status: what is waiting where, when each stage last succeeded, what failed, how full the disks are.

Every query is bounded for a catalog of hundreds of millions of rows: backlog counts group the
(state, server_ip, start_time) index over the states that still have work (captured, missing, failed,
archived); failures read at most a few rows; stage runs come from django-q2's result rows (a few hundred
per schedule, see Q_CLUSTER["save_limit_per"]); disks are measured here or taken from each node's reports.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count, Min
from django_q.models import Failure, Schedule, Success

from recordings.lib import disk
from recordings.models import CustodyCheck, Recording
from recordings.ops.schedules import PREFIX
from recordings.ops.stats import reported_disks, waiting_counts
from recordings.pipeline.archive import due_for_upload
from recordings.pipeline.erasure import figures as erasure_figures
from recordings.pipeline.erasure import refusals as erasure_refusals
from vicirec.reports import Report

FAILURES_SHOWN = 20
INTERVAL_MINUTES = {
    Schedule.HOURLY: 60,
    Schedule.DAILY: 24 * 60,
    Schedule.WEEKLY: 7 * 24 * 60,
    Schedule.BIWEEKLY: 14 * 24 * 60,
}


@dataclass
class StageStatus:
    name: str
    cluster: str
    interval_minutes: int
    next_run: datetime | None
    last_success: datetime | None = None
    last_failure: datetime | None = None
    last_error: str = ""
    stalled: bool = False


@dataclass
class Backlog:
    """One telephony server's recordings with work left."""

    due_for_upload: int = 0
    in_local_window: int = 0
    missing: int = 0
    failed: int = 0
    to_clear: int = 0
    oldest_waiting: datetime | None = None
    oldest_due: datetime | None = None
    oldest_due_age_hours: float | None = None


@dataclass
class NodeDisk:
    path: str
    percent: float
    total: int
    used: int
    free: int
    measured: str  # "here", or the time the node last reported it
    pressure: bool = False
    days_to_full: float | None = None


@dataclass
class PipelineStatus(Report):
    at: datetime
    backlog: dict[str, Backlog] = field(default_factory=dict)
    stages: list[StageStatus] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)
    disks: dict[str, NodeDisk] = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    # erasure requests (by recording): pending, awaiting approval, refused under hold, erased in 30 days
    erasures: dict[str, int] = field(default_factory=dict)
    custody: dict[str, Any] | None = None  # the last verify_custody result

    @property
    def needs_person(self) -> bool:
        return bool(self.problems)

    def derived(self) -> dict[str, Any]:
        return {"needs_person": self.needs_person}


def _minutes(schedule: Schedule) -> int:
    if schedule.schedule_type == Schedule.MINUTES:
        return schedule.minutes or 1
    return INTERVAL_MINUTES.get(schedule.schedule_type, 31 * 24 * 60)


def _kwargs(schedule: Schedule) -> dict[str, Any]:
    try:
        value = ast.literal_eval(schedule.kwargs) if schedule.kwargs else {}
    except (SyntaxError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _short(text: object, limit: int = 300) -> str:
    text = str(text).strip().splitlines()[-1] if str(text).strip() else ""
    return text[:limit]


def stage_statuses(now: datetime) -> list[StageStatus]:
    """One entry per vicirec.* schedule; stalled if it has not succeeded within twice its interval."""
    stages = []
    for schedule in Schedule.objects.filter(name__startswith=PREFIX).order_by("name"):
        stage = StageStatus(
            name=schedule.name,
            cluster=schedule.cluster or "",
            interval_minutes=_minutes(schedule),
            next_run=schedule.next_run,
        )
        success = Success.objects.filter(group=schedule.name).order_by("-stopped").values("stopped").first()
        failure = Failure.objects.filter(group=schedule.name).order_by("-stopped").values("stopped", "result").first()
        stage.last_success = success["stopped"] if success else None
        if failure:
            stage.last_failure = failure["stopped"]
            stage.last_error = _short(failure["result"])
        grace = timedelta(minutes=2 * stage.interval_minutes)
        if stage.last_success is not None:
            stage.stalled = now - stage.last_success > grace
        else:
            stage.stalled = stage.last_failure is not None or (
                stage.next_run is not None and now - stage.next_run > grace
            )
        stages.append(stage)
    return stages


def backlog(now: datetime) -> dict[str, Backlog]:
    found: dict[str, Backlog] = {}
    for state, per_server in waiting_counts().items():
        for server_ip, n in per_server.items():
            entry = found.setdefault(server_ip, Backlog())
            if state == Recording.State.ARCHIVED:
                entry.to_clear = n
            else:
                entry.in_local_window += n  # the due ones are taken off below
                entry.missing += n if state == Recording.State.MISSING else 0
                entry.failed += n if state == Recording.State.FAILED else 0
    oldest = (
        Recording.objects.filter(state__in=Recording.WAITING_STATES)
        .order_by()
        .values_list("server_ip")
        .annotate(oldest=Min("start_time"))
    )
    for server_ip, start in oldest:
        found.setdefault(server_ip, Backlog()).oldest_waiting = start
    due = (
        due_for_upload(now, node="")
        .order_by()
        .values_list("server_ip")
        .annotate(n=Count("pk"), oldest=Min("start_time"))
    )
    for server_ip, n, start in due:
        entry = found.setdefault(server_ip, Backlog())
        entry.due_for_upload = n
        entry.in_local_window = max(entry.in_local_window - n, 0)
        entry.oldest_due = start
        if start is not None:
            entry.oldest_due_age_hours = round((now - start).total_seconds() / 3600, 1)
    return dict(sorted(found.items()))


def failures() -> list[dict[str, Any]]:
    """The most recent failed recordings, and archived ones whose local copy was kept because of an error."""
    fields = ("recording_id", "server_ip", "state", "attempts", "next_attempt_at", "error")
    failed = Recording.objects.filter(state=Recording.State.FAILED).order_by("-state_changed_at")
    kept = Recording.objects.filter(state=Recording.State.ARCHIVED).exclude(error="").order_by("-next_attempt_at")
    return [*failed.values(*fields)[:FAILURES_SHOWN], *kept.values(*fields)[:FAILURES_SHOWN]]


def _days_to_full(node: str, current: NodeDisk, now: datetime) -> float | None:
    """Free space over the growth of used space since the oldest of the last week's daily snapshots."""
    try:
        from recordings.models import PipelineSnapshot
    except ImportError:  # the snapshot model is not installed yet
        return None
    for snapshot in PipelineSnapshot.objects.filter(day__gte=(now - timedelta(days=7)).date()).order_by("day")[:8]:
        then = snapshot.disk.get(node)
        if not then:
            continue
        days = (now - snapshot.taken_at).total_seconds() / 86400
        growth = (current.used - int(then["used"])) / days if days >= 0.5 else 0
        return round(current.free / growth, 1) if growth > 0 else None
    return None


def node_disks(nodes: set[str], now: datetime) -> dict[str, NodeDisk]:
    reports = reported_disks()
    disks = {}
    for node in sorted(nodes | {settings.VICIREC_NODE}):
        if node == settings.VICIREC_NODE:
            usage = disk.spool_usage(settings.VICIREC_SPOOL_DIRS)
            if usage is None:
                continue
            data: dict[str, Any] = {**usage.as_dict(), "measured": "here"}
        elif node in reports:
            data = {**reports[node], "measured": reports[node]["reported_at"]}
        else:
            continue
        entry = NodeDisk(
            path=data["path"],
            percent=float(data["percent"]),
            total=int(data["total"]),
            used=int(data["used"]),
            free=int(data["free"]),
            measured=data["measured"],
        )
        entry.pressure = entry.percent >= settings.VICIREC_DISK_PRESSURE_PERCENT
        entry.days_to_full = _days_to_full(node, entry, now)
        disks[node] = entry
    return disks


def _last_result(stage: str) -> tuple[Success | None, dict[str, Any]]:
    """The latest successful run of a central stage and its result (empty if none or not a dict)."""
    last = Success.objects.filter(group=f"{PREFIX}{stage}").order_by("-stopped").first()
    result = last.result if last else None
    return last, result if isinstance(result, dict) else {}


def _last_verify_problem() -> str:
    last, result = _last_result("verify")
    if last and (result.get("missing") or result.get("mismatched")):
        problems = "; ".join(str(p) for p in (result.get("problems") or [])[:3])
        return (
            f"the last integrity check ({last.stopped:%Y-%m-%d %H:%M}) found {result.get('missing', 0)} missing and "
            f"{result.get('mismatched', 0)} mismatched objects: {problems} — run verify_archive and investigate"
        )
    return ""


def _last_sync_notice() -> str:
    last, result = _last_result("sync")
    if last and result.get("not_read"):
        return (
            f"the last sync ({last.stopped:%Y-%m-%d %H:%M}) could not read VICIdial's archive tables: "
            + "; ".join(str(p) for p in result["not_read"][:3])
            + " (grant SELECT on them, README; absent before VICIdial 2.12)"
        )
    return ""


def _last_sync_empty_spools() -> str:
    """Spool folders in which the last sync found no recording at all (VICIREC_SPOOL_DIRS is wrong?)."""
    last, result = _last_result("sync")
    if last and result.get("empty_spools"):
        return (
            "; ".join(str(p) for p in result["empty_spools"][:5])
            + f" (last sync {last.stopped:%Y-%m-%d %H:%M}): check VICIREC_SPOOL_DIRS (the spool root or its "
            "monitorDONE folder) on this node"
        )
    return ""


def _last_retention_stop() -> str:
    """Retention's safety stop, if its last scheduled run was held back waiting for a person."""
    last, result = _last_result("retention")
    if last and result.get("stopped"):
        return (
            f"retention waiting for --confirm: {result.get('stopped_recordings', 0)} recordings, "
            f"{result.get('stopped_share_percent', 0)} % of the archive (since {last.stopped:%Y-%m-%d %H:%M}); "
            "check with enforce_retention --dry-run, then run enforce_retention --confirm"
        )
    return ""


def last_custody_check() -> dict[str, Any] | None:
    """The last verify_custody result (None before the first run)."""
    check = CustodyCheck.objects.order_by("-id").first()
    if check is None:
        return None
    return {
        "at": check.at,
        "ok": check.ok,
        "entries": check.entries,
        "checkpoints": check.checkpoints,
        "seconds": check.seconds,
        "first_problem": check.first_problem,
    }


def _stalled_stages(status: PipelineStatus, now: datetime) -> None:
    for stage in status.stages:
        if not stage.stalled:
            continue
        if stage.last_success:
            hours = (now - stage.last_success).total_seconds() / 3600
            problem = f"{stage.name} has not succeeded for {hours:.1f} h (expected every {stage.interval_minutes} min)"
        else:
            problem = f"{stage.name} has never succeeded"
        problem += (
            f": last error: {stage.last_error}"
            if stage.last_error
            else f": is a qcluster serving cluster '{stage.cluster}' running? (docs/operations.md)"
        )
        status.problems.append(problem)


def _failures(status: PipelineStatus) -> None:
    failed = sum(b.failed for b in status.backlog.values())
    if failed > settings.VICIREC_STATUS_MAX_FAILED:
        status.problems.append(
            f"{failed} recordings have failed (more than VICIREC_STATUS_MAX_FAILED="
            f"{settings.VICIREC_STATUS_MAX_FAILED}); see failures for their errors"
        )
    permanent = Recording.objects.needing_person().count()
    if permanent:
        status.problems.append(f"{permanent} recordings need a person (errors starting 'needs a person:' in failures)")


def _disks(status: PipelineStatus, now: datetime) -> None:
    nodes = {str(_kwargs(s).get("node", "")) for s in Schedule.objects.filter(name__startswith=f"{PREFIX}archive")}
    status.disks = node_disks(nodes, now)
    for node, entry in status.disks.items():
        label = node or "this machine"
        if entry.percent >= settings.VICIREC_DISK_ALERT_PERCENT:
            status.problems.append(
                f"the spool disk of {label} ({entry.path}) is {entry.percent}% full (alert at "
                f"{settings.VICIREC_DISK_ALERT_PERCENT}%): check that archive and cleanup keep up, or add space"
            )
        if entry.pressure:
            status.notices.append(
                f"disk pressure on {label}: spool {entry.percent}% full (threshold "
                f"{settings.VICIREC_DISK_PRESSURE_PERCENT}%), uploading recordings before their local window ends, "
                "oldest first; local files are still deleted only after verification"
            )


def _custody_and_erasure(status: PipelineStatus, now: datetime) -> None:
    status.custody = last_custody_check()
    if status.custody and not status.custody["ok"]:
        status.problems.append(
            f"the custody ledger check of {status.custody['at']:%Y-%m-%d %H:%M} failed at "
            f"{status.custody['first_problem']} — run verify_custody and investigate (docs/custody-ledger.md)"
        )
    status.erasures = erasure_figures(now=now)
    if status.erasures["refused_under_hold"]:
        status.notices.append(
            f"{status.erasures['refused_under_hold']} erasure request(s) refused under legal hold, carried out when "
            "the hold is released: " + "; ".join(erasure_refusals(limit=5))
        )


def pipeline_status(*, now: datetime) -> PipelineStatus:
    """What needs a person (problems) and what is worth knowing (notices), from every stage's own record."""
    status = PipelineStatus(at=now, backlog=backlog(now), stages=stage_statuses(now), failures=failures())
    _stalled_stages(status, now)
    _failures(status)
    _disks(status, now)
    for problem in (_last_verify_problem(), _last_sync_empty_spools(), _last_retention_stop()):
        if problem:
            status.problems.append(problem)
    _custody_and_erasure(status, now)
    sync_notice = _last_sync_notice()
    if sync_notice:
        status.notices.append(sync_notice)
    return status
