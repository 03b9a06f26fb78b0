"""Deadlines of items: when each step is due, pausing while waiting for the resident, and overdue.

Each step's clock starts when the item enters the step:

| status    | ``due_at`` is                                                        |
|-----------|----------------------------------------------------------------------|
| submitted | submission + ``ACCEPT_DUE_DAYS`` (accept within 2 days)               |
| accepted  | acceptance (or reopening) + ``ANSWER_DUE_DAYS`` (answer within 15)    |
| forwarded | the forward's own due date (交办期限), chosen by the deputy           |
| answered  | entering "answered" + ``RESOLVE_DUE_DAYS`` (resolve within 30)        |
| closed    | left as it was, for on-time statistics; never overdue                 |

Days are working days (Monday–Friday in China time) when ``DEADLINE_WORKING_DAYS`` is on,
calendar days otherwise. There is no holiday calendar: the Spring Festival, National Day
and the other statutory holidays count as working days, and the weekend days China works
in exchange (调休) do not. A deadline counts whole 24-hour working days from the start
time: Friday 10:00 + 2 working days is Tuesday 10:00; a start on a weekend counts from
Monday 00:00.

While an item waits for the resident (``paused_at`` set) its clock stops: on resuming,
``due_at`` moves later by the working time spent waiting.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from flask import current_app
from sqlalchemy import ColumnElement, and_, or_

from backend.errors import UserError
from backend.items.validation import check_date_window
from backend.models import Item, ItemStatus, utcnow
from backend.stations.calendar import CHINA_TZ, today_in_china

OPEN_STATUSES = frozenset({ItemStatus.SUBMITTED, ItemStatus.ACCEPTED, ItemStatus.FORWARDED, ItemStatus.ANSWERED})
MAX_DUE_DAYS_AHEAD = 366  # a forward or an extension may not be due more than a year out


def counts_working_days() -> bool:
    """True when deadlines skip weekends (the ``DEADLINE_WORKING_DAYS`` setting)."""
    return bool(current_app.config["DEADLINE_WORKING_DAYS"])


def _is_working_day(day: date) -> bool:
    return day.weekday() < 5


def _next_midnight(moment: datetime) -> datetime:
    """The start of the next day in China, for a China-time ``moment``."""
    return datetime.combine(moment.date() + timedelta(days=1), time(), CHINA_TZ)


def _require_aware(moment: datetime) -> None:
    if moment.tzinfo is None:
        raise ValueError("naive datetime given; pass an aware datetime")


def add_working_time(start: datetime, amount: timedelta) -> datetime:
    """``start`` plus ``amount`` of counted time (weekends skipped when counting working days), in UTC."""
    _require_aware(start)
    if not counts_working_days():
        return (start + amount).astimezone(UTC)
    cursor = start.astimezone(CHINA_TZ)
    remaining = amount
    while True:
        day_end = _next_midnight(cursor)
        if not _is_working_day(cursor.date()):
            cursor = day_end
            continue
        available = day_end - cursor
        if remaining <= available:
            return (cursor + remaining).astimezone(UTC)
        remaining -= available
        cursor = day_end


def working_time_between(start: datetime, end: datetime) -> timedelta:
    """The counted time from ``start`` to ``end`` (weekend hours left out when counting working days)."""
    _require_aware(start)
    _require_aware(end)
    if end <= start:
        return timedelta(0)
    if not counts_working_days():
        return end - start
    cursor = start.astimezone(CHINA_TZ)
    end = end.astimezone(CHINA_TZ)
    total = timedelta(0)
    while cursor < end:
        day_end = _next_midnight(cursor)
        if _is_working_day(cursor.date()):
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


def is_overdue(item: Item, now: datetime | None = None) -> bool:
    """True when an open item is past its due time; a paused item is judged at the moment it paused."""
    if item.status not in OPEN_STATUSES or item.due_at is None:
        return False
    reference = item.paused_at or now or utcnow()
    return reference > item.due_at


def overdue_condition(now: datetime) -> ColumnElement[bool]:
    """The SQL form of ``is_overdue``, for inbox and supervisor queries."""
    return and_(
        Item.status.in_(OPEN_STATUSES),
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
