"""Issue 13's "Done when": a fresh county, with nothing in it but a supervisor, is set up in the browser alone.

The supervisor logs in, creates a township and a station on /admin/regions, imports a generated roster of
100 deputies (and the station's administrator) with their accounts (dry run, then confirm), and prints the
station's activation sheet (the PDF downloaded as a clerk would, rendered by poppler, its codes read by
zxing-cpp). One deputy opens their code's link on a 360×740 phone, sets a password, and lands logged in on
their inbox, where binding WeChat is offered. Screenshots of every step are kept in test-output/screenshots/.

The server is ``make run``'s (gunicorn, the WeChat sandbox beside it) on an empty database; the county's own
region and its supervisor come from the command line, as an installer makes them.
"""

from __future__ import annotations

import csv
import io
import re
import shutil
import subprocess
from collections.abc import Iterator

import pytest
import zxingcpp
from PIL import Image
from playwright.sync_api import expect

from tests.browser.conftest import LiveServer, Phone, demo_server, fits, launch_phone
from tests.helpers import missing_tool

pytestmark = pytest.mark.browser

SUPERVISOR = "yanling_rd"
SUPERVISOR_PASSWORD = "county-setup-2026"
COUNTY_CODE = "430225"
TOWNSHIP = "霞阳镇"
TOWNSHIP_CODE = "430225100"
STATION = "霞阳镇人大代表联络站"
DEPUTIES = 100
SURNAMES = "王李张刘陈杨黄赵吴周"
GIVEN = ("建华", "秀英", "国强", "丽娟", "志明", "海燕", "红梅", "德胜", "春兰", "永刚")
NEW_PASSWORD = "my-own-pass-2026"
DESKTOP = {"width": 1280, "height": 900}


@pytest.fixture
def fresh_county(chromium_executable, tmp_path) -> Iterator[LiveServer]:
    """``make run``'s server on an empty database holding only the county's region and its supervisor."""
    workdir = tmp_path / "fresh-county"
    workdir.mkdir()
    with demo_server(workdir, load_demo=False, ready_path="/healthz") as server:
        server.flask("region", "create", "--code", COUNTY_CODE, "--name", "炎陵县", "--level", "county")
        server.flask(
            "user", "create", SUPERVISOR, "--role", "supervisor", "--region", COUNTY_CODE,
            "--password", SUPERVISOR_PASSWORD,
        )  # fmt: skip
        yield server


@pytest.fixture
def desk(chromium) -> Iterator[Phone]:
    """The clerk's desktop browser (1280 px)."""
    context, opened = launch_phone(chromium, DESKTOP["width"], DESKTOP["height"], False)
    try:
        yield opened
    finally:
        context.close()


def roster_csv() -> bytes:
    """A county roster of 100 deputies (each with their own mobile) and the station's administrator, as Excel
    in China saves a CSV (UTF-8 with BOM)."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["序号", "姓名", "代表层级", "选区", "联络站", "联系电话", "职业", "角色"])
    for i in range(DEPUTIES):
        name = SURNAMES[i // 10] + GIVEN[i % 10]
        writer.writerow(
            [i + 1, name, "乡镇人大代表", f"霞阳镇第{i // 5 + 1}选区", STATION, f"1390000{i:04d}", "农民", "代表"]
        )
    writer.writerow([DEPUTIES + 1, "罗站长", "", "", STATION, "13700000001", "", "联络站管理员"])
    return "\ufeff".encode() + out.getvalue().encode("utf-8")


def test_a_fresh_county_is_set_up_in_the_browser_alone(fresh_county, desk, open_phone, tmp_path):
    if not shutil.which("pdftoppm"):
        missing_tool("poppler-utils is not installed (scripts/system-deps.sh --test)")
    base = fresh_county.base_url
    page = desk.page

    # 1. The supervisor logs in.
    page.goto(base + "/admin/")
    expect(page.locator("h1")).to_have_text("代表/工作人员登录")
    page.fill("#username", SUPERVISOR)
    page.fill("#password", SUPERVISOR_PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("联络站与代表")
    desk.screenshot("county-setup-1-empty-county")

    # 2. A township under the county, then a station in it.
    page.click("nav >> text=地区与联络站")
    expect(page.locator("h1")).to_have_text("地区与联络站")
    county = page.locator("section.region", has=page.locator("h2", has_text="炎陵县"))
    county.locator("summary", has_text="新增下级").click()
    county.locator("input[name=name]").last.fill(TOWNSHIP)
    county.locator("input[name=code]").fill(TOWNSHIP_CODE)
    county.locator("button", has_text="新增地区").click()
    township = page.locator("section.region", has=page.locator("h2", has_text=TOWNSHIP))
    expect(township).to_be_visible()
    township.locator("summary", has_text="新建联络站").click()
    township.locator("input[name=name]").last.fill(STATION)
    township.locator("input[name=contact_phone]").fill("0731-26200101")
    township.locator("button", has_text="新建联络站").click()
    expect(page.locator("#station-name")).to_have_text(STATION)  # the new station's own page
    desk.screenshot("county-setup-2-region-and-station")

    # 3. The roster: dry run, then confirm; 101 accounts, no password shown anywhere.
    roster = tmp_path / "代表名册.csv"
    roster.write_bytes(roster_csv())
    page.click("nav >> text=批量导入代表")
    page.set_input_files("#import-file", str(roster))
    page.click("#dry-run-button")
    expect(page.locator(".summary-new .count-number")).to_have_text(str(DEPUTIES + 1))
    expect(page.locator(".summary-error .count-number")).to_have_text("0")
    expect(page.locator("#confirm-form")).to_contain_text("新建账号101个")
    expect(page.locator("#plan-table")).to_contain_text("将创建账号 13900000000（代表，待激活）")
    desk.screenshot("county-setup-3-dry-run")
    page.click("#confirm-import")
    expect(page.locator("[role=status], .notice").first).to_contain_text("新增100位代表")
    expect(page.locator("#activation-sheets")).to_contain_text("101个账号待激活")
    assert "/staff/activate/" not in page.content()
    desk.screenshot("county-setup-4-imported")

    # 4. The station's activation sheet, downloaded.
    with page.expect_download() as download_info:
        page.locator("#activation-sheets button", has_text="打印激活单").click()
    download = download_info.value
    pdf = tmp_path / "activation.pdf"
    download.save_as(pdf)
    assert download.suggested_filename.endswith(".pdf")
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    assert re.search(r"^Pages:\s+11$", info, re.M), info  # 101 slips, ten a page
    rendered = subprocess.run(
        ["pdftoppm", "-r", "150", "-f", "1", "-l", "1", "-png", str(pdf)], capture_output=True, check=True
    ).stdout
    image = Image.open(io.BytesIO(rendered)).convert("RGB")
    image.save(tmp_path / "sheet-page-1.png")
    desk.screenshot("county-setup-5-sheet-printed")
    codes = sorted(
        zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode),
        key=lambda code: (code.position.top_left.y // 50, code.position.top_left.x),
    )
    assert len(codes) == 10
    assert all(code.text.startswith(base + "/staff/activate/") for code in codes)
    first_deputy_link = codes[1].text  # the administrator's slip comes first, then the deputies in file order

    # 5. The deputy, on their phone: the link, a password, and their inbox.
    phone = open_phone("deputy")
    phone.page.goto(first_deputy_link)
    expect(phone.page.locator("h1")).to_have_text("激活账号")
    expect(phone.page.locator("main")).to_contain_text("王建华")
    expect(phone.page.locator("main")).to_contain_text("13900000000")
    fits(phone)
    phone.screenshot("county-setup-6-deputy-activation-360")
    phone.page.fill("#password", NEW_PASSWORD)
    phone.page.fill("#confirm", NEW_PASSWORD)
    phone.page.click("button[type=submit]")
    expect(phone.page).to_have_url(f"{base}/staff/inbox?activated=1")
    expect(phone.page.locator("h1.inbox-title")).to_have_text("留言办理")
    expect(phone.page.locator("#activated")).to_contain_text("账号已激活，您已登录")
    expect(phone.page.locator("#bind-wechat")).to_be_visible()
    fits(phone)
    phone.screenshot("county-setup-7-deputy-inbox-360")
    assert phone.problems == []
    assert desk.problems == []

    # The link worked once: opened again, it says so.
    again = open_phone("again")
    again.page.goto(first_deputy_link)
    expect(again.page.locator("#activation-failure")).to_contain_text("已经用过了")
