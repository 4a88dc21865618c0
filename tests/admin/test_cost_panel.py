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
