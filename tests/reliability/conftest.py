"""Fixtures of the reliability suite: the --long switch, the figures summary, a fault proxy in front of
SeaweedFS, seeded batches of recordings on the spool, and the invariant checker's target."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.config import Config

from recordings.lib.storage import S3Target
from tests.faultproxy import FaultProxy
from tests.reliability.invariants import FIGURES, Figures
from tests.s3_fixtures import s3_archive_storage
from tests.s3server import S3Server, make_bucket
from tests.workers import worker_env

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


def pytest_addoption(parser: pytest.Parser) -> None:
    # Registered here, so it is known when tests/reliability is on the command line:
    #   pytest tests/reliability --long      (or VICIREC_RELIABILITY_LONG=1 for a whole-suite run)
    parser.addoption("--long", action="store_true", default=False, help="reliability: many more crash rounds")


@pytest.fixture(scope="session")
def long_run(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--long", default=False)) or os.environ.get(
        "VICIREC_RELIABILITY_LONG", ""
    ) in {"1", "true", "yes"}


@pytest.fixture(scope="session")
def figures() -> Figures:
    """The session's counters; tests add faults, crashes and hostile inputs, the checker adds losses."""
    return FIGURES


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if not FIGURES.used:
        return
    terminalreporter.write_sep("-", "reliability figures")
    terminalreporter.write_line(FIGURES.line())
    ARTIFACTS.mkdir(exist_ok=True)
    data = {**FIGURES.as_dict(), "line": FIGURES.line(), "long": bool(config.getoption("--long", default=False))}
    (ARTIFACTS / "reliability.json").write_text(json.dumps(data, indent=2) + "\n")


@pytest.fixture
def proxy(s3_server: S3Server) -> Iterator[FaultProxy]:
    """A fault proxy in front of the session's SeaweedFS; its injected faults go into the figures."""
    with FaultProxy(s3_server.endpoint_url) as fault_proxy:
        yield fault_proxy
        FIGURES.faults_injected += fault_proxy.faults_injected


def client_config(*, read_timeout: float = 5, max_attempts: int = 3) -> Config:
    """vicirec's production client config with test-sized timeouts and retry count (still botocore's)."""
    return Config(
        signature_version="s3v4",
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        retries={"mode": "standard", "max_attempts": max_attempts},  # retries after the first request
        connect_timeout=1,
        read_timeout=read_timeout,
    )


def proxied_storage(server: S3Server, bucket: str, proxy: FaultProxy, **config: Any) -> dict[str, Any]:
    storage = s3_archive_storage(server, bucket, endpoint_url=proxy.url)
    storage["OPTIONS"]["client_config"] = client_config(**config)
    return storage


@pytest.fixture
def proxied_bucket(settings: Any, s3_server: S3Server, s3_bucket: str, proxy: FaultProxy) -> str:
    """STORAGES["archive"] points at a fresh bucket through the fault proxy."""
    settings.STORAGES = {**settings.STORAGES, "archive": proxied_storage(s3_server, s3_bucket, proxy)}
    return s3_bucket


@pytest.fixture
def direct_target(s3_server: S3Server, s3_bucket: str) -> S3Target:
    """The same bucket read directly (no proxy): what the invariant checker believes."""
    return S3Target(s3_server.client(), s3_bucket)


@pytest.fixture
def locked_bucket(s3_server: S3Server, settings: Any) -> str:
    """A versioned bucket with Object Lock (so a second upload of a key would show as a second version)."""
    bucket = make_bucket(s3_server, object_lock=True)
    settings.STORAGES = {**settings.STORAGES, "archive": s3_archive_storage(s3_server, bucket)}
    return bucket


@pytest.fixture
def env(s3_server: S3Server, locked_bucket: str, spool_dir: Path, tmp_path: Path) -> dict[str, str]:
    return worker_env(s3_server, locked_bucket, home=tmp_path / "home", spool=spool_dir)
