from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from backend.extensions import db
from backend.models import DeputyStatus, ReceptionRule, ReceptionRuleKind
from backend.stations.calendar import (
    DutyAssignment,
    deputies_on_duty,
    describe_rule,
    duty_assignment,
    next_reception_days,
    rule_matches,
    today_in_china,
    xun_days,
)


def rule(kind: str, day: int) -> ReceptionRule:
    return ReceptionRule(kind=ReceptionRuleKind(kind), day=day)


def days_in(year: int, month: int) -> list[date]:
    first = date(year, month, 1)
    out = []
    d = first
    while d.month == month:
        out.append(d)
        d += timedelta(days=1)
    return out


# --- describe_rule ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "day", "text"),
    [
        ("weekly", 1, "每周一"),
        ("weekly", 3, "每周三"),
        ("weekly", 7, "每周日"),
        ("monthly", 20, "每月20日"),
        ("monthly", 31, "每月31日"),
        ("xun", 6, "逢六（每月6日、16日、26日）"),
        ("xun", 1, "逢一（每月1日、11日、21日、31日）"),
        ("xun", 0, "逢十（每月10日、20日、30日）"),
    ],
)
def test_describe_rule(kind, day, text):
    assert describe_rule(rule(kind, day)) == text


def test_xun_days():
    assert xun_days(6) == [6, 16, 26]
    assert xun_days(1) == [1, 11, 21, 31]
    assert xun_days(0) == [10, 20, 30]
    assert xun_days(9) == [9, 19, 29]


# --- rule_matches ----------------------------------------------------------------------------


def test_weekly_rule_matches_iso_weekday_at_both_ends_of_the_week():
    # 2026-11-16 is a Monday, 2026-11-22 a Sunday.
    monday, wednesday, sunday = date(2026, 11, 16), date(2026, 11, 18), date(2026, 11, 22)
    assert monday.isoweekday() == 1 and sunday.isoweekday() == 7
    assert rule_matches(rule("weekly", 1), monday)
    assert not rule_matches(rule("weekly", 1), sunday)
    assert rule_matches(rule("weekly", 7), sunday)
    assert not rule_matches(rule("weekly", 7), monday)
    assert rule_matches(rule("weekly", 3), wednesday)
    assert [d.day for d in days_in(2026, 11) if rule_matches(rule("weekly", 3), d)] == [4, 11, 18, 25]


def test_monthly_rule():
    assert [d.day for d in days_in(2026, 11) if rule_matches(rule("monthly", 20), d)] == [20]


def test_monthly_31st_has_no_reception_in_a_30_day_month_or_february():
    assert [d for d in days_in(2026, 11) if rule_matches(rule("monthly", 31), d)] == []
    assert [d for d in days_in(2026, 2) if rule_matches(rule("monthly", 31), d)] == []
    assert [d for d in days_in(2028, 2) if rule_matches(rule("monthly", 30), d)] == []  # leap year: 29 days
    assert [d.day for d in days_in(2028, 2) if rule_matches(rule("monthly", 29), d)] == [29]
    assert [d.day for d in days_in(2026, 12) if rule_matches(rule("monthly", 31), d)] == [31]


def test_xun_six():
    assert [d.day for d in days_in(2026, 11) if rule_matches(rule("xun", 6), d)] == [6, 16, 26]


def test_xun_one_includes_the_31st_when_the_month_has_one():
    assert [d.day for d in days_in(2026, 12) if rule_matches(rule("xun", 1), d)] == [1, 11, 21, 31]
    assert [d.day for d in days_in(2026, 11) if rule_matches(rule("xun", 1), d)] == [1, 11, 21]


def test_xun_ten_is_day_zero():
    assert [d.day for d in days_in(2026, 12) if rule_matches(rule("xun", 0), d)] == [10, 20, 30]
    assert [d.day for d in days_in(2026, 2) if rule_matches(rule("xun", 0), d)] == [10, 20]


# --- next_reception_days ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kinds_and_days", "start", "count", "expected"),
    [
        pytest.param(
            # 2026-11-18 is a Wednesday and a 逢八 day: it appears once.
            [("xun", 8), ("weekly", 3), ("monthly", 20)],
            date(2026, 11, 18),
            3,
            [(2026, 11, 18), (2026, 11, 20), (2026, 11, 25)],
            id="start_is_inclusive_sorted_and_unique",
        ),
        pytest.param(
            # November has no 31st: from 11-22 the next days are 12-01, 12-11, 12-21, 12-31.
            [("monthly", 31), ("xun", 1)],
            date(2026, 11, 22),
            4,
            [(2026, 12, 1), (2026, 12, 11), (2026, 12, 21), (2026, 12, 31)],
            id="across_a_month_end",
        ),
        pytest.param(
            [("xun", 6), ("weekly", 3)],
            date(2026, 12, 27),
            4,
            [(2026, 12, 30), (2027, 1, 6), (2027, 1, 13), (2027, 1, 16)],
            id="across_a_year_end",
        ),
    ],
)
def test_next_reception_days(kinds_and_days, start, count, expected):
    rules = [rule(kind, day) for kind, day in kinds_and_days]
    assert next_reception_days(rules, start, count=count) == [date(*day) for day in expected]


def test_next_reception_days_respects_count_and_horizon():
    rules = [rule("monthly", 20)]
    assert next_reception_days(rules, date(2026, 11, 21), count=1) == [date(2026, 12, 20)]
    # The horizon ends before start + horizon_days.
    assert next_reception_days(rules, date(2026, 11, 21), horizon_days=29) == []
    assert next_reception_days(rules, date(2026, 11, 21), horizon_days=30) == [date(2026, 12, 20)]
    assert next_reception_days(rules, date(2026, 11, 21), count=5) == [date(2026, 12, 20), date(2027, 1, 20)]
    assert next_reception_days([], date(2026, 11, 21)) == []


# --- deputies_on_duty ------------------------------------------------------------------------


@pytest.fixture
def station_with_rules(create_station, create_deputy):
    """霞阳镇 station: 每周三 张秀英, 每月20日 李建国, 逢六 张秀英 and 刘志强; 陈美兰 serves without a rule."""
    station = create_station()
    zhang = create_deputy("张秀英", station=station)
    li = create_deputy("李建国", station=station)
    liu = create_deputy("刘志强", station=station)
    chen = create_deputy("陈美兰", station=station)
    station.reception_rules.extend(
        [
            ReceptionRule(kind=ReceptionRuleKind.WEEKLY, day=3, deputy=zhang),
            ReceptionRule(kind=ReceptionRuleKind.MONTHLY, day=20, deputy=li),
            ReceptionRule(kind=ReceptionRuleKind.XUN, day=6, deputy=liu),
            ReceptionRule(kind=ReceptionRuleKind.XUN, day=6, deputy=zhang),
        ]
    )
    db.session.commit()
    return station, {"zhang": zhang, "li": li, "liu": liu, "chen": chen}


def test_deputies_on_duty_unique_and_by_id(station_with_rules):
    station, d = station_with_rules
    assert deputies_on_duty(station, date(2026, 11, 20)) == [d["li"]]
    # 2026-11-18 is a Wednesday.
    assert deputies_on_duty(station, date(2026, 11, 18)) == [d["zhang"]]
    # 2026-12-16 is a Wednesday and 逢六: 张秀英 twice (weekly and xun) counts once.
    assert deputies_on_duty(station, date(2026, 12, 16)) == [d["zhang"], d["liu"]]
    assert deputies_on_duty(station, date(2026, 11, 19)) == []


def test_deputies_on_duty_excludes_resigned_and_moved_deputies(station_with_rules, create_station):
    station, d = station_with_rules
    d["zhang"].status = DeputyStatus.RESIGNED
    other = create_station("沔渡镇人大代表之家", region=station.region)
    d["liu"].station = other
    db.session.commit()
    assert deputies_on_duty(station, date(2026, 12, 16)) == []
    assert deputies_on_duty(other, date(2026, 12, 16)) == []  # the rule belongs to the old station


def test_rule_without_a_deputy_names_nobody(create_station, create_deputy):
    station = create_station()
    create_deputy(station=station)
    station.reception_rules.append(ReceptionRule(kind=ReceptionRuleKind.WEEKLY, day=3))
    db.session.commit()
    assert deputies_on_duty(station, date(2026, 11, 18)) == []


# --- duty_assignment -------------------------------------------------------------------------


def test_duty_assignment_today(station_with_rules):
    station, d = station_with_rules
    result = duty_assignment(station, date(2026, 12, 16))
    assert result == DutyAssignment(
        deputy=d["zhang"],
        on_date=date(2026, 12, 16),
        is_today=True,
        reason="今天是接待日，您的留言将交给今天的值班代表张秀英。",
    )


def test_duty_assignment_next_reception_day(station_with_rules):
    station, d = station_with_rules
    # 2026-11-21 (Saturday) is no reception day; the next one is 11-25 (Wednesday).
    result = duty_assignment(station, date(2026, 11, 21))
    assert result.deputy == d["zhang"]
    assert result.on_date == date(2026, 11, 25)
    assert result.is_today is False
    assert result.reason == "今天不是接待日，您的留言将交给下一个接待日（11月25日）的值班代表张秀英。"


def test_duty_assignment_skips_reception_days_without_a_serving_deputy(station_with_rules):
    station, d = station_with_rules
    d["zhang"].status = DeputyStatus.RESIGNED
    db.session.commit()
    # 11-25 (Wednesday) is 张秀英's, who resigned; 11-26 is 逢六, 刘志强 is on duty.
    result = duty_assignment(station, date(2026, 11, 21))
    assert (result.deputy, result.on_date) == (d["liu"], date(2026, 11, 26))
    assert result.reason == "今天不是接待日，您的留言将交给下一个有值班代表的接待日（11月26日）的值班代表刘志强。"
    # 11-18 is a reception day (Wednesday) with nobody serving on duty.
    result = duty_assignment(station, date(2026, 11, 18))
    assert (result.deputy, result.on_date) == (d["li"], date(2026, 11, 20))
    assert result.reason == "今天的值班代表暂缺，您的留言将交给下一个接待日（11月20日）的值班代表李建国。"


def test_duty_assignment_next_reception_day_across_the_year_end(create_station, create_deputy):
    station = create_station()
    wang = create_deputy("王春华", station=station)
    station.reception_rules.append(ReceptionRule(kind=ReceptionRuleKind.MONTHLY, day=5, deputy=wang))
    db.session.commit()
    result = duty_assignment(station, date(2026, 12, 6))
    assert (result.deputy, result.on_date, result.is_today) == (wang, date(2027, 1, 5), False)
    assert "（1月5日）" in result.reason


def test_duty_assignment_looks_no_further_than_31_days(create_station, create_deputy):
    station = create_station()
    first = create_deputy("张秀英", station=station)
    wang = create_deputy("王春华", station=station)
    # 每月31日: from 2026-11-01 the next 31st is 12-31, 60 days away.
    station.reception_rules.append(ReceptionRule(kind=ReceptionRuleKind.MONTHLY, day=31, deputy=wang))
    db.session.commit()
    result = duty_assignment(station, date(2026, 11, 1))
    assert result == DutyAssignment(
        deputy=first,
        on_date=None,
        is_today=False,
        reason="本站暂未排定值班代表，您的留言将交给本站代表张秀英。",
    )
    # Exactly 31 days ahead is still within reach.
    result = duty_assignment(station, date(2026, 11, 30))
    assert (result.deputy, result.on_date) == (wang, date(2026, 12, 31))


def test_duty_assignment_without_rules_falls_back_to_the_first_serving_deputy(create_station, create_deputy):
    station = create_station()
    create_deputy("张秀英", station=station, status=DeputyStatus.RESIGNED)
    li = create_deputy("李建国", station=station)
    create_deputy("刘志强", station=station)
    result = duty_assignment(station, date(2026, 11, 21))
    assert result.deputy == li
    assert result.on_date is None
    assert result.is_today is False
    assert result.reason == "本站暂未排定值班代表，您的留言将交给本站代表李建国。"


def test_duty_assignment_with_no_serving_deputy(create_station, create_deputy):
    station = create_station()
    gone = create_deputy("张秀英", station=station, status=DeputyStatus.RESIGNED)
    station.reception_rules.append(ReceptionRule(kind=ReceptionRuleKind.WEEKLY, day=3, deputy=gone))
    db.session.commit()
    assert duty_assignment(station, date(2026, 11, 18)) == DutyAssignment(
        deputy=None,
        on_date=None,
        is_today=False,
        reason="本站暂无在任代表，您的留言将由联络站工作人员处理。",
    )
    empty = create_station("十都镇人大代表联络站", region=station.region)
    assert duty_assignment(empty, date(2026, 11, 18)).deputy is None


# --- today_in_china --------------------------------------------------------------------------


def test_today_in_china_is_ahead_of_utc_near_midnight():
    late_utc = datetime(2026, 11, 20, 17, 30, tzinfo=UTC)
    assert late_utc.date() == date(2026, 11, 20)
    assert today_in_china(late_utc) == date(2026, 11, 21)
    assert today_in_china(datetime(2026, 11, 20, 15, 59, tzinfo=UTC)) == date(2026, 11, 20)
    assert today_in_china(datetime(2026, 11, 20, 16, 0, tzinfo=UTC)) == date(2026, 11, 21)
    assert today_in_china(datetime(2026, 12, 31, 16, 0, tzinfo=UTC)) == date(2027, 1, 1)


def test_today_in_china_accepts_any_aware_time_and_refuses_naive():
    new_york = timezone(timedelta(hours=-5))
    assert today_in_china(datetime(2026, 11, 20, 12, 0, tzinfo=new_york)) == date(2026, 11, 21)
    with pytest.raises(ValueError, match="naive"):
        today_in_china(datetime(2026, 11, 20, 12, 0))


def test_today_in_china_defaults_to_now():
    before = today_in_china(datetime.now(UTC))
    today = today_in_china()
    after = today_in_china(datetime.now(UTC))
    assert today in {before, after}


def test_duty_assignment_today_follows_china_time(station_with_rules):
    station, d = station_with_rules
    # 2026-11-19 17:30 UTC is Friday 11-20 in China: 每月20日, 李建国 is on duty.
    day = today_in_china(datetime(2026, 11, 19, 17, 30, tzinfo=UTC))
    result = duty_assignment(station, day)
    assert (result.deputy, result.is_today) == (d["li"], True)
