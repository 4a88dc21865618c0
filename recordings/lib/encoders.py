"""Encoding on every core: ``codec.prepare`` in worker processes, for the upload threads of one archive run.

Why processes: lameenc (MP3) holds the GIL for as long as it encodes, so threads encoding MP3 use one core
between them; libopus releases it on every ``opus_encode`` (one per 60 ms packet), but each return has to
win the GIL back from the threads doing Python, and with four upload threads those hand-overs cost more
than a core's worth of parallelism. A worker process encodes a whole recording on its own interpreter.

The same guarantees as in-thread encoding:
- memory: a worker runs the same ``prepare``, which streams the WAV in blocks of ``codec.BLOCK_FRAMES``;
  each worker is bounded the way one upload thread was, and there are at most ``workers`` of them;
- crash safety: a worker writes its output only into the run's work folder (named after the claim token,
  removed at the end of the run, or by the next run when this one was killed), and returns nothing until
  the output is closed and hashed. Nothing is recorded or uploaded by a worker. A worker that dies (killed,
  out of memory) fails only the recordings it had in hand, as a retryable error (``EncoderDied``), and the
  pool is started again for the rest. Workers exit within a second of the run's process going away.
- forkserver, not fork: the archive process has threads and database connections; a forked copy of them
  is not safe. Workers import only this module and ``recordings.lib.codec`` (no Django).

No Django imports here.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from pathlib import Path

from recordings.lib.codec import Prepared, prepare


class EncoderDied(OSError):
    """The worker process encoding this recording ended before it answered (killed, out of memory).
    An OSError: the recording is fine, the machine was not, and the next run retries."""


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


OWNER_CHECK_S = 1.0


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs: a killed process stays a zombie until its parent reaps it, and that parent
    may be waiting for this worker to close the output pipes it inherited."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _watch_owner(owner: int) -> None:
    """In each worker: run on the CPUs of the process that started the pool, and end once that process is
    gone (killed with -9, nothing told the worker); its output, if any, is in the dead run's work folder,
    which the next run removes."""
    parent = os.getppid()  # the forkserver, which exits with the owner
    try:  # the owner's CPUs (taskset, a cgroup's cpuset), not the forkserver's, which may be older
        os.sched_setaffinity(0, os.sched_getaffinity(owner))
    except (AttributeError, OSError):  # pragma: no cover - not Linux, or the owner just went
        pass

    def watch() -> None:
        while _alive(owner) and os.getppid() == parent:
            time.sleep(OWNER_CHECK_S)
        os._exit(0)

    threading.Thread(target=watch, name="owner-watch", daemon=True).start()


@contextmanager
def _children_allowed() -> Iterator[None]:
    """Let a daemonic process (a django-q cluster worker runs the scheduled archive) start the encoder
    workers. multiprocessing refuses because a daemon's children would outlive it when it is terminated;
    these watch their owner and end with it (_watch_owner), so the refusal guards nothing here. Callers
    hold the pool's lock: the flag is the process's, not the thread's."""
    config = multiprocessing.current_process()._config  # type: ignore[attr-defined]
    daemon = config.get("daemon")
    config["daemon"] = False
    try:
        yield
    finally:
        if daemon is None:
            config.pop("daemon", None)
        else:
            config["daemon"] = daemon


class EncoderPool:
    """``prepare`` in ``workers`` processes started on first use; ``close()`` stops them."""

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ValueError("an encoder pool needs at least one worker")
        self.workers = workers
        self._lock = threading.Lock()
        self._executor: ProcessPoolExecutor | None = None
        self._context = multiprocessing.get_context("forkserver")
        self._context.set_forkserver_preload(["recordings.lib.codec"])

    def _pool(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ProcessPoolExecutor(
                    self.workers, mp_context=self._context, initializer=_watch_owner, initargs=(os.getpid(),)
                )
            return self._executor

    def _restart(self, broken: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._executor is broken:
                self._executor = None
        broken.shutdown(wait=False, cancel_futures=True)

    def prepare(self, source: Path, *, codec: str, workdir: Path) -> Prepared:
        """``codec.prepare`` in a worker: the same result, the same exceptions (CodecError, OSError,
        ValueError), and EncoderDied when the worker did not live to answer."""
        pool = self._pool()
        try:
            with self._lock, _children_allowed():
                future = pool.submit(prepare, source, codec=codec, workdir=workdir)  # starts workers when needed
            return future.result()
        except BrokenProcessPool as exc:
            self._restart(pool)
            raise EncoderDied(f"the encoder process died while encoding {source.name} ({exc})") from exc

    def close(self) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
