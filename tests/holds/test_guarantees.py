"""While a hold is active what it covers only grows: narrowing is a release (permission, reason, history),
through holds.actions only; the ORM, the command and retention all obey it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from io import StringIO
from itertools import count
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction

from holds.actions import change_case, place_hold, release_hold, release_part
from holds.guards import HoldIsActive
from holds.models import Case, LegalHold, PartialRelease
from recordings.models import Campaign, Recording
from recordings.pipeline.retention import enforce_retention
from tests.factories import make_recording
from vicirec.actors import Actor

pytestmark = pytest.mark.django_db
ACTOR = Actor.command("tests")
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
OLD = NOW - timedelta(days=4000)  # past the default policy's retention
_ids = count(700000)


@pytest.fixture
def archive(settings: Any, tmp_path: Path) -> Path:
    folder = tmp_path / "archive"
    settings.STORAGES = {
        **settings.STORAGES,
        "archive": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": folder}},
    }
    return folder


def stored(archive: Path, **fields: Any) -> Recording:
    """An expired recording whose only copy is an object in the archive folder."""
    rid = next(_ids)
    key = f"2016/{rid}.mp3"
    (archive / key).parent.mkdir(parents=True, exist_ok=True)
    (archive / key).write_bytes(b"audio")
    fields = {"start_time": OLD, **fields}
    return make_recording(
        recording_id=rid, state=Recording.State.CLEARED, object_key=key, stored_sha256="0" * 64, stored_size=5, **fields
    )


def held_ids(*recordings: Recording) -> set[int]:
    return set(Recording.objects.filter(pk__in=[r.pk for r in recordings]).held().values_list("pk", flat=True))


def deleted(*recordings: Recording) -> set[int]:
    ids = [r.pk for r in recordings]
    return set(Recording.objects.filter(pk__in=ids, state=Recording.State.EXPIRED).values_list("pk", flat=True))


def test_the_orm_refuses_every_narrowing_of_a_held_case(archive: Path) -> None:
    sales, support = (Campaign.objects.create(kind="outbound", campaign_id=c) for c in ("SALES", "SUPPORT"))
    picked = stored(archive, phone_number="1")
    case = Case.objects.create(name="CID", phone_numbers=["3125550001", "3125550002"], calls_until=NOW)
    case.recordings.add(picked)
    case.campaigns.add(sales)
    hold = place_hold(reason="CID", actor=ACTOR, case=case)

    def refused(change: Any) -> None:
        with pytest.raises(HoldIsActive, match="can only grow"), transaction.atomic():
            change(Case.objects.get(pk=case.pk))

    refused(lambda c: setattr(c, "phone_numbers", ["3125550001"]) or c.save())  # a value removed
    refused(lambda c: setattr(c, "agents", ["1007"]) or c.save())  # a value for an empty criterion
    refused(lambda c: setattr(c, "calls_from", OLD) or c.save())  # a date bound set
    refused(lambda c: setattr(c, "calls_until", NOW - timedelta(days=1)) or c.save())  # moved inwards
    refused(lambda c: c.recordings.remove(picked))
    refused(lambda c: c.recordings.clear())
    refused(lambda c: picked.cases.remove(c))  # from the recording's side
    case.campaigns.add(support)  # another value for a criterion in use widens
    refused(lambda c: c.campaigns.remove(sales))
    assert set(Case.objects.get(pk=case.pk).campaigns.all()) == {sales, support}
    # widening is free: another phone, no upper date bound, a criterion emptied while others remain
    case = Case.objects.get(pk=case.pk)
    case.phone_numbers = [*case.phone_numbers, "3125550003"]
    case.calls_until = None
    case.save()
    case.campaigns.clear()
    # the last criterion emptied would leave only the hand-picked recordings: refused
    refused(lambda c: setattr(c, "phone_numbers", []) or c.save())
    assert hold.pk in {h.pk for h in LegalHold.objects.active()} and held_ids(picked) == {picked.pk}

    release_hold(hold, reason="closed", actor=ACTOR)
    case.recordings.remove(picked)  # no active hold: a case is edited freely


def test_an_active_hold_cannot_shrink_change_scope_be_released_behind_its_back_or_vanish(archive: Path) -> None:
    a, b = stored(archive), stored(archive)
    hold = place_hold(reason="complaint", actor=ACTOR, recording_ids=[a.pk, b.pk])
    with pytest.raises(HoldIsActive), transaction.atomic():
        hold.recordings.remove(a)
    with pytest.raises(HoldIsActive), transaction.atomic():
        b.legal_holds.clear()
    hold.scope = LegalHold.Scope.CAMPAIGN
    with pytest.raises(HoldIsActive):
        hold.save()
    hold = LegalHold.objects.get(pk=hold.pk)
    hold.released_at = NOW
    with pytest.raises(HoldIsActive):
        hold.save()
    with pytest.raises(Exception), transaction.atomic():  # noqa: B017  (the hold guard or the append-only record)
        LegalHold.objects.get(pk=hold.pk).delete()
    assert LegalHold.objects.get(pk=hold.pk).is_active and held_ids(a, b) == {a.pk, b.pk}


def test_nothing_is_deleted_when_a_held_case_is_edited(archive: Path) -> None:
    first, second = stored(archive, phone_number="3125550001"), stored(archive, phone_number="3125550002")
    picked, free = stored(archive, phone_number="1"), stored(archive, phone_number="2")
    case = Case.objects.create(name="Smith", phone_numbers=["3125550001", "3125550002"])
    case.recordings.add(picked)
    place_hold(reason="litigation", actor=ACTOR, case=case)
    with pytest.raises(HoldIsActive), transaction.atomic():
        case.phone_numbers = ["3125550001"]
        case.save()
    with pytest.raises(HoldIsActive), transaction.atomic():
        Case.objects.get(pk=case.pk).recordings.remove(picked)
    # Even a write that skips the ORM's guards (an UPDATE, a raw delete of the link rows) cannot drop them:
    # what the case covered when the hold was placed is pinned on the hold itself.
    Case.objects.filter(pk=case.pk).update(phone_numbers=["9999999999"])
    Case.recordings.through.objects.filter(case_id=case.pk).delete()

    report = enforce_retention(now=NOW, dry_run=False, confirm=True)

    assert deleted(first, second, picked, free) == {free.pk} and report.deleted == 1
    assert held_ids(first, second, picked) == {first.pk, second.pk, picked.pk}


def test_a_partial_release_leaves_history_and_lets_retention_take_exactly_that_part(
    archive: Path, make_user: Any
) -> None:
    keep = stored(archive, phone_number="3125550001")
    give_up = stored(archive, phone_number="3125550002")
    picked, dropped, free = stored(archive, phone_number="1"), stored(archive, phone_number="2"), stored(archive)
    case = Case.objects.create(name="CFPB", phone_numbers=["3125550001", "3125550002"])
    case.recordings.add(picked, dropped)
    hold = place_hold(reason="CID", actor=ACTOR, case=case)
    legal, approver = make_user("Legal"), make_user("Legal approver")

    with pytest.raises(PermissionDenied):
        change_case(case, actor=Actor.person(legal), reason="scope agreed", phone_numbers=["3125550001"])
    with pytest.raises(ValidationError, match="needs a reason"):
        change_case(case, actor=Actor.person(approver), reason=" ", phone_numbers=["3125550001"])
    assert held_ids(give_up, dropped) == {give_up.pk, dropped.pk}

    parts = change_case(
        case,
        actor=Actor.person(approver),
        reason="scope narrowed by agreement with the CFPB",
        phone_numbers=["3125550001"],
        recordings=[picked.pk],
    )

    [part] = parts
    assert part.hold == hold and part.released_by == approver and part.released_by_name == "legal_approver"
    assert part.reason == "scope narrowed by agreement with the CFPB" and part.recording_ids == sorted(
        [give_up.pk, dropped.pk]
    )
    assert "phone numbers removed (3125550002)" in part.change and "recordings removed" in part.change
    entry = LegalHold.objects.get(pk=hold.pk).history.order_by("-history_date", "-history_id").first()
    assert entry.history_user == approver and "part released: scope narrowed" in entry.history_change_reason
    assert LegalHold.objects.get(pk=hold.pk).is_active
    assert PartialRelease.objects.filter(hold=hold).count() == 1

    enforce_retention(now=NOW, dry_run=False, confirm=True)

    assert deleted(keep, give_up, picked, dropped, free) == {give_up.pk, dropped.pk, free.pk}


def test_release_part_of_a_hold_on_recordings_needs_the_permission(archive: Path, make_user: Any) -> None:
    a, b = stored(archive), stored(archive)
    hold = place_hold(reason="complaint", actor=ACTOR, recording_ids=[a.pk, b.pk])
    with pytest.raises(PermissionDenied):
        release_part(hold, recording_ids=[b.pk], actor=Actor.person(make_user("Legal")), reason="not relevant")
    part = release_part(
        hold, recording_ids=[b.pk], actor=Actor.person(make_user("Legal approver")), reason="not relevant"
    )
    assert part.recording_ids == [b.pk] and held_ids(a, b) == {a.pk}


def test_object_lock_is_lifted_only_where_no_active_hold_still_covers(
    archive: Path, make_user: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[str, bool]] = []

    class Bucket:
        def set_legal_hold(self, key: str, version_id: str, on: bool) -> bool:
            calls.append((key, on))
            return True

    monkeypatch.setattr("holds.actions.get_target", Bucket)
    only_case, also_by_hand = stored(archive, phone_number="3125550002"), stored(archive, phone_number="3125550002")
    case = Case.objects.create(name="Doe", phone_numbers=["3125550001", "3125550002"])
    place_hold(reason="suit", actor=ACTOR, case=case)
    place_hold(reason="complaint", actor=ACTOR, recording_ids=[also_by_hand.pk])
    calls.clear()
    change_case(
        case, actor=Actor.person(make_user("Legal approver")), reason="dismissed in part", phone_numbers=["3125550001"]
    )
    assert calls == [(only_case.object_key, False)]


def test_legal_hold_command_refuses_narrowing_and_releases_part_with_the_permission(
    archive: Path, make_user: Any
) -> None:
    keep, give_up = stored(archive, phone_number="3125550001"), stored(archive, phone_number="3125550002")
    make_user("Legal"), make_user("Legal approver")
    out = StringIO()
    call_command(
        "legal_hold", "place", "--case", "CID-9", "--phone", "3125550001", "3125550002", "--reason", "CID", stdout=out
    )
    hold_id = int(out.getvalue())
    with pytest.raises(CommandError, match="would narrow it"):  # a lead id for the empty lead criterion
        call_command("legal_hold", "place", "--case", "CID-9", "--lead", "77", "--reason", "more", stdout=StringIO())
    with pytest.raises(CommandError, match="Can release legal holds"):
        call_command(
            "legal_hold", "--user", "legal", "release-part", str(hold_id), "--phone", "3125550002", "--reason", "x"
        )
    assert held_ids(keep, give_up) == {keep.pk, give_up.pk}
    assert Case.objects.get(name="CID-9").lead_ids == []

    out = StringIO()
    call_command(
        "legal_hold",
        "--user",
        "legal_approver",
        "release-part",
        str(hold_id),
        "--phone",
        "3125550002",
        "--reason",
        "agreed scope",
        "--json",
        stdout=out,
    )
    assert json.loads(out.getvalue())["released"] == [give_up.pk]
    part = PartialRelease.objects.get(hold_id=hold_id)
    assert "legal_approver via legal_hold" == part.released_by_name and part.reason == "agreed scope"
    assert held_ids(keep, give_up) == {keep.pk}
