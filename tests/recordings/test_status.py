"""pipeline_status: stalled stages and failures call for a person; disk pressure moves uploads earlier."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command, execute_from_command_line
from django_q.models import Schedule, Success

from recordings.models import Campaign, Recording
from recordings.ops.status import pipeline_status
from recordings.pipeline.archive import due_for_upload
from recordings.pipeline.cleanup import cleanup_local
from recordings.pipeline.workqueue import claim
from tests.factories import make_policy, make_recording
from vicirec import clock

pytestmark = pytest.mark.django_db
NODE = "10.0.0.11"


@pytest.fixture
def scheduled(settings: Any, spool_dir: Path) -> None:
    settings.VICIREC_NODES = [NODE]
    settings.VICIREC_NODE = NODE
    call_command("setup_schedules", "--json", stdout=StringIO())


def succeeded(schedule: str, *, at: datetime, result: dict[str, Any] | None = None) -> None:
    """A run as django-q2's monitor records it."""
    kwargs = {"node": NODE} if schedule.endswith(NODE) else {}
    Success.objects.create(
        id=uuid.uuid4().hex,
        name=f"run of {schedule}",
        func=Schedule.objects.get(name=schedule).func,
        kwargs=kwargs,
        group=schedule,
        started=at - timedelta(seconds=5),
        stopped=at,
        result=result or {},
        success=True,
    )


def run_status(capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any], str]:
    code = 0
    try:
        execute_from_command_line(["manage.py", "pipeline_status", "--json"])
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, json.loads(out), err


def test_all_stages_recently_succeeded_is_healthy(scheduled: None, capsys: pytest.CaptureFixture[str]) -> None:
    for name in Schedule.objects.values_list("name", flat=True):
        succeeded(name, at=clock.now() - timedelta(minutes=1))

    code, data, err = run_status(capsys)

    assert (code, data["problems"], err) == (0, [], "")
    assert not any(stage["stalled"] for stage in data["stages"])


def test_a_stalled_stage_is_reported_and_exits_non_zero(scheduled: None, capsys: pytest.CaptureFixture[str]) -> None:
    for name in Schedule.objects.values_list("name", flat=True):
        succeeded(name, at=clock.now() - timedelta(minutes=1))
    stalled = f"vicirec.archive.{NODE}"
    Success.objects.filter(group=stalled).update(stopped=clock.now() - timedelta(hours=3))

    code, data, err = run_status(capsys)

    assert code == 1
    assert [s["name"] for s in data["stages"] if s["stalled"]] == [stalled]
    assert data["needs_person"] is True
    assert f"{stalled} has not succeeded for 3.0 h (expected every 10 min)" in err
    assert f"vicirec-{NODE}" in err  # which worker to look at


def test_a_stage_that_never_ran_long_after_it_was_due_is_stalled(scheduled: None) -> None:
    Schedule.objects.filter(name="vicirec.sync").update(next_run=clock.now() - timedelta(hours=1))
    status = pipeline_status(now=clock.now())
    assert "vicirec.sync has never succeeded: is a qcluster serving cluster 'vicirec' running?" in " ".join(
        status.problems
    )


def test_backlog_and_failures_per_server(scheduled: None, settings: Any) -> None:
    now = clock.now()
    campaign = Campaign.objects.create(kind="outbound", campaign_id="SALES")
    make_policy(campaign=campaign, keep_local_days=3, retain_days=365)
    make_recording(server_ip=NODE, campaign=campaign, start_time=now - timedelta(days=5))
    make_recording(server_ip=NODE, campaign=campaign, start_time=now - timedelta(days=1))
    make_recording(server_ip="10.0.0.12", campaign=campaign, start_time=now - timedelta(days=1), state="missing")
    make_recording(server_ip=NODE, state="archived", start_time=now - timedelta(days=4))
    make_recording(
        server_ip=NODE, state="failed", error="needs a person: key holds other content", needs_person=True, attempts=3
    )
    settings.VICIREC_STATUS_MAX_FAILED = 0

    status = pipeline_status(now=now)

    mine = status.backlog[NODE]
    assert (mine.due_for_upload, mine.in_local_window, mine.failed, mine.to_clear) == (2, 1, 1, 1)
    assert mine.oldest_due_age_hours is not None and mine.oldest_due_age_hours > 5 * 24
    assert status.backlog["10.0.0.12"].missing == 1
    assert [f["error"] for f in status.failures] == ["needs a person: key holds other content"]
    problems = " ".join(status.problems)
    assert "1 recordings have failed" in problems and "1 recordings need a person" in problems


def test_disk_pressure_makes_young_recordings_due_oldest_first_and_deletes_nothing(
    scheduled: None, settings: Any
) -> None:
    now = clock.now()
    campaign = Campaign.objects.create(kind="outbound", campaign_id="SALES")
    make_policy(campaign=campaign, keep_local_days=3, retain_days=365)
    newer = make_recording(server_ip=NODE, campaign=campaign, start_time=now - timedelta(hours=1))
    older = make_recording(server_ip=NODE, campaign=campaign, start_time=now - timedelta(hours=2))
    make_recording(server_ip="10.0.0.12", campaign=campaign, start_time=now - timedelta(hours=3))

    settings.VICIREC_DISK_PRESSURE_PERCENT = 100.0
    assert not due_for_upload(now, node=NODE).exists()
    assert pipeline_status(now=now).notices == []

    settings.VICIREC_DISK_PRESSURE_PERCENT = 0.0
    assert set(due_for_upload(now, node=NODE)) == {newer, older}  # only this node's own disk is measured
    assert claim(due_for_upload(now, node=NODE), token="t", now=now, limit=1) == [older]
    status = pipeline_status(now=now)
    assert status.disks[NODE].pressure is True
    assert "disk pressure on 10.0.0.11" in status.notices[0]
    assert cleanup_local(now=now, node=NODE).cleared == 0
    assert Recording.objects.filter(state="captured").count() == 3


def test_every_nodes_disk_is_shown_from_its_last_report(scheduled: None, settings: Any) -> None:
    settings.VICIREC_NODE = ""  # a central host: the node's disk is known from its task results only
    disk = {"path": "/var/spool/asterisk/monitorDONE", "total": 1000, "used": 960, "free": 40, "percent": 96.0}
    succeeded(f"vicirec.cleanup.{NODE}", at=clock.now() - timedelta(minutes=2), result={"cleared": 0, "disk": disk})

    status = pipeline_status(now=clock.now())

    assert status.disks[NODE].percent == 96.0 and status.disks[NODE].measured != "here"
    assert any("spool disk of 10.0.0.11" in p and "96.0% full" in p for p in status.problems)


def test_a_sync_that_could_not_read_vicidials_archive_tables_is_a_notice(
    scheduled: None, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in Schedule.objects.values_list("name", flat=True):
        succeeded(name, at=clock.now() - timedelta(minutes=1))
    problem = "recording_log_archive not read ((1142, 'SELECT command denied')): rows VICIdial has moved there …"
    succeeded("vicirec.sync", at=clock.now(), result={"recordings_added": 3, "not_read": [problem]})

    code, data, err = run_status(capsys)

    assert (code, data["problems"]) == (0, [])  # the live tables are read: nothing is stuck
    assert any("SELECT command denied" in notice and "grant SELECT" in notice for notice in data["notices"])


def test_retention_waiting_for_confirm_is_a_problem(scheduled: None, capsys: pytest.CaptureFixture[str]) -> None:
    for name in Schedule.objects.values_list("name", flat=True):
        succeeded(name, at=clock.now() - timedelta(minutes=1))
    stop = {"stopped": "stopped, nothing deleted: …", "stopped_recordings": 120, "stopped_share_percent": 12.5}
    succeeded("vicirec.retention", at=clock.now(), result={"deleted": 0, **stop})

    code, data, err = run_status(capsys)

    assert code == 1
    assert any("retention waiting for --confirm: 120 recordings, 12.5 % of the archive" in p for p in data["problems"])
    assert "retention waiting for --confirm" in err


def test_a_spool_folder_without_recordings_is_a_problem(scheduled: None, capsys: pytest.CaptureFixture[str]) -> None:
    for name in Schedule.objects.values_list("name", flat=True):
        succeeded(name, at=clock.now() - timedelta(minutes=1))
    succeeded("vicirec.sync", at=clock.now(), result={"missing": 9, "empty_spools": ["no recordings found under /x"]})

    code, data, err = run_status(capsys)

    assert code == 1 and any("no recordings found under /x" in p for p in data["problems"])
