"""The one door to a recording's state and its custody log.

Every write of ``Recording.state`` and every ``RecordingEvent`` goes through this module, and nowhere else
(a test reads the source tree to keep it so). Each function is a conditional write plus the custody event
in one short transaction, so the catalog and its custody log never disagree:

* ``transition`` moves one claimed recording: a conditional UPDATE on (id, expected state, claim token);
* ``transition_batch`` is the same for a batch of claimed recordings (the bulk paths: archive, retention),
  with a fixed number of statements however large the batch;
* ``catalog`` creates new recordings with their first event (the catalog stage);
* ``note`` appends an event that changes no state (an integrity problem found by verification).

No transaction here ever spans file or network I/O: callers do that before or after. Every event is also
appended to the custody ledger (recordings.ledger) in the same transaction.
Clearing a recording's error (``error=""``) also clears ``needs_person``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from django.db import transaction

from recordings import ledger
from recordings.models import Recording, RecordingEvent
from vicirec.db import inserts


def _cleared(values: dict[str, Any]) -> dict[str, Any]:
    if values.get("error") == "":
        values.setdefault("needs_person", False)
    return values


def transition(
    recording: Recording, *, to: str, token: str, actor: str, detail: str, now: datetime, **fields: Any
) -> bool:
    """Move a claimed recording from its current state to ``to``, releasing the claim.

    Returns False (and changes nothing) if this worker no longer holds the claim or the state moved on.
    """
    values = _cleared({"state": to, "claimed_by": "", "claimed_until": None, **fields})
    if to != recording.state:
        values["state_changed_at"] = now
    with transaction.atomic():
        changed = Recording.objects.filter(pk=recording.pk, state=recording.state, claimed_by=token).update(**values)
        if changed != 1:
            return False
        event = RecordingEvent.objects.create(
            recording_id=recording.pk, at=now, from_state=recording.state, to_state=to, actor=actor, detail=detail
        )
        ledger.append_rows("custody_event", [event.pk])
    for name, value in values.items():
        setattr(recording, name, value)
    return True


def transition_batch(
    changes: Sequence[tuple[Recording, str]],
    *,
    to: str,
    token: str,
    actor: str,
    now: datetime,
    fields: Callable[[Recording], dict[str, Any]] | None = None,
    each: Sequence[str] = (),
    then: Callable[[list[Recording]], None] | None = None,
) -> list[Recording]:
    """Move every recording of ``changes`` (recording, event detail) that this token still claims to ``to``.

    One transaction: the claimed rows are locked, moved with one UPDATE per distinct set of ``fields``
    values (the rows of a batch share most of them), ``each`` (fields whose values differ on every row, such
    as a version id) written row by row where set, one event per row, and ``then(moved)`` for further
    writes that must commit with the move (deletion certificates). Returns the recordings moved; the objects
    passed in keep their previous field values.
    """
    by_pk = {recording.pk: (recording, detail) for recording, detail in changes}
    if not by_pk:
        return []
    with transaction.atomic():
        mine = list(
            Recording.objects.select_for_update()
            .filter(pk__in=list(by_pk), claimed_by=token)
            .values_list("pk", flat=True)
        )
        groups: dict[str, tuple[dict[str, Any], list[int]]] = {}
        for pk in mine:
            values = _cleared(dict(fields(by_pk[pk][0]))) if fields else {}
            groups.setdefault(repr(sorted(values.items())), (values, []))[1].append(pk)  # values may be lists
        for values, pks in groups.values():
            Recording.objects.filter(pk__in=pks).update(
                state=to, state_changed_at=now, claimed_by="", claimed_until=None, **values
            )
        moved = [by_pk[pk][0] for pk in mine]
        if each:
            rows = [r for r in moved if any(getattr(r, name) for name in each)]
            Recording.objects.bulk_update(rows, list(each), batch_size=500)
        _events([(pk, by_pk[pk][0].state, to, by_pk[pk][1]) for pk in mine], actor=actor, now=now)
        if then is not None:
            then(moved)
    return moved


def catalog(
    recordings: Sequence[Recording], *, actor: str, now: datetime, detail: Callable[[Recording], str]
) -> list[Recording]:
    """Create the recordings not cataloged yet, each with its first custody event; returns those created.

    Safe against a concurrent sync: rows another run created in the meantime are left as they are.
    """
    with transaction.atomic():
        ids = [r.recording_id for r in recordings]
        existing = set(Recording.objects.filter(recording_id__in=ids).values_list("recording_id", flat=True))
        fresh = [r for r in recordings if r.recording_id not in existing]
        inserts.insert(Recording, fresh, ignore_conflicts=True)  # bulk_create's INSERT, compiled leanly
        _events([(r.recording_id, "", r.state, detail(r)) for r in fresh], actor=actor, now=now)
    return fresh


EVENT_FIELDS = ("recording_id", "at", "from_state", "to_state", "actor", "detail")


def _events(changes: Sequence[tuple[int, str, str, str]], *, actor: str, now: datetime) -> None:
    """Write one custody event per (recording id, from state, to state, detail), with their ledger entries
    built from the values written (one INSERT each for the events and the entries: no row read back)."""
    rows = [(pk, now, str(was), str(to), actor, detail) for pk, was, to, detail in changes]
    keys = inserts.insert_rows(RecordingEvent, EVENT_FIELDS, rows, returning=True)
    ledger.append_values(
        "custody_event",
        [dict(zip(EVENT_FIELDS, row, strict=True), id=key) for key, row in zip(keys, rows, strict=True)],
    )


def note(recording: Recording, *, actor: str, detail: str, now: datetime, **fields: Any) -> None:
    """Record ``detail`` in the custody log without changing the recording's state (``fields`` saved too)."""
    with transaction.atomic():
        if fields:
            Recording.objects.filter(pk=recording.pk).update(**_cleared(dict(fields)))
        event = RecordingEvent.objects.create(
            recording_id=recording.pk,
            at=now,
            from_state=recording.state,
            to_state=recording.state,
            actor=actor,
            detail=detail,
        )
        ledger.append_rows("custody_event", [event.pk])
