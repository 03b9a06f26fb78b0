"""Posters and table cards: real CJK glyphs, text that fits, codes that decode on paper and in a phone photo,
print-ready PDFs (A4/A5, page counts, streamed batches) and the routes' answers."""

from __future__ import annotations

import io
import math
import re
import subprocess
from pathlib import Path
from urllib.parse import quote

import pytest
import zxingcpp
from flask import g
from flask.testing import FlaskClient
from PIL import Image, ImageChops, ImageStat
from sqlalchemy import select

from backend.auth.passwords import hash_password
from backend.errors import UserError
from backend.extensions import db
from backend.models import CongressLevel, DeputyStatus, Region, RegionLevel, StaffRole, StaffUser, Station
from backend.models.deputy import CONGRESS_LEVEL_LABELS
from backend.qr import fonts, posters
from backend.qr.codes import current_code, issue_code
from backend.qr.posters import MM, DeputyCode, StationSheet, px
from tests.helpers import PASSWORD, fresh_token, give_deputy_photo, jpeg_bytes

BASE = "https://msl.example.cn"
NAMES = {
    "two": "张三",
    "four": "欧阳秀英",
    "twenty": "阿卜杜热合曼·买买提依明·艾则孜·吐尔逊",
}
OUTPUT = Path(__file__).resolve().parents[1] / "test-output" / "posters"
PHONE_WIDTH_A4 = 1000  # a phone photo of the whole poster
A4_POINTS = "595.28 x 841.89"
A5_POINTS = "419.53 x 595.28"

pytestmark = pytest.mark.usefixtures("cjk_font")  # posters need the CJK font

# What a poster looks like, and whether its codes decode, does not depend on the database engine: these run in the
# SQLite suite only (tests/conftest.py); the routes' answers and the batches (test_poster_batches.py) run on both.
RENDERING = pytest.mark.engine_independent(reason="rendering, fonts and decoding the printed codes")


@pytest.fixture
def client(app):
    """A test client of a supervisor of the whole province, logged in before its first request.

    The posters are for staff in scope (tests/test_admin_posters.py checks who may print what);
    the login waits for the first request because the test's builders make the regions first.
    """

    class SupervisorClient(FlaskClient):
        logged_in = False

        def open(self, *args, **kwargs):
            if not self.logged_in:
                self.logged_in = True
                province = db.session.scalar(select(Region).where(Region.level == RegionLevel.PROVINCE))
                db.session.add(
                    StaffUser(
                        username="poster-supervisor",
                        password_hash=hash_password(PASSWORD),
                        role=StaffRole.SUPERVISOR,
                        region=province,
                    )
                )
                db.session.commit()
                _, token = fresh_token(self, "/staff/login")
                login = {"csrf_token": token, "username": "poster-supervisor", "password": PASSWORD}
                assert super().open("/staff/login", method="POST", data=login).status_code == 303
                g.pop("csrf_token", None)
            return super().open(*args, **kwargs)

    app.test_client_class = SupervisorClient
    return app.test_client()


def decode(image: Image.Image) -> list[str]:
    """Every QR code zxing-cpp finds in the image."""
    return [code.text for code in zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)]


def assert_decodes_to(image: Image.Image, expected: set[str], where: str = "") -> None:
    """Every expected URL decodes, and nothing else that looks like one of ours.

    zxing-cpp sometimes also reports a few digits read off part of a neighbouring symbol on a
    page of twenty codes; that is not a URL and a phone framing one code never sees it.
    """
    found = set(decode(image))
    assert expected <= found, (where, sorted(expected - found))
    assert {text for text in found if "://" in text} == expected, where


def url_of(owner) -> str:
    return f"{BASE}/c/{current_code(owner).slug}"


def scaled(image: Image.Image, width: int) -> Image.Image:
    """The image at ``width`` pixels, as a phone photo of the whole sheet would have it."""
    return image.resize((width, round(image.height * width / image.width)), Image.Resampling.LANCZOS)


def pdf_info(data: bytes, tmp_path: Path) -> dict[str, object]:
    """Pages and every page's size, from poppler's pdfinfo (which also must not complain)."""
    path = tmp_path / "check.pdf"
    path.write_bytes(data)
    result = subprocess.run(["pdfinfo", "-f", "1", "-l", "9999", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr  # no syntax errors, no repaired xref
    pages = int(re.search(r"^Pages:\s+(\d+)", result.stdout, re.M).group(1))
    sizes = re.findall(r"^Page\s+\d+ size:\s+([\d.]+ x [\d.]+) pts", result.stdout, re.M)
    return {"pages": pages, "sizes": sizes}


def pdf_page_image(data: bytes, tmp_path: Path, page: int = 1, dpi: int = 100) -> Image.Image:
    """One page of the PDF rasterised by poppler's pdftoppm."""
    path = tmp_path / "page.pdf"
    path.write_bytes(data)
    result = subprocess.run(
        ["pdftoppm", "-r", str(dpi), "-f", str(page), "-l", str(page), "-png", str(path)], capture_output=True
    )
    assert result.returncode == 0, result.stderr
    return Image.open(io.BytesIO(result.stdout)).convert("RGB")


def ink_outside(image: Image.Image, margin_mm: float, sides: str = "ltrb") -> list[str]:
    """The sides whose margin strip has anything but white paper on it."""
    ink = ImageChops.invert(image.convert("L"))
    width, height = image.size
    m = px(margin_mm)
    strips = {
        "l": (0, 0, m, height),
        "t": (0, 0, width, m),
        "r": (width - m, 0, width, height),
        "b": (0, height - m, width, height),
    }
    return [side for side in sides if ink.crop(strips[side]).getbbox() is not None]


def assert_inside(sheet: posters.Sheet, margin_mm: float) -> None:
    """Every text line and every code's modules lie within the margins; a code's quiet zone (white) within the paper."""
    width, height = sheet.size_px
    m = px(margin_mm)
    for text in sheet.texts:
        left, top, right, bottom = text.box
        assert m <= left and right <= width - m and m <= top and bottom <= height - m, (text, m)
    for code in sheet.codes:
        box = code.symbol
        assert m <= box.left and box.right <= width - m and m <= box.top and box.bottom <= height - m, code
        assert code.box.left >= 0 and code.box.right <= width and code.box.top >= 0 and code.box.bottom <= height


def name_lines(sheet: posters.Sheet) -> list[posters.PlacedText]:
    return [text for text in sheet.texts if text.role == "name"]


def save(image: Image.Image, name: str) -> Path:
    """Keep a rendered sheet under test-output/posters/ for a person to look at."""
    OUTPUT.mkdir(parents=True, exist_ok=True)
    path = OUTPUT / name
    image.save(path)
    return path


def deputy_with_photo(create_deputy, **kwargs):
    deputy = create_deputy(**kwargs)
    give_deputy_photo(deputy, jpeg_bytes((600, 800), (70, 110, 160)))
    db.session.commit()
    return deputy


# --- the font ------------------------------------------------------------------------------------


@RENDERING
@pytest.mark.parametrize(("weight", "style"), [("bold", "Bold"), ("regular", "Regular")])
def test_font_is_noto_sans_cjk_sc_chosen_inside_the_collection(app, weight, style):
    face = fonts.poster_face(weight)
    assert face.name == ("Noto Sans CJK SC", style)
    assert fonts.poster_font(weight, 60).getname() == ("Noto Sans CJK SC", style)


@RENDERING
@pytest.mark.parametrize("weight", ["bold", "regular"])
def test_names_and_poster_words_are_real_glyphs_not_tofu(app, weight):
    font = fonts.poster_font(weight, 120)
    words = [
        *NAMES.values(),
        posters.TITLE,
        posters.AFTER_SCAN_WECHAT,
        posters.AFTER_SCAN_LOOKUP,
        "全国人大代表省市县乡镇",
        "逢六（每月6日、16日、26日）",
    ]
    for text in words:
        assert fonts.missing_glyphs(font, text) == [], text
    # The check itself sees tofu: a private-use code point has no glyph in the font.
    assert fonts.missing_glyphs(font, "张\ue000三") == ["\ue000"]


@RENDERING
def test_missing_font_says_which_package_to_install(app, monkeypatch):
    # The fault: a machine without fontconfig and without the package's files.
    monkeypatch.setenv("PATH", "")
    monkeypatch.setitem(fonts.KNOWN_FILES, "bold", ("/nonexistent/NoSuchFont-Bold.ttc",))
    fonts.find_face.cache_clear()
    try:
        with pytest.raises(fonts.FontMissingError, match="fonts-noto-cjk"):
            fonts.find_face("bold")
    finally:
        fonts.find_face.cache_clear()


def test_poster_font_path_overrides_and_a_bad_one_is_a_clear_503(app, client, create_deputy):
    deputy = create_deputy()
    regular = fonts.find_face("regular").path
    app.config["POSTER_FONT_PATH"] = regular
    assert fonts.poster_face("bold") == fonts.FontFace(
        regular, fonts.find_face("regular").index, ("Noto Sans CJK SC", "Regular")
    )

    app.config["POSTER_FONT_PATH"] = "/nonexistent/font.ttc"
    response = client.get(f"/posters/deputy/{deputy.id}.png")
    assert response.status_code == 503
    assert "服务器缺少中文字体（fonts-noto-cjk）" in response.get_data(as_text=True)


# --- fitting text --------------------------------------------------------------------------------


@RENDERING
@pytest.mark.parametrize("key", list(NAMES))
def test_deputy_names_of_any_length_fit_whole(app, create_deputy, key):
    name = NAMES[key]
    deputy = create_deputy(name=name, levels=(CongressLevel.COUNTY, CongressLevel.TOWNSHIP))
    sheet = posters.deputy_poster(posters.deputy_sheet(deputy))
    assert_inside(sheet, posters.MARGIN_MM)
    assert ink_outside(sheet.composite(), posters.MARGIN_MM - 1) == []
    lines = name_lines(sheet)
    assert "".join(line.text for line in lines) == name  # wrapped, never cut
    assert len(lines) <= 2
    column_left = px(posters.MARGIN_MM + 56)
    assert all(line.box[0] >= column_left for line in lines)  # beside the photo, not over it
    if key == "twenty":
        assert [line.text for line in lines] == ["阿卜杜热合曼·买买提依明·", "艾则孜·吐尔逊"]  # broken at a "·"


@RENDERING
def test_short_names_print_larger_than_long_ones(app, create_deputy):
    sizes = {}
    for key, name in NAMES.items():
        sheet = posters.deputy_poster(posters.deputy_sheet(create_deputy(name=name)))
        sizes[key] = name_lines(sheet)[0].size
    assert sizes["two"] == sizes["four"] == px(18) > sizes["twenty"] >= px(7)  # 18 mm reads from across the room


def test_the_longest_fields_the_database_allows_still_fit(app):
    sheet = posters.DeputySheet(
        name="阿" * 50,
        levels=tuple(CONGRESS_LEVEL_LABELS.values()),
        constituency="第三选区" * 50,
        station_name="霞阳镇人大代表联络站" * 10,
        station_address="炎帝大道1号" * 33,
        reception="每周一、每周三、每月20日、逢六（每月6日、16日、26日）",
        url=f"{BASE}/c/AbCdEfGhIjKl",
        slug="AbCdEfGhIjKl",
    )
    poster = posters.deputy_poster(sheet)
    assert_inside(poster, posters.MARGIN_MM)
    assert "".join(line.text for line in name_lines(poster)) == "阿" * 50
    assert decode(poster.composite()) == [sheet.url]
    card = posters.table_card(sheet)
    assert_inside(card, 8)
    station = StationSheet(
        name="霞阳镇人大代表联络站" * 10,
        address="炎帝大道1号" * 33,
        contact="李" * 50 + " " + "0" * 30,
        reception="每周一、每周三、每月20日、逢六（每月6日、16日、26日）",
        url=f"{BASE}/c/StationAbcde",
        slug="StationAbcde",
        deputies=tuple(DeputyCode(name="阿" * 50, url=f"{BASE}/c/Deputy{i:06d}") for i in range(20)),
    )
    [page] = posters.station_posters(station)
    assert_inside(page, posters.MARGIN_MM)
    assert "".join(t.text for t in name_lines(page)) == "阿" * 50 * 20  # every name whole, over its lines


@RENDERING
@pytest.mark.parametrize(
    ("text", "breaks", "expected"),
    [
        ("张三", "", ["张", "三"]),
        ("霞阳镇，第三选区。", "", ["霞", "阳", "镇，", "第", "三", "选", "区。"]),
        ("（逢六）", "", ["（逢", "六）"]),
        ("Room 301号", "", ["Room", " ", "301", "号"]),
        ("上午9:00—11:30", "", ["上", "午", "9:00—", "11:30"]),  # a time is not broken at its colon
        ("阿卜杜热合曼·买买提依明·艾则孜", "·", ["阿卜杜热合曼·", "买买提依明·", "艾则孜"]),
    ],
)
def test_lines_break_between_characters_and_keep_punctuation_with_its_neighbour(text, breaks, expected):
    assert posters.text_tokens(text, breaks) == expected


# --- codes decode --------------------------------------------------------------------------------


@RENDERING
def test_deputy_poster_code_is_large_and_decodes_on_paper_and_in_a_phone_photo(app, create_deputy):
    deputy = deputy_with_photo(create_deputy, name=NAMES["twenty"])
    sheet = posters.deputy_poster(posters.deputy_sheet(deputy))
    page = sheet.composite()
    assert page.size == (2480, 3508)  # A4 at 300 dpi
    assert decode(page) == [url_of(deputy)]
    assert decode(scaled(page, PHONE_WIDTH_A4)) == [url_of(deputy)]
    [code] = sheet.codes
    symbol = ImageChops.invert(page.crop(code.box.as_tuple()).convert("L")).getbbox()
    assert symbol[2] - symbol[0] >= 80 * MM  # at least 8 cm of modules, quiet zone not counted
    save(sheet.preview(), "deputy-poster.png")


@RENDERING
@pytest.mark.parametrize("count", [1, 5, 20])
def test_station_poster_every_code_decodes(app, create_station, create_deputy, count):
    station = create_station(rules=[("weekly", 3, None), ("xun", 6, None)])
    deputies = [
        create_deputy(name=NAMES["twenty"] if i % 4 == 0 else f"代表{i}", station=station) for i in range(count)
    ]
    create_deputy(name="已辞职", station=station, status=DeputyStatus.RESIGNED)
    sheets = posters.station_posters(posters.station_sheet(station))
    assert len(sheets) == 1
    expected = {url_of(station), *(url_of(d) for d in deputies)}
    page = sheets[0].composite()
    assert_decodes_to(page, expected)
    assert_decodes_to(scaled(page, PHONE_WIDTH_A4), expected)
    assert_inside(sheets[0], posters.MARGIN_MM)
    assert ink_outside(page, posters.MARGIN_MM - 1) == []
    station_code = next(c for c in sheets[0].codes if c.url == url_of(station))
    deputy_code = next(c for c in sheets[0].codes if c.url != url_of(station))
    assert station_code.box.width > deputy_code.box.width  # 双码: the station's code is the large one
    names = [t.text for t in name_lines(sheets[0])]
    assert "".join(names).count("阿卜杜热合曼") == sum(1 for i in range(count) if i % 4 == 0)
    if count == 20:
        save(sheets[0].preview(), "station-poster.png")


@RENDERING
def test_station_with_more_deputies_than_a_page_holds_goes_on_to_more_pages(app):
    sheet = station_sheet_of(45)
    pages = posters.station_posters(sheet)
    assert len(pages) >= 2
    seen = []
    for page in pages:
        assert_inside(page, posters.MARGIN_MM)
        expected = {code.url for code in page.codes}
        assert_decodes_to(scaled(page.composite(), PHONE_WIDTH_A4), expected)
        seen += [url for url in expected if url != sheet.url]
        assert all(code.box.width >= px(posters.CELL_QR_MIN_MM) - 1 for code in page.codes)
    assert sorted(seen) == sorted(d.url for d in sheet.deputies)  # each deputy once


def test_station_without_serving_deputies_still_gets_its_code(app, create_station):
    station = create_station()
    [page] = posters.station_posters(posters.station_sheet(station))
    assert decode(page.composite()) == [url_of(station)]
    assert any(text.text.startswith("本站暂无在任代表") for text in page.texts)


@RENDERING
def test_table_card_reads_from_both_sides_of_the_fold(app, create_deputy):
    deputy = create_deputy(name=NAMES["four"])
    card = posters.table_card(posters.deputy_sheet(deputy))
    image = card.composite()
    assert image.size == (1748, 2480)  # A5 at 300 dpi
    fold = image.height // 2
    upper, lower = image.crop((0, 0, image.width, fold)), image.crop((0, fold, image.width, image.height))
    for half in (upper.rotate(180), lower):
        assert decode(half) == [url_of(deputy)]
        assert decode(scaled(half, 705)) == [url_of(deputy)]  # A5 at the phone resolution of the A4 tests
    # The upper half is the lower one turned: what reads upright below reads upright across the table.
    assert ImageStat.Stat(ImageChops.difference(upper.rotate(180), lower)).mean == pytest.approx([0, 0, 0], abs=1.5)
    assert_inside(card, 8)
    assert ink_outside(image, 7, "tb") == []
    assert "".join(t.text for t in name_lines(card)) == NAMES["four"] * 2
    save(card.preview(), "table-card.png")


# --- PDFs and routes -----------------------------------------------------------------------------


def test_deputy_pdf_is_one_a4_page_whose_code_decodes(app, client, create_deputy, poppler, tmp_path):
    deputy = deputy_with_photo(create_deputy, name=NAMES["four"])
    response = client.get(f"/posters/deputy/{deputy.id}.pdf")
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment; ")
    assert f'filename="deputy-{deputy.id}-poster.pdf"' in disposition
    assert f"filename*=UTF-8''{quote(NAMES['four'] + '-代表码海报.pdf', safe='')}" in disposition
    assert pdf_info(response.data, tmp_path) == {"pages": 1, "sizes": [A4_POINTS]}
    page = pdf_page_image(response.data, tmp_path, dpi=100)
    assert decode(page) == [url_of(deputy)]


@RENDERING
def test_pdf_page_prints_what_the_preview_shows(app, create_deputy, poppler, tmp_path):
    deputy = deputy_with_photo(create_deputy, name=NAMES["twenty"])
    sheet = posters.deputy_poster(posters.deputy_sheet(deputy))
    printed = pdf_page_image(posters.pdf_bytes([sheet]), tmp_path, dpi=150).resize((1240, 1754))
    difference = ImageStat.Stat(ImageChops.difference(printed, sheet.preview())).mean
    assert max(difference) < 3  # the same drawing: no strip of text or photo lost on the way to the PDF


def test_deputy_png_is_a_1240_px_preview(app, client, create_deputy):
    deputy = create_deputy()
    response = client.get(f"/posters/deputy/{deputy.id}.png")
    assert response.status_code == 200
    assert response.mimetype == "image/png"
    assert response.headers["Content-Disposition"].startswith("inline; ")
    image = Image.open(io.BytesIO(response.data))
    assert image.size == (1240, 1754)
    assert decode(image) == [url_of(deputy)]


@pytest.fixture
def station_and_serving(create_station, create_deputy):
    """A station with a serving deputy of each of ``NAMES``, one whose term ended and one recalled: (station, the
    serving deputies) — the two who no longer serve have no page and no card."""
    station = create_station()
    serving = [create_deputy(name=name, station=station) for name in NAMES.values()]
    create_deputy(name="任期已满", station=station, status=DeputyStatus.TERM_ENDED)
    create_deputy(name="已罢免", station=station, status=DeputyStatus.RECALLED)
    return station, serving


def test_station_pdf_is_the_station_poster_then_a_page_per_serving_deputy(
    client, station_and_serving, poppler, tmp_path
):
    station, serving = station_and_serving
    response = client.get(f"/posters/station/{station.id}.pdf")
    assert response.status_code == 200
    assert response.is_streamed
    assert "filename*=UTF-8''" in response.headers["Content-Disposition"]
    assert pdf_info(response.data, tmp_path) == {"pages": 1 + len(serving), "sizes": [A4_POINTS] * (1 + len(serving))}
    first = pdf_page_image(response.data, tmp_path, page=1)
    assert_decodes_to(first, {url_of(station), *(url_of(d) for d in serving)})
    for number, deputy in enumerate(serving, start=2):
        assert decode(pdf_page_image(response.data, tmp_path, page=number)) == [url_of(deputy)]


def test_station_cards_pdf_is_a5_one_card_per_serving_deputy(client, station_and_serving, poppler, tmp_path):
    station, serving = station_and_serving
    response = client.get(f"/posters/station/{station.id}/cards.pdf")
    assert response.status_code == 200
    assert pdf_info(response.data, tmp_path) == {"pages": 3, "sizes": [A5_POINTS] * 3}
    page = pdf_page_image(response.data, tmp_path, page=3)
    lower = page.crop((0, page.height // 2, page.width, page.height))
    assert decode(lower) == [url_of(serving[2])]


def test_region_batch_is_streamed_page_by_page(
    app, client, create_county, create_station, create_deputy, poppler, tmp_path
):
    county = create_county()
    township = Region(code="430225101", name="霞阳镇", level=RegionLevel.TOWNSHIP, parent=county)
    other_county = Region(code="430224", name="茶陵县", level=RegionLevel.COUNTY, parent=county.parent)
    db.session.add_all([township, other_county])
    db.session.commit()
    in_county = create_station(name="县城联络站", region=county)
    in_township = create_station(name="霞阳镇联络站", region=township)
    elsewhere = create_station(name="茶陵联络站", region=other_county)
    closed = create_station(name="已停用联络站", region=township)
    closed.is_active = False
    db.session.commit()
    included = [
        create_deputy(name="张三", station=in_county),
        create_deputy(name="欧阳秀英", station=in_township),
        create_deputy(name=NAMES["twenty"], station=in_township),
    ]
    create_deputy(name="已辞职", station=in_township, status=DeputyStatus.RESIGNED)
    create_deputy(name="外县代表", station=elsewhere)
    create_deputy(name="停用站代表", station=closed)

    response = client.get("/posters/region/430225.pdf", buffered=False)
    assert response.status_code == 200
    assert response.is_streamed
    assert "Content-Length" not in response.headers
    chunks = [chunk for chunk in response.response if chunk]
    response.close()
    assert len(chunks) == len(included) + 1  # a chunk per page as it is rendered, then fonts, page tree and xref
    assert [len(re.findall(rb"/Type /Page\b", chunk)) for chunk in chunks] == [1] * len(included) + [0]
    assert b"/FontFile3" in chunks[-1] and not any(b"/FontFile3" in chunk for chunk in chunks[:-1])
    data = b"".join(chunks)
    assert pdf_info(data, tmp_path) == {"pages": 3, "sizes": [A4_POINTS] * 3}
    urls = [decode(pdf_page_image(data, tmp_path, page=n)) for n in (1, 2, 3)]
    assert urls == [[url_of(d)] for d in included]


@pytest.mark.parametrize(
    "path",
    [
        "/posters/deputy/{missing}.pdf",
        "/posters/deputy/{missing}.png",
        "/posters/station/{missing}.pdf",
        "/posters/station/{missing}/cards.pdf",
        "/posters/region/999999.pdf",
        "/posters/deputy/2147483648.pdf",
        "/posters/deputy/abc.pdf",
    ],
)
def test_unknown_ids_are_404(client, create_deputy, path):
    deputy = create_deputy()
    response = client.get(path.format(missing=deputy.id + deputy.station_id + 1000))
    assert response.status_code == 404
    assert "找不到该页面或记录。" in response.get_data(as_text=True)


@pytest.mark.parametrize("fmt", ["pdf", "png"])
def test_a_deputy_who_left_office_gets_no_poster_and_is_told_why(client, create_deputy, fmt):
    deputy = create_deputy(name="李四", status=DeputyStatus.RESIGNED)
    response = client.get(f"/posters/deputy/{deputy.id}.{fmt}")
    assert response.status_code == 404
    body = response.get_data(as_text=True)
    assert "李四已辞去代表职务，不再制作代表码海报和桌牌。" in body
    assert "群众扫码后会转到其所在联络站留言" in body


def test_nothing_to_print_is_404_saying_so(client, create_station, create_county):
    station = create_station()
    response = client.get(f"/posters/station/{station.id}/cards.pdf")
    assert response.status_code == 404
    assert "暂无在任代表，没有可打印的桌牌" in response.get_data(as_text=True)
    response = client.get("/posters/region/430225.pdf")
    assert response.status_code == 404
    assert "暂无在任代表，没有可打印的海报" in response.get_data(as_text=True)
    station.is_active = False
    db.session.commit()
    response = client.get(f"/posters/station/{station.id}.pdf")
    assert response.status_code == 404
    assert "已停用" in response.get_data(as_text=True)


def test_codes_are_issued_for_stations_made_here(app):
    # create_station issues codes; a station made without one is refused with a message, not a broken poster.
    county = Region(code="430226", name="测试县", level=RegionLevel.COUNTY)
    station = Station(name="无码联络站", region=county)
    db.session.add(station)
    db.session.flush()
    with pytest.raises(UserError, match="还没有联络站码"):
        posters.station_sheet(station)
    issue_code(station)
    assert posters.station_sheet(station).url == url_of(station)


# --- vector PDFs: every layout decodes, codes large enough, pages full and small -----------------

PRINT_DPI = 150  # what the print test renders the PDF at, as pdftoppm


def station_sheet_of(count: int, long_every: int = 4) -> StationSheet:
    """A station poster's sheet with ``count`` deputies, every ``long_every``-th with a long minority name."""
    return StationSheet(
        name="霞阳镇人大代表联络站",
        address="霞阳镇炎帝大道1号",
        contact="彭丽 0731-26200101",
        reception="每周三、逢六（每月6日、16日、26日） 上午9:00—11:30",
        url=f"{BASE}/c/StationAbcde",
        slug="StationAbcde",
        deputies=tuple(
            DeputyCode(name=NAMES["twenty"] if i % long_every == 0 else f"代表{i:02d}", url=f"{BASE}/c/Deputy{i:06d}")
            for i in range(count)
        ),
    )


def printed_pages(data: bytes, tmp_path: Path, name: str) -> list[Image.Image]:
    """Every page of the PDF rendered at 150 dpi by pdftoppm, each kept in test-output/posters/ to be looked at."""
    path = tmp_path / f"{name}.pdf"
    path.write_bytes(data)
    result = subprocess.run(
        ["pdftoppm", "-r", str(PRINT_DPI), "-png", str(path), str(tmp_path / name)], capture_output=True, text=True
    )
    assert result.returncode == 0 and result.stderr == "", result.stderr
    pages = [Image.open(page).convert("RGB") for page in sorted(tmp_path.glob(f"{name}-*.png"))]
    for number, page in enumerate(pages, start=1):
        save(page, f"pdf-150dpi-{name}-p{number}.png")
    return pages


def printed_symbol_cm(image: Image.Image) -> dict[str, float]:
    """Each decoded code's printed width in cm (its modules, finder edge to finder edge, as zxing-cpp locates them)."""
    sizes = {}
    for code in zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode):
        p = code.position
        corners = [(p.top_left.x, p.top_left.y), (p.top_right.x, p.top_right.y), (p.bottom_left.x, p.bottom_left.y)]
        (x0, y0), (x1, y1), (x2, y2) = corners
        side_px = (math.dist((x0, y0), (x1, y1)) + math.dist((x0, y0), (x2, y2))) / 2
        sizes[code.text] = side_px / PRINT_DPI * 2.54
    return sizes


def quarter(image: Image.Image, of: str = "area") -> Image.Image:
    """The preview at a quarter of its size: a quarter of its pixels (half each side), or a quarter of its width."""
    return scaled(image, image.width // (2 if of == "area" else 4))


def layouts(create_deputy) -> dict[str, list[posters.Sheet]]:
    """Every layout the posters have: deputy poster with a photo and without, station posters of 0 to 45 deputies, card."""
    with_photo = posters.deputy_sheet(deputy_with_photo(create_deputy, name=NAMES["twenty"]))
    without = posters.deputy_sheet(create_deputy(name=NAMES["two"]))
    sheets = {"deputy-photo": [posters.deputy_poster(with_photo)], "deputy-initial": [posters.deputy_poster(without)]}
    for count in (0, 1, 2, 3, 4, 5, 6, 7, 9, 12, 16, 20, 45):
        sheets[f"station-{count:02d}"] = posters.station_posters(station_sheet_of(count))
    sheets["card"] = [posters.table_card(with_photo)]
    return sheets


@RENDERING
def test_every_layout_decodes_from_the_pdf_at_150_dpi_and_from_the_preview_at_a_quarter(
    app, create_deputy, poppler, tmp_path
):
    for name, sheets in layouts(create_deputy).items():
        printed = printed_pages(posters.pdf_bytes(sheets, name), tmp_path, name)
        assert len(printed) == len(sheets)
        for number, (page, sheet) in enumerate(zip(printed, sheets, strict=True), start=1):
            where = f"{name} page {number}"
            if name == "card":  # each half on its own, as a phone sees one side of the folded card
                fold = page.height // 2
                assert decode(page.crop((0, fold, page.width, page.height))) == [with_url(sheet)], where
                assert decode(page.crop((0, 0, page.width, fold)).rotate(180)) == [with_url(sheet)], where
            else:
                assert_each_code_decodes(page, sheet, where)
            preview = sheet.preview()
            if number == 1:
                save(preview, f"preview-{name}.png")
            if name != "card":
                assert_each_code_decodes(quarter(preview), sheet, f"{where}, preview at a quarter")
            if name.startswith("deputy") or name == "card":  # a single code: even a quarter of the width reads
                lower = quarter(preview, of="width")
                if name == "card":
                    lower = lower.crop((0, lower.height // 2, lower.width, lower.height))
                assert decode(lower) == [with_url(sheet)], where


def assert_each_code_decodes(image: Image.Image, sheet: posters.Sheet, where: str) -> None:
    """Every code of the sheet decodes to its URL, framed on its own as a phone frames one; on pages of up to
    21 codes, the whole page decodes too (zxing-cpp reports at most 30 symbols in one image)."""
    scale = image.width / sheet.size_px[0]
    pad = px(2)
    for code in sheet.codes:
        box = code.box
        crop = [round(v * scale) for v in (box.left - pad, box.top - pad, box.right + pad, box.bottom + pad)]
        assert decode(image.crop(tuple(crop))) == [code.url], (where, code.url)
    if len(sheet.codes) <= 21:
        assert_decodes_to(image, {code.url for code in sheet.codes}, where)


def with_url(sheet: posters.Sheet) -> str:
    """The one URL a deputy's sheet holds (twice on a card)."""
    [url] = {code.url for code in sheet.codes}
    return url


@RENDERING
@pytest.mark.parametrize("count", [1, 2, 3, 4, 5, 6])
def test_station_poster_prints_every_code_at_least_5_cm_wide_up_to_6_deputies(app, poppler, tmp_path, count):
    sheet = station_sheet_of(count)
    [page] = printed_pages(posters.pdf_bytes(posters.station_posters(sheet)), tmp_path, f"size-{count}")
    sizes = printed_symbol_cm(page)
    assert set(sizes) == {sheet.url, *(d.url for d in sheet.deputies)}
    deputy_sizes = [sizes[d.url] for d in sheet.deputies]
    assert min(deputy_sizes) >= 5.0, sizes
    assert sizes[sheet.url] > max(deputy_sizes)  # 双码: the station's code is the large one


@RENDERING
@pytest.mark.parametrize("count", [0, 1, 2, 3, 5, 6, 7, 9, 12, 16, 20, 30])
def test_station_poster_is_filled_down_to_the_bottom_whatever_the_number_of_deputies(app, count):
    [first, *_] = posters.station_posters(station_sheet_of(count))
    ink = ImageChops.invert(first.composite().convert("L")).point(lambda v: 255 if v > 40 else 0)
    rows = [ink.crop((0, y, ink.width, y + 1)).getbbox() is not None for y in range(ink.height)]
    inked = [y for y, has_ink in enumerate(rows) if has_ink]
    assert inked[-1] >= px(297 - posters.MARGIN_MM - 30), "the bottom of the page is left empty"
    gaps, run = [], 0
    for has_ink in rows[inked[0] : inked[-1]]:
        run = 0 if has_ink else run + 1
        gaps.append(run)
    assert max(gaps) <= px(40), f"an empty band of {max(gaps) / MM:.0f} mm"  # a third of A4 would be 99 mm
    grid = posters.plan_station_page(count, True).grid
    if 0 < count <= 20:
        assert grid.qr_mm >= 35  # 20 deputies still get codes of 3.5 cm with the quiet zone


@RENDERING
def test_pdf_is_vector_text_in_the_subset_cjk_font_and_codes_are_no_images(
    app, create_station, create_deputy, poppler, tmp_path
):
    station = create_station(rules=[("weekly", 3, None)])
    station.contact_phone = "0731-26200101"
    station.reception_hours = "上午9:00—11:30"
    db.session.commit()
    deputy = deputy_with_photo(create_deputy, name=NAMES["four"], station=station)
    data = posters.pdf_bytes([posters.deputy_poster(posters.deputy_sheet(deputy))], "t")
    path = tmp_path / "poster.pdf"
    path.write_bytes(data)
    fonts_listed = subprocess.run(["pdffonts", str(path)], capture_output=True, text=True, check=True).stdout
    faces = [line.split() for line in fonts_listed.splitlines()[2:]]
    assert sorted(face[0].split("+")[1] for face in faces) == ["NotoSansCJKsc-Bold", "NotoSansCJKsc-Regular"]
    assert all(re.fullmatch(r"[A-Z]{6}", face[0].split("+")[0]) for face in faces)  # subset tags
    assert all(
        face[1:6] == ["CID", "Type", "0C", "Identity-H", "yes"] and face[6:8] == ["yes", "yes"] for face in faces
    )
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout
    for words in (NAMES["four"], "联系电话：", "0731-26200101", "每周三 上午9:00—11:30", posters.TITLE):
        assert words in text.replace("\n", ""), words
    images = subprocess.run(["pdfimages", "-list", str(path)], capture_output=True, text=True, check=True).stdout
    [photo] = images.splitlines()[2:]  # the photo only: the code is a path
    assert photo.split()[2] == "image" and photo.split()[-1] != "-"
    assert len(data) < 100_000


@RENDERING
def test_a_page_with_an_incompressible_photo_stays_under_100_kb(app, create_deputy):
    deputy = create_deputy(name=NAMES["two"])
    give_deputy_photo(deputy, noise_jpeg((1200, 1600)))
    db.session.commit()
    data = posters.pdf_bytes([posters.deputy_poster(posters.deputy_sheet(deputy))])
    assert len(data) < 100_000, len(data)


def noise_jpeg(size: tuple[int, int]) -> bytes:
    """A JPEG of noise: as hard to compress as a photo gets."""
    out = io.BytesIO()
    Image.effect_noise(size, 60).convert("RGB").save(out, format="JPEG", quality=95)
    return out.getvalue()


WECHAT_READY = {
    "WECHAT_SANDBOX": False,
    "WECHAT_APPID": "wx0123456789abcdef",
    "WECHAT_SECRET": "a-real-secret",
    "WECHAT_QR_VERIFY_FILENAME": "abcdef123.txt",
}


@RENDERING
@pytest.mark.parametrize(
    ("config", "promise"),
    [
        ({}, posters.AFTER_SCAN_LOOKUP),
        (WECHAT_READY, posters.AFTER_SCAN_WECHAT),
        ({**WECHAT_READY, "WECHAT_SANDBOX": True}, posters.AFTER_SCAN_LOOKUP),
        ({**WECHAT_READY, "WECHAT_APPID": None}, posters.AFTER_SCAN_LOOKUP),
        ({**WECHAT_READY, "WECHAT_SECRET": None}, posters.AFTER_SCAN_LOOKUP),
        ({**WECHAT_READY, "WECHAT_QR_VERIFY_FILENAME": None}, posters.AFTER_SCAN_LOOKUP),
        ({**WECHAT_READY, "WECHAT_TEMPLATES": {}}, posters.AFTER_SCAN_LOOKUP),
    ],
    ids=[
        "as-configured",
        "mini-program-opens-codes",
        "sandbox",
        "no-appid",
        "no-secret",
        "codes-open-web",
        "no-template",
    ],
)
def test_poster_promises_wechat_notices_only_where_a_scan_can_lead_to_them(app, create_deputy, config, promise):
    for key in ("WECHAT_SANDBOX", "WECHAT_APPID", "WECHAT_SECRET", "WECHAT_QR_VERIFY_FILENAME"):
        app.config[key] = None
    app.config.update(config)
    sheet = posters.deputy_poster(posters.deputy_sheet(create_deputy(name=NAMES["two"])))
    assert "".join(t.text for t in sheet.texts if t.role == "promise") == promise
    assert ("微信通知" in promise) == (promise == posters.AFTER_SCAN_WECHAT)


@RENDERING
def test_deputy_poster_carries_the_stations_phone_and_reception_hours(app, create_station, create_deputy):
    station = create_station(rules=[("weekly", 3, None), ("monthly", 20, None)])
    station.contact_phone = "0731-26200101"
    station.reception_hours = "上午9:00—11:30"
    db.session.commit()
    sheet = posters.deputy_poster(posters.deputy_sheet(create_deputy(station=station)))
    labels = [t.text for t in sheet.texts if t.role == "label"]
    fields = "".join(t.text for t in sheet.texts if t.role == "field")
    assert labels == ["选区：", "联络站：", "接待时间：", "联系电话："]
    assert "每周三、每月20日 上午9:00—11:30" in fields and fields.endswith("0731-26200101")
    assert_inside(sheet, posters.MARGIN_MM)

    bare = create_station(name="无电话联络站")
    sheet = posters.deputy_poster(posters.deputy_sheet(create_deputy(station=bare)))
    assert [t.text for t in sheet.texts if t.role == "label"] == ["选区：", "联络站：", "接待时间："]
    assert posters.NO_RECEPTION in "".join(t.text for t in sheet.texts if t.role == "field")


def truetype_font_with_chinese_glyphs(path: Path) -> Path:
    """A TrueType (glyf) font drawing 人大代表 as distinct boxes: Chinese glyphs, but no CFF outlines to embed."""
    from fontTools.fontBuilder import FontBuilder
    from fontTools.pens.ttGlyphPen import TTGlyphPen

    chars = "人大代表"
    names = [".notdef", *(f"uni{ord(ch):04X}" for ch in chars)]
    glyphs = {}
    for number, name in enumerate(names):
        pen = TTGlyphPen(None)
        if number:  # each character a box of its own width, so none looks like the missing glyph
            pen.moveTo((50, 0))
            pen.lineTo((50, 200 * number))
            pen.lineTo((900, 200 * number))
            pen.lineTo((900, 0))
            pen.closePath()
        glyphs[name] = pen.glyph()
    builder = FontBuilder(1000, isTTF=True)
    builder.setupGlyphOrder(names)
    builder.setupCharacterMap({ord(ch): f"uni{ord(ch):04X}" for ch in chars})
    builder.setupGlyf(glyphs)
    builder.setupHorizontalMetrics({name: (1000, 50) for name in names})
    builder.setupHorizontalHeader(ascent=880, descent=-120)
    builder.setupNameTable({"familyName": "Box Hei", "styleName": "Regular"})
    builder.setupOS2()
    builder.setupPost()
    builder.save(str(path))
    return path


@RENDERING
def test_a_poster_font_without_cff_outlines_is_refused_saying_why(app, client, create_deputy, tmp_path):
    deputy = create_deputy()
    app.config["POSTER_FONT_PATH"] = str(truetype_font_with_chinese_glyphs(tmp_path / "box-hei.ttf"))
    fonts.find_face.cache_clear()
    try:
        with pytest.raises(fonts.FontMissingError, match="CID-keyed CFF"):
            fonts.poster_face("regular")
        response = client.get(f"/posters/deputy/{deputy.id}.pdf")
        assert response.status_code == 503
        assert "服务器缺少中文字体（fonts-noto-cjk）" in response.get_data(as_text=True)
    finally:
        fonts.find_face.cache_clear()
