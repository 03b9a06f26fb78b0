"""Content screening with msgSecCheck v2 against the local WeChat sandbox, and the station administrator's
review of held items (never deleted; released into the deputy's inbox with an audit row)."""

# ruff: noqa: F811 - the wechat_sandbox fixture is imported, then named as a parameter

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from backend.extensions import db
from backend.models import AuditEntry, Item, OutboxMessage, Resident, ScreeningResult, utcnow
from backend.qr.codes import current_code
from backend.wechat.screening import label_text, screen_message
from tests.factories import make_item
from tests.helpers import api_token, fresh_token, login
from tests.wechat_server import wechat_sandbox  # noqa: F401

BODY = "村口的路灯坏了三个月，晚上出行很不方便，请帮忙修一修。"


def resident_in_sandbox(sandbox, openid: str = "o-writer") -> Resident:
    """A resident WeChat knows (they logged in to the mini-program)."""
    sandbox.login_code(openid)
    resident = Resident(openid=openid)
    db.session.add(resident)
    db.session.commit()
    return resident


def calls(sandbox) -> int:
    return sandbox.stats().get("wxa/msg_sec_check", 0)


# --- screen_message -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "result", "label"),
    [
        (BODY, ScreeningResult.PASS, 100),
        (BODY + "【复核】", ScreeningResult.REVIEW, 21000),
        (BODY + "【风险】", ScreeningResult.RISKY, 21000),
    ],
)
def test_verdicts(app, wechat_sandbox, text, result, label):
    resident = resident_in_sandbox(wechat_sandbox)
    assert screen_message(resident, text) == (result, label)
    assert calls(wechat_sandbox) == 1


def test_no_mini_program_identity_means_no_call(app, wechat_sandbox):
    assert screen_message(None, BODY + "【风险】") == (ScreeningResult.UNSCREENED, None)
    official_account_only = Resident(mp_openid="o-mp-only")
    assert screen_message(official_account_only, BODY + "【风险】") == (ScreeningResult.UNSCREENED, None)
    assert calls(wechat_sandbox) == 0
    assert wechat_sandbox.stats() == {}  # not even a token was fetched


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("wxa/msg_sec_check", "timeout"),
        ("wxa/msg_sec_check", "http500"),
        ("wxa/msg_sec_check", "busy"),
        ("wxa/msg_sec_check", "invalid_token"),  # refused tokens, forever: a bounded number of fetches
        ("cgi-bin/token", "quota"),
        ("cgi-bin/token", "http500"),
    ],
)
def test_wechat_unreachable_lets_the_message_through_unscreened(app, wechat_sandbox, path, kind):
    resident = resident_in_sandbox(wechat_sandbox)
    wechat_sandbox.fault(path, kind, times=-1)
    assert screen_message(resident, BODY + "【风险】") == (ScreeningResult.UNSCREENED, None)


def test_an_openid_wechat_does_not_know_is_unscreened(app, wechat_sandbox):
    stranger = Resident(openid="o-never-logged-in")  # 40003 from WeChat
    assert screen_message(stranger, BODY) == (ScreeningResult.UNSCREENED, None)


def test_long_messages_are_cut_to_wechats_limit(app, wechat_sandbox):
    resident = resident_in_sandbox(wechat_sandbox)
    assert screen_message(resident, "长" * 3000) == (ScreeningResult.PASS, 100)


def test_labels_read_in_chinese():
    assert label_text(20001) == "时政" and label_text(20003) == "辱骂" and label_text(None) == ""
    assert label_text(99999) == "其他（99999）"


# --- end to end: submit_item stores the verdict ------------------------------------------------


@pytest.mark.parametrize(
    ("suffix", "result", "held"),
    [
        ("", ScreeningResult.PASS, False),
        ("【复核】", ScreeningResult.REVIEW, False),
        ("【风险】", ScreeningResult.RISKY, True),
    ],
)
def test_items_from_the_mini_program_are_screened(client, wechat_sandbox, create_deputy, suffix, result, held):
    slug = current_code(create_deputy()).slug
    code = wechat_sandbox.login_code("o-e2e")
    token = client.post("/api/v1/wechat/login", json={"code": code}).get_json()["token"]
    response = client.post(
        "/api/v1/items",
        json={"code": slug, "body": BODY + suffix},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 201, response.get_json()
    item = db.session.scalar(select(Item))
    assert (item.screening, item.is_held) == (result, held)


def test_wechat_down_lets_items_through_unscreened(client, wechat_sandbox, create_deputy):
    slug = current_code(create_deputy()).slug
    token = client.post("/api/v1/wechat/login", json={"code": wechat_sandbox.login_code("o-down")}).get_json()["token"]
    wechat_sandbox.fault("wxa/msg_sec_check", "http500", times=-1)
    response = client.post(
        "/api/v1/items", json={"code": slug, "body": BODY + "【风险】"}, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 201
    item = db.session.scalar(select(Item))
    assert (item.screening, item.is_held) == (ScreeningResult.UNSCREENED, False)


# --- the review of held items -----------------------------------------------------------------


def held_item(deputy, body: str = BODY + "【风险】") -> Item:
    item = make_item(deputy, body=body)
    item.screening = ScreeningResult.RISKY
    item.screening_label = 20003
    item.is_held = True
    db.session.commit()
    return item


def test_a_station_administrator_sees_only_their_stations_held_items(app, world):
    mine = held_item(world.d1)
    other_station = held_item(world.d3)
    not_held = make_item(world.d2)
    page = login(app, "admin_a").get("/staff/review")
    assert page.status_code == 200
    assert page.headers["Cache-Control"] == "no-store"
    html = page.get_data(as_text=True)
    assert f'id="held-{mine.ref}"' in html and "辱骂" in html
    assert other_station.ref not in html and not_held.ref not in html
    assert f'id="held-{other_station.ref}"' in login(app, "sup_county").get("/staff/review").get_data(as_text=True)


def test_deputies_and_departments_cannot_open_the_review(app, world):
    for username in ("deputy_d1", "dept_user"):
        assert login(app, username).get("/staff/review").status_code == 404


def test_a_held_item_stays_out_of_the_deputys_inbox_until_released(app, world):
    item = held_item(world.d1)
    deputy_headers = api_token(app, "deputy_d1")
    inbox = app.test_client().get("/api/v1/inbox", headers=deputy_headers).get_json()
    assert item.ref not in [row["ref"] for row in inbox["items"]]

    admin = login(app, "admin_a")
    _, token = fresh_token(admin, "/staff/review")
    response = admin.post(f"/staff/review/{item.ref}/release", data={"csrf_token": token})
    assert response.status_code == 303
    assert "已放行" in admin.get(response.headers["Location"]).get_data(as_text=True)

    db.session.expire_all()
    item = db.session.get(Item, item.id)
    assert item.is_held is False and item.screening == ScreeningResult.RISKY  # the verdict is kept
    assert item.due_at > utcnow()  # the deadline to accept starts when the deputy can see it
    audit = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "item_released"))
    assert audit.staff_user_id == world.users["station_admin"].id and audit.object_id == str(item.id)
    notices = db.session.scalars(select(OutboxMessage).where(OutboxMessage.item_id == item.id)).all()
    assert [(n.kind, n.staff_user_id) for n in notices] == [("deputy_new_item", world.users["deputy"].id)]
    inbox = app.test_client().get("/api/v1/inbox", headers=deputy_headers).get_json()
    assert item.ref in [row["ref"] for row in inbox["items"]]

    # Twice is a clear answer, not a second notice.
    _, token = fresh_token(admin, "/staff/")
    again = admin.post(f"/staff/review/{item.ref}/release", data={"csrf_token": token})
    assert again.status_code == 409
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage)) == 1


def test_releasing_another_stations_item_is_a_404_with_an_audit_row(app, world):
    item = held_item(world.d3)
    admin = login(app, "admin_a")
    _, token = fresh_token(admin, "/staff/")
    assert admin.post(f"/staff/review/{item.ref}/release", data={"csrf_token": token}).status_code == 404
    db.session.expire_all()
    assert db.session.get(Item, item.id).is_held is True
    assert db.session.scalar(select(AuditEntry).where(AuditEntry.action == "item_access_denied")) is not None


def test_release_needs_the_csrf_token(app, world):
    item = held_item(world.d1)
    assert login(app, "admin_a").post(f"/staff/review/{item.ref}/release").status_code == 400
    assert db.session.get(Item, item.id).is_held is True


def test_held_items_are_never_deleted(app, world):
    held_item(world.d1)
    login(app, "admin_a").get("/staff/review")
    assert db.session.scalar(select(func.count()).select_from(Item)) == 1
