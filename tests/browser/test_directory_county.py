"""Issue 14's directory in a county as large as the field's largest (宁乡: 80 stations, 2,435 deputies).

``make run``'s server on an empty database; the county is written with bulk inserts (a handful of
statements, not an ORM object per deputy). On a 360×740 phone in WeChat's browser a resident finds a
deputy by name and by township, opens the deputy's code with one tap, and the code on the screen is read
by a real QR decoder. Screenshots are kept in test-output/screenshots/.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
import zxingcpp
from PIL import Image
from playwright.sync_api import expect
from sqlalchemy import insert, select

from backend import create_app
from backend.extensions import db
from backend.models import CongressLevel, Deputy, DeputyLevel, DeputyStatus, Region, RegionLevel, Station
from backend.models.code import Code
from backend.qr.codes import new_slug
from tests.browser.conftest import LiveServer, Phone, demo_server, fits

pytestmark = pytest.mark.browser

DEPUTIES = 2_435
STATIONS = 80
TOWNSHIPS = 29  # 宁乡's 4 streets and 25 towns
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "建华秀英国强丽娟志明海燕红梅德胜春兰永刚桂芳立新学文淑珍"
SOUGHT = "欧阳晓岚"  # one name in the county, to be found among 2,435
SOUGHT_TOWNSHIP = "双江口镇"


def township_name(index: int) -> str:
    return SOUGHT_TOWNSHIP if index == TOWNSHIPS - 1 else f"第{index + 1:02d}镇"


def deputy_name(index: int) -> str:
    """Names repeat as they do in a county (two-character given names from a short list)."""
    if index == DEPUTIES - 1:
        return SOUGHT
    pair = (index // len(SURNAMES)) % (len(GIVEN) // 2)
    return SURNAMES[index % len(SURNAMES)] + GIVEN[2 * pair : 2 * pair + 2]


def build_county(database_url: str) -> None:
    """宁乡-sized: 29 townships, 80 stations, 2,435 serving deputies with a level and a current code each."""
    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url})
    with app.app_context():
        session = db.session
        parent = None
        for code, name, level in (
            ("430000", "湖南省", RegionLevel.PROVINCE),
            ("430100", "长沙市", RegionLevel.CITY),
            ("430182", "宁乡市", RegionLevel.COUNTY),
        ):
            session.execute(insert(Region), [{"code": code, "name": name, "level": level, "parent_id": parent}])
            parent = session.scalar(select(Region.id).where(Region.code == code))
        county = parent
        session.execute(
            insert(Region),
            [
                {
                    "code": f"430182{100 + t}",
                    "name": township_name(t),
                    "level": RegionLevel.TOWNSHIP,
                    "parent_id": county,
                }
                for t in range(TOWNSHIPS)
            ],
        )
        townships = session.scalars(select(Region.id).where(Region.parent_id == county).order_by(Region.code)).all()
        session.execute(
            insert(Station),
            [
                {
                    "name": f"{township_name(s % TOWNSHIPS)}第{s // TOWNSHIPS + 1}代表联络站",
                    "region_id": townships[s % TOWNSHIPS],
                    "address": f"{township_name(s % TOWNSHIPS)}政府大院{s + 1}号",
                }
                for s in range(STATIONS)
            ],
        )
        stations = session.scalars(select(Station.id).order_by(Station.id)).all()
        # The sought deputy serves in 双江口镇 (the last township): at its first station.
        sought_station = stations[TOWNSHIPS - 1]
        session.execute(
            insert(Deputy),
            [
                {
                    "name": deputy_name(d),
                    "station_id": sought_station if d == DEPUTIES - 1 else stations[d % STATIONS],
                    "status": DeputyStatus.SERVING,
                }
                for d in range(DEPUTIES)
            ],
        )
        deputies = session.scalars(select(Deputy.id).order_by(Deputy.id)).all()
        session.execute(insert(DeputyLevel), [{"deputy_id": d, "level": CongressLevel.TOWNSHIP} for d in deputies])
        session.execute(
            insert(Code),
            [{"slug": new_slug(), "deputy_id": d} for d in deputies]
            + [{"slug": new_slug(), "station_id": s} for s in stations],
        )
        session.commit()
        db.engine.dispose()


@pytest.fixture(scope="module")
def big_county(chromium_executable, tmp_path_factory) -> Iterator[LiveServer]:
    """``make run``'s server on an empty database, then the 2,435-deputy county written into it."""
    with demo_server(tmp_path_factory.mktemp("big_county"), load_demo=False, ready_path="/healthz") as server:
        build_county(server.env["DATABASE_URL"])
        yield server


def read_code_on_screen(phone: Phone, image) -> list[str]:
    """What a phone's scanner reads from the QR image as it is drawn on the screen."""
    expect(image).to_be_visible()
    image.evaluate("img => img.complete || new Promise(resolve => img.addEventListener('load', resolve))")
    shot = image.screenshot()
    return [barcode.text for barcode in zxingcpp.read_barcodes(Image.open(io.BytesIO(shot)))]


def test_a_resident_finds_a_deputy_among_2435_by_name_and_by_township(big_county, phone):
    page = phone.page
    page.goto(big_county.base_url + "/stations")
    expect(page.locator("#directory-summary")).to_contain_text(f"共 {DEPUTIES} 位在任代表")
    # One page of 20, grouped: nothing like 2,435 QR codes drawn at once.
    assert page.locator(".directory-deputy").count() == 20
    assert page.locator("img.directory-qr:visible").count() == 0
    expect(page.locator(".directory-page-number")).to_have_text("第 1 / 122 页")
    fits(phone)
    phone.screenshot("directory-2435-first-page")

    # By name.
    page.get_by_label("输入代表姓名、联络站或乡镇").fill("晓岚")
    page.get_by_role("button", name="搜索").click()
    expect(page.locator("#directory-summary")).to_contain_text("“晓岚”：找到 1 位代表")
    found = page.locator(".directory-deputy")
    expect(found).to_have_count(1)
    expect(found.locator(".directory-deputy-name")).to_have_text(SOUGHT)
    expect(page.locator(".directory-township-name")).to_have_text(SOUGHT_TOWNSHIP)
    fits(phone)
    phone.screenshot("directory-2435-by-name")

    # One tap opens the code; a scanner reads it as the deputy's form.
    code_url = found.locator("a.directory-deputy-name").get_attribute("href")
    found.get_by_text("代表二维码").click()
    assert read_code_on_screen(phone, found.locator("img.directory-qr")) == [code_url]
    fits(phone)
    phone.screenshot("directory-2435-code-open")

    # By township: the township's deputies only, grouped under its stations, paged.
    page.get_by_label("输入代表姓名、联络站或乡镇").fill(SOUGHT_TOWNSHIP)
    page.get_by_role("button", name="搜索").click()
    expect(page.locator("#directory-summary")).to_contain_text(f"“{SOUGHT_TOWNSHIP}”：找到")
    expect(page.locator(".directory-township-name")).to_have_text([SOUGHT_TOWNSHIP])
    assert page.locator(".directory-deputy").count() == 20
    shown = 1
    while page.locator(f".directory-deputy-name:text-is('{SOUGHT}')").count() == 0:
        page.get_by_role("link", name="下一页").click()
        shown += 1
        # The next page has loaded before its names are read (a count taken at once reads the old page).
        expect(page.locator(".directory-page-number")).to_contain_text(f"第 {shown} /")
    expect(page.locator(".directory-township-name")).to_have_text([SOUGHT_TOWNSHIP])
    fits(phone)
    phone.screenshot("directory-2435-by-township")
    # The name leads to the deputy's form.
    page.get_by_role("link", name=SOUGHT).click()
    expect(page.get_by_text(SOUGHT).first).to_be_visible()
    expect(page.get_by_role("heading", name="我要留言")).to_be_visible()
    assert not phone.problems, phone.problems
