"""Stations: address and contact, the reception calendar (每周X, 每月N日, 逢N) with the next days shown,
the station's code rotation; bad input keeps what was typed and writes nothing."""

from __future__ import annotations

import re
from collections import Counter
from datetime import timedelta

import pytest

from backend.extensions import db
from backend.models import AuditEntry, Code, ReceptionRule, ReceptionRuleKind, Station
from backend.qr.codes import current_code, resolve_slug
from backend.stations.calendar import format_month_day, today_in_china
from tests.factories import admin_world
from tests.helpers import audit_count, audit_rows, csv_bytes, dry_run, login, post_form

WORLD = admin_world  # the world fixture (tests/conftest.py)


@pytest.fixture
def admin(app, world):
    return login(app, "admin_a")


def station(world) -> Station:
    db.session.expire_all()
    return db.session.get(Station, world.station_a.id)


def test_station_page_shows_calendar_deputies_posters_and_code(admin, world):
    page = admin.get(f"/admin/stations/{world.station_a.id}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert world.station_a.name in html
    assert world.d1.name in html and world.d2.name in html
    assert f"/posters/station/{world.station_a.id}.pdf" in html
    assert f"/posters/station/{world.station_a.id}/cards.pdf" in html
    assert current_code(world.station_a).slug in html
    assert "还没有设定接待日" in html
    assert page.headers["Cache-Control"] == "no-store"
    assert "<script>" not in html and "style=" not in html  # CSP: no inline script or style


def test_edit_address_and_contact(admin, world):
    response = post_form(
        admin,
        f"/admin/stations/{world.station_a.id}",
        {"address": "  霞阳镇炎帝大道8号 ", "contact_name": "彭丽", "contact_phone": "0731 26200101"},
    )
    assert response.status_code == 303
    s = station(world)
    assert (s.address, s.contact_name, s.contact_phone) == ("霞阳镇炎帝大道8号", "彭丽", "0731-26200101")
    row = audit_rows("station_updated")[-1]
    assert row.data["after"]["contact_phone"] == "0731-26200101"
    assert "已保存联络站信息" in admin.get(response.headers["Location"]).get_data(as_text=True)


@pytest.mark.parametrize(
    ("phone", "stored"),
    [("13812345678", "13812345678"), ("+86 138 1234 5678", "13812345678"), ("(0731)26200101", "0731-26200101")],
)
def test_phone_forms_accepted(admin, world, phone, stored):
    post_form(admin, f"/admin/stations/{world.station_a.id}", {"address": "x", "contact_phone": phone})
    assert station(world).contact_phone == stored


def test_bad_phone_keeps_input_and_writes_nothing(admin, world):
    audits = audit_count("station_updated")
    response = post_form(
        admin, f"/admin/stations/{world.station_a.id}", {"address": "新地址123", "contact_phone": "12345"}
    )
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "联系电话格式不正确" in html
    assert 'value="新地址123"' in html and 'value="12345"' in html
    assert 'aria-invalid="true"' in html
    assert station(world).address == "霞阳镇炎帝大道1号"
    assert audit_count("station_updated") == audits


def test_reception_hours_are_kept_and_a_form_without_them_leaves_them(admin, world):
    response = post_form(
        admin,
        f"/admin/stations/{world.station_a.id}",
        {"address": "霞阳镇炎帝大道1号", "reception_hours": "  上午9:00—11:30\n 下午2:30—5:00 "},
    )
    assert response.status_code == 303
    assert station(world).reception_hours == "上午9:00—11:30 下午2:30—5:00"  # one line, as printed
    assert audit_rows("station_updated")[-1].data["after"]["reception_hours"] == "上午9:00—11:30 下午2:30—5:00"
    page = admin.get(f"/admin/stations/{world.station_a.id}").get_data(as_text=True)
    assert 'value="上午9:00—11:30 下午2:30—5:00"' in page and "接待时间（可不填）" in page
    post_form(admin, f"/admin/stations/{world.station_a.id}", {"address": "霞阳镇炎帝大道2号"})
    assert (station(world).address, station(world).reception_hours) == (
        "霞阳镇炎帝大道2号",
        "上午9:00—11:30 下午2:30—5:00",
    )


@pytest.mark.parametrize(
    ("hours", "message"),
    [("时" * 51, "接待时间最多50个字"), ("上午\u202e9:00", "接待时间"), ("上午\x079:00", "无法识别的字符")],
)
def test_bad_reception_hours_are_refused_and_nothing_is_written(admin, world, hours, message):
    audits = audit_count("station_updated")
    data = {"address": "新地址", "reception_hours": hours}
    response = post_form(admin, f"/admin/stations/{world.station_a.id}", data)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert (station(world).address, station(world).reception_hours) == ("霞阳镇炎帝大道1号", "")
    assert audit_count("station_updated") == audits


def test_too_long_address_is_a_message_not_a_500(admin, world):
    response = post_form(admin, f"/admin/stations/{world.station_a.id}", {"address": "路" * 201})
    assert response.status_code == 400
    assert "地址最多200个字" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("data", "description"),
    [
        ({"kind": "weekly", "day_weekly": "3"}, "每周三"),
        ({"kind": "monthly", "day_monthly": "20"}, "每月20日"),
        ({"kind": "xun", "day_xun": "6"}, "逢六（每月6日、16日、26日）"),
        ({"kind": "xun", "day_xun": "0"}, "逢十（每月10日、20日、30日）"),
    ],
)
def test_add_each_kind_of_reception_day_with_a_duty_deputy(admin, world, data, description):
    response = post_form(
        admin, f"/admin/stations/{world.station_a.id}/rules", {**data, "deputy_id": str(world.d2.id), "note": "活动日"}
    )
    assert response.status_code == 303
    rules = station(world).reception_rules
    assert len(rules) == 1 and rules[0].deputy_id == world.d2.id and rules[0].note == "活动日"
    html = admin.get(f"/admin/stations/{world.station_a.id}").get_data(as_text=True)
    assert description in html
    assert f"已添加接待日：{description}，值班代表{world.d2.name}。" in html
    audit = audit_rows("reception_rule_added")[-1]
    assert audit.data["rule"] == description and audit.data["deputy_id"] == world.d2.id


def test_next_reception_days_are_shown(admin, world):
    today = today_in_china()
    post_form(
        admin, f"/admin/stations/{world.station_a.id}/rules", {"kind": "weekly", "day_weekly": str(today.isoweekday())}
    )
    html = admin.get(f"/admin/stations/{world.station_a.id}").get_data(as_text=True)
    for offset in (0, 7, 14):
        assert format_month_day(today + timedelta(days=offset)) in html


@pytest.mark.parametrize(
    ("data", "message", "field"),
    [
        ({"kind": "daily", "day_weekly": "3"}, "请选择接待日的类型", "kind"),
        ({"kind": "weekly", "day_weekly": "8"}, "请选择星期几", "day_weekly"),
        ({"kind": "monthly", "day_monthly": "32"}, "请选择每月的哪一天", "day_monthly"),
        ({"kind": "monthly"}, "请选择每月的哪一天", "day_monthly"),
        ({"kind": "xun", "day_xun": "十"}, "请选择逢几", "day_xun"),
        ({"kind": "weekly", "day_weekly": "3", "deputy_id": "FOREIGN"}, "请从本站在任代表中选择值班代表", "deputy_id"),
        (
            {"kind": "weekly", "day_weekly": "3", "deputy_id": "99999999999"},
            "请从本站在任代表中选择值班代表",
            "deputy_id",
        ),
    ],
)
def test_bad_reception_days_are_refused(admin, world, data, message, field):
    if data.get("deputy_id") == "FOREIGN":
        data = {**data, "deputy_id": str(world.d3.id)}  # a deputy of another station
    response = post_form(admin, f"/admin/stations/{world.station_a.id}/rules", data)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert message in html
    assert f'id="rule-{field}-error"' in html
    assert station(world).reception_rules == []


def test_the_same_rule_twice_is_refused(admin, world):
    data = {"kind": "monthly", "day_monthly": "20"}
    assert post_form(admin, f"/admin/stations/{world.station_a.id}/rules", data).status_code == 303
    response = post_form(admin, f"/admin/stations/{world.station_a.id}/rules", data)
    assert response.status_code == 400
    assert "已有相同的接待日安排：每月20日" in response.get_data(as_text=True)
    assert len(station(world).reception_rules) == 1


def test_remove_a_rule_and_not_another_stations(admin, world):
    rule = ReceptionRule(kind=ReceptionRuleKind.WEEKLY, day=3)
    foreign = ReceptionRule(kind=ReceptionRuleKind.WEEKLY, day=5)
    world.station_a.reception_rules.append(rule)
    world.station_b.reception_rules.append(foreign)
    db.session.commit()
    response = post_form(admin, f"/admin/stations/{world.station_a.id}/rules/{foreign.id}/delete")
    assert response.status_code == 404
    response = post_form(admin, f"/admin/stations/{world.station_a.id}/rules/{rule.id}/delete")
    assert response.status_code == 303
    assert station(world).reception_rules == []
    assert db.session.get(ReceptionRule, foreign.id) is not None
    assert audit_rows("reception_rule_removed")[-1].data["rule"] == "每周三"


def test_rotate_the_station_code(admin, world):
    old = current_code(world.station_a).slug
    response = post_form(admin, f"/admin/stations/{world.station_a.id}/code", {"reason": ""})
    assert response.status_code == 400
    assert "请填写更换原因" in response.get_data(as_text=True)
    assert current_code(station(world)).slug == old

    response = post_form(admin, f"/admin/stations/{world.station_a.id}/code", {"reason": "站外海报被涂改"})
    assert response.status_code == 303
    html = admin.get(response.headers["Location"]).get_data(as_text=True)
    assert "旧二维码将显示已更换，不能再留言；请重新打印海报" in html
    new = current_code(station(world)).slug
    assert new != old and new in html
    retired = db.session.query(Code).filter_by(slug=old).one()
    assert retired.retired_reason == "站外海报被涂改"
    assert resolve_slug(old).is_retired
    row = db.session.query(AuditEntry).filter_by(action="code_rotated").one()
    assert row.data["reason"] == "站外海报被涂改" and row.object_type == "station"


def test_csrf_is_required(admin, world):
    response = admin.post(f"/admin/stations/{world.station_a.id}", data={"address": "无令牌"})
    assert response.status_code == 400
    assert station(world).address != "无令牌"


def test_admin_pages_have_unique_ids_and_no_inline_code(app, world):
    supervisor = login(app, "sup_county")
    pages = [
        "/admin/",
        f"/admin/stations/{world.station_a.id}",
        f"/admin/stations/{world.station_a.id}/deputies/new",
        f"/admin/deputies/{world.d1.id}",
        "/admin/departments",
        f"/admin/departments/{world.department.id}",
        "/admin/import",
    ]
    htmls = [supervisor.get(path).get_data(as_text=True) for path in pages]
    rows = [["姓名", "代表层级", "选区", "联络站", "联系电话"], ["王建华", "乡镇", "某选区", world.station_a.name, ""]]
    htmls.append(dry_run(supervisor, csv_bytes(rows)).get_data(as_text=True))
    for path, html in zip([*pages, "dry run"], htmls, strict=True):
        ids = Counter(re.findall(r'\sid="([^"]+)"', html))
        assert [i for i, n in ids.items() if n > 1] == [], path
        assert "<script>" not in html and " style=" not in html and " onclick=" not in html, path
