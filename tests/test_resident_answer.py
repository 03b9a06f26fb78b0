"""The resident answers back: the reply to 等待群众补充 (text and photos) and the daily 追问, on the tracking page
and through the API, by the key's holder only; the clock restarts without counting the paused time."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from flask import g
from sqlalchemy import func, select

from backend.errors import UserError
from backend.extensions import db
from backend.items import deadlines
from backend.items.lifecycle import perform_action
from backend.models import ItemEvent, ItemEventKind, ItemPhoto, OutboxMessage, utcnow
from tests.factories import act, make_item
from tests.helpers import api_token, audit_rows, counts, csrf_token_from, fresh_token, jpeg_bytes, login

QUESTION = "请补充路灯的具体位置（门牌号或附近标志），最好附一张照片。"


pytestmark = pytest.mark.usefixtures("count_in_database")


@pytest.fixture
def waiting(world):
    """An item of d1, accepted, that the deputy paused to ask the resident for more."""
    item = make_item(world.d1)
    act(item, world.users["deputy"], "accept")
    act(item, world.users["deputy"], "wait_for_resident", text=QUESTION)
    return item


def track_path(item) -> str:
    return f"/t/{item.ref}?k={item.access_key}"


def post_on_page(client, item, kind: str, text: str, photos=()):
    """Submit the tracking page's 补充 or 追问 form as the resident's browser does."""
    _, token = fresh_token(client, track_path(item))
    data = {"csrf_token": token, "kind": kind, "text": text}
    if photos:
        data["photos"] = [(io.BytesIO(p), f"p{n}.jpg") for n, p in enumerate(photos)]
    return client.post(f"/t/{item.ref}/answer?k={item.access_key}", data=data, content_type="multipart/form-data")


def written() -> dict:
    """Everything an answer writes: events, outbox rows, forwards, photos."""
    return counts() | {"ItemPhoto": db.session.scalar(select(func.count()).select_from(ItemPhoto))}


def events_of(item, kind) -> list[ItemEvent]:
    return list(db.session.scalars(select(ItemEvent).where(ItemEvent.item_id == item.id, ItemEvent.kind == kind)))


# -- the reply to 等待群众补充 ----------------------------------------------------------------------


def test_tracking_page_asks_for_more_with_the_question(client, waiting):
    html = client.get(track_path(waiting)).text
    assert 'id="waiting-badge"' in html and "待您补充" in html
    assert 'id="reply"' in html and QUESTION in html and 'name="photos"' in html
    assert "请您补充" in html  # the request reads as what it is on the timeline, not "办理进展"
    assert 'id="follow-up"' not in html  # while the deputy waits, the resident replies


def test_reply_on_the_page_with_photos_resumes_the_clock_and_tells_the_deputy(app, client, world, waiting):
    # The item waited three days: that time must not count toward the deadline.
    paused_at = utcnow() - timedelta(days=3)
    waiting.paused_at = paused_at
    due_before = waiting.due_at
    db.session.commit()
    response = post_on_page(
        client, waiting, "reply", "在村委会往东50米，电线杆编号 YL-0231。", [jpeg_bytes(), jpeg_bytes()]
    )
    assert response.status_code == 303, response.text
    assert response.headers["Location"].startswith(f"/t/{waiting.ref}?k={waiting.access_key}&sent=reply")
    db.session.refresh(waiting)
    assert waiting.paused_at is None
    waited = waiting.due_at - due_before
    assert waited >= deadlines.working_time_between(paused_at, utcnow() - timedelta(minutes=1))
    (event,) = events_of(waiting, ItemEventKind.RESIDENT_REPLIED)
    assert event.is_public and event.actor_kind.value == "resident" and event.actor_user_id is None
    assert event.body == "在村委会往东50米，电线杆编号 YL-0231。"
    assert len(event.data["photos"]) == 2 and event.data["clock_restarted_after_seconds"] > 0
    outbox = db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "deputy_resident_replied")).all()
    assert [(m.staff_user_id, m.payload["event_id"]) for m in outbox] == [(world.users["deputy"].id, event.id)]
    assert len(audit_rows("item_resident_reply")) == 1

    page = client.get(f"/t/{waiting.ref}?k={waiting.access_key}&sent=reply").text
    assert 'id="answer-sent"' in page and 'id="reply"' not in page and "您的补充" in page
    for position in event.data["photos"]:
        url = f"/t/{waiting.ref}/photos/{position}.jpg?k={waiting.access_key}"
        assert url in page.replace("&amp;", "&")
        assert client.get(url).headers["Content-Type"] == "image/jpeg"
    # The deputy reads it on the item page.
    staff_page = login(app, "deputy_d1").get(f"/staff/items/{waiting.ref}").text
    assert "群众补充情况" in staff_page and "电线杆编号 YL-0231" in staff_page


def test_reply_through_the_api(client, world, waiting):
    item_json = client.get(f"/api/v1/items/{waiting.ref}?key={waiting.access_key}").json
    assert item_json["waiting"]["question"] == QUESTION and item_json["can_follow_up"] is False
    response = client.post(
        f"/api/v1/items/{waiting.ref}/replies?key={waiting.access_key}", json={"text": "在村委会东边。"}
    )
    assert response.status_code == 201, response.text
    assert response.json["waiting"] is None and response.json["can_follow_up"] is True
    assert response.json["event"] == {
        "kind": "resident_replied",
        "label": "您的补充",
        "body": "在村委会东边。",
        "at": response.json["event"]["at"],
        "photos": [],
    }
    db.session.refresh(waiting)
    assert waiting.paused_at is None
    assert client.get(f"/api/v1/items/{waiting.ref}?key={waiting.access_key}").json["waiting"] is None
    # A second reply: the item no longer waits.
    again = client.post(f"/api/v1/items/{waiting.ref}/replies?key={waiting.access_key}", json={"text": "再补充一句。"})
    assert again.status_code == 409 and again.json["error"]["code"] == "not_waiting"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({}, 400, "required"),
        ({"text": "   "}, 400, "required"),
        ({"text": "\u200b\u200b\u200b"}, 400, "required"),
        ({"text": "长" * 1001}, 400, "too_long"),
        ({"text": 12}, 400, None),
        ([1, 2], 400, None),
    ],
)
def test_bad_replies_through_the_api_write_nothing(client, waiting, body, status, code):
    before = written()
    response = client.post(f"/api/v1/items/{waiting.ref}/replies?key={waiting.access_key}", json=body)
    assert response.status_code == status, response.text
    if code:
        assert response.json["error"]["code"] == code
    assert written() == before
    db.session.refresh(waiting)
    assert waiting.paused_at is not None


def test_wrong_keys_and_staff_credentials_are_refused(app, client, world, waiting):
    other = make_item(world.d1, body="另一件留言：菜市场门口积水。")
    before = written()
    url = f"/api/v1/items/{waiting.ref}/replies"
    assert client.post(f"{url}?key=WRONGKEY1234", json={"text": "补充"}).status_code == 404
    assert client.post(url, json={"text": "补充"}).status_code == 404
    assert client.post(f"{url}?key={other.access_key}", json={"text": "补充"}).status_code == 404  # another item's key
    assert (
        client.post(f"/api/v1/items/ZZZZ9999/replies?key={waiting.access_key}", json={"text": "补充"}).status_code
        == 404
    )
    # The deputy's own credential, with the right key: refused before the key is looked at.
    for username in ("deputy_d1", "admin_a", "sup_county", "dept_user"):
        response = client.post(
            f"{url}?key={waiting.access_key}", json={"text": "代群众补充"}, headers=api_token(app, username)
        )
        assert response.status_code == 403 and response.json["error"]["code"] == "staff_cannot_answer"
    deputy = login(app, "deputy_d1")
    g.pop("csrf_token", None)
    html = deputy.get(track_path(waiting)).text
    token = csrf_token_from(html)
    page = deputy.post(
        f"/t/{waiting.ref}/answer?k={waiting.access_key}", data={"csrf_token": token, "kind": "reply", "text": "代补充"}
    )
    assert page.status_code == 403 and "工作人员账号不能代群众补充" in page.text
    after = written()
    assert {k: after[k] for k in ("ItemEvent", "OutboxMessage", "ItemPhoto")} == {
        k: before[k] for k in ("ItemEvent", "OutboxMessage", "ItemPhoto")
    }
    assert len(audit_rows("answer_refused_staff")) == 5
    # Staff cannot take the resident's rows through the lifecycle either.
    with pytest.raises(UserError) as refused:
        perform_action(waiting, world.users["deputy"], "resident_reply", text="代补充")
    assert refused.value.status == 403
    db.session.rollback()


def test_bad_photos_and_bad_input_on_the_page_keep_the_text_and_write_nothing(app, client, waiting):
    before = written()
    bad = post_on_page(client, waiting, "reply", "位置在村委会东边。", [b"not a photo at all"])
    assert bad.status_code == 400 and "JPG 或 PNG" in bad.text and "位置在村委会东边。" in bad.text
    too_many = post_on_page(client, waiting, "reply", "位置在村委会东边。", [jpeg_bytes()] * 4)
    assert too_many.status_code == 400 and "最多上传3张照片" in too_many.text
    empty = post_on_page(client, waiting, "reply", "", [jpeg_bytes()])
    assert empty.status_code == 400 and "请填写补充内容" in empty.text and "已选的照片需要重新选择" in empty.text
    unknown = post_on_page(client, waiting, "rate", "随便写写")
    assert unknown.status_code == 400
    no_csrf = client.post(f"/t/{waiting.ref}/answer?k={waiting.access_key}", data={"kind": "reply", "text": "补充"})
    assert no_csrf.status_code == 400
    _, token = fresh_token(client, track_path(waiting))
    wrong_key = client.post(
        f"/t/{waiting.ref}/answer?k=WRONGKEY1234", data={"csrf_token": token, "kind": "reply", "text": "补充"}
    )
    assert wrong_key.status_code == 404 and "找不到该留言" in wrong_key.text
    assert written() == before


# -- 追问 -----------------------------------------------------------------------------------


def test_one_follow_up_a_day_on_an_open_item(app, client, world):
    item = make_item(world.d1)
    url = f"/api/v1/items/{item.ref}/followups?key={item.access_key}"
    assert client.get(f"/api/v1/items/{item.ref}?key={item.access_key}").json["can_follow_up"] is True
    first = client.post(url, json={"text": "请问什么时候能修好？"})
    assert first.status_code == 201, first.text
    assert first.json["event"]["label"] == "您的追问" and first.json["can_follow_up"] is False
    outbox = db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "deputy_resident_followup")).all()
    assert [m.staff_user_id for m in outbox] == [world.users["deputy"].id]
    before = written()
    second = client.post(url, json={"text": "再问一次。"})
    assert second.status_code == 409 and second.json["error"]["code"] == "follow_up_limit"
    assert written() == before
    html = client.get(track_path(item)).text
    assert 'id="follow-up"' not in html and "您的追问" in html and "请问什么时候能修好？" in html
    # Yesterday's 追问 does not count today.
    (event,) = events_of(item, ItemEventKind.FOLLOWED_UP)
    event.created_at = utcnow() - timedelta(days=1, hours=1)
    db.session.commit()
    assert client.post(url, json={"text": "今天再问一下进展。"}).status_code == 201


def test_follow_up_on_the_page(client, world):
    item = make_item(world.d1)
    act(item, world.users["deputy"], "accept")
    assert 'id="follow-up"' in client.get(track_path(item)).text
    response = post_on_page(client, item, "follow_up", "请问有进展吗？")
    assert response.status_code == 303
    page = client.get(response.headers["Location"]).text
    assert "您的追问已送达代表" in page and "请问有进展吗？" in page
    assert 'id="follow-up"' not in page  # today's 追问 is spent


def test_follow_up_is_refused_when_closed_or_waiting_and_photos_are_not_taken(client, world, waiting):
    resolved = make_item(world.d1)
    act(resolved, world.users["deputy"], "accept")
    act(resolved, world.users["deputy"], "resolve", outcome="solved")
    declined = make_item(world.d1)
    act(declined, world.users["deputy"], "decline", text="不属于代表职责范围。")
    open_item = make_item(world.d1)
    before = written()
    response = client.post(
        f"/api/v1/items/{waiting.ref}/followups?key={waiting.access_key}", json={"text": "请问进展？"}
    )
    assert response.status_code == 409 and response.json["error"]["code"] == "waiting_for_you"
    closed = client.post(f"/api/v1/items/{resolved.ref}/followups?key={resolved.access_key}", json={"text": "请问？"})
    assert closed.status_code == 409 and closed.json["error"]["code"] == "not_open"
    assert (
        client.post(
            f"/api/v1/items/{resolved.ref}/replies?key={resolved.access_key}", json={"text": "补充"}
        ).status_code
        == 409
    )
    refused = client.post(
        f"/api/v1/items/{declined.ref}/followups?key={declined.access_key}", json={"text": "为什么？"}
    )
    assert refused.status_code == 409 and refused.json["error"]["code"] == "not_open"
    with_photo = post_on_page(client, open_item, "follow_up", "请问进展？", [jpeg_bytes()])
    assert with_photo.status_code == 400 and "追问只能写文字" in with_photo.text
    assert written() == before
