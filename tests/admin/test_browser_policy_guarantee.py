"""In a real browser, Ops try the two ways around the approval rule — a new 1-day policy for a campaign the
7-year default covers, and moving a policy to another campaign — and are refused with one clear message
(no success message beside it); the change is then filed as a proposal, and retention stays as it was."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.urls import reverse

from recordings.models import Campaign
from retention.models import PolicyProposal, RetentionPolicy
from tests.admin.test_browser import browser, shoot, sign_in, wait_for  # noqa: F401 (browser is a fixture)
from tests.factories import make_policy, make_recording
from vicirec import clock

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select  # noqa: E402

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def campaigns(make_user: Callable[..., Any]) -> dict[str, Any]:
    collect = Campaign.objects.create(kind="outbound", campaign_id="COLLECT", name="Collections")
    sales = Campaign.objects.create(kind="outbound", campaign_id="SALES", name="Sales")
    policy = make_policy(campaign=collect, keep_local_days=1, retain_days=1200, record_class="debt_collection")
    for age in (10, 100, 400):
        make_recording(campaign=sales, start_time=clock.now() - timedelta(days=age), state="cleared")
    make_user("Ops")
    return {"collect": collect, "sales": sales, "policy": policy}


def fill_policy_form(driver: Any, **fields: str) -> None:
    for name, value in fields.items():
        element = driver.find_element(By.NAME, name)
        if element.tag_name == "select":
            Select(element).select_by_value(value)
        else:
            element.clear()
            element.send_keys(value)
    checkbox = driver.find_element(By.NAME, "impact_reviewed")
    if not checkbox.is_selected():
        checkbox.click()
    driver.find_element(By.NAME, "_save").click()
    wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, ".errornote, ul.messagelist"))


def refusal_on_page(driver: Any) -> str:
    errors = driver.find_element(By.CSS_SELECTOR, "ul.errorlist.nonfield").text
    assert "Nothing was saved" in errors and "needs a Legal approver" in errors
    assert driver.find_elements(By.CSS_SELECTOR, "ul.messagelist li.success") == []  # no green "saved"
    assert "successfully" not in driver.page_source
    return errors


def test_ops_cannot_add_a_short_policy_or_move_one_and_files_a_proposal_instead(
    live_server: Any,
    browser: Any,  # noqa: F811 (the fixture imported above)
    campaigns: dict[str, Any],
) -> None:
    base, sales, policy = live_server.url, campaigns["sales"], campaigns["policy"]
    sign_in(browser, base, "ops")

    # 1. a new 1-day policy, class "general", for a campaign under the 7-year default
    browser.get(f"{base}{reverse('admin:retention_retentionpolicy_add')}")
    fill_policy_form(
        browser,
        campaign=str(sales.pk),
        record_class="general",
        retain_days="1",
        keep_local_days="0",
        change_reason="disk budget",
    )
    errors = refusal_on_page(browser)
    assert "campaign SALES: 2557 → 1 days" in errors and "3 recording(s)" in errors
    shoot(browser, "policy-refused-new.png")
    assert not RetentionPolicy.objects.filter(campaign=sales).exists()

    # 2. moving the Collections policy (1200 days) to Sales (under the 7-year default)
    browser.get(f"{base}{reverse('admin:retention_retentionpolicy_change', args=[policy.pk])}")
    fill_policy_form(browser, campaign=str(sales.pk), change_reason="reuse the collections policy")
    assert "campaign SALES: 2557 → 1200 days" in refusal_on_page(browser)
    assert RetentionPolicy.objects.get(pk=policy.pk).campaign == campaigns["collect"]

    # filed as a proposal instead: pending, retention unchanged
    browser.get(f"{base}{reverse('admin:retention_policyproposal_add')}")
    for name, value in {"campaign": str(sales.pk), "retain_days": "1", "keep_local_days": "0"}.items():
        browser.find_element(By.NAME, name).clear()
        browser.find_element(By.NAME, name).send_keys(value)
    browser.find_element(By.NAME, "reason").send_keys("disk budget")
    browser.find_element(By.NAME, "_save").click()
    proposal = wait_for(lambda: PolicyProposal.objects.first())
    assert "was added successfully" in browser.find_element(By.CSS_SELECTOR, "ul.messagelist").text
    assert proposal.status == "pending" and proposal.impact["newly_eligible_now"] == 3
    assert not RetentionPolicy.objects.filter(campaign=sales).exists()
    assert RetentionPolicy.objects.get(pk=policy.pk).retain_days == 1200
