"""Dates and times on the desk: a from/to date filter of whole days (recordings, certificates), times with
their zone, a case's "calls until" given as a date covering that whole day (also for the hold guards);
history pages that name who acted and never say "None"."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from holds.actions import place_hold
from holds.guards import narrowing, proposed, snapshot
from holds.models import Case, LegalHold
from recordings.models import Campaign, Recording
from recordings.pipeline.retention import enforce_retention
from tests.admin.conftest import DESK, archive_and_clear, recorded_call
from tests.factories import make_policy, make_recording
from vicirec import clock
from vicirec.actors import Actor

pytestmark = pytest.mark.django_db
CHICAGO = ZoneInfo("America/Chicago")


@pytest.fixture
def chicago(settings: Any) -> ZoneInfo:
    settings.TIME_ZONE = "America/Chicago"
    return CHICAGO


def client_for(user: Any) -> Client:
    client = Client(headers=DESK)
    client.force_login(user)
    return client


def listed_ids(page: str) -> set[int]:
    return {int(x) for x in re.findall(r"/admin/recordings/recording/(\d+)/change/", page)}


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=CHICAGO)


def test_the_recording_list_filters_a_range_of_whole_local_days(make_user: Callable[..., Any], chicago: Any) -> None:
    before = make_recording(start_time=at(2026, 2, 28, 23, 59))
    first = make_recording(start_time=at(2026, 3, 1, 0, 0))
    last = make_recording(start_time=at(2026, 3, 31, 23, 30))  # 05:30 UTC on 1 April
    after = make_recording(start_time=at(2026, 4, 1, 0, 0))
    client = client_for(make_user("Legal"))
    url = reverse("admin:recordings_recording_changelist")

    page = client.get(url, {"start_time__from": "2026-03-01", "start_time__to": "2026-03-31"}).content.decode()
    assert listed_ids(page) == {first.pk, last.pk}
    assert 'name="start_time__from" value="2026-03-01"' in page and "whole days, America/Chicago" in page
    assert listed_ids(client.get(url, {"start_time__from": "2026-04-01"}).content.decode()) == {after.pk}
    assert listed_ids(client.get(url, {"start_time__to": "2026-02-28"}).content.decode()) == {before.pk}
    assert client.get(url, {"start_time__to": "31/03/2026"}).status_code == 302  # the admin's invalid-filter answer
    assert "2026-03-31 23:30:00 CDT" in page  # times carry their zone


def test_the_certificate_list_filters_a_range_of_days(make_user: Callable[..., Any], filesystem_archive: Path) -> None:
    short = Campaign.objects.create(kind="outbound", campaign_id="SHORT", name="Short")
    make_policy(campaign=short, keep_local_days=0, retain_days=30)
    recorded_call(filesystem_archive, age_days=40, campaign=short)
    archive_and_clear()
    assert enforce_retention(now=clock.now(), dry_run=False, confirm=True).deleted == 1
    client = client_for(make_user("Auditor"))
    url = reverse("admin:retention_deletioncertificate_changelist")
    today = clock.now().date().isoformat()

    assert "1 deletion certificate" in client.get(url, {"deleted_at__from": today}).content.decode()
    assert "0 deletion certificates" in client.get(url, {"deleted_at__to": "2020-01-01"}).content.decode()


def test_calls_until_at_midnight_covers_that_whole_day(chicago: Any) -> None:
    late = make_recording(start_time=at(2026, 3, 31, 23, 30))
    next_day = make_recording(start_time=at(2026, 4, 1, 0, 0))
    afternoon = make_recording(start_time=at(2026, 3, 31, 14, 1))
    whole_day = Case.objects.create(name="whole day", calls_until=at(2026, 3, 31, 0, 0))
    to_the_minute = Case.objects.create(name="to 14:00", calls_until=at(2026, 3, 31, 14, 0))

    assert set(Recording.objects.filter(whole_day.criteria()).values_list("pk", flat=True)) == {late.pk, afternoon.pk}
    assert not Recording.objects.filter(to_the_minute.criteria(), pk__in=[late.pk, next_day.pk, afternoon.pk]).exists()


def test_a_case_form_takes_a_date_without_a_time(make_user: Callable[..., Any], chicago: Any) -> None:
    late = make_recording(start_time=at(2026, 3, 31, 23, 30), phone_number="7735557219")
    client = client_for(make_user("Legal"))
    form = {"name": "dates", "phone_numbers": "7735557219", "calls_from_0": "2026-03-31", "calls_from_1": ""}
    form |= {"calls_until_0": "2026-03-31", "calls_until_1": "", "_continue": "1"}

    response = client.post(reverse("admin:holds_case_add"), form)

    errors = re.findall(r'class="errorlist[^"]*"[^>]*>(.*?)</ul>', response.content.decode(), re.S)
    assert response.status_code == 302, errors
    case = Case.objects.get(name="dates")
    assert case.calls_until == at(2026, 3, 31, 0, 0) and case.calls_from == at(2026, 3, 31, 0, 0)
    assert Recording.objects.filter(case.condition(), pk=late.pk).exists()


def test_the_hold_guard_reads_a_midnight_until_as_the_whole_day(chicago: Any) -> None:
    make_recording(start_time=at(2026, 3, 31, 20, 0), phone_number="7735557219")
    case = Case.objects.create(name="held", phone_numbers=["7735557219"], calls_until=at(2026, 3, 31, 0, 0))
    place_hold(reason="matter", actor=Actor(user=None, name="test"), case=case)
    old = snapshot(case)

    assert narrowing(old, proposed(old, {"calls_until": at(2026, 3, 31, 18, 0)}))  # the evening is given up
    assert narrowing(old, proposed(old, {"calls_until": at(2026, 3, 31, 23, 59)}))  # the last minute too
    assert not narrowing(old, proposed(old, {"calls_until": at(2026, 4, 1, 0, 0)}))  # one more whole day
    timed = snapshot(Case(name="t", calls_until=at(2026, 3, 31, 12, 0)))
    assert not narrowing(timed, proposed(timed, {"calls_until": at(2026, 3, 31, 0, 0)}))  # noon → whole day


def test_history_pages_name_who_acted_and_never_say_none(
    make_user: Callable[..., Any], filesystem_archive: Path
) -> None:
    recording = recorded_call(filesystem_archive)
    call_command("legal_hold", "place", "--recording", str(recording.pk), "--reason", "complaint 17")
    hold = LegalHold.objects.get()
    legal = make_user("Legal")
    client = client_for(legal)
    client.post(reverse("admin:holds_case_add"), {"name": "by hand", "phone_numbers": "3125551212"})

    hold_page = client.get(reverse("admin:holds_legalhold_history", args=[hold.pk])).content.decode()
    case_page = client.get(reverse("admin:holds_case_history", args=[Case.objects.get().pk])).content.decode()

    for page in (hold_page, case_page):
        table = re.search(r'<table id="change-history".*?</table>', page, re.S).group(0)
        assert "None" not in table and "pk=None" not in table
    assert re.search(r'class="history-actor">OS user \S+ via legal_hold<', hold_page)
    assert 'class="history-what">Created<' in case_page and 'class="history-actor">legal<' in case_page
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", case_page)


def test_under_a_date_filter_the_list_runs_along_the_call_time_index(
    make_user: Callable[..., Any], chicago: Any
) -> None:
    """Ordered by call time, a range of days reads only that range of the start_time index (at 1,000,000 rows:
    45 ms instead of 417 ms walking the catalog by id, bench/bench_admin.py)."""
    older_id_newer_call = make_recording(recording_id=10, start_time=at(2026, 3, 20, 9, 0))
    newer_id_older_call = make_recording(recording_id=20, start_time=at(2026, 3, 5, 9, 0))
    client = client_for(make_user("Legal"))
    url = reverse("admin:recordings_recording_changelist")

    page = client.get(url, {"start_time__from": "2026-03-01"}).content.decode()
    order = [int(x) for x in re.findall(r"/admin/recordings/recording/(\d+)/change/", page)]
    assert order.index(older_id_newer_call.pk) < order.index(newer_id_older_call.pk)
    plain = client.get(url).content.decode()
    order = [int(x) for x in re.findall(r"/admin/recordings/recording/(\d+)/change/", plain)]
    assert order.index(newer_id_older_call.pk) < order.index(older_id_newer_call.pk)  # newest id first otherwise
