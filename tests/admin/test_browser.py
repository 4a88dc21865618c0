"""Acceptance in a real browser (Debian's headless Chromium through Selenium and chromium-driver), as a new
user would try it: Legal finds a call by phone number, plays it, holds it with a reason, opens a case,
holds and exports it and checks the ZIP with sha256sum; Ops is refused playback and hold release.
Screenshots of the dashboard and the recording page go to tests/artifacts/ (and, with
VICIREC_UPDATE_DOCS_SCREENSHOT=1, to docs/dashboard.png for the README)."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.urls import reverse

from holds.models import Case, LegalHold
from recordings.models import AccessEvent, Campaign, Recording
from tests.admin.conftest import PASSWORD, archive_and_clear, recorded_call
from tests.admin.test_desk import verify_zip
from tests.factories import make_policy, make_recording

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    if not Path(CHROMIUM).exists() or not Path(CHROMEDRIVER).exists():
        pytest.fail("headless browser tests need Debian's chromium and chromium-driver (apt-get install -y ...)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--mute-audio",
        "--autoplay-policy=no-user-gesture-required",
        "--window-size=1400,1700",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(flag)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    options.add_experimental_option(
        "prefs", {"download.default_directory": str(downloads), "download.prompt_for_download": False}
    )
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(5)  # elements of a page still loading after a click are waited for
    driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    driver.set_page_load_timeout(30)
    driver.downloads = downloads
    try:
        yield driver
    finally:
        driver.quit()


def sign_in(driver: Any, base: str, username: str) -> None:
    driver.delete_all_cookies()
    driver.get(f"{base}/admin/login/")
    driver.find_element(By.NAME, "username").send_keys(username)
    driver.find_element(By.NAME, "password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    # The click returns before the next page has loaded: wait for it instead of reading the old title.
    wait_for(lambda: "Log in" not in driver.title and "/admin/login/" not in driver.current_url)


def shoot(driver: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1400, min(max(height, 900), 3000))
    path = ARTIFACTS / name
    driver.save_screenshot(str(path))
    return path


def wait_for(predicate: Callable[[], Any], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out waiting")


@pytest.fixture
def desk(filesystem_archive: Path, make_user: Callable[..., Any]) -> dict[str, Any]:
    collections = Campaign.objects.create(kind="outbound", campaign_id="COLLECT", name="Collections")
    make_policy(campaign=collections, keep_local_days=1, retain_days=1200, record_class="debt_collection", codec="mp3")
    sales = Campaign.objects.create(kind="outbound", campaign_id="SALES", name="Sales")
    target = recorded_call(filesystem_archive, seconds=3, campaign=collections, phone_number="3125550177", agent="1007")
    for n in range(6):
        recorded_call(filesystem_archive, campaign=sales if n % 2 else collections, phone_number=f"77355500{n:02d}")
    archive_and_clear()
    for n in range(3):  # still inside their local window, on two telephony servers
        recorded_call(filesystem_archive, age_days=0, campaign=sales, server_ip=f"10.0.0.1{n % 2}")
    make_recording(state=Recording.State.FAILED, error="bucket refused the credentials (InvalidAccessKeyId)")
    target.refresh_from_db()
    assert target.state == Recording.State.CLEARED
    return {"recording": target, "legal": make_user("Legal"), "ops": make_user("Ops")}


def test_legal_finds_plays_holds_and_exports_and_ops_is_refused(
    live_server: Any, browser: Any, desk: dict[str, Any], tmp_path: Path
) -> None:
    base = live_server.url
    recording = desk["recording"]
    sign_in(browser, base, "legal")

    # the dashboard
    assert browser.find_element(By.ID, "dash-states").is_displayed()
    assert "Estimated monthly storage bill" in browser.page_source
    dashboard = shoot(browser, "dashboard.png")
    assert dashboard.stat().st_size > 10_000
    if os.environ.get("VICIREC_UPDATE_DOCS_SCREENSHOT"):  # refresh the README's picture on purpose only
        shutil.copyfile(dashboard, ROOT / "docs" / "dashboard.png")

    # find the call by phone number and open it
    browser.get(f"{base}{reverse('admin:recordings_recording_changelist')}")
    search = browser.find_element(By.ID, "searchbar")
    search.send_keys("(312) 555-0177")
    search.submit()
    wait_for(lambda: "q=" in browser.current_url)
    rows = browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")
    assert len(rows) == 1
    rows[0].find_element(By.CSS_SELECTOR, "th a").click()
    wait_for(lambda: recording.stored_sha256 in browser.page_source)

    # play it: the player's source answers 200 and the access is logged
    status = browser.execute_async_script(
        "const done = arguments[0]; const p = document.getElementById('player');"
        "p.play().catch(() => null); fetch(p.src).then(r => done(r.status)).catch(e => done(String(e)));"
    )
    assert status == 200
    wait_for(lambda: browser.execute_script("return document.getElementById('player').readyState") >= 1)
    assert AccessEvent.objects.filter(recording=recording, action="play", username="legal").exists()
    browser.refresh()  # the access log on the page now shows the play
    assert "Played" in browser.find_element(By.ID, "access").text
    shoot(browser, "recording.png")

    # put it on hold with a reason
    browser.find_element(By.CSS_SELECTOR, "#hold-form textarea[name=reason]").send_keys("Customer complaint 2026-114")
    browser.find_element(By.ID, "place-hold").click()
    assert "placed on" in browser.find_element(By.CSS_SELECTOR, "ul.messagelist").text
    hold = wait_for(lambda: LegalHold.objects.filter(reason="Customer complaint 2026-114").first())
    assert hold.placed_by_name == "legal"

    # open a case by phone number, check its preview, hold it and export it
    browser.get(f"{base}{reverse('admin:holds_case_add')}")
    browser.find_element(By.NAME, "name").send_keys("CFPB CID 2026-9")
    browser.find_element(By.NAME, "phone_numbers").send_keys("3125550177")
    browser.find_element(By.NAME, "_continue").click()
    wait_for(lambda: browser.find_element(By.ID, "preview-count").text == "1")
    browser.find_element(By.CSS_SELECTOR, "#case-hold-form textarea[name=reason]").send_keys(
        "CFPB civil investigative demand"
    )
    browser.find_element(By.ID, "place-case-hold").click()
    wait_for(lambda: Case.objects.get(name="CFPB CID 2026-9").holds.filter(released_at=None).count() == 1)
    browser.find_element(By.ID, "export-case").click()
    package = wait_for(lambda: [p for p in browser.downloads.glob("evidence-*.zip")], timeout=20)[0]
    folder = verify_zip(package.read_bytes(), tmp_path / "package")
    assert len(list((folder / "audio").iterdir())) == 1

    # Ops: no player, playback and release refused
    sign_in(browser, base, "ops")
    browser.get(f"{base}{reverse('admin:recordings_recording_change', args=[recording.pk])}")
    assert "Your role does not include playback" in browser.page_source
    assert browser.find_elements(By.ID, "player") == []
    browser.get(f"{base}{reverse('admin:recordings_recording_play', args=[recording.pk])}")
    assert "403" in browser.page_source
    hold = LegalHold.objects.get(reason="Customer complaint 2026-114")
    browser.get(f"{base}{reverse('admin:holds_legalhold_release', args=[hold.pk])}")
    assert "403" in browser.page_source
    assert LegalHold.objects.get(pk=hold.pk).is_active
    assert not AccessEvent.objects.filter(username="ops").exists()
