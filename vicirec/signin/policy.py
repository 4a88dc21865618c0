"""Who must sign in with a second factor."""

from __future__ import annotations

from typing import Any

from django.conf import settings


def two_factor_required(user: Any) -> bool:
    """Superusers and members of VICIREC_2FA_GROUPS ("Legal approver"), unless the demo switch is on."""
    if getattr(settings, "VICIREC_DEMO_NO_2FA", False) or not user.is_authenticated:
        return False
    return user.is_superuser or user.groups.filter(name__in=settings.VICIREC_2FA_GROUPS).exists()


def is_verified(user: Any) -> bool:
    """True when this session was opened with an authenticator code (django-otp's OTPMiddleware)."""
    check = getattr(user, "is_verified", None)
    return bool(check and check())
