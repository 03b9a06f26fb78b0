"""The public directory (码上找代表): JSON and page, serving deputies only, no personal data."""

from __future__ import annotations

import io
import re

import pytest
import zxingcpp
from PIL import Image
from sqlalchemy import event

from backend.extensions import db
from backend.models import CongressLevel, DeputyStatus
from backend.qr.codes import current_code

BASE = "https://msl.example.cn"
PHONE = "13812345678"


@pytest.fixture
def county_directory(create_station, create_deputy):
    """Two stations; serving and former deputies; phone numbers on deputies and stations."""
    first = create_station("霞阳镇人大代表联络站")
    second = create_station("沔渡镇人大代表联络站")
    serving = create_deputy("张秀英", station=first, levels=(CongressLevel.TOWNSHIP, CongressLevel.COUNTY))
    resigned = create_deputy("李建国", station=first, status=DeputyStatus.RESIGNED)
    recalled = create_deputy("周大海", station=second, status=DeputyStatus.RECALLED)
    term_ended = create_deputy("吴春花", station=second, status=DeputyStatus.TERM_ENDED)
    other = create_deputy("王立新", station=second, levels=(CongressLevel.CITY,))
    for deputy in (serving, resigned, recalled, term_ended, other):
        deputy.phone = PHONE
    first.contact_phone = "0731-5555666"
    db.session.commit()
    return {
        "stations": [first, second],
        "serving": [serving, other],
        "former": [resigned, recalled, term_ended],
    }


def test_api_lists_active_stations_and_serving_deputies(client, county_directory):
    first, second = county_directory["stations"]
    serving = county_directory["serving"][0]
    response = client.get("/api/v1/stations")
    assert response.status_code == 200
    stations = response.get_json()["stations"]
    assert [s["id"] for s in stations] == [first.id, second.id]
    assert stations[0] == {
        "id": first.id,
        "name": "霞阳镇人大代表联络站",
        "address": "霞阳镇炎帝大道1号",
        "code_url": f"{BASE}/c/{current_code(first).slug}",
        "qr_png_url": f"{BASE}/qr/station/{first.id}.png",
        "deputies": [
            {
                "id": serving.id,
                "name": "张秀英",
                "levels": ["县人大代表", "乡镇人大代表"],
                "code_url": f"{BASE}/c/{current_code(serving).slug}",
                "qr_png_url": f"{BASE}/qr/deputy/{serving.id}.png",
            }
        ],
    }
    assert [d["name"] for d in stations[1]["deputies"]] == ["王立新"]
    assert stations[1]["deputies"][0]["levels"] == ["市人大代表"]


def test_deputies_ordered_by_id(client, create_station, create_deputy):
    station = create_station()
    ids = [create_deputy(name, station=station).id for name in ("甲", "乙", "丙")]
    deputies = client.get("/api/v1/stations").get_json()["stations"][0]["deputies"]
    assert [d["id"] for d in deputies] == ids


def test_inactive_station_and_its_deputies_absent(client, county_directory):
    first, second = county_directory["stations"]
    second.is_active = False
    db.session.commit()
    body = client.get("/api/v1/stations").get_data(as_text=True)
    assert [s["id"] for s in client.get("/api/v1/stations").get_json()["stations"]] == [first.id]
    assert "王立新" not in body
    assert "王立新" not in client.get("/stations").get_data(as_text=True)


def test_no_phone_number_or_former_deputy_anywhere(client, county_directory):
    for path in ("/api/v1/stations", "/stations"):
        body = client.get(path).get_data(as_text=True)
        assert PHONE not in body
        assert "0731-5555666" not in body
        assert "phone" not in body
        for deputy in county_directory["former"]:
            assert deputy.name not in body
            assert f"/qr/deputy/{deputy.id}.png" not in body


def test_api_qr_url_serves_the_code(client, county_directory):
    serving = county_directory["serving"][0]
    stations = client.get("/api/v1/stations").get_json()["stations"]
    deputy = stations[0]["deputies"][0]
    assert deputy["qr_png_url"].startswith(BASE + "/")
    image = client.get(deputy["qr_png_url"].removeprefix(BASE))
    assert image.status_code == 200
    decoded = [b.text for b in zxingcpp.read_barcodes(Image.open(io.BytesIO(image.data)))]
    assert decoded == [deputy["code_url"]] == [f"{BASE}/c/{current_code(serving).slug}"]


def test_api_empty(client):
    response = client.get("/api/v1/stations")
    assert response.status_code == 200
    assert response.get_json() == {"stations": []}


def test_page_lists_stations_and_serving_deputies(client, county_directory):
    first, second = county_directory["stations"]
    serving, other = county_directory["serving"]
    response = client.get("/stations")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert "码上找代表" in page
    for name in ("霞阳镇人大代表联络站", "沔渡镇人大代表联络站", "张秀英", "王立新", "县人大代表、乡镇人大代表"):
        assert name in page
    assert page.index("张秀英") < page.index("沔渡镇人大代表联络站") < page.index("王立新")
    for owner, kind in ((serving, "deputy"), (other, "deputy"), (first, "station"), (second, "station")):
        assert f'href="{BASE}/c/{current_code(owner).slug}"' in page
        assert re.search(rf'<img [^>]*src="/qr/{kind}/{owner.id}\.png"[^>]*loading="lazy"', page)
    assert "/static/css/directory.css" in page


def test_page_has_no_inline_script_or_style(client, county_directory):
    page = client.get("/stations").get_data(as_text=True)
    assert "<script" not in page
    assert "<style" not in page
    assert " style=" not in page
    assert not re.search(r"<[^>]*\son[a-z]+=", page)  # no onclick= and the like


def test_page_escapes_html_in_names(client, create_station, create_deputy):
    station = create_station("<script>alert(1)</script>")
    create_deputy('<img src=x onerror="alert(2)">', station=station)
    page = client.get("/stations").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<img src=x" not in page
    assert "&lt;img src=x onerror=" in page
    # JSON carries the text as text; escaping is the page's job.
    assert client.get("/api/v1/stations").get_json()["stations"][0]["name"] == "<script>alert(1)</script>"


def test_page_empty(client):
    response = client.get("/stations")
    assert response.status_code == 200
    assert "暂无联络站信息。" in response.get_data(as_text=True)


def count_queries(client, path: str) -> int:
    statements: list[str] = []

    def _count(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", _count)
    try:
        assert client.get(path).status_code == 200
    finally:
        event.remove(db.engine, "before_cursor_execute", _count)
    return len([s for s in statements if s.lstrip().upper().startswith("SELECT")])


@pytest.mark.parametrize("path", ["/api/v1/stations", "/stations"])
def test_query_count_does_not_grow_with_rows(client, create_station, create_deputy, path):
    station = create_station()
    create_deputy("甲", station=station)
    db.session.expunge_all()
    small = count_queries(client, path)
    for i in range(4):
        more = create_station(f"第{i}联络站")
        for j in range(3):
            create_deputy(f"代表{i}{j}", station=more, levels=(CongressLevel.COUNTY, CongressLevel.TOWNSHIP))
    db.session.expunge_all()
    assert count_queries(client, path) == small
