"""Playback answers Range requests (206, Content-Range, Content-Length) from the archive folder, the bucket
and the spool, streaming only the bytes asked for; one listening session writes one access event."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from recordings.models import AccessEvent, Recording
from recordings.views import listen_token
from tests.admin.conftest import DESK, archive_and_clear, recorded_call

pytestmark = pytest.mark.django_db


def login(make_user: Callable[..., Any], role: str = "Legal", username: str | None = None) -> Client:
    client = Client(headers=DESK)
    client.force_login(make_user(role, username))
    return client


def play_url(recording: Recording) -> str:
    return reverse("admin:recordings_recording_play", args=[recording.pk])


def archived(spool: Path) -> Recording:
    recording = recorded_call(spool, seconds=2)
    archive_and_clear()
    recording.refresh_from_db()
    assert recording.state == Recording.State.CLEARED
    return recording


def stored_bytes(recording: Recording, root: Path) -> bytes:
    return (root / recording.object_key).read_bytes()


def player_src(client: Client, recording: Recording) -> str:
    page = client.get(reverse("admin:recordings_recording_change", args=[recording.pk])).content.decode()
    src = re.search(r'<audio id="player"[^>]* src="([^"]+)"', page)
    assert src, "the recording page has a player"
    return src.group(1).replace("&amp;", "&")


def test_a_range_request_gets_206_with_exactly_those_bytes(
    make_user: Callable[..., Any], filesystem_archive: Path, settings: Any
) -> None:
    recording = archived(filesystem_archive)
    data = stored_bytes(recording, settings.STORAGES["archive"]["OPTIONS"]["location"])
    client = login(make_user)

    response = client.get(play_url(recording), HTTP_RANGE="bytes=100-1099")

    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes 100-1099/{len(data)}"
    assert response["Content-Length"] == "1000" and response["Accept-Ranges"] == "bytes"
    assert b"".join(response.streaming_content) == data[100:1100]


def test_the_whole_file_has_its_length_and_offers_ranges(
    make_user: Callable[..., Any], filesystem_archive: Path, settings: Any
) -> None:
    recording = archived(filesystem_archive)
    data = stored_bytes(recording, settings.STORAGES["archive"]["OPTIONS"]["location"])

    response = login(make_user).get(play_url(recording))

    assert response.status_code == 200 and response["Accept-Ranges"] == "bytes"
    assert response["Content-Length"] == str(len(data)) and "Content-Range" not in response
    assert b"".join(response.streaming_content) == data


def test_a_range_past_the_end_is_416_and_serves_nothing(
    make_user: Callable[..., Any], filesystem_archive: Path, settings: Any
) -> None:
    recording = archived(filesystem_archive)
    size = recording.stored_size

    response = login(make_user).get(play_url(recording), HTTP_RANGE=f"bytes={size}-")

    assert response.status_code == 416 and response["Content-Range"] == f"bytes */{size}"
    assert not AccessEvent.objects.filter(recording=recording).exists()


def test_the_bucket_copy_is_read_with_a_ranged_get(
    make_user: Callable[..., Any], archive_s3_settings: str, spool_dir: Path, settings: Any, tmp_path: Path
) -> None:
    settings.VICIREC_WORK_DIR = tmp_path / "work"
    recording = archived(spool_dir)
    whole = b"".join(login(make_user, username="first").get(play_url(recording)).streaming_content)

    response = login(make_user, username="second").get(play_url(recording), HTTP_RANGE="bytes=-64")

    assert response.status_code == 206 and response["Content-Length"] == "64"
    assert response["Content-Range"] == f"bytes {len(whole) - 64}-{len(whole) - 1}/{len(whole)}"
    assert b"".join(response.streaming_content) == whole[-64:]


def test_the_spool_file_is_served_in_ranges_too(make_user: Callable[..., Any], filesystem_archive: Path) -> None:
    recording = recorded_call(filesystem_archive, age_days=0)  # inside its local window: not archived
    data = (filesystem_archive / f"{recording.filename}-all.wav").read_bytes()

    response = login(make_user).get(play_url(recording), HTTP_RANGE="bytes=44-")

    assert response.status_code == 206 and response["Content-Length"] == str(len(data) - 44)
    assert b"".join(response.streaming_content) == data[44:]


def test_one_listening_session_writes_one_access_event(make_user: Callable[..., Any], filesystem_archive: Path) -> None:
    recording = archived(filesystem_archive)
    client = login(make_user)
    src = player_src(client, recording)
    assert "listen=" in src

    middle = f"bytes={recording.stored_size // 2}-"  # inside the stored copy, whatever the codec's size
    for header in ("bytes=0-", middle, "bytes=100-199", None):  # play, seek, seek, replay
        extra = {"HTTP_RANGE": header} if header else {}
        b"".join(client.get(src, **extra).streaming_content)
    assert AccessEvent.objects.filter(recording=recording, action="play").count() == 1

    b"".join(client.get(player_src(client, recording), HTTP_RANGE="bytes=0-").streaming_content)  # page reloaded
    assert AccessEvent.objects.filter(recording=recording, action="play").count() == 2


def test_requests_without_a_valid_session_token_each_write_an_event(
    make_user: Callable[..., Any], filesystem_archive: Path
) -> None:
    recording = archived(filesystem_archive)
    legal = login(make_user)
    others = make_user("Legal approver")
    foreign = f"{play_url(recording)}?listen={listen_token(others, recording.pk)}"  # another user's token

    for url in (play_url(recording), play_url(recording), foreign, f"{play_url(recording)}?listen=forged"):
        b"".join(legal.get(url, HTTP_RANGE="bytes=0-9").streaming_content)
    assert AccessEvent.objects.filter(recording=recording, username="legal").count() == 4


def test_head_and_unread_responses_write_no_event(make_user: Callable[..., Any], filesystem_archive: Path) -> None:
    recording = archived(filesystem_archive)
    client = login(make_user)

    head = client.head(play_url(recording), HTTP_RANGE="bytes=0-9")
    client.get(play_url(recording), HTTP_RANGE="bytes=0-9")  # never read

    assert head.status_code == 206 and head["Content-Length"] == "10"
    assert not AccessEvent.objects.filter(recording=recording).exists()
