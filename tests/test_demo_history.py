"""Issue 13, part 8: the demo county with a history, so the dashboard shows rates the day it is installed.

The history runs the real operations at past moments (``clock_at``); these tests check that
what it wrote is what the code would have written then: every state reached, events in time
order and never after "now", no notice queued for the past, figures that are rates and not
样本不足, and the command's refusals (a database with data, as for the plain demo).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select
from werkzeug.security import check_password_hash

from backend.demo import DEMO_PASSWORD, load_demo
from backend.demo_history import load_history
from backend.extensions import db
from backend.models import (
    AuditEntry,
    Item,
    ItemEvent,
    ItemForward,
    ItemStatus,
    OutboxMessage,
    Region,
    Satisfaction,
    StaffRole,
    StaffUser,
    utcnow,
)
from backend.models.base import clock_at
from backend.supervision import stats

TODAY = date(2026, 6, 15)
NOW = datetime(2026, 6, 15, 4, 0, tzinfo=UTC)  # 12:00 in China


@pytest.fixture
def history(app):
    load_demo()
    written = load_history(TODAY, NOW, months=3)
    db.session.commit()
    return written


def test_the_history_reaches_every_state_in_order_and_sends_nothing(history):
    assert 100 <= history <= 300  # about 3–7 a month for each of 11 serving deputies, three and a half months
    assert db.session.scalar(select(func.count(Item.id))) == history
    statuses = set(db.session.scalars(select(Item.status).distinct()))
    assert {ItemStatus.RESOLVED, ItemStatus.ACCEPTED, ItemStatus.DECLINED, ItemStatus.DUPLICATE} <= statuses
    assert statuses & {ItemStatus.ANSWERED, ItemStatus.FORWARDED, ItemStatus.SUBMITTED}
    verdicts = set(db.session.scalars(select(Item.satisfaction).where(Item.satisfaction.is_not(None)).distinct()))
    assert verdicts == set(Satisfaction)
    answered = db.session.scalar(select(func.count(ItemForward.id)).where(ItemForward.answered_at.is_not(None)))
    assert answered > 10  # departments answered forwards
    assert db.session.scalar(select(func.count(Item.id)).where(Item.reopen_count > 0)) > 0

    # Everything happened before now, and in order.
    assert db.session.scalar(select(func.max(Item.created_at))) < NOW
    assert db.session.scalar(select(func.min(Item.created_at))) >= datetime(2026, 3, 1, tzinfo=UTC) - timedelta(hours=8)
    assert db.session.scalar(select(func.max(ItemEvent.created_at))) < NOW
    assert db.session.scalar(select(func.max(AuditEntry.created_at))) < NOW
    for item in db.session.scalars(select(Item)):
        moments = [event.created_at for event in sorted(item.events, key=lambda e: e.id)]
        assert moments == sorted(moments), item.ref
        assert moments[0] >= item.created_at
        if item.resolved_at is not None:
            assert item.accepted_at <= item.resolved_at < NOW

    # The past sends no notice.
    assert db.session.scalar(select(func.count(OutboxMessage.id))) == 0
    assert db.session.scalar(select(func.count(Item.id)).where(Item.resident_id.is_not(None))) == 0


def test_the_county_dashboard_shows_rates_not_too_few(history):
    county = db.session.scalar(select(Region).where(Region.code == "430225"))
    figures = stats.compute(stats.Scope("region", region=county), stats.default_range(TODAY), now=NOW)
    for name in ("answer_rate", "resolve_rate", "satisfaction_rate"):
        rate = figures.rates[name]
        assert rate.value is not None, (name, rate.percent_label)
        assert 0.5 < rate.value <= 1.0, (name, rate.value)
    assert figures.rates["satisfaction_rate"].value < 1.0  # some residents were not satisfied
    assert figures.median_first_answer_hours is not None

    # Each serving deputy acted through an account that cannot log in (only ``deputy`` can).
    deputies = list(db.session.scalars(select(StaffUser).where(StaffUser.role == StaffRole.DEPUTY)))
    assert len(deputies) == 11  # the demo's serving deputies; the resigned one has none
    assert all(re.fullmatch(r"deputy(\d\d)?", u.username) for u in deputies)
    usable = [u.username for u in deputies if check_password_hash(u.password_hash, DEMO_PASSWORD)]
    assert usable == ["deputy"]


@pytest.mark.parametrize("months", ["0", "37", "x"])
def test_the_command_refuses_a_month_count_out_of_range_and_writes_nothing(runner, months):
    result = runner.invoke(args=["demo", "load", "--history", "--months", months])
    assert result.exit_code == 2 and "--months" in result.output
    assert db.session.scalar(select(func.count(Item.id))) == 0
    assert db.session.scalar(select(func.count(StaffUser.id))) == 0


def test_the_command_writes_the_history_and_refuses_a_database_with_data(runner):
    result = runner.invoke(args=["demo", "load", "--history", "--months", "1"])
    assert result.exit_code == 0, result.output
    items = db.session.scalar(select(func.count(Item.id)))
    assert f"已写入过去1个月的 {items} 件留言及其办理记录。" in result.output
    assert items > 20
    again = runner.invoke(args=["demo", "load", "--history"])
    assert again.exit_code != 0 and "演示数据只能载入空数据库" in again.output
    skipped = runner.invoke(args=["demo", "load", "--if-empty", "--history"])
    assert skipped.exit_code == 0 and "跳过" in skipped.output
    db.session.expire_all()
    assert db.session.scalar(select(func.count(Item.id))) == items


def test_clock_at_answers_its_moment_inside_and_the_time_outside(app):
    moment = datetime(2026, 1, 2, 3, 4, tzinfo=UTC)
    with clock_at(moment):
        assert utcnow() == moment
        with clock_at(moment + timedelta(hours=1)):
            assert utcnow() == moment + timedelta(hours=1)
        assert utcnow() == moment
    assert utcnow() - datetime.now(UTC) < timedelta(seconds=5)
    with pytest.raises(ValueError, match="naive"), clock_at(datetime(2026, 1, 2)):
        pass


def test_the_demo_departments_fill_the_league_table_one_under_the_sample(app, history):
    """Issue 15: several departments over the minimum sample, one under it; the unit counted under its bureau."""
    from backend.supervision import departments

    county = db.session.scalar(select(Region).where(Region.code == "430225"))
    table = departments.league(county.id, stats.default_range(TODAY), NOW)
    min_sample = app.config["STATS_MIN_SAMPLE"]
    # Three and a half months here (the demo loads twelve): the on-time rates are over the sample already.
    assert len(table.ranked) == 3 and all(row.on_time_rate.value is not None for row in table.ranked)
    assert [row.department.name for row in table.under_sample] == ["炎陵县水利局"]
    assert table.under_sample[0].received > 0 and table.under_sample[0].rated < min_sample
    assert sum(row.returned for row in table.ranked) > 0
    housing = next(row for row in table.ranked if row.department.name == "炎陵县住房和城乡建设局")
    unit = db.session.scalar(select(ItemForward).where(ItemForward.department.has(name="霞阳镇城建办")).limit(1))
    assert unit is not None and housing.received > 0
    assert departments.ledger(housing.department, NOW)  # promises and forwards in hand
