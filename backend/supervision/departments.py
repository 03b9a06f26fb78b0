"""Handling departments measured (承办单位测评): what each received, answered in time, returned and left overdue,
how long it took to answer, and what residents said of its answers; the league table and the 台账.

A department's figures count the forwards (交办) made to it and to its units (``Department.parent_id``,
one level), rolled up into it. A second hop (the department passing an item on to one of its own
units) is the same item the department already holds: under the department it counts once, through
its own forward; a unit's own page counts the hops it was given. A forward the deputy took back
(revoked) before the department answered counts nowhere. Forwards are selected by when they were made (``ItemForward.created_at``,
China dates ``[start, end)``, as the dashboard's range); the overdue count is of today, whenever the
forward was made, as the dashboard's overdue count is.

满意率 counts the verdicts residents gave on this department's answers: the verdict is written on
the forward whose answer it judged when the resident rates (``lifecycle.judged_forward``), so a
reopened item answered again by another department counts once for each. The rates use the
dashboard's ``Rate`` and minimum sample (``STATS_MIN_SAMPLE``). Medians are exact, as the
dashboard's (``percentile_cont(0.5)`` on PostgreSQL, the same definition with window functions
on SQLite).

Who sees them: supervisors, for the departments of their region and those under it; anyone
else, or a department elsewhere, answers 404 as something unknown, with an audit row
(``stats.deny``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime

from flask import current_app
from sqlalchemy import ColumnElement, and_, case, func, or_, select
from sqlalchemy.orm import selectinload

from backend.access import can_manage_region, region_subtree
from backend.errors import UserError
from backend.extensions import db
from backend.items.validation import clean_id
from backend.models import Department, Item, ItemForward, ItemStatus, Satisfaction, StaffRole, StaffUser, utcnow
from backend.stations.calendar import today_in_china
from backend.supervision.stats import (
    SECONDS_PER_HOUR,
    DateRange,
    Rate,
    deny,
    duration_seconds,
    tune_for_aggregates,
)

LEDGER_SIZE = 200  # the 台账 lists this many open commitments, most overdue first

FIGURE_LABELS = {
    "received": "收到交办",
    "answered": "已答复",
    "answered_on_time": "按时答复",
    "answered_late": "逾期答复",
    "returned": "退回",
    "overdue": "超期未答复",
    "on_time_rate": "按时答复率",
    "median_answer_hours": "答复用时中位数",
    "rated": "群众已评价",
    "satisfaction_rate": "群众满意率",
}

DEFINITIONS = {
    "received": "统计区间内（按交办时间，北京时间）代表交给本单位及其下属单位办理的件数。单位答复前被代表收回的交办不计入；"
    "本单位再转交下属单位的件，在本单位只计一次。",
    "answered_on_time": "在办理期限内（含代表同意的延期）作出正式答复的件数；逾期答复另计。",
    "returned": "承办单位说明理由后退回代表的件数。",
    "overdue": "今天仍未答复、也未退回，已过办理期限，而群众意见仍在办理中的交办件（不论何时交办）。",
    "on_time_rate": "按时答复件数 ÷（已答复件数 + 已过期限仍未答复也未退回的件数），统计区间内的交办件。",
    "median_answer_hours": "从交办到正式答复所用时间的中位数（小时），只计已答复的件。",
    "satisfaction_rate": "（满意 + 基本满意）÷ 已评价件数。群众评价时，评价记给最近一次作出答复的承办单位；"
    "评价只能由群众本人作出。",
    "ledger": "台账列出本单位（含下属单位）尚未了结的承诺：尚未答复的交办件按办理期限（有延期申请的注明申请的日期）；"
    "已答复并承诺了完成日期、群众尚未确认解决的件按承诺日期。已过日期的排在前面。",
}


# --- which forwards -----------------------------------------------------------------------------------


def _counted() -> ColumnElement[bool]:
    """Forwards that count: all but those the deputy took back before the department answered."""
    return or_(ItemForward.revoked_at.is_(None), ItemForward.answered_at.is_not(None))


def _of_department(department: Department) -> ColumnElement[bool]:
    """The forwards of ``department`` and its units, a second hop into one of its units counted once (via its own)."""
    units = select(Department.id).where(Department.parent_id == department.id)
    return and_(
        or_(ItemForward.department_id == department.id, ItemForward.department_id.in_(units)),
        or_(ItemForward.parent_forward_id.is_(None), ItemForward.department_id == department.id),
    )


def forwards_in_range(rng: DateRange) -> list[ColumnElement[bool]]:
    """The WHERE clauses of the forwards made in ``rng`` (China dates, ``[start, end)``)."""
    return [ItemForward.created_at >= rng.start_at, ItemForward.created_at < rng.end_at]


# --- the figures ----------------------------------------------------------------------------------------


@dataclass
class DepartmentFigures:
    """The figures of one department (its units rolled in) over a range."""

    department: Department
    min_sample: int
    received: int = 0
    answered: int = 0
    answered_on_time: int = 0
    returned: int = 0
    unanswered_past_due: int = 0
    rated: int = 0
    fully_satisfied: int = 0
    basically_satisfied: int = 0
    unsatisfied: int = 0
    overdue: int = 0
    median_answer_hours: float | None = None

    @property
    def answered_late(self) -> int:
        """Answered after the due date (as extended)."""
        return self.answered - self.answered_on_time

    @property
    def satisfied(self) -> int:
        """满意 + 基本满意."""
        return self.fully_satisfied + self.basically_satisfied

    @property
    def on_time_rate(self) -> Rate:
        """按时答复率 (``DEFINITIONS``), null below the minimum sample."""
        return Rate(self.answered_on_time, self.answered + self.unanswered_past_due, self.min_sample)

    @property
    def satisfaction_rate(self) -> Rate:
        """群众满意率 of this department's answers, null below the minimum sample."""
        return Rate(self.satisfied, self.rated, self.min_sample)

    @property
    def is_under_sample(self) -> bool:
        """True when neither rate reaches the minimum sample: the league table lists it apart."""
        return self.satisfaction_rate.value is None and self.on_time_rate.value is None


_COUNT_COLUMNS = (
    "received",
    "answered",
    "answered_on_time",
    "returned",
    "unanswered_past_due",
    "rated",
    "fully_satisfied",
    "basically_satisfied",
    "unsatisfied",
)


def _count_columns(now: datetime) -> list:
    answered = ItemForward.answered_at.is_not(None)
    return [
        func.count(),
        func.count().filter(answered),
        func.count().filter(ItemForward.answered_at <= ItemForward.due_at),
        func.count().filter(ItemForward.returned_at.is_not(None)),
        func.count().filter(
            ItemForward.answered_at.is_(None), ItemForward.returned_at.is_(None), ItemForward.due_at < now
        ),
        func.count().filter(ItemForward.verdict.is_not(None)),
        func.count().filter(ItemForward.verdict == Satisfaction.SATISFIED),
        func.count().filter(ItemForward.verdict == Satisfaction.BASICALLY),
        func.count().filter(ItemForward.verdict == Satisfaction.UNSATISFIED),
    ]


def _median_column(dialect: str):
    """PostgreSQL: the exact median answer time (seconds) as one more aggregate of the grouped count."""
    seconds = duration_seconds(ItemForward.answered_at, ItemForward.created_at, dialect)
    return func.percentile_cont(0.5).within_group(seconds).filter(ItemForward.answered_at.is_not(None))


def _window_medians(key, where: list, dialect: str) -> dict[object, float | None]:
    """SQLite: the same median per ``key`` (mean of the two middle values), with window functions."""
    seconds = duration_seconds(ItemForward.answered_at, ItemForward.created_at, dialect)
    ranked = (
        select(
            key.label("key"),
            seconds.label("v"),
            func.row_number().over(partition_by=key, order_by=seconds).label("rn"),
            func.count().over(partition_by=key).label("n"),
        )
        .where(*where, ItemForward.answered_at.is_not(None))
        .subquery()
    )
    middle = or_(ranked.c.rn == (ranked.c.n + 1) // 2, ranked.c.rn == (ranked.c.n + 2) // 2)
    return dict(
        db.session.execute(select(ranked.c.key, func.avg(ranked.c.v)).where(middle).group_by(ranked.c.key)).all()
    )


def _overdue_condition(now: datetime) -> list[ColumnElement[bool]]:
    """Overdue today: still in the department's hands, unanswered, past due, the item still open."""
    return [
        ItemForward.revoked_at.is_(None),
        ItemForward.returned_at.is_(None),
        ItemForward.answered_at.is_(None),
        ItemForward.due_at < now,
        Item.status.in_(sorted(ItemStatus.open_statuses())),
    ]


def _tally(key, where: list, rng: DateRange, now: datetime) -> dict[object, list]:
    """(counts…, overdue, median hours) per ``key`` for the forwards matching ``where``.

    PostgreSQL: two grouped reads, the counts with the median (one scan of the range's index entries)
    and the overdue count (the open forwards' index, joined to their items); SQLite a third for the medians.
    """
    dialect = db.engine.dialect.name
    tune_for_aggregates()
    in_range = [*where, _counted(), *forwards_in_range(rng)]
    columns = _count_columns(now) + ([_median_column(dialect)] if dialect == "postgresql" else [])
    rows = db.session.execute(select(key.label("key"), *columns).where(*in_range).group_by(key)).all()
    medians = {row.key: row[-1] for row in rows} if dialect == "postgresql" else _window_medians(key, in_range, dialect)
    overdue = select(key.label("key"), func.count()).join(Item, Item.id == ItemForward.item_id)
    overdue_counts = dict(db.session.execute(overdue.where(*where, *_overdue_condition(now)).group_by(key)).all())
    tally: dict[object, list] = {}
    for row in rows:
        median = medians.get(row.key)
        hours = None if median is None else float(median) / SECONDS_PER_HOUR
        tally[row.key] = [*row[1 : 1 + len(_COUNT_COLUMNS)], overdue_counts.get(row.key, 0), hours]
    for key_value, number in overdue_counts.items():
        tally.setdefault(key_value, [0] * len(_COUNT_COLUMNS) + [number, None])
    return tally


def _figures(department: Department, values: list | None, min_sample: int) -> DepartmentFigures:
    figures = DepartmentFigures(department=department, min_sample=min_sample)
    if values is not None:
        for name, value in zip(_COUNT_COLUMNS, values, strict=False):
            setattr(figures, name, value)
        figures.overdue = values[len(_COUNT_COLUMNS)]
        figures.median_answer_hours = values[len(_COUNT_COLUMNS) + 1]
    return figures


def _units_of(department_ids: list[int]) -> dict[int, int]:
    """{unit id: its department's id} for the units of these departments (one level)."""
    if not department_ids:
        return {}
    rows = db.session.execute(
        select(Department.id, Department.parent_id).where(Department.parent_id.in_(department_ids))
    )
    return {unit_id: parent_id for unit_id, parent_id in rows}


def units_of(department: Department) -> list[Department]:
    """The department's units (one level), by name: whose forwards its figures count too."""
    return list(
        db.session.scalars(
            select(Department).where(Department.parent_id == department.id).order_by(Department.name, Department.id)
        )
    )


def _rollup_key(units: Mapping[int, int]):
    """The department a forward counts under: a unit's forward under its department."""
    if not units:
        return ItemForward.department_id
    return case(dict(units), value=ItemForward.department_id, else_=ItemForward.department_id)


def department_figures(department: Department, rng: DateRange, now: datetime | None = None) -> DepartmentFigures:
    """The figures of one department, its units rolled in (see the module's docstring)."""
    now = now or utcnow()
    units = {unit_id: department.id for unit_id in _units_of([department.id])}
    where = [
        ItemForward.department_id.in_([department.id, *units]),
        # A second hop into one of its units is the department's own item, counted once through its own forward.
        or_(ItemForward.parent_forward_id.is_(None), ItemForward.department_id == department.id),
    ]
    tally = _tally(_rollup_key(units), where, rng, now)
    return _figures(department, tally.get(department.id), current_app.config["STATS_MIN_SAMPLE"])


def _rank_key(figures: DepartmentFigures) -> tuple:
    satisfaction = figures.satisfaction_rate.value
    on_time = figures.on_time_rate.value
    return (
        satisfaction is None,
        -(satisfaction or 0.0),
        on_time is None,
        -(on_time or 0.0),
        -figures.received,
        figures.department.name,
    )


@dataclass
class League:
    """The league table of a region's departments: ranked rows, and those under the minimum sample apart."""

    ranked: list[DepartmentFigures] = field(default_factory=list)
    under_sample: list[DepartmentFigures] = field(default_factory=list)
    min_sample: int = 0


def region_departments(region_id: int) -> list[Department]:
    """The departments of a region and the regions under it that are no other department's unit, by name."""
    return list(
        db.session.scalars(
            select(Department)
            .where(Department.region_id.in_(region_subtree(region_id)), Department.parent_id.is_(None))
            .order_by(Department.name, Department.id)
        )
    )


def league(region_id: int, rng: DateRange, now: datetime | None = None) -> League:
    """Every department of the region (units rolled in), ranked by 满意率 then 按时答复率 (then received).

    A department whose rates are both below the minimum sample is not ranked: it is listed apart,
    with its counts, as the dashboard shows 样本不足. Three grouped reads for the whole region.
    """
    now = now or utcnow()
    min_sample = current_app.config["STATS_MIN_SAMPLE"]
    departments = region_departments(region_id)
    ids = [d.id for d in departments]
    units = _units_of(ids)
    tally = (
        _tally(
            _rollup_key(units),
            # Second hops always go into a unit: the department's own forward counts the item.
            [ItemForward.department_id.in_([*ids, *units]), ItemForward.parent_forward_id.is_(None)],
            rng,
            now,
        )
        if ids
        else {}
    )
    rows = [_figures(d, tally.get(d.id), min_sample) for d in departments]
    table = League(min_sample=min_sample)
    for row in sorted(rows, key=_rank_key):
        (table.under_sample if row.is_under_sample else table.ranked).append(row)
    return table


# --- the 台账 -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Commitment:
    """One open commitment of a department: answer by a due date, or finish by the date it promised."""

    forward: ItemForward
    item: Item
    kind: str  # "answer": not answered yet; "promise": answered, promising completion by ``promised_by``
    due: date
    is_overdue: bool

    @property
    def label(self) -> str:
        """答复期限 / 承诺完成."""
        return "答复期限" if self.kind == "answer" else "承诺完成"


def ledger(department: Department, now: datetime | None = None, limit: int = LEDGER_SIZE) -> list[Commitment]:
    """The department's (and its units') open commitments, overdue first, then by date (``DEFINITIONS['ledger']``)."""
    now = now or utcnow()
    today = today_in_china(now)
    ids = [department.id, *_units_of([department.id])]
    open_items = Item.status.in_(sorted(ItemStatus.open_statuses()))
    to_answer = and_(ItemForward.answered_at.is_(None), ItemForward.returned_at.is_(None), open_items)
    promised = and_(
        ItemForward.promised_by.is_not(None),
        Item.is_solved_per_resident.is_not(True),
        Item.status.not_in([ItemStatus.DECLINED, ItemStatus.DUPLICATE, ItemStatus.WITHDRAWN]),
    )
    base = (
        select(ItemForward, Item)
        .join(Item, Item.id == ItemForward.item_id)
        .where(ItemForward.department_id.in_(ids), _counted())
        .options(selectinload(ItemForward.department))
    )
    # Two reads, each in its own date order, so that the first ``limit`` of each are the earliest.
    rows = [
        *db.session.execute(base.where(to_answer).order_by(ItemForward.due_at, ItemForward.id).limit(limit)),
        *db.session.execute(base.where(promised).order_by(ItemForward.promised_by, ItemForward.id).limit(limit)),
    ]
    commitments = []
    for forward, item in rows:
        if forward.answered_at is None:
            due = today_in_china(forward.due_at)
            commitments.append(Commitment(forward, item, "answer", due, forward.due_at < now))
        else:
            commitments.append(Commitment(forward, item, "promise", forward.promised_by, forward.promised_by < today))
    return sorted(commitments, key=lambda c: (not c.is_overdue, c.due, c.forward.id))[:limit]


# --- who may see, and JSON ------------------------------------------------------------------------------


def _unknown_department() -> UserError:
    return UserError("unknown_department", "找不到该承办单位，或不在您的查看范围内。", 404)


def require_supervisor(user: StaffUser) -> None:
    """The league table is a supervisor's: anyone else is answered 404, with an audit row, as for something unknown."""
    if user.role != StaffRole.SUPERVISOR or user.region_id is None:
        deny(user, "departments", user.region_id or user.station_id or user.deputy_id or user.department_id)
        raise _unknown_department()


def resolve_department(user: StaffUser, raw: object) -> Department:
    """The department asked for (``department=<id>``) if ``user`` may see its figures: a supervisor, for the
    departments of their region and below. 400 for an id that is not a number; 404 for an unknown one; 404 and
    an audit row (``stats_access_denied``, kept through the answer) for anyone else or a department elsewhere."""
    raw = raw.strip() if isinstance(raw, str) else raw
    department = db.session.get(Department, clean_id(raw, "department", "承办单位编号应为数字。"))
    if department is None:
        raise _unknown_department()
    if user.role != StaffRole.SUPERVISOR or not can_manage_region(user, department.region):
        deny(user, "department", department.id)
        raise _unknown_department()
    return department


def _hours(hours: float | None) -> float | None:
    return None if hours is None else round(hours, 2)


def figures_json(figures: DepartmentFigures, rng: DateRange) -> dict:
    """``GET /api/v1/stats?department=ID``: the issue's keys first, then the parts of each rate."""
    satisfaction = figures.satisfaction_rate
    note = None
    if satisfaction.value is None:
        note = f"已评价{satisfaction.denominator}件，少于{figures.min_sample}件，样本不足，不计算满意率。"
    return {
        "department": {"id": figures.department.id, "name": figures.department.name},
        "received": figures.received,
        "answered_on_time": figures.answered_on_time,
        "returned": figures.returned,
        "overdue": figures.overdue,
        "median_answer_hours": _hours(figures.median_answer_hours),
        "satisfaction_rate": satisfaction.value,
        "satisfaction_rate_note": note,
        "answered": figures.answered,
        "answered_late": figures.answered_late,
        "on_time_rate": figures.on_time_rate.value,
        "rated": figures.rated,
        "satisfied": figures.fully_satisfied,
        "basically_satisfied": figures.basically_satisfied,
        "unsatisfied": figures.unsatisfied,
        "min_sample": figures.min_sample,
        "from": rng.start.isoformat(),
        "to": rng.end.isoformat(),
    }
