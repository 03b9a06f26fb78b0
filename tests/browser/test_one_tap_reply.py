"""Issue 14, a deputy's one-tap reply, in Chromium with WeChat's user agent, as ``make run`` serves it with its
service account: the resident scans, writes and turns notices on once; the deputy logs in (straight to the inbox),
opens the item and answers it without accepting first. The page lands at the notice beside the actions, not at the
top; the timelines show one entry for the tap (受理并答复); the resident hears 受理 once and the answer once
(delivered by the outbox worker to 模拟微信), and a second reply adds an answer, never a second 受理."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser import test_h5_resident_hears_every_step as h5
from tests.browser.conftest import DEMO_PASSWORD, fits, launch_phone
from tests.browser.test_h5_resident_hears_every_step import OPENID_COOKIE

service_account_server = h5.service_account_server  # the demo county with make run's service account

pytestmark = pytest.mark.browser

MESSAGE = "沔渡镇卫生院门口的人行横道没有红绿灯，早上送孩子上学车很多，过马路很危险。"
REPLY = "已向县交通运输局反映，计划本月内加装行人信号灯，施工前会在路口公示。"
SECOND_REPLY = "补充：信号灯已列入下周施工计划。"


def test_a_deputy_replies_in_one_tap_and_the_resident_hears_each_step_once(service_account_server, phone, chromium):
    server = service_account_server
    base = server.base_url
    resident = phone.page

    def deliver() -> list[str]:
        """The statuses the resident's openid has received so far, oldest first."""
        return h5.statuses(h5.delivered_to(server, openid))

    # The resident scans in WeChat, writes, and turns the notices on once.
    resident.goto(server.demo_codes()["deputy"].url)
    resident.locator("#body").fill(MESSAGE)
    resident.locator("#category").select_option(label="交通出行")
    resident.locator("#submit-button").click()
    expect(resident.locator("h1")).to_have_text("提交成功")
    openid = next(c["value"] for c in resident.context.cookies() if c["name"] == OPENID_COOKIE)
    ref = resident.locator("#ref").inner_text().strip().replace("-", "")
    track_url = resident.locator("#track-link").get_attribute("href")
    assert deliver() == []  # the submission's own notice goes before any acceptance: skipped, as in make run
    resident.locator("#subscribe-button").click()
    resident.locator("#wx-subscribe-sheet").get_by_role("button", name="允许").click()
    expect(resident.locator("#notices-state")).to_contain_text("微信通知已开启")

    context, deputy_phone = launch_phone(chromium)
    deputy = log_in_deputy(deputy_phone, base)
    # Straight to the inbox: no landing page with one button to tap again.
    expect(deputy).to_have_url(base + "/staff/inbox")
    deputy.locator("#inbox-list a").filter(has_text="人行横道").click()
    expect(deputy.locator("#item-status")).to_have_text("已提交")

    # A refused reply opens at its own form, with the reason, not at the top of the page.
    expect(deputy.locator("#accept-hint")).to_contain_text("直接答复或交办即视为受理")
    expect(deputy.locator("#action-reply")).to_have_attribute("open", "")
    deputy.get_by_role("button", name="发送答复").click()
    expect(deputy).to_have_url(f"{base}/staff/items/{ref}/actions#action-reply")
    expect(deputy.locator("#reply-text")).to_have_attribute("aria-invalid", "true")
    expect(deputy.locator("#action-reply .field-error")).to_be_in_viewport()
    assert deputy.evaluate("window.scrollY") > 300
    expect(deputy.locator("#item-status")).to_have_text("已提交")  # nothing written, no 受理 either
    assert deliver() == ["已提交"]  # told once they accepted the notices (issue 14's ui pass), and no 受理

    # One tap: the reply, which takes the item on.
    deputy.locator("#reply-text").fill(REPLY)
    deputy.get_by_role("button", name="发送答复").click()
    expect(deputy).to_have_url(f"{base}/staff/items/{ref}?done=reply#notice")
    notice = deputy.locator("#notice")
    expect(notice).to_have_text("答复已发送给群众。")
    expect(notice).to_be_in_viewport()
    assert deputy.evaluate("window.scrollY") > 300  # landed where the deputy was, not at the top
    expect(deputy.locator("#item-status")).to_have_text("已答复")
    entries = deputy.locator("#staff-timeline li .event-head strong")
    expect(entries).to_have_text(["群众留言", "受理并答复群众"])  # one entry for the tap
    fits(deputy_phone)
    deputy_phone.screenshot("one-tap-reply-landed-360")

    # The resident hears 受理 once, then the answer.
    assert deliver() == ["已提交", "已受理", "已答复"]
    resident.goto(track_url)
    labels = resident.locator("#timeline .event-head strong")
    expect(labels).to_have_text(["留言已提交", "代表受理并答复"])
    expect(resident.locator("#timeline")).to_contain_text(REPLY)
    fits(phone)
    phone.screenshot("one-tap-reply-tracking-360")

    # A second reply: an answer, never a second 受理.
    deputy.locator("#action-reply summary").click()  # once answered, 办结 is the form left open
    deputy.locator("#reply-text").fill(SECOND_REPLY)
    deputy.get_by_role("button", name="发送答复").click()
    expect(deputy.locator("#notice")).to_be_in_viewport()
    expect(entries).to_have_text(["群众留言", "受理并答复群众", "答复群众"])
    assert deliver() == ["已提交", "已受理", "已答复", "已答复"]
    # The refused reply's page came with its 400, as it should; nothing else went wrong in either browser.
    unexpected = [p for p in deputy_phone.problems if "status of 400" not in p] + phone.problems
    assert unexpected == [], unexpected
    context.close()

    # The same item page at a desk's width.
    context, desk = launch_phone(chromium, 1280, 800, False)
    log_in_deputy(desk, base).goto(f"{base}/staff/items/{ref}")
    expect(desk.page.locator("#staff-timeline")).to_contain_text("受理并答复群众")
    fits(desk)
    desk.screenshot("one-tap-item-answered-1280")
    context.close()


def log_in_deputy(phone, base: str):
    """Log the demo deputy in on ``phone``; its page."""
    page = phone.page
    page.goto(base + "/staff/login")
    expect(page.locator("h1")).to_have_text("代表/工作人员登录")
    page.locator("#username").fill("deputy")
    page.locator("#password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="登录").click()
    return page
