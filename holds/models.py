"""Legal holds and cases: what retention must never touch, who said so, when and why.

A hold covers recordings picked by hand, a case (a legal matter whose criteria also catch recordings
cataloged after the hold was placed), or a whole campaign. ``held_condition()`` is the one place that
answers "is this recording held?"; Recording.objects.held() / .not_held() build on it, and retention
asks it again at the moment of deletion.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from datetime import time as dt_time
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import BooleanField, ExpressionWrapper, Q, QuerySet
from django.utils import timezone

from recordings.lib import phones
from vicirec import clock
from vicirec.lookups import either
from vicirec.records import audit_history


class Case(models.Model):
    """A legal matter (a CFPB CID, a lawsuit, a customer complaint) and the recordings it concerns.

    Recordings belong to a case if they were picked by hand, or if they match its criteria. Each kind of
    criterion that is filled in narrows the match (phone numbers AND date range …); the values inside one
    criterion are alternatives (any of these phone numbers). A case with no criteria matches only its
    hand-picked recordings.
    """

    name = models.CharField(max_length=200, unique=True)
    external_reference = models.CharField(max_length=200, blank=True, help_text="CFPB CID, docket number, ticket …")
    description = models.TextField(blank=True)
    recordings = models.ManyToManyField("recordings.Recording", blank=True, related_name="cases")
    phone_numbers = models.JSONField(default=list, blank=True)
    lead_ids = models.JSONField(default=list, blank=True)
    agents = models.JSONField(default=list, blank=True)
    campaigns = models.ManyToManyField("recordings.Campaign", blank=True, related_name="cases")
    calls_from = models.DateTimeField(null=True, blank=True)
    calls_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=clock.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    history = audit_history(m2m_fields=[recordings, campaigns])

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.external_reference})" if self.external_reference else self.name

    def criteria(self) -> Q | None:
        """The criteria as a filter on recordings, or None when the case has no criteria."""
        parts: list[Q] = []
        if self.phone_numbers:
            parts.append(Q(phone_number__in=phone_values(self.phone_numbers)))
        if self.lead_ids:
            parts.append(Q(lead_id__in=[int(x) for x in self.lead_ids]))
        if self.agents:
            parts.append(Q(agent__in=[str(a) for a in self.agents]))
        campaign_ids = list(self.campaigns.values_list("pk", flat=True)) if self.pk else []
        if campaign_ids:
            parts.append(Q(campaign_id__in=campaign_ids))
        if self.calls_from:
            parts.append(Q(start_time__gte=self.calls_from))
        if self.calls_until:
            parts.append(until_condition(self.calls_until))
        if not parts:
            return None
        condition = parts[0]
        for part in parts[1:]:
            condition &= part
        return condition

    def condition(self) -> Q:
        """Recordings of this case: picked by hand, or matching the criteria."""
        picked = Q(pk__in=self.recordings.through.objects.filter(case_id=self.pk).values("recording_id"))
        criteria = self.criteria()
        return picked | criteria if criteria is not None else picked

    def parts(self) -> list[tuple[QuerySet[Any], Q]]:
        """``condition()`` as its alternatives, each with a query of the ids it covers (see ``covered``)."""
        through = self.recordings.through.objects.filter(case_id=self.pk)
        found: list[tuple[QuerySet[Any], Q]] = [
            (through.values_list("recording_id", flat=True), Q(pk__in=through.values("recording_id")))
        ]
        criteria = self.criteria()
        if criteria is not None:
            found.append((_recordings().filter(criteria).values_list("pk", flat=True), criteria))
        return found

    def covered(self, limit: int | None = None) -> Q:
        """The same recordings as ``condition()``, written for a lookup (see ``covered_condition``)."""
        return covered_condition(self.parts(), limit)


def until_end(value: datetime) -> tuple[datetime, bool]:
    """Where a case's "calls until" ends, and whether that end is excluded. A value at midnight in the
    desk's time zone is a date given without a time: it covers that whole day, up to (not including)
    midnight of the next. Any other time covers calls up to and including that moment."""
    local = timezone.localtime(value)
    if local.timetz().replace(tzinfo=None) == dt_time.min:
        return local + timedelta(days=1), True
    return value, False


def until_condition(value: datetime) -> Q:
    end, excluded = until_end(value)
    return Q(start_time__lt=end) if excluded else Q(start_time__lte=end)


def phone_values(values: list[Any]) -> list[str]:
    """The catalog values a phone criterion matches: each value as stored, plus the catalog form of what
    it writes (``(773) 555-7219`` → ``7735557219``; recordings.lib.phones.repaired). Only ever adds to the
    stored values, so reading a criterion this way never narrows what a held case covers."""
    return phones.repaired([str(v) for v in values], settings.VICIREC_PHONE_REGION)


class LegalHoldQuerySet(models.QuerySet["LegalHold"]):
    def active(self) -> LegalHoldQuerySet:
        return self.filter(released_at__isnull=True)


class LegalHold(models.Model):
    class Scope(models.TextChoices):
        RECORDINGS = "recordings", "Recordings picked by hand"
        CASE = "case", "A case (its recordings and criteria)"
        CAMPAIGN = "campaign", "A whole campaign"

    scope = models.CharField(max_length=10, choices=Scope.choices)
    recordings = models.ManyToManyField("recordings.Recording", blank=True, related_name="legal_holds")
    case = models.ForeignKey(Case, null=True, blank=True, on_delete=models.PROTECT, related_name="holds")
    campaign = models.ForeignKey(
        "recordings.Campaign", null=True, blank=True, on_delete=models.PROTECT, related_name="holds"
    )
    reason = models.TextField()
    placed_at = models.DateTimeField(default=clock.now)
    placed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    placed_by_name = models.CharField(max_length=200, help_text="Who placed it: a user, or the command and OS user.")
    released_at = models.DateTimeField(null=True, blank=True)
    released_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    released_by_name = models.CharField(max_length=200, blank=True)
    release_reason = models.TextField(blank=True)

    history = audit_history(m2m_fields=[recordings])
    objects = LegalHoldQuerySet.as_manager()

    class Meta:
        ordering = ["-placed_at"]
        permissions = [("release_legalhold", "Can release legal holds")]
        indexes = [models.Index(fields=["released_at"], name="hold_active_idx")]

    def __str__(self) -> str:
        target = {
            self.Scope.CASE: f"case {self.case}",
            self.Scope.CAMPAIGN: f"campaign {self.campaign}",
        }.get(self.scope, "recordings picked by hand")
        return f"hold #{self.pk} on {target}{' (released)' if self.released_at else ''}"

    @property
    def is_active(self) -> bool:
        return self.released_at is None

    def clean(self) -> None:
        if not self.reason.strip():
            raise ValidationError({"reason": "A legal hold needs a reason."})
        if self.scope == self.Scope.CASE and self.case_id is None:
            raise ValidationError({"case": "A case hold names its case."})
        if self.scope == self.Scope.CAMPAIGN and self.campaign_id is None:
            raise ValidationError({"campaign": "A campaign hold names its campaign."})

    def condition(self) -> Q:
        if self.scope == self.Scope.CAMPAIGN:
            return Q(campaign_id=self.campaign_id)
        # The hold's own recordings: picked by hand, or (case holds) pinned when the hold was placed.
        own = Q(pk__in=self.recordings.through.objects.filter(legalhold_id=self.pk).values("recording_id"))
        if self.scope == self.Scope.CASE and self.case is not None:
            return self.case.condition() | own
        return own

    def covered(self, limit: int | None = None) -> Q:
        """The same recordings as ``condition()``, written for a lookup (see ``covered_condition``)."""
        if self.scope == self.Scope.CAMPAIGN:
            return self.condition()  # one indexed column, dense: already fast
        own = self.recordings.through.objects.filter(legalhold_id=self.pk)
        parts = [(own.values_list("recording_id", flat=True), Q(pk__in=own.values("recording_id")))]
        if self.scope == self.Scope.CASE and self.case is not None:
            parts = self.case.parts() + parts
        return covered_condition(parts, limit)


COVERED_IDS = 10_000  # a hold's or case's alternatives covering up to this many recordings become a list of ids


def _recordings() -> Any:
    from django.apps import apps

    return apps.get_model("recordings", "Recording").objects


def covered_condition(parts: list[tuple[QuerySet[Any], Q]], limit: int | None = None) -> Q:
    """A hold's or case's recordings for the desk's lookups (its filter, page, CSV and evidence export): the
    same set as its ``condition()``, read now. ``condition()`` ORs subqueries and criteria, which MariaDB
    answers by scanning the whole catalog; here each alternative (picked by hand, pinned, the criteria) is
    one indexed query of its ids, at most ``limit`` (COVERED_IDS) each, and the result filters on
    ``pk__in`` those ids. An alternative that covers more stays a condition, ORed on (a large set is
    dense, so it is found quickly). Not for deciding what may be deleted: that is ``held_condition()``."""
    ids, large = covered_ids(parts, limit)
    result = Q(pk__in=sorted(ids))
    for condition in large:
        result |= condition
    return result


def covered_ids(parts: list[tuple[QuerySet[Any], Q]], limit: int | None = None) -> tuple[set[int], list[Q]]:
    """The ids of the alternatives that cover at most ``limit`` (COVERED_IDS) recordings each, and the
    conditions of those that cover more (see ``covered_condition``)."""
    limit = COVERED_IDS if limit is None else limit
    ids: set[int] = set()
    large: list[Q] = []
    for query, condition in parts:
        found = set(query.order_by()[: limit + 1])
        if len(found) > limit:
            large.append(condition)
        else:
            ids |= found
    return ids, large


def held_condition() -> Q:
    """True for recordings under at least one active legal hold: the one definition every stage uses.

    Loads the active holds (a handful of rows) and returns one filter, so "held" for any set of
    recordings is a single query. Hand-picked recordings of all active holds and cases are one subquery.
    """
    holds = list(LegalHold.objects.active().select_related("case"))
    if not holds:
        return Q(pk__in=[])
    # Recordings picked by hand, and those a case hold pinned when it was placed: both are the hold's own.
    hand_picked_holds = [h.pk for h in holds if h.scope != LegalHold.Scope.CAMPAIGN]
    campaigns = [h.campaign_id for h in holds if h.scope == LegalHold.Scope.CAMPAIGN]
    cases = {h.case_id: h.case for h in holds if h.scope == LegalHold.Scope.CASE and h.case is not None}
    condition = Q(pk__in=[])
    if hand_picked_holds:
        through = LegalHold.recordings.through
        condition |= Q(pk__in=through.objects.filter(legalhold_id__in=hand_picked_holds).values("recording_id"))
    if campaigns:
        condition |= Q(campaign_id__in=campaigns)
    if cases:
        through = Case.recordings.through
        condition |= Q(pk__in=through.objects.filter(case_id__in=list(cases)).values("recording_id"))
        for case in cases.values():
            criteria = case.criteria()
            if criteria is not None:
                condition |= criteria
    return condition


def held_covered(limit: int | None = None) -> Q:
    """The recordings under an active hold, the same set as ``held_condition()`` read now, written for a
    lookup (the desk's "held" filter; see ``covered_condition``): the recordings picked by hand or pinned by
    each active hold and case, and what each held case's criteria match, each read as ids when they are at
    most ``limit``, with the held campaigns (``vicirec.lookups.either``: led by the campaign column).
    ``held_condition()`` ORs subqueries that MariaDB checks row by row while it walks the catalog. Not for
    deciding what may be deleted: that is ``held_condition()``, asked at the moment of deletion."""
    holds = list(LegalHold.objects.active().select_related("case"))
    own = [h.pk for h in holds if h.scope != LegalHold.Scope.CAMPAIGN]
    campaigns = sorted({h.campaign_id for h in holds if h.scope == LegalHold.Scope.CAMPAIGN})
    cases = {h.case_id: h.case for h in holds if h.scope == LegalHold.Scope.CASE and h.case is not None}
    parts: list[tuple[QuerySet[Any], Q]] = []
    if own:
        through = LegalHold.recordings.through.objects.filter(legalhold_id__in=own)
        parts.append((through.values_list("recording_id", flat=True), Q(pk__in=through.values("recording_id"))))
    for case in cases.values():
        parts += case.parts()
    ids, large = covered_ids(parts, limit)
    condition = either(_recordings().all(), "campaign_id", campaigns, ids)
    for part in large:
        condition |= part
    return condition


def holds_covering(recording: QuerySet[Any]) -> list[LegalHold]:
    """The active holds that cover one recording, given as a queryset of it (for its detail page and its
    expiry explanation)."""
    return [
        hold
        for hold in LegalHold.objects.active().select_related("case", "campaign")
        if recording.filter(hold.condition()).exists()
    ]


HOLDS_PER_QUERY = 50


def holds_by_recording(recordings: QuerySet[Any]) -> dict[int, list[LegalHold]]:
    """Every hold, active or released, that covers (or covered until its release) each of ``recordings``: a
    bounded set such as one recording, a page or an export batch. A released hold's coverage is read as it
    was left: its case (or campaign) and the recordings pinned when it was placed. Each hold is one boolean
    column of one SELECT (HOLDS_PER_QUERY holds a query), oldest hold first."""
    holds = list(LegalHold.objects.select_related("case", "campaign").order_by("placed_at", "pk"))
    found: dict[int, list[LegalHold]] = {}
    for start in range(0, len(holds), HOLDS_PER_QUERY):
        chunk = holds[start : start + HOLDS_PER_QUERY]
        columns = {f"h{h.pk}": ExpressionWrapper(h.condition(), output_field=BooleanField()) for h in chunk}
        for row in recordings.order_by().values("pk", **columns):
            found.setdefault(row["pk"], []).extend(h for h in chunk if row[f"h{h.pk}"])
    return {pk: holds for pk, holds in found.items() if holds}


class PartialRelease(models.Model):
    """Part of an active hold given up: recordings removed from a held case or hold, or a held case's
    criteria narrowed. Recorded like a release (who, when, why) by holds.actions, which checks the release
    permission; the hold itself stays active for the rest."""

    hold = models.ForeignKey(LegalHold, on_delete=models.PROTECT, related_name="partial_releases")
    released_at = models.DateTimeField(default=clock.now)
    released_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    released_by_name = models.CharField(max_length=200)
    reason = models.TextField()
    change = models.TextField(help_text="What was given up: the criteria narrowed, the recordings removed.")
    recording_ids = models.JSONField(default=list, help_text="Recordings (with a copy) this hold no longer covers.")

    class Meta:
        ordering = ["-released_at"]

    def __str__(self) -> str:
        return f"part of {self.hold} released {self.released_at:%Y-%m-%d} by {self.released_by_name}"


DELETION_LEASE_SECONDS = 300  # longest a retention batch may take between its last hold check and its end
GATE_POLL_SECONDS = 0.05


class DeletionGate(models.Model):
    """One row that orders deletions and new holds. A retention batch, in one short transaction that locks
    this row, re-checks holds and takes a lease (``in_flight`` + ``lease_until``) before its deletes; placing a
    hold locks the row and waits while a lease is live (at most DELETION_LEASE_SECONDS), then commits the hold
    while holding the lock. So a hold is either committed before a batch's last check (and wins) or only
    after that batch's deletions ended. No transaction is held across storage I/O."""

    in_flight = models.PositiveIntegerField(default=0)
    lease_until = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"deletion gate ({self.in_flight} batch(es) deleting, lease until {self.lease_until})"

    @classmethod
    def _locked(cls) -> DeletionGate:
        gate, _ = cls.objects.select_for_update().get_or_create(pk=1)
        return gate

    def busy(self) -> bool:
        return self.in_flight > 0 and self.lease_until is not None and self.lease_until > clock.now()

    @classmethod
    def enter(cls) -> None:
        """Take a deletion lease; call inside the transaction that re-checks holds, before it."""
        gate = cls._locked()
        gate.in_flight = gate.in_flight + 1 if gate.busy() else 1  # an expired lease was left by a dead run
        gate.lease_until = clock.now() + timedelta(seconds=DELETION_LEASE_SECONDS)
        gate.save(update_fields=["in_flight", "lease_until"])

    @classmethod
    def leave(cls) -> None:
        """Give the lease back once the batch's deletions are done (or failed)."""
        with transaction.atomic():
            gate = cls._locked()
            gate.in_flight = max(gate.in_flight - 1, 0)
            if gate.in_flight == 0:
                gate.lease_until = None
            gate.save(update_fields=["in_flight", "lease_until"])

    @classmethod
    @contextmanager
    def closed(cls) -> Iterator[None]:
        """A transaction holding the gate with no deletion lease live (or the longest lease waited out):
        what is committed inside it is seen by every later hold check of a deletion."""
        deadline = time.monotonic() + DELETION_LEASE_SECONDS
        while True:
            with transaction.atomic():
                if not cls._locked().busy() or time.monotonic() >= deadline:
                    yield
                    return
            time.sleep(GATE_POLL_SECONDS)
