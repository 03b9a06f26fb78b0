"""The station administrator's weekly scans chart in Chromium (1280 px and 360 px): the demo station's topic code (a
民生实事 poll) is a group of its own, headed by the topic's title, after the station's and its deputies' codes."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from backend.demo import DEMO_TOPIC_TITLE
from tests.browser.conftest import log_in
from tests.browser.test_presence_pages import shoot_the_codes_section

pytestmark = pytest.mark.browser


def test_the_topic_code_is_its_own_group_on_the_scans_chart(live_server, open_browser):
    base = live_server.base_url
    for width, height, mobile in ((1280, 800, False), (360, 740, True)):
        browser = open_browser(f"topic-groups-{width}", width, height, mobile)
        log_in(browser.page, base, "station_admin", "/supervision/")
        browser.page.goto(base + "/supervision/#codes")
        headings = browser.page.locator("#codes-weekly h3")
        expect(headings.first).to_be_visible()
        # The demo's topic after the station's own codes; a topic another test of the session opened comes after it.
        shown = headings.all_text_contents()
        assert shown[:2] == ["联络站码和代表码", f"专题：{DEMO_TOPIC_TITLE}"], shown
        assert all(heading.startswith("专题：") for heading in shown[2:]), shown
        topic_list = browser.page.locator("#codes-weekly ul").nth(1)
        expect(topic_list.locator("li")).to_have_count(1)
        expect(topic_list.locator(".sv-week-title")).to_contain_text(DEMO_TOPIC_TITLE)
        groups = browser.page.locator("#codes-table th[scope=rowgroup]")
        assert groups.all_text_contents() == shown
        shoot_the_codes_section(browser, f"topic-groups-{width}")
        assert browser.problems == []
