"""Views of the compliance desk outside the model admins: playback, VICIdial's recording links, the dashboard.

Playback and links serve only what the catalog names: a recording's own object key (through a short-lived
presigned URL, or from the archive folder) or its own local path (through spool.resolve, which refuses
anything outside the spool folders). Every response that hands out audio first writes an AccessEvent.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from django.conf import settings
from django.contrib import admin
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
    StreamingHttpResponse,
)

from recordings.export import find_copy, log_access
from recordings.lib.storage import StorageError
from recordings.models import AccessEvent, Recording
from recordings.ops.dashboard import dashboard_data
from vicirec import clock
from vicirec.actors import Actor

PLAY_PERMISSION = "recordings.play_recording"

# --- playback ------------------------------------------------------------------------------------


def serve_recording(request: HttpRequest, recording: Recording, *, action: str) -> HttpResponse:
    """Redirect to a presigned URL, or stream the file; log the access first. Caller checks permission."""
    try:
        copy = find_copy(recording)
    except StorageError as exc:
        return HttpResponse(f"The archive could not be reached: {exc.message}", status=503, content_type="text/plain")
    if copy is None:
        raise Http404(f"No copy of recording {recording.pk} can be reached from here (state: {recording.state}).")
    detail = f"from the {copy.source}"
    if copy.url:
        detail += f" through a presigned URL valid {settings.VICIREC_PRESIGN_SECONDS} s"
    log_access([recording.pk], action=action, who=Actor.from_request(request), detail=detail)
    if copy.url:
        response: HttpResponse = HttpResponseRedirect(copy.url)
    elif copy.path is None:  # the archive folder: streamed through the storage module
        response = StreamingHttpResponse(copy.chunks(), content_type=copy.content_type)
        disposition = "attachment" if action == AccessEvent.Action.DOWNLOAD else "inline"
        response["Content-Disposition"] = f'{disposition}; filename="{recording.pk}_{copy.name}"'
    else:
        response = FileResponse(
            copy.path.open("rb"),
            content_type=copy.content_type,
            as_attachment=action == AccessEvent.Action.DOWNLOAD,
            filename=f"{recording.pk}_{copy.name}",
        )
    response["Cache-Control"] = "private, no-store"
    return response


def play(request: HttpRequest, object_id: str) -> HttpResponse:
    """/admin/recordings/recording/<id>/play/ (``?download=1`` to download); needs recordings.play_recording."""
    if not request.user.has_perm(PLAY_PERMISSION):
        raise PermissionDenied("Playing recordings needs the 'Can play and download recordings' permission.")
    try:
        recording = Recording.objects.get(pk=int(object_id))
    except (ValueError, Recording.DoesNotExist):
        raise Http404("No such recording.")
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
    return serve_recording(request, (exact or matches)[0], action=AccessEvent.Action.LINK)


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
