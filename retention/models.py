"""Per-campaign policies: how long a recording stays on local disk, and how long it is kept at all."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords


class Codec(models.TextChoices):
    MP3 = "mp3", "MP3 (plays everywhere)"
    OPUS = "opus", "Opus (smallest)"
    FLAC = "flac", "FLAC (lossless)"
    NONE = "none", "None (upload the capture as it is)"


class RetentionPolicyQuerySet(models.QuerySet["RetentionPolicy"]):
    def default(self) -> RetentionPolicy:
        """The policy for recordings of campaigns without one of their own (created on first use)."""
        policy, _ = self.get_or_create(
            campaign=None,
            defaults={
                "keep_local_days": settings.VICIREC_DEFAULT_KEEP_LOCAL_DAYS,
                "retain_days": settings.VICIREC_DEFAULT_RETAIN_DAYS,
                "codec": settings.VICIREC_DEFAULT_CODEC,
            },
        )
        return policy

    def age_condition(self, now: datetime, days_field: str, *, prefix: str = "") -> Q:
        """One Q that is true for recordings older than their campaign's policy ``days_field`` allows.

        Built from the (few hundred at most) policies, so a stage asks for "due" or "expired" recordings
        in one indexed query over (campaign, start_time) instead of looping over campaigns.
        """
        default = self.default()
        explicit = list(self.exclude(campaign=None).values_list("campaign_id", days_field))
        by_days: dict[int, list[int]] = {}
        for campaign_id, days in explicit:
            by_days.setdefault(days, []).append(campaign_id)
        condition = Q()
        for days, campaign_ids in by_days.items():
            condition |= Q(
                **{f"{prefix}campaign_id__in": campaign_ids, f"{prefix}start_time__lt": now - timedelta(days=days)}
            )
        others = Q(**{f"{prefix}start_time__lt": now - timedelta(days=getattr(default, days_field))}) & (
            Q(**{f"{prefix}campaign__isnull": True}) | ~Q(**{f"{prefix}campaign_id__in": [c for c, _ in explicit]})
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
    codec = models.CharField(max_length=4, choices=Codec.choices, default=Codec.MP3)
    # "default" or "campaign:<pk>": a unique key every database enforces (MariaDB has no partial
    # indexes, and NULL campaigns would not collide), so there is exactly one default policy.
    scope = models.CharField(max_length=30, unique=True, editable=False)

    history = HistoricalRecords()
    objects = RetentionPolicyQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "retention policies"

    def __str__(self) -> str:
        return f"policy for {self.campaign or 'all other campaigns'}"

    def save(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        self.scope = "default" if self.campaign_id is None else f"campaign:{self.campaign_id}"
        super().save(*args, **kwargs)
