"""Property-based tests (Hypothesis) of the recording state machine.

A `RuleBasedStateMachine` drives the real stage functions in-process (archive_due, cleanup_local,
enforce_retention) on a folder target, interleaved with new recordings, simulated kills, hold
placements and releases (whole and partial), retention policy changes (shorter ones with a Legal
approver) and a clock that moves on. After every step the invariant checker of the reliability suite
(tests/reliability/invariants.py) must find nothing; at the end, the stages run to completion and the
final state must be exact.

A kill is simulated at a seeded point inside a stage: the n-th database write, or just after the n-th
object stored or deleted, raises `Killed` (a BaseException no stage catches), and from then on every
statement and storage call of that "process" raises it too, the way nothing more happens after SIGKILL.
The claims it held are handed to a dead process id, as a real kill leaves them, and the clock moves past
the deletion lease. Each example runs in a savepoint rolled back at its end, with folders of its own.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import time_machine
from django.db import connections, transaction
from django.test import override_settings
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from holds.actions import place_hold, release_hold, release_part
from holds.models import LegalHold
from recordings.lib.storage import FilesystemTarget
from recordings.models import Campaign, Recording
from recordings.pipeline.archive import archive_due
from recordings.pipeline.cleanup import cleanup_local
from recordings.pipeline.retention import enforce_retention
from retention.models import DeletionCertificate, RetentionPolicy
from tests.factories import policy_approver
from tests.reliability.builders import add_recordings
from tests.reliability.invariants import Baseline, check_invariants
from vicirec.actors import Actor

pytestmark = pytest.mark.django_db
START = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
ACTOR = Actor.command("tests")
EXAMPLES = int(os.environ.get("VICIREC_HYPOTHESIS_EXAMPLES", "12"))
STEPS = int(os.environ.get("VICIREC_HYPOTHESIS_STEPS", "18"))
_campaign_ids = itertools.count(1)


class Killed(BaseException):
    """SIGKILL, simulated: nothing of the stage runs after it."""


def dead_pid() -> int:
    """A process id no process has now."""
    for pid in range(4_000_000, 4_100_000):
        if not Path(f"/proc/{pid}").exists():
            return pid
    raise AssertionError("no free pid")  # pragma: no cover


class KillSwitch:
    """Counts a stage's steps (database writes, objects stored or deleted) and kills it at step ``at``."""

    def __init__(self, at: int | None) -> None:
        self.at, self.steps, self.dead = at, 0, False

    def step(self) -> None:
        if self.dead:
            raise Killed
        self.steps += 1
        if self.at is not None and self.steps >= self.at:
            self.dead = True
            raise Killed

    def sql(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        head = sql.lstrip()[:8].upper()
        if self.dead and not head.startswith("ROLLBACK"):  # the server rolls back what a dead client began
            raise Killed
        if head[:6] in ("INSERT", "UPDATE", "DELETE"):
            self.step()
        return execute(sql, params, many, context)

    @contextlib.contextmanager
    def armed(self) -> Iterator[None]:
        switch = self

        def after(name: str) -> Any:
            original = getattr(FilesystemTarget, name)

            def wrapped(self: FilesystemTarget, *args: Any, **kwargs: Any) -> Any:
                if switch.dead:
                    raise Killed
                result = original(self, *args, **kwargs)
                switch.step()  # killed after the bucket acted, before the catalog knows
                return result

            return mock.patch.object(FilesystemTarget, name, wrapped)

        with after("put"), after("delete"), connections["default"].execute_wrapper(self.sql):
            yield


class RecordingLifecycle(RuleBasedStateMachine):
    """The pipeline's recordings under any interleaving of stages, kills, holds, policies and time."""

    def __init__(self) -> None:
        super().__init__()
        self.root = Path(tempfile.mkdtemp(prefix="vicirec-sm-"))
        self.spool = self.root / "monitorDONE"
        for sub in ("", "MP3"):
            (self.spool / sub).mkdir(parents=True, exist_ok=True)
        self.target = FilesystemTarget(self.root / "archive")
        self._exit = contextlib.ExitStack()
        self._exit.enter_context(
            override_settings(
                VICIREC_SPOOL_DIRS=[self.spool],
                VICIREC_WORK_DIR=self.root / "work",
                STORAGES={
                    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
                    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
                    "archive": {
                        "BACKEND": "django.core.files.storage.FileSystemStorage",
                        "OPTIONS": {"location": self.root / "archive"},
                    },
                },
            )
        )
        self._atomic = transaction.atomic()
        self._atomic.__enter__()
        self.now = START
        self.baseline: dict[int, Baseline] = {}
        self.campaigns: list[Campaign] = []
        self.ever_held_unreleased: set[int] = set()
        self.kills = 0
        self.seed = itertools.count(1)
        for retain in (90, 3000):
            self._new_campaign(retain)

    def teardown(self) -> None:
        try:
            self._finish()
        finally:
            transaction.set_rollback(True)
            self._atomic.__exit__(None, None, None)
            self._exit.close()

    # --- helpers -----------------------------------------------------------------------------------------

    def _new_campaign(self, retain_days: int) -> Campaign:
        name = f"SM{next(_campaign_ids)}"
        c = Campaign.objects.create(kind="outbound", campaign_id=name, name=name)
        RetentionPolicy.objects.create(
            campaign=c,
            keep_local_days=1,
            retain_days=retain_days,
            codec="none",
            override_reason="short retention for the state machine",
            approved_by=policy_approver(),
            reason="test set-up",
        )
        self.campaigns.append(c)
        return c

    def _mine(self) -> Any:
        return Recording.objects.filter(pk__in=list(self.baseline))

    def _stage(self, run: Any, kill_at: int | None) -> None:
        switch = KillSwitch(kill_at)
        with time_machine.travel(self.now, tick=False):
            try:
                with switch.armed():
                    run()
            except Killed:
                self.kills += 1
                self._after_kill()

    def _after_kill(self) -> None:
        """What a real kill leaves: claims of a process that no longer exists; the restart takes minutes."""
        pid = dead_pid()
        for token in set(self._mine().exclude(claimed_by="").values_list("claimed_by", flat=True)):
            stage_host, _, rest = token.rpartition(f":{os.getpid()}:")
            if stage_host:
                Recording.objects.filter(claimed_by=token).update(claimed_by=f"{stage_host}:{pid}:{rest}")
        self.now += timedelta(seconds=400)  # past the deletion gate's lease (DELETION_LEASE_SECONDS)

    def _held(self) -> set[int]:
        return set(self._mine().held().values_list("pk", flat=True))

    # --- rules -------------------------------------------------------------------------------------------

    @rule(count=st.integers(1, 3), age_days=st.sampled_from([3, 40, 120, 400]), which=st.integers(0, 10))
    def new_recordings(self, count: int, age_days: int, which: int) -> None:
        camp = self.campaigns[which % len(self.campaigns)]
        with time_machine.travel(self.now, tick=False):
            add_recordings(
                self.spool,
                camp,
                count,
                now=self.now,
                age_days=age_days,
                seed=next(self.seed),
                wav_share=0.0,
                baseline=self.baseline,
            )

    @rule(kill_at=st.none() | st.integers(1, 12))
    def archive(self, kill_at: int | None) -> None:
        self._stage(lambda: archive_due(now=self.now, node="", threads=1), kill_at)

    @rule(kill_at=st.none() | st.integers(1, 8))
    def cleanup(self, kill_at: int | None) -> None:
        self._stage(lambda: cleanup_local(now=self.now, node=""), kill_at)

    @rule(kill_at=st.none() | st.integers(1, 12))
    def retention(self, kill_at: int | None) -> None:
        self._stage(lambda: enforce_retention(now=self.now, dry_run=False, confirm=True, max_share=1.0), kill_at)

    @rule(days=st.sampled_from([0.01, 1, 2, 30, 100]))
    def time_passes(self, days: float) -> None:
        self.now += timedelta(days=days)

    @precondition(lambda self: bool(self.baseline))
    @rule(data=st.data())
    def hold_some(self, data: st.DataObject) -> None:
        alive = sorted(self._mine().exclude(state="expired").values_list("pk", flat=True))
        if not alive:
            return
        picked = data.draw(st.lists(st.sampled_from(alive), min_size=1, max_size=3, unique=True))
        with time_machine.travel(self.now, tick=False):
            place_hold(reason="complaint under review", actor=ACTOR, recording_ids=picked)
        self.ever_held_unreleased |= set(picked)

    @rule(which=st.integers(0, 10))
    def hold_campaign(self, which: int) -> None:
        camp = self.campaigns[which % len(self.campaigns)]
        with time_machine.travel(self.now, tick=False):
            place_hold(reason=f"litigation about {camp.campaign_id}", actor=ACTOR, campaign=camp)

    @precondition(lambda self: LegalHold.objects.filter(released_at__isnull=True).exists())
    @rule(data=st.data(), whole=st.booleans())
    def release(self, data: st.DataObject, whole: bool) -> None:
        holds = list(LegalHold.objects.filter(released_at__isnull=True).order_by("pk"))
        hold = data.draw(st.sampled_from(holds))
        with time_machine.travel(self.now, tick=False):
            if whole or hold.scope != LegalHold.Scope.RECORDINGS:
                release_hold(hold, reason="matter closed", actor=ACTOR)
            else:
                ids = sorted(hold.recordings.values_list("pk", flat=True))
                if ids:
                    part = data.draw(st.lists(st.sampled_from(ids), min_size=1, max_size=len(ids), unique=True))
                    release_part(hold, recording_ids=part, actor=ACTOR, reason="not part of the matter")
        # what is still held by some live hold stays protected; the rest may go
        self.ever_held_unreleased &= self._held()

    @rule(which=st.integers(0, 10), retain_days=st.sampled_from([30, 90, 400, 3000]))
    def change_policy(self, which: int, retain_days: int) -> None:
        camp = self.campaigns[which % len(self.campaigns)]
        policy = RetentionPolicy.objects.get(campaign=camp)
        policy.retain_days = retain_days
        with time_machine.travel(self.now, tick=False):
            policy.save(approved_by=policy_approver(), reason="Legal approved a new schedule")

    @rule(retain_days=st.sampled_from([30, 400]))
    def new_campaign(self, retain_days: int) -> None:
        if len(self.campaigns) < 4:
            self._new_campaign(retain_days)

    # --- invariants --------------------------------------------------------------------------------------

    @invariant()
    def nothing_lost_nothing_held_deleted(self) -> None:
        if not self.baseline:
            return
        verdict = check_invariants(target=self.target, spool=self.spool, baseline=self.baseline, now=self.now)
        assert verdict, verdict.summary()
        held_and_gone = self._mine().filter(pk__in=self.ever_held_unreleased, state="expired")
        assert not held_and_gone.exists(), list(held_and_gone.values_list("pk", flat=True))

    # --- the end -----------------------------------------------------------------------------------------

    def _finish(self) -> None:
        """Without kills, the stages finish everything, and the end state is exact."""
        self.now += timedelta(seconds=400)
        with time_machine.travel(self.now, tick=False):
            for _ in range(2):
                archive_due(now=self.now, node="", threads=1)
                cleanup_local(now=self.now, node="")
                enforce_retention(now=self.now, dry_run=False, confirm=True, max_share=1.0)
        if not self.baseline:
            return
        verdict = check_invariants(
            target=self.target, spool=self.spool, baseline=self.baseline, now=self.now, in_flight_ok=False
        )
        assert verdict, verdict.summary()
        mine = self._mine()
        deletable = set(mine.expired(self.now).not_held().values_list("pk", flat=True))
        expired = set(mine.filter(state="expired").values_list("pk", flat=True))
        assert deletable <= expired, deletable - expired
        certified = set(
            DeletionCertificate.objects.filter(recording_id__in=list(self.baseline)).values_list(
                "recording_id", flat=True
            )
        )
        assert certified == expired
        assert not mine.exclude(claimed_by="").exists()
        if os.environ.get("VICIREC_HYPOTHESIS_TRACE"):
            print("kills", self.kills, sorted(mine.values_list("state", flat=True)))  # noqa: T201
        assert set(mine.exclude(pk__in=expired).values_list("state", flat=True)) <= {"cleared"}


def test_any_interleaving_of_stages_kills_holds_and_policies_keeps_the_invariants() -> None:
    run_state_machine_as_test(
        RecordingLifecycle,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            derandomize=os.environ.get("VICIREC_HYPOTHESIS_RANDOM", "") == "",
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        ),
    )
