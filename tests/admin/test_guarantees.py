"""Guarantees of the desk that no request can get around: ids that are not numbers are "not found" (never a
server error), audio is served only to the desk's own pages and recorded as it leaves, and evidence CSV
files cannot carry a spreadsheet formula."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from holds.actions import place_hold
from holds.models import Case
from recordings.export import csv_cell
from recordings.models import AccessEvent, Recording
from tests.admin.conftest import DESK, archive_and_clear, recorded_call
from tests.admin.test_desk import verify_zip
from vicirec.actors import Actor

pytestmark = pytest.mark.django_db


def signed_in(make_user: Callable[..., Any], role: str, **headers: str) -> Client:
    client = Client(headers=headers, raise_request_exception=False)
    client.force_login(make_user(role))
    return client


@pytest.mark.parametrize(
    "url",
    [
        "/admin/recordings/recording/abc/play/",
        "/admin/recordings/recording/1e3/play/?download=1",
        "/admin/recordings/recording/abc/hold/",
        "/admin/recordings/recording/abc/export/",
        "/admin/holds/case/abc/export/",
        "/admin/holds/legalhold/abc/export/",
        "/admin/recordings/recording/abc/history/",
        "/admin/recordings/recording/abc/history/1/",
        "/admin/holds/case/abc/history/",
        "/admin/recordings/recording/%20/play/",
    ],
)
@pytest.mark.parametrize("method", ["get", "post"])
def test_non_numeric_ids_are_not_found_not_server_errors(make_user: Callable[..., Any], url: str, method: str) -> None:
    client = signed_in(make_user, "Legal approver", **DESK)
    response = getattr(client, method)(url)
    assert response.status_code == 404, (url, response.status_code)


@pytest.mark.parametrize("url", ["/admin/recordings/recording/abc/change/", "/admin/holds/case/abc/change/"])
def test_the_admins_own_pages_answer_a_non_numeric_id_without_an_error(make_user: Callable[..., Any], url: str) -> None:
    response = signed_in(make_user, "Legal approver").get(url)
    assert response.status_code in {302, 404}  # Django's admin: "does not exist", back to the index


@pytest.fixture
def archived(filesystem_archive: Path) -> Recording:
    recording = recorded_call(filesystem_archive)
    archive_and_clear()
    recording.refresh_from_db()
    return recording


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Origin": "https://evil.example"},
        {"Referer": "https://evil.example/page.html"},
        {},  # nothing says where it comes from: a page of another site that strips Referer
    ],
)
def test_playback_from_another_site_is_refused_and_writes_nothing(
    make_user: Callable[..., Any], archived: Recording, headers: dict[str, str]
) -> None:
    client = signed_in(make_user, "Legal", **headers)
    url = reverse("admin:recordings_recording_play", args=[archived.pk])
    assert client.get(url).status_code == 403
    assert client.get(url + "?download=1").status_code == 403
    link = client.get(f"/RECORDINGS/MP3/{archived.filename}-all.mp3")
    assert link.status_code == 302  # to the recording's page on the desk, where playing it is recorded
    assert link["Location"] == reverse("admin:recordings_recording_change", args=[archived.pk])
    assert not AccessEvent.objects.exists()


@pytest.mark.parametrize(
    "headers",
    [{"Sec-Fetch-Site": "same-origin"}, {"Sec-Fetch-Site": "none"}, {"Referer": "http://testserver/admin/"}],
)
def test_playback_from_the_desk_is_recorded_when_the_audio_is_served(
    make_user: Callable[..., Any], archived: Recording, headers: dict[str, str]
) -> None:
    client = signed_in(make_user, "Legal", **headers)
    url = reverse("admin:recordings_recording_play", args=[archived.pk])
    assert client.head(url).status_code == 200  # headers only: no audio served, nothing recorded
    response = client.get(url)
    assert response.status_code == 200 and not AccessEvent.objects.exists()
    body = b"".join(response.streaming_content)
    assert len(body) == archived.stored_size
    (event,) = AccessEvent.objects.all()
    assert (event.action, event.recording_id, event.username) == ("play", archived.pk, "legal")


def test_csv_cells_that_a_spreadsheet_would_run_are_neutralised() -> None:
    assert [csv_cell(v) for v in ("=SUM(A1)", "+1", "-2", "@cmd", "plain", 12, None)] == [
        "'=SUM(A1)",
        "'+1",
        "'-2",
        "'@cmd",
        "plain",
        12,
        None,
    ]


def test_evidence_csv_files_neutralise_formulas_and_json_keeps_raw_values(
    make_user: Callable[..., Any], filesystem_archive: Path, tmp_path: Path
) -> None:
    recording = recorded_call(filesystem_archive, agent="=HYPERLINK(1)", phone_number="+13125550100")
    archive_and_clear()
    case = Case.objects.create(name="@case", phone_numbers=["+13125550100"])
    place_hold(reason="-injected", actor=Actor.command("=cmd|' /C calc'!A0"), case=case)
    client = signed_in(make_user, "Legal", **DESK)
    response = client.post(reverse("admin:recordings_recording_export", args=[recording.pk]))
    folder = verify_zip(b"".join(response.streaming_content), tmp_path / "package")
    for name in ("manifest.csv", "custody_log.csv"):
        with (folder / name).open(newline="") as handle:
            cells = [cell for row in csv.reader(handle) for cell in row]
        assert not [c for c in cells if c.startswith(("=", "+", "-", "@"))], name
    manifest_csv = (folder / "manifest.csv").read_text()
    assert "'=HYPERLINK(1)" in manifest_csv and "'+13125550100" in manifest_csv
    (entry,) = json.loads((folder / "manifest.json").read_text())["recordings"]
    assert entry["agent"] == "=HYPERLINK(1)" and entry["phone_number"] == "+13125550100"
