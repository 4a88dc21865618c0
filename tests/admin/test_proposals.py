"""Ops propose policy changes; only a Legal approver applies or rejects them, with a reason in the history."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from recordings.models import Campaign
from retention.models import PolicyProposal, RetentionPolicy
from tests.admin.conftest import PASSWORD
from tests.factories import make_policy

pytestmark = pytest.mark.django_db


@pytest.fixture
def collect(db: None) -> RetentionPolicy:
    campaign = Campaign.objects.create(kind="outbound", campaign_id="COLLECT", name="Collections")
    return make_policy(campaign=campaign, keep_local_days=3, retain_days=1200, record_class="debt_collection")


def signed_in(user: Any) -> Client:
    client = Client()
    assert client.login(username=user.username, password=PASSWORD)
    return client


def propose(client: Client, policy: RetentionPolicy, **fields: Any) -> Any:
    data = {
        "campaign": policy.campaign_id,
        "record_class": policy.record_class,
        "retain_days": 1100,
        "override_reason": "",
        "keep_local_days": 3,
        "codec": "mp3",
        "reason": "disk budget",
    } | fields
    return client.post(reverse("admin:retention_policyproposal_add"), data)


def decide(client: Client, proposal: PolicyProposal, decision: str, reason: str) -> Any:
    url = reverse("admin:retention_policyproposal_change", args=[proposal.pk])
    return client.post(url, {"decision": decision, "decision_reason": reason})


def test_ops_cannot_shorten_a_policy_but_can_propose_it(make_user: Any, collect: RetentionPolicy) -> None:
    ops = signed_in(make_user("Ops"))
    url = reverse("admin:retention_retentionpolicy_change", args=[collect.pk])
    refused = ops.post(
        url,
        {
            "campaign": collect.campaign_id,
            "record_class": "debt_collection",
            "retain_days": 1100,
            "keep_local_days": 3,
            "codec": "mp3",
            "change_reason": "x",
            "impact_reviewed": "on",
        },
    )
    assert b"file it as a policy proposal" in refused.content
    assert propose(ops, collect).status_code == 302
    proposal = PolicyProposal.objects.get()
    assert proposal.status == "pending" and proposal.proposed_by.username == "ops"
    assert "newly_eligible_now" in proposal.impact
    assert RetentionPolicy.objects.get(pk=collect.pk).retain_days == 1200
    assert decide(ops, proposal, "approve", "looks fine").status_code == 403
    assert PolicyProposal.objects.get().status == "pending"


def test_an_approver_applies_a_proposal_with_a_reason_in_the_policy_history(
    make_user: Any, collect: RetentionPolicy
) -> None:
    propose(signed_in(make_user("Ops")), collect)
    approver = make_user("Legal approver")
    proposal = PolicyProposal.objects.get()

    response = decide(signed_in(approver), proposal, "approve", "counsel agrees: CFPB letter 2026-3")

    assert response.status_code == 302
    proposal.refresh_from_db()
    assert proposal.status == "approved" and proposal.decided_by == approver
    policy = RetentionPolicy.objects.get(pk=collect.pk)
    assert policy.retain_days == 1100
    latest = policy.history.latest()
    assert latest.history_user == approver and f"proposal #{proposal.pk} approved" in latest.history_change_reason
    assert decide(signed_in(approver), proposal, "reject", "again").status_code == 403  # decided: read-only now


def test_below_the_legal_floor_needs_an_override_even_when_approved(make_user: Any, collect: RetentionPolicy) -> None:
    propose(signed_in(make_user("Ops")), collect, retain_days=400)
    proposal = PolicyProposal.objects.get()
    decide(signed_in(make_user("Legal approver")), proposal, "approve", "ok")
    proposal.refresh_from_db()
    assert proposal.status == "pending"
    assert RetentionPolicy.objects.get(pk=collect.pk).retain_days == 1200


def test_a_rejection_changes_nothing_and_keeps_its_reason(make_user: Any, collect: RetentionPolicy) -> None:
    propose(signed_in(make_user("Ops")), collect)
    proposal = PolicyProposal.objects.get()
    decide(signed_in(make_user("Legal approver")), proposal, "reject", "litigation expected in this campaign")
    proposal.refresh_from_db()
    assert proposal.status == "rejected" and proposal.decision_reason.startswith("litigation")
    assert RetentionPolicy.objects.get(pk=collect.pk).retain_days == 1200
