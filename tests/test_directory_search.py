"""码上找代表's search (issue 14): by name, station or township, paged, grouped; the page and GET /api/v1/deputies."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import event

from backend.extensions import db
from backend.models import DeputyStatus, Region, RegionLevel
from backend.qr.codes import current_code

BASE = "https://msl.example.cn"


@pytest.fixture
def townships(create_county, create_station, create_deputy):
    """Two townships of one county, a station in each (and a closed one), serving and former deputies."""
    county = create_county()
    xiayang = Region(code="430225100", name="霞阳镇", level=RegionLevel.TOWNSHIP, parent=county)
    miandu = Region(code="430225101", name="沔渡镇", level=RegionLevel.TOWNSHIP, parent=county)
    db.session.add_all([xiayang, miandu])
    db.session.flush()
    first = create_station("炎帝大道代表联络站", region=xiayang)
    second = create_station("沔渡中心代表联络站", region=miandu)
    closed = create_station("已撤销代表联络站", region=miandu)
    closed.is_active = False
    deputies = {
        "张秀英": create_deputy("张秀英", station=first),
        "张建华": create_deputy("张建华", station=second),
        "李四": create_deputy("李四", station=second),
        "张离任": create_deputy("张离任", station=first, status=DeputyStatus.RESIGNED),
        "张关闭": create_deputy("张关闭", station=closed),
        "王_百%": create_deputy("王_百%", station=first),
    }
    for deputy in deputies.values():
        deputy.phone = "13812345678"
    db.session.commit()
    return {"stations": (first, second), "deputies": deputies}


def names(answer) -> list[str]:
    return [d["name"] for d in answer.get_json()["deputies"]]


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        pytest.param("张", ["张秀英", "张建华"], id="part of a name"),
        pytest.param("秀英", ["张秀英"], id="the end of a name"),
        pytest.param("沔渡中心", ["张建华", "李四"], id="a station"),
        pytest.param("霞阳", ["张秀英", "王_百%"], id="a township"),
        pytest.param("  张秀英  ", ["张秀英"], id="spaces around"),
        pytest.param("_", ["王_百%"], id="an underscore is a character, not a wildcard"),
        pytest.param("%", ["王_百%"], id="a percent sign is a character, not a wildcard"),
        pytest.param("没有这个人", [], id="nobody"),
        pytest.param("", ["张秀英", "王_百%", "张建华", "李四"], id="empty: every serving deputy"),
    ],
)
def test_the_search_finds_by_name_station_or_township(client, townships, q, expected):
    answer = client.get("/api/v1/deputies", query_string={"q": q})
    assert answer.status_code == 200
    assert names(answer) == expected  # township by division code, then station, then deputy
    assert answer.get_json()["total"] == len(expected)


def test_each_match_carries_its_station_and_code(client, townships):
    first, _ = townships["stations"]
    deputy = townships["deputies"]["张秀英"]
    body = client.get("/api/v1/deputies?q=张秀英").get_json()
    assert body == {
        "q": "张秀英",
        "deputies": [
            {
                "id": deputy.id,
                "name": "张秀英",
                "levels": ["县人大代表"],
                "code_url": f"{BASE}/c/{current_code(deputy).slug}",
                "qr_png_url": f"{BASE}/qr/deputy/{deputy.id}.png",
                "station": {
                    "id": first.id,
                    "name": "炎帝大道代表联络站",
                    "township": "霞阳镇",
                    "code_url": f"{BASE}/c/{current_code(first).slug}",
                },
            }
        ],
        "page": 1,
        "per_page": 20,
        "total": 1,
        "pages": 1,
        "has_next": False,
    }
    assert "13812345678" not in client.get("/api/v1/deputies").get_data(as_text=True)


def test_pages_of_matches(client, townships):
    first = client.get("/api/v1/deputies?per_page=3").get_json()
    second = client.get("/api/v1/deputies?per_page=3&page=2").get_json()
    assert (first["pages"], first["has_next"], second["has_next"]) == (2, True, False)
    assert [d["name"] for d in first["deputies"] + second["deputies"]] == ["张秀英", "王_百%", "张建华", "李四"]
    assert client.get("/api/v1/deputies?page=9").get_json()["deputies"] == []


@pytest.mark.parametrize(
    ("query", "code"),
    [
        pytest.param("page=0", "invalid_page", id="page 0"),
        pytest.param("page=abc", "invalid_page", id="page letters"),
        pytest.param("page=1e9", "invalid_page", id="page exponent"),
        pytest.param("per_page=51", "invalid_per_page", id="per_page too big"),
        pytest.param("per_page=-1", "invalid_per_page", id="per_page negative"),
    ],
)
def test_bad_paging_is_a_400_naming_the_parameter(client, townships, query, code):
    answer = client.get(f"/api/v1/deputies?{query}")
    assert answer.status_code == 400 and answer.get_json()["error"]["code"] == code


def test_a_long_query_is_cut_not_refused(client, townships):
    answer = client.get("/api/v1/deputies", query_string={"q": "张" + "x" * 500})
    assert answer.status_code == 200 and len(answer.get_json()["q"]) == 50 and answer.get_json()["total"] == 0


def test_the_page_groups_by_township_and_station_with_codes_behind_a_tap(client, townships):
    html = client.get("/stations").get_data(as_text=True)
    assert (
        html.index("霞阳镇")
        < html.index("炎帝大道代表联络站")
        < html.index("沔渡镇")
        < html.index("沔渡中心代表联络站")
    )
    assert "共 4 位在任代表" in html
    assert "张离任" not in html and "张关闭" not in html and "13812345678" not in html
    deputy = townships["deputies"]["张建华"]
    assert f'href="{BASE}/c/{current_code(deputy).slug}"' in html
    # Each code is inside a closed <details> and loads lazily: nothing is drawn until tapped.
    assert re.search(
        rf'<details class="directory-qr-box">\s*<summary>代表二维码</summary>\s*<img [^>]*src="/qr/deputy/{deputy.id}\.png"[^>]*loading="lazy"',
        html,
    )


@pytest.mark.parametrize(
    ("query", "says"),
    [
        pytest.param({"q": "沔渡"}, "“沔渡”：找到 2 位代表", id="a township"),
        pytest.param({"q": "没有这个人"}, "没有找到", id="nobody"),
        pytest.param({"q": "<b>张</b>"}, "&lt;b&gt;张&lt;/b&gt;", id="markup is text"),
        pytest.param({"page": "abc"}, "共 4 位在任代表", id="a bad page number: the first page"),
        pytest.param({"page": "99999999999999999999"}, "共 4 位在任代表", id="a huge page number"),
    ],
)
def test_the_page_answers_every_search_in_chinese(client, townships, query, says):
    page = client.get("/stations", query_string=query)
    assert page.status_code == 200 and says in page.get_data(as_text=True)


def test_the_page_pages(client, create_station, create_deputy):
    station = create_station()
    for n in range(25):
        create_deputy(f"代表{n:02d}", station=station)
    first = client.get("/stations").get_data(as_text=True)
    second = client.get("/stations?page=2").get_data(as_text=True)
    assert "代表00" in first and "代表19" in first and "代表20" not in first
    assert "代表20" in second and "代表24" in second and "第 2 / 2 页" in second
    assert 'href="/stations?page=2"' in first and 'href="/stations?page=1"' in second


def test_the_search_costs_the_same_queries_for_one_deputy_or_fifty(app, client, create_station, create_deputy):
    station = create_station()
    create_deputy("甲", station=station)
    statements: list[str] = []

    def count(*_args):
        statements.append("")

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        client.get("/api/v1/deputies")
        one = len(statements)
        for n in range(49):
            create_deputy(f"乙{n}", station=station)
        statements.clear()
        assert len(client.get("/api/v1/deputies?per_page=50").get_json()["deputies"]) == 50
        assert len(statements) == one
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
