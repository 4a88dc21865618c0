"""The desk's erasure requests: Legal opens one by phone number, sees what it covers, a second person who is a
Legal approver carries it out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from holds.actions import place_hold
from recordings.models import Recording
from retention.models import ErasureCertificate, ErasureRequest
from tests.admin.conftest import PASSWORD, archive_and_clear, recorded_call
from vicirec.actors import Actor

pytestmark = pytest.mark.django_db
PHONE = "3125550147"


def signed_in(user: Any) -> Client:
    client = Client()
    assert client.login(username=user.username, password=PASSWORD)
    return client


def test_legal_opens_a_request_and_an_approver_carries_it_out(make_user: Any, filesystem_archive: Path) -> None:
    calls = [
        recorded_call(filesystem_archive, phone_number=PHONE, filename=f"20261101-1200{i}_{PHONE}") for i in range(3)
    ]
    other = recorded_call(filesystem_archive, phone_number="7735550000")
    archive_and_clear()
    hold = place_hold(reason="complaint", actor=Actor.command("tests"), recording_ids=[calls[2].pk])
    legal, approver = make_user("Legal"), make_user("Legal approver")

    opened = signed_in(legal).post(
        reverse("admin:retention_erasurerequest_add"),
        {"subject_phone": "312-555-0147", "legal_basis": "GDPR Art. 17(1)", "reason": "e-mail of 3 March"},
    )
    assert opened.status_code == 302, opened.content[:2000]
    request = ErasureRequest.objects.get()
    assert request.status == "awaiting" and request.subject_phone == PHONE
    assert signed_in(legal).get(reverse("admin:retention_erasurerequest_change", args=[request.pk])).status_code == 200

    page = signed_in(approver).get(reverse("admin:retention_erasurerequest_change", args=[request.pk]))
    assert "3 recording(s)" in page.content.decode() and f"hold #{hold.pk}" in page.content.decode()
    done = signed_in(approver).post(
        reverse("admin:retention_erasurerequest_change", args=[request.pk]),
        {"decision": "approve", "decision_reason": "identity checked"},
    )

    assert done.status_code == 302
    assert Recording.objects.filter(pk__in=[c.pk for c in calls[:2]], state="erased").count() == 2
    assert Recording.objects.get(pk=calls[2].pk).state != "erased"
    assert Recording.objects.get(pk=other.pk).phone_number == "7735550000"
    assert ErasureCertificate.objects.count() == 2
    request.refresh_from_db()
    assert request.subject_phone == "" and request.decided_by_name == approver.username


def test_the_requester_cannot_approve_their_own_request(make_user: Any, filesystem_archive: Path) -> None:
    recorded_call(filesystem_archive, phone_number=PHONE)
    approver = make_user("Legal approver")
    client = signed_in(approver)
    client.post(reverse("admin:retention_erasurerequest_add"), {"subject_phone": PHONE, "legal_basis": "GDPR"})
    request = ErasureRequest.objects.get()

    client.post(
        reverse("admin:retention_erasurerequest_change", args=[request.pk]),
        {"decision": "approve", "decision_reason": "mine"},
    )

    request.refresh_from_db()
    assert request.status == "awaiting" and not ErasureCertificate.objects.exists()


def test_the_hold_page_shows_the_erasure_requests_it_refused(make_user: Any) -> None:
    from retention.models import ErasureItem
    from tests.factories import make_recording
    from vicirec import clock

    recording = make_recording(state="cleared", object_key="c/k.mp3")
    hold = place_hold(reason="litigation", actor=Actor.command("test"), recording_ids=[recording.pk])
    other = place_hold(reason="another matter", actor=Actor.command("test"), recording_ids=[recording.pk])
    request = ErasureRequest.objects.create(source="vicidial", requested_by_name="VICIdial deletion queue")
    refusal = f"refused: under hold {hold.pk} (GDPR Art. 17(3)(e))"
    ErasureItem.objects.create(
        request=request,
        recording_id=recording.pk,
        status=ErasureItem.Status.REFUSED,
        holds=[hold.pk],
        refusal=refusal,
        refused_at=clock.now(),
        updated_at=clock.now(),
    )
    client = Client()
    client.force_login(make_user("Legal"))

    page = client.get(reverse("admin:holds_legalhold_change", args=[hold.pk])).content.decode()
    assert 'id="hold-erasures"' in page and refusal in page and f"request #{request.pk}" in page
    unrelated = client.get(reverse("admin:holds_legalhold_change", args=[other.pk])).content.decode()
    assert 'id="hold-erasures"' not in unrelated
