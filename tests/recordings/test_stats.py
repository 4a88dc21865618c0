"""The daily statistics snapshot, and the days-to-full forecast pipeline_status draws from snapshots."""

from __future__ import annotations

import uuid
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django_q.models import Success

from recordings import models
from recordings.ops.status import pipeline_status
from tests.factories import make_recording
from vicirec import clock

pytestmark = pytest.mark.django_db
NODE = "10.0.0.11"


def node_reported(used: int, *, at: Any) -> None:
    disk = {"path": "/spool", "total": 1000, "used": used, "free": 1000 - used, "percent": used / 10}
    Success.objects.create(
        id=uuid.uuid4().hex,
        name="cleanup run",
        func="recordings.tasks.cleanup",
        kwargs={"node": NODE},
        group=f"vicirec.cleanup.{NODE}",
        started=at,
        stopped=at,
        result={"cleared": 0, "disk": disk},
        success=True,
    )


def test_the_snapshot_counts_waiting_work_the_days_transitions_and_node_disks() -> None:
    from recordings.ops.stats import take_snapshot

    now = clock.now()
    make_recording(server_ip=NODE, start_time=now - timedelta(days=1))
    make_recording(server_ip="10.0.0.12", state="archived", stored_size=100, original_size=400)
    node_reported(500, at=now - timedelta(minutes=5))

    first = take_snapshot(now=now)
    again = take_snapshot(now=now)  # one row a day, rewritten

    assert first.waiting == {"captured": {NODE: 1}, "archived": {"10.0.0.12": 1}}
    assert first.disk[NODE]["used"] == 500
    assert models.PipelineSnapshot.objects.count() == 1
    assert again.as_dict() == first.as_dict()


def test_days_to_full_follows_the_growth_since_a_week_ago(settings: Any) -> None:
    from recordings.ops.stats import take_snapshot

    settings.VICIREC_NODES, settings.VICIREC_NODE = [NODE], ""
    call_command("setup_schedules", "--json", stdout=StringIO())
    now = clock.now()
    node_reported(400, at=now - timedelta(days=4))
    take_snapshot(now=now - timedelta(days=4))
    node_reported(600, at=now)  # +50 a day, 400 free: 8 days to full

    assert pipeline_status(now=now).disks[NODE].days_to_full == pytest.approx(8.0, abs=0.1)


def test_the_dashboard_takes_its_totals_from_the_snapshot_and_its_backlog_live() -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from recordings.ops.dashboard import dashboard_data
    from recordings.ops.stats import take_snapshot

    now = clock.now()
    make_recording(server_ip=NODE, state="archived", stored_size=100, original_size=400, uploaded_at=now)
    live = dashboard_data(now)  # no snapshot yet: counted live
    assert (live["total"]["n"], live["cloud"]["bytes"], live["totals_as_of"]) == (1, 100, now)

    take_snapshot(now=now)
    for _ in range(2):  # calls recorded after the snapshot
        make_recording(server_ip=NODE, start_time=now - timedelta(hours=1))
    later = now + timedelta(hours=2)
    with CaptureQueriesContext(connection) as queries:
        data = dashboard_data(later)

    assert data["totals_as_of"] == now and data["total"]["n"] == 1 and data["cloud"]["n"] == 1
    assert data["chart"]["points"][-1]["bytes"] == 100
    assert {s["state"]: s["n"] for s in data["stages"]}["captured"] == 2  # the backlog is live
    catalog_scans = [
        q["sql"] for q in queries.captured_queries if "recordings_recording" in q["sql"] and "WHERE" not in q["sql"]
    ]
    assert catalog_scans == []  # no query over the whole catalog on a page view


def test_the_inventory_is_incremental_and_equals_a_full_count() -> None:
    from recordings.ops.stats import BLOCK, inventory, take_snapshot

    now = clock.now()
    make_recording(recording_id=5, state="cleared", stored_size=100, original_size=400, uploaded_at=now)
    old = make_recording(recording_id=BLOCK * 3 + 1, state="cleared", stored_size=70, uploaded_at=now)
    make_recording(recording_id=BLOCK * 7, server_ip="10.0.0.12", original_size=900)
    first = take_snapshot(now=now - timedelta(days=1))
    assert first.blocks_counted == 8  # no blocks yet: every block from the lowest id to the highest
    assert first.inventory == inventory(now - timedelta(days=1))

    models.Recording.objects.filter(pk=old.pk).update(state="expired", expired_at=now)
    models.RecordingEvent.objects.create(recording=old, at=now, from_state="cleared", to_state="expired", actor="t")
    make_recording(recording_id=BLOCK * 7 + 5, state="archived", stored_size=30, original_size=300, uploaded_at=now)
    with_untouched_block = models.InventoryBlock.objects.filter(block=0).count()

    second = take_snapshot(now=now)
    assert second.blocks_counted == 2  # the block with the custody event and the newest block
    assert second.inventory == inventory(now)
    assert models.InventoryBlock.objects.filter(block=0).count() == with_untouched_block
    assert take_snapshot(now=now, full=True).inventory == second.inventory
