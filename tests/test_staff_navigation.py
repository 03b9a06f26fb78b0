"""Issue 14, the staff's way around: a login lands where the role works (a deputy: the inbox), the login page says
代表/工作人员登录, and every staff page carries the bar of the role — each link of it opens, a deputy's and a
department's have no 管理 and the pages refuse them, a station administrator's and a supervisor's reach 管理."""

from __future__ import annotations

import re

import pytest
from flask import g

from backend.auth.navigation import NAV_BY_ROLE
from backend.models import StaffRole
from tests.factories import make_item
from tests.helpers import PASSWORD, fresh_token, login

USERS = {
    "deputy_d1": ("/staff/inbox", ["待办", "签到", "接待录入", "常用答复", "建议", "我的码", "履职", "我的"]),
    "admin_a": ("/staff/inbox", ["待办", "管理", "监督", "常用答复", "待审核", "我的"]),
    "sup_county": ("/supervision/", ["监督", "待办", "建议", "管理", "待审核", "我的"]),
    "dept_user": ("/staff/inbox", ["待办", "我的"]),
}


def bar(html: str) -> list[tuple[str, str, bool]]:
    """The staff bar's links: (label, href, is it the current page)."""
    nav = re.search(r'<nav class="staff-nav"[^>]*id="staff-nav">(.*?)</nav>', html, re.S)
    assert nav, "no staff bar on the page"
    return [
        (label, href, "aria-current" in attrs)
        for href, attrs, label in re.findall(r'<a href="([^"]+)"([^>]*)>([^<]+)</a>', nav.group(1))
    ]


def get(client, path: str):
    response = client.get(path)
    g.pop("csrf_token", None)
    return response


@pytest.mark.parametrize("username", list(USERS))
def test_a_login_lands_where_the_role_works_and_shows_its_bar(app, world, username):
    landing, labels = USERS[username]
    client = app.test_client()
    _, token = fresh_token(client, "/staff/login")
    answer = client.post("/staff/login", data={"csrf_token": token, "username": username, "password": PASSWORD})
    assert answer.status_code == 303 and answer.headers["Location"] == landing
    page = get(client, landing)
    assert page.status_code == 200
    links = bar(page.text)
    assert [label for label, _, _ in links] == labels
    assert [label for label, _, current in links if current] == [labels[0]]  # where the login landed
    # Every link of the bar opens for this role.
    for label, href, _ in links:
        response = get(client, href)
        assert response.status_code == 200, (username, label, href, response.status_code)


def test_the_login_page_names_who_logs_in(client):
    page = client.get("/staff/login").text
    assert "<h1>代表/工作人员登录</h1>" in page and "员工登录" not in page
    assert 'id="staff-nav"' not in page  # nobody is logged in: no bar


@pytest.mark.parametrize("username", ["deputy_d1", "dept_user"])
def test_no_admin_in_the_bar_and_the_admin_pages_refuse(app, world, username):
    client = login(app, username)
    labels = [label for label, _, _ in bar(get(client, "/staff/").text)]
    assert "管理" not in labels
    for path in ("/admin/", "/admin/import", f"/admin/stations/{world.station_a.id}"):
        assert get(client, path).status_code == 404, path


def test_a_department_sees_neither_figures_nor_review(app, world):
    client = login(app, "dept_user")
    for path in ("/supervision/", "/staff/review", "/staff/templates", "/staff/in-person"):
        assert get(client, path).status_code == 404, path


STAFF_PAGES = {
    "deputy_d1": ["/staff/", "/staff/inbox", "/staff/templates", "/staff/in-person", "/staff/account", "/supervision/"],
    "admin_a": ["/staff/", "/admin/", "/admin/import", "/admin/workers", "/staff/review", "/supervision/"],
    "sup_county": ["/admin/regions", "/admin/accounts", "/admin/departments", "/admin/audit", "/staff/inbox"],
    "dept_user": ["/staff/", "/staff/inbox", "/staff/account"],
}


@pytest.mark.parametrize("username", list(STAFF_PAGES))
def test_every_staff_page_carries_the_bar(app, world, username):
    client = login(app, username)
    labels = USERS[username][1]
    for path in STAFF_PAGES[username]:
        page = get(client, path)
        assert page.status_code == 200, path
        assert [label for label, _, _ in bar(page.text)] == labels, path


def test_the_item_page_carries_the_bar_with_the_inbox_current(app, world):
    item = make_item(world.d1)
    page = get(login(app, "deputy_d1"), f"/staff/items/{item.ref}").text
    assert [label for label, _, current in bar(page) if current] == ["待办"]


def test_the_in_person_page_marks_its_own_link(app, world):
    page = get(login(app, "deputy_d1"), "/staff/in-person").text
    assert [label for label, _, current in bar(page) if current] == ["接待录入"]


def test_a_deputy_no_longer_serving_has_no_code_link(app, world):
    from backend.extensions import db
    from backend.models import DeputyStatus

    world.d1.status = DeputyStatus.RESIGNED
    db.session.commit()
    labels = [label for label, _, _ in bar(get(login(app, "deputy_d1"), "/staff/").text)]
    assert "我的码" not in labels and labels[0] == "待办"


def test_every_role_has_a_bar():
    assert set(NAV_BY_ROLE) == set(StaffRole)
    for links in NAV_BY_ROLE.values():
        assert links[-1].label == "我的"  # the account and the logout, always last


@pytest.mark.parametrize(
    ("username", "columns"), [("deputy_d1", "4"), ("admin_a", "3"), ("sup_county", "3"), ("dept_user", "2")]
)
def test_the_bar_is_laid_out_in_at_most_two_rows(app, world, username, columns):
    """On a phone the bar is a grid of ceil(n/2) columns for five to eight links (n for up to four): two rows at most,
    nothing off-screen (tests/browser/test_staff_nav_fits.py measures it at 360 px)."""
    page = get(login(app, username), "/staff/account").text
    nav = re.search(r'<nav class="staff-nav" data-columns="(\d)"[^>]*id="staff-nav">', page)
    assert nav and nav.group(1) == columns
    assert len(bar(page)) <= 2 * int(columns)


def test_a_former_deputys_seven_links_take_two_rows_of_four(app, world):
    from backend.extensions import db
    from backend.models import DeputyStatus

    world.d1.status = DeputyStatus.RESIGNED
    db.session.commit()
    page = get(login(app, "deputy_d1"), "/staff/").text
    assert len(bar(page)) == 7
    assert 'data-columns="4"' in page
