"""Retention against a real bucket: exactly the expired, unheld recordings go, each with a certificate."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError

from holds.actions import place_hold, release_hold
from holds.models import Case, LegalHold
from recordings.models import Campaign, Recording
from recordings.pipeline import retention as enforce
from recordings.pipeline.archive import archive_due
from recordings.pipeline.cleanup import cleanup_local
from recordings.pipeline.retention import SAFETY_STOP_EXIT_CODE, enforce_retention
from recordings.pipeline.target import get_target
from retention.forecast import forecast
from retention.models import DeletionCertificate
from tests.factories import make_policy, make_recording, write_file
from vicirec.actors import Actor

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
ACTOR = Actor.command("tests")


def campaign(campaign_id: str, retain_days: int, record_class: str = "general", **kw: Any) -> Campaign:
    c = Campaign.objects.create(kind="outbound", campaign_id=campaign_id, name=campaign_id)
    make_policy(campaign=c, keep_local_days=1, retain_days=retain_days, record_class=record_class, codec="none", **kw)
    return c


def recording(spool: Path, camp: Campaign, age_days: int, **kw: Any) -> Recording:
    r = make_recording(start_time=NOW - timedelta(days=age_days), campaign=camp, **kw)
    write_file(spool, f"MP3/{r.filename}-all.mp3", f"audio of {r.recording_id}".encode() * 50)
    return r


def archive_everything(local_age_cutoff: int = 30) -> None:
    """Archive all due recordings, and clear local copies of those older than ``local_age_cutoff`` days.

    Each is archived while it was still inside its retention, as a running installation would have done
    (a recording already past it is never uploaded): archive runs step back in time 60 days apart."""
    for days_ago in range(3000, -1, -60):
        archive_due(now=NOW - timedelta(days=days_ago), node="", threads=1)
    cleanup_local(now=NOW, node="")


def in_bucket(r: Recording) -> bool:
    r.refresh_from_db()
    return get_target().confirm(r.object_key, sha256_hex=r.stored_sha256, size=r.stored_size or 0).found


@pytest.fixture
def archive(archive_s3_settings: str, spool_dir: Path) -> Path:
    return spool_dir


def test_one_run_deletes_exactly_the_expired_unheld_recordings(archive: Path) -> None:
    collections = campaign("COLLECT", 90)
    debt = campaign("DEBT", 3 * 366, "debt_collection")
    consent = campaign("CONSENT", 7 * 366, "telemarketing_consent")
    frozen = campaign("FROZEN", 90)
    r = {
        "collect_old": recording(archive, collections, 200),
        "collect_young": recording(archive, collections, 30),
        "collect_held_by_hand": recording(archive, collections, 300),
        "collect_held_by_case": recording(archive, collections, 250, phone_number="3125550001"),
        "debt_old": recording(archive, debt, 3 * 366 + 10),
        "debt_young": recording(archive, debt, 400),
        "consent_old": recording(archive, consent, 6 * 366),
        "frozen_old": recording(archive, frozen, 500),
    }
    archive_everything()
    place_hold(reason="customer complaint 17", actor=ACTOR, recording_ids=[r["collect_held_by_hand"].pk])
    case = Case.objects.create(name="CFPB CID 2026-1", external_reference="2026-CID-1", phone_numbers=["3125550001"])
    case_hold = place_hold(reason="CFPB civil investigative demand", actor=ACTOR, case=case)
    place_hold(reason="litigation over the FROZEN campaign", actor=ACTOR, campaign=frozen)
    # A call of the case's phone number cataloged after the hold was placed is covered too.
    later = recording(archive, collections, 120, phone_number="3125550001")
    archive_everything()

    report = enforce_retention(now=NOW, dry_run=False, confirm=True)

    deleted = {"collect_old", "debt_old"}
    assert report.deleted == 2 and report.failed == 0
    for name, rec in r.items():
        rec.refresh_from_db()
        assert (rec.state == "expired") == (name in deleted), name
        assert in_bucket(rec) == (name not in deleted), name
    later.refresh_from_db()
    assert later.state != "expired" and in_bucket(later)
    for name in deleted:
        cert = DeletionCertificate.objects.get(recording=r[name])
        assert cert.cloud_deleted and cert.stored_sha256 == r[name].stored_sha256
        assert cert.hold_check["held"] is False and cert.run == report.run
        assert cert.call["recording_id"] == r[name].pk
    assert DeletionCertificate.objects.get(recording=r["debt_old"]).policy["floor_days"] == 1097

    release_hold(case_hold, reason="investigation closed", actor=ACTOR)
    second = enforce_retention(now=NOW, dry_run=False, confirm=True)

    assert second.deleted == 2
    for rec in (r["collect_held_by_case"], later):
        rec.refresh_from_db()
        assert rec.state == "expired" and not in_bucket(rec)


def test_a_hold_placed_between_selection_and_deletion_wins(archive: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    short = campaign("SHORT", 90)
    victims = [recording(archive, short, 200 + n) for n in range(3)]
    archive_everything()
    real_claim = enforce.claim

    def claim_then_a_lawyer_calls(*args: Any, **kwargs: Any) -> list[Recording]:
        batch = real_claim(*args, **kwargs)
        if batch:
            place_hold(reason="hold placed mid-run", actor=ACTOR, recording_ids=[victims[1].pk])
        return batch

    monkeypatch.setattr(enforce, "claim", claim_then_a_lawyer_calls)
    report = enforce_retention(now=NOW, dry_run=False, confirm=True)

    assert report.held_at_deletion == 1 and report.deleted == 2
    victims[1].refresh_from_db()
    assert victims[1].state != "expired" and victims[1].claimed_by == "" and in_bucket(victims[1])
    assert not DeletionCertificate.objects.filter(recording=victims[1]).exists()


def test_dry_run_lists_and_deletes_nothing(archive: Path) -> None:
    short = campaign("SHORT", 90)
    old = recording(archive, short, 200)
    archive_everything()
    out = StringIO()
    call_command("enforce_retention", "--dry-run", "--json", stdout=out)
    data = json.loads(out.getvalue())
    assert data["dry_run"] and data["would_delete"] and old.pk in data["would_delete"]
    old.refresh_from_db()
    assert old.state != "expired" and in_bucket(old)


def test_a_run_larger_than_the_safe_share_stops_and_asks_for_confirm(archive: Path) -> None:
    short = campaign("SHORT", 90)
    recs = [recording(archive, short, 200) for _ in range(2)] + [recording(archive, short, 10) for _ in range(2)]
    archive_everything()
    stopped = enforce_retention(now=NOW, dry_run=False)
    assert "--confirm" in stopped.stopped and stopped.deleted == 0
    assert (stopped.stopped_recordings, stopped.stopped_share_percent) == (2, 50.0)
    out = StringIO()
    with pytest.raises(CommandError, match="nothing deleted") as refused:
        call_command("enforce_retention", "--json", stdout=out)
    assert refused.value.returncode == SAFETY_STOP_EXIT_CODE == 3
    assert json.loads(out.getvalue())["stopped"].startswith("stopped, nothing deleted")
    assert not Recording.objects.filter(state="expired").exists()
    assert enforce_retention(now=NOW, dry_run=False, confirm=True).deleted == 2
    assert {r.pk for r in recs[:2]} == set(Recording.objects.filter(state="expired").values_list("pk", flat=True))


def test_expired_local_only_recording_loses_its_local_file(spool_dir: Path, settings: Any, tmp_path: Path) -> None:
    settings.STORAGES = {
        **settings.STORAGES,
        "archive": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": tmp_path / "archive"},
        },
    }
    short = campaign("SHORT", 90)
    rec = recording(spool_dir, short, 200, local_path="")
    Recording.objects.filter(pk=rec.pk).update(local_path=f"MP3/{rec.filename}-all.mp3")
    report = enforce_retention(now=NOW, dry_run=False, confirm=True)
    assert report.deleted == 1
    assert not (spool_dir / f"MP3/{rec.filename}-all.mp3").exists()
    cert = DeletionCertificate.objects.get(recording=rec)
    assert cert.local_deleted and not cert.cloud_deleted


def test_certificates_cannot_be_changed_or_deleted(archive: Path) -> None:
    short = campaign("SHORT", 90)
    rec = recording(archive, short, 200)
    archive_everything()
    enforce_retention(now=NOW, dry_run=False, confirm=True)
    cert = DeletionCertificate.objects.get(recording=rec)
    cert.object_key = "something else"
    with pytest.raises(ValidationError):
        cert.save()
    with pytest.raises(ValidationError):
        cert.delete()
    rec.refresh_from_db()
    assert DeletionCertificate.objects.get(recording=rec).object_key == rec.object_key != ""


def test_forecast_shows_what_expires_soon_by_campaign_and_what_is_held(archive: Path) -> None:
    short = campaign("SHORT", 90)
    soon = recording(archive, short, 80)
    held = recording(archive, short, 70)
    recording(archive, short, 10)
    archive_everything()
    place_hold(reason="complaint", actor=ACTOR, recording_ids=[held.pk])
    data = forecast(now=NOW)
    thirty = data["windows"][0]
    assert thirty["days"] == 30 and thirty["recordings"] == 2 and thirty["held_recordings"] == 1
    assert thirty["by_campaign"][0]["campaign"] == "SHORT" and thirty["bytes"] > 0
    assert soon.pk


def test_hold_release_needs_its_own_permission_and_everything_has_history(archive: Path) -> None:
    users = get_user_model()
    legal = users.objects.create_user("lena", password="x" * 12)
    rec = recording(archive, campaign("SHORT", 90), 200)
    hold = place_hold(reason="complaint 42", actor=Actor.person(legal), recording_ids=[rec.pk])
    with pytest.raises(Exception, match="permission"):
        release_hold(hold, reason="done", actor=Actor.person(legal))
    assert LegalHold.objects.get(pk=hold.pk).is_active
    history = hold.history.order_by("history_date")
    assert history.first().history_user == legal and "complaint 42" in history.first().history_change_reason
    approver = users.objects.create_superuser("alex", password="x" * 12)
    release_hold(hold, reason="matter settled", actor=Actor.person(approver))
    latest = hold.history.latest("history_date")
    assert latest.history_user == approver and "matter settled" in latest.history_change_reason
    assert latest.released_by_name == "alex"


@pytest.mark.django_db(databases=["default", "vicidial"])
def test_run_lifecycle_reports_the_safety_stop_instead_of_a_traceback(archive: Path, vicidial: Any) -> None:
    short = campaign("SHORT", 90)
    [recording(archive, short, 200) for _ in range(2)] + [recording(archive, short, 10) for _ in range(2)]
    archive_everything()
    out = StringIO()
    with pytest.raises(CommandError, match="retention stopped, nothing deleted") as refused:
        call_command("run_lifecycle", "--json", stdout=out)
    assert refused.value.returncode == SAFETY_STOP_EXIT_CODE
    data = json.loads(out.getvalue())
    assert data["retention"]["stopped_recordings"] == 2 and data["retention"]["deleted"] == 0
    assert {"sync", "archive", "cleanup"} <= set(data)
    assert not Recording.objects.filter(state="expired").exists()


def test_a_run_asks_the_catalog_for_no_more_than_it_counted(archive: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The deletion walk stops once it has claimed what was counted, and a run with nothing due does not
    walk at all: a key-ordered query that finds fewer rows than its LIMIT reads the rest of the catalog's
    key index (seconds a run at 10 million recordings)."""
    import re

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    monkeypatch.setattr(enforce, "DELETE_BATCH", 2)
    short = campaign("SHORT", 90)
    old = [recording(archive, short, 200 + i) for i in range(5)]
    young = [recording(archive, short, 10 + i) for i in range(3)]
    archive_everything()
    walk = re.compile(r"recording_id.? ASC LIMIT", re.IGNORECASE)
    with CaptureQueriesContext(connection) as queries:
        report = enforce_retention(now=NOW, dry_run=False, confirm=True)
    assert report.deleted == 5 and report.errors == []
    assert sum(1 for q in queries.captured_queries if walk.search(q["sql"])) == 3  # 2 + 2 + 1, no empty fourth
    assert {r.pk for r in Recording.objects.filter(state=Recording.State.EXPIRED)} == {r.pk for r in old}
    with CaptureQueriesContext(connection) as queries:
        again = enforce_retention(now=NOW, dry_run=False, confirm=True)
    assert again.deleted == 0 and again.expired_total == 0
    assert not any(walk.search(q["sql"]) for q in queries.captured_queries)
    assert all(Recording.objects.get(pk=r.pk).state != Recording.State.EXPIRED for r in young)
