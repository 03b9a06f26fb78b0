"""Who sees whose figures: every role, on the page and in the API; outside the scope is a 404 with an audit row."""

from __future__ import annotations

import pytest
from flask import g
from sqlalchemy import select

from backend.extensions import db
from backend.models import AuditEntry
from tests.factories import submit, supervision_world
from tests.helpers import api_token, login

USERNAMES = {
    "deputy": "deputy_d1",
    "deputy2": "deputy_d2",
    "station_admin": "admin_a",
    "station_admin_b": "admin_b",
    "supervisor": "sup_county",
    "supervisor_far": "sup_far",
    "department": "dept_user",
}


WORLD = supervision_world  # the world fixture (tests/conftest.py)


def denied_rows() -> list[AuditEntry]:
    return list(
        db.session.scalars(select(AuditEntry).where(AuditEntry.action == "stats_access_denied").order_by(AuditEntry.id))
    )


def targets(world) -> dict[str, dict[str, str]]:
    return {
        "county": {"region": "430225"},
        "province": {"region": "430000"},
        "other_county": {"region": "440305"},
        "station_a": {"station": str(world.station_a.id)},
        "station_b": {"station": str(world.station_b.id)},
        "station_c": {"station": str(world.station_c.id)},
        "d1": {"deputy": str(world.d1.id)},
        "d2": {"deputy": str(world.d2.id)},
        "d3": {"deputy": str(world.d3.id)},
        "d4": {"deputy": str(world.d4.id)},
    }


ALLOWED = {
    "supervisor": {"county", "station_a", "station_b", "d1", "d2", "d3"},
    "supervisor_far": {"other_county", "station_c", "d4"},
    "station_admin": {"station_a", "d1", "d2"},
    "station_admin_b": {"station_b", "d3"},
    "deputy": {"d1"},
    "deputy2": {"d2"},
}


@pytest.mark.parametrize("role", list(ALLOWED))
def test_each_role_sees_its_scope_and_nothing_else_on_the_page(app, world, role):
    client = login(app, USERNAMES[role])
    for name, args in targets(world).items():
        before = len(denied_rows())
        response = client.get("/supervision/", query_string=args)
        g.pop("csrf_token", None)
        if name in ALLOWED[role]:
            assert response.status_code == 200, (role, name)
        else:
            assert response.status_code == 404, (role, name)
            rows = denied_rows()
            assert len(rows) == before + 1, (role, name)
            assert rows[-1].object_type == next(iter(args)) and rows[-1].data["path"] == "/supervision/"


@pytest.mark.parametrize("role", list(ALLOWED))
def test_each_role_sees_its_scope_and_nothing_else_in_the_api(app, world, role):
    headers = api_token(app, USERNAMES[role])
    client = app.test_client()
    for name, args in targets(world).items():
        response = client.get("/api/v1/stats", query_string=args, headers=headers)
        expected = 200 if name in ALLOWED[role] else 404
        assert response.status_code == expected, (role, name, response.get_json())
        if expected == 404:
            assert response.get_json()["error"]["code"] == "unknown_scope"


def test_each_role_lands_on_its_own_scope(app, world):
    expected = {
        "supervisor": "炎陵县",
        "station_admin": "霞阳镇人大代表联络站",
        "deputy": "张秀英代表",
    }
    for role, title in expected.items():
        page = login(app, USERNAMES[role]).get("/supervision/")
        g.pop("csrf_token", None)
        assert page.status_code == 200
        assert f'<h1 id="scope-title">{title}' in page.text


def test_department_users_and_strangers_get_nothing(app, world):
    page = login(app, USERNAMES["department"]).get("/supervision/")
    assert page.status_code == 404
    assert db.session.scalar(select(AuditEntry).where(AuditEntry.action == "forbidden")) is not None
    api = app.test_client().get("/api/v1/stats?region=430225", headers=api_token(app, USERNAMES["department"]))
    assert api.status_code == 404
    anonymous = app.test_client().get("/supervision/")
    assert anonymous.status_code == 303 and "/staff/login" in anonymous.headers["Location"]
    assert app.test_client().get("/api/v1/stats?region=430225").status_code == 401


def test_unknown_station_or_deputy_looks_like_out_of_scope_without_an_audit_row(app, world):
    client = login(app, USERNAMES["supervisor"])
    for args in ({"station": "999999"}, {"deputy": "999999"}):
        assert client.get("/supervision/", query_string=args).status_code == 404
    assert denied_rows() == []


def test_a_deputy_seen_by_others_shows_only_what_they_may_see(app, client, world):
    """d1 moves from station A to B: A's administrator sees d1's items at A only; the supervisor and d1 see all."""
    submit(client, world.d1, "在霞阳镇时收到的留言。")
    world.d1.station_id = world.station_b.id
    db.session.commit()
    submit(client, world.d1, "调到沔渡镇以后收到的留言。")
    args = {"deputy": str(world.d1.id)}

    def received(username):
        data = app.test_client().get("/api/v1/stats", query_string=args, headers=api_token(app, username))
        return data.status_code, (data.get_json() or {}).get("received")

    assert received(USERNAMES["supervisor"]) == (200, 2)
    assert received(USERNAMES["deputy"]) == (200, 2)
    # d1 now belongs to station B: B's administrator may look, and sees only what is at B.
    assert received(USERNAMES["station_admin_b"]) == (200, 1)
    assert received(USERNAMES["station_admin"]) == (404, None)


def test_the_figure_lists_and_the_export_follow_the_same_rules(app, world):
    client = login(app, USERNAMES["station_admin"])
    assert (
        client.get("/supervision/items", query_string={"figure": "received", "station": world.station_b.id}).status_code
        == 404
    )
    assert (
        client.get(
            "/supervision/export.xlsx", query_string={"month": "2026-03", "station": world.station_b.id}
        ).status_code
        == 404
    )
    assert len(denied_rows()) == 2
    assert client.get("/supervision/items", query_string={"figure": "received"}).status_code == 200
