"""Enrol an authenticator app (TOTP) for a staff member: prints the otpauth:// URI and the secret."""

from __future__ import annotations

from base64 import b32encode
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django_otp.plugins.otp_totp.models import TOTPDevice


class Command(BaseCommand):
    help = (
        "Enrol an authenticator app for USER: prints the otpauth:// URI (paste it into a QR-code generator or "
        "the app) and the secret to type in. --replace removes the user's earlier authenticators."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="authenticator", help="what to call the device")
        parser.add_argument("--replace", action="store_true", help="remove the user's earlier authenticators")

    def handle(self, *args: Any, username: str, name: str, replace: bool, **options: Any) -> None:
        user = get_user_model().objects.filter(**{get_user_model().USERNAME_FIELD: username}).first()
        if user is None:
            raise CommandError(f"No user named {username!r}.")
        existing = TOTPDevice.objects.devices_for_user(user, confirmed=None)
        if existing.exists() and not replace:
            raise CommandError(f"{username} already has an authenticator; add --replace to replace it.")
        existing.delete()
        device = TOTPDevice.objects.create(user=user, name=name, confirmed=True)
        self.stdout.write(f"Authenticator enrolled for {username}. Add it to the app with this URI:")
        self.stdout.write(f"  {device.config_url}")
        self.stdout.write(f"or type in the secret: {b32encode(device.bin_key).decode()}")
        self.stdout.write("Then sign in with the user name, the password and the app's 6-digit code.")
