"""The figures supervisors report (答复率, 办结率, 满意率 …), computed from the items' recorded columns.

A scope (a region and everything under it, a station, or a deputy) and a date range
``[start, end)`` of China dates on ``created_at`` select the items. Every figure is written
once, as the values a few columns must take (``FIGURE_SPECS``): the grouped count classifies
its groups with it, and the list of "the items behind a figure" filters with its SQL form
(``FIGURES``), so a number and its list always agree. The columns read (``status``,
``first_answered_at``, ``resolved_at``, ``satisfaction`` …) are written by the lifecycle in
the same operation as the events they mirror; nothing here can be typed in. What each figure
means, in the words the page shows, is ``DEFINITIONS``.

满意率 counts residents' own items only. Items a deputy entered in person (代表接待选民) have their
satisfaction apart (``in_person_*``), counting only verdicts given after the resident claimed the
item on their own phone (``VERDICT_SOURCES``, ``items.claims``); the verdicts of in-person items
rated without a claim (possible only before claims existed, when the deputy saw the key) are
counted (``unclaimed_rated``) but feed no rate, and neither kind feeds 履职积分's satisfaction part.

Queries per dashboard: one grouped count (a part per month, joined by ``UNION ALL``; by
station or deputy for the breakdown, by status and verdict, with a FILTER count for each other
column a figure asks for), one for the two medians
(on PostgreSQL on a second connection, at the same time), one grouped count of overdue
items, and the first page of the overdue list. On PostgreSQL each reads one index and no
table rows: ``ix_items_station_created`` carries the figures' columns for a station or a
region, ``ix_items_station_open_groups`` the open items. Medians are exact:
``percentile_cont(0.5)`` on PostgreSQL, the same definition with window functions on SQLite.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from itertools import pairwise

from flask import current_app, has_request_context, request
from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    and_,
    bindparam,
    false,
    func,
    literal,
    null,
    or_,
    select,
    text,
    true,
    type_coerce,
    union_all,
)
from sqlalchemy.orm import selectinload

from backend import pagination
from backend.access import can_see_deputy, can_see_region, can_see_station, region_subtree, visible_items_query
from backend.audit import record_audit
from backend.errors import UserError
from backend.extensions import db
from backend.items.deadlines import overdue_condition
from backend.items.validation import clean_id, parse_day
from backend.models import (
    Deputy,
    DeputyStatus,
    Item,
    ItemChannel,
    ItemStatus,
    Region,
    Satisfaction,
    StaffRole,
    StaffUser,
    Station,
    utcnow,
)
from backend.stations import contacts, presence
from backend.stations.calendar import CHINA_TZ, today_in_china

MAX_RANGE_MONTHS = 72  # a deputy's term is five years; a range may span a little more
OVERDUE_LIST_SIZE = 50
BREAKDOWN_MAX_STATIONS = 300  # above this (a province), the per-station table is not built
MAX_LISTED_STATIONS = 5000  # a region's stations are listed by id up to this many, else found by a subquery
SECONDS_PER_HOUR = 3600.0
_MEDIANS_POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="stats-medians")

_CLOSED_OTHER = (ItemStatus.DECLINED, ItemStatus.DUPLICATE, ItemStatus.WITHDRAWN)
_SATISFIED = (Satisfaction.SATISFIED, Satisfaction.BASICALLY)


# --- the definitions, once ----------------------------------------------------------------------

_VALID = frozenset(ItemStatus) - set(_CLOSED_OTHER)
_ANY_VERDICT = frozenset(Satisfaction)

# Whose verdict an item's rating is (被满意 kept out of 满意率):
# - "own": an item the resident sent themselves (code form, mini-program) and rated with its key;
# - "claimed": an item a deputy entered in person, rated after the resident claimed it on their own
#   phone (``items.claims``) — since claims exist, the only way such an item can be rated;
# - "unclaimed": an in-person item rated without (or before) a claim, which only the old entry page
#   allowed: its deputy saw the key, so the verdict may not be the resident's. It counts in no rate.
_CLAIMED_BEFORE_RATING = and_(
    Item.claimed_at.is_not(None), or_(Item.rated_at.is_(None), Item.rated_at >= Item.claimed_at)
)
VERDICT_SOURCES: dict[str, ColumnElement[bool]] = {
    "own": Item.channel != ItemChannel.IN_PERSON,
    "claimed": and_(Item.channel == ItemChannel.IN_PERSON, _CLAIMED_BEFORE_RATING),
    "unclaimed": and_(Item.channel == ItemChannel.IN_PERSON, ~_CLAIMED_BEFORE_RATING),
}

# What the counts are grouped by: each figure is a choice of values along some of these (and of
# "verdict_source", whose values are the conditions above).
DIMENSIONS: dict[str, ColumnElement] = {
    "status": Item.status,
    "has_answer": or_(Item.first_answered_at.is_not(None), Item.resolved_at.is_not(None)),
    "satisfaction": Item.satisfaction,
    "channel": Item.channel,
}
_OWN = frozenset({"own"})
_CLAIMED = frozenset({"claimed"})

# Every figure, once: the values each dimension must take. The SQL condition (``FIGURES``, for the
# list of items behind a figure) and the grouped count (``Counts``) are both derived from this table.
# Items are already limited to the scope, the range and not held; ``overdue`` is apart (see DEFINITIONS).
FIGURE_SPECS: dict[str, dict[str, frozenset]] = {
    "received": {},
    "valid": {"status": _VALID},
    "declined": {"status": frozenset({ItemStatus.DECLINED})},
    "duplicate": {"status": frozenset({ItemStatus.DUPLICATE})},
    "withdrawn": {"status": frozenset({ItemStatus.WITHDRAWN})},
    "answered": {"status": _VALID, "has_answer": frozenset({True})},
    "unanswered": {"status": _VALID, "has_answer": frozenset({False})},
    "resolved": {"status": frozenset({ItemStatus.RESOLVED})},
    "unresolved": {"status": _VALID - {ItemStatus.RESOLVED}},
    # 满意率: residents' own items only.
    "rated": {"status": _VALID, "satisfaction": _ANY_VERDICT, "verdict_source": _OWN},
    "satisfied": {"status": _VALID, "satisfaction": frozenset(_SATISFIED), "verdict_source": _OWN},
    "fully_satisfied": {"status": _VALID, "satisfaction": frozenset({Satisfaction.SATISFIED}), "verdict_source": _OWN},
    "basically_satisfied": {
        "status": _VALID,
        "satisfaction": frozenset({Satisfaction.BASICALLY}),
        "verdict_source": _OWN,
    },
    "unsatisfied": {"status": _VALID, "satisfaction": frozenset({Satisfaction.UNSATISFIED}), "verdict_source": _OWN},
    "in_person": {"channel": frozenset({ItemChannel.IN_PERSON})},
    # In-person items, apart: rated by the resident after claiming them on their own phone.
    "in_person_rated": {"status": _VALID, "satisfaction": _ANY_VERDICT, "verdict_source": _CLAIMED},
    "in_person_satisfied": {"status": _VALID, "satisfaction": frozenset(_SATISFIED), "verdict_source": _CLAIMED},
    "in_person_fully_satisfied": {
        "status": _VALID,
        "satisfaction": frozenset({Satisfaction.SATISFIED}),
        "verdict_source": _CLAIMED,
    },
    "in_person_basically_satisfied": {
        "status": _VALID,
        "satisfaction": frozenset({Satisfaction.BASICALLY}),
        "verdict_source": _CLAIMED,
    },
    "in_person_unsatisfied": {
        "status": _VALID,
        "satisfaction": frozenset({Satisfaction.UNSATISFIED}),
        "verdict_source": _CLAIMED,
    },
    # Verdicts on in-person items given without a claim (before claims existed): in no rate.
    "unclaimed_rated": {"status": _VALID, "satisfaction": _ANY_VERDICT, "verdict_source": frozenset({"unclaimed"})},
}


def _dimension_condition(name: str, values: frozenset) -> ColumnElement[bool]:
    if name == "verdict_source":
        return or_(*[VERDICT_SOURCES[value] for value in sorted(values)])
    column = DIMENSIONS[name]
    if name == "has_answer":
        return column if values == {True} else ~column
    return column.in_(sorted(values))


def figure_condition(name: str) -> ColumnElement[bool]:
    """The SQL condition of a figure (``FIGURE_SPECS``)."""
    spec = FIGURE_SPECS[name]
    if not spec:
        return true()
    return and_(*[_dimension_condition(dim, values) for dim, values in spec.items()])


FIGURES: dict[str, ColumnElement[bool]] = {name: figure_condition(name) for name in FIGURE_SPECS}

FIGURE_LABELS = {
    "received": "收到留言",
    "valid": "有效件",
    "declined": "不予受理",
    "duplicate": "重复件",
    "withdrawn": "群众撤回",
    "answered": "已答复",
    "unanswered": "未答复",
    "resolved": "已办结",
    "unresolved": "未办结",
    "rated": "已评价",
    "satisfied": "满意（含基本满意）",
    "fully_satisfied": "满意",
    "basically_satisfied": "基本满意",
    "unsatisfied": "不满意",
    "in_person": "当面接待收集",
    "in_person_rated": "当面接待件·已评价",
    "in_person_satisfied": "当面接待件·满意（含基本满意）",
    "in_person_fully_satisfied": "当面接待件·满意",
    "in_person_basically_satisfied": "当面接待件·基本满意",
    "in_person_unsatisfied": "当面接待件·不满意",
    "unclaimed_rated": "未经群众认领的当面接待件评价",
    "overdue": "超期件",
}

# What the page says each figure means (shown next to it), and the API documents.
DEFINITIONS = {
    "received": "统计区间内（按群众提交时间，北京时间）本范围收到的留言件数。正在内容审核、尚未送达代表的留言不计入，另行注明。",
    "valid": "收到留言中扣除“不予受理”“重复件”和“群众撤回”（无人答复前群众本人撤回）后的件数；答复率、办结率都以有效件为分母。",
    "answer_rate": "已答复件数 ÷ 有效件数。已答复：代表至少答复过群众一次，或已办结（办结时群众会收到办理结果）。",
    "resolve_rate": "已办结件数 ÷ 有效件数。已办结：目前状态为“已办结”；群众不满意而重新办理的件，再次办结前不算。",
    "satisfaction_rate": "（满意 + 基本满意）件数 ÷ 已评价件数，只计群众自己扫码或用小程序提交的留言。“基本满意”计入满意，"
    "满意、基本满意、不满意的件数另列；每件按群众最近一次评价计；评价只能由群众本人作出，工作人员无法代评。",
    "in_person_satisfaction_rate": "代表接待时录入的意见单独计算：（满意 + 基本满意）件数 ÷ 已评价件数，只计群众用本人手机"
    "扫描回执认领之后作出的评价。不计入上面的满意率，也不计入履职积分的满意项。",
    "unclaimed_rated": "改版前录入的当面接待件，查询码曾交给代表，其评价不能确认是群众本人作出的，不计入任何满意率。",
    "meeting_rate": "见面率 = 代表到站签到的接待日天数 ÷ 接待日历给代表排的接待日天数（统计区间内、截至今天，北京时间）。"
    "接待日历给代表的日子：本站接待日规则中写明该代表值班的日子，以及不指定代表、全站代表进站的日子（如逢六）；"
    "按联络站现行的接待日规则计算。到站：代表本人扫联络站码或在手机上签到，或由联络站管理员代为登记（另行标注）。"
    "非接待日的签到照常记录、计入履职积分，但不计入见面率。联络站和地区的见面率按所辖在任代表的天数合计。",
    "meeting_rate_none": "接待日历在统计区间内没有给代表排接待日，无法计算见面率。",
    "contacts": "代表记录的走访、座谈、电话联系群众的次数（按联系日期）；转为留言件的联系仍计一次。",
    "station_visits": "统计区间内代表到站签到的次数（含非接待日，含管理员代为登记）。",
    "median_first_answer_hours": "从群众提交到第一次答复（没有单独答复而直接办结的，到办结）所用小时数的中位数，"
    "只计已答复的有效件；按自然时间计算，含周末和夜间。",
    "median_resolve_hours": "从群众提交到办结所用小时数的中位数，只计已办结的件；重新办理的件按最近一次办结计。",
    "overdue": "不论何时提交，目前仍在办理中（未办结、未不予受理、非重复件）且已过办理期限的件；"
    "等待群众补充而暂停计时的件，按暂停时是否已过期限计；待审核的件不计入。",
    "min_sample": "分母少于{n}件时不计算比率，只显示“样本不足（n件）”，以免个别件左右比率。",
}


# --- date ranges ---------------------------------------------------------------------------------


def china_midnight(day: date) -> datetime:
    """00:00 of ``day`` in China, as a UTC datetime."""
    return datetime.combine(day, time(), CHINA_TZ).astimezone(UTC)


def _first_of_month(day: date) -> date:
    return day.replace(day=1)


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


@dataclass(frozen=True)
class DateRange:
    """China dates ``[start, end)``: items whose ``created_at`` falls from 00:00 of ``start`` to before 00:00 of ``end``."""

    start: date
    end: date

    @property
    def start_at(self) -> datetime:
        """The first instant in the range (UTC)."""
        return china_midnight(self.start)

    @property
    def end_at(self) -> datetime:
        """The first instant after the range (UTC)."""
        return china_midnight(self.end)

    @property
    def last_day(self) -> date:
        """The last China date inside the range."""
        return self.end - timedelta(days=1)

    def months(self) -> list[date]:
        """The first day of every calendar month the range touches, oldest first."""
        months = []
        month = _first_of_month(self.start)
        while month < self.end:
            months.append(month)
            month = _add_months(month, 1)
        return months

    def params(self) -> dict[str, str]:
        """The range as query-string arguments (``from``, ``to``)."""
        return {"from": self.start.isoformat(), "to": self.end.isoformat()}

    @property
    def label(self) -> str:
        """The range as people say it, both ends counted: 2026年11月1日至30日, 2026年1月1日至12月3日."""
        first, last = self.start, self.last_day
        head = f"{first.year}年{first.month}月{first.day}日"
        if first == last:
            return head
        if first.year != last.year:
            return f"{head}至{last.year}年{last.month}月{last.day}日"
        if first.month != last.month:
            return f"{head}至{last.month}月{last.day}日"
        return f"{head}至{last.day}日"


def default_range(today: date | None = None) -> DateRange:
    """The last twelve calendar months, this one included: from the 1st eleven months ago to tomorrow."""
    today = today or today_in_china()
    return DateRange(_add_months(_first_of_month(today), -11), today + timedelta(days=1))


def month_range(month: date) -> DateRange:
    """One calendar month."""
    start = _first_of_month(month)
    return DateRange(start, _add_months(start, 1))


def parse_range(raw_from: object, raw_to: object, today: date | None = None, raw_until: object = None) -> DateRange:
    """The range from ``from`` and ``to`` (YYYY-MM-DD, ``to`` exclusive); either may be left out (default range).

    ``until`` is the page's end: the last day counted (inclusive), as people pick it; when given
    it wins over ``to`` (which the API and the page's own links keep, exclusive).
    400 ``invalid_from`` / ``invalid_to`` / ``invalid_until`` for a bad date, ``invalid_range``
    when the range holds no day, ``range_too_long`` beyond ``MAX_RANGE_MONTHS``.
    """
    default = default_range(today)
    start = parse_day(raw_from, "from", "起始日期") if raw_from not in (None, "") else default.start
    if raw_until not in (None, ""):
        end = parse_day(raw_until, "until", "截止日期") + timedelta(days=1)
        if start >= end:
            raise UserError("invalid_range", "起始日期不能晚于截止日期。", 400, field="from")
    else:
        end = parse_day(raw_to, "to", "截止日期") if raw_to not in (None, "") else default.end
    if start >= end:
        raise UserError("invalid_range", "起始日期须早于截止日期（截止日期当天不计入）。", 400, field="from")
    if len(DateRange(start, end).months()) > MAX_RANGE_MONTHS:
        raise UserError("range_too_long", f"统计区间最长{MAX_RANGE_MONTHS // 12}年，请缩短。", 400, field="from")
    return DateRange(start, end)


# --- scopes --------------------------------------------------------------------------------------

SCOPE_KINDS = ("region", "station", "deputy")


@dataclass(frozen=True)
class Scope:
    """Whose figures: a region (and everything under it), a station, or a deputy."""

    kind: str
    region: Region | None = None
    station: Station | None = None
    deputy: Deputy | None = None
    # For a deputy seen by a station administrator or a supervisor: only the items that user may see
    # (a deputy who moved keeps items at the old station).
    restrict: ColumnElement[bool] | None = None

    @property
    def label(self) -> str:
        """The scope in Chinese: 炎陵县 / 霞阳镇人大代表联络站 / 张秀英代表."""
        if self.kind == "region":
            return self.region.name
        if self.kind == "station":
            return self.station.name
        return f"{self.deputy.name}代表"

    @property
    def key(self) -> str:
        """The region's code, or the station's or deputy's id, as the query string carries it."""
        if self.kind == "region":
            return self.region.code
        return str(self.station.id if self.kind == "station" else self.deputy.id)

    def params(self) -> dict[str, str]:
        """The scope as a query-string argument (``region=…``, ``station=…`` or ``deputy=…``)."""
        return {self.kind: self.key}

    @cached_property
    def region_station_ids(self) -> list[int]:
        """Ids of the stations in the region and under it (read once per scope)."""
        stations = select(Station.id).where(Station.region_id.in_(region_subtree(self.region.id))).order_by(Station.id)
        return list(db.session.scalars(stations))

    def condition(self) -> ColumnElement[bool]:
        """The scope as a condition on ``items``."""
        if self.kind == "region":
            # A list of ids rather than a subquery: PostgreSQL then knows how many stations it scans
            # and reads each one's index range directly (about 10 % faster on a county of 1M items).
            # Written into the SQL (they are integers read from the database), not sent as parameters:
            # the grouped count repeats the condition once per month, which could pass SQLite's limit
            # on parameters for a big region over years.
            ids = self.region_station_ids
            if len(ids) > MAX_LISTED_STATIONS:
                subquery = select(Station.id).where(Station.region_id.in_(region_subtree(self.region.id)))
                return Item.station_id.in_(subquery)
            if not ids:
                return false()
            return Item.station_id.in_(bindparam("station_ids", ids, expanding=True, literal_execute=True))
        if self.kind == "station":
            return Item.station_id == self.station.id
        condition = Item.deputy_id == self.deputy.id
        return and_(condition, self.restrict) if self.restrict is not None else condition

    @property
    def child_kind(self) -> str | None:
        """What the breakdown table lists: stations of a region, deputies of a station, nothing for a deputy."""
        return {"region": "station", "station": "deputy"}.get(self.kind)


def _restriction(user: StaffUser) -> ColumnElement[bool] | None:
    """The user's own visibility rule (``access.visible_items_query``), for a deputy's figures seen by others."""
    if user.role == StaffRole.DEPUTY:
        return None
    return visible_items_query(user).whereclause


def home_scope(user: StaffUser) -> Scope | None:
    """The scope a user sees first: a supervisor's region, a station administrator's station, a deputy's own."""
    if user is None or not user.is_active:
        return None
    if user.role == StaffRole.SUPERVISOR and user.region is not None:
        return Scope("region", region=user.region)
    if user.role == StaffRole.STATION_ADMIN and user.station is not None:
        return Scope("station", station=user.station)
    if user.role == StaffRole.DEPUTY and user.deputy is not None:
        return Scope("deputy", deputy=user.deputy, station=user.deputy.station)
    return None


def deny(user: StaffUser, kind: str, key: object) -> UserError:
    """Write the refusal's audit row (kept through the error answer); the 404 to raise (as for something unknown)."""
    record_audit(
        "stats_access_denied",
        user=user,
        object_type=kind,
        object_id=key,
        data={"path": request.path[:500] if has_request_context() else "", "role": user.role.value},
        keep=True,
    )
    return not_found()


def not_found() -> UserError:
    """The 404 of a scope that is unknown or outside the user's view: the two look alike."""
    return UserError("unknown_scope", "找不到该地区、联络站或代表，或不在您的查看范围内。", 404)


def _as_id(raw: str, kind: str, label: str) -> int:
    return clean_id(raw.strip(), kind, f"{label}编号应为数字。")


def resolve_scope(user: StaffUser, args: Mapping[str, str], *, required: bool = False) -> Scope:
    """The scope asked for by ``region=<code>``, ``station=<id>`` or ``deputy=<id>`` (exactly one), checked for ``user``.

    Without any: the user's own scope, or 400 ``scope_required`` when ``required``. Two or
    more: 400 ``too_many_scopes``. A region code that does not exist: 400 ``unknown_region``.
    An unknown station or deputy, or anything outside the user's scope: 404, and for
    something that exists an audit row (committed) — the two answers look the same.
    """
    given = {kind: args.get(kind) for kind in SCOPE_KINDS if args.get(kind) not in (None, "")}
    if len(given) > 1:
        raise UserError("too_many_scopes", "请只选择一个范围：地区、联络站或代表之一。", 400)
    if not given:
        if required:
            raise UserError("scope_required", "请指定统计范围：region（地区代码）、station 或 deputy。", 400)
        scope = home_scope(user)
        if scope is None:
            raise not_found()
        return scope
    kind, raw = next(iter(given.items()))
    if kind == "region":
        code = raw.strip()
        region = db.session.scalar(select(Region).where(Region.code == code)) if len(code) <= 12 else None
        if region is None:
            raise UserError("unknown_region", "没有这个地区代码。", 400, field="region")
        if not can_see_region(user, region):
            raise deny(user, "region", region.code)
        return Scope("region", region=region)
    if kind == "station":
        station = db.session.get(Station, _as_id(raw, "station", "联络站"))
        if station is None:
            raise not_found()
        if not can_see_station(user, station):
            raise deny(user, "station", station.id)
        return Scope("station", station=station)
    deputy = db.session.get(Deputy, _as_id(raw, "deputy", "代表"))
    if deputy is None:
        raise not_found()
    if not can_see_deputy(user, deputy):
        raise deny(user, "deputy", deputy.id)
    return Scope("deputy", deputy=deputy, station=deputy.station, restrict=_restriction(user))


# --- the figures -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rate:
    """A ratio with its parts; ``value`` is None when the denominator is below the minimum sample."""

    numerator: int
    denominator: int
    min_sample: int

    @property
    def value(self) -> float | None:
        """numerator / denominator, or None below the minimum sample."""
        if self.denominator < self.min_sample or self.denominator == 0:
            return None
        return self.numerator / self.denominator

    @property
    def percent_label(self) -> str:
        """93.8% — or 样本不足（8件）."""
        value = self.value
        if value is None:
            return f"样本不足（{self.denominator}件）"
        return f"{value * 100:.1f}%"


@dataclass
class Counts:
    """The counted figures of one group (the whole scope, a month, a station or a deputy)."""

    received: int = 0
    declined: int = 0
    duplicate: int = 0
    withdrawn: int = 0
    answered: int = 0
    resolved: int = 0
    rated: int = 0
    fully_satisfied: int = 0
    basically_satisfied: int = 0
    unsatisfied: int = 0
    in_person: int = 0
    in_person_rated: int = 0
    in_person_fully_satisfied: int = 0
    in_person_basically_satisfied: int = 0
    in_person_unsatisfied: int = 0
    unclaimed_rated: int = 0

    COUNTED = (
        "received",
        "declined",
        "duplicate",
        "withdrawn",
        "answered",
        "resolved",
        "rated",
        "fully_satisfied",
        "basically_satisfied",
        "unsatisfied",
        "in_person",
        "in_person_rated",
        "in_person_fully_satisfied",
        "in_person_basically_satisfied",
        "in_person_unsatisfied",
        "unclaimed_rated",
    )

    def add(self, received: int, counted: Iterable[tuple[str, int]]) -> None:
        """Add ``received`` items, and to each figure named in ``counted`` its number of them."""
        self.received += received
        for name, number in counted:
            setattr(self, name, getattr(self, name) + number)

    @property
    def valid(self) -> int:
        """Received minus declined, duplicate and withdrawn."""
        return self.received - self.declined - self.duplicate - self.withdrawn

    @property
    def satisfied(self) -> int:
        """满意 + 基本满意 (residents' own items)."""
        return self.fully_satisfied + self.basically_satisfied

    @property
    def in_person_satisfied(self) -> int:
        """满意 + 基本满意 of in-person items, rated after the resident claimed them."""
        return self.in_person_fully_satisfied + self.in_person_basically_satisfied

    def rates(self, min_sample: int) -> dict[str, Rate]:
        """答复率, 办结率, 满意率 (residents' own items), and in-person items' satisfaction apart."""
        return {
            "answer_rate": Rate(self.answered, self.valid, min_sample),
            "resolve_rate": Rate(self.resolved, self.valid, min_sample),
            "satisfaction_rate": Rate(self.satisfied, self.rated, min_sample),
            "in_person_satisfaction_rate": Rate(self.in_person_satisfied, self.in_person_rated, min_sample),
        }


@dataclass
class Group:
    """A row of the trend (a month) or of the breakdown (a station or deputy)."""

    key: object
    label: str
    counts: Counts
    rates: dict[str, Rate]
    overdue: int = 0


@dataclass
class Figures:
    """Everything the dashboard and the stats API show for a scope and range."""

    scope: Scope
    range: DateRange
    now: datetime
    min_sample: int
    counts: Counts
    rates: dict[str, Rate]
    median_first_answer_hours: float | None
    median_resolve_hours: float | None
    overdue: int
    held: int
    overdue_items: list[Item] = field(default_factory=list)
    months: list[Group] = field(default_factory=list)
    children: list[Group] = field(default_factory=list)
    meeting: Rate | None = None  # 见面率; None when the calendar gave no reception day (or too many stations)
    contacts: int = 0  # 走访/座谈/电话 logged
    station_visits: int = 0  # check-ins at the scope's stations


def month_bounds(rng: DateRange) -> list[tuple[datetime, datetime]]:
    """Each month of the range as ``[start, end)`` in UTC, cut to the range: China month boundaries."""
    edges = [rng.start_at, *(china_midnight(month) for month in rng.months()[1:]), rng.end_at]
    return list(pairwise(edges))


def _child_column(scope: Scope):
    if scope.child_kind == "station":
        return Item.station_id
    if scope.child_kind == "deputy":
        return Item.deputy_id
    return null()


def in_range(scope: Scope, rng: DateRange) -> list[ColumnElement[bool]]:
    """The WHERE clauses of a scope and range (held items included)."""
    return [scope.condition(), Item.created_at >= rng.start_at, Item.created_at < rng.end_at]


def _is_postgresql() -> bool:
    return db.engine.dialect.name == "postgresql"


# PostgreSQL, for this transaction only: the medians sort in memory, not on disk; no JIT compilation,
# which costs more than these queries save; and no parallel workers: the dashboard already runs its
# two big reads side by side on two connections, and more processes only take turns on the same cores.
_AGGREGATE_SETTINGS = text(
    "SELECT set_config('work_mem', '64MB', true), set_config('jit', 'off', true),"
    " set_config('max_parallel_workers_per_gather', '0', true)"
)


def tune_for_aggregates() -> None:
    """PostgreSQL: ``_AGGREGATE_SETTINGS`` for the session's transaction."""
    if _is_postgresql():
        db.session.execute(_AGGREGATE_SETTINGS)


# The grouped count groups items by the values of these dimensions; any other dimension a counted
# figure asks for is counted with a FILTER instead (grouping by it costs more), so a counted figure
# may ask for one such dimension at most.
GROUPED_DIMENSIONS = ("status", "satisfaction")
_COUNTED_FIGURES = tuple(name for name in Counts.COUNTED if name != "received")


def _split_spec(name: str) -> tuple[dict[str, frozenset], tuple[str, frozenset] | None]:
    """A counted figure's spec: (the values its grouped dimensions must take, its one filtered dimension or None)."""
    spec = FIGURE_SPECS[name]
    grouped = {dim: values for dim, values in spec.items() if dim in GROUPED_DIMENSIONS}
    filtered = [(dim, values) for dim, values in spec.items() if dim not in GROUPED_DIMENSIONS]
    if len(filtered) > 1:
        raise ValueError(f"figure {name!r} asks for more than one dimension outside GROUPED_DIMENSIONS")
    return grouped, filtered[0] if filtered else None


# The filtered dimensions, each counted in a column of its own after the items not held and the held ones.
_FILTERED = tuple(dict.fromkeys(f for name in _COUNTED_FIGURES if (f := _split_spec(name)[1]) is not None))


def _count_rows(scope: Scope, rng: DateRange, with_children: bool):
    """Items per month × station/deputy × grouped dimensions, as (month index, child, *grouped values,
    items not held, held items, *items not held of each ``_FILTERED`` dimension).

    One grouped ``SELECT`` per month, joined by ``UNION ALL``: each reads its month's slice of
    the (station, created_at) index, so no row has its month computed, and each month's groups
    are counted apart.
    """
    child = _child_column(scope) if with_children else null()
    scope_condition = scope.condition()
    not_held = Item.is_held.is_(False)
    columns = [
        child.label("child"),
        # Raw values (no enum conversion per row): StrEnum members equal and hash as their values.
        *[type_coerce(DIMENSIONS[name], String()).label(name) for name in GROUPED_DIMENSIONS],
        func.count().filter(not_held).label("number"),
        func.count().filter(Item.is_held.is_(True)).label("held"),
        *[func.count().filter(and_(not_held, _dimension_condition(dim, values))) for dim, values in _FILTERED],
    ]
    group_by = [text(str(position)) for position in range(2, 3 + len(GROUPED_DIMENSIONS))]
    months = [
        select(literal(index).label("month"), *columns)
        .where(scope_condition, Item.created_at >= start, Item.created_at < end)
        .group_by(*group_by)
        for index, (start, end) in enumerate(month_bounds(rng))
    ]
    query = months[0] if len(months) == 1 else union_all(*months)
    return db.session.execute(query).all()


def _figures_of(grouped_values: tuple) -> tuple[tuple[str, int], ...]:
    """The figures a group with these grouped dimension values counts towards (``FIGURE_SPECS``), each with
    the column of its number among (items not held, *items not held of each ``_FILTERED`` dimension)."""
    values = dict(zip(GROUPED_DIMENSIONS, grouped_values, strict=True))
    figures = []
    for name in _COUNTED_FIGURES:
        grouped, filtered = _split_spec(name)
        if all(values[dim] in allowed for dim, allowed in grouped.items()):
            figures.append((name, 0 if filtered is None else 1 + _FILTERED.index(filtered)))
    return tuple(figures)


def _add_up(tally: dict[tuple, list[int]], key: tuple, numbers: list[int]) -> None:
    current = tally.get(key)
    if current is None:
        tally[key] = list(numbers)
    else:
        for position, number in enumerate(numbers):
            current[position] += number


def _hours(seconds) -> float | None:
    return None if seconds is None else float(seconds) / SECONDS_PER_HOUR


def duration_seconds(later, earlier, dialect: str):
    """``later - earlier`` in seconds, as each engine computes it."""
    if dialect == "postgresql":
        return func.date_part("epoch", later - earlier)
    return (func.julianday(later) - func.julianday(earlier)) * 86400.0


def _first_answer_at():
    return func.coalesce(Item.first_answered_at, Item.resolved_at)


def _postgresql_medians_query(scope: Scope, rng: DateRange) -> Select:
    where = [*in_range(scope, rng), Item.is_held.is_(False)]
    return select(
        func.percentile_cont(0.5)
        .within_group(duration_seconds(_first_answer_at(), Item.created_at, "postgresql"))
        .filter(FIGURES["answered"]),
        func.percentile_cont(0.5)
        .within_group(duration_seconds(Item.resolved_at, Item.created_at, "postgresql"))
        .filter(FIGURES["resolved"]),
    ).where(*where)


def _run_medians(engine, query: Select) -> tuple[float | None, float | None]:
    """Run the medians on a connection of their own (a thread of the pool), with ``_AGGREGATE_SETTINGS``."""
    with engine.connect() as connection:
        connection.execute(_AGGREGATE_SETTINGS)
        answer, resolve = connection.execute(query).one()
        connection.rollback()
    return _hours(answer), _hours(resolve)


def medians(scope: Scope, rng: DateRange) -> tuple[float | None, float | None]:
    """Exact medians, in hours, of the time to the first answer and to resolution (see DEFINITIONS)."""
    if _is_postgresql():
        return _run_medians(db.engine, _postgresql_medians_query(scope, rng))
    where = [*in_range(scope, rng), Item.is_held.is_(False)]
    to_answer = duration_seconds(_first_answer_at(), Item.created_at, "sqlite")
    to_resolve = duration_seconds(Item.resolved_at, Item.created_at, "sqlite")
    return (
        _hours(_median_by_window(to_answer, [*where, FIGURES["answered"]])),
        _hours(_median_by_window(to_resolve, [*where, FIGURES["resolved"]])),
    )


def _median_by_window(value, where: list) -> float | None:
    """The median as ``percentile_cont(0.5)`` defines it (mean of the two middle values), with window functions."""
    ranked = select(
        value.label("v"),
        func.row_number().over(order_by=value).label("rn"),
        func.count().over().label("n"),
    ).where(*where)
    ranked = ranked.subquery()
    middle = or_(ranked.c.rn == (ranked.c.n + 1) // 2, ranked.c.rn == (ranked.c.n + 2) // 2)
    return db.session.scalar(select(func.avg(ranked.c.v)).where(middle))


def overdue_filter(scope: Scope, now: datetime) -> list[ColumnElement[bool]]:
    """The WHERE clauses of the overdue list: open, past due, not held, in the scope — whenever submitted."""
    return [scope.condition(), overdue_condition(now), Item.is_held.is_(False)]


def _overdue_by_child(scope: Scope, now: datetime, with_children: bool) -> dict[object, int]:
    child = _child_column(scope) if with_children else null()
    query = select(child.label("child"), func.count()).where(*overdue_filter(scope, now)).group_by(text("1"))
    return dict(db.session.execute(query).all())


def compute(
    scope: Scope,
    rng: DateRange,
    *,
    now: datetime | None = None,
    with_children: bool = True,
    overdue_list: int = 0,
) -> Figures:
    """Every figure of ``scope`` over ``rng``: totals, rates, medians, overdue count, monthly trend, breakdown;
    with ``overdue_list``, also that many of the most overdue items (``Figures.overdue_items``).

    On PostgreSQL the medians are read on a second connection, at the same time as the rest:
    call it on committed data (as the pages and the API do), not in the middle of a write.
    """
    now = now or utcnow()
    min_sample = current_app.config["STATS_MIN_SAMPLE"]
    with_children = with_children and _breakdown_possible(scope)
    medians_future = None
    if _is_postgresql():
        # The two big reads run side by side, the medians on a second connection: on a county of a
        # million items each is a scan of a third of them, and PostgreSQL runs one query on one core.
        # The two may see snapshots a few milliseconds apart; nothing else is read from the second one.
        medians_future = _MEDIANS_POOL.submit(_run_medians, db.engine, _postgresql_medians_query(scope, rng))
    tune_for_aggregates()
    months = rng.months()
    totals = Counts()
    per_month = {index: Counts() for index in range(len(months))}
    per_child: dict[object, Counts] = {}
    held = 0
    # Thousands of grouped rows for a county: add them up by (month or child, grouped values) first,
    # then find the figures of each distinct combination once.
    by_month: dict[tuple, list[int]] = {}
    by_child: dict[tuple, list[int]] = {}
    grouped_count = len(GROUPED_DIMENSIONS)
    for month, child, *values in _count_rows(scope, rng, with_children):
        grouped, (number, held_here, *filtered) = tuple(values[:grouped_count]), values[grouped_count:]
        held += held_here
        numbers = [number, *filtered]
        _add_up(by_month, (month, grouped), numbers)
        if with_children:
            _add_up(by_child, (child, grouped), numbers)
    figures_of = {grouped: _figures_of(grouped) for _, grouped in by_month}
    for (month, grouped), numbers in by_month.items():
        counted = [(name, numbers[column]) for name, column in figures_of[grouped]]
        per_month[month].add(numbers[0], counted)
        totals.add(numbers[0], counted)
    for (child, grouped), numbers in by_child.items():
        counted = [(name, numbers[column]) for name, column in figures_of[grouped]]
        per_child.setdefault(child, Counts()).add(numbers[0], counted)
    overdue = _overdue_by_child(scope, now, with_children)
    listed = overdue_items(scope, now, overdue_list) if overdue_list else []
    answer_hours, resolve_hours = medians_future.result() if medians_future else medians(scope, rng)
    figures = Figures(
        scope=scope,
        range=rng,
        now=now,
        min_sample=min_sample,
        counts=totals,
        rates=totals.rates(min_sample),
        median_first_answer_hours=answer_hours,
        median_resolve_hours=resolve_hours,
        overdue=sum(overdue.values()),
        held=held,
        overdue_items=listed,
    )
    figures.months = [
        Group(month, f"{month.year}年{month.month}月", counts, counts.rates(min_sample))
        for month, counts in zip(months, (per_month[i] for i in range(len(months))), strict=True)
    ]
    if with_children:
        figures.children = _children(scope, per_child, overdue, min_sample)
    _add_presence(figures, now)
    return figures


def _scope_stations_and_deputies(scope: Scope) -> tuple[list[int], Select | list[int]] | None:
    """The scope's stations and its serving deputies' ids (a select, not loaded: a county has a thousand), for
    见面率 and contacts; None for a region of more than ``BREAKDOWN_MAX_STATIONS`` stations (a province: not
    computed on each request)."""
    if scope.kind == "deputy":
        return [scope.deputy.station_id], [scope.deputy.id]
    if scope.kind == "station":
        station_ids = [scope.station.id]
    else:
        if len(scope.region_station_ids) > BREAKDOWN_MAX_STATIONS:
            return None
        station_ids = scope.region_station_ids
    if not station_ids:
        return [], []
    deputy_ids = select(Deputy.id).where(Deputy.station_id.in_(station_ids), Deputy.status == DeputyStatus.SERVING)
    return station_ids, deputy_ids


def _add_presence(figures: Figures, now: datetime) -> None:
    """见面率 (from recorded visits and the calendar), contacts logged and check-ins, into ``figures``."""
    found = _scope_stations_and_deputies(figures.scope)
    if found is None:
        return
    station_ids, deputy_ids = found
    rng = figures.range
    counted = presence.meeting_counts(deputy_ids, rng.start, rng.end, today_in_china(now))
    if counted.given:
        figures.meeting = Rate(counted.present, counted.given, figures.min_sample)
    if figures.scope.kind == "deputy":
        figures.contacts = contacts.contacts_count(start=rng.start, end=rng.end, deputy_id=figures.scope.deputy.id)
        figures.station_visits = presence.visits_count(
            station_ids, rng.start_at, rng.end_at, deputy_id=figures.scope.deputy.id
        )
    else:
        figures.contacts = contacts.contacts_count(start=rng.start, end=rng.end, station_ids=station_ids)
        figures.station_visits = presence.visits_count(station_ids, rng.start_at, rng.end_at)


def _breakdown_possible(scope: Scope) -> bool:
    """The per-station table of a region is built up to ``BREAKDOWN_MAX_STATIONS`` stations."""
    if scope.kind != "region":
        return scope.child_kind is not None
    return len(scope.region_station_ids) <= BREAKDOWN_MAX_STATIONS


def _children(scope: Scope, per_child: dict, overdue: dict, min_sample: int) -> list[Group]:
    """The breakdown: every station of the region (or deputy of the station), with none left out for having no items."""
    if scope.kind == "region":
        stations = db.session.scalars(
            select(Station).where(Station.region_id.in_(region_subtree(scope.region.id))).order_by(Station.id)
        ).all()
        known = [(s.id, s.name) for s in stations]
    else:
        deputies = db.session.scalars(
            select(Deputy).where(Deputy.station_id == scope.station.id).order_by(Deputy.id)
        ).all()
        known = [(d.id, d.name if d.is_serving else f"{d.name}（已离任）") for d in deputies]
        # Items of deputies since moved elsewhere, and items without a deputy.
        names = dict(known)
        extra = [key for key in per_child if key not in names]
        if extra:
            moved = db.session.scalars(select(Deputy).where(Deputy.id.in_([k for k in extra if k is not None])))
            known += [(d.id, f"{d.name}（已调离）") for d in moved]
            if None in extra:
                known.append((None, "未指定代表"))
    groups = []
    for key, label in known:
        counts = per_child.get(key, Counts())
        groups.append(Group(key, label, counts, counts.rates(min_sample), overdue.get(key, 0)))
    return groups


# --- the items behind a figure ---------------------------------------------------------------------

LISTABLE = (*FIGURES, "overdue", "held")


def figure_items_query(scope: Scope, rng: DateRange, figure: str, now: datetime | None = None) -> Select:
    """``select(Item)`` of exactly the items a figure counts (no order, no paging): the dashboard's links."""
    if figure == "overdue":
        return select(Item).where(*overdue_filter(scope, now or utcnow()))
    if figure == "held":
        return select(Item).where(*in_range(scope, rng), Item.is_held.is_(True))
    return select(Item).where(*in_range(scope, rng), Item.is_held.is_(False), FIGURES[figure])


def figure_items_page(scope: Scope, rng: DateRange, figure: str, page: int, per_page: int, now: datetime):
    """(items of one page, total) for a figure's list; overdue most overdue first, others newest first."""
    query = figure_items_query(scope, rng, figure, now)
    total = db.session.scalar(query.with_only_columns(func.count()).order_by(None))
    if figure == "overdue":
        order = (Item.due_at.asc(), Item.id.asc())
    else:
        order = (Item.created_at.desc(), Item.id.desc())
    items = db.session.scalars(
        query.options(selectinload(Item.deputy), selectinload(Item.station))
        .order_by(*order)
        .offset(pagination.offset(page, per_page))
        .limit(per_page)
    ).all()
    return items, total


def overdue_items(scope: Scope, now: datetime, limit: int = OVERDUE_LIST_SIZE) -> list[Item]:
    """The most overdue items of the scope, first ``limit``.

    The ids are found first (an index-only scan where the open-items index covers them),
    then only those rows are read.
    """
    ids = list(
        db.session.scalars(
            select(Item.id).where(*overdue_filter(scope, now)).order_by(Item.due_at.asc(), Item.id.asc()).limit(limit)
        )
    )
    if not ids:
        return []
    items = db.session.scalars(
        select(Item).where(Item.id.in_(ids)).options(selectinload(Item.deputy), selectinload(Item.station))
    ).all()
    position = {item_id: index for index, item_id in enumerate(ids)}
    return sorted(items, key=lambda item: position[item.id])


# --- JSON -----------------------------------------------------------------------------------------


def _rounded(hours: float | None) -> float | None:
    return None if hours is None else round(hours, 2)


def _meeting_note(figures: Figures) -> str | None:
    """Why 见面率 is null, in Chinese; None when it is a number."""
    meeting = figures.meeting
    if meeting is None:
        return DEFINITIONS["meeting_rate_none"]
    if meeting.value is None:
        return f"样本不足：接待日少于{figures.min_sample}天（{meeting.denominator}天），不计算比率。"
    return None


def figures_json(figures: Figures) -> dict:
    """The stats API's answer: the issue's keys first, then the parts of each rate and the definitions' context."""
    counts, rates = figures.counts, figures.rates
    return {
        "received": counts.received,
        "answered": counts.answered,
        "resolved": counts.resolved,
        "rated": counts.rated,
        "answer_rate": rates["answer_rate"].value,
        "resolve_rate": rates["resolve_rate"].value,
        "satisfaction_rate": rates["satisfaction_rate"].value,
        "median_first_answer_hours": _rounded(figures.median_first_answer_hours),
        "median_resolve_hours": _rounded(figures.median_resolve_hours),
        "overdue": figures.overdue,
        "valid": counts.valid,
        "declined": counts.declined,
        "duplicate": counts.duplicate,
        "withdrawn": counts.withdrawn,
        "satisfied": counts.fully_satisfied,
        "basically_satisfied": counts.basically_satisfied,
        "unsatisfied": counts.unsatisfied,
        "in_person": counts.in_person,
        "in_person_rated": counts.in_person_rated,
        "in_person_satisfied": counts.in_person_fully_satisfied,
        "in_person_basically_satisfied": counts.in_person_basically_satisfied,
        "in_person_unsatisfied": counts.in_person_unsatisfied,
        "in_person_satisfaction_rate": rates["in_person_satisfaction_rate"].value,
        "unclaimed_rated": counts.unclaimed_rated,
        "meeting_rate": figures.meeting.value if figures.meeting else None,
        "meeting_rate_note": _meeting_note(figures),
        "meeting_days_present": figures.meeting.numerator if figures.meeting else 0,
        "meeting_days_given": figures.meeting.denominator if figures.meeting else 0,
        "contacts": figures.contacts,
        "station_visits": figures.station_visits,
        "held": figures.held,
        "min_sample": figures.min_sample,
        "scope": {"kind": figures.scope.kind, "key": figures.scope.key, "label": figures.scope.label},
        "from": figures.range.start.isoformat(),
        "to": figures.range.end.isoformat(),
        "months": [
            {
                "month": group.key.strftime("%Y-%m"),
                "received": group.counts.received,
                "valid": group.counts.valid,
                "answered": group.counts.answered,
                "resolved": group.counts.resolved,
                "rated": group.counts.rated,
                "satisfied": group.counts.satisfied,
                "answer_rate": group.rates["answer_rate"].value,
                "resolve_rate": group.rates["resolve_rate"].value,
                "satisfaction_rate": group.rates["satisfaction_rate"].value,
            }
            for group in figures.months
        ],
    }
