"""Django's createsuperuser, which then explains how a superuser signs in with an authenticator code."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.management.commands.createsuperuser import Command as DjangoCommand


class Command(DjangoCommand):
    def handle(self, *args: Any, **options: Any) -> None:
        super().handle(*args, **options)
        if options.get("verbosity", 1) < 1:
            return
        if settings.VICIREC_DEMO_NO_2FA:
            self.stdout.write("VICIREC_DEMO_NO_2FA is on (demo only): the admin asks for no authenticator code.")
            return
        self.stdout.write(
            "Superusers sign in with a code from an authenticator app. Enrol one now with:\n"
            "  manage.py enrol_totp <username>\n"
            "(it prints the otpauth:// URI and the secret for the app)."
        )
