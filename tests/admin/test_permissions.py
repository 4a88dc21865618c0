"""Each role sees and does what it should, on every page, action and URL of the desk (Django test client)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from holds.actions import place_hold
from holds.models import Case, LegalHold
from recordings.models import AccessEvent, Campaign, Recording
from tests.admin.conftest import DESK, ROLES, archive_and_clear, recorded_call
from tests.factories import make_policy
from vicirec.actors import Actor

pytestmark = pytest.mark.django_db

# (role, what) → allowed? Everything not listed for a role is refused.
CAN = {
    "Legal": {"play", "hold", "export", "case_edit", "access_log", "policy_view"},
    "Legal approver": {"play", "hold", "export", "case_edit", "access_log", "policy_view", "release", "policy_edit"},
    "Ops": {"policy_view", "policy_edit", "pipeline"},
    "Auditor": {"policy_view", "access_log", "pipeline"},
}


@pytest.fixture
def world(filesystem_archive: Path) -> dict[str, Any]:
    campaign = Campaign.objects.create(kind="outbound", campaign_id="COLLECT", name="Collections")
    policy = make_policy(campaign=campaign, keep_local_days=1, retain_days=400, codec="none")
    recording = recorded_call(filesystem_archive, campaign=campaign, phone_number="3125550100")
    archive_and_clear()
    recording.refresh_from_db()
    assert recording.state == Recording.State.CLEARED
    case = Case.objects.create(name="CFPB 2026-7", phone_numbers=["3125550100"])
    hold = place_hold(reason="complaint", actor=Actor.command("tests"), case=case)
    return {"recording": recording, "case": case, "hold": hold, "policy": policy, "campaign": campaign}


def client_for(make_user: Callable[..., Any], role: str) -> Client:
    client = Client(headers=DESK)  # as the desk's own pages send their requests
    client.force_login(make_user(role))
    return client


@pytest.mark.parametrize("role", ROLES)
def test_every_role_reads_the_catalog_and_the_dashboard(make_user: Callable[..., Any], world: dict, role: str) -> None:
    client = client_for(make_user, role)
    r = world["recording"]
    assert client.get(reverse("admin:index")).status_code == 200
    assert client.get(reverse("admin:recordings_recording_changelist")).status_code == 200
    page = client.get(reverse("admin:recordings_recording_change", args=[r.pk]))
    assert page.status_code == 200 and r.stored_sha256 in page.content.decode()
    assert client.get(reverse("admin:recordings_recording_history", args=[r.pk])).status_code == 200
    assert client.get(reverse("admin:holds_legalhold_change", args=[world["hold"].pk])).status_code == 200
    assert client.get(reverse("admin:retention_deletioncertificate_changelist")).status_code == 200
    assert client.get(reverse("admin:recordings_recordingevent_changelist")).status_code == 200


@pytest.mark.parametrize("role", ROLES)
def test_playback_is_for_legal_roles_only_and_every_play_is_logged(
    make_user: Callable[..., Any], world: dict, role: str
) -> None:
    client = client_for(make_user, role)
    r = world["recording"]
    allowed = "play" in CAN[role]
    response = client.get(reverse("admin:recordings_recording_play", args=[r.pk]))
    assert response.status_code == (200 if allowed else 403)
    download = client.get(reverse("admin:recordings_recording_play", args=[r.pk]) + "?download=1")
    assert download.status_code == (200 if allowed else 403)
    link = client.get(f"/RECORDINGS/MP3/{r.filename}-all.mp3")
    assert link.status_code == (200 if allowed else 403)
    for served in (response, download, link) if allowed else ():
        b"".join(served.streaming_content)  # the access is logged as the audio leaves
    events = AccessEvent.objects.filter(recording=r, username=role.lower().replace(" ", "_"))
    assert sorted(events.values_list("action", flat=True)) == (sorted(["play", "download", "link"]) if allowed else [])
    page = client.get(reverse("admin:recordings_recording_change", args=[r.pk])).content.decode()
    assert ('id="player"' in page) == allowed


@pytest.mark.parametrize("role", ROLES)
def test_holds_are_placed_by_legal_and_released_by_approvers_only(
    make_user: Callable[..., Any], world: dict, role: str
) -> None:
    client = client_for(make_user, role)
    r = world["recording"]
    before = LegalHold.objects.count()
    response = client.post(reverse("admin:recordings_recording_hold", args=[r.pk]), {"reason": "CID item 4"})
    assert response.status_code == (302 if "hold" in CAN[role] else 403)
    assert LegalHold.objects.count() == before + ("hold" in CAN[role])
    action = client.post(
        reverse("admin:recordings_recording_changelist"),
        {"action": "place_hold_action", "_selected_action": [r.pk], "apply": "1", "reason": "by action"},
    )
    assert LegalHold.objects.filter(reason="by action").exists() == ("hold" in CAN[role])
    assert action.status_code in (200, 302)
    hold = world["hold"]
    release_url = reverse("admin:holds_legalhold_release", args=[hold.pk])
    assert client.get(release_url).status_code == (200 if "release" in CAN[role] else 403)
    client.post(release_url, {"reason": "matter closed"})
    hold.refresh_from_db()
    assert hold.is_active != ("release" in CAN[role])


@pytest.mark.parametrize("role", ROLES)
def test_evidence_export_is_for_legal_roles_only(make_user: Callable[..., Any], world: dict, role: str) -> None:
    client = client_for(make_user, role)
    allowed = "export" in CAN[role]
    for url in (
        reverse("admin:holds_case_export", args=[world["case"].pk]),
        reverse("admin:holds_legalhold_export", args=[world["hold"].pk]),
        reverse("admin:recordings_recording_export", args=[world["recording"].pk]),
    ):
        response = client.post(url)
        assert response.status_code == (200 if allowed else 403), url
        if allowed:
            assert response["Content-Type"] == "application/zip"
            b"".join(response.streaming_content)
    action = client.post(
        reverse("admin:recordings_recording_changelist"),
        {"action": "export_action", "_selected_action": [world["recording"].pk]},
    )
    assert (action.get("Content-Type") == "application/zip") == allowed


@pytest.mark.parametrize("role", ROLES)
def test_cases_are_opened_by_legal_roles_only(make_user: Callable[..., Any], world: dict, role: str) -> None:
    client = client_for(make_user, role)
    allowed = "case_edit" in CAN[role]
    response = client.post(
        reverse("admin:holds_case_add"),
        {"name": f"matter of {role}", "phone_numbers": "3125550100, 3125550101", "lead_ids": "", "agents": ""},
    )
    assert response.status_code == (302 if allowed else 403)
    if allowed:
        assert Case.objects.get(name=f"matter of {role}").phone_numbers == ["3125550100", "3125550101"]


@pytest.mark.parametrize("role", ROLES)
def test_access_log_and_pipeline_pages_follow_the_roles(make_user: Callable[..., Any], world: dict, role: str) -> None:
    client = client_for(make_user, role)
    access = client.get(reverse("admin:recordings_accessevent_changelist")).status_code
    assert access == (200 if "access_log" in CAN[role] else 403)
    schedules = client.get(reverse("admin:django_q_schedule_changelist")).status_code
    assert schedules == (200 if "pipeline" in CAN[role] else 403)


@pytest.mark.parametrize("role", ROLES)
def test_nobody_edits_or_deletes_the_record(make_user: Callable[..., Any], world: dict, role: str) -> None:
    client = client_for(make_user, role)
    r, hold = world["recording"], world["hold"]
    client.post(reverse("admin:recordings_recording_change", args=[r.pk]), {"phone_number": "999"})
    client.post(reverse("admin:recordings_recording_delete", args=[r.pk]), {"post": "yes"})
    client.post(reverse("admin:holds_legalhold_delete", args=[hold.pk]), {"post": "yes"})
    r.refresh_from_db()
    assert r.phone_number == "3125550100" and LegalHold.objects.filter(pk=hold.pk).exists()
    event = AccessEvent.objects.create(recording=r, action="play", username="x")
    response = client.post(reverse("admin:recordings_accessevent_delete", args=[event.pk]), {"post": "yes"})
    assert response.status_code == 403 and AccessEvent.objects.filter(pk=event.pk).exists()
    history = reverse("admin:holds_legalhold_simple_history", args=[hold.pk, hold.history.first().history_id])
    assert client.post(history, {}).status_code == 403


@pytest.mark.parametrize("role", ROLES)
def test_policy_changes_follow_the_roles(make_user: Callable[..., Any], world: dict, role: str) -> None:
    client = client_for(make_user, role)
    policy = world["policy"]
    url = reverse("admin:retention_retentionpolicy_change", args=[policy.pk])
    longer = {
        "campaign": world["campaign"].pk,
        "record_class": "general",
        "retain_days": 500,
        "override_reason": "",
        "keep_local_days": 1,
        "codec": "none",
        "change_reason": "keep collections longer",
    }
    response = client.post(url, longer)
    policy.refresh_from_db()
    assert (policy.retain_days == 500) == ("policy_edit" in CAN[role]), response.status_code
