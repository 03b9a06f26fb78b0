"""Issue 13, part 1 (the region tree and its stations): a supervisor keeps them in the browser.

Who: the county supervisor (炎陵县) manages the county and its township; the township supervisor
only the township; the neighbouring county's supervisor neither. Deputies, station
administrators and departments get 404 and an audit row. Bad input tried: a region code of the
wrong length, with letters, full-width digits, outside the parent's prefix, or taken; a name
empty or too long; a parent outside the supervisor's region or at township level; a station in
another county; merging into itself, into another county's station, into a closed one, or a
station already merged; closing a station with serving deputies or open items; reopening an
open or merged station. Each answers 4xx in Chinese and writes nothing.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from backend.extensions import db
from backend.models import AuditEntry, Code, Deputy, Item, ItemStatus, Region, StaffUser, Station
from backend.qr.codes import current_code
from tests.factories import StaffUserFactory, act, admin_world, make_item
from tests.helpers import audit_count, login, post_form

WORLD = admin_world  # the world fixture (tests/conftest.py)


def snapshot() -> tuple:
    """What a refused change must leave as it was."""
    return (
        db.session.scalar(select(func.count(Region.id))),
        tuple(db.session.execute(select(Station.id, Station.name, Station.is_active, Station.merged_into_id)).all()),
        tuple(db.session.execute(select(Deputy.id, Deputy.station_id)).all()),
        tuple(db.session.execute(select(Item.id, Item.station_id)).all()),
        db.session.scalar(select(func.count(Code.id))),
    )


def sup(app, username: str = "sup_county"):
    return login(app, username)


def test_the_supervisor_sees_their_tree_and_nothing_above_or_beside(app, world):
    page = sup(app).get("/admin/regions")
    assert page.status_code == 200
    assert "炎陵县" in page.text and "霞阳镇" in page.text and world.station_t.name in page.text
    assert "茶陵县" not in page.text and world.station_s.name not in page.text
    township = sup(app, "sup_township").get("/admin/regions")
    assert "霞阳镇" in township.text and world.station_a.name not in township.text


def test_a_new_township_and_a_new_station_with_its_code(app, world):
    client = sup(app)
    response = post_form(
        client,
        "/admin/regions",
        {"parent_id": world.county.id, "name": "沔渡镇", "code": "430225101"},
        page="/admin/regions",
    )
    assert response.status_code == 303
    township = db.session.scalar(select(Region).where(Region.code == "430225101"))
    assert township.parent_id == world.county.id and township.level.value == "township"
    response = post_form(
        client,
        "/admin/stations/new",
        {
            "region_id": township.id,
            "name": "沔渡镇沔渡村代表联络点",
            "address": "沔渡镇政府一楼",
            "contact_name": "李娟",
            "contact_phone": "0731-26221234",
            "reception_hours": "上午9:00—11:30",
        },
        page="/admin/regions",
    )
    assert response.status_code == 303
    station = db.session.scalar(select(Station).where(Station.name == "沔渡镇沔渡村代表联络点"))
    assert response.headers["Location"].endswith(f"/admin/stations/{station.id}")
    assert (station.address, station.contact_name, station.reception_hours) == (
        "沔渡镇政府一楼",
        "李娟",
        "上午9:00—11:30",
    )
    code = current_code(station)
    assert code is not None
    form = app.test_client().get(f"/c/{code.slug}")
    assert form.status_code == 200 and "沔渡镇沔渡村代表联络点" in form.text
    assert audit_count("region_created", "station_created") == 2


@pytest.mark.parametrize(
    "data, field",
    [
        ({"name": "某镇", "code": "43022510"}, "code"),
        ({"name": "某镇", "code": "43022510A"}, "code"),
        ({"name": "某镇", "code": "４３０２２５１０１"}, "code"),
        ({"name": "某镇", "code": "430224101"}, "code"),  # 茶陵县's prefix
        ({"name": "某镇", "code": "430225100"}, "code"),  # 霞阳镇 has it
        ({"name": "", "code": "430225109"}, "name"),
        ({"name": "镇" * 101, "code": "430225109"}, "name"),
    ],
)
def test_a_bad_region_is_refused_and_nothing_is_written(app, world, data, field):
    before = snapshot()
    response = post_form(sup(app), "/admin/regions", {"parent_id": world.county.id, **data}, page="/admin/regions")
    assert response.status_code in (400, 409)
    assert 'role="alert"' in response.text
    assert snapshot() == before


@pytest.mark.parametrize("parent", ["sibling", "township_of_sibling", "township", "x", "99999999999"])
def test_a_parent_outside_the_region_or_at_the_bottom_is_refused(app, world, parent):
    ids = {"sibling": world.sibling.id, "township": world.township.id, "x": "x", "99999999999": "99999999999"}
    ids["township_of_sibling"] = world.sibling.id
    client = sup(app, "sup_township" if parent == "township_of_sibling" else "sup_county")
    before = snapshot()
    response = post_form(
        client,
        "/admin/regions",
        {"parent_id": ids[parent], "name": "某村", "code": "430225100001"},
        page="/admin/regions",
    )
    assert response.status_code == 400
    assert snapshot() == before


def test_renaming_keeps_the_code(app, world):
    code = current_code(world.station_a)
    client = sup(app)
    response = post_form(
        client, f"/admin/stations/{world.station_a.id}/name", {"name": "霞阳镇新联络站"}, page="/admin/regions"
    )
    assert response.status_code == 303
    db.session.expire_all()
    assert world.station_a.name == "霞阳镇新联络站" and current_code(world.station_a).slug == code.slug
    response = post_form(
        client, f"/admin/regions/{world.township.id}/name", {"name": "霞阳街道"}, page="/admin/regions"
    )
    assert response.status_code == 303
    db.session.expire_all()
    assert world.township.name == "霞阳街道"
    assert audit_count("station_renamed", "region_renamed") == 2


def test_closing_needs_an_empty_station_and_its_code_then_says_closed(app, world):
    client = sup(app)
    before = snapshot()
    refused = post_form(client, f"/admin/stations/{world.station_t.id}/close", page="/admin/regions")
    assert refused.status_code == 409 and "在任代表" in refused.text
    assert snapshot() == before
    empty = world.station_t
    world.d5.station_id = world.station_a.id
    db.session.commit()
    assert post_form(client, f"/admin/stations/{empty.id}/close", page="/admin/regions").status_code == 303
    db.session.expire_all()
    assert empty.is_active is False
    slug = current_code(empty).slug
    page = app.test_client().get(f"/c/{slug}")
    assert page.status_code == 410 and "已经撤销" in page.text
    api = app.test_client().post("/api/v1/items", json={"code": slug, "body": "路灯坏了三个月，晚上很不方便。"})
    assert api.status_code == 410 and api.json["error"]["code"] == "station_closed"
    assert db.session.scalar(select(func.count(Item.id))) == 0
    again = post_form(client, f"/admin/stations/{empty.id}/close", page="/admin/regions")
    assert again.status_code == 409
    assert post_form(client, f"/admin/stations/{empty.id}/reopen", page="/admin/regions").status_code == 303
    db.session.expire_all()
    assert empty.is_active is True
    assert app.test_client().get(f"/c/{slug}").status_code == 200


def test_a_station_with_open_items_cannot_close(app, world):
    item = make_item(world.d5)
    world.d5.station_id = world.station_a.id
    db.session.commit()
    item.deputy_id = None
    db.session.commit()
    response = post_form(sup(app), f"/admin/stations/{world.station_t.id}/close", page="/admin/regions")
    assert response.status_code == 409 and "未办结的留言" in response.text


def test_merging_moves_deputies_accounts_and_open_items_and_the_old_code_leads_there(app, world):
    source, target = world.station_t, world.station_a
    open_item = make_item(world.d5)
    done_item = make_item(world.d5)
    act(done_item, world.users["sup_township"], "supervise", text="请尽快。")
    done_item.status = ItemStatus.DECLINED
    admin_t = StaffUserFactory(username="admin_t", role=world.users["station_admin"].role, station=source)
    db.session.commit()
    slug = current_code(source).slug
    response = post_form(sup(app), f"/admin/stations/{source.id}/merge", {"into_id": target.id}, page="/admin/regions")
    assert response.status_code == 303
    db.session.expire_all()
    assert source.is_active is False and source.merged_into_id == target.id
    assert world.d5.station_id == target.id
    assert db.session.get(StaffUser, admin_t.id).station_id == target.id
    assert db.session.get(Item, open_item.id).station_id == target.id
    assert db.session.get(Item, done_item.id).station_id == source.id  # the figures of its months stay
    assert source.reception_rules == []
    form = app.test_client().get(f"/c/{slug}")
    assert form.status_code == 200 and target.name in form.text
    submitted = app.test_client().post(
        "/api/v1/items", json={"code": slug, "body": "合并后扫旧码提交的意见，测试用。", "deputy_id": "duty"}
    )
    assert submitted.status_code == 201, submitted.text
    assert (
        db.session.scalar(select(Item).where(Item.ref == submitted.json["ref"].replace("-", ""))).station_id
        == target.id
    )
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "station_merged"))
    assert entry.data["into_id"] == target.id and entry.data["deputies"] == 1 and entry.data["open_items"] == 1
    refused = post_form(sup(app), f"/admin/stations/{source.id}/reopen", page="/admin/regions")
    assert refused.status_code == 409 and "合并" in refused.text


@pytest.mark.parametrize("into", ["self", "far", "closed", "none", "text"])
def test_a_bad_merge_is_refused_and_nothing_moves(app, world, into):
    closed = world.station_b
    closed.is_active = False
    db.session.commit()
    ids = {"self": world.station_t.id, "far": world.station_s.id, "closed": closed.id, "none": "", "text": "abc"}
    before = snapshot()
    response = post_form(
        sup(app), f"/admin/stations/{world.station_t.id}/merge", {"into_id": ids[into]}, page="/admin/regions"
    )
    assert response.status_code == 400
    assert 'role="alert"' in response.text
    assert snapshot() == before


def test_another_countys_station_is_404_and_audited(app, world):
    client = sup(app)
    before = audit_count("admin_access_denied")
    for action in ("name", "close", "reopen", "merge"):
        response = post_form(
            client,
            f"/admin/stations/{world.station_s.id}/{action}",
            {"name": "x", "into_id": world.station_a.id},
            page="/admin/regions",
        )
        assert response.status_code == 404
    assert audit_count("admin_access_denied") == before + 4
    response = post_form(
        client, "/admin/stations/new", {"region_id": world.sibling.id, "name": "越界联络站"}, page="/admin/regions"
    )
    assert response.status_code == 400
    assert db.session.scalar(select(Station).where(Station.name == "越界联络站")) is None


@pytest.mark.parametrize("username", ["deputy_d1", "admin_a", "dept_user"])
def test_other_roles_get_404_and_an_audit_row(app, world, username):
    client = login(app, username)
    before = audit_count("admin_access_denied", "forbidden")
    assert client.get("/admin/regions").status_code == 404
    assert (
        post_form(
            client, "/admin/stations/new", {"region_id": world.county.id, "name": "x"}, page="/staff/"
        ).status_code
        == 404
    )
    assert audit_count("admin_access_denied", "forbidden") == before + 2
    assert db.session.scalar(select(Station).where(Station.name == "x")) is None
