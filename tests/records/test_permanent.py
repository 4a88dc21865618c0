"""The record cannot be rewritten: custody events, access events, deletion certificates and the change
history refuse change and removal through the model, the queryset and the admin; who acted survives."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import transaction
from django.test import Client

from holds.models import LegalHold
from recordings.models import AccessEvent, RecordingEvent
from retention.models import DeletionCertificate, RetentionPolicy
from tests.factories import make_recording
from vicirec import clock
from vicirec.records import PermanentRecordError

pytestmark = pytest.mark.django_db


def _event() -> RecordingEvent:
    recording = make_recording()
    return RecordingEvent.objects.create(recording=recording, to_state="captured", actor="test", detail="cataloged")


def _access() -> AccessEvent:
    return AccessEvent.objects.create(recording=make_recording(), action="play", username="someone")


def _certificate() -> DeletionCertificate:
    return DeletionCertificate.objects.create(
        recording=make_recording(state="expired"),
        deleted_at=clock.now(),
        run="retention@test",
        call={},
        cloud_deleted=True,
        local_deleted=False,
        policy={},
        hold_check={"held": False},
    )


RECORDS: dict[str, Callable[[], Any]] = {"custody event": _event, "access event": _access, "certificate": _certificate}


@pytest.mark.parametrize("make", RECORDS.values(), ids=list(RECORDS))
def test_a_permanent_record_refuses_change_and_removal_at_every_level(make: Callable[[], Any]) -> None:
    row = make()
    model = type(row)
    with pytest.raises(PermanentRecordError):
        row.save()
    with pytest.raises(PermanentRecordError):
        row.delete()
    with pytest.raises(PermanentRecordError):
        model.objects.filter(pk=row.pk).update(pk=row.pk)
    with pytest.raises(PermanentRecordError):
        model.objects.filter(pk=row.pk).delete()
    with pytest.raises(PermanentRecordError):
        model.objects.bulk_update([row], [model._meta.fields[1].name])
    assert model.objects.filter(pk=row.pk).count() == 1


def _changed_policy(user: Any) -> RetentionPolicy:
    policy = RetentionPolicy.objects.default()
    policy.keep_local_days += 1
    policy._history_user = user  # type: ignore[attr-defined]
    policy._change_reason = "longer local window"  # type: ignore[attr-defined]
    policy.save()
    return policy


def test_history_rows_refuse_change_and_removal() -> None:
    user = get_user_model().objects.create_user("legal_lee", password="x" * 16)
    policy = _changed_policy(user)
    history = policy.history.all()
    row = history.first()
    assert row is not None
    with pytest.raises(PermanentRecordError):
        history.update(history_change_reason="rewritten")
    with pytest.raises(PermanentRecordError):
        history.delete()
    row.history_change_reason = "rewritten"
    with pytest.raises(PermanentRecordError):
        row.save()
    with pytest.raises(PermanentRecordError):
        row.delete()
    assert policy.history.filter(history_change_reason="rewritten").count() == 0


def test_history_keeps_the_username_and_a_user_with_history_cannot_be_deleted() -> None:
    user = get_user_model().objects.create_user("legal_lee", password="x" * 16)
    policy = _changed_policy(user)
    assert policy.history.first().history_username == "legal_lee"

    # Each refusal rolls back the deletion's own transaction (a savepoint here, inside the test's).
    with pytest.raises(PermanentRecordError, match="deactivate"), transaction.atomic():
        user.delete()
    with pytest.raises(PermanentRecordError), transaction.atomic():
        get_user_model().objects.filter(pk=user.pk).delete()
    assert policy.history.first().history_user == user


def test_a_user_without_history_can_still_be_removed() -> None:
    user = get_user_model().objects.create_user("typo_account", password="x" * 16)
    user.delete()
    assert not get_user_model().objects.filter(username="typo_account").exists()


def test_the_admin_offers_no_delete_for_users(admin_client: Client) -> None:
    user = get_user_model().objects.create_user("ops_olga", password="x" * 16, is_staff=True)
    response = admin_client.get(f"/admin/auth/user/{user.pk}/delete/")
    assert response.status_code == 403
    changelist = admin_client.get("/admin/auth/user/")
    assert b"delete_selected" not in changelist.content


def test_the_admin_cannot_change_or_delete_custody_events(admin_client: Client) -> None:
    event = _event()
    assert admin_client.post(f"/admin/recordings/recordingevent/{event.pk}/delete/", {"post": "yes"}).status_code == 403
    admin_client.post(f"/admin/recordings/recordingevent/{event.pk}/change/", {"detail": "rewritten"})
    event.refresh_from_db()
    assert event.detail == "cataloged"


def test_a_hold_placed_by_a_command_keeps_its_history_append_only() -> None:
    hold = LegalHold.objects.create(scope=LegalHold.Scope.RECORDINGS, reason="CFPB CID 2026-17", placed_by_name="ops")
    with pytest.raises(PermanentRecordError):
        LegalHold.history.filter(id=hold.pk).update(reason="nothing")
    assert LegalHold.history.get(id=hold.pk).reason == "CFPB CID 2026-17"
