"""Per-campaign retention policies, and the certificates that prove each deletion."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import Q

from recordings.lib import pricing
from retention import approval, classes
from vicirec import clock
from vicirec.records import PermanentRecord, audit_history


class Codec(models.TextChoices):
    MP3 = "mp3", "MP3 (plays everywhere)"
    OPUS = "opus", "Opus (smallest)"
    FLAC = "flac", "FLAC (lossless)"
    NONE = "none", "None (upload the capture as it is)"


class StorageClass(models.TextChoices):
    """The class new objects are written with, sent as the S3 ``StorageClass`` header (R2 reads it too)."""

    STANDARD = pricing.STANDARD, "Standard (R2 and S3)"
    STANDARD_IA = pricing.STANDARD_IA, "Infrequent access (R2 Infrequent Access, S3 Standard-IA; 30-day minimum)"
    GLACIER_IR = pricing.GLACIER_IR, "Glacier Instant Retrieval (S3 only; 90-day minimum)"


# A typical call when a policy has no stored recordings to measure yet: three minutes, at each codec's bytes
# per second (MP3 24 kbit/s, Opus 16 kbit/s, FLAC about 60 % of 8 kHz 16-bit PCM, PCM as captured).
TYPICAL_CALL_SECONDS = 180
CODEC_BYTES_PER_SECOND = {"mp3": 3000, "opus": 2000, "flac": 9600, "none": 16000}


def archive_providers() -> tuple[str, ...]:
    """The providers a storage class is judged on: the configured bucket's (R2 when its endpoint is
    Cloudflare's, S3 otherwise), or both when archiving to a folder (the class must pay off on either)."""
    archive = settings.STORAGES.get("archive", {})
    if "S3Storage" not in archive.get("BACKEND", ""):
        return pricing.PROVIDERS
    endpoint = str(archive.get("OPTIONS", {}).get("endpoint_url") or "")
    return ("r2",) if "r2.cloudflarestorage.com" in endpoint else ("s3",)


class RetentionPolicyQuerySet(models.QuerySet["RetentionPolicy"]):
    # Bulk writes skip save() and the history: they refuse any change that shortens retention
    # (retention.approval); shorten through save()/delete() of each policy, with an approver.
    def create(self, *, approved_by: Any = None, reason: str = "", **kwargs: Any) -> RetentionPolicy:
        policy = self.model(**kwargs)
        policy.save(force_insert=True, using=self.db, approved_by=approved_by, reason=reason)
        return policy

    def update(self, **kwargs: Any) -> int:
        approval.guard_bulk(self, kwargs)
        return super().update(**kwargs)

    def delete(self) -> tuple[int, dict[str, int]]:
        approval.guard_bulk(self, None)
        return super().delete()

    def bulk_create(self, objs: Any, *args: Any, **kwargs: Any) -> list[RetentionPolicy]:
        objs = list(objs)
        changes = approval.diff(self.model, [], objs)
        if changes:
            raise approval.refusal(changes)
        return super().bulk_create(objs, *args, **kwargs)

    def default(self) -> RetentionPolicy:
        """The policy for recordings of campaigns without one of their own (created on first use)."""
        policy = self.filter(campaign=None).first()
        if policy is None:
            policy, _ = self.get_or_create(
                scope="default",
                defaults={
                    "keep_local_days": settings.VICIREC_DEFAULT_KEEP_LOCAL_DAYS,
                    "retain_days": settings.VICIREC_DEFAULT_RETAIN_DAYS,
                    "codec": settings.VICIREC_DEFAULT_CODEC,
                },
            )
        return policy

    def for_campaign_ids(self) -> tuple[RetentionPolicy, dict[int, RetentionPolicy]]:
        """The default policy and every campaign's own, in two queries."""
        return self.default(), {p.campaign_id: p for p in self.exclude(campaign=None)}

    def age_condition(self, now: datetime, days_field: str, *, prefix: str = "") -> Q:
        """One Q that is true for recordings older than their campaign's policy ``days_field`` allows.

        Built from the (few hundred at most) policies, so a stage asks for "due" or "expired" recordings
        in one indexed query over (campaign, start_time) instead of looping over campaigns.
        """
        default, explicit = self.for_campaign_ids()
        by_days: dict[int, list[int]] = {}
        for campaign_id, policy in explicit.items():
            by_days.setdefault(getattr(policy, days_field), []).append(campaign_id)
        condition = Q()
        for days, campaign_ids in by_days.items():
            condition |= Q(
                **{f"{prefix}campaign_id__in": campaign_ids, f"{prefix}start_time__lt": now - timedelta(days=days)}
            )
        others = Q(**{f"{prefix}start_time__lt": now - timedelta(days=getattr(default, days_field))}) & (
            Q(**{f"{prefix}campaign__isnull": True}) | ~Q(**{f"{prefix}campaign_id__in": list(explicit)})
        )
        return condition | others


class RetentionPolicy(models.Model):
    campaign = models.OneToOneField(
        "recordings.Campaign",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="policy",
        help_text="Empty for the default policy, which covers every campaign without its own.",
    )
    keep_local_days = models.PositiveIntegerField(help_text="Days a recording stays on local disk before upload.")
    retain_days = models.PositiveIntegerField(help_text="Days a recording is kept in total, from the call date.")
    record_class = models.CharField(max_length=30, choices=classes.CHOICES, default="general")
    override_reason = models.TextField(
        blank=True,
        help_text="Required to keep recordings for less than the record class's legal minimum; kept in the history.",
    )
    codec = models.CharField(max_length=4, choices=Codec.choices, default=Codec.MP3)
    storage_class = models.CharField(
        max_length=11,
        choices=StorageClass.choices,
        default=StorageClass.STANDARD,
        help_text="The class new uploads are written with; the retier command moves objects already stored.",
    )
    # "default" or "campaign:<pk>": a unique key every database enforces (MariaDB has no partial
    # indexes, and NULL campaigns would not collide), so there is exactly one default policy.
    scope = models.CharField(max_length=30, unique=True, editable=False)

    history = audit_history()
    objects = RetentionPolicyQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "retention policies"

    def __str__(self) -> str:
        return f"policy for {self.campaign or 'all other campaigns'}"

    def save(self, *args: Any, approved_by: Any = None, reason: str = "", **kwargs: Any) -> None:
        """Save; a change that shortens the retention of any recording needs ``approved_by`` (a Legal
        approver) and a reason, both kept in the history (retention.approval)."""
        self.full_clean(exclude=["scope", "campaign"], validate_unique=False)
        self.scope = "default" if self.campaign_id is None else f"campaign:{self.campaign_id}"
        with transaction.atomic(using=kwargs.get("using")):
            approval.guard(self, approved_by=approved_by, reason=reason or getattr(self, "_change_reason", ""))
            super().save(*args, **kwargs)
        approval.forget(self)  # an approval and its reason cover this save only

    def delete(self, *args: Any, approved_by: Any = None, reason: str = "", **kwargs: Any) -> Any:
        """Delete; the campaign falls back to the default policy, so a shorter default needs an approver."""
        with transaction.atomic(using=kwargs.get("using")):
            approval.guard(
                self, approved_by=approved_by, reason=reason or getattr(self, "_change_reason", ""), deleting=True
            )
            deleted = super().delete(*args, **kwargs)
        approval.forget(self)
        return deleted

    @property
    def klass(self) -> classes.RecordClass:
        return classes.get(self.record_class)

    @property
    def below_floor(self) -> bool:
        return self.retain_days < self.klass.floor_days

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if self.below_floor and not self.override_reason.strip():
            errors["retain_days"] = (
                f"{self.retain_days} days is below the {self.klass.floor_years}-year minimum "
                f"({self.klass.floor_days} days) for {self.klass.label.lower()} ({self.klass.source}). "
                "Give an override reason to save it anyway."
            )
        if self.keep_local_days > self.retain_days:
            errors["keep_local_days"] = "Recordings cannot stay on local disk longer than they are retained."
        elif refused := self.storage_class_refusal():
            errors["storage_class"] = refused
        if errors:
            raise ValidationError(errors)

    @property
    def bucket_days(self) -> int:
        """How long each recording stays in the bucket: from its upload, after the local window, to expiry."""
        return self.retain_days - self.keep_local_days

    def typical_object_bytes(self) -> int:
        """The average stored size of this policy's recordings in the bucket, or a typical call's size in
        its codec when none is stored yet."""
        from django.apps import apps
        from django.db.models import Avg

        recording = apps.get_model("recordings", "Recording")
        covered = recording.objects.filter(state__in=recording.STORED_STATES, stored_size__isnull=False)
        if self.campaign_id is not None:
            covered = covered.filter(campaign_id=self.campaign_id)
        else:
            own = RetentionPolicy.objects.exclude(campaign=None).values("campaign_id")
            covered = covered.exclude(campaign_id__in=own)
        average = covered.aggregate(size=Avg("stored_size"))["size"]
        return int(average or TYPICAL_CALL_SECONDS * CODEC_BYTES_PER_SECOND.get(self.codec, 16000))

    def storage_class_refusal(self) -> str:
        """Why this policy's storage class would cost more than it saves (minimum storage duration against
        the days in the bucket, minimum billable size against a typical recording), or ""."""
        if self.storage_class == StorageClass.STANDARD:
            return ""
        return pricing.refusal(
            self.storage_class,
            providers=archive_providers(),
            size=self.typical_object_bytes(),
            days=self.bucket_days,
            prices=prices(),
        )


def prices() -> Any:
    """``prices(name)``: the ``VICIREC_PRICE_*`` settings, else the list prices (recordings.lib.pricing)."""
    overrides = {name: getattr(settings, name) for name in pricing.PRICE_DEFAULTS if hasattr(settings, name)}
    return pricing.price_lookup({**overrides, **getattr(settings, "VICIREC_PRICES", {})})


class DeletionCertificate(PermanentRecord):
    """Proof of one defensible deletion. Written once, in the same transaction as the deletion's record,
    and never changed or deleted (save() refuses updates, delete() refuses, the admin is read-only)."""

    REDACTABLE = ("call", "object_key")  # an erasure scrubs the caller from it (vicirec.records)

    recording = models.OneToOneField("recordings.Recording", on_delete=models.PROTECT, related_name="certificate")
    deleted_at = models.DateTimeField(db_index=True)
    run = models.CharField(max_length=100, help_text="The enforce_retention run that deleted it.")
    call = models.JSONField(help_text="Call metadata as cataloged: time, campaign, phone, agent, lead, server, file.")
    object_key = models.CharField(max_length=1024, blank=True)
    version_id = models.CharField(max_length=1024, blank=True)
    original_sha256 = models.CharField(max_length=64, blank=True)
    stored_sha256 = models.CharField(max_length=64, blank=True)
    stored_size = models.PositiveBigIntegerField(null=True)
    cloud_deleted = models.BooleanField()
    local_deleted = models.BooleanField()
    policy = models.JSONField(help_text="The policy applied: id, scope, retain days, record class, floor, source.")
    hold_check = models.JSONField(help_text="The legal-hold check made at the moment of deletion, and its result.")

    class Meta:
        ordering = ["-deleted_at"]

    def __str__(self) -> str:
        return f"deletion certificate for recording {self.recording_id} ({self.deleted_at:%Y-%m-%d})"


class PolicyProposal(models.Model):
    """A policy change proposed by someone who may not make it (Ops), waiting for a Legal approver.

    Approval applies it to the policy through save(), so the policy's history names the approver and the
    proposal; a proposal is never edited after it is made, only approved or rejected, with a reason.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for an approver"
        APPROVED = "approved", "Approved and applied"
        REJECTED = "rejected", "Rejected"

    campaign = models.ForeignKey(
        "recordings.Campaign",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="policy_proposals",
        help_text="Empty to change the default policy.",
    )
    keep_local_days = models.PositiveIntegerField()
    retain_days = models.PositiveIntegerField()
    record_class = models.CharField(max_length=30, choices=classes.CHOICES, default="general")
    codec = models.CharField(max_length=4, choices=Codec.choices, default=Codec.MP3)
    override_reason = models.TextField(blank=True, help_text="Needed if retention goes below the legal minimum.")
    reason = models.TextField(help_text="Why this change is proposed.")
    impact = models.JSONField(default=dict, blank=True, help_text="What it would make deletable, when proposed.")
    proposed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    proposed_at = models.DateTimeField()
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.TextField(blank=True)

    history = audit_history()

    class Meta:
        ordering = ["-proposed_at"]

    def __str__(self) -> str:
        return f"proposal #{self.pk}: {self.retain_days} days for {self.campaign or 'the default policy'}"

    def target_policy(self) -> RetentionPolicy:
        if self.campaign_id is None:
            return RetentionPolicy.objects.default()
        return RetentionPolicy.objects.filter(campaign_id=self.campaign_id).first() or RetentionPolicy(
            campaign_id=self.campaign_id
        )

    def _decide(self, user: Any, reason: str, status: str) -> None:
        from django.core.exceptions import PermissionDenied

        if not user.has_perm("retention.approve_policy_override"):
            raise PermissionDenied("Deciding on a policy proposal needs a Legal approver.")
        if self.status != self.Status.PENDING:
            raise ValidationError(f"{self} was already {self.get_status_display().lower()}.")
        if not reason.strip():
            raise ValidationError("A decision needs a reason.")
        self.status, self.decided_by, self.decided_at, self.decision_reason = status, user, clock.now(), reason
        self._history_user = user  # type: ignore[attr-defined]
        self._change_reason = f"{status}: {reason}"[:100]  # type: ignore[attr-defined]
        self.save()

    def approve(self, *, user: Any, reason: str) -> RetentionPolicy:
        """Apply the proposal to its policy (refused below the legal floor without an override reason)."""
        policy = self.target_policy()
        for name in ("keep_local_days", "retain_days", "record_class", "codec", "override_reason"):
            setattr(policy, name, getattr(self, name))
        policy._history_user = user  # type: ignore[attr-defined]
        policy._change_reason = f"proposal #{self.pk} approved: {reason}"[:100]  # type: ignore[attr-defined]
        with transaction.atomic():
            self._decide(user, reason, self.Status.APPROVED)
            policy.save(approved_by=user)  # a shortening is checked and recorded in the domain
        return policy

    def reject(self, *, user: Any, reason: str) -> None:
        self._decide(user, reason, self.Status.REJECTED)


# --- erasure (GDPR Art. 17 / CCPA): requests, their recordings, and the certificates ------------------------

GDPR_HOLD_EXEMPTION = "GDPR Art. 17(3)(e)"


class ErasureRequest(models.Model):
    """One request to erase recordings: rows VICIdial queued in recording_log_deletion_queue (read by one
    erase_recordings run), or a data subject's request opened at the desk by phone number or lead.

    The subject's phone number or lead id is kept only until the request is decided (approved or rejected);
    then it is blanked, so the request itself keeps no personal data. Carried out by
    recordings.pipeline.erasure; no model history (it would keep the subject's number).
    """

    class Source(models.TextChoices):
        VICIDIAL = "vicidial", "VICIdial's GDPR purge (recording_log_deletion_queue)"
        DESK = "desk", "A data subject's request at the desk"

    class Status(models.TextChoices):
        AWAITING_APPROVAL = "awaiting", "Waiting for a Legal approver"
        APPROVED = "approved", "Approved: being carried out"
        REJECTED = "rejected", "Rejected"

    source = models.CharField(max_length=8, choices=Source.choices)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.APPROVED)
    legal_basis = models.CharField(max_length=200, default="GDPR Art. 17(1)")
    reason = models.TextField(blank=True, help_text="The request as received (no personal data).")
    subject_phone = models.CharField(max_length=18, blank=True, help_text="Blanked once the request is decided.")
    subject_lead_id = models.PositiveBigIntegerField(null=True, blank=True, help_text="Blanked once decided.")
    requested_at = models.DateTimeField(default=clock.now)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    requested_by_name = models.CharField(max_length=200, help_text="Who asked: VICIdial's queue, or a vicirec user.")
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_by_name = models.CharField(max_length=200, blank=True)
    decision_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-requested_at"]
        permissions = [("open_erasurerequest", "Can open erasure requests")]

    def __str__(self) -> str:
        return f"erasure request #{self.pk} ({self.get_source_display()})"


class ErasureItem(models.Model):
    """One recording of an erasure request and where it stands. Refused items (under a legal hold) are
    carried out by the first run after the last covering hold is released."""

    class Status(models.TextChoices):
        PROPOSED = "proposed", "In a request waiting for approval"
        PENDING = "pending", "To erase"
        REFUSED = "refused", "Refused: under legal hold"
        ERASED = "erased", "Erased"
        NOT_CATALOGED = "unknown", "Not in vicirec's catalog (nothing to erase)"
        REJECTED = "rejected", "Request rejected"

    request = models.ForeignKey(ErasureRequest, on_delete=models.PROTECT, related_name="items")
    recording_id = models.PositiveBigIntegerField(db_index=True, help_text="VICIdial's recording_id.")
    queued_at = models.DateTimeField(null=True, blank=True, help_text="date_queued of VICIdial's queue row.")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    holds = models.JSONField(default=list, blank=True, help_text="Ids of the active holds that refused it.")
    refusal = models.CharField(max_length=300, blank=True)
    refused_at = models.DateTimeField(null=True, blank=True)
    erased_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    updated_at = models.DateTimeField(default=clock.now)

    class Meta:
        ordering = ["recording_id"]
        indexes = [models.Index(fields=["status", "updated_at"], name="erasure_status_idx")]

    def __str__(self) -> str:
        return f"recording {self.recording_id}: {self.refusal or self.get_status_display()}"


class ErasureCertificate(PermanentRecord):
    """Proof of one erasure: what was deleted (hashes, sizes, versions by count), when, on whose request and
    on what legal basis, the hold check at the moment of erasure, and every permanent record redacted.
    It names no caller: the key only as its SHA-256. Written in the transaction that erases the row."""

    recording = models.OneToOneField(
        "recordings.Recording", on_delete=models.PROTECT, related_name="erasure_certificate"
    )
    request = models.ForeignKey(ErasureRequest, on_delete=models.PROTECT, related_name="certificates")
    erased_at = models.DateTimeField(db_index=True)
    run = models.CharField(max_length=100)
    requested_by = models.CharField(max_length=200)
    legal_basis = models.CharField(max_length=200)
    call_time = models.DateTimeField(null=True)
    length_in_sec = models.PositiveIntegerField(null=True)
    object_key_sha256 = models.CharField(max_length=64, blank=True)
    original_sha256 = models.CharField(max_length=64, blank=True)
    original_size = models.PositiveBigIntegerField(null=True)
    stored_sha256 = models.CharField(max_length=64, blank=True)
    stored_size = models.PositiveBigIntegerField(null=True)
    cloud_versions_deleted = models.PositiveIntegerField(default=0)
    local_deleted = models.BooleanField(default=False)
    state_before = models.CharField(max_length=10)
    hold_check = models.JSONField(help_text="The legal-hold check made at the moment of erasure, and its result.")
    redactions = models.JSONField(default=list, help_text="Permanent records redacted: table, rows, fields.")

    class Meta:
        ordering = ["-erased_at"]

    def __str__(self) -> str:
        return f"erasure certificate for recording {self.recording_id} ({self.erased_at:%Y-%m-%d})"


# --- disposition review: record classes whose deletions wait for a Legal approver's sign-off -----------------


class DispositionBatch(PermanentRecord):
    """What retention would delete of one reviewed record class (``VICIREC_REVIEW_CLASSES``), put to a Legal
    approver. Open while any of its items waits for a decision; retention adds newly due recordings to the
    open batch of their class and opens the next one when every item is decided. Permanent, ledgered."""

    record_class = models.CharField(max_length=30, choices=classes.CHOICES)
    number = models.PositiveIntegerField(help_text="The class's batches, counted from 1.")
    opened_at = models.DateTimeField(db_index=True)
    run = models.CharField(max_length=100, help_text="The enforce_retention run that opened it.")

    class Meta:
        ordering = ["-opened_at"]
        constraints = [
            models.UniqueConstraint(fields=["record_class", "number"], name="disposition_batch_class_number")
        ]

    def __str__(self) -> str:
        return f"disposition batch {self.record_class} #{self.number}"


class DispositionItem(PermanentRecord):
    """One recording in a disposition batch: what would go, its bytes and why (the policy that expired it).
    Written once; its decision is a separate permanent row (DispositionDecision), since a ledgered row never
    changes."""

    batch = models.ForeignKey(DispositionBatch, on_delete=models.PROTECT, related_name="items")
    recording = models.ForeignKey("recordings.Recording", on_delete=models.PROTECT, related_name="disposition_items")
    added_at = models.DateTimeField()
    run = models.CharField(max_length=100)
    bytes = models.PositiveBigIntegerField(default=0, help_text="What deleting it frees (stored, else original).")
    call_time = models.DateTimeField(null=True)
    reason = models.CharField(max_length=500, help_text="Why retention would delete it: age, policy, record class.")

    class Meta:
        ordering = ["recording_id"]

    def __str__(self) -> str:
        return f"recording {self.recording_id} in {self.batch}"


class DispositionDecision(PermanentRecord):
    """A decision on one disposition item: a Legal approver's approval or exclusion (step 1, once per item,
    with a reason), or the lapse of an approval that retention could not carry out because, at the moment of
    deletion, the recording was held or no longer expired (step 2: it goes back to review)."""

    class Decision(models.TextChoices):
        APPROVE = "approve", "Approved for deletion"
        EXCLUDE = "exclude", "Excluded: keep"
        LAPSED = "lapsed", "Approval lapsed (held or no longer expired at deletion)"

    REVIEW, LAPSE = 1, 2

    item = models.ForeignKey(DispositionItem, on_delete=models.PROTECT, related_name="decisions")
    step = models.PositiveSmallIntegerField(default=REVIEW)
    decision = models.CharField(max_length=7, choices=Decision.choices)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_by_name = models.CharField(max_length=200)
    reason = models.TextField()
    at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["at", "pk"]
        constraints = [models.UniqueConstraint(fields=["item", "step"], name="disposition_decision_once")]

    def __str__(self) -> str:
        return f"{self.get_decision_display()} by {self.decided_by_name}: {self.item}"
