"""The desk's disposition review: a batch's items listed (bounded, paginated), approved or excluded by a Legal
approver with a reason; other roles read, and cannot decide through the admin."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.test import Client
from django.urls import reverse

from recordings.models import Campaign, Recording
from recordings.pipeline.retention import enforce_retention
from retention.models import DeletionCertificate, DispositionBatch, DispositionDecision, DispositionItem
from tests.admin.conftest import PASSWORD, archive_and_clear, recorded_call
from tests.factories import make_policy
from vicirec import clock

pytestmark = pytest.mark.django_db


def signed_in(user: Any) -> Client:
    client = Client()
    assert client.login(username=user.username, password=PASSWORD)
    return client


@pytest.fixture
def batch(filesystem_archive: Path, settings: Any) -> list[DispositionItem]:
    settings.VICIREC_REVIEW_CLASSES = ["debt_collection"]
    debt = Campaign.objects.create(kind="outbound", campaign_id="DEBT", name="DEBT")
    make_policy(campaign=debt, keep_local_days=1, retain_days=1100, record_class="debt_collection", codec="none")
    calls = [recorded_call(filesystem_archive, age_days=20, campaign=debt) for _ in range(3)]
    archive_and_clear()
    Recording.objects.filter(pk__in=[c.pk for c in calls]).update(start_time=clock.now() - timedelta(days=1200))
    report = enforce_retention(now=clock.now(), dry_run=False, confirm=True)
    assert report.deleted == 0 and report.review_added == 3 and report.awaiting_review == 3
    return list(DispositionItem.objects.order_by("recording_id"))


def post_action(client: Client, action: str, items: list[DispositionItem], **extra: str) -> Any:
    return client.post(
        reverse("admin:retention_dispositionitem_changelist"),
        {"action": action, ACTION_CHECKBOX_NAME: [str(i.pk) for i in items], "select_across": "0", **extra},
    )


def test_an_approver_approves_and_excludes_with_a_reason_and_only_approved_items_go(
    make_user: Any, batch: list[DispositionItem]
) -> None:
    approver = signed_in(make_user("Legal approver"))
    the_batch = DispositionBatch.objects.get()
    listing = approver.get(reverse("admin:retention_dispositionbatch_changelist"))
    assert listing.status_code == 200 and str(the_batch) in listing.content.decode()
    page = approver.get(reverse("admin:retention_dispositionitem_changelist") + f"?batch__id__exact={the_batch.pk}")
    assert page.status_code == 200
    assert "Approve the selected items for deletion" in page.content.decode()
    assert all(str(i.recording_id) in page.content.decode() for i in batch)

    asked = post_action(approver, "approve_action", batch[:2])  # first: the reason form
    assert asked.status_code == 200 and "reason" in asked.content.decode()
    refused = post_action(approver, "approve_action", batch[:2], apply="1", reason="  ")
    assert refused.status_code == 200 and not DispositionDecision.objects.exists()
    done = post_action(approver, "approve_action", batch[:2], apply="1", reason="past the Reg F minimum")
    assert done.status_code == 302
    post_action(approver, "exclude_action", batch[2:], apply="1", reason="dispute pending")
    assert DispositionDecision.objects.filter(decision="approve", decided_by_name="legal_approver").count() == 2
    assert DispositionDecision.objects.filter(decision="exclude").count() == 1

    report = enforce_retention(now=clock.now(), dry_run=False, confirm=True)

    assert report.deleted == 2
    deleted = set(Recording.objects.filter(state="expired").values_list("pk", flat=True))
    assert deleted == {batch[0].recording_id, batch[1].recording_id}
    certificate = DeletionCertificate.objects.get(recording_id=batch[0].recording_id)
    assert certificate.policy["review"]["approved_by"] == "legal_approver"
    assert certificate.policy["review"]["batch"] == the_batch.pk
    waiting = approver.get(reverse("admin:retention_dispositionbatch_changelist")).content.decode()
    assert "Review the items of this batch" in waiting


@pytest.mark.parametrize("role", ["Legal", "Ops", "Auditor"])
def test_other_roles_read_the_batch_and_cannot_decide(make_user: Any, batch: list[DispositionItem], role: str) -> None:
    client = signed_in(make_user(role))
    page = client.get(reverse("admin:retention_dispositionitem_changelist"))
    assert page.status_code == 200 and "Approve the selected items" not in page.content.decode()
    post_action(client, "approve_action", batch, apply="1", reason="let me")
    assert not DispositionDecision.objects.exists()
    assert client.get(reverse("admin:retention_dispositionbatch_changelist")).status_code == 200
    assert client.post(reverse("admin:retention_dispositionitem_delete", args=[batch[0].pk])).status_code == 403
    enforce_retention(now=clock.now(), dry_run=False, confirm=True)
    assert not Recording.objects.filter(state="expired").exists()
