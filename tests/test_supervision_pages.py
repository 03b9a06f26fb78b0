"""The dashboard page and the items behind each figure: the numbers shown, their links, charts, codes, points."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from flask import g
from sqlalchemy import select

from backend.extensions import db
from backend.models import Item, ItemEvent, ItemEventKind
from backend.qr import scans
from backend.qr.codes import current_code, rotate_code
from backend.supervision import points, stats
from tests.factories import (
    COUNTY,
    DEPUTY_D1,
    STATION_A,
    build_outcomes,
    entered_in_person,
    handle,
    submit,
    supervision_world,
)
from tests.helpers import login

WORLD = supervision_world  # the world fixture (tests/conftest.py)


@pytest.fixture
def outcomes(client, world):
    return build_outcomes(client, world)


def page(app, username: str, path: str = "/supervision/", **args):
    response = login(app, username).get(path, query_string=args)
    g.pop("csrf_token", None)
    assert response.status_code == 200, response.text[:500]
    return response.text


def shown(html: str, element_id: str) -> str:
    """The text inside the element with this id (tags stripped)."""
    match = re.search(rf'id="{element_id}"[^>]*>(.*?)</(?:a|p|span)>', html, re.S)
    assert match, element_id
    return re.sub(r"<[^>]+>", "", match.group(1)).strip()


def test_the_county_dashboard_shows_every_figure(app, outcomes):
    app.config["STATS_MIN_SAMPLE"] = 10
    html = page(app, "sup_county")
    assert shown(html, "value-received") == str(COUNTY["received"])
    assert shown(html, "value-valid") == str(COUNTY["valid"])
    assert shown(html, "value-declined") == "1" and shown(html, "value-duplicate") == "1"
    assert shown(html, "value-held") == "1"
    assert shown(html, "value-answer-rate") == "80.0%"
    assert shown(html, "value-resolve-rate") == "50.0%"
    assert shown(html, "value-satisfaction-rate") == "样本不足（5件）"
    assert shown(html, "value-meeting-rate") == "暂无接待日"  # no station of this county has a reception rule
    assert shown(html, "value-in-person") == "1"
    assert shown(html, "value-overdue") == "0"
    for definition in stats.DEFINITIONS.values():
        assert definition.format(n=10) in html  # every definition is on the page
    assert "目前没有超期件" in html


def test_a_station_below_the_minimum_sample(app, outcomes):
    app.config["STATS_MIN_SAMPLE"] = 10
    html = page(app, "admin_a")
    assert shown(html, "value-received") == str(STATION_A["received"])
    assert shown(html, "value-answer-rate") == "样本不足（9件）"
    assert "分母少于10件时不计算比率" in html
    app.config["STATS_MIN_SAMPLE"] = 1
    html = page(app, "admin_a")
    assert shown(html, "value-answer-rate") == "77.8%"
    assert shown(html, "value-satisfaction-rate") == "75.0%"
    # The breakdown by deputy, each linking to the deputy's figures.
    assert 'id="breakdown-table"' in html and "张秀英" in html and "李建国" in html


def test_every_link_lists_the_items_it_counts(app, world, outcomes):
    html = page(app, "sup_county")
    links = set(re.findall(r'href="(/supervision/items\?[^"]+)"', html))
    assert links, "no figure links"
    client = login(app, "sup_county")
    for link in links:
        link = link.replace("&amp;", "&")
        listing = client.get(link)
        assert listing.status_code == 200, link
        total = int(re.search(r'id="items-total">(\d+)件', listing.text).group(1))
        figure = re.search(r"figure=(\w+)", link).group(1)
        rng = stats.default_range()
        scope = stats.Scope("region", region=world.county)
        expected = stats.figure_items_query(scope, rng, figure).with_only_columns(Item.id)
        assert total == len(db.session.scalars(expected).all()), figure
    g.pop("csrf_token", None)


def test_the_items_list_pages_by_twenty(app, client, world):
    for n in range(23):
        submit(client, world.d2, f"第{n}条测试留言，用来翻页。")
    listing = page(app, "admin_a", "/supervision/items", figure="received")
    assert shown(listing, "items-total") == "23件"
    assert listing.count('class="inbox-row') == 20 and "第1/2页" in listing
    second = page(app, "admin_a", "/supervision/items", figure="received", page=2)
    assert second.count('class="inbox-row') == 3
    first_refs = set(re.findall(r'href="/staff/items/(\w+)"', listing))
    second_refs = set(re.findall(r'href="/staff/items/(\w+)"', second))
    assert len(first_refs | second_refs) == 23


def test_an_unknown_figure_is_400(app, world):
    assert login(app, "admin_a").get("/supervision/items?figure=bogus").status_code == 400


def test_a_bad_range_on_the_page_falls_back_with_a_message(app, world):
    html = page(app, "sup_county", **{"from": "2026-05-01", "to": "2026-04-01"})
    assert 'id="range-error"' in html and "起始日期须早于截止日期" in html


def test_the_picker_offers_only_what_the_user_may_see(app, world):
    html = page(app, "sup_county")
    assert 'value="region:430225"' in html and f'value="station:{world.station_a.id}"' in html
    assert "440305" not in html and f'value="station:{world.station_c.id}"' not in html
    admin = page(app, "admin_a")
    assert "region:" not in admin and f'value="station:{world.station_b.id}"' not in admin
    assert f'value="deputy:{world.d1.id}"' in admin
    deputy = page(app, "deputy_d1")
    assert 'name="scope"' not in deputy and f'name="deputy" value="{world.d1.id}"' in deputy
    # The picker's own parameter.
    picked = page(app, "sup_county", scope=f"station:{world.station_b.id}")
    assert '<h1 id="scope-title">沔渡镇人大代表之家' in picked


def test_trends_are_drawn_in_svg_with_a_table_of_the_same_numbers(app, outcomes):
    html = page(app, "sup_county")
    assert html.count('role="img"') == 2 and "<script" not in html and "style=" not in html
    months = re.findall(
        r"<tr>\s*<th scope=\"row\" class=\"nowrap\">(\d{4}年\d{1,2}月)</th>\s*<td class=\"num\">(\d+)</td>", html
    )
    assert len(months) == 12 and sum(int(n) for _, n in months) == COUNTY["received"]
    bars = re.findall(r"<title>(\d{4}年\d{1,2}月)：收到(\d+)件</title>", html)
    assert bars == months


def test_codes_show_scans_and_the_items_they_led_to(app, client, world):
    station_code = current_code(world.station_a)
    for _ in range(3):
        assert client.get(f"/c/{current_code(world.d1).slug}").status_code == 200
    submit(client, world.d1, "扫码后提交的留言一。")
    submit(client, world.d1, "扫码后提交的留言二。")
    rotate_code(world.d2, "海报被污损")
    db.session.commit()
    html = page(app, "admin_a")
    table = html[html.index('id="codes-table"') :]
    rows = re.findall(
        r"<th scope=\"row\">(.*?)</th>\s*<td class=\"num\">(\d+)</td>\s*<td class=\"num\">(\d+)</td>", table
    )
    cleaned = {re.sub(r"<[^>]+>", "|", name).strip("|"): (int(s), int(i)) for name, s, i in rows}
    assert cleaned["代表码|张秀英"] == (3, 2)
    assert cleaned[f"联络站码|{world.station_a.name}|从未使用"] == (0, 0)
    # The rotated code says it was retired (issue 14), never "从未使用" in red.
    retired = next(name for name in cleaned if name.startswith("代表码|李建国 |已停用"))
    assert cleaned[retired] == (0, 0) and "从未使用" not in retired
    assert cleaned["代表码|李建国|从未使用"] == (0, 0)  # its replacement
    assert "从未使用" not in next(name for name in cleaned if name.startswith("代表码|张秀英"))
    assert scans.total_scans([station_code.id]) == {}


def test_a_deputy_sees_their_figures_and_points_with_the_rules(app, client, world, outcomes):
    html = page(app, "deputy_d1")
    assert shown(html, "value-received") == str(DEPUTY_D1["received"])
    assert 'id="points"' in html
    for rule in points.rules():
        assert rule.description in html and rule.title in html
    for text in points.NOT_COUNTED:
        assert text in html
    figures = stats.compute(stats.Scope("deputy", deputy=world.d1, station=world.station_a), stats.default_range())
    score = points.deputy_points(figures)
    quantities = {line.rule.key: line.quantity for line in score.lines}
    # 6 answered, all within the deadline; 满意 1, 基本满意 1; one day of in-person entries.
    assert quantities == {
        "answered": 6,
        "answered_on_time": 6,
        "satisfied": 1,
        "basically_satisfied": 1,
        "reception_days": 1,
        "contacts": 0,
    }
    assert score.total == 6 * 2 + 6 * 1 + 1 * 2 + 1 * 1 + 1 * 3
    assert shown(html, "points-total") == str(score.total)
    # Supervisors see no points for a station or the county.
    assert 'id="points"' not in page(app, "sup_county")


def test_points_count_late_answers_and_days_not_items(app, client, world):
    d1 = world.users["deputy"]
    late = handle(submit(client, world.d1, "很久以前提交、很晚才答复的留言。"), d1, "accept", "reply")
    late.created_at = late.first_answered_at - timedelta(days=40)
    first = entered_in_person(d1, "接待日收到的第一条意见。")
    entered_in_person(d1, "接待日收到的第二条意见。")
    event = db.session.scalar(
        select(ItemEvent).where(ItemEvent.item_id == first.id, ItemEvent.kind == ItemEventKind.SUBMITTED)
    )
    event.created_at = event.created_at - timedelta(days=7)  # entered on last week's reception day
    db.session.commit()
    figures = stats.compute(stats.Scope("deputy", deputy=world.d1, station=world.station_a), stats.default_range())
    quantities = {line.rule.key: line.quantity for line in points.deputy_points(figures).lines}
    assert quantities["answered"] == 1 and quantities["answered_on_time"] == 0
    assert quantities["reception_days"] == 2
