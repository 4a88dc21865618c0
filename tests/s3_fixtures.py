"""pytest fixtures for a real S3 archive target (import into conftest.py with `from tests.s3_fixtures import *`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.s3server import S3Server, make_bucket, seaweedfs
from vicirec.config import s3_storage_options

__all__ = ["archive_s3_settings", "s3_bucket", "s3_server"]


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """One SeaweedFS per test session (per xdist worker), on free ports."""
    with seaweedfs(tmp_path_factory.mktemp("seaweedfs")) as server:
        yield server


@pytest.fixture
def s3_bucket(s3_server: S3Server) -> str:
    """A fresh, empty bucket name for each test."""
    return make_bucket(s3_server)


def s3_archive_storage(server: S3Server, bucket: str, **overrides: str) -> dict[str, Any]:
    """A `STORAGES["archive"]` entry pointing at `bucket` on `server` (overrides go into the options)."""
    options = {
        "bucket": bucket,
        "endpoint_url": server.endpoint_url,
        "region": server.region,
        "access_key_id": server.access_key,
        "secret_access_key": server.secret_key,
        **overrides,
    }
    return {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": s3_storage_options(**options)}


@pytest.fixture
def archive_s3_settings(settings: Any, s3_server: S3Server, s3_bucket: str) -> str:
    """Point `STORAGES["archive"]` at a fresh SeaweedFS bucket for this test; returns the bucket name."""
    settings.STORAGES = {**settings.STORAGES, "archive": s3_archive_storage(s3_server, s3_bucket)}
    return s3_bucket
