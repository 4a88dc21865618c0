"""django-q2 entry points: one line per stage, returning the stage's report as a dict.

django-q2 keeps each run's result (Success/Failure rows, grouped by schedule name), which is how
pipeline_status knows when a stage last succeeded. setup_schedules routes the node-local stages
(archive, cleanup) to the qcluster of the node whose disk holds the files; their results also carry that
node's spool disk usage, so pipeline_status can show every node's disk from anywhere.
"""

from __future__ import annotations

from django.conf import settings

from recordings.lib import disk
from recordings.pipeline.archive import archive_due
from recordings.pipeline.catalog import sync_recordings
from recordings.pipeline.cleanup import cleanup_local
from recordings.pipeline.erasure import erase_recordings
from recordings.pipeline.verify import verify_archive
from vicirec import clock


class WrongNodeError(RuntimeError):
    """A node-local task reached a worker that serves another node's disk (a routing mistake)."""


def _this_node(node: str) -> str:
    if node != settings.VICIREC_NODE:
        raise WrongNodeError(
            f"a task for node {node!r} reached the worker of node {settings.VICIREC_NODE!r}; each telephony "
            f"server's qcluster must run with VICIREC_NODE set to its own server_ip (docs/operations.md)."
        )
    return node


def _with_disk(report: dict[str, object]) -> dict[str, object]:
    usage = disk.spool_usage(settings.VICIREC_SPOOL_DIRS)
    return {**report, "disk": usage.as_dict() if usage else None}


def sync() -> dict[str, object]:
    return sync_recordings(now=clock.now()).as_dict()


def archive(node: str, limit: int | None = None) -> dict[str, object]:
    return _with_disk(archive_due(now=clock.now(), node=_this_node(node), limit=limit).as_dict())


def cleanup(node: str, limit: int | None = None) -> dict[str, object]:
    return _with_disk(cleanup_local(now=clock.now(), node=_this_node(node), limit=limit).as_dict())


def erase() -> dict[str, object]:
    return erase_recordings(now=clock.now()).as_dict()


def verify(sample: int) -> dict[str, object]:
    return verify_archive(now=clock.now(), sample=sample).as_dict()


def snapshot() -> dict[str, object]:
    from recordings.ops.stats import take_snapshot

    return take_snapshot(now=clock.now()).as_dict()


def custody() -> dict[str, object]:
    """Sign and anchor a checkpoint of the custody ledger, then verify the whole ledger."""
    from recordings.pipeline.checkpoints import make_checkpoint
    from recordings.pipeline.custody_check import verify_custody

    checkpoint = make_checkpoint(now=clock.now())
    return {"checkpoint": checkpoint.as_dict(), "verify": verify_custody(now=clock.now()).as_dict()}
