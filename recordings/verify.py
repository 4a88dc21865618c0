"""Integrity audit: re-confirm stored objects against the catalog and report what is wrong.

Each run checks the ``sample`` recordings verified longest ago, so repeated runs walk the whole archive.
A missing or mismatching object is reported and written to the recording's error and custody log; it
is never silently repaired (re-uploading over evidence would destroy the proof that something changed).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from datetime import datetime

from django.db import transaction

from recordings.models import Recording, RecordingEvent
from recordings.storage import StorageError, get_target

log = logging.getLogger("vicirec.verify")
ACTOR = "verify_archive"
STORED_STATES = (Recording.State.ARCHIVED, Recording.State.CLEARED)


@dataclass
class VerifyReport:
    checked: int = 0
    ok: int = 0
    missing: int = 0
    mismatched: int = 0
    unreachable: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.missing or self.mismatched or self.unreachable)

    def as_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["problems"] = self.problems[:50]
        return data


def verify_archive(*, now: datetime, sample: int = 100) -> VerifyReport:
    target = get_target()
    report = VerifyReport()
    recordings = list(
        Recording.objects.filter(state__in=STORED_STATES).order_by("verified_at", "recording_id")[:sample]
    )
    for recording in recordings:
        report.checked += 1
        try:
            confirmation = target.confirm(
                recording.object_key,
                sha256_hex=recording.stored_sha256,
                size=recording.stored_size or 0,
                version_id=recording.version_id,
            )
        except StorageError as exc:
            report.unreachable += 1
            report.problems.append(f"{recording.recording_id}: {exc.message}")
            continue
        if confirmation.ok:
            report.ok += 1
            Recording.objects.filter(pk=recording.pk).update(verified_at=now, verify_method=confirmation.method)
            continue
        if confirmation.found:
            report.mismatched += 1
            problem = f"integrity check failed: {confirmation.detail}"
        else:
            report.missing += 1
            problem = f"integrity check failed: {recording.object_key} is missing from the bucket"
        report.problems.append(f"{recording.recording_id}: {problem}")
        with transaction.atomic():
            Recording.objects.filter(pk=recording.pk).update(error=problem)
            RecordingEvent.objects.create(
                recording_id=recording.pk,
                at=now,
                from_state=recording.state,
                to_state=recording.state,
                actor=ACTOR,
                detail=problem,
            )
    log.info("verify: %s", report.as_dict())
    return report
