"""Subscription accounting: the templates to request, and counting what the user accepted."""

from __future__ import annotations

import hashlib
import json
import secrets
from datetime import timedelta

import pytest

from backend.auth.sessions import hash_secret
from backend.extensions import db
from backend.models import SessionKind, StaffSession, utcnow
from backend.outbox import notifications
from backend.wechat import subscriptions
from tests.factories import county_world, make_resident, outbox_world
from tests.helpers import credits_of, login, resident_token

PROGRESS, ANSWERED, RESOLVED, DEPUTY = "tpl-item-progress", "tpl-item-answered", "tpl-item-resolved", "tpl-deputy-task"


def report(client, token: str | None, results, **kwargs):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.post("/api/v1/wechat/subscriptions", json={"results": results}, headers=headers, **kwargs)


def test_templates_in_calls_of_at_most_three(client, app):
    response = client.get("/api/v1/wechat/templates")
    assert response.status_code == 200
    body = response.get_json()
    assert body["max_per_request"] == 3
    assert body["requests"]["resident"] == [[ANSWERED, RESOLVED, PROGRESS]]  # the answer first
    assert body["requests"]["deputy"] == [[DEPUTY]]
    assert {t["purpose"]: t["id"] for t in body["templates"]} == {
        "item_progress": PROGRESS,
        "item_answered": ANSWERED,
        "item_resolved": RESOLVED,
        "deputy_task": DEPUTY,
    }
    assert all(len(group) <= 3 for groups in body["requests"].values() for group in groups)


def test_more_than_three_templates_are_split_into_calls(client, app):
    templates = dict(app.config["WECHAT_TEMPLATES"])
    # A deployment that maps the resolution to two templates still gets calls of three at most.
    templates["item_extra"] = {"id": "tpl-extra", "fields": {"thing1": "summary"}}
    app.config["WECHAT_TEMPLATES"] = templates
    spec = notifications.KindSpec("resident", "item_extra", lambda ctx: {})
    notifications.KINDS["item_extra_test"] = spec
    try:
        body = client.get("/api/v1/wechat/templates").get_json()
    finally:
        del notifications.KINDS["item_extra_test"]
    assert body["requests"]["resident"] == [[ANSWERED, RESOLVED, PROGRESS], ["tpl-extra"]]


def test_accepts_are_counted_per_user_and_template(client, app):
    token = resident_token(make_resident("o-res-1"))
    response = report(client, token, {PROGRESS: "accept", ANSWERED: "accept", RESOLVED: "reject"})
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {"credits": {ANSWERED: 1, PROGRESS: 1, RESOLVED: 0}}
    assert response.headers["Cache-Control"] == "no-store"
    # The mini-program's raw result object carries errMsg: it is not a template.
    response = report(client, token, {ANSWERED: "accept", "errMsg": "requestSubscribeMessage:ok"})
    assert response.get_json() == {"credits": {ANSWERED: 2}}
    assert credits_of("o-res-1", ANSWERED) == 2
    assert credits_of("o-res-1", RESOLVED) == 0
    # Someone else's count is their own.
    other = resident_token(make_resident("o-res-2"))
    assert report(client, other, {ANSWERED: "accept"}).get_json() == {"credits": {ANSWERED: 1}}
    assert credits_of("o-res-1", ANSWERED) == 2


@pytest.mark.parametrize(
    ("results", "code"),
    [
        ({"tpl-unknown": "accept", PROGRESS: "accept"}, "unknown_template"),
        ({PROGRESS: "maybe"}, "invalid_result"),
        ({}, "invalid_results"),
        (["accept"], "invalid_results"),
        ({"errMsg": "requestSubscribeMessage:ok"}, "invalid_results"),
    ],
)
def test_bad_reports_are_400_and_count_nothing(client, app, results, code):
    token = resident_token(make_resident("o-res-1"))
    response = report(client, token, results)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == code
    assert credits_of("o-res-1", PROGRESS) == 0


def test_only_a_live_resident_token_counts(client, app):
    resident_id = make_resident("o-res-1")
    assert report(client, None, {PROGRESS: "accept"}).status_code == 401
    assert report(client, "not-a-token", {PROGRESS: "accept"}).status_code == 401
    expired = resident_token(resident_id, expires_in=timedelta(seconds=-1))
    assert report(client, expired, {PROGRESS: "accept"}).status_code == 401
    revoked = resident_token(resident_id, revoked=True)
    assert report(client, revoked, {PROGRESS: "accept"}).status_code == 401
    assert credits_of("o-res-1", PROGRESS) == 0
    live = resident_token(resident_id)
    response = client.post("/api/v1/wechat/subscriptions", data="results", headers={"Authorization": f"Bearer {live}"})
    assert response.status_code == 415


def test_a_deputy_reports_with_the_staff_api_token(client, app, create_deputy):
    world = outbox_world()
    secret = secrets.token_urlsafe(32)
    db.session.add(
        StaffSession(
            token_hash=hash_secret(secret),
            staff_user_id=world.staff_user_id,
            kind=SessionKind.API,
            expires_at=utcnow() + timedelta(days=1),
        )
    )
    db.session.commit()
    assert report(client, secret, {DEPUTY: "accept"}).get_json() == {"credits": {DEPUTY: 1}}
    assert credits_of(world.deputy_openid, DEPUTY) == 1


def test_a_resident_without_openid_cannot_subscribe(client, app):
    token = resident_token(make_resident(None))
    response = report(client, token, {PROGRESS: "accept"})
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "no_wechat_identity"


# --- long-term templates, and WeChat's pushes ----------------------------------------------

PUSH_TOKEN = "push-token-for-tests"


def test_templates_name_their_kind(client, app):
    kinds = {t["purpose"]: t["kind"] for t in client.get("/api/v1/wechat/templates").get_json()["templates"]}
    # Residents' progress and deputies' notices are long-term by default (政务民生); the others one-time.
    assert kinds == {
        "item_progress": "long_term",
        "item_answered": "one_time",
        "item_resolved": "one_time",
        "deputy_task": "long_term",
    }


def test_a_long_term_acceptance_is_a_switch_not_a_count(client, app):
    token = resident_token(make_resident("o-res-1"))
    assert report(client, token, {PROGRESS: "accept", ANSWERED: "accept"}).get_json() == {
        "credits": {ANSWERED: 1, PROGRESS: 1}
    }
    # Accepting again: the one-time count grows, the long-term switch stays on.
    assert report(client, token, {PROGRESS: "accept", ANSWERED: "accept"}).get_json() == {
        "credits": {ANSWERED: 2, PROGRESS: 1}
    }
    # Refusing in a later popup: the long-term template is off; one-time credits already given stay.
    assert report(client, token, {PROGRESS: "reject", ANSWERED: "reject"}).get_json() == {
        "credits": {ANSWERED: 2, PROGRESS: 0}
    }


def test_the_caller_sees_whether_notices_are_on_and_what_to_ask_again(client, app):
    token = resident_token(make_resident("o-res-1"))
    headers = {"Authorization": f"Bearer {token}"}
    state = client.get("/api/v1/wechat/subscriptions", headers=headers).get_json()
    assert state["on"] is False and state["ask_again"] == [[ANSWERED, RESOLVED, PROGRESS]]
    report(client, token, {PROGRESS: "accept", ANSWERED: "accept", RESOLVED: "accept"})
    state = client.get("/api/v1/wechat/subscriptions", headers=headers).get_json()
    assert state["on"] is True and state["ask_again"] == []
    assert state["kinds"][PROGRESS] == "long_term" and state["kinds"][ANSWERED] == "one_time"
    assert client.get("/api/v1/wechat/subscriptions").status_code == 401


def signed(token: str = PUSH_TOKEN, timestamp: str = "1700000000", nonce: str = "n0nce") -> dict:
    """The query WeChat's push carries: its signature over our token, a timestamp and a nonce."""
    signature = hashlib.sha1("".join(sorted([token, timestamp, nonce])).encode()).hexdigest()  # noqa: S324 - WeChat's
    return {"signature": signature, "timestamp": timestamp, "nonce": nonce}


def push_xml(event: str, openid: str, entries: list[dict]) -> str:
    """A subscribe event as WeChat pushes it (XML, plaintext mode)."""
    container = {
        "subscribe_msg_popup_event": "SubscribeMsgPopupEvent",
        "subscribe_msg_change_event": "SubscribeMsgChangeEvent",
        "subscribe_msg_sent_event": "SubscribeMsgSentEvent",
    }[event]
    lists = "".join("<List>" + "".join(f"<{k}>{v}</{k}>" for k, v in e.items()) + "</List>" for e in entries)
    return (
        f"<xml><ToUserName>gh_test</ToUserName><FromUserName>{openid}</FromUserName>"
        f"<CreateTime>1700000000</CreateTime><MsgType>event</MsgType><Event>{event}</Event>"
        f"<{container}>{lists}</{container}></xml>"
    )


def switch_xml(event: str, openid: str, template_id: str, status: str) -> str:
    """A popup or change event that switches one template (``status`` is ``accept`` or ``reject``)."""
    return push_xml(event, openid, [{"TemplateId": template_id, "SubscribeStatusString": status}])


def push(client, body: str, query: dict | None = None, content_type: str = "text/xml"):
    return client.post("/wechat/push", query_string=signed() if query is None else query, data=body,
                       content_type=content_type)  # fmt: skip


def test_the_push_url_answers_the_consoles_check_only_when_signed(client, app):
    app.config["WECHAT_PUSH_TOKEN"] = PUSH_TOKEN
    answer = client.get("/wechat/push", query_string={**signed(), "echostr": "echo-123"})
    assert answer.status_code == 200 and answer.get_data(as_text=True) == "echo-123"
    bad = client.get("/wechat/push", query_string={**signed(token="wrong"), "echostr": "echo-123"})
    assert bad.status_code == 403 and "echo-123" not in bad.get_data(as_text=True)


def test_popup_change_and_sent_events_switch_a_long_term_template(client, app):
    app.config["WECHAT_PUSH_TOKEN"] = PUSH_TOKEN
    popup = push_xml("subscribe_msg_popup_event", "o-res-1", [
        {"TemplateId": PROGRESS, "SubscribeStatusString": "accept", "PopupScene": "0"},
        {"TemplateId": "tpl-someone-elses", "SubscribeStatusString": "accept", "PopupScene": "0"},
    ])  # fmt: skip
    answer = push(client, popup)
    assert answer.status_code == 200 and answer.get_data(as_text=True) == "success"
    assert credits_of("o-res-1", PROGRESS) == 1
    assert push(client, popup).status_code == 200  # pushed twice (WeChat retries): still one switch
    assert credits_of("o-res-1", PROGRESS) == 1
    assert credits_of("o-res-1", "tpl-someone-elses") == 0  # not ours: ignored
    off = switch_xml("subscribe_msg_change_event", "o-res-1", PROGRESS, "reject")
    assert push(client, off).status_code == 200
    assert credits_of("o-res-1", PROGRESS) == 0
    on = switch_xml("subscribe_msg_change_event", "o-res-1", PROGRESS, "accept")
    assert push(client, on).status_code == 200 and credits_of("o-res-1", PROGRESS) == 1
    ok = push_xml("subscribe_msg_sent_event", "o-res-1", [
        {"TemplateId": PROGRESS, "MsgID": "1", "ErrorCode": "0", "ErrorStatus": "success"},
    ])  # fmt: skip
    assert push(client, ok).status_code == 200 and credits_of("o-res-1", PROGRESS) == 1
    refused = push_xml("subscribe_msg_sent_event", "o-res-1", [
        {"TemplateId": PROGRESS, "MsgID": "2", "ErrorCode": "43101", "ErrorStatus": "fail"},
    ])  # fmt: skip
    assert push(client, refused).status_code == 200 and credits_of("o-res-1", PROGRESS) == 0


def test_a_json_push_is_read_like_xml(client, app):
    app.config["WECHAT_PUSH_TOKEN"] = PUSH_TOKEN
    body = json.dumps(
        {
            "ToUserName": "gh_test",
            "FromUserName": "o-res-1",
            "CreateTime": 1700000000,
            "MsgType": "event",
            "Event": "subscribe_msg_popup_event",
            "List": [{"TemplateId": DEPUTY, "SubscribeStatusString": "accept"}],
        }
    )
    assert push(client, body, content_type="application/json").status_code == 200
    assert credits_of("o-res-1", DEPUTY) == 1


def test_a_one_time_acceptance_is_counted_from_the_page_only(client, app):
    """The push and the page report the same acceptance: a one-time credit is counted once, from the page."""
    app.config["WECHAT_PUSH_TOKEN"] = PUSH_TOKEN
    token = resident_token(make_resident("o-res-1"))
    report(client, token, {ANSWERED: "accept"})
    popup = switch_xml("subscribe_msg_popup_event", "o-res-1", ANSWERED, "accept")
    assert push(client, popup).status_code == 200
    assert credits_of("o-res-1", ANSWERED) == 1
    # Switched off in WeChat's settings: no credit is left, whatever its kind.
    off = switch_xml("subscribe_msg_change_event", "o-res-1", ANSWERED, "reject")
    assert push(client, off).status_code == 200 and credits_of("o-res-1", ANSWERED) == 0


@pytest.mark.parametrize(
    ("query", "body", "status"),
    [
        ("wrong-token", "popup", 403),  # signed with another token
        ("no-signature", "popup", 403),
        ("stale", "popup", 403),  # a signature for another timestamp
        ("good", "<xml><unclosed>", 400),
        ("good", "not a message", 400),
        ("good", "<xml><MsgType>event</MsgType><Event>subscribe_msg_popup_event</Event></xml>", 400),  # no openid
        ("good", "popup-bad-status", 400),
        ("good", '{"MsgType": "event", "Event": "subscribe_msg_popup_event", "FromUserName": "o-res-1"}', 400),
        ("good", '<!DOCTYPE x [<!ENTITY e "accept">]><xml><FromUserName>o-res-1</FromUserName></xml>', 400),
    ],
)
def test_bad_pushes_are_refused_and_write_nothing(client, app, query, body, status):
    app.config["WECHAT_PUSH_TOKEN"] = PUSH_TOKEN
    queries = {
        "wrong-token": signed(token="not-ours"),
        "no-signature": {"timestamp": "1700000000", "nonce": "n"},
        "stale": {**signed(), "timestamp": "1700000001"},
        "good": signed(),
    }
    bodies = {
        "popup": switch_xml("subscribe_msg_popup_event", "o-res-1", PROGRESS, "accept"),
        "popup-bad-status": push_xml("subscribe_msg_popup_event", "o-res-1", [
            {"TemplateId": PROGRESS, "SubscribeStatusString": "accept"},
            {"TemplateId": ANSWERED, "SubscribeStatusString": "maybe"},
        ]),
    }  # fmt: skip
    answer = push(client, bodies.get(body, body), query=queries[query])
    assert answer.status_code == status
    assert credits_of("o-res-1", PROGRESS) == 0 and credits_of("o-res-1", ANSWERED) == 0


def test_without_a_push_token_every_push_is_refused(client, app):
    app.config["WECHAT_PUSH_TOKEN"] = None
    body = switch_xml("subscribe_msg_popup_event", "o-res-1", PROGRESS, "accept")
    assert push(client, body).status_code == 403
    assert credits_of("o-res-1", PROGRESS) == 0


def test_the_received_notice_never_spends_the_one_time_credit_that_acceptance_needs(client, app, create_deputy):
    """ "已提交" is queued with a long-term progress template only; with a one-time one, 受理 keeps the credit."""
    from sqlalchemy import select

    from backend.models import OutboxMessage
    from backend.qr.codes import current_code

    slug = current_code(create_deputy()).slug
    headers = {"Authorization": f"Bearer {resident_token(make_resident('o-res-1'))}"}

    def received_after_submitting() -> int:
        answer = client.post("/api/v1/items", json={"code": slug, "body": "村口路灯坏了三个月。"}, headers=headers)
        assert answer.status_code == 201, answer.get_json()
        kinds = db.session.scalars(select(OutboxMessage.kind)).all()
        db.session.rollback()
        return kinds.count("item_received")

    assert received_after_submitting() == 1  # long-term (the default): told at once
    app.config["WECHAT_TEMPLATES"]["item_progress"]["kind"] = "one_time"
    assert received_after_submitting() == 1  # one-time: no second "received" row


def test_the_staff_pages_say_when_a_bound_wechats_new_item_notices_are_switched_off(
    client, app, create_county, create_station, create_deputy
):
    """Issue 11: a deputy whose bound WeChat switched 待办提醒 off is told on /staff/inbox and the binding page, with
    where to switch it on again (only the mini-program can ask WeChat); not told while it is on, nor when unbound."""
    world = county_world()
    deputy = world.users["deputy"]
    staff = login(app, "deputy_d1")

    def says_off(path: str) -> bool:
        html = staff.get(path).get_data(as_text=True)
        return 'id="notices-off"' in html and "微信通知未开启" in html

    assert not says_off("/staff/inbox") and not says_off("/staff/wechat-binding")  # not bound: nothing to switch
    deputy.wechat_openid = "o-dep-1"
    db.session.commit()
    assert says_off("/staff/inbox")  # bound, never accepted
    binding = staff.get("/staff/wechat-binding").get_data(as_text=True)
    assert says_off("/staff/wechat-binding") and "会通过“码上联”小程序的服务通知提醒您" not in binding
    subscriptions.record_results("o-dep-1", {DEPUTY: "accept"})
    db.session.commit()
    assert not says_off("/staff/inbox") and not says_off("/staff/wechat-binding")
    # Switched off in WeChat's settings: WeChat's push says so, and the pages follow.
    app.config["WECHAT_PUSH_TOKEN"] = PUSH_TOKEN
    off = switch_xml("subscribe_msg_change_event", "o-dep-1", DEPUTY, "reject")
    assert push(client, off).status_code == 200
    assert says_off("/staff/inbox")
    # Another deputy's switch is theirs alone.
    assert not notifications.staff_notices_off(world.users["deputy2"])
