"""The promise, as code: after any fault, crash or hostile input, no recording is lost and nothing held is
deleted. `check_invariants` is the one judge every reliability test calls; it also feeds the session's
figures (recordings lost, held recordings deleted), so the summary line counts what the checker found.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from recordings.lib.storage import ArchiveTarget, S3Target, StorageError
from recordings.models import Recording
from retention.models import DeletionCertificate


@dataclass
class Figures:
    """Session counters behind the `reliability: …` summary line (tests/reliability/conftest.py)."""

    faults_injected: int = 0
    crashes_survived: int = 0
    hostile_inputs_tried: int = 0
    invariant_checks: int = 0
    lost: set[int] = field(default_factory=set)
    held_deleted: set[int] = field(default_factory=set)
    unverified_deletions: set[int] = field(default_factory=set)  # a local file gone with no verified copy
    other_violations: int = 0
    # The soak's figures (tests/soak/): faults at the other boundaries, and writes seen on VICIdial's wire.
    db_cuts: int = 0  # connections to vicirec's own database cut by tests/tcpproxy.py mid-transaction
    broker_outages: int = 0  # Redis stopped and started again under a running qcluster
    enospc_faults: int = 0  # archive runs whose scratch folder was full
    clock_jumps: int = 0  # worker processes started with their clock moved back or forward
    vicidial_writes: int = 0  # statements other than reads sent to VICIdial's database

    @property
    def used(self) -> bool:
        return bool(self.invariant_checks or self.faults_injected or self.crashes_survived or self.hostile_inputs_tried)

    def as_dict(self) -> dict[str, int]:
        return {
            "faults_injected": self.faults_injected,
            "crashes_survived": self.crashes_survived,
            "hostile_inputs_tried": self.hostile_inputs_tried,
            "recordings_lost": len(self.lost),
            "held_recordings_deleted": len(self.held_deleted),
            "unverified_local_deletions": len(self.unverified_deletions),
            "db_cuts": self.db_cuts,
            "broker_outages": self.broker_outages,
            "enospc_faults": self.enospc_faults,
            "clock_jumps": self.clock_jumps,
            "vicidial_writes": self.vicidial_writes,
            "other_violations": self.other_violations,
            "invariant_checks": self.invariant_checks,
        }

    def line(self) -> str:
        d = self.as_dict()
        return (
            f"reliability: {d['faults_injected']} faults injected, {d['crashes_survived']} crashes survived, "
            f"{d['hostile_inputs_tried']} hostile inputs tried, {d['recordings_lost']} recordings lost, "
            f"{d['held_recordings_deleted']} held recordings deleted"
        )


FIGURES = Figures()


@dataclass(frozen=True)
class Baseline:
    """A recording's original file as the test wrote it: where it lives under the spool and its SHA-256."""

    relative: str
    sha256: str


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class Violation:
    # lost | held_deleted | unverified_deletion | unverified | bad_local | orphan_object | double_upload | uncertified
    kind: str
    recording_id: int | None
    detail: str

    def __str__(self) -> str:
        return f"{self.kind} {self.recording_id or ''}: {self.detail}"


@dataclass
class Verdict:
    violations: list[Violation] = field(default_factory=list)
    on_disk: int = 0
    in_bucket: int = 0
    certified: int = 0
    pending_deletion: int = 0  # expired, unheld, deleted by a retention run killed before its certificate

    def __bool__(self) -> bool:
        return not self.violations

    def summary(self) -> str:
        return "\n".join(map(str, self.violations[:30]))


def check_invariants(
    *,
    target: ArchiveTarget,
    spool: Path,
    baseline: dict[int, Baseline],
    now: datetime,
    in_flight_ok: bool = True,
) -> Verdict:
    """Check every recording of ``baseline`` and the whole bucket behind ``target`` (read directly, not
    through a fault proxy):

    * each recording is on local disk with its original SHA-256, or verified in the bucket (object there,
      checksum = stored_sha256), or expired unheld with a deletion certificate;
    * nothing in state archived/cleared lacks its confirmed object;
    * every object in the bucket belongs to a catalog entry, and no key has two versions with different
      content (uploaded twice);
    * no held recording is gone.

    ``in_flight_ok`` tolerates (and counts) one known window: a retention run killed after the bucket
    deleted an expired, unheld recording's object but before the certificate was written. The next
    retention run finishes it; a final check passes ``in_flight_ok=False``.
    """
    verdict = Verdict()
    recordings = list(Recording.objects.filter(pk__in=list(baseline)))
    held = set(Recording.objects.filter(pk__in=list(baseline)).held().values_list("pk", flat=True))
    expired_now = set(Recording.objects.filter(pk__in=list(baseline)).expired(now).values_list("pk", flat=True))
    certified = set(
        DeletionCertificate.objects.filter(recording_id__in=list(baseline)).values_list("recording_id", flat=True)
    )
    if len(recordings) != len(baseline):
        gone = set(baseline) - {r.pk for r in recordings}
        verdict.violations += [Violation("lost", pk, "catalog row disappeared") for pk in sorted(gone)]

    for r in recordings:
        base = baseline[r.pk]
        path = spool / base.relative
        local_ok = False
        if path.is_file() and not path.is_symlink():
            actual = sha256_of(path)
            if actual == base.sha256:
                local_ok = True
            else:
                verdict.violations.append(Violation("bad_local", r.pk, f"{base.relative} changed: {actual}"))
        cloud_ok = False
        if r.object_key and r.stored_sha256:
            try:
                cloud_ok = target.confirm(
                    r.object_key, sha256_hex=r.stored_sha256, size=r.stored_size or 0, version_id=r.version_id
                ).ok
            except StorageError as exc:
                verdict.violations.append(Violation("unverified", r.pk, f"bucket unreachable: {exc.message}"))
        in_flight = in_flight_ok and r.claimed_by.startswith("retention@") and r.pk in expired_now and r.pk not in held
        if r.state == Recording.State.EXPIRED:
            if r.pk in held:
                verdict.violations.append(Violation("held_deleted", r.pk, "expired while under a legal hold"))
            elif r.pk not in certified:
                verdict.violations.append(Violation("uncertified", r.pk, "expired without a deletion certificate"))
            else:
                verdict.certified += 1
            continue
        if r.state in (Recording.State.ARCHIVED, Recording.State.CLEARED) and not cloud_ok and not in_flight:
            verdict.violations.append(
                Violation("unverified", r.pk, f"state {r.state} but {r.object_key!r} is not confirmed in the bucket")
            )
        if not path.exists() and not cloud_ok and not in_flight:
            # the original left the spool, and no verified copy stands in for it
            verdict.violations.append(Violation("unverified_deletion", r.pk, f"{base.relative} deleted unverified"))
        elif r.state == Recording.State.CLEARED and (r.verified_at is None or not cloud_ok):
            verdict.violations.append(Violation("unverified_deletion", r.pk, "cleared without a verified copy"))
        if local_ok:
            verdict.on_disk += 1
        elif cloud_ok:
            verdict.in_bucket += 1
        elif in_flight:
            verdict.pending_deletion += 1
        else:
            kind = "held_deleted" if r.pk in held else "lost"
            verdict.violations.append(
                Violation(kind, r.pk, f"state {r.state}: no local file with its original hash, no verified copy")
            )

    catalog_keys = set(Recording.objects.exclude(object_key="").values_list("object_key", flat=True))
    for key in target.iter_keys():
        if key not in catalog_keys:
            verdict.violations.append(Violation("orphan_object", None, f"{key} has no catalog entry"))
    if isinstance(target, S3Target):
        etags: dict[str, set[str]] = defaultdict(set)
        for page in target.client.get_paginator("list_object_versions").paginate(Bucket=target.bucket):
            for version in page.get("Versions", []):
                etags[version["Key"]].add(version["ETag"])
        for key, tags in etags.items():
            if len(tags) > 1:
                verdict.violations.append(Violation("double_upload", None, f"{key} holds {len(tags)} contents"))

    FIGURES.invariant_checks += 1
    for v in verdict.violations:
        if v.kind == "lost" and v.recording_id is not None:
            FIGURES.lost.add(v.recording_id)
        elif v.kind == "held_deleted" and v.recording_id is not None:
            FIGURES.held_deleted.add(v.recording_id)
        elif v.kind == "unverified_deletion" and v.recording_id is not None:
            FIGURES.unverified_deletions.add(v.recording_id)
        else:
            FIGURES.other_violations += 1
    return verdict
