"""Issue 13, part 1: deputies change their password and see and end their logins themselves.

Who: every logged-in staff role, each on their own account only; another account's session id
is 404 and ends nothing; logged out goes to the login page. Bad input tried: a wrong current
password (audited, counted by the login throttle: 429 after the limit, even with the right one),
a short, an over-long and a username-equal new password, two different new passwords, the same
password again, a session id that is another account's, ended already, or unknown. Nothing is
written for any of them but the refusal's audit row and the throttle's count.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select
from werkzeug.security import check_password_hash

from backend.extensions import db
from backend.models import StaffSession, StaffUser
from tests.helpers import PASSWORD, api_token, audit_count, login, post_form

NEW = "a much longer passphrase 2027"


pytestmark = pytest.mark.usefixtures("count_in_database")


def live_sessions(username: str) -> list[StaffSession]:
    user = db.session.scalar(select(StaffUser).where(StaffUser.username == username))
    return list(
        db.session.scalars(
            select(StaffSession).where(StaffSession.staff_user_id == user.id, StaffSession.revoked_at.is_(None))
        )
    )


def change(client, current: str, password: str, confirm: str | None = None):
    data = {"current": current, "password": password, "confirm": password if confirm is None else confirm}
    return post_form(client, "/staff/account/password", data, page="/staff/account")


def test_a_deputy_changes_the_password_and_every_other_login_ends(app, world):
    phone = login(app, "deputy_d1")
    laptop = login(app, "deputy_d1")
    token = api_token(app, "deputy_d1")
    page = phone.get("/staff/account")
    assert page.status_code == 200 and "登录记录（3个）" in page.text and "本机" in page.text

    response = change(phone, PASSWORD, NEW)
    assert response.status_code == 303 and response.headers["Location"].endswith("/staff/account?done=password")
    db.session.expire_all()
    assert check_password_hash(world.users["deputy"].password_hash, NEW)
    assert len(live_sessions("deputy_d1")) == 1  # this phone only
    assert phone.get("/staff/account").status_code == 200
    assert laptop.get("/staff/account").status_code in (302, 303)
    assert app.test_client().get("/api/v1/inbox", headers=token).status_code == 401
    assert audit_count("password_changed") == 1
    assert (
        app.test_client().post("/api/v1/auth/token", json={"username": "deputy_d1", "password": NEW}).status_code == 201
    )


@pytest.mark.parametrize(
    "current, password, confirm, field",
    [
        ("falsch-falsch", NEW, None, "current"),
        (PASSWORD, "kurz", None, "password"),
        (PASSWORD, "x" * 129, None, "password"),
        (PASSWORD, "Deputy_D1", None, "password"),
        (PASSWORD, NEW, NEW + "!", "confirm"),
        (PASSWORD, PASSWORD, None, "password"),
    ],
)
def test_a_refused_change_writes_nothing_and_ends_no_login(app, world, current, password, confirm, field):
    phone = login(app, "deputy_d1")
    login(app, "deputy_d1")
    old_hash = world.users["deputy"].password_hash
    response = change(phone, current, password, confirm)
    assert response.status_code == 400
    assert f'id="{field}"' in response.text and 'aria-invalid="true"' in response.text
    db.session.expire_all()
    assert world.users["deputy"].password_hash == old_hash
    assert len(live_sessions("deputy_d1")) == 2
    assert audit_count("password_changed") == 0
    assert audit_count("password_change_refused") == (1 if field == "current" else 0)


def test_wrong_current_passwords_use_up_the_login_throttle(app, world):
    app.config["LOGIN_FAILURES_PER_ACCOUNT_ADDRESS"] = 3
    phone = login(app, "deputy_d1")
    for _ in range(3):
        assert change(phone, "falsch-falsch", NEW).status_code == 400
    refused = change(phone, PASSWORD, NEW)  # even the right one, from there, until the window ends
    assert refused.status_code == 429 and "Retry-After" in refused.headers
    db.session.expire_all()
    assert check_password_hash(world.users["deputy"].password_hash, PASSWORD)


def test_ending_one_login_and_all_the_others(app, world):
    phone = login(app, "deputy_d1")
    laptop = login(app, "deputy_d1")
    login(app, "deputy_d1")
    sessions = live_sessions("deputy_d1")
    laptop_session = max(sessions, key=lambda s: s.id)  # the last login
    response = post_form(phone, f"/staff/account/sessions/{laptop_session.id}/end", page="/staff/account")
    assert response.status_code == 303
    assert len(live_sessions("deputy_d1")) == 2
    response = post_form(phone, "/staff/account/sessions/end-others", page="/staff/account")
    assert response.status_code == 303
    assert len(live_sessions("deputy_d1")) == 1
    assert laptop.get("/staff/account").status_code in (302, 303)
    assert phone.get("/staff/account").status_code == 200
    assert audit_count("session_ended", "sessions_ended") == 2


def test_ending_this_login_is_a_logout(app, world):
    phone = login(app, "deputy_d1")
    (mine,) = live_sessions("deputy_d1")
    response = post_form(phone, f"/staff/account/sessions/{mine.id}/end", page="/staff/account")
    assert response.status_code == 303 and "/staff/login" in response.headers["Location"]
    assert live_sessions("deputy_d1") == []
    assert phone.get("/staff/account").status_code in (302, 303)


@pytest.mark.parametrize("whose", ["other", "ended", "unknown"])
def test_another_accounts_or_an_ended_session_is_404_and_ends_nothing(app, world, whose):
    phone = login(app, "deputy_d1")
    login(app, "deputy_d2")
    other = live_sessions("deputy_d2")[0]
    if whose == "ended":
        second = login(app, "deputy_d1")
        ended = max(live_sessions("deputy_d1"), key=lambda s: s.id)
        post_form(second, "/staff/logout", page="/staff/")
        target = ended.id
    else:
        target = other.id if whose == "other" else 2_000_000
    response = post_form(phone, f"/staff/account/sessions/{target}/end", page="/staff/account")
    assert response.status_code == 404 and "找不到这个登录" in response.text
    assert len(live_sessions("deputy_d2")) == 1


@pytest.mark.parametrize("username", ["deputy_d1", "admin_a", "sup_county", "dept_user"])
def test_every_role_has_the_page_and_sees_only_its_own_logins(app, world, username):
    client = login(app, username)
    login(app, "deputy_d2")
    page = client.get("/staff/account")
    assert page.status_code == 200 and "登录记录（1个）" in page.text
    assert "修改密码、管理登录" in client.get("/staff/").text


def test_logged_out_goes_to_the_login_page_and_nothing_changes(app, world):
    login(app, "deputy_d1")
    client = app.test_client()
    response = client.get("/staff/account")
    assert response.status_code in (302, 303) and "/staff/login" in response.headers["Location"]
    assert client.post("/staff/account/sessions/end-others").status_code == 400  # no CSRF token without a login
    assert len(live_sessions("deputy_d1")) == 1
