"""VICIdial's own tables, read-only.

Unmanaged models with VICIdial's real table and column names and types (extras/MySQL_AST_CREATE_tables.sql,
schema 1720, the version VICIdial 2.14 ships). ``vicidial_table = True`` makes vicirec.dbrouter send them
to the "vicidial" alias, refuse writes and skip migrations. Only the columns vicirec needs are mapped for
the wide tables; ``vicidial_users.pass`` is deliberately absent. The demo and the tests create these tables
from these models (recordings.demo.vicidial_schema), on MyISAM as VICIdial does.
"""

from __future__ import annotations

from django.db import models


class VicidialModel(models.Model):
    vicidial_table = True

    class Meta:
        abstract = True
        managed = False

    def __str__(self) -> str:
        return f"{self._meta.db_table} {self.pk}"


class RecordingLogColumns(VicidialModel):
    recording_id = models.PositiveIntegerField(primary_key=True)
    channel = models.CharField(max_length=100, null=True)
    server_ip = models.CharField(max_length=15, null=True)
    extension = models.CharField(max_length=100, null=True)
    start_time = models.DateTimeField(null=True)
    start_epoch = models.PositiveIntegerField(null=True)
    end_time = models.DateTimeField(null=True)
    end_epoch = models.PositiveIntegerField(null=True)
    length_in_sec = models.PositiveIntegerField(null=True)  # MEDIUMINT(8) UNSIGNED
    length_in_min = models.FloatField(null=True)  # DOUBLE(8,2)
    filename = models.CharField(max_length=100, null=True, db_index=True)
    location = models.CharField(max_length=255, null=True)
    lead_id = models.PositiveIntegerField(null=True, db_index=True)
    user = models.CharField(max_length=20, null=True, db_index=True)
    vicidial_id = models.CharField(max_length=20, null=True, db_index=True)

    class Meta(VicidialModel.Meta):
        abstract = True


class RecordingLog(RecordingLogColumns):
    class Meta(VicidialModel.Meta):
        db_table = "recording_log"


class RecordingLogArchive(RecordingLogColumns):
    """Where ADMIN_archive_log_tables.pl --recording-log-days=X moves old rows (copied with INSERT IGNORE,
    then deleted from the live table). recording_id is UNIQUE there, not a primary key."""

    class Meta(VicidialModel.Meta):
        db_table = "recording_log_archive"


class VicidialCampaign(VicidialModel):
    campaign_id = models.CharField(max_length=8, primary_key=True)
    campaign_name = models.CharField(max_length=40, null=True)
    active = models.CharField(max_length=1, null=True)  # ENUM('Y','N')
    user_group = models.CharField(max_length=20, null=True, default="---ALL---")
    campaign_recording = models.CharField(max_length=8, null=True, default="ONDEMAND")
    campaign_rec_filename = models.CharField(max_length=50, null=True, default="FULLDATE_CUSTPHONE")

    class Meta(VicidialModel.Meta):
        db_table = "vicidial_campaigns"


class VicidialInboundGroup(VicidialModel):
    group_id = models.CharField(max_length=20, primary_key=True)
    group_name = models.CharField(max_length=30, null=True)
    active = models.CharField(max_length=1, null=True)  # ENUM('Y','N')
    user_group = models.CharField(max_length=20, null=True, default="---ALL---")
    ingroup_recording_override = models.CharField(max_length=8, null=True, default="DISABLED")
    ingroup_rec_filename = models.CharField(max_length=50, null=True, default="NONE")

    class Meta(VicidialModel.Meta):
        db_table = "vicidial_inbound_groups"


class VicidialLogColumns(VicidialModel):
    """Outbound call log; a recording's vicidial_id containing "." is this table's uniqueid."""

    uniqueid = models.CharField(max_length=20, primary_key=True)
    lead_id = models.PositiveIntegerField(db_index=True)
    list_id = models.PositiveBigIntegerField(null=True)
    campaign_id = models.CharField(max_length=8, null=True)
    call_date = models.DateTimeField(null=True, db_index=True)
    start_epoch = models.PositiveIntegerField(null=True)
    end_epoch = models.PositiveIntegerField(null=True)
    length_in_sec = models.IntegerField(null=True)
    status = models.CharField(max_length=6, null=True)
    phone_code = models.CharField(max_length=10, null=True)
    phone_number = models.CharField(max_length=18, null=True)
    user = models.CharField(max_length=20, null=True)
    user_group = models.CharField(max_length=20, null=True)

    class Meta(VicidialModel.Meta):
        abstract = True


class VicidialLog(VicidialLogColumns):
    class Meta(VicidialModel.Meta):
        db_table = "vicidial_log"


class VicidialLogArchive(VicidialLogColumns):
    """Outbound calls older than ADMIN_archive_log_tables.pl's cut-off (732 days by default)."""

    class Meta(VicidialModel.Meta):
        db_table = "vicidial_log_archive"


class VicidialCloserLogColumns(VicidialModel):
    """Inbound (in-group) call log; its campaign_id holds the in-group's group_id."""

    closecallid = models.PositiveIntegerField(primary_key=True)
    lead_id = models.PositiveIntegerField(db_index=True)
    list_id = models.PositiveBigIntegerField(null=True)
    campaign_id = models.CharField(max_length=20, null=True, db_index=True)
    call_date = models.DateTimeField(null=True, db_index=True)
    start_epoch = models.PositiveIntegerField(null=True)
    end_epoch = models.PositiveIntegerField(null=True)
    length_in_sec = models.IntegerField(null=True)
    status = models.CharField(max_length=6, null=True)
    phone_code = models.CharField(max_length=10, null=True)
    phone_number = models.CharField(max_length=18, null=True, db_index=True)
    user = models.CharField(max_length=20, null=True)
    user_group = models.CharField(max_length=20, null=True)
    uniqueid = models.CharField(max_length=20, default="", db_index=True)

    class Meta(VicidialModel.Meta):
        abstract = True


class VicidialCloserLog(VicidialCloserLogColumns):
    class Meta(VicidialModel.Meta):
        db_table = "vicidial_closer_log"


class VicidialCloserLogArchive(VicidialCloserLogColumns):
    """Inbound calls older than ADMIN_archive_log_tables.pl's cut-off."""

    class Meta(VicidialModel.Meta):
        db_table = "vicidial_closer_log_archive"


class VicidialLead(VicidialModel):
    lead_id = models.PositiveIntegerField(primary_key=True)
    entry_date = models.DateTimeField(null=True)
    status = models.CharField(max_length=6, null=True)
    user = models.CharField(max_length=20, null=True)
    vendor_lead_code = models.CharField(max_length=20, null=True)
    list_id = models.PositiveBigIntegerField(default=0, db_index=True)
    phone_code = models.CharField(max_length=10, null=True)
    phone_number = models.CharField(max_length=18, db_index=True)
    first_name = models.CharField(max_length=30, null=True)
    last_name = models.CharField(max_length=30, null=True)

    class Meta(VicidialModel.Meta):
        db_table = "vicidial_list"


class VicidialUser(VicidialModel):
    user_id = models.PositiveIntegerField(primary_key=True)
    user = models.CharField(max_length=20, unique=True)
    full_name = models.CharField(max_length=50, null=True)
    user_level = models.PositiveSmallIntegerField(null=True, default=1)
    user_group = models.CharField(max_length=20, null=True)
    active = models.CharField(max_length=1, null=True, default="Y")

    class Meta(VicidialModel.Meta):
        db_table = "vicidial_users"


class RecordingLogDeletionQueue(VicidialModel):
    """VICIdial's GDPR erasure queue (added in VICIdial 2.14's upgrade script).

    With the system setting ``enable_gdpr_download_deletion`` on, "Confirm purge" on a lead copies the lead's
    recording_log and recording_log_archive rows here (INSERT IGNORE), sets their filename and location to
    NULL in both tables and blanks the lead's personal fields; later AST_GDPR_audio_purge.pl deletes the
    files on the telephony server and sets date_deleted. vicirec's erase_recordings follows this queue.
    """

    recording_id = models.PositiveIntegerField(primary_key=True)  # INT(9) UNSIGNED
    lead_id = models.PositiveIntegerField(null=True)  # INT(10) UNSIGNED
    filename = models.CharField(max_length=100, null=True)
    location = models.CharField(max_length=255, null=True)
    date_queued = models.DateTimeField(null=True)
    date_deleted = models.DateTimeField(null=True, db_index=True)

    class Meta(VicidialModel.Meta):
        db_table = "recording_log_deletion_queue"


VICIDIAL_MODELS: tuple[type[VicidialModel], ...] = (
    RecordingLog,
    RecordingLogArchive,
    VicidialCampaign,
    VicidialInboundGroup,
    VicidialLog,
    VicidialLogArchive,
    VicidialCloserLog,
    VicidialCloserLogArchive,
    VicidialLead,
    VicidialUser,
    RecordingLogDeletionQueue,
)
