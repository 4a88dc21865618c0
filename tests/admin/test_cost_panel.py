"""The dashboard's cost forecast panel: every policy, priced on R2 and S3, its own class in bold."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from recordings.models import Campaign
from tests.factories import make_policy, make_recording

pytestmark = pytest.mark.django_db


def test_the_dashboard_shows_the_cost_forecast_per_policy(
    make_user: Callable[..., Any], filesystem_archive: Path
) -> None:
    campaign = Campaign.objects.create(kind="outbound", campaign_id="TCPA", name="Consent")
    make_policy(campaign=campaign, keep_local_days=3, retain_days=1500, storage_class="STANDARD_IA")
    make_recording(campaign=campaign, state="cleared", stored_size=2_000_000, object_key="TCPA/k.mp3")
    cache.clear()
    client = Client()
    client.force_login(make_user("Auditor"))

    page = client.get(reverse("admin:index")).content.decode()

    assert 'id="dash-costs"' in page and "Cost forecast per policy" in page
    assert "policy for TCPA (outbound campaign) (STANDARD_IA, 1497 days in the bucket)" in page
    assert '<tr style="font-weight:bold"><td></td><td>AWS S3 Standard-IA</td>' in page
    assert "Cloudflare R2 Infrequent Access" in page and "on R2 and $" in page


def test_the_cost_panel_prices_the_snapshots_volumes_at_the_prices_in_force(settings: Any) -> None:
    """The statistics snapshot counts what each policy stores and took in; the dashboard prices those
    counts when it is shown (a price setting changed since counts at once) and sums no recordings itself."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from recordings.models import PipelineSnapshot
    from recordings.ops.dashboard import dashboard_data
    from recordings.ops.stats import take_snapshot
    from retention.forecast import cost_forecast
    from vicirec import clock

    now = clock.now()
    campaign = Campaign.objects.create(kind="outbound", campaign_id="TCPA", name="Consent")
    make_policy(campaign=campaign, keep_local_days=3, retain_days=1500, storage_class="STANDARD_IA")
    for size in (2_000_000, 3_000_000):
        make_recording(campaign=campaign, state="cleared", stored_size=size, object_key=f"TCPA/{size}.mp3")
    make_recording(state="cleared", stored_size=700_000, object_key="other/k.mp3")
    live = cost_forecast(now=now)
    take_snapshot(now=now)
    counted = PipelineSnapshot.objects.get().inventory["policy_volumes"]
    assert cost_forecast(now=now, counted=counted) == live

    make_recording(campaign=campaign, state="cleared", stored_size=90_000_000, object_key="TCPA/late.mp3")
    with CaptureQueriesContext(connection) as queries:
        shown = dashboard_data(now)["costs"]
    assert shown == live  # the snapshot's volumes, not the recording cataloged since
    sums = [q["sql"] for q in queries.captured_queries if "billable" in q["sql"] or "AVG(" in q["sql"].upper()]
    assert not sums  # no policy's recordings summed or averaged
    tcpa = next(p for p in shown["policies"] if "TCPA" in p["policy"])
    assert tcpa["stored"]["bytes"] == 5_000_000

    settings.VICIREC_PRICES = {"VICIREC_PRICE_S3_STANDARD_IA_GB_MONTH": 1.0}
    repriced = dashboard_data(now)["costs"]
    tcpa_now = next(p for p in repriced["policies"] if "TCPA" in p["policy"])
    ia = [o for o in tcpa_now["offers"] if o["provider"] == "s3" and o["storage_class"] == "STANDARD_IA"]
    before = [o for o in tcpa["offers"] if o["provider"] == "s3" and o["storage_class"] == "STANDARD_IA"]
    assert ia[0]["monthly_storage_today"] > before[0]["monthly_storage_today"]


def test_the_snapshot_takes_each_policys_stored_volume_from_its_inventory_blocks() -> None:
    """The next day's snapshot does not sum every policy's recordings again: what a policy stores comes from
    the inventory blocks, recounted only where a custody event changed something. A change made around the
    custody log (raw SQL) is therefore not seen until a full recount, which is what proves the source."""
    from datetime import timedelta

    from django.db import connection

    from recordings.models import PipelineSnapshot
    from recordings.ops.stats import take_snapshot
    from vicirec import clock

    now = clock.now()
    campaign = Campaign.objects.create(kind="outbound", campaign_id="TCPA", name="Consent")
    make_policy(campaign=campaign, keep_local_days=3, retain_days=1500)
    old = now - timedelta(days=400)  # outside the last 30 days' intake, which is counted live
    kept = [
        make_recording(
            recording_id=11 + i, campaign=campaign, start_time=old, state="cleared", stored_size=size,
            object_key=f"TCPA/{size}.mp3",
        )
        for i, size in enumerate((2_000_000, 3_000_000))
    ]  # fmt: skip
    make_recording(recording_id=500_000)  # the newest block, recounted every day, is another one
    take_snapshot(now=now)

    def tcpa(day: int) -> dict[str, Any]:
        volumes = PipelineSnapshot.objects.get(day=(now + timedelta(days=day)).date()).inventory["policy_volumes"]
        return volumes[f"campaign {campaign.pk}"]["stored"]

    assert tcpa(0) == {"objects": 2, "bytes": 5_000_000, "billable_bytes": 5_000_000}
    with connection.cursor() as cursor:
        cursor.execute("UPDATE recordings_recording SET stored_size = 9000000 WHERE recording_id = %s", [kept[0].pk])
    take_snapshot(now=now + timedelta(days=1))
    assert tcpa(1)["bytes"] == 5_000_000  # no custody event, no recount: the blocks, not a pass over the catalog
    take_snapshot(now=now + timedelta(days=2), full=True)
    assert tcpa(2)["bytes"] == 12_000_000
