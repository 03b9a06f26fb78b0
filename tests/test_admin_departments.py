"""Departments of a supervisor's region: list, create, edit, deactivate (no longer offered for forwarding)."""

from __future__ import annotations

import pytest

from backend.extensions import db
from backend.items.lifecycle import perform_action
from backend.models import Department
from tests.admin_support import build_admin_world, post_form
from tests.staff_world import audit_rows, login, make_item


@pytest.fixture
def world(app, create_county, create_station, create_deputy):
    return build_admin_world(create_county, create_station, create_deputy)


@pytest.fixture
def supervisor(app, world):
    return login(app, "sup_county")


def test_list_shows_the_regions_departments_only(supervisor, world):
    html = supervisor.get("/admin/departments").get_data(as_text=True)
    assert world.department.name in html and world.department2.name in html
    assert world.far_department.name not in html


def test_create_in_the_county_or_a_township(supervisor, world):
    response = post_form(
        supervisor,
        "/admin/departments",
        {
            "name": "霞阳镇人民政府",
            "region_id": str(world.township.id),
            "contact_name": "刘芳",
            "contact_phone": "13800001234",
        },
    )
    assert response.status_code == 303
    department = db.session.query(Department).filter_by(name="霞阳镇人民政府").one()
    assert department.region_id == world.township.id and department.is_active
    assert audit_rows("department_created")[-1].object_id == str(department.id)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "", "region_id": "COUNTY"}, "请填写单位名称"),
        ({"name": "茶陵县某局", "region_id": "SIBLING"}, "请选择您所辖的地区"),
        ({"name": "炎陵县住房和城乡建设局", "region_id": "COUNTY"}, "本地区已有名为"),
        ({"name": "新局", "region_id": "COUNTY", "contact_phone": "abc"}, "联系电话格式不正确"),
    ],
)
def test_bad_department_input(supervisor, world, data, message):
    region = {"COUNTY": world.county.id, "SIBLING": world.sibling.id}[data["region_id"]]
    before = db.session.query(Department).count()
    response = post_form(supervisor, "/admin/departments", {**data, "region_id": str(region)})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert message in html
    if data["name"]:
        assert f'value="{data["name"]}"' in html
    assert db.session.query(Department).count() == before


def test_edit_and_deactivate_then_forwarding_refuses_it(supervisor, world):
    response = post_form(
        supervisor,
        f"/admin/departments/{world.department.id}",
        {
            "name": "炎陵县住建局",
            "region_id": str(world.county.id),
            "contact_name": "王志刚",
            "contact_phone": "0731-26200201",
        },
    )
    assert response.status_code == 303
    db.session.expire_all()
    assert db.session.get(Department, world.department.id).name == "炎陵县住建局"

    response = post_form(supervisor, f"/admin/departments/{world.department.id}/active", {"active": "0"})
    assert response.status_code == 303
    db.session.expire_all()
    assert db.session.get(Department, world.department.id).is_active is False
    assert audit_rows("department_deactivated")[-1].object_id == str(world.department.id)

    item = make_item(world.d1)
    admin_user = world.users["station_admin"]
    perform_action(item, admin_user, "accept")
    with pytest.raises(Exception, match="请选择本地区的一个承办单位"):
        perform_action(item, admin_user, "forward", department_id=world.department.id, due="2099-01-01")
    db.session.rollback()

    post_form(supervisor, f"/admin/departments/{world.department.id}/active", {"active": "1"})
    db.session.expire_all()
    assert db.session.get(Department, world.department.id).is_active is True


def test_station_admins_have_no_department_pages(app, world):
    client = login(app, "admin_a")
    assert client.get("/admin/departments").status_code == 404
    assert "承办单位" not in client.get("/admin/").get_data(as_text=True)
