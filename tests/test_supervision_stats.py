"""The figures (backend/supervision/stats.py) against items made through the real operations:
every count exactly, the rates and the minimum sample, medians, overdue, China-date edges."""

from __future__ import annotations

import statistics
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from backend.errors import UserError
from backend.extensions import db
from backend.models import Item, ItemStatus, Region, Station, utcnow
from backend.stations.calendar import today_in_china
from backend.supervision import stats
from tests.factories import COUNTY, DEPUTY_D1, STATION_A, build_outcomes, make_overdue, submit, supervision_world

WORLD = supervision_world  # the world fixture (tests/conftest.py)


@pytest.fixture
def outcomes(client, world):
    return build_outcomes(client, world)


def counted(figures: stats.Figures) -> dict:
    c = figures.counts
    return dict(
        received=c.received,
        declined=c.declined,
        duplicate=c.duplicate,
        valid=c.valid,
        answered=c.answered,
        resolved=c.resolved,
        rated=c.rated,
        fully_satisfied=c.fully_satisfied,
        basically_satisfied=c.basically_satisfied,
        unsatisfied=c.unsatisfied,
        in_person=c.in_person,
        held=figures.held,
    )


def region(code: str) -> Region:
    return db.session.scalar(select(Region).where(Region.code == code))


def scopes(world) -> dict[str, tuple[stats.Scope, dict]]:
    return {
        "station": (stats.Scope("station", station=world.station_a), STATION_A),
        "deputy": (stats.Scope("deputy", deputy=world.d1, station=world.station_a), DEPUTY_D1),
        "county": (stats.Scope("region", region=region("430225")), COUNTY),
    }


@pytest.mark.parametrize("which", ["station", "deputy", "county"])
def test_every_count_matches_the_items_made(outcomes, world, which):
    scope, expected = scopes(world)[which]
    figures = stats.compute(scope, stats.default_range())
    assert counted(figures) == expected


def test_rates_are_exact_at_and_below_the_minimum_sample(app, outcomes, world):
    county = stats.Scope("region", region=region("430225"))
    app.config["STATS_MIN_SAMPLE"] = 10
    figures = stats.compute(county, stats.default_range())
    # 10 valid items: at the minimum, so rates are computed; 5 rated: below it, so no rate.
    assert figures.rates["answer_rate"].value == 8 / 10
    assert figures.rates["resolve_rate"].value == 5 / 10
    assert figures.rates["satisfaction_rate"].value is None
    assert figures.rates["satisfaction_rate"].percent_label == "样本不足（5件）"
    station = stats.compute(stats.Scope("station", station=world.station_a), stats.default_range())
    assert station.rates["answer_rate"].value is None  # 9 valid items < 10
    assert station.rates["answer_rate"].percent_label == "样本不足（9件）"

    app.config["STATS_MIN_SAMPLE"] = 4
    station = stats.compute(stats.Scope("station", station=world.station_a), stats.default_range())
    assert station.rates["answer_rate"].value == 7 / 9
    assert station.rates["resolve_rate"].value == 4 / 9
    assert station.rates["satisfaction_rate"].value == 3 / 4  # 满意 2 + 基本满意 1 of 4 rated
    assert station.rates["satisfaction_rate"].percent_label == "75.0%"
    app.config["STATS_MIN_SAMPLE"] = 5
    station = stats.compute(stats.Scope("station", station=world.station_a), stats.default_range())
    assert station.rates["satisfaction_rate"].value is None  # 4 rated < 5


def test_every_figure_lists_exactly_the_items_it_counts(outcomes, world):
    """The list behind a figure and the figure itself come from one definition."""
    for scope, _ in scopes(world).values():
        rng = stats.default_range()
        figures = stats.compute(scope, rng)
        c = figures.counts
        expected = {
            "received": c.received,
            "valid": c.valid,
            "declined": c.declined,
            "duplicate": c.duplicate,
            "withdrawn": c.withdrawn,
            "answered": c.answered,
            "unanswered": c.valid - c.answered,
            "resolved": c.resolved,
            "unresolved": c.valid - c.resolved,
            "rated": c.rated,
            "satisfied": c.satisfied,
            "fully_satisfied": c.fully_satisfied,
            "basically_satisfied": c.basically_satisfied,
            "unsatisfied": c.unsatisfied,
            "in_person": c.in_person,
            "in_person_rated": c.in_person_rated,
            "in_person_satisfied": c.in_person_satisfied,
            "in_person_fully_satisfied": c.in_person_fully_satisfied,
            "in_person_basically_satisfied": c.in_person_basically_satisfied,
            "in_person_unsatisfied": c.in_person_unsatisfied,
            "unclaimed_rated": c.unclaimed_rated,
            "held": figures.held,
            "overdue": figures.overdue,
        }
        assert set(expected) == set(stats.LISTABLE)
        for figure, number in expected.items():
            query = stats.figure_items_query(scope, rng, figure)
            listed = db.session.scalar(query.with_only_columns(func.count()).order_by(None))
            assert listed == number, (scope.label, figure)


def test_which_items_each_figure_counts(outcomes, world):
    scope = stats.Scope("station", station=world.station_a)
    rng = stats.default_range()

    def refs(figure):
        return set(db.session.scalars(stats.figure_items_query(scope, rng, figure).with_only_columns(Item.ref)))

    o = outcomes
    assert refs("answered") == {
        o.sat.ref,
        o.basic.ref,
        o.unsat.ref,
        o.resolved_no_reply.ref,
        o.answered.ref,
        o.in_person.ref,
        o.d2_sat.ref,
    }
    # Reopened by 不满意: answered once, no longer resolved until resolved again.
    assert o.unsat.status == ItemStatus.ACCEPTED and o.unsat.ref not in refs("resolved")
    assert refs("resolved") == {o.sat.ref, o.basic.ref, o.resolved_no_reply.ref, o.d2_sat.ref}
    assert refs("unsatisfied") == {o.unsat.ref}
    assert refs("satisfied") == {o.sat.ref, o.basic.ref, o.d2_sat.ref}
    assert refs("held") == {o.held.ref}
    assert o.held.ref not in refs("received")
    assert refs("in_person") == {o.in_person.ref}
    assert refs("unanswered") == {o.accepted.ref, o.submitted.ref}


def test_a_new_resolution_waits_for_a_new_verdict(client, outcomes, world):
    """The reopened item resolved again: resolved again, and no longer counted as rated until rated."""
    from tests.factories import handle, rate

    scope = stats.Scope("station", station=world.station_a)
    handle(outcomes.unsat, world.users["deputy"], "reply", "resolve")
    figures = stats.compute(scope, stats.default_range())
    assert (figures.counts.resolved, figures.counts.rated, figures.counts.unsatisfied) == (5, 3, 0)
    rate(client, outcomes.unsat, "satisfied")
    figures = stats.compute(scope, stats.default_range())
    assert (figures.counts.rated, figures.counts.fully_satisfied) == (4, 3)


def test_medians_are_the_exact_medians_of_the_recorded_times(outcomes, world):
    """Shift submissions back by known hours (as if submitted earlier), then compare with Python's median."""
    offsets = {
        "sat": 30,
        "basic": 2,
        "unsat": 7,
        "resolved_no_reply": 100,
        "answered": 1,
        "in_person": 50,
        "d2_sat": 12,
        "accepted": 5,
    }
    for name, hours in offsets.items():
        item = getattr(outcomes, name)
        item.created_at = item.created_at - timedelta(hours=hours)
    db.session.commit()
    scope = stats.Scope("station", station=world.station_a)
    items = db.session.scalars(
        stats.figure_items_query(scope, stats.default_range(), "received").order_by(Item.id)
    ).all()
    answered = [
        ((i.first_answered_at or i.resolved_at) - i.created_at).total_seconds() / 3600
        for i in items
        if i.status not in (ItemStatus.DECLINED, ItemStatus.DUPLICATE) and (i.first_answered_at or i.resolved_at)
    ]
    resolved = [(i.resolved_at - i.created_at).total_seconds() / 3600 for i in items if i.status == ItemStatus.RESOLVED]
    assert len(answered) == 7 and len(resolved) == 4
    figures = stats.compute(scope, stats.default_range())
    assert figures.median_first_answer_hours == pytest.approx(statistics.median(answered), abs=1e-6)
    assert figures.median_resolve_hours == pytest.approx(statistics.median(resolved), abs=1e-6)
    assert 12 <= figures.median_first_answer_hours < 13  # offsets 1, 2, 7, 12, 30, 50, 100 (+ seconds)


def test_median_of_an_even_count_is_the_mean_of_the_middle_two(client, world):
    """Recorded times set exactly: 1 h, 3 h, 4 h, 10 h to the first answer → 3.5 h; none resolved → null."""
    now = utcnow().replace(microsecond=0)
    for hours in (10, 1, 4, 3):
        item = submit(client, world.d1, f"第{hours}件：路灯坏了，请尽快修复。")
        item.created_at = now - timedelta(hours=24)
        item.first_answered_at = now - timedelta(hours=24 - hours)
        item.status = ItemStatus.ANSWERED
    db.session.commit()
    figures = stats.compute(stats.Scope("deputy", deputy=world.d1, station=world.station_a), stats.default_range())
    assert figures.median_first_answer_hours == pytest.approx(3.5, abs=1e-6)
    assert figures.median_resolve_hours is None
    assert stats.figures_json(figures)["median_first_answer_hours"] == 3.5


def test_no_items_no_medians_no_rates(world):
    figures = stats.compute(stats.Scope("station", station=world.station_b), stats.default_range())
    assert figures.counts.received == 0 and figures.median_first_answer_hours is None
    assert all(rate.value is None for rate in figures.rates.values())
    assert figures.rates["answer_rate"].percent_label == "样本不足（0件）"


def test_overdue_counts_open_items_past_due_whenever_submitted_and_never_held(outcomes, world):
    scope = stats.Scope("station", station=world.station_a)
    make_overdue(outcomes.accepted)
    make_overdue(outcomes.held)  # held: not in anyone's inbox yet, so not overdue for supervisors
    make_overdue(outcomes.sat)  # resolved: never overdue
    old = outcomes.submitted
    old.created_at = utcnow() - timedelta(days=800)  # outside the range, still overdue
    make_overdue(old)
    figures = stats.compute(scope, stats.default_range())
    assert figures.overdue == 2
    listed = stats.overdue_items(scope, utcnow())
    assert {i.ref for i in listed} == {outcomes.accepted.ref, old.ref}
    assert listed[0].due_at <= listed[1].due_at
    # The breakdown carries it per deputy.
    per_deputy = {g.key: g.overdue for g in figures.children}
    assert per_deputy[world.d1.id] == 2 and per_deputy[world.d2.id] == 0


def test_a_paused_item_is_overdue_only_if_it_paused_after_its_deadline(client, world):
    d1 = world.users["deputy"]
    from tests.factories import handle

    item = handle(submit(client, world.d1, "请补充照片以后再处理的留言。"), d1, "accept")
    from tests.factories import act

    act(item, d1, "wait_for_resident", text="请补充现场照片。")
    item.due_at = item.paused_at + timedelta(hours=1)  # paused before the deadline
    db.session.commit()
    scope = stats.Scope("deputy", deputy=world.d1, station=world.station_a)
    assert stats.compute(scope, stats.default_range()).overdue == 0
    item.due_at = item.paused_at - timedelta(hours=1)  # it was already late when it paused
    db.session.commit()
    assert stats.compute(scope, stats.default_range()).overdue == 1


def _china(y, m, d, hh=0, mm=0, ss=0, us=0) -> datetime:
    return datetime(y, m, d, hh, mm, ss, us, tzinfo=stats.CHINA_TZ).astimezone(UTC)


def test_range_edges_are_china_midnights(client, world):
    moments = {
        "feb_last": _china(2026, 2, 28, 23, 59, 59, 999999),
        "mar_first": _china(2026, 3, 1),
        "mar_last": _china(2026, 3, 31, 23, 59, 59, 999999),
        "apr_first": _china(2026, 4, 1),
    }
    for name, moment in moments.items():
        item = submit(client, world.d1, f"边界测试留言：{name}。")
        item.created_at = moment
    db.session.commit()
    assert moments["mar_first"] == datetime(2026, 2, 28, 16, 0, tzinfo=UTC)
    scope = stats.Scope("deputy", deputy=world.d1, station=world.station_a)
    march = stats.parse_range("2026-03-01", "2026-04-01")
    figures = stats.compute(scope, march)
    assert figures.counts.received == 2
    bodies = set(db.session.scalars(stats.figure_items_query(scope, march, "received").with_only_columns(Item.body)))
    assert bodies == {"边界测试留言：mar_first。", "边界测试留言：mar_last。"}
    spring = stats.compute(scope, stats.parse_range("2026-02-01", "2026-05-01"))
    assert [(g.key, g.counts.received) for g in spring.months] == [
        (date(2026, 2, 1), 1),
        (date(2026, 3, 1), 2),
        (date(2026, 4, 1), 1),
    ]
    # A range starting mid-month: its first bucket is that month.
    late = stats.compute(scope, stats.parse_range("2026-02-28", "2026-04-02"))
    assert [(g.key, g.counts.received) for g in late.months] == [
        (date(2026, 2, 1), 1),
        (date(2026, 3, 1), 2),
        (date(2026, 4, 1), 1),
    ]


@pytest.mark.parametrize(
    ("raw_from", "raw_to", "code"),
    [
        ("2026-3-1", "2026-04-01", "invalid_from"),
        ("2026-02-30", "2026-04-01", "invalid_from"),
        ("2026-03-01", "tomorrow!!", "invalid_to"),
        ("2026-04-01", "2026-03-01", "invalid_range"),
        ("2026-03-01", "2026-03-01", "invalid_range"),
        ("2010-01-01", "2026-03-01", "range_too_long"),
    ],
)
def test_bad_ranges_are_refused(app, raw_from, raw_to, code):
    with pytest.raises(UserError) as err:
        stats.parse_range(raw_from, raw_to)
    assert err.value.status == 400 and err.value.code == code


def test_default_range_is_twelve_months_to_today(app):
    rng = stats.default_range(date(2026, 11, 21))
    assert (rng.start, rng.end) == (date(2025, 12, 1), date(2026, 11, 22))
    assert len(rng.months()) == 12
    assert stats.parse_range("", None, today=date(2026, 1, 5)) == stats.DateRange(date(2025, 2, 1), date(2026, 1, 6))


def test_the_breakdown_lists_every_station_and_deputy_even_without_items(outcomes, world):
    county = stats.compute(stats.Scope("region", region=region("430225")), stats.default_range())
    by_station = {g.label: g.counts.received for g in county.children}
    assert by_station == {"霞阳镇人大代表联络站": 11, "沔渡镇人大代表之家": 1}
    station = stats.compute(stats.Scope("station", station=world.station_a), stats.default_range())
    assert {g.label: g.counts.received for g in station.children} == {"张秀英": 10, "李建国": 1}
    assert sum(g.counts.received for g in county.months) == COUNTY["received"]


def test_a_big_region_over_the_longest_range_is_counted_month_by_month(outcomes, world):
    """The grouped count has a part per month, each with the region's stations: 600 stations over six
    years (43,200 ids if each were a parameter; SQLite's default limit is 32,766) count the same."""
    county = region("430225")
    db.session.add_all(Station(name=f"第{n}联络站", region=county, address="某路1号") for n in range(600))
    db.session.commit()
    today = today_in_china()
    months_back = today.year * 12 + today.month - stats.MAX_RANGE_MONTHS  # the first month of the longest range
    longest = stats.parse_range(date(months_back // 12, months_back % 12 + 1, 1).isoformat(), None)
    assert len(longest.months()) == stats.MAX_RANGE_MONTHS
    figures = stats.compute(stats.Scope("region", region=county), longest)
    assert counted(figures) == COUNTY
    assert figures.children == [] and len(figures.months) == stats.MAX_RANGE_MONTHS
    assert sum(g.counts.received for g in figures.months) == COUNTY["received"]
