"""Issue 14: a deputy who binds WeChat in the mini-program is signed in by it, with no password asked again.

Bad inputs tried: a binding code used twice, an unknown one, a deactivated account (bound, not signed in), and the
token then used as a resident's or revoked."""

# ruff: noqa: F811 - the wechat_sandbox fixture is imported, then named as a parameter

from __future__ import annotations

from sqlalchemy import select

from backend.extensions import db
from backend.models import AuditEntry, SessionKind, StaffSession
from backend.wechat import identity
from tests.wechat_server import wechat_sandbox  # noqa: F401


def bind(client, sandbox, code: str, openid: str = "o-deputy-zhang"):
    return client.post("/api/v1/wechat/bind", json={"code": sandbox.login_code(openid), "binding_code": code})


def test_binding_answers_with_a_token_that_opens_the_inbox(app, client, wechat_sandbox, world):
    code, _row = identity.create_binding_code(world.users["deputy"])
    db.session.commit()
    answer = bind(client, wechat_sandbox, code)
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert body["bound"] is True and body["user"]["username"] == "deputy_d1" and body["token"] and body["expires_at"]
    bearer = {"Authorization": f"Bearer {body['token']}"}
    who = client.get("/api/v1/auth/me", headers=bearer)
    assert who.status_code == 200 and who.get_json()["user"]["username"] == "deputy_d1", who.get_json()
    assert client.get("/api/v1/inbox", headers=bearer).status_code == 200
    session = db.session.scalar(select(StaffSession))
    assert session.kind == SessionKind.API and session.staff_user_id == world.users["deputy"].id
    login = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "login"))
    assert login.data == {"kind": "api", "how": "wechat_binding"}
    # The token is a staff token: it never passes for a resident's, and it can be revoked like any.
    assert client.get("/api/v1/me/items", headers=bearer).status_code == 401
    assert client.delete("/api/v1/auth/token", headers=bearer).status_code == 204
    assert client.get("/api/v1/inbox", headers=bearer).status_code == 401

    # The same code again signs nobody in.
    again = bind(client, wechat_sandbox, code, "o-someone-else")
    assert again.status_code == 400 and "token" not in again.get_json()
    unknown = bind(client, wechat_sandbox, "AAAAAAAAAAAAAAAA")
    assert unknown.status_code == 400 and "token" not in unknown.get_json()
    assert len(db.session.scalars(select(StaffSession)).all()) == 1


def test_a_deactivated_account_is_not_signed_in_by_binding(app, client, wechat_sandbox, world):
    user = world.users["deputy"]
    code, _row = identity.create_binding_code(user)
    user.is_active = False
    db.session.commit()
    answer = bind(client, wechat_sandbox, code)
    if answer.status_code == 200:  # bound (the backend may let an inactive account keep its WeChat) but not signed in
        assert answer.get_json()["token"] is None
    else:
        assert answer.status_code in (400, 403) and "token" not in answer.get_json()
    assert db.session.scalar(select(StaffSession)) is None
