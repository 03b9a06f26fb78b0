"""公示 (issue 15 part 4): the resident's consent on the form and the API, and the public page and JSON of a station
and of a region: the figures under the minimum-sample rule, reception days and who is on duty, and only the resolved
items whose residents agreed — masked, with the answer; never one not agreed to, reopened, withdrawn or erased."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from backend.extensions import db
from backend.items import lifecycle, retention
from backend.models import Item, ReceptionRule, ReceptionRuleKind, utcnow
from backend.qr.codes import current_code
from tests.factories import act, make_item
from tests.helpers import csrf_token_from, hidden_value

pytestmark = pytest.mark.usefixtures("count_in_database")

NAME = "王桂芳"
PHONE_IN_TEXT = "138 1234 5678"


def _published(item: Item) -> Item:
    item.publish_consented_at = utcnow()
    db.session.commit()
    return item


def _resolved(w, item: Item, reply: str = "") -> Item:
    deputy = w.users["deputy"]
    act(item, deputy, "accept")
    if reply:
        act(item, deputy, "reply", text=reply)
    act(item, deputy, "resolve", outcome="solved", text="路灯已更换。")
    return item


@pytest.fixture
def station_world(app, world):
    """Station A with reception days every day (张秀英 on duty), and its items in every state 公示 must tell apart."""
    for day in range(1, 8):
        world.station_a.reception_rules.append(ReceptionRule(kind=ReceptionRuleKind.WEEKLY, day=day, deputy=world.d1))
    db.session.commit()
    d1 = world.d1

    def item(marker: str, consent: bool) -> Item:
        made = make_item(d1, body=f"{marker}：{NAME}反映村口路灯坏了，电话{PHONE_IN_TEXT}。", name=NAME)
        return _published(made) if consent else made

    items = {
        "published": _resolved(world, item("甲件", True), reply=f"已联系{NAME}，请拨13900001111了解进度。"),
        "not_agreed": _resolved(world, item("乙件", False)),
        "open": item("丙件", True),
        "erased": _resolved(world, item("丁件", True)),
        "withdrawn": item("戊件", True),
        "reopened": _resolved(world, item("己件", True)),
    }
    retention.erase_contact(items["erased"])
    retention.withdraw_item(items["withdrawn"])
    lifecycle.rate_item(items["reopened"], "unsatisfied", False, "还是不亮。")
    db.session.commit()
    return world, items


def test_the_station_page_shows_only_what_residents_agreed_to_publish_masked(app, client, station_world):
    w, items = station_world
    page = client.get(f"/gongshi/stations/{w.station_a.id}")
    assert page.status_code == 200
    html = page.text
    assert "甲件" in html
    for marker in ("乙件", "丙件", "丁件", "戊件", "己件"):
        assert marker not in html, marker
    assert NAME not in html and "王**" in html
    assert "13812345678" not in html and "138 1234 5678" not in html and "138****5678" in html
    assert "13900001111" not in html and "139****1111" in html  # the deputy's answer, masked too
    assert "路灯已更换。" in html  # the resolution
    assert items["published"].ref not in html and items["published"].access_key not in html
    assert page.headers["Cache-Control"] == "public, max-age=60" and "Set-Cookie" not in page.headers
    assert "张秀英" in html and 'id="reception-days"' in html and "每周" in html


def test_the_station_json_is_what_the_page_shows(app, client, station_world):
    w, _ = station_world
    answer = client.get(f"/api/v1/public/stations/{w.station_a.id}")
    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "public, max-age=60"
    body = answer.json
    (published,) = body["published"]
    assert published["body"].startswith("甲件：王**反映") and "138****5678" in published["body"]
    assert (
        published["answer"] == "已联系王**，请拨139****1111了解进度。"
        and published["outcome"] == "已解决。路灯已更换。"
    )
    text = answer.text
    for marker in ("乙件", "丙件", "丁件", "戊件", "己件", NAME, "13812345678"):
        assert marker not in text, marker
    assert body["station"] == {"id": w.station_a.id, "name": w.station_a.name, "address": w.station_a.address}
    assert body["reception_days"][0]["deputies_on_duty"] == ["张秀英"]
    assert body["deputies"] == ["张秀英", "李建国"]


def test_rates_follow_the_minimum_sample_rule(app, client, station_world):
    w, _ = station_world
    app.config["STATS_MIN_SAMPLE"] = 100
    figures = client.get(f"/api/v1/public/stations/{w.station_a.id}").json["figures"]
    assert figures["received"] == 6 and figures["valid"] == 5  # the withdrawn one is not valid
    assert figures["resolved"] == 3  # 甲, 乙, 丁 (己 reopened)
    assert figures["answer_rate"]["value"] is None and figures["answer_rate"]["label"] == "样本不足（5件）"
    assert "样本不足" in client.get(f"/gongshi/stations/{w.station_a.id}").text
    app.config["STATS_MIN_SAMPLE"] = 5
    figures = client.get(f"/api/v1/public/stations/{w.station_a.id}").json["figures"]
    assert figures["resolve_rate"]["value"] == pytest.approx(3 / 5) and figures["resolve_rate"]["label"] == "60.0%"


def test_the_region_page_lists_its_stations_and_their_published_items(app, client, station_world):
    w, _ = station_world
    page = client.get(f"/gongshi/regions/{w.county.code}")
    assert page.status_code == 200 and page.headers["Cache-Control"] == "public, max-age=60"
    html = page.text
    assert "甲件" in html and "乙件" not in html and NAME not in html
    assert f"/gongshi/stations/{w.station_a.id}" in html and f"/gongshi/stations/{w.station_b.id}" in html
    assert w.station_c.name not in html  # another county's
    province = client.get(f"/gongshi/regions/{w.county.code[:2]}0000")  # the county's province: its stations too
    assert province.status_code == 200 and "甲件" in province.text and w.station_a.name in province.text


def test_the_station_page_is_linked_from_the_form_and_the_directory(app, client, world):
    slug = current_code(world.station_a).slug
    assert f'href="/gongshi/stations/{world.station_a.id}"' in client.get(f"/c/{slug}").text
    assert f'href="/gongshi/stations/{world.station_a.id}"' in client.get("/stations").text


@pytest.mark.parametrize(
    "path",
    [
        "/gongshi/stations/99999",
        "/gongshi/stations/99999999999",
        "/gongshi/stations/abc",
        "/gongshi/regions/999999",
        "/gongshi/regions/abc",
        "/gongshi/regions/" + "4" * 40,
    ],
)
def test_unknown_stations_and_regions_answer_a_chinese_404(app, client, world, path):
    page = client.get(path)
    assert page.status_code == 404 and 'lang="zh-CN"' in page.text and "找不到" in page.text


def test_a_closed_station_and_a_region_without_an_open_one_answer_404(app, client, world):
    world.station_c.is_active = False
    db.session.commit()
    assert client.get(f"/gongshi/stations/{world.station_c.id}").status_code == 404
    closed = client.get(f"/api/v1/public/stations/{world.station_c.id}")
    assert closed.status_code == 404 and closed.json["error"]["code"] == "unknown_station"
    assert client.get("/api/v1/public/stations/99999").json["error"]["code"] == "unknown_station"
    assert client.get(f"/gongshi/regions/{world.station_c.region.code}").status_code == 404


def _form_post(client, slug: str, **extra):
    html = client.get(f"/c/{slug}").text
    fields = {"csrf_token": csrf_token_from(html), "client_id": hidden_value(html, "client_id")}
    body = f"小区门口的下水道堵了，下雨天积水很深。{uuid.uuid4().hex[:6]}"
    return client.post(f"/c/{slug}", data={**fields, "body": body, "category": "urban", **extra})


def test_the_h5_form_records_the_consent_only_when_ticked(app, client, world):
    slug = current_code(world.d1).slug
    assert 'name="publish_consent"' in client.get(f"/c/{slug}").text
    assert _form_post(client, slug).status_code == 303
    assert _form_post(client, slug, publish_consent="1").status_code == 303
    consents = db.session.scalars(select(Item.publish_consented_at).order_by(Item.id)).all()
    assert consents[0] is None and consents[1] is not None


def test_the_api_takes_publish_consent_default_false(app, client, world):
    slug = current_code(world.d1).slug

    def submit(**extra):
        return client.post(
            "/api/v1/items", json={"code": slug, "body": f"路灯坏了很久了。{uuid.uuid4().hex[:6]}", **extra}
        )

    assert submit().status_code == 201
    assert submit(publish_consent=True).status_code == 201
    assert submit(publish_consent=False).status_code == 201
    for bad in ("yes", 1, "true"):
        refused = submit(publish_consent=bad)
        assert refused.status_code == 400 and refused.json["error"]["field"] == "publish_consent", bad
    consents = db.session.scalars(select(Item.publish_consented_at).order_by(Item.id)).all()
    assert [c is not None for c in consents] == [False, True, False]


def test_withdrawing_or_erasing_clears_the_consent(app, world):
    erased = _published(make_item(world.d1))
    withdrawn = _published(make_item(world.d1))
    retention.erase_contact(erased)
    retention.withdraw_item(withdrawn)
    db.session.commit()
    assert erased.publish_consented_at is None and withdrawn.publish_consented_at is None
