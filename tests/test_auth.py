"""Staff login: web sessions that logout really ends, API tokens, throttled failures, roles, the user CLI."""

from __future__ import annotations

import hashlib
import re
import threading
from datetime import timedelta

import pytest
import redis
from sqlalchemy import func, select, update

from backend import create_app, throttle
from backend.auth.sessions import api_auth_required, login_required
from backend.extensions import db
from backend.models import AuditEntry, Department, DeputyStatus, Region, StaffRole, StaffSession, StaffUser, utcnow
from tests.conftest import redis_test_url
from tests.factories import StaffUserFactory
from tests.helpers import PASSWORD, csrf_token_from, redis_or_skip

ADDRESS_A = "203.0.113.10"
ADDRESS_B = "198.51.100.20"
REDIS_TEST_URL = redis_test_url(11)


@pytest.fixture(autouse=True)
def count_in_database(app):
    """Throttle counters in the database, which every test empties, whatever REDIS_URL says."""
    app.config["REDIS_URL"] = None


@pytest.fixture
def create_staff(app, create_deputy, create_county):
    """Builder: a staff user (a deputy by default) with PASSWORD."""

    def _create(username: str = "zhangxy", role: StaffRole = StaffRole.DEPUTY, is_active: bool = True, **scope):
        if role == StaffRole.DEPUTY and "deputy" not in scope:
            scope["deputy"] = create_deputy()
        if role == StaffRole.SUPERVISOR and "region" not in scope:
            scope["region"] = db.session.scalar(select(Region).where(Region.code == "430225")) or create_county()
        user = StaffUserFactory(
            username=username, display_name=f"显示名{username}", role=role, is_active=is_active, **scope
        )
        db.session.commit()
        return user

    return _create


def client_from(app, address: str):
    """A test client whose requests come from ``address``."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def page_token(client) -> str:
    """A CSRF token from the login page, or from the landing page when already logged in."""
    page = client.get("/staff/login")
    if page.status_code == 303:
        page = client.get("/staff/")
    return csrf_token_from(page.text)


def web_login(client, username: str = "zhangxy", password: str = PASSWORD, next_value: str | None = None):
    """Submit the login form as a browser would."""
    data = {"csrf_token": page_token(client), "username": username, "password": password}
    if next_value is not None:
        data["next"] = next_value
    return client.post("/staff/login", data=data)


def api_login(client, username: str = "zhangxy", password: str = PASSWORD):
    """Ask for an API token."""
    return client.post("/api/v1/auth/token", json={"username": username, "password": password})


def bearer(token: str) -> dict:
    """The Authorization header for a token."""
    return {"Authorization": f"Bearer {token}"}


def sid_of(app, cookie_value: str) -> str:
    """The session id inside a signed (not encrypted) Flask session cookie."""
    return app.session_interface.get_signing_serializer(app).loads(cookie_value)["sid"]


def session_cookie(client) -> str:
    """The raw value of the client's session cookie."""
    cookie = client.get_cookie("session")
    assert cookie is not None
    return cookie.value


def replay(app, cookie_value: str, path: str = "/staff/"):
    """GET ``path`` from another browser presenting exactly this session cookie value.

    In an app context of its own: the test's context (and its ``g``, where Flask-WTF keeps
    the CSRF token it issued) must not be shared with the other browser's request. The
    test's transaction ends first: on SQLite it holds the write lock the other context needs.
    """
    db.session.commit()
    with app.app_context():
        client = app.test_client(use_cookies=False)
        return client.get(path, headers={"Cookie": f"session={cookie_value}"})


def audit_rows(action: str) -> list[AuditEntry]:
    """Audit rows of one action, oldest first."""
    return list(db.session.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)))


def count(model) -> int:
    """Rows in a table."""
    return db.session.scalar(select(func.count()).select_from(model))


# -- web login and logout ---------------------------------------------------------------------


def test_login_page_is_chinese_with_csrf_token(client):
    page = client.get("/staff/login")
    assert page.status_code == 200
    assert "代表/工作人员登录" in page.text and "员工登录" not in page.text
    assert 'name="csrf_token"' in page.text
    assert 'type="password"' in page.text
    assert "<script" not in page.text and "style=" not in page.text
    assert page.headers["Cache-Control"] == "no-store"


def test_pages_need_login_and_come_back_after_it(client, create_staff):
    create_staff()
    answer = client.get("/staff/")
    assert answer.status_code == 303
    assert answer.headers["Location"] == "/staff/login?next=/staff/"

    answer = web_login(client, next_value="/staff/")
    assert answer.status_code == 303
    assert answer.headers["Location"] == "/staff/"
    home = client.get("/staff/")
    assert home.status_code == 200
    assert "显示名zhangxy" in home.text
    assert "人大代表" in home.text
    assert 'href="/staff/inbox"' in home.text
    assert audit_rows("login")[0].data == {"kind": "web"}


def test_login_then_logout_ends_the_session_server_side(app, client, create_staff):
    user = create_staff()
    web_login(client)
    logged_in_cookie = session_cookie(client)
    assert replay(app, logged_in_cookie).status_code == 200

    answer = client.post("/staff/logout", data={"csrf_token": page_token(client)})
    assert answer.status_code == 303
    assert answer.headers["Location"] == "/staff/login?logged_out=1"
    assert "您已退出登录" in client.get(answer.headers["Location"]).text
    assert client.get("/staff/").status_code == 303

    # The browser forgot the cookie; a copy of it no longer works either.
    stale = replay(app, logged_in_cookie)
    assert stale.status_code == 303
    assert stale.headers["Location"].startswith("/staff/login")
    row = db.session.scalar(select(StaffSession).where(StaffSession.staff_user_id == user.id))
    assert row.revoked_at is not None
    assert audit_rows("logout")[0].staff_user_id == user.id


def test_logout_needs_post_and_csrf_token(client, create_staff):
    create_staff()
    web_login(client)
    assert client.get("/staff/logout").status_code == 405
    assert client.post("/staff/logout").status_code == 400
    assert client.get("/staff/").status_code == 200


def test_session_id_changes_at_login(app, client, create_staff):
    create_staff()
    create_staff("wanglin", StaffRole.STATION_ADMIN, station=db.session.scalars(select(StaffUser)).one().deputy.station)
    client.get("/staff/login")
    before = session_cookie(client)  # the login page's CSRF secret already gave the browser a cookie

    web_login(client)
    first = session_cookie(client)
    assert first != before
    first_sid = sid_of(app, first)

    # Logging in again (here as someone else on a shared phone) gives a new id and ends the old one.
    web_login(client, "wanglin")
    second = session_cookie(client)
    assert second != first
    assert "联络站管理员" in client.get("/staff/").text
    assert replay(app, first).status_code == 303
    assert replay(app, second).status_code == 200
    assert first_sid != sid_of(app, second)
    live = db.session.scalar(select(func.count()).where(StaffSession.revoked_at.is_(None)))
    assert live == 1


def test_planted_session_is_replaced_at_login(app, create_staff):
    """Session fixation: an attacker's cookie in the victim's browser is not the victim's session."""
    create_staff()
    create_staff(
        "attacker", StaffRole.STATION_ADMIN, station=db.session.scalars(select(StaffUser)).one().deputy.station
    )
    attacker = app.test_client()
    web_login(attacker, "attacker")
    planted = session_cookie(attacker)

    victim = app.test_client(use_cookies=True)
    victim.set_cookie("session", planted, domain="localhost")
    web_login(victim)
    assert session_cookie(victim) != planted
    assert "显示名zhangxy" in victim.get("/staff/").text
    assert replay(app, planted).status_code == 303


def test_only_the_sid_is_stored_and_only_its_hash_server_side(app, client, create_staff):
    create_staff()
    web_login(client)
    payload = app.session_interface.get_signing_serializer(app).loads(session_cookie(client))
    assert set(payload) == {"sid", "_permanent"}
    row = db.session.scalars(select(StaffSession)).one()
    assert row.token_hash == hashlib.sha256(payload["sid"].encode()).hexdigest()
    assert row.kind == "web"
    assert timedelta(hours=11, minutes=59) < row.expires_at - row.created_at <= timedelta(hours=12)


def test_session_cookie_flags(client, create_staff):
    create_staff()
    web_login(client)
    cookie = client.get_cookie("session")
    assert cookie.http_only
    assert cookie.same_site == "Lax"


def test_session_cookie_is_secure_when_public_url_is_https(database_url, monkeypatch):
    """Deployments set PUBLIC_BASE_URL in the environment; Secure follows it."""
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://msl.example.cn")
    https_app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": database_url, "REDIS_URL": None})
    with https_app.app_context():
        try:
            client = https_app.test_client()
            client.get("/staff/login")
            assert client.get_cookie("session").secure
        finally:
            db.session.remove()
            db.engine.dispose()
    monkeypatch.setenv("PUBLIC_BASE_URL", "http://127.0.0.1:5000")
    local_app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": database_url})
    assert local_app.config["SESSION_COOKIE_SECURE"] is False


def test_test_app_with_https_public_url_sets_secure_cookies(client, create_staff):
    create_staff()
    web_login(client)
    assert client.get_cookie("session").secure


def test_login_without_csrf_token_is_refused(client, create_staff):
    create_staff()
    client.get("/staff/login")
    answer = client.post("/staff/login", data={"username": "zhangxy", "password": PASSWORD})
    assert answer.status_code == 400
    assert "页面已过期" in answer.text
    assert count(StaffSession) == 0
    assert client.get("/staff/").status_code == 303


def test_wrong_password_and_unknown_user_get_the_same_answer(client, create_staff):
    user = create_staff()
    wrong = web_login(client, "zhangxy", "falsch-falsch")
    unknown = web_login(client, "nobody", "falsch-falsch")
    assert wrong.status_code == unknown.status_code == 401
    for answer in (wrong, unknown):
        assert "用户名或密码错误。" in answer.text
        assert 'type="password"' in answer.text  # the form again, not an error page
    assert 'value="zhangxy"' in wrong.text
    assert 'value="nobody"' in unknown.text
    assert "falsch-falsch" not in wrong.text

    api_wrong = api_login(client, "zhangxy", "falsch-falsch")
    api_unknown = api_login(client, "nobody", "falsch-falsch")
    assert api_wrong.status_code == api_unknown.status_code == 401
    assert api_wrong.json == api_unknown.json == {"error": {"code": "bad_credentials", "message": "用户名或密码错误。"}}

    failed = audit_rows("login_failed")
    assert [row.data["reason"] for row in failed] == ["bad_password", "unknown_user"] * 2
    assert failed[0].staff_user_id == user.id and failed[0].data["username"] == "zhangxy"
    assert failed[1].staff_user_id is None and "username" not in failed[1].data  # it may be a password
    assert all(row.address == "127.0.0.1" for row in failed)
    assert count(StaffSession) == 0


def test_username_is_case_and_space_insensitive(client, create_staff):
    create_staff()
    assert api_login(client, "  ZhangXY ").status_code == 201


def test_empty_fields_are_a_form_error_not_a_failed_login(client, create_staff):
    create_staff()
    answer = web_login(client, "zhangxy", "")
    assert answer.status_code == 400
    assert "请输入用户名和密码" in answer.text
    assert audit_rows("login_failed") == []


def test_next_accepts_local_paths_only(client, create_staff):
    create_staff()
    for evil in ("https://evil.example", "//evil.example", "/\\evil.example", "/\t/evil.example", "evil.example"):
        page = client.get("/staff/login", query_string={"next": evil})
        assert "evil.example" not in page.text
        answer = web_login(client, next_value=evil)
        assert answer.status_code == 303
        assert answer.headers["Location"] == "/staff/inbox", evil  # a deputy's landing page: the inbox
        client.post("/staff/logout", data={"csrf_token": page_token(client)})

    answer = web_login(client, next_value="/staff/inbox?filter=overdue")
    assert answer.headers["Location"] == "/staff/inbox?filter=overdue"
    # Already logged in: the login page sends a local next straight on, and refuses another.
    assert client.get("/staff/login?next=/staff/").headers["Location"] == "/staff/"
    assert client.get("/staff/login?next=//evil.example").headers["Location"] == "/staff/inbox"


def test_query_string_is_kept_in_next(client, create_staff):
    create_staff()
    answer = client.get("/staff/?tab=overdue")
    assert answer.headers["Location"] == "/staff/login?next=/staff/?tab%3Doverdue"
    page = client.get(answer.headers["Location"])
    assert 'name="next" value="/staff/?tab=overdue"' in page.text


# -- throttling ---------------------------------------------------------------------------


def test_failures_are_throttled_per_account_and_address(app, create_staff):
    create_staff()
    create_staff("wanglin", StaffRole.STATION_ADMIN, station=db.session.scalars(select(StaffUser)).one().deputy.station)
    attacker = client_from(app, ADDRESS_A)
    for _ in range(5):
        assert api_login(attacker, "zhangxy", "falsch-falsch").status_code == 401

    # The sixth attempt is refused before any check, even with the right password.
    refused = api_login(attacker, "zhangxy", PASSWORD)
    assert refused.status_code == 429
    assert refused.json["error"]["code"] == "too_many_logins"
    assert re.match(
        r"^登录失败次数太多，请在 \d{2}:\d{2} 之后再试（约 1[45] 分钟后）。$", refused.json["error"]["message"]
    )
    assert 840 <= int(refused.headers["Retry-After"]) <= 900
    assert count(StaffSession) == 0

    # Not per account alone: the deputy still logs in from their own phone ...
    assert api_login(client_from(app, ADDRESS_B), "zhangxy", PASSWORD).status_code == 201
    # ... and the attacker's address still serves another account.
    assert api_login(attacker, "wanglin", PASSWORD).status_code == 201


def test_one_account_attacked_from_many_addresses_stays_usable(app, create_staff):
    create_staff()
    for n in range(4):
        attacker = client_from(app, f"192.0.2.{n}")
        for _ in range(5):
            assert api_login(attacker, "zhangxy", "falsch-falsch").status_code == 401
        assert api_login(attacker, "zhangxy", "falsch-falsch").status_code == 429
    assert api_login(client_from(app, ADDRESS_B), "zhangxy", PASSWORD).status_code == 201


def test_failures_are_throttled_per_address(app, create_staff):
    app.config["LOGIN_FAILURES_PER_ADDRESS"] = 7
    create_staff()
    attacker = client_from(app, ADDRESS_A)
    # Spread over several usernames, so no single pair reaches its limit of 5.
    for n in range(7):
        assert api_login(attacker, f"guess{n % 3}", "falsch-falsch").status_code == 401
    refused = api_login(attacker, "zhangxy", PASSWORD)
    assert refused.status_code == 429
    assert "Retry-After" in refused.headers
    assert api_login(client_from(app, ADDRESS_B), "zhangxy", PASSWORD).status_code == 201


def test_throttled_login_page_says_when_to_retry_and_keeps_the_username(app, create_staff):
    create_staff()
    browser = client_from(app, ADDRESS_A)
    for _ in range(5):
        assert web_login(browser, "zhangxy", "falsch-falsch").status_code == 401
    answer = web_login(browser, "zhangxy", PASSWORD)
    assert answer.status_code == 429
    assert "登录失败次数太多" in answer.text
    assert 'value="zhangxy"' in answer.text
    assert int(answer.headers["Retry-After"]) > 0
    assert browser.get("/staff/").status_code == 303


def test_successful_logins_are_not_counted(app, create_staff):
    app.config["LOGIN_FAILURES_PER_ACCOUNT_ADDRESS"] = 2
    create_staff()
    client = client_from(app, ADDRESS_A)
    for _ in range(4):
        assert api_login(client).status_code == 201
    assert api_login(client, "zhangxy", "falsch-falsch").status_code == 401
    assert api_login(client).status_code == 201


def test_the_window_ends(app, create_staff):
    from backend.models import ThrottleCounter

    app.config["LOGIN_FAILURES_PER_ACCOUNT_ADDRESS"] = 1
    create_staff()
    client = client_from(app, ADDRESS_A)
    assert api_login(client, "zhangxy", "falsch-falsch").status_code == 401
    assert api_login(client).status_code == 429
    db.session.execute(update(ThrottleCounter).values(expires_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    assert api_login(client).status_code == 201


# -- inactive users -----------------------------------------------------------------------


def test_inactive_user_is_refused(client, create_staff):
    create_staff(is_active=False)
    answer = web_login(client)
    assert answer.status_code == 403
    assert "该账号已停用" in answer.text
    assert client.get("/staff/").status_code == 303
    # A wrong password does not reveal that the account exists but is inactive.
    assert api_login(client, "zhangxy", "falsch-falsch").json["error"]["code"] == "bad_credentials"
    assert api_login(client).json["error"]["code"] == "account_inactive"
    assert count(StaffSession) == 0
    assert [row.data["reason"] for row in audit_rows("login_failed")] == ["inactive", "bad_password", "inactive"]


def test_deactivating_a_user_ends_their_sessions(app, client, create_staff):
    user = create_staff()
    web_login(client)
    token = api_login(client).json["token"]
    db.session.execute(update(StaffUser).where(StaffUser.id == user.id).values(is_active=False))
    db.session.commit()
    assert client.get("/staff/").status_code == 303
    assert client.get("/api/v1/auth/me", headers=bearer(token)).status_code == 401


# -- API tokens ---------------------------------------------------------------------------


def test_api_token_issue_use_revoke(client, create_staff):
    user = create_staff()
    issued = api_login(client)
    assert issued.status_code == 201
    assert issued.headers["Cache-Control"] == "no-store"
    body = issued.json
    assert body["user"] == {"id": user.id, "username": "zhangxy", "role": "deputy", "display_name": "显示名zhangxy"}
    token = body["token"]
    assert len(token) >= 43
    row = db.session.scalars(select(StaffSession)).one()
    assert row.kind == "api"
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert body["expires_at"] == row.expires_at.isoformat()
    assert timedelta(days=29, hours=23) < row.expires_at - row.created_at <= timedelta(days=30)
    assert client.get_cookie("session") is None  # the API sets no cookie

    me = client.get("/api/v1/auth/me", headers=bearer(token))
    assert me.status_code == 200
    assert me.json["user"]["username"] == "zhangxy"

    assert client.delete("/api/v1/auth/token", headers=bearer(token)).status_code == 204
    gone = client.get("/api/v1/auth/me", headers=bearer(token))
    assert gone.status_code == 401
    assert gone.json["error"]["code"] == "unauthorized"
    assert gone.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.delete("/api/v1/auth/token", headers=bearer(token)).status_code == 401
    assert [row.action for row in db.session.scalars(select(AuditEntry).order_by(AuditEntry.id))] == [
        "login",
        "logout",
    ]


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer"}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic emhhbmd4eTp4"}],
)
def test_api_without_a_valid_token_is_401_json(client, headers):
    answer = client.get("/api/v1/auth/me", headers=headers)
    assert answer.status_code == 401
    assert answer.json["error"]["code"] == "unauthorized"


def test_expired_token_is_refused(client, create_staff):
    create_staff()
    token = api_login(client).json["token"]
    db.session.execute(update(StaffSession).values(expires_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    assert client.get("/api/v1/auth/me", headers=bearer(token)).status_code == 401


def test_expired_web_session_is_refused(client, create_staff):
    create_staff()
    web_login(client)
    db.session.execute(update(StaffSession).values(expires_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    assert client.get("/staff/").status_code == 303


def test_cookie_and_token_are_not_interchangeable(app, client, create_staff):
    create_staff()
    web_login(client)
    sid = sid_of(app, session_cookie(client))
    # The API (exempt from CSRF checks) ignores the cookie the browser sends by itself ...
    assert client.get("/api/v1/auth/me").status_code == 401
    # ... and a web session's secret is not an API token.
    assert client.get("/api/v1/auth/me", headers=bearer(sid)).status_code == 401
    token = api_login(client).json["token"]
    assert app.test_client().get("/staff/", headers=bearer(token)).status_code == 303
    # Revoking the token from the browser that also holds a web session leaves that session alone.
    assert client.delete("/api/v1/auth/token", headers=bearer(token)).status_code == 204
    assert client.get("/staff/").status_code == 200


def test_token_api_bad_bodies(client, create_staff):
    create_staff()
    assert client.post("/api/v1/auth/token", data="username=zhangxy").status_code == 415
    answer = client.post("/api/v1/auth/token", json={"username": "zhangxy"})
    assert answer.status_code == 400
    assert answer.json["error"]["code"] == "missing_credentials"
    assert client.post("/api/v1/auth/token", json={"username": 1, "password": ["x"]}).status_code == 400
    assert audit_rows("login_failed") == []


def test_last_seen_is_updated_at_most_once_a_minute(client, create_staff):
    create_staff()
    token = api_login(client).json["token"]
    first_seen = db.session.scalars(select(StaffSession)).one().last_seen_at
    client.get("/api/v1/auth/me", headers=bearer(token))
    db.session.expire_all()
    assert db.session.scalars(select(StaffSession)).one().last_seen_at == first_seen

    long_ago = utcnow() - timedelta(minutes=5)
    db.session.execute(update(StaffSession).values(last_seen_at=long_ago))
    db.session.commit()
    client.get("/api/v1/auth/me", headers=bearer(token))  # a read-only request: the mark is committed anyway
    db.session.expire_all()
    assert db.session.scalars(select(StaffSession)).one().last_seen_at > long_ago + timedelta(minutes=4)


# -- roles --------------------------------------------------------------------------------


@pytest.fixture
def supervisor_only(app):
    """A page and an API endpoint for supervisors only."""

    @app.get("/staff/test-supervisors")
    @login_required(StaffRole.SUPERVISOR)
    def supervisor_page():
        return "supervisors"

    @app.get("/api/v1/test-supervisors")
    @api_auth_required(StaffRole.SUPERVISOR, StaffRole.STATION_ADMIN)
    def supervisor_api():
        return {"ok": True}


@pytest.mark.fresh_app  # supervisor_only adds routes
def test_wrong_role_on_a_page_is_404_like_an_unknown_page_and_audited(client, create_staff, supervisor_only):
    user = create_staff()
    web_login(client)
    refused = client.get("/staff/test-supervisors")
    unknown = client.get("/staff/no-such-page")
    assert refused.status_code == unknown.status_code == 404
    assert refused.data == unknown.data
    rows = audit_rows("forbidden")
    assert len(rows) == 1
    assert rows[0].staff_user_id == user.id
    assert rows[0].object_id == "/staff/test-supervisors"
    assert rows[0].data["roles"] == ["supervisor"]

    create_staff("chief", StaffRole.SUPERVISOR)
    web_login(client, "chief")
    assert client.get("/staff/test-supervisors").text == "supervisors"


@pytest.mark.fresh_app  # supervisor_only adds routes
def test_wrong_role_on_the_api_is_404_json_and_audited(client, create_staff, supervisor_only):
    user = create_staff()
    token = api_login(client).json["token"]
    refused = client.get("/api/v1/test-supervisors", headers=bearer(token))
    unknown = client.get("/api/v1/no-such-endpoint", headers=bearer(token))
    assert refused.status_code == unknown.status_code == 404
    assert refused.json == unknown.json == {"error": {"code": "not_found", "message": "找不到该页面或记录。"}}
    rows = audit_rows("forbidden")
    assert [row.staff_user_id for row in rows] == [user.id]
    assert rows[0].data["roles"] == ["supervisor", "station_admin"]
    assert client.get("/api/v1/test-supervisors").status_code == 401  # no token: 401, not 404


def test_role_decorators_refuse_non_roles():
    with pytest.raises(TypeError):
        login_required("deputy ")


# -- CLI ----------------------------------------------------------------------------------


@pytest.fixture
def department(app, create_county):
    """A county department."""
    dept = Department(name="炎陵县交通运输局", region=create_county())
    db.session.add(dept)
    db.session.commit()
    return dept


def test_cli_creates_a_user_for_every_role(runner, client, create_deputy, department):
    deputy = create_deputy()
    station = deputy.station
    cases = [
        ("Deputy1", ["--role", "deputy", "--deputy", str(deputy.id)], StaffRole.DEPUTY, "deputy_id", deputy.id),
        ("admin1", ["--role", "station_admin", "--station", str(station.id)], StaffRole.STATION_ADMIN, "station_id", station.id),
        ("chief1", ["--role", "supervisor", "--region", "430225"], StaffRole.SUPERVISOR, "region_id", department.region_id),
        ("dept1", ["--role", "department", "--department", str(department.id)], StaffRole.DEPARTMENT, "department_id", department.id),
    ]  # fmt: skip
    for username, options, role, column, value in cases:
        result = runner.invoke(args=["user", "create", username, *options, "--password", PASSWORD])
        assert result.exit_code == 0, result.output
        assert "已创建账号" in result.output
        user = db.session.scalar(select(StaffUser).where(StaffUser.username == username.lower()))
        assert user.role == role
        assert getattr(user, column) == value
        assert user.password_hash.startswith("scrypt:")
        assert api_login(client, username, PASSWORD).status_code == 201
    assert db.session.scalar(select(StaffUser.display_name).where(StaffUser.username == "deputy1")) == deputy.name
    created = audit_rows("staff_user_created")
    assert len(created) == 4 and all(row.staff_user_id is None and row.data == {"via": "cli"} for row in created)


def test_cli_create_prompts_for_the_password_twice(runner, client, create_deputy):
    deputy = create_deputy()
    args = ["user", "create", "zhang", "--role", "deputy", "--deputy", str(deputy.id), "--display-name", "张代表"]
    result = runner.invoke(args=args, input=f"{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output
    assert api_login(client, "zhang").json["user"]["display_name"] == "张代表"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--role", "deputy"], "需要 --deputy"),
        (["--role", "deputy", "--deputy", "999999"], "找不到编号为 999999 的代表"),
        (["--role", "deputy", "--station", "{station}"], "不能使用 --station"),
        (["--role", "deputy", "--deputy", "{deputy}", "--region", "430225"], "不能使用 --region"),
        (["--role", "deputy", "--deputy", "{retired}"], "已不在任"),
        (["--role", "station_admin"], "需要 --station"),
        (["--role", "station_admin", "--station", "999999"], "找不到编号为 999999 的联络站"),
        (["--role", "station_admin", "--deputy", "{deputy}"], "不能使用 --deputy"),
        (["--role", "supervisor"], "需要 --region"),
        (["--role", "supervisor", "--region", "999999"], "找不到行政区划代码为 999999 的地区"),
        (["--role", "supervisor", "--region", "430225", "--department", "{department}"], "不能使用 --department"),
        (["--role", "department"], "需要 --department"),
        (["--role", "department", "--department", "999999"], "找不到编号为 999999 的承办单位"),
        (["--role", "department", "--department", "{closed}"], "已停用"),
        (["--role", "mayor", "--region", "430225"], "Invalid value for '--role'"),
        (["--role", "deputy", "--deputy", "abc"], "'abc' is not a valid integer"),
    ],
)
def test_cli_create_refuses_bad_scopes_and_writes_nothing(runner, create_deputy, department, options, message):
    deputy = create_deputy()
    retired = create_deputy("邓文斌", station=deputy.station, status=DeputyStatus.RESIGNED)
    closed = Department(name="已撤销的局", region=department.region, is_active=False)
    db.session.add(closed)
    db.session.commit()
    ids = {
        "station": deputy.station.id,
        "deputy": deputy.id,
        "retired": retired.id,
        "department": department.id,
        "closed": closed.id,
    }
    options = [option.format(**ids) for option in options]
    before = (count(StaffUser), count(AuditEntry))
    result = runner.invoke(args=["user", "create", "someone", *options, "--password", PASSWORD])
    assert result.exit_code != 0
    assert message in result.output
    assert (count(StaffUser), count(AuditEntry)) == before


@pytest.mark.parametrize(
    ("username", "password", "message"),
    [
        ("ok_user", "short", "新密码至少8个字符"),
        ("ok_user", "x" * 129, "新密码最多128个字符"),
        ("ab", PASSWORD, "用户名须为"),
        ("张秀英", PASSWORD, "用户名须为"),
        ("has space", PASSWORD, "用户名须为"),
        ("x" * 51, PASSWORD, "用户名须为"),
    ],
)
def test_cli_create_refuses_bad_usernames_and_passwords(runner, create_county, username, password, message):
    create_county()
    args = ["user", "create", username, "--role", "supervisor", "--region", "430225", "--password", password]
    result = runner.invoke(args=args)
    assert result.exit_code != 0
    assert message in result.output
    assert count(StaffUser) == 0


def test_cli_create_refuses_duplicates(runner, create_staff):
    user = create_staff()
    deputy_id = str(user.deputy_id)
    result = runner.invoke(args=["user", "create", "ZhangXY", "--role", "supervisor", "--region", "430225", "--password", PASSWORD])  # fmt: skip
    assert result.exit_code != 0
    assert "用户名 zhangxy 已存在" in result.output
    result = runner.invoke(args=["user", "create", "other", "--role", "deputy", "--deputy", deputy_id, "--password", PASSWORD])  # fmt: skip
    assert result.exit_code != 0
    assert "已有账号 zhangxy" in result.output
    assert count(StaffUser) == 1


def test_cli_reset_password_revokes_every_session(app, runner, client, create_staff):
    user = create_staff()
    web_login(client)
    token = api_login(client).json["token"]

    new_password = "neues-passwort-1"
    result = runner.invoke(args=["user", "reset-password", "ZHANGXY", "--password", new_password])
    assert result.exit_code == 0, result.output
    assert "结束了 2 个登录会话" in result.output
    assert client.get("/staff/").status_code == 303
    assert client.get("/api/v1/auth/me", headers=bearer(token)).status_code == 401
    assert api_login(client).status_code == 401
    assert api_login(client, "zhangxy", new_password).status_code == 201
    assert audit_rows("password_reset")[0].object_id == str(user.id)


def test_cli_reset_password_prompts_with_confirmation(runner, client, create_staff):
    create_staff()
    mismatch = runner.invoke(args=["user", "reset-password", "zhangxy"], input="neues-passwort-1\nanders-1234\n")
    assert mismatch.exit_code != 0
    assert api_login(client).status_code == 201  # unchanged

    result = runner.invoke(args=["user", "reset-password", "zhangxy"], input="neues-passwort-1\nneues-passwort-1\n")
    assert result.exit_code == 0, result.output
    assert api_login(client, "zhangxy", "neues-passwort-1").status_code == 201


def test_cli_reset_password_errors(runner, create_staff):
    user = create_staff()
    old_hash = user.password_hash
    result = runner.invoke(args=["user", "reset-password", "nobody", "--password", PASSWORD])
    assert result.exit_code != 0
    assert "找不到用户名为 nobody 的账号" in result.output
    result = runner.invoke(args=["user", "reset-password", "zhangxy", "--password", "kurz"])
    assert result.exit_code != 0
    assert "新密码至少8个字符" in result.output
    db.session.expire_all()
    assert db.session.get(StaffUser, user.id).password_hash == old_hash
    assert audit_rows("password_reset") == []


def count_in(app, store: str) -> None:
    """Throttle counters in the database (as this module's tests keep them), or in Redis."""
    if store == "redis":
        redis_or_skip(REDIS_TEST_URL)
        # Emptied first, not only after: a run killed mid-test (a session's end, a CI timeout) leaves its
        # counters behind for a whole window, and the next run would start from them.
        redis.Redis.from_url(REDIS_TEST_URL).flushdb()
        app.config["REDIS_URL"] = REDIS_TEST_URL


@pytest.mark.parametrize("store", ["database", "redis"])
def test_48_wrong_passwords_at_once_get_at_most_the_limits_password_checks(app, create_staff, store):
    """Issue 10, finding 7 (19 checks of 48 on PostgreSQL before): every attempt is counted before its password
    is checked, in the one statement that counts and reports; only the first five of one address reach the
    check (each audited as a bad password), the other 43 are refused with 429 before it."""
    count_in(app, store)
    create_staff()
    attempts = 48
    barrier = threading.Barrier(attempts)
    answers: list[int] = []

    def attempt():
        with app.app_context():  # a request of its own, as from another worker
            client = client_from(app, ADDRESS_A)
            barrier.wait()
            answers.append(api_login(client, "zhangxy", "falsch-falsch").status_code)

    threads = [threading.Thread(target=attempt) for _ in range(attempts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers) == [401] * 5 + [429] * 43
    failed = audit_rows("login_failed")
    assert [row.data["reason"] for row in failed] == ["bad_password"] * 5
    assert api_login(client_from(app, ADDRESS_A)).status_code == 429  # the right password too, from there


@pytest.mark.parametrize("store", ["database", "redis"])
def test_the_right_password_takes_its_count_back(app, create_staff, store):
    """Counted first, taken back when right: a deputy who logs in often is never throttled, and the failures
    before a success still count."""
    count_in(app, store)
    app.config["LOGIN_FAILURES_PER_ACCOUNT_ADDRESS"] = 3
    create_staff()
    client = client_from(app, ADDRESS_A)
    for _ in range(10):
        assert api_login(client).status_code == 201
    assert api_login(client, "zhangxy", "falsch-falsch").status_code == 401
    assert api_login(client, "zhangxy", "falsch-falsch").status_code == 401
    assert api_login(client).status_code == 201
    keys = (f"login-fail:pair:zhangxy:{ADDRESS_A}", f"login-fail:addr:{ADDRESS_A}")
    assert [throttle.peek(key, 3).count for key in keys] == [2, 2]
    assert api_login(client, "zhangxy", "falsch-falsch").status_code == 401
    assert api_login(client).status_code == 429
