"""Brief ui14 part 1 (issue 14, tap targets): every role's staff bar fits a 360×740 phone in WeChat's browser.

The deputy's bar has eight links (待办 签到 接待录入 常用答复 建议 我的码 履职 我的); in one scrolling row 履职 and 我的
sat off-screen. The bar is now a grid of two rows on a phone (staff/_nav.html, app.css), so for each of the demo's
roles — deputy, station administrator, supervisor (the county's clerk, who also has 管理), department — the page
has no sideways scrolling (``document.scrollingElement.scrollWidth <= 360``), every link lies inside the screen,
shows its whole label and is at least 44×44 px, and tapping each one opens its page.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import fits, log_in

pytestmark = pytest.mark.browser

WIDTH = 360
MIN_TAP = 44
ROLES = {
    "deputy": ("/staff/inbox", ["待办", "签到", "接待录入", "常用答复", "建议", "我的码", "履职", "我的"], 2),
    "station_admin": ("/staff/inbox", ["待办", "管理", "监督", "常用答复", "待审核", "我的"], 2),
    "supervisor": ("/supervision/", ["监督", "待办", "建议", "管理", "待审核", "我的"], 2),
    "department": ("/staff/inbox", ["待办", "我的"], 1),
}

# Each link's box and whether its label is cut (the text wider than its cell).
LINK_BOXES = """
() => [...document.querySelectorAll('#staff-nav a')].map(a => {
  const r = a.getBoundingClientRect();
  return {label: a.textContent.trim(), href: a.getAttribute('href'), left: r.left, right: r.right, top: r.top,
          bottom: r.bottom, width: r.width, height: r.height, cut: a.scrollWidth > a.clientWidth};
})
"""


@pytest.mark.parametrize("username", list(ROLES))
def test_every_link_of_the_bar_fits_a_360_px_phone_and_opens_by_a_tap(live_server, phone, username):
    landing, labels, rows = ROLES[username]
    page = phone.page
    base = live_server.base_url
    log_in(page, base, username)
    expect(page).to_have_url(base + landing)
    page.wait_for_load_state("load")  # the URL changes before the stylesheet has arrived: measure the styled bar

    boxes = page.evaluate(LINK_BOXES)
    assert [box["label"] for box in boxes] == labels
    assert page.evaluate("document.scrollingElement.scrollWidth") <= WIDTH
    fits(phone)
    for box in boxes:
        assert box["left"] >= 0 and box["right"] <= WIDTH, box  # on the screen, not scrolled away
        assert box["width"] >= MIN_TAP and box["height"] >= MIN_TAP, box
        assert not box["cut"], box
        assert box["bottom"] <= 740, box  # above the fold, with the page at its top
    assert len({round(box["top"]) for box in boxes}) == rows  # one row for two links, two rows for six or eight
    phone.screenshot(f"staff-nav-fits-{username}-{WIDTH}")

    # Each link opens its page by a tap (a touch, as on the phone), from the landing page.
    for box in boxes:
        page.goto(base + landing)
        link = page.locator("#staff-nav").get_by_role("link", name=box["label"], exact=True)
        if box["href"].endswith(".pdf"):  # 我的码: the deputy's own poster, a file the phone downloads
            with page.expect_download() as download:
                link.tap()
            assert download.value.suggested_filename.endswith(".pdf"), (username, box)
            continue
        with page.expect_navigation() as navigation:
            link.tap()
        response = navigation.value
        assert response is not None and response.status == 200, (username, box)
        assert page.url.split("?")[0].split("#")[0] == base + box["href"].split("?")[0], (page.url, box)
        fits(phone)
    assert phone.problems == [], phone.problems
