"""The monthly 专报 as a Word document (.docx) the county office edits and sends on.

Why a DOCX and not a PDF: the reports in the field are edited before they go out ("以《…人大信息》专报形式报送"):
the office rewrites the opening, adds its own judgement, cuts what it will not send. python-docx
(pinned in requirements.txt) writes an ordinary document with real headings and tables, which WPS
and Word open and edit as their own.

Every figure is the dashboard's (``backend.supervision.stats.compute`` over the month), never
counted again here; the top categories and places group exactly the items the dashboard's
"收到留言" counts (``stats.figure_items_query``); the overdue list is the dashboard's
(``stats.overdue_items``). The document leaves the county office: it names no resident, and a
message's text is masked as the monthly export masks it (``backend.items.masking``).
"""

from __future__ import annotations

import io
from datetime import date, datetime

from docx import Document
from docx.shared import Pt
from sqlalchemy import func, select

from backend.access import region_subtree
from backend.extensions import db
from backend.items.inbox import first_line, overdue_label
from backend.items.masking import mask_message
from backend.items.refs import format_ref
from backend.models import Proposal, Station, utcnow
from backend.models.item import ITEM_CATEGORY_LABELS
from backend.supervision import stats
from backend.timefmt import china_time

TOP = 5  # categories and places listed
OVERDUE_LISTED = 30
SUMMARY_CHARS = 40


def month_title(scope: stats.Scope, month: date) -> str:
    """The report's title: 炎陵县2026年11月群众意见建议办理情况专报."""
    return f"{scope.label}{month.year}年{month.month}月群众意见建议办理情况专报"


def figure_rows(figures: stats.Figures) -> list[tuple[str, str]]:
    """(指标, 数值) of the month, in the dashboard's words and numbers."""
    counts, rates = figures.counts, figures.rates

    def hours(value: float | None) -> str:
        return "—" if value is None else f"{value:.1f}小时"

    return [
        ("收到留言", f"{counts.received}件"),
        ("有效件", f"{counts.valid}件"),
        ("已答复", f"{counts.answered}件"),
        ("答复率", rates["answer_rate"].percent_label),
        ("已办结", f"{counts.resolved}件"),
        ("办结率", rates["resolve_rate"].percent_label),
        ("已评价", f"{counts.rated}件"),
        ("满意率", rates["satisfaction_rate"].percent_label),
        ("首次答复用时中位数", hours(figures.median_first_answer_hours)),
        ("办结用时中位数", hours(figures.median_resolve_hours)),
        ("目前超期（不限本月）", f"{figures.overdue}件"),
    ]


def top_categories(scope: stats.Scope, rng: stats.DateRange) -> list[tuple[str, int]]:
    """The month's most frequent categories among the items the dashboard counts as received."""
    received = stats.figure_items_query(scope, rng, "received").subquery()
    rows = db.session.execute(
        select(received.c.category, func.count())
        .group_by(received.c.category)
        .order_by(func.count().desc(), received.c.category)
        .limit(TOP)
    ).all()
    return [(ITEM_CATEGORY_LABELS[category], number) for category, number in rows]


def top_places(scope: stats.Scope, rng: stats.DateRange) -> list[tuple[str, int]]:
    """The month's stations with the most items received."""
    received = stats.figure_items_query(scope, rng, "received").subquery()
    rows = db.session.execute(
        select(Station.name, func.count())
        .join(received, received.c.station_id == Station.id)
        .group_by(Station.id, Station.name)
        .order_by(func.count().desc(), Station.id)
        .limit(TOP)
    ).all()
    return [(name, number) for name, number in rows]


def month_proposals(scope: stats.Scope, rng: stats.DateRange) -> list[Proposal]:
    """The 代表建议 drafted in the month in the scope's region (and under it)."""
    if scope.kind != "region":
        return []
    return list(
        db.session.scalars(
            select(Proposal)
            .where(
                Proposal.region_id.in_(region_subtree(scope.region.id)),
                Proposal.created_at >= rng.start_at,
                Proposal.created_at < rng.end_at,
            )
            .order_by(Proposal.created_at, Proposal.id)
        )
    )


def write_report(scope: stats.Scope, month: date, now: datetime | None = None) -> bytes:
    """The month's 专报 for ``scope`` as DOCX bytes."""
    now = now or utcnow()
    rng = stats.month_range(month)
    figures = stats.compute(scope, rng, now=now, with_children=False)
    document = Document()
    style = document.styles["Normal"]
    style.font.size = Pt(12)
    document.add_heading(month_title(scope, month), level=0)
    document.add_paragraph(f"（{china_time(now)}生成，数据截至生成时；可修改后报送。）")

    document.add_heading("一、本月办理情况", level=1)
    table = document.add_table(rows=1, cols=2)
    table.style = "Table Grid"
    table.rows[0].cells[0].text, table.rows[0].cells[1].text = "指标", "数值"
    for label, value in figure_rows(figures):
        cells = table.add_row().cells
        cells[0].text, cells[1].text = label, value
    document.add_paragraph(stats.DEFINITIONS["min_sample"].format(n=figures.min_sample))

    document.add_heading("二、群众反映较多的问题", level=1)
    _ranked(document, top_categories(scope, rng), "本月没有收到留言。")
    document.add_heading("三、留言较多的地点", level=1)
    _ranked(document, top_places(scope, rng), "本月没有收到留言。")

    document.add_heading("四、本月起草的代表建议", level=1)
    proposals = month_proposals(scope, rng)
    if not proposals:
        document.add_paragraph("本月没有起草代表建议。")
    for proposal in proposals:
        document.add_paragraph(
            f"《{proposal.title}》：汇集群众留言{len(proposal.links)}件，承办单位{proposal.department.name}，"
            f"{proposal.status.label}。",
            style="List Number",
        )

    document.add_heading("五、超期未办结的留言", level=1)
    overdue = stats.overdue_items(scope, now, OVERDUE_LISTED)
    if not overdue:
        document.add_paragraph("目前没有超期未办结的留言。")
    else:
        table = document.add_table(rows=1, cols=4)
        table.style = "Table Grid"
        for cell, title in zip(table.rows[0].cells, ("编号", "联络站 / 代表", "内容摘要", "超期"), strict=True):
            cell.text = title
        for item in overdue:
            cells = table.add_row().cells
            cells[0].text = format_ref(item.ref)
            cells[1].text = item.station.name + (f" / {item.deputy.name}" if item.deputy else "")
            cells[2].text = first_line(mask_message(item.body, item.contact_name), SUMMARY_CHARS)
            cells[3].text = overdue_label(item, now)
        if figures.overdue > len(overdue):
            document.add_paragraph(f"另有{figures.overdue - len(overdue)}件，见监督页面的超期列表。")
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def _ranked(document, rows: list[tuple[str, int]], empty: str) -> None:
    if not rows:
        document.add_paragraph(empty)
    for label, number in rows:
        document.add_paragraph(f"{label}：{number}件", style="List Number")
