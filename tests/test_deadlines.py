"""Deadlines: working days across weekends, calendar days, pausing while waiting for the resident, overdue."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from backend.config import Config
from backend.errors import UserError
from backend.extensions import db
from backend.items import deadlines
from backend.items.deadlines import (
    add_working_time,
    due_after,
    is_overdue,
    overdue_condition,
    parse_due,
    working_time_between,
)
from backend.items.lifecycle import perform_action
from backend.models import Item, ItemCategory, ItemStatus, utcnow
from backend.qr.codes import current_code
from backend.stations.calendar import CHINA_TZ
from tests.factories import DeputyFactory, ItemFactory, StaffUserFactory


def china(*args) -> datetime:
    return datetime(*args, tzinfo=CHINA_TZ)


# 2026-11-20 is a Friday; 21–22 the weekend.
FRIDAY_10 = china(2026, 11, 20, 10, 0)


@pytest.fixture
def calendar_days(app):
    app.config["DEADLINE_WORKING_DAYS"] = False
    yield
    app.config["DEADLINE_WORKING_DAYS"] = True


def test_settings_have_defaults_and_follow_the_environment(tmp_path, monkeypatch):
    config = Config(str(tmp_path))
    assert (config.ACCEPT_DUE_DAYS, config.ANSWER_DUE_DAYS, config.RESOLVE_DUE_DAYS) == (2, 15, 30)
    assert config.DEADLINE_WORKING_DAYS is True
    monkeypatch.setenv("ACCEPT_DUE_DAYS", "3")
    monkeypatch.setenv("DEADLINE_WORKING_DAYS", "0")
    config = Config(str(tmp_path))
    assert config.ACCEPT_DUE_DAYS == 3 and config.DEADLINE_WORKING_DAYS is False


@pytest.mark.parametrize(
    ("start", "days", "expected"),
    [
        (FRIDAY_10, 2, china(2026, 11, 24, 10, 0)),  # Fri → Mon, Tue
        (FRIDAY_10, 1, china(2026, 11, 23, 10, 0)),
        (china(2026, 11, 18, 9, 30), 2, china(2026, 11, 20, 9, 30)),  # Wed → Fri, no weekend
        (china(2026, 11, 21, 15, 0), 2, china(2026, 11, 25, 0, 0)),  # Saturday counts from Monday 00:00
        (china(2026, 11, 22, 23, 0), 1, china(2026, 11, 24, 0, 0)),  # Sunday night
        (FRIDAY_10, 15, china(2026, 12, 11, 10, 0)),  # three weekends
        (FRIDAY_10, 0, FRIDAY_10),
    ],
)
def test_working_days_skip_weekends(app, start, days, expected):
    due = due_after(start, days)
    assert due.tzinfo is not None and due.utcoffset() == timedelta(0)
    assert due == expected


def test_calendar_days_when_configured(app, calendar_days):
    assert due_after(FRIDAY_10, 2) == china(2026, 11, 22, 10, 0)
    assert working_time_between(FRIDAY_10, china(2026, 11, 23, 10, 0)) == timedelta(days=3)


def test_working_time_between_leaves_the_weekend_out(app):
    assert working_time_between(china(2026, 11, 20, 17, 0), china(2026, 11, 23, 9, 0)) == timedelta(hours=16)
    assert working_time_between(china(2026, 11, 21, 8, 0), china(2026, 11, 22, 20, 0)) == timedelta(0)
    assert working_time_between(FRIDAY_10, FRIDAY_10 - timedelta(hours=1)) == timedelta(0)
    # add_working_time is its inverse
    start = china(2026, 11, 19, 13, 0)
    for hours in (1, 11, 35, 59, 200):
        end = add_working_time(start, timedelta(hours=hours))
        assert working_time_between(start, end) == timedelta(hours=hours)


def test_naive_datetimes_are_refused(app):
    with pytest.raises(ValueError):
        due_after(datetime(2026, 11, 20, 10, 0), 2)  # naive: refused


def test_resume_moves_the_due_time_by_the_working_time_waited(app):
    item = Item(status=ItemStatus.ACCEPTED, due_at=china(2026, 11, 24, 10, 0).astimezone(UTC))
    deadlines.pause_clock(item, china(2026, 11, 20, 17, 0))
    assert is_overdue(item, china(2026, 12, 31, 0, 0)) is False  # judged at the pause
    waited = deadlines.resume_clock(item, china(2026, 11, 23, 9, 0))
    assert waited == timedelta(hours=16)
    assert item.paused_at is None
    assert item.due_at == china(2026, 11, 25, 2, 0)  # Tue 10:00 + 16 working hours
    assert deadlines.resume_clock(item, china(2026, 11, 23, 9, 0)) == timedelta(0)  # not paused: nothing


def test_is_overdue(app):
    due = china(2026, 11, 24, 10, 0)
    after, before = due + timedelta(minutes=1), due - timedelta(minutes=1)
    for status in (ItemStatus.SUBMITTED, ItemStatus.ACCEPTED, ItemStatus.FORWARDED, ItemStatus.ANSWERED):
        assert is_overdue(Item(status=status, due_at=due), after)
        assert not is_overdue(Item(status=status, due_at=due), before)
    for status in (ItemStatus.RESOLVED, ItemStatus.DECLINED, ItemStatus.DUPLICATE):
        assert not is_overdue(Item(status=status, due_at=due), after)
    assert not is_overdue(Item(status=ItemStatus.ACCEPTED, due_at=None), after)
    # paused after the deadline had passed: still overdue
    assert is_overdue(Item(status=ItemStatus.ACCEPTED, due_at=due, paused_at=after), after + timedelta(days=9))


def test_parse_due(app):
    now = FRIDAY_10.astimezone(UTC)
    assert parse_due("2026-11-30", now) == china(2026, 11, 30, 23, 59, 59)
    assert parse_due("2026-11-20", now) == china(2026, 11, 20, 23, 59, 59)  # today is fine
    assert parse_due(china(2026, 12, 1, 12, 0), now) == china(2026, 12, 1, 12, 0)
    for bad, code in [
        ("2026-11-19", "due_in_past"),
        ("2028-01-01", "due_too_far"),
        ("30/11/2026", "invalid_due"),
        ("2026-11-30T10:00:00", "invalid_due"),  # naive
        (None, "required"),
        ("", "required"),
        (20261130, "invalid_due"),  # a number is not a date
        # The calendar's ends overflow when moved between time zones (finding 6): refused before that.
        ("9999-12-31T23:59:59-14:00", "invalid_due"),
        ("0001-01-01T00:00:00+14:00", "invalid_due"),
        ("9999-12-31", "invalid_due"),
        ("2100-01-01", "invalid_due"),
        ("２０２６-１１-３０", "invalid_due"),  # full-width digits
        ("٢٠٢٦-١١-٣٠", "invalid_due"),  # Arabic-Indic digits
    ]:
        with pytest.raises(UserError) as err:
            parse_due(bad, now)
        assert (err.value.code, err.value.field) == (code, "due")


@pytest.fixture
def deputy_user(app):
    user = StaffUserFactory(username="zxy", deputy=DeputyFactory())
    db.session.commit()
    return user


def make_item(deputy, status=ItemStatus.ACCEPTED, due_at=None, paused_at=None) -> Item:
    item = ItemFactory(deputy=deputy, category=ItemCategory.OTHER, status=status, due_at=due_at, paused_at=paused_at)
    db.session.commit()
    return item


def test_overdue_condition_agrees_with_is_overdue(app, deputy_user):
    now = utcnow()
    deputy = deputy_user.deputy
    items = [
        make_item(deputy, due_at=now - timedelta(hours=1)),  # overdue
        make_item(deputy, due_at=now + timedelta(hours=1)),
        make_item(deputy, status=ItemStatus.RESOLVED, due_at=now - timedelta(hours=1)),
        make_item(deputy, due_at=now - timedelta(hours=1), paused_at=now - timedelta(hours=2)),  # paused in time
        make_item(deputy, due_at=now - timedelta(hours=3), paused_at=now - timedelta(hours=2)),  # paused too late
        make_item(deputy, status=ItemStatus.SUBMITTED, due_at=None),
    ]
    found = set(db.session.scalars(select(Item.id).where(overdue_condition(now))))
    assert found == {i.id for i in items if is_overdue(i, now)}
    assert found == {items[0].id, items[4].id}


def test_submission_sets_the_accept_deadline(client, create_deputy):
    deputy = create_deputy()
    resp = client.post(
        "/api/v1/items", json={"code": current_code(deputy).slug, "body": "村口路灯坏了三个月，晚上出行很不方便。"}
    )
    assert resp.status_code == 201, resp.get_json()
    item = db.session.scalar(select(Item).where(Item.ref == resp.get_json()["ref"]))
    assert item.due_at == deadlines.accept_deadline(item.created_at)
    assert item.due_at > item.created_at


def test_wait_and_resume_through_actions(app, deputy_user, calendar_days):
    now = utcnow()
    item = make_item(deputy_user.deputy, due_at=now + timedelta(days=3))
    event = perform_action(item, deputy_user, "wait_for_resident", text="请补充路灯的具体位置和照片。")
    assert event.is_public and item.paused_at is not None
    # Pretend the wait began two hours ago.
    item.paused_at = item.paused_at - timedelta(hours=2)
    db.session.commit()
    due_before = item.due_at
    event = perform_action(item, deputy_user, "resume")
    assert not event.is_public and item.paused_at is None
    assert 7190 <= event.data["paused_seconds"] <= 7260
    assert timedelta(seconds=7190) <= item.due_at - due_before <= timedelta(seconds=7260)


def test_accept_starts_the_answer_deadline(app, deputy_user):
    item = make_item(deputy_user.deputy, status=ItemStatus.SUBMITTED, due_at=utcnow())
    perform_action(item, deputy_user, "accept")
    assert item.due_at == deadlines.answer_deadline(item.accepted_at)
    assert not is_overdue(item)
