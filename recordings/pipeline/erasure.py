"""Stage 5, erasure: finish in the cloud what VICIdial's GDPR purge (or a request at the desk) started.

SAFETY RULES
- A recording under a legal hold is never erased: the request is refused, visibly ("refused: under hold N
  (GDPR Art. 17(3)(e))") on the request, in the recording's custody log and in pipeline_status, and it is
  carried out by the first run after the last covering hold is released (holds.actions calls this stage
  after a release). Holds are checked when the batch is chosen and again, in one query, immediately before
  its files are deleted, under the same deletion gate as retention (holds.models.DeletionGate): a hold
  placed while an erasure is under way wins.
- VICIdial's tables are only read: new rows of recording_log_deletion_queue become erasure requests (their
  recording_log rows may already have lost their filename; the catalog still knows the recording).
- An erasure deletes every version of the cloud object (every version and delete marker under its key,
  where the bucket is versioned and not locked), the local copy vicirec manages, and scrubs the caller,
  lead, agent, file names and key from the catalog row, its history, the custody and access logs and any
  deletion certificate (vicirec.records.redaction: the one narrow, recorded exception to permanent
  records). What proves the erasure stays: recording id, hashes, sizes, dates, who asked and the legal
  basis, in an erasure certificate written in the same transaction as the scrub.
- A cloud deletion that fails leaves the recording as it was (nothing scrubbed), its request pending with
  the error; the next run tries again. --dry-run reads and changes nothing.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Max, Q, Sum

from holds.models import DeletionGate, LegalHold, holds_covering
from recordings import custody, ledger
from recordings.lib import spool
from recordings.lib.storage import StorageError
from recordings.models import AccessEvent, Recording, RecordingEvent
from recordings.pipeline.target import get_target
from recordings.pipeline.workqueue import claim, new_token, release, release_dead_claims
from recordings.vicidial import RecordingLogDeletionQueue
from retention.approval import is_approver
from retention.models import (
    GDPR_HOLD_EXEMPTION,
    DeletionCertificate,
    ErasureCertificate,
    ErasureItem,
    ErasureRequest,
)
from vicirec.actors import Actor
from vicirec.records import redaction
from vicirec.reports import Report

log = logging.getLogger("vicirec.erasure")
ACTOR = "erase_recordings"
QUEUE_ACTOR = "VICIdial GDPR purge (recording_log_deletion_queue)"
QUEUE_BASIS = "GDPR Art. 17(1) / CCPA deletion request, confirmed in VICIdial"
BATCH = 500
QUEUE_BATCH = 5000
QUEUE_OVERLAP = timedelta(days=1)  # re-read queue rows queued up to a day before the newest one seen
REDACTED = "[redacted]"
OPEN = (ErasureItem.Status.PENDING, ErasureItem.Status.REFUSED)


@dataclass
class ErasureReport(Report, limits={"would_erase": 1000, "refusals": 100, "errors": 20}):
    dry_run: bool
    queue_rows_read: int = 0
    requests_opened: int = 0
    erased: int = 0
    refused_held: int = 0
    held_at_erasure: int = 0
    not_cataloged: int = 0
    waiting_for_catalog: int = 0
    busy: int = 0
    failed: int = 0
    cloud_versions_deleted: int = 0
    local_deleted: int = 0
    bytes_erased: int = 0
    would_erase: list[int] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    run: str = ""


def key_marker(key: str) -> str:
    """What a scrubbed row keeps of an object key (which carries the phone number in VICIdial's default
    filename pattern): a marker and the key's SHA-256."""
    if not key or key.startswith("redacted:"):
        return key
    return f"redacted:sha256:{hashlib.sha256(key.encode()).hexdigest()}"


def refusal_text(hold_ids: Iterable[int]) -> str:
    ids = sorted(hold_ids)
    noun = "hold" if len(ids) == 1 else "holds"
    return f"refused: under {noun} {', '.join(map(str, ids))} ({GDPR_HOLD_EXEMPTION})"


# --- following VICIdial's queue --------------------------------------------------------------------------


def _new_queue_rows() -> list[dict[str, Any]]:
    """Rows of recording_log_deletion_queue that no erasure request took up yet (read-only)."""
    seen = ErasureItem.objects.filter(request__source=ErasureRequest.Source.VICIDIAL)
    newest = seen.aggregate(newest=Max("queued_at"))["newest"]
    rows = RecordingLogDeletionQueue.objects.order_by("recording_id")
    if newest is not None:
        rows = rows.filter(Q(date_queued__gte=newest - QUEUE_OVERLAP) | Q(date_queued__isnull=True))
    fresh: list[dict[str, Any]] = []
    for row in rows.values("recording_id", "date_queued").iterator(chunk_size=QUEUE_BATCH):
        fresh.append(row)
    known: set[int] = set()
    for start in range(0, len(fresh), QUEUE_BATCH):
        ids = [r["recording_id"] for r in fresh[start : start + QUEUE_BATCH]]
        known |= set(seen.filter(recording_id__in=ids).values_list("recording_id", flat=True))
    return [r for r in fresh if r["recording_id"] not in known]


def follow_queue(*, now: datetime, report: ErasureReport) -> ErasureRequest | None:
    """Open one request for the queue rows VICIdial added since the last run (none if there are none)."""
    rows = _new_queue_rows()
    report.queue_rows_read = len(rows)
    if not rows or report.dry_run:
        return None
    with transaction.atomic():
        request = ErasureRequest.objects.create(
            source=ErasureRequest.Source.VICIDIAL,
            status=ErasureRequest.Status.APPROVED,
            legal_basis=QUEUE_BASIS,
            reason=f"{len(rows)} recording(s) queued in VICIdial's recording_log_deletion_queue",
            requested_at=now,
            requested_by_name=QUEUE_ACTOR,
            decided_at=now,
            decided_by_name=QUEUE_ACTOR,
        )
        ErasureItem.objects.bulk_create(
            ErasureItem(request=request, recording_id=r["recording_id"], queued_at=r["date_queued"], updated_at=now)
            for r in rows
        )
    report.requests_opened += 1
    return request


# --- the subject's data, scrubbed ----------------------------------------------------------------------


def _secrets(*rows: Any) -> list[str]:
    """The strings that identify the caller in free text: file names, paths, keys, the phone number."""
    found: set[str] = set()
    for row in rows:
        for name in ("filename", "local_path", "object_key", "vicidial_location", "phone_number", "channel"):
            value = str(getattr(row, name, "") or "")
            if len(value) >= 5 and not value.startswith("redacted:"):
                found.add(value)
                found.add(os.path.basename(value))
                found.add(os.path.splitext(os.path.basename(value))[0])
    return sorted((s for s in found if len(s) >= 5), key=len, reverse=True)


def _scrub_text(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    return text


def _scrubbed(row: Any) -> dict[str, Any]:
    """The values of Recording.PERSONAL_FIELDS once erased (for the row and each history row)."""
    return {
        "filename": f"erased-{row.recording_id}",
        "channel": "",
        "extension": "",
        "vicidial_location": "",
        "vicidial_id": "",
        "lead_id": None,
        "phone_number": "",
        "agent": "",
        "error": "",
        "local_path": "",
        "local_copies": [],
        "object_key": key_marker(row.object_key),
    }


def _redact_records(recording: Recording, secrets: list[str]) -> None:
    """Inside ``redaction()``: scrub the recording's history, custody and access logs and certificate."""
    history = list(Recording.history.filter(recording_id=recording.pk))
    secrets = sorted(set(secrets) | set(_secrets(*history)), key=len, reverse=True)
    for row in history:
        for name, value in _scrubbed(row).items():
            setattr(row, name, value)
        row.history_change_reason = _scrub_text(row.history_change_reason or "", secrets) or None
    Recording.history.all().redact(history, [*Recording.PERSONAL_FIELDS, "history_change_reason"])
    for model in (RecordingEvent, AccessEvent):
        changed = []
        for row in model.objects.filter(recording_id=recording.pk):
            scrubbed = _scrub_text(row.detail, secrets)
            if scrubbed != row.detail:
                row.detail = scrubbed
                changed.append(row)
        model.objects.redact(changed, ["detail"])
    certificate = DeletionCertificate.objects.filter(recording_id=recording.pk).first()
    if certificate is not None:
        call = dict(certificate.call or {})
        for name in ("phone_number", "lead_id", "agent", "vicidial_id", "filename"):
            if name in call:
                call[name] = None if name != "filename" else REDACTED
        certificate.call = call
        certificate.object_key = key_marker(certificate.object_key)
        DeletionCertificate.objects.redact([certificate], ["call", "object_key"])
    # The admin's own change log names a recording by str(recording), which shows its filename.
    content_type = ContentType.objects.get_for_model(Recording)
    LogEntry.objects.filter(content_type=content_type, object_id=str(recording.pk)).update(
        object_repr=f"recording {recording.pk} (erased)", change_message=""
    )


# --- erasing --------------------------------------------------------------------------------------------


@dataclass
class _Erased:
    versions: int = 0
    local: bool = False


def _delete_copies(recording: Recording, target: Any) -> _Erased:
    """Delete every cloud version and the local file; raises StorageError/OSError on a refusal."""
    done = _Erased()
    key = recording.object_key
    if key and not key.startswith("redacted:"):
        versions = target.versions(key)
        if versions:
            result = target.delete(versions)
            if result.failed:
                first = result.failed[0]
                raise StorageError(
                    f"bucket refused to delete {len(result.failed)} version(s): {first.code} {first.message}",
                    permanent=False,
                )
            done.versions = len(result.deleted)
    if recording.local_path:
        try:
            path = spool.resolve(settings.VICIREC_SPOOL_DIRS, recording.local_path)
        except FileNotFoundError:
            path = None
        if path is not None:
            os.unlink(path)
            done.local = True
    return done


def _items_by_recording(ids: Iterable[int]) -> dict[int, list[ErasureItem]]:
    items: dict[int, list[ErasureItem]] = {}
    for item in ErasureItem.objects.filter(recording_id__in=list(ids), status__in=OPEN).select_related("request"):
        items.setdefault(item.recording_id, []).append(item)
    return items


def _refuse(recording: Recording, items: list[ErasureItem], *, now: datetime, report: ErasureReport) -> None:
    """Record the refusal on the items and, when it is new, in the recording's custody log."""
    hold_ids = sorted(h.pk for h in holds_covering(Recording.objects.filter(pk=recording.pk)))
    text = refusal_text(hold_ids)
    report.refused_held += 1
    report.refusals.append(f"{recording.pk}: {text}")
    if report.dry_run:
        return
    for item in items:
        if item.status == ErasureItem.Status.REFUSED and item.holds == hold_ids:
            continue
        ErasureItem.objects.filter(pk=item.pk).update(
            status=ErasureItem.Status.REFUSED, holds=hold_ids, refusal=text, refused_at=now, updated_at=now
        )
        custody.note(recording, actor=ACTOR, detail=f"erasure request #{item.request_id} {text}", now=now)


def _certify_and_scrub(
    moved: list[Recording],
    *,
    items: dict[int, list[ErasureItem]],
    erased: dict[int, _Erased],
    secrets: dict[int, list[str]],
    token: str,
    now: datetime,
    active_holds: int,
) -> None:
    """Inside the transition's transaction: for each erased recording, scrub its permanent records, write
    its erasure certificate (with what was redacted) and close its requests."""
    hold_check = {"checked_at": now.isoformat(), "held": False, "active_holds_checked": active_holds}
    for r in moved:
        first = min(items[r.pk], key=lambda i: i.request.requested_at)
        request = first.request
        with redaction(basis=request.legal_basis) as redacted:
            _redact_records(r, secrets[r.pk])
            ledger.redact_for_erasure(
                r.pk,
                [value for value in (r.phone_number, r.filename) if len(value or "") >= 5],
                lambda text, found=secrets[r.pk]: _scrub_text(text, found),
            )
            certificate = ErasureCertificate.objects.create(
                recording_id=r.pk,
                request=request,
                erased_at=now,
                run=token,
                requested_by=request.requested_by_name,
                legal_basis=request.legal_basis,
                call_time=r.start_time,
                length_in_sec=r.length_in_sec,
                object_key_sha256=key_marker(r.object_key).rsplit(":", 1)[-1] if r.object_key else "",
                original_sha256=r.original_sha256,
                original_size=r.original_size,
                stored_sha256=r.stored_sha256,
                stored_size=r.stored_size,
                cloud_versions_deleted=erased[r.pk].versions,
                local_deleted=erased[r.pk].local,
                state_before=r.state,
                hold_check=hold_check,
                redactions=redacted.as_list(),
            )
            redacted.recorded = True
            ledger.append_rows("erasure_certificate", [certificate.pk])
        ErasureItem.objects.filter(pk__in=[i.pk for i in items[r.pk]]).update(
            status=ErasureItem.Status.ERASED, erased_at=now, error="", updated_at=now
        )


def _erase_batch(
    batch: list[Recording],
    items: dict[int, list[ErasureItem]],
    *,
    target: Any,
    token: str,
    now: datetime,
    report: ErasureReport,
) -> None:
    # The deletion gate, as retention: a hold placed now is committed before this check or after the deletes.
    with transaction.atomic():
        DeletionGate.enter()
        held_now = set(Recording.objects.filter(pk__in=[r.pk for r in batch]).held().values_list("pk", flat=True))
        active_holds = LegalHold.objects.active().count()
    try:
        for recording in batch:
            if recording.pk in held_now:
                report.held_at_erasure += 1
                release(recording, token=token)
                _refuse(recording, items[recording.pk], now=now, report=report)
        erased: dict[int, _Erased] = {}
        for recording in (r for r in batch if r.pk not in held_now):
            try:
                erased[recording.pk] = _delete_copies(recording, target)
            except (StorageError, OSError, ValueError) as exc:
                message = getattr(exc, "message", None) or str(exc)
                report.failed += 1
                report.errors.append(f"{recording.pk}: {_scrub_text(message, _secrets(recording))}")
                release(recording, token=token)
                ErasureItem.objects.filter(pk__in=[i.pk for i in items[recording.pk]]).update(
                    error=message[:4000], updated_at=now
                )
    finally:
        DeletionGate.leave()
    done = [r for r in batch if r.pk in erased]
    secrets = {r.pk: _secrets(r) for r in done}
    moved = custody.transition_batch(
        [
            (
                r,
                f"erased on erasure request #{min(i.request_id for i in items[r.pk])} "
                f"({items[r.pk][0].request.legal_basis}); not held at erasure; "
                f"{erased[r.pk].versions} cloud version(s) deleted, local copy "
                f"{'deleted' if erased[r.pk].local else 'not present'}",
            )
            for r in done
        ],
        to=Recording.State.ERASED,
        token=token,
        actor=ACTOR,
        now=now,
        fields=_scrubbed,
        then=lambda moved: _certify_and_scrub(
            moved, items=items, erased=erased, secrets=secrets, token=token, now=now, active_holds=active_holds
        ),
    )
    report.erased += len(moved)
    report.cloud_versions_deleted += sum(erased[r.pk].versions for r in moved)
    report.local_deleted += sum(1 for r in moved if erased[r.pk].local)
    report.bytes_erased += sum(r.stored_size or r.original_size or 0 for r in moved)


def _close_finished(
    items: dict[int, list[ErasureItem]], found: dict[int, Recording], *, now: datetime, report: ErasureReport
) -> None:
    """Items of recordings already erased (by another request) or that vicirec never cataloged."""
    watermark = Recording.objects.aggregate(top=Max("recording_id"))["top"] or 0
    for recording_id, its in items.items():
        recording = found.get(recording_id)
        if recording is not None and recording.state == Recording.State.ERASED:
            status = ErasureItem.Status.ERASED
        elif recording is None and recording_id <= watermark:
            status, report.not_cataloged = ErasureItem.Status.NOT_CATALOGED, report.not_cataloged + 1
        else:
            if recording is None:
                report.waiting_for_catalog += 1
            continue
        if not report.dry_run:
            ErasureItem.objects.filter(pk__in=[i.pk for i in its]).update(status=status, updated_at=now)


def erase_recordings(
    *,
    now: datetime,
    dry_run: bool = False,
    follow: bool = True,
    recording_ids: Iterable[int] | None = None,
    limit: int | None = None,
) -> ErasureReport:
    """Take up VICIdial's new queue rows (``follow``), then erase every recording with an open request that
    no hold covers, and refuse (visibly) those a hold covers. ``recording_ids`` narrows the run to those
    recordings (after a hold's release)."""
    token = new_token("erasure")
    report = ErasureReport(dry_run=dry_run, run=token)
    if follow:
        follow_queue(now=now, report=report)
    open_items = ErasureItem.objects.filter(status__in=OPEN)
    if recording_ids is not None:
        open_items = open_items.filter(recording_id__in=list(recording_ids))
    ids = sorted(set(open_items.values_list("recording_id", flat=True)))
    if dry_run and follow:
        ids = sorted(set(ids) | {r["recording_id"] for r in _new_queue_rows()})
    if not dry_run:
        release_dead_claims("erasure", now=now)
    target = None
    for start in range(0, len(ids), BATCH):
        if limit is not None and report.erased + report.failed >= limit:
            break
        chunk = ids[start : start + BATCH]
        items = _items_by_recording(chunk)
        found = {r.pk: r for r in Recording.objects.filter(pk__in=chunk)}
        if dry_run:
            for pk in chunk:
                items.setdefault(pk, [])
        _close_finished(items, found, now=now, report=report)
        live = [pk for pk, r in found.items() if r.state != Recording.State.ERASED and pk in items]
        held = set(Recording.objects.filter(pk__in=live).held().values_list("pk", flat=True))
        for pk in sorted(held):
            _refuse(found[pk], items[pk], now=now, report=report)
        free = [pk for pk in live if pk not in held]
        if dry_run:
            report.would_erase.extend(sorted(free))
            continue
        batch = claim(
            Recording.objects.filter(pk__in=free), token=token, now=now, limit=len(free) or 1, order=("recording_id",)
        )
        report.busy += len(free) - len(batch)
        if batch:
            target = target or get_target()
            _erase_batch(batch, items, target=target, token=token, now=now, report=report)
    log.info("erasure: %s", {k: v for k, v in report.as_dict().items() if k not in ("would_erase", "refusals")})
    return report


def carry_out_after_release(recording_ids: Iterable[int], *, now: datetime) -> ErasureReport | None:
    """After (part of) a hold is released: erase the refused recordings no active hold covers any more.
    A failure here leaves them refused; the next scheduled run re-checks them."""
    ids = list(
        ErasureItem.objects.filter(recording_id__in=list(recording_ids), status__in=OPEN)
        .values_list("recording_id", flat=True)
        .distinct()
    )
    if not ids:
        return None
    try:
        return erase_recordings(now=now, follow=False, recording_ids=ids)
    except Exception:  # the release itself is done; the scheduled run carries the erasure out
        log.exception("erasure after a hold's release failed; the next erase_recordings run retries")
        return None


# --- requests at the desk ----------------------------------------------------------------------------


def _subject(phone: str, lead_id: int | None) -> Q:
    condition = Q(pk__in=[])
    if phone:
        condition |= Q(phone_number=phone)
    if lead_id:
        condition |= Q(lead_id=lead_id)
    return condition


def open_request(
    *, actor: Actor, phone: str = "", lead_id: int | None = None, legal_basis: str = "", reason: str = "", now: datetime
) -> ErasureRequest:
    """A data subject's request, by phone number and/or lead: waits for a Legal approver."""
    phone = "".join(ch for ch in phone if ch.isdigit())
    if not phone and not lead_id:
        raise ValidationError("An erasure request names a phone number or a lead.")
    if actor.user is not None and not actor.user.has_perm("retention.open_erasurerequest"):
        raise PermissionDenied("Opening an erasure request needs the 'Can open erasure requests' permission.")
    return ErasureRequest.objects.create(
        source=ErasureRequest.Source.DESK,
        status=ErasureRequest.Status.AWAITING_APPROVAL,
        legal_basis=legal_basis.strip() or "GDPR Art. 17(1)",
        reason=reason.strip(),
        subject_phone=phone,
        subject_lead_id=lead_id,
        requested_at=now,
        requested_by=actor.user,
        requested_by_name=actor.name,
    )


@dataclass
class Preview(Report):
    recordings: int = 0
    bytes: int = 0
    already_erased: int = 0
    held: int = 0
    holds: list[str] = field(default_factory=list)


def preview(request: ErasureRequest) -> Preview:
    """What a desk request covers now: recordings, bytes, and the holds that block part of it."""
    chosen = Recording.objects.filter(_subject(request.subject_phone, request.subject_lead_id))
    result = Preview()
    live = chosen.exclude(state=Recording.State.ERASED)
    result.recordings = live.count()
    result.already_erased = chosen.filter(state=Recording.State.ERASED).count()
    result.bytes = (
        live.filter(state__in=Recording.COPY_STATES).aggregate(total=Sum("stored_size", default=0))["total"] or 0
    )
    held = live.held()
    result.held = held.count()
    if result.held:
        result.holds = [str(h) for h in LegalHold.objects.active() if held.filter(h.condition()).exists()]
    return result


def _decide(request: ErasureRequest, *, approver: Any, reason: str) -> None:
    if request.status != ErasureRequest.Status.AWAITING_APPROVAL:
        raise ValidationError(f"{request} was already {request.get_status_display().lower()}.")
    if not is_approver(approver):
        raise PermissionDenied("Deciding on an erasure request needs a Legal approver.")
    if request.requested_by_id is not None and request.requested_by_id == approver.pk:
        raise PermissionDenied("Four eyes: the approver of an erasure request is not the person who opened it.")
    if not reason.strip():
        raise ValidationError("A decision needs a reason.")


def _close(request: ErasureRequest, status: str, *, approver: Any, reason: str, now: datetime) -> None:
    """Record the decision; from now on the request names no data subject (phone number, lead)."""
    ErasureRequest.objects.filter(pk=request.pk).update(
        status=status,
        decided_at=now,
        decided_by=approver,
        decided_by_name=approver.get_username(),
        decision_reason=reason.strip(),
        subject_phone="",
        subject_lead_id=None,
    )


def approve_request(request: ErasureRequest, *, approver: Any, reason: str, now: datetime) -> ErasureReport:
    """A Legal approver (not the requester) approves: the recordings it covers now are erased, those under
    hold refused; the subject's phone number and lead are blanked from the request."""
    _decide(request, approver=approver, reason=reason)
    with transaction.atomic():
        ids = list(
            Recording.objects.filter(_subject(request.subject_phone, request.subject_lead_id))
            .exclude(state=Recording.State.ERASED)
            .values_list("pk", flat=True)
        )
        ErasureItem.objects.bulk_create(ErasureItem(request=request, recording_id=pk, updated_at=now) for pk in ids)
        _close(request, ErasureRequest.Status.APPROVED, approver=approver, reason=reason, now=now)
    request.refresh_from_db()
    return erase_recordings(now=now, follow=False, recording_ids=ids)


def reject_request(request: ErasureRequest, *, approver: Any, reason: str, now: datetime) -> None:
    _decide(request, approver=approver, reason=reason)
    _close(request, ErasureRequest.Status.REJECTED, approver=approver, reason=reason, now=now)
    request.refresh_from_db()


# --- figures for pipeline_status, the dashboard and evidence -------------------------------------------


def figures(*, now: datetime) -> dict[str, int]:
    """Erasure requests pending, refused under hold, and done in the last 30 days (by recording)."""
    items = ErasureItem.objects
    return {
        "pending": items.filter(status=ErasureItem.Status.PENDING).count(),
        "awaiting_approval": ErasureRequest.objects.filter(status=ErasureRequest.Status.AWAITING_APPROVAL).count(),
        "refused_under_hold": items.filter(status=ErasureItem.Status.REFUSED).count(),
        "erased_30_days": items.filter(status=ErasureItem.Status.ERASED, erased_at__gte=now - timedelta(days=30))
        .values("recording_id")
        .distinct()
        .count(),
    }


def refusals(*, limit: int) -> list[str]:
    """The latest refusals, as "recording N (request #M): refused: under hold H (GDPR Art. 17(3)(e))"."""
    refused = ErasureItem.objects.filter(status=ErasureItem.Status.REFUSED).order_by("-refused_at")[:limit]
    return [f"recording {i.recording_id} (request #{i.request_id}): {i.refusal}" for i in refused]


def blocked_by_hold(hold_id: int, *, limit: int = 50) -> list[ErasureItem]:
    """The erasure requests this hold refused, newest first: refused items are few, so the latest 1,000 are
    read and those naming the hold kept (the hold's page shows them, released or not)."""
    refused = ErasureItem.objects.filter(refused_at__isnull=False).order_by("-refused_at")[:1000]
    return [item for item in refused if hold_id in (item.holds or [])][:limit]


def blocked_erasures(recordings: Any) -> list[dict[str, Any]]:
    """The erasure requests that legal holds refused for these recordings (evidence packages list them,
    with the holds named and whether the erasure was carried out after the release)."""
    refused = ErasureItem.objects.filter(recording_id__in=recordings.values("pk"), refused_at__isnull=False)
    return [
        {
            "request": item.request_id,
            "recording_id": item.recording_id,
            "holds": item.holds,
            "refusal": item.refusal,
            "refused_at": item.refused_at.isoformat() if item.refused_at else None,
            "status": item.status,
            "erased_at": item.erased_at.isoformat() if item.erased_at else None,
        }
        for item in refused.order_by("recording_id", "pk")
    ]
