"""Shortening retention is decided in the domain (retention.approval) and enforced by the model: compared
with the policy that applies today (the campaign's own, else the default), whatever path makes the change."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from io import StringIO
from typing import Any

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management import call_command, load_command_class
from django.core.management.base import CommandError

from recordings.models import Campaign
from retention.approval import ApprovalRequired, shortenings
from retention.models import PolicyProposal, RetentionPolicy
from tests.factories import make_policy, make_recording, policy_approver

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
DEFAULT_DAYS = 7 * 365 + 2


@pytest.fixture
def sales() -> Campaign:
    return Campaign.objects.create(kind="outbound", campaign_id="SALES", name="Sales")


@pytest.fixture
def collect() -> Campaign:
    return Campaign.objects.create(kind="outbound", campaign_id="COLLECT", name="Collections")


def history_of(policy: RetentionPolicy) -> Any:
    return RetentionPolicy.history.filter(id=policy.pk).latest()


def test_a_new_short_policy_for_a_campaign_under_the_default_is_refused(sales: Campaign) -> None:
    with pytest.raises(ApprovalRequired, match=f"campaign SALES: {DEFAULT_DAYS} → 1 days"):
        RetentionPolicy.objects.create(campaign=sales, keep_local_days=0, retain_days=1, record_class="general")
    with pytest.raises(ApprovalRequired):
        RetentionPolicy(campaign=sales, keep_local_days=0, retain_days=1).save()
    assert not RetentionPolicy.objects.filter(campaign=sales).exists()


def test_saving_a_shorter_policy_needs_an_approver_and_a_reason_kept_in_the_history(sales: Campaign) -> None:
    policy = make_policy(campaign=sales, keep_local_days=1, retain_days=400)
    policy.retain_days = 30
    with pytest.raises(ApprovalRequired, match="400 → 30 days"):
        policy.save()
    ops = get_user_model().objects.create_user("ops-person")
    with pytest.raises(ApprovalRequired):
        policy.save(approved_by=ops, reason="disk budget")
    with pytest.raises(ValidationError, match="needs a reason"):
        policy.save(approved_by=policy_approver())
    assert RetentionPolicy.objects.get(pk=policy.pk).retain_days == 400

    policy.save(approved_by=policy_approver(), reason="counsel: sales calls carry no obligation")

    latest = history_of(policy)
    assert latest.retain_days == 30 and latest.history_user.username == "policy-approver"
    assert latest.history_change_reason == "counsel: sales calls carry no obligation"


def test_moving_a_policy_to_another_campaign_is_a_shortening(sales: Campaign, collect: Campaign) -> None:
    policy = make_policy(campaign=collect, keep_local_days=1, retain_days=1200, record_class="debt_collection")
    policy.campaign = sales
    with pytest.raises(ApprovalRequired, match="campaign SALES"):
        policy.save()
    assert RetentionPolicy.objects.get(pk=policy.pk).campaign == collect
    longer = make_policy(campaign=sales, keep_local_days=1, retain_days=4000)
    longer.campaign = Campaign.objects.create(kind="outbound", campaign_id="NEW", name="New")
    changes = shortenings(longer)  # SALES falls back to the shorter default
    assert [(c.campaign_id, c.before.retain_days, c.after.retain_days) for c in changes] == [
        (sales.pk, 4000, DEFAULT_DAYS)
    ]


def test_deleting_a_policy_longer_than_the_default_is_a_shortening(sales: Campaign, collect: Campaign) -> None:
    longer = make_policy(campaign=sales, keep_local_days=1, retain_days=4000)
    with pytest.raises(ApprovalRequired, match=f"4000 → {DEFAULT_DAYS} days"):
        longer.delete()
    longer.delete(approved_by=policy_approver(), reason="campaign closed, the default applies")
    assert not RetentionPolicy.objects.filter(campaign=sales).exists()
    shorter = make_policy(campaign=collect, keep_local_days=1, retain_days=400)
    shorter.delete()  # back to the longer default: no approval needed


def test_a_record_class_with_a_lower_minimum_is_a_shortening(collect: Campaign) -> None:
    policy = make_policy(campaign=collect, keep_local_days=1, retain_days=1200, record_class="debt_collection")
    policy.record_class = "general"
    with pytest.raises(ApprovalRequired, match="record class debt_collection → general"):
        policy.save()
    policy.record_class = "telemarketing_consent"  # a higher minimum: 1200 days is now below it
    policy.override_reason = "counsel reviewed"
    policy.retain_days = 1900
    policy.save()


def test_a_shorter_default_is_a_shortening_for_every_campaign_without_its_own() -> None:
    default = RetentionPolicy.objects.default()
    default.retain_days = 365
    with pytest.raises(ApprovalRequired, match="the default policy"):
        default.save()
    default.retain_days = DEFAULT_DAYS + 100
    default.save()  # longer: no approval
    assert RetentionPolicy.objects.default().retain_days == DEFAULT_DAYS + 100


def test_queryset_updates_and_deletes_that_shorten_are_refused(sales: Campaign, collect: Campaign) -> None:
    make_policy(campaign=sales, keep_local_days=1, retain_days=400)
    longer = make_policy(campaign=collect, keep_local_days=1, retain_days=4000)
    with pytest.raises(ApprovalRequired):
        RetentionPolicy.objects.filter(campaign=sales).update(retain_days=10)
    with pytest.raises(ApprovalRequired):
        RetentionPolicy.objects.exclude(campaign=None).update(record_class="general", retain_days=399)
    with pytest.raises(ValidationError, match="Move a policy"):
        RetentionPolicy.objects.filter(pk=longer.pk).update(campaign=sales)
    with pytest.raises(ApprovalRequired):
        RetentionPolicy.objects.filter(pk=longer.pk).delete()
    with pytest.raises(ApprovalRequired):
        RetentionPolicy.objects.bulk_create([RetentionPolicy(campaign=None, keep_local_days=1, retain_days=1)])
    assert RetentionPolicy.objects.filter(campaign=sales).update(retain_days=500, keep_local_days=2) == 1
    assert RetentionPolicy.objects.filter(campaign=sales).update(keep_local_days=3) == 1
    assert sorted(RetentionPolicy.objects.exclude(campaign=None).values_list("retain_days", flat=True)) == [500, 4000]


def test_lengthening_needs_no_approval(sales: Campaign) -> None:
    policy = RetentionPolicy.objects.create(campaign=sales, keep_local_days=1, retain_days=DEFAULT_DAYS + 1)
    policy.retain_days = DEFAULT_DAYS + 400
    policy.save()
    assert RetentionPolicy.objects.get(pk=policy.pk).retain_days == DEFAULT_DAYS + 400


def test_a_shortening_counts_even_for_a_campaign_with_no_recordings_yet(sales: Campaign) -> None:
    make_recording(campaign=sales, start_time=NOW - timedelta(days=30))
    empty = Campaign.objects.create(kind="outbound", campaign_id="EMPTY", name="Empty")
    with time_machine.travel(NOW, tick=False):
        assert shortenings(RetentionPolicy(campaign=empty, keep_local_days=1, retain_days=10))


def set_policy(*args: str) -> Any:
    out = StringIO()
    call_command("set_policy", *args, "--json", stdout=out, stderr=StringIO())
    return json.loads(out.getvalue())


def test_set_policy_files_a_proposal_and_exits_3_without_an_approver(
    sales: Campaign, capsys: Any, monkeypatch: Any
) -> None:
    approver = policy_approver()
    monkeypatch.setattr("django.core.management.base.connections.close_all", lambda: None)  # the test's database
    with pytest.raises(SystemExit) as exit_:
        load_command_class("retention", "set_policy").run_from_argv(
            ["manage.py", "set_policy", "SALES", "--keep-local-days", "0", "--retain-days", "1", "--reason", "disk"]
        )
    assert exit_.value.code == 3
    proposal = PolicyProposal.objects.get()
    err = capsys.readouterr().err
    assert f"Policy proposal #{proposal.pk} was filed" in err and approver.username in err
    assert (proposal.status, proposal.campaign, proposal.retain_days, proposal.reason) == ("pending", sales, 1, "disk")
    assert not RetentionPolicy.objects.filter(campaign=sales).exists()


def test_set_policy_with_an_approver_saves_and_records_who_and_why(sales: Campaign) -> None:
    approver = policy_approver()
    data = set_policy(
        "SALES",
        "--keep-local-days",
        "1",
        "--retain-days",
        "90",
        "--reason",
        "counsel",
        "--approved-by",
        approver.username,
    )
    assert data["saved"] is True and "SALES" in data["shortens"]
    policy = RetentionPolicy.objects.get(campaign=sales)
    latest = history_of(policy)
    assert latest.history_user == approver and latest.retain_days == 90
    assert latest.history_change_reason.startswith("counsel [")
    assert not PolicyProposal.objects.exists()


def test_set_policy_refuses_a_non_approver_named_by_approved_by(sales: Campaign) -> None:
    get_user_model().objects.create_user("ops-person")
    with pytest.raises(CommandError, match="'ops-person' may not approve") as refused:
        set_policy(
            "SALES", "--keep-local-days", "1", "--retain-days", "90", "--reason", "x", "--approved-by", "ops-person"
        )
    assert refused.value.returncode == 1
    with pytest.raises(CommandError, match="needs --reason"):
        set_policy(
            "SALES", "--keep-local-days", "1", "--retain-days", "90", "--approved-by", policy_approver().username
        )
    assert not RetentionPolicy.objects.filter(campaign=sales).exists() and not PolicyProposal.objects.exists()


def test_set_policy_dry_run_compares_with_the_default_and_saves_nothing(sales: Campaign) -> None:
    for age in (10, 100, 400):
        make_recording(campaign=sales, start_time=NOW - timedelta(days=age), original_size=1000, state="cleared")
    with time_machine.travel(NOW, tick=False):
        data = set_policy("SALES", "--keep-local-days", "1", "--retain-days", "90", "--dry-run")
    assert data["saved"] is False and data["needs_approval"] is True
    assert data["impact"]["newly_eligible_now"] == 2 and data["impact"]["bytes_now"] == 2000
    assert not RetentionPolicy.objects.filter(campaign=sales).exists() and not PolicyProposal.objects.exists()


def test_set_policy_lengthening_needs_no_approver(sales: Campaign) -> None:
    make_policy(campaign=sales, keep_local_days=1, retain_days=400)
    data = set_policy("SALES", "--keep-local-days", "1", "--retain-days", "500", "--reason", "longer")
    assert data["saved"] is True and data["needs_approval"] is False
    assert RetentionPolicy.objects.get(campaign=sales).retain_days == 500
