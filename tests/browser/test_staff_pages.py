"""Issue 14, the staff side in Chromium, on the demo county as ``make run`` serves it: a clerk's way from the login to
管理 by the bar (each role, and a deputy's bar without 管理, the page refusing them); a reception day's 删除 asks
first, in the page, with JavaScript off; the supervisor's date range says what it means. And the screenshots the
README names (test-output/screenshots/pages/): the form, the tracking page, the inbox, the item page, the admin
home and the dashboard, each at 360 px and 1280 px."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import SCREENSHOT_DIR, Phone, fits, log_in

pytestmark = pytest.mark.browser

PAGES_DIR = SCREENSHOT_DIR / "pages"  # named in the README
DESK = (1280, 800)
# One message per width: two alike would be marked as near-duplicates, which is not what the screenshots show.
MESSAGES = {
    360: "炎帝大道人行道的地砖松动，下雨天一踩就溅水，请修一修。",
    1280: "霞阳镇农贸市场东门的路灯坏了半个月，晚上买菜的老人看不清台阶。",
}


@pytest.fixture
def browser_at(open_browser) -> Callable[..., Phone]:
    """Open a browser at a width: a phone in WeChat's browser at 360 px, a desk's at 1280 px (closed after)."""

    def _open(name: str, width: int) -> Phone:
        mobile = width < DESK[0]
        return open_browser(f"{name}-{width}", width, 740 if mobile else DESK[1], mobile)

    return _open


def bar_labels(phone: Phone) -> list[str]:
    return [text.strip() for text in phone.page.locator("#staff-nav a").all_inner_texts()]


def shoot(phone: Phone, name: str) -> Path:
    """A full-page screenshot into test-output/screenshots/pages/, with the width in its name."""
    PAGES_DIR.mkdir(parents=True, exist_ok=True)
    path = PAGES_DIR / f"{name}-{phone.width}.png"
    phone.page.screenshot(path=str(path), full_page=True)
    return path


@pytest.mark.parametrize(
    ("username", "landing", "labels"),
    [
        ("station_admin", "/staff/inbox", ["待办", "管理", "监督", "常用答复", "待审核", "我的"]),
        ("supervisor", "/supervision/", ["监督", "待办", "建议", "管理", "待审核", "我的"]),
    ],
)
@pytest.mark.parametrize("width", [360, 1280])
def test_a_clerk_reaches_admin_from_the_login_by_the_bar(live_server, browser_at, username, landing, labels, width):
    clerk = browser_at(username, width)
    page = clerk.page
    page.goto(live_server.base_url + "/staff/login")
    expect(page.locator("h1")).to_have_text("代表/工作人员登录")
    log_in(page, live_server.base_url, username)
    expect(page).to_have_url(live_server.base_url + landing)
    assert bar_labels(clerk) == labels
    expect(page.locator("#staff-nav a[aria-current=page]")).to_have_text(labels[0])
    fits(clerk)
    page.locator("#staff-nav").get_by_role("link", name="管理").click()
    expect(page).to_have_url(live_server.base_url + "/admin/")
    expect(page.locator("#staff-nav a[aria-current=page]")).to_have_text("管理")
    expect(page.locator("h1")).to_have_text("联络站与代表")
    # On, within 管理, by its own tabs, with the bar still there.
    page.get_by_role("link", name="批量导入代表").click()
    expect(page.locator("h1")).to_have_text("批量导入代表和账号")
    assert bar_labels(clerk) == labels
    fits(clerk)
    clerk.screenshot(f"staff-nav-{username}-import-{width}")
    page.locator("#staff-nav").get_by_role("link", name="待办").click()
    expect(page.locator("h1.inbox-title")).to_contain_text("留言办理")
    assert clerk.problems == [], clerk.problems


@pytest.mark.parametrize(
    ("username", "labels"),
    [
        ("deputy", ["待办", "签到", "接待录入", "常用答复", "建议", "我的码", "履职", "我的"]),
        ("department", ["待办", "我的"]),
    ],
)
def test_no_admin_for_a_deputy_or_a_department(live_server, browser_at, username, labels):
    person = browser_at(username, 360)
    page = person.page
    log_in(person.page, live_server.base_url, username)
    expect(page).to_have_url(live_server.base_url + "/staff/inbox")  # straight to the inbox, no button to tap
    assert bar_labels(person) == labels
    fits(person)
    person.screenshot(f"staff-nav-{username}-360")
    answer = page.goto(live_server.base_url + "/admin/")
    assert answer.status == 404
    expect(page.locator("body")).to_contain_text("回到工作台")  # the refusal is no dead end
    expect(page.locator("body")).not_to_contain_text("联络站与代表")


def test_a_reception_day_is_deleted_only_after_asking_with_javascript_off(live_server, chromium):
    for width in (360, 1280):
        context = chromium.new_context(
            viewport={"width": width, "height": 800}, java_script_enabled=False, locale="zh-CN"
        )
        page = context.new_page()
        clerk = Phone(page=page, problems=[], width=width)
        log_in(clerk.page, live_server.base_url, "station_admin")
        page.goto(live_server.base_url + "/admin/")
        page.locator("#staff-nav").get_by_role("link", name="管理").click()
        page.get_by_role("link", name="霞阳镇人大代表联络站").first.click()
        # A day of its own to delete, so the demo's calendar stays as the other tests know it.
        note = f"临时接待日{width}"
        form = page.locator("#rule-form")
        form.locator("input[name=kind][value=weekly]").check()
        form.locator("#rule-day-weekly").select_option(index=6)
        form.locator("input[name=note]").fill(note)
        form.get_by_role("button", name="添加接待日").click()
        rule = page.locator("#rules li.rule").filter(has_text=note)
        expect(rule).to_have_count(1)

        # The first tap only asks; nothing is sent.
        confirm = rule.locator("details.confirm")
        confirm.locator("summary").click()
        question = confirm.locator(".confirm-question")
        expect(question).to_be_visible()
        expect(question).to_contain_text("确定删除接待日")
        expect(confirm.locator("summary .when-open")).to_have_text("取消")
        expect(confirm.locator("summary .when-open")).to_be_visible()
        expect(confirm.locator("summary .when-closed")).to_be_hidden()
        fits(clerk)
        clerk.screenshot(f"delete-confirm-{width}")
        confirm.locator("summary").click()  # 取消: closes, nothing was sent
        expect(question).to_be_hidden()
        page.reload()
        expect(page.locator("#rules li.rule").filter(has_text=note)).to_have_count(1)

        # Asked and answered: deleted.
        rule = page.locator("#rules li.rule").filter(has_text=note)
        rule.locator("details.confirm summary").click()
        rule.get_by_role("button", name="确定删除").click()
        expect(page.locator("p.notice[role=status]")).to_contain_text("已删除接待日")
        expect(page.locator("#rules li.rule").filter(has_text=note)).to_have_count(0)
        context.close()


@pytest.mark.parametrize("width", [360, 1280])
def test_the_supervisors_range_says_both_ends_count(live_server, browser_at, width):
    supervisor = browser_at("supervisor", width)
    page = supervisor.page
    log_in(supervisor.page, live_server.base_url, "supervisor")
    expect(page).to_have_url(live_server.base_url + "/supervision/")
    expect(page.locator("label[for=until]")).to_have_text("截止日期")
    expect(page.locator("#picker")).not_to_contain_text("不含当天")
    expect(page.locator("#range-hint")).to_contain_text("起止两天都计入")
    page.locator("#from").fill("2026-11-01")
    page.locator("#until").fill("2026-11-30")
    page.get_by_role("button", name="查询").click()
    expect(page.locator("#range-label")).to_contain_text("统计区间：2026年11月1日至30日")
    expect(page.locator("#until")).to_have_value("2026-11-30")
    # A definition is one tap away, not a grey paragraph on every tile.
    definition = page.locator("#figure-answer-rate details.sv-def")
    expect(definition.locator("p")).to_be_hidden()
    definition.locator("summary").click()
    expect(definition.locator("p")).to_be_visible()
    # An end before the start is refused in words, and the page still answers.
    page.locator("#from").fill("2026-11-30")
    page.locator("#until").fill("2026-11-01")
    page.get_by_role("button", name="查询").click()
    expect(page.locator("#range-error")).to_contain_text("起始日期不能晚于截止日期")
    fits(supervisor)
    supervisor.screenshot(f"dashboard-range-{width}")
    assert supervisor.problems == [], supervisor.problems


def test_the_pages_the_readme_names_at_both_widths(live_server, browser_at):
    """Screenshots for people to look at: the form, the tracking page, the inbox, the item page, the admin home and
    the dashboard, at 360 px (a phone) and 1280 px (a desk), each page shown without sideways scrolling."""
    code_url = live_server.demo_codes()["deputy"].url
    shots: list[Path] = []
    for width in (360, 1280):
        resident = browser_at("resident", width)
        page = resident.page
        page.goto(code_url)
        expect(page.locator("#body")).to_be_visible()
        fits(resident)
        shots.append(shoot(resident, "form"))
        page.locator("#body").fill(MESSAGES[width])
        page.locator("#category").select_option(label="城乡建设")
        page.locator("#submit-button").click()
        expect(page.locator("h1")).to_have_text("提交成功")
        ref = page.locator("#ref").inner_text().strip().replace("-", "")
        page.goto(page.locator("#track-link").get_attribute("href"))
        expect(page.locator("#timeline")).to_be_visible()
        fits(resident)
        shots.append(shoot(resident, "tracking"))

        deputy = browser_at("deputy", width)
        log_in(deputy.page, live_server.base_url, "deputy")
        expect(deputy.page.locator("h1")).to_have_text("留言办理")
        # The shared server holds more than a page of messages to this deputy: found by its number.
        deputy.page.goto(f"{live_server.base_url}/staff/inbox?q={ref}")
        expect(deputy.page.locator("#inbox-list")).to_contain_text(MESSAGES[width][:8])
        fits(deputy)
        shots.append(shoot(deputy, "inbox"))
        deputy.page.goto(f"{live_server.base_url}/staff/items/{ref}")
        expect(deputy.page.locator("#item-status")).to_have_text("已提交")
        fits(deputy)
        shots.append(shoot(deputy, "item"))

        clerk = browser_at("station_admin", width)
        log_in(clerk.page, live_server.base_url, "station_admin")
        clerk.page.locator("#staff-nav").get_by_role("link", name="管理").click()
        expect(clerk.page.locator("h1")).to_have_text("联络站与代表")
        fits(clerk)
        shots.append(shoot(clerk, "admin-home"))

        supervisor = browser_at("supervisor", width)
        log_in(supervisor.page, live_server.base_url, "supervisor")
        expect(supervisor.page.locator("#scope-title")).to_contain_text("履职监督")
        fits(supervisor)
        shots.append(shoot(supervisor, "dashboard"))
        for phone in (resident, deputy, clerk, supervisor):
            assert phone.problems == [], phone.problems
    expected = {f"{name}-{width}.png" for name in ("form", "tracking", "inbox", "item", "admin-home", "dashboard")
                for width in (360, 1280)}  # fmt: skip
    assert {path.name for path in shots} == expected
    assert all(path.stat().st_size > 10_000 for path in shots)  # written now, and more than a blank page
