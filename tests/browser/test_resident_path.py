"""The resident's path in a phone browser: scan a code, write, submit, get a reference, follow it."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.helpers import jpeg_bytes

pytestmark = pytest.mark.browser

MESSAGE = "霞阳镇炎帝大道人行道有三块地砖松动，下雨天踩上去会溅水，老人容易滑倒，请尽快修补。"
CATEGORY = "城乡建设"
RESIDENT_NAME = "王桂芳"
RESIDENT_PHONE = "13912345678"
REF_PATTERN = re.compile(r"^[0-9A-Z]{4}-[0-9A-Z]{4}$")


def fill_contact(page) -> None:
    """Name, phone and the consent box, as a resident who wants to be called back fills them."""
    page.locator("#name").fill(RESIDENT_NAME)
    page.locator("#phone").fill(RESIDENT_PHONE)
    page.locator("input[name=consent]").check()


def test_deputy_code_from_form_to_timeline(live_server, phone):
    deputy = live_server.demo_codes()["deputy"]
    page = phone.page

    response = page.goto(deputy.url)
    assert response is not None and response.status == 200
    expect(page.locator("h1.name")).to_have_text(deputy.owner_name)
    expect(page.get_by_role("heading", name="我要留言")).to_be_visible()
    assert phone.scroll_width() <= phone.width

    counter = page.locator("#body-counter")
    expect(counter).to_have_text(re.compile(r"^已写0字"))
    page.locator("#body").press_sequentially(MESSAGE[:6])
    expect(counter).to_have_text("已写6字，还可以写994字")
    page.locator("#body").fill(MESSAGE)
    expect(counter).to_have_text(f"已写{len(MESSAGE)}字，还可以写{1000 - len(MESSAGE)}字")

    page.locator("#category").select_option(label=CATEGORY)
    fill_contact(page)
    page.locator("#photos").set_input_files(
        files=[{"name": "地砖.jpg", "mimeType": "image/jpeg", "buffer": jpeg_bytes((320, 240))}]
    )
    assert phone.scroll_width() <= phone.width
    phone.screenshot("deputy-form")

    page.locator("#submit-button").click()
    expect(page.locator("h1")).to_have_text("提交成功")
    ref = page.locator("#ref").inner_text().strip()
    assert REF_PATTERN.match(ref), ref
    expect(page.locator(".steps")).to_contain_text(f"{deputy.owner_name}代表")
    photo = page.locator(".photos img")
    expect(photo).to_have_count(1)
    photo.scroll_into_view_if_needed()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=photo.element_handle())
    assert phone.scroll_width() <= phone.width
    phone.screenshot("deputy-confirmation")

    page.locator("#track-link").click()
    expect(page.locator("h1")).to_contain_text(ref)
    expect(page.locator("#timeline")).to_contain_text("留言已提交")
    expect(page.locator("section.card p", has_text="类别")).to_have_text(f"类别 {CATEGORY}")
    expect(page.locator(".message")).to_have_text(MESSAGE)
    content = page.content()
    assert RESIDENT_PHONE not in content and RESIDENT_NAME not in content
    assert phone.problems == []


def test_station_code_to_a_chosen_deputy(live_server, phone):
    station = live_server.demo_codes()["station"]
    page = phone.page

    page.goto(station.url)
    expect(page.locator("h1.name")).to_have_text(station.owner_name)
    assert phone.scroll_width() <= phone.width
    choices = page.locator("label.choice", has=page.locator("input[name=deputy_id]:not([value=duty])"))
    assert choices.count() >= 2
    chosen = choices.last  # not the on-duty deputy of the day, whoever that is
    deputy_name = chosen.inner_text().split()[0]
    chosen.locator("input").check()
    page.locator("#body").fill("十都村到镇上的班车下午四点以后就没有了，学生放学回家不方便，希望增加一班。")
    page.locator("#category").select_option(label="交通出行")
    phone.screenshot("station-form")

    page.locator("#submit-button").click()
    expect(page.locator("h1")).to_have_text("提交成功")
    assert REF_PATTERN.match(page.locator("#ref").inner_text().strip())
    expect(page.locator(".steps")).to_contain_text(f"{deputy_name}代表")
    expect(page.locator("section.card p", has_text="承办代表")).to_have_text(f"承办代表 {deputy_name}")
    assert phone.problems == []


def test_empty_message_is_refused_and_the_rest_is_kept(live_server, phone):
    deputy = live_server.demo_codes()["deputy"]
    page = phone.page

    page.goto(deputy.url)
    page.locator("#category").select_option(label="医疗卫生")
    fill_contact(page)
    page.locator("#submit-button").click()

    expect(page.locator("#body-error")).to_have_text("请填写留言内容。")
    expect(page.locator("#name")).to_have_value(RESIDENT_NAME)
    expect(page.locator("#phone")).to_have_value(RESIDENT_PHONE)
    expect(page.locator("input[name=consent]")).to_be_checked()
    expect(page.locator("#category option:checked")).to_have_text("医疗卫生")
    expect(page.locator("#submit-button")).to_be_enabled()
    assert phone.scroll_width() <= phone.width
    phone.screenshot("deputy-form-error")
    # The refused form comes back as a 400 document by design, and Chromium logs that status as an error.
    assert len(phone.problems) == 1, phone.problems
    assert "status of 400" in phone.problems[0] and phone.problems[0].endswith(f"({deputy.url})")


FIRST = "东门口的路灯坏了一个星期，晚上走路看不清，请尽快修好。"
SECOND = "菜市场门前的下水道堵了，一下雨就积水，请安排疏通。"


def read_message(page, track_url: str) -> str:
    """The message a tracking page shows."""
    page.goto(track_url)
    return page.locator(".message").inner_text().strip()


def submit_message(page, body: str) -> str:
    """Write ``body`` into the open form, submit it; the tracking page's URL of the new item."""
    page.locator("#body").fill(body)
    page.locator("#submit-button").click()
    expect(page.locator("h1")).to_have_text("提交成功")
    return page.locator("#track-link").get_attribute("href")


@pytest.mark.parametrize("browser", ["phone", "phone_with_back_forward_cache"])
def test_submit_back_write_another_submit_keeps_both_messages(live_server, request, browser):
    """The back button after a submission, then a second message: two items, each with its own message.
    The form is never stored, so going back fetches it again with a fresh client_id; a browser that keeps
    the page as it was left (back/forward cache) gets a fresh one from the page's script."""
    deputy = live_server.demo_codes()["deputy"]
    phone = request.getfixturevalue(browser)
    page = phone.page
    page.goto(deputy.url)
    first_id = page.locator("input[name=client_id]").input_value()
    first = submit_message(page, FIRST)

    page.go_back(wait_until="commit")  # a page restored from the back/forward cache fires no "load"
    expect(page.get_by_role("heading", name="我要留言")).to_be_visible()
    expect(page.locator("#submit-button")).to_be_enabled()
    assert page.locator("input[name=client_id]").input_value() != first_id
    second = submit_message(page, SECOND)

    assert second != first
    assert read_message(page, second) == SECOND
    assert read_message(page, first) == FIRST
    assert phone.problems == []


def test_a_second_message_under_a_used_client_id_is_refused_and_can_be_sent_again(live_server, phone):
    """Should a browser still send an old client_id with a new message, nothing is lost: the form comes back
    with the message, says so, and a second tap stores it as an item of its own."""
    deputy = live_server.demo_codes()["deputy"]
    page = phone.page
    page.goto(deputy.url)
    used_id = page.locator("input[name=client_id]").input_value()
    first = submit_message(page, FIRST)

    page.goto(deputy.url)
    page.locator("input[name=client_id]").evaluate("(input, id) => { input.value = id; }", used_id)
    page.locator("#body").fill(SECOND)
    page.locator("#submit-button").click()
    expect(page.locator(".alert")).to_have_text(
        "这条留言和之前提交的另一条留言用了同一个提交编号，没有保存。请再提交一次。"
    )
    expect(page.locator("#body")).to_have_value(SECOND)
    assert page.locator("input[name=client_id]").input_value() != used_id
    assert phone.scroll_width() <= phone.width
    phone.screenshot("deputy-form-client-id-reused")

    page.locator("#submit-button").click()
    expect(page.locator("h1")).to_have_text("提交成功")
    second = page.locator("#track-link").get_attribute("href")
    assert read_message(page, second) == SECOND
    assert read_message(page, first) == FIRST
    # The refused form comes back as a 409 document by design, and Chromium logs that status as an error.
    assert len(phone.problems) == 1 and "status of 409" in phone.problems[0], phone.problems
