"""The resident withdraws a message and erases their contact on a 360-px phone: each through a confirmation page."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import fits
from tests.browser.test_resident_path import fill_contact

pytestmark = pytest.mark.browser


def submit(page, url: str, message: str) -> None:
    page.goto(url)
    page.locator("#body").fill(message)
    page.locator("#category").select_option(label="城乡建设")
    fill_contact(page)
    page.locator("#submit-button").click()
    expect(page.locator("h1")).to_have_text("提交成功")


def test_withdraw_then_a_second_message_erases_its_contact(live_server, phone):
    deputy = live_server.demo_codes()["deputy"]
    page = phone.page
    submit(page, deputy.url, "小区门口的路灯不亮了，电话13912345678。")

    section = page.locator("#erase")
    section.scroll_into_view_if_needed()
    expect(section.locator("#withdraw-link")).to_have_text("撤回这条留言")
    expect(section.locator("#erase-contact-link")).to_have_text("删除我的联系方式")
    fits(phone)
    phone.screenshot("track-erase-buttons")

    section.locator("#withdraw-link").click()
    expect(page.locator("h1")).to_contain_text("确认撤回这条留言")
    fits(phone)
    phone.screenshot("erase-confirm-withdraw")
    page.locator("#erase-cancel").click()  # changed their mind: nothing happens
    expect(page.locator(".status-line")).to_contain_text("已提交")

    page.locator("#withdraw-link").click()
    page.locator("#erase-submit").click()
    expect(page.locator(".status-line")).to_contain_text("已撤回")
    expect(page.locator("#timeline")).to_contain_text("群众已撤回")
    expect(page.locator(".message")).to_contain_text("139****5678")
    expect(page.locator("#erase")).to_have_count(0)
    fits(phone)
    phone.screenshot("track-withdrawn")

    submit(page, deputy.url, "村里的公交站牌被风吹倒了。")
    page.locator("#erase-contact-link").click()
    expect(page.locator("h1")).to_contain_text("确认删除您的联系方式")
    phone.screenshot("erase-confirm-contact")
    page.locator("#erase-submit").click()
    expect(page.locator(".status-line")).to_contain_text("已提交")  # the message goes on
    expect(page.locator("#timeline")).to_contain_text("群众已删除联系方式")
    expect(page.locator("#erase-contact-link")).to_have_count(0)
    expect(page.locator("#withdraw-link")).to_be_visible()
    fits(phone)
    assert phone.problems == []
