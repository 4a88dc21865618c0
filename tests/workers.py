"""The environment of a separate vicirec process (a worker, a command) that shares this test's database
and a real SeaweedFS bucket: what the crash, qcluster and reliability tests start and kill."""

from __future__ import annotations

import os
from pathlib import Path

from django.db import connections

from tests.s3server import S3Server


def database_url() -> str:
    """The test database as a VICIREC_DATABASE_URL (a file for SQLite, so other processes can share it)."""
    config = connections["default"].settings_dict
    if config["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{config['NAME']}"
    scheme = "mysql" if "mysql" in config["ENGINE"] else "postgres"
    return f"{scheme}://{config['USER']}:{config['PASSWORD']}@{config['HOST']}:{config['PORT']}/{config['NAME']}"


def worker_env(
    s3_server: S3Server, bucket: str, *, home: Path, spool: Path | None = None, **extra: str
) -> dict[str, str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "vicirec.settings",
        "VICIREC_HOME": str(home),
        "VICIREC_DATABASE_URL": database_url(),
        "VICIREC_STORAGE": "s3",
        "VICIREC_S3_BUCKET": bucket,
        "VICIREC_S3_ENDPOINT_URL": s3_server.endpoint_url,
        "VICIREC_S3_REGION": s3_server.region,
        "VICIREC_S3_ACCESS_KEY_ID": s3_server.access_key,
        "VICIREC_S3_SECRET_ACCESS_KEY": s3_server.secret_key,
        "VICIREC_SETTLE_SECONDS": "0",
        "VICIREC_UPLOAD_THREADS": "2",
        "VICIREC_DISK_PRESSURE_PERCENT": "100",
        "VICIREC_LOG_LEVEL": "WARNING",
    }
    if spool is not None:
        env["VICIREC_SPOOL_DIRS"] = str(spool)
    return env | extra
