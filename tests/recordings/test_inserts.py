"""vicirec.db.inserts: the catalog's lean INSERT writes exactly what bulk_create writes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from recordings.models import Campaign, Recording
from vicirec.db import inserts

pytestmark = pytest.mark.django_db


def _row(recording_id: int, campaign: Campaign) -> Recording:
    return Recording(
        recording_id=recording_id,
        filename="20261101-142501_3125551212",
        server_ip="10.0.0.11",
        start_time=datetime(2026, 11, 1, 14, 25, 1, 123456, tzinfo=UTC),
        length_in_sec=65,
        lead_id=None,
        phone_number="3125551212",
        agent="1001 ñ",
        direction=Recording.Direction.OUTBOUND,
        campaign=campaign,
        state=Recording.State.MISSING,
        error="no file; 'quoted' \\ back",
        needs_person=True,
        attempts=2,
        next_attempt_at=datetime(2026, 11, 1, 15, 0, tzinfo=UTC),
        local_copies=[{"path": "MP3/x-all.mp3", "kind": "mp3"}],
        encoder={"codec": "opus", "kbps": 12},
        original_size=960044,
        state_changed_at=datetime(2026, 11, 1, 14, 30, tzinfo=UTC),
        cataloged_at=datetime(2026, 11, 1, 14, 30, tzinfo=UTC),
    )


def test_insert_writes_what_bulk_create_writes_and_ignores_existing_rows() -> None:
    campaign = Campaign.objects.create(kind="outbound", campaign_id="SALES")
    Recording.objects.bulk_create([_row(1, campaign)])
    inserts.insert(Recording, [_row(2, campaign)])
    first, second = (Recording.objects.filter(pk=pk).values().get() for pk in (1, 2))
    assert {**first, "recording_id": 2} == second

    again = _row(2, campaign)
    again.error = "changed"
    inserts.insert(Recording, [again, _row(3, campaign)], ignore_conflicts=True)
    assert Recording.objects.get(pk=2).error == second["error"] and Recording.objects.filter(pk=3).exists()
    assert not again._state.adding


def test_rows_with_an_auto_key_are_numbered_by_the_database() -> None:
    from recordings.models import LedgerEntry

    def entry(seq: int) -> LedgerEntry:
        return LedgerEntry(seq=seq, kind="k", ref="r", at=datetime(2026, 11, 1, tzinfo=UTC), content="{}")

    inserts.insert(LedgerEntry, [entry(1), entry(2)])
    assert list(LedgerEntry.objects.order_by("seq").values_list("seq", flat=True)) == [1, 2]
    assert len(set(LedgerEntry.objects.values_list("pk", flat=True))) == 2


def test_rows_sharing_some_values_write_what_bulk_create_writes() -> None:
    campaign = Campaign.objects.create(kind="outbound", campaign_id="SALES")
    rows = []
    for n in range(1, 7):
        row = _row(n, campaign)
        # Shared on every row, shared on some (False and 0 never taken for one another), differing on each.
        row.needs_person = n % 2 == 0
        row.attempts = 0 if n < 4 else False
        row.error = "" if n < 6 else "late"
        row.original_size = None if n < 3 else n
        row.lead_id = None
        rows.append(row)
    expected = [_row(100 + n, campaign) for n in range(1, 7)]
    for row, twin in zip(rows, expected, strict=True):
        for name in ("needs_person", "attempts", "error", "original_size", "lead_id"):
            setattr(twin, name, getattr(row, name))
    Recording.objects.bulk_create(expected)
    inserts.insert(Recording, rows)
    for n in range(1, 7):
        ours, theirs = (Recording.objects.filter(pk=pk).values().get() for pk in (n, 100 + n))
        assert {**theirs, "recording_id": n} == ours
    assert Recording.objects.get(pk=4).attempts == 0 and Recording.objects.get(pk=6).error == "late"
