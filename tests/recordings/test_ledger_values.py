"""The ledger entries the bulk paths build from the values they write hold exactly the content that
``verify_custody`` reads back from the rows, on every database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection

from recordings import custody, ledger
from recordings.lib import ledger as chain
from recordings.models import Campaign, LedgerEntry, Recording, RecordingEvent
from retention.models import DeletionCertificate
from vicirec.db import inserts

pytestmark = pytest.mark.django_db

# A time zone far from UTC and a time with microseconds: the content must hold the instant, in UTC.
NOW = datetime(2026, 11, 20, 23, 59, 58, 123456, tzinfo=timezone(timedelta(hours=-7, minutes=-30)))
TEXT = "ñandú 🎧 'quoted' \"double\" \\back\\ \\x00 tab\tnew\nline"


def _read_back(kind: str) -> dict[str, str]:
    """The content ``verify_custody`` computes for each entry of ``kind``, by ref."""
    source = ledger.sources()[kind]
    refs = list(LedgerEntry.objects.filter(kind=kind).values_list("ref", flat=True))
    return {str(row[source.pk]): chain.canonical(source.content(row)) for row in source.rows(refs)}


def _written(kind: str) -> dict[str, str]:
    return dict(LedgerEntry.objects.filter(kind=kind).values_list("ref", "content"))


def test_custody_events_of_a_catalog_batch_and_a_transition_batch_hold_the_rows_content() -> None:
    campaign = Campaign.objects.create(kind="outbound", campaign_id="SALES")
    new = [
        Recording(recording_id=n, filename=f"{TEXT}{n}", campaign=campaign, state=state, start_time=NOW)
        for n, state in ((1, Recording.State.CAPTURED), (2, Recording.State.MISSING), (3, Recording.State.REJECTED))
    ]
    custody.catalog(new, actor=f"sync {TEXT}", now=NOW, detail=lambda r: f"{TEXT} {r.state} " + "x" * 5000)
    Recording.objects.filter(pk__in=[1, 2]).update(claimed_by="token")
    moved = custody.transition_batch(
        [(r, f"failed {TEXT}") for r in new], to=Recording.State.FAILED, token="token", actor="retention", now=NOW
    )
    assert sorted(r.pk for r in moved) == [1, 2]  # the third was not claimed: no event, no entry

    written, read = _written("custody_event"), _read_back("custody_event")
    assert len(written) == RecordingEvent.objects.count() == 5
    assert written == read
    assert '"at":"2026-11-21T07:29:58.123456+00:00"' in written[str(RecordingEvent.objects.first().pk)]
    call_command("verify_custody", stdout=StringIO())


def test_deletion_certificates_built_from_their_values_hold_the_rows_content() -> None:
    campaign = Campaign.objects.create(kind="outbound", campaign_id="SALES")
    Recording.objects.bulk_create(
        [
            Recording(
                recording_id=1, filename="f1", campaign=campaign, original_sha256="a" * 64, stored_sha256="b" * 64
            ),
            Recording(recording_id=2, filename="f2", campaign=campaign),
        ]
    )
    fields = ("recording_id", "deleted_at", "run", "call", "object_key", "version_id", "original_sha256")
    fields += ("stored_sha256", "stored_size", "cloud_deleted", "local_deleted", "policy", "hold_check")
    call = {"phone": TEXT, "lead_id": None, "length": 61, "tuple": (1, "two"), "nested": {"z": [True, 1.5]}}
    rows = [
        (1, NOW, "run", call, f"C/{TEXT}.mp3", "", "a" * 64, "b" * 64, 2**40, True, False, {"days": 30}, {}),
        (2, NOW.astimezone(UTC), "run", {}, "", "v1", "", "", None, False, True, {"when": NOW}, {"held": False}),
    ]
    with pytest.raises(TypeError):  # a value JSON cannot store is refused, as bulk_create refuses it
        inserts.insert_rows(DeletionCertificate, fields, [(*rows[0][:3], {"d": Decimal("1.5")}, *rows[0][4:])])
    rows[1] = (*rows[1][:11], {"when": NOW.isoformat()}, rows[1][12])
    keys = inserts.insert_rows(DeletionCertificate, fields, rows, returning=True)
    assert sorted(keys) == sorted(DeletionCertificate.objects.values_list("pk", flat=True))
    values = [dict(zip(fields, row, strict=True), id=key) for key, row in zip(keys, rows, strict=True)]
    ledger.append_values("deletion_certificate", values)

    written = _written("deletion_certificate")
    assert written == _read_back("deletion_certificate") and len(written) == 2
    assert list(LedgerEntry.objects.values_list("ref", flat=True)) == [str(k) for k in sorted(keys)]  # key order
    call_command("verify_custody", stdout=StringIO())


@pytest.mark.parametrize("returning", [True, False], ids=["insert-returning", "one-insert-per-row"])
def test_insert_rows_returns_the_keys_in_row_order_and_fills_defaults(returning: bool, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    if not returning:  # a database that cannot return the keys of a multi-row INSERT (MySQL, MariaDB < 10.5)
        monkeypatch.setattr(type(connection.features), "can_return_rows_from_bulk_insert", False)
    campaign = Campaign.objects.create(kind="outbound", campaign_id="SALES")
    Recording.objects.bulk_create([Recording(recording_id=n, filename=f"f{n}", campaign=campaign) for n in (1, 2, 3)])
    rows = [(n, NOW, "captured", "test", f"event {n}") for n in (3, 1, 2)]
    keys = inserts.insert_rows(
        RecordingEvent, ("recording_id", "at", "to_state", "actor", "detail"), rows, returning=True
    )
    events = RecordingEvent.objects.in_bulk(keys)
    assert [events[k].detail for k in keys] == ["event 3", "event 1", "event 2"]
    assert all(events[k].from_state == "" for k in keys)  # the field's default
