"""The monthly 专报 as a Word document (issue 15 part 5): read back with python-docx, its figures are the
dashboard's (GET /api/v1/stats over the same month), its lists the month's categories, places, 建议 and
overdue items; supervisors only, their own region only; a bad month refused."""

from __future__ import annotations

import io

import pytest
from docx import Document
from flask import g
from sqlalchemy import select

from backend.extensions import db
from backend.items.refs import format_ref
from backend.models import AuditEntry
from backend.stations.calendar import today_in_china
from backend.supervision import stats
from tests.factories import build_outcomes, make_overdue, supervision_world
from tests.helpers import api_token, login

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


WORLD = supervision_world


def this_month() -> str:
    return today_in_china().strftime("%Y-%m")


def fetch(app, username: str, **args):
    client = login(app, username)
    response = client.get("/staff/proposals/report.docx", query_string=args)
    g.pop("csrf_token", None)
    return response


def read(data: bytes) -> tuple[list[str], list[list[list[str]]]]:
    document = Document(io.BytesIO(data))
    paragraphs = [p.text for p in document.paragraphs]
    tables = [[[cell.text for cell in row.cells] for row in table.rows] for table in document.tables]
    return paragraphs, tables


def test_the_report_carries_the_dashboards_figures_and_the_months_lists(app, client, world):
    items = build_outcomes(client, world)
    make_overdue(items.accepted)
    app.config["STATS_MIN_SAMPLE"] = 1
    drafted = client.post(
        "/api/v1/proposals",
        json={
            "title": "关于加强校园周边交通秩序管理的建议",
            "item_refs": [items.unsat.ref, items.submitted.ref],
            "department_id": world.department2.id,
        },
        headers=api_token(app, "sup_county"),
    )
    assert drafted.status_code == 201
    response = fetch(app, "sup_county", month=this_month())
    assert response.status_code == 200 and response.mimetype == DOCX
    assert "attachment" in response.headers["Content-Disposition"]
    paragraphs, tables = read(response.data)
    month = today_in_china()
    assert paragraphs[0] == f"炎陵县{month.year}年{month.month}月群众意见建议办理情况专报"

    # The figures are the dashboard's: the stats API over the same month says the same.
    rng = stats.month_range(month.replace(day=1))
    figures = client.get(
        "/api/v1/stats",
        query_string={"region": "430225", "from": rng.start.isoformat(), "to": rng.end.isoformat()},
        headers=api_token(app, "sup_county"),
    ).get_json()
    table = {row[0]: row[1] for row in tables[0][1:]}
    assert table["收到留言"] == f"{figures['received']}件" == "12件"
    assert table["有效件"] == f"{figures['valid']}件"
    assert table["已答复"] == f"{figures['answered']}件"
    assert table["答复率"] == f"{figures['answer_rate'] * 100:.1f}%"
    assert table["已办结"] == f"{figures['resolved']}件"
    assert table["办结率"] == f"{figures['resolve_rate'] * 100:.1f}%"
    assert table["满意率"] == f"{figures['satisfaction_rate'] * 100:.1f}%"
    assert table["目前超期（不限本月）"] == f"{figures['overdue']}件" == "1件"

    text = "\n".join(paragraphs)
    assert "城乡建设：12件" in text  # every item of build_outcomes is of the one category
    assert "霞阳镇人大代表联络站：11件" in text and "沔渡镇人大代表之家：1件" in text
    assert "南山区" not in text  # another county's station
    assert "《关于加强校园周边交通秩序管理的建议》：汇集群众留言2件，承办单位炎陵县交通运输局，拟稿中。" in text
    overdue = tables[1]
    assert overdue[0] == ["编号", "联络站 / 代表", "内容摘要", "超期"]
    assert [row[0] for row in overdue[1:]] == [format_ref(items.accepted.ref)]
    assert overdue[1][1] == "霞阳镇人大代表联络站 / 张秀英" and overdue[1][3].startswith("超期")
    audit = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "report_downloaded"))
    assert audit.object_id == "430225" and audit.data["month"] == this_month()


def test_a_month_without_anything_says_so(app, world):
    response = fetch(app, "sup_county", month="2025-01")
    paragraphs, tables = read(response.data)
    assert {row[0]: row[1] for row in tables[0][1:]}["收到留言"] == "0件"
    assert "本月没有收到留言。" in paragraphs and "本月没有起草代表建议。" in paragraphs
    assert "目前没有超期未办结的留言。" in paragraphs


def test_only_supervisors_and_only_their_region(app, world):
    for username in ("deputy_d1", "admin_a", "dept_user"):
        assert fetch(app, username, month=this_month()).status_code == 404
    far = fetch(app, "sup_far", month=this_month(), region="430225")
    assert far.status_code == 404


@pytest.mark.parametrize("month", ["", "2026-13", "2026/03", "march", "9999-12", "1999-01"])
def test_a_bad_month_is_refused(app, world, month):
    response = fetch(app, "sup_county", month=month)
    assert response.status_code == 400
    assert "月份" in response.text


def test_the_dashboard_offers_the_report_beside_the_export(app, world):
    page = login(app, "sup_county").get("/supervision/")
    assert 'id="report-docx"' in page.text and "/staff/proposals/report.docx" in page.text
    assert 'id="report-docx"' not in login(app, "admin_a").get("/supervision/").text
