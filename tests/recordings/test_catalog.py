from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path

import pytest
import time_machine
from django.core.management import call_command
from django.db import connections
from django.test.utils import CaptureQueriesContext

from recordings.models import Campaign, OpenCall, Recording, RecordingEvent
from recordings.pipeline.catalog import sync_recordings
from tests.factories import VicidialData, write_file

pytestmark = pytest.mark.django_db(databases=["default", "vicidial"])

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def sync(**kwargs):
    return sync_recordings(now=NOW, node="", **kwargs)


def test_outbound_and_inbound_calls_get_their_campaign_lead_phone_and_file(vicidial: VicidialData, spool_dir: Path):
    vicidial.campaign("SALES", "Sales")
    vicidial.ingroup("SUPPORT", "Support line")
    out = vicidial.outbound_call(campaign="SALES", phone="3125551212", user="1001")
    inb = vicidial.inbound_call(ingroup="SUPPORT", phone="7735550000", user="1002")
    write_file(spool_dir, f"{out['filename']}-all.wav")
    write_file(spool_dir, f"MP3/{inb['filename']}-all.mp3")

    report = sync()

    assert report.recordings_added == 2 and report.located == 2 and report.missing == 0
    outbound = Recording.objects.get(recording_id=out["recording_id"])
    assert outbound.campaign == Campaign.objects.get(kind="outbound", campaign_id="SALES")
    assert outbound.direction == "outbound"
    assert (outbound.phone_number, outbound.agent, outbound.lead_id) == ("3125551212", "1001", out["lead_id"])
    assert outbound.local_path == f"{out['filename']}-all.wav"
    assert outbound.start_time == datetime.fromtimestamp(out["start_epoch"], tz=UTC)
    assert outbound.length_in_sec == 65 and outbound.server_ip == "10.0.0.11"
    inbound = Recording.objects.get(recording_id=inb["recording_id"])
    assert inbound.campaign == Campaign.objects.get(kind="inbound", campaign_id="SUPPORT")
    assert (inbound.direction, inbound.phone_number, inbound.agent) == ("inbound", "7735550000", "1002")
    assert inbound.local_path == f"MP3/{inb['filename']}-all.mp3"
    assert RecordingEvent.objects.filter(to_state="captured").count() == 2


def test_second_run_adds_and_changes_nothing(vicidial: VicidialData, spool_dir: Path):
    vicidial.campaign()
    rows = [vicidial.outbound_call() for _ in range(5)]
    for row in rows[:3]:
        write_file(spool_dir, f"{row['filename']}-all.wav")
    first = sync(batch_size=2)
    snapshot = list(Recording.objects.order_by("pk").values())

    second = sync(batch_size=2)

    assert first.recordings_added == 5 and first.batches == 3
    assert second.recordings_added == 0 and second.batches == 0
    assert list(Recording.objects.order_by("pk").values()) == snapshot
    assert RecordingEvent.objects.count() == 5


def test_missing_empty_and_hostile_files_are_recorded_never_opened(
    vicidial: VicidialData, spool_dir: Path, tmp_path: Path
):
    outside = tmp_path / "secret"
    outside.write_text("not a recording")
    (spool_dir / "evil-all.wav").symlink_to(outside)
    empty = vicidial.recording_log(filename="empty")
    write_file(spool_dir, "empty-all.wav", b"")
    rows = {
        "missing": vicidial.recording_log(filename="nowhere"),
        "empty": empty,
        "dotdot": vicidial.recording_log(filename="../../etc/passwd"),
        "absolute": vicidial.recording_log(filename="/etc/passwd"),
        "nul": vicidial.recording_log(filename="a\x00b"),
        "newline": vicidial.recording_log(filename="a\nb"),
        "symlink": vicidial.recording_log(filename="evil"),
        "null": vicidial.recording_log(filename=None),
    }
    good = vicidial.recording_log(filename="20261101-fine_ünïcode")
    write_file(spool_dir, f"{good['filename']}-all.wav")

    report = sync()

    state = {name: Recording.objects.get(recording_id=row["recording_id"]) for name, row in rows.items()}
    assert state["missing"].state == "missing" and "no file" in state["missing"].error
    assert state["missing"].next_attempt_at > NOW
    assert state["empty"].state == "missing" and "empty (0 bytes)" in state["empty"].error
    assert state["dotdot"].state == "rejected" and "path separator" in state["dotdot"].error
    assert state["absolute"].state == "rejected"
    assert state["nul"].state == "rejected" and "NUL" in state["nul"].error
    assert state["newline"].state == "rejected" and "control characters" in state["newline"].error
    assert state["symlink"].state == "rejected" and "outside the spool" in state["symlink"].error
    assert state["null"].state == "rejected" and "empty" in state["null"].error
    assert Recording.objects.get(recording_id=good["recording_id"]).state == "captured"
    assert (report.rejected, report.missing, report.located) == (6, 2, 1)


def test_recording_of_another_server_is_cataloged_but_not_looked_for(vicidial: VicidialData, spool_dir: Path):
    row = vicidial.recording_log(server_ip="10.0.0.12")
    report = sync_recordings(now=NOW, node="10.0.0.11")
    recording = Recording.objects.get(recording_id=row["recording_id"])
    assert report.other_server == 1 and report.missing == 0
    assert recording.state == "captured" and recording.local_path == "" and recording.server_ip == "10.0.0.12"


def test_call_still_being_recorded_waits_but_holds_back_nothing_after_it(vicidial: VicidialData, spool_dir: Path):
    done = vicidial.recording_log()
    open_call = vicidial.recording_log(start=NOW - timedelta(minutes=5), end_time=None, end_epoch=None)
    after = vicidial.recording_log()

    first = sync()
    assert first.recordings_added == 2 and first.held_open == 1
    cataloged = set(Recording.objects.values_list("recording_id", flat=True))
    assert cataloged == {done["recording_id"], after["recording_id"]}
    assert list(OpenCall.objects.values_list("recording_id", flat=True)) == [open_call["recording_id"]]
    assert sync().recordings_added == 0  # still open: remembered, not cataloged

    with time_machine.travel(NOW + timedelta(hours=7)):
        second = sync_recordings(now=NOW + timedelta(hours=7), node="")
    assert second.recordings_added == 1 and second.open_finished == 1 and second.held_open == 0
    assert Recording.objects.filter(recording_id=open_call["recording_id"]).exists()
    assert not OpenCall.objects.exists()


def test_a_call_that_ends_is_cataloged_by_the_next_run(vicidial: VicidialData, spool_dir: Path):
    start = NOW - timedelta(minutes=5)
    open_call = vicidial.recording_log(start=start, end_time=None, end_epoch=None)
    write_file(spool_dir, f"{open_call['filename']}-all.wav")
    assert sync().held_open == 1
    vicidial.writer.connection.cursor().execute(
        "UPDATE recording_log SET end_time=%s, end_epoch=%s WHERE recording_id=%s",
        [start + timedelta(seconds=60), int(start.timestamp()) + 60, open_call["recording_id"]],
    )

    report = sync()

    assert (report.recordings_added, report.open_finished, report.held_open) == (1, 1, 0)
    recording = Recording.objects.get(recording_id=open_call["recording_id"])
    assert recording.state == "captured" and recording.local_path == f"{open_call['filename']}-all.wav"


def test_open_calls_cost_a_fixed_number_of_queries(vicidial: VicidialData, spool_dir: Path):
    def queries_for(open_calls: int) -> int:
        for _ in range(open_calls):
            vicidial.recording_log(start=NOW - timedelta(minutes=5), end_time=None, end_epoch=None)
        sync()  # remember them
        for _ in range(3):
            vicidial.recording_log()
        with (
            CaptureQueriesContext(connections["default"]) as ours,
            CaptureQueriesContext(connections["vicidial"]) as theirs,
        ):
            report = sync()
        assert report.recordings_added == 3 and report.held_open == OpenCall.objects.count()
        return len(ours) + len(theirs)

    vicidial.campaign()
    assert queries_for(1) == queries_for(50)


def test_unmatched_and_malformed_call_links_still_catalog(vicidial: VicidialData, spool_dir: Path):
    caller_id = vicidial.recording_log(vicidial_id="M1231425010000012345")
    no_row = vicidial.recording_log(vicidial_id="1700000000.99")
    wrong_lead = vicidial.outbound_call()
    vicidial.recording_log(vicidial_id=wrong_lead["vicidial_id"], lead_id=99999)
    no_time = vicidial.recording_log(
        start_time=None, start_epoch=None, end_time=None, end_epoch=None, start=NOW - timedelta(days=1)
    )

    report = sync()

    assert report.recordings_added == 5
    assert Recording.objects.get(recording_id=caller_id["recording_id"]).direction == "unknown"
    assert Recording.objects.get(recording_id=no_row["recording_id"]).campaign is None
    entry = Recording.objects.get(recording_id=no_time["recording_id"])
    assert entry.start_time == NOW and "call time unknown" in entry.error


def test_unknown_campaign_of_a_call_is_kept_as_inactive(vicidial: VicidialData, spool_dir: Path):
    vicidial.outbound_call(campaign="GONE")
    sync()
    campaign = Campaign.objects.get(campaign_id="GONE")
    assert campaign.active is False and campaign.kind == "outbound"


def test_campaigns_are_synced_with_history(vicidial: VicidialData, spool_dir: Path):
    vicidial.campaign("SALES", "Sales")
    vicidial.ingroup("SUPPORT", "Support")
    report = sync()
    assert report.campaigns_added == 2
    assert Campaign.history.filter(campaign_id="SALES", history_type="+").exists()
    assert sync().campaigns_added == 0


def test_sync_sends_only_selects_to_vicidial(vicidial: VicidialData, spool_dir: Path):
    vicidial.campaign()
    vicidial.ingroup()
    for _ in range(3):
        vicidial.outbound_call()
        vicidial.inbound_call()
    with CaptureQueriesContext(connections["vicidial"]) as queries:
        sync()
    statements = [q["sql"].lstrip().split(None, 1)[0].upper() for q in queries.captured_queries]
    assert statements and set(statements) <= {"SELECT", "SAVEPOINT", "RELEASE"}
    assert "SELECT" in statements


def test_queries_per_batch_do_not_grow_with_batch_size(vicidial: VicidialData, spool_dir: Path):
    vicidial.campaign()
    vicidial.ingroup()
    for _ in range(4):
        vicidial.outbound_call()
        vicidial.inbound_call()
    sync(limit=0)  # campaigns first, so both measured runs do only batch work
    with (
        CaptureQueriesContext(connections["default"]) as small_default,
        CaptureQueriesContext(connections["vicidial"]) as small,
    ):
        sync(limit=2)
    with (
        CaptureQueriesContext(connections["default"]) as big_default,
        CaptureQueriesContext(connections["vicidial"]) as big,
    ):
        sync(limit=6)
    assert len(big) == len(small)
    assert len(big_default) == len(small_default)


def test_command_prints_json_counts(vicidial: VicidialData, spool_dir: Path):
    vicidial.outbound_call()
    out = StringIO()
    call_command("sync_recordings", "--json", stdout=out)
    data = json.loads(out.getvalue())
    assert data["recordings_added"] == 1 and data["missing"] == 1


def test_rows_vicidial_moved_to_its_archive_tables_are_cataloged_with_their_calls(
    vicidial: VicidialData, spool_dir: Path
):
    vicidial.campaign("SALES")
    vicidial.ingroup("SUPPORT")
    out = vicidial.outbound_call(campaign="SALES", phone="3125551212")
    inb = vicidial.inbound_call(ingroup="SUPPORT", phone="7735550000")
    live = vicidial.outbound_call(campaign="SALES", phone="3125550001")
    vicidial.archive_logs(out, inb)  # a backfill after ADMIN_archive_log_tables.pl --recording-log-days=1

    report = sync()

    assert (report.recordings_added, report.from_archive_table, report.not_read) == (3, 2, [])
    moved_out = Recording.objects.get(recording_id=out["recording_id"])
    assert (moved_out.campaign.campaign_id, moved_out.phone_number, moved_out.direction) == (
        "SALES",
        "3125551212",
        "outbound",
    )
    moved_in = Recording.objects.get(recording_id=inb["recording_id"])
    assert (moved_in.campaign.campaign_id, moved_in.direction) == ("SUPPORT", "inbound")
    event = RecordingEvent.objects.get(recording_id=out["recording_id"])
    assert "recording_log_archive" in event.detail
    assert "cataloged from recording_log: " in RecordingEvent.objects.get(recording_id=live["recording_id"]).detail
    assert sync().recordings_added == 0


def test_a_row_in_both_tables_is_taken_from_the_live_one(vicidial: VicidialData, spool_dir: Path):
    row = vicidial.recording_log(location="http://10.0.0.11/RECORDINGS/old.wav")
    vicidial.archive_logs(row, keep_live=True)
    with vicidial.writer.connection.cursor() as cursor:  # VICIdial updated the live row after the copy
        cursor.execute(
            "UPDATE recording_log SET location = %s WHERE recording_id = %s",
            ["http://10.0.0.11/RECORDINGS/MP3/new.mp3", row["recording_id"]],
        )

    report = sync()

    assert (report.recordings_added, report.from_archive_table) == (1, 0)
    cataloged = Recording.objects.get(recording_id=row["recording_id"])
    assert cataloged.vicidial_location == "http://10.0.0.11/RECORDINGS/MP3/new.mp3"


def test_a_vicidial_without_archive_tables_is_reported_and_its_live_rows_cataloged(
    vicidial: VicidialData, spool_dir: Path
):
    from recordings.vicidial import RecordingLogArchive, VicidialLogArchive

    rows = [vicidial.outbound_call() for _ in range(3)]
    with vicidial.writer.connection.schema_editor() as editor:  # VICIdial before 2.12
        editor.delete_model(RecordingLogArchive)
        editor.delete_model(VicidialLogArchive)
    try:
        report = sync()
        out = StringIO()
        call_command("sync_recordings", stdout=out)
    finally:
        with vicidial.writer.connection.schema_editor() as editor:
            editor.create_model(RecordingLogArchive)
            editor.create_model(VicidialLogArchive)

    assert report.recordings_added == 3 and report.from_archive_table == 0
    assert [problem.split(" ", 1)[0] for problem in report.not_read] == [
        "recording_log_archive",
        "vicidial_log_archive",
    ]
    assert "rows VICIdial has moved there are not cataloged" in report.not_read[0]
    assert all(Recording.objects.get(pk=r["recording_id"]).campaign is not None for r in rows)
    assert "not read: recording_log_archive not read" in out.getvalue()
