"""Disposition review: a reviewed record class's recordings are deleted only once a Legal approver approved them,
and only if they are still expired and not held at the moment of deletion."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core import checks
from django.core.exceptions import PermissionDenied, ValidationError

from holds.actions import place_hold, release_hold
from recordings.models import Campaign, LedgerEntry, Recording
from recordings.pipeline import disposition
from recordings.pipeline import retention as enforce
from recordings.pipeline.archive import archive_due
from recordings.pipeline.custody_check import verify_custody
from recordings.pipeline.retention import enforce_retention
from retention.models import DeletionCertificate, DispositionBatch, DispositionDecision, DispositionItem
from tests.factories import make_policy, make_recording, policy_approver, write_file
from vicirec.actors import Actor

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
ACTOR = Actor.command("tests")


@pytest.fixture
def archive(settings: Any, tmp_path: Path, spool_dir: Path) -> Path:
    settings.STORAGES = {
        **settings.STORAGES,
        "archive": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": tmp_path / "archive"},
        },
    }
    settings.VICIREC_WORK_DIR = tmp_path / "work"
    settings.VICIREC_REVIEW_CLASSES = ["debt_collection"]
    return spool_dir


def campaign(campaign_id: str, retain_days: int, record_class: str = "general") -> Campaign:
    c = Campaign.objects.create(kind="outbound", campaign_id=campaign_id, name=campaign_id)
    make_policy(campaign=c, keep_local_days=1, retain_days=retain_days, record_class=record_class, codec="none")
    return c


def recording(spool: Path, camp: Campaign, age_days: int) -> Recording:
    r = make_recording(start_time=NOW - timedelta(days=age_days), campaign=camp)
    write_file(spool, f"MP3/{r.filename}-all.mp3", f"audio of {r.recording_id}".encode() * 50)
    return r


def archive_everything() -> None:
    for days_ago in range(3000, -1, -60):
        archive_due(now=NOW - timedelta(days=days_ago), node="", threads=1)


def run(**kw: Any) -> enforce.RetentionReport:
    return enforce_retention(now=NOW, dry_run=False, confirm=True, **kw)


def state(r: Recording) -> str:
    r.refresh_from_db()
    return r.state


def item(r: Recording) -> DispositionItem:
    return DispositionItem.objects.filter(recording=r).latest("pk")


def approver(name: str = "approver") -> Any:
    """A user with the Legal approver's permission (the one retention.approval names)."""
    permission = policy_approver().user_permissions.get()
    user, _ = get_user_model().objects.get_or_create(username=name)
    user.user_permissions.add(permission)
    return get_user_model().objects.get(pk=user.pk)


@pytest.fixture
def reviewed(archive: Path) -> dict[str, Recording]:
    """Five expired debt-collection recordings (a reviewed class), one expired general, one young debt."""
    debt = campaign("DEBT", 3 * 366, "debt_collection")
    general = campaign("GENERAL", 90)
    r = {f"debt{n}": recording(archive, debt, 3 * 366 + 10 + n) for n in range(5)}
    r["general_old"] = recording(archive, general, 200)
    r["debt_young"] = recording(archive, debt, 400)
    archive_everything()
    return r


def test_a_reviewed_class_is_not_deleted_without_review(reviewed: dict[str, Recording]) -> None:
    dry = enforce_retention(now=NOW, dry_run=True)
    assert reviewed["general_old"].pk in dry.would_delete
    assert not {reviewed[f"debt{n}"].pk for n in range(5)} & set(dry.would_delete)
    assert not DispositionBatch.objects.exists()  # a dry run writes nothing

    report = run()

    assert report.deleted == 1 and state(reviewed["general_old"]) == "expired"
    assert all(state(reviewed[f"debt{n}"]) != "expired" for n in range(5))
    assert (report.review_added, report.awaiting_review) == (5, 5)
    batch = DispositionBatch.objects.get()
    assert (batch.record_class, batch.number, batch.items.count()) == ("debt_collection", 1, 5)
    first = item(reviewed["debt0"])
    assert first.bytes == reviewed["debt0"].stored_size or first.bytes > 0
    assert "days old" in first.reason and "1098 days" in first.reason and "Debt-collection" in first.reason
    assert DispositionItem.objects.filter(recording=reviewed["debt_young"]).count() == 0

    again = run()  # nothing decided: nothing deleted, nothing added twice
    assert (again.deleted, again.review_added, again.awaiting_review) == (0, 0, 5)
    assert DispositionItem.objects.count() == 5
    assert LedgerEntry.objects.filter(kind="disposition_item").count() == 5
    assert LedgerEntry.objects.filter(kind="disposition_batch").count() == 1


def test_only_approved_items_are_deleted_and_certificates_name_the_batch_and_approver(
    reviewed: dict[str, Recording],
) -> None:
    run()
    legal = approver("ann")
    approved = [item(reviewed[f"debt{n}"]) for n in (0, 1, 2)]
    excluded = [item(reviewed[f"debt{n}"]) for n in (3,)]
    disposition.decide(approved, approver=legal, decision="approve", reason="past Reg F, no dispute", now=NOW)
    disposition.decide(excluded, approver=legal, decision="exclude", reason="customer complaint open", now=NOW)

    report = run()

    assert report.deleted == 3 and report.awaiting_review == 1  # debt4 waits
    assert [state(reviewed[f"debt{n}"]) for n in range(5)] == ["expired"] * 3 + ["archived"] * 2
    certificate = DeletionCertificate.objects.get(recording=reviewed["debt1"])
    batch = DispositionBatch.objects.get()
    assert certificate.policy["review"] == {
        "batch": batch.pk,
        "batch_name": str(batch),
        "item": approved[1].pk,
        "approved_by": "ann",
        "approved_at": NOW.isoformat(),
        "reason": "past Reg F, no dispute",
    }
    assert "approved in disposition batch debt_collection #1 by ann" in (reviewed["debt1"].events.latest("pk").detail)
    # The excluded recording stays, run after run, and is not proposed again.
    disposition.decide([item(reviewed["debt4"])], approver=legal, decision="exclude", reason="keep", now=NOW)
    later = run()
    assert later.deleted == 0 and later.review_added == 0 and later.awaiting_review == 0
    assert state(reviewed["debt3"]) == state(reviewed["debt4"]) == "archived"
    # Every item decided: the batch is closed, the next due recording opens batch #2.
    newly_due = enforce_retention(now=NOW + timedelta(days=720), dry_run=False, confirm=True)
    assert newly_due.review_added == 1 and newly_due.deleted == 0
    assert item(reviewed["debt_young"]).batch.number == 2
    assert verify_custody(now=NOW, record=False).ok


def test_a_hold_placed_after_approval_wins(reviewed: dict[str, Recording]) -> None:
    run()
    legal = approver()
    target = reviewed["debt0"]
    disposition.decide([item(target)], approver=legal, decision="approve", reason="ok", now=NOW)
    hold = place_hold(reason="subpoena", actor=ACTOR, recording_ids=[target.pk])

    report = run()

    assert report.deleted == 0 and state(target) == "archived"
    lapse = DispositionDecision.objects.get(item__recording=target, step=DispositionDecision.LAPSE)
    assert lapse.decision == "lapsed" and "hold" in lapse.reason
    release_hold(hold, reason="settled", actor=ACTOR)
    after = run()  # the approval made before the hold does not carry over: back to review
    assert after.deleted == 0 and after.review_added == 1 and state(target) == "archived"
    assert DispositionItem.objects.filter(recording=target).count() == 2


def test_a_hold_placed_between_selection_and_deletion_wins_over_an_approval(
    reviewed: dict[str, Recording], monkeypatch: pytest.MonkeyPatch
) -> None:
    run()
    legal = approver()
    chosen = [item(reviewed[f"debt{n}"]) for n in (0, 1)]
    disposition.decide(chosen, approver=legal, decision="approve", reason="ok", now=NOW)
    real_claim = enforce.claim

    def claim_then_a_lawyer_calls(*args: Any, **kwargs: Any) -> list[Recording]:
        batch = real_claim(*args, **kwargs)
        if batch:
            place_hold(reason="mid-run", actor=ACTOR, recording_ids=[reviewed["debt1"].pk])
        return batch

    monkeypatch.setattr(enforce, "claim", claim_then_a_lawyer_calls)
    report = run()

    assert report.deleted == 1 and report.held_at_deletion == 1
    assert state(reviewed["debt0"]) == "expired" and state(reviewed["debt1"]) == "archived"
    assert not DeletionCertificate.objects.filter(recording=reviewed["debt1"]).exists()
    assert DispositionDecision.objects.filter(item=chosen[1], decision="lapsed").exists()


def test_an_approval_of_a_recording_no_longer_expired_lapses(reviewed: dict[str, Recording], settings: Any) -> None:
    run()
    target = reviewed["debt0"]
    disposition.decide([item(target)], approver=approver(), decision="approve", reason="ok", now=NOW)
    # The gate itself: the policy was lengthened between selection and deletion.
    Recording.objects.filter(pk=target.pk).update(start_time=NOW - timedelta(days=10))
    target.refresh_from_db()
    keep, review, given_back = disposition.at_deletion([target], [], token="t", now=NOW, actor="tests")
    assert (keep, review, given_back) == ([], {}, 1)
    assert DispositionDecision.objects.get(item__recording=target, step=2).decision == "lapsed"


def test_only_a_legal_approver_decides_with_a_reason_and_once(reviewed: dict[str, Recording]) -> None:
    run()
    first = item(reviewed["debt0"])
    legal = get_user_model().objects.create_user("legal-only")
    with pytest.raises(PermissionDenied):
        disposition.decide([first], approver=legal, decision="approve", reason="ok", now=NOW)
    with pytest.raises(ValidationError):
        disposition.decide([first], approver=approver(), decision="approve", reason="  ", now=NOW)
    with pytest.raises(ValidationError):
        disposition.decide([first], approver=approver(), decision="lapsed", reason="x", now=NOW)
    assert not DispositionDecision.objects.exists()
    assert run().deleted == 0 and state(reviewed["debt0"]) == "archived"

    made = disposition.decide([first], approver=approver(), decision="exclude", reason="keep it", now=NOW)
    again = disposition.decide([first], approver=approver(), decision="approve", reason="changed mind", now=NOW)
    assert len(made) == 1 and again == []
    decision = DispositionDecision.objects.get()
    assert decision.decision == "exclude"
    decision.reason = "edited"
    with pytest.raises(ValidationError):
        decision.save()
    with pytest.raises(ValidationError):
        DispositionDecision.objects.all().delete()
    with pytest.raises(ValidationError):
        first.delete()
    assert run().deleted == 0 and state(reviewed["debt0"]) == "archived"


def test_no_class_reviewed_by_default_changes_nothing(reviewed: dict[str, Recording], settings: Any) -> None:
    settings.VICIREC_REVIEW_CLASSES = []
    report = run()
    assert report.deleted == 6 and report.review_added == report.awaiting_review == 0
    assert not DispositionBatch.objects.exists()


def test_an_unknown_review_class_is_a_configuration_error(settings: Any) -> None:
    settings.VICIREC_REVIEW_CLASSES = ["debt_colection"]
    found = [m for m in checks.run_checks() if m.id == "vicirec.E006"]
    assert found and "debt_colection" in found[0].msg


def test_a_reviewed_default_policy_covers_recordings_without_a_campaign_policy(archive: Path) -> None:
    from retention.models import RetentionPolicy

    default = RetentionPolicy.objects.default()
    default.record_class, default.retain_days, default.keep_local_days = "debt_collection", 1100, 1
    default.save(approved_by=policy_approver(), reason="test set-up")
    own = campaign("OWN", 90)  # its own general policy: ordinary retention
    plain = Campaign.objects.create(kind="outbound", campaign_id="PLAIN", name="PLAIN")
    no_campaign = recording(archive, None, 1200)  # type: ignore[arg-type]
    under_default = recording(archive, plain, 1200)
    ordinary = recording(archive, own, 200)
    archive_everything()

    report = run()

    assert report.deleted == 1 and state(ordinary) == "expired"
    assert report.review_added == 2 and state(no_campaign) != "expired" and state(under_default) != "expired"
