"""Posters from the administration pages: who may print what, and the page count the server announces
(X-Poster-Pages) for the progress shown while a batch streams."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from backend.admin.printing import PAGES_HEADER
from backend.extensions import db
from backend.qr import posters
from backend.qr.posters import DeputyCode, StationSheet
from tests.factories import admin_world
from tests.helpers import audit_count, login, missing_tool

pytestmark = [
    pytest.mark.usefixtures("cjk_font"),  # posters need the CJK font
    pytest.mark.engine_independent(reason="rendering posters and decoding their codes"),
]


WORLD = admin_world  # the world fixture (tests/conftest.py)


def pdf_pages(data: bytes, tmp_path) -> int:
    if not shutil.which("pdfinfo"):
        missing_tool("poppler-utils is not installed (scripts/system-deps.sh --test)")
    path = tmp_path / "batch.pdf"
    path.write_bytes(data)
    result = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True)
    return int(re.search(r"^Pages:\s+(\d+)", result.stdout, re.M).group(1))


def test_station_admin_prints_the_station_batch_with_its_page_count(app, world, tmp_path):
    client = login(app, "admin_a")
    response = client.get(f"/posters/station/{world.station_a.id}.pdf")
    assert response.status_code == 200
    assert response.headers[PAGES_HEADER] == "3"  # the station poster, then d1 and d2
    assert pdf_pages(response.data, tmp_path) == 3
    cards = client.get(f"/posters/station/{world.station_a.id}/cards.pdf")
    assert cards.headers[PAGES_HEADER] == "2" and pdf_pages(cards.data, tmp_path) == 2
    assert client.get(f"/posters/deputy/{world.d1.id}.png").status_code == 200


def test_a_supervisor_prints_the_county_batch(app, world, tmp_path):
    client = login(app, "sup_county")
    response = client.get("/posters/region/430225.pdf")
    assert response.status_code == 200
    # d1, d2 (A), d3 (B), d5 (T, in the township under the county): one page each.
    assert response.headers[PAGES_HEADER] == "4"
    assert pdf_pages(response.data, tmp_path) == 4
    township = client.get("/posters/region/430225100.pdf")
    assert township.headers[PAGES_HEADER] == "1"


def test_a_deputy_prints_their_own_poster_only(app, world):
    client = login(app, "deputy_d1")
    assert client.get(f"/posters/deputy/{world.d1.id}.png").status_code == 200
    pdf = client.get(f"/posters/deputy/{world.d1.id}.pdf")
    assert pdf.status_code == 200 and pdf.headers[PAGES_HEADER] == "1"
    for path in (f"/posters/deputy/{world.d2.id}.png", f"/posters/station/{world.station_a.id}.pdf"):
        audits = audit_count("admin_access_denied")
        assert client.get(path).status_code == 404
        assert audit_count("admin_access_denied") == audits + 1


def test_logged_out_poster_requests_go_to_login(app, world):
    response = app.test_client().get(f"/posters/deputy/{world.d1.id}.png")
    assert response.status_code == 303 and "/staff/login" in response.headers["Location"]


def test_a_deputy_whose_code_was_lost_is_not_counted(app, world):
    from backend.models import Code

    db.session.query(Code).filter(Code.deputy_id == world.d2.id).delete()
    db.session.commit()
    client = login(app, "admin_a")
    assert client.get(f"/posters/station/{world.station_a.id}/cards.pdf").headers[PAGES_HEADER] == "1"


@pytest.mark.parametrize("count", [24, 25, 61])
def test_station_poster_page_count_matches_the_layout(app, count):
    deputies = tuple(DeputyCode(name=f"代表{i}", url=f"https://msl.example.cn/c/{i:012d}") for i in range(count))
    sheet = StationSheet(
        name="测试联络站",
        address="",
        contact="",
        reception="",
        url="https://msl.example.cn/c/station00001",
        slug="station00001",
        deputies=deputies,
    )
    assert posters.station_poster_page_count(count) == len(posters.station_posters(sheet))
