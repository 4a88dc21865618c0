"""The custody ledger: every custody record chained, signed checkpoints in the bucket, tampering found."""

from __future__ import annotations

import json
import stat
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from holds.actions import place_hold, release_hold
from recordings import custody, ledger
from recordings.export import log_access
from recordings.lib import ledger as chain
from recordings.models import Checkpoint, LedgerEntry, Recording
from recordings.pipeline.checkpoints import make_checkpoint
from recordings.pipeline.custody_check import verify_custody
from recordings.pipeline.retention import enforce_retention
from recordings.pipeline.target import get_target
from retention.models import DeletionCertificate
from tests.retention.test_enforce import ACTOR, NOW, archive_everything, campaign, recording
from tests.s3server import make_bucket

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def history(archive_s3_settings: str, spool_dir: Path) -> dict[str, Recording]:
    """Recordings archived, one deleted under retention with its certificate, a hold placed and released,
    a policy changed and an access logged: one of every kind of record the ledger copies."""
    short = campaign("SHORT", 90)
    kept, gone = recording(spool_dir, short, 30), recording(spool_dir, short, 200)
    archive_everything()
    enforce_retention(now=NOW, dry_run=False, confirm=True)
    hold = place_hold(reason="complaint 7", actor=ACTOR, recording_ids=[kept.pk])
    release_hold(hold, reason="settled", actor=ACTOR)
    policy = short.policy
    policy.retain_days = 120
    policy.save()
    log_access([kept.pk], action="play", who=ACTOR)
    return {"kept": kept, "gone": gone}


def _sql(statement: str, params: list[object]) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def _first_problem() -> str:
    with pytest.raises(CommandError) as failed:
        call_command("verify_custody", stdout=StringIO())
    return str(failed.value)


def test_every_kind_of_record_is_chained_and_verifies(history: dict[str, Recording]) -> None:
    kinds = set(LedgerEntry.objects.values_list("kind", flat=True))
    assert {"custody_event", "access", "deletion_certificate", "hold_history", "policy_history"} <= kinds
    make_checkpoint(now=NOW)
    out = StringIO()
    call_command("verify_custody", "--json", stdout=out)
    result = json.loads(out.getvalue())
    assert result["ok"] and result["checkpoints"] == 1 and result["entries"] == LedgerEntry.objects.count()
    # every custody event of the deleted recording is in the ledger, with its content as stored
    gone = history["gone"]
    assert LedgerEntry.objects.filter(recording_id=gone.pk, kind="custody_event").count() == gone.events.count()
    certificate = LedgerEntry.objects.get(kind="deletion_certificate")
    assert json.loads(certificate.content)["row"]["recording_id"] == gone.pk


def test_an_edited_custody_event_is_named(history: dict[str, Recording]) -> None:
    make_checkpoint(now=NOW)
    event = history["kept"].events.order_by("id").first()
    _sql("UPDATE recordings_recordingevent SET detail = %s WHERE id = %s", ["nothing happened", event.pk])
    entry = LedgerEntry.objects.get(kind="custody_event", ref=str(event.pk))
    assert f"entry {entry.seq} (custody_event {event.pk}): the recording event was changed" in _first_problem()


def test_a_deleted_certificate_is_named(history: dict[str, Recording]) -> None:
    make_checkpoint(now=NOW)
    certificate = DeletionCertificate.objects.get()
    _sql("DELETE FROM retention_deletioncertificate WHERE id = %s", [certificate.pk])
    entry = LedgerEntry.objects.get(kind="deletion_certificate")
    assert f"entry {entry.seq} (deletion_certificate {certificate.pk}): the deletion certificate is gone" in (
        _first_problem()
    )
    report = verify_custody(now=NOW, record=False)
    assert f"recording {history['gone'].pk}: deleted under retention but has no deletion certificate" in report.problems


def test_two_reordered_entries_are_named(history: dict[str, Recording]) -> None:
    make_checkpoint(now=NOW)
    a, b = 3, 6
    _sql("UPDATE recordings_ledgerentry SET seq = %s WHERE seq = %s", [10**9, a])
    _sql("UPDATE recordings_ledgerentry SET seq = %s WHERE seq = %s", [a, b])
    _sql("UPDATE recordings_ledgerentry SET seq = %s WHERE seq = %s", [b, 10**9])
    assert "BROKEN at entry 3 (" in _first_problem()


def test_a_rewritten_chain_no_longer_holds_the_anchored_head(history: dict[str, Recording]) -> None:
    """Someone with the database rewrites an event and recomputes every hash after it: the chain is
    consistent again, but the checkpoint in the bucket names the old head."""
    make_checkpoint(now=NOW)
    anchored = Checkpoint.objects.get().count
    event = history["kept"].events.order_by("id").first()
    _sql("UPDATE recordings_recordingevent SET detail = %s WHERE id = %s", ["rewritten", event.pk])
    entries = list(LedgerEntry.objects.order_by("seq"))
    prev = chain.GENESIS
    for e in entries:
        if e.kind == "custody_event" and e.ref == str(event.pk):
            e.content = chain.canonical(
                {**json.loads(e.content), "row": {**json.loads(e.content)["row"], "detail": "rewritten"}}
            )
            e.content_sha256 = chain.content_sha256(e.content)
        e.entry_sha256 = chain.entry_sha256(e.seq, e.kind, prev, e.content_sha256)
        _sql(
            "UPDATE recordings_ledgerentry SET content = %s, content_sha256 = %s, prev_sha256 = %s, entry_sha256 = %s "
            "WHERE seq = %s",
            [e.content, e.content_sha256, prev, e.entry_sha256, e.seq],
        )
        prev = e.entry_sha256
    _sql("UPDATE recordings_ledgerhead SET head_sha256 = %s", [prev])
    assert f"BROKEN at entry {anchored} (" in _first_problem()
    assert "differs from the head anchored in custody/checkpoints/" in _first_problem()


def test_key_rotation_keeps_old_checkpoints_verifiable(history: dict[str, Recording], settings) -> None:  # type: ignore[no-untyped-def]
    key_file = Path(settings.VICIREC_CUSTODY_KEY_FILE)
    first = make_checkpoint(now=NOW)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    call_command("rotate_custody_key", stdout=StringIO())
    second = make_checkpoint(now=NOW)
    assert first.key_id != second.key_id
    assert (key_file.parent / f"{key_file.name}.{first.key_id}.retired").exists()
    report = verify_custody(now=NOW)
    assert report.ok, report.problems
    assert report.keys == sorted({first.key_id, second.key_id}) and report.checkpoints == 4
    assert set(LedgerEntry.objects.filter(kind="custody_key").values_list("ref", flat=True)) == set(report.keys)
    signed_by = {
        json.loads(c)["key_id"] for c in LedgerEntry.objects.filter(kind="checkpoint").values_list("content", flat=True)
    }
    assert signed_by == set(report.keys)


def test_a_forged_checkpoint_signature_is_refused(history: dict[str, Recording]) -> None:
    report = make_checkpoint(now=NOW)
    target = get_target()
    forged = report.object_key.replace("-", "-9", 1)
    target.put_bytes(forged, b"".join(target.iter_object(report.object_key)), content_type="text/plain")
    target.put_bytes(forged[:-4] + ".sig", bytes(64), content_type="application/octet-stream")
    problems = verify_custody(now=NOW, record=False).problems
    assert problems[0] == f"checkpoint {forged}: the signature does not verify with key {report.key_id}"


def test_checkpoints_are_locked_where_the_bucket_has_object_lock(settings, s3_server, spool_dir: Path) -> None:  # type: ignore[no-untyped-def]
    from tests.s3_fixtures import s3_archive_storage

    bucket = make_bucket(s3_server, object_lock=True)
    settings.STORAGES = {**settings.STORAGES, "archive": s3_archive_storage(s3_server, bucket)}
    custody.catalog([Recording(recording_id=1, filename="a")], actor="tests", now=NOW, detail=lambda r: "new")
    report = make_checkpoint(now=NOW)
    assert report.locked_until is not None
    client = s3_server.client()
    retention = client.get_object_retention(Bucket=bucket, Key=report.object_key)["Retention"]
    assert retention["Mode"] == "COMPLIANCE"
    version = Checkpoint.objects.get().version_id
    with pytest.raises(Exception):  # noqa: B017 - botocore's AccessDenied, whatever its class
        client.delete_object(Bucket=bucket, Key=report.object_key, VersionId=version)
    assert verify_custody(now=NOW, record=False).ok


def test_a_rolled_back_change_leaves_no_entry() -> None:
    from django.db import transaction

    custody.catalog([Recording(recording_id=1, filename="a")], actor="tests", now=NOW, detail=lambda r: "new")
    before = ledger.head()
    with pytest.raises(RuntimeError), transaction.atomic():
        custody.note(Recording.objects.get(), actor="tests", detail="noted", now=NOW)
        raise RuntimeError
    assert ledger.head() == before and LedgerEntry.objects.count() == before[0]


def test_pipeline_status_and_the_dashboard_show_the_last_check(history: dict[str, Recording]) -> None:
    from recordings.ops.dashboard import dashboard_data
    from recordings.ops.status import pipeline_status

    make_checkpoint(now=NOW)
    verify_custody(now=NOW)
    status = pipeline_status(now=NOW)
    assert status.custody is not None and status.custody["ok"]
    assert not any("custody" in p for p in status.problems)
    event = history["kept"].events.order_by("id").first()
    _sql("UPDATE recordings_recordingevent SET actor = %s WHERE id = %s", ["someone else", event.pk])
    verify_custody(now=NOW)
    status = pipeline_status(now=NOW)
    assert any(
        p.startswith("the custody ledger check of") and f"custody_event {event.pk}" in p for p in status.problems
    )
    assert dashboard_data(NOW)["custody"]["ok"] is False
