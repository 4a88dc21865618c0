"""The embedded demo: a VICIdial database (SQLite) and a VICIdial-shaped spool of real WAV recordings.

The data looks like a small VICIdial shop: outbound campaigns and inbound groups, agents, leads, calls
spread over the last eight years (most of them recent, as a real spool would be), their recording_log
rows as VICIdial's AST_CRON_audio_* scripts leave them (``-all.wav`` in monitorDONE, some already
compressed into ``MP3/``), one recording of a call whose file was never produced, and real 8 kHz 16-bit
mono speech-like audio. Deterministic for a seed.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from recordings.demo.speech import synthesize_speech_like_wav
from recordings.demo.vicidial_schema import VicidialWriter
from recordings.lib.codec import prepare
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
from vicirec.reports import Report

CAMPAIGNS = [("SALES", "Outbound sales"), ("COLLECT", "Collections (Reg F)"), ("CONSENT", "TCPA consent verification")]
INGROUPS = [("SUPPORT", "Customer support"), ("BILLING", "Billing questions")]
SERVERS = ["10.0.0.11", "10.0.0.12"]
AGENTS = [
    (f"10{n:02d}", name)
    for n, name in enumerate(
        ["Ana Ruiz", "Ben Okafor", "Chloe Martin", "Dev Patel", "Eli Cohen", "Fatima Haddad", "Gus Novak", "Hana Sato"],
        start=1,
    )
]


@dataclass
class DemoReport(Report):
    campaigns: int = 0
    ingroups: int = 0
    agents: int = 0
    leads: int = 0
    recordings: int = 0
    in_archive_tables: int = 0  # recording_log rows old enough to sit in recording_log_archive
    wav_files: int = 0
    mp3_files: int = 0
    missing_files: int = 0
    audio_bytes: int = 0


def _call_times(rng: random.Random, now: datetime, count: int) -> list[datetime]:
    """Most calls in the last two weeks, the rest spread over eight years (oldest first)."""
    times = []
    for index in range(count):
        if index % 3 == 0:
            age = timedelta(days=rng.uniform(14, 8 * 365))
        else:
            age = timedelta(days=rng.uniform(0.05, 14))
        times.append((now - age).replace(microsecond=0))
    return sorted(times)


def generate_demo(*, spool: Path, now: datetime, calls: int = 120, seed: int = 7, max_seconds: int = 40) -> DemoReport:
    """Create VICIdial's tables behind the "vicidial" alias, fill them, and write the spool's files."""
    rng = random.Random(seed)
    report = DemoReport()
    for sub in ("", "MP3", "ORIG"):
        (spool / sub).mkdir(parents=True, exist_ok=True)
    with VicidialWriter() as writer:
        writer.create_tables()
        report.campaigns = writer.insert(
            VicidialCampaign,
            [
                {"campaign_id": cid, "campaign_name": name, "active": "Y", "campaign_recording": "ALLCALLS"}
                for cid, name in CAMPAIGNS
            ],
        )
        report.ingroups = writer.insert(
            VicidialInboundGroup, [{"group_id": gid, "group_name": name, "active": "Y"} for gid, name in INGROUPS]
        )
        report.agents = writer.insert(
            VicidialUser,
            [
                {"user_id": n, "user": user, "full_name": name, "user_level": 1, "user_group": "AGENTS"}
                for n, (user, name) in enumerate(AGENTS, start=1)
            ],
        )
        leads, outbound, inbound, recordings = [], [], [], []
        for index, start in enumerate(_call_times(rng, now, calls)):
            recording_id, lead_id = 1000 + index, 50000 + index
            phone = f"{rng.choice(['312', '773', '415', '646', '214'])}555{rng.randint(0, 9999):04d}"
            user = rng.choice(AGENTS)[0]
            length = rng.randint(4, max_seconds)
            epoch = int(start.timestamp())
            leads.append(
                {
                    "lead_id": lead_id,
                    "entry_date": start - timedelta(days=2),
                    "status": "SALE",
                    "user": user,
                    "list_id": 101,
                    "phone_code": "1",
                    "phone_number": phone,
                    "first_name": "Demo",
                    "last_name": f"Lead{index}",
                }
            )
            call = {
                "lead_id": lead_id,
                "list_id": 101,
                "call_date": start,
                "start_epoch": epoch,
                "end_epoch": epoch + length,
                "length_in_sec": length,
                "status": "SALE",
                "phone_code": "1",
                "phone_number": phone,
                "user": user,
                "user_group": "AGENTS",
            }
            if index % 4 == 3:
                vicidial_id = str(9000 + index)
                inbound.append(
                    call
                    | {
                        "closecallid": 9000 + index,
                        "campaign_id": rng.choice(INGROUPS)[0],
                        "uniqueid": f"{epoch}.{index}",
                    }
                )
            else:
                vicidial_id = f"{epoch}.{index}"
                outbound.append(call | {"uniqueid": vicidial_id, "campaign_id": rng.choice(CAMPAIGNS)[0]})
            server = SERVERS[index % len(SERVERS)]
            filename = f"{start:%Y%m%d-%H%M%S}_{phone}"
            compressed = index % 5 == 4
            missing = index == calls // 2
            on_disk = f"MP3/{filename}-all.mp3" if compressed else f"{filename}-all.wav"
            location = f"http://{server}/RECORDINGS/{on_disk}"
            recordings.append(
                {
                    "recording_id": recording_id,
                    "channel": f"Local/5860{index:04d}@default",
                    "server_ip": server,
                    "extension": "8309",
                    "start_time": start,
                    "start_epoch": epoch,
                    "end_time": start + timedelta(seconds=length),
                    "end_epoch": epoch + length,
                    "length_in_sec": length,
                    "length_in_min": round(length / 60, 2),
                    "filename": filename,
                    "location": location,
                    "lead_id": lead_id,
                    "user": user,
                    "vicidial_id": vicidial_id,
                }
            )
            if missing:
                report.missing_files += 1
                continue
            wav = spool / f"{filename}-all.wav"
            synthesize_speech_like_wav(wav, seconds=length, seed=seed * 100000 + index)
            if compressed:  # VICIdial's step-2 compress cron already made an MP3 of this one
                mp3 = prepare(wav, codec="mp3", workdir=spool / "MP3")
                target = spool / "MP3" / f"{filename}-all.mp3"
                mp3.output_path.replace(target)
                wav.replace(spool / "ORIG" / wav.name)
                report.mp3_files += 1
                report.audio_bytes += target.stat().st_size
                os.utime(target, (epoch + length, epoch + length))
            else:
                report.wav_files += 1
                report.audio_bytes += wav.stat().st_size
                os.utime(wav, (epoch + length, epoch + length))  # written when the call ended
        report.leads = writer.insert(VicidialLead, leads)
        # ADMIN_archive_log_tables.pl moves calls older than 732 days (its default) to the _archive tables.
        cutoff = now - timedelta(days=732)
        for live, archive, rows, when in (
            (VicidialLog, VicidialLogArchive, outbound, "call_date"),
            (VicidialCloserLog, VicidialCloserLogArchive, inbound, "call_date"),
            (RecordingLog, RecordingLogArchive, recordings, "start_time"),
        ):
            writer.insert(live, [row for row in rows if row[when] >= cutoff])
            writer.insert(archive, [row for row in rows if row[when] < cutoff])
        report.recordings = len(recordings)
        report.in_archive_tables = sum(row["start_time"] < cutoff for row in recordings)
    return report


def gdpr_purge(*, now: datetime) -> dict[str, Any]:
    """Play VICIdial with ``enable_gdpr_download_deletion`` on: "Confirm purge" on one lead (the first lead
    with recordings) queues its recordings in recording_log_deletion_queue, sets their filename and location
    to NULL in recording_log and recording_log_archive, and blanks the lead's personal fields."""
    from recordings.vicidial import RecordingLogDeletionQueue

    with VicidialWriter() as writer:
        quote = writer.connection.ops.quote_name
        with writer.connection.cursor() as cursor:
            cursor.execute(
                f"SELECT MIN(lead_id) FROM {quote(RecordingLog._meta.db_table)} "
                "WHERE lead_id IS NOT NULL AND filename IS NOT NULL"
            )
            lead_id = cursor.fetchone()[0]
            if lead_id is None:
                return {"lead_purged": None, "recordings_queued": 0}
            queued = set()
            rows = []
            for table in (RecordingLog, RecordingLogArchive):
                cursor.execute(
                    f"SELECT recording_id, lead_id, filename, location FROM {quote(table._meta.db_table)} "
                    "WHERE lead_id = %s",
                    [lead_id],
                )
                for recording_id, lead, filename, location in cursor.fetchall():
                    if recording_id not in queued:  # INSERT IGNORE
                        queued.add(recording_id)
                        rows.append(
                            {
                                "recording_id": recording_id,
                                "lead_id": lead,
                                "filename": filename,
                                "location": location,
                                "date_queued": now,
                            }
                        )
            cursor.execute(f"SELECT recording_id FROM {quote(RecordingLogDeletionQueue._meta.db_table)}")
            already = {row[0] for row in cursor.fetchall()}
            for table in (RecordingLog, RecordingLogArchive):
                cursor.execute(
                    f"UPDATE {quote(table._meta.db_table)} SET filename = NULL, location = NULL WHERE lead_id = %s",
                    [lead_id],
                )
            cursor.execute(
                f"UPDATE {quote(VicidialLead._meta.db_table)} SET phone_number = '', first_name = '', "
                "last_name = '' WHERE lead_id = %s",
                [lead_id],
            )
        writer.insert(RecordingLogDeletionQueue, [r for r in rows if r["recording_id"] not in already])
        if not writer.connection.get_autocommit():
            writer.connection.commit()
    return {"lead_purged": lead_id, "recordings_queued": len(rows)}
