"""A topic code's messages through the API (issue 15 part 6), as the mini-program sends them: ``GET
/api/v1/codes/{slug}`` gives the topic's question, choices and closing day; ``POST /api/v1/items`` with ``choice``
makes the station's item as the H5 form does. Bad input answered in JSON with a code, nothing written: an unknown
choice, no choice where there are choices, no text, a closed topic (410 ``topic_closed``, as the H5 page's 410)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from backend.extensions import db
from backend.models import Item, ItemEvent, ItemEventKind, TopicKind, utcnow
from backend.qr.codes import current_code
from backend.stations import topics
from backend.stations.calendar import today_in_china


def make_topic(world, choices: str = "赞成\n基本赞成\n不赞成", kind: str = "poll"):
    """A topic of station A, issued by its administrator as the admin page does."""
    topic = topics.create_topic(
        world.users["station_admin"],
        world.station_a,
        {
            "kind": kind,
            "title": "2027年民生实事项目征集",
            "prompt": "您最希望明年办好哪件事？",
            "choices": choices,
            "closes_on": (today_in_china() + timedelta(days=10)).isoformat(),
        },
    )
    db.session.commit()
    return topic


def items_count() -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(Item))


def send(app, slug: str, **fields):
    return app.test_client().post("/api/v1/items", json={"code": slug, "client_id": uuid.uuid4().hex, **fields})


@pytest.fixture(autouse=True)
def generous_throttle(app):
    app.config.update(THROTTLE_PER_ADDRESS=10_000, THROTTLE_PER_CODE=10_000)


def test_the_code_describes_the_topics_form(app, world):
    topic = make_topic(world)
    info = app.test_client().get(f"/api/v1/codes/{current_code(topic).slug}")
    assert info.status_code == 200
    body = info.json
    assert body["kind"] == "topic" and body["deputy"] is None and body["station"]["id"] == world.station_a.id
    assert body["topic"] == {
        "id": topic.id,
        "kind": "poll",
        "kind_label": TopicKind.POLL.label,
        "title": "2027年民生实事项目征集",
        "prompt": "您最希望明年办好哪件事？",
        "choices": ["赞成", "基本赞成", "不赞成"],
        "closes_on": (today_in_china() + timedelta(days=10)).isoformat(),
    }


def test_a_topic_message_through_the_api_is_the_stations_item_with_the_choice(app, world):
    topic = make_topic(world)
    answer = send(app, current_code(topic).slug, body="建议增设老年食堂。", choice="基本赞成", publish_consent=True)
    assert answer.status_code == 201, answer.json
    item = db.session.scalar(select(Item))
    assert item.station_id == world.station_a.id and item.deputy_id is None
    assert item.body == "【基本赞成】建议增设老年食堂。" and item.publish_consented_at is not None
    event = db.session.scalar(select(ItemEvent).where(ItemEvent.kind == ItemEventKind.SUBMITTED))
    assert event.data == {"topic_choice": "基本赞成"}
    assert topics.choice_counts(topic) == [("赞成", 0), ("基本赞成", 1), ("不赞成", 0)]


def test_a_topic_without_choices_takes_the_text_alone(app, world):
    topic = make_topic(world, choices="", kind="monitoring")
    answer = send(app, current_code(topic).slug, body="办理营业执照要跑三个窗口。", choice="赞成")
    assert answer.status_code == 201, answer.json  # a choice sent to a topic without choices is not used
    assert db.session.scalar(select(Item.body)) == "办理营业执照要跑三个窗口。"


@pytest.mark.parametrize(
    ("fields", "status", "code", "field"),
    [
        ({"body": "建议增设老年食堂。", "choice": "完全赞成"}, 400, "invalid_choice", "choice"),  # unknown choice
        ({"body": "建议增设老年食堂。", "choice": "赞成 "}, 400, "invalid_choice", "choice"),
        ({"body": "建议增设老年食堂。", "choice": ""}, 400, "invalid_choice", "choice"),
        ({"body": "建议增设老年食堂。"}, 400, "invalid_choice", "choice"),  # no choice where there are choices
        ({"body": "建议增设老年食堂。", "choice": 1}, 400, "invalid_type", "choice"),
        ({"choice": "赞成"}, 400, "required", "body"),  # missing text
        ({"body": "", "choice": "赞成"}, 400, "required", "body"),
        ({"body": "   ", "choice": "赞成"}, 400, "required", "body"),
        ({"body": "好", "choice": "赞成"}, 400, "too_short", "body"),
    ],
)
def test_bad_topic_messages_are_refused_in_json_and_nothing_is_written(app, world, fields, status, code, field):
    topic = make_topic(world)
    answer = send(app, current_code(topic).slug, **fields)
    assert answer.status_code == status, answer.json
    assert answer.json["error"]["code"] == code and answer.json["error"]["field"] == field, answer.json
    assert items_count() == 0


def test_a_closed_topic_answers_410_with_a_code_and_writes_nothing(app, world):
    topic = make_topic(world)
    slug = current_code(topic).slug
    topic.closes_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    code = app.test_client().get(f"/api/v1/codes/{slug}")
    assert code.status_code == 410 and code.json["error"]["code"] == "topic_closed"
    assert "意见征集已经结束" in code.json["error"]["message"]
    late = send(app, slug, body="截止后才写的意见。", choice="赞成")
    assert late.status_code == 410 and late.json["error"]["code"] == "topic_closed"
    assert late.json["error"]["message"] == code.json["error"]["message"]
    assert items_count() == 0
