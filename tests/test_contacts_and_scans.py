"""联系群众 without an item (issue 15 part 3) and scans over time (part 7): the log, its bad inputs, its turning into
an in-person item, its place in 履职积分 and the station's figures; scans per code per day, GET /api/v1/stats/scans
and the dashboard's weekly chart."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from flask import g
from sqlalchemy import func, select

from backend.extensions import db
from backend.models import CodeScanDay, ContactKind, ContactLog, Item, ItemChannel
from backend.qr import scans
from backend.qr.codes import current_code, rotate_code
from backend.stations.calendar import today_in_china
from backend.supervision import points, stats
from tests.helpers import api_token, csrf_token_from, fresh_rows, login


def contact_form(client) -> str:
    g.pop("csrf_token", None)
    page = client.get("/staff/contacts")
    assert page.status_code == 200
    return csrf_token_from(page.text)


def good(**changes) -> dict:
    values = {
        "kind": "visit",
        "held_on": today_in_china().isoformat(),
        "place": "沔渡村村部",
        "people": "6",
        "summary": "村道路灯不亮，希望尽快修复",
    }
    values.update(changes)
    return values


# --- contacts -------------------------------------------------------------------------------------------------


def test_a_deputy_logs_a_contact(app, world):
    deputy = login(app, "deputy_d1")
    token = contact_form(deputy)
    done = deputy.post("/staff/contacts", data={"csrf_token": token, **good(kind="phone")})
    assert done.status_code == 303 and "done=contact_logged" in done.headers["Location"]
    (row,) = fresh_rows(ContactLog)
    assert (row.kind, row.people, row.place, row.deputy_id, row.station_id) == (
        ContactKind.PHONE,
        6,
        "沔渡村村部",
        world.d1.id,
        world.station_a.id,
    )
    listed = deputy.get("/staff/contacts").text
    assert "村道路灯不亮" in listed and "转为留言件" in listed and "已记录这次联系群众" not in listed


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"kind": "letter"}, "kind", "请选择联系方式"),
        ({"kind": ""}, "kind", "请选择联系方式"),
        ({"held_on": "2026-02-30"}, "held_on", "不是有效的日期"),
        ({"held_on": "昨天"}, "held_on", "不是有效的日期"),
        ({"held_on": "ahead"}, "held_on", "不能晚于今天"),
        ({"held_on": "long ago"}, "held_on", "只能记录92天以内"),
        ({"people": "0"}, "people", "请填写见到的群众人数"),
        ({"people": "10001"}, "people", "请填写见到的群众人数"),
        ({"people": "三"}, "people", "请填写见到的群众人数"),
        ({"people": "2.5"}, "people", "请填写见到的群众人数"),
        ({"summary": "   "}, "summary", "请填写群众反映的内容"),
        ({"summary": "路" * 201}, "summary", "群众反映的内容"),
        ({"place": "村部\u202e"}, "place", "控制字符"),
    ],
)
def test_bad_contacts_are_refused_and_nothing_is_written(app, world, changes, field, message):
    today = today_in_china()
    if changes.get("held_on") == "ahead":
        changes["held_on"] = (today + timedelta(days=1)).isoformat()
    if changes.get("held_on") == "long ago":
        changes["held_on"] = (today - timedelta(days=93)).isoformat()
    deputy = login(app, "deputy_d1")
    refused = deputy.post("/staff/contacts", data={"csrf_token": contact_form(deputy), **good(**changes)})
    assert refused.status_code == 400
    assert f'id="{field}-error"' in refused.text and message in refused.text
    assert fresh_rows(ContactLog) == []


def test_only_a_deputy_logs_contacts(app, world):
    for username in ("admin_a", "sup_county"):
        assert login(app, username).get("/staff/contacts").status_code == 404
    assert app.test_client().get("/staff/contacts").status_code == 303  # to the login page


def test_a_contact_becomes_an_in_person_item_once(app, world):
    deputy = login(app, "deputy_d1")
    deputy.post("/staff/contacts", data={"csrf_token": contact_form(deputy), **good(kind="meeting")})
    (row,) = fresh_rows(ContactLog)
    g.pop("csrf_token", None)
    form = deputy.get(f"/staff/in-person?contact={row.id}")
    assert form.status_code == 200 and 'id="from-contact"' in form.text
    assert "村道路灯不亮，希望尽快修复</textarea>" in form.text and "座谈，沔渡村村部" in form.text
    token = csrf_token_from(form.text)
    data = {"csrf_token": token, "contact": row.id, "body": "村道路灯不亮，希望尽快修复", "category": "other"}
    receipt = deputy.post("/staff/in-person", data=data)
    assert receipt.status_code == 200
    item = db.session.scalar(select(Item))
    assert item.channel == ItemChannel.IN_PERSON and fresh_rows(ContactLog)[0].item_id == item.id
    # Again: refused, no second item.
    again = deputy.post("/staff/in-person", data=data)
    assert again.status_code == 409 and "已经转为留言件" in again.text
    assert db.session.scalar(select(func.count()).select_from(Item)) == 1
    assert "已转为留言件" in deputy.get("/staff/contacts").text


def test_another_deputys_contact_cannot_be_opened(app, world):
    deputy = login(app, "deputy_d1")
    deputy.post("/staff/contacts", data={"csrf_token": contact_form(deputy), **good()})
    (row,) = fresh_rows(ContactLog)
    other = login(app, "deputy_d2")
    assert other.get(f"/staff/in-person?contact={row.id}").status_code == 404
    assert other.get("/staff/in-person?contact=abc").status_code == 404
    assert other.get("/staff/in-person?contact=99999999").status_code == 404


def test_contacts_count_in_points_and_the_stations_figures(app, world):
    deputy = login(app, "deputy_d1")
    token = contact_form(deputy)
    for kind in ("visit", "meeting", "phone"):
        deputy.post("/staff/contacts", data={"csrf_token": token, **good(kind=kind)})
    other = login(app, "deputy_d2")
    other.post("/staff/contacts", data={"csrf_token": contact_form(other), **good()})
    rng = stats.default_range()
    figures = stats.compute(stats.Scope("deputy", deputy=world.d1, station=world.station_a), rng)
    assert figures.contacts == 3
    lines = {line.rule.key: line for line in points.deputy_points(figures).lines}
    assert lines["contacts"].quantity == 3 and lines["contacts"].points == 3
    station = (
        app.test_client()
        .get("/api/v1/stats", query_string={"station": world.station_a.id}, headers=api_token(app, "admin_a"))
        .json
    )
    assert station["contacts"] == 4
    county = (
        app.test_client()
        .get("/api/v1/stats", query_string={"region": world.county.code}, headers=api_token(app, "sup_county"))
        .json
    )
    assert county["contacts"] == 4
    assert 'id="value-contacts">4<' in login(app, "admin_a").get("/supervision/").text


# --- scans over time --------------------------------------------------------------------------------------------


def test_each_scan_is_counted_on_its_day_over_a_few_rows(app, client, world):
    slug = current_code(world.d1).slug
    for _ in range(40):
        assert client.get(f"/c/{slug}").status_code == 200
    code_id = current_code(world.d1).id
    assert scans.total_scans([code_id]) == {code_id: 40}
    rows = db.session.scalars(select(CodeScanDay).where(CodeScanDay.code_id == code_id)).all()
    assert {row.day for row in rows} == {today_in_china()}
    assert 1 < len(rows) <= scans.SHARDS  # spread: no single hot row (40 scans over 8 shards)


def scans_api(app, headers, **args):
    return app.test_client().get("/api/v1/stats/scans", query_string=args, headers=headers)


def test_scans_api_gives_scans_and_items_per_code_and_day(app, client, world):
    today = today_in_china()
    d1_code = current_code(world.d1)
    for _ in range(3):
        client.get(f"/c/{d1_code.slug}")
    # Earlier days, as the counter would have written them.
    yesterday = today - timedelta(days=1)
    db.session.add(CodeScanDay(code_id=d1_code.id, day=yesterday, shard=2, scans=5))
    db.session.add(CodeScanDay(code_id=d1_code.id, day=yesterday, shard=5, scans=2))
    db.session.add(Item(
        ref="X00000001", access_key="k" * 32, station_id=world.station_a.id, deputy_id=world.d1.id,
        code_id=d1_code.id, channel=ItemChannel.QR_H5, category="other", body="扫码后的留言。",
    ))  # fmt: skip
    db.session.commit()
    answer = scans_api(
        app,
        api_token(app, "admin_a"),
        station=world.station_a.id,
        **{"from": (today - timedelta(days=7)).isoformat(), "to": (today + timedelta(days=1)).isoformat()},
    )
    assert answer.status_code == 200, answer.text
    data = answer.json
    by_slug = {code["slug"]: code for code in data["codes"]}
    assert set(by_slug) == {c.slug for c in scans.station_codes(world.station_a)}
    d1 = by_slug[d1_code.slug]
    assert d1["kind"] == "deputy" and d1["name"] == world.d1.name and d1["is_current"]
    assert d1["days"] == [
        {"day": yesterday.isoformat(), "scans": 7, "items": 0},
        {"day": today.isoformat(), "scans": 3, "items": 1},
    ]
    assert (d1["scans"], d1["items"]) == (10, 1)
    assert by_slug[current_code(world.station_a).slug]["days"] == []
    # The range is honoured: only yesterday.
    only = scans_api(
        app,
        api_token(app, "admin_a"),
        station=world.station_a.id,
        **{"from": yesterday.isoformat(), "to": today.isoformat()},
    ).json
    assert {c["slug"]: c["days"] for c in only["codes"]}[d1_code.slug] == [
        {"day": yesterday.isoformat(), "scans": 7, "items": 0}
    ]


@pytest.mark.parametrize(
    ("who", "args", "status", "code"),
    [
        ("admin_b", {"station": "A"}, 404, "unknown_scope"),  # another station's administrator
        ("sup_far", {"station": "A"}, 404, "unknown_scope"),  # another county's supervisor
        ("deputy_d3", {"station": "A"}, 404, "unknown_scope"),  # a deputy of another station
        ("admin_a", {}, 400, "station_required"),
        ("admin_a", {"station": "abc"}, 400, "invalid_station"),
        ("admin_a", {"station": "A", "from": "2026-13-01"}, 400, "invalid_from"),
        ("admin_a", {"station": "A", "from": "2026-03-01", "to": "2026-02-01"}, 400, None),
        ("admin_a", {"station": "99999999"}, 404, "unknown_scope"),
    ],
)
def test_scans_api_refusals(app, world, who, args, status, code):
    args = {key: world.station_a.id if value == "A" else value for key, value in args.items()}
    answer = scans_api(app, api_token(app, who), **args)
    assert answer.status_code == status, answer.text
    if code:
        assert answer.json["error"]["code"] == code


def test_scans_api_for_whom(app, world):
    assert scans_api(app, {}, station=world.station_a.id).status_code == 401
    for who in ("deputy_d1", "admin_a", "sup_county"):
        assert scans_api(app, api_token(app, who), station=world.station_a.id).status_code == 200, who
    assert scans_api(app, api_token(app, "dept_user"), station=world.station_a.id).status_code == 404


def test_the_dashboard_charts_each_codes_weeks(app, client, world):
    d1_code = current_code(world.d1)
    for _ in range(4):
        client.get(f"/c/{d1_code.slug}")
    three_weeks_ago = today_in_china() - timedelta(weeks=3)
    db.session.add(CodeScanDay(code_id=d1_code.id, day=three_weeks_ago, shard=0, scans=9))
    rotate_code(world.d2, "海报被污损")
    db.session.commit()
    html = login(app, "admin_a").get("/supervision/").text
    charts = html[html.index('id="codes-weekly"') :]
    titles = re.findall(r"<title>(.*?)</title>", charts)
    assert len(titles) == scans.WEEKS_SHOWN * len(scans.station_codes(world.station_a))
    week = scans.week_start(three_weeks_ago)
    assert f"{week.month}月{week.day}日起一周：扫码9次，留言0件" in titles
    this_week = scans.week_start(today_in_china())
    assert f"{this_week.month}月{this_week.day}日起一周：扫码4次，留言0件" in titles
    # The totals table still counts all of a code's scans.
    table = html[html.index('id="codes-table"') :]
    assert re.search(rf"{world.d1.name}</th>\s*<td class=\"num\">13</td>", table)
