"""Legal holds: one definition of "held", case criteria that catch later calls, and the bucket's own hold."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from holds.actions import place_hold, release_hold
from holds.models import Case, LegalHold
from recordings.models import Campaign, Recording
from recordings.pipeline.archive import archive_due
from recordings.pipeline.target import get_target
from recordings.pipeline.verify import verify_archive
from tests.factories import make_policy, make_recording, write_file
from tests.s3server import make_bucket
from vicirec.actors import Actor

pytestmark = pytest.mark.django_db
ACTOR = Actor.command("tests")
NOW = datetime(2026, 11, 20, tzinfo=UTC)


def test_held_is_one_query_over_all_kinds_of_hold() -> None:
    sales = Campaign.objects.create(kind="outbound", campaign_id="SALES")
    other = Campaign.objects.create(kind="inbound", campaign_id="SUPPORT")
    by_hand = make_recording(campaign=other)
    by_campaign = make_recording(campaign=sales)
    by_phone = make_recording(campaign=other, phone_number="7735550101")
    by_agent_and_date = make_recording(campaign=other, agent="1007", start_time=datetime(2025, 3, 1, tzinfo=UTC))
    agent_outside_dates = make_recording(campaign=other, agent="1007", start_time=datetime(2024, 3, 1, tzinfo=UTC))
    free = make_recording(campaign=None)
    place_hold(reason="r", actor=ACTOR, recording_ids=[by_hand.pk])
    place_hold(reason="r", actor=ACTOR, campaign=sales)
    place_hold(reason="r", actor=ACTOR, case=Case.objects.create(name="A", phone_numbers=["7735550101"]))
    place_hold(
        reason="r",
        actor=ACTOR,
        case=Case.objects.create(
            name="B",
            agents=["1007"],
            calls_from=datetime(2025, 1, 1, tzinfo=UTC),
            calls_until=datetime(2025, 12, 31, tzinfo=UTC),
        ),
    )

    with CaptureQueriesContext(connection) as queries:
        held = set(Recording.objects.held().values_list("pk", flat=True))
    not_held = set(Recording.objects.not_held().values_list("pk", flat=True))

    assert held == {by_hand.pk, by_campaign.pk, by_phone.pk, by_agent_and_date.pk}
    assert not_held == {agent_outside_dates.pk, free.pk}  # a recording without a campaign is not held by accident
    table = connection.ops.quote_name(Recording._meta.db_table)  # "…" on SQLite and PostgreSQL, `…` on MariaDB
    recording_queries = [q for q in queries.captured_queries if table in q["sql"].split("WHERE")[0]]
    assert len(recording_queries) == 1


def test_a_case_catches_recordings_cataloged_after_the_hold_and_release_frees_them() -> None:
    case = Case.objects.create(name="Smith v. Acme", external_reference="1:26-cv-0042", lead_ids=[77])
    hold = place_hold(reason="litigation", actor=ACTOR, case=case)
    later = make_recording(lead_id=77)
    assert Recording.objects.held().filter(pk=later.pk).exists()
    assert [h.pk for h in later.expiry().holds] == [hold.pk]
    release_hold(hold, reason="settled", actor=ACTOR)
    assert not Recording.objects.held().filter(pk=later.pk).exists()


def test_legal_hold_command_places_lists_and_releases() -> None:
    recording = make_recording()
    out = StringIO()
    call_command("legal_hold", "place", "--recording", str(recording.pk), "--reason", "complaint 9", stdout=out)
    hold_id = int(out.getvalue().strip())
    assert LegalHold.objects.get(pk=hold_id).recordings.get() == recording
    listing = StringIO()
    call_command("legal_hold", "list", stdout=listing)
    assert f"#{hold_id}" in listing.getvalue() and "complaint 9" in listing.getvalue()
    call_command("legal_hold", "release", str(hold_id), "--reason", "resolved", stdout=StringIO())
    hold = LegalHold.objects.get(pk=hold_id)
    assert (
        hold.released_at is not None and hold.release_reason == "resolved" and "via legal_hold" in hold.released_by_name
    )
    m2m_history = hold.history.earliest("history_date")
    assert "complaint 9" in m2m_history.history_change_reason


def test_case_hold_by_phone_from_the_command_line() -> None:
    recording = make_recording(phone_number="3125557777")
    out = StringIO()
    call_command(
        "legal_hold",
        "place",
        "--case",
        "CID-7",
        "--reference",
        "2026-CFPB-7",
        "--phone",
        "3125557777",
        "--reason",
        "CFPB CID",
        stdout=out,
    )
    assert Recording.objects.held().filter(pk=recording.pk).exists()
    assert Case.objects.get(name="CID-7").history.exists()


def test_holds_set_the_buckets_object_lock_and_verify_reports_drift(s3_server, settings, spool_dir: Path) -> None:
    from tests.s3_fixtures import s3_archive_storage

    bucket = make_bucket(s3_server, object_lock=True)
    settings.STORAGES = {**settings.STORAGES, "archive": s3_archive_storage(s3_server, bucket)}
    campaign = Campaign.objects.create(kind="outbound", campaign_id="LOCKED")
    make_policy(campaign=campaign, keep_local_days=1, retain_days=90, codec="none")
    held, free = (make_recording(campaign=campaign, start_time=NOW - timedelta(days=5)) for _ in range(2))
    for r in (held, free):
        write_file(spool_dir, f"MP3/{r.filename}-all.mp3", b"mp3 audio " * 100)
    archive_due(now=NOW, node="", threads=1)
    hold = place_hold(reason="complaint", actor=ACTOR, recording_ids=[held.pk])
    held.refresh_from_db()
    free.refresh_from_db()
    target = get_target()
    assert target.legal_hold_status(held.object_key, held.version_id) is True
    assert target.legal_hold_status(free.object_key, free.version_id) is False
    refused = target.delete([(held.object_key, held.version_id)])
    assert not refused.ok  # the bucket itself refuses to delete a held version

    target.set_legal_hold(held.object_key, held.version_id, False)  # someone lifts it behind vicirec's back
    report = verify_archive(now=NOW, sample=10)
    assert report.hold_drift == 1 and not report.clean

    target.set_legal_hold(held.object_key, held.version_id, True)
    release_hold(hold, reason="closed", actor=ACTOR)
    assert target.legal_hold_status(held.object_key, held.version_id) is False


def test_a_campaign_hold_locks_and_unlocks_every_object_batch_by_batch(
    s3_server, settings, spool_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Placing and releasing read the hold's recordings a batch at a time (LOCK_BATCH) in key order: each
    stored object is locked, and on release unlocked unless another active hold still covers it."""
    from holds import actions
    from tests.s3_fixtures import s3_archive_storage

    monkeypatch.setattr(actions, "LOCK_BATCH", 2)
    bucket = make_bucket(s3_server, object_lock=True)
    settings.STORAGES = {**settings.STORAGES, "archive": s3_archive_storage(s3_server, bucket)}
    campaign = Campaign.objects.create(kind="outbound", campaign_id="LOCKED")
    make_policy(campaign=campaign, keep_local_days=1, retain_days=90, codec="none")
    calls = [make_recording(campaign=campaign, start_time=NOW - timedelta(days=5)) for _ in range(5)]
    for r in calls:
        write_file(spool_dir, f"MP3/{r.filename}-all.mp3", b"mp3 audio " * 100)
    archive_due(now=NOW, node="", threads=1)
    target = get_target()

    def locked() -> list[bool]:
        return [target.legal_hold_status(r.object_key, r.version_id) for r in Recording.objects.order_by("pk")]

    other = place_hold(reason="complaint", actor=ACTOR, recording_ids=[calls[3].pk])
    assert locked() == [False, False, False, True, False]
    hold = place_hold(reason="lawsuit", actor=ACTOR, campaign=campaign)
    assert locked() == [True] * 5
    release_hold(hold, reason="settled", actor=ACTOR)
    assert locked() == [False, False, False, True, False]  # the complaint's hold still stands on the 4th
    release_hold(other, reason="closed", actor=ACTOR)
    assert locked() == [False] * 5


def test_releasing_a_hold_reads_one_batch_where_the_target_has_no_legal_holds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A folder target (or R2) has no per-object legal hold: a release asks once, whatever the hold covers."""
    from holds import actions

    monkeypatch.setattr(actions, "LOCK_BATCH", 3, raising=False)
    queries = []
    for size in (4, 40):
        campaign = Campaign.objects.create(kind="outbound", campaign_id=f"C{size}")
        for n in range(size):
            make_recording(campaign=campaign, state="cleared", object_key=f"c/{size}/{n}.mp3", stored_sha256="0" * 64)
        hold = place_hold(reason="r", actor=ACTOR, campaign=campaign)
        with CaptureQueriesContext(connection) as captured:
            release_hold(hold, reason="done", actor=ACTOR)
        queries.append(len(captured.captured_queries))
        assert not Recording.objects.filter(campaign=campaign).held().exists()
        sqls = [q["sql"] for q in captured.captured_queries]
        reads = [sql for sql in sqls if re.search(r"FROM .recordings_recording. WHERE .*campaign_id", sql)]
        assert reads and all("LIMIT 3" in sql for sql in reads), reads  # never all of the campaign at once
    assert queries[0] == queries[1]


@pytest.mark.parametrize("limit", [10_000, 1])
def test_covered_is_the_same_set_as_condition_whatever_the_size(limit: int) -> None:
    """The desk's lookups (by-hold filter, hold and case pages, CSV, evidence export) read a case hold's
    recordings as lists of ids, one indexed query per alternative; a larger alternative stays a condition."""
    picked = make_recording(phone_number="3125550001")
    pinned = make_recording(phone_number="7735550101", state=Recording.State.ARCHIVED)
    make_recording(phone_number="3125550002")  # covered by nothing
    case = Case.objects.create(name="C", phone_numbers=["7735550101"])
    case.recordings.add(picked)
    hold = place_hold(reason="r", actor=ACTOR, case=case)
    assert set(hold.recordings.values_list("pk", flat=True)) == {picked.pk, pinned.pk}
    Case.objects.filter(pk=case.pk).update(phone_numbers=["(773) 555-0199"])  # narrowed: only the pin keeps it
    by_phone = [make_recording(phone_number="7735550199") for _ in range(3)]  # cataloged after the hold
    case.refresh_from_db()
    hold.refresh_from_db()

    for owner, expected in ((hold, {picked.pk, pinned.pk, *(r.pk for r in by_phone)}), (case, None)):
        condition = set(Recording.objects.filter(owner.condition()).values_list("pk", flat=True))
        with CaptureQueriesContext(connection) as queries:
            covered = set(Recording.objects.filter(owner.covered(limit)).values_list("pk", flat=True))
        assert covered == condition
        assert expected is None or covered == expected
        if limit > 1:  # all small: the final query filters on ids alone
            assert " OR " not in queries.captured_queries[-1]["sql"]


def test_a_hold_stands_when_the_bucket_refuses_its_object_lock(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The bucket failing to set its own legal hold (a fault injected at our storage boundary) must not
    turn a committed hold into an error: the hold stands, retention honours it, and the problem is said."""
    from holds import actions
    from recordings.lib.storage import StorageError
    from vicirec.actors import Actor

    recording = make_recording(state="cleared", object_key="c/k.mp3", stored_sha256="0" * 64)

    class RefusingBucket:
        def set_legal_hold(self, key: str, version_id: str, on: bool) -> bool:
            raise StorageError("SlowDown: reduce your request rate", permanent=False)

    monkeypatch.setattr(actions, "get_target", RefusingBucket)
    hold = actions.place_hold(reason="complaint", actor=Actor.command("test"), recording_ids=[recording.pk])

    assert "SlowDown" in hold.object_lock_problem
    assert Recording.objects.filter(pk=recording.pk).held().exists()
    assert "refused its Object Lock legal hold" in caplog.text
