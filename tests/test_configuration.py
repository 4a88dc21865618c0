"""Configuration comes from the environment; a wrong setting stops start-up with one clear sentence."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

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
