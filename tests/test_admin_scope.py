"""Scoped access to every administration page, POST and poster: the wrong station, a sibling county,
a deputy, a department, nobody logged in. Out of scope answers like unknown (404) and is audited."""

from __future__ import annotations

import pytest
from flask import g

from backend import access
from backend.extensions import db
from backend.models import (
    Department,
    Deputy,
    PosterBatch,
    PosterBatchKind,
    ReceptionRule,
    ReceptionRuleKind,
    Station,
)
from backend.qr.codes import current_code
from tests.factories import admin_world
from tests.helpers import audit_count, fresh_token, login, post_form

DENIED = ("admin_access_denied", "forbidden")


@pytest.fixture
def world(app):
    world = admin_world()
    rule = ReceptionRule(kind=ReceptionRuleKind.WEEKLY, day=3, deputy=world.d1)
    world.station_a.reception_rules.append(rule)
    batch = PosterBatch(
        requested_by=world.users["station_admin"], kind=PosterBatchKind.STATION, station=world.station_a, pages_total=3
    )
    db.session.add(batch)
    db.session.commit()
    world.rule = rule
    world.batch = batch
    return world


def targets(world) -> list[tuple[str, str, dict]]:
    """Every page and POST about station A, its deputy d1, or the county's department."""
    a, d1, dept, batch = world.station_a.id, world.d1.id, world.department.id, world.batch.id
    return [
        ("GET", f"/admin/stations/{a}", {}),
        ("POST", f"/admin/stations/{a}", {"address": "被改的地址", "contact_name": "", "contact_phone": ""}),
        ("POST", f"/admin/stations/{a}/rules", {"kind": "monthly", "day_monthly": "20"}),
        ("POST", f"/admin/stations/{a}/rules/{world.rule.id}/delete", {}),
        ("POST", f"/admin/stations/{a}/code", {"reason": "被涂改"}),
        ("GET", f"/admin/stations/{a}/deputies/new", {}),
        ("POST", f"/admin/stations/{a}/deputies/new", {"name": "闯入者", "level": "county", "constituency": "某选区"}),
        ("GET", f"/admin/deputies/{d1}", {}),
        ("POST", f"/admin/deputies/{d1}", {"name": "改名", "level": "county", "constituency": "某选区"}),
        ("POST", f"/admin/deputies/{d1}/photo", {}),
        ("POST", f"/admin/deputies/{d1}/station", {"station_id": str(world.station_b.id)}),
        ("POST", f"/admin/deputies/{d1}/status", {"status": "resigned", "reason": "测试"}),
        ("POST", f"/admin/deputies/{d1}/code", {"reason": "被涂改"}),
        ("GET", f"/admin/departments/{dept}", {}),
        ("POST", f"/admin/departments/{dept}", {"name": "改名局", "region_id": str(world.county.id)}),
        ("POST", f"/admin/departments/{dept}/active", {"active": "0"}),
        ("GET", f"/posters/deputy/{d1}.pdf", {}),
        ("GET", f"/posters/deputy/{d1}.png", {}),
        ("GET", f"/posters/station/{a}.pdf", {}),
        ("GET", f"/posters/station/{a}/cards.pdf", {}),
        ("GET", "/posters/region/430225.pdf", {}),
        ("POST", "/admin/poster-batches", {"kind": "station", "station_id": str(a)}),
        ("POST", "/admin/poster-batches", {"kind": "cards", "station_id": str(a)}),
        ("POST", "/admin/poster-batches", {"kind": "region", "region": "430225"}),
        ("GET", f"/admin/poster-batches/new?kind=station&station_id={a}", {}),
        ("GET", f"/admin/poster-batches/{batch}", {}),
        ("GET", f"/admin/poster-batches/{batch}/status", {}),
        ("GET", f"/admin/poster-batches/{batch}.pdf", {}),
    ]


def snapshot(world) -> tuple:
    """What the attempts above would change, read afresh."""
    db.session.expire_all()
    station = db.session.get(Station, world.station_a.id)
    deputy = db.session.get(Deputy, world.d1.id)
    department = db.session.get(Department, world.department.id)
    return (
        station.address,
        len(station.reception_rules),
        current_code(station).slug,
        deputy.name,
        deputy.status,
        deputy.station_id,
        current_code(deputy).slug,
        department.name,
        department.is_active,
        db.session.query(Deputy).count(),
        db.session.query(PosterBatch).count(),
    )


INTRUDERS = ["station_admin_b", "sup_sibling", "deputy2", "department", "sup_township"]


@pytest.mark.parametrize("intruder", INTRUDERS)
def test_every_page_and_post_out_of_scope_is_404_and_audited(app, world, intruder):
    client = login(app, world.users[intruder].username)
    before = snapshot(world)
    for method, path, data in targets(world):
        if intruder == "sup_township" and "/departments/" not in path and "/region/" not in path:
            continue  # a township supervisor does not reach the county's station A (checked below) …
        audits = audit_count(*DENIED)
        if method == "GET":
            response = client.get(path)
        else:
            response = post_form(client, path, data)
        assert response.status_code == 404, (intruder, method, path, response.status_code)
        assert "找不到" in response.get_data(as_text=True)
        assert audit_count(*DENIED) == audits + 1, (intruder, method, path)
    assert snapshot(world) == before


def test_a_township_supervisor_manages_the_township_only(app, world):
    client = login(app, "sup_township")
    assert client.get(f"/admin/stations/{world.station_t.id}").status_code == 200
    for path in (f"/admin/stations/{world.station_a.id}", f"/admin/deputies/{world.d1.id}"):
        audits = audit_count("admin_access_denied")
        assert client.get(path).status_code == 404
        assert audit_count("admin_access_denied") == audits + 1


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_logged_out_goes_to_login_and_nothing_is_written(app, world, method):
    client = app.test_client()
    before = snapshot(world)
    for verb, path, data in targets(world):
        if verb != method:
            continue
        if method == "GET":
            response = client.get(path)
        else:
            g.pop("csrf_token", None)
            _, token = fresh_token(client, "/staff/login")
            response = client.post(path, data={"csrf_token": token, **data})
        assert response.status_code == 303, (path, response.status_code)
        assert "/staff/login" in response.headers["Location"]
    assert snapshot(world) == before


@pytest.mark.parametrize("intruder", ["deputy", "department"])
@pytest.mark.parametrize("path", ["/admin/", "/admin/import", "/admin/departments", "/admin/import/example.csv"])
def test_roles_without_administration_get_404_and_an_audit_row(app, world, intruder, path):
    client = login(app, world.users[intruder].username)
    audits = audit_count(*DENIED)
    assert client.get(path).status_code == 404
    assert audit_count(*DENIED) == audits + 1


def test_posts_to_lists_from_other_roles_are_refused(app, world):
    for intruder in ("deputy", "department", "station_admin"):
        client = login(app, world.users[intruder].username)
        audits = audit_count(*DENIED)
        response = post_form(client, "/admin/departments", {"name": "不该出现的局", "region_id": str(world.county.id)})
        assert response.status_code == 404
        assert audit_count(*DENIED) == audits + 1
        response = post_form(client, "/admin/import/confirm", {"upload_id": "x" * 24, "sha256": "0" * 64})
        if intruder == "station_admin":
            assert response.status_code == 400  # their own page; an unknown upload is simply expired
        else:
            assert response.status_code == 404
    assert db.session.query(Department).filter_by(name="不该出现的局").count() == 0


def test_a_station_admin_lists_only_their_station(app, world):
    client = login(app, "admin_b")
    page = client.get("/admin/").get_data(as_text=True)
    assert world.station_b.name in page
    assert world.station_a.name not in page
    assert "承办单位" not in page  # departments are for supervisors


def test_a_supervisor_lists_every_station_of_the_county_and_below(app, world):
    client = login(app, "sup_county")
    page = client.get("/admin/").get_data(as_text=True)
    for station in (world.station_a, world.station_b, world.station_t):
        assert station.name in page
    for station in (world.station_c, world.station_s):
        assert station.name not in page


def test_scope_functions_agree(app, world):
    users = world.users
    expect = {
        "station_admin": {world.station_a.id},
        "station_admin_b": {world.station_b.id},
        "supervisor": {world.station_a.id, world.station_b.id, world.station_t.id},
        "sup_township": {world.station_t.id},
        "sup_sibling": {world.station_s.id},
        "deputy": set(),
        "department": set(),
    }
    every = db.session.query(Station).all()
    for key, ids in expect.items():
        user = users[key]
        assert {s.id for s in db.session.scalars(access.manageable_stations_query(user))} == ids, key
        assert {s.id for s in every if access.can_manage_station(user, s)} == ids, key
    users["station_admin"].is_active = False
    assert access.can_manage_station(users["station_admin"], world.station_a) is False
    assert list(db.session.scalars(access.manageable_stations_query(users["station_admin"]))) == []
    assert access.can_manage_station(None, world.station_a) is False


def test_unknown_ids_are_404_without_an_audit_row(app, world):
    client = login(app, "admin_a")
    audits = audit_count(*DENIED)
    for path in ("/admin/stations/999999", "/admin/deputies/999999", "/admin/stations/2147483648", "/admin/deputies/x"):
        assert client.get(path).status_code == 404
    assert audit_count(*DENIED) == audits
