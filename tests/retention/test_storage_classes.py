"""Storage classes: a policy refuses a class that costs more than it saves, uploads carry the policy's class,
and retier moves stored objects (verified copy, old version removed, holds and Object Lock respected)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError

from holds.actions import place_hold
from recordings.lib.storage import S3Target
from recordings.models import Campaign, Recording
from recordings.pipeline import tiering
from recordings.pipeline.archive import archive_due
from recordings.pipeline.target import get_target
from retention.models import RetentionPolicy
from tests.factories import make_policy, make_recording, policy_approver, write_file
from tests.s3_fixtures import s3_archive_storage
from tests.s3server import S3Server, make_bucket
from vicirec.actors import Actor

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
MP3 = b"ID3" + bytes(range(256)) * 800  # about 200 KB: above the 128 KB minimum billable size


@pytest.fixture(autouse=True)
def fresh_classes() -> Iterator[None]:
    tiering._forget()
    yield
    tiering._forget()


@pytest.fixture
def sales(db: None) -> Campaign:
    campaign = Campaign.objects.create(kind="outbound", campaign_id="SALES", name="Sales")
    make_policy(campaign=campaign, keep_local_days=3, retain_days=365, codec="none")
    return campaign


@pytest.fixture
def locked_bucket(settings: Any, s3_server: S3Server) -> S3Target:
    """The archive on a SeaweedFS bucket with Object Lock (and so versioning), as a compliance bucket is."""
    bucket = make_bucket(s3_server, object_lock=True)
    settings.STORAGES = {**settings.STORAGES, "archive": s3_archive_storage(s3_server, bucket)}
    target = get_target()
    assert isinstance(target, S3Target)
    return target


def approved() -> dict[str, Any]:
    """What a Legal approver's save carries: these tests shorten policies to reach each class's minimum."""
    return {"approved_by": policy_approver(), "reason": "storage class test"}


def policy(campaign: Campaign, **values: Any) -> RetentionPolicy:
    found = RetentionPolicy.objects.get(campaign=campaign)
    for name, value in values.items():
        setattr(found, name, value)
    return found


# --- the policy refuses what costs more than it saves ----------------------------------------------


def test_a_class_whose_minimum_duration_exceeds_the_days_in_the_bucket_is_refused(sales: Campaign) -> None:
    short = policy(sales, retain_days=12, keep_local_days=3, storage_class="STANDARD_IA")
    with pytest.raises(ValidationError, match="objects stay 9 days but .* bills at least 30"):
        short.save(**approved())
    glacier = policy(sales, retain_days=20, storage_class="GLACIER_IR")
    with pytest.raises(ValidationError, match="objects stay 17 days but .* bills at least 90"):
        glacier.save(**approved())
    policy(sales, retain_days=33, storage_class="STANDARD_IA").save(**approved())  # 30 days in the bucket pay off
    policy(sales, retain_days=365, storage_class="GLACIER_IR").save(**approved())
    assert RetentionPolicy.objects.get(campaign=sales).storage_class == "GLACIER_IR"


def test_small_recordings_make_the_infrequent_access_classes_cost_more(sales: Campaign) -> None:
    """S3's IA classes bill every object as 128 KB: measured on the policy's own stored recordings."""
    for n in range(3):
        make_recording(campaign=sales, state="cleared", stored_size=70_000, object_key=f"k{n}")
    small = policy(sales, retain_days=3650, storage_class="STANDARD_IA")
    with pytest.raises(ValidationError, match="typical recording is 68 KB but AWS S3 Standard-IA bills at least 128"):
        small.save(**approved())


def test_r2_has_no_glacier_class_and_its_ia_class_has_no_minimum_size(
    sales: Campaign, settings: Any, s3_server: S3Server
) -> None:
    storage = s3_archive_storage(s3_server, "bucket", endpoint_url="https://acct.r2.cloudflarestorage.com")
    settings.STORAGES = {**settings.STORAGES, "archive": storage}
    make_recording(campaign=sales, state="cleared", stored_size=70_000, object_key="k")
    with pytest.raises(ValidationError, match="not offered by R2"):
        policy(sales, retain_days=3650, storage_class="GLACIER_IR").save(**approved())
    policy(sales, retain_days=3650, storage_class="STANDARD_IA").save(**approved())  # no minimum size on R2
    tiny = policy(sales, retain_days=365, storage_class="STANDARD_IA")
    with pytest.raises(ValidationError, match="write price outweighs"):  # R2 IA writes cost twice as much
        tiny.save(**approved())


def test_set_policy_sets_the_class_and_explains_a_refusal(sales: Campaign) -> None:
    out = StringIO()
    call_command(
        "set_policy", "SALES", "--keep-local-days", "3", "--retain-days", "400", "--storage-class", "GLACIER_IR",
        "--json", stdout=out,
    )  # fmt: skip
    assert json.loads(out.getvalue())["storage_class"] == "GLACIER_IR"
    with pytest.raises(CommandError, match="bills at least 90"):
        call_command(
            "set_policy", "SALES", "--keep-local-days", "3", "--retain-days", "10",
            "--approved-by", policy_approver().username, "--reason", "shorter for the class test", stdout=StringIO(),
        )  # fmt: skip


# --- uploads carry the policy's class ---------------------------------------------------------------


def archived(spool: Path, campaign: Campaign, *, age_days: float = 10, count: int = 1) -> list[Recording]:
    made = []
    for _ in range(count):
        recording = make_recording(campaign=campaign, start_time=NOW - timedelta(days=age_days))
        write_file(spool, f"MP3/{recording.filename}-all.mp3", MP3)
        made.append(recording)
    report = archive_due(now=NOW, node="", threads=1)
    assert report.archived == count
    return [Recording.objects.get(pk=r.pk) for r in made]


def test_uploads_are_written_in_the_policy_class_and_record_it(
    spool_dir: Path, sales: Campaign, locked_bucket: S3Target
) -> None:
    policy(sales, storage_class="GLACIER_IR").save(**approved())

    [recording] = archived(spool_dir, sales)

    assert recording.storage_class == "GLACIER_IR"
    assert locked_bucket.storage_class_of(recording.object_key, recording.version_id) == "GLACIER_IR"


# --- retier -------------------------------------------------------------------------------------------


def versions(target: S3Target, key: str) -> dict[str, str]:
    listed = target.client.list_object_versions(Bucket=target.bucket, Prefix=key).get("Versions", [])
    return {v["VersionId"]: v.get("StorageClass", "STANDARD") for v in listed if v["Key"] == key}


def test_retier_moves_stored_objects_verified_and_leaves_held_ones_alone(
    spool_dir: Path, sales: Campaign, locked_bucket: S3Target
) -> None:
    free, held = archived(spool_dir, sales, count=2)
    place_hold(reason="subpoena", actor=Actor.command("test"), recording_ids=[held.pk])
    assert locked_bucket.legal_hold_status(held.object_key, held.version_id) is True
    policy(sales, storage_class="STANDARD_IA").save(**approved())

    out = StringIO()
    call_command("retier", "--json", stdout=out)

    report = json.loads(out.getvalue())
    assert (report["due"], report["moved"], report["failed"], report["by_class"]) == (1, 1, 0, {"STANDARD_IA": 1})
    moved = Recording.objects.get(pk=free.pk)
    assert moved.storage_class == "STANDARD_IA" and moved.version_id != free.version_id and moved.claimed_by == ""
    assert versions(locked_bucket, free.object_key) == {moved.version_id: "STANDARD_IA"}  # the old one is gone
    assert locked_bucket.confirm(moved.object_key, sha256_hex=moved.stored_sha256, size=len(MP3)).ok
    event = moved.events.last()
    assert event.actor == "retier" and event.from_state == event.to_state == "archived"
    assert "moved to STANDARD_IA" in event.detail and moved.stored_sha256 in event.detail
    untouched = Recording.objects.get(pk=held.pk)
    assert (untouched.version_id, untouched.storage_class) == (held.version_id, "STANDARD")
    assert versions(locked_bucket, held.object_key) == {held.version_id: "STANDARD"}
    assert locked_bucket.legal_hold_status(held.object_key, held.version_id) is True


def test_retier_keeps_the_old_version_when_a_hold_arrives_during_the_move(
    spool_dir: Path, sales: Campaign, locked_bucket: S3Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    [recording] = archived(spool_dir, sales)
    policy(sales, storage_class="STANDARD_IA").save(**approved())

    class HoldDuringCopy(S3Target):
        def change_class(self, *args: Any, **kwargs: Any) -> Any:
            stored = super().change_class(*args, **kwargs)
            place_hold(reason="litigation", actor=Actor.command("test"), recording_ids=[recording.pk])
            return stored

    monkeypatch.setattr(tiering, "get_target", lambda: HoldDuringCopy(locked_bucket.client, locked_bucket.bucket))
    report = tiering.retier(now=NOW)

    assert (report.moved, report.held) == (0, 1)
    kept = Recording.objects.get(pk=recording.pk)
    assert (kept.version_id, kept.storage_class, kept.claimed_by) == (recording.version_id, "STANDARD", "")
    assert versions(locked_bucket, recording.object_key) == {recording.version_id: "STANDARD"}  # copy removed
    assert locked_bucket.legal_hold_status(recording.object_key, recording.version_id) is True


def test_retier_skips_objects_whose_retention_left_is_shorter_than_the_class_minimum(
    spool_dir: Path, sales: Campaign, locked_bucket: S3Target
) -> None:
    [soon] = archived(spool_dir, sales, age_days=350)  # 15 days left of 365
    [later] = archived(spool_dir, sales, age_days=10)
    policy(sales, storage_class="STANDARD_IA").save(**approved())

    dry = tiering.retier(now=NOW, dry_run=True)
    report = tiering.retier(now=NOW)

    assert (dry.due, dry.moved) == (2, 0)
    assert (report.moved, report.not_worth_it) == (1, 1)
    assert Recording.objects.get(pk=soon.pk).storage_class == "STANDARD"
    assert Recording.objects.get(pk=later.pk).storage_class == "STANDARD_IA"
    assert tiering.retier(now=NOW).due == 1  # still due (its policy says IA), still not worth moving


def test_retier_on_a_folder_archive_records_the_class(
    spool_dir: Path, sales: Campaign, settings: Any, tmp_path: Path
) -> None:
    settings.STORAGES = {
        **settings.STORAGES,
        "archive": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": tmp_path / "a"}},
    }
    [recording] = archived(spool_dir, sales)
    policy(sales, storage_class="STANDARD_IA").save(**approved())

    assert tiering.retier(now=NOW).moved == 1
    assert Recording.objects.get(pk=recording.pk).storage_class == "STANDARD_IA"
    assert tiering.retier(now=NOW).due == 0


def test_a_minimum_duration_alone_is_not_a_refusal() -> None:
    """17 days in S3 Standard-IA are billed as 30 at $0.0125: for a long call still cheaper than 17 at $0.023."""
    from recordings.lib import pricing

    assert pricing.refusal("STANDARD_IA", providers=("s3",), size=30_000_000, days=17) == ""
    assert "bills at least 30" in pricing.refusal("STANDARD_IA", providers=("s3",), size=3_000_000, days=9)
