"""The desk's everyday tools, as views: phone numbers as people write them in cases and search, holds that
can be traced (hold page list, held and by-hold filters, released holds kept on the recording page and in
the export), the dashboard's overdue figure, links and proposals, CSV export with its access log, agent
names, the campaign page and the certificate list's phone and campaign columns."""

from __future__ import annotations

import csv
import importlib
import io
import json
import zipfile
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from holds.actions import place_hold, release_hold
from holds.models import Case, LegalHold
from recordings.admin import search_condition
from recordings.models import AccessEvent, Agent, Campaign, Recording
from recordings.pipeline.retention import enforce_retention
from retention.models import DeletionCertificate, PolicyProposal
from tests.admin.conftest import DESK
from tests.factories import make_policy, make_recording
from vicirec import clock
from vicirec.actors import Actor

pytestmark = pytest.mark.django_db
phone_migration = importlib.import_module("holds.migrations.0005_case_phone_numbers_catalog_form")


def login(make_user: Callable[..., Any], role: str) -> Client:
    client = Client(headers=DESK)
    client.force_login(make_user(role))
    return client


def case_form(name: str, phones: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "external_reference": "", "description": "", "phone_numbers": phones, "lead_ids": "",
            "agents": "", "calls_from_0": "", "calls_from_1": "", "calls_until_0": "", "calls_until_1": "",
            "recordings": "", "release_reason": "", "_continue": "1", **extra}  # fmt: skip


def found(term: str) -> set[int]:
    return set(Recording.objects.filter(search_condition(term)).values_list("pk", flat=True))


# --- phone numbers as people write them ---------------------------------------------------------------


def test_a_case_phone_typed_as_people_write_it_matches_its_recordings(make_user: Callable[..., Any]) -> None:
    call = make_recording(phone_number="7735557219")
    legal = login(make_user, "Legal")
    response = legal.post(reverse("admin:holds_case_add"), case_form("CID 7", "(773) 555-7219\n+1 312 555 1212"))
    assert response.status_code == 302, response.content.decode()[:2000]
    case = Case.objects.get(name="CID 7")
    assert case.phone_numbers == ["7735557219", "3125551212"]
    page = legal.get(reverse("admin:holds_case_change", args=[case.pk])).content.decode()
    assert '<strong id="preview-count">1</strong>' in page and "(773) 555-7219" in page
    assert set(Recording.objects.filter(case.condition()).values_list("pk", flat=True)) == {call.pk}


def test_a_phone_entry_that_is_not_a_number_is_refused_with_a_message(make_user: Callable[..., Any]) -> None:
    legal = login(make_user, "Legal")
    page = legal.post(reverse("admin:holds_case_add"), case_form("CID 8", "(773), 555-7219")).content.decode()
    assert "Not saved" in page and "is not a complete phone number" in page
    assert not Case.objects.filter(name="CID 8").exists()


def test_old_split_values_of_a_held_case_are_kept_and_the_migration_only_adds(make_user: Callable[..., Any]) -> None:
    call = make_recording(phone_number="7735557219")
    other = make_recording(phone_number="(773)")  # a value stored as typed: held today through that value
    case = Case.objects.create(name="old", phone_numbers=["(773)", "555-7219"])
    place_hold(reason="old matter", actor=Actor.command("tests"), case=case)
    held_before = set(Recording.objects.held().values_list("pk", flat=True))
    assert {call.pk, other.pk} <= held_before  # read with the catalog form beside the stored values
    phone_migration.add_catalog_forms(apps, None)
    case.refresh_from_db()
    assert case.phone_numbers == ["(773)", "555-7219", "7735557219"]
    assert held_before <= set(Recording.objects.held().values_list("pk", flat=True))
    legal = login(make_user, "Legal")  # editing the held case re-posts the old values: kept, nothing refused
    shown = legal.get(reverse("admin:holds_case_change", args=[case.pk])).content.decode()
    assert "(773), 555-7219, (773) 555-7219" in shown
    posted = case_form("old", "(773), 555-7219, (773) 555-7219", description="note")
    assert legal.post(reverse("admin:holds_case_change", args=[case.pk]), posted).status_code == 302
    case.refresh_from_db()
    assert case.phone_numbers == ["(773)", "555-7219", "7735557219"] and case.description == "note"


def test_search_takes_every_written_form_of_a_phone_and_shows_it_formatted(make_user: Callable[..., Any]) -> None:
    call = make_recording(phone_number="7735557219")
    for term in ("(773) 555-7219", "+1 773 555 7219", "1-773-555-7219", "phone:(773) 555-7219", "773.555.7219"):
        assert found(term) == {call.pk}, term
    page = login(make_user, "Legal").get(reverse("admin:recordings_recording_changelist") + "?q=(773)+555-7219")
    assert "(773) 555-7219" in page.content.decode() and str(call.pk) in page.content.decode()


# --- holds that can be traced -------------------------------------------------------------------------


def test_the_hold_page_lists_its_recordings_by_page_and_links_to_the_filtered_list(
    make_user: Callable[..., Any],
) -> None:
    campaign = Campaign.objects.create(kind="outbound", campaign_id="HELD")
    calls = [make_recording(campaign=campaign) for _ in range(53)]
    outside = make_recording()
    hold = place_hold(reason="CID", actor=Actor.command("tests"), campaign=campaign)
    legal = login(make_user, "Legal")
    url = reverse("admin:holds_legalhold_change", args=[hold.pk])
    with CaptureQueriesContext(connection) as first:
        page = legal.get(url).content.decode()
    assert "page 1 of 2" in page and 'id="hold-next"' in page
    assert f">{calls[-1].pk}</a>" in page and f">{calls[0].pk}</a>" not in page
    second = legal.get(url + "?rp=2").content.decode()
    assert f">{calls[0].pk}</a>" in second and "page 2 of 2" in second
    assert f"?hold={hold.pk}" in page
    listed = legal.get(reverse("admin:recordings_recording_changelist") + f"?hold={hold.pk}").content.decode()
    held = legal.get(reverse("admin:recordings_recording_changelist") + "?held=yes").content.decode()
    for text in (listed, held):
        assert f">{calls[-1].pk}</a>" in text and f">{outside.pk}</a>" not in text
    with CaptureQueriesContext(connection) as later:
        legal.get(url + "?rp=2")
    assert len(later.captured_queries) <= len(first.captured_queries)  # no query per row


def test_a_released_hold_stays_on_the_recording_page_its_custody_log_and_the_export(
    make_user: Callable[..., Any], filesystem_archive: Path
) -> None:
    recording = make_recording()
    hold = place_hold(reason="complaint 12", actor=Actor.command("tests"), recording_ids=[recording.pk])
    approver = make_user("Legal approver")
    release_hold(hold, reason="matter closed", actor=Actor.person(approver))
    client = Client(headers=DESK)
    client.force_login(approver)
    page = client.get(reverse("admin:recordings_recording_change", args=[recording.pk])).content.decode()
    assert 'id="released-holds"' in page and "matter closed" in page and "legal_approver" in page
    assert f"hold released (hold #{hold.pk})" in page and f"hold placed (hold #{hold.pk})" in page
    listed = client.get(reverse("admin:recordings_recording_changelist") + f"?hold={hold.pk}").content.decode()
    assert f">{recording.pk}</a>" in listed  # a released hold's recordings are still found through it
    response = client.post(reverse("admin:recordings_recording_export", args=[recording.pk]))
    with zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content))) as zf:
        folder = zf.namelist()[0].split("/")[0]
        manifest = json.loads(zf.read(f"{folder}/manifest.json"))["recordings"][0]
        custody = zf.read(f"{folder}/custody_log.csv").decode()
    assert any("RELEASED" in h and "matter closed" in h for h in manifest["holds"])
    assert ",hold," in custody and ",released,hold #" in custody and "matter closed" in custody


# --- the dashboard ------------------------------------------------------------------------------------


def test_the_dashboard_shows_overdue_as_the_dry_run_counts_it_with_links_and_proposals(
    make_user: Callable[..., Any],
) -> None:
    campaign = Campaign.objects.create(kind="outbound", campaign_id="OLD")
    make_policy(campaign=campaign, keep_local_days=1, retain_days=30)
    old = [make_recording(campaign=campaign, start_time=clock.now() - timedelta(days=40)) for _ in range(3)]
    place_hold(reason="keep one", actor=Actor.command("tests"), recording_ids=[old[0].pk])
    make_recording(campaign=campaign, start_time=clock.now() - timedelta(days=20))  # expires within 30 days
    ops = make_user("Ops")
    PolicyProposal.objects.create(keep_local_days=3, retain_days=10, reason="shorter", proposed_by=ops,
                                  proposed_at=clock.now())  # fmt: skip
    dry = enforce_retention(now=clock.now(), dry_run=True)
    assert len(dry.would_delete) == 2
    page = login(make_user, "Legal").get("/admin/?refresh=1").content.decode()
    assert 'id="overdue-link">2</a>' in page and "1</a> more kept by holds" in page
    assert "?expires=overdue&amp;held=no" in page and "?expires=30" in page and "?state__exact=captured" in page
    assert "Policy proposals waiting for an approver" in page and "10 days for the default policy" in page
    assert 'id="dash-erasure"' not in page  # the erasure section's hook shows nothing until it has figures
    listed = login(make_user, "Auditor").get(
        reverse("admin:recordings_recording_changelist") + "?expires=overdue&held=no"
    )
    assert {f">{r.pk}</a>" in listed.content.decode() for r in old} == {True, False}


def test_local_recordings_show_their_size_on_the_dashboard(make_user: Callable[..., Any]) -> None:
    make_recording(server_ip="10.0.0.12", original_size=5 * 1024 * 1024)
    page = login(make_user, "Legal").get("/admin/?refresh=1").content.decode()
    assert "5.0\xa0MB" in page and "server_ip__exact=10.0.0.12" in page


# --- everyday tools -----------------------------------------------------------------------------------


def test_csv_export_of_a_search_logs_each_recording_and_is_bounded(
    make_user: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from recordings import desk

    Agent.objects.create(user="1001", full_name="Jane Roe")
    calls = [make_recording(phone_number="7735557219", agent="1001") for _ in range(3)]
    make_recording(phone_number="3125550000")
    legal = login(make_user, "Legal")
    url = reverse("admin:recordings_recording_csv") + "?q=(773)+555-7219"
    assert legal.get(url).status_code == 302 and not AccessEvent.objects.exists()  # a link never exports
    response = legal.post(url)
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert sorted(int(r["recording_id"]) for r in rows) == sorted(c.pk for c in calls)
    assert rows[0]["phone"] == "(773) 555-7219" and rows[0]["agent_name"] == "Jane Roe"
    events = AccessEvent.objects.filter(action="export")
    assert events.count() == 3 and all(e.username == "legal" and e.detail.startswith("CSV") for e in events)
    assert login(make_user, "Ops").post(url).status_code == 403
    monkeypatch.setattr(desk, "CSV_LIMIT", 2)
    assert legal.post(url).status_code == 302 and AccessEvent.objects.count() == 3  # too many: nothing exported


def test_agent_names_come_from_vicidial_and_find_recordings(make_user: Callable[..., Any], vicidial: Any) -> None:
    from recordings.pipeline.catalog import sync_agents

    vicidial.agent("1001", "Jane Roe")
    vicidial.agent("1002", "Sam Poe")
    assert sync_agents(clock.now()) == 2 and sync_agents(clock.now()) == 0
    jane = [make_recording(agent="1001") for _ in range(3)]
    make_recording(agent="1002")
    assert found("Jane Roe") == found("jane") == found("agent:Jane") == {r.pk for r in jane}
    legal = login(make_user, "Legal")
    with CaptureQueriesContext(connection) as queries:
        page = legal.get(reverse("admin:recordings_recording_changelist") + "?q=Jane").content.decode()
    assert "1001 (Jane Roe)" in page
    few = len(queries.captured_queries)
    for _ in range(10):
        make_recording(agent="1001")
    with CaptureQueriesContext(connection) as queries:
        legal.get(reverse("admin:recordings_recording_changelist") + "?q=Jane")
    assert len(queries.captured_queries) == few  # names come with the page's SELECT


test_agent_names_come_from_vicidial_and_find_recordings = pytest.mark.django_db(databases=["default", "vicidial"])(
    test_agent_names_come_from_vicidial_and_find_recordings
)


def test_the_campaign_page_links_its_policy_and_holds_and_holds_it(make_user: Callable[..., Any]) -> None:
    campaign = Campaign.objects.create(kind="outbound", campaign_id="SALES")
    policy = make_policy(campaign=campaign, keep_local_days=1, retain_days=400)
    case = Case.objects.create(name="Smith v. Acme")
    case.campaigns.add(campaign)
    case_hold = place_hold(reason="lawsuit", actor=Actor.command("tests"), case=case)
    legal = login(make_user, "Legal")
    url = reverse("admin:recordings_campaign_change", args=[campaign.pk])
    page = legal.get(url).content.decode()
    assert reverse("admin:retention_retentionpolicy_change", args=[policy.pk]) in page
    assert reverse("admin:holds_legalhold_change", args=[case_hold.pk]) in page and 'id="hold-campaign"' in page
    hold_url = reverse("admin:recordings_campaign_hold", args=[campaign.pk])
    assert legal.post(hold_url, {"reason": ""}).status_code == 302 and not LegalHold.objects.filter(campaign=campaign)
    assert legal.post(hold_url, {"reason": "regulator letter"}).status_code == 302
    hold = LegalHold.objects.get(campaign=campaign)
    assert hold.placed_by_name == "legal" and hold.reason == "regulator letter"
    auditor = login(make_user, "Auditor")
    assert 'id="hold-campaign"' not in auditor.get(url).content.decode()
    assert auditor.post(hold_url, {"reason": "x"}).status_code == 403


def test_the_certificate_list_shows_phone_and_campaign_without_a_query_per_row(make_user: Callable[..., Any]) -> None:
    campaign = Campaign.objects.create(kind="outbound", campaign_id="GONE")

    def certificate() -> None:
        DeletionCertificate.objects.create(
            recording=make_recording(state="expired", campaign=campaign, phone_number="7735557219"),
            deleted_at=clock.now(), run="retention@test", call={}, cloud_deleted=True, local_deleted=False,
            policy={}, hold_check={"held": False},
        )  # fmt: skip

    certificate()
    auditor = login(make_user, "Auditor")
    url = reverse("admin:retention_deletioncertificate_changelist")
    with CaptureQueriesContext(connection) as one:
        page = auditor.get(url).content.decode()
    assert "(773) 555-7219" in page and "GONE" in page
    for _ in range(5):
        certificate()
    with CaptureQueriesContext(connection) as six:
        auditor.get(url)
    assert len(six.captured_queries) == len(one.captured_queries)


@pytest.mark.django_db(databases=["default", "vicidial"])
def test_the_catalog_records_a_local_capture_size_so_the_dashboard_does_not_show_zero(
    make_user: Callable[..., Any], vicidial: Any, spool_dir: Path
) -> None:
    from recordings.pipeline.catalog import sync_recordings
    from tests.factories import write_file

    vicidial.campaign("SALES", "Sales")
    call = vicidial.outbound_call(campaign="SALES", phone="7735557219", user="1001")
    write_file(spool_dir, f"{call['filename']}-all.wav", b"x" * 3000)
    sync_recordings(now=clock.now(), node="")
    recording = Recording.objects.get(pk=call["recording_id"])
    assert recording.state == "captured" and recording.original_size == 3000
    page = login(make_user, "Legal").get("/admin/?refresh=1").content.decode()
    assert "2.9\xa0KB" in page  # the local disk card and the captured state, not "0 bytes"
