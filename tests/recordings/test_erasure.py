"""Erasure that VICIdial starts and vicirec finishes: queue rows in, cloud copies and personal data out."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps
from django.core.management import call_command
from django.db import models

from holds.actions import place_hold, release_hold
from recordings.export import log_access
from recordings.models import Campaign, Recording, RecordingEvent
from recordings.pipeline import erasure
from recordings.pipeline.archive import archive_due
from recordings.pipeline.catalog import sync_recordings
from recordings.pipeline.erasure import erase_recordings
from recordings.pipeline.target import get_target
from recordings.vicidial import RecordingLog, RecordingLogArchive, RecordingLogDeletionQueue, VicidialLead
from retention.models import ErasureCertificate, ErasureItem
from tests.factories import VicidialData, make_policy, make_recording, write_file
from tests.s3_fixtures import s3_archive_storage
from tests.s3server import S3Server, make_bucket
from vicirec.actors import Actor

pytestmark = pytest.mark.django_db(databases=["default", "vicidial"])

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
PHONE = "3125559876"
OTHER_PHONE = "7735550000"
ACTOR = Actor.command("tests")


def versioned_bucket(server: S3Server, settings: Any) -> str:
    bucket = make_bucket(server)
    server.client().put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    settings.STORAGES = {**settings.STORAGES, "archive": s3_archive_storage(server, bucket)}
    return bucket


def vicidial_purge(vicidial: VicidialData, lead_id: int, *, when: datetime) -> None:
    """What "Confirm purge" in VICIdial's admin_modify_lead.php does with enable_gdpr_download_deletion on."""
    quote = vicidial.writer.connection.ops.quote_name
    queue = quote(RecordingLogDeletionQueue._meta.db_table)
    with vicidial.writer.connection.cursor() as cursor:
        for table in (RecordingLog, RecordingLogArchive):
            name = quote(table._meta.db_table)
            cursor.execute(
                f"INSERT IGNORE INTO {queue} (recording_id, lead_id, filename, location, date_queued) "
                f"SELECT recording_id, lead_id, filename, location, %s FROM {name} WHERE lead_id = %s",
                [when.replace(tzinfo=None), lead_id],
            )
            cursor.execute(f"UPDATE {name} SET filename = NULL, location = NULL WHERE lead_id = %s", [lead_id])
        cursor.execute(
            f"UPDATE {quote(VicidialLead._meta.db_table)} SET phone_number = '', first_name = '', last_name = '' "
            "WHERE lead_id = %s",
            [lead_id],
        )


def text_columns(model: type[models.Model]) -> list[str]:
    kinds = (models.CharField, models.TextField, models.JSONField, models.GenericIPAddressField)
    return [f.column for f in model._meta.concrete_fields if isinstance(f, kinds)]


def database_hits(needle: str) -> list[tuple[str, Any, Any]]:
    """(table, primary key, recording id if the row has one) of every row of vicirec's database, history
    included, whose text or JSON columns contain ``needle``."""
    from django.db import connection

    hits = []
    quote = connection.ops.quote_name
    for model in apps.get_models(include_auto_created=True):
        if getattr(model, "vicidial_table", False) or not model._meta.managed:
            continue
        columns = text_columns(model)
        if not columns:
            continue
        table = quote(model._meta.db_table)
        has_recording = "recording_id" in [f.column for f in model._meta.concrete_fields]
        select = f"{quote(model._meta.pk.column)}, {'recording_id' if has_recording else 'NULL'}"
        where = " OR ".join(f"CAST({quote(c)} AS TEXT) LIKE %s" for c in columns)
        if connection.vendor == "mysql":
            where = " OR ".join(f"CAST({quote(c)} AS CHAR) LIKE %s" for c in columns)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {select} FROM {table} WHERE {where}", [f"%{needle}%"] * len(columns))
            hits += [(model._meta.db_table, pk, rec) for pk, rec in cursor.fetchall()]
    return hits


def bucket_hits(server: S3Server, bucket: str, needle: str) -> list[str]:
    """Keys (every version and delete marker) and user metadata in the bucket that contain ``needle``."""
    client = server.client()
    found = []
    for page in client.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for item in page.get("Versions", []):
            head = client.head_object(Bucket=bucket, Key=item["Key"], VersionId=item["VersionId"])
            if needle in item["Key"] or needle in json.dumps(head.get("Metadata", {})):
                found.append(item["Key"])
        found += [m["Key"] for m in page.get("DeleteMarkers", []) if needle in m["Key"]]
    return found


@pytest.fixture
def lead_with_calls(vicidial: VicidialData, spool_dir: Path, s3_server: S3Server, settings: Any) -> dict[str, Any]:
    """A lead with three archived calls (VICIdial's FULLDATE_CUSTPHONE file names) and another lead's call."""
    bucket = versioned_bucket(s3_server, settings)
    vicidial.campaign("SALES", "Sales")
    lead = vicidial.lead(PHONE)
    rows = []
    for day in (5, 4, 3):
        start = NOW - timedelta(days=day)
        rows.append(
            vicidial.outbound_call(lead_id=lead, phone=PHONE, start=start, filename=f"{start:%Y%m%d-%H%M%S}_{PHONE}")
        )
    start = NOW - timedelta(days=5, hours=1)
    other = vicidial.outbound_call(phone=OTHER_PHONE, start=start, filename=f"{start:%Y%m%d-%H%M%S}_{OTHER_PHONE}")
    for row in [*rows, other]:
        write_file(spool_dir, f"{row['filename']}-all.wav", f"audio of {row['recording_id']}".encode() * 40)
    sync_recordings(now=NOW, node="")
    make_policy(campaign=Campaign.objects.get(campaign_id="SALES"), keep_local_days=1, retain_days=400, codec="none")
    report = archive_due(now=NOW, node="", threads=1)
    assert report.archived == 4, report.as_dict()
    first = Recording.objects.get(pk=rows[0]["recording_id"])
    # A second version under the same key (a re-upload), an access, a change made by a person.
    s3_server.client().put_object(Bucket=bucket, Key=first.object_key, Body=b"again", Metadata={"f": first.filename})
    log_access([first.pk], action="play", who=ACTOR, detail=f"streamed {first.object_key}")
    first._change_reason = f"checked {first.filename}"  # type: ignore[attr-defined]
    first.save()
    return {"bucket": bucket, "lead": lead, "ids": [r["recording_id"] for r in rows], "other": other}


def erase_json() -> dict[str, Any]:
    out = StringIO()
    call_command("erase_recordings", "--json", stdout=out)
    return json.loads(out.getvalue())


def test_a_vicidial_lead_purge_is_finished_in_the_cloud_and_a_held_call_waits_for_its_release(
    vicidial: VicidialData, spool_dir: Path, s3_server: S3Server, lead_with_calls: dict[str, Any]
) -> None:
    bucket, ids = lead_with_calls["bucket"], lead_with_calls["ids"]
    held_id = ids[2]
    hold = place_hold(reason="complaint 12", actor=ACTOR, recording_ids=[held_id])
    before = {r.pk: r for r in Recording.objects.filter(pk__in=ids)}
    vicidial_purge(vicidial, lead_with_calls["lead"], when=NOW - timedelta(hours=1))
    assert RecordingLog.objects.filter(lead_id=lead_with_calls["lead"], filename__isnull=False).count() == 0

    report = erase_json()

    assert (report["queue_rows_read"], report["erased"], report["refused_held"]) == (3, 2, 1)
    assert report["cloud_versions_deleted"] == 3 and report["local_deleted"] == 2
    client = s3_server.client()
    versions = client.list_object_versions(Bucket=bucket)
    remaining = {v["Key"] for v in [*versions.get("Versions", []), *versions.get("DeleteMarkers", [])]}
    assert remaining == {
        before[held_id].object_key,
        Recording.objects.get(pk=lead_with_calls["other"]["recording_id"]).object_key,
    }
    for pk in ids[:2]:
        assert not (spool_dir / before[pk].local_path).exists()
        erased = Recording.objects.get(pk=pk)
        assert erased.state == "erased" and erased.phone_number == "" and erased.lead_id is None
        assert erased.object_key.startswith("redacted:sha256:")
        certificate = ErasureCertificate.objects.get(recording_id=pk)
        assert certificate.stored_sha256 == before[pk].stored_sha256 and certificate.requested_by.startswith("VICIdial")
        assert certificate.hold_check["held"] is False and certificate.redactions
    # Only the held recording's own rows still name the caller; the bucket holds only its object.
    hits = database_hits(PHONE)
    assert {rec for _, _, rec in hits} == {held_id}, hits
    assert bucket_hits(s3_server, bucket, PHONE) == [before[held_id].object_key]
    assert (spool_dir / before[held_id].local_path).exists()
    refusal = ErasureItem.objects.get(recording_id=held_id)
    assert refusal.status == "refused" and refusal.refusal == f"refused: under hold {hold.pk} (GDPR Art. 17(3)(e))"
    assert RecordingEvent.objects.filter(recording_id=held_id, detail__contains=refusal.refusal).count() == 1
    assert erase_json()["refused_held"] == 1  # a second run keeps refusing, without a second custody note
    assert RecordingEvent.objects.filter(recording_id=held_id, detail__contains=refusal.refusal).count() == 1

    release_hold(hold, reason="matter closed", actor=ACTOR)

    assert Recording.objects.get(pk=held_id).state == "erased"
    assert ErasureItem.objects.get(recording_id=held_id).status == "erased"
    assert database_hits(PHONE) == []
    assert bucket_hits(s3_server, bucket, PHONE) == []
    assert not (spool_dir / before[held_id].local_path).exists()
    # The other lead's call is untouched.
    other = Recording.objects.get(pk=lead_with_calls["other"]["recording_id"])
    assert other.state == "archived" and other.phone_number == OTHER_PHONE
    assert bucket_hits(s3_server, bucket, OTHER_PHONE) == [other.object_key]


def test_a_hold_placed_while_an_erasure_runs_wins(
    vicidial: VicidialData, spool_dir: Path, s3_server: S3Server, lead_with_calls: dict[str, Any], monkeypatch
) -> None:
    ids = lead_with_calls["ids"]
    vicidial_purge(vicidial, lead_with_calls["lead"], when=NOW)
    real_claim = erasure.claim
    holds = []

    def claim_then_hold(*args: Any, **kwargs: Any) -> list[Recording]:
        won = real_claim(*args, **kwargs)  # chosen as unheld; a hold arrives before the files are deleted
        holds.append(place_hold(reason="subpoena", actor=ACTOR, recording_ids=[ids[0]]))
        return won

    monkeypatch.setattr(erasure, "claim", claim_then_hold)
    report = erase_recordings(now=NOW)

    assert report.held_at_erasure == 1 and report.erased == 2
    kept = Recording.objects.get(pk=ids[0])
    assert kept.state == "archived" and kept.phone_number == PHONE and kept.claimed_by == ""
    target = get_target()
    assert target.confirm(
        kept.object_key, sha256_hex=kept.stored_sha256, size=kept.stored_size or 0, version_id=kept.version_id
    ).ok
    item = ErasureItem.objects.get(recording_id=ids[0])
    assert item.status == "refused" and f"hold {holds[0].pk}" in item.refusal


def test_dry_run_changes_nothing(vicidial: VicidialData, lead_with_calls: dict[str, Any]) -> None:
    vicidial_purge(vicidial, lead_with_calls["lead"], when=NOW)
    snapshot = list(Recording.objects.order_by("pk").values())

    report = erase_recordings(now=NOW, dry_run=True)

    assert report.queue_rows_read == 3 and sorted(report.would_erase) == lead_with_calls["ids"]
    assert list(Recording.objects.order_by("pk").values()) == snapshot
    assert not ErasureItem.objects.exists() and not ErasureCertificate.objects.exists()


def test_unknown_recordings_are_closed_and_later_calls_wait_for_the_catalog(vicidial: VicidialData) -> None:
    make_recording(recording_id=5000)
    vicidial.writer.insert(
        RecordingLogDeletionQueue,
        [{"recording_id": 10, "date_queued": NOW}, {"recording_id": 9000, "date_queued": NOW}],
    )

    report = erase_recordings(now=NOW)

    assert (report.not_cataloged, report.waiting_for_catalog) == (1, 1)
    assert dict(ErasureItem.objects.values_list("recording_id", "status")) == {10: "unknown", 9000: "pending"}
    assert erase_recordings(now=NOW).queue_rows_read == 0  # a row is taken up once


def approver(username: str) -> Any:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission

    user = get_user_model().objects.create_user(username)
    user.user_permissions.add(
        Permission.objects.get(codename="approve_policy_override"),
        Permission.objects.get(codename="open_erasurerequest"),
    )
    return get_user_model().objects.get(pk=user.pk)


def test_a_desk_request_is_previewed_and_needs_a_second_legal_approver(lead_with_calls: dict[str, Any]) -> None:
    from django.core.exceptions import PermissionDenied

    ids = lead_with_calls["ids"]
    hold = place_hold(reason="complaint", actor=ACTOR, recording_ids=[ids[1]])
    alice, bob = approver("alice"), approver("bob")
    request = erasure.open_request(actor=Actor.person(alice), phone="(312) 555-9876", reason="letter", now=NOW)

    preview = erasure.preview(request)
    assert (preview.recordings, preview.held) == (3, 1) and preview.bytes > 0
    assert preview.holds == [str(hold)]
    with pytest.raises(PermissionDenied, match="Four eyes"):
        erasure.approve_request(request, approver=alice, reason="ok", now=NOW)
    from django.contrib.auth import get_user_model

    clerk = get_user_model().objects.create_user("clerk")
    with pytest.raises(PermissionDenied, match="Legal approver"):
        erasure.approve_request(request, approver=clerk, reason="ok", now=NOW)
    assert Recording.objects.filter(pk__in=ids, state="erased").count() == 0

    report = erasure.approve_request(request, approver=bob, reason="identity checked", now=NOW)

    assert (report.erased, report.refused_held) == (2, 1)
    request.refresh_from_db()
    assert request.subject_phone == "" and request.decided_by_name == "bob" and request.status == "approved"
    certificate = ErasureCertificate.objects.get(recording_id=ids[0])
    assert certificate.requested_by == "alice" and certificate.legal_basis == "GDPR Art. 17(1)"


def test_an_expired_recordings_deletion_certificate_is_scrubbed_too(lead_with_calls: dict[str, Any], vicidial) -> None:
    from recordings.pipeline.retention import enforce_retention
    from retention.models import DeletionCertificate

    ids = lead_with_calls["ids"]
    enforce_retention(now=NOW + timedelta(days=500), dry_run=False, confirm=True)
    certificate = DeletionCertificate.objects.get(recording_id=ids[0])
    assert certificate.call["phone_number"] == PHONE
    vicidial_purge(vicidial, lead_with_calls["lead"], when=NOW)

    report = erase_recordings(now=NOW + timedelta(days=500))

    assert report.erased == 3 and report.cloud_versions_deleted == 1  # the re-upload left behind by retention
    certificate.refresh_from_db()
    assert certificate.call["phone_number"] is None and certificate.object_key.startswith("redacted:sha256:")
    assert database_hits(PHONE) == []


def test_refusals_show_in_pipeline_status_and_the_holds_evidence_package(
    vicidial: VicidialData, lead_with_calls: dict[str, Any]
) -> None:
    import io
    import zipfile

    from recordings.export import EvidenceExport, evidence_recordings
    from recordings.ops.status import pipeline_status

    ids = lead_with_calls["ids"]
    hold = place_hold(reason="complaint", actor=ACTOR, recording_ids=[ids[2]])
    vicidial_purge(vicidial, lead_with_calls["lead"], when=NOW)
    erase_recordings(now=NOW)

    status = pipeline_status(now=NOW)
    assert status.erasures["refused_under_hold"] == 1 and status.erasures["erased_30_days"] == 2
    assert any(f"under hold {hold.pk} (GDPR Art. 17(3)(e))" in n for n in status.notices)
    out = StringIO()
    call_command("pipeline_status", stdout=out)
    assert "1 refused under hold" in out.getvalue()

    package = io.BytesIO()
    EvidenceExport(evidence_recordings(hold=hold), who=ACTOR, scope=str(hold), now=NOW).write_to(package)
    with zipfile.ZipFile(package) as zf:
        name = next(n for n in zf.namelist() if n.endswith("manifest.json"))
        summary = json.loads(zf.read(name))["export"]
    assert [(b["recording_id"], b["holds"]) for b in summary["erasure_requests_blocked"]] == [(ids[2], [hold.pk])]
