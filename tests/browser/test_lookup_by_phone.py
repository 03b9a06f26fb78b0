"""Issue 14: a resident who kept the reference but lost the key finds the item with the phone's last four digits.

On the shared demo server, on a 360×740 phone in WeChat's browser: the resident writes with a phone number,
then, later and without the link, opens the lookup page from the home page, types the reference and the four
digits, and reads the item's progress; the page is read only (no key, no rating) and says how to do more.
A wrong pair and a badly typed one are told apart in Chinese. Screenshots in test-output/screenshots/.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import fits

pytestmark = pytest.mark.browser

PHONE = "13907315678"


def test_a_resident_finds_their_item_with_the_reference_and_four_digits(live_server, phone, open_phone):
    page = phone.page
    page.goto(live_server.demo_codes()["deputy"].url)
    page.locator("#body").fill("小区北门的台阶塌了一块，老人进出容易摔倒，请尽快修补。")
    page.locator("#phone").fill(PHONE)
    page.locator("input[name=consent]").check()
    page.locator("#submit-button").click()
    expect(page.locator("h1")).to_have_text("提交成功")
    ref_display = page.locator("#ref").inner_text().strip()
    key = page.locator("#track-link").get_attribute("href").split("k=", 1)[1].split("&", 1)[0]

    # Later, on another phone, without the link: from the home page.
    later = open_phone("later")
    other = later.page
    other.goto(live_server.base_url + "/")
    other.locator("#ref-p").fill(ref_display)
    other.locator("#p4").fill("0000")  # a wrong guess first
    other.locator("#lookup-by-phone button").click()
    expect(other.get_by_role("alert")).to_have_text(
        "编号或手机号后四位不正确，请核对后重试。留言时没有留手机号的，请用查询码查询。"
    )
    fits(later)
    later.screenshot("lookup-by-phone-wrong")

    other.locator("#ref-p").fill(ref_display.lower())
    other.locator("#p4").fill("5678")
    other.locator("#lookup-by-phone button").click()
    expect(other.locator("h1")).to_contain_text(ref_display)
    expect(other.locator(".message")).to_have_text("小区北门的台阶塌了一块，老人进出容易摔倒，请尽快修补。")
    expect(other.locator("#read-only")).to_contain_text("您是用手机号后四位查询的，本页只显示办理进展")
    assert key not in other.content() and key not in other.url
    expect(other.locator("#rating")).to_have_count(0)
    expect(other.locator("#erase")).to_have_count(0)
    fits(later)
    later.screenshot("lookup-by-phone-track")
    unexpected = [p for p in later.problems + phone.problems if "status of 404" not in p]  # the wrong guess's 404
    assert not unexpected, unexpected


def test_the_lookup_page_offers_both_ways(live_server, phone):
    page = phone.page
    page.goto(live_server.base_url + "/t")
    expect(page.locator("#phone-lookup-hint")).to_contain_text("留言时没有留手机号的，请用查询码查询")
    expect(page.locator("#lookup-by-key")).to_be_hidden()  # behind "有查询码？"
    page.get_by_text("有查询码？用查询码查询").click()
    expect(page.locator("#lookup-by-key")).to_be_visible()
    fits(phone)
    phone.screenshot("lookup-both-ways")
    assert not phone.problems, phone.problems
