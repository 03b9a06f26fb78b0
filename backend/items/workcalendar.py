"""Which days China works: statutory holidays (放假) and the weekend days worked in exchange (调休上班).

Where the days come from
    The ``chinese_calendar`` library (PyPI ``chinese-calendar``, kept up to date by its
    maintainer each November when the State Council publishes the next year's arrangement)
    knows 2004–2026 in version 1.11.0; for any other year it raises ``NotImplementedError``.
    A year a supervisor entered on /admin/workdays (``WorkCalendarYear`` and its
    ``WorkCalendarDay`` rows) replaces the library's data for that year: a county need not
    wait for a new release of the library (or of this application) when the notice comes out.
    Why not only our own table: the library brings twenty years of checked data for free and
    its updates arrive with ``pip``; why not only the library: its release lags the notice by
    weeks, and deadlines in December already reach into January.

A year neither knows
    counts Monday to Friday (the five-day week of the 国务院关于职工工作时间的规定), with no
    holidays and no 调休 days: a clear answer that is right for most of the year and wrong
    around the festivals. ``unknown_years`` names such years, so that pages and
    ``flask doctor`` can say that a deadline is provisional and which year to enter.

Caching
    Each process keeps the calendar it loaded for ``REFRESH_SECONDS``; saving a year on the
    page drops the saving process's copy at once, and the other processes (gunicorn workers,
    the outbox worker) read the change within that time.
"""

from __future__ import annotations

import functools
import re
import time
from dataclasses import dataclass, field
from datetime import date, timedelta

from flask import current_app
from sqlalchemy import select

from backend.audit import record_audit
from backend.errors import UserError
from backend.extensions import db
from backend.models import StaffUser, WorkCalendarDay, WorkCalendarYear, utcnow

REFRESH_SECONDS = 60.0
_CACHE_KEY = "msl_work_calendar"
MIN_YEAR, MAX_YEAR = 2000, 2100
MAX_RANGE_DAYS = 15  # the longest holiday period (春节 2026: nine days)
NAME_MAX_CHARS = 40
SOURCE_MAX_CHARS = 200
WEEKDAYS = "一二三四五六日"


def library_label() -> str:
    """The bundled library and its version, as pages name the source of a year."""
    import chinese_calendar

    return f"chinese_calendar {getattr(chinese_calendar, '__version__', '')}".strip()


@functools.cache
def _holiday_names() -> dict[str, str]:
    import chinese_calendar

    return {holiday.value: holiday.chinese for holiday in chinese_calendar.Holiday}


@functools.cache
def library_year(year: int) -> dict[date, tuple[bool, str]] | None:
    """The library's days of ``year`` that differ from Monday–Friday (date → (is working day, name)), or None
    when the library does not know the year."""
    import chinese_calendar

    day = date(year, 1, 1)
    try:
        chinese_calendar.is_workday(day)
    except NotImplementedError:
        return None
    names = _holiday_names()
    days: dict[date, tuple[bool, str]] = {}
    while day.year == year:
        is_holiday, name = chinese_calendar.get_holiday_detail(day)
        if name is not None:  # a holiday, or a weekend day worked for one
            days[day] = (not is_holiday, names.get(name, name))
        day += timedelta(days=1)
    return days


@dataclass(frozen=True)
class WorkCalendar:
    """Days that differ from Monday–Friday, and the years whose arrangement is known."""

    exceptions: dict[date, bool] = field(default_factory=dict)  # date → is a working day
    known_years: frozenset[int] = frozenset()
    entered_years: frozenset[int] = frozenset()  # of which entered on the page (the rest: the library)

    def is_working_day(self, day: date) -> bool:
        """True when China works on ``day`` (Monday–Friday for a year not known)."""
        working = self.exceptions.get(day)
        return working if working is not None else day.weekday() < 5

    def knows(self, year: int) -> bool:
        """True when the library or a supervisor gave the year's arrangement."""
        return year in self.known_years


def load_calendar() -> WorkCalendar:
    """Read the entered years and merge them over the library's (a year entered wins, day by day)."""
    entered = {row.year: [] for row in db.session.scalars(select(WorkCalendarYear))}
    for row in db.session.scalars(select(WorkCalendarDay)):
        entered.setdefault(row.year, []).append(row)
    exceptions: dict[date, bool] = {}
    known: set[int] = set()
    year = MIN_YEAR
    while year <= MAX_YEAR:
        library = library_year(year) if year not in entered else None
        if library is not None:
            known.add(year)
            exceptions.update({day: working for day, (working, _name) in library.items()})
        year += 1
    for year, rows in sorted(entered.items()):
        known.add(year)
        # An arrangement replaces whatever the library said for its own days, including any in
        # the December before (the 2019 notice set 2018-12-29 to work and 2018-12-31 off).
        in_year = [d for d in exceptions if d.year == year]
        for day in in_year:
            del exceptions[day]
        exceptions.update({row.day: row.is_working_day for row in rows})
    return WorkCalendar(exceptions, frozenset(known), frozenset(entered))


def current() -> WorkCalendar:
    """The calendar this process uses, reloaded when older than ``REFRESH_SECONDS``."""
    cached = current_app.extensions.get(_CACHE_KEY)
    now = time.monotonic()
    if cached is None or now - cached[0] > REFRESH_SECONDS:
        cached = (now, load_calendar())
        current_app.extensions[_CACHE_KEY] = cached
    return cached[1]


def forget() -> None:
    """Drop this process's copy (after a change), so the next use reads the database."""
    current_app.extensions.pop(_CACHE_KEY, None)


def unknown_years(start: date, end: date) -> list[int]:
    """The years from ``start`` to ``end`` whose arrangement nobody gave (their days count Monday–Friday)."""
    calendar = current()
    return [year for year in range(start.year, end.year + 1) if not calendar.knows(year)]


# --- the page: a year's arrangement as lines of text, read back and saved ----------------------------------


@dataclass(frozen=True)
class DayLine:
    """One line of an arrangement: a day or a run of days off, or one weekend day worked."""

    first: date
    last: date
    is_working_day: bool
    name: str

    def text(self) -> str:
        """The line as the page shows and reads it: ``2026-10-01 至 2026-10-07 国庆节``."""
        span = self.first.isoformat() if self.first == self.last else f"{self.first} 至 {self.last}"
        return f"{span} {self.name}".strip()

    def label(self) -> str:
        """10月1日（四）至10月7日（三） for people."""

        def one(day: date) -> str:
            return f"{day.month}月{day.day}日（{WEEKDAYS[day.weekday()]}）"

        return one(self.first) if self.first == self.last else f"{one(self.first)}至{one(self.last)}"


def _lines(days: dict[date, tuple[bool, str]], working: bool) -> list[DayLine]:
    """Consecutive days of one kind and one name, joined into ranges."""
    lines: list[DayLine] = []
    for day in sorted(d for d, (w, _n) in days.items() if w == working):
        name = days[day][1]
        last = lines[-1] if lines else None
        if last is not None and not working and last.name == name and last.last + timedelta(days=1) == day:
            lines[-1] = DayLine(last.first, day, working, name)
        else:
            lines.append(DayLine(day, day, working, name))
    return lines


@dataclass(frozen=True)
class YearView:
    """What the page shows of one year."""

    year: int
    source: str  # "entered" | "library" | "unknown"
    holidays: list[DayLine]
    workdays: list[DayLine]
    entry: WorkCalendarYear | None = None


def year_view(year: int) -> YearView:
    """The arrangement of ``year`` as the calendar uses it: entered, from the library, or unknown."""
    entry = db.session.get(WorkCalendarYear, year)
    if entry is not None:
        days = {row.day: (row.is_working_day, row.name) for row in entry.days}
        source = "entered"
    else:
        days = library_year(year)
        source = "library" if days is not None else "unknown"
        days = days or {}
    return YearView(year, source, _lines(days, False), _lines(days, True), entry)


_LINE = re.compile(
    r"^\s*(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?"
    r"(?:\s*(?:至|到|~|～|—|--)\s*(?:(\d{4})[-/.年])?(\d{1,2})[-/.月](\d{1,2})日?)?"
    r"\s*(.*?)\s*$"
)


def _bad_line(field_name: str, number: int, why: str) -> UserError:
    label = "放假日期" if field_name == "holidays" else "调休上班日期"
    return UserError("invalid_workdays", f"{label}第{number}行：{why}", 400, field=field_name)


def parse_lines(text: str, year: int, *, working: bool) -> list[DayLine]:
    """Read the lines typed for ``year``: ``2027-02-06 至 2027-02-12 春节`` (or ``2027年2月6日至2月12日 春节``),
    one day or run of days a line; weekend days worked one a line. Raises a 400 UserError naming the line."""
    field_name = "workdays" if working else "holidays"
    lines: list[DayLine] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        match = _LINE.match(raw)
        if match is None:
            raise _bad_line(
                field_name, number, f"“{raw.strip()[:30]}”看不懂，请写成“{year}-10-01 至 {year}-10-07 国庆节”。"
            )
        y1, m1, d1, y2, m2, d2, name = match.groups()
        try:
            first = date(int(y1), int(m1), int(d1))
            last = date(int(y2 or y1), int(m2), int(d2)) if m2 else first
        except ValueError:
            raise _bad_line(field_name, number, "没有这一天，请核对日期。") from None
        if len(name) > NAME_MAX_CHARS:
            raise _bad_line(field_name, number, f"名称不能超过{NAME_MAX_CHARS}个字。")
        if last < first:
            raise _bad_line(field_name, number, "结束日期早于开始日期。")
        if (last - first).days + 1 > MAX_RANGE_DAYS:
            raise _bad_line(field_name, number, f"一段假期不超过{MAX_RANGE_DAYS}天，请核对日期。")
        # A notice may reach into the December before (the 2019 notice: 2018-12-29 worked, 2018-12-31 off).
        if not (date(year - 1, 12, 1) <= first and last <= date(year, 12, 31)):
            raise _bad_line(field_name, number, f"日期不在{year}年的安排之内。")
        if working:
            if first != last:
                raise _bad_line(field_name, number, "调休上班日请一天写一行。")
            if first.weekday() < 5:
                raise _bad_line(
                    field_name, number, f"{first.month}月{first.day}日是星期{WEEKDAYS[first.weekday()]}，本来就上班。"
                )
        lines.append(DayLine(first, last, working, name))
    return lines


def parse_arrangement(year_text: object, holidays_text: object, workdays_text: object) -> tuple[int, dict]:
    """Check a year's arrangement as typed on the page; (year, date → (is working day, name)). Raises UserError."""
    try:
        year = int(str(year_text or "").strip())
    except ValueError:
        raise UserError("invalid_year", "请填写年份，例如2027。", 400, field="year") from None
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise UserError("invalid_year", f"年份应在{MIN_YEAR}至{MAX_YEAR}之间。", 400, field="year")
    holidays = parse_lines(str(holidays_text or ""), year, working=False)
    if not holidays:
        raise UserError("invalid_workdays", "请至少填写一天放假日期（每年都有元旦）。", 400, field="holidays")
    workdays = parse_lines(str(workdays_text or ""), year, working=True)
    days: dict[date, tuple[bool, str]] = {}
    for line in holidays + workdays:
        day = line.first
        while day <= line.last:
            if day in days:
                raise UserError(
                    "invalid_workdays",
                    f"{day.month}月{day.day}日填了两次，请核对。",
                    400,
                    field="workdays" if line.is_working_day else "holidays",
                )
            days[day] = (line.is_working_day, line.name)
            day += timedelta(days=1)
    return year, days


def save_year(user: StaffUser, year_text: object, holidays_text: object, workdays_text: object, source: object) -> int:
    """Enter (or replace) a year's arrangement; audited, flushes, the request commits. Returns the year.

    Deadlines already set keep their due time; deadlines computed from now on use the new days.
    """
    year, days = parse_arrangement(year_text, holidays_text, workdays_text)
    source_text = str(source or "").strip()
    if len(source_text) > SOURCE_MAX_CHARS:
        raise UserError("invalid_source", f"依据不能超过{SOURCE_MAX_CHARS}个字。", 400, field="source")
    entry = db.session.get(WorkCalendarYear, year)
    before = None
    if entry is not None:
        before = {row.day.isoformat(): row.is_working_day for row in entry.days}
        entry.days.clear()
        db.session.flush()
    else:
        entry = WorkCalendarYear(year=year)
        db.session.add(entry)
    entry.source = source_text
    entry.entered_by_id = user.id
    entry.entered_at = utcnow()
    for day, (working, name) in sorted(days.items()):
        entry.days.append(WorkCalendarDay(day=day, year=year, is_working_day=working, name=name))
    db.session.flush()
    record_audit(
        "work_calendar_saved",
        user=user,
        object_type="work_calendar_year",
        object_id=year,
        data={
            "holidays": sum(1 for w, _ in days.values() if not w),
            "workdays": sum(1 for w, _ in days.values() if w),
            "source": source_text,
            "replaced": before is not None,
        },
    )
    forget()
    return year


def delete_year(user: StaffUser, year: int) -> bool:
    """Remove a year entered on the page (the library's data, if any, applies again); audited. False if none."""
    entry = db.session.get(WorkCalendarYear, year)
    if entry is None:
        return False
    db.session.delete(entry)
    db.session.flush()
    record_audit("work_calendar_deleted", user=user, object_type="work_calendar_year", object_id=year)
    forget()
    return True
