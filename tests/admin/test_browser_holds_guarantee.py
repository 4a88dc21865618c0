"""In Chromium: Legal cannot shrink a held case from its admin page (remove a recording, narrow its
criteria); each attempt is refused with a clear message and the hold stays intact. A Legal approver's
narrowing edit asks for a release reason and is then recorded as a partial release."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.urls import reverse

from holds.actions import place_hold
from holds.models import Case, LegalHold, PartialRelease
from recordings.models import Recording
from tests.admin.conftest import recorded_call
from tests.admin.test_browser import browser, sign_in, wait_for  # noqa: F401  (browser: a fixture)
from vicirec.actors import Actor

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.common.by import By  # noqa: E402

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def held_case(filesystem_archive: Path, make_user: Any) -> dict[str, Any]:
    calls = [recorded_call(filesystem_archive, phone_number=p) for p in ("3125550101", "3125550102", "3125550103")]
    case = Case.objects.create(name="CFPB CID 2026-12", phone_numbers=["3125550101", "3125550102"])
    case.recordings.add(calls[2])
    legal, approver = make_user("Legal"), make_user("Legal approver")
    hold = place_hold(reason="CID", actor=Actor.person(legal), case=case)
    return {"case": case, "hold": hold, "calls": calls, "approver": approver}


def covered(hold: LegalHold) -> set[int]:
    fresh = LegalHold.objects.select_related("case").get(pk=hold.pk)  # the case as stored now
    return set(Recording.objects.filter(fresh.condition()).values_list("pk", flat=True))


def edit_and_save(driver: Any, field: str, value: str) -> str:
    box = driver.find_element(By.NAME, field)
    box.clear()
    box.send_keys(value)
    driver.find_element(By.NAME, "_continue").click()
    return wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, ".errornote, .errorlist, ul.messagelist"))[0].text


def test_legal_is_refused_each_narrowing_of_a_held_case_and_the_hold_stays_intact(
    live_server: Any,
    browser: Any,  # noqa: F811
    held_case: dict[str, Any],
) -> None:
    case, hold, calls = held_case["case"], held_case["hold"], held_case["calls"]
    before = covered(hold)
    assert before == {c.pk for c in calls}
    page = f"{live_server.url}{reverse('admin:holds_case_change', args=[case.pk])}"
    sign_in(browser, live_server.url, "legal")

    browser.get(page)  # remove the hand-picked recording
    edit_and_save(browser, "recordings", "")
    assert "can only grow" in browser.page_source and "recordings removed" in browser.page_source

    browser.get(page)  # narrow the criteria: drop a phone number
    edit_and_save(browser, "phone_numbers", "3125550101")
    assert "can only grow" in browser.page_source and "phone numbers removed (3125550102)" in browser.page_source

    browser.get(page)  # narrow the criteria: a value for the empty agents criterion
    edit_and_save(browser, "agents", "1007")
    assert "agents added as a new criterion" in browser.page_source

    stored = Case.objects.get(pk=case.pk)
    assert stored.phone_numbers == ["3125550101", "3125550102"] and stored.agents == []
    assert list(stored.recordings.values_list("pk", flat=True)) == [calls[2].pk]
    assert LegalHold.objects.get(pk=hold.pk).is_active and covered(hold) == before
    assert not PartialRelease.objects.exists()

    browser.get(page)  # widening is still Legal's to do
    edit_and_save(browser, "phone_numbers", "3125550101, 3125550102, 3125550104")
    assert "was changed successfully" in browser.page_source


def test_an_approvers_narrowing_edit_asks_for_a_reason_and_is_a_partial_release(
    live_server: Any,
    browser: Any,  # noqa: F811
    held_case: dict[str, Any],
) -> None:
    case, hold, calls = held_case["case"], held_case["hold"], held_case["calls"]
    page = f"{live_server.url}{reverse('admin:holds_case_change', args=[case.pk])}"
    sign_in(browser, live_server.url, "legal_approver")
    browser.get(page)
    edit_and_save(browser, "phone_numbers", "3125550101")
    assert "give the reason for it" in browser.page_source
    assert not PartialRelease.objects.exists()

    browser.find_element(By.NAME, "release_reason").send_keys("Scope agreed with the CFPB")
    browser.find_element(By.NAME, "_continue").click()
    part = wait_for(lambda: PartialRelease.objects.filter(hold=hold).first())
    assert part.released_by == held_case["approver"] and part.reason == "Scope agreed with the CFPB"
    assert part.recording_ids == [calls[1].pk] and covered(hold) == {calls[0].pk, calls[2].pk}
    assert "Part of" in wait_for(lambda: browser.find_element(By.CSS_SELECTOR, "ul.messagelist")).text
