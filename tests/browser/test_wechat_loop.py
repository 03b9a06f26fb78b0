"""The WeChat loop, as ``make run`` serves it (gunicorn, demo county, the local WeChat sandbox on):
a resident writes from a deputy's code in the mini-program (its real page logic, in Node, logged in with
WeChat, accepting the subscription), the deputy answers on their phone, the outbox worker delivers
(``flask outbox run --once``), and the 模拟微信 page shows the resident's notification."""

from __future__ import annotations

import base64
import io
import json
import os
import secrets
import shutil
import time
from pathlib import Path

import pytest
import requests
import zxingcpp
from PIL import Image
from playwright.sync_api import expect

from tests.browser.conftest import (
    SCREENSHOT_DIR,
    log_in,
)
from tests.helpers import missing_tool, run_to_end

pytestmark = pytest.mark.browser

REPO_ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = REPO_ROOT / "miniprogram_stub" / "test" / "scenarios.js"
MESSAGE = "小区门口的路灯坏了半个月，晚上老人出门很不方便，请帮忙修一修。"
REPLY = "路灯已请镇政府安排维修，今晚恢复照明，感谢您的反映。"
DELIVERY_SECONDS = 30


def node_or_skip() -> str:
    path = shutil.which("node")
    if path is None:
        reason = "no Node.js (node) on PATH: the mini-program's pages run in Node"
        missing_tool(reason)
    return path


def mini_program_submits(node: str, base_url: str, slug: str, openid: str, deputy_name: str) -> dict:
    """The mini-program's form page (miniprogram_stub, in Node): WeChat login, subscription accepted, message sent;
    its item page and "my items" show the message as sent to ``deputy_name``."""
    env = {"baseUrl": base_url, "sandboxUrl": base_url + "/_wechat/", "openid": openid, "slug": slug, "body": MESSAGE}
    env["deputyName"] = deputy_name
    output = run_scenario(node, "submit", env)
    line = next(line for line in output.splitlines() if line.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


def run_scenario(node: str, scenario: str, env: dict) -> str:
    """Run one of the mini-program's scenarios (miniprogram_stub, in Node) with ``env``; what it printed."""
    return run_to_end([node, str(SCENARIOS), scenario], {**os.environ, "STUB_ENV": json.dumps(env)}, SCENARIOS.parent)


def deliver_until(live_server, openid: str, template_id: str) -> list[dict]:
    """Run the outbox worker once at a time until ``openid`` received ``template_id``; return what they received."""
    deadline = time.monotonic() + DELIVERY_SECONDS
    while True:
        output = live_server.flask("outbox", "run", "--once")
        messages = requests.get(
            live_server.base_url + "/_wechat/sandbox/messages", params={"openid": openid}, timeout=10
        ).json()
        if any(m["template_id"] == template_id for m in messages):
            return messages
        if time.monotonic() > deadline:
            status = live_server.flask("outbox", "status") + live_server.flask("outbox", "dead")
            pytest.fail(f"no {template_id} for {openid} after {DELIVERY_SECONDS}s: {messages}\n{output}\n{status}")
        time.sleep(1)


def test_resident_is_told_in_wechat_when_the_deputy_answers(live_server, phone):
    node = node_or_skip()
    base = live_server.base_url
    openid = "o-resident-" + secrets.token_hex(4)
    deputy_code = live_server.demo_codes()["deputy"]
    slug = deputy_code.url.rsplit("/c/", 1)[1]
    templates = requests.get(base + "/api/v1/wechat/templates", timeout=10).json()
    purposes = {t["purpose"]: t["id"] for t in templates["templates"]}

    # 1. The resident scans the deputy's code with WeChat and writes in the mini-program.
    submitted = mini_program_submits(node, base, slug, openid, deputy_code.owner_name)
    ref = submitted["ref"]
    assert purposes["item_answered"] in submitted["templateIds"]
    left = requests.get(base + "/_wechat/sandbox/subscriptions", params={"openid": openid}, timeout=10).json()
    assert left[purposes["item_answered"]] == 1  # accepted in WeChat, one message allowed
    mine = requests.get(
        base + "/api/v1/me/items", headers={"Authorization": f"Bearer {submitted['residentToken']}"}, timeout=10
    ).json()
    assert [row["ref"] for row in mine["items"]] == [ref]

    # 2. The deputy answers on their phone.
    deputy = phone.page
    log_in(deputy, base, "deputy")
    deputy.goto(f"{base}/staff/items/{ref}")
    expect(deputy.locator("#item-body")).to_have_text(MESSAGE)
    deputy.locator("#form-accept button[type=submit]").click()
    expect(deputy.locator("#item-status")).to_have_text("已受理")
    deputy.locator("#reply-text").fill(REPLY)
    deputy.get_by_role("button", name="发送答复").click()
    expect(deputy.locator("#item-status")).to_have_text("已答复")

    # 3. The worker delivers after the commit; WeChat (the sandbox) spends the resident's acceptance.
    received = deliver_until(live_server, openid, purposes["item_answered"])
    answered = [m for m in received if m["template_id"] == purposes["item_answered"]]
    assert len(answered) == 1
    assert answered[0]["page"] == f"pages/item/item?ref={ref}"
    summary = answered[0]["data"]["thing3"]["value"]
    assert REPLY.startswith(summary.rstrip("…")) and len(summary) <= 20

    # 4. 模拟微信: what the resident sees in WeChat.
    deputy.goto(base + "/_wechat/")
    person = deputy.locator(f"#user-{openid}")
    expect(person).to_be_visible()
    notice = person.locator("article.notification", has_text="留言回复通知")
    expect(notice).to_have_count(1)
    expect(notice).to_contain_text(ref)
    expect(notice).to_contain_text(summary)
    expect(notice).to_contain_text(f"pages/item/item?ref={ref}")
    expect(person).to_contain_text("办理进度通知")  # "received" came first, spending the progress acceptance
    phone.screenshot("wechat-loop-simulated-wechat")
    person.screenshot(path=str(SCREENSHOT_DIR / "wechat-loop-resident.png"))
    assert not phone.problems, phone.problems


def test_deputy_binds_wechat_by_scanning_the_code_on_their_page(live_server, phone):
    node = node_or_skip()
    base = live_server.base_url
    deputy = phone.page
    log_in(deputy, base, "deputy", "/staff/wechat-binding")
    expect(deputy.locator("h1")).to_have_text("绑定微信")
    deputy.locator("#create-binding-code").click()
    expect(deputy.locator("#binding-code")).to_be_visible()
    assert deputy.locator("#binding-qr").count() == 1, live_server.log_tail()
    code = deputy.locator("#binding-code").inner_text().strip()
    png = base64.b64decode(deputy.locator("#binding-qr").get_attribute("src").split(",", 1)[1])
    scanned = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)), formats=zxingcpp.BarcodeFormat.QRCode)
    assert [barcode.text for barcode in scanned] == [f"b={code}"]  # the scene the bind page reads
    assert phone.scroll_width() <= phone.width
    phone.screenshot("wechat-binding-code")

    # The deputy scans it with WeChat: the mini-program's bind page gets scene "b=<code>".
    openid = "o-deputy-" + secrets.token_hex(4)
    env = {"baseUrl": base, "sandboxUrl": base + "/_wechat/", "bindingCode": code, "deputyOpenid": openid}
    env["displayName"] = live_server.demo_codes()["deputy"].owner_name  # the demo's deputy account is theirs
    run_scenario(node, "bind", env)
    deputy.reload()
    expect(deputy.locator("#binding-status")).to_contain_text("已绑定微信")
    assert not phone.problems, phone.problems
