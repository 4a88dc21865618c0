"""The cost forecast: per policy, what is stored and what a month of calls costs over its retention, on R2
and S3, with playback from the access log priced as requests, retrieval and egress."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from io import StringIO
from typing import Any

import pytest
import time_machine
from django.core.management import call_command

from recordings.lib import pricing
from recordings.models import AccessEvent, Campaign
from retention.forecast import cost_forecast
from retention.models import RetentionPolicy
from tests.factories import make_policy, make_recording, policy_approver

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
MB = 1_000_000


@pytest.fixture
def world() -> dict[str, Any]:
    collect = Campaign.objects.create(kind="outbound", campaign_id="COLLECT", name="Collections")
    make_policy(
        campaign=collect,
        keep_local_days=3,
        retain_days=1200,
        record_class="debt_collection",
        storage_class="GLACIER_IR",
    )
    RetentionPolicy.objects.default()  # STANDARD, the default retention
    recent = [
        make_recording(campaign=collect, start_time=NOW - timedelta(days=d), state="cleared", stored_size=MB)
        for d in range(1, 11)
    ]
    make_recording(campaign=collect, start_time=NOW - timedelta(days=200), state="cleared", stored_size=MB)
    for n in range(20):
        AccessEvent.objects.create(recording=recent[n % 10], action="play", at=NOW - timedelta(days=2), username="qa")
    AccessEvent.objects.create(recording=recent[0], action="export", at=NOW - timedelta(days=2), username="legal")
    return {"collect": collect}


def offer_row(data: dict[str, Any], policy: str, provider: str, storage_class: str) -> dict[str, Any]:
    row = next(r for r in data["policies"] if r["policy"].startswith(policy))
    return next(o for o in row["offers"] if (o["provider"], o["storage_class"]) == (provider, storage_class))


def test_each_policy_is_priced_on_every_class_with_its_playback(world: dict[str, Any]) -> None:
    data = cost_forecast(now=NOW)

    row = next(r for r in data["policies"] if r["policy"].startswith("policy for COLLECT"))
    assert row["stored"] == {"objects": 11, "bytes": 11 * MB}
    assert row["last_30_days"] == {"recordings": 10, "bytes": 10 * MB, "reads": 20, "read_bytes": 20 * MB}
    gib = 10 * MB / pricing.GIB
    s3 = offer_row(data, "policy for COLLECT", "s3", "STANDARD")["whole_retention"]
    assert s3["storage"] == round(gib * 0.023 * 1197 / 30, 4)
    assert s3["egress"] == round(2 * gib * 0.09, 4) and s3["retrieval"] == 0
    glacier = offer_row(data, "policy for COLLECT", "s3", "GLACIER_IR")
    assert glacier["chosen"] and glacier["whole_retention"]["retrieval"] == round(2 * gib * 0.03, 4)
    assert glacier["whole_retention"]["storage"] == round(gib * 0.004 * 1197 / 30, 4)
    r2 = offer_row(data, "policy for COLLECT", "r2", "STANDARD")["whole_retention"]
    assert r2["egress"] == 0 and r2["storage"] == round(gib * 0.015 * 1197 / 30, 4)
    assert offer_row(data, "policy for COLLECT", "s3", "STANDARD")["monthly_storage_today"] == round(
        11 * MB / pricing.GIB * 0.023, 4
    )


def test_the_totals_compare_r2_and_s3_with_each_policy_in_its_own_class(world: dict[str, Any]) -> None:
    data = cost_forecast(now=NOW)

    # GLACIER_IR is not offered by R2: that policy is priced in R2 Standard there.
    r2 = offer_row(data, "policy for COLLECT", "r2", "STANDARD")["whole_retention"]["total"]
    s3 = offer_row(data, "policy for COLLECT", "s3", "GLACIER_IR")["whole_retention"]["total"]
    assert data["whole_retention_total"] == {"r2": round(r2, 4), "s3": round(s3, 4)}
    assert data["cheaper"] == ("r2" if r2 < s3 else "s3") and data["saving"] == round(abs(r2 - s3), 4)


def test_heavy_playback_makes_r2_the_cheaper_provider(world: dict[str, Any]) -> None:
    """Egress and retrieval grow with playback: the claim "R2 is cheaper for operations that review
    recordings often" as a number."""
    before = cost_forecast(now=NOW)
    recording = world["collect"].recordings.first()
    AccessEvent.objects.bulk_create(
        AccessEvent(recording=recording, action="play", at=NOW - timedelta(days=1), username="qa") for _ in range(500)
    )

    after = cost_forecast(now=NOW)

    assert after["cheaper"] == "r2"
    assert after["saving"] > before["saving"] or before["cheaper"] == "s3"


def test_a_class_that_costs_more_is_flagged(world: dict[str, Any]) -> None:
    default = RetentionPolicy.objects.default()
    default.retain_days, default.keep_local_days = 10, 3
    default.save(approved_by=policy_approver(), reason="a short default to price")
    data = cost_forecast(now=NOW)

    assert "bills at least 90" in offer_row(data, "policy for all other", "s3", "GLACIER_IR")["refused"]
    assert offer_row(data, "policy for all other", "s3", "STANDARD")["refused"] == ""


def test_cost_forecast_command_prints_json_and_a_table(world: dict[str, Any]) -> None:
    out, table = StringIO(), StringIO()
    with time_machine.travel(NOW, tick=False):
        call_command("cost_forecast", "--json", stdout=out)
        call_command("cost_forecast", stdout=table)

    assert json.loads(out.getvalue())["whole_retention_total"] == cost_forecast(now=NOW)["whole_retention_total"]
    text = table.getvalue()
    assert "* AWS S3 Glacier Instant Retrieval" in text and "Cloudflare R2 Infrequent Access" in text
    assert "per month of calls over their retention" in text
