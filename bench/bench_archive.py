"""Benchmark: archive_due (compress, hash, upload with a server-verified SHA-256, confirm) against plain boto3.

    .venv/bin/python bench/bench_archive.py [--files 200] [--seconds 30] [--threads 4] [--repeat 5]
        [--codec opus|mp3] [--upload-copies 5] [--extra-baselines] [--json]

Starts a real SeaweedFS S3 server (tests/s3server.py) on free ports, sets Django up with vicirec's own
database on SQLite in a throwaway VICIREC_HOME (VICIdial's database is not needed to archive), synthesises N
speech-like 8 kHz mono WAVs into a spool folder and catalogs them in one campaign whose policy keeps nothing
locally (keep_local_days=0) and encodes with --codec (Opus, the default policy's codec, unless told), so every
recording is due. Then, in this process, on the same files:

  full                 archive_due(threads=T) on the WAVs: hash + encode + PUT + server-verified checksum +
                       catalog (plans, claims, marks, custody log), the process on every CPU it has;
  full_1cpu            the same, every thread of the process pinned to one CPU (sched_setaffinity): the
                       single-core rate (one usable CPU: no encoder processes, as on a 1-CPU machine);
  full_threads         the same on every CPU, encoding in the upload threads (VICIREC_ENCODE_PROCESSES=0)
                       instead of the encoder processes (recordings.lib.encoders);
  baseline_same_work   the same work written plainly: read the WAV, hashlib.sha256 it, encode it with the
                       same encoder and settings (recordings.lib.opus.OggOpusWriter, or lameenc as
                       recordings.lib.codec sets it up), SHA-256 the output, boto3 put_object with
                       ChecksumSHA256, T threads (ThreadPoolExecutor);
  upload_only          archive_due(threads=T) on the same audio pre-encoded to MP3 and placed where VICIdial
                       leaves compressed files (spool/MP3/<filename>-all.mp3), linked --upload-copies times
                       under other names so a round lasts long enough to time: nothing is encoded
                       (pass-through): hash + PUT with the SHA-256 the server verifies + the checksum read
                       back from the PUT's answer + the catalog's hash chain, claims and custody log;
  baseline_put_only    those MP3 bytes with plain boto3 put_object(ChecksumAlgorithm="SHA256",
                       ChecksumSHA256=...) to another bucket, T threads; the SHA-256 is computed in the
                       timed part (an uploader has to hash to send the header);
  (--extra-baselines)  put_only followed by head_object(ChecksumMode="ENABLED"), and that again with
                       vicirec's request shape (If-None-Match: * and six x-amz-meta-* headers).

Ratios (each the median of per-round ratios; every round runs both sides of a pair back to back, in the
other order every other round, so a machine whose speed drifts, or that other work shares, is compared
with itself; every round's ratio is in the JSON, with the load average after each round):

  ratio_upload_only        baseline_put_only seconds / upload_only seconds       goal >= 1.0
  ratio_full_2cpu_vs_1cpu  full_1cpu seconds / full seconds                       goal >= 1.6
  ratio_full_vs_same_work  baseline_same_work seconds / full seconds              goal >= 1.0
  ratio_full_processes_vs_threads  full_threads seconds / full seconds

Before each round a probe measures how many CPUs' worth the machine gives right now (one process spinning
0.3 CPU-seconds, then two at once: 1.0 means other work takes a whole core, 2.0 both are ours): no
2-CPU/1-CPU ratio of that round can exceed it. It is in load_average.spare_cpus_per_round.

Rates are of the median run; phase tables of the fastest. vicirec runs are instrumented by wrapping
functions from outside (no code change; its cost is on vicirec's side): per-phase thread-seconds, SQL
statements, commits and new database connections. Both sides are warmed up first.

The two sides differ in one request detail: botocore sends every PutObject with "Expect: 100-continue" and
waits for the server's "100 Continue" before the body; vicirec sends bodies up to 1 MiB straight away
(recordings.lib.storage.CONTINUE_ABOVE), one round trip fewer per upload. The plain baseline keeps botocore's
default. Prints one JSON object on stdout and a short table on stderr.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import os
import resource
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _setup import django_on_sqlite, peak_rss_mb  # noqa: E402

from tests.s3server import S3Server, make_bucket, seaweedfs  # noqa: E402

CHUNK = 1024 * 1024
ARCHIVE_BUCKET = "vicirec-bench-archive"
BASELINE_BUCKET = "vicirec-bench-baseline"


# --- instrumentation (wrappers installed from outside; nothing in recordings/ is changed) ----------


class Phases:
    """Thread-safe accumulator per named phase: calls, wall seconds, CPU seconds of the calling thread, slowest."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.data: dict[str, list[float]] = {}

    def add(self, name: str, seconds: float, cpu: float = 0.0) -> None:
        with self.lock:
            entry = self.data.setdefault(name, [0, 0.0, 0.0, 0.0])
            entry[0] += 1
            entry[1] += seconds
            entry[2] = max(entry[2], seconds)
            entry[3] += cpu

    def timed(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start, cpu = time.perf_counter(), time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                self.add(name, time.perf_counter() - start, time.thread_time() - cpu)

        return wrapper


def _sql_kind(sql: str) -> str:
    word = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else "?"
    return word if word in {"SELECT", "UPDATE", "INSERT", "DELETE", "BEGIN", "SAVEPOINT", "RELEASE"} else "OTHER"


@contextmanager
def instrumented(phases: Phases) -> Iterator[None]:
    """Wrap the archive stage's steps, the S3 target's calls and Django's database layer with timers."""
    from django.db import connections
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.backends.utils import CursorWrapper

    from recordings.lib import encoders, spool, storage
    from recordings.pipeline import archive

    patches: list[tuple[Any, str, Any]] = []

    def patch(owner: Any, name: str, new: Any) -> None:
        patches.append((owner, name, owner.__dict__.get(name, _MISSING)))
        setattr(owner, name, new)

    # top-level steps of one recording (they do not overlap within a worker thread)
    for name, label in (
        ("claim", "db: claim batch"),
        ("mark_archived", "db: mark archived"),
        ("record", "db: record hash chain"),
        ("transition", "db: transition+event"),
        ("prepare", "hash+encode (prepare)"),
        ("get_target", "get_target"),
        ("release_dead_claims", "db: release_dead_claims"),
    ):
        patch(archive, name, phases.timed(label, getattr(archive, name)))
    patch(spool, "locate", phases.timed("locate on spool", spool.locate))
    patch(encoders.EncoderPool, "prepare", phases.timed("hash+encode (pool)", encoders.EncoderPool.prepare))
    patch(storage.S3Target, "put", phases.timed("s3: put", storage.S3Target.put))
    patch(storage.S3Target, "confirm", phases.timed("s3: head (confirm)", storage.S3Target.confirm))
    patch(connections, "close_all", phases.timed("db: close_all", connections.close_all))

    # the database layer underneath (these overlap the db: steps above)
    original_execute, original_many = CursorWrapper.execute, CursorWrapper.executemany

    def execute(self: Any, sql: str, params: Any = None) -> Any:
        start, cpu = time.perf_counter(), time.thread_time()
        try:
            return original_execute(self, sql, params)
        finally:
            phases.add(f"sql {_sql_kind(sql)}", time.perf_counter() - start, time.thread_time() - cpu)

    def executemany(self: Any, sql: str, param_list: Any) -> Any:
        start, cpu = time.perf_counter(), time.thread_time()
        try:
            return original_many(self, sql, param_list)
        finally:
            phases.add(f"sql {_sql_kind(sql)}", time.perf_counter() - start, time.thread_time() - cpu)

    patch(CursorWrapper, "execute", execute)
    patch(CursorWrapper, "executemany", executemany)
    patch(BaseDatabaseWrapper, "connect", phases.timed("sql connect (new connection)", BaseDatabaseWrapper.connect))
    patch(BaseDatabaseWrapper, "commit", phases.timed("sql COMMIT (atomic)", BaseDatabaseWrapper.commit))
    try:
        yield
    finally:
        for owner, name, old in reversed(patches):
            if old is _MISSING:
                delattr(owner, name)
            else:
                setattr(owner, name, old)


_MISSING = object()
TOP_LEVEL = (
    "db: claim batch",
    "db: mark archived",
    "locate on spool",
    "hash+encode (prepare)",
    "hash+encode (pool)",
    "db: record hash chain",
    "s3: put",
    "s3: head (confirm)",
    "db: transition+event",
    "db: close_all",
    "get_target",
    "db: release_dead_claims",
)


def phase_table(phases: Phases, *, recordings: int, wall: float, threads: int) -> dict[str, Any]:
    """Per phase: calls, wall ms per recording (summed over threads), share of all worker-thread time,
    CPU ms per recording (of the calling thread: what competes for the GIL), slowest call."""
    budget = wall * threads  # thread-seconds available to the workers
    out: dict[str, Any] = {}
    tracked = 0.0
    for name, (calls, seconds, slowest, cpu) in sorted(phases.data.items(), key=lambda kv: -kv[1][1]):
        if name in TOP_LEVEL:
            tracked += seconds
        out[name] = {
            "calls": int(calls),
            "ms_per_recording": round(1000 * seconds / recordings, 3),
            "share_of_thread_time": round(seconds / budget, 3),
            "cpu_ms_per_recording": round(1000 * cpu / recordings, 3),
            "slowest_ms": round(1000 * slowest, 1),
        }
    out["untracked (python, pool, idle)"] = {
        "ms_per_recording": round(1000 * (budget - tracked) / recordings, 3),
        "share_of_thread_time": round((budget - tracked) / budget, 3),
    }
    return out


class CpuMeter:
    """CPU seconds used by this process and by the SeaweedFS server between start() and stop()."""

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid
        self.tick = os.sysconf("SC_CLK_TCK")

    def _server(self) -> float:
        try:
            fields = Path(f"/proc/{self.server_pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / self.tick  # utime + stime

    @staticmethod
    def _self() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    def __enter__(self) -> CpuMeter:
        self.client0, self.server0 = self._self(), self._server()
        return self

    def __exit__(self, *exc: object) -> None:
        self.client = self._self() - self.client0
        self.server = self._server() - self.server0

    def per_recording(self, n: int) -> dict[str, float]:
        return {
            "client_cpu_ms_per_recording": round(1000 * self.client / n, 3),
            "server_cpu_ms_per_recording": round(1000 * self.server / n, 3),
        }


# --- corpus and catalog -----------------------------------------------------------------------------


def synthesize(spool: Path, files: int, seconds: float) -> list[Path]:
    from recordings.demo.speech import synthesize_speech_like_wav

    wavs = []
    for i in range(files):
        path = spool / f"{wav_name(i)}-all.wav"
        synthesize_speech_like_wav(path, seconds=seconds, seed=i)
        wavs.append(path)
    return wavs


def wav_name(i: int) -> str:
    return f"20261119-{i // 3600 % 24:02d}{i // 60 % 60:02d}{i % 60:02d}_31255{i:05d}_1001"


def mp3_name(i: int) -> str:
    return f"20261119-{i // 3600 % 24:02d}{i // 60 % 60:02d}{i % 60:02d}_77355{i:05d}_1002"


def add_rows(names: list[str], *, first_id: int, campaign: Any, now: datetime, seconds: float) -> None:
    from recordings.models import Recording

    start = now - timedelta(days=1)
    Recording.objects.bulk_create(
        [
            Recording(
                recording_id=first_id + i,
                filename=name,
                server_ip="10.0.0.11",
                start_time=start + timedelta(seconds=i),
                length_in_sec=int(seconds),
                phone_number=name.split("_")[1],
                agent=name.split("_")[2],
                vicidial_id=f"{int(start.timestamp()) + i}.{first_id + i}",
                direction="outbound",
                campaign=campaign,
            )
            for i, name in enumerate(names)
        ],
        batch_size=500,
    )


# --- the two sides ---------------------------------------------------------------------------------


def baseline_client(server: S3Server) -> Any:
    """A boto3 client with exactly vicirec's client config (vicirec.config.s3_storage_options)."""
    import boto3

    from vicirec.config import s3_storage_options

    options = s3_storage_options(
        bucket=BASELINE_BUCKET,
        endpoint_url=server.endpoint_url,
        region=server.region,
        access_key_id=server.access_key,
        secret_access_key=server.secret_key,
    )
    return boto3.client(
        "s3",
        endpoint_url=server.endpoint_url,
        region_name=server.region,
        aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key,
        config=options["client_config"],
    )


def run_baseline(
    client: Any, files: list[Path], *, prefix: str, threads: int, head: bool, same_shape: bool, cpu: CpuMeter
) -> dict[str, Any]:
    phases = Phases()
    metadata = {  # the size of vicirec's metadata: six x-amz-meta-* headers
        "vicirec-recording-id": "1000001",
        "vicirec-original-sha256": "0" * 64,
        "vicirec-campaign": "BENCH",
        "vicirec-call-time": "2026-11-19T12:00:00+00:00",
        "vicirec-server": "10.0.0.11",
        "vicirec-filename": "20261119-120000_3125500001_1001",
    }

    def one(item: tuple[int, Path]) -> None:
        i, path = item
        key = f"{prefix}/{path.name}"
        start, cpu0 = time.perf_counter(), time.thread_time()
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            while chunk := handle.read(CHUNK):
                digest.update(chunk)
        checksum = base64.b64encode(digest.digest()).decode()
        size = path.stat().st_size
        phases.add("sha256", time.perf_counter() - start, time.thread_time() - cpu0)
        extra: dict[str, Any] = {}
        if same_shape:
            extra = {"Metadata": metadata, "ContentType": "audio/mpeg", "IfNoneMatch": "*"}
        start, cpu0 = time.perf_counter(), time.thread_time()
        with path.open("rb") as body:
            client.put_object(
                Bucket=BASELINE_BUCKET,
                Key=key,
                Body=body,
                ContentLength=size,
                ChecksumAlgorithm="SHA256",
                ChecksumSHA256=checksum,
                **extra,
            )
        phases.add("s3: put", time.perf_counter() - start, time.thread_time() - cpu0)
        if head:
            start, cpu0 = time.perf_counter(), time.thread_time()
            answer = client.head_object(Bucket=BASELINE_BUCKET, Key=key, ChecksumMode="ENABLED")
            phases.add("s3: head", time.perf_counter() - start, time.thread_time() - cpu0)
            if answer.get("ChecksumSHA256") != checksum or answer["ContentLength"] != size:
                raise RuntimeError(f"baseline: {key} came back with another checksum or size")

    with cpu:
        start = time.perf_counter()
        if threads == 1:
            for item in enumerate(files):
                one(item)
        else:
            with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="baseline") as pool:
                list(pool.map(one, enumerate(files)))
        wall = time.perf_counter() - start
    return {
        "seconds": wall,
        "phases_ms_per_recording": {k: round(1000 * v[1] / len(files), 3) for k, v in phases.data.items()},
        "phases_cpu_ms_per_recording": {k: round(1000 * v[3] / len(files), 3) for k, v in phases.data.items()},
        **cpu.per_recording(len(files)),
    }


def _encode_like_vicirec(data: bytes, out: Path, codec: str) -> None:
    """The same encoder with the same settings as recordings.lib.codec.prepare, on a WAV read whole."""
    import wave

    import lameenc
    import numpy as np

    from recordings.lib import opus

    with wave.open(io.BytesIO(data)) as w:
        rate, channels, pcm = w.getframerate(), w.getnchannels(), w.readframes(w.getnframes())
    samples = np.frombuffer(pcm, dtype="<i2").reshape(-1, channels)
    if codec == "opus":
        writer = opus.OggOpusWriter(out, sample_rate=rate, channels=channels, kbps=opus.DEFAULT_KBPS)
        writer.write(samples)
        writer.close()
        return
    lame = lameenc.Encoder()
    lame.set_in_sample_rate(rate)
    lame.set_out_sample_rate(rate)
    lame.set_channels(channels)
    lame.set_bit_rate(24)
    lame.set_quality(3)
    out.write_bytes(lame.encode(samples.tobytes()) + lame.flush())


def run_same_work(
    client: Any, wavs: list[Path], *, workdir: Path, prefix: str, threads: int, codec: str, cpu: CpuMeter
) -> dict[str, Any]:
    """The same work as vicirec's full pipeline, written plainly: read the WAV, SHA-256 it, encode it with the
    same encoder and settings, SHA-256 the output and put_object it with ChecksumSHA256, ``threads`` at once."""
    workdir.mkdir(parents=True, exist_ok=True)

    def one(path: Path) -> None:
        data = path.read_bytes()
        hashlib.sha256(data).hexdigest()  # the original's hash (vicirec records it in the catalog)
        out = workdir / f"{path.stem}.{codec}"
        _encode_like_vicirec(data, out, codec)
        encoded = out.read_bytes()
        client.put_object(
            Bucket=BASELINE_BUCKET,
            Key=f"{prefix}/{out.name}",
            Body=encoded,
            ChecksumAlgorithm="SHA256",
            ChecksumSHA256=base64.b64encode(hashlib.sha256(encoded).digest()).decode(),
        )
        out.unlink()

    with cpu:
        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="same-work") as pool:
            list(pool.map(one, wavs))
        wall = time.perf_counter() - start
    return {"seconds": wall, **cpu.per_recording(len(wavs))}


def _spin(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def spare_capacity(seconds: float = 0.3) -> float:
    """How many CPUs' worth this machine gives us right now (1.0-2.0 on two cores): one process spinning
    ``seconds`` of CPU, then two at once; other work on the machine takes the rest. The ceiling on any
    2-CPU/1-CPU ratio measured in the same round."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    walls = []
    for count in (1, 2):
        procs = [ctx.Process(target=_spin, args=(seconds,)) for _ in range(count)]
        start = time.perf_counter()
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join()
        walls.append(time.perf_counter() - start)
    return round(2 * walls[0] / walls[1], 2)


@contextmanager
def pinned(cpus: set[int] | None) -> Iterator[None]:
    """Every thread of this process (and the threads they start) on ``cpus``; None leaves it as it is."""
    if cpus is None:
        yield
        return
    before = os.sched_getaffinity(0)

    def each_thread(mask: set[int]) -> None:
        for tid in os.listdir("/proc/self/task"):
            try:
                os.sched_setaffinity(int(tid), mask)
            except (ProcessLookupError, PermissionError):
                pass  # a thread that just ended

    each_thread(cpus)
    try:
        yield
    finally:
        each_thread(before)


def run_vicirec(
    *, now: datetime, threads: int, expected: int, cpu: CpuMeter, cpus: set[int] | None = None
) -> dict[str, Any]:
    from recordings.pipeline.archive import archive_due

    phases = Phases()
    with instrumented(phases), pinned(cpus), cpu:
        start = time.perf_counter()
        report = archive_due(now=now, node="", threads=threads)
        wall = time.perf_counter() - start
    if report.archived != expected or report.failed or report.missing:
        raise RuntimeError(f"archive_due did not archive all {expected} recordings: {report.as_dict()}")
    return {
        "seconds": wall,
        "original_bytes": report.original_bytes,
        "stored_bytes": report.stored_bytes,
        "phases": phase_table(phases, recordings=expected, wall=wall, threads=threads),
        **cpu.per_recording(expected),
    }


def _package(filename: str) -> str:
    """The package a profiled function belongs to: site-packages' top-level name, the project app, or stdlib."""
    if "site-packages/" in filename:
        return filename.split("site-packages/", 1)[1].split("/", 1)[0]
    for app in ("recordings", "retention", "holds", "vicirec"):
        if f"/{app}/" in filename:
            return app
    if filename.startswith("~") or filename.startswith("<"):
        return "builtins (C)"
    name = Path(filename).name
    return f"stdlib {Path(filename).parent.name}/{name}" if Path(filename).parent.name != "python3.11" else name


def profile_upload_only(path: Path, *, now: datetime, files: int) -> dict[str, Any]:
    """archive_due on fresh pass-through rows under cProfile; self time by package, top functions."""
    import cProfile
    import pstats

    from recordings.pipeline.archive import archive_due

    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.enable()
    report = archive_due(now=now, node="", threads=1)
    profiler.disable()
    wall = time.perf_counter() - start
    if report.archived != files:
        raise RuntimeError(f"profiled archive_due archived {report.archived} of {files}")
    profiler.dump_stats(str(path))
    stats = pstats.Stats(profiler)
    by_package: dict[str, float] = {}
    total = 0.0
    for (filename, _line, _name), (_cc, _nc, tottime, _ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        by_package[_package(filename)] = by_package.get(_package(filename), 0.0) + tottime
        total += tottime
    top = sorted(by_package.items(), key=lambda kv: -kv[1])[:15]
    return {
        "stats_file": str(path),
        "wall_s_under_profiler": round(wall, 3),
        "self_ms_per_recording_by_package": {k: round(1000 * v / files, 3) for k, v in top},
        "profiled_ms_per_recording": round(1000 * total / files, 3),
    }


# --- main --------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each WAV")
    parser.add_argument("--threads", type=int, default=4, help="uploads at once, both sides")
    parser.add_argument("--repeat", type=int, default=5, help="rounds, each running every side once on fresh keys")
    parser.add_argument("--warmup", type=int, default=10, help="files uploaded by both sides before timing")
    parser.add_argument("--codec", choices=("opus", "mp3"), default="opus", help="the full pipeline's codec")
    parser.add_argument(
        "--upload-copies", type=int, default=5, help="upload-only uploads the MP3s this many times under other names"
    )
    parser.add_argument(
        "--extra-baselines", action="store_true", help="also time boto3 put+head and put+head with vicirec's headers"
    )
    parser.add_argument(
        "--profile",
        metavar="FILE.pstats",
        help="after timing, archive one more upload-only set under cProfile (1 thread), save the stats to FILE "
        "and add self time by package to the JSON",
    )
    parser.add_argument("--json", action="store_true", help="print the JSON compact, on one line")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folders (their paths go to stderr)")
    args = parser.parse_args()
    if args.files < 1 or args.threads < 1 or args.repeat < 1:
        parser.error("--files, --threads and --repeat must be at least 1")

    started = time.perf_counter()
    s3_dir = Path(tempfile.mkdtemp(prefix="vicirec-bench-archive-s3-"))
    spool = Path(tempfile.mkdtemp(prefix="vicirec-bench-archive-spool-"))
    home: Path | None = None
    try:
        with seaweedfs(s3_dir) as server:
            for bucket in (ARCHIVE_BUCKET, BASELINE_BUCKET):
                make_bucket(server, bucket)
            home = django_on_sqlite(
                "archive",
                env={
                    "VICIREC_STORAGE": "s3",
                    "VICIREC_S3_BUCKET": ARCHIVE_BUCKET,
                    "VICIREC_S3_ENDPOINT_URL": server.endpoint_url,
                    "VICIREC_S3_REGION": server.region,
                    "VICIREC_S3_ACCESS_KEY_ID": server.access_key,
                    "VICIREC_S3_SECRET_ACCESS_KEY": server.secret_key,
                    "VICIREC_SETTLE_SECONDS": "0",
                    "VICIREC_UPLOAD_THREADS": str(args.threads),
                    "VICIREC_SPOOL_DIRS": str(spool),
                },
            )
            result = run(args, server, home, spool)
            result["server_startup_s"] = round(server.startup_seconds, 2)
    finally:
        if args.keep:
            print(f"kept {s3_dir}, {spool} and {home}", file=sys.stderr)
        else:
            shutil.rmtree(s3_dir, ignore_errors=True)
            shutil.rmtree(spool, ignore_errors=True)
            if home:
                shutil.rmtree(home, ignore_errors=True)
    result["total_bench_s"] = round(time.perf_counter() - started, 1)
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))
    print_table(result)
    return 0


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def _spread(values: list[float]) -> dict[str, Any]:
    return {
        "median": round(statistics.median(values), 3),
        "min": round(min(values), 3),
        "max": round(max(values), 3),
        "rounds": [round(v, 3) for v in values],
    }


def run(args: argparse.Namespace, server: S3Server, home: Path, spool: Path) -> dict[str, Any]:
    from django.test import override_settings
    from django.utils import timezone

    from recordings.lib.codec import prepare
    from recordings.models import Campaign, Recording
    from tests.factories import make_policy  # policies shorter than the default need an approver

    (spool / "MP3").mkdir()
    rss: dict[str, float] = {"after_setup": round(peak_rss_mb(), 1)}
    load = {"start": _load()}

    # corpus: N WAVs, and the same audio as MP3 in VICIdial's compressed layout (encoded outside timing),
    # linked --upload-copies times under other names: an upload-only round is long enough to measure
    start = time.perf_counter()
    wavs = synthesize(spool, args.files, args.seconds)
    synth_s = time.perf_counter() - start
    encode_dir = home / "encode"
    encode_dir.mkdir()
    mp3s = []
    start = time.perf_counter()
    for i, wav in enumerate(wavs):
        prepared = prepare(wav, codec="mp3", workdir=encode_dir)
        mp3s.append(prepared.output_path.rename(spool / "MP3" / f"{mp3_name(i)}-all.mp3"))
    encode_s = time.perf_counter() - start  # one thread, sequential: the pure hash+encode cost
    for i in range(args.files, args.files * args.upload_copies):
        target = spool / "MP3" / f"{mp3_name(i)}-all.mp3"
        os.link(mp3s[i % args.files], target)
        mp3s.append(target)
    n_up = len(mp3s)
    wav_bytes = sum(p.stat().st_size for p in wavs)
    mp3_bytes = sum(p.stat().st_size for p in mp3s)
    rss["after_corpus"] = round(peak_rss_mb(), 1)

    campaign = Campaign.objects.create(kind="outbound", campaign_id="BENCH", name="Benchmark")
    make_policy(campaign=campaign, keep_local_days=0, retain_days=3650, codec=args.codec)
    now = timezone.now()
    client = baseline_client(server)
    cpu = CpuMeter(server.proc.pid)
    next_id = 1_000_000
    all_cpus = os.sched_getaffinity(0)
    one_cpu = {min(all_cpus)}

    def rows(names: list[str]) -> None:
        nonlocal next_id
        add_rows(names, first_id=next_id, campaign=campaign, now=now, seconds=args.seconds)
        next_id += 100_000

    # warm-up: grow the buckets' volumes, create boto3 clients and connections on both sides
    warm = min(args.warmup, args.files)
    if warm:
        run_baseline(client, mp3s[:warm], prefix="warmup", threads=args.threads, head=True, same_shape=False, cpu=cpu)
        run_same_work(
            client, wavs[:warm], workdir=home / "same", prefix="warmup", threads=args.threads, codec=args.codec, cpu=cpu
        )
        rows([mp3_name(i) for i in range(warm)])
        run_vicirec(now=now, threads=args.threads, expected=warm, cpu=cpu)
        rows([wav_name(i) for i in range(warm)])  # and the encoder processes' forkserver started
        run_vicirec(now=now, threads=args.threads, expected=warm, cpu=cpu)

    sides = (
        "baseline_put_only",
        "upload_only",
        "full_1cpu",
        "full",
        "baseline_same_work",
        "full_threads",
        "baseline_put_head",
        "baseline_same_shape",
    )
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in sides}
    common = {"threads": args.threads, "cpu": cpu}

    def side(key: str, r: int) -> dict[str, Any]:
        if key == "baseline_put_only":
            return run_baseline(client, mp3s, prefix=f"r{r}/put-only", head=False, same_shape=False, **common)
        if key == "baseline_put_head":
            return run_baseline(client, mp3s, prefix=f"r{r}/put-head", head=True, same_shape=False, **common)
        if key == "baseline_same_shape":
            return run_baseline(client, mp3s, prefix=f"r{r}/same-shape", head=True, same_shape=True, **common)
        if key == "baseline_same_work":
            return run_same_work(
                client, wavs, workdir=home / "same", prefix=f"r{r}/same-work", codec=args.codec, **common
            )
        if key == "upload_only":
            rows([mp3_name(i) for i in range(n_up)])
            return run_vicirec(now=now, expected=n_up, **common)
        rows([wav_name(i) for i in range(args.files)])
        if key == "full_threads":  # encoding in the upload threads, as before the encoder processes
            with override_settings(VICIREC_ENCODE_PROCESSES=0):
                return run_vicirec(now=now, expected=args.files, **common)
        return run_vicirec(now=now, expected=args.files, cpus=one_cpu if key == "full_1cpu" else None, **common)

    # A/B/A/B: each pair runs back to back, in the other order every other round, so drift cancels out
    pairs = [
        ("baseline_put_only", "upload_only"),
        ("full_1cpu", "full"),
        ("baseline_same_work", "full"),
        ("full_threads", "full"),
    ]
    round_loads, capacity = [], []
    for r in range(args.repeat):
        capacity.append(spare_capacity())
        order: list[str] = []
        for a, b in pairs:
            order += [a, b] if r % 2 == 0 else [b, a]
        seen: set[str] = set()
        for key in order:
            if key == "full" and "full" in seen:
                continue  # one full run per round serves both of its pairs
            seen.add(key)
            runs[key].append(side(key, r))
        if args.extra_baselines:
            for key in ("baseline_put_head", "baseline_same_shape"):
                runs[key].append(side(key, r))
        rss[f"after_round_{r}"] = round(peak_rss_mb(), 1)
        round_loads.append(_load())
    load["rounds"] = round_loads
    load["spare_cpus_per_round"] = capacity

    profile: dict[str, Any] | None = None
    if args.profile:
        rows([mp3_name(i) for i in range(n_up)])
        profile = profile_upload_only(Path(args.profile), now=now, files=n_up)

    archived = Recording.objects.filter(state=Recording.State.ARCHIVED).count()
    expected_archived = 2 * warm + (n_up + 3 * args.files) * args.repeat + (n_up if args.profile else 0)
    if archived != expected_archived:
        raise RuntimeError(f"{archived} recordings archived, expected {expected_archived}")

    runs = {k: v for k, v in runs.items() if v}
    best = {k: min(v, key=lambda run: run["seconds"]) for k, v in runs.items()}
    counts = {k: args.files if k.startswith("full") or k == "baseline_same_work" else n_up for k in runs}

    def rate(key: str, mb: float) -> dict[str, Any]:
        seconds = best[key]["seconds"]
        times = [run["seconds"] for run in runs[key]]
        out = {
            "seconds": round(seconds, 3),
            "median_s": round(statistics.median(times), 3),
            "all_runs_s": [round(t, 3) for t in times],
            "recordings_per_s": round(counts[key] / statistics.median(times), 1),
            "best_recordings_per_s": round(counts[key] / seconds, 1),
            "mb_per_s": round(mb / statistics.median(times), 2),
        }
        for extra in (
            "client_cpu_ms_per_recording",
            "server_cpu_ms_per_recording",
            "phases_ms_per_recording",
            "phases_cpu_ms_per_recording",
            "phases",
        ):
            if extra in best[key]:
                out[extra] = best[key][extra]
        return out

    def paired(numerator: str, denominator: str) -> list[float]:
        return [a["seconds"] / b["seconds"] for a, b in zip(runs[numerator], runs[denominator], strict=True)]

    result: dict[str, Any] = {
        "bench": "archive",
        "corpus": {
            "files": args.files,
            "upload_only_files": n_up,
            "seconds_each": args.seconds,
            "codec": args.codec,
            "wav_mb": round(wav_bytes / 1e6, 2),
            "mp3_mb_upload_only": round(mp3_bytes / 1e6, 2),
            "synthesis_s": round(synth_s, 2),
            "mp3_encode_only_1_thread_s": round(encode_s, 2),
        },
        "threads": args.threads,
        "repeat": args.repeat,
        "cpus": sorted(all_cpus),
        "load_average": load,
    }
    for key in runs:
        mb = wav_bytes if key.startswith("full") or key == "baseline_same_work" else mp3_bytes
        result[key] = rate(key, mb / 1e6)
    goals: dict[str, tuple[list[float], float | None, str]] = {
        "ratio_upload_only": (paired("baseline_put_only", "upload_only"), 1.0, "plain boto3 put_object"),
        "ratio_full_2cpu_vs_1cpu": (paired("full_1cpu", "full"), 1.6, "the same full pipeline pinned to one CPU"),
        "ratio_full_vs_same_work": (
            paired("baseline_same_work", "full"),
            1.0,
            f"read + SHA-256 + {args.codec} (same settings) + put_object(ChecksumSHA256), same threads",
        ),
        "ratio_full_processes_vs_threads": (
            paired("full_threads", "full"),
            None,
            "the same full pipeline encoding in its upload threads (VICIREC_ENCODE_PROCESSES=0)",
        ),
    }
    result["paired_rounds"] = {}
    for name, (values, goal, baseline) in goals.items():
        met = statistics.median(values) >= goal if goal is not None else None
        result["paired_rounds"][name] = _spread(values) | {"goal": goal, "met": met, "baseline": baseline}
        result[name] = round(statistics.median(values), 3)
    result["goal_met"] = all(r["met"] for r in result["paired_rounds"].values() if r["goal"] is not None)
    result["peak_rss_mb"] = round(peak_rss_mb(), 1)
    result["rss_mb_after"] = rss
    if profile:
        result["profile_upload_only_1_thread"] = profile
    result["database"] = "sqlite (WAL, IMMEDIATE) in " + str(home.parent)
    result["python"] = sys.version.split()[0]
    return result


def print_table(result: dict[str, Any]) -> None:
    c = result["corpus"]
    print(
        f"\narchive bench: {c['files']} x {c['seconds_each']:g} s WAV ({c['wav_mb']} MB, full pipeline to "
        f"{c['codec']}); upload-only {c['upload_only_files']} MP3s ({c['mp3_mb_upload_only']} MB); "
        f"{result['threads']} thread(s), {result['repeat']} paired rounds, CPUs {result['cpus']}; "
        f"load average {result['load_average']['start']} at start, "
        f"{result['load_average']['rounds'][-1]} at end; spare CPUs per round (1.0-2.0) "
        f"{result['load_average']['spare_cpus_per_round']}",
        file=sys.stderr,
    )
    print(f"{'side':<36}{'rec/s':>9}{'MB/s':>9}{'median s':>10}  all runs s", file=sys.stderr)
    for key, label in (
        ("full", "vicirec full, 2 CPUs"),
        ("full_1cpu", "vicirec full, pinned to 1 CPU"),
        ("full_threads", "vicirec full, encoding in threads"),
        ("baseline_same_work", "same-work baseline (boto3)"),
        ("upload_only", "vicirec upload-only (MP3)"),
        ("baseline_put_only", "boto3 put_object (baseline)"),
        ("baseline_put_head", "boto3 put+head"),
        ("baseline_same_shape", "boto3 put+head, same shape"),
    ):
        if key in result:
            row = result[key]
            print(
                f"{label:<36}{row['recordings_per_s']:>9}{row['mb_per_s']:>9}{row['median_s']:>10}  "
                f"{row['all_runs_s']}",
                file=sys.stderr,
            )
    for name, r in result["paired_rounds"].items():
        print(
            f"{name:<26} {r['median']}x (median of {len(r['rounds'])} paired rounds, {r['min']}-{r['max']}) "
            f"vs {r['baseline']}"
            + (f"; goal >= {r['goal']}: {'met' if r['met'] else 'MISSED'}" if r["goal"] is not None else ""),
            file=sys.stderr,
        )
    print(f"peak RSS {result['peak_rss_mb']} MB", file=sys.stderr)
    for key in ("upload_only", "full"):
        print(f"{key} phases, per recording: wall ms (summed over threads), share of T x wall, CPU ms", file=sys.stderr)
        for name, row in result[key]["phases"].items():
            print(
                f"  {name:<34}{row['ms_per_recording']:>9.3f}{row['share_of_thread_time']:>8.1%}"
                f"{row.get('cpu_ms_per_recording', float('nan')):>9.3f}",
                file=sys.stderr,
            )


if __name__ == "__main__":
    raise SystemExit(main())
