"""Views of the compliance desk outside the model admins: playback, VICIdial's recording links, the dashboard.

Playback and links serve only what the catalog names: a recording's own object key (in the bucket or the
archive folder) or its own local path (through spool.resolve, which refuses anything outside the spool
folders). vicirec streams the bytes itself, so the AccessEvent is written when the audio starts to leave
(its first chunk), not when a page or a URL is made, and a request that only asks for headers writes none.
Audio is served only to requests from the desk's own pages (same_origin): a page of another site that
points an <audio>, <img> or link at these URLs gets nothing and writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import PurePosixPath
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import admin
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
    StreamingHttpResponse,
)
from django.urls import reverse

from recordings.export import find_copy, log_access
from recordings.lib.storage import StorageError
from recordings.models import AccessEvent, Recording
from recordings.ops.dashboard import dashboard_data
from vicirec import clock
from vicirec.actors import Actor

PLAY_PERMISSION = "recordings.play_recording"

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


def serve_recording(request: HttpRequest, recording: Recording, *, action: str) -> HttpResponse:
    """Stream the recording's copy; the access is logged as its first bytes leave. Caller checks permission."""
    try:
        copy = find_copy(recording)
    except StorageError as exc:
        return HttpResponse(f"The archive could not be reached: {exc.message}", status=503, content_type="text/plain")
    if copy is None:
        raise Http404(f"No copy of recording {recording.pk} can be reached from here (state: {recording.state}).")
    who = Actor.from_request(request)

    def record() -> None:
        log_access([recording.pk], action=action, who=who, detail=f"served from the {copy.source}")

    body = iter(()) if request.method == "HEAD" else _logged(copy.chunks(), record)
    response = StreamingHttpResponse(body, content_type=copy.content_type)
    disposition = "attachment" if action == AccessEvent.Action.DOWNLOAD else "inline"
    response["Content-Disposition"] = f'{disposition}; filename="{recording.pk}_{copy.name}"'
    if copy.size:
        response["Content-Length"] = str(copy.size)
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
    if not same_origin(request):
        # A link followed from VICIdial's screens (another site) opens the recording's page; playing it
        # there is a request of the desk's own, and is recorded then.
        return HttpResponseRedirect(reverse("admin:recordings_recording_change", args=[recording.pk]))
    return serve_recording(request, recording, action=AccessEvent.Action.LINK)


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
