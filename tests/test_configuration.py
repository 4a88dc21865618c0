"""Configuration comes from the environment; a wrong setting stops start-up with one clear sentence."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core.checks import ERROR, WARNING, CheckMessage, run_checks

from vicirec.config import ConfigError, database_config, env_int

ROOT = Path(__file__).resolve().parent.parent


def manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("VICIREC_", "VICIDIAL_", "DJANGO_"))}
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=clean | env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("env", "sentence"),
    [
        ({"VICIREC_STORAGE": "s3"}, "VICIREC_S3_BUCKET must name the bucket when VICIREC_STORAGE=s3."),
        ({"VICIREC_STORAGE": "gcs"}, "VICIREC_STORAGE must be one of filesystem, s3, r2, not 'gcs'."),
        ({"VICIREC_STORAGE": "r2", "VICIREC_S3_BUCKET": "b"}, "VICIREC_R2_ACCOUNT_ID (or VICIREC_S3_ENDPOINT_URL)"),
        ({"VICIREC_UPLOAD_THREADS": "four"}, "VICIREC_UPLOAD_THREADS must be a whole number, not 'four'."),
        (
            {"VICIDIAL_DATABASE_URL": "oracle://x/y"},
            "VICIDIAL_DATABASE_URL must be a sqlite:///, mysql:// or postgres://",
        ),
        ({"VICIREC_DATABASE_URL": "mysql://host:3306"}, "VICIREC_DATABASE_URL must name the database"),
        ({"VICIREC_S3_SECRET_ACCESS_KEY_FILE": "/nonexistent/secret"}, "VICIREC_S3_SECRET_ACCESS_KEY_FILE names"),
    ],
)
def test_a_wrong_setting_fails_at_start_up_with_one_sentence_naming_it(
    env: dict[str, str], sentence: str, tmp_path: Path
):
    if "SECRET" in next(iter(env)):
        env = env | {"VICIREC_STORAGE": "s3", "VICIREC_S3_BUCKET": "b"}
    result = manage("check", VICIREC_HOME=str(tmp_path), **env)
    assert result.returncode == 2
    assert sentence in result.stderr
    assert "Traceback" not in result.stderr


def test_no_configuration_at_all_gives_the_embedded_setup(tmp_path: Path):
    result = manage("check", VICIREC_HOME=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "secret_key").exists()


def test_secrets_can_come_from_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    secret = tmp_path / "secret"
    secret.write_text("s3cr3t\n")
    monkeypatch.setenv("VICIREC_UPLOAD_THREADS_FILE", str(secret))
    with pytest.raises(ConfigError, match="VICIREC_UPLOAD_THREADS must be a whole number"):
        env_int("VICIREC_UPLOAD_THREADS", 4)


def test_database_urls_are_parsed_by_dj_database_url():
    config = database_config("X", "mysql://u:p@db.example:3307/asterisk")
    assert (config["ENGINE"], config["HOST"], config["PORT"], config["NAME"]) == (
        "django.db.backends.mysql",
        "db.example",
        3307,
        "asterisk",
    )
    assert database_config("X", "postgres://u@h/v")["ENGINE"] == "django.db.backends.postgresql"


# --- configuration checks (vicirec.checks): problems Django reports once the settings have loaded ---------


def vicirec_issues() -> dict[str, CheckMessage]:
    """The issues vicirec's checks report on the current settings, by id."""
    return {issue.id: issue for issue in run_checks(tags=["vicirec"]) if issue.id}


def test_the_default_configuration_passes_every_check(tmp_path: Path):
    result = manage("check", "--fail-level", "WARNING", VICIREC_HOME=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "vicirec." not in result.stdout + result.stderr


def test_the_test_settings_raise_no_configuration_error():
    assert [i.id for i in run_checks(tags=["vicirec"]) if i.level >= ERROR] == []


def test_the_vicidial_database_must_use_a_read_only_backend(monkeypatch: pytest.MonkeyPatch):
    # Replaced through monkeypatch, not the settings fixture: overriding DATABASES as a whole warns.
    writable = {**django_settings.DATABASES["vicidial"], "ENGINE": "django.db.backends.sqlite3"}
    monkeypatch.setitem(django_settings.DATABASES, "vicidial", writable)
    issue = vicirec_issues()["vicirec.E001"]
    assert issue.level == ERROR and "django.db.backends.sqlite3" in issue.msg and issue.hint


@pytest.mark.parametrize(
    ("backend", "said"),
    [
        ("django.core.files.storage.InMemoryStorage", "uses django.core.files.storage.InMemoryStorage"),
        ("storages.backends.gcloud.NoSuchStorage", "cannot be imported"),
    ],
)
def test_the_archive_backend_must_be_one_vicirec_drives(settings: Any, backend: str, said: str):
    settings.STORAGES = {**settings.STORAGES, "archive": {"BACKEND": backend}}
    issue = vicirec_issues()["vicirec.E002"]
    assert issue.level == ERROR and said in issue.msg and issue.hint
    assert "vicirec.E003" not in vicirec_issues()


def test_an_s3_archive_passes_the_backend_check(settings: Any):
    settings.STORAGES = {
        **settings.STORAGES,
        "archive": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": {"bucket_name": "b"}},
    }
    assert not {"vicirec.E002", "vicirec.E003"} & set(vicirec_issues())


def test_the_archive_folder_must_be_writable(settings: Any, tmp_path: Path):
    # A regular file where a folder belongs: no user, not even root, can create the folder below it.
    (tmp_path / "file").write_text("")
    archive = {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": ""}}
    for location, said in [
        (tmp_path / "file" / "archive", "cannot be created"),
        (tmp_path / "file", "is not a folder"),
    ]:
        archive["OPTIONS"]["location"] = str(location)
        settings.STORAGES = {**settings.STORAGES, "archive": archive}
        issue = vicirec_issues()["vicirec.E003"]
        assert issue.level == ERROR and said in issue.msg and str(location) in issue.msg and issue.hint
    archive["OPTIONS"]["location"] = str(tmp_path / "not" / "yet" / "made")  # created by the first upload
    settings.STORAGES = {**settings.STORAGES, "archive": archive}
    assert "vicirec.E003" not in vicirec_issues()


def test_local_days_cannot_exceed_retained_days(settings: Any):
    settings.VICIREC_DEFAULT_KEEP_LOCAL_DAYS = 400
    settings.VICIREC_DEFAULT_RETAIN_DAYS = 365
    issue = vicirec_issues()["vicirec.E004"]
    assert issue.level == ERROR and "(400)" in issue.msg and "(365)" in issue.msg and issue.hint
    settings.VICIREC_DEFAULT_KEEP_LOCAL_DAYS = 365
    assert "vicirec.E004" not in vicirec_issues()


def test_spool_folders_are_checked(settings: Any, tmp_path: Path):
    (tmp_path / "file").write_text("")
    (tmp_path / "spool").mkdir()
    settings.VICIREC_SPOOL_DIRS = [tmp_path / "spool", tmp_path / "file", tmp_path / "mount"]
    issues = vicirec_issues()
    assert issues["vicirec.E005"].level == ERROR and str(tmp_path / "file") in issues["vicirec.E005"].msg
    assert issues["vicirec.W001"].level == WARNING and str(tmp_path / "mount") in issues["vicirec.W001"].msg
    assert issues["vicirec.E005"].hint and issues["vicirec.W001"].hint


def test_the_demo_spool_is_not_reported_before_the_demo_creates_it(settings: Any, tmp_path: Path):
    settings.DEMO_DIR = tmp_path / "demo"
    settings.VICIREC_SPOOL_DIRS = [tmp_path / "demo" / "spool" / "monitorDONE"]
    assert "vicirec.W001" not in vicirec_issues()


def test_disk_pressure_must_start_below_the_disk_alert(settings: Any):
    settings.VICIREC_DISK_PRESSURE_PERCENT = 95.0
    settings.VICIREC_DISK_ALERT_PERCENT = 95.0
    issue = vicirec_issues()["vicirec.W002"]
    assert issue.level == WARNING and issue.hint
    settings.VICIREC_DISK_PRESSURE_PERCENT = 85.0
    assert "vicirec.W002" not in vicirec_issues()
    settings.VICIREC_DISK_PRESSURE_PERCENT = 100.0  # early uploads switched off, not ordered late
    assert "vicirec.W002" not in vicirec_issues()


def test_an_error_stops_management_commands_with_its_id(tmp_path: Path):
    result = manage("check", VICIREC_HOME=str(tmp_path), VICIREC_DEFAULT_KEEP_LOCAL_DAYS="9999")
    assert result.returncode == 1
    assert "(vicirec.E004) VICIREC_DEFAULT_KEEP_LOCAL_DAYS (9999) is greater than" in result.stderr
    assert "Traceback" not in result.stderr
