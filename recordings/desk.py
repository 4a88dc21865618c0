"""Everyday tools of the compliance desk's recordings list: filters by hold and by expiry, search by an
agent's name, and the CSV export of a search result.

Each stays fast at any catalog size: the filters reuse the querysets retention and holds use
(``Recording.objects.expired`` / ``expiring``, a hold's ``covered()``), an agent's name is looked up in
the small Agent table first and then matched on the indexed ``agent`` column (``search_lookup``), and
the CSV export takes at most CSV_LIMIT rows, reads them in batches with their campaign and agent name
joined, and logs one access event per recording before the first byte, like an evidence export.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.contrib import admin
from django.db.models import OuterRef, Q, QuerySet, Subquery
from django.http import HttpRequest, StreamingHttpResponse

from holds.models import LegalHold, PartialRelease, covered_ids, holds_by_recording
from recordings.export import csv_cell, log_access
from recordings.lib import phones
from recordings.models import AccessEvent, Agent, Recording, RecordingEvent
from vicirec import clock
from vicirec.actors import Actor
from vicirec.lookups import either

AGENTS_PER_NAME = 100  # agents one name may match ("Maria" in a large center)
SEARCH_IDS = 10_000  # an exact match (a phone number's calls) of up to this many recordings is read as ids
CSV_LIMIT = 10_000  # rows one CSV export may take; narrow the search beyond that
CSV_BATCH = 1000
CSV_COLUMNS = [
    "recording_id",
    "call_start",
    "length_in_sec",
    "campaign",
    "direction",
    "phone_number",
    "phone",
    "lead_id",
    "agent",
    "agent_name",
    "state",
    "held",
    "server_ip",
    "filename",
    "original_sha256",
    "stored_sha256",
]


def agent_users(text: str) -> list[str]:
    """The VICIdial users whose full name starts with ``text`` (case as the database compares it), at most
    AGENTS_PER_NAME, read from the small Agent table."""
    text = text.strip()
    if len(text) < 2:
        return []
    return list(Agent.objects.filter(full_name__istartswith=text).values_list("user", flat=True)[:AGENTS_PER_NAME])


def search_lookup(agents: list[str], exact: list[Q]) -> Q:
    """A search's alternatives written for the index: the agents (user ids, and the users a name resolved
    to) as one ``agent IN (…)``, and each exact match on another column (phone, lead, recording id,
    filename: a few rows) read first as recording ids.

    The same recordings as ORing the conditions, but led by the agent column alone (``vicirec.lookups
    .either``): ORed conditions on several columns make MariaDB merge their indexes and fetch and sort
    every matching row (2 s for an agent's 20,000 calls at 1,000,000 rows). An exact match of more than
    SEARCH_IDS recordings stays a condition, ORed on."""
    ids, large = covered_ids([(Recording.objects.filter(c).values_list("pk", flat=True), c) for c in exact], SEARCH_IDS)
    condition = either(Recording.objects.all(), "agent", [a for a in agents if a], ids)
    for part in large:
        condition |= part
    return condition


def agent_name() -> Subquery:
    """The agent's full name, as a column of the same SELECT (no query per row)."""
    return Subquery(Agent.objects.filter(user=OuterRef("agent")).values("full_name")[:1])


class HoldFilter(admin.SimpleListFilter):
    """The recordings one hold covers (active, or released: as it was left); linked from the hold page."""

    title = "by hold"
    parameter_name = "hold"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        holds = LegalHold.objects.select_related("case", "campaign").order_by("released_at", "-placed_at")[:30]
        return [(str(h.pk), str(h)) for h in holds]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if not self.value():
            return queryset
        value = str(self.value())
        hold = LegalHold.objects.select_related("case").filter(pk=value).first() if value.isdigit() else None
        return queryset.filter(hold.covered()) if hold else queryset.none()


class ExpiryFilter(admin.SimpleListFilter):
    """Past their retention already (what a retention run takes, less what is held), or expiring within 30 or
    90 days: the same querysets as retention's dry run and the dashboard's forecast."""

    title = "retention"
    parameter_name = "expires"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("overdue", "Past retention (overdue)"), ("30", "Expiring within 30 days"), ("90", "Within 90 days")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        now = clock.now()
        if self.value() == "overdue":
            return queryset.expired(now)  # type: ignore[attr-defined]
        if self.value() in ("30", "90"):
            return queryset.expiring(now, int(self.value()))  # type: ignore[attr-defined]
        return queryset


def csv_ids(queryset: QuerySet) -> list[int]:
    """The ids of a search result in the list's order, at most CSV_LIMIT + 1 (one more says "too many")."""
    return list(queryset.values_list("pk", flat=True)[: CSV_LIMIT + 1])


def csv_response(request: HttpRequest, ids: list[int], scope: str) -> StreamingHttpResponse:
    """Stream the CSV of these recordings; one access event per recording is written before the first byte."""
    log_access(ids, action=AccessEvent.Action.EXPORT, who=Actor.from_request(request), detail=f"CSV: {scope}")
    response = StreamingHttpResponse(_csv_lines(ids), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="recordings-{clock.now():%Y%m%d-%H%M%S}.csv"'
    response["Cache-Control"] = "private, no-store"
    return response


def _csv_lines(ids: list[int]) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    region = settings.VICIREC_PHONE_REGION
    held = set(Recording.objects.filter(pk__in=ids).held().values_list("pk", flat=True)) if ids else set()
    for start in range(0, len(ids), CSV_BATCH):
        chunk = ids[start : start + CSV_BATCH]
        rows = Recording.objects.filter(pk__in=chunk).select_related("campaign").annotate(agent_full_name=agent_name())
        by_id = {r.pk: r for r in rows}
        for r in (by_id[pk] for pk in chunk if pk in by_id):
            cells = [
                r.pk,
                r.start_time.isoformat() if r.start_time else "",
                r.length_in_sec,
                r.campaign.campaign_id if r.campaign else "",
                r.direction,
                r.phone_number,
                phones.display(r.phone_number, region),
                r.lead_id,
                r.agent,
                r.agent_full_name or "",
                r.state,
                "yes" if r.pk in held else "no",
                r.server_ip,
                r.filename,
                r.original_sha256,
                r.stored_sha256,
            ]
            writer.writerow([csv_cell(c) for c in cells])
        yield buffer.getvalue().encode()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue().encode()


def hold_history(recording: Recording, events: list[RecordingEvent]) -> dict[str, Any]:
    """For a recording's page: the released holds that covered it (with who, when and why) and its custody
    log with the holds placed, partly released and released merged in, in time order."""
    holds = holds_by_recording(Recording.objects.filter(pk=recording.pk)).get(recording.pk, [])
    timeline: list[dict[str, Any]] = [
        {"at": e.at, "from": e.from_state, "to": e.to_state, "by": e.actor, "detail": e.detail, "hold": None}
        for e in events
    ]
    for hold in holds:
        timeline.append({"at": hold.placed_at, "to": "hold placed", "by": hold.placed_by_name, "hold": hold})
        timeline[-1]["detail"] = hold.reason
        if hold.released_at:
            timeline.append({"at": hold.released_at, "to": "hold released", "by": hold.released_by_name})
            timeline[-1].update(detail=hold.release_reason, hold=hold)
    parts = PartialRelease.objects.filter(hold__in=[h.pk for h in holds]).select_related("hold")
    for part in parts:
        if recording.pk in {int(i) for i in part.recording_ids}:
            timeline.append({"at": part.released_at, "to": "taken off the hold", "by": part.released_by_name})
            timeline[-1].update(detail=f"{part.reason} ({part.change})", hold=part.hold)
    timeline.sort(key=lambda row: row["at"])
    return {"released_holds": [h for h in holds if h.released_at], "custody": timeline}
