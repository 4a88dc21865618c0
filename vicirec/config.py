"""Strict helpers that read vicirec's configuration from the environment.

Every helper names the variable in its error, so a wrong setting stops start-up with one sentence a
person can act on (manage.py prints it without a traceback).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import dj_database_url
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from django.core.exceptions import ImproperlyConfigured


class ConfigError(ImproperlyConfigured):
    """A setting in the environment is wrong; the message names the variable."""


def env_str(name: str, default: str = "") -> str:
    """A string from NAME, or from the file named by NAME_FILE (for secrets kept out of the env)."""
    file_name = os.environ.get(f"{name}_FILE")
    if file_name:
        try:
            return Path(file_name).read_text().strip()
        except OSError as exc:
            raise ConfigError(f"{name}_FILE names {file_name!r}, which cannot be read ({exc.strerror}).") from None
    return os.environ.get(name, default).strip()


def env_int(name: str, default: int, *, minimum: int = 0, maximum: int | None = None) -> int:
    raw = env_str(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {raw!r}.") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, not {value}.")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{name} must be at most {maximum}, not {value}.")
    return value


def env_float(name: str, default: float, *, minimum: float = 0.0, maximum: float | None = None) -> float:
    raw = env_str(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, not {raw!r}.") from None
    if value < minimum or (maximum is not None and value > maximum):
        raise ConfigError(f"{name} must be between {minimum} and {maximum}, not {value}.")
    return value


def env_bool(name: str, default: bool) -> bool:
    raw = env_str(name).lower()
    if not raw:
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be true or false, not {raw!r}.")


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = env_str(name, default).lower() or default
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, not {value!r}.")
    return value


def env_list(name: str, default: list[str], *, sep: str = ":") -> list[str]:
    raw = env_str(name)
    if not raw:
        return default
    return [item for item in raw.split(sep) if item]


def database_config(name: str, url: str, *, engines: dict[str, str] | None = None) -> dict:
    """Parse a database URL (sqlite:///…, mysql://…, postgres://…) into a Django DATABASES entry.

    ``engines`` maps the parsed Django engine to a replacement (the read-only VICIdial backends).
    """
    scheme = urlsplit(url).scheme
    if scheme not in {"sqlite", "mysql", "mariadb", "postgres", "postgresql", "pgsql"}:
        raise ConfigError(f"{name} must be a sqlite:///, mysql:// or postgres:// URL, not one starting {scheme!r}.")
    try:
        config = dj_database_url.parse(url.replace("mariadb://", "mysql://", 1), conn_max_age=60)
    except (ValueError, KeyError) as exc:
        raise ConfigError(f"{name} is not a database URL this project understands ({exc}).") from None
    if config["ENGINE"] != "django.db.backends.sqlite3" and not config.get("NAME"):
        raise ConfigError(f"{name} must name the database after the host, e.g. mysql://user:pass@host:3306/asterisk.")
    if config["ENGINE"] == "django.db.backends.mysql":
        config.setdefault("OPTIONS", {}).setdefault("charset", "utf8mb4")
    if engines and config["ENGINE"] in engines:
        config["ENGINE"] = engines[config["ENGINE"]]
    return config


# --- the archive bucket (R2, S3) ------------------------------------------------------------------

# S3 and R2 refuse a single PUT above 5 GiB; vicirec never sends a larger one (see recordings.lib.storage).
_MAX_SINGLE_PUT = 5 * 1024**3


def r2_endpoint(account_id: str, *, jurisdiction: str = "") -> str:
    """The S3 endpoint of a Cloudflare R2 account (`jurisdiction="eu"` for EU-jurisdiction buckets)."""
    account_id = account_id.strip()
    if not re.fullmatch(r"[A-Za-z0-9]+", account_id):
        raise ValueError("VICIREC_R2_ACCOUNT_ID must be the account id from the R2 dashboard (letters and digits).")
    region = f".{jurisdiction.strip()}" if jurisdiction.strip() else ""
    return f"https://{account_id}{region}.r2.cloudflarestorage.com"


def s3_storage_options(
    *,
    bucket: str,
    endpoint_url: str | None,
    region: str | None,
    access_key_id: str | None,
    secret_access_key: str | None,
) -> dict[str, Any]:
    """OPTIONS for `storages.backends.s3.S3Storage` that work the same on R2 and S3.

    Empty credentials are passed as None so boto3's standard chain (env, profile, instance role) applies.
    """
    return {
        "bucket_name": bucket,
        "endpoint_url": endpoint_url or None,
        "region_name": region or None,
        "access_key": access_key_id or None,
        "secret_key": secret_access_key or None,
        # when_required: no automatic CRC32 / aws-chunked trailers (R2 rejects them); the SHA-256 we
        # precompute and send ourselves is always sent as a plain header.
        "client_config": Config(
            signature_version="s3v4",
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            retries={"mode": "standard", "max_attempts": 5},
        ),
        # Never multipart: a multipart upload cannot carry a whole-file SHA-256.
        "transfer_config": TransferConfig(multipart_threshold=_MAX_SINGLE_PUT),
        "file_overwrite": False,
        "default_acl": None,
        "querystring_expire": 300,
        "signature_version": "s3v4",
    }
