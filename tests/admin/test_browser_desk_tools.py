"""Acceptance in a real browser: Legal types a phone number as people write it, ``(773) 555-7219``, into a
case; the case finds its recordings and is held; the hold page lists them and leads to the recording list
filtered by that hold; the campaign page holds a campaign; a search is exported as CSV. Screenshots of the
case and of the hold page go to tests/artifacts/."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

import pytest
from django.urls import reverse

from holds.models import Case, LegalHold
from recordings.models import AccessEvent, Campaign
from tests.admin.test_browser import browser, shoot, sign_in, wait_for  # noqa: F401  (the browser fixture)
from tests.factories import make_recording

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.common.by import By  # noqa: E402

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_phone_written_as_people_write_it_holds_its_calls_and_the_hold_lists_them(
    live_server: Any,
    browser: Any,  # noqa: F811
    make_user: Callable[..., Any],
) -> None:
    base = live_server.url
    make_user("Legal")
    sales = Campaign.objects.create(kind="outbound", campaign_id="SALES", name="Sales")
    calls = [make_recording(phone_number="7735557219", campaign=sales) for _ in range(3)]
    other = make_recording(phone_number="3125550000", campaign=sales)
    sign_in(browser, base, "legal")

    # a case whose phone is typed as people write it; an entry that is not a number is refused first
    browser.get(f"{base}{reverse('admin:holds_case_add')}")
    browser.find_element(By.NAME, "name").send_keys("Complaint 2026-311")
    browser.find_element(By.NAME, "phone_numbers").send_keys("(773)")
    browser.find_element(By.NAME, "_continue").click()
    wait_for(lambda: "is not a complete phone number" in browser.page_source)
    assert not Case.objects.exists()
    field = browser.find_element(By.NAME, "phone_numbers")
    field.clear()
    field.send_keys("(773) 555-7219")
    browser.find_element(By.NAME, "_continue").click()
    wait_for(lambda: browser.find_elements(By.ID, "preview-count"))
    assert browser.find_element(By.ID, "preview-count").text == "3"
    case = Case.objects.get(name="Complaint 2026-311")
    assert case.phone_numbers == ["7735557219"]
    assert "(773) 555-7219" in browser.find_element(By.NAME, "phone_numbers").get_attribute("value")
    browser.find_element(By.CSS_SELECTOR, "#case-hold-form textarea[name=reason]").send_keys("customer complaint")
    browser.find_element(By.ID, "place-case-hold").click()
    hold = wait_for(lambda: LegalHold.objects.filter(case=case).first())
    wait_for(lambda: "placed" in browser.page_source)
    shoot(browser, "desk-case-phone.png")

    # the hold page lists what it covers and leads to the recording list filtered by it
    browser.get(f"{base}{reverse('admin:holds_legalhold_change', args=[hold.pk])}")
    listed = browser.find_element(By.ID, "hold-recordings").text
    assert all(str(c.pk) in listed for c in calls) and str(other.pk) not in listed
    assert "(773) 555-7219" in listed
    shoot(browser, "desk-hold-recordings.png")
    browser.find_element(By.ID, "hold-list-link").click()
    wait_for(lambda: f"hold={hold.pk}" in browser.current_url)
    rows = browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")
    assert len(rows) == 3

    # that result as CSV, each recording in the access log
    browser.find_element(By.ID, "export-csv").click()
    wait_for(lambda: AccessEvent.objects.filter(action="export").count() == 3)
    download = wait_for(lambda: list(browser.downloads.glob("recordings-*.csv")), timeout=20)[0]
    wait_for(lambda: download.stat().st_size > 0)
    rows = list(csv.DictReader(io.StringIO(download.read_text())))
    assert sorted(int(r["recording_id"]) for r in rows) == sorted(c.pk for c in calls)

    # the campaign page holds the whole campaign
    browser.get(f"{base}{reverse('admin:recordings_campaign_change', args=[sales.pk])}")
    assert "none" in browser.find_element(By.ID, "campaign-holds").text  # the case does not name the campaign
    browser.find_element(By.CSS_SELECTOR, "#campaign-hold-form textarea[name=reason]").send_keys("regulator letter")
    browser.find_element(By.ID, "hold-campaign").click()
    campaign_hold = wait_for(lambda: LegalHold.objects.filter(campaign=sales, released_at=None).first())
    wait_for(lambda: f"hold #{campaign_hold.pk} on campaign" in browser.find_element(By.ID, "campaign-holds").text)
