"""Production settings pass Django's own audit; server errors are logged with their traceback."""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.test import Client

from tests.test_configuration import manage

# The documented production environment (README, "Security"): behind a TLS proxy.
PRODUCTION = {"VICIREC_HTTPS": "1", "VICIREC_ALLOWED_HOSTS": "recordings.example.com"}


def test_check_deploy_with_the_production_environment_prints_no_warning(tmp_path: Path) -> None:
    result = manage("check", "--deploy", "--fail-level", "WARNING", VICIREC_HOME=str(tmp_path), **PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_check_deploy_refuses_the_demo_switch(tmp_path: Path) -> None:
    env = {**PRODUCTION, "VICIREC_DEMO_NO_2FA": "1"}
    result = manage("check", "--deploy", VICIREC_HOME=str(tmp_path), **env)
    assert result.returncode != 0 and "vicirec.E101" in result.stderr


def test_without_https_check_deploy_names_what_is_missing(tmp_path: Path) -> None:
    result = manage("check", "--deploy", "--fail-level", "WARNING", VICIREC_HOME=str(tmp_path))
    assert result.returncode != 0
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in result.stderr, warning


def test_https_turns_on_the_whole_set(tmp_path: Path) -> None:
    code = (
        "from django.conf import settings as s; print(s.SECURE_PROXY_SSL_HEADER, s.SECURE_SSL_REDIRECT, "
        "s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_SECONDS)"
    )
    env = {**PRODUCTION, "VICIREC_HSTS_SECONDS": "600"}
    result = manage("shell", "-c", code, VICIREC_HOME=str(tmp_path), **env)
    assert result.stdout.strip().splitlines()[-1].split() == [
        "('HTTP_X_FORWARDED_PROTO',",
        "'https')",
        "True",
        "True",
        "True",
        "600",
    ]


@pytest.mark.parametrize("seconds", ["3601", "86400"])
def test_a_presigned_url_lifetime_above_an_hour_is_refused_at_start_up(seconds: str, tmp_path: Path) -> None:
    result = manage("check", VICIREC_HOME=str(tmp_path), VICIREC_PRESIGN_SECONDS=seconds)
    assert result.returncode == 2
    assert f"VICIREC_PRESIGN_SECONDS must be at most 3600, not {seconds}." in result.stderr
    assert manage("check", VICIREC_HOME=str(tmp_path), VICIREC_PRESIGN_SECONDS="3600").returncode == 0


@pytest.mark.django_db
def test_a_server_error_is_logged_with_its_traceback(admin_user: Any) -> None:
    (handler,) = [h for h in logging.getLogger("django.request").handlers if type(h) is logging.StreamHandler]
    stream = io.StringIO()
    client = Client(raise_request_exception=False)
    client.force_login(admin_user)
    with (
        mock.patch.object(handler, "stream", stream),
        mock.patch("recordings.views.dashboard_data", side_effect=RuntimeError("dashboard broke")),
    ):
        response = client.get("/admin/?refresh=1")
    assert response.status_code == 500
    logged = stream.getvalue()
    assert "ERROR django.request Internal Server Error: /admin/" in logged
    assert "Traceback" in logged and "RuntimeError: dashboard broke" in logged
