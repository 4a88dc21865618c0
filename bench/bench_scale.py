"""Benchmark: the catalog at scale, 1,000,000 → 10,000,000 rows, on MariaDB and on PostgreSQL.

For each database and each size (the same database grows from one size to the next), it measures:
  sync      100,000 new recording_log rows from a VICIdial database on MariaDB        goal < 60 s
  retention a run with 10,000 recordings due                                        goal < 10 s
            a run with nothing due                                                  goal < 1 s
  snapshot  the daily statistics snapshot: the first (full) one and the next day's   goal < 60 s (incremental)
  status    pipeline_status                                                         goal < 2 s
  admin     changelist, phone search, held filter, hold and case pages, dashboard   goal < 1 s each
and the peak RSS of each stage, each run in a fresh process (goal: flat from the smallest to the largest size).

The loader generates the rows in the database itself (MariaDB: INSERT … SELECT from the Sequence engine's
seq_A_to_B table; PostgreSQL: INSERT … SELECT from generate_series) with the secondary indexes dropped and
rebuilt afterwards, so 10M rows load in minutes. Recording ids count down from the largest size: the first
size loads the newest calls (one every 9 s: ~9,600 a day) and each next size adds older history below them.
State by age: the newest few hundred captured / missing / failed (a few needing a person), the last ~3.5 days
archived, older ones cleared (2 % already expired), with object keys, hashes and sizes. 20 campaigns keep
recordings 10 years (campaign C0 is under a legal hold); a 21st keeps them 30 days and owns the 10,000 oldest
rows of each load, which is what retention finds due.

Every database it creates is named vicirec_scale_* (or VICIREC_BENCH_SCALE_PREFIX_*) and dropped at the end
(--keep leaves them for --reuse).
Usage: .venv/bin/python bench/bench_scale.py [--rows 1000000,10000000] [--databases mariadb,postgres]
       [--stages load,prepare_sync,sync,retention] [--base PATH-OF-ANOTHER-CHECKOUT]
(--base: that checkout's sync and retention run too, each right before this tree's, with rows of their own.)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _setup import peak_rss_mb, server_cpu_seconds

NOW = datetime(2026, 11, 20, tzinfo=UTC)
END = NOW - timedelta(days=1)  # the newest cataloged call
STEP_S = 9  # seconds between two calls
CAMPAIGNS = 20
DUE = 10_000
SYNC_ROWS = int(os.environ.get("VICIREC_BENCH_SYNC_ROWS", "100000"))  # smaller only to try the script out
MARIADB = "mysql://root@127.0.0.1:3306"
POSTGRES = "postgres://postgres@127.0.0.1:5432"
# Database names start with this (a shared server: give each engineer's run its own prefix).
PREFIX = os.environ.get("VICIREC_BENCH_SCALE_PREFIX", "vicirec_scale")


def names(db: str) -> tuple[str, str]:
    """(vicirec's own database, the VICIdial database) for a database kind."""
    tag = {"mariadb": "m", "postgres": "pg"}[db]
    return f"{PREFIX}_own_{tag}", f"{PREFIX}_vd_{tag}"


def create_databases(db: str) -> None:
    import MySQLdb

    own, vicidial = names(db)
    admin = MySQLdb.connect(host="127.0.0.1", port=3306, user="root")
    with admin.cursor() as cursor:
        for name in [vicidial] + ([own] if db == "mariadb" else []):
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
            cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    admin.close()
    if db == "postgres":
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres")
        conn.autocommit = True
        with conn.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{own}"')
            cursor.execute(f'CREATE DATABASE "{own}"')
        conn.close()


def drop_databases(db: str) -> None:
    import MySQLdb

    own, vicidial = names(db)
    admin = MySQLdb.connect(host="127.0.0.1", port=3306, user="root")
    with admin.cursor() as cursor:
        for name in [vicidial] + ([own] if db == "mariadb" else []):
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
    admin.close()
    if db == "postgres":
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres")
        conn.autocommit = True
        with conn.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{own}" WITH (FORCE)')
        conn.close()


def django_for(db: str) -> Path:
    own, vicidial = names(db)
    home = Path(tempfile.mkdtemp(prefix="vicirec-bench-scale-"))
    (home / "spool").mkdir()
    os.environ.update(
        VICIREC_HOME=str(home),
        VICIDIAL_DATABASE_URL=f"{MARIADB}/{vicidial}",
        VICIREC_DATABASE_URL=f"{MARIADB if db == 'mariadb' else POSTGRES}/{own}",
        VICIREC_SPOOL_DIRS=str(home / "spool"),
        VICIREC_LOG_LEVEL="WARNING",
        VICIREC_ALLOWED_HOSTS="testserver",
        VICIREC_DEMO_NO_2FA="1",  # the test client signs in without an authenticator code
        DJANGO_SETTINGS_MODULE="vicirec.settings",
    )
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    return home


# --- the loader ------------------------------------------------------------------------------------------


def _row_sql(db: str, lo: int, hi: int, top: int, campaign_pk: dict[int, int], short_pk: int, due_below: int) -> str:
    """INSERT … SELECT of recordings lo..hi (ids count down from ``top``, the newest call at END); those
    below ``due_below`` belong to the short-retention campaign."""
    end = END.strftime("%Y-%m-%d %H:%M:%S")
    if db == "mariadb":
        n, src = "s.seq", f"seq_{lo}_to_{hi} s"
        t = f"TIMESTAMPADD(SECOND, -(({top} - {n}) * {STEP_S}), '{end}')"

        def after(expr: str, seconds: int) -> str:
            return f"TIMESTAMPADD(SECOND, {seconds}, {expr})"

        def cat(*parts: str) -> str:
            return f"CONCAT({', '.join(parts)})"

        def txt(expr: str) -> str:
            return f"CAST({expr} AS CHAR)"

        day = f"DATE_FORMAT({t}, '%Y%m%d')"
    else:
        n, src = "s.n", f"generate_series({lo}, {hi}) AS s(n)"
        t = f"(timestamptz '{end}+00' - ({top} - {n}) * {STEP_S} * interval '1 second')"

        def after(expr: str, seconds: int) -> str:
            return f"({expr} + interval '{seconds} seconds')"

        def cat(*parts: str) -> str:
            return "(" + " || ".join(parts) + ")"

        def txt(expr: str) -> str:
            return f"({expr})::text"

        day = f"to_char({t}, 'YYYYMMDD')"
    age = f"({top} - {n})"
    state = (
        f"CASE WHEN {age} < 200 THEN 'captured' WHEN {age} < 250 THEN 'missing' WHEN {age} < 270 THEN 'failed'"
        f" WHEN {age} < 33000 THEN 'archived' WHEN {n} % 50 = 0 THEN 'expired' ELSE 'cleared' END"
    )
    stored = f"{age} >= 270"
    campaign = "CASE " + " ".join(f"WHEN {n} % {CAMPAIGNS} = {i} THEN {pk}" for i, pk in campaign_pk.items()) + " END"
    campaign = f"CASE WHEN {n} < {due_below} THEN {short_pk} ELSE {campaign} END"
    empty_list, empty_dict = ("'[]'", "'{}'") if db == "mariadb" else ("'[]'::jsonb", "'{}'::jsonb")
    filename = cat(day, "'-120000_312'", txt(n))
    local_path = cat(filename, "'-all.wav'")
    original_sha = cat(f"md5({txt(n)})", f"md5({txt(n + ' + 1')})")
    stored_sha = cat(f"md5({txt(n + ' + 2')})", f"md5({txt(n + ' + 3')})")
    object_key = cat("'C'", txt(f"{n} % {CAMPAIGNS}"), "'/'", day, "'/'", txt(n), "'.mp3'")
    columns = {
        "recording_id": n,
        "filename": filename,
        "server_ip": cat("'10.0.0.'", txt(f"11 + {n} % 3")),
        "channel": "''",
        "extension": "''",
        "vicidial_location": "''",
        "vicidial_id": txt(n),
        "start_time": t,
        "length_in_sec": f"30 + {n} % 300",
        "lead_id": n,
        "phone_number": cat("'312'", txt(f"{n} % 9000000 + 1000000")),
        "agent": cat("'10'", txt(f"10 + {n} % 50")),
        "direction": "'outbound'",
        "campaign_id": campaign,
        "state": state,
        "state_changed_at": t,
        "cataloged_at": t,
        "error": f"CASE WHEN {age} >= 250 AND {age} < 255 THEN 'needs a person: bench'"
        f" WHEN {age} >= 250 AND {age} < 270 THEN 'timeout' ELSE '' END",
        "needs_person": f"{age} >= 250 AND {age} < 255",
        "attempts": f"CASE WHEN {age} >= 250 AND {age} < 270 THEN 1 ELSE 0 END",
        "next_attempt_at": f"CASE WHEN {age} >= 250 AND {age} < 270 THEN {after(t, 3600)} END",
        "claimed_by": "''",
        "local_path": f"CASE WHEN {age} < 33000 THEN {local_path} ELSE '' END",
        "local_copies": empty_list,
        "original_sha256": f"CASE WHEN {stored} THEN {original_sha} ELSE '' END",
        "original_size": f"960000 + {n} % 1000",
        "encoder": empty_dict,
        "object_key": f"CASE WHEN {stored} THEN {object_key} ELSE '' END",
        "stored_sha256": f"CASE WHEN {stored} THEN {stored_sha} ELSE '' END",
        "stored_size": f"CASE WHEN {stored} THEN 240000 + {n} % 1000 END",
        "version_id": "''",
        "uploaded_at": f"CASE WHEN {stored} THEN {after(t, 3600)} END",
        "verified_at": f"CASE WHEN {stored} THEN {after(t, 3600)} END",
        "verify_method": f"CASE WHEN {stored} THEN 'sha256' ELSE '' END",
        "storage_class": "''",
        "local_cleared_at": f"CASE WHEN {age} >= 33000 THEN {after(t, 4 * 86400)} END",
        "expired_at": f"CASE WHEN {age} >= 33000 AND {n} % 50 = 0 THEN {after(t, 400 * 86400)} END",
    }
    return f"INSERT INTO recordings_recording ({', '.join(columns)}) SELECT {', '.join(columns.values())} FROM {src}"


def _secondary_indexes(cursor, vendor: str) -> list[str]:  # type: ignore[no-untyped-def]
    """Drop the catalog's secondary indexes; returns the statements that rebuild them."""
    if vendor == "postgresql":
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'recordings_recording'"
            " AND indexname <> 'recordings_recording_pkey'"
        )
        found = cursor.fetchall()
        for name, _ in found:
            cursor.execute(f'DROP INDEX "{name}"')
        return [definition for _, definition in found]
    cursor.execute(
        "SELECT index_name, GROUP_CONCAT(column_name ORDER BY seq_in_index) FROM information_schema.statistics"
        " WHERE table_schema = DATABASE() AND table_name = 'recordings_recording' AND index_name <> 'PRIMARY'"
        " GROUP BY index_name"
    )
    found = [(name, cols) for name, cols in cursor.fetchall() if cols != "campaign_id"]  # the FK keeps its own
    if found:
        cursor.execute("ALTER TABLE recordings_recording " + ", ".join(f"DROP INDEX `{name}`" for name, _ in found))
    adds = ", ".join(f"ADD INDEX `{name}` ({', '.join(f'`{c}`' for c in cols.split(','))})" for name, cols in found)
    return [f"ALTER TABLE recordings_recording {adds}"] if found else []


def load(db: str, size: int, top: int) -> dict:
    """Grow the catalog to ``size`` rows (ids top-size+1 .. top); the first call also sets up the campaigns."""
    from django.db import connection

    from holds.actions import place_hold
    from holds.models import Case
    from recordings.demo.vicidial_schema import VicidialWriter
    from recordings.models import Campaign, Recording
    from recordings.vicidial import VicidialCampaign
    from tests.factories import make_policy
    from vicirec.actors import Actor

    if not Campaign.objects.exists():
        campaigns = [
            Campaign.objects.create(kind="outbound", campaign_id=f"C{i}", name=f"Campaign {i}")
            for i in range(CAMPAIGNS)
        ]
        short = Campaign.objects.create(kind="outbound", campaign_id="CSHORT", name="Short retention")
        for c in campaigns:
            make_policy(campaign=c, keep_local_days=3, retain_days=3650, codec="none")
        make_policy(campaign=short, keep_local_days=3, retain_days=30, codec="none")
        place_hold(reason="bench: campaign under litigation", actor=Actor.command("bench"), campaign=campaigns[0])
        case = Case.objects.create(name="bench case", phone_numbers=[f"312{(top - 50_000) % 9_000_000 + 1_000_000}"])
        place_hold(reason="bench: case", actor=Actor.command("bench"), case=case)
        with VicidialWriter() as writer:
            writer.create_tables()
            writer.insert(
                VicidialCampaign,
                [{"campaign_id": c.campaign_id, "campaign_name": c.name, "active": "Y"} for c in [*campaigns, short]],
            )
    campaign_pk = {i: Campaign.objects.get(campaign_id=f"C{i}").pk for i in range(CAMPAIGNS)}
    short_pk = Campaign.objects.get(campaign_id="CSHORT").pk
    present = Recording.objects.filter(recording_id__lte=top).count()
    lo, hi = top - size + 1, top - present
    t0 = time.perf_counter()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET maintenance_work_mem = '512MB'")
        else:
            cursor.execute("SET SESSION unique_checks = 0, foreign_key_checks = 0")
        rebuild = _secondary_indexes(cursor, connection.vendor)
        chunk = 1_000_000
        for start in range(lo, hi + 1, chunk):
            end = min(start + chunk - 1, hi)
            cursor.execute(_row_sql(db, start, end, top, campaign_pk, short_pk, lo + DUE))
            connection.commit() if not connection.get_autocommit() else None
            print(f"  loaded {end - lo + 1:,} of {hi - lo + 1:,} rows", file=sys.stderr, flush=True)
        inserted_s = time.perf_counter() - t0
        for statement in rebuild:
            cursor.execute(statement)
        cursor.execute(  # PostgreSQL: also the visibility map autovacuum keeps, for index-only scans
            "VACUUM ANALYZE recordings_recording"
            if connection.vendor == "postgresql"
            else "ANALYZE TABLE recordings_recording"
        )
        if connection.vendor != "postgresql":
            cursor.fetchall()
    return {
        "rows_loaded": hi - lo + 1,
        "insert_s": round(inserted_s, 1),
        "load_s": round(time.perf_counter() - t0, 1),
        "catalog_rows": Recording.objects.count(),
    }


def table_size_mb(db: str) -> float:
    from django.db import connection

    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_total_relation_size('recordings_recording')")
            return round(cursor.fetchone()[0] / 2**20)
        cursor.execute(
            "SELECT data_length + index_length FROM information_schema.tables"
            " WHERE table_schema = DATABASE() AND table_name = 'recordings_recording'"
        )
        return round(cursor.fetchone()[0] / 2**20)


# --- the stages ------------------------------------------------------------------------------------------


def prepare_sync(batch: int, top: int) -> dict:
    """Write SYNC_ROWS new recording_log rows (with their calls and leads) above everything cataloged."""
    from recordings.demo.vicidial_schema import VicidialWriter
    from recordings.vicidial import RecordingLog, VicidialLead, VicidialLog

    base = top + 1 + batch * SYNC_ROWS
    t0 = time.perf_counter()
    with VicidialWriter() as writer:
        for offset in range(0, SYNC_ROWS, 20_000):
            leads, calls, recs = [], [], []
            for k in range(offset, min(offset + 20_000, SYNC_ROWS)):
                rid = base + k
                start = NOW - timedelta(seconds=SYNC_ROWS - k)
                epoch, phone = int(start.timestamp()), f"312{rid % 9_000_000 + 1_000_000}"
                vid = f"{epoch}.{rid}"
                leads.append({"lead_id": rid, "phone_number": phone, "list_id": 101})
                calls.append(
                    {"uniqueid": vid, "lead_id": rid, "call_date": start, "start_epoch": epoch,
                     "phone_number": phone, "user": "1001", "campaign_id": f"C{rid % CAMPAIGNS}"}
                )  # fmt: skip
                recs.append(
                    {"recording_id": rid, "server_ip": f"10.0.0.{11 + rid % 3}", "start_time": start,
                     "start_epoch": epoch, "end_time": start + timedelta(seconds=60), "end_epoch": epoch + 60,
                     "length_in_sec": 60, "filename": f"{start:%Y%m%d-%H%M%S}_{phone}", "lead_id": rid,
                     "user": "1001", "vicidial_id": vid}
                )  # fmt: skip
            writer.insert(VicidialLead, leads)
            writer.insert(VicidialLog, calls)
            writer.insert(RecordingLog, recs)
    return {"prepare_s": round(time.perf_counter() - t0, 1)}


def sync(home: Path) -> dict:
    from recordings.models import Recording
    from recordings.pipeline.catalog import sync_recordings

    before = Recording.objects.order_by().count()
    s0 = server_cpu_seconds()
    t0, c0 = time.perf_counter(), time.process_time()
    report = sync_recordings(now=NOW, node="", spools=[home / "spool"])
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    server = None if s0 is None else server_cpu_seconds() - s0
    assert report.recordings_added == SYNC_ROWS, report
    return {
        "sync_100k_s": round(elapsed, 2),
        "sync_cpu_ms_per_row": round(1e3 * cpu / SYNC_ROWS, 3),
        "sync_server_cpu_ms_per_row": None if server is None else round(1e3 * server / SYNC_ROWS, 3),
        "catalog_rows_before": before,
        "batches": report.batches,
        "load": round(os.getloadavg()[0], 1),
    }


def retention(top: int, size: int, part: int = 0) -> dict:
    """A run with DUE recordings due, then one with nothing due. The due set is the ``part``-th DUE rows
    of the last load, oldest first (part 0: the rows the loader gave the 30-day campaign; a later part, for
    a second measurement, is moved to it), copies present."""
    from django.db import connection

    from recordings.models import Campaign
    from recordings.pipeline.retention import enforce_retention

    short_pk = Campaign.objects.get(campaign_id="CSHORT").pk
    lo = top - size + 1 + part * DUE
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE recordings_recording SET state = 'cleared', expired_at = NULL, claimed_by = '',"
            " claimed_until = NULL, start_time = %s, campaign_id = %s WHERE recording_id BETWEEN %s AND %s",
            [NOW - timedelta(days=60), short_pk, lo, lo + DUE - 1],
        )
    s0 = server_cpu_seconds()
    t0, c0 = time.perf_counter(), time.process_time()
    due = enforce_retention(now=NOW, dry_run=False, confirm=True)  # the safety stop's counts are still taken
    due_s, cpu = time.perf_counter() - t0, time.process_time() - c0
    server = None if s0 is None else server_cpu_seconds() - s0
    assert due.deleted == DUE, due
    t0 = time.perf_counter()
    none = enforce_retention(now=NOW, dry_run=False, confirm=True)
    none_s = time.perf_counter() - t0
    assert none.deleted == 0, none
    return {
        "retention_10k_due_s": round(due_s, 2),
        "retention_cpu_ms_per_row": round(1e3 * cpu / DUE, 3),
        "retention_server_cpu_ms_per_row": None if server is None else round(1e3 * server / DUE, 3),
        "retention_nothing_due_s": round(none_s, 3),
        "load": round(os.getloadavg()[0], 1),
    }


def snapshot(when: datetime, key: str) -> dict:
    from recordings.ops.stats import take_snapshot

    t0 = time.perf_counter()
    take_snapshot(now=when)
    return {key: round(time.perf_counter() - t0, 2)}


def status() -> dict:
    from recordings.ops.status import pipeline_status

    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        pipeline_status(now=NOW)
        times.append(time.perf_counter() - t0)
    return {"pipeline_status_s": round(max(times), 3), "pipeline_status_first_s": round(times[0], 3)}


def admin_pages(top: int, repeat: int = 3) -> dict:
    from django.contrib.auth import get_user_model
    from django.test import Client

    from holds.models import Case, LegalHold

    user_model = get_user_model()
    user = user_model.objects.filter(username="bench").first()
    user = user or user_model.objects.create_superuser("bench", password="bench-password-1")
    client = Client()
    client.force_login(user)
    rid = top - 50_000
    phone = f"312{rid % 9_000_000 + 1_000_000}"
    campaign_hold = LegalHold.objects.filter(campaign__isnull=False).first()
    case = Case.objects.first()  # its phone number is the one searched
    pages = {
        "changelist": "/admin/recordings/recording/",
        "phone_search": f"/admin/recordings/recording/?q={phone}",
        "held_filter": "/admin/recordings/recording/?held=yes",
        "recording": f"/admin/recordings/recording/{rid}/change/",
        "hold_page": f"/admin/holds/legalhold/{campaign_hold.pk}/change/",
        "case_page": f"/admin/holds/case/{case.pk}/change/",
        "dashboard": "/admin/?refresh=1",
    }
    result = {}
    for name, url in pages.items():
        times = []
        for _ in range(repeat + 1):
            t0 = time.perf_counter()
            response = client.get(url)
            times.append(time.perf_counter() - t0)
            assert response.status_code == 200, (url, response.status_code)
        result[name] = round(statistics.median(times[1:]), 3)
    result["worst_page_s"] = max(result.values())
    return result


STAGES = ("load", "snapshot_full", "prepare_sync", "sync", "retention", "snapshot_next_day", "status", "admin")


def child(args: argparse.Namespace) -> None:
    if args.code:  # measure another checkout's stages (--base)
        sys.path.insert(0, args.code)
    home = django_for(args.db)
    if args.code:
        import recordings

        assert Path(recordings.__file__).resolve().parents[1] == Path(args.code).resolve(), recordings.__file__
    stage, size, top = args.child, args.size, args.top
    if stage == "load":
        out = load(args.db, size, top)
        out["table_mb"] = table_size_mb(args.db)
    elif stage == "snapshot_full":
        from recordings.ops.stats import take_snapshot

        t0 = time.perf_counter()
        take_snapshot(now=NOW - timedelta(days=1), full=True)
        out = {"snapshot_first_full_s": round(time.perf_counter() - t0, 2)}
    elif stage == "prepare_sync":
        out = prepare_sync(args.batch, top)
    elif stage == "sync":
        out = sync(home)
    elif stage == "retention":
        out = retention(top, size, args.batch)
    elif stage == "snapshot_next_day":
        out = snapshot(NOW, "snapshot_incremental_s")
    elif stage == "status":
        out = status()
    else:
        out = admin_pages(top)
    out["peak_rss_mb"] = round(peak_rss_mb(), 1)
    print(json.dumps(out))


GOALS = {
    "sync_100k_s": 60,
    "retention_10k_due_s": 10,
    "retention_nothing_due_s": 1,
    "snapshot_incremental_s": 60,
    "pipeline_status_s": 2,
    "worst_page_s": 1,
}


def run_stage(
    step: str, db: str, size: int, top: int, figures: dict, counters: dict[str, int], code: str | None = None
) -> None:
    """Run one stage in a fresh process and add its figures (a --base run's under base_*)."""
    batch = counters.get(step, 0)
    command = [sys.executable, __file__, "--child", step, "--db", db, "--size", str(size)]
    command += ["--top", str(top), "--batch", str(batch)] + (["--code", code] if code else [])
    t0 = time.perf_counter()
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)
    if done.returncode:
        sys.exit(f"{db} {size:,} {step} failed (exit {done.returncode}): {done.stdout[-2000:]}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    if step in counters:
        counters[step] += 1
    rss = out.pop("peak_rss_mb")
    if code:
        out = {f"base_{key}": value for key, value in out.items()}
    else:
        figures.setdefault("peak_rss_mb", {})[step] = rss
    figures.update(out)
    print(
        f"{db} {size:,} {step}{' (base)' if code else ''} ({time.perf_counter() - t0:.0f} s): {out}",
        file=sys.stderr,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="1000000,10000000", help="catalog sizes, ascending, comma-separated")
    parser.add_argument("--databases", default="mariadb,postgres")
    parser.add_argument("--keep", action="store_true", help="leave the vicirec_scale_* databases in place")
    parser.add_argument("--json", action="store_true", help="accepted for bench/run.py; JSON is always printed")
    parser.add_argument("--child", choices=STAGES, help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--top", type=int, help=argparse.SUPPRESS)
    parser.add_argument(
        "--stages", default=",".join(STAGES), help=f"the stages to run, in this order: {', '.join(STAGES)}"
    )
    parser.add_argument(
        "--base",
        help="another checkout of vicirec (git archive COMMIT | tar -x -C PATH): its sync and retention are "
        "measured too, right before this tree's, on the same catalog",
    )
    parser.add_argument("--batch", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--code", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    sizes = sorted(int(s) for s in args.rows.split(","))
    top = sizes[-1]
    databases = [d.strip() for d in args.databases.split(",") if d.strip()]
    stages = [stage for stage in STAGES if stage in args.stages.split(",")]
    results: dict[str, dict[str, dict]] = {}
    for db in databases:
        create_databases(db)
        results[db] = {}
        counters = {"prepare_sync": 0, "retention": 0}  # each sync's rows and each retention's due set are its own

        try:
            for size in sizes:
                figures: dict = {}
                for stage in stages:
                    if stage == "prepare_sync" and "sync" in stages:
                        continue  # written right before each sync
                    for code in ([args.base] if args.base and stage in ("sync", "retention") else []) + [None]:
                        if stage == "sync" and "prepare_sync" in stages:
                            run_stage("prepare_sync", db, size, top, figures, counters)
                        run_stage(stage, db, size, top, figures, counters, code)
                results[db][str(size)] = figures
        finally:
            if not args.keep:
                drop_databases(db)
    summary = {"sizes": sizes, "results": results, "goals_s": GOALS}
    summary["goal_met"] = all(
        figures.get(key, 0) < goal for per_db in results.values() for figures in per_db.values()
        for key, goal in GOALS.items()
    )  # fmt: skip
    print(json.dumps(summary))
    print_table(sizes, results)


def print_table(sizes: list[int], results: dict[str, dict[str, dict]]) -> None:
    rows = [
        ("load (generate + index)", "load_s", None),
        ("table + indexes, MB", "table_mb", None),
        ("sync 100,000 new rows", "sync_100k_s", 60),
        ("  --base tree", "base_sync_100k_s", None),
        ("  CPU ms per row", "sync_cpu_ms_per_row", None),
        ("  --base tree", "base_sync_cpu_ms_per_row", None),
        ("retention, 10,000 due", "retention_10k_due_s", 10),
        ("  --base tree", "base_retention_10k_due_s", None),
        ("  CPU ms per row", "retention_cpu_ms_per_row", None),
        ("  --base tree", "base_retention_cpu_ms_per_row", None),
        ("server CPU ms/row: sync", "sync_server_cpu_ms_per_row", None),
        ("  --base tree", "base_sync_server_cpu_ms_per_row", None),
        ("  retention", "retention_server_cpu_ms_per_row", None),
        ("  --base tree", "base_retention_server_cpu_ms_per_row", None),
        ("retention, nothing due", "retention_nothing_due_s", 1),
        ("snapshot, first (full)", "snapshot_first_full_s", None),
        ("snapshot, next day", "snapshot_incremental_s", 60),
        ("pipeline_status", "pipeline_status_s", 2),
        ("admin changelist", "changelist", 1),
        ("admin phone search", "phone_search", 1),
        ("admin held filter", "held_filter", 1),
        ("admin recording page", "recording", 1),
        ("admin hold page", "hold_page", 1),
        ("admin case page", "case_page", 1),
        ("admin dashboard", "dashboard", 1),
    ]
    header = "".join(
        f"{db + ' ' + (f'{size / 1e6:g}M' if size >= 1e6 else f'{size:,}'):>15}" for db in results for size in sizes
    )
    print(f"{'seconds':<26}{header}", file=sys.stderr)
    for label, key, goal in rows:
        values = [results[db].get(str(size), {}).get(key) for db in results for size in sizes]
        cells = "".join(f"{'' if v is None else v:>15}" for v in values)  # None: not measurable on this database
        print(f"{label:<26}{cells}" + (f"   goal < {goal}" if goal else ""), file=sys.stderr)
    for stage in STAGES:
        cells = "".join(
            f"{results[db].get(str(size), {}).get('peak_rss_mb', {}).get(stage, ''):>15}"
            for db in results
            for size in sizes
        )
        print(f"{'peak RSS MB, ' + stage:<26}{cells}", file=sys.stderr)


if __name__ == "__main__":
    main()
