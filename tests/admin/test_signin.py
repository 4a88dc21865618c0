"""Sign-in fit for a system of record: lock-out after repeated failures (django-axes) and two-factor
sign-in (TOTP, django-otp), required for superusers and Legal approvers, optional for the other roles.
The other tests sign in with the demo switch on (tests/settings.py); these turn it off."""

from __future__ import annotations

from collections.abc import Callable
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.admin.conftest import PASSWORD

pytestmark = pytest.mark.django_db
LOGIN = "/admin/login/"


@pytest.fixture(autouse=True)
def two_factor_on(settings: Any) -> None:
    settings.VICIREC_DEMO_NO_2FA = False


def code(device: TOTPDevice) -> str:
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}"


def sign_in(username: str, *, password: str = PASSWORD, otp: str = "", client: Client | None = None) -> Any:
    client = client or Client()
    return client, client.post(LOGIN, {"username": username, "password": password, "otp_token": otp, "next": "/admin/"})


def enrol(username: str) -> tuple[TOTPDevice, str]:
    out = StringIO()
    call_command("enrol_totp", username, stdout=out)
    return TOTPDevice.objects.get(user__username=username), out.getvalue()


def test_an_approver_without_an_authenticator_cannot_sign_in(make_user: Callable[..., Any]) -> None:
    make_user("Legal approver")
    client, response = sign_in("legal_approver")
    assert response.status_code == 200 and "manage.py enrol_totp legal_approver" in response.content.decode()
    assert client.get("/admin/").status_code == 302  # still signed out


def test_an_approver_signs_in_with_password_and_code_only(make_user: Callable[..., Any], settings: Any) -> None:
    settings.OTP_TOTP_THROTTLE_FACTOR = 0  # django-otp also slows down guesses after a wrong code
    make_user("Legal approver")
    device, printed = enrol("legal_approver")
    assert "otpauth://totp/" in printed and "secret=" in printed
    _, wrong = sign_in("legal_approver", otp="000000" if code(device) != "000000" else "111111")
    assert wrong.status_code == 200 and "6-digit code" in wrong.content.decode()
    client, right = sign_in("legal_approver", otp=code(device))
    assert right.status_code == 302
    assert client.get("/admin/").status_code == 200


def test_a_superuser_signed_in_without_the_second_factor_is_sent_back_to_sign_in(
    make_user: Callable[..., Any],
) -> None:
    admin = get_user_model().objects.create_superuser("root", password=PASSWORD)
    client = Client()
    client.force_login(admin)  # a session that never saw a code
    response = client.get(reverse("admin:recordings_recording_changelist"))
    assert response.status_code == 302 and response["Location"].startswith(LOGIN)


def test_other_roles_may_sign_in_with_a_password_and_use_a_code_once_enrolled(
    make_user: Callable[..., Any],
) -> None:
    make_user("Legal")
    client, response = sign_in("legal")
    assert response.status_code == 302 and client.get("/admin/").status_code == 200
    device, _ = enrol("legal")
    _, without = sign_in("legal")
    assert without.status_code == 200  # enrolled: the code is asked for
    _, right = sign_in("legal", otp=code(device))
    assert right.status_code == 302


def test_repeated_wrong_passwords_lock_the_account_out(make_user: Callable[..., Any], settings: Any) -> None:
    make_user("Legal")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert sign_in("legal", password="wrong-password")[1].status_code == 200
    assert sign_in("legal", password="wrong-password")[1].status_code == 429
    locked = sign_in("legal")[1]  # even the right password, for the cool-off time
    assert locked.status_code == 429
    call_command("axes_reset_username", "legal", stdout=StringIO())
    assert sign_in("legal")[1].status_code == 302


def test_wrong_authenticator_codes_count_towards_the_lock_out(make_user: Callable[..., Any], settings: Any) -> None:
    make_user("Legal approver")
    device, _ = enrol("legal_approver")
    wrong = "000000" if code(device) != "000000" else "111111"
    statuses = [sign_in("legal_approver", otp=wrong)[1].status_code for _ in range(settings.AXES_FAILURE_LIMIT)]
    assert statuses[-1] == 429
    assert sign_in("legal_approver", otp=code(device))[1].status_code == 429


def test_enrol_totp_refuses_to_replace_silently(make_user: Callable[..., Any]) -> None:
    make_user("Legal")
    enrol("legal")
    with pytest.raises(Exception, match="--replace"):
        call_command("enrol_totp", "legal", stdout=StringIO())
    call_command("enrol_totp", "legal", "--replace", stdout=StringIO())
    assert TOTPDevice.objects.filter(user__username="legal").count() == 1


def test_createsuperuser_explains_enrolment(db: None) -> None:
    out = StringIO()
    call_command("createsuperuser", "--noinput", "--username", "boss", "--email", "b@example.com", stdout=out)
    assert "manage.py enrol_totp <username>" in out.getvalue()
