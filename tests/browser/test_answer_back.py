"""The resident answers back on a 360-px phone: the deputy asks for more (等待群众补充), the tracking page says
"待您补充" with the question, the resident answers with text and a photo, the item's clock runs again and the
deputy reads the answer (the outbox row that tells them is checked in tests/test_resident_answer.py)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import fits, log_in, write_to
from tests.helpers import jpeg_bytes

pytestmark = pytest.mark.browser

MESSAGE = "霞阳镇沿河步道的护栏断了一截，晚上散步的人多，很危险，请尽快修好。"
QUESTION = "请补充护栏断开处的具体位置（附近的标志或门牌），最好附一张照片。"
ANSWER = "在沿河步道靠近霞阳大桥东头，路灯杆编号 XY-017 旁边。"


def test_the_resident_answers_a_request_for_more(live_server, phone, open_phone):
    resident = phone.page
    ref_display = write_to(resident, live_server.demo_codes()["deputy"].url, MESSAGE, "城乡建设")
    track_url = resident.locator("#track-link").get_attribute("href")

    deputy_phone = open_phone("deputy")
    deputy = deputy_phone.page
    log_in(deputy, live_server.base_url, "deputy")
    deputy.goto(live_server.base_url + "/staff/items/" + ref_display.replace("-", ""))
    deputy.locator("#form-accept button[type=submit]").click()
    expect(deputy.locator("#item-status")).to_have_text("已受理")
    deputy.locator("#action-wait_for_resident summary").click()
    deputy.locator("#wait-text").fill(QUESTION)
    deputy.get_by_role("button", name="暂停计时").click()
    expect(deputy.locator("#notice")).to_contain_text("等待群众补充")

    # The resident's tracking page asks, with the question.
    resident.goto(track_url)
    expect(resident.locator("#waiting-badge")).to_have_text("待您补充")
    expect(resident.locator("#waiting-question")).to_have_text(QUESTION)
    expect(resident.locator("#follow-up")).to_have_count(0)
    fits(phone)
    phone.screenshot("answer-back-waiting")

    # An empty answer is refused, and says so.
    resident.locator("#reply-submit").click()
    expect(resident.locator("#answer-error")).to_contain_text("请填写补充内容")
    fits(phone)
    phone.screenshot("answer-back-error")

    resident.locator("#reply-text").fill(ANSWER)
    resident.locator("#reply-photos").set_input_files(
        files=[{"name": "护栏.jpg", "mimeType": "image/jpeg", "buffer": jpeg_bytes((320, 240))}]
    )
    resident.locator("#reply-submit").click()
    expect(resident.locator("#answer-sent")).to_contain_text("办理计时已恢复")
    expect(resident.locator("#waiting-badge")).to_have_count(0)
    expect(resident.locator("#timeline")).to_contain_text("您的补充")
    expect(resident.locator("#timeline")).to_contain_text(ANSWER)
    photo = resident.locator("#timeline .photos img")
    expect(photo).to_have_count(1)
    photo.scroll_into_view_if_needed()
    resident.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=photo.element_handle())
    expect(resident.locator("#follow-up")).to_be_visible()  # the item is open and running: a 追问 is possible
    fits(phone)
    phone.screenshot("answer-back-sent")

    # The deputy reads it; the clock runs again (the resume action is no longer offered).
    deputy.reload()
    expect(deputy.locator("body")).to_contain_text("群众补充情况")
    expect(deputy.locator("body")).to_contain_text(ANSWER)
    expect(deputy.locator("#form-resume")).to_have_count(0)
    expect(deputy.locator("#action-wait_for_resident")).to_have_count(1)
    fits(deputy_phone)
    deputy_phone.screenshot("answer-back-deputy")
