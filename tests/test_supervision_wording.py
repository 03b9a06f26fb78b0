"""Issue 14, the supervisor's page says what it means: an inclusive end date (1日至30日, no "截止日期（不含当天）"
pre-filled with tomorrow), definitions behind a tap, a count axis of round steps, and an export whose 目前是否超期
says 是 or 否 on every row."""

from __future__ import annotations

import io
import itertools
import re
from datetime import date, timedelta

import pytest
from flask import g
from openpyxl import load_workbook

from backend.errors import UserError
from backend.extensions import db
from backend.models import utcnow
from backend.routes.supervision import count_axis, received_chart
from backend.stations.calendar import today_in_china
from backend.supervision import stats
from tests.factories import handle, submit, supervision_world
from tests.helpers import login

WORLD = supervision_world


def page(app, username: str = "sup_county", **args) -> tuple[int, str]:
    response = login(app, username).get("/supervision/", query_string=args)
    g.pop("csrf_token", None)
    return response.status_code, response.text


@pytest.mark.parametrize(
    ("start", "last", "label"),
    [
        (date(2026, 11, 1), date(2026, 11, 30), "2026年11月1日至30日"),
        (date(2026, 1, 1), date(2026, 12, 3), "2026年1月1日至12月3日"),
        (date(2025, 12, 1), date(2026, 11, 30), "2025年12月1日至2026年11月30日"),
        (date(2026, 11, 5), date(2026, 11, 5), "2026年11月5日"),
    ],
)
def test_a_range_reads_as_people_say_it(start, last, label):
    assert stats.DateRange(start, last + timedelta(days=1)).label == label


def test_the_page_takes_an_inclusive_end_date(app, world):
    status, html = page(app, **{"from": "2026-11-01", "until": "2026-11-30"})
    assert status == 200
    assert re.search(r'id="range-label">统计区间：2026年11月1日至30日', html)
    assert 'name="until" value="2026-11-30"' in html and 'name="from" value="2026-11-01"' in html
    assert "不含当天" not in html and 'name="to"' not in html
    assert "起止两天都计入" in html


def test_the_default_range_ends_today_not_tomorrow(app, world):
    _, html = page(app)
    today = today_in_china()
    assert f'name="until" value="{today.isoformat()}"' in html
    assert f'value="{(today + timedelta(days=1)).isoformat()}"' not in html


def test_links_that_say_to_still_mean_the_day_before(app, world):
    """The page's own links (and the API) keep ``to``, exclusive: the same range, the same words."""
    _, html = page(app, **{"from": "2026-11-01", "to": "2026-12-01"})
    assert "统计区间：2026年11月1日至30日" in html


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"from": "2026-11-30", "until": "2026-11-01"}, "起始日期不能晚于截止日期"),
        ({"from": "2026-11-01", "until": "2026-02-30"}, "截止日期"),
        ({"from": "2026-11-01", "until": "30/11/2026"}, "截止日期"),
        ({"from": "2026-11-01", "until": "明天"}, "截止日期"),
        ({"from": "2019-01-01", "until": "2026-11-30"}, "统计区间最长"),
    ],
)
def test_a_bad_range_falls_back_and_says_why(app, world, args, message):
    status, html = page(app, **args)
    assert status == 200  # the page, with the default range and the reason; never a 500
    error = re.search(r'id="range-error">([^<]+)<', html)
    assert error and message in error.group(1) and "最近12个月" in error.group(1)


def test_until_wins_over_to_and_a_one_day_range_is_allowed():
    rng = stats.parse_range("2026-11-05", "2027-01-01", raw_until="2026-11-05")
    assert (rng.start, rng.end) == (date(2026, 11, 5), date(2026, 11, 6))
    with pytest.raises(UserError) as err:
        stats.parse_range("2026-11-06", None, raw_until="2026-11-05")
    assert (err.value.code, err.value.field) == ("invalid_range", "from")


def test_definitions_are_behind_a_tap(app, world):
    _, html = page(app)
    tiles = html.count('class="sv-figure"') + html.count('class="sv-figure ')
    assert tiles and html.count('<details class="sv-def"><summary>怎么算</summary>') == tiles
    figures = html[html.index('class="sv-figures"') : html.index("</ul>", html.index('class="sv-figures"'))]
    assert '<p class="sv-def">' not in figures  # no long grey definition left open on a tile


@pytest.mark.parametrize(
    ("most", "ticks"),
    [
        (0, [0, 1]),
        (2, [0, 1, 2]),
        (5, [0, 1, 2, 3, 4, 5]),
        (7, [0, 2, 4, 6, 8]),
        (23, [0, 5, 10, 15, 20, 25]),
        (99, [0, 20, 40, 60, 80, 100]),
        (2435, [0, 500, 1000, 1500, 2000, 2500]),
    ],
)
def test_the_count_axis_has_round_steps(most, ticks):
    assert count_axis(most) == ticks
    steps = {b - a for a, b in itertools.pairwise(ticks)}
    assert len(steps) == 1  # evenly spaced: never 0/2/5


def test_the_chart_draws_those_ticks(app, world, client):
    for n in range(3):
        submit(client, world.d1, f"第{n + 1}件留言，路灯不亮。")
    figures = stats.compute(stats.resolve_scope(world.users["supervisor"], {}), stats.default_range())
    chart = received_chart(figures.months)
    assert [t["label"] for t in chart["ticks"]] == ["0", "1", "2", "3"]
    assert chart["ticks"][0]["y"] == chart["baseline"]
    tallest = max(chart["bars"], key=lambda bar: bar["value"])
    assert tallest["y"] == chart["ticks"][-1]["y"]  # the top tick is the tallest bar's height


def test_the_export_says_yes_or_no_on_every_row(app, world, client):
    late = submit(client, world.d1, "这件已经超期。")
    on_time = submit(client, world.d1, "这件没有超期。")
    handle(on_time, world.users["deputy"], "accept")
    late.due_at = utcnow() - timedelta(days=1)
    db.session.commit()
    response = login(app, "sup_county").get(
        "/supervision/export.xlsx", query_string={"region": "430225", "month": today_in_china().strftime("%Y-%m")}
    )
    data = response.get_data()  # read it all, then let the temporary file go, as a server does
    response.close()
    g.pop("csrf_token", None)
    assert response.status_code == 200
    rows = list(load_workbook(io.BytesIO(data))["民意件"].iter_rows(values_only=True))
    column = rows[0].index("目前是否超期")
    body = rows[0].index("留言内容")
    answers = {row[body]: row[column] for row in rows[1:]}
    assert answers == {"这件已经超期。": "是", "这件没有超期。": "否"}
