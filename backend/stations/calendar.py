"""The reception calendar (接待日): which days a station receives residents, and who is on duty.

Pure functions over ``ReceptionRule``, ``Station`` and ``Deputy``: they read relationships but
never write. Days are calendar dates in China; ``today_in_china()`` gives today's.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from backend.models import Deputy, ReceptionRule, ReceptionRuleKind, Station, utcnow

try:
    CHINA_TZ: tzinfo = ZoneInfo("Asia/Shanghai")
except ZoneInfoNotFoundError:  # a slim image without tzdata; China has had no DST since 1991
    CHINA_TZ = timezone(timedelta(hours=8), "CST")

WEEKDAY_NAMES = {1: "一", 2: "二", 3: "三", 4: "四", 5: "五", 6: "六", 7: "日"}
XUN_NAMES = {0: "十", 1: "一", 2: "二", 3: "三", 4: "四", 5: "五", 6: "六", 7: "七", 8: "八", 9: "九"}

# How far ahead duty_assignment looks for the next reception day with a deputy on duty.
NEXT_DUTY_HORIZON_DAYS = 31


def today_in_china(now: datetime | None = None) -> date:
    """Today's date in China (Asia/Shanghai), from ``now`` (aware; default: the current time)."""
    if now is None:
        now = utcnow()
    if now.tzinfo is None:
        raise ValueError("naive datetime given; pass an aware datetime")
    return now.astimezone(CHINA_TZ).date()


def xun_days(digit: int) -> list[int]:
    """The days of a month whose last digit is ``digit`` (逢N): 6 → [6, 16, 26], 0 → [10, 20, 30]."""
    return [d for d in range(1, 32) if d % 10 == digit]


def format_month_day(day: date) -> str:
    """A date as residents read it: 11月26日."""
    return f"{day.month}月{day.day}日"


def describe_rule(rule: ReceptionRule) -> str:
    """The rule in Chinese: 每周三, 每月20日, 逢六（每月6日、16日、26日）."""
    kind = ReceptionRuleKind(rule.kind)
    if kind == ReceptionRuleKind.WEEKLY:
        return f"每周{WEEKDAY_NAMES[rule.day]}"
    if kind == ReceptionRuleKind.MONTHLY:
        return f"每月{rule.day}日"
    days = "、".join(f"{d}日" for d in xun_days(rule.day))
    return f"逢{XUN_NAMES[rule.day]}（每月{days}）"


def rule_matches(rule: ReceptionRule, day: date) -> bool:
    """True when ``day`` is a reception day under ``rule`` (每月31日 never falls in a 30-day month)."""
    kind = ReceptionRuleKind(rule.kind)
    if kind == ReceptionRuleKind.WEEKLY:
        return day.isoweekday() == rule.day
    if kind == ReceptionRuleKind.MONTHLY:
        return day.day == rule.day
    return day.day % 10 == rule.day


def next_reception_days(
    rules: Iterable[ReceptionRule], start: date, count: int = 3, horizon_days: int = 62
) -> list[date]:
    """Up to ``count`` reception days from ``start`` (inclusive) to before ``start + horizon_days``, sorted."""
    rules = list(rules)
    found: list[date] = []
    for offset in range(horizon_days):
        if len(found) >= count:
            break
        day = start + timedelta(days=offset)
        if any(rule_matches(rule, day) for rule in rules):
            found.append(day)
    return found


def deputies_on_duty(station: Station, day: date) -> list[Deputy]:
    """Deputies named on the station's rules for ``day``, still serving and still at this station, by id."""
    on_duty: dict[int, Deputy] = {}
    for rule in station.reception_rules:
        deputy = rule.deputy
        if deputy is None or not deputy.is_serving or deputy.station_id != station.id:
            continue
        if rule_matches(rule, day):
            on_duty[deputy.id] = deputy
    return [on_duty[key] for key in sorted(on_duty)]


@dataclass(frozen=True)
class DutyAssignment:
    """Who receives a message sent through a station's code for "the deputy on duty", and why."""

    deputy: Deputy | None
    on_date: date | None
    is_today: bool
    reason: str


def duty_assignment(station: Station, day: date) -> DutyAssignment:
    """The deputy on duty for a message left at ``station`` on ``day`` (pass ``today_in_china()``).

    Today's duty deputy (lowest id) if any; else the one on the next reception day with a
    serving deputy on duty within 31 days; else the station's first serving deputy; else nobody.
    """
    today_duty = deputies_on_duty(station, day)
    if today_duty:
        deputy = today_duty[0]
        return DutyAssignment(
            deputy=deputy,
            on_date=day,
            is_today=True,
            reason=f"今天是接待日，您的留言将交给今天的值班代表{deputy.name}。",
        )

    rules = list(station.reception_rules)
    is_reception_day = any(rule_matches(rule, day) for rule in rules)
    first_reception_day: date | None = None
    for offset in range(1, NEXT_DUTY_HORIZON_DAYS + 1):
        later = day + timedelta(days=offset)
        if not any(rule_matches(rule, later) for rule in rules):
            continue
        if first_reception_day is None:
            first_reception_day = later
        later_duty = deputies_on_duty(station, later)
        if not later_duty:
            continue
        deputy = later_duty[0]
        if is_reception_day:
            opening = "今天的值班代表暂缺"
        else:
            opening = "今天不是接待日"
        if later == first_reception_day:
            which = "下一个接待日"
        else:
            which = "下一个有值班代表的接待日"
        return DutyAssignment(
            deputy=deputy,
            on_date=later,
            is_today=False,
            reason=f"{opening}，您的留言将交给{which}（{format_month_day(later)}）的值班代表{deputy.name}。",
        )

    serving = [d for d in station.deputies if d.is_serving]
    if serving:
        deputy = min(serving, key=lambda d: d.id)
        return DutyAssignment(
            deputy=deputy,
            on_date=None,
            is_today=False,
            reason=f"本站暂未排定值班代表，您的留言将交给本站代表{deputy.name}。",
        )
    return DutyAssignment(
        deputy=None,
        on_date=None,
        is_today=False,
        reason="本站暂无在任代表，您的留言将由联络站工作人员处理。",
    )
