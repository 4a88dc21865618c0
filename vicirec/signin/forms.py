"""The sign-in form: user name, password and, for whoever has an authenticator enrolled, its code."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.signals import user_login_failed
from django.core.exceptions import ValidationError
from django_otp import match_token, user_has_device

from vicirec.signin.policy import two_factor_required

NOT_ENROLLED = (
    "This account must sign in with an authenticator code, and none is enrolled yet. An administrator "
    "enrols one with: manage.py enrol_totp {username}"
)
WRONG_CODE = "Enter the current 6-digit code from your authenticator app."


class SigninForm(AdminAuthenticationForm):
    otp_token = forms.CharField(
        label="Authenticator code",
        required=False,
        max_length=12,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
        help_text="Required for superusers and Legal approvers; for anyone else once an authenticator is enrolled.",
    )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()  # the password (a locked-out account is refused before it is checked)
        user = self.get_user()
        if user is not None:
            self._second_factor(user)
        return cleaned

    def _second_factor(self, user: Any) -> None:
        """An enrolled authenticator's code is always asked for; with none enrolled, only where required."""
        if not user_has_device(user):
            if two_factor_required(user):
                raise ValidationError(NOT_ENROLLED.format(username=user.get_username()), code="otp_not_enrolled")
            return
        token = (self.cleaned_data.get("otp_token") or "").strip()
        device = match_token(user, token) if token else None
        if device is None:
            # A wrong code counts towards the lock-out like a wrong password.
            user_login_failed.send(sender=__name__, credentials={"username": user.get_username()}, request=self.request)
            raise ValidationError(WRONG_CODE, code="otp_invalid")
        user.otp_device = device  # django-otp marks the session verified when the sign-in completes
