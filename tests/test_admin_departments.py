"""Departments of a supervisor's region: list, create, edit, deactivate (no longer offered for forwarding)."""

from __future__ import annotations

import re

import pytest

from backend.extensions import db
from backend.items.lifecycle import department_pass_on, perform_action, sub_units
from backend.models import Department
from tests.factories import admin_world, due_in_days, forward, make_item
from tests.helpers import audit_rows, login, post_form

WORLD = admin_world  # the world fixture (tests/conftest.py)


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


# --- units (下属单位): where a department passes an item on to (the second hop) -------------------------


def add(client, **fields):
    """Post the add form (name, parent_id, region_id …) as the page sends it."""
    return post_form(client, "/admin/departments", {key: str(value) for key, value in fields.items()})


def edit(client, department, **fields):
    """Post a department's edit form with its current values, changed by ``fields``."""
    values = {
        "name": department.name,
        "region_id": department.region_id,
        "parent_id": department.parent_id or "",
        "contact_name": department.contact_name,
        "contact_phone": department.contact_phone,
        **fields,
    }
    return post_form(client, f"/admin/departments/{department.id}", {k: str(v) for k, v in values.items()})


def named(name: str) -> Department:
    return db.session.query(Department).filter_by(name=name).one()


def test_a_unit_under_a_department_is_listed_beneath_it_and_takes_the_second_hop(supervisor, world):
    # The row's link opens the form with the department chosen as the parent.
    html = supervisor.get(f"/admin/departments?parent_id={world.department.id}").get_data(as_text=True)
    assert f'<option value="{world.department.id}" selected>' in html
    response = add(
        supervisor,
        name="霞阳镇城建站",
        parent_id=world.department.id,
        region_id=world.township.id,
        contact_name="李明",
        contact_phone="13800002222",
    )
    assert response.status_code == 303
    unit = named("霞阳镇城建站")
    assert unit.parent_id == world.department.id and unit.region_id == world.township.id and unit.is_active
    assert audit_rows("department_created")[-1].data["parent_id"] == world.department.id
    # Without a region chosen, a unit lies in its department's region.
    assert add(supervisor, name="县城建监察大队", parent_id=world.department.id).status_code == 303
    assert named("县城建监察大队").region_id == world.department.region_id

    # Nested: the department's row, then its units, each marked; the units are not offered as parents.
    html = supervisor.get("/admin/departments").get_data(as_text=True)
    table = html[html.index('id="department-list"') : html.index('id="department-form"')]
    rows = re.findall(r'<tr class="([^"]*)" id="department-(\d+)"', table)
    ids = [int(i) for _, i in rows]
    at = ids.index(world.department.id)
    assert set(ids[at + 1 : at + 3]) == {unit.id, named("县城建监察大队").id}  # right beneath it
    assert dict((int(i), c) for c, i in rows)[unit.id] == "unit-row"
    assert dict((int(i), c) for c, i in rows)[world.department.id] == ""
    form = html[html.index('id="department-form"') :]
    assert f'<option value="{world.department.id}"' in form and f'<option value="{unit.id}"' not in form
    # The department's own page lists its units.
    page = supervisor.get(f"/admin/departments/{world.department.id}").get_data(as_text=True)
    assert "下属单位" in page and "霞阳镇城建站" in page

    # The chain offers it: the department, forwarded an item, passes it on to the unit made here.
    assert unit.id in [u.id for u in sub_units(world.department.id)]
    fwd, _ = forward(make_item(world.d1), world.users["deputy"], world.department)
    hop = department_pass_on(fwd, str(unit.id), due_in_days(5), "请派人现场核实。")
    db.session.commit()
    assert hop.department_id == unit.id and hop.parent_forward_id == fwd.id


def test_rename_and_deactivate_a_unit(supervisor, world):
    add(supervisor, name="城建站", parent_id=world.department.id)
    unit = named("城建站")
    assert edit(supervisor, unit, name="霞阳镇城建站").status_code == 303
    db.session.expire_all()
    unit = db.session.get(Department, unit.id)
    assert unit.name == "霞阳镇城建站" and unit.parent_id == world.department.id
    assert post_form(supervisor, f"/admin/departments/{unit.id}/active", {"active": "0"}).status_code == 303
    db.session.expire_all()
    assert db.session.get(Department, unit.id).is_active is False
    assert unit.id not in [u.id for u in sub_units(world.department.id)]  # no longer offered for a second hop
    html = supervisor.get("/admin/departments").get_data(as_text=True)
    assert re.search(rf'<tr class="unit-row inactive" id="department-{unit.id}"', html)
    # A department may stop being one's unit, and another unit under another department is allowed the same name.
    assert edit(supervisor, db.session.get(Department, unit.id), parent_id="").status_code == 303
    db.session.expire_all()
    assert db.session.get(Department, unit.id).parent_id is None
    assert add(supervisor, name="霞阳镇城建站", parent_id=world.department2.id).status_code == 303


def refused(client, response, message: str) -> str:
    """The form came back with ``message`` (400); the page's HTML."""
    assert response.status_code == 400, response.status_code
    html = response.get_data(as_text=True)
    assert message in html, html
    return html


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": "", "parent_id": "DEPT"}, "请填写单位名称"),
        ({"name": "站" * 101, "parent_id": "DEPT"}, "单位名称"),
        ({"name": "城建站", "parent_id": "FAR"}, "请选择您所辖地区的一个承办单位作为上级单位"),  # another region's
        ({"name": "城建站", "parent_id": "999999"}, "请选择您所辖地区的一个承办单位作为上级单位"),
        ({"name": "城建站", "parent_id": "abc"}, "请选择您所辖地区的一个承办单位作为上级单位"),
        ({"name": "城建站", "parent_id": "UNIT"}, "下属单位下不能再设单位"),  # deeper than the second hop
        ({"name": "城关站", "parent_id": "DEPT"}, "下已有名为“城关站”的下属单位"),  # the same name under one parent
        ({"name": "城建站", "parent_id": "DEPT", "region_id": "SIBLING"}, "请选择您所辖的地区"),
        ({"name": "城建站", "parent_id": "DEPT2_TOWN", "region_id": "COUNTY"}, "或其下级地区"),  # above its parent
    ],
)
def test_bad_units_are_refused_and_nothing_is_written(supervisor, world, fields, message):
    add(supervisor, name="城关站", parent_id=world.department.id)
    town_department = Department(name="霞阳镇人民政府", region=world.township)
    db.session.add(town_department)
    db.session.commit()
    ids = {
        "DEPT": world.department.id,
        "FAR": world.far_department.id,
        "UNIT": named("城关站").id,
        "DEPT2_TOWN": town_department.id,
        "COUNTY": world.county.id,
        "SIBLING": world.sibling.id,
    }
    data = {key: ids.get(value, value) for key, value in fields.items()}
    before = db.session.query(Department).count()
    html = refused(supervisor, add(supervisor, **data), message)
    if fields["name"] and len(fields["name"]) <= 100:
        assert f'value="{fields["name"]}"' in html  # what was typed is kept
    assert db.session.query(Department).count() == before


def test_no_cycles_and_a_department_with_units_stays_a_department(supervisor, world):
    add(supervisor, name="城关站", parent_id=world.department.id)
    unit = named("城关站")
    cases = [
        (world.department, {"parent_id": world.department.id}, "不能把单位设为它自己或它的下属单位的下属单位"),
        (world.department, {"parent_id": unit.id}, "不能把单位设为它自己或它的下属单位的下属单位"),  # its own unit
        (unit, {"parent_id": unit.id}, "不能把单位设为它自己"),
        (world.department2, {"parent_id": unit.id}, "下属单位下不能再设单位"),
    ]
    for department, fields, message in cases:
        before = (department.name, department.parent_id)
        refused(supervisor, edit(supervisor, department, **fields), message)
        db.session.expire_all()
        department = db.session.get(Department, department.id)
        assert (department.name, department.parent_id) == before
    # A department that has units cannot become a unit of another.
    refused(
        supervisor,
        edit(supervisor, db.session.get(Department, world.department.id), parent_id=world.department2.id),
        "有自己的下属单位，不能再设为其他单位的下属单位",
    )
    db.session.expire_all()
    assert db.session.get(Department, world.department.id).parent_id is None


def test_a_township_supervisor_sees_its_units_but_not_the_county_bureau_above(app, supervisor, world):
    add(supervisor, name="霞阳镇城建站", parent_id=world.department.id, region_id=world.township.id)
    township = login(app, "sup_township")
    html = township.get("/admin/departments").get_data(as_text=True)
    table = html[html.index('id="department-list"') : html.index('id="department-form"')]
    assert "霞阳镇城建站" in table and world.department.name not in table
    # Nor may it put a unit under the county's bureau, which is not in its region.
    before = db.session.query(Department).count()
    response = add(township, name="另一站", parent_id=world.department.id, region_id=world.township.id)
    refused(township, response, "请选择您所辖地区的一个承办单位作为上级单位")
    assert db.session.query(Department).count() == before


@pytest.mark.parametrize("username", ["admin_a", "deputy_d1", "dept_user", "sup_far"])
def test_only_the_regions_supervisor_adds_or_edits_units(app, world, username):
    client = login(app, username)
    before = db.session.query(Department).count()
    response = post_form(client, "/admin/departments", {"name": "城建站", "parent_id": str(world.department.id)})
    if username == "sup_far":
        # Another county's supervisor: the parent is not in their region.
        refused(client, response, "请选择您所辖地区的一个承办单位作为上级单位")
        assert client.get(f"/admin/departments/{world.department.id}").status_code == 404
    else:
        assert response.status_code == 404  # station admins, deputies, departments: no such page
    edited = post_form(client, f"/admin/departments/{world.department.id}", {"name": "改名", "parent_id": ""})
    assert edited.status_code == 404
    db.session.expire_all()
    assert db.session.query(Department).count() == before
    assert db.session.get(Department, world.department.id).name == "炎陵县住房和城乡建设局"
