"""Issue 13, part 1 (accounts): a supervisor lists, creates, disables and re-activates the accounts of their region,
and each person sets their own password through a one-time link.

Who: the county supervisor manages the accounts of the county and the township under it; the
township supervisor only the township's; deputies, station administrators and departments get
404 and an audit row. Bad input tried: a username taken, too short, with Chinese or spaces; a
role that does not exist; a scope outside the region, a resigned deputy, a missing scope; a
link used twice, expired, ended by a newer one, for a disabled account, malformed or unknown;
passwords too short or typed differently; disabling oneself. Each is a clear 4xx and writes nothing.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from flask import g
from sqlalchemy import func, select, update
from werkzeug.security import check_password_hash

from backend.extensions import db
from backend.models import ActivationLink, DeputyStatus, StaffRole, StaffSession, StaffUser, utcnow
from tests.factories import admin_world
from tests.helpers import PASSWORD, api_token, audit_count, login, post_form

NEW = "mein neues passwort 2027"


pytestmark = pytest.mark.usefixtures("count_in_database")
WORLD = admin_world  # the world fixture (tests/conftest.py)


def create(client, **data):
    return post_form(client, "/admin/accounts", data, page="/admin/accounts")


def link_of(page_text: str) -> str:
    match = re.search(r'id="activation-link">[^<]*(/staff/activate/[A-Za-z0-9_-]+)<', page_text)
    assert match, page_text[:2000]
    return match.group(1)


def activate(app, path: str, password: str = NEW, confirm: str | None = None):
    client = app.test_client()
    g.pop("csrf_token", None)  # one app context for every client: forget the last one's token
    page = client.get(path)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    data = {"password": password, "confirm": password if confirm is None else confirm}
    if token:
        data["csrf_token"] = token.group(1)
    return client, page, client.post(path, data=data)


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_a_new_deputy_account_activates_on_the_phone_and_is_logged_in(app, world):
    sup = login(app, "sup_county")
    response = create(sup, role="deputy", username="Luokh", display_name="罗开华", deputy_id=world.d5.id)
    assert response.status_code == 200
    assert "罗开华" in response.text and "<img" in response.text and "data:image/svg+xml;base64," in response.text
    path = link_of(response.text)
    account = db.session.scalar(select(StaffUser).where(StaffUser.username == "luokh"))
    assert account.role == StaffRole.DEPUTY and account.deputy_id == world.d5.id
    assert app.test_client().post("/api/v1/auth/token", json={"username": "luokh", "password": NEW}).status_code == 401

    phone, page, done = activate(app, path)
    assert page.status_code == 200 and "为账号" in page.text and "luokh" in page.text
    assert done.status_code == 303 and "/staff/" in done.headers["Location"]
    assert phone.get("/staff/").status_code == 200  # logged in
    assert "绑定微信" in phone.get("/staff/").text
    db.session.expire_all()
    assert check_password_hash(account.password_hash, NEW)
    again = app.test_client().get(path)
    assert again.status_code == 410 and "已经用过" in again.text
    assert audit_count("staff_user_created", "activation_created", "account_activated") == 3


def test_the_list_searches_and_shows_role_scope_last_seen_and_pending(app, world):
    sup = login(app, "sup_county")
    create(sup, role="station_admin", username="admin_t", display_name="霞阳城东管理员", station_id=world.station_t.id)
    login(app, "deputy_d1")
    page = sup.get("/admin/accounts")
    assert page.status_code == 200
    assert "deputy_d1" in page.text and "admin_t" in page.text and "待激活" in page.text
    assert "sup_sibling" not in page.text and "deputy_d4" not in page.text  # another county's
    found = sup.get("/admin/accounts", query_string={"q": "城东"})
    assert "admin_t" in found.text and "deputy_d1" not in found.text
    deputies = sup.get("/admin/accounts", query_string={"role": "deputy"})
    assert "deputy_d1" in deputies.text and "admin_t" not in deputies.text
    row = re.search(rf'id="account-{world.users["deputy"].id}".*?</tr>', page.text, re.S).group(0)
    assert "从未登录" not in row
    township = login(app, "sup_township").get("/admin/accounts")
    assert "admin_t" in township.text and "deputy_d1" not in township.text
    for odd in (
        {"q": "%"},
        {"q": "x" * 500},
        {"role": "root"},
        {"page": "0"},
        {"page": "99999999999"},
        {"page": "abc"},
    ):
        assert sup.get("/admin/accounts", query_string=odd).status_code == 200


@pytest.mark.parametrize(
    "data, field",
    [
        ({"role": "deputy", "username": "deputy_d1", "display_name": "重名", "deputy_id": "D5"}, "username"),
        ({"role": "deputy", "username": "ab", "display_name": "短", "deputy_id": "D5"}, "username"),
        ({"role": "deputy", "username": "张三", "display_name": "中文", "deputy_id": "D5"}, "username"),
        ({"role": "deputy", "username": "a b c", "display_name": "空格", "deputy_id": "D5"}, "username"),
        ({"role": "root", "username": "rooty", "display_name": "根", "deputy_id": "D5"}, "role"),
        ({"role": "deputy", "username": "farfar", "display_name": "外县", "deputy_id": "D6"}, "deputy_id"),
        ({"role": "deputy", "username": "nobody1", "display_name": "无", "deputy_id": ""}, "deputy_id"),
        ({"role": "station_admin", "username": "farst", "display_name": "外站", "station_id": "S"}, "station_id"),
        ({"role": "supervisor", "username": "selfsup", "display_name": "本级", "region_id": "COUNTY"}, "region_id"),
        ({"role": "department", "username": "fardep", "display_name": "外局", "department_id": "FAR"}, "department_id"),
        ({"role": "deputy", "username": "resigned1", "display_name": "离任", "deputy_id": "RESIGNED"}, "deputy_id"),
        ({"role": "deputy", "username": "noname", "display_name": "", "deputy_id": "D5"}, "display_name"),
    ],
)
def test_a_bad_new_account_is_refused_and_nothing_is_written(app, world, data, field):
    world.d2.status = DeputyStatus.RESIGNED
    db.session.commit()
    ids = {
        "D5": world.d5.id,
        "D6": world.d6.id,
        "S": world.station_s.id,
        "COUNTY": world.county.id,
        "FAR": world.far_department.id,
        "RESIGNED": world.d2.id,
    }
    data = {k: str(ids.get(v, v)) for k, v in data.items()}
    before = (count(StaffUser), count(ActivationLink))
    response = create(login(app, "sup_county"), **data)
    assert response.status_code in (400, 409), response.status_code
    assert 'role="alert"' in response.text and f'name="{field}"' in response.text
    assert (count(StaffUser), count(ActivationLink)) == before


def test_a_new_link_ends_the_old_and_a_disabled_account_cannot_use_any(app, world):
    sup = login(app, "sup_county")
    target = world.users["deputy"]
    first = link_of(post_form(sup, f"/admin/accounts/{target.id}/activation", page="/admin/accounts").text)
    second = link_of(post_form(sup, f"/admin/accounts/{target.id}/activation", page="/admin/accounts").text)
    assert app.test_client().get(first).status_code == 410
    assert app.test_client().get(second).status_code == 200

    phone = login(app, "deputy_d1")
    token = api_token(app, "deputy_d1")
    response = post_form(sup, f"/admin/accounts/{target.id}/active", {"active": "0"}, page="/admin/accounts")
    assert response.status_code == 303
    assert phone.get("/staff/").status_code in (302, 303)
    assert app.test_client().get("/api/v1/inbox", headers=token).status_code == 401
    assert app.test_client().get(second).status_code == 410
    refused = post_form(sup, f"/admin/accounts/{target.id}/activation", page="/admin/accounts")
    assert refused.status_code == 409
    assert (
        post_form(sup, f"/admin/accounts/{target.id}/active", {"active": "1"}, page="/admin/accounts").status_code
        == 303
    )
    db.session.expire_all()
    assert target.is_active and check_password_hash(target.password_hash, PASSWORD)
    assert audit_count("staff_user_disabled", "staff_user_enabled") == 2


def test_an_expired_or_malformed_link_says_so_and_sets_nothing(app, world):
    sup = login(app, "sup_county")
    target = world.users["deputy"]
    path = link_of(post_form(sup, f"/admin/accounts/{target.id}/activation", page="/admin/accounts").text)
    db.session.execute(update(ActivationLink).values(expires_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    _, page, done = activate(app, path)
    assert page.status_code == 410 and "已失效" in page.text
    assert done.status_code == 400  # the page offered no form, so no CSRF token to post with
    for bad in ("/staff/activate/short", "/staff/activate/" + "x" * 65, "/staff/activate/" + "A" * 32):
        assert app.test_client().get(bad).status_code == 404
    db.session.expire_all()
    assert check_password_hash(target.password_hash, PASSWORD)


@pytest.mark.parametrize("password, confirm", [("kurz", None), (NEW, NEW + "?"), ("deputy_d1", None)])
def test_a_bad_password_keeps_the_link_usable(app, world, password, confirm):
    sup = login(app, "sup_county")
    target = world.users["deputy"]
    path = link_of(post_form(sup, f"/admin/accounts/{target.id}/activation", page="/admin/accounts").text)
    _, _, done = activate(app, path, password, confirm)
    assert done.status_code == 400 and 'role="alert"' in done.text
    db.session.expire_all()
    assert check_password_hash(target.password_hash, PASSWORD)
    _, _, ok = activate(app, path)
    assert ok.status_code == 303


def test_one_cannot_disable_oneself_or_touch_another_regions_account(app, world):
    sup = login(app, "sup_county")
    own = world.users["supervisor"]
    response = post_form(sup, f"/admin/accounts/{own.id}/active", {"active": "0"}, page="/admin/accounts")
    assert response.status_code == 409
    far = world.users["deputy_far"]
    for path in (f"/admin/accounts/{far.id}/active", f"/admin/accounts/{far.id}/activation"):
        assert post_form(sup, path, {"active": "0"}, page="/admin/accounts").status_code == 404
    db.session.expire_all()
    assert own.is_active and far.is_active
    assert count(ActivationLink) == 0


@pytest.mark.parametrize("username", ["deputy_d1", "admin_a", "dept_user"])
def test_other_roles_get_404_and_an_audit_row(app, world, username):
    client = login(app, username)
    before = audit_count("admin_access_denied", "forbidden")
    assert client.get("/admin/accounts").status_code == 404
    target = world.users["deputy2"].id
    assert post_form(client, f"/admin/accounts/{target}/activation", page="/staff/").status_code == 404
    assert audit_count("admin_access_denied", "forbidden") == before + 2
    assert count(ActivationLink) == 0
    assert count(StaffSession) >= 1
