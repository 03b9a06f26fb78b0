"""The mini-program's part of issue 15, in the Node scenarios of miniprogram_stub/test/scenarios.js against the
backend over real HTTP: the form's 同意公示 (sent either way), a topic code's landing and form (its question,
choices and closing day; refused on the page without a choice; a closed topic a notice and no form), and a signed-in
deputy's 签到 / 签退 when they scan their own station's code (POST /api/v1/presence)."""

# ruff: noqa: F811 - the fixtures imported from test_miniprogram_stub are named as parameters

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from backend.extensions import db
from backend.models import Item, StationVisit, TopicKind, utcnow
from backend.qr.codes import current_code
from backend.stations import presence, topics
from backend.stations.calendar import describe_rule, today_in_china
from tests.helpers import PASSWORD, fresh_rows
from tests.test_miniprogram_stub import (  # noqa: F401
    DEPUTY_OPENID,
    backend_url,
    deputy_env,
    node,
    on_duty_today,
    scenario,
    station_env,
    stub_env,
)
from tests.wechat_server import wechat_sandbox  # noqa: F401

pytestmark = pytest.mark.engine_independent(
    reason="the mini-program's JavaScript against the API: the API's engine part is tested in both suites by the API tests"
)

CHOICES = ["赞成", "基本赞成", "不赞成"]


def test_the_form_sends_publish_consent_either_way(scenario, backend_url, wechat_sandbox, world):
    env = stub_env(backend_url, wechat_sandbox, **deputy_env(world.d1))
    sent = scenario("publish_consent", **env)["sent"]
    assert [s["publish_consent"] for s in sent] == [False, True]
    db.session.expire_all()
    consented = {
        ref: at is not None
        for ref, at in db.session.execute(select(Item.ref, Item.publish_consented_at)).all()  # what was stored
    }
    assert consented == {sent[0]["ref"]: False, sent[1]["ref"]: True}


def make_topic(world, **overrides):
    """A poll of station A, issued as its administrator does."""
    form = {
        "kind": "poll",
        "title": "2027年民生实事项目征集",
        "prompt": "您赞成把老年食堂列为明年的民生实事吗？",
        "choices": "\n".join(CHOICES),
        "closes_on": (today_in_china() + timedelta(days=10)).isoformat(),
    } | overrides
    topic = topics.create_topic(world.users["station_admin"], world.station_a, form)
    db.session.commit()
    return topic


def test_a_topic_code_shows_its_question_and_the_form_answers_it(app, scenario, backend_url, wechat_sandbox, world):
    app.config.update(THROTTLE_PER_ADDRESS=10_000, THROTTLE_PER_CODE=10_000)
    topic = make_topic(world)
    closes = topics.closing_day(topic)
    env = stub_env(
        backend_url,
        wechat_sandbox,
        slug=current_code(topic).slug,
        kindLabel=TopicKind.POLL.label,
        stationName=world.station_a.name,
        title=topic.title,
        prompt=topic.prompt,
        closesOn=f"{closes.year}年{closes.month}月{closes.day}日",
        choices=CHOICES,
        body="希望食堂能送餐到行动不便的老人家里。",
    )
    ref = scenario("topic_form", **env)["ref"]
    db.session.expire_all()
    item = db.session.scalar(select(Item).where(Item.ref == ref))
    assert item.station_id == world.station_a.id and item.deputy_id is None
    assert item.body == "【基本赞成】希望食堂能送餐到行动不便的老人家里。"
    assert item.channel.value == "miniprogram"
    assert topics.choice_counts(topic) == [("赞成", 0), ("基本赞成", 1), ("不赞成", 0)]


def test_a_topic_without_choices_asks_its_question_over_the_message(scenario, backend_url, wechat_sandbox, world):
    topic = make_topic(world, kind="monitoring", choices="", prompt="您在办事中遇到过哪些不方便？")
    env = stub_env(
        backend_url,
        wechat_sandbox,
        slug=current_code(topic).slug,
        title=topic.title,
        prompt=topic.prompt,
        body="办理营业执照要跑三个窗口。",
    )
    ref = scenario("topic_form_open", **env)["ref"]
    db.session.expire_all()
    item = db.session.scalar(select(Item).where(Item.ref == ref))
    assert item.body == "办理营业执照要跑三个窗口。" and item.deputy_id is None


def test_a_closed_topic_shows_a_notice_and_no_form(scenario, backend_url, wechat_sandbox, world):
    topic = make_topic(world)
    topic.closes_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    env = stub_env(backend_url, wechat_sandbox, slug=current_code(topic).slug)
    notice = scenario("topic_closed", **env, notice=topics.topic_closed(topic.title).message)["notice"]
    assert "意见征集已经结束" in notice
    assert db.session.scalar(select(Item)) is None


def test_a_deputy_signs_in_and_out_by_scanning_their_stations_code(scenario, backend_url, wechat_sandbox, world):
    station = world.station_a
    on_duty_today(station, world.d1)
    env = stub_env(
        backend_url,
        wechat_sandbox,
        **station_env(station),
        deputyName=world.d1.name,
        rules=[describe_rule(rule) for rule in presence.reception_rules_of(world.d1, station)],
        deputyOpenid=DEPUTY_OPENID,
        username="deputy_d1",
        password=PASSWORD,
    )
    assert scenario("presence", **env)["posts"] == 2
    (visit,) = fresh_rows(StationVisit)
    assert visit.deputy_id == world.d1.id and visit.station_id == station.id
    assert visit.is_reception_day and visit.checked_out_at is not None
    assert visit.source.value == "api"


def test_a_deputy_of_another_station_and_a_resident_see_the_residents_page(
    scenario, backend_url, wechat_sandbox, world
):
    env = stub_env(
        backend_url,
        wechat_sandbox,
        slug=current_code(world.station_a).slug,
        deputyOpenid=DEPUTY_OPENID,
        username="deputy_d3",  # station B's deputy
        password=PASSWORD,
    )
    scenario("presence_not_here", **env)
    assert db.session.scalar(select(StationVisit)) is None
