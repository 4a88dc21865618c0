"""setup_schedules: idempotent schedule rows, and routing of node-local stages to their node's cluster."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django_q.models import Schedule

from recordings import tasks
from recordings.ops.schedules import configured_nodes
from tests.factories import make_recording
from vicirec import clock

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]
CENTRAL = ("vicirec.sync", "vicirec.retention", "vicirec.erasure", "vicirec.verify", "vicirec.stats", "vicirec.custody")


def schedule_rows() -> list[tuple[Any, ...]]:
    return list(
        Schedule.objects.order_by("name").values_list(
            "id", "name", "func", "args", "kwargs", "schedule_type", "minutes", "repeats", "cluster", "next_run"
        )
    )


def setup(*args: str) -> dict[str, Any]:
    out = StringIO()
    call_command("setup_schedules", "--json", *args, stdout=out)
    return json.loads(out.getvalue())


def test_running_setup_schedules_twice_leaves_the_same_rows(settings: Any) -> None:
    settings.VICIREC_NODES = ["10.0.0.11", "10.0.0.12"]

    first = setup()
    rows = schedule_rows()
    second = setup()

    assert schedule_rows() == rows
    assert len(rows) == len(CENTRAL) + 2 * 2
    assert len(first["created"]) == len(rows) and first["updated"] == []
    assert second["created"] == [] and sorted(second["updated"]) == sorted(first["created"])


def test_node_stages_carry_their_nodes_cluster_and_central_stages_the_central_one(settings: Any) -> None:
    settings.VICIREC_NODES = ["10.0.0.11", "10.0.0.12"]
    setup()

    clusters = dict(Schedule.objects.values_list("name", "cluster"))
    assert {name: clusters[name] for name in CENTRAL} == dict.fromkeys(CENTRAL, "vicirec")
    for node in ("10.0.0.11", "10.0.0.12"):
        assert clusters[f"vicirec.archive.{node}"] == f"vicirec-{node}"
        assert clusters[f"vicirec.cleanup.{node}"] == f"vicirec-{node}"
        archive = Schedule.objects.get(name=f"vicirec.archive.{node}")
        assert archive.func == "recordings.tasks.archive"
        assert f"'node': '{node}'" in archive.kwargs


def test_changed_intervals_update_the_rows_and_keep_their_next_run(settings: Any) -> None:
    settings.VICIREC_NODES = ["10.0.0.11"]
    setup()
    next_run = Schedule.objects.get(name="vicirec.archive.10.0.0.11").next_run

    settings.VICIREC_SCHEDULE_ARCHIVE_MINUTES = 3
    setup()

    archive = Schedule.objects.get(name="vicirec.archive.10.0.0.11")
    assert (archive.minutes, archive.next_run) == (3, next_run)


def test_a_server_no_longer_listed_is_reported_stale_and_pruned_only_on_request(settings: Any) -> None:
    settings.VICIREC_NODES = ["10.0.0.11", "10.0.0.12"]
    setup()
    settings.VICIREC_NODES = ["10.0.0.11"]

    report = setup()
    assert report["stale"] == ["vicirec.archive.10.0.0.12", "vicirec.cleanup.10.0.0.12"]
    assert Schedule.objects.filter(name__endswith="10.0.0.12").count() == 2

    pruned = setup("--prune")
    assert pruned["deleted"] == report["stale"]
    assert not Schedule.objects.filter(name__endswith="10.0.0.12").exists()


def test_one_machine_without_a_node_serves_every_server_from_the_central_cluster(settings: Any) -> None:
    settings.VICIREC_NODES, settings.VICIREC_NODE = [], ""
    report = setup()
    assert report["nodes"] == [""]
    assert Schedule.objects.get(name="vicirec.archive").cluster == "vicirec"


def test_default_nodes_are_this_node_and_the_servers_with_recordings_waiting_locally(settings: Any) -> None:
    settings.VICIREC_NODES, settings.VICIREC_NODE = [], "10.0.0.11"
    make_recording(server_ip="10.0.0.12", start_time=clock.now() - timedelta(days=1))
    make_recording(server_ip="10.0.0.13", state="cleared")  # nothing left on its disk
    assert configured_nodes() == ["10.0.0.11", "10.0.0.12"]


def test_a_node_task_refuses_to_run_on_another_nodes_worker(settings: Any) -> None:
    settings.VICIREC_NODE = "10.0.0.11"
    with pytest.raises(tasks.WrongNodeError, match="VICIREC_NODE"):
        tasks.archive(node="10.0.0.12")


@pytest.mark.parametrize(
    ("env", "cluster"),
    [
        ({"VICIREC_NODE": "10.0.0.11"}, "vicirec-10.0.0.11"),
        ({"VICIREC_NODE": "10.0.0.11", "VICIREC_Q_ROLE": "central"}, "vicirec"),
        ({"VICIREC_NODE": ""}, "vicirec"),
    ],
)
def test_each_qcluster_serves_the_queue_its_schedules_are_routed_to(
    env: dict[str, str], cluster: str, tmp_path: Path
) -> None:
    probe = "import django; django.setup(); from django_q.conf import Conf; print(Conf.PREFIX, Conf.CLUSTER_NAME)"
    environ = {**os.environ, "DJANGO_SETTINGS_MODULE": "vicirec.settings", "VICIREC_HOME": str(tmp_path), **env}
    environ.pop("VICIREC_Q_NAME", None)
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=environ, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["vicirec", cluster]
