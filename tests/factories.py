"""Small builders for test data: VICIdial rows as VICIdial writes them, and catalog recordings."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from recordings.demo.vicidial_schema import VicidialWriter
from recordings.models import Recording
from recordings.vicidial import (
    RecordingLog,
    RecordingLogArchive,
    VicidialCampaign,
    VicidialCloserLog,
    VicidialCloserLogArchive,
    VicidialInboundGroup,
    VicidialLead,
    VicidialLog,
    VicidialLogArchive,
    VicidialUser,
)

_ids = itertools.count(1)


class VicidialData:
    def __init__(self, writer: VicidialWriter) -> None:
        self.writer = writer
        self.recording_ids = itertools.count(1001)
        self.lead_ids = itertools.count(501)
        self.closecallids = itertools.count(9001)
        self.uniqueids = itertools.count(1)

    def campaign(self, campaign_id: str = "SALES", name: str = "Sales", active: str = "Y") -> str:
        self.writer.insert(VicidialCampaign, [{"campaign_id": campaign_id, "campaign_name": name, "active": active}])
        return campaign_id

    def ingroup(self, group_id: str = "SUPPORT", name: str = "Support line", active: str = "Y") -> str:
        self.writer.insert(VicidialInboundGroup, [{"group_id": group_id, "group_name": name, "active": active}])
        return group_id

    def agent(self, user: str = "1001", full_name: str = "Agent One") -> str:
        self.writer.insert(VicidialUser, [{"user_id": next(_ids), "user": user, "full_name": full_name}])
        return user

    def lead(self, phone: str = "3125551212") -> int:
        lead_id = next(self.lead_ids)
        self.writer.insert(VicidialLead, [{"lead_id": lead_id, "phone_number": phone, "list_id": 101}])
        return lead_id

    def recording_log(self, **row: Any) -> dict[str, Any]:
        """Insert one recording_log row; unspecified columns are filled as VICIdial would."""
        start: datetime = row.pop("start", datetime(2026, 11, 1, 14, 25, 1, tzinfo=UTC))
        length = row.pop("length", 65)
        recording_id = row.get("recording_id") or next(self.recording_ids)
        values = {
            "recording_id": recording_id,
            "channel": "Local/58600051@default",
            "server_ip": "10.0.0.11",
            "extension": "8309",
            "start_time": start,
            "start_epoch": int(start.timestamp()),
            "end_time": start + timedelta(seconds=length),
            "end_epoch": int(start.timestamp()) + length,
            "length_in_sec": length,
            "length_in_min": round(length / 60, 2),
            "filename": f"{start:%Y%m%d-%H%M%S}_{recording_id}",
            "location": None,
            "lead_id": None,
            "user": "1001",
            "vicidial_id": None,
        } | row
        self.writer.insert(RecordingLog, [values])
        return values

    def outbound_call(self, *, campaign: str = "SALES", phone: str = "3125551212", **row: Any) -> dict[str, Any]:
        lead_id = row.pop("lead_id", None) or self.lead(phone)
        start: datetime = row.get("start", datetime(2026, 11, 1, 14, 25, 1, tzinfo=UTC))
        uniqueid = f"{int(start.timestamp())}.{next(self.uniqueids)}"
        self.writer.insert(
            VicidialLog,
            [
                {
                    "uniqueid": uniqueid,
                    "lead_id": lead_id,
                    "list_id": 101,
                    "campaign_id": campaign,
                    "call_date": start,
                    "start_epoch": int(start.timestamp()),
                    "status": "SALE",
                    "phone_code": "1",
                    "phone_number": phone,
                    "user": row.get("user", "1001"),
                }
            ],
        )
        return self.recording_log(lead_id=lead_id, vicidial_id=uniqueid, **row)

    def inbound_call(self, *, ingroup: str = "SUPPORT", phone: str = "7735550000", **row: Any) -> dict[str, Any]:
        lead_id = row.pop("lead_id", None) or self.lead(phone)
        start: datetime = row.get("start", datetime(2026, 11, 1, 14, 25, 1, tzinfo=UTC))
        closecallid = next(self.closecallids)
        self.writer.insert(
            VicidialCloserLog,
            [
                {
                    "closecallid": closecallid,
                    "lead_id": lead_id,
                    "list_id": 101,
                    "campaign_id": ingroup,
                    "call_date": start,
                    "start_epoch": int(start.timestamp()),
                    "status": "A1",
                    "phone_code": "1",
                    "phone_number": phone,
                    "user": row.get("user", "1001"),
                    "uniqueid": f"{int(start.timestamp())}.{next(self.uniqueids)}",
                }
            ],
        )
        return self.recording_log(lead_id=lead_id, vicidial_id=str(closecallid), **row)

    def archive_logs(self, *rows: dict[str, Any], keep_live: bool = False) -> None:
        """What ADMIN_archive_log_tables.pl does to these recordings and their calls: copy the rows into the
        _archive tables, then delete them from the live ones (``keep_live``: a recent row, in both)."""
        ids = lambda test: [r["vicidial_id"] for r in rows if test(r["vicidial_id"] or "")]  # noqa: E731
        moves = [
            (RecordingLog, RecordingLogArchive, "recording_id", [r["recording_id"] for r in rows]),
            (VicidialLog, VicidialLogArchive, "uniqueid", ids(lambda v: "." in v)),
            (VicidialCloserLog, VicidialCloserLogArchive, "closecallid", [int(v) for v in ids(str.isdigit)]),
        ]
        quote = self.writer.connection.ops.quote_name
        with self.writer.connection.cursor() as cursor:
            for live, archive, key, values in moves:
                if not values:
                    continue
                where = f"WHERE {quote(key)} IN ({', '.join(['%s'] * len(values))})"
                live_table, archive_table = quote(live._meta.db_table), quote(archive._meta.db_table)
                cursor.execute(f"INSERT INTO {archive_table} SELECT * FROM {live_table} {where}", values)
                if not keep_live:
                    cursor.execute(f"DELETE FROM {live_table} {where}", values)


def write_file(spool: Path, relative: str, content: bytes = b"RIFF....WAVEfmt fake audio") -> Path:
    path = spool / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def make_recording(**overrides: Any) -> Recording:
    """A catalog entry saved directly (for stages after the catalog)."""
    recording_id = overrides.pop("recording_id", None) or 100000 + next(_ids)
    values: dict[str, Any] = {
        "recording_id": recording_id,
        "server_ip": "10.0.0.11",
        "start_time": datetime(2026, 11, 1, 14, 25, 1, tzinfo=UTC),
        "length_in_sec": 65,
        "phone_number": "3125551212",
        "agent": "1001",
    } | overrides
    values.setdefault("filename", f"{values['start_time']:%Y%m%d-%H%M%S}_{recording_id}")
    return Recording.objects.create(**values)


def policy_approver() -> Any:
    """A user holding the Legal approver's permission to shorten retention (for setting up test policies)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission
    from django.contrib.contenttypes.models import ContentType

    from retention.models import RetentionPolicy

    user, created = get_user_model().objects.get_or_create(username="policy-approver")
    if created:
        content_type = ContentType.objects.get_for_model(RetentionPolicy)
        permission, _ = Permission.objects.get_or_create(
            content_type=content_type, codename="approve_policy_override", defaults={"name": "Can approve shortening"}
        )
        user.user_permissions.add(permission)
    return get_user_model().objects.get(pk=user.pk)  # a fresh object: no stale permission cache


def make_policy(**fields: Any) -> Any:
    """A retention policy saved with an approver's approval (any test policy may be shorter than the default)."""
    from retention.models import RetentionPolicy

    return RetentionPolicy.objects.create(approved_by=policy_approver(), reason="test set-up", **fields)
