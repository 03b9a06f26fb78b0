"""Issue 11's "Done when", in Chromium with WeChat's user agent, as ``make run`` serves it (its service account on):
a resident scans a deputy's code, goes through silent OAuth in the sandbox, writes on the H5 form and accepts the
notices once on the confirmation page (模拟微信's open tag, ``wechat_sandbox/templates/jweixin.js``); the deputy
accepts and forwards to a department with an account, the department answers, the deputy replies and resolves;
the outbox worker (``flask outbox run --once``, as ``make run``'s worker does) delivers after each step. 模拟微信
shows, for that official-account openid, 已提交 (sent once the resident accepted: the submission's own row went
before it and was skipped), 受理, the department's answer, the reply and 办结 — each once, from one long-term
acceptance, each linking to the tracking page (and 已交办, the forward, which the resident is told too).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from playwright.sync_api import expect
from sqlalchemy import create_engine, text

from tests.browser.conftest import demo_server, fits, log_in

pytestmark = pytest.mark.browser

MESSAGE = "神农路菜市场门口的下水道井盖松动，踩上去会翻，老人小孩经过很危险，请尽快处理。"
DEPARTMENT = "炎陵县住房和城乡建设局"  # the demo's "department" account belongs to it
OA_TEMPLATE = "tpl-oa-item-progress"  # DEFAULT_WECHAT_MP_TEMPLATES: long-term
DEPARTMENT_ANSWER = "已更换井盖并加装防盗锁扣。"
REPLY = "井盖已由县住建局更换加固，感谢您的反映。"
OPENID_COOKIE = "wechat_sandbox_openid"  # wechat_sandbox.routes: this browser's WeChat user


@pytest.fixture(scope="module")
def service_account_server(chromium_executable, tmp_path_factory) -> Iterator:
    """The demo county as ``make run`` serves it with scripts/run.sh's service account (silent OAuth, JS-SDK,
    subscribe notices to H5 residents) and push token."""
    overrides = {
        "WECHAT_MP_APPID": "wx-sandbox-mp",
        "WECHAT_MP_SECRET": "sandbox-mp-secret",
        "WECHAT_PUSH_TOKEN": "sandbox-push-token",
    }
    with demo_server(tmp_path_factory.mktemp("h5_notices"), overrides) as server:
        yield server


def delivered_to(server, openid: str) -> list[dict]:
    """Run the outbox worker until nothing is due (as make run's worker does); every message 模拟微信 holds for
    ``openid`` (a resident's official-account openid), oldest first."""
    server.flask("outbox", "run", "--once")
    return requests.get(f"{server.base_url}/_wechat/sandbox/messages", params={"openid": openid}, timeout=10).json()


def statuses(messages: list[dict]) -> list[str]:
    """The status each progress notice names (its ``phrase2``), in order."""
    return [m["data"]["phrase2"]["value"] for m in messages]


def test_one_acceptance_on_the_confirmation_page_brings_every_step(service_account_server, phone, open_phone):
    server = service_account_server
    base = server.base_url
    resident = phone.page

    def deliver() -> list[dict]:
        return delivered_to(server, openid)

    # 1. The resident scans the deputy's code in WeChat: silent OAuth in the sandbox, and back to the form.
    code_url = server.demo_codes()["deputy"].url
    seen: list[str] = []
    resident.on("request", lambda r: seen.append(r.url) if r.is_navigation_request() else None)
    resident.goto(code_url)
    expect(resident.locator("#body")).to_be_visible()
    assert any("/_wechat/connect/oauth2/authorize" in url and "snsapi_base" in url for url in seen), seen
    # Back on the code's own page (the authorize URL's #wechat_redirect stays, as browsers keep a fragment).
    assert resident.url.split("#")[0].split("?")[0] == code_url, resident.url
    openid = next(c["value"] for c in resident.context.cookies() if c["name"] == OPENID_COOKIE)

    # 2. It writes; the submission's own notice goes before anyone accepted anything (skipped, as in make run).
    resident.locator("#body").fill(MESSAGE)
    resident.locator("#category").select_option(label="交通出行")
    resident.locator("#submit-button").click()
    expect(resident.locator("h1")).to_have_text("提交成功")
    ref = resident.locator("#ref").inner_text().strip().replace("-", "")
    track_url = resident.locator("#track-link").get_attribute("href")
    assert deliver() == []

    # 3. The confirmation page offers the open tag; one tap, 允许: notices on, counted once.
    notices = resident.locator("#notices")
    expect(notices).to_contain_text("开启后，受理、答复、办结的每一步都会通过微信通知您。")
    button = resident.locator("#subscribe-button")
    expect(button.get_by_role("button", name="开启办理进展通知")).to_be_visible()  # the wxtag-template, rendered
    fits(phone)
    phone.screenshot("h5-confirmation-notices")
    button.click()
    sheet = resident.locator("#wx-subscribe-sheet")
    expect(sheet).to_contain_text("办理进度通知")
    phone.screenshot("h5-confirmation-subscribe-sheet")
    sheet.get_by_role("button", name="允许").click()
    expect(resident.locator("#notices-state")).to_contain_text("微信通知已开启")
    expect(button).to_be_hidden()
    phone.screenshot("h5-confirmation-notices-on")
    # No console error, no CSP violation: the open tag's styles go through CSSOM.
    assert phone.problems == [], phone.problems
    subscriptions = requests.get(f"{base}/_wechat/sandbox/subscriptions", params={"openid": openid}, timeout=10)
    assert subscriptions.json() == {OA_TEMPLATE: 1}
    resident.goto(track_url)
    expect(resident.locator("#notices-state")).to_contain_text("微信通知已开启")  # the app counted it too
    # "已提交" now, as the mini-program resident hears it (brief ui14 part 3).
    assert statuses(deliver()) == ["已提交"]

    # 4. The deputy (second browser) accepts: the resident hears of it.
    deputy_phone = open_phone("deputy")
    deputy = deputy_phone.page
    log_in(deputy, base, "deputy")
    deputy.goto(f"{base}/staff/items/{ref}")
    deputy.locator("#form-accept button[type=submit]").click()
    expect(deputy.locator("#item-status")).to_have_text("已受理")
    assert statuses(deliver()) == ["已提交", "已受理"]

    # 5. … and forwards to a department that has an account.
    deputy.locator("#action-forward summary").click()
    deputy.locator("#forward-department").select_option(label=DEPARTMENT)
    deputy.locator("#forward-text").fill("请核查井盖，尽快更换。")
    deputy.get_by_role("button", name="交办", exact=True).click()
    expect(deputy.locator("#department-accounts")).to_contain_text("已进入其“留言办理”待办")
    assert statuses(deliver()) == ["已提交", "已受理", "已交办"]

    # 6. The department (third browser, logged in) answers from its inbox.
    department_phone = open_phone("department")
    department = department_phone.page
    log_in(department, base, "department")
    department.goto(base + "/staff/inbox")
    department.locator("#inbox-list .inbox-row", has_text=MESSAGE[:10]).locator("a").click()
    department.locator("#answer-text").fill(DEPARTMENT_ANSWER)
    department.get_by_role("button", name="提交答复").click()
    expect(department.locator("#notice")).to_contain_text("答复已提交")
    received = deliver()
    assert statuses(received) == ["已提交", "已受理", "已交办", "部门已答复"]
    assert received[-1]["data"]["thing3"]["value"] == f"{DEPARTMENT}已向代表答复"
    assert DEPARTMENT_ANSWER not in str(received)  # the answer itself is the deputy's to pass on

    # 7. The deputy replies (答复) and resolves (办结).
    deputy.goto(f"{base}/staff/items/{ref}")
    expect(deputy.locator("#forwards")).to_contain_text(DEPARTMENT_ANSWER)
    deputy.locator("#reply-text").fill(REPLY)
    deputy.get_by_role("button", name="发送答复").click()
    expect(deputy.locator("#item-status")).to_have_text("已答复")
    assert statuses(deliver()) == ["已提交", "已受理", "已交办", "部门已答复", "已答复"]
    deputy.locator("#action-resolve label", has_text="已解决").click()
    deputy.get_by_role("button", name="办结", exact=True).click()
    expect(deputy.locator("#item-status")).to_have_text("已办结")
    received = deliver()
    assert statuses(received) == ["已提交", "已受理", "已交办", "部门已答复", "已答复", "已解决"]

    # Every one through the service account, with the one long-term template, linking to the tracking page.
    assert {(m["kind"], m["template_id"], m["url"]) for m in received} == {("bizsend", OA_TEMPLATE, track_url)}
    assert deliver() == received  # a worker run later sends nothing twice
    subscriptions = requests.get(f"{base}/_wechat/sandbox/subscriptions", params={"openid": openid}, timeout=10)
    assert subscriptions.json() == {OA_TEMPLATE: 1}  # one acceptance, still on
    engine = create_engine(server.env["DATABASE_URL"])
    try:
        with engine.connect() as conn:
            credits = conn.execute(
                text("SELECT credits FROM subscription_credits WHERE openid = :o AND template_id = :t"),
                {"o": openid, "t": OA_TEMPLATE},
            ).scalar_one()
            kinds = conn.execute(
                text(
                    "SELECT o.kind, o.status FROM outbox_messages o JOIN items i ON i.id = o.item_id "
                    "WHERE i.ref = :ref AND o.resident_id IS NOT NULL ORDER BY o.id"
                ),
                {"ref": ref},
            ).all()
    finally:
        engine.dispose()
    assert credits == 1
    assert [tuple(row) for row in kinds] == [
        ("item_received", "skipped"),  # before the acceptance
        ("item_received", "sent"),  # queued by the acceptance
        ("item_accepted", "sent"),
        ("item_forwarded", "sent"),
        ("item_department_replied", "sent"),
        ("item_answered", "sent"),
        ("item_resolved", "sent"),
    ]

    # 8. 模拟微信's page shows them for that openid, newest first; each 详情 opens the tracking page.
    resident.goto(f"{base}/_wechat/#user-{openid}")
    person = resident.locator(f"#user-{openid}")
    cards = person.locator("article.notification")
    expect(cards).to_have_count(6)
    expect(cards.first).to_contain_text("已解决")
    shown = [card.inner_text() for card in cards.all()]
    status_lines = [line for card in shown for line in card.splitlines() if line.startswith("状态：")]
    assert status_lines == [
        "状态：已解决",
        "状态：已答复",
        "状态：部门已答复",
        "状态：已交办",
        "状态：已受理",
        "状态：已提交",
    ]
    assert all("公众号订阅通知" in card for card in shown)
    assert {link.get_attribute("href") for link in person.get_by_role("link", name="详情").all()} == {track_url}
    fits(phone)
    person.screenshot(path=str(phone.screenshot("h5-sandbox-page").with_name("h5-sandbox-openid.png")))
    person.get_by_role("link", name="详情").first.click()
    expect(resident.locator(".status-line")).to_contain_text("已办结")
    assert deputy_phone.problems == [] and department_phone.problems == []

    # A push in the wrong hands (a signature not made with the app's token) switches nothing off.
    reject = (
        f"<xml><ToUserName><![CDATA[gh_sandbox]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>"
        "<CreateTime>1764720000</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        "<Event><![CDATA[subscribe_msg_change_event]]></Event><SubscribeMsgChangeEvent><List>"
        f"<TemplateId><![CDATA[{OA_TEMPLATE}]]></TemplateId><SubscribeStatusString><![CDATA[reject]]>"
        "</SubscribeStatusString></List></SubscribeMsgChangeEvent></xml>"
    )
    forged = requests.post(
        f"{base}/wechat/push",
        params={"signature": "0" * 40, "timestamp": "1764720000", "nonce": "forged"},
        data=reject.encode(),
        headers={"Content-Type": "text/xml"},
        timeout=10,
    )
    assert forged.status_code == 403
    resident.goto(track_url)
    expect(resident.locator("#notices-state")).to_contain_text("微信通知已开启")
