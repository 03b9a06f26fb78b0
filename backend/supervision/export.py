"""The monthly export for the 专报 (.xlsx): the month's figures, then every item with its timeline summary.

The file leaves the county office, so the resident's name and number are masked (张**,
138****1234), and mobile numbers written inside the message or the answer — with spaces, dashes,
full-width digits or +86 — are masked too (``backend.items.masking``).
Every text cell that a spreadsheet could take for a formula (starting with ``=``, ``+``,
``-``, ``@``, a tab or a carriage return) is written as a string with Excel's quote prefix
(the invisible apostrophe), so that opening the file never runs anything a resident wrote.

Written with openpyxl's write-only mode into a file the caller provides (a temporary file
in the route), items read in chunks: memory stays flat however many items the month has.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime
from typing import BinaryIO

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from backend.extensions import db
from backend.items.deadlines import is_overdue
from backend.items.masking import mask_message, mask_name, mask_phone
from backend.items.presenters import CHANNEL_LABELS, staff_event_label
from backend.items.refs import format_ref
from backend.models import Item, ItemEvent, ItemEventKind, utcnow
from backend.models.item import ITEM_CATEGORY_LABELS, ITEM_OUTCOME_LABELS, ITEM_STATUS_LABELS, SATISFACTION_LABELS
from backend.supervision import stats
from backend.timefmt import china_time

CHUNK = 500
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
TEXT_LIMIT = 2000  # a cell holds 32,767 characters; a report needs far fewer
WRAP = Alignment(wrap_text=True, vertical="top")

COLUMNS = (
    ("编号", 12),
    ("提交时间", 17),
    ("联络站", 24),
    ("代表", 10),
    ("类别", 10),
    ("渠道", 12),
    ("留言内容", 50),
    ("联系人", 8),
    ("联系电话", 14),
    ("当前状态", 10),
    ("受理时间", 17),
    ("首次答复时间", 17),
    ("办结时间", 17),
    ("办理结果", 10),
    ("群众评价", 10),
    ("目前是否超期", 8),
    ("重新办理次数", 8),
    ("办理过程", 70),
    ("最近一次答复", 50),
)


def is_formula_like(value: str) -> bool:
    """True for text a spreadsheet could read as a formula (or a DDE call)."""
    return value.startswith(FORMULA_PREFIXES)


def text_cell(sheet, value: str, *, wrap: bool = False) -> WriteOnlyCell | str:
    """Text for a cell, never a formula: formula-like text becomes a string cell with Excel's quote prefix.

    Plain text goes in as a plain value (written as an inline string), which is much cheaper than a cell object.
    """
    value = ILLEGAL_CHARACTERS_RE.sub("", value or "")[:TEXT_LIMIT]
    formula_like = is_formula_like(value)
    if not formula_like and not wrap:
        return value
    cell = WriteOnlyCell(sheet, value=value)
    if formula_like:
        cell.data_type = "s"
        cell.quotePrefix = True
    if wrap:
        cell.alignment = WRAP
    return cell


def _time(value: datetime | None) -> str:
    return china_time(value, "%Y-%m-%d %H:%M") if value else ""


def _short_day(value: datetime) -> str:
    return china_time(value, "%m-%d")


def _event_step(event: ItemEvent) -> str | None:
    """One step of the timeline summary, without any free text; None for internal notes."""
    if event.kind == ItemEventKind.NOTE and not event.is_public:
        return None
    data = event.data or {}
    label = staff_event_label(event)
    if event.kind == ItemEventKind.FORWARDED and data.get("department"):
        label = f"交办{data['department']}"
    elif event.kind == ItemEventKind.DEPARTMENT_REPLIED and data.get("department"):
        label = f"{data['department']}答复"
    elif event.kind == ItemEventKind.RESOLVED and data.get("outcome"):
        label = f"办结（{ITEM_OUTCOME_LABELS.get(data['outcome'], '')}）"
    elif event.kind == ItemEventKind.RATED and data.get("satisfaction"):
        label = f"群众评价：{SATISFACTION_LABELS.get(data['satisfaction'], '')}"
    return f"{_short_day(event.created_at)} {label}"


def _events_by_item(item_ids: list[int]) -> dict[int, list[ItemEvent]]:
    events: dict[int, list[ItemEvent]] = defaultdict(list)
    for event in db.session.scalars(
        select(ItemEvent).where(ItemEvent.item_id.in_(item_ids)).order_by(ItemEvent.item_id, ItemEvent.id)
    ):
        events[event.item_id].append(event)
    return events


def item_row(sheet, item: Item, events: list[ItemEvent], now: datetime) -> list:
    """The cells of one item's row."""
    steps = [step for step in (_event_step(e) for e in events) if step]
    replies = [e for e in events if e.kind == ItemEventKind.REPLIED]
    satisfaction = SATISFACTION_LABELS.get(item.satisfaction, "") if item.satisfaction else ""
    return [
        text_cell(sheet, format_ref(item.ref)),
        text_cell(sheet, _time(item.created_at)),
        text_cell(sheet, item.station.name),
        text_cell(sheet, item.deputy.name if item.deputy else ""),
        text_cell(sheet, ITEM_CATEGORY_LABELS.get(item.category, "")),
        text_cell(sheet, CHANNEL_LABELS.get(item.channel, "")),
        text_cell(sheet, mask_message(item.body, item.contact_name), wrap=True),
        text_cell(sheet, mask_name(item.contact_name)),
        text_cell(sheet, mask_phone(item.contact_phone)),
        text_cell(sheet, ITEM_STATUS_LABELS[item.status]),
        text_cell(sheet, _time(item.accepted_at)),
        text_cell(sheet, _time(item.first_answered_at)),
        text_cell(sheet, _time(item.resolved_at)),
        text_cell(sheet, ITEM_OUTCOME_LABELS.get(item.outcome, "") if item.outcome else ""),
        text_cell(sheet, satisfaction),
        text_cell(sheet, "是" if is_overdue(item, now) else "否"),  # a complete yes/no: blank read as "not known"
        item.reopen_count,
        text_cell(sheet, "；".join(steps), wrap=True),
        text_cell(sheet, mask_message(replies[-1].body, item.contact_name) if replies else "", wrap=True),
    ]


def _summary_sheet(workbook: Workbook, figures: stats.Figures, month: date) -> None:
    sheet = workbook.create_sheet("汇总")
    sheet.column_dimensions["A"].width = 22
    sheet.column_dimensions["B"].width = 16
    sheet.column_dimensions["C"].width = 90
    bold = Font(bold=True)

    def header(text: str) -> WriteOnlyCell:
        cell = WriteOnlyCell(sheet, value=text)
        cell.font = bold
        return cell

    counts, rates = figures.counts, figures.rates
    sheet.append([header(f"{figures.scope.label} {month.year}年{month.month}月 群众意见办理情况")])
    sheet.append([text_cell(sheet, f"导出时间：{_time(figures.now)}（北京时间）；群众联系方式已隐去。")])
    sheet.append([])
    sheet.append([header("指标"), header("数值"), header("口径")])
    rows = [
        ("收到留言（件）", counts.received, stats.DEFINITIONS["received"]),
        ("有效件（件）", counts.valid, stats.DEFINITIONS["valid"]),
        ("不予受理 / 重复件 / 群众撤回（件）", f"{counts.declined} / {counts.duplicate} / {counts.withdrawn}", ""),
        ("已答复（件）", counts.answered, ""),
        ("答复率", rates["answer_rate"].percent_label, stats.DEFINITIONS["answer_rate"]),
        ("已办结（件）", counts.resolved, ""),
        ("办结率", rates["resolve_rate"].percent_label, stats.DEFINITIONS["resolve_rate"]),
        (
            "已评价（满意/基本满意/不满意）",
            f"{counts.rated}（{counts.fully_satisfied}/{counts.basically_satisfied}/{counts.unsatisfied}）",
            "",
        ),
        ("满意率", rates["satisfaction_rate"].percent_label, stats.DEFINITIONS["satisfaction_rate"]),
        ("见面率", "暂无数据", stats.DEFINITIONS["meeting_rate"]),
        ("当面接待收集（件）", counts.in_person, ""),
        (
            "当面接待件已评价（满意/基本满意/不满意）",
            f"{counts.in_person_rated}（{counts.in_person_fully_satisfied}/{counts.in_person_basically_satisfied}"
            f"/{counts.in_person_unsatisfied}）",
            "",
        ),
        (
            "当面接待件满意率（单列）",
            rates["in_person_satisfaction_rate"].percent_label,
            stats.DEFINITIONS["in_person_satisfaction_rate"],
        ),
        ("未经群众认领的当面接待件评价（件，不计入）", counts.unclaimed_rated, stats.DEFINITIONS["unclaimed_rated"]),
        ("首次答复用时中位数（小时）", _hours_label(figures.median_first_answer_hours), ""),
        ("办结用时中位数（小时）", _hours_label(figures.median_resolve_hours), ""),
        ("目前超期（件，不限本月）", figures.overdue, stats.DEFINITIONS["overdue"]),
    ]
    for label, value, definition in rows:
        value_cell = value if isinstance(value, int) else text_cell(sheet, str(value))
        sheet.append([text_cell(sheet, label), value_cell, text_cell(sheet, definition, wrap=True)])
    sheet.append([])
    sheet.append([text_cell(sheet, stats.DEFINITIONS["min_sample"].format(n=figures.min_sample))])


def _hours_label(hours: float | None) -> str:
    return "—" if hours is None else f"{hours:.1f}"


def write_month(scope: stats.Scope, month: date, out: BinaryIO, now: datetime | None = None) -> int:
    """Write the month's workbook for ``scope`` to ``out``; return the number of item rows.

    Items are those the dashboard counts for that month (submitted in the month, China
    time, not held for review), oldest first.
    """
    now = now or utcnow()
    rng = stats.month_range(month)
    workbook = Workbook(write_only=True)
    _summary_sheet(workbook, stats.compute(scope, rng, now=now, with_children=False), month)
    ids = list(
        db.session.scalars(
            stats.figure_items_query(scope, rng, "received")
            .with_only_columns(Item.id)
            .order_by(Item.created_at.asc(), Item.id.asc())
        )
    )
    _items_sheet(workbook, ids, now)
    workbook.save(out)
    return len(ids)


def write_topic(title: str, facts: list[tuple[str, str]], item_ids: list[int], out: BinaryIO) -> int:
    """Write a topic code's workbook to ``out`` (its facts, then its items as the monthly export writes them);
    return the number of item rows. The caller gives the items' ids, oldest first (``stations.topics``)."""
    now = utcnow()
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("专题")
    sheet.column_dimensions["A"].width = 22
    sheet.column_dimensions["B"].width = 60
    heading = WriteOnlyCell(sheet, value=title)
    heading.font = Font(bold=True)
    sheet.append([heading])
    sheet.append([text_cell(sheet, f"导出时间：{_time(now)}（北京时间）；群众联系方式已隐去。")])
    for label, value in facts:
        sheet.append([text_cell(sheet, label), text_cell(sheet, value, wrap=True)])
    _items_sheet(workbook, item_ids, now)
    workbook.save(out)
    return len(item_ids)


def _items_sheet(workbook: Workbook, ids: list[int], now: datetime) -> None:
    """The sheet of items (``COLUMNS``), one row per id in the order given, read in chunks."""
    sheet = workbook.create_sheet("民意件")
    for index, (_, width) in enumerate(COLUMNS, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = width
    sheet.freeze_panes = "B2"
    bold = Font(bold=True)
    header = []
    for title, _ in COLUMNS:
        cell = WriteOnlyCell(sheet, value=title)
        cell.font = bold
        header.append(cell)
    sheet.append(header)
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        items = db.session.scalars(
            select(Item)
            .where(Item.id.in_(chunk))
            .options(selectinload(Item.deputy), selectinload(Item.station))
            .order_by(Item.created_at.asc(), Item.id.asc())
        ).all()
        events = _events_by_item(chunk)
        for item in items:
            sheet.append(item_row(sheet, item, events.get(item.id, []), now))
