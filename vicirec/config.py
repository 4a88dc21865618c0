"""Strict helpers that read vicirec's configuration from the environment.

Every helper names the variable in its error, so a wrong setting stops start-up with one sentence a
person can act on (manage.py prints it without a traceback).
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
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


def env_int(name: str, default: int, *, minimum: int = 0) -> int:
    raw = env_str(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {raw!r}.") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, not {value}.")
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
