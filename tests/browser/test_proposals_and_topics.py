"""代表建议 and topic codes in Chromium (issue 15 parts 5 and 6): a deputy drafts a 建议 from three items on a
360-px phone, a supervisor records its answer at a desk, the residents' tracking page shows it; a resident
answers a topic code's form; a topic past its closing day opens a page saying so, never a form."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
import requests
from playwright.sync_api import expect
from sqlalchemy import bindparam, create_engine, text

from backend.models import utcnow
from backend.models.base import UTCDateTime
from backend.stations.calendar import today_in_china
from tests.browser.conftest import fits, log_in

pytestmark = pytest.mark.browser

DEPARTMENT = "炎陵县住房和城乡建设局"


def submit(base: str, slug_url: str, body: str) -> dict:
    """A resident's message through the API (what the mini-program sends); its reference and tracking link."""
    slug = slug_url.rsplit("/", 1)[1]
    response = requests.post(
        f"{base}/api/v1/items",
        json={"code": slug, "body": body, "category": "urban", "client_id": uuid.uuid4().hex},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    return response.json()


def test_a_deputy_drafts_a_proposal_from_three_items_on_a_phone(live_server, phone, open_browser):
    base = live_server.base_url
    word = "桥头灯" + uuid.uuid4().hex[:4]  # this test's items only, whatever else the session's server holds
    sent = [
        submit(base, live_server.demo_codes()["deputy"].url, f"{where}{word}坏了，晚上看不清路。")
        for where in ("霞阳大桥东头", "霞阳大桥西头", "沿河步道")
    ]
    log_in(phone.page, base, "deputy", "/staff/proposals/")
    page = phone.page
    expect(page.locator("#new-proposal")).to_be_visible()
    fits(phone)
    phone.screenshot("proposals-deputy-list")
    page.locator("#new-proposal").click()
    page.locator("#search-q").fill(word)
    page.get_by_role("button", name="查找留言").click()
    boxes = page.locator("#found-items input[type=checkbox]")
    expect(boxes).to_have_count(3)
    for index in range(3):
        boxes.nth(index).check()
    page.get_by_role("button", name="保存草稿").click()  # no title, no department: refused, the ticks kept
    expect(page.locator("#title-error")).to_contain_text("建议标题")
    expect(page.locator("#department-error")).to_be_visible()
    expect(page.locator("#found-items input[type=checkbox]:checked")).to_have_count(3)
    fits(phone)
    phone.screenshot("proposal-new-refused")
    page.locator("#proposal-title").fill("关于修复霞阳大桥及沿河步道照明的建议")
    page.locator("#proposal-body").fill("三位群众反映桥头和步道照明损坏，建议统一排查维修。")
    page.locator("#proposal-department").select_option(label=DEPARTMENT)
    page.get_by_role("button", name="保存草稿").click()
    expect(page.locator("#proposal-status")).to_have_text("拟稿中")
    expect(page.locator("#proposal-items li")).to_have_count(3)
    fits(phone)
    phone.screenshot("proposal-drafted")
    page.get_by_role("button", name="提交建议").click()
    expect(page.locator("#proposal-status")).to_have_text("已提交")
    proposal_path = page.url.split(base, 1)[1].split("?", 1)[0]

    # The county office records the department's answer at a desk.
    desk = open_browser("supervisor", 1280, 800, mobile=False)
    log_in(desk.page, base, "supervisor", "/staff/proposals/")
    expect(desk.page.locator("#proposal-list")).to_contain_text("关于修复霞阳大桥及沿河步道照明的建议")
    expect(desk.page.locator("#report-form")).to_be_visible()
    desk.screenshot("proposals-supervisor-list")
    desk.page.goto(base + proposal_path)
    desk.page.get_by_role("button", name="记录答复并通知群众").click()  # empty: refused
    expect(desk.page.locator(".alert")).to_contain_text("答复内容")
    desk.page.locator("#answer-text").fill("县住建局已于本周修复大桥两头和步道的路灯共7盏。")
    desk.page.get_by_role("button", name="记录答复并通知群众").click()
    expect(desk.page.locator("#proposal-status")).to_have_text("已答复")
    expect(desk.page.locator("#proposal-answer")).to_contain_text("修复大桥两头")
    assert desk.scroll_width() <= 1280
    desk.screenshot("proposal-answered-desk")

    # Each resident's tracking page says their message went into the 建议, and what its answer was.
    page.goto(sent[0]["track_url"])
    expect(page.locator("#timeline")).to_contain_text("已写入代表建议")
    expect(page.locator("#timeline")).to_contain_text("关于修复霞阳大桥及沿河步道照明的建议")
    expect(page.locator("#timeline")).to_contain_text("修复大桥两头和步道的路灯共7盏")
    fits(phone)
    phone.screenshot("proposal-resident-tracking")


def test_a_resident_answers_a_topic_codes_form(live_server, phone, open_browser):
    topic = live_server.demo_codes()["topic"]
    page = phone.page
    page.goto(topic.url)
    expect(page.locator("#topic-card h1")).to_have_text(topic.owner_name)
    expect(page.locator("#topic-choices")).to_contain_text("明年您最希望县里办好哪件民生实事？")
    expect(page.locator("input[name=deputy_id]")).to_have_count(0)
    fits(phone)
    phone.screenshot("topic-form")
    page.locator("#body").fill("城区停车太难，建议在老街附近建立体停车场。")
    page.locator("#submit-button").click()  # no choice picked: refused, what was typed kept
    expect(page.locator("#choice-error")).to_be_visible()
    expect(page.locator("#body")).to_have_value("城区停车太难，建议在老街附近建立体停车场。")
    page.get_by_label("城区停车位").check()
    page.locator("#submit-button").click()
    expect(page.locator("h1")).to_have_text("提交成功")
    fits(phone)
    phone.screenshot("topic-form-sent")

    # The station sees the topic's messages together, with the choices counted.
    desk = open_browser("station-admin", 1280, 800, mobile=False)
    log_in(desk.page, live_server.base_url, "station_admin", "/admin/")
    desk.page.goto(live_server.base_url + "/admin/stations/1/topics")
    desk.page.get_by_role("link", name=topic.owner_name).click()
    expect(desk.page.locator("#topic-items")).to_contain_text("【城区停车位】城区停车太难")
    expect(desk.page.locator("#topic-counts")).to_contain_text("城区停车位")
    assert desk.scroll_width() <= 1280
    desk.screenshot("topic-page-desk")


def test_a_topic_past_its_closing_day_opens_a_closed_page(live_server, phone, open_phone):
    base = live_server.base_url
    admin = open_phone("station-admin")
    log_in(admin.page, base, "station_admin", "/admin/")
    admin.page.goto(base + "/admin/stations/1/topics")
    admin.page.locator("#topic-kind").select_option(label="营商环境监测点")
    admin.page.locator("#topic-title").fill("霞阳镇营商环境监测点")
    admin.page.locator("#topic-prompt").fill("您在办事时遇到了什么困难？")
    admin.page.locator("#topic-closes").fill("2020-01-01")  # in the past: the browser refuses it (min = today)
    admin.page.get_by_role("button", name="设立并生成二维码").click()
    assert admin.page.locator("#topic-closes").evaluate("input => input.validity.rangeUnderflow")
    admin.page.locator("#topic-closes").evaluate("input => input.removeAttribute('min')")  # and so does the server
    admin.page.get_by_role("button", name="设立并生成二维码").click()
    expect(admin.page.locator("#closes_on-error")).to_contain_text("截止日期不能早于今天")
    fits(admin)
    admin.screenshot("topic-new-refused")
    admin.page.locator("#topic-closes").fill(today_in_china().isoformat())
    admin.page.get_by_role("button", name="设立并生成二维码").click()
    expect(admin.page.locator("#topic h1")).to_have_text("霞阳镇营商环境监测点")
    fits(admin)
    admin.screenshot("topic-page-phone")
    url = admin.page.locator("#topic-code-url").inner_text().strip()

    # The closing day ends (the one thing a test cannot wait for: the database's clock is moved instead).
    database_url = live_server.env["DATABASE_URL"].replace("postgresql://", "postgresql+psycopg://", 1)
    engine = create_engine(database_url)
    with engine.begin() as connection:
        closing = text("UPDATE topics SET closes_at = :at WHERE title = '霞阳镇营商环境监测点'")
        closing = closing.bindparams(bindparam("at", type_=UTCDateTime))
        connection.execute(closing, {"at": utcnow() - timedelta(minutes=1)})
    engine.dispose()
    page = phone.page
    response = page.goto(url)
    assert response.status == 410
    expect(page.locator("#topic-closed h1")).to_contain_text("意见征集已经结束")
    expect(page.locator("form")).to_have_count(0)
    fits(phone)
    phone.screenshot("topic-closed")
