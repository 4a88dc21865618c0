"""The admin goes through the domain's approval rule: an approver's shortening is saved with the approver and
reason in the history; a decision that cannot be applied says so, with no success message beside it."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from recordings.models import Campaign
from retention.models import PolicyProposal, RetentionPolicy
from tests.admin.test_proposals import decide, propose, signed_in
from tests.factories import make_policy

pytestmark = pytest.mark.django_db


def test_an_approver_adds_a_short_policy_for_a_campaign_under_the_default(make_user: Any) -> None:
    sales = Campaign.objects.create(kind="outbound", campaign_id="SALES", name="Sales")
    approver = signed_in(make_user("Legal approver"))
    data = {
        "campaign": sales.pk,
        "record_class": "general",
        "retain_days": 30,
        "keep_local_days": 1,
        "codec": "mp3",
        "change_reason": "counsel: sales calls carry no obligation",
    }
    url = reverse("admin:retention_retentionpolicy_add")
    assert "I have reviewed the impact" in approver.post(url, data).content.decode()
    assert not RetentionPolicy.objects.filter(campaign=sales).exists()
    assert approver.post(url, data | {"impact_reviewed": "on"}).status_code == 302
    latest = RetentionPolicy.objects.get(campaign=sales).history.latest()
    assert latest.history_user.username == "legal_approver"
    assert latest.history_change_reason == "counsel: sales calls carry no obligation"


def test_a_decision_that_cannot_be_applied_shows_no_success_message(make_user: Any) -> None:
    campaign = Campaign.objects.create(kind="outbound", campaign_id="COLLECT", name="Collections")
    policy = make_policy(campaign=campaign, keep_local_days=3, retain_days=1200, record_class="debt_collection")
    propose(signed_in(make_user("Ops")), policy, retain_days=400)  # below the 3-year minimum, no override
    proposal = PolicyProposal.objects.get()
    approver = signed_in(make_user("Legal approver"))
    response = decide(approver, proposal, "approve", "ok")
    page = approver.get(response.url).content.decode()
    assert "Not applied" in page and "successfully" not in page
    assert PolicyProposal.objects.get().status == "pending"
    assert RetentionPolicy.objects.get(pk=policy.pk).retain_days == 1200
