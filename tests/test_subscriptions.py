"""Subscription accounting: the templates to request, and counting what the user accepted."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

import pytest

from backend.auth.sessions import hash_secret
from backend.extensions import db
from backend.models import ResidentSession, SessionKind, StaffSession, utcnow
from tests.outbox_support import credits_of, make_resident, make_world

PROGRESS, ANSWERED, RESOLVED, DEPUTY = "tpl-item-progress", "tpl-item-answered", "tpl-item-resolved", "tpl-deputy-task"


def resident_token(resident_id: int, *, expires_in=timedelta(days=30), revoked=False) -> str:
    """A resident session as ``POST /api/v1/wechat/login`` will make one; returns the token."""
    token = secrets.token_urlsafe(32)
    db.session.add(
        ResidentSession(
            token_hash=hashlib.sha256(token.encode()).hexdigest(),
            resident_id=resident_id,
            expires_at=utcnow() + expires_in,
            revoked_at=utcnow() if revoked else None,
        )
    )
    db.session.commit()
    return token


def report(client, token: str | None, results, **kwargs):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.post("/api/v1/wechat/subscriptions", json={"results": results}, headers=headers, **kwargs)


def test_templates_in_calls_of_at_most_three(client, app):
    response = client.get("/api/v1/wechat/templates")
    assert response.status_code == 200
    body = response.get_json()
    assert body["max_per_request"] == 3
    assert body["requests"]["resident"] == [[ANSWERED, RESOLVED, PROGRESS]]  # the answer first
    assert body["requests"]["deputy"] == [[DEPUTY]]
    assert {t["purpose"]: t["id"] for t in body["templates"]} == {
        "item_progress": PROGRESS,
        "item_answered": ANSWERED,
        "item_resolved": RESOLVED,
        "deputy_task": DEPUTY,
    }
    assert all(len(group) <= 3 for groups in body["requests"].values() for group in groups)


def test_more_than_three_templates_are_split_into_calls(client, app):
    templates = dict(app.config["WECHAT_TEMPLATES"])
    # A deployment that maps the resolution to two templates still gets calls of three at most.
    templates["item_extra"] = {"id": "tpl-extra", "fields": {"thing1": "summary"}}
    app.config["WECHAT_TEMPLATES"] = templates
    from backend.outbox import notifications

    spec = notifications.KindSpec("resident", "item_extra", lambda ctx: {})
    notifications.KINDS["item_extra_test"] = spec
    try:
        body = client.get("/api/v1/wechat/templates").get_json()
    finally:
        del notifications.KINDS["item_extra_test"]
    assert body["requests"]["resident"] == [[ANSWERED, RESOLVED, PROGRESS], ["tpl-extra"]]


def test_accepts_are_counted_per_user_and_template(client, app):
    token = resident_token(make_resident("o-res-1"))
    response = report(client, token, {PROGRESS: "accept", ANSWERED: "accept", RESOLVED: "reject"})
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {"credits": {ANSWERED: 1, PROGRESS: 1, RESOLVED: 0}}
    assert response.headers["Cache-Control"] == "no-store"
    # The mini-program's raw result object carries errMsg: it is not a template.
    response = report(client, token, {ANSWERED: "accept", "errMsg": "requestSubscribeMessage:ok"})
    assert response.get_json() == {"credits": {ANSWERED: 2}}
    assert credits_of("o-res-1", ANSWERED) == 2
    assert credits_of("o-res-1", RESOLVED) == 0
    # Someone else's count is their own.
    other = resident_token(make_resident("o-res-2"))
    assert report(client, other, {ANSWERED: "accept"}).get_json() == {"credits": {ANSWERED: 1}}
    assert credits_of("o-res-1", ANSWERED) == 2


@pytest.mark.parametrize(
    ("results", "code"),
    [
        ({"tpl-unknown": "accept", PROGRESS: "accept"}, "unknown_template"),
        ({PROGRESS: "maybe"}, "invalid_result"),
        ({}, "invalid_results"),
        (["accept"], "invalid_results"),
        ({"errMsg": "requestSubscribeMessage:ok"}, "invalid_results"),
    ],
)
def test_bad_reports_are_400_and_count_nothing(client, app, results, code):
    token = resident_token(make_resident("o-res-1"))
    response = report(client, token, results)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == code
    assert credits_of("o-res-1", PROGRESS) == 0


def test_only_a_live_resident_token_counts(client, app):
    resident_id = make_resident("o-res-1")
    assert report(client, None, {PROGRESS: "accept"}).status_code == 401
    assert report(client, "not-a-token", {PROGRESS: "accept"}).status_code == 401
    expired = resident_token(resident_id, expires_in=timedelta(seconds=-1))
    assert report(client, expired, {PROGRESS: "accept"}).status_code == 401
    revoked = resident_token(resident_id, revoked=True)
    assert report(client, revoked, {PROGRESS: "accept"}).status_code == 401
    assert credits_of("o-res-1", PROGRESS) == 0
    live = resident_token(resident_id)
    response = client.post("/api/v1/wechat/subscriptions", data="results", headers={"Authorization": f"Bearer {live}"})
    assert response.status_code == 415


def test_a_deputy_reports_with_the_staff_api_token(client, app, create_deputy):
    world = make_world(create_deputy)
    secret = secrets.token_urlsafe(32)
    db.session.add(
        StaffSession(
            token_hash=hash_secret(secret),
            staff_user_id=world.staff_user_id,
            kind=SessionKind.API,
            expires_at=utcnow() + timedelta(days=1),
        )
    )
    db.session.commit()
    assert report(client, secret, {DEPUTY: "accept"}).get_json() == {"credits": {DEPUTY: 1}}
    assert credits_of(world.deputy_openid, DEPUTY) == 1


def test_a_resident_without_openid_cannot_subscribe(client, app):
    token = resident_token(make_resident(None))
    response = report(client, token, {PROGRESS: "accept"})
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "no_wechat_identity"
