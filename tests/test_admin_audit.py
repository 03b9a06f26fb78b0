"""Issue 13, part 2: supervisors read the audit log of their region, filtered and exported.

Who: a county supervisor reads the rows of the county and everything under it; a township
supervisor the township's; the neighbouring county's supervisor neither. Deputies, station
administrators and departments get 404 and an audit row, as on every supervisor-only page.
Bad input tried: an unknown action, a month 13, a date written 2026/03/01, a range backwards,
a username of 51 characters, a NUL byte, ``before`` as text, as 30 digits and negative: each
a 400 page (or 400 export) in Chinese that writes nothing, never a 500.
"""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from backend.admin import audit_log
from backend.audit import record_audit
from backend.extensions import db
from backend.models import AuditEntry, utcnow
from tests.factories import act, admin_world, make_item
from tests.helpers import audit_count, audit_rows, login, post_form


@pytest.fixture
def world(app):
    world = admin_world()
    world.item_a = make_item(world.d1)  # station A, 炎陵县
    world.item_t = make_item(world.d5)  # station T, 霞阳镇 under 炎陵县
    world.item_s = make_item(world.d6)  # station S, 茶陵县
    return world


def rows_on(page_html: str) -> int:
    return page_html.count('<tr id="audit-')


def test_a_deputys_reveal_shows_to_the_supervisors_above_and_to_nobody_else(app, world):
    deputy = login(app, "deputy_d1")
    response = post_form(deputy, f"/staff/items/{world.item_a.ref}/reveal", page=f"/staff/items/{world.item_a.ref}")
    assert response.status_code in (200, 303)
    assert len(audit_rows("reveal_contact")) == 1

    county = login(app, "sup_county").get("/admin/audit", query_string={"action": "reveal_contact"})
    assert county.status_code == 200
    assert rows_on(county.text) == 1
    assert "查看群众联系方式" in county.text and world.item_a.ref in county.text and "deputy_d1" in county.text

    for outsider in ("sup_sibling", "sup_township", "sup_far"):
        page = login(app, outsider).get("/admin/audit", query_string={"action": "reveal_contact"})
        assert page.status_code == 200
        assert rows_on(page.text) == 0, outsider
        assert 'id="audit-empty"' in page.text


def test_each_supervisor_sees_their_regions_items_and_staff_only(app, world):
    act(world.item_a, world.users["deputy"], "accept")
    record_audit("item_accept", user=world.users["sup_sibling"], object_type="item", object_id=world.item_s.id)
    record_audit("item_access_denied", user=world.users["deputy_far"], object_type="item", object_id=world.item_t.id)
    db.session.commit()

    def refs_seen(key: str) -> set[str]:
        rows = audit_log.page(world.users[key], audit_log.AuditFilter()).rows
        return {row.item_ref for row in rows if row.item_ref}

    assert refs_seen("supervisor") == {world.item_a.ref, world.item_t.ref}
    assert refs_seen("sup_township") == {world.item_t.ref}  # someone from elsewhere knocking at a township item
    assert refs_seen("sup_sibling") == {world.item_s.ref}
    assert refs_seen("supervisor_far") == {world.item_t.ref}  # their own deputy's refused attempt


def test_filters_by_actor_action_item_and_china_dates(app, world):
    sup = world.users["supervisor"]
    act(world.item_a, world.users["deputy"], "accept")
    act(world.item_t, world.users["supervisor"], "supervise", text="请尽快办理。")
    old = record_audit("item_note", user=world.users["deputy2"], object_type="item", object_id=world.item_a.id)
    db.session.flush()
    # 2026-03-01 00:30 in China is 2026-02-28 16:30 UTC: it belongs to 1 March.
    db.session.execute(
        update(AuditEntry).where(AuditEntry.id == old.id).values(created_at=utcnow().replace(2026, 2, 28, 16, 30))
    )
    db.session.commit()

    def actions(**args) -> list[str]:
        return [row.action for row in audit_log.page(sup, audit_log.parse_filter(args)).rows]

    assert actions(actor="deputy_d1") == ["item_accept"]
    assert actions(actor="DEPUTY_") == ["item_note", "item_accept"]  # part of a name, any case; "_" is literal
    assert actions(actor="%") == []
    assert actions(action="item_supervise") == ["item_supervise"]
    assert actions(item=world.item_t.ref.lower()) == ["item_supervise"]
    assert actions(**{"from": "2026-03-01", "to": "2026-03-01"}) == ["item_note"]
    assert actions(**{"to": "2026-02-28"}) == []

    page = login(app, "sup_county").get("/admin/audit", query_string={"item": world.item_a.ref})
    assert rows_on(page.text) == 2 and "留言：受理" in page.text and "留言：写内部备注" in page.text


@pytest.mark.parametrize(
    "args, field",
    [
        ({"action": "drop_table"}, "action"),
        ({"from": "2026-13-01"}, "from"),
        ({"from": "2026/03/01"}, "from"),
        ({"to": "31.12.2026"}, "to"),
        ({"from": "2026-03-02", "to": "2026-03-01"}, "from"),
        ({"actor": "x" * 51}, "actor"),
        ({"item": "R" * 17}, "item"),
    ],
)
def test_a_bad_filter_is_a_400_page_that_says_why_and_writes_nothing(app, world, args, field):
    client = login(app, "sup_county")
    before = db.session.scalar(select(func.count()).select_from(AuditEntry))
    page = client.get("/admin/audit", query_string=args)
    assert page.status_code == 400
    assert 'role="alert"' in page.text and "操作日志" in page.text
    assert f'name="{field}"' in page.text
    export = client.get("/admin/audit.csv", query_string=args)
    assert export.status_code == 400
    assert db.session.scalar(select(func.count()).select_from(AuditEntry)) == before


def test_a_nul_byte_is_refused_before_the_page_runs(app, world):
    """The app refuses control characters in any query argument (issue 10, finding 6) with its own 400 page."""
    client = login(app, "sup_county")
    for path in ("/admin/audit", "/admin/audit.csv"):
        response = client.get(path, query_string={"actor": "a\x00b"})
        assert response.status_code == 400
        assert "控制字符" in response.text
    assert audit_count("audit_exported") == 0


@pytest.mark.parametrize("before", ["abc", "9" * 30, "-5", ""])
def test_a_malformed_before_shows_the_newest_rows(app, world, before):
    act(world.item_a, world.users["deputy"], "accept")
    page = login(app, "sup_county").get("/admin/audit", query_string={"before": before})
    assert page.status_code == 200 and rows_on(page.text) >= 1


def test_pages_go_back_by_id_and_never_repeat_a_row(app, world):
    for _ in range(audit_log.PAGE_SIZE + 30):
        record_audit("item_note", user=world.users["deputy"], object_type="item", object_id=world.item_a.id)
    db.session.commit()
    client = login(app, "sup_county")
    first = client.get("/admin/audit", query_string={"action": "item_note"})
    assert rows_on(first.text) == audit_log.PAGE_SIZE and 'id="audit-older"' in first.text
    sup = world.users["supervisor"]
    one = audit_log.page(sup, audit_log.AuditFilter(action="item_note"))
    two = audit_log.page(sup, audit_log.AuditFilter(action="item_note"), one.next_before)
    assert len(two.rows) == 30 and two.next_before is None
    assert not {r.id for r in one.rows} & {r.id for r in two.rows}
    assert min(r.id for r in one.rows) > max(r.id for r in two.rows)


@pytest.mark.parametrize("username", ["deputy_d1", "admin_a", "dept_user"])
def test_other_roles_get_404_and_an_audit_row(app, world, username):
    client = login(app, username)
    before = audit_count("admin_access_denied", "forbidden")
    assert client.get("/admin/audit").status_code == 404
    assert client.get("/admin/audit.csv").status_code == 404
    assert audit_count("admin_access_denied", "forbidden") == before + 2
    assert audit_count("audit_exported") == 0


def test_logged_out_goes_to_the_login_page(app, world):
    for path in ("/admin/audit", "/admin/audit.csv"):
        response = app.test_client().get(path)
        assert response.status_code in (302, 303) and "/staff/login" in response.headers["Location"]


def test_the_export_is_the_filtered_rows_as_csv_and_is_itself_audited(app, world):
    act(world.item_a, world.users["deputy"], "accept")
    act(world.item_s, world.users["sup_sibling"], "supervise", text='=HYPERLINK("http://x")')
    record_audit(
        "item_note", user=world.users["deputy"], object_type="item", object_id=world.item_a.id, data={"text": "=1+1"}
    )
    db.session.commit()
    response = login(app, "sup_county").get("/admin/audit.csv", query_string={"item": world.item_a.ref})
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"].startswith("attachment; filename=audit-")
    assert response.data.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(response.data.decode("utf-8-sig"))))
    assert rows[0] == list(audit_log.CSV_HEADER)
    assert [row[4] for row in rows[1:]] == ["item_note", "item_accept"]
    assert rows[1][8] == "内容：=1+1"  # not formula-like: it begins with the key
    assert all(world.item_a.ref == row[6] for row in rows[1:])
    exported = audit_rows("audit_exported")
    assert len(exported) == 1 and exported[0].data == {"item": world.item_a.ref}


def test_a_formula_in_a_recorded_value_is_exported_as_text(app, world):
    record_audit("login_failed", user=world.users["deputy"], object_type="", data={})
    entry = record_audit("item_note", user=world.users["deputy"], object_type="item", object_id=world.item_a.id)
    db.session.flush()
    db.session.execute(update(AuditEntry).where(AuditEntry.id == entry.id).values(address="=cmd|' /C calc'!A0"))
    db.session.commit()
    body = login(app, "sup_county").get("/admin/audit.csv", query_string={"action": "item_note"}).data
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert rows[1][7] == "'=cmd|' /C calc'!A0"


def test_the_export_of_a_long_range_streams_every_row(app, world):
    for _ in range(2 * audit_log.PAGE_SIZE + 7):
        record_audit("item_note", user=world.users["deputy"], object_type="item", object_id=world.item_a.id)
    db.session.commit()
    response = login(app, "sup_county").get("/admin/audit.csv", query_string={"action": "item_note"})
    assert response.is_streamed
    rows = list(csv.reader(io.StringIO(response.get_data().decode("utf-8-sig"))))
    assert len(rows) == 1 + 2 * audit_log.PAGE_SIZE + 7
    assert len({row[0] for row in rows[1:]}) == 2 * audit_log.PAGE_SIZE + 7


def test_every_recorded_action_has_a_chinese_label(app):
    """A new audited action without a label would show as its code: list the codes the code writes."""
    import pathlib
    import re

    written = set()
    for path in pathlib.Path("backend").rglob("*.py"):
        text = path.read_text()
        written |= set(re.findall(r'record_audit\(\s*"([a-z_]+)"', text))
        written |= set(re.findall(r'record_added\(\s*\w+,\s*"([a-z_]+)"', text))  # (row, action)
        written |= set(re.findall(r'apply_changes\(.*"([a-z_]+)", "[a-z_]+"\)', text))  # (action, object type)
        written |= set(re.findall(r'\b(?:audit|audit_action)\s*=\s*"([a-z_]+)"', text))  # passed on by name
        for first, second in re.findall(r'record_audit\(\s*"([a-z_]+)" if [^\n]* else "([a-z_]+)"', text):
            written |= {first, second}
    assert {
        "login",
        "station_updated",
        "station_merged",
        "forward_extension_refused",
        "answer_refused_staff",
    } <= written
    assert written - set(audit_log.ACTION_LABELS) == set()


def test_the_page_shows_a_day_in_china_time(app, world):
    entry = record_audit("item_note", user=world.users["deputy"], object_type="item", object_id=world.item_a.id)
    db.session.flush()
    moment = utcnow().replace(2026, 3, 1, 16, 5, 9, 0)  # 2 March 00:05:09 in China
    db.session.execute(update(AuditEntry).where(AuditEntry.id == entry.id).values(created_at=moment))
    db.session.commit()
    page = login(app, "sup_county").get("/admin/audit", query_string={"from": "2026-03-02", "to": "2026-03-02"})
    assert "2026-03-02 00:05:09" in page.text
    assert (moment + timedelta(hours=8)).day == 2
