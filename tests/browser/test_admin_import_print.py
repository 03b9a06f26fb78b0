"""A new station administrator, as they would: log in, import the example deputy file (dry run, then confirm),
print the station's poster batch (queued as a job, its progress followed on its page, rendered by
``flask posters run``), and check the printed code decodes.

Runs against ``make run``'s setup (gunicorn with sync workers, demo county, demo user ``station_admin``; the
poster worker is run once where ``make run`` keeps it running).
Screenshots of every administration page at 360 px and 1280 px are kept in test-output/screenshots/.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess

import pytest
import zxingcpp
from PIL import Image
from playwright.sync_api import expect

from tests.browser.conftest import DEMO_PASSWORD, PHONE_HEIGHT, PHONE_WIDTH, Phone
from tests.helpers import missing_tool

pytestmark = pytest.mark.browser

STATION = "霞阳镇人大代表联络站"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": PHONE_WIDTH, "height": PHONE_HEIGHT}


def both_widths(phone: Phone, name: str) -> None:
    """Screenshots at 360 px and 1280 px; neither may scroll sideways."""
    page = phone.page
    phone.screenshot(f"{name}-360")
    assert phone.scroll_width() <= PHONE_WIDTH, f"{name} scrolls sideways at 360 px"
    page.set_viewport_size(DESKTOP)
    phone.width = DESKTOP["width"]
    phone.screenshot(f"{name}-1280")
    assert phone.scroll_width() <= DESKTOP["width"], f"{name} scrolls sideways at 1280 px"
    page.set_viewport_size(PHONE)
    phone.width = PHONE_WIDTH


def test_import_the_example_then_print_the_station_batch(live_server, phone, tmp_path):
    if not shutil.which("pdftoppm"):
        missing_tool("poppler-utils is not installed (scripts/system-deps.sh --test)")
    page = phone.page
    station_url = live_server.demo_codes()["station"].url

    # The link they were given: the login page first, then straight back to the administration.
    page.goto(live_server.base_url + "/admin/")
    expect(page.locator("h1")).to_have_text("代表/工作人员登录")
    page.fill("#username", "station_admin")
    page.fill("#password", DEMO_PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("联络站与代表")
    expect(page.locator("#station-list")).to_contain_text(STATION)
    both_widths(phone, "admin-index")

    # Import: download the example, check it (dry run), then confirm.
    page.click("text=批量导入代表")
    expect(page.locator("h1")).to_have_text("批量导入代表和账号")
    with page.expect_download() as example:
        page.click("#example-xlsx")
    example_path = tmp_path / "example.xlsx"
    example.value.save_as(example_path)
    both_widths(phone, "admin-import")
    page.set_input_files("#import-file", str(example_path))
    page.click("#dry-run-button")
    expect(page.locator("#dry-run")).to_be_visible()
    expect(page.locator("#import-summary")).to_contain_text("2新增")
    expect(page.locator("#import-summary")).to_contain_text("1更新")
    expect(page.locator("#import-summary")).to_contain_text("0错误")
    expect(page.locator("#plan-table")).to_contain_text("第2行")
    expect(page.locator("#confirm-form")).to_contain_text("检查通过，尚未写入")
    both_widths(phone, "admin-import-dry-run")
    page.click("#confirm-import")
    expect(page.locator(".notice")).to_contain_text("导入完成：新增2位代表，更新1位")
    both_widths(phone, "admin-import-done")

    # The station now lists the imported deputies.
    page.click("text=联络站与代表")
    page.click(f"#station-list >> text={STATION}")
    expect(page.locator("#station-name")).to_have_text(STATION)
    expect(page.locator("#deputy-list")).to_contain_text("王建华")
    expect(page.locator("#deputy-list")).to_contain_text("欧阳秀兰")
    expect(page.locator("#next-days li").first).to_be_visible()
    both_widths(phone, "admin-station")

    # Print the batch: the button queues it, the batch's page follows the worker's progress, then offers the file.
    pages = 1 + 6  # the station poster, then the four demo deputies and the two imported
    expect(page.locator("#print")).to_contain_text(f"共{pages}页")
    page.click("#station-batch")
    expect(page.locator("h1")).to_have_text("批量海报")
    expect(page.locator("#batch-title")).to_have_text(f"{STATION} 二维码海报")
    expect(page.locator("#batch-text")).to_have_text(f"排队等候生成（共 {pages} 页）……")
    expect(page.locator("#batch-reload")).to_be_hidden()  # the script follows the progress itself
    both_widths(phone, "admin-batch-queued")
    output = live_server.flask("posters", "run", "--once")  # the worker `make run` starts beside gunicorn
    assert "1 batch(es) rendered" in output
    # The page's script sees the batch finish and reloads: the download is offered.
    expect(page.locator("#batch-download")).to_be_visible(timeout=30_000)
    expect(page.locator("#batch-text")).to_have_text(f"已完成：共 {pages} 页")
    assert page.locator("#batch-progress").evaluate("p => p.value") == pages
    both_widths(phone, "admin-batch-done")
    with page.expect_download(timeout=60_000) as download:
        page.click("#batch-download")
    pdf_path = tmp_path / "batch.pdf"
    download.value.save_as(pdf_path)
    assert download.value.suggested_filename == f"{STATION}-二维码海报.pdf"

    # The first page as a print shop would see it, and its codes read by a real decoder.
    result = subprocess.run(
        ["pdftoppm", "-r", "100", "-f", "1", "-l", "1", "-png", str(pdf_path)], capture_output=True, check=True
    )
    first_page = Image.open(io.BytesIO(result.stdout)).convert("RGB")
    first_page.save(tmp_path / "first-page.png")
    urls = {code.text for code in zxingcpp.read_barcodes(first_page, formats=zxingcpp.BarcodeFormat.QRCode)}
    assert station_url in urls
    pages_in_pdf = subprocess.run(["pdfinfo", str(pdf_path)], capture_output=True, text=True, check=True).stdout
    assert re.search(rf"^Pages:\s+{pages}$", pages_in_pdf, re.M)

    # Back on the station's page, the batch is listed for whoever comes back for the file.
    page.click(".back a")
    expect(page.locator("#station-name")).to_have_text(STATION)
    expect(page.locator("#station-batches")).to_contain_text(f"已完成 · {pages}页")

    # A deputy's page, as the administrator opens it next.
    page.click("#deputy-list >> text=王建华")
    expect(page.locator("#deputy-heading")).to_have_text("王建华")
    both_widths(phone, "admin-deputy")

    assert phone.problems == [], phone.problems
