"""Redaction: the one narrow, recorded way to change a permanent record, for erasure only."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from django.db import transaction

from recordings import custody
from recordings.models import Recording, RecordingEvent
from tests.factories import make_recording
from vicirec import clock
from vicirec.records import PermanentRecordError, redaction

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parent.parent.parent


def _event() -> RecordingEvent:
    recording = make_recording(filename="20261101-142501_3125551212")
    custody.note(recording, actor="tests", detail="uploaded 20261101-142501_3125551212.wav", now=clock.now())
    return RecordingEvent.objects.get(recording=recording)


def test_outside_a_redaction_permanent_rows_still_refuse_every_change() -> None:
    event = _event()
    event.detail = "[redacted]"
    with pytest.raises(PermanentRecordError):
        RecordingEvent.objects.redact([event], ["detail"])
    with pytest.raises(PermanentRecordError):
        RecordingEvent.objects.filter(pk=event.pk).update(detail="x")
    assert RecordingEvent.objects.get(pk=event.pk).detail.endswith("3125551212.wav")


def test_a_redaction_changes_only_redactable_fields_and_must_be_recorded() -> None:
    event = _event()
    with pytest.raises(PermanentRecordError, match="cannot be redacted"):
        with transaction.atomic(), redaction(basis="GDPR Art. 17(1)"):
            event.actor = "someone else"
            RecordingEvent.objects.redact([event], ["actor"])
    with pytest.raises(PermanentRecordError, match="must itself be recorded"):
        with transaction.atomic(), redaction(basis="GDPR Art. 17(1)"):
            event.detail = "[redacted]"
            RecordingEvent.objects.redact([event], ["detail"])
    assert "3125551212" in RecordingEvent.objects.get(pk=event.pk).detail  # rolled back
    with pytest.raises(PermanentRecordError):
        with transaction.atomic(), redaction(basis="GDPR Art. 17(1)") as log:
            RecordingEvent.objects.filter(pk=event.pk).update(detail="x")  # update() still refuses
            log.recorded = True
    with transaction.atomic(), redaction(basis="GDPR Art. 17(1)") as log:
        event.detail = "uploaded [redacted]"
        RecordingEvent.objects.redact([event], ["detail"])
        log.recorded = True
    assert log.entries == [{"table": RecordingEvent._meta.db_table, "rows": 1, "fields": ["detail"]}]
    assert RecordingEvent.objects.get(pk=event.pk).detail == "uploaded [redacted]"
    assert Recording.objects.count() == 1


def test_only_the_erasure_stage_opens_a_redaction() -> None:
    users = set()
    for app in ("recordings", "holds", "retention", "vicirec"):
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Call) and "redaction" == getattr(
                    node.func, "id", getattr(node.func, "attr", "")
                ):
                    users.add(str(path.relative_to(ROOT)))
                if isinstance(node, ast.Attribute) and node.attr == "redact":
                    users.add(str(path.relative_to(ROOT)))
    # the ledger's redact_for_erasure works only inside the redaction the erasure stage opens
    assert users == {"recordings/pipeline/erasure.py", "recordings/ledger.py"}
