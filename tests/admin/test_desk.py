"""The desk's behaviour: indexed search, bounded changelists, the detail page, playback, VICIdial links,
evidence export verified with sha256sum, and policy impact previews."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import zipfile
from collections.abc import Callable
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from holds.actions import place_hold
from holds.models import Case
from recordings.admin import search_condition
from recordings.models import AccessEvent, Campaign, Recording
from tests.admin.conftest import DESK, archive_and_clear, recorded_call
from tests.factories import make_policy, make_recording, write_file
from vicirec.actors import Actor

pytestmark = pytest.mark.django_db


def login(make_user: Callable[..., Any], role: str) -> Client:
    client = Client(headers=DESK)  # as the desk's own pages send their requests
    client.force_login(make_user(role))
    return client


def test_search_is_exact_on_indexed_columns() -> None:
    a = make_recording(phone_number="3125550100", lead_id=501, agent="1001")
    b = make_recording(phone_number="7735550199", lead_id=502, agent="1002")

    def found(term: str) -> set[int]:
        return set(Recording.objects.filter(search_condition(term)).values_list("pk", flat=True))

    assert found("3125550100") == found("(312) 555-0100") == found("13125550100") == {a.pk}
    assert found("phone:7735550199") == found("lead:502") == found("agent:1002") == {b.pk}
    assert found(str(a.pk)) == found(f"id:{a.pk}") == {a.pk}
    assert found(f"MP3/{b.filename}-all.mp3") == found(b.filename) == {b.pk}
    assert found("312555") == set()  # no substring scans
    sql = str(Recording.objects.filter(search_condition("3125550100")).query)
    assert "LIKE" not in sql.upper()


def test_changelist_never_counts_the_whole_table_and_costs_the_same_per_page(make_user: Callable[..., Any]) -> None:
    client = login(make_user, "Legal")
    campaign = Campaign.objects.create(kind="outbound", campaign_id="SALES")
    place_hold(reason="r", actor=Actor.command("tests"), campaign=campaign)
    for n in range(5):
        make_recording(campaign=campaign if n % 2 else None)
    url = reverse("admin:recordings_recording_changelist")
    with CaptureQueriesContext(connection) as few:
        assert client.get(url + "?q=3125551212").status_code == 200
    for _ in range(40):
        make_recording(campaign=campaign)
    with CaptureQueriesContext(connection) as many:
        page = client.get(url + "?q=3125551212")
    assert page.status_code == 200
    assert len(many.captured_queries) == len(few.captured_queries)
    counts = [q["sql"] for q in many.captured_queries if "COUNT(" in q["sql"].upper()]
    assert counts and all("LIMIT" in sql.upper() for sql in counts), counts


def test_detail_page_shows_copies_hash_chain_holds_expiry_and_custody(
    make_user: Callable[..., Any], filesystem_archive: Path
) -> None:
    campaign = Campaign.objects.create(kind="outbound", campaign_id="DEBT")
    make_policy(campaign=campaign, keep_local_days=1, retain_days=1200, record_class="debt_collection", codec="mp3")
    recording = recorded_call(filesystem_archive, campaign=campaign, phone_number="3125550111")
    archive_and_clear()
    recording.refresh_from_db()
    case = Case.objects.create(name="Smith v. Acme", phone_numbers=["3125550111"])
    place_hold(reason="litigation hold Smith", actor=Actor.command("tests"), case=case)
    client = login(make_user, "Auditor")
    page = client.get(reverse("admin:recordings_recording_change", args=[recording.pk])).content.decode()
    for expected in (
        recording.original_sha256,
        recording.stored_sha256,
        recording.object_key,
        "Regulation F",  # the record class's legal source, through expiry().explain()
        "litigation hold Smith",
        "Custody log",
        "archived",
        "Access log",
        "Your role does not include playback",
    ):
        assert expected in page, expected


def test_playback_streams_the_bucket_copy_and_logs_it_when_the_audio_leaves(
    make_user: Callable[..., Any], archive_s3_settings: str, spool_dir: Path, settings: Any, tmp_path: Path
) -> None:
    settings.VICIREC_WORK_DIR = tmp_path / "work"
    recording = recorded_call(spool_dir)
    archive_and_clear()
    recording.refresh_from_db()
    assert recording.state == Recording.State.CLEARED
    client = login(make_user, "Legal")
    response = client.get(reverse("admin:recordings_recording_play", args=[recording.pk]))
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    assert not AccessEvent.objects.filter(recording=recording).exists()  # no byte has left yet
    assert hashlib.sha256(b"".join(response.streaming_content)).hexdigest() == recording.stored_sha256
    event = AccessEvent.objects.get(recording=recording)
    assert event.action == "play" and event.username == "legal" and event.ip == "127.0.0.1"
    assert "bucket" in event.detail


def test_playback_streams_the_local_file_while_it_is_there(
    make_user: Callable[..., Any], filesystem_archive: Path
) -> None:
    recording = recorded_call(filesystem_archive, age_days=0)  # inside its local window: not archived
    client = login(make_user, "Legal")
    response = client.get(reverse("admin:recordings_recording_play", args=[recording.pk]))
    recording.refresh_from_db()
    assert response.status_code == 200 and response["Content-Type"] == "audio/wav"
    body = b"".join(response.streaming_content)
    assert body == (filesystem_archive / f"{recording.filename}-all.wav").read_bytes()
    assert AccessEvent.objects.filter(recording=recording, action="play").count() == 1


def test_vicidial_links_reach_only_cataloged_recordings(
    make_user: Callable[..., Any], filesystem_archive: Path
) -> None:
    recording = recorded_call(filesystem_archive)
    archive_and_clear()
    write_file(filesystem_archive, "MP3/not-in-catalog-all.mp3", b"secret")
    anonymous = Client().get(f"/RECORDINGS/MP3/{recording.filename}-all.mp3")
    assert anonymous.status_code == 302 and "/admin/login/" in anonymous["Location"]
    client = login(make_user, "Legal")
    ok = client.get(f"/RECORDINGS/MP3/{recording.filename}-all.mp3")
    assert ok.status_code == 200 and b"".join(ok.streaming_content)
    assert AccessEvent.objects.filter(recording=recording, action="link").exists()
    for path in (
        "MP3/not-in-catalog-all.mp3",
        "../../../etc/passwd",
        "MP3/..%2F..%2Fetc%2Fpasswd",
        f"MP3/{recording.filename}-all.mp3/../../secret",
    ):
        assert client.get(f"/RECORDINGS/{path}").status_code == 404, path


def test_evidence_export_verifies_with_sha256sum_and_is_audited(
    filesystem_archive: Path, tmp_path: Path, make_user: Callable[..., Any]
) -> None:
    held = [recorded_call(filesystem_archive, phone_number="3125550123") for _ in range(2)]
    fresh = recorded_call(filesystem_archive, phone_number="3125550123", age_days=0)  # local only
    archive_and_clear()
    case = Case.objects.create(name="CID 9", phone_numbers=["3125550123"])
    hold = place_hold(reason="CID 9", actor=Actor.command("tests"), case=case)
    out = tmp_path / "evidence.zip"
    stdout = StringIO()
    call_command("export_evidence", "--hold", str(hold.pk), "--out", str(out), "--json", stdout=stdout)
    report = json.loads(stdout.getvalue())
    assert report["recordings"] == 3 and report["audio_files"] == 3 and report["mismatched"] == 0
    folder = verify_zip(out.read_bytes(), tmp_path / "unzipped")
    manifest = json.loads((folder / "manifest.json").read_text())
    by_id = {row["recording_id"]: row for row in manifest["recordings"]}
    for r in held:
        r.refresh_from_db()
        assert by_id[r.pk]["file_sha256"] == r.stored_sha256 and by_id[r.pk]["matches_catalog"]
        assert by_id[r.pk]["holds"] and by_id[r.pk]["cases"] == ["CID 9"]
    # not hashed yet (inside its local window): exported from the spool, nothing to compare with
    assert by_id[fresh.pk]["source"] == "local disk" and by_id[fresh.pk]["matches_catalog"] is None
    custody = (folder / "custody_log.csv").read_text()
    assert "archived" in custody and "export" in custody
    assert "sha256sum -c SHA256SUMS" in (folder / "README.txt").read_text()
    assert AccessEvent.objects.filter(action="export").count() == 3

    # the same package streamed from the admin, in pieces
    client = login(make_user, "Legal")
    response = client.post(reverse("admin:holds_case_export", args=[case.pk]))
    chunks = list(response.streaming_content)
    assert len(chunks) > 3
    verify_zip(b"".join(chunks), tmp_path / "streamed")


def test_export_reads_recordings_whose_only_copy_is_in_the_cloud(
    archive_s3_settings: str, spool_dir: Path, settings: Any, tmp_path: Path
) -> None:
    settings.VICIREC_WORK_DIR = tmp_path / "work"
    recording = recorded_call(spool_dir, seconds=2)
    archive_and_clear()
    recording.refresh_from_db()
    assert recording.state == Recording.State.CLEARED
    assert not (spool_dir / f"{recording.filename}-all.wav").exists()
    out = tmp_path / "cloud.zip"
    call_command("export_evidence", "--recording", str(recording.pk), "--out", str(out), stdout=StringIO())
    folder = verify_zip(out.read_bytes(), tmp_path / "cloud")
    row = json.loads((folder / "manifest.json").read_text())["recordings"][0]
    assert row["source"] == "bucket" and row["file_sha256"] == recording.stored_sha256


def verify_zip(data: bytes, where: Path) -> Path:
    """Unzip and run `sha256sum -c SHA256SUMS` in the package folder, as counsel would."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.testzip() is None
        zf.extractall(where)
    (folder,) = list(where.iterdir())
    check = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=folder, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    listed = {line.split("  ", 1)[1] for line in (folder / "SHA256SUMS").read_text().splitlines()}
    on_disk = {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()} - {"SHA256SUMS"}
    assert listed == on_disk
    return folder


def test_shortening_retention_shows_its_impact_and_needs_an_approver(make_user: Callable[..., Any]) -> None:
    from vicirec import clock

    campaign = Campaign.objects.create(kind="outbound", campaign_id="COLLECT")
    policy = make_policy(campaign=campaign, keep_local_days=1, retain_days=400, codec="none")
    for age in (100, 200, 300):
        make_recording(campaign=campaign, start_time=clock.now() - __import__("datetime").timedelta(days=age))
    url = reverse("admin:retention_retentionpolicy_change", args=[policy.pk])
    shorter = {
        "campaign": campaign.pk,
        "record_class": "general",
        "retain_days": 150,
        "override_reason": "",
        "keep_local_days": 1,
        "codec": "none",
        "change_reason": "collections only need 150 days",
    }
    ops = login(make_user, "Ops")
    refused = ops.post(url, shorter).content.decode()
    assert "needs a Legal approver" in refused and "2 recording(s)" in refused
    approver = login(make_user, "Legal approver")
    preview = approver.post(url, {**shorter, "_preview": "1", "impact_reviewed": "on"}).content.decode()
    assert "Preview only, nothing saved" in preview and "2 recording(s)" in preview
    first = approver.post(url, shorter).content.decode()
    assert "I have reviewed the impact" in first
    policy.refresh_from_db()
    assert policy.retain_days == 400
    assert approver.post(url, {**shorter, "impact_reviewed": "on"}).status_code == 302
    policy.refresh_from_db()
    latest = policy.history.latest("history_date")
    assert policy.retain_days == 150 and latest.history_change_reason == "collections only need 150 days"
    assert latest.history_user.username == "legal_approver"
    below = {**shorter, "record_class": "debt_collection", "impact_reviewed": "on", "change_reason": "x"}
    assert "Give an override reason" in approver.post(url, below).content.decode()
