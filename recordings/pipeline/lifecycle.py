"""The whole pipeline in order: sync, archive, cleanup, retention."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from recordings.pipeline.archive import archive_due
from recordings.pipeline.catalog import sync_recordings
from recordings.pipeline.cleanup import cleanup_local
from recordings.pipeline.retention import enforce_retention


def run_lifecycle(*, now: datetime) -> dict[str, Any]:
    return {
        "sync": sync_recordings(now=now).as_dict(),
        "archive": archive_due(now=now).as_dict(),
        "cleanup": cleanup_local(now=now).as_dict(),
        "retention": enforce_retention(now=now, dry_run=False).as_dict(),
    }
