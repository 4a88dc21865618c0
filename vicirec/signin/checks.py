"""Deploy check: the demo's switch that lifts two-factor sign-in never reaches production."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core import checks


@checks.register(checks.Tags.security, deploy=True)
def check_demo_no_2fa(app_configs: Sequence[AppConfig] | None = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """E101 (``manage.py check --deploy``): VICIREC_DEMO_NO_2FA is for the demo only."""
    if not getattr(settings, "VICIREC_DEMO_NO_2FA", False):
        return []
    return [
        checks.Error(
            "VICIREC_DEMO_NO_2FA is on: superusers and Legal approvers can sign in without an authenticator code.",
            hint="Unset VICIREC_DEMO_NO_2FA in production and enrol authenticators with manage.py enrol_totp.",
            id="vicirec.E101",
        )
    ]
