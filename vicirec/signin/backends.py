"""The lock-out backend: django-axes' standalone backend, for sign-ins that come with a request."""

from __future__ import annotations

from typing import Any

from axes.backends import AxesStandaloneBackend
from django.conf import settings
from django.http import HttpRequest


class SigninBackend(AxesStandaloneBackend):
    """Refuses a locked-out account before the password is checked (django-axes).

    Every sign-in over the web passes its request (Django's sign-in form does). A call without one comes
    from code running inside vicirec (a shell, a test's ``client.login``), which no lock-out protects
    against; it is left to the next backend instead of failing.
    """

    def authenticate(self, request: HttpRequest | None, *args: Any, **kwargs: Any) -> None:
        if request is None:
            return None
        return super().authenticate(request, *args, **kwargs)


def client_ip(request: HttpRequest) -> str | None:
    """The address a sign-in came from: behind the TLS proxy (VICIREC_HTTPS), the one it appended to
    X-Forwarded-For (the last entry: earlier ones are whatever the client sent); else REMOTE_ADDR."""
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if getattr(settings, "VICIREC_HTTPS", False) and forwarded.strip():
        return forwarded.split(",")[-1].strip()
    return request.META.get("REMOTE_ADDR") or None
