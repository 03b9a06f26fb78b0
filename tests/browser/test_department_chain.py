"""A department with an account in the chain, in Chromium: the deputy forwards (and the link page is a redirect
target that can be shown again), the department finds the item in its inbox at 1280 px, reports progress, asks for
more time, the deputy grants it on a 360-px phone, and the department answers."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import fits, log_in, write_to

pytestmark = pytest.mark.browser

MESSAGE = "霞阳镇中心小学门口的减速带被压坏了，车辆经过速度很快，接送孩子很危险，请尽快修复。"
DEPARTMENT = "炎陵县住房和城乡建设局"  # the demo's "department" account belongs to it
DESKTOP = {"width": 1280, "height": 900}


def test_a_department_with_an_account_works_the_item_from_its_inbox(live_server, phone, open_phone):
    resident = phone.page
    ref_display = write_to(resident, live_server.demo_codes()["deputy"].url, MESSAGE, "交通出行")
    ref = ref_display.replace("-", "")

    deputy_phone = open_phone("deputy")
    deputy = deputy_phone.page
    log_in(deputy, live_server.base_url, "deputy")
    deputy.goto(f"{live_server.base_url}/staff/items/{ref}")
    deputy.locator("#form-accept button[type=submit]").click()
    deputy.locator("#action-forward summary").click()
    deputy.locator("#forward-department").select_option(label=DEPARTMENT)
    deputy.locator("#forward-text").fill("请核查减速带，尽快修复。")
    deputy.get_by_role("button", name="交办", exact=True).click()
    expect(deputy.locator("h1")).to_have_text(f"已交办{DEPARTMENT}")
    assert re.search(r"/staff/items/\w+/forwards/\d+/link(#action-forward)?$", deputy.url), deputy.url  # redirected
    link = deputy.locator("#department-link").input_value().strip()
    expect(deputy.locator("#department-accounts")).to_contain_text("已进入其“留言办理”待办")
    deputy.reload()  # a reload shows the same link and forwards nothing twice
    assert deputy.locator("#department-link").input_value().strip() == link
    fits(deputy_phone)
    deputy_phone.screenshot("chain-forward-link")

    # The department's account, on a desktop browser.
    desk = open_phone("department")
    page = desk.page
    page.set_viewport_size(DESKTOP)
    desk.width = DESKTOP["width"]
    log_in(page, live_server.base_url, "department")
    page.goto(live_server.base_url + "/staff/inbox")
    row = page.locator("#inbox-list .inbox-row", has_text=ref_display)
    expect(row).to_have_count(1)
    expect(row).to_contain_text(MESSAGE[:10])
    desk.screenshot("department-inbox-1280")
    assert desk.scroll_width() <= DESKTOP["width"]
    row.locator("a").click()
    expect(page.locator("#item-body")).to_contain_text(MESSAGE[:10])
    page.locator("#answer-text").fill("已派人现场查看，需重新浇筑。")
    page.get_by_role("button", name="报告进展").click()
    expect(page.locator("#notice")).to_contain_text("进展已报告")
    page.locator("#extension-form summary").click()
    due = page.locator("#forward-due").inner_text()
    page.locator("#extension-text").fill("混凝土需养护7天。")
    page.locator("#extension-due").fill(_days_after(due, 5))
    page.get_by_role("button", name="申请延期").click()
    expect(page.locator("#notice")).to_contain_text("延期申请已提交")
    desk.screenshot("department-page-1280")

    # The deputy grants it on the phone.
    deputy.goto(f"{live_server.base_url}/staff/items/{ref}")
    expect(deputy.locator("#forwards")).to_contain_text("混凝土需养护7天。")
    expect(deputy.locator("#timeline, body").first).to_contain_text("承办单位申请延期")
    fits(deputy_phone)
    deputy_phone.screenshot("chain-extension-request")
    deputy.get_by_role("button", name="同意延期").click()
    expect(deputy.locator("#notice")).to_contain_text("已同意延期")

    page.reload()
    expect(page.locator("#extension-outcome")).to_contain_text("已同意延期")
    expect(page.locator("#forward-due")).not_to_have_text(due)
    page.locator("#answer-text").fill("减速带已重新浇筑完成。")
    page.get_by_role("button", name="提交答复").click()
    expect(page.locator("#notice")).to_contain_text("答复已提交")
    deputy.reload()
    expect(deputy.locator("#forwards")).to_contain_text("减速带已重新浇筑完成。")
    assert desk.problems == [] and deputy_phone.problems == []


def _days_after(label: str, days: int) -> str:
    """``2026年12月13日前`` plus ``days`` days, as an <input type=date> takes it."""
    match = re.search(r"(\d{4})年(\d{2})月(\d{2})日", label)
    return (date(int(match[1]), int(match[2]), int(match[3])) + timedelta(days=days)).isoformat()
