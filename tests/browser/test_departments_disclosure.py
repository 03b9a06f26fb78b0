"""Departments measured and 公示 (issue 15 parts 1 and 4) in Chromium, on a desk (1280×800) and a phone (360×740).

A server of its own, with the demo county and three months of its history (``flask demo load --history``; the
minimum sample lowered to 5 to fit three months):
the supervisor follows the dashboard's link to the departments' league table (three ranked, the small
water bureau apart under the minimum sample), opens the housing bureau's page and its 台账. A resident
ticks 同意公示 on the station's form in the phone's browser, another does not; the station's administrator
answers and resolves both through the API; the station's public page shows the first, masked, never the
second, and fits a phone.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from backend.demo import DEMO_PASSWORD
from tests.browser.conftest import LiveServer, demo_server, fits, log_in
from tests.browser.test_dashboard import call

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def history_server(chromium_executable, tmp_path_factory) -> Iterator[LiveServer]:
    """The demo county with three months of history, served as ``make run`` serves it; a minimum sample of 5 (three
    months give each main bureau about fifteen forwards, the water bureau two)."""
    with demo_server(tmp_path_factory.mktemp("history_server"), {"STATS_MIN_SAMPLE": "5"}, load_demo=False) as server:
        server.flask("demo", "load", "--history", "--months", "3")
        yield server


@pytest.mark.parametrize(("width", "height", "mobile"), [(1280, 800, False), (360, 740, True)])
def test_league_table_and_department_page(history_server, open_browser, width, height, mobile):
    base = history_server.base_url
    browser = open_browser(f"supervisor-{width}", width, height, mobile)
    page = browser.page
    log_in(page, base, "supervisor", "/supervision/")
    expect(page.locator("#dashboard")).to_be_visible()
    page.locator("#department-league-link a").click()
    expect(page.locator("#league-table")).to_be_visible()
    ranked = page.locator("#league-table tbody tr")
    expect(ranked).to_have_count(3)
    names = [ranked.nth(i).locator("th").inner_text().strip() for i in range(3)]
    assert set(names) == {"炎陵县住房和城乡建设局", "炎陵县交通运输局", "炎陵县教育局"}
    expect(page.locator("#under-sample-table tbody tr")).to_have_count(1)
    expect(page.locator("#under-sample-table")).to_contain_text("炎陵县水利局")
    expect(page.locator("#under-sample-table")).to_contain_text("样本不足")
    assert "霞阳镇城建办" not in page.locator("#league").inner_text()  # a unit is counted under its bureau
    fits(browser)
    browser.screenshot(f"department-league-{width}")
    assert not browser.problems, browser.problems

    page.locator("#league-table").get_by_role("link", name="炎陵县住房和城乡建设局").click()
    expect(page.locator("#department-name")).to_contain_text("炎陵县住房和城乡建设局")
    expect(page.locator("#units")).to_contain_text("霞阳镇城建办")
    received = int(page.locator("#value-received").inner_text())
    table_row = received  # the page's figure is the table's row
    assert table_row > 0
    expect(page.locator("#ledger")).to_be_visible()
    fits(browser)
    browser.screenshot(f"department-page-{width}")
    assert not browser.problems, browser.problems


def test_station_disclosure_shows_only_consented_items_masked(history_server, open_browser):
    base = history_server.base_url
    station_code = history_server.demo_codes()["station"].url
    resident = open_browser("resident", 360, 740, mobile=True)
    refs = []
    for marker, consent in (("愿意公开的留言", True), ("不愿公开的留言", False)):
        resident.page.goto(station_code)
        resident.page.locator("#body").fill(f"{marker}：村口路灯坏了，我是王桂芳，电话13812345678。")
        resident.page.locator("#name").fill("王桂芳")
        resident.page.locator('input[name="consent"]').check()
        publish = resident.page.locator('input[name="publish_consent"]')
        expect(publish).not_to_be_checked()  # never ticked for the resident, not even by a remembered form
        if consent:
            publish.check()
        resident.page.locator("#submit-button").click()
        expect(resident.page).to_have_url(re.compile(r"/t/"))
        refs.append(resident.page.url.split("/t/", 1)[1].split("?", 1)[0])

    status, issued = call(base, "POST", "/api/v1/auth/token", {"username": "station_admin", "password": DEMO_PASSWORD})
    assert status == 201, issued
    for ref in refs:
        for action in (
            {"action": "accept"},
            {"action": "reply", "text": "已请电工检修，王桂芳可拨13912345678查询。"},
            {"action": "resolve", "outcome": "solved", "text": "路灯已修复。"},
        ):
            status, answer = call(base, "POST", f"/api/v1/items/{ref}/actions", action, issued["token"])
            assert status == 200, (action, answer)

    status, directory = call(base, "GET", "/api/v1/stations")
    station_id = next(s["id"] for s in directory["stations"] if s["code_url"] == station_code)
    for width, height, mobile in ((360, 740, True), (1280, 800, False)):
        visitor = open_browser(f"visitor-{width}", width, height, mobile)
        visitor.page.goto(f"{base}/stations")
        visitor.page.locator(f"#station-{station_id}").get_by_role("link", name="本站公示").click()
        expect(visitor.page.locator("#disclosure-title")).to_be_visible()
        published = visitor.page.locator("#published")
        expect(published).to_contain_text("愿意公开的留言")
        text = visitor.page.locator("#disclosure").inner_text()
        assert "不愿公开的留言" not in text and "王桂芳" not in text and "13812345678" not in text
        assert "138****5678" in text and "139****5678" in text and "路灯已修复" in text
        expect(visitor.page.locator("#gs-answer-rate")).to_be_visible()
        fits(visitor)
        visitor.screenshot(f"station-disclosure-{width}")
        assert not visitor.problems, visitor.problems
