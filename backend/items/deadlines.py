"""Deadlines of items: when each step is due, pausing while waiting for the resident, and overdue.

Each step's clock starts when the item enters the step:

| status    | ``due_at`` is                                                        |
|-----------|----------------------------------------------------------------------|
| submitted | submission + ``ACCEPT_DUE_DAYS`` (accept within 2 days)               |
| accepted  | acceptance (or reopening) + ``ANSWER_DUE_DAYS`` (answer within 15)    |
| forwarded | the forward's own due date (交办期限), chosen by the deputy           |
| answered  | entering "answered" + ``RESOLVE_DUE_DAYS`` (resolve within 30)        |
| closed    | left as it was, for on-time statistics; never overdue                 |

Days are working days as China counts them when ``DEADLINE_WORKING_DAYS`` is on, calendar
days otherwise: Monday–Friday in China time, less the statutory holidays, plus the weekend
days worked in exchange (调休上班), from ``backend.items.workcalendar`` (the
``chinese_calendar`` library, and the years a supervisor entered on /admin/workdays). A year
whose arrangement nobody gave counts Monday–Friday (``unknown_years`` names it). A deadline
counts whole 24-hour working days from the start time: Friday 10:00 + 2 working days is
Tuesday 10:00; a start on a day off counts from the next working day's 00:00.

The clock and overdue — one definition, used by every page, list and reminder
    An item's clock reads ``now`` while it runs and ``paused_at`` while it waits for the
    resident (等待群众补充): the time spent waiting is not counted. An open item is overdue
    when its clock reading is past ``due_at``, i.e. when its remaining working time has run
    out, counted without the paused time. ``clock_reading`` / ``is_overdue`` /
    ``overdue_by`` are the Python forms and ``overdue_condition`` the SQL form (the inbox,
    the supervision figures and lists, the export, the outbox worker's overdue reminders all
    use these). A paused item therefore neither becomes overdue nor grows later while it
    waits: one that paused in time stays in time, one that paused already late stays exactly
    as late as it was. On resuming, ``due_at`` moves later by the working time spent waiting,
    so the remaining working time after the pause is what it was before it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from flask import current_app
from sqlalchemy import ColumnElement, and_, or_

from backend.errors import UserError
from backend.items import workcalendar
from backend.items.validation import check_date_window
from backend.models import Item, ItemStatus, utcnow
from backend.stations.calendar import CHINA_TZ, today_in_china

MAX_DUE_DAYS_AHEAD = 366  # a forward or an extension may not be due more than a year out


def counts_working_days() -> bool:
    """True when deadlines skip weekends (the ``DEADLINE_WORKING_DAYS`` setting)."""
    return bool(current_app.config["DEADLINE_WORKING_DAYS"])


def _next_midnight(moment: datetime) -> datetime:
    """The start of the next day in China, for a China-time ``moment``."""
    return datetime.combine(moment.date() + timedelta(days=1), time(), CHINA_TZ)


def _require_aware(moment: datetime) -> None:
    if moment.tzinfo is None:
        raise ValueError("naive datetime given; pass an aware datetime")


def add_working_time(start: datetime, amount: timedelta) -> datetime:
    """``start`` plus ``amount`` of counted time (days off skipped when counting working days), in UTC."""
    _require_aware(start)
    if not counts_working_days():
        return (start + amount).astimezone(UTC)
    calendar = workcalendar.current()
    cursor = start.astimezone(CHINA_TZ)
    remaining = amount
    while True:
        day_end = _next_midnight(cursor)
        if not calendar.is_working_day(cursor.date()):
            cursor = day_end
            continue
        available = day_end - cursor
        if remaining <= available:
            return (cursor + remaining).astimezone(UTC)
        remaining -= available
        cursor = day_end


def working_time_between(start: datetime, end: datetime) -> timedelta:
    """The counted time from ``start`` to ``end`` (hours of days off left out when counting working days)."""
    _require_aware(start)
    _require_aware(end)
    if end <= start:
        return timedelta(0)
    if not counts_working_days():
        return end - start
    calendar = workcalendar.current()
    cursor = start.astimezone(CHINA_TZ)
    end = end.astimezone(CHINA_TZ)
    total = timedelta(0)
    while cursor < end:
        day_end = _next_midnight(cursor)
        if calendar.is_working_day(cursor.date()):
            total += min(day_end, end) - cursor
        cursor = day_end
    return total


def due_after(start: datetime, days: int) -> datetime:
    """The moment ``days`` working (or calendar) days after ``start``, in UTC."""
    return add_working_time(start, timedelta(days=days))


def accept_deadline(start: datetime) -> datetime:
    """When an item submitted at ``start`` must be accepted (受理)."""
    return due_after(start, current_app.config["ACCEPT_DUE_DAYS"])


def answer_deadline(start: datetime) -> datetime:
    """When an item accepted (or reopened) at ``start`` must be answered (答复)."""
    return due_after(start, current_app.config["ANSWER_DUE_DAYS"])


def resolve_deadline(start: datetime) -> datetime:
    """When an item answered at ``start`` must be resolved (办结)."""
    return due_after(start, current_app.config["RESOLVE_DUE_DAYS"])


def provisional_years(start: datetime, due: datetime) -> list[int]:
    """Years between ``start`` and ``due`` whose holidays nobody gave: a deadline across them counted Monday–Friday
    (empty when counting calendar days)."""
    if not counts_working_days():
        return []
    return workcalendar.unknown_years(today_in_china(start), today_in_china(due))


def clock_reading(item: Item, now: datetime | None = None) -> datetime:
    """Where the item's clock stands: ``now`` while it runs, the moment it paused while it waits for the resident."""
    return item.paused_at or now or utcnow()


def is_overdue(item: Item, now: datetime | None = None) -> bool:
    """True when an open item's clock is past its due time (its remaining working time ran out, paused time not
    counted: see the module's docstring)."""
    if item.status not in ItemStatus.open_statuses() or item.due_at is None:
        return False
    return clock_reading(item, now) > item.due_at


def overdue_by(item: Item, now: datetime | None = None) -> timedelta:
    """How late an overdue item is (zero if it is not): its clock reading less its due time, so it stops growing
    while the item waits for the resident."""
    if not is_overdue(item, now):
        return timedelta(0)
    return clock_reading(item, now) - item.due_at


def overdue_condition(now: datetime) -> ColumnElement[bool]:
    """The SQL form of ``is_overdue``, for the inbox, supervision and the overdue reminders.

    ``due_at < coalesce(paused_at, now)`` written as two branches, so that the running items'
    branch stays a range on ``due_at`` that the open-items indexes answer.
    """
    return and_(
        Item.status.in_(ItemStatus.open_statuses()),
        Item.due_at.is_not(None),
        or_(
            and_(Item.paused_at.is_(None), Item.due_at < now),
            and_(Item.paused_at.is_not(None), Item.due_at < Item.paused_at),
        ),
    )


def pause_clock(item: Item, now: datetime) -> None:
    """Stop the item's clock: the time until ``resume_clock`` does not count."""
    item.paused_at = now


def resume_clock(item: Item, now: datetime) -> timedelta:
    """Restart the item's clock; ``due_at`` moves later by the counted time spent paused, which is returned."""
    if item.paused_at is None:
        return timedelta(0)
    waited = working_time_between(item.paused_at, now)
    if item.due_at is not None:
        item.due_at = add_working_time(item.due_at, waited)
    item.paused_at = None
    return waited


def end_of_day(day: date) -> datetime:
    """23:59:59 of ``day`` in China, in UTC: a due *date* means the whole of that day."""
    return datetime.combine(day, time(23, 59, 59), CHINA_TZ).astimezone(UTC)


def parse_due(value: object, now: datetime | None = None) -> datetime:
    """A due date given as a ``date``, an aware ``datetime`` or "YYYY-MM-DD", checked to lie ahead (≤ a year).

    A date means the end of that day in China. Raises a 400 UserError on the ``due`` field:
    ``required`` when none is given, ``invalid_due`` for anything that is not a date inside the
    system's calendar (``validation.EARLIEST_DATE`` … ``LATEST_DATE``), then ``due_in_past`` / ``due_too_far``.
    """
    now = now or utcnow()
    message = "请选择有效的办理期限，例如2026-12-31。"
    invalid = UserError("invalid_due", message, 400, field="due")
    if value in (None, ""):
        raise UserError("required", "请选择办理期限。", 400, field="due")
    if isinstance(value, str):
        raw = value.strip()
        if not raw.isascii() or len(raw) > 40:  # fromisoformat takes other digits; no date is longer
            raise invalid
        try:
            value = date.fromisoformat(raw) if len(raw) == 10 else datetime.fromisoformat(raw)
        except ValueError:
            raise invalid from None
    if not isinstance(value, date):  # datetime is a date too
        raise invalid
    # Inside the calendar before any arithmetic: 9999-12-31T23:59:59-14:00 overflows when moved to UTC.
    check_date_window(value if not isinstance(value, datetime) else value.date(), "due", message, "invalid_due")
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise invalid
        due = value.astimezone(UTC)
    else:
        due = end_of_day(value)
    if due <= now:
        raise UserError("due_in_past", "办理期限不能早于现在，请选择今天或以后的日期。", 400, field="due")
    if today_in_china(due) > today_in_china(now) + timedelta(days=MAX_DUE_DAYS_AHEAD):
        raise UserError("due_too_far", "办理期限不能超过一年。", 400, field="due")
    return due
