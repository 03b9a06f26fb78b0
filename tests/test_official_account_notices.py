"""The official-account path: an H5 resident subscribes on the page and hears every step through bizsend."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from backend.extensions import db
from backend.models import OutboxMessage, OutboxStatus, Resident, SubscriptionCredit
from backend.outbox import worker
from backend.wechat import jssdk
from tests.factories import outbox_item, outbox_world
from tests.helpers import credits_of
from tests.wechat_server import wechat_sandbox  # noqa: F401 - the fixture

OA_TEMPLATE = "tpl-oa-item-progress"
OA_OPENID = "oa-res-1"
WECHAT_UA = "Mozilla/5.0 (Linux; Android 13) AppleWebKit/537.36 Mobile Safari/537.36 MicroMessenger/8.0.47"
PLAIN_UA = "Mozilla/5.0 (Linux; Android 13) AppleWebKit/537.36 Mobile Safari/537.36"


@pytest.fixture
def h5(app, create_deputy):
    """A deputy, and an item written through the H5 form by a resident known only by the service account."""
    world = outbox_world()
    resident = Resident(mp_openid=OA_OPENID)
    db.session.add(resident)
    db.session.commit()
    world.resident_id = resident.id
    world.item_id = outbox_item(world, resident.id)
    db.session.commit()  # reading the id began a transaction: end it (on SQLite, it holds the write lock)
    return world


def drain() -> None:
    while worker.run_once(20):
        pass


def test_one_acceptance_on_the_page_tells_the_resident_of_every_step(h5, app, wechat_sandbox):  # noqa: F811
    # The open tag in WeChat: the sandbox records it and pushes the popup event to the app, signed.
    answer = wechat_sandbox._control(
        "POST", "oa-subscribe", json={"openid": OA_OPENID, "template_id": OA_TEMPLATE, "status": "accept"}
    )
    assert answer["pushed"] == 200
    assert credits_of(OA_OPENID, OA_TEMPLATE) == 1  # counted from the push
    for kind in ("item_accepted", "item_forwarded", "item_answered", "item_resolved"):
        db.session.add(OutboxMessage(kind=kind, item_id=h5.item_id, resident_id=h5.resident_id))
    db.session.commit()
    drain()
    messages = wechat_sandbox.messages(OA_OPENID)
    assert [m["kind"] for m in messages] == ["bizsend"] * 4  # four notices, one long-term acceptance
    assert [m["data"]["phrase2"]["value"] for m in messages] == ["已受理", "已交办", "已答复", "已办结"]
    assert all(m["template_id"] == OA_TEMPLATE for m in messages)
    assert messages[0]["url"].startswith(app.config["PUBLIC_BASE_URL"] + "/t/")  # the tracking page, with its key
    statuses = db.session.scalars(select(OutboxMessage.status)).all()
    assert statuses == [OutboxStatus.SENT] * 4
    assert credits_of(OA_OPENID, OA_TEMPLATE) == 1  # long-term: still on
    # Switched off in the popup later: nothing more goes.
    wechat_sandbox._control(
        "POST", "oa-subscribe", json={"openid": OA_OPENID, "template_id": OA_TEMPLATE, "status": "reject"}
    )
    assert credits_of(OA_OPENID, OA_TEMPLATE) == 0
    db.session.add(OutboxMessage(kind="item_waiting", item_id=h5.item_id, resident_id=h5.resident_id))
    db.session.commit()
    drain()
    assert len(wechat_sandbox.messages(OA_OPENID)) == 4
    assert db.session.scalars(select(OutboxMessage.status).order_by(OutboxMessage.id.desc())).first() == (
        OutboxStatus.SKIPPED
    )


def test_the_jsapi_ticket_is_fetched_once_and_kept_in_the_shared_store(app, wechat_sandbox):  # noqa: F811
    first = jssdk.jsapi_ticket()
    app.extensions.pop("wechat_mp_client", None)  # another process: a new client, the same store
    assert jssdk.jsapi_ticket() == first
    assert wechat_sandbox.stats().get("cgi-bin/ticket/getticket") == 1
    config = jssdk.page_config("https://msl.example.cn/t/ABC?k=x#top")
    assert config["openTagList"] == ["wx-open-subscribe"] and config["appId"] == app.config["WECHAT_MP_APPID"]
    import hashlib

    plain = f"jsapi_ticket={first}&noncestr={config['nonceStr']}&timestamp={config['timestamp']}"
    plain += "&url=https://msl.example.cn/t/ABC?k=x"  # the fragment is not signed
    assert config["signature"] == hashlib.sha1(plain.encode()).hexdigest()  # noqa: S324 - WeChat's


def _item(h5):
    from backend.models import Item

    return db.session.get(Item, h5.item_id)


def test_the_tracking_page_offers_the_button_in_wechat_and_says_when_on(h5, client, wechat_sandbox):  # noqa: F811
    item = _item(h5)
    url = f"/t/{item.ref}?k={item.access_key}&new=1"
    page = client.get(url, headers={"User-Agent": WECHAT_UA})
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert f'<wx-open-subscribe template="{OA_TEMPLATE}"' in html and "开启办理进展通知" in html
    assert "https://res.wx.qq.com" in page.headers["Content-Security-Policy"]
    # The page's own report (the tag's success event), then the push for the same acceptance: on, once.
    report = f"/t/{item.ref}/notices?k={item.access_key}"
    csrf = html.split('data-csrf="', 1)[1].split('"', 1)[0]
    answer = client.post(report, json={"results": {OA_TEMPLATE: "accept"}}, headers={"X-CSRFToken": csrf})
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.get_json() == {"credits": {OA_TEMPLATE: 1}}
    wechat_sandbox._control(
        "POST", "oa-subscribe", json={"openid": OA_OPENID, "template_id": OA_TEMPLATE, "status": "accept"}
    )
    assert credits_of(OA_OPENID, OA_TEMPLATE) == 1
    page = client.get(url, headers={"User-Agent": WECHAT_UA}).get_data(as_text=True)
    assert "微信通知已开启" in page and "<wx-open-subscribe" not in page


def test_outside_wechat_the_confirmation_says_progress_shows_only_here(h5, client):
    item = _item(h5)
    page = client.get(f"/t/{item.ref}?k={item.access_key}&new=1", headers={"User-Agent": PLAIN_UA})
    html = page.get_data(as_text=True)
    assert "办理进展只显示在本页" in html and 'id="copy-link"' in html and "<wx-open-subscribe" not in html
    assert "res.wx.qq.com" not in page.headers["Content-Security-Policy"]
    # The button is copy_link.js's, as the tracking page's other copy button (tested in Chromium there).
    link = f"/t/{item.ref}?k={item.access_key}"
    assert (
        f'data-copy-link="{client.application.config["PUBLIC_BASE_URL"]}{link}"' in html
        and 'data-copy-result="copy-result"' in html
    )
    assert "js/copy_link.js" in html


@pytest.mark.parametrize(
    ("key", "body", "status"),
    [
        ("wrong", {"results": {OA_TEMPLATE: "accept"}}, 404),
        (None, {"results": {"tpl-unknown": "accept"}}, 400),
        (None, {"results": {"tpl-item-progress": "accept"}}, 400),  # the mini-program's: not offered on the page
        (None, {"results": {OA_TEMPLATE: "maybe"}}, 400),
        (None, {"results": {}}, 400),
        (None, {"results": ["accept"]}, 400),
        (None, "not json", 400),
    ],
)
def test_bad_reports_from_the_page_are_refused_and_count_nothing(h5, app, client, key, body, status):
    app.config["WTF_CSRF_ENABLED"] = False  # the CSRF token is tested above; here the body
    item = _item(h5)
    url = f"/t/{item.ref}/notices?k={key or item.access_key}"
    if isinstance(body, dict):
        answer = client.post(url, json=body)
    else:
        answer = client.post(url, data=json.dumps(body)[1:], content_type="application/json")
    assert answer.status_code == status
    assert db.session.scalar(select(SubscriptionCredit.id)) is None


def test_a_resident_without_a_service_account_openid_cannot_report(app, client, create_deputy):
    app.config["WTF_CSRF_ENABLED"] = False
    world = outbox_world()
    item_id = outbox_item(world, None)
    from backend.models import Item

    item = db.session.get(Item, item_id)
    answer = client.post(f"/t/{item.ref}/notices?k={item.access_key}", json={"results": {OA_TEMPLATE: "accept"}})
    assert answer.status_code == 409


# -- 模拟微信's open tag: the JS-SDK the sandbox serves under WECHAT_SANDBOX --------------------------------------


def test_under_the_sandbox_the_page_loads_the_sandboxs_js_sdk_and_only_it(h5, app, client, wechat_sandbox):  # noqa: F811
    import requests

    app.config["WECHAT_SANDBOX"] = True  # as `make run`: WeChat's script renders no open tag outside WeChat
    item = _item(h5)
    page = client.get(f"/t/{item.ref}?k={item.access_key}&new=1", headers={"User-Agent": WECHAT_UA})
    html = page.get_data(as_text=True)
    script = wechat_sandbox.url + "open/js/jweixin-1.6.0.js"
    assert f'<script src="{script}">' in html and "res.wx.qq.com" not in html
    origin = wechat_sandbox.url.split("/_wechat/")[0]
    policy = page.headers["Content-Security-Policy"]
    assert f"script-src 'self' {origin};" in policy and "res.wx.qq.com" not in policy
    served = requests.get(script, timeout=5)
    assert served.status_code == 200 and served.headers["Content-Type"].startswith("text/javascript")
    assert 'customElements.define("wx-open-subscribe"' in served.text
    assert '"/_wechat/sandbox/oa-subscribe"' in served.text and f'"{OA_TEMPLATE}": "' in served.text
    assert "cgi-bin/ticket/getticket" in wechat_sandbox.stats()  # the page's wx.config is signed all the same


def test_the_emulated_open_tag_accepts_for_this_browsers_wechat_user(h5, app, wechat_sandbox):  # noqa: F811
    """The tag's sheet posts no openid: the sandbox takes this browser's user, whom its OAuth page named."""
    import requests

    from backend.wechat import api

    browser = requests.Session()
    url = api.oauth_authorize_url("http://127.0.0.1/c/abc", state="s").replace("#wechat_redirect", "")
    assert browser.get(url + f"&openid={OA_OPENID}", allow_redirects=False, timeout=5).status_code == 302
    control = wechat_sandbox.url + "sandbox/oa-subscribe"
    accepted = browser.post(control, json={"template_id": OA_TEMPLATE, "status": "accept"}, timeout=10)
    assert accepted.status_code == 200 and accepted.json()["openid"] == OA_OPENID and accepted.json()["pushed"] == 200
    assert credits_of(OA_OPENID, OA_TEMPLATE) == 1  # the push reached the app, signed
    # Bad inputs: another browser (no WeChat user), a template not offered, a status WeChat never gives.
    stranger = requests.post(control, json={"template_id": OA_TEMPLATE, "status": "accept"}, timeout=10)
    assert stranger.status_code == 400 and "openid" in stranger.json()["error"]
    for body in ({"template_id": "tpl-unknown", "status": "accept"}, {"template_id": OA_TEMPLATE, "status": "maybe"}):
        assert browser.post(control, json=body, timeout=10).status_code == 400, body
    assert wechat_sandbox.subscriptions(OA_OPENID) == {OA_TEMPLATE: 1}


# -- "已提交" for the H5 resident (brief ui14 part 3) ------------------------------------------------------------


def _received_rows(item_id: int) -> list[OutboxStatus]:
    """The statuses of the item's "已提交" rows, oldest first (the read's transaction ended: on SQLite it would keep
    the sandbox's push, which writes through the app, waiting)."""
    rows = db.session.scalars(
        select(OutboxMessage.status)
        .where(OutboxMessage.item_id == item_id, OutboxMessage.kind == "item_received")
        .order_by(OutboxMessage.id)
    ).all()
    db.session.commit()
    return rows


def test_the_h5_resident_hears_submitted_once_they_accept_on_the_confirmation_page(h5, app, client, wechat_sandbox):  # noqa: F811
    """The row queued with the submission goes before the resident could subscribe (skipped, as before); their
    acceptance on the confirmation page queues "已提交" again, which the service account delivers once, linking to
    the tracking page; a second report of the same acceptance tells nothing twice; 受理 follows as before."""
    app.config["WTF_CSRF_ENABLED"] = False  # the report's CSRF token is tested above
    item = _item(h5)
    ref, key, item_id = item.ref, item.access_key, item.id
    db.session.add(OutboxMessage(kind="item_received", item_id=item_id, resident_id=h5.resident_id))
    db.session.commit()
    drain()
    assert wechat_sandbox.messages(OA_OPENID) == [] and _received_rows(item_id) == [OutboxStatus.SKIPPED]

    # The open tag: 模拟微信 records the acceptance (and pushes it), the page reports it.
    wechat_sandbox._control(
        "POST", "oa-subscribe", json={"openid": OA_OPENID, "template_id": OA_TEMPLATE, "status": "accept"}
    )
    report = f"/t/{ref}/notices?k={key}"
    answer = client.post(report, json={"results": {OA_TEMPLATE: "accept"}})
    assert answer.status_code == 200 and answer.get_json() == {"credits": {OA_TEMPLATE: 1}}
    drain()
    messages = wechat_sandbox.messages(OA_OPENID)
    assert [(m["kind"], m["template_id"]) for m in messages] == [("bizsend", OA_TEMPLATE)]
    data = messages[0]["data"]
    assert data["phrase2"]["value"] == "已提交" and data["character_string1"]["value"] == ref
    assert data["thing3"]["value"].startswith("已送达") and data["thing3"]["value"].endswith("请留意答复")
    assert messages[0]["url"] == f"{app.config['PUBLIC_BASE_URL']}/t/{ref}?k={key}"
    assert _received_rows(item_id) == [OutboxStatus.SKIPPED, OutboxStatus.SENT]

    # The same acceptance reported again (a reload, a second tap): nothing more.
    assert client.post(report, json={"results": {OA_TEMPLATE: "accept"}}).status_code == 200
    drain()
    assert len(wechat_sandbox.messages(OA_OPENID)) == 1 and len(_received_rows(item_id)) == 2

    # 受理 is told as before, from the same long-term acceptance.
    db.session.add(OutboxMessage(kind="item_accepted", item_id=item_id, resident_id=h5.resident_id))
    db.session.commit()
    drain()
    assert [m["data"]["phrase2"]["value"] for m in wechat_sandbox.messages(OA_OPENID)] == ["已提交", "已受理"]
    assert credits_of(OA_OPENID, OA_TEMPLATE) == 1


@pytest.mark.parametrize(
    "case",
    ["rejected", "already_accepted", "mini_program_resident", "one_time_template", "no_service_account", "pending"],
)
def test_submitted_is_not_queued_again_when_it_should_not_be(h5, app, client, case):
    """A refusal in the popup; an item already accepted (受理's own notice tells more); a resident the mini-program
    reaches (told through it, by its own rule); a one-time template (its one credit is kept for 受理, the rule the
    mini-program follows); no service account configured; a "已提交" still waiting to go: no row is queued."""
    from backend.models import ItemStatus

    app.config["WTF_CSRF_ENABLED"] = False
    item = _item(h5)
    result = "accept"
    if case == "rejected":
        result = "reject"
    elif case == "already_accepted":
        item.status = ItemStatus.ACCEPTED
    elif case == "mini_program_resident":
        item.resident.openid = "mini-program-openid"
    elif case == "one_time_template":
        app.config["WECHAT_MP_TEMPLATES"] = {"item_progress": {**app.config["WECHAT_MP_TEMPLATES"]["item_progress"]}}
        app.config["WECHAT_MP_TEMPLATES"]["item_progress"]["kind"] = "one_time"
    elif case == "no_service_account":
        app.config["WECHAT_MP_SECRET"] = None
    elif case == "pending":
        db.session.add(OutboxMessage(kind="item_received", item_id=item.id, resident_id=h5.resident_id))
    ref, key, item_id = item.ref, item.access_key, item.id
    db.session.commit()
    before = _received_rows(item_id)
    answer = client.post(f"/t/{ref}/notices?k={key}", json={"results": {OA_TEMPLATE: result}})
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert _received_rows(item_id) == before
