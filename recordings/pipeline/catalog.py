"""Stage 1, catalog: read new recording_log rows from VICIdial (read-only) into vicirec's catalog.

Rows come from recording_log and from recording_log_archive, where VICIdial's ADMIN_archive_log_tables.pl
moves old rows (a backfill, or a run after a long stop, finds them there); a row in both is taken from the
live table, as VICIdial's own pages do. Call details are looked up in vicidial_log / vicidial_closer_log
and then in their _archive tables. An _archive table that is absent (VICIdial before 2.12) or not granted
is reported and skipped.

The watermark is the highest recording_id already cataloged or remembered as open, so a crash between
batches (or inside one: inserts ignore rows that already exist) is resumed by the next run with nothing
lost or added twice. Each batch costs a fixed number of queries whatever its size: the recording_log rows,
their outbound and inbound call-log rows, their leads, the existing catalog ids, and the inserts.

A call still being recorded (end_time NULL) does not hold the watermark: a floor of agents always has open
calls, and VICIdial leaves rows without end_time after a crashed channel. Its id is remembered (OpenCall)
in the same transaction as the batch it was seen in, and the finished rows around it are cataloged in the
run that first sees them. Each run re-reads the remembered ids first, in one query per table however many
there are, and catalogs those that have ended, or are older than VICIREC_SYNC_OPEN_GRACE_HOURS (a call that
was never stopped is cataloged as it is).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import Max
from simple_history.utils import bulk_create_with_history

from recordings import custody
from recordings.lib import spool
from recordings.models import Agent, Campaign, OpenCall, Recording
from recordings.vicidial import (
    RecordingLog,
    RecordingLogArchive,
    VicidialCampaign,
    VicidialCloserLog,
    VicidialCloserLogArchive,
    VicidialInboundGroup,
    VicidialLead,
    VicidialLog,
    VicidialLogArchive,
    VicidialModel,
    VicidialUser,
)
from vicirec.db import inserts
from vicirec.reports import Report

log = logging.getLogger("vicirec.catalog")

ACTOR = "sync_recordings"
ROW_FIELDS = (
    "recording_id",
    "channel",
    "server_ip",
    "extension",
    "start_time",
    "start_epoch",
    "end_time",
    "end_epoch",
    "length_in_sec",
    "filename",
    "location",
    "lead_id",
    "user",
    "vicidial_id",
)


@dataclass
class SyncReport(Report):
    campaigns_added: int = 0
    campaigns_updated: int = 0
    agents_synced: int = 0
    recordings_added: int = 0
    located: int = 0
    missing: int = 0
    rejected: int = 0
    other_server: int = 0
    unmatched_calls: int = 0
    held_open: int = 0  # calls still being recorded, remembered for the next runs
    open_finished: int = 0  # remembered calls cataloged in this run (ended, or past the grace period)
    open_forgotten: int = 0  # remembered calls whose row VICIdial no longer has (nothing to catalog)
    from_archive_table: int = 0
    batches: int = 0
    watermark: int = 0
    not_read: list[str] = field(default_factory=list)  # VICIdial _archive tables that could not be read
    # "no recordings found under <folder>" for each spool folder holding no recording at all, when this
    # run looked for files: a wrong VICIREC_SPOOL_DIRS must not hide behind every recording being missing.
    empty_spools: list[str] = field(default_factory=list)


Progress = Callable[[int, int], None]


def sync_campaigns() -> tuple[int, int]:
    """Copy VICIdial's campaigns and in-groups into the catalog. Returns (added, updated)."""
    known = {(c.kind, c.campaign_id): c for c in Campaign.objects.all()}
    rows = [
        (Campaign.Kind.OUTBOUND, c["campaign_id"], c["campaign_name"], c["active"])
        for c in VicidialCampaign.objects.values("campaign_id", "campaign_name", "active")
    ] + [
        (Campaign.Kind.INBOUND, g["group_id"], g["group_name"], g["active"])
        for g in VicidialInboundGroup.objects.values("group_id", "group_name", "active")
    ]
    new: list[Campaign] = []
    updated = 0
    for kind, campaign_id, name, active in rows:
        if not campaign_id:
            continue
        name, is_active = (name or "")[:50], active != "N"
        existing = known.get((kind, campaign_id))
        if existing is None:
            new.append(Campaign(kind=kind, campaign_id=campaign_id, name=name, active=is_active))
        elif (existing.name, existing.active) != (name, is_active):
            existing.name, existing.active = name, is_active
            existing._change_reason = "renamed or (de)activated in VICIdial"  # type: ignore[attr-defined]
            existing.save()
            updated += 1
    if new:
        bulk_create_with_history(new, Campaign, default_change_reason="found in VICIdial", ignore_conflicts=True)
    return len(new), updated


def sync_agents(now: datetime) -> int:
    """Copy VICIdial's users (``user`` and ``full_name``) into the catalog's Agent table, so the desk finds
    recordings by an agent's name. A few hundred rows: read whole, written only where they changed.
    Returns how many were added or renamed."""
    known = dict(Agent.objects.values_list("user", "full_name"))
    changed = [
        Agent(user=user, full_name=(name or "")[:50], synced_at=now)
        for user, name in VicidialUser.objects.values_list("user", "full_name")
        if user and known.get(user) != (name or "")[:50]
    ]
    Agent.objects.bulk_create([a for a in changed if a.user not in known], ignore_conflicts=True)
    Agent.objects.bulk_update([a for a in changed if a.user in known], ["full_name", "synced_at"], batch_size=500)
    return len(changed)


def _call_time(row: dict[str, Any]) -> datetime | None:
    """The call's start, from start_epoch when present (immune to the server's DST), else start_time."""
    if row["start_epoch"]:
        return datetime.fromtimestamp(row["start_epoch"], tz=UTC)
    if row["start_time"] is not None:
        return row["start_time"]
    if row["end_epoch"]:
        return datetime.fromtimestamp(row["end_epoch"], tz=UTC)
    return None


ARCHIVE_TABLES = (RecordingLogArchive, VicidialLogArchive, VicidialCloserLogArchive)

# A call time further ahead of our clock than this is a telephony server's clock error, not a call.
CLOCK_SKEW = timedelta(hours=1)
# A call time before this is a telephony server's clock reset (1970: an epoch of 0), not a call. Taken as
# it is, it would make a call of today look long past its retention, so never uploaded and deleted.
EARLIEST_CALL = datetime(2000, 1, 1, tzinfo=UTC)


def _still_open(row: dict[str, Any], now: datetime) -> bool:
    """Whether the row's call is still being recorded (no end yet) and not stale.

    A row dated in the future does not count: a wrong clock would otherwise keep it waiting until real
    time caught up (years, for a zeroed or corrupted epoch); it is cataloged as it is.
    """
    if row["end_time"] is not None or row["end_epoch"] is not None:
        return False
    started = _call_time(row)
    grace = now - timedelta(hours=settings.VICIREC_SYNC_OPEN_GRACE_HOURS)
    return started is not None and grace < started <= now + CLOCK_SKEW


def _unreadable(model: type[VicidialModel]) -> str:
    """Why a VICIdial table cannot be read ("" when it can): VICIdial before 2.12 has no _archive tables,
    and a grant may leave them out."""
    try:
        model.objects.exists()
    except DatabaseError as exc:
        return f"{model._meta.db_table} not read ({exc}): rows VICIdial has moved there are not cataloged"
    return ""


def _rows_by_id(ids: list[int], *, moved: bool) -> list[dict[str, Any]]:
    """The recording rows with these ids (one query per table), a row in both taken from the live table."""
    rows: dict[int, dict[str, Any]] = {}
    for model in (RecordingLogArchive, RecordingLog) if moved else (RecordingLog,):
        found = model.objects.filter(recording_id__in=ids).values(*ROW_FIELDS)
        rows.update((row["recording_id"], row | {"table": model._meta.db_table}) for row in found)
    return [rows[recording_id] for recording_id in sorted(rows)]


def _rows_above(watermark: int, size: int, *, moved: bool) -> list[dict[str, Any]]:
    """The next ``size`` recording rows above the watermark, in id order, from recording_log and (when
    ``moved``) recording_log_archive; a row in both is taken from the live table."""
    rows: dict[int, dict[str, Any]] = {}
    for model in (RecordingLogArchive, RecordingLog) if moved else (RecordingLog,):
        found = model.objects.filter(recording_id__gt=watermark).order_by("recording_id").values(*ROW_FIELDS)[:size]
        rows.update((row["recording_id"], row | {"table": model._meta.db_table}) for row in found)
    return [rows[recording_id] for recording_id in sorted(rows)[:size]]


CALL_FIELDS = ("lead_id", "campaign_id", "phone_number", "user")


def _calls(models: tuple[type[VicidialModel], ...], key: str, values: set[Any]) -> dict[str, dict[str, Any]]:
    """Call-log rows by ``key``, from the live table and then, for those not there, its _archive table."""
    calls: dict[str, dict[str, Any]] = {}
    for model in models:
        wanted = {v for v in values if str(v) not in calls}
        if wanted:
            calls.update(
                (str(c[key]), c) for c in model.objects.filter(**{f"{key}__in": wanted}).values(key, *CALL_FIELDS)
            )
    return calls


class _CallIndex:
    """The call-log rows, leads and campaigns of one batch, fetched with one query per table."""

    def __init__(self, rows: list[dict[str, Any]], campaigns: dict[tuple[str, str], int], *, moved: bool) -> None:
        outbound = {r["vicidial_id"] for r in rows if r["vicidial_id"] and "." in r["vicidial_id"]}
        inbound = {int(r["vicidial_id"]) for r in rows if r["vicidial_id"] and r["vicidial_id"].isdigit()}
        self.outbound = _calls((VicidialLog, *([VicidialLogArchive] if moved else [])), "uniqueid", outbound)
        self.inbound = _calls(
            (VicidialCloserLog, *([VicidialCloserLogArchive] if moved else [])), "closecallid", inbound
        )
        lead_ids = {r["lead_id"] for r in rows if r["lead_id"]}
        self.lead_phones = (
            dict(VicidialLead.objects.filter(lead_id__in=lead_ids).values_list("lead_id", "phone_number"))
            if lead_ids
            else {}
        )
        self.campaigns = campaigns

    def call_for(self, row: dict[str, Any]) -> tuple[str, dict[str, Any] | None]:
        vicidial_id = row["vicidial_id"] or ""
        if "." in vicidial_id:
            direction, call = Recording.Direction.OUTBOUND, self.outbound.get(vicidial_id)
        elif vicidial_id.isdigit():
            direction, call = Recording.Direction.INBOUND, self.inbound.get(vicidial_id)
        else:
            return Recording.Direction.UNKNOWN, None
        # VICIdial's own rule matches on the id *and* the lead; a DID call without a lead has lead 0.
        if call is not None and row["lead_id"] and call["lead_id"] != row["lead_id"]:
            call = None
        return (direction, call) if call is not None else (Recording.Direction.UNKNOWN, None)

    def campaign_pk(self, direction: str, call: dict[str, Any] | None) -> int | None:
        if call is None or not call["campaign_id"]:
            return None
        kind = Campaign.Kind.OUTBOUND if direction == Recording.Direction.OUTBOUND else Campaign.Kind.INBOUND
        key = (kind, call["campaign_id"])
        if key not in self.campaigns:
            # A call of a campaign that VICIdial no longer lists: keep it as an inactive campaign.
            campaign, _ = Campaign.objects.get_or_create(
                kind=kind, campaign_id=call["campaign_id"], defaults={"active": False}
            )
            self.campaigns[key] = campaign.pk
        return self.campaigns[key]


def _text(value: str | None, limit: int) -> str:
    """A VICIdial text column as vicirec keeps it: a NUL byte (which PostgreSQL cannot store, and which
    no real name contains) is written as the four characters ``\\x00``, so a hostile row is recorded as
    it came and refused, not lost with the rest of its batch."""
    return (value or "").replace("\x00", "\\x00")[:limit]


def _dated(row: dict[str, Any], now: datetime) -> tuple[datetime | None, list[str]]:
    """The call's start time as recording_log gives it (None when unknown or in the future), with notes."""
    started = _call_time(row)
    notes = [] if started else ["call time unknown in recording_log; the catalog time stands in for it"]
    if started is not None and started > now + CLOCK_SKEW:
        notes.append(
            f"recording_log dates the call {started:%Y-%m-%d %H:%M} UTC, in the future (a telephony server's "
            "clock is wrong?); the catalog time stands in for it"
        )
        started = None
    elif started is not None and started < EARLIEST_CALL:
        notes.append(
            f"recording_log dates the call {started:%Y-%m-%d %H:%M} UTC, before any VICIdial call (a telephony "
            "server's clock was reset?); the catalog time stands in for it"
        )
        started = None
    return started, notes


_new_recording = inserts.Builder(Recording)


def _catalog_entry(
    row: dict[str, Any],
    calls: _CallIndex,
    *,
    node: str,
    spools: list[Path],
    now: datetime,
    report: SyncReport,
    listing: spool.Listing,
) -> Recording:
    direction, call = calls.call_for(row)
    if row["vicidial_id"] and call is None:
        report.unmatched_calls += 1
    started, notes = _dated(row, now)
    recording = _new_recording(
        recording_id=row["recording_id"],
        filename=_text(row["filename"], 255),
        server_ip=_text(row["server_ip"], 15),
        channel=_text(row["channel"], 100),
        extension=_text(row["extension"], 100),
        vicidial_location=_text(row["location"], 255),
        vicidial_id=_text(row["vicidial_id"], 20),
        start_time=started or now,
        length_in_sec=row["length_in_sec"],
        lead_id=row["lead_id"] or None,
        phone_number=_text((call or {}).get("phone_number") or calls.lead_phones.get(row["lead_id"]), 18),
        agent=_text(row["user"], 20),
        direction=direction,
        campaign_id=calls.campaign_pk(direction, call),
        state_changed_at=now,
        cataloged_at=now,
    )
    if node and recording.server_ip != node:
        # Another telephony server's disk holds this file; that server's worker looks for it.
        report.other_server += 1
        recording.error = "; ".join(notes)
        return recording
    day = started.date() if started else None
    found = spool.locate(row["filename"], row["location"], spools, day, listing=listing)
    if isinstance(found, spool.Found):
        report.located += 1
        recording.local_path = found.relative
        recording.original_size = found.size  # the capture's size on disk; the archive stage hashes and re-reads it
    elif found.permanent:
        report.rejected += 1
        recording.state = Recording.State.REJECTED
        notes.insert(0, found.reason)
    else:
        report.missing += 1
        recording.state = Recording.State.MISSING
        recording.next_attempt_at = now + timedelta(minutes=settings.VICIREC_MISSING_RETRY_MINUTES)
        notes.insert(0, found.reason)
    recording.error = "; ".join(notes)
    return recording


def _catalog_batch(
    rows: list[dict[str, Any]],
    calls: _CallIndex,
    *,
    node: str,
    spools: list[Path],
    now: datetime,
    report: SyncReport,
    opened: Sequence[int] = (),
    closed: Sequence[int] = (),
) -> None:
    """Catalog one batch of recording_log rows (those not cataloged yet), each with its first custody event.

    In the same transaction, remember the ids of the batch's calls still being recorded (``opened``) and
    forget those cataloged or gone (``closed``): the watermark never moves past a call not on record.
    The files are looked for before the transaction, which spans no file I/O, each spool folder read once
    for the batch (spool.Listing).
    """
    listing = spool.Listing()
    entries = [
        _catalog_entry(r, calls, node=node, spools=spools, now=now, report=report, listing=listing) for r in rows
    ]
    tables = {r["recording_id"]: r["table"] for r in rows}
    with transaction.atomic():
        OpenCall.objects.bulk_create(
            [OpenCall(recording_id=rid, first_seen_at=now) for rid in opened], ignore_conflicts=True
        )
        if closed:
            OpenCall.objects.filter(recording_id__in=list(closed)).delete()
        fresh = custody.catalog(
            entries,
            actor=ACTOR,
            now=now,
            detail=lambda e: (
                f"cataloged from {tables[e.recording_id]}: " + (e.error or e.local_path or "file not looked for here")
            ),
        )
    report.recordings_added += len(fresh)
    report.from_archive_table += sum(tables[e.recording_id] != RecordingLog._meta.db_table for e in fresh)


def _catalog_ended_calls(
    campaigns: dict[tuple[str, str], int],
    *,
    moved: tuple[bool, bool],
    node: str,
    spools: list[Path],
    now: datetime,
    report: SyncReport,
) -> None:
    """Re-read the calls remembered open (a fixed number of queries however many) and catalog those that
    have ended or passed the grace period; forget those VICIdial no longer has."""
    remembered = list(OpenCall.objects.values_list("recording_id", flat=True))
    if not remembered:
        return
    rows = _rows_by_id(remembered, moved=moved[0])
    done = [row for row in rows if not _still_open(row, now)]
    gone = set(remembered) - {row["recording_id"] for row in rows}
    if gone:
        log.warning("sync: %d calls remembered open are no longer in recording_log: %s", len(gone), sorted(gone))
    if done or gone:
        calls = _CallIndex(done, campaigns, moved=moved[1])
        closed = [row["recording_id"] for row in done] + sorted(gone)
        _catalog_batch(done, calls, node=node, spools=spools, now=now, report=report, closed=closed)
    report.open_finished, report.open_forgotten = len(done), len(gone)


def sync_recordings(
    *,
    now: datetime,
    node: str | None = None,
    spools: list[Path] | None = None,
    batch_size: int | None = None,
    limit: int | None = None,
    progress: Progress | None = None,
) -> SyncReport:
    """Catalog every recording_log row above the watermark, in batches. Safe to run again at any time."""
    node = settings.VICIREC_NODE if node is None else node
    spools = settings.VICIREC_SPOOL_DIRS if spools is None else spools
    batch_size = batch_size or settings.VICIREC_SYNC_BATCH
    report = SyncReport()
    report.campaigns_added, report.campaigns_updated = sync_campaigns()
    report.agents_synced = sync_agents(now)
    campaigns = {(kind, cid): pk for pk, kind, cid in Campaign.objects.values_list("pk", "kind", "campaign_id")}
    unreadable = {model: _unreadable(model) for model in ARCHIVE_TABLES}  # one probe per table and run
    report.not_read = [problem for problem in unreadable.values() if problem]
    for problem in report.not_read:
        log.warning("sync: %s", problem)
    rows_moved = not unreadable[RecordingLogArchive]
    calls_moved = not (unreadable[VicidialLogArchive] or unreadable[VicidialCloserLogArchive])
    _catalog_ended_calls(campaigns, moved=(rows_moved, calls_moved), node=node, spools=spools, now=now, report=report)
    watermark = max(
        Recording.objects.aggregate(top=Max("recording_id"))["top"] or 0,
        OpenCall.objects.aggregate(top=Max("recording_id"))["top"] or 0,
    )
    newest = max(
        model.objects.aggregate(top=Max("recording_id"))["top"] or 0
        for model in ((RecordingLog, RecordingLogArchive) if rows_moved else (RecordingLog,))
    )
    total = max(newest - watermark, 0)
    done = 0
    while limit is None or done < limit:
        size = batch_size if limit is None else min(batch_size, limit - done)
        rows = _rows_above(watermark, size, moved=rows_moved)
        if not rows:
            break
        opened = [row["recording_id"] for row in rows if _still_open(row, now)]
        finished = [row for row in rows if row["recording_id"] not in opened]
        calls = _CallIndex(finished, campaigns, moved=calls_moved)
        _catalog_batch(finished, calls, node=node, spools=spools, now=now, report=report, opened=opened)
        report.batches += 1
        watermark = rows[-1]["recording_id"]
        done += len(rows)
        if progress:
            progress(done, total)
    report.held_open = OpenCall.objects.count()
    if report.located + report.missing + report.rejected:
        report.empty_spools = [f"no recordings found under {f}" for f in spools if not spool.holds_recordings(f)]
    report.watermark = watermark
    log.info("sync: %s", report.as_dict())
    return report
