"""被满意 closed, on 360-px phones: the deputy enters an item met in person and shows the receipt; the
resident scans its QR code (decoded by zxing-cpp from a screenshot of the deputy's screen) with their
own phone, claims the item and, once it is resolved, rates it. The deputy's logged-in browser can
neither claim with the receipt's link nor rate with the resident's link."""

from __future__ import annotations

import io
import re

import pytest
import zxingcpp
from PIL import Image
from playwright.sync_api import expect

from tests.browser.conftest import fits, log_in

pytestmark = pytest.mark.browser

MESSAGE = "接待日反映：十都村到镇上的班车下午四点以后就没有了，老人看病不方便。电话 139 8765 4321。"
REPLY = "已与县公交公司协调，下午增加两班车，下周一起运行。"


def decode_qr(png: bytes) -> str:
    """The one QR code zxing-cpp finds in a screenshot."""
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)), formats=zxingcpp.BarcodeFormat.QRCode)
    assert len(found) == 1, f"{len(found)} QR codes in the screenshot"
    return found[0].text


def test_receipt_claim_and_rating_by_the_resident_only(live_server, phone, open_phone):
    # 1. The deputy logs in and enters what a resident said on the reception day.
    deputy_phone = open_phone("deputy")
    deputy = deputy_phone.page
    log_in(deputy, live_server.base_url, "deputy")
    deputy.goto(live_server.base_url + "/staff/in-person")
    deputy.locator("#channel_note").fill("12月2日联络站接待日")
    deputy.locator("#body").fill(MESSAGE)
    deputy.locator("#category").select_option(label="交通出行")
    deputy_phone.screenshot("claim-1-in-person-form")
    deputy.get_by_role("button", name="录入").click()

    # 2. The receipt: a QR code on the deputy's screen, and no key anywhere.
    expect(deputy.locator("#receipt-notice")).to_contain_text("本人的手机")
    ref_display = deputy.locator("#ref").inner_text().strip()
    fits(deputy_phone)
    deputy_phone.screenshot("claim-2-receipt")
    qr = deputy.locator("#receipt-qr")
    qr.scroll_into_view_if_needed()
    claim_url = decode_qr(qr.screenshot())
    assert re.fullmatch(re.escape(live_server.base_url) + r"/r/[A-Za-z0-9_-]{22}", claim_url), claim_url
    assert claim_url == deputy.locator("#claim-url").inner_text().strip()
    assert "/t/" not in deputy.content() and deputy.locator("#access-key").count() == 0
    expect(deputy.locator(".js-print")).to_be_visible()

    # 3. The deputy's own logged-in browser cannot claim it.
    refused = deputy.goto(claim_url)
    assert refused is not None and refused.status == 403
    expect(deputy.locator("main")).to_contain_text("不能认领")
    fits(deputy_phone)
    deputy_phone.screenshot("claim-3-staff-refused")

    # 4. The resident scans it with their own phone and claims it: the key is made there.
    resident = phone.page
    resident.goto(claim_url)
    expect(resident.locator("#claim-ref")).to_have_text(ref_display)
    expect(resident.locator("#claim-body")).to_contain_text("139****4321")  # a slip can be lost and found
    fits(phone)
    phone.screenshot("claim-4-claim-page")
    resident.get_by_role("button", name="用这部手机认领").click()
    expect(resident.locator("#claimed h1")).to_have_text("认领成功")
    key = resident.locator("#access-key").inner_text().strip()
    track_url = resident.locator("#track-link").get_attribute("href")
    assert re.fullmatch(r"[2-9A-HJ-NP-TV-Z]{17}", key) and key in track_url
    expect(resident.locator("#timeline")).to_contain_text("本人已认领")
    fits(phone)
    phone.screenshot("claim-5-claimed")
    # The receipt works once: scanned again, it says so.
    resident.goto(claim_url)
    expect(resident.locator("#claim-refused h1")).to_have_text("回执已被认领")

    # 5. The deputy handles it: the item page says it was claimed, and shows no key.
    deputy.goto(live_server.base_url + "/staff/inbox")
    deputy.locator("#inbox-list .inbox-row", has_text=ref_display).locator("a").click()
    expect(deputy.locator("#claim-status")).to_contain_text("群众已认领")
    assert key not in deputy.content()
    deputy.locator("#form-accept button[type=submit]").click()
    expect(deputy.locator("#item-status")).to_have_text("已受理")
    deputy.locator("#reply-text").fill(REPLY)
    deputy.get_by_role("button", name="发送答复").click()
    deputy.locator("#action-resolve label", has_text="已解决").click()
    deputy.get_by_role("button", name="办结", exact=True).click()
    expect(deputy.locator("#item-status")).to_have_text("已办结")
    fits(deputy_phone)
    deputy_phone.screenshot("claim-6-item-page")

    # 6. Even holding the resident's link, the deputy's browser cannot rate.
    deputy.goto(track_url)
    deputy.locator("#rating label.choice", has_text=re.compile(r"^\s*满意\s*$")).click()
    deputy.locator("#rating label.choice", has_text="已解决").click()
    with deputy.expect_response(lambda r: r.request.method == "POST") as posted:
        deputy.get_by_role("button", name="提交评价").click()
    assert posted.value.status == 403
    expect(deputy.locator("main")).to_contain_text("工作人员账号不能评价")
    deputy_phone.screenshot("claim-7-staff-cannot-rate")

    # 7. The resident rates, once, on their own phone.
    resident.goto(track_url)
    resident.locator("#rating label.choice", has_text=re.compile(r"^\s*满意\s*$")).click()
    resident.locator("#rating label.choice", has_text="已解决").click()
    resident.get_by_role("button", name="提交评价").click()
    expect(resident.locator("#rating")).to_have_count(0)
    expect(resident.locator("#timeline")).to_contain_text("满意；问题已解决。")
    fits(phone)
    phone.screenshot("claim-8-rated")

    # The refusals above answer 403 and 409 on purpose (the browser logs those loads); nothing else went wrong.
    refusals = re.compile(r"Failed to load resource: the server responded with a status of (403|409)")
    assert [p for p in phone.problems + deputy_phone.problems if not refusals.search(p)] == []
