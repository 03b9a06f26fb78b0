"""Issue 11's leftovers: the resident's tracking page shows a department's answers to a forwarded item (department,
answer, time; never who wrote it nor the deputy's instructions), and deactivating a department deactivates its units
with it, so that nothing is forwarded to them any more (directly or by a second hop)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from backend.errors import UserError
from backend.extensions import db
from backend.items.lifecycle import department_answer, department_pass_on, perform_action, sub_units
from backend.models import Department, ItemForward
from backend.stations.calendar import today_in_china
from tests.factories import DepartmentFactory, admin_world, due_in_days, forward, make_item
from tests.helpers import audit_rows, login, post_form

WORLD = admin_world  # the world fixture (tests/conftest.py)

INSTRUCTIONS = "请核实。"  # what tests.factories.forward tells the department: the deputy's, not the resident's


# --- (a) the department's answer on the tracking page --------------------------------------------


def test_the_resident_sees_that_and_when_the_department_answered_never_what(app, client, world):
    """The tracking page says what the notice said (who answered, when), so it no longer reads 已交办 alone after
    部门已答复 arrived; the answer itself is addressed to the deputy, whose 答复 tells the resident what was done."""
    item = make_item(world.d1, body="村口路灯坏了三个月，晚上出行很不方便。")
    fwd, _ = forward(item, world.users["deputy"], world.department)
    page = client.get(f"/t/{item.ref}?k={item.access_key}").text
    assert "炎陵县住房和城乡建设局已向代表答复" not in page  # nothing answered yet

    department_answer(fwd, "已安排人员现场查看。", None, final=False)
    db.session.commit()
    promised = today_in_china() + timedelta(days=7)
    department_answer(fwd, "已更换三盏路灯，线路已检修。", promised, final=True)
    db.session.commit()

    page = client.get(f"/t/{item.ref}?k={item.access_key}").text
    timeline = page[page.index('id="timeline"') : page.index("</ol>", page.index('id="timeline"'))]
    heads = re.findall(r'<p class="event-head"><strong>(.*?)</strong> <time>(.*?)</time>', timeline)
    labels = [label for label, _ in heads]
    assert labels[-2:] == ["炎陵县住房和城乡建设局已向代表报告进展", "炎陵县住房和城乡建设局已向代表答复"]
    assert all(time for _, time in heads[-2:])  # each with its time
    # Never what it answered, its promised date, who wrote it, what the deputy told it, or its contact person.
    for hidden in (
        "已安排人员现场查看。",
        "已更换三盏路灯，线路已检修。",
        promised.isoformat(),
        INSTRUCTIONS,
        "dept_user",
    ):
        assert hidden not in page, hidden
    assert world.department.contact_name not in page
    # The deputy's own page shows the answer, for the reply the deputy writes.
    staff = login(app, "deputy_d1").get(f"/staff/items/{item.ref}").text
    assert "已更换三盏路灯，线路已检修。" in staff


def test_the_mini_program_reads_the_same_steps_in_the_items_timeline(app, client, world):
    """The API the mini-program reads (``GET /api/v1/items/<ref>?key=``) carries the same steps as the tracking page."""
    item = make_item(world.d1)
    fwd, _ = forward(item, world.users["deputy"], world.department)
    department_answer(fwd, "已更换三盏路灯，线路已检修。", None, final=True)
    db.session.commit()
    answer = client.get(f"/api/v1/items/{item.ref}?key={item.access_key}")
    assert answer.status_code == 200
    steps = answer.get_json()["timeline"]
    assert steps[-1]["label"] == "炎陵县住房和城乡建设局已向代表答复"
    assert steps[-1]["body"] == ""  # that it answered and when, never what
    for hidden in ("已更换三盏路灯", INSTRUCTIONS, "dept_user"):
        assert hidden not in answer.text, hidden


def test_the_answer_of_a_revoked_forward_is_not_shown(app, client, world):
    item = make_item(world.d1)
    fwd, _ = forward(item, world.users["deputy"], world.department)
    department_answer(fwd, "报一次进展：正在核实。", None, final=False)
    db.session.commit()
    fwd.revoked_at = fwd.created_at + timedelta(minutes=5)  # the deputy took the link back: a forward sent by mistake
    db.session.commit()
    page = client.get(f"/t/{item.ref}?k={item.access_key}").text
    assert "炎陵县住房和城乡建设局已向代表报告进展" not in page


# --- (b) deactivating a department deactivates its units ------------------------------------------


@pytest.fixture
def units(world):
    """Two units under the county's 住建局 (one already stopped on its own), one under 交通运输局."""
    units = [
        DepartmentFactory(name="霞阳镇城建站", region=world.county, parent_id=world.department.id),
        DepartmentFactory(name="沔渡镇城建站", region=world.county, parent_id=world.department.id, is_active=False),
        DepartmentFactory(name="霞阳镇交管站", region=world.county, parent_id=world.department2.id),
    ]
    db.session.commit()
    return units


def test_deactivating_a_department_deactivates_its_units_and_forwarding_to_them_is_refused(app, world, units):
    active_unit, stopped_unit, other_unit = units
    # A forward already with the unit stays as it was.
    item = make_item(world.d1)
    fwd, _ = forward(item, world.users["deputy"], world.department)
    department_pass_on(fwd, str(active_unit.id), due_in_days(5), "请派人现场核实。")
    db.session.commit()

    supervisor = login(app, "sup_county")
    response = post_form(supervisor, f"/admin/departments/{world.department.id}/active", {"active": "0"})
    assert response.status_code == 303
    page = supervisor.get("/admin/departments").text
    assert "已停用承办单位：炎陵县住房和城乡建设局及其1个下属单位" in page
    db.session.expire_all()
    assert db.session.get(Department, active_unit.id).is_active is False
    assert db.session.get(Department, other_unit.id).is_active is True  # another department's unit is untouched
    assert db.session.get(Department, stopped_unit.id).is_active is False  # stopped before: not in the count
    deactivated = audit_rows("department_deactivated")
    assert [(e.object_id, e.data.get("with_department")) for e in deactivated] == [
        (str(world.department.id), None),
        (str(active_unit.id), world.department.id),
    ]
    assert deactivated[0].data["units"] == [active_unit.id]
    assert db.session.scalar(select(ItemForward).where(ItemForward.department_id == active_unit.id)).is_live

    # A deputy cannot forward to the unit directly, and no department can pass an item on to it.
    fresh = make_item(world.d1)
    deputy = world.users["deputy"]
    perform_action(fresh, deputy, "accept")
    db.session.commit()
    with pytest.raises(UserError, match="请选择本地区的一个承办单位") as refused:
        perform_action(fresh, deputy, "forward", department_id=active_unit.id, due=due_in_days(5))
    assert refused.value.code == "invalid_department_id"
    db.session.rollback()
    assert sub_units(world.department.id) == []
    forwarded_form = login(app, "deputy_d1").get(f"/staff/items/{fresh.ref}").text
    options = forwarded_form[forwarded_form.index('id="forward-department"') :]
    options = options[: options.index("</select>")]
    assert "霞阳镇城建站" not in options and "霞阳镇交管站" in options


def test_a_unit_comes_back_only_after_its_department(app, world, units):
    active_unit, _, _ = units
    supervisor = login(app, "sup_county")
    post_form(supervisor, f"/admin/departments/{world.department.id}/active", {"active": "0"})
    before = len(audit_rows("department_activated"))
    refused = post_form(supervisor, f"/admin/departments/{active_unit.id}/active", {"active": "1"})
    assert refused.status_code == 400
    assert "上级单位“炎陵县住房和城乡建设局”已停用，请先恢复上级单位" in refused.text
    db.session.expire_all()
    assert db.session.get(Department, active_unit.id).is_active is False
    assert len(audit_rows("department_activated")) == before  # nothing written

    # The department comes back alone; then its unit may.
    post_form(supervisor, f"/admin/departments/{world.department.id}/active", {"active": "1"})
    db.session.expire_all()
    assert db.session.get(Department, world.department.id).is_active is True
    assert db.session.get(Department, active_unit.id).is_active is False
    again = post_form(supervisor, f"/admin/departments/{active_unit.id}/active", {"active": "1"})
    assert again.status_code == 303
    db.session.expire_all()
    assert db.session.get(Department, active_unit.id).is_active is True


def test_only_the_regions_supervisors_may_deactivate(app, world, units):
    for username in ("admin_a", "deputy_d1", "dept_user", "sup_sibling"):
        response = post_form(login(app, username), f"/admin/departments/{world.department.id}/active", {"active": "0"})
        assert response.status_code == 404, username
    db.session.expire_all()
    assert db.session.get(Department, world.department.id).is_active is True
    assert db.session.get(Department, units[0].id).is_active is True


def test_the_migration_stops_the_active_units_of_departments_stopped_before(old_database, tmp_path):
    """A department stopped before this change may still have active units: upgrading stops them, no other."""
    import sqlalchemy as sa
    from flask_migrate import upgrade

    from backend import create_app

    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": old_database, "REDIS_URL": None})
    app.instance_path = str(tmp_path / "instance")
    with app.app_context():
        upgrade(revision="b7e2c4a91d05")
        departments = sa.Table("departments", sa.MetaData(), autoload_with=db.session.connection())
        county = db.session.execute(
            sa.text("INSERT INTO regions (code, name, level) VALUES ('430225', '炎陵县', 'county') RETURNING id")
        ).scalar()

        def department(name: str, is_active: bool, parent_id: int | None = None) -> int:
            values = {"name": name, "region_id": county, "contact_name": "", "contact_phone": ""}
            values |= {"is_active": is_active, "parent_id": parent_id}
            return db.session.execute(departments.insert().values(values).returning(departments.c.id)).scalar()

        stopped = department("炎陵县住房和城乡建设局", False)
        open_ = department("炎陵县交通运输局", True)
        units = [department("霞阳镇城建站", True, stopped), department("霞阳镇交管站", True, open_)]
        db.session.commit()
        db.session.remove()

        upgrade()
        active = dict(db.session.execute(sa.select(departments.c.id, departments.c.is_active)).all())
        assert active == {stopped: False, open_: True, units[0]: False, units[1]: True}
        db.session.remove()
        db.engine.dispose()  # this app's pool closes its connections before the database is dropped
