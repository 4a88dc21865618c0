"""Django settings for vicirec.

Every setting comes from an environment variable of the interface contract (README, "Configuration").
All are optional: with none set, vicirec runs end to end on one machine under VICIREC_HOME (SQLite for its
own database, the generated demo VICIdial database and spool, a local archive folder for the bucket).
"""

from __future__ import annotations

import os
import secrets
import warnings
from datetime import timedelta
from pathlib import Path

import phonenumbers

from vicirec.config import (
    ConfigError,
    database_config,
    env_bool,
    env_choice,
    env_float,
    env_int,
    env_list,
    env_str,
    r2_endpoint,
    s3_storage_options,
)

BASE_DIR = Path(__file__).resolve().parent.parent

VICIREC_HOME = (BASE_DIR / env_str("VICIREC_HOME", "var")).resolve()
DEMO_DIR = VICIREC_HOME / "demo"


def _secret_key() -> str:
    """VICIREC_SECRET_KEY, or one generated once and kept in VICIREC_HOME (never in the database)."""
    key = env_str("VICIREC_SECRET_KEY")
    if key:
        return key
    path = VICIREC_HOME / "secret_key"
    if not path.exists():
        VICIREC_HOME.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = env_bool("VICIREC_DEBUG", False)
ALLOWED_HOSTS = env_list("VICIREC_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"], sep=",")
CSRF_TRUSTED_ORIGINS = env_list("VICIREC_CSRF_TRUSTED_ORIGINS", [], sep=",")

INSTALLED_APPS = [
    # first, so that its createsuperuser (which explains two-factor enrolment) is the one manage.py runs
    "vicirec.signin.apps.SigninConfig",
    "vicirec.signin.apps.AdminConfig",  # django.contrib.admin with the sign-in's admin site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    # before staticfiles: runserver leaves the static files to WhiteNoise, as gunicorn does
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "simple_history",
    "django_q",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "recordings",
    "retention",
    "holds",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # The desk's stylesheets and scripts, with or without DEBUG, under gunicorn or runserver (docs/deployment.md)
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "vicirec.urls"
WSGI_APPLICATION = "vicirec.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Databases -------------------------------------------------------------------------------------
# "default" is vicirec's own database. "vicidial" is VICIdial's, reached only for reading: the router
# (vicirec.dbrouter) sends the unmanaged VICIdial models there, refuses writes and never migrates it,
# and the vicirec.db.* backends reject any statement that is not a read.

DATABASES = {
    "default": database_config(
        "VICIREC_DATABASE_URL",
        env_str("VICIREC_DATABASE_URL", f"sqlite:///{VICIREC_HOME / 'vicirec.sqlite3'}"),
    ),
    "vicidial": database_config(
        "VICIDIAL_DATABASE_URL",
        env_str("VICIDIAL_DATABASE_URL", f"sqlite:///{DEMO_DIR / 'vicidial.sqlite3'}"),
        engines={
            "django.db.backends.mysql": "vicirec.db.vicidial_mysql",
            "django.db.backends.sqlite3": "vicirec.db.vicidial_sqlite",
        },
    ),
}
if DATABASES["vicidial"]["ENGINE"] not in {"vicirec.db.vicidial_mysql", "vicirec.db.vicidial_sqlite"}:
    raise ConfigError(
        "VICIDIAL_DATABASE_URL must be a mysql:// URL (or sqlite:/// for the demo); VICIdial runs on MySQL/MariaDB."
    )
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
if DATABASES["vicidial"]["ENGINE"] == "vicirec.db.vicidial_sqlite":
    # The demo's VICIdial database is opened read-only by SQLite itself, too.
    DATABASES["vicidial"]["NAME"] = f"file:{DATABASES['vicidial']['NAME']}?mode=ro"
if DATABASES["vicidial"]["ENGINE"] == "vicirec.db.vicidial_mysql":
    # utf8 (not utf8mb4) so that VICIdial servers on MySQL 5.1 / MariaDB 5.5 still connect.
    DATABASES["vicidial"]["OPTIONS"]["charset"] = "utf8"
# VICIdial writes DATETIME columns in its servers' local time.
DATABASES["vicidial"]["TIME_ZONE"] = env_str("VICIDIAL_TIME_ZONE", "UTC")
DATABASE_ROUTERS = ["vicirec.dbrouter.VicidialRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Pipeline ---------------------------------------------------------------------------------------
VICIREC_SPOOL_DIRS = [Path(p) for p in env_list("VICIREC_SPOOL_DIRS", [str(DEMO_DIR / "spool" / "monitorDONE")])]
VICIREC_NODE = env_str("VICIREC_NODE")
# Phone numbers typed without a country code (case criteria, search) are read as numbers of this region.
VICIREC_PHONE_REGION = env_str("VICIREC_PHONE_REGION", "US").upper() or "US"
if VICIREC_PHONE_REGION not in phonenumbers.SUPPORTED_REGIONS:
    raise ConfigError(
        f"VICIREC_PHONE_REGION must be a two-letter region such as US or GB, not {VICIREC_PHONE_REGION!r}."
    )
VICIREC_SYNC_BATCH = env_int("VICIREC_SYNC_BATCH", 5000, minimum=1)
# A recording_log row whose call has not ended (end_time NULL) holds the sync watermark for this long.
VICIREC_SYNC_OPEN_GRACE_HOURS = env_int("VICIREC_SYNC_OPEN_GRACE_HOURS", 6, minimum=0)
# How long a "missing" recording waits before the file is looked for again (VICIdial mixes files by cron).
VICIREC_MISSING_RETRY_MINUTES = env_int("VICIREC_MISSING_RETRY_MINUTES", 30, minimum=1)
# A file must have kept its size and mtime this long before it is compressed or uploaded.
VICIREC_SETTLE_SECONDS = env_int("VICIREC_SETTLE_SECONDS", 60, minimum=0)
VICIREC_UPLOAD_THREADS = env_int("VICIREC_UPLOAD_THREADS", 4, minimum=1)
# Worker processes that encode WAVs for the upload threads (recordings.lib.encoders): -1 (default) one per
# CPU this process may use when it may use two or more, 0 to encode in the upload threads themselves.
VICIREC_ENCODE_PROCESSES = env_int("VICIREC_ENCODE_PROCESSES", -1, minimum=-1)
VICIREC_CLAIM_LEASE_SECONDS = env_int("VICIREC_CLAIM_LEASE_SECONDS", 900, minimum=30)
VICIREC_DEFAULT_CODEC = env_choice("VICIREC_CODEC", "opus", ("mp3", "opus", "flac", "none"))
VICIREC_DEFAULT_KEEP_LOCAL_DAYS = env_int("VICIREC_DEFAULT_KEEP_LOCAL_DAYS", 3)
VICIREC_DEFAULT_RETAIN_DAYS = env_int("VICIREC_DEFAULT_RETAIN_DAYS", 7 * 365 + 2, minimum=1)
VICIREC_RETENTION_MAX_SHARE = env_float("VICIREC_RETENTION_MAX_SHARE", 0.05, maximum=1.0)
# Record classes (retention/classes.py keys, comma-separated) whose deletions wait for a Legal approver's
# sign-off in a disposition batch (recordings/pipeline/disposition.py). Default: none.
VICIREC_REVIEW_CLASSES = [key.strip() for key in env_list("VICIREC_REVIEW_CLASSES", [], sep=",") if key.strip()]
# Storage prices (USD) that differ from the list prices in recordings/lib/pricing.py: any VICIREC_PRICE_*
# variable, e.g. VICIREC_PRICE_S3_STANDARD_GB_MONTH=0.021 for a negotiated rate.
VICIREC_PRICES = {name: env_float(name, 0.0) for name in sorted(os.environ) if name.startswith("VICIREC_PRICE_")}
VICIREC_WORK_DIR = VICIREC_HOME / "work"

# --- Archive target ---------------------------------------------------------------------------------
VICIREC_STORAGE = env_choice("VICIREC_STORAGE", "filesystem", ("filesystem", "s3", "r2"))
VICIREC_ARCHIVE_DIR = Path(env_str("VICIREC_ARCHIVE_DIR", str(VICIREC_HOME / "archive")))
VICIREC_PRESIGN_SECONDS = env_int("VICIREC_PRESIGN_SECONDS", 300, minimum=1, maximum=3600)

if VICIREC_STORAGE == "filesystem":
    _archive = {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": VICIREC_ARCHIVE_DIR}}
else:
    _bucket = env_str("VICIREC_S3_BUCKET")
    if not _bucket:
        raise ConfigError(f"VICIREC_S3_BUCKET must name the bucket when VICIREC_STORAGE={VICIREC_STORAGE}.")
    _endpoint = env_str("VICIREC_S3_ENDPOINT_URL")
    _region = env_str("VICIREC_S3_REGION")
    if VICIREC_STORAGE == "r2":
        _account = env_str("VICIREC_R2_ACCOUNT_ID")
        if not _endpoint and not _account:
            raise ConfigError("VICIREC_R2_ACCOUNT_ID (or VICIREC_S3_ENDPOINT_URL) is needed when VICIREC_STORAGE=r2.")
        _endpoint = _endpoint or r2_endpoint(_account)
        _region = _region or "auto"
    _archive = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": s3_storage_options(
            bucket=_bucket,
            endpoint_url=_endpoint or None,
            region=_region or None,
            access_key_id=env_str("VICIREC_S3_ACCESS_KEY_ID") or None,
            secret_access_key=env_str("VICIREC_S3_SECRET_ACCESS_KEY") or None,
        ),
    }

STORAGES = {
    "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": VICIREC_HOME / "media"},
    },
    # collectstatic writes gzip copies beside each file; WhiteNoise serves them to browsers that accept gzip
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
    "archive": _archive,
}

# --- django-q2 --------------------------------------------------------------------------------------
Q_CLUSTER = {
    "name": "vicirec",
    "workers": env_int("VICIREC_Q_WORKERS", 2, minimum=1),
    "timeout": env_int("VICIREC_Q_TIMEOUT", 3600, minimum=60),
    "retry": env_int("VICIREC_Q_TIMEOUT", 3600, minimum=60) + 300,
    "max_attempts": 1,
    "orm": "default",
    "catch_up": False,
    "ack_failures": True,
}
if env_str("VICIREC_REDIS_URL"):
    Q_CLUSTER.pop("orm")
    Q_CLUSTER["redis"] = env_str("VICIREC_REDIS_URL")

# --- Unattended operation: cluster routing, schedules, status (docs/operations.md) -------------------
# Every qcluster of one installation shares Q_CLUSTER["name"] (django-q2's signing salt) and serves one
# queue, its "cluster_name": "<VICIREC_Q_NAME>" runs the central stages (sync, retention, verify, stats)
# and "<VICIREC_Q_NAME>-<VICIREC_NODE>" runs one telephony server's archive and cleanup. With VICIREC_NODE
# empty (one machine) the one qcluster serves both; VICIREC_Q_ROLE=central makes a qcluster on a
# telephony server the central one (a second unit beside that server's node worker).
VICIREC_Q_NAME = env_str("VICIREC_Q_NAME", "vicirec")
VICIREC_Q_ROLE = env_choice("VICIREC_Q_ROLE", "node", ("node", "central"))
Q_CLUSTER["name"] = VICIREC_Q_NAME
Q_CLUSTER["cluster_name"] = (
    VICIREC_Q_NAME if VICIREC_Q_ROLE == "central" or not VICIREC_NODE else f"{VICIREC_Q_NAME}-{VICIREC_NODE}"
)
# Keep the last runs of every schedule, not the last 250 overall: pipeline_status reads them.
Q_CLUSTER["save_limit_per"] = "group"
# django-q2 runs its scheduler when 30 s of guard cycles have passed; a cycle of 30 also runs it at start-up.
Q_CLUSTER["guard_cycle"] = env_float("VICIREC_Q_GUARD_CYCLE", 0.5, minimum=0.1, maximum=60)
# The telephony servers (server_ip, comma list) that setup_schedules gives archive and cleanup schedules.
# Unset: this node plus every server with recordings waiting on local disk; with VICIREC_NODE empty too,
# one set of node schedules that serves every server from this machine (the embedded setup).
VICIREC_NODES = env_list("VICIREC_NODES", [], sep=",")
VICIREC_SCHEDULE_SYNC_MINUTES = env_int("VICIREC_SCHEDULE_SYNC_MINUTES", 5, minimum=1)
VICIREC_SCHEDULE_ARCHIVE_MINUTES = env_int("VICIREC_SCHEDULE_ARCHIVE_MINUTES", 10, minimum=1)
VICIREC_SCHEDULE_ARCHIVE_LIMIT = env_int("VICIREC_SCHEDULE_ARCHIVE_LIMIT", 5000, minimum=1)
VICIREC_SCHEDULE_CLEANUP_MINUTES = env_int("VICIREC_SCHEDULE_CLEANUP_MINUTES", 60, minimum=1)
VICIREC_SCHEDULE_CLEANUP_LIMIT = env_int("VICIREC_SCHEDULE_CLEANUP_LIMIT", 20000, minimum=1)
VICIREC_SCHEDULE_RETENTION_MINUTES = env_int("VICIREC_SCHEDULE_RETENTION_MINUTES", 24 * 60, minimum=1)
VICIREC_SCHEDULE_ERASURE_MINUTES = env_int("VICIREC_SCHEDULE_ERASURE_MINUTES", 60, minimum=1)
VICIREC_SCHEDULE_VERIFY_MINUTES = env_int("VICIREC_SCHEDULE_VERIFY_MINUTES", 60, minimum=1)
VICIREC_SCHEDULE_VERIFY_SAMPLE = env_int("VICIREC_SCHEDULE_VERIFY_SAMPLE", 200, minimum=1)
VICIREC_SCHEDULE_CUSTODY_MINUTES = env_int("VICIREC_SCHEDULE_CUSTODY_MINUTES", 24 * 60, minimum=1)

# --- Custody ledger (docs/custody-ledger.md) ----------------------------------------------------------
# The Ed25519 key that signs ledger checkpoints: generated there (mode 0600) on first use; keep a backup.
VICIREC_CUSTODY_KEY_FILE = Path(env_str("VICIREC_CUSTODY_KEY_FILE", str(VICIREC_HOME / "custody_key.pem")))
# How long a checkpoint object stays under Object Lock retention (COMPLIANCE) where the bucket has it.
VICIREC_CUSTODY_LOCK_DAYS = env_int("VICIREC_CUSTODY_LOCK_DAYS", 10 * 365, minimum=1)
VICIREC_SCHEDULE_STATS_MINUTES = env_int("VICIREC_SCHEDULE_STATS_MINUTES", 24 * 60, minimum=1)
# A spool filesystem this full makes its node upload recordings still inside their local window (oldest
# first); one this full makes pipeline_status call for a person. Deletion rules never change.
VICIREC_DISK_PRESSURE_PERCENT = env_float("VICIREC_DISK_PRESSURE_PERCENT", 85.0, maximum=100.0)
VICIREC_DISK_ALERT_PERCENT = env_float("VICIREC_DISK_ALERT_PERCENT", 95.0, maximum=100.0)
# pipeline_status calls for a person above this many failed recordings (permanent failures: any).
VICIREC_STATUS_MAX_FAILED = env_int("VICIREC_STATUS_MAX_FAILED", 100)
# --- end of unattended operation ----------------------------------------------------------------------

# --- Sign-in (README, "Security") --------------------------------------------------------------------
# django-axes locks sign-in out after VICIREC_SIGNIN_FAILURE_LIMIT wrong passwords (or authenticator
# codes) for VICIREC_SIGNIN_LOCKOUT_MINUTES; `manage.py axes_reset_username NAME` (or axes_reset_ip) lifts it.
# Two-factor sign-in (TOTP, django-otp) is required for superusers and the groups below, optional for the
# other roles. VICIREC_DEMO_NO_2FA=1 lifts the requirement for the demo; `check --deploy` refuses it.
AUTHENTICATION_BACKENDS = ["vicirec.signin.backends.SigninBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = env_int("VICIREC_SIGNIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("VICIREC_SIGNIN_LOCKOUT_MINUTES", 30, minimum=1))
# Locked: an account after that many failures from anywhere, and an address after that many on any accounts.
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_CLIENT_IP_CALLABLE = "vicirec.signin.backends.client_ip"
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
VICIREC_DEMO_NO_2FA = env_bool("VICIREC_DEMO_NO_2FA", False)
VICIREC_2FA_GROUPS = ["Legal approver"]
OTP_TOTP_ISSUER = "vicirec"

# --- HTTPS behind a TLS proxy (README, "Security") ---------------------------------------------------
# VICIREC_HTTPS=1 turns on the whole set: secure cookies, redirect to https, HSTS, and trust in the
# proxy's X-Forwarded-Proto header (the proxy must set it and strip it from clients).
VICIREC_HTTPS = env_bool("VICIREC_HTTPS", False)
if VICIREC_HTTPS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
SECURE_HSTS_SECONDS = env_int("VICIREC_HSTS_SECONDS", 31536000 if VICIREC_HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("VICIREC_HSTS_INCLUDE_SUBDOMAINS", VICIREC_HTTPS)
SECURE_HSTS_PRELOAD = env_bool("VICIREC_HSTS_PRELOAD", VICIREC_HTTPS)
SESSION_COOKIE_AGE = env_int("VICIREC_SESSION_HOURS", 12, minimum=1) * 3600

# --- The rest ---------------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("VICIREC_TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True
# Dates as 2026-03-31 and times with their zone (2026-03-31 14:05:09 CDT) on every page of the desk.
FORMAT_MODULE_PATH = ["vicirec.formats"]
STATIC_URL = "static/"
STATIC_ROOT = VICIREC_HOME / "static"
# WhiteNoise serves STATIC_ROOT (filled by `manage.py collectstatic`, with long-lived cache headers) and,
# for a machine where collectstatic has not run yet, the same files straight from the installed apps: the
# desk is styled whatever DEBUG says and whichever server runs it.
WHITENOISE_USE_FINDERS = True
warnings.filterwarnings("ignore", message="No directory at: ", category=UserWarning)  # before collectstatic

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        "vicirec": {"handlers": ["console"], "level": env_str("VICIREC_LOG_LEVEL", "INFO").upper()},
        "botocore": {"level": "WARNING"},
        # Server errors (500) with their traceback, whatever DEBUG says.
        "django.request": {"handlers": ["console"], "level": "ERROR", "propagate": False},
    },
}
