"""联系群众 through the API (issue 15 part 3): ``GET/POST /api/v1/contacts`` — a deputy's own 走访, 座谈 and phone
calls, with their staff token; who may (the deputy, for themself only) and every bad input refused with its field,
nothing written. Also ``GET /api/v1/presence``, the deputy's 签到 screen at their station, and ``intent`` on
``POST /api/v1/presence``, which the mini-program's 签到 / 签退 buttons send."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from backend.extensions import db
from backend.models import (
    AuditEntry,
    ContactKind,
    ContactLog,
    DeputyStatus,
    StationVisit,
)
from backend.stations.calendar import today_in_china
from backend.stations.contacts import MAX_DAYS_BACK, MAX_PEOPLE
from tests.helpers import api_token, fresh_rows, resident_headers


def good(**changes) -> dict:
    """A contact as the mini-program would send it."""
    return {
        "kind": "visit",
        "held_on": today_in_china().isoformat(),
        "place": "沔渡镇石洲村村委会",
        "people": 12,
        "summary": "村民反映通组公路塌方，雨天无法通行。",
    } | changes


def test_a_deputy_logs_a_contact_and_lists_their_own(app, world):
    headers = api_token(app, "deputy_d1")
    client = app.test_client()
    done = client.post("/api/v1/contacts", json=good(), headers=headers)
    assert done.status_code == 201, done.json
    contact = done.json["contact"]
    assert contact["kind"] == "visit" and contact["kind_label"] == "走访" and contact["people"] == 12
    assert contact["station"] == {"id": world.station_a.id, "name": world.station_a.name}
    assert contact["item_ref"] is None and done.json["message"] == "已记录这次联系群众。"
    # The date left out is today; the place may be left out; digits as a picker sends them are a number.
    phone = client.post(
        "/api/v1/contacts", json={"kind": "phone", "people": "1", "summary": "询问低保申请进度。"}, headers=headers
    )
    assert phone.status_code == 201, phone.json
    assert phone.json["contact"]["held_on"] == today_in_china().isoformat()
    assert phone.json["contact"]["place"] == ""
    rows = fresh_rows(ContactLog)
    assert [(r.deputy_id, r.station_id, r.kind, r.people) for r in rows] == [
        (world.d1.id, world.station_a.id, ContactKind.VISIT, 12),
        (world.d1.id, world.station_a.id, ContactKind.PHONE, 1),
    ]
    assert db.session.scalar(select(func.count()).where(AuditEntry.action == "contact_logged")) == 2

    listed = client.get("/api/v1/contacts", headers=headers)
    assert listed.status_code == 200
    assert [c["summary"] for c in listed.json["contacts"]] == [
        "询问低保申请进度。",
        "村民反映通组公路塌方，雨天无法通行。",
    ]
    assert listed.json["kinds"] == [{"value": k.value, "label": k.label} for k in ContactKind]
    assert [c["id"] for c in client.get("/api/v1/contacts?limit=1", headers=headers).json["contacts"]] == [rows[1].id]
    own = client.get(f"/api/v1/contacts?deputy={world.d1.id}", headers=headers)
    assert own.status_code == 200 and len(own.json["contacts"]) == 2

    # Another deputy's token lists that deputy's own contacts: none of d1's.
    other = client.get("/api/v1/contacts", headers=api_token(app, "deputy_d2"))
    assert other.status_code == 200 and other.json["contacts"] == []


@pytest.mark.parametrize(
    ("who", "method", "path", "status", "code"),
    [
        (None, "post", "/api/v1/contacts", 401, "unauthorized"),
        (None, "get", "/api/v1/contacts", 401, "unauthorized"),
        ("resident", "post", "/api/v1/contacts", 401, "unauthorized"),
        ("resident", "get", "/api/v1/contacts", 401, "unauthorized"),
        ("admin_a", "post", "/api/v1/contacts", 404, "not_found"),  # a station administrator logs no contact
        ("sup_county", "get", "/api/v1/contacts", 404, "not_found"),
        ("deputy_d2", "post", "/api/v1/contacts?for=d1", 403, "not_yourself"),  # another deputy's token, for d1
        ("deputy_d2", "get", "/api/v1/contacts?deputy=d1", 403, "not_yourself"),
    ],
)
def test_only_the_deputy_themself_may(app, world, who, method, path, status, code):
    headers = {} if who is None else resident_headers("o-contacts-test") if who == "resident" else api_token(app, who)
    body = good(deputy_id=world.d1.id) if "for=d1" in path else good()
    path = path.replace("?for=d1", "").replace("deputy=d1", f"deputy={world.d1.id}")
    kwargs = {"json": body} if method == "post" else {}
    response = getattr(app.test_client(), method)(path, headers=headers, **kwargs)
    assert response.status_code == status, response.json
    assert response.json["error"]["code"] == code
    assert fresh_rows(ContactLog) == []


def test_a_token_in_the_wrong_hands_is_refused_after_it_is_revoked(app, world):
    headers = api_token(app, "deputy_d1")
    assert app.test_client().delete("/api/v1/auth/token", headers=headers).status_code == 204
    response = app.test_client().post("/api/v1/contacts", json=good(), headers=headers)
    assert response.status_code == 401 and fresh_rows(ContactLog) == []


def test_a_deputy_no_longer_serving_logs_nothing(app, world):
    headers = api_token(app, "deputy_d1")
    world.d1.status = DeputyStatus.RESIGNED
    db.session.commit()
    response = app.test_client().post("/api/v1/contacts", json=good(), headers=headers)
    assert response.status_code == 409 and response.json["error"]["code"] == "deputy_not_serving"
    assert fresh_rows(ContactLog) == []


@pytest.mark.parametrize(
    ("changes", "field", "code"),
    [
        ({"kind": None}, "kind", "invalid_kind"),  # no kind
        ({"kind": ""}, "kind", "invalid_kind"),
        ({"kind": "letter"}, "kind", "invalid_kind"),
        ({"kind": 1}, "kind", "invalid_kind"),
        ({"held_on": (today_in_china() + timedelta(days=1)).isoformat()}, "held_on", "held_on_ahead"),  # future
        ({"held_on": (today_in_china() + timedelta(days=400)).isoformat()}, "held_on", "held_on_ahead"),
        (
            {"held_on": (today_in_china() - timedelta(days=MAX_DAYS_BACK + 1)).isoformat()},
            "held_on",
            "held_on_too_old",
        ),
        ({"held_on": "2026-02-30"}, "held_on", "invalid_held_on"),
        ({"held_on": "昨天"}, "held_on", "invalid_held_on"),
        ({"people": 0}, "people", "invalid_people"),  # people < 1
        ({"people": -3}, "people", "invalid_people"),
        ({"people": MAX_PEOPLE + 1}, "people", "invalid_people"),  # absurd
        ({"people": 2**40}, "people", "invalid_people"),
        ({"people": "0"}, "people", "invalid_people"),
        ({"people": "十二"}, "people", "invalid_people"),
        ({"people": 2.5}, "people", "invalid_people"),
        ({"people": True}, "people", "invalid_people"),
        ({"people": None}, "people", "invalid_people"),
        ({"summary": ""}, "summary", "required"),  # an empty line
        ({"summary": "   \n "}, "summary", "required"),
        ({"summary": None}, "summary", "required"),
        ({"summary": "很" * 201}, "summary", "too_long"),
        ({"place": "很" * 101}, "place", "too_long"),
        ({"deputy_id": "张秀英"}, "deputy_id", "invalid_deputy_id"),
    ],
)
def test_bad_contacts_are_refused_naming_the_field_and_nothing_is_written(app, world, changes, field, code):
    response = app.test_client().post("/api/v1/contacts", json=good(**changes), headers=api_token(app, "deputy_d1"))
    assert response.status_code == 400, response.json
    error = response.json["error"]
    assert error["field"] == field and error["code"] == code, error
    assert any("\u4e00" <= ch <= "\u9fff" for ch in error["message"])
    assert fresh_rows(ContactLog) == []


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=abc", "limit=%EF%BC%91"])
def test_a_bad_limit_is_refused(app, world, query):
    response = app.test_client().get(f"/api/v1/contacts?{query}", headers=api_token(app, "deputy_d1"))
    assert response.status_code == 400 and response.json["error"]["field"] == "limit"


def test_not_json_is_refused(app, world):
    response = app.test_client().post("/api/v1/contacts", data="kind=visit", headers=api_token(app, "deputy_d1"))
    assert response.status_code == 415 and fresh_rows(ContactLog) == []


# --- the deputy's 签到 screen (GET /api/v1/presence) and the buttons' intent ---------------------------------


def test_the_presence_screen_says_which_button_and_the_buttons_mean_what_they_say(app, world):
    headers = api_token(app, "deputy_d1")
    client = app.test_client()
    screen = client.get(f"/api/v1/presence?station_id={world.station_a.id}", headers=headers)
    assert screen.status_code == 200, screen.json
    assert screen.json["next_action"] == "in" and screen.json["visit"] is None and screen.json["minutes_in"] is None
    assert screen.json["station"] == {"id": world.station_a.id, "name": world.station_a.name}
    assert screen.json["deputy"] == {"id": world.d1.id, "name": world.d1.name}
    # 签退 with no visit open: refused, nothing written.
    out = client.post("/api/v1/presence", json={"station_id": world.station_a.id, "intent": "out"}, headers=headers)
    assert out.status_code == 409 and out.json["error"]["code"] == "no_open_visit"
    checked_in = client.post(
        "/api/v1/presence", json={"station_id": world.station_a.id, "intent": "in"}, headers=headers
    )
    assert checked_in.status_code == 201 and checked_in.json["action"] == "checked_in"
    # A second 签到 tap never closes the visit; the screen now offers 签退, which closes it at once.
    again = client.post("/api/v1/presence", json={"station_id": world.station_a.id, "intent": "in"}, headers=headers)
    assert again.status_code == 200 and again.json["action"] == "repeated"
    screen = client.get(f"/api/v1/presence?station_id={world.station_a.id}", headers=headers)
    assert screen.json["next_action"] == "out" and screen.json["visit"]["is_open"] is True
    assert screen.json["minutes_in"] == 0
    closed = client.post("/api/v1/presence", json={"station_id": world.station_a.id, "intent": "out"}, headers=headers)
    assert closed.status_code == 200 and closed.json["action"] == "checked_out"
    (visit,) = fresh_rows(StationVisit)
    assert visit.checked_out_at is not None


@pytest.mark.parametrize(
    ("who", "query", "status", "code"),
    [
        (None, "station_id=A", 401, "unauthorized"),
        ("resident", "station_id=A", 401, "unauthorized"),
        ("deputy_d3", "station_id=A", 404, "not_your_station"),  # a deputy of another station
        ("deputy_d4", "station_id=A", 404, "not_your_station"),  # another county
        ("deputy_d1", "station_id=999999", 404, "not_your_station"),
        ("admin_a", "station_id=A", 404, "not_found"),  # the administrator has the station's own page
        ("deputy_d1", "", 400, "invalid_station_id"),
        ("deputy_d1", "station_id=x", 400, "invalid_station_id"),
        ("deputy_d1", "station_id=0", 400, "invalid_station_id"),
    ],
)
def test_the_presence_screen_is_the_deputys_own(app, world, who, query, status, code):
    headers = {} if who is None else resident_headers("o-contacts-test") if who == "resident" else api_token(app, who)
    query = query.replace("=A", f"={world.station_a.id}")
    response = app.test_client().get(f"/api/v1/presence?{query}", headers=headers)
    assert response.status_code == status, response.json
    assert response.json["error"]["code"] == code


def test_a_bad_intent_is_refused(app, world):
    response = app.test_client().post(
        "/api/v1/presence",
        json={"station_id": world.station_a.id, "intent": "sideways"},
        headers=api_token(app, "deputy_d1"),
    )
    assert response.status_code == 400 and response.json["error"]["code"] == "invalid_intent"
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(StationVisit)) == 0
