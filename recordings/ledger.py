"""The custody ledger: one append-only, hash-chained record of everything custody depends on.

Every custody event, access event, deletion certificate, legal hold placement and release (the hold's
history rows), policy change (policy and proposal history rows), signing key and checkpoint becomes one
``LedgerEntry`` whose hash covers its canonical content and the entry before it (docs/custody-ledger.md).

Appending is part of the caller's transaction: ``append_rows`` / ``append_record`` lock the one
``LedgerHead`` row (select_for_update; SQLite's IMMEDIATE transactions serialise writers anyway), chain the
new entries onto it with one bulk insert, and move the head, so concurrent writers on any database keep
one valid chain, and a change that rolls back takes its entries with it. A row's content is read back from
the database inside the transaction, exactly as ``verify_custody`` will read it later; the bulk paths
(``append_values``: the custody events and deletion certificates of the pipeline's batches) build it from
the values they have just written instead, each value taken as the database gives it back (a time in UTC,
a JSON value through its encoder and back), which a test holds equal to the read-back content.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache, cached_property
from typing import Any

from django.db import models, transaction
from django.utils import timezone

from recordings.lib import ledger as chain
from recordings.models import AccessEvent, LedgerEntry, LedgerHead, RecordingEvent
from vicirec import clock
from vicirec.db import inserts


@dataclass(frozen=True)
class Source:
    """A table whose rows the ledger copies: ``kind`` of their entries, how a row names its recording."""

    kind: str
    model: type[models.Model]
    recording_field: str | None

    @cached_property
    def fields(self) -> list[str]:
        return [f.attname for f in self.model._meta.concrete_fields]

    @cached_property
    def pk(self) -> str:
        return self.model._meta.pk.attname

    def content(self, row: dict[str, Any]) -> dict[str, Any]:
        return {"model": self.model._meta.label_lower, "row": {name: chain.plain(row[name]) for name in self.fields}}

    def rows(self, pks: Iterable[Any]) -> Iterable[dict[str, Any]]:
        return self.model._default_manager.filter(pk__in=list(pks)).order_by(self.pk).values(*self.fields)

    @cached_property
    def as_stored(self) -> list[tuple[str, Callable[[Any], Any]]]:
        """(field, how a value written to it reads back) for every field; ValueError for a field type whose
        stored form is not known here (its rows are read back instead)."""
        return [(f.attname, _as_stored(f)) for f in self.model._meta.concrete_fields]

    def content_of(self, values: dict[str, Any]) -> dict[str, Any]:
        """``content`` of a row from the values just written to it (every field, the key included), each
        as the database gives it back: the same as ``content`` of the row read back."""
        return {
            "model": self.model._meta.label_lower,
            "row": {name: chain.plain(convert(values[name])) for name, convert in self.as_stored},
        }


def _as_stored(field: models.Field) -> Callable[[Any], Any]:
    """How a value written to ``field`` reads back (None stays None)."""
    target = field.target_field if isinstance(field, models.ForeignKey) else field
    if isinstance(target, models.JSONField):
        encoder = target.encoder

        def json_value(value: Any) -> Any:
            return None if value is None else json.loads(json.dumps(value, cls=encoder))

        return json_value
    if isinstance(target, models.DateTimeField):

        def moment(value: datetime | None) -> datetime | None:
            if value is None:
                return None
            if timezone.is_naive(value):  # as Django stores it: in the default time zone
                value = timezone.make_aware(value, timezone.get_default_timezone())
            return value.astimezone(UTC)

        return moment
    for kind, cast in ((models.BooleanField, bool), (models.IntegerField, int)):
        if isinstance(target, kind):
            return lambda value, cast=cast: None if value is None else cast(value)
    if isinstance(target, (models.CharField, models.TextField)):
        return lambda value: None if value is None else str(value)  # a TextChoices member is its value
    raise ValueError(f"{field}: stored form not known, read the row back")


@cache
def sources() -> dict[str, Source]:
    """The tables the ledger copies, by entry kind."""
    from holds.models import LegalHold
    from retention.models import (
        DeletionCertificate,
        DispositionBatch,
        DispositionDecision,
        DispositionItem,
        ErasureCertificate,
        PolicyProposal,
        RetentionPolicy,
    )

    found = [
        Source("custody_event", RecordingEvent, "recording_id"),
        Source("access", AccessEvent, "recording_id"),
        Source("deletion_certificate", DeletionCertificate, "recording_id"),
        Source("erasure_certificate", ErasureCertificate, "recording_id"),
        Source("hold_history", LegalHold.history.model, None),
        Source("policy_history", RetentionPolicy.history.model, None),
        Source("proposal_history", PolicyProposal.history.model, None),
        Source("disposition_batch", DispositionBatch, None),
        Source("disposition_item", DispositionItem, "recording_id"),
        Source("disposition_decision", DispositionDecision, None),
    ]
    return {s.kind: s for s in found}


def source_of_model(model: type[models.Model]) -> Source | None:
    return next((s for s in sources().values() if s.model is model), None)


@dataclass(frozen=True)
class Pending:
    kind: str
    ref: str
    recording_id: int | None
    content: dict[str, Any]


def _locked_head() -> LedgerHead:
    head = LedgerHead.objects.select_for_update().filter(pk=1).first()
    if head is None:
        LedgerHead.objects.get_or_create(pk=1)
        head = LedgerHead.objects.select_for_update().get(pk=1)
    return head


ENTRY_FIELDS = ("seq", "kind", "ref", "recording_id", "at", "content", "content_sha256", "prev_sha256", "entry_sha256")


def _append(pending: Sequence[Pending]) -> list[LedgerEntry]:
    """Chain ``pending`` onto the head, in order; returns the entries written (pk None)."""
    rows = _chain(pending)
    return [LedgerEntry(**dict(zip(ENTRY_FIELDS, row, strict=True))) for row in rows]


def _chain(pending: Sequence[Pending]) -> list[tuple[Any, ...]]:
    """Write the entries of ``pending`` (one multi-row INSERT of plain values) and move the head; returns
    the rows written, as tuples of ENTRY_FIELDS."""
    if not pending:
        return []
    now = clock.now()
    dumps, sha256 = chain.ENCODER.encode, chain.sha256_hex
    with transaction.atomic():
        head = _locked_head()
        seq, prev = head.count, head.head_sha256
        rows = []
        for item in pending:
            seq += 1
            text = dumps(item.content)
            content_hash = sha256(text.encode("utf-8"))
            entry_hash = chain.entry_sha256(seq, item.kind, prev, content_hash)
            rows.append((seq, item.kind, item.ref, item.recording_id, now, text, content_hash, prev, entry_hash))
            prev = entry_hash
        inserts.insert_rows(LedgerEntry, ENTRY_FIELDS, rows)
        LedgerHead.objects.filter(pk=head.pk).update(count=seq, head_sha256=prev)
    return rows


def append_rows(kind: str, pks: Iterable[Any]) -> None:
    """Append one entry per row of ``kind``'s table (just written, in this transaction), in key order."""
    source = sources()[kind]
    _chain([_pending(source, row, source.content(row)) for row in source.rows(pks)])


def append_values(kind: str, rows: Sequence[dict[str, Any]]) -> None:
    """Append one entry per row of ``kind``'s table just written in this transaction with these values
    (every field, the key included), in key order, without reading the rows back."""
    source = sources()[kind]
    ordered = sorted(rows, key=lambda row: row[source.pk])
    _chain([_pending(source, row, source.content_of(row)) for row in ordered])


def _pending(source: Source, row: dict[str, Any], content: dict[str, Any]) -> Pending:
    recording = row[source.recording_field] if source.recording_field else None
    return Pending(source.kind, str(row[source.pk]), None if recording is None else int(recording), content)


def append_record(kind: str, content: dict[str, Any], *, ref: str = "", recording_id: int | None = None) -> LedgerEntry:
    """Append an entry that is its own record (a key, a checkpoint, an evidence export)."""
    if kind in sources():
        raise ValueError(f"{kind} entries copy rows: use append_rows")
    return _append([Pending(kind, ref, recording_id, content)])[0]


def redact_for_erasure(recording_id: int, needles: list[str], scrub: Any) -> None:
    """Inside ``vicirec.records.redaction()``: make the ledger forget what an erasure scrubbed.

    The entries that copy the recording's own rows take the rows' redacted content; any other entry whose
    content names one of ``needles`` (an evidence export listing the file) is passed through ``scrub``.
    Every such entry keeps its original ``content_sha256`` and is marked ``redacted_for=recording_id``.
    """
    changed: dict[int, LedgerEntry] = {}
    for entry in LedgerEntry.objects.filter(recording_id=recording_id, kind__in=list(sources())):
        source = sources()[entry.kind]
        row = next(iter(source.rows([entry.ref])), None)
        if row is not None:
            entry.content = chain.canonical(source.content(row))
            changed[entry.pk] = entry
    for needle in needles:  # a scan of the ledger per needle: erasures are rare, and this is their only cost
        for entry in LedgerEntry.objects.filter(content__contains=needle).exclude(kind__in=list(sources())):
            entry = changed.get(entry.pk, entry)
            entry.content = scrub(entry.content)
            changed[entry.pk] = entry
    for entry in changed.values():
        entry.redacted_for = recording_id
    LedgerEntry.objects.redact(list(changed.values()), ["content", "redacted_for"])


def on_history(sender: Any, history_instance: Any, **kwargs: Any) -> None:
    """simple_history's post_create_historical_record: ledger the history rows of holds and policies."""
    source = source_of_model(type(history_instance))
    if source is not None:
        append_rows(source.kind, [history_instance.pk])


def head() -> tuple[int, str]:
    row = LedgerHead.objects.filter(pk=1).values_list("count", "head_sha256").first()
    return (row[0], row[1]) if row else (0, chain.GENESIS)
