"""A django-q2 schedule can only run vicirec's own tasks: refused on save (any path), in the admin form,
and reported (and pruned) by setup_schedules."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django_q.models import Schedule

from recordings.ops.schedules import setup_schedules, task_functions
from vicirec import clock

pytestmark = pytest.mark.django_db


def test_the_task_functions_are_those_of_the_task_modules() -> None:
    assert {"recordings.tasks.sync", "recordings.tasks.archive", "retention.tasks.enforce"} <= task_functions()
    assert not {f for f in task_functions() if f.rsplit(".", 1)[1].startswith("_")}


@pytest.mark.parametrize("func", ["os.system", "subprocess.run", "builtins.eval", "recordings.tasks._this_node"])
def test_a_schedule_that_runs_anything_else_is_refused_on_save(func: str) -> None:
    with pytest.raises(ValidationError, match="only run vicirec's own tasks"):
        Schedule.objects.create(name="evil", func=func, args="'rm -rf /'", schedule_type=Schedule.ONCE)
    assert not Schedule.objects.exists()
    Schedule.objects.create(name="ok", func="recordings.tasks.sync", schedule_type=Schedule.ONCE)


def test_the_schedule_admin_refuses_a_foreign_func(admin_user: Any) -> None:
    client = Client()
    client.force_login(admin_user)
    form = {
        "name": "evil",
        "func": "os.system",
        "args": "'id'",
        "schedule_type": Schedule.ONCE,
        "repeats": "-1",
        "next_run_0": "2030-01-01",
        "next_run_1": "00:00:00",
    }
    response = client.post("/admin/django_q/schedule/add/", form)
    assert response.status_code == 200 and "only run vicirec&#x27;s own tasks" in response.content.decode()
    assert not Schedule.objects.exists()
    ok = client.post("/admin/django_q/schedule/add/", {**form, "func": "recordings.tasks.sync", "args": ""})
    assert ok.status_code == 302 and Schedule.objects.get().func == "recordings.tasks.sync"


def test_setup_schedules_reports_and_prunes_schedules_that_run_no_vicirec_task() -> None:
    Schedule.objects.bulk_create([Schedule(name="legacy", func="os.system", schedule_type=Schedule.ONCE)])
    report = setup_schedules(now=clock.now(), nodes=[""])
    assert report.foreign == ["legacy"]
    pruned = setup_schedules(now=clock.now(), nodes=[""], prune=True)
    assert "legacy" in pruned.deleted and not Schedule.objects.filter(name="legacy").exists()
