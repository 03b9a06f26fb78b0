"""Issue 15 parts 2, 3 and 7 in Chromium: a deputy's phone scans the station's code → 签到 → 签退 (360 px); the
contact log in three taps and its turning into an item (360 px); the administrator's weekly chart of each code's
scans and messages (1280 px and 360 px).

A deputy of the demo's second station gets an account of their own (``flask user create``), so that no other
browser test's deputy is checked in; scans are sent to that station's codes by plain GETs, as phones send them.
"""

from __future__ import annotations

import json
import secrets
import urllib.request

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import fits, log_in

pytestmark = pytest.mark.browser

PASSWORD = "presence-" + secrets.token_hex(6)


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 (our own server)
        return json.loads(response.read())


def scan(url: str) -> None:
    """A resident's phone opening a code's page."""
    with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 (our own server)
        assert response.status == 200


@pytest.fixture(scope="module")
def station_deputy(live_server) -> dict:
    """The demo's second station (the third is test_dashboard's), one of its deputies with a new account of their
    own, made once for the module: {station, deputy, username, slugs}."""
    directory = get_json(live_server.base_url + "/api/v1/stations")["stations"]
    station = directory[1]
    deputy = station["deputies"][0]
    username = "presence_" + secrets.token_hex(3)
    live_server.flask(
        "user", "create", username, "--role", "deputy", "--deputy", str(deputy["id"]), "--password", PASSWORD
    )
    return {
        "station": station,
        "deputy": deputy,
        "username": username,
        "station_slug": station["code_url"].rsplit("/c/", 1)[1],
        "deputy_slug": deputy["code_url"].rsplit("/c/", 1)[1],
    }


def test_a_deputys_phone_scans_the_station_code_then_signs_in_and_out(live_server, open_browser, station_deputy):
    base = live_server.base_url
    phone = open_browser("deputy-phone", 360, 740, True)
    log_in(phone.page, base, station_deputy["username"], "/staff/inbox", PASSWORD)

    # The scan: the station's code opens 签到, not the residents' form.
    phone.page.goto(f"{base}/c/{station_deputy['station_slug']}")
    expect(phone.page.locator("#presence-station")).to_have_text(station_deputy["station"]["name"])
    expect(phone.page.locator("#presence-state")).to_have_text("尚未签到。")
    fits(phone)
    phone.screenshot("presence-scan-360")
    phone.page.click("#check-in")
    expect(phone.page.locator("#presence-message")).to_contain_text("已签到")
    expect(phone.page.locator("#presence-state")).to_contain_text("已签到")
    fits(phone)
    phone.screenshot("presence-checked-in-360")
    phone.page.click("#check-out")
    expect(phone.page.locator("#presence-message")).to_contain_text("已签退")
    expect(phone.page.locator("#check-in")).to_be_visible()
    expect(phone.page.locator("#visits li")).to_have_count(1)
    fits(phone)
    phone.screenshot("presence-checked-out-360")

    # A resident scanning the same code gets the form, as before.
    resident = open_browser("resident-phone", 360, 740, True)
    resident.page.goto(f"{base}/c/{station_deputy['station_slug']}")
    expect(resident.page.locator("h1, h2").filter(has_text="我要留言").first).to_be_visible()
    assert phone.problems == [] and resident.problems == []


def test_the_contact_log_in_three_taps(live_server, open_browser, station_deputy):
    base = live_server.base_url
    phone = open_browser("contacts-phone", 360, 740, True)
    log_in(phone.page, base, station_deputy["username"], "/staff/contacts", PASSWORD)
    fits(phone)
    phone.screenshot("contacts-form-360")
    phone.page.click("#kind-meeting")  # 1: how
    phone.page.fill("#summary", "群众反映村口垃圾站清运不及时")  # 2: what was raised (the date and count are prefilled)
    phone.page.click("#contact-save")  # 3: save
    expect(phone.page.locator("#notice")).to_have_text("已记录这次联系群众。")
    row = phone.page.locator("#contact-list li").first
    expect(row).to_contain_text("座谈")
    expect(row).to_contain_text("群众反映村口垃圾站清运不及时")
    fits(phone)
    phone.screenshot("contacts-logged-360")

    # It may become an item: the in-person form, prefilled.
    row.locator("a", has_text="转为留言件").click()
    expect(phone.page.locator("#from-contact")).to_be_visible()
    expect(phone.page.locator("#body")).to_have_value("群众反映村口垃圾站清运不及时")
    fits(phone)
    phone.screenshot("contacts-to-item-360")
    assert phone.problems == []


def shoot_the_codes_section(browser, name: str) -> None:
    """Scroll the scans chart (``#codes``) into view, check that it fits a phone's width, and keep a screenshot of
    the page (``name``) and of the section alone (``name``-section), for the README's pictures."""
    browser.page.locator("#codes").scroll_into_view_if_needed()
    if browser.width == 360:
        fits(browser)
    full = browser.screenshot(name)
    browser.page.locator("#codes").screenshot(path=str(full.with_name(f"{name}-section.png")))


def test_the_administrator_sees_each_codes_weeks_as_a_chart(live_server, open_browser, station_deputy):
    base = live_server.base_url
    for _ in range(5):
        scan(f"{base}/c/{station_deputy['deputy_slug']}")
    scan(f"{base}/c/{station_deputy['station_slug']}")
    supervisor = "supervisor"
    path = f"/supervision/?station={station_deputy['station']['id']}"
    for width, height, mobile in ((1280, 800, False), (360, 740, True)):
        browser = open_browser(f"chart-{width}", width, height, mobile)
        log_in(browser.page, base, supervisor, "/supervision/")
        browser.page.goto(base + path)
        charts = browser.page.locator("#codes-weekly li")
        expect(charts.first).to_be_visible()
        deputy_chart = charts.filter(has_text=station_deputy["deputy"]["name"]).first
        titles = deputy_chart.locator("title").all_text_contents()
        this_week = titles[-1]
        assert "扫码" in this_week and int(this_week.split("扫码")[1].split("次")[0]) >= 5, this_week
        shoot_the_codes_section(browser, f"scans-chart-{width}")
        assert browser.problems == []


def test_the_administrator_signs_in_a_deputy_without_a_phone(live_server, open_browser, station_deputy):
    base = live_server.base_url
    station = station_deputy["station"]
    username = "presence_admin_" + secrets.token_hex(3)
    live_server.flask(
        "user", "create", username, "--role", "station_admin", "--station", str(station["id"]), "--password", PASSWORD
    )
    other = station["deputies"][-1]
    for width, height, mobile in ((1280, 800, False), (360, 740, True)):
        browser = open_browser(f"admin-{width}", width, height, mobile)
        log_in(browser.page, base, username, "/staff/inbox", PASSWORD)
        browser.page.goto(f"{base}/admin/stations/{station['id']}/presence")
        row = browser.page.locator(f"#presence-deputy-{other['id']}")
        expect(row).to_contain_text(other["name"])
        row.locator("button").click()
        expect(browser.page.locator("#presence-message")).to_contain_text(other["name"])
        row = browser.page.locator(f"#presence-deputy-{other['id']}")
        expect(row).to_contain_text("在站")
        if width == 360:
            fits(browser)
        browser.screenshot(f"station-presence-{width}")
        row.locator("button", has_text="代为签退").click()
        expect(browser.page.locator("#presence-message")).to_contain_text("已签退")
        # The dashboard's 见面率 tile, with its definition.
        browser.page.goto(f"{base}/supervision/?deputy={other['id']}")
        expect(browser.page.locator("#figure-meeting-rate")).to_contain_text("见面率")
        expect(browser.page.locator("#value-station-visits")).not_to_have_text("0")
        browser.page.locator("#figure-meeting-rate").screenshot(
            path=str(browser.screenshot(f"meeting-rate-{width}").with_name(f"meeting-rate-{width}-tile.png"))
        )
        assert browser.problems == []
