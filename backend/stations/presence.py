"""进站签到 and 见面率: a deputy's visits to their station, and the reception days they were present on.

A check-in opens a visit and the next check-in closes it (a second scan of the station's code, a
second tap). A check-in repeated within ``REPEAT_WINDOW`` of the first (a double tap, two requests
sent at once by a flaky network) changes nothing and answers with the open visit: a visit is
never closed seconds after it was opened. At most one visit per deputy is open
(``uq_station_visits_open_deputy``): of two check-ins racing, one inserts and the other finds it.

Who may record: the deputy themself, from their own account (``may_record``), at their own
station; or the station's administrator for a deputy of the station who has no phone with them,
marked ``PresenceSource.BY_ADMIN``. A visit on a day the calendar did not give the deputy is kept and
marked (``is_reception_day`` false): it counts in 履职积分 but not in 见面率.

见面率 = reception days a deputy was present / reception days the calendar gave them. The calendar
gives a deputy every day of their station's rules that names them or names nobody (a station-wide
day such as 逢六, when every deputy of the station comes in), up to today; the rules read are
today's (the calendar keeps no history), so a rule changed mid-range is read as if it always held.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import Date, Integer, Select, and_, case, cast, func, literal, or_, select, type_coerce
from sqlalchemy.exc import IntegrityError

from backend.audit import record_audit
from backend.errors import UserError
from backend.extensions import db
from backend.models import (
    Deputy,
    PresenceSource,
    ReceptionRule,
    ReceptionRuleKind,
    StaffRole,
    StaffUser,
    Station,
    StationVisit,
    utcnow,
)
from backend.stations.calendar import rule_matches, today_in_china

# A check-in this soon after the open visit's own is a repeat (a double tap), not a check-out.
REPEAT_WINDOW = timedelta(minutes=2)


@dataclass(frozen=True)
class PresenceResult:
    """What one check-in did: ``checked_in`` (a new visit), ``checked_out`` or ``repeated`` (nothing changed)."""

    visit: StationVisit
    action: str

    @property
    def message(self) -> str:
        """The sentence the page and the API show."""
        visit = self.visit
        by_admin = visit.source == PresenceSource.BY_ADMIN
        whose = "该代表" if by_admin else "您"
        leave = "离开时点“代为签退”。" if by_admin else "离开时再扫一次联络站码或点“签退”。"
        if self.action == "checked_out":
            return f"已签退。本次在站{visit_minutes(visit)}分钟。"
        if self.action == "repeated":
            return f"刚刚已签到，无需重复签到；{leave}"
        if not visit.is_reception_day:
            return f"已签到。今天不是{whose}的接待日：本次签到照常记录（计入履职积分），但不计入见面率。"
        return f"已签到。{leave}"


def visit_minutes(visit: StationVisit) -> int:
    """Whole minutes between check-in and check-out (or now, for an open visit)."""
    end = visit.checked_out_at or utcnow()
    return max(0, int((end - visit.checked_in_at).total_seconds() // 60))


def reception_rules_of(deputy: Deputy, station: Station) -> list:
    """The rules of ``station`` that give ``deputy`` a reception day: those naming them, and those naming nobody."""
    return [rule for rule in station.reception_rules if rule.deputy_id in (None, deputy.id)]


def is_reception_day_of(deputy: Deputy, station: Station, day: date) -> bool:
    """True when the calendar gives ``deputy`` a reception day at ``station`` on ``day``."""
    return any(rule_matches(rule, day) for rule in reception_rules_of(deputy, station))


def may_record(user: StaffUser | None, deputy: Deputy, station: Station) -> bool:
    """True when ``user`` may record ``deputy``'s presence at ``station``: the deputy's own account, or the
    station's administrator; and only at the deputy's own station."""
    if user is None or not user.is_active or deputy.station_id != station.id:
        return False
    if user.role == StaffRole.DEPUTY:
        return user.deputy_id == deputy.id
    if user.role == StaffRole.STATION_ADMIN:
        return user.station_id == station.id
    return False


def open_visit(deputy: Deputy) -> StationVisit | None:
    """The deputy's visit not yet checked out, if any."""
    return db.session.scalar(
        select(StationVisit).where(StationVisit.deputy_id == deputy.id, StationVisit.checked_out_at.is_(None))
    )


def check_in_or_out(
    user: StaffUser,
    deputy: Deputy,
    station: Station,
    source: PresenceSource,
    *,
    intent: str | None = None,
    now: datetime | None = None,
) -> PresenceResult:
    """Open a visit of ``deputy`` at ``station``, or close the open one (flushes; the caller commits).

    Without ``intent`` (a scan, the API) the call toggles, a repeat within ``REPEAT_WINDOW`` changing
    nothing. A page's button says what it meant: ``"in"`` never closes a visit (a second tap of 签到),
    ``"out"`` closes the open visit at once and never opens one (a 签退 tapped on a page left open).
    Refused (404 as for an unknown station, with an audit row kept) unless ``may_record``; refused
    (409) for a deputy no longer serving or a station closed; a visit open at another station is
    closed by a check-in here.
    """
    if not may_record(user, deputy, station):
        record_audit(
            "presence_refused",
            user=user,
            object_type="station",
            object_id=station.id,
            data={"deputy_id": deputy.id, "role": user.role.value if user else None},
            keep=True,
        )
        raise UserError("not_your_station", "您不能在这个联络站为该代表签到：只能由代表本人或本站管理员登记。", 404)
    if not deputy.is_serving:
        raise UserError("deputy_not_serving", "该代表已不在任，不能签到。", 409)
    if not station.is_active:
        raise UserError("station_closed", "该联络站已关闭，不能签到。", 409)
    if user.role == StaffRole.STATION_ADMIN:
        source = PresenceSource.BY_ADMIN
    now = now or utcnow()
    current = open_visit(deputy)
    if current is not None:
        if intent == "in":
            return PresenceResult(current, "repeated")
        return _close_or_repeat(user, current, now, at_once=intent == "out")
    if intent == "out":
        raise UserError("no_open_visit", "目前没有未签退的签到，无需签退。", 409)
    day = today_in_china(now)
    visit = StationVisit(
        deputy_id=deputy.id,
        station_id=station.id,
        day=day,
        checked_in_at=now,
        is_reception_day=is_reception_day_of(deputy, station, day),
        source=source,
        recorded_by_id=user.id,
    )
    try:
        with db.session.begin_nested():
            db.session.add(visit)
    except IntegrityError:
        # Another check-in of this deputy committed its visit first (the partial unique index): the same
        # request sent twice at once. This one is the repeat.
        current = open_visit(deputy)
        if current is None:
            raise
        return PresenceResult(current, "repeated")
    record_audit(
        "presence_checked_in",
        user=user,
        object_type="station_visit",
        object_id=visit.id,
        data={"deputy_id": deputy.id, "station_id": station.id, "source": source.value},
    )
    return PresenceResult(visit, "checked_in")


def _close_or_repeat(user: StaffUser, visit: StationVisit, now: datetime, *, at_once: bool) -> PresenceResult:
    if not at_once and now - visit.checked_in_at < REPEAT_WINDOW:
        return PresenceResult(visit, "repeated")
    visit.checked_out_at = now
    db.session.flush()
    record_audit(
        "presence_checked_out",
        user=user,
        object_type="station_visit",
        object_id=visit.id,
        data={"deputy_id": visit.deputy_id, "station_id": visit.station_id},
    )
    return PresenceResult(visit, "checked_out")


def recent_visits(deputy: Deputy, limit: int = 10) -> list[StationVisit]:
    """The deputy's latest visits, newest first."""
    return list(
        db.session.scalars(
            select(StationVisit)
            .where(StationVisit.deputy_id == deputy.id)
            .order_by(StationVisit.checked_in_at.desc(), StationVisit.id.desc())
            .limit(limit)
        )
    )


def visit_json(visit: StationVisit) -> dict:
    """A visit as the API answers it."""
    return {
        "id": visit.id,
        "deputy_id": visit.deputy_id,
        "station_id": visit.station_id,
        "day": visit.day.isoformat(),
        "checked_in_at": visit.checked_in_at.isoformat(),
        "checked_out_at": visit.checked_out_at.isoformat() if visit.checked_out_at else None,
        "is_open": visit.is_open,
        "is_reception_day": visit.is_reception_day,
        "source": visit.source.value,
        "source_label": PresenceSource(visit.source).label,
    }


# --- 见面率 ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MeetingCount:
    """The parts of 见面率: reception days given, and of them the days the deputy was present."""

    present: int
    given: int


def _days(start: date, end: date) -> Iterable[date]:
    day = start
    while day < end:
        yield day
        day += timedelta(days=1)


def _range_days(start: date, end: date):
    """The China dates ``[start, end)`` as a CTE of rows (day, ISO weekday, day of the month), made by the
    database (a recursive query from ``start``): binding a row per day instead cost more to compile than the
    whole query takes to run."""
    first = select(literal(start, Date).label("day")).cte("range_days", recursive=True)
    if db.engine.dialect.name == "postgresql":
        following = first.c.day + 1
    else:  # SQLite keeps a date as text: YYYY-MM-DD
        following = func.date(first.c.day, "+1 day")
    days = first.union_all(select(type_coerce(following, Date)).where(following < literal(end, Date)))
    if db.engine.dialect.name == "postgresql":
        weekday = cast(func.extract("isodow", days.c.day), Integer)
        month_day = cast(func.extract("day", days.c.day), Integer)
    else:  # %w: 0 for Sunday, which is ISO's 7
        weekday = (cast(func.strftime("%w", days.c.day), Integer) + 6) % 7 + 1
        month_day = cast(func.strftime("%d", days.c.day), Integer)
    return select(days.c.day.label("day"), weekday.label("weekday"), month_day.label("month_day")).subquery(
        "range_days_named"
    )


def meeting_counts(deputy_ids: Select | list[int], start: date, end: date, today: date | None = None) -> MeetingCount:
    """见面率's parts summed over the deputies ``deputy_ids`` (ids, or a select of them) for the China dates
    ``[start, end)``, counted up to today, in one query whatever the number of deputies (a county's thousand
    serving deputies are read on every dashboard).

    Each deputy's reception days come from their current station's rules (those naming them or nobody, as
    ``reception_rules_of``): the days of the range a rule matches (``rule_matches`` in SQL), each day once
    however many rules give it; present means a visit checked in at that station on such a day (by the deputy
    or, marked, by the administrator).
    """
    today = today or today_in_china()
    end = min(end, today + timedelta(days=1))
    if start >= end or (isinstance(deputy_ids, list) and not deputy_ids):
        return MeetingCount(0, 0)
    days = _range_days(start, end)
    rule = ReceptionRule
    given = (
        select(Deputy.id.label("deputy_id"), Deputy.station_id, days.c.day)
        .join(
            rule, and_(rule.station_id == Deputy.station_id, or_(rule.deputy_id.is_(None), rule.deputy_id == Deputy.id))
        )
        .join(
            days,
            or_(
                and_(rule.kind == ReceptionRuleKind.WEEKLY, days.c.weekday == rule.day),
                and_(rule.kind == ReceptionRuleKind.MONTHLY, days.c.month_day == rule.day),
                and_(rule.kind == ReceptionRuleKind.XUN, days.c.month_day % 10 == rule.day),
            ),
        )
        .where(Deputy.id.in_(deputy_ids))
        .distinct()
        .cte("given_days")
    )
    was_present = (
        select(StationVisit.id)
        .where(
            StationVisit.deputy_id == given.c.deputy_id,
            StationVisit.station_id == given.c.station_id,
            StationVisit.day == given.c.day,
        )
        .exists()
    )
    given_count, present_count = db.session.execute(
        select(func.count(), func.coalesce(func.sum(case((was_present, 1), else_=0)), 0)).select_from(given)
    ).one()
    return MeetingCount(int(present_count), int(given_count))


def presence_days(deputy: Deputy, start_at: datetime, end_at: datetime) -> set[date]:
    """China dates in ``[start_at, end_at)`` on which the deputy checked in at a station (any day, marked or not)."""
    rows = db.session.scalars(
        select(StationVisit.day)
        .where(
            StationVisit.deputy_id == deputy.id,
            StationVisit.checked_in_at >= start_at,
            StationVisit.checked_in_at < end_at,
        )
        .distinct()
    )
    return set(rows)


def visits_count(station_ids: list[int], start_at: datetime, end_at: datetime, deputy_id: int | None = None) -> int:
    """Visits checked in at these stations in the range (the station's figures), of one deputy if given."""
    if not station_ids:
        return 0
    query = select(func.count()).where(
        StationVisit.station_id.in_(station_ids),
        StationVisit.checked_in_at >= start_at,
        StationVisit.checked_in_at < end_at,
    )
    if deputy_id is not None:
        query = query.where(StationVisit.deputy_id == deputy_id)
    return db.session.scalar(query)
