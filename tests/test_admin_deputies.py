"""Deputies: create, edit (levels with their constituencies, term), photo, assignment to another station,
status changes that hand open items over through the lifecycle, code rotation."""

from __future__ import annotations

import io
import os

import pytest
from PIL import Image
from sqlalchemy import select

from backend.extensions import db
from backend.items.photo_store import read_deputy_photo
from backend.models import (
    CongressLevel,
    Deputy,
    DeputyStatus,
    Item,
    ItemEvent,
    ItemEventKind,
    ReceptionRule,
    ReceptionRuleKind,
    StaffUser,
)
from backend.qr.codes import current_code, resolve_slug
from tests.factories import act, admin_world, forward, make_item
from tests.helpers import audit_count, audit_rows, jpeg_bytes, login, post_form

WORLD = admin_world  # the world fixture (tests/conftest.py)


@pytest.fixture
def admin(app, world):
    return login(app, "admin_a")


def fresh(deputy_id: int) -> Deputy:
    db.session.expire_all()
    return db.session.get(Deputy, deputy_id)


NEW_DEPUTY = {
    "name": "欧阳秀兰",
    "constituency": "霞阳镇第四选区",
    "level": ["county", "township"],
    "constituency_township": "霞阳镇城东社区选区",
    "occupation": "炎陵县第一中学教师",
    "phone": "0731-26200111",
    "term_start": "2021-12-01",
    "term_end": "2026-11-30",
}


def test_create_a_deputy_with_levels_and_a_code(admin, world):
    response = post_form(admin, f"/admin/stations/{world.station_a.id}/deputies/new", NEW_DEPUTY)
    assert response.status_code == 303
    deputy = db.session.scalar(select(Deputy).where(Deputy.name == "欧阳秀兰"))
    assert deputy.station_id == world.station_a.id and deputy.is_serving
    assert {lv.level: lv.constituency for lv in deputy.levels} == {
        CongressLevel.COUNTY: "霞阳镇第四选区",
        CongressLevel.TOWNSHIP: "霞阳镇城东社区选区",
    }
    assert deputy.phone == "0731-26200111" and deputy.term_end.isoformat() == "2026-11-30"
    code = current_code(deputy)
    assert code is not None and resolve_slug(code.slug).deputy.id == deputy.id
    html = admin.get(response.headers["Location"]).get_data(as_text=True)
    assert "已添加代表欧阳秀兰，并生成了代表码" in html and code.slug in html
    assert audit_rows("deputy_created")[-1].data["after"]["name"] == "欧阳秀兰"


@pytest.mark.parametrize(
    ("change", "message", "field"),
    [
        ({"name": ""}, "请填写姓名", "name"),
        ({"level": []}, "请至少选择一个代表层级", "level"),
        ({"phone": "1381234567"}, "联系电话格式不正确", "phone"),
        ({"term_end": "2020-01-01"}, "任期结束日期不能早于开始日期", "term_end"),
        ({"term_start": "2021-13-01"}, "任期开始日期格式不正确", "term_start"),
        ({"name": "名" * 51}, "姓名最多50个字", "name"),
        ({"name": "张秀英"}, "已有在任代表张秀英", "name"),
    ],
)
def test_bad_deputy_input_keeps_what_was_typed(admin, world, change, message, field):
    before = db.session.query(Deputy).count()
    response = post_form(admin, f"/admin/stations/{world.station_a.id}/deputies/new", {**NEW_DEPUTY, **change})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert message in html
    assert f'id="deputy-{field}-error"' in html
    assert 'value="炎陵县第一中学教师"' in html  # the rest is kept
    assert db.session.query(Deputy).count() == before


def test_edit_a_deputy(admin, world):
    data = {
        "name": "张秀英",
        "constituency": "霞阳镇第三选区",
        "level": ["county", "national"],
        "constituency_national": "湖南省",
        "occupation": "校长",
        "phone": "13900001111",
    }
    response = post_form(admin, f"/admin/deputies/{world.d1.id}", data)
    assert response.status_code == 303
    deputy = fresh(world.d1.id)
    assert deputy.level_labels == ["全国人大代表", "县人大代表"]
    assert deputy.occupation == "校长" and deputy.term_start is None
    row = audit_rows("deputy_updated")[-1]
    assert set(row.data["after"]) >= {"levels", "occupation", "phone"}
    # Saving again unchanged writes no audit row.
    audits = audit_count("deputy_updated")
    post_form(admin, f"/admin/deputies/{world.d1.id}", data)
    assert audit_count("deputy_updated") == audits


def upload_photo(admin, deputy_id: int, data: bytes | None, filename: str = "photo.jpg"):
    """POST a portrait (``data`` as ``filename``; no file at all when None) to a deputy's photo form."""
    files = {} if data is None else {"photo": (io.BytesIO(data), filename)}
    return post_form(admin, f"/admin/deputies/{deputy_id}/photo", files, content_type="multipart/form-data")


def test_upload_a_photo_bumps_the_version(admin, world):
    big = io.BytesIO()
    Image.new("RGB", (3000, 4000), (10, 120, 200)).save(big, "PNG")
    response = upload_photo(admin, world.d1.id, big.getvalue(), "portrait.png")
    assert response.status_code == 303
    deputy = fresh(world.d1.id)
    assert deputy.photo_version == 1
    stored = Image.open(io.BytesIO(read_deputy_photo(deputy)))
    assert stored.format == "JPEG" and max(stored.size) <= 2048
    page = admin.get(f"/admin/deputies/{world.d1.id}").get_data(as_text=True)
    assert f"/deputies/{world.d1.id}/photo/1.jpg" in page or "deputy-photo" in page
    upload_photo(admin, world.d1.id, jpeg_bytes(), "again.jpg")
    assert fresh(world.d1.id).photo_version == 2
    assert audit_rows("deputy_photo_updated")[-1].data["photo_version"] == 2


@pytest.mark.parametrize(
    ("payload", "message"),
    [(b"<html>not a photo</html>", "只能上传 JPG 或 PNG"), (None, "请选择一张照片")],
)
def test_a_bad_photo_is_refused_with_a_message(admin, world, payload, message):
    response = upload_photo(admin, world.d1.id, payload)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert fresh(world.d1.id).photo_version == 0


def test_assign_to_another_station_keeps_the_code(app, world):
    supervisor = login(app, "sup_county")
    rule = ReceptionRule(kind=ReceptionRuleKind.WEEKLY, day=3, deputy=world.d1)
    world.station_a.reception_rules.append(rule)
    db.session.commit()
    slug = current_code(world.d1).slug
    response = post_form(supervisor, f"/admin/deputies/{world.d1.id}/station", {"station_id": str(world.station_t.id)})
    assert response.status_code == 303
    deputy = fresh(world.d1.id)
    assert deputy.station_id == world.station_t.id
    assert current_code(deputy).slug == slug
    assert resolve_slug(slug).station.id == world.station_t.id
    assert db.session.get(ReceptionRule, rule.id).deputy_id is None
    assert audit_rows("deputy_station_changed")[-1].data["to_station_id"] == world.station_t.id
    # Out of the supervisor's county: refused as a bad choice, nothing moves.
    response = post_form(supervisor, f"/admin/deputies/{world.d1.id}/station", {"station_id": str(world.station_s.id)})
    assert response.status_code == 400
    assert "请选择您管理的另一个联络站" in response.get_data(as_text=True)
    assert fresh(world.d1.id).station_id == world.station_t.id


def test_a_station_admin_has_no_other_station_to_move_to(admin, world):
    assert "调整进站联络站" not in admin.get(f"/admin/deputies/{world.d1.id}").get_data(as_text=True)
    response = post_form(admin, f"/admin/deputies/{world.d1.id}/station", {"station_id": str(world.station_b.id)})
    assert response.status_code == 400
    assert fresh(world.d1.id).station_id == world.station_a.id


def reassign_events(item: Item) -> list[ItemEvent]:
    return [e for e in item.events if e.kind == ItemEventKind.REASSIGNED]


def test_resignation_hands_open_items_over_one_event_each(admin, world):
    admin_user = world.users["station_admin"]
    submitted = make_item(world.d1)
    accepted = make_item(world.d1, body="第二件：垃圾清运不及时，请协调。")
    act(accepted, admin_user, "accept")
    forwarded = make_item(world.d1, body="第三件：桥面破损需要维修。")
    forward(forwarded, admin_user, world.department)
    resolved = make_item(world.d1, body="第四件：已经解决的问题。")
    act(resolved, admin_user, "accept")
    act(resolved, admin_user, "resolve", outcome="solved")
    rule = ReceptionRule(kind=ReceptionRuleKind.MONTHLY, day=20, deputy=world.d1)
    world.station_a.reception_rules.append(rule)
    db.session.commit()
    slug = current_code(world.d1).slug

    page = admin.get(f"/admin/deputies/{world.d1.id}").get_data(as_text=True)
    assert "还有3件在办留言" in page

    # No successor: refused, nothing written.
    response = post_form(admin, f"/admin/deputies/{world.d1.id}/status", {"status": "resigned", "reason": "本人辞职"})
    assert response.status_code == 400
    assert "请选择接手的本站在任代表" in response.get_data(as_text=True)
    assert fresh(world.d1.id).is_serving
    # A deputy of another station is not a successor.
    response = post_form(
        admin,
        f"/admin/deputies/{world.d1.id}/status",
        {"status": "resigned", "reason": "本人辞职", "successor_id": str(world.d3.id)},
    )
    assert response.status_code == 400 and fresh(world.d1.id).is_serving

    response = post_form(
        admin,
        f"/admin/deputies/{world.d1.id}/status",
        {"status": "resigned", "reason": "经县人大常委会接受辞职", "successor_id": str(world.d2.id)},
    )
    assert response.status_code == 303
    html = admin.get(response.headers["Location"]).get_data(as_text=True)
    assert "2件在办留言已转交李建国代表" in html
    assert "其代表码继续有效：群众扫码后会转到霞阳镇人大代表联络站" in html
    assert "按办理规则不能转交" in html  # the forwarded item stays (lifecycle: reassign before work only)

    deputy = fresh(world.d1.id)
    assert deputy.status == DeputyStatus.RESIGNED and deputy.status_changed_at is not None
    for item in (submitted, accepted):
        item = db.session.get(Item, item.id)
        assert item.deputy_id == world.d2.id
        events = reassign_events(item)
        assert len(events) == 1 and "经县人大常委会接受辞职" in events[0].data["reason"]
    assert db.session.get(Item, forwarded.id).deputy_id == world.d1.id
    assert db.session.get(Item, resolved.id).deputy_id == world.d1.id and not reassign_events(resolved)
    assert len(audit_rows("item_reassign")) == 2
    status_row = audit_rows("deputy_status_changed")[-1]
    assert status_row.data["successor_id"] == world.d2.id
    assert sorted(status_row.data["handed_over"]) == sorted([submitted.ref, accepted.ref])
    assert status_row.data["kept"] == [forwarded.ref]
    assert status_row.data["accounts_stopped"] == ["deputy_d1"]
    assert db.session.scalar(select(StaffUser).where(StaffUser.username == "deputy_d1")).is_active is False
    assert db.session.get(ReceptionRule, rule.id).deputy_id is None
    # The printed code keeps working and routes residents to the station.
    resolved_code = resolve_slug(slug)
    assert not resolved_code.is_retired and resolved_code.routes_to_station
    assert resolved_code.station.id == world.station_a.id


@pytest.mark.parametrize("status", ["recalled", "term_ended"])
def test_other_status_changes_without_open_items(admin, world, status):
    response = post_form(admin, f"/admin/deputies/{world.d2.id}/status", {"status": status, "reason": "依法"})
    assert response.status_code == 303
    assert fresh(world.d2.id).status == DeputyStatus(status)
    html = admin.get(f"/admin/deputies/{world.d2.id}").get_data(as_text=True)
    assert "其代表码继续有效" in html
    assert "不再制作海报" in html


def test_status_change_needs_a_reason_and_a_real_status(admin, world):
    for data, message in (
        ({"status": "resigned", "reason": ""}, "请填写变更原因"),
        ({"status": "retired", "reason": "x"}, "请选择状态变更"),
        ({"status": "serving", "reason": "x"}, "当前已是“在任”"),
    ):
        response = post_form(admin, f"/admin/deputies/{world.d2.id}/status", data)
        assert response.status_code == 400
        assert message in response.get_data(as_text=True)
    assert fresh(world.d2.id).is_serving


def test_a_supervisor_cannot_hand_items_over_and_is_told_so(app, world):
    make_item(world.d1)
    supervisor = login(app, "sup_county")
    response = post_form(
        supervisor,
        f"/admin/deputies/{world.d1.id}/status",
        {"status": "resigned", "reason": "辞职", "successor_id": str(world.d2.id)},
    )
    assert response.status_code == 403
    assert "转交留言由联络站管理员操作" in response.get_data(as_text=True)
    assert fresh(world.d1.id).is_serving
    assert audit_count("item_reassign", "deputy_status_changed") == 0
    # Without open items a supervisor records the change.
    response = post_form(
        supervisor, f"/admin/deputies/{world.d2.id}/status", {"status": "term_ended", "reason": "届满"}
    )
    assert response.status_code == 303


def test_restore_a_deputy_changed_by_mistake(admin, world):
    post_form(admin, f"/admin/deputies/{world.d2.id}/status", {"status": "recalled", "reason": "误操作"})
    account = db.session.scalar(select(StaffUser).where(StaffUser.username == "deputy_d2"))
    db.session.refresh(account)
    assert account.is_active is False
    response = post_form(admin, f"/admin/deputies/{world.d2.id}/status", {"status": "serving", "reason": "更正"})
    assert response.status_code == 303
    assert fresh(world.d2.id).is_serving
    assert db.session.scalar(select(StaffUser).where(StaffUser.username == "deputy_d2")).is_active is True
    assert "其代表登录账号已恢复" in admin.get(response.headers["Location"]).get_data(as_text=True)


def test_rotate_a_deputy_code_states_the_old_codes_fate(admin, world):
    old = current_code(world.d1).slug
    page = admin.get(f"/admin/deputies/{world.d1.id}").get_data(as_text=True)
    assert "更换代表码" in page and "如：村口海报被人为涂改" in page
    assert f'action="/admin/deputies/{world.d1.id}/code"' in page
    refused = post_form(admin, f"/admin/deputies/{world.d1.id}/code", {"reason": "  "})
    assert refused.status_code == 400 and "请填写更换原因" in refused.get_data(as_text=True)
    assert current_code(fresh(world.d1.id)).slug == old
    response = post_form(admin, f"/admin/deputies/{world.d1.id}/code", {"reason": "村口海报被人为涂改"})
    assert response.status_code == 303
    html = admin.get(response.headers["Location"]).get_data(as_text=True)
    assert "旧二维码将显示已更换，不能再留言；请重新打印海报" in html
    new = current_code(fresh(world.d1.id)).slug
    assert new != old and new in html
    assert resolve_slug(old).is_retired
    scanned = admin.get(f"/c/{old}")
    assert "已更换" in scanned.get_data(as_text=True)
    assert audit_rows("code_rotated")[-1].data["reason"] == "村口海报被人为涂改"


def test_deputy_page_offers_posters_and_status(admin, world):
    html = admin.get(f"/admin/deputies/{world.d1.id}").get_data(as_text=True)
    assert f"/posters/deputy/{world.d1.id}.pdf" in html
    assert f"/posters/deputy/{world.d1.id}.png" in html
    assert "辞职、罢免或任期届满" in html
    assert current_code(world.d1).slug in html


def test_a_real_sized_photo_uploads(admin, world):
    # A phone photo is megabytes; multipart bodies over 64 KB must get through (Werkzeug's form memory limit).
    out = io.BytesIO()
    Image.frombytes("RGB", (480, 640), os.urandom(480 * 640 * 3)).save(out, "JPEG", quality=75)
    # Over 64 KB, under the test client's 500 KB spill to a temporary file (which it never closes).
    assert 100_000 < len(out.getvalue()) < 480_000
    response = upload_photo(admin, world.d1.id, out.getvalue(), "phone.jpg")
    assert response.status_code == 303
    assert fresh(world.d1.id).photo_version == 1


def test_uploads_still_need_the_csrf_token(admin, world):
    response = admin.post(
        f"/admin/deputies/{world.d1.id}/photo",
        data={"photo": (io.BytesIO(jpeg_bytes()), "a.jpg")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 400
    assert "页面已过期" in response.get_data(as_text=True)
    assert fresh(world.d1.id).photo_version == 0
    response = admin.post(
        "/admin/import", data={"file": (io.BytesIO(b"x"), "a.csv")}, content_type="multipart/form-data"
    )
    assert response.status_code == 400 and "页面已过期" in response.get_data(as_text=True)
