"""Integrity audit: re-confirm stored objects against the catalog and report what is wrong.

Each run checks the ``sample`` recordings verified longest ago, so repeated runs walk the whole archive.
A missing or mismatching object is reported and written to the recording's error and custody log; it
is never silently repaired (re-uploading over evidence would destroy the proof that something changed).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from recordings import custody
from recordings.lib.storage import StorageError
from recordings.models import Recording
from recordings.pipeline.target import get_target
from vicirec.reports import Report

log = logging.getLogger("vicirec.verify")
ACTOR = "verify_archive"


@dataclass
class VerifyReport(Report, limits={"problems": 50}):
    checked: int = 0
    ok: int = 0
    missing: int = 0
    mismatched: int = 0
    unreachable: int = 0
    hold_drift: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.missing or self.mismatched or self.unreachable or self.hold_drift)


def _hold_drift(target: object, recording: Recording, *, held: bool) -> str:
    """A difference between vicirec's holds and the bucket's Object Lock legal hold, if the bucket has one."""
    try:
        in_bucket = target.legal_hold_status(recording.object_key, recording.version_id)  # type: ignore[attr-defined]
    except StorageError as exc:
        return f"cannot read the bucket's legal hold: {exc.message}"
    if in_bucket is None or in_bucket == held:
        return ""
    if held:
        return "held in vicirec but the bucket's legal hold is off"
    return "the bucket's legal hold is on but no vicirec hold covers it"


def verify_archive(*, now: datetime, sample: int = 100) -> VerifyReport:
    target = get_target()
    report = VerifyReport()
    recordings = list(Recording.objects.stored().order_by("verified_at", "recording_id")[:sample])
    held = set(Recording.objects.filter(pk__in=[r.pk for r in recordings]).held().values_list("pk", flat=True))
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
            drift = _hold_drift(target, recording, held=recording.pk in held)
            if drift:
                report.hold_drift += 1
                report.problems.append(f"{recording.recording_id}: {drift}")
            continue
        if confirmation.found:
            report.mismatched += 1
            problem = f"integrity check failed: {confirmation.detail}"
        else:
            report.missing += 1
            problem = f"integrity check failed: {recording.object_key} is missing from the bucket"
        report.problems.append(f"{recording.recording_id}: {problem}")
        custody.note(recording, actor=ACTOR, detail=problem, now=now, error=problem)
    log.info("verify: %s", report.as_dict())
    return report
