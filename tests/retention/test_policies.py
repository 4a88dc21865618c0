"""Policies: legal floors by record class, overrides kept in history, and a preview before shortening."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, transaction

from recordings.models import Campaign
from retention.models import RetentionPolicy
from tests.factories import make_policy, make_recording, policy_approver

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.fixture
def collect() -> Campaign:
    return Campaign.objects.create(kind="outbound", campaign_id="COLLECT", name="Collections")


def test_a_policy_below_its_class_floor_is_refused_without_an_override_reason(collect: Campaign) -> None:
    policy = RetentionPolicy(campaign=collect, keep_local_days=3, retain_days=365, record_class="debt_collection")
    with pytest.raises(ValidationError, match="below the 3-year minimum"):
        policy.save()
    policy.override_reason = "counsel: Reg F clock starts at last activity, tracked in the CRM"
    policy.save(approved_by=policy_approver(), reason="counsel's reading of Reg F")
    assert policy.history.latest().override_reason.startswith("counsel")


def test_set_policy_saves_with_history_and_refuses_below_floor(collect: Campaign) -> None:
    call_command(
        "set_policy",
        "COLLECT",
        "--keep-local-days",
        "3",
        "--retain-days",
        "1200",
        "--record-class",
        "debt_collection",
        "--reason",
        "Reg F",
        "--approved-by",
        policy_approver().username,
        stdout=StringIO(),
    )
    policy = RetentionPolicy.objects.get(campaign=collect)
    assert (policy.retain_days, policy.record_class) == (1200, "debt_collection")
    assert "Reg F" in policy.history.latest().history_change_reason
    with pytest.raises(CommandError, match="minimum"):
        call_command("set_policy", "COLLECT", "--keep-local-days", "3", "--retain-days", "90", stdout=StringIO())
    assert RetentionPolicy.objects.get(campaign=collect).retain_days == 1200


def test_set_policy_dry_run_shows_what_a_shorter_policy_would_make_deletable(collect: Campaign) -> None:
    make_policy(campaign=collect, keep_local_days=3, retain_days=730)
    for age in (100, 400, 500, 800):
        make_recording(campaign=collect, start_time=NOW - timedelta(days=age), original_size=1000, state="cleared")
    out = StringIO()
    with time_machine.travel(NOW, tick=False):
        call_command(
            "set_policy", "COLLECT", "--keep-local-days", "3", "--retain-days", "365", "--dry-run", "--json", stdout=out
        )
    data = json.loads(out.getvalue())
    assert data["saved"] is False
    assert data["impact"]["newly_eligible_now"] == 2 and data["impact"]["bytes_now"] == 2000
    assert RetentionPolicy.objects.get(campaign=collect).retain_days == 730


def test_each_recording_can_say_when_it_expires_and_why(collect: Campaign) -> None:
    make_policy(campaign=collect, keep_local_days=3, retain_days=1100, record_class="debt_collection")
    recording = make_recording(campaign=collect, start_time=datetime(2026, 1, 5, tzinfo=UTC))
    expiry = recording.expiry()
    assert expiry.expires_at == datetime(2026, 1, 5, tzinfo=UTC) + timedelta(days=1100)
    text = expiry.explain()
    assert "Debt-collection" in text and "12 CFR 1006.100(b)" in text and "2026-01-05" in text


def test_exactly_one_default_policy() -> None:
    first = RetentionPolicy.objects.default()
    assert RetentionPolicy.objects.default() == first
    with pytest.raises(IntegrityError), transaction.atomic():
        make_policy(campaign=None, keep_local_days=1, retain_days=10)
