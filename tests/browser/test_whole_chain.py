"""One item through the whole chain on 360-px phones: resident → deputy → department → deputy → resident.

Three browsers, as in life: the resident's phone, the deputy's phone (logged in as the demo
``deputy``), and the department contact's browser, which has no account and only the link.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import fits, log_in, write_to

pytestmark = pytest.mark.browser

MESSAGE = "炎帝大道与神农路口的红绿灯坏了一个星期，早晚上学时段车多人多，孩子过马路很危险，请尽快修复。"
RESIDENT_NAME = "刘淑珍"
RESIDENT_PHONE = "13987654321"
DEPARTMENT = "炎陵县住房和城乡建设局"
INSTRUCTIONS = "请派人核查路口信号灯，修复后告知。"
DEPARTMENT_ANSWER = "已派维修人员更换信号灯控制板，路口红绿灯恢复正常。"
INTERNAL_NOTE = "内部：交警队电话0731-26201234，可直接联系。"
REPLY = "您反映的路口红绿灯已由县住建局修复。"
UNSATISFIED_REASON = "白天好了，晚上七点以后红绿灯还是不亮。"
SECOND_RESOLUTION = "已请住建局调整夜间时段控制程序，晚上已正常。"

# Exactly the steps the resident may see, in order: that the department answered and when, never what (that is the
# deputy's, whose 答复 follows), nothing internal (the note).
PUBLIC_STEPS = [
    "留言已提交",
    "代表已受理",
    "已交办承办单位",
    "炎陵县住房和城乡建设局已向代表答复",
    "代表答复",
    "已办结",
    "您的评价",
    "已重新办理",
    "已办结",
    "您的评价",
]


def resident_timeline(page) -> list[str]:
    """The step names on the resident's tracking page, in order."""
    return [text.strip() for text in page.locator("#timeline .event-head strong").all_inner_texts()]


def test_one_item_through_the_whole_chain(live_server, phone, open_phone):
    resident = phone.page

    # 1. The resident scans the deputy's code and writes.
    url = live_server.demo_codes()["deputy"].url
    ref_display = write_to(resident, url, MESSAGE, "交通出行", name=RESIDENT_NAME, phone=RESIDENT_PHONE)
    ref = ref_display.replace("-", "")
    track_url = resident.locator("#track-link").get_attribute("href")

    # 2. The deputy logs in on their phone and finds it in the inbox.
    deputy_phone = open_phone("deputy")
    deputy = deputy_phone.page
    log_in(deputy, live_server.base_url, "deputy")
    expect(deputy).to_have_url(live_server.base_url + "/staff/inbox")  # a login lands on the inbox (issue 14)
    expect(deputy.locator("h1")).to_have_text("留言办理")
    # The session's shared server holds every browser test's messages to this deputy (more than a page of them):
    # the deputy finds theirs by its number, as the search box offers.
    deputy.locator("#q").fill(ref_display)
    deputy.locator("#q").press("Enter")
    row = deputy.locator("#inbox-list .inbox-row", has_text=ref_display)
    expect(row).to_have_count(1)
    expect(row).to_contain_text(MESSAGE[:10])
    expect(row).to_contain_text("交通出行")
    fits(deputy_phone)
    row.locator("a").click()

    # 3. Item page: masked contact, reveal, accept.
    expect(deputy.locator("#item-body")).to_have_text(MESSAGE)
    expect(deputy.locator("#contact-phone")).to_have_text("139****4321")
    expect(deputy.locator("#contact-name")).to_have_text("刘**")
    deputy.get_by_role("button", name="显示完整信息").click()
    expect(deputy.locator("#contact-phone")).to_have_text(RESIDENT_PHONE)
    expect(deputy.locator("#contact-name")).to_have_text(RESIDENT_NAME)
    fits(deputy_phone)
    deputy.locator("#form-accept button[type=submit]").click()
    expect(deputy.locator("#notice")).to_contain_text("已受理")
    expect(deputy.locator("#item-status")).to_have_text("已受理")

    # 4. Forward to a department; the link is shown once.
    deputy.locator("#action-forward summary").click()
    deputy.locator("#forward-department").select_option(label=DEPARTMENT)
    deputy.locator("#forward-text").fill(INSTRUCTIONS)
    deputy.get_by_role("button", name="交办", exact=True).click()
    expect(deputy.locator("h1")).to_have_text(f"已交办{DEPARTMENT}")
    link = deputy.locator("#department-link").input_value().strip()
    assert re.fullmatch(re.escape(live_server.base_url) + r"/d/\d+\.1\.[A-Za-z0-9_-]{22}", link), link
    expect(deputy.locator(".js-copy")).to_be_visible()
    fits(deputy_phone)
    deputy_phone.screenshot("chain-forwarded")

    # 5. The department opens its link (no account) and answers.
    department_phone = open_phone("department")
    department = department_phone.page
    response = department.goto(link)
    assert response is not None and response.status == 200
    assert response.headers["cache-control"] == "no-store"
    expect(department.locator("#item-body")).to_have_text(MESSAGE)
    expect(department.locator("#instructions")).to_have_text(INSTRUCTIONS)
    assert RESIDENT_PHONE not in department.content() and "139****4321" not in department.content()
    department.locator("#answer-text").fill(DEPARTMENT_ANSWER)
    fits(department_phone)
    department_phone.screenshot("chain-department")
    department.get_by_role("button", name="提交答复").click()
    expect(department.locator("#notice")).to_contain_text("答复已提交")

    # 6. The deputy reads the answer, notes something internal, replies and resolves.
    deputy.get_by_role("link", name="返回留言").click()
    expect(deputy.locator("#forwards")).to_contain_text(DEPARTMENT_ANSWER)
    deputy.locator("#action-note summary").click()
    deputy.locator("#note-text").fill(INTERNAL_NOTE)
    deputy.get_by_role("button", name="保存备注").click()
    expect(deputy.locator("#notice")).to_contain_text("内部备注已保存")
    deputy.get_by_role("button", name="引用到答复").click()
    expect(deputy.locator("#reply-text")).to_have_value(DEPARTMENT_ANSWER)
    deputy.locator("#reply-text").fill(REPLY)
    deputy.get_by_role("button", name="发送答复").click()
    expect(deputy.locator("#item-status")).to_have_text("已答复")
    deputy.locator("#action-resolve label", has_text="已解决").click()
    deputy.get_by_role("button", name="办结", exact=True).click()
    expect(deputy.locator("#item-status")).to_have_text("已办结")

    # 7. The resident is not satisfied: the item reopens.
    resident.goto(track_url)
    expect(resident.locator("#rating")).to_be_visible()
    resident.locator("#rating label.choice", has_text="不满意").click()
    resident.locator("#rating label.choice", has_text="没有解决").click()
    resident.locator("#rating-comment").fill(UNSATISFIED_REASON)
    fits(phone)
    phone.screenshot("chain-rating-form")
    resident.get_by_role("button", name="提交评价").click()
    expect(resident.locator("#timeline")).to_contain_text("已重新办理")
    expect(resident.locator("#rating")).to_have_count(0)
    # The status says it was reopened, not "已受理 · 代表已受理，正在了解情况" (issue 14).
    expect(resident.locator(".status-line")).to_have_text("已重新办理")
    expect(resident.locator(".status-line + p.hint")).to_contain_text("已退回代表重新办理")

    # 8. On top of the deputy's inbox.
    deputy.goto(live_server.base_url + "/staff/inbox")
    first = deputy.locator("#inbox-list .inbox-row").first
    expect(first).to_contain_text(ref_display)
    expect(first).to_contain_text("群众不满意")
    expect(deputy.locator("#count-reopened .count-number")).to_have_text("1")
    fits(deputy_phone)
    deputy_phone.screenshot("inbox")
    first.locator("a").click()
    expect(deputy.locator("#reopen-reason")).to_contain_text(UNSATISFIED_REASON)
    expect(deputy.locator("#staff-timeline")).to_contain_text(UNSATISFIED_REASON)
    expect(deputy.locator("#staff-timeline")).to_contain_text(INTERNAL_NOTE)
    fits(deputy_phone)
    deputy_phone.screenshot("item-page")

    # 9. Resolved again; the resident is satisfied.
    deputy.locator("#action-resolve summary").click()
    deputy.locator("#action-resolve label", has_text="已解决").click()
    deputy.locator("#resolve-text").fill(SECOND_RESOLUTION)
    deputy.get_by_role("button", name="办结", exact=True).click()
    expect(deputy.locator("#item-status")).to_have_text("已办结")

    resident.goto(track_url)
    resident.locator("#rating label.choice", has_text="基本满意").wait_for()
    resident.locator("#rating label.choice", has_text=re.compile(r"^\s*满意\s*$")).click()
    resident.locator("#rating label.choice", has_text="已解决").click()
    resident.get_by_role("button", name="提交评价").click()
    expect(resident.locator("#rating")).to_have_count(0)
    expect(resident.locator(".status-line")).to_contain_text("已办结")

    # The resident's timeline: exactly the public steps, nothing internal.
    assert resident_timeline(resident) == PUBLIC_STEPS
    content = resident.content()
    for internal in (DEPARTMENT_ANSWER, INTERNAL_NOTE, INSTRUCTIONS, RESIDENT_PHONE):
        assert internal not in content
    expect(resident.locator("#timeline")).to_contain_text(REPLY)
    expect(resident.locator("#timeline")).to_contain_text(SECOND_RESOLUTION)
    expect(resident.locator("#timeline")).to_contain_text(UNSATISFIED_REASON)
    fits(phone)
    phone.screenshot("chain-resident-timeline")

    assert ref in deputy.url.upper().replace("-", "")
    assert phone.problems == [] and deputy_phone.problems == [] and department_phone.problems == []
