"""vicirec's catalog: campaigns and recordings, with an append-only custody log of state changes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import models
from django.db.models import Q

from holds.models import held_condition, holds_covering
from retention.models import RetentionPolicy
from vicirec import clock
from vicirec.records import PermanentRecord, audit_history


class Campaign(models.Model):
    """An outbound campaign (vicidial_campaigns) or an inbound group (vicidial_inbound_groups)."""

    class Kind(models.TextChoices):
        OUTBOUND = "outbound", "Outbound campaign"
        INBOUND = "inbound", "Inbound group"

    kind = models.CharField(max_length=8, choices=Kind.choices)
    campaign_id = models.CharField("VICIdial id", max_length=20)
    name = models.CharField(max_length=50, blank=True)
    active = models.BooleanField(default=True)
    first_seen_at = models.DateTimeField(default=clock.now)

    history = audit_history(excluded_fields=["first_seen_at"])

    class Meta:
        constraints = [models.UniqueConstraint(fields=["kind", "campaign_id"], name="campaign_kind_id_unique")]
        ordering = ["campaign_id"]

    def __str__(self) -> str:
        return f"{self.campaign_id} ({self.get_kind_display().lower()})"


class RecordingQuerySet(models.QuerySet["Recording"]):
    def for_node(self, node: str) -> RecordingQuerySet:
        """Recordings whose file lives on this telephony server's disk ("" = every server)."""
        return self.filter(server_ip=node) if node else self

    def retry_due(self, now: datetime) -> RecordingQuerySet:
        return self.filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))

    def unclaimed(self, now: datetime) -> RecordingQuerySet:
        return self.filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))

    def stored(self) -> RecordingQuerySet:
        """Recordings whose copy is verified in the bucket (the local file kept or already cleared)."""
        return self.filter(state__in=Recording.STORED_STATES)

    def waiting(self) -> RecordingQuerySet:
        """Recordings not in the bucket yet, still to be uploaded."""
        return self.filter(state__in=Recording.WAITING_STATES)

    def needing_person(self) -> RecordingQuerySet:
        """Recordings whose last failure a retry cannot fix (see ``Recording.needs_person``), unless retention
        has deleted them since."""
        return self.filter(needs_person=True).exclude(state__in=(Recording.State.EXPIRED, Recording.State.ERASED))

    def with_copies(self) -> RecordingQuerySet:
        """Recordings that still have a copy vicirec owns (local file, cloud object, or both)."""
        return self.filter(state__in=Recording.COPY_STATES)

    def held(self) -> RecordingQuerySet:
        """Under at least one active legal hold (one query; see holds.models.held_condition)."""
        return self.filter(held_condition())

    def not_held(self) -> RecordingQuerySet:
        return self.exclude(held_condition())

    def expired(self, now: datetime) -> RecordingQuerySet:
        """Past their campaign policy's retention, with a copy still to delete (held or not)."""
        return self.with_copies().filter(RetentionPolicy.objects.age_condition(now, "retain_days"))

    def expiring(self, now: datetime, days: int) -> RecordingQuerySet:
        """Not expired yet but past their retention ``days`` from now, with a copy (held or not)."""
        policies = RetentionPolicy.objects
        soon = policies.age_condition(now + timedelta(days=days), "retain_days")
        return self.with_copies().filter(soon).exclude(policies.age_condition(now, "retain_days"))


class Recording(models.Model):
    """One VICIdial recording (one recording_log row) and everything vicirec knows and did about it."""

    class State(models.TextChoices):
        CAPTURED = "captured", "Captured (on local disk)"
        MISSING = "missing", "Missing (file not found yet)"
        REJECTED = "rejected", "Rejected (unsafe or malformed)"
        FAILED = "failed", "Failed (will retry)"
        ARCHIVED = "archived", "Archived (verified in the bucket, local copy kept)"
        CLEARED = "cleared", "Local copy cleared (bucket only)"
        EXPIRED = "expired", "Expired (deleted under retention)"
        ERASED = "erased", "Erased (on a data subject's request)"

    class Direction(models.TextChoices):
        OUTBOUND = "outbound", "Outbound"
        INBOUND = "inbound", "Inbound"
        UNKNOWN = "unknown", "Unknown"

    # The named groups of states, defined here once.
    LOCAL_STATES = (State.CAPTURED, State.FAILED, State.ARCHIVED)  # a local file vicirec manages
    WAITING_STATES = (State.CAPTURED, State.MISSING, State.FAILED)  # not in the bucket yet, to be uploaded
    STORED_STATES = (State.ARCHIVED, State.CLEARED)  # a verified copy in the bucket
    COPY_STATES = (*LOCAL_STATES, State.CLEARED)  # some copy vicirec owns, local or in the bucket
    # What identifies the caller, the lead or the agent (the filename and paths carry the phone number in
    # VICIdial's default pattern): what an erasure scrubs from this row and its history (pipeline/erasure.py).
    PERSONAL_FIELDS = (
        "filename",
        "channel",
        "extension",
        "vicidial_location",
        "vicidial_id",
        "lead_id",
        "phone_number",
        "agent",
        "error",
        "local_path",
        "local_copies",
        "object_key",
    )

    # VICIdial's recording_log.recording_id: the id ops and VICIdial's screens know.
    recording_id = models.PositiveBigIntegerField(primary_key=True)
    filename = models.CharField(max_length=255)
    server_ip = models.CharField(max_length=15, blank=True)
    channel = models.CharField(max_length=100, blank=True)
    extension = models.CharField(max_length=100, blank=True)
    vicidial_location = models.CharField(max_length=255, blank=True)
    vicidial_id = models.CharField(max_length=20, blank=True)
    start_time = models.DateTimeField(null=True)
    length_in_sec = models.PositiveIntegerField(null=True)
    lead_id = models.PositiveBigIntegerField(null=True)
    phone_number = models.CharField(max_length=18, blank=True)
    agent = models.CharField(max_length=20, blank=True)
    direction = models.CharField(max_length=8, choices=Direction.choices, default=Direction.UNKNOWN)
    campaign = models.ForeignKey(Campaign, null=True, blank=True, on_delete=models.PROTECT, related_name="recordings")

    state = models.CharField(max_length=10, choices=State.choices, default=State.CAPTURED)
    state_changed_at = models.DateTimeField(default=clock.now)
    cataloged_at = models.DateTimeField(default=clock.now)
    error = models.TextField(blank=True)
    # The last failure is one a retry cannot fix (a key holding other content, a file that cannot be
    # decoded): pipeline_status calls for a person. Set by workqueue.fail, cleared with the error.
    needs_person = models.BooleanField(default=False)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claimed_by = models.CharField(max_length=100, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)

    # The local file, relative to a spool folder, and what it was when first hashed.
    local_path = models.CharField(max_length=1024, blank=True)
    # Every local copy VICIdial keeps of this recording, as the archive stage found and hashed them
    # (recordings.lib.spool.Copy.as_dict): [{"path", "kind", "size", "sha256"}], kind "wav" (monitorDONE),
    # "orig" (ORIG/, the capture kept after compression), "mp3", "ogg", "gsm", "gsw". Cleanup and retention
    # delete each of them, each re-hashed first where a SHA-256 is recorded.
    local_copies = models.JSONField(default=list, blank=True)
    original_sha256 = models.CharField(max_length=64, blank=True)
    original_size = models.PositiveBigIntegerField(null=True)

    # The copy in the bucket: exactly the bytes uploaded, as the server confirmed them.
    encoder = models.JSONField(default=dict, blank=True)
    object_key = models.CharField(max_length=1024, blank=True)
    stored_sha256 = models.CharField(max_length=64, blank=True)
    stored_size = models.PositiveBigIntegerField(null=True)
    version_id = models.CharField(max_length=1024, blank=True)
    uploaded_at = models.DateTimeField(null=True, blank=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    verify_method = models.CharField(max_length=20, blank=True)
    # The S3 storage class the object was written with (or last moved to by retier); "" = the bucket's default.
    storage_class = models.CharField(max_length=11, blank=True)
    local_cleared_at = models.DateTimeField(null=True, blank=True)
    expired_at = models.DateTimeField(null=True, blank=True)

    objects = RecordingQuerySet.as_manager()
    # Changes made by people (admin, commands) get model history; the pipeline's own conditional
    # updates are logged in RecordingEvent instead (a queryset update writes no model history).
    history = audit_history(
        excluded_fields=[
            "claimed_by",
            "claimed_until",
            "attempts",
            "next_attempt_at",
            "state_changed_at",
            "needs_person",
        ]
    )

    class Meta:
        ordering = ["-recording_id"]
        indexes = [
            # work queues: archive/cleanup pick "state X on server Y, retry due, oldest first"
            models.Index(fields=["state", "server_ip", "start_time"], name="rec_queue_idx"),
            # retention and forecasts: "campaign C older than D"
            models.Index(fields=["campaign", "start_time"], name="rec_campaign_time_idx"),
            models.Index(fields=["start_time"], name="rec_start_idx"),
            # legal search and case criteria
            models.Index(fields=["phone_number"], name="rec_phone_idx"),
            models.Index(fields=["lead_id"], name="rec_lead_idx"),
            models.Index(fields=["agent", "start_time"], name="rec_agent_idx"),
            models.Index(fields=["filename"], name="rec_filename_idx"),
            # pipeline_status: "recordings needing a person" (a handful among millions)
            models.Index(fields=["needs_person", "state"], name="rec_needs_person_idx"),
            # every stage's start: "live claims of this stage" (a few among millions, most rows have none)
            models.Index(fields=["claimed_until"], name="rec_claim_idx"),
        ]

    def __str__(self) -> str:
        return f"recording {self.recording_id} ({self.filename})"

    def expiry(self, now: datetime | None = None) -> Expiry:
        """When this recording expires, and why: policy, record class and floor, call date, holds."""
        policy = getattr(self.campaign, "policy", None) if self.campaign_id else None
        if policy is None:
            policy = RetentionPolicy.objects.default()
        klass = policy.klass
        expires_at = self.start_time + timedelta(days=policy.retain_days) if self.start_time else None
        holds = holds_covering(Recording.objects.filter(pk=self.pk)) if self.state != self.State.EXPIRED else []
        return Expiry(
            policy=policy,
            record_class=klass.label,
            floor_days=klass.floor_days,
            floor_source=klass.source,
            call_date=self.start_time,
            expires_at=expires_at,
            holds=holds,
        )

    def retry_delay(self) -> timedelta:
        """Back-off for the next attempt: 5 min, doubling, capped at one day."""
        return timedelta(minutes=min(5 * 2 ** max(self.attempts - 1, 0), 24 * 60))


@dataclass
class Expiry:
    policy: Any
    record_class: str
    floor_days: int
    floor_source: str
    call_date: datetime | None
    expires_at: datetime | None
    holds: list[Any]

    def explain(self) -> str:
        if self.expires_at is None:
            return "No call date is known, so retention cannot date this recording."
        text = (
            f"Expires {self.expires_at:%Y-%m-%d}: {self.policy.retain_days} days after the call on "
            f"{self.call_date:%Y-%m-%d} under the {self.policy} ({self.record_class}, legal minimum "
            f"{self.floor_days} days: {self.floor_source})"
        )
        if self.policy.below_floor:
            text += f"; kept below the minimum by override: {self.policy.override_reason}"
        if self.holds:
            text += ". Not deleted while held: " + "; ".join(str(h) for h in self.holds)
        return text + "."


class OpenCall(models.Model):
    """A recording_log row first seen while its call was still being recorded (end_time NULL).

    The catalog's watermark moves past it, so the calls after it are cataloged at once; each sync re-reads
    the remembered ids (one query per VICIdial table, however many) and catalogs those that have ended or
    passed VICIREC_SYNC_OPEN_GRACE_HOURS, then forgets them. Written only by the catalog stage, in the
    same transaction as the batch it was seen in, so a crash never loses one.
    """

    recording_id = models.PositiveBigIntegerField(primary_key=True)
    first_seen_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"open call {self.recording_id}"


class RecordingEvent(PermanentRecord):
    """Append-only custody log: every state change of a recording, who or what made it, and why.

    Pipeline stages change many rows with conditional UPDATEs (which write no model history); each such
    change appends one of these rows, which the admin shows read-only and evidence exports include.
    """

    REDACTABLE = ("detail",)  # an erasure replaces file names, keys and numbers in it (vicirec.records)

    recording = models.ForeignKey(Recording, on_delete=models.PROTECT, related_name="events")
    at = models.DateTimeField(default=clock.now, db_index=True)
    from_state = models.CharField(max_length=10, blank=True)
    to_state = models.CharField(max_length=10)
    actor = models.CharField(max_length=150)
    detail = models.TextField(blank=True)

    class Meta:
        ordering = ["recording_id", "at", "id"]
        indexes = [models.Index(fields=["recording", "at"], name="recevent_rec_at_idx")]

    def __str__(self) -> str:
        return f"{self.recording_id}: {self.from_state or '-'} → {self.to_state} by {self.actor}"


from django.conf import settings  # noqa: E402

from recordings.vicidial import (  # noqa: E402,F401  (register VICIdial's unmanaged models with this app)
    RecordingLog,
    VicidialCampaign,
    VicidialCloserLog,
    VicidialInboundGroup,
    VicidialLead,
    VicidialLog,
    VicidialUser,
)


class AccessEvent(PermanentRecord):
    """Append-only access log: every play, download, VICIdial-link open and evidence export of a recording.

    Written by the playback views and the evidence export, shown read-only to the Auditor, and included in
    evidence packages. Like retention's DeletionCertificate it is never changed or deleted: save() refuses
    updates, delete() refuses, and the admin has no add, change or delete. IP and user agent are what the
    web server saw (REMOTE_ADDR; a proxy's X-Forwarded-For is not trusted).
    """

    class Action(models.TextChoices):
        PLAY = "play", "Played"
        DOWNLOAD = "download", "Downloaded"
        LINK = "link", "Opened through a VICIdial link"
        EXPORT = "export", "Exported as evidence"

    REDACTABLE = ("detail",)  # an erasure replaces file names and keys in it (vicirec.records)

    recording = models.ForeignKey(Recording, on_delete=models.PROTECT, related_name="access_events")
    action = models.CharField(max_length=10, choices=Action.choices)
    at = models.DateTimeField(default=clock.now)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    username = models.CharField(max_length=200, help_text="Who: the user, or the command and OS user.")
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    detail = models.CharField(max_length=300, blank=True, help_text="How it was served, or which export.")

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            # the recording page and evidence exports: "access to recording R, newest first"
            models.Index(fields=["recording", "at"], name="access_rec_at_idx"),
            # the Auditor's list: "all access, newest first", filtered by time
            models.Index(fields=["at"], name="access_at_idx"),
        ]
        permissions = [
            ("play_recording", "Can play and download recordings"),
            ("export_evidence", "Can export evidence packages"),
        ]

    def __str__(self) -> str:
        return f"{self.username} {self.action} recording {self.recording_id} at {self.at:%Y-%m-%d %H:%M:%S}"


class PipelineSnapshot(models.Model):
    """One row a day of what the pipeline held and did (dashboard, disk forecasts); written only by
    recordings.ops.stats.take_snapshot."""

    day = models.DateField(unique=True)
    taken_at = models.DateTimeField()
    # {state: {server_ip: count}} of the states that still have a local file or wait for one
    waiting = models.JSONField(default=dict)
    # {to_state: count} of custody-log transitions in the 24 hours before taken_at
    transitions = models.JSONField(default=dict)
    archived_original_bytes = models.PositiveBigIntegerField(default=0)
    archived_stored_bytes = models.PositiveBigIntegerField(default=0)
    # {node: {"total", "used", "free", "percent", "path", "reported_at"}} as each node last reported it
    disk = models.JSONField(default=dict)
    # the dashboard's table-wide totals (recordings.ops.stats.inventory), taken with the snapshot
    inventory = models.JSONField(default=dict)

    class Meta:
        ordering = ["-day"]
        get_latest_by = "day"

    def __str__(self) -> str:
        return f"pipeline snapshot {self.day}"


class Agent(models.Model):
    """A VICIdial user as the desk names it: ``vicidial_users.user`` (what recording_log.user holds) and its
    ``full_name``. Copied by the catalog's sync (recordings.pipeline.catalog.sync_agents), so the desk can
    search recordings by an agent's name without reading VICIdial's database."""

    user = models.CharField("VICIdial user", max_length=20, primary_key=True)
    full_name = models.CharField(max_length=50, blank=True, db_index=True)
    synced_at = models.DateTimeField(default=clock.now)

    class Meta:
        ordering = ["user"]

    def __str__(self) -> str:
        return f"{self.user} ({self.full_name})" if self.full_name else self.user


class InventoryBlock(models.Model):
    """The catalog's totals over one block of recording ids (recording_id // BLOCK), by state, server,
    campaign, month uploaded and month expired: the daily snapshot recounts only the blocks whose recordings
    changed since the last one (recordings.ops.stats), so its cost follows the day's work, not the catalog's
    size."""

    block = models.PositiveBigIntegerField()
    state = models.CharField(max_length=10)
    server_ip = models.CharField(max_length=15, blank=True)
    campaign_id = models.BigIntegerField(null=True)  # the Campaign's key, or none: each policy's stored volume
    uploaded_month = models.DateField(null=True)
    expired_month = models.DateField(null=True)
    n = models.PositiveBigIntegerField(default=0)
    size = models.PositiveBigIntegerField(default=0)  # Coalesce(stored_size, original_size)
    original_bytes = models.PositiveBigIntegerField(default=0)
    stored_n = models.PositiveBigIntegerField(default=0)
    stored_bytes = models.PositiveBigIntegerField(default=0)
    billable_min = models.PositiveBigIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["block"], name="invblock_block_idx")]

    def __str__(self) -> str:
        return f"inventory block {self.block} {self.state} {self.server_ip}"


# --- the custody ledger (docs/custody-ledger.md) ----------------------------------------------------


class LedgerHead(models.Model):
    """The one row that names the ledger's last entry. Writers lock it (select_for_update) inside their own
    transaction, so concurrent writers append one after the other and the chain has no forks."""

    count = models.PositiveBigIntegerField(default=0)
    head_sha256 = models.CharField(max_length=64, default="0" * 64)

    def __str__(self) -> str:
        return f"ledger head at {self.count}"


class LedgerEntry(PermanentRecord):
    """One entry of the hash-chained custody ledger; written only by recordings.ledger, never changed.

    ``content`` is the canonical JSON of what the entry records (a custody event, an access, a certificate,
    a hold or policy history row, a key, a checkpoint, an evidence export); ``ref`` the primary key of the
    row it copies (empty for entries that are their own record).
    """

    seq = models.PositiveBigIntegerField(unique=True)
    kind = models.CharField(max_length=40)
    ref = models.CharField(max_length=64, blank=True)
    recording_id = models.PositiveBigIntegerField(null=True, blank=True)
    at = models.DateTimeField()
    content = models.TextField()
    content_sha256 = models.CharField(max_length=64)
    prev_sha256 = models.CharField(max_length=64)
    entry_sha256 = models.CharField(max_length=64)
    # Set when an erasure redacted ``content``: the recording whose erasure certificate covers it. The entry
    # keeps its original ``content_sha256`` (so the chain and every signed checkpoint still hold); its
    # content is then the row as redacted, and verify_custody checks the certificate instead of the hash.
    redacted_for = models.PositiveBigIntegerField(null=True, blank=True)

    REDACTABLE = ("content", "redacted_for")

    class Meta:
        ordering = ["seq"]
        indexes = [
            models.Index(fields=["kind", "ref"], name="ledger_kind_ref_idx"),
            models.Index(fields=["recording_id", "seq"], name="ledger_rec_seq_idx"),
        ]
        verbose_name_plural = "ledger entries"

    def __str__(self) -> str:
        return f"ledger entry {self.seq} ({self.kind} {self.ref})"


class LedgerNode(models.Model):
    """The root of a complete, aligned subtree of the ledger's Merkle tree (``2**level`` leaves from leaf
    ``index * 2**level``): a cache derived from the entries, kept by recordings.ledger_tree."""

    level = models.PositiveSmallIntegerField()
    index = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["level", "index"], name="ledger_node_position")]

    def __str__(self) -> str:
        return f"ledger node {self.level}/{self.index}"


class Checkpoint(models.Model):
    """A signed statement of the ledger's head (count, head hash, Merkle root, time, key), also written to
    the bucket."""

    count = models.PositiveBigIntegerField()
    head_sha256 = models.CharField(max_length=64)
    root_sha256 = models.CharField(max_length=64, blank=True, help_text="Empty on checkpoints of the first version.")
    at = models.DateTimeField()
    key_id = models.CharField(max_length=16)
    text = models.TextField(help_text="The signed text, exactly as signed.")
    signature = models.CharField(max_length=128, help_text="Raw Ed25519 signature, hex.")
    object_key = models.CharField(max_length=1024)
    version_id = models.CharField(max_length=1024, blank=True)
    locked_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-count", "-id"]
        get_latest_by = "id"

    def __str__(self) -> str:
        return f"checkpoint at {self.count} ({self.at:%Y-%m-%d %H:%M})"


class CustodyCheck(models.Model):
    """The result of one verify_custody run (pipeline_status and the dashboard show the last one)."""

    at = models.DateTimeField()
    ok = models.BooleanField()
    entries = models.PositiveBigIntegerField(default=0)
    checkpoints = models.PositiveIntegerField(default=0)
    seconds = models.FloatField(default=0)
    first_problem = models.TextField(blank=True)
    problems = models.JSONField(default=list)

    class Meta:
        ordering = ["-at", "-id"]
        get_latest_by = "id"

    def __str__(self) -> str:
        return f"custody check {self.at:%Y-%m-%d %H:%M}: {'ok' if self.ok else 'FAILED'}"
