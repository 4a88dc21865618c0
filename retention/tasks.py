"""django-q2 entry point for retention (scheduled by setup_schedules on the central cluster)."""

from __future__ import annotations

from vicirec import clock


def enforce() -> dict[str, object]:
    from recordings.pipeline.retention import enforce_retention

    return enforce_retention(now=clock.now(), dry_run=False).as_dict()
