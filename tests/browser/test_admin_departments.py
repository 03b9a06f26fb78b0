"""A county supervisor adds a unit (下属单位) under one of the demo county's departments, as they would: from the
department's row, in the browser; the unit shows beneath its department. Screenshots at 1280 px (the office
desk) and 360 px are kept in test-output/screenshots/."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import DEMO_PASSWORD
from tests.browser.test_admin_import_print import both_widths

pytestmark = pytest.mark.browser


def test_a_supervisor_adds_a_unit_under_a_department(live_server, phone):
    page = phone.page
    page.goto(live_server.base_url + "/admin/departments")
    page.fill("#username", "supervisor")
    page.fill("#password", DEMO_PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("h1").first).to_have_text("承办单位")
    first = page.locator("#department-list tbody tr").first
    parent_name = first.locator(".strong-link").inner_text()
    first.locator(".add-unit").click()
    expect(page.locator("#department-parent_id option:checked")).to_contain_text(parent_name)

    # Refused first: an empty name; what was chosen stays chosen.
    page.click("#department-form button[type=submit]")
    expect(page.locator("#department-name-error")).to_contain_text("请填写单位名称")
    expect(page.locator("#department-parent_id option:checked")).to_contain_text(parent_name)
    page.fill("#department-name", "霞阳镇城建站")
    page.fill("#department-contact_name", "李明")
    page.fill("#department-contact_phone", "13800002222")
    page.click("#department-form button[type=submit]")
    expect(page.locator(".notice")).to_contain_text("已添加承办单位：霞阳镇城建站")
    unit_row = page.locator("#department-list tr.unit-row", has_text="霞阳镇城建站")
    expect(unit_row).to_contain_text("下属单位")
    # Beneath its department: the row right after the department's.
    parent_row = page.locator("#department-list tbody tr", has=page.locator(".strong-link", has_text=parent_name))
    expect(parent_row.locator("xpath=following-sibling::tr[1]")).to_contain_text("霞阳镇城建站")
    both_widths(phone, "admin-departments-units")

    # A second unit of the same name under the same department is refused, on the page, in Chinese.
    parent_row.locator(".add-unit").click()
    page.fill("#department-name", "霞阳镇城建站")
    page.click("#department-form button[type=submit]")
    expect(page.locator("#department-name-error")).to_contain_text("下已有名为“霞阳镇城建站”的下属单位")
    # The two refusals answered 400 on purpose (the browser logs each); nothing else went wrong.
    problems = [p for p in phone.problems if "status of 400" not in p]
    assert not problems, problems
