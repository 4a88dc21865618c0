"""Benchmark: the compliance desk's pages at N catalog rows on MariaDB (default 1,000,000): the recordings
changelist, phone and agent-name searches, the held / by-hold / overdue / date-range filters, a hold's page
with its recordings (campaign hold and case hold), the campaign page, the first chunk of a CSV export,
playback with a Range request (206), a VICIdial link to a deleted recording (410) and the dashboard; then
placing and releasing holds from the desk (a hand-picked selection through the list's action, a case and a
campaign from their pages, each released from the hold's page).
Goal: under 300 ms server time per page. Also timed: the statistics snapshot that
computes the dashboard's table-wide totals (run by the central worker, not by a page view).

Baseline, in the same process: the raw indexed SELECT of the same page (the floor any page pays), and for
the agent searches and the held filter the plain conditions the desk's lookups replace, interleaved.
Usage: .venv/bin/python bench/bench_admin.py [--rows 1000000] [--repeat 5] [--reuse]
(--reuse keeps the catalog a previous run loaded into VICIREC_BENCH_ADMIN_DB, if it has --rows rows)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import UTC, datetime

from _setup import django_on_mariadb, peak_rss_mb

NOW = datetime(2026, 11, 20, tzinfo=UTC)
# Database names: VICIREC_BENCH_ADMIN_DB sets another (two runs on one MariaDB server must not share one).
BENCH_DB = os.environ.get("VICIREC_BENCH_ADMIN_DB", "vicirec_bench_admin")
OWN_DB = f"mysql://root@127.0.0.1:3306/{BENCH_DB}"
GOAL_S = 0.3  # server time per page (the test client calls the view in process: no network, no browser)


def populate(rows: int) -> None:
    """``rows`` recordings (ids 1..rows, one call every 30 s back from NOW, 20 campaigns, 50 agents), made by
    the database itself (INSERT … SELECT from MariaDB's Sequence engine: a minute instead of an hour of
    bulk_create at 1,000,000 rows), then the deleted and the played recording."""
    from django.db import connection

    from recordings.models import Agent, Campaign

    campaigns = [Campaign.objects.create(kind="outbound", campaign_id=f"C{n}", name=f"Campaign {n}") for n in range(20)]
    Agent.objects.bulk_create([Agent(user=f"10{n:02d}", full_name=f"Agent Name{n:02d}") for n in range(50)])
    campaign = "CASE " + " ".join(f"WHEN s.seq % 20 = {i} THEN {c.pk}" for i, c in enumerate(campaigns)) + " END"
    now = NOW.strftime("%Y-%m-%d %H:%M:%S")
    columns = {
        "recording_id": "s.seq + 1",
        "filename": "CONCAT('20250101-000000_', s.seq)",
        "server_ip": "CONCAT('10.0.0.', 11 + s.seq % 3)",
        "channel": "''",
        "extension": "''",
        "vicidial_location": "''",
        "vicidial_id": "''",
        "start_time": f"TIMESTAMPADD(SECOND, -30 * CAST(s.seq AS SIGNED), '{now}')",
        "length_in_sec": "60",
        "lead_id": "s.seq + 1",
        "phone_number": "CONCAT('312', LPAD(s.seq % 9000000 + 1000000, 7, '0'))",
        "agent": "CONCAT('10', LPAD(s.seq % 50, 2, '0'))",
        "direction": "'unknown'",
        "campaign_id": campaign,
        "state": "'cleared'",
        "state_changed_at": f"'{now}'",
        "cataloged_at": f"'{now}'",
        "error": "''",
        "needs_person": "0",
        "attempts": "0",
        "claimed_by": "''",
        "local_path": "''",
        "local_copies": "'[]'",
        "original_sha256": "''",
        "original_size": "1000000",
        "encoder": "'{}'",
        "object_key": "CONCAT('C', s.seq % 20, '/k', s.seq, '.mp3')",
        "stored_sha256": "''",
        "stored_size": "200000",
        "version_id": "''",
        "verify_method": "''",
        "storage_class": "''",
    }
    with connection.cursor() as cursor:
        for start in range(0, rows, 250_000):
            end = min(start + 250_000, rows) - 1
            cursor.execute(
                f"INSERT INTO recordings_recording ({', '.join(columns)}) "
                f"SELECT {', '.join(columns.values())} FROM seq_{start}_to_{end} s"
            )
        cursor.execute("ANALYZE TABLE recordings_recording")
        cursor.fetchall()
    deleted_and_played(rows)


def loaded_rows() -> int:
    """How many recordings the bench database already holds (0 when there is none)."""
    import MySQLdb

    try:
        conn = MySQLdb.connect(host="127.0.0.1", port=3306, user="root", database=BENCH_DB)
    except MySQLdb.OperationalError:
        return 0
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT COUNT(*) FROM recordings_recording")
            return int(cursor.fetchone()[0])
    except MySQLdb.ProgrammingError:
        return 0
    finally:
        conn.close()


def deleted_and_played(rows: int) -> None:
    """Recording rows//3 deleted under retention with its certificate; rows//2 has its archived file."""
    from django.conf import settings

    from recordings.models import Recording
    from retention.models import DeletionCertificate

    gone = rows // 3
    if not DeletionCertificate.objects.filter(recording_id=gone).exists():
        DeletionCertificate.objects.create(
            recording_id=gone,
            deleted_at=NOW,
            run="bench",
            call={},
            object_key=f"C{(gone - 1) % 20}/k{gone - 1}.mp3",
            cloud_deleted=True,
            local_deleted=False,
            policy={"retain_days": 30},
            hold_check={"held": False},
        )
    played = Recording.objects.get(pk=rows // 2)
    path = settings.VICIREC_ARCHIVE_DIR / played.object_key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(os.urandom(200_000))


def place_holds(phone: str) -> tuple[int, int]:
    """A hold on a whole campaign (50,000 recordings at 1,000,000 rows) and one on a case of one phone number."""
    from holds.actions import place_hold
    from holds.models import Case, LegalHold
    from recordings.models import Campaign
    from vicirec.actors import Actor

    placed = LegalHold.objects.active().filter(reason__in=["bench", "bench case"]).order_by("pk")
    if placed.count() == 2:  # a reused catalog keeps the holds of the run that loaded it
        return placed[0].pk, placed[1].pk
    campaign_hold = place_hold(
        reason="bench", actor=Actor.command("bench"), campaign=Campaign.objects.get(campaign_id="C0")
    )
    case = Case.objects.create(name="bench case", phone_numbers=[phone])
    case_hold = place_hold(reason="bench case", actor=Actor.command("bench"), case=case)
    return campaign_hold.pk, case_hold.pk


def timed_csv(client, url: str, repeat: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """A CSV export of a search: until its first chunk (the access log is written before it)."""
    times = []
    for _ in range(repeat + 1):
        t0 = time.perf_counter()
        response = client.post(url)
        next(iter(response.streaming_content))
        times.append(time.perf_counter() - t0)
        assert response.status_code == 200, (url, response.status_code)
    return {"median_s": round(statistics.median(times[1:]), 3), "max_s": round(max(times[1:]), 3)}


def timed(client, url: str, repeat: int, status: int = 200, **headers: str) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """Server time of a page (a streamed answer read to its end), best of `repeat` after one warm-up."""
    times = []
    for _ in range(repeat + 1):
        t0 = time.perf_counter()
        response = client.get(url, headers=headers)
        if response.streaming:
            b"".join(response.streaming_content)
        times.append(time.perf_counter() - t0)
        assert response.status_code == status, (url, response.status_code)
    return {"median_s": round(statistics.median(times[1:]), 3), "max_s": round(max(times[1:]), 3)}


def desk_pages(rows: int, phone: str, campaign_hold: int, case_hold: int) -> dict[str, str]:
    """The pages timed, by name."""
    from recordings.models import Campaign

    campaign_pk = Campaign.objects.get(campaign_id="C5").pk
    deep = max(1, min(100, rows // 2500 - 1))  # page 100 of 50 rows at 1,000,000 (an agent has 20,000 calls)
    return {
        "changelist": "/admin/recordings/recording/",
        "changelist_page_50": "/admin/recordings/recording/?p=50",
        "phone_search": f"/admin/recordings/recording/?q={phone}",
        "phone_search_written": f"/admin/recordings/recording/?q=({phone[:3]})+{phone[3:6]}-{phone[6:]}",
        "agent_name_search": "/admin/recordings/recording/?q=Agent+Name07",
        "agent_name_search_deep_page": f"/admin/recordings/recording/?q=Agent+Name07&p={deep}",
        "agent_user_id_search": "/admin/recordings/recording/?q=1007",  # also a recording id and a lead id
        "agent_prefix_search": "/admin/recordings/recording/?q=agent:Agent+Name0",  # 10 agents
        "held_filter": "/admin/recordings/recording/?held=yes",
        "held_filter_deep_page": f"/admin/recordings/recording/?held=yes&p={deep}",
        "not_held_filter": "/admin/recordings/recording/?held=no",
        "by_hold_filter_campaign": f"/admin/recordings/recording/?hold={campaign_hold}",
        "by_hold_filter_case": f"/admin/recordings/recording/?hold={case_hold}",
        "overdue_filter": "/admin/recordings/recording/?expires=overdue&held=no",
        "expiring_30_filter": "/admin/recordings/recording/?expires=30",
        "campaign_filter": f"/admin/recordings/recording/?campaign__id__exact={campaign_pk}",
        "recording_detail": f"/admin/recordings/recording/{rows // 2}/change/",
        "hold_page_campaign": f"/admin/holds/legalhold/{campaign_hold}/change/",
        "hold_page_campaign_p20": f"/admin/holds/legalhold/{campaign_hold}/change/?rp=20",
        "hold_page_case": f"/admin/holds/legalhold/{case_hold}/change/",
        "campaign_page": f"/admin/recordings/campaign/{campaign_pk}/change/",
        "certificates": "/admin/retention/deletioncertificate/",
        "dashboard": "/admin/?refresh=1",
        "date_range_filter": "/admin/recordings/recording/?start_time__from=2026-06-01&start_time__to=2026-06-30",
        "certificates_date_range": "/admin/retention/deletioncertificate/?deleted_at__from=2026-11-01",
    }


def timed_holds(client, rows: int, phone: str, repeat: int) -> dict[str, dict[str, float]]:  # type: ignore[no-untyped-def]
    """Placing a hold from the desk and releasing it from the hold's page, as a person does (POSTs through
    the test client): on 50 recordings picked in the list (its action), on a case (one phone number), on a
    campaign (50,000 recordings at 1,000,000 rows). Each is released again, so runs do not pile holds up."""
    from holds.models import Case, LegalHold
    from recordings.models import Campaign

    case = Case.objects.get_or_create(name="bench desk case", defaults={"phone_numbers": [phone]})[0]
    campaign = Campaign.objects.get(campaign_id="C3")
    picked = [str(pk) for pk in range(rows // 4, rows // 4 + 50)]
    places = {
        "picked_50": ("/admin/recordings/recording/", {
            "action": "place_hold_action", "_selected_action": picked, "apply": "1", "reason": "bench desk",
        }),
        "case": (f"/admin/holds/case/{case.pk}/hold/", {"reason": "bench desk"}),
        "campaign": (f"/admin/recordings/campaign/{campaign.pk}/hold/", {"reason": "bench desk"}),
    }  # fmt: skip
    results: dict[str, dict[str, float]] = {}
    for name, (url, form) in places.items():
        place_times, release_times = [], []
        for _ in range(repeat + 1):
            before = LegalHold.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
            t0 = time.perf_counter()
            response = client.post(url, form)
            place_times.append(time.perf_counter() - t0)
            assert response.status_code == 302, (url, response.status_code)
            hold = LegalHold.objects.get(pk__gt=before, reason="bench desk")
            t0 = time.perf_counter()
            response = client.post(f"/admin/holds/legalhold/{hold.pk}/release/", {"reason": "bench done"})
            release_times.append(time.perf_counter() - t0)
            assert response.status_code == 302 and LegalHold.objects.get(pk=hold.pk).released_at
        for verb, times in (("place", place_times), ("release", release_times)):
            results[f"{verb}_hold_{name}"] = {
                "median_s": round(statistics.median(times[1:]), 3),
                "max_s": round(max(times[1:]), 3),
            }
    return results


def lookups_against_plain(rounds: int) -> dict[str, dict[str, float]]:
    """The list's database work for a search and the held filter, interleaved in this process: the plain
    conditions (ORs across columns and subqueries, counted with the list's computed columns, a page of full
    rows) against the desk's lookups (agent list and ids, held ids and campaigns, keys first). Both must
    give the same count and page."""
    from django.db.models import BooleanField, ExpressionWrapper, Q

    from holds.models import held_condition, held_covered
    from recordings import desk, views
    from recordings.admin import search_condition
    from recordings.models import Agent, Recording
    from vicirec.admin_kit import BoundedPaginator

    def listed():  # type: ignore[no-untyped-def]
        held = ExpressionWrapper(held_condition(), BooleanField())
        recordings = Recording.objects.select_related("campaign").order_by("-recording_id")
        return recordings.annotate(is_held=held, agent_full_name=desk.agent_name())

    def plain(condition: Q, page: int) -> tuple[int, list[int]]:
        found = listed().filter(condition)
        return found[: BoundedPaginator.CAP].count(), [r.pk for r in found[(page - 1) * 50 : page * 50]]

    def lookup(condition: Q, page: int) -> tuple[int, list[int]]:
        paginator = BoundedPaginator(listed().filter(condition), 50)
        return paginator.count, [r.pk for r in paginator.page(page).object_list]

    def plain_search(term: str) -> Q:  # the search before its alternatives were read as ids
        users = list(Agent.objects.filter(full_name__istartswith=term).values_list("user", flat=True)[:100])
        condition = Q(agent=term) | Q(filename__in=views.link_candidates(term))
        if term.isdigit():
            return condition | Q(phone_number__in=[term]) | Q(pk=int(term)) | Q(lead_id=int(term))
        return condition | (Q(agent__in=users) if users else Q(pk__in=[]))

    cases = {
        "agent_name_search": (lambda: plain_search("Agent Name07"), lambda: search_condition("Agent Name07"), 1),
        "agent_user_id_search": (lambda: plain_search("1007"), lambda: search_condition("1007"), 1),
        "held_filter": (held_condition, held_covered, 1),
        "held_filter_page_100": (held_condition, held_covered, 100),
    }
    results = {}
    for name, (old, new, page) in cases.items():
        before, after = [], []
        for n in range(rounds + 1):
            t0 = time.perf_counter()
            a = plain(old(), page)
            t1 = time.perf_counter()
            b = lookup(new(), page)
            t2 = time.perf_counter()
            assert a == b, name
            if n:  # the first round warms both up
                before.append(t1 - t0)
                after.append(t2 - t1)
        results[name] = {
            "plain_s": round(statistics.median(before), 3),
            "lookup_s": round(statistics.median(after), 3),
            "ratio": round(statistics.median(before) / statistics.median(after), 1),
        }
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="accepted for bench/run.py; JSON is always printed")
    parser.add_argument("--reuse", action="store_true", help="keep the catalog of a previous run of --rows rows")
    args = parser.parse_args()
    os.environ["VICIREC_ALLOWED_HOSTS"] = "testserver"  # Django's test client
    os.environ.setdefault("VICIREC_DEMO_NO_2FA", "1")  # the bench superuser signs in with a password only
    reuse = args.reuse and loaded_rows() == args.rows
    django_on_mariadb(f"{BENCH_DB}_vicidial", own_db=OWN_DB, recreate=not reuse)
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client

    if not reuse:
        t0 = time.perf_counter()
        populate(args.rows)
        print(f"populated {args.rows:,} rows in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    else:
        deleted_and_played(args.rows)  # the played file lives in this run's own VICIREC_HOME
    from recordings.ops.stats import take_snapshot

    t0 = time.perf_counter()
    take_snapshot(now=NOW)
    snapshot_s = time.perf_counter() - t0
    if not get_user_model().objects.filter(username="bench").exists():
        get_user_model().objects.create_superuser("bench", password="bench-password-1")
    client = Client()
    client.login(username="bench", password="bench-password-1")
    phone = f"312{(args.rows // 2) % 9_000_000 + 1_000_000:07d}"
    campaign_hold, case_hold = place_holds(phone)
    pages = desk_pages(args.rows, phone, campaign_hold, case_hold)
    results = {name: timed(client, url, args.repeat) for name, url in pages.items()}
    play = f"/admin/recordings/recording/{args.rows // 2}/play/"
    desk_request = {"Range": "bytes=100000-", "Sec-Fetch-Site": "same-origin"}  # playback serves the desk only
    results["play_range_206"] = timed(client, play, args.repeat, 206, **desk_request)
    deleted = f"/RECORDINGS/MP3/20250101-000000_{args.rows // 3 - 1}-all.mp3"
    results["deleted_link_410"] = timed(client, deleted, args.repeat, 410)
    results["csv_export_first_chunk"] = timed_csv(
        client, f"/admin/recordings/recording/export-csv/?q={phone}", args.repeat
    )
    results["csv_export_by_case_hold_first_chunk"] = timed_csv(
        client, f"/admin/recordings/recording/export-csv/?hold={case_hold}", args.repeat
    )
    results.update(timed_holds(client, args.rows, phone, args.repeat))
    against_plain = lookups_against_plain(args.repeat)
    t0 = time.perf_counter()
    with connection.cursor() as cursor:
        for _ in range(args.repeat):
            cursor.execute(
                "SELECT * FROM recordings_recording WHERE phone_number = %s ORDER BY recording_id DESC LIMIT 100",
                [phone],
            )
            cursor.fetchall()
    baseline = (time.perf_counter() - t0) / args.repeat
    summary = {
        "rows": args.rows,
        "pages": results,
        "lookups_against_plain": against_plain,
        "baseline_raw_phone_select_s": round(baseline, 4),
        "snapshot_with_inventory_s": round(snapshot_s, 2),
        "goal_s": GOAL_S,
        "goal_met": all(r["median_s"] < GOAL_S for r in results.values()),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }
    print(json.dumps(summary))
    show(summary)


def show(summary: dict) -> None:  # type: ignore[type-arg]
    for name, r in summary["pages"].items():
        print(f"{name:>36}: median {r['median_s']:.3f} s, max {r['max_s']:.3f} s", file=sys.stderr)
    for name, r in summary["lookups_against_plain"].items():
        print(
            f"{name:>36}: lookups {r['lookup_s']:.3f} s against plain conditions {r['plain_s']:.3f} s "
            f"({r['ratio']:.1f}x; same count and page)",
            file=sys.stderr,
        )
    print(
        f"statistics snapshot (the dashboard's totals): {summary['snapshot_with_inventory_s']:.1f} s", file=sys.stderr
    )
    print(
        f"raw indexed phone SELECT: {summary['baseline_raw_phone_select_s'] * 1000:.1f} ms; "
        f"goal < {GOAL_S * 1000:.0f} ms per page: {'met' if summary['goal_met'] else 'MISSED'}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
