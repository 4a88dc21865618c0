"""Acceptance of the desk as production runs it: gunicorn started with the command of docs/deployment.md
(DEBUG off, WhiteNoise serving the static files) in a subprocess on a free port, sharing this test's
database and archive folder, driven by Debian's headless Chromium.

Legal signs in; the stylesheet loads with 200 and the page is styled; the dashboard and a recording page
are photographed; the recording's player reads a finite duration and seeks to 0:05 (Range requests, 206)
and the listening session writes one access event; a VICIdial link to a recording deleted under
retention shows its certificate; 404 and 403 are styled pages. Screenshots go to tests/artifacts/
(gunicorn-*.png) and, with VICIREC_UPDATE_DOCS_SCREENSHOT=1, the dashboard to docs/dashboard.png.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.urls import reverse

from holds.models import Case, LegalHold
from recordings.models import AccessEvent, Campaign, Recording
from recordings.pipeline.retention import enforce_retention
from tests.admin.conftest import PASSWORD, archive_and_clear, recorded_call
from tests.admin.test_browser import ROOT, shoot, sign_in, wait_for
from tests.admin.test_browser import browser as browser  # the fixture
from tests.factories import make_policy
from tests.s3server import free_ports
from tests.workers import database_url
from vicirec import clock

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.common.by import By  # noqa: E402

pytestmark = pytest.mark.django_db(transaction=True)
DOCS = ROOT / "docs" / "deployment.md"


def documented_commands(port: int) -> list[list[str]]:
    """collectstatic and gunicorn exactly as docs/deployment.md gives them, on this port."""
    text = DOCS.read_text()
    block = re.search(r"## The commands.*?```sh\n(.*?)```", text, re.S)
    assert block, "docs/deployment.md has the commands block"
    lines = [line for line in block.group(1).splitlines() if "collectstatic" in line or "gunicorn" in line]
    assert len(lines) == 2 and "127.0.0.1:8000" in lines[1]
    venv = str(ROOT / ".venv" / "bin") + "/"
    lines = [line.replace(".venv/bin/", venv).replace("127.0.0.1:8000", f"127.0.0.1:{port}") for line in lines]
    return [shlex.split(line) for line in lines]


def wait_until_up(base: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"gunicorn exited: {log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{base}/admin/login/", timeout=5) as answer:  # noqa: S310 (loopback)
                if answer.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):  # a busy machine: slow first answer
            time.sleep(0.3)
    raise AssertionError(f"gunicorn did not answer within 60 s: {log.read_text()[-3000:]}")


@pytest.fixture
def gunicorn(filesystem_archive: Path, settings: Any, tmp_path: Path) -> Iterator[str]:
    """The desk under gunicorn (DEBUG off), on this test's database, archive folder and spool."""
    port = free_ports(1)[0]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "vicirec.settings",
        "VICIREC_HOME": str(tmp_path / "home"),
        "VICIREC_DATABASE_URL": database_url(),
        "VICIREC_STORAGE": "filesystem",
        "VICIREC_ARCHIVE_DIR": str(settings.STORAGES["archive"]["OPTIONS"]["location"]),
        "VICIREC_SPOOL_DIRS": str(filesystem_archive),
        "VICIREC_DEBUG": "0",
        "VICIREC_DEMO_NO_2FA": "1",
    }
    collectstatic, serve = documented_commands(port)
    subprocess.run(collectstatic, cwd=ROOT, env=env, check=True, capture_output=True, timeout=120)
    log = tmp_path / "gunicorn.log"
    with log.open("wb") as out:
        server = subprocess.Popen(serve, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_up(base, server, log)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()


@pytest.fixture
def desk(filesystem_archive: Path, make_user: Callable[..., Any]) -> dict[str, Any]:
    collections = Campaign.objects.create(kind="outbound", campaign_id="COLLECT", name="Collections")
    make_policy(campaign=collections, keep_local_days=1, retain_days=1200, record_class="debt_collection", codec="mp3")
    short = Campaign.objects.create(kind="outbound", campaign_id="SHORT", name="Short")
    make_policy(campaign=short, keep_local_days=0, retain_days=30)
    call = recorded_call(filesystem_archive, seconds=9, campaign=collections, phone_number="7735557219")
    gone = recorded_call(filesystem_archive, age_days=40, campaign=short)
    archive_and_clear()
    assert enforce_retention(now=clock.now(), dry_run=False, confirm=True).deleted == 1
    users = {role: make_user(role) for role in ("Legal", "Ops")}
    for user in users.values():  # gunicorn runs the production settings: a production password hash
        user.password = PBKDF2PasswordHasher().encode(PASSWORD, PBKDF2PasswordHasher().salt())
        user.save(update_fields=["password"])
    call.refresh_from_db()
    gone.refresh_from_db()
    assert call.state == Recording.State.CLEARED and gone.state == Recording.State.EXPIRED
    return {"recording": call, "deleted": gone}


def assert_styled(driver: Any) -> None:
    """The admin's stylesheet arrived (200, text/css) and applies: the header has its coloured background."""
    href = driver.execute_script("return document.querySelector('link[rel=stylesheet]').href")
    status = driver.execute_async_script(
        "const done = arguments[arguments.length - 1]; fetch(arguments[0])"
        ".then(r => done([r.status, r.headers.get('content-type')])).catch(e => done([0, String(e)]));",
        href,
    )
    assert status[0] == 200 and status[1].startswith("text/css"), status
    background = driver.execute_script("return getComputedStyle(document.getElementById('header')).backgroundColor")
    assert background not in ("rgba(0, 0, 0, 0)", "transparent"), background


def seek_to_five_seconds(driver: Any) -> dict[str, Any]:
    """Play until the player knows a finite duration, then pause, seek to 0:05 and wait until it is there."""
    played = driver.execute_async_script(
        "const done = arguments[arguments.length - 1]; const p = document.getElementById('player');"
        "p.play().then(() => done('playing'), e => done(String(e)));"
    )
    assert played == "playing", played
    wait_for(lambda: driver.execute_script("return document.getElementById('player').readyState >= 1"), timeout=20)
    driver.execute_script("const p = document.getElementById('player'); p.pause(); p.currentTime = 5;")
    state = (
        "const p = document.getElementById('player'); return {duration: p.duration, t: p.currentTime, "
        "seeking: p.seeking, ready: p.readyState, seekable: p.seekable.length ? p.seekable.end(0) : 0};"
    )
    wait_for(lambda: not driver.execute_script(state)["seeking"], timeout=20)
    return driver.execute_script(state)


def test_the_desk_under_gunicorn_is_styled_plays_with_seeking_and_explains_deletions(
    gunicorn: str, browser: Any, desk: dict[str, Any]
) -> None:
    base = gunicorn
    with urllib.request.urlopen(f"{base}/static/admin/css/base.css", timeout=10) as css:  # noqa: S310
        assert css.status == 200 and css.headers["Content-Type"].startswith("text/css")
    sign_in(browser, base, "legal")
    assert browser.find_element(By.ID, "dash-states").is_displayed()
    assert_styled(browser)
    dashboard = shoot(browser, "gunicorn-dashboard.png")
    if os.environ.get("VICIREC_UPDATE_DOCS_SCREENSHOT"):  # refresh the README's picture on purpose only
        shutil.copyfile(dashboard, ROOT / "docs" / "dashboard.png")

    recording = desk["recording"]
    browser.get(f"{base}{reverse('admin:recordings_recording_change', args=[recording.pk])}")
    assert_styled(browser)
    state = seek_to_five_seconds(browser)
    assert 8 < state["duration"] < 10 and state["seekable"] > 8 and abs(state["t"] - 5) < 0.5, state
    shoot(browser, "gunicorn-recording.png")
    wait_for(lambda: AccessEvent.objects.filter(recording=recording, action="play").exists())
    time.sleep(1)  # any later Range request of the same page has been answered
    assert AccessEvent.objects.filter(recording=recording, action="play", username="legal").count() == 1

    deleted = desk["deleted"]
    browser.get(f"{base}/RECORDINGS/MP3/{deleted.filename}-all.mp3")
    assert "deleted under retention on" in browser.find_element(By.ID, "deleted-when").text
    assert browser.find_element(By.CSS_SELECTOR, "#deleted-certificate a").text.startswith("deletion certificate")
    assert_styled(browser)
    shoot(browser, "gunicorn-deleted.png")

    browser.get(f"{base}/admin/recordings/recording/999999/play/")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Not found (404)"
    assert_styled(browser)
    sign_in(browser, base, "ops")
    browser.get(f"{base}{reverse('admin:recordings_recording_play', args=[recording.pk])}")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Not allowed (403)"
    assert_styled(browser)
    shoot(browser, "gunicorn-403.png")


def test_screenshots_of_a_hold_listing_its_recordings_and_a_case_matching_a_typed_phone(
    gunicorn: str, browser: Any, desk: dict[str, Any]
) -> None:
    base, recording = gunicorn, desk["recording"]
    sign_in(browser, base, "legal")
    browser.get(f"{base}{reverse('admin:holds_case_add')}")
    browser.find_element(By.NAME, "name").send_keys("Complaint 2026-311")
    browser.find_element(By.NAME, "phone_numbers").send_keys("(773) 555-7219")
    browser.find_element(By.NAME, "_continue").click()
    wait_for(lambda: browser.find_elements(By.ID, "preview-count"), timeout=20)
    assert browser.find_element(By.ID, "preview-count").text == "1"
    case = Case.objects.get(name="Complaint 2026-311")
    assert case.phone_numbers == ["7735557219"]
    assert_styled(browser)
    browser.find_element(By.CSS_SELECTOR, "#case-hold-form textarea[name=reason]").send_keys("customer complaint")
    browser.find_element(By.ID, "place-case-hold").click()
    hold = wait_for(lambda: LegalHold.objects.filter(case=case).first(), timeout=20)
    shoot(browser, "gunicorn-case-phone.png")

    browser.get(f"{base}{reverse('admin:holds_legalhold_change', args=[hold.pk])}")
    listed = browser.find_element(By.ID, "hold-recordings").text
    assert str(recording.pk) in listed and "(773) 555-7219" in listed
    assert_styled(browser)
    shoot(browser, "gunicorn-hold-recordings.png")
