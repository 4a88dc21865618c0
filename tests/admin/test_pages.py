"""Error pages in the desk's look (403, 404, 500) and the page a VICIdial link to a recording deleted under
retention opens: its deletion certificate for those who may see certificates, the date for the others."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from recordings.models import AccessEvent, Campaign, Recording
from recordings.pipeline.retention import enforce_retention
from tests.admin.conftest import DESK, archive_and_clear, recorded_call
from tests.factories import make_policy
from vicirec import clock

pytestmark = pytest.mark.django_db


def client_for(user: Any, **headers: str) -> Client:
    client = Client(headers={**DESK, **headers})
    client.force_login(user)
    return client


def styled(page: str) -> bool:
    return "/static/admin/css/base.css" in page and "vicirec — call recording archive" in page


@pytest.fixture
def deleted(filesystem_archive: Path) -> Recording:
    """A recording archived, then deleted by a real retention run with its certificate."""
    short = Campaign.objects.create(kind="outbound", campaign_id="SHORT", name="Short")
    make_policy(campaign=short, keep_local_days=0, retain_days=30)
    recording = recorded_call(filesystem_archive, age_days=40, campaign=short)
    archive_and_clear()
    assert enforce_retention(now=clock.now(), dry_run=False, confirm=True).deleted == 1
    recording.refresh_from_db()
    assert recording.state == Recording.State.EXPIRED
    return recording


def test_403_is_a_styled_page_with_the_reason(make_user: Callable[..., Any], filesystem_archive: Path) -> None:
    recording = recorded_call(filesystem_archive)
    response = client_for(make_user("Ops")).get(reverse("admin:recordings_recording_play", args=[recording.pk]))
    page = response.content.decode()
    assert response.status_code == 403 and styled(page)
    assert "Not allowed (403)" in page and "Can play and download recordings" in page
    assert "Signed in as <strong>ops</strong>" in page


def test_404_is_a_styled_page_that_points_to_the_search(make_user: Callable[..., Any]) -> None:
    response = client_for(make_user("Legal")).get("/admin/recordings/recording/999999/play/")
    page = response.content.decode()
    assert response.status_code == 404 and styled(page)
    assert "Not found (404)" in page and "No such recording." in page
    assert reverse("admin:recordings_recording_changelist") in page


def test_500_is_a_styled_page_without_details(make_user: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret internals")

    monkeypatch.setattr("recordings.views.dashboard_data", broken)
    client = client_for(make_user("Legal"))
    client.raise_request_exception = False
    response = client.get("/admin/?refresh=1")
    page = response.content.decode()
    assert response.status_code == 500 and styled(page)
    assert "Server error (500)" in page and "secret internals" not in page


def test_a_link_to_a_deleted_recording_shows_its_certificate(make_user: Callable[..., Any], deleted: Recording) -> None:
    certificate = deleted.certificate
    legal = client_for(make_user("Legal"), **{"Sec-Fetch-Site": "cross-site"})  # followed from VICIdial's screen

    response = legal.get(f"/RECORDINGS/MP3/{deleted.filename}-all.mp3")

    page = response.content.decode()
    assert response.status_code == 410 and styled(page)
    assert "deleted under retention on" in page and certificate.deleted_at.strftime("%Y-%m-%d") in page
    assert reverse("admin:retention_deletioncertificate_change", args=[certificate.pk]) in page
    assert certificate.run in page
    assert not AccessEvent.objects.filter(recording=deleted).exists()


def test_without_the_certificate_permission_the_page_says_when_only(
    make_user: Callable[..., Any], deleted: Recording
) -> None:
    user = make_user("Legal")
    user.groups.first().permissions.remove(Permission.objects.get(codename="view_deletioncertificate"))
    user = type(user).objects.get(pk=user.pk)

    response = client_for(user).get(f"/RECORDINGS/{deleted.filename}-all.wav")

    page = response.content.decode()
    assert response.status_code == 410 and styled(page)
    assert f"deleted under retention on {deleted.certificate.deleted_at:%Y-%m-%d}" in page
    assert "deletioncertificate" not in page and deleted.certificate.run not in page
