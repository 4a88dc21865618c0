"""Views of the compliance desk outside the model admins: playback, VICIdial's recording links, the dashboard.

Playback and links serve only what the catalog names: a recording's own object key (in the bucket or the
archive folder) or its own local path (through spool.resolve, which refuses anything outside the spool
folders). vicirec streams the bytes itself, so the AccessEvent is written when the audio starts to leave
(its first chunk), not when a page or a URL is made, and a request that only asks for headers writes none.
Audio is served only to requests from the desk's own pages (same_origin): a page of another site that
points an <audio>, <img> or link at these URLs gets nothing and writes nothing.

Playback answers HTTP Range requests (206 with Content-Range and Content-Length, read as a ranged GET from
the bucket or a seek in the file), so the player knows the duration and can seek. One listening session
writes one AccessEvent: the recording page gives its player a signed ``?listen=`` token (user, recording,
a random nonce; valid for a session's length), the first request carrying it writes the event (with the
nonce in its detail) and the player's later Range requests with the same token write none. A request
without a valid token (a download, a VICIdial link, an address typed) is a session of its own and writes
its own event; reloading the page starts a new session.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import admin
from django.contrib.auth.decorators import login_required
from django.core import signing
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
    StreamingHttpResponse,
)
from django.shortcuts import render
from django.urls import reverse

from recordings.export import find_copy, log_access
from recordings.lib.ranges import Unsatisfiable, parse_range
from recordings.lib.storage import StorageError
from recordings.models import AccessEvent, Recording
from recordings.ops.dashboard import dashboard_data
from vicirec import clock
from vicirec.actors import Actor

PLAY_PERMISSION = "recordings.play_recording"
LISTEN_SALT = "vicirec.playback.listen"

# --- playback ------------------------------------------------------------------------------------


def same_origin(request: HttpRequest) -> bool:
    """True when the request comes from the desk's own pages (or the address bar), never from another site.

    Browsers say where a request comes from in Sec-Fetch-Site ("same-origin", or "none" for an address
    typed or bookmarked); older ones send Origin or Referer, which must name this host. A request with none
    of them is refused too: a page of another site can strip Referer, but not add Sec-Fetch-Site.
    """
    site = request.META.get("HTTP_SEC_FETCH_SITE")
    if site:
        return site in {"same-origin", "none"}
    source = request.META.get("HTTP_ORIGIN") or request.META.get("HTTP_REFERER")
    if not source:
        return False
    here = urlsplit(request.build_absolute_uri("/"))
    there = urlsplit(source)
    return (there.scheme, there.netloc) == (here.scheme, here.netloc)


def _logged(chunks: Iterator[bytes], on_first: Callable[[], object]) -> Iterator[bytes]:
    """The chunks, with on_first() called once just before the first one leaves."""
    first = True
    for chunk in chunks:
        if first:
            on_first()
            first = False
        yield chunk


def listen_token(user: Any, recording_id: int) -> str:
    """A new listening session for one view of a recording's page: signed, naming the user and recording."""
    nonce = secrets.token_hex(8)
    return signing.TimestampSigner(salt=LISTEN_SALT).sign(f"{user.pk}.{recording_id}.{nonce}")


def listening_session(request: HttpRequest, recording: Recording) -> str:
    """The session nonce of the player's ``?listen=`` token, or "" when there is none valid for this user,
    this recording and the last SESSION_COOKIE_AGE seconds (then the request is a session of its own)."""
    token = request.GET.get("listen", "")
    if not token:
        return ""
    try:
        value = signing.TimestampSigner(salt=LISTEN_SALT).unsign(token, max_age=settings.SESSION_COOKIE_AGE)
    except signing.BadSignature:
        return ""
    user_id, recording_id, nonce = (value.split(".") + ["", "", ""])[:3]
    if user_id != str(request.user.pk) or recording_id != str(recording.pk):
        return ""
    return nonce


def log_listening(recording: Recording, *, action: str, who: Actor, detail: str, session: str) -> None:
    """One AccessEvent per listening session: the first request of a session writes it, later ones (the
    player's Range requests to seek) find it and write nothing. The recording's row is locked while
    looking, so two requests of one session arriving together still write one event."""
    if not session:
        log_access([recording.pk], action=action, who=who, detail=detail)
        return
    marker = f"listening session {session}"
    with transaction.atomic():
        list(Recording.objects.select_for_update().filter(pk=recording.pk).values_list("pk", flat=True))
        seen = AccessEvent.objects.filter(recording_id=recording.pk, action=action, detail__endswith=marker)
        if not seen.exists():
            log_access([recording.pk], action=action, who=who, detail=f"{detail}; {marker}")


def _not_satisfiable(exc: Unsatisfiable) -> HttpResponse:
    response = HttpResponse(status=416)
    response["Content-Range"] = exc.content_range
    response["Accept-Ranges"] = "bytes"
    return response


def serve_recording(request: HttpRequest, recording: Recording, *, action: str) -> HttpResponse:
    """Stream the recording's copy, or the byte range asked for (206); the access is logged as its first
    bytes leave, once per listening session. Caller checks permission."""
    try:
        copy = find_copy(recording)
    except StorageError as exc:
        return HttpResponse(f"The archive could not be reached: {exc.message}", status=503, content_type="text/plain")
    if copy is None:
        raise Http404(f"No copy of recording {recording.pk} can be reached from here (state: {recording.state}).")
    size = copy.byte_size()
    try:
        part = parse_range(request.headers.get("Range"), size)
    except Unsatisfiable as exc:
        return _not_satisfiable(exc)
    who = Actor.from_request(request)
    session = listening_session(request, recording)

    def record() -> None:
        log_listening(recording, action=action, who=who, detail=f"served from the {copy.source}", session=session)

    start, end = (part.start, part.end) if part else (0, None)
    body = iter(()) if request.method == "HEAD" else _logged(copy.chunks(start=start, end=end), record)
    response = StreamingHttpResponse(body, content_type=copy.content_type, status=206 if part else 200)
    disposition = "attachment" if action == AccessEvent.Action.DOWNLOAD else "inline"
    response["Content-Disposition"] = f'{disposition}; filename="{recording.pk}_{copy.name}"'
    response["Accept-Ranges"] = "bytes"
    if part:
        response["Content-Range"] = part.content_range
        response["Content-Length"] = str(part.length)
    elif size is not None:
        response["Content-Length"] = str(size)
    response["Cache-Control"] = "private, no-store"
    return response


def recording_or_404(object_id: str) -> Recording:
    """The recording with this id; 404 for an id that is absent or not a number at all."""
    try:
        return Recording.objects.get(pk=int(object_id))
    except (ValueError, ValidationError, Recording.DoesNotExist):
        raise Http404("No such recording.")


def play(request: HttpRequest, object_id: str) -> HttpResponse:
    """/admin/recordings/recording/<id>/play/ (``?download=1`` to download); needs recordings.play_recording
    and a request from the desk's own pages (same_origin)."""
    if not request.user.has_perm(PLAY_PERMISSION):
        raise PermissionDenied("Playing recordings needs the 'Can play and download recordings' permission.")
    recording = recording_or_404(object_id)
    if not same_origin(request):
        raise PermissionDenied("Recordings are played from vicirec's own pages only.")
    action = AccessEvent.Action.DOWNLOAD if request.GET.get("download") else AccessEvent.Action.PLAY
    return serve_recording(request, recording, action=action)


# --- VICIdial's links ------------------------------------------------------------------------------

_SUFFIXES = ("-all", "-in", "-out")


def link_candidates(path: str) -> list[str]:
    """Catalog filenames a VICIdial recording URL path may stand for (MP3/NAME-all.mp3 → NAME-all, NAME)."""
    name = PurePosixPath(path).name
    stem = name.rsplit(".", 1)[0] if "." in name else name
    names = [stem]
    for suffix in _SUFFIXES:
        if stem.endswith(suffix) and len(stem) > len(suffix):
            names.append(stem[: -len(suffix)])
    return [n for n in names if n]


@login_required(login_url="admin:login")
def vicidial_link(request: HttpRequest, path: str) -> HttpResponse:
    """/RECORDINGS/<path>: the URL VICIdial's screens show (recording_log.location), served from the catalog.

    The path only picks a catalog entry by filename (an indexed lookup); the bytes served are that
    recording's own copy, so no file outside the catalog can be reached through this route.
    """
    if not request.user.has_perm(PLAY_PERMISSION):
        raise PermissionDenied("Playing recordings needs the 'Can play and download recordings' permission.")
    matches = list(Recording.objects.filter(filename__in=link_candidates(path)).order_by("-pk")[:20])
    if not matches:
        raise Http404("No recording in the catalog has this file name.")
    exact = [r for r in matches if r.vicidial_location.endswith(f"/RECORDINGS/{path}")]
    recording = (exact or matches)[0]
    if recording.state == Recording.State.EXPIRED or hasattr(recording, "certificate"):
        return deleted_page(request, recording)
    if not same_origin(request):
        # A link followed from VICIdial's screens (another site) opens the recording's page; playing it
        # there is a request of the desk's own, and is recorded then.
        return HttpResponseRedirect(reverse("admin:recordings_recording_change", args=[recording.pk]))
    return serve_recording(request, recording, action=AccessEvent.Action.LINK)


CERTIFICATE_PERMISSION = "retention.view_deletioncertificate"


def deleted_page(request: HttpRequest, recording: Recording) -> HttpResponse:
    """410 Gone for a link to a recording deleted under retention: its deletion certificate for those who
    may see certificates, the date alone for the others. No audio exists, so nothing is served or logged."""
    certificate = getattr(recording, "certificate", None)
    context = {
        "page_title": "Recording deleted under retention",
        "recording": recording,
        "deleted_at": certificate.deleted_at if certificate else recording.expired_at,
        "certificate": certificate if request.user.has_perm(CERTIFICATE_PERMISSION) else None,
    }
    return render(request, "vicirec/deleted.html", context, status=410)


# --- the dashboard ---------------------------------------------------------------------------------


def dashboard(request: HttpRequest) -> HttpResponse:
    """The admin index with the dashboard above the app list (cached: the figures are table-wide)."""
    seconds = int(getattr(settings, "VICIREC_DASHBOARD_CACHE_SECONDS", 300))
    key = "vicirec:dashboard"
    data = None if request.GET.get("refresh") else cache.get(key)
    if data is None:
        data = dashboard_data(clock.now())
        if seconds:
            cache.set(key, data, seconds)
    return admin.site.index(request, extra_context={"dashboard": data, "cache_seconds": seconds})
