"""The whole pipeline in order: sync, archive, cleanup (and retention, once it exists)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from recordings.archive import archive_due
from recordings.catalog import sync_recordings
from recordings.cleanup import cleanup_local


def run_lifecycle(*, now: datetime) -> dict[str, Any]:
    return {
        "sync": sync_recordings(now=now).as_dict(),
        "archive": archive_due(now=now).as_dict(),
        "cleanup": cleanup_local(now=now).as_dict(),
    }
