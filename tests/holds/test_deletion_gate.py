"""The moment of deletion: a hold placed after retention's last hold check, while the batch's storage delete
call is under way, is never committed before that call (the deletion gate), and waits at most one lease."""

from __future__ import annotations

import threading
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from holds import models as hold_models
from holds.actions import place_hold
from holds.models import Case, DeletionGate, LegalHold
from recordings.models import Recording
from recordings.pipeline.retention import enforce_retention
from recordings.pipeline.target import get_target
from tests.holds.test_guarantees import ACTOR, NOW, archive, stored  # noqa: F401  (archive: a fixture)
from vicirec import clock

pytestmark = pytest.mark.django_db(transaction=True)


def race_a_hold_into_the_delete_call(monkeypatch: pytest.MonkeyPatch, victims: list[Recording]) -> dict[str, Any]:
    """Run retention with the target's delete wrapped: when it is called (after the last hold check), a
    second thread places a hold on the victims' case; the wrapper gives it a second, then looks at what is
    held (as committed), then really deletes."""
    target = get_target()
    real_delete = target.delete
    seen: dict[str, Any] = {}

    def place() -> None:
        try:
            case = Case.objects.create(name="late CID", phone_numbers=[victims[0].phone_number])
            seen["hold"] = place_hold(reason="CID served during the run", actor=ACTOR, case=case)
            seen["hold_committed_at"] = time.monotonic()
        finally:
            connection.close()

    def delete_while_a_hold_is_placed(objects: Any) -> Any:
        objects = list(objects)
        thread = threading.Thread(target=place)
        thread.start()
        thread.join(timeout=1.0)  # long enough for an ungated hold to commit
        seen["thread"] = thread
        seen["holds_at_delete"] = LegalHold.objects.active().count()
        seen["held_at_delete"] = Recording.objects.filter(pk__in=[r.pk for r in victims]).held().count()
        seen["delete_called_at"] = time.monotonic()
        return real_delete(objects)

    monkeypatch.setattr(target, "delete", delete_while_a_hold_is_placed)
    monkeypatch.setattr("recordings.pipeline.retention.get_target", lambda: target)
    enforce_retention(now=NOW, dry_run=False, confirm=True)
    seen["thread"].join(timeout=30)
    assert not seen["thread"].is_alive()
    return seen


def test_a_hold_placed_after_the_last_check_commits_only_after_the_delete_call(
    archive: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    victims = [stored(archive, phone_number="3125550009") for _ in range(3)]

    seen = race_a_hold_into_the_delete_call(monkeypatch, victims)

    # When the bucket was asked to delete, no hold covered the batch: no held copy was deleted.
    assert seen["holds_at_delete"] == 0 and seen["held_at_delete"] == 0
    assert seen["hold_committed_at"] > seen["delete_called_at"]
    hold = LegalHold.objects.get(pk=seen["hold"].pk)
    assert hold.is_active  # the hold is placed, after the batch: it covers what is left and later calls
    assert DeletionGate.objects.get().in_flight == 0


def test_without_the_gate_the_same_race_deletes_a_held_copy(
    archive: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What the gate prevents: the same race with place_hold not waiting on it."""
    victims = [stored(archive, phone_number="3125550010") for _ in range(2)]
    monkeypatch.setattr(DeletionGate, "closed", classmethod(lambda cls: nullcontext()))

    seen = race_a_hold_into_the_delete_call(monkeypatch, victims)

    assert seen["held_at_delete"] == 2  # held when the bucket deleted them
    assert Recording.objects.filter(pk__in=[r.pk for r in victims], state=Recording.State.EXPIRED).count() == 2


def test_placing_a_hold_waits_for_a_live_lease_at_most_its_length_and_not_for_a_dead_one(
    archive: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    recording = stored(archive)
    DeletionGate.objects.create(pk=1, in_flight=1, lease_until=clock.now() - clock_seconds(1))  # a dead run's
    started = time.monotonic()
    place_hold(reason="r", actor=ACTOR, recording_ids=[recording.pk])
    assert time.monotonic() - started < 1

    monkeypatch.setattr(hold_models, "DELETION_LEASE_SECONDS", 0.5)
    DeletionGate.objects.filter(pk=1).update(in_flight=1, lease_until=clock.now() + clock_seconds(60))
    started = time.monotonic()
    place_hold(reason="r", actor=ACTOR, recording_ids=[recording.pk])
    assert 0.5 <= time.monotonic() - started < 5  # a stuck lease delays a hold, never blocks it


def clock_seconds(n: float) -> Any:
    from datetime import timedelta

    return timedelta(seconds=n)
