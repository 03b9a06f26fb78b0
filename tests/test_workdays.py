"""Working days as China counts them: the real 2025 and 2026 arrangements (国庆 with its 调休 days, 春节), a year
nobody gave (Monday–Friday, named, no crash), a year a supervisor enters on /admin/workdays (and who may), and a
paused item judged without its paused time everywhere that decides "overdue"."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from backend.extensions import db
from backend.items import deadlines, workcalendar
from backend.items.deadlines import add_working_time, due_after, is_overdue, overdue_by, working_time_between
from backend.items.inbox import inbox_page, overdue_label
from backend.items.lifecycle import perform_action
from backend.models import (
    AuditEntry,
    Item,
    ItemStatus,
    OutboxMessage,
    WorkCalendarDay,
    WorkCalendarYear,
)
from backend.outbox.queue import queue_overdue_notices
from backend.stations.calendar import CHINA_TZ
from tests.factories import admin_world, make_item
from tests.helpers import audit_count, login, post_form


def china(*args) -> datetime:
    return datetime(*args, tzinfo=CHINA_TZ)


# --- the bundled arrangements ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "days", "expected", "why"),
    [
        # 2026 国庆: 10月1日–7日 off (Thu–Wed), 9月20日 (Sun) and 10月10日 (Sat) worked.
        (china(2026, 9, 30, 10), 2, china(2026, 10, 9, 10), "Wed 14 h, then Oct 8 (Thu) 24 h, Oct 9 10 h"),
        (china(2026, 10, 9, 10), 1, china(2026, 10, 10, 10), "Saturday Oct 10 is a working day"),
        (china(2026, 9, 19, 15), 1, china(2026, 9, 21, 0), "Saturday off, Sunday Sep 20 worked"),
        # 2026 中秋: 9月25日–27日 off (Fri–Sun).
        (china(2026, 9, 24, 10), 2, china(2026, 9, 29, 10), "Fri Sep 25 off"),
        # 2026 春节: 2月15日–23日 off, 2月14日 (Sat) and 2月28日 (Sat) worked.
        (china(2026, 2, 13, 10), 2, china(2026, 2, 24, 10), "Sat Feb 14 worked, nine days off"),
        (china(2026, 2, 27, 12), 1, china(2026, 2, 28, 12), "Sat Feb 28 worked"),
        # 2025 国庆+中秋: 10月1日–8日 off, 9月28日 (Sun) and 10月11日 (Sat) worked.
        (china(2025, 9, 30, 9), 3, china(2025, 10, 11, 9), "Oct 9, Oct 10, then Saturday Oct 11"),
        (china(2025, 9, 27, 9), 1, china(2025, 9, 29, 0), "Sat off, Sun Sep 28 worked"),
        # 2025 春节: 1月28日–2月4日 off, 1月26日 (Sun) and 2月8日 (Sat) worked.
        (china(2025, 1, 25, 12), 1, china(2025, 1, 27, 0), "Sunday Jan 26 worked"),
        (china(2025, 1, 27, 18), 1, china(2025, 2, 5, 18), "eight days off"),
    ],
)
def test_deadlines_follow_the_state_councils_arrangements(app, start, days, expected, why):
    assert due_after(start, days) == expected, why
    assert working_time_between(start, expected) == timedelta(days=days)


def test_the_library_knows_2025_and_2026_and_not_2027(app):
    calendar = workcalendar.current()
    assert calendar.knows(2025) and calendar.knows(2026) and not calendar.knows(2027)
    assert not calendar.is_working_day(date(2026, 10, 5))  # Monday of 国庆
    assert calendar.is_working_day(date(2026, 10, 10))  # Saturday worked
    assert not calendar.is_working_day(date(2026, 10, 11))  # an ordinary Sunday


# --- a year nobody gave ---------------------------------------------------------------------------------------


def test_a_deadline_into_a_year_nobody_gave_counts_monday_to_friday_and_says_so(app):
    start = china(2026, 12, 30, 10)  # Wednesday
    due = due_after(start, 3)
    # Dec 30 14 h, Dec 31 24 h, Fri 2027-01-01 counted as a working day (24 h), Mon Jan 4 10 h.
    assert due == china(2027, 1, 4, 10)
    assert deadlines.provisional_years(start, due) == [2027]
    assert deadlines.provisional_years(china(2026, 11, 2, 10), due_after(china(2026, 11, 2, 10), 3)) == []
    assert workcalendar.unknown_years(date(2030, 1, 1), date(2031, 2, 1)) == [2030, 2031]


# --- a year entered on the page -------------------------------------------------------------------------------


WORLD = admin_world  # the world fixture (tests/conftest.py)


# Not the real 2027 arrangement (unknown to this test's authors): test data in its shape.
HOLIDAYS_2027 = "2027-01-01 至 2027-01-03 元旦\n2027-02-06 至 2027-02-12 春节"
WORKDAYS_2027 = "2027-02-14 春节\n2027-02-20 春节"


def test_a_supervisor_enters_a_year_and_deadlines_follow_it(app, world):
    sup = login(app, "sup_county")
    page = sup.get("/admin/workdays")
    assert page.status_code == 200
    assert "2027年的节假日安排尚未录入" in page.text
    response = post_form(
        sup,
        "/admin/workdays",
        {"year": "2027", "holidays": HOLIDAYS_2027, "workdays": WORKDAYS_2027, "source": "测试通知"},
        page="/admin/workdays",
    )
    assert response.status_code == 303, response.text
    assert db.session.scalar(select(func.count()).select_from(WorkCalendarDay)) == 3 + 7 + 2
    entry = db.session.get(WorkCalendarYear, 2027)
    assert entry.source == "测试通知" and entry.entered_by_id == world.users["supervisor"].id
    assert audit_count("work_calendar_saved") == 1
    # The same deadline as above now skips New Year's Day.
    start = china(2026, 12, 30, 10)
    assert due_after(start, 3) == china(2027, 1, 5, 10)
    assert deadlines.provisional_years(start, due_after(start, 3)) == []
    assert due_after(china(2027, 2, 5, 10), 1) == china(2027, 2, 14, 10)  # a week off, then Sunday Feb 14 worked
    page = sup.get("/admin/workdays?year=2027")
    assert "管理员录入" in page.text and "2月6日（六）至2月12日（五）" in page.text and "测试通知" in page.text
    assert "2027年的节假日安排尚未录入" not in page.text

    # Deleting the entry: 2027 is unknown again.
    response = post_form(sup, "/admin/workdays/2027/delete", page="/admin/workdays")
    assert response.status_code == 303
    assert db.session.get(WorkCalendarYear, 2027) is None
    assert db.session.scalar(select(func.count()).select_from(WorkCalendarDay)) == 0
    assert due_after(start, 3) == china(2027, 1, 4, 10)


def test_an_entered_year_replaces_the_librarys(app, world):
    sup = login(app, "sup_county")
    # A county's correction of 2026 (made up): only 元旦, and no 调休.
    response = post_form(
        sup, "/admin/workdays", {"year": "2026", "holidays": "2026-01-01 元旦", "workdays": ""}, page="/admin/workdays"
    )
    assert response.status_code == 303
    calendar = workcalendar.current()
    assert calendar.is_working_day(date(2026, 10, 5)) and not calendar.is_working_day(date(2026, 10, 10))
    assert 2026 in calendar.entered_years


@pytest.mark.parametrize(
    ("form", "field", "message"),
    [
        ({"year": "", "holidays": "2027-01-01 元旦"}, "year", "请填写年份"),
        ({"year": "二〇二七", "holidays": "2027-01-01 元旦"}, "year", "请填写年份"),
        ({"year": "1999", "holidays": "1999-01-01 元旦"}, "year", "年份应在"),
        ({"year": "2027", "holidays": ""}, "holidays", "至少填写一天"),
        ({"year": "2027", "holidays": "元旦放三天"}, "holidays", "第1行"),
        ({"year": "2027", "holidays": "2027-02-30 春节"}, "holidays", "没有这一天"),
        ({"year": "2027", "holidays": "2027-02-12 至 2027-02-06 春节"}, "holidays", "结束日期早于开始日期"),
        ({"year": "2027", "holidays": "2027-01-01 至 2027-02-28 寒假"}, "holidays", "不超过15天"),
        ({"year": "2027", "holidays": "2028-01-01 元旦"}, "holidays", "不在2027年的安排之内"),
        ({"year": "2027", "holidays": "2027-01-01 元旦", "workdays": "2027-02-15 春节"}, "workdays", "本来就上班"),
        (
            {"year": "2027", "holidays": "2027-01-01 元旦", "workdays": "2027-02-13 至 2027-02-14"},
            "workdays",
            "一天写一行",
        ),
        (
            {"year": "2027", "holidays": "2027-01-01 至 2027-01-03 元旦", "workdays": "2027-01-02"},
            "workdays",
            "填了两次",
        ),
        ({"year": "2027", "holidays": "2027-01-01 " + "元" * 41}, "holidays", "不能超过40个字"),
        ({"year": "2027", "holidays": "2027-01-01 元旦", "source": "通" * 201}, "source", "不能超过200个字"),
    ],
)
def test_bad_arrangements_are_refused_and_nothing_is_written(app, world, form, field, message):
    sup = login(app, "sup_county")
    response = post_form(sup, "/admin/workdays", form, page="/admin/workdays")
    assert response.status_code == 400
    assert message in response.text
    assert f'id="workdays-{field}"' in response.text and 'aria-invalid="true"' in response.text
    assert db.session.scalar(select(func.count()).select_from(WorkCalendarYear)) == 0
    assert audit_count("work_calendar_saved") == 0


@pytest.mark.parametrize("who", ["station_admin", "deputy", "department"])
def test_only_supervisors_may_see_or_change_the_calendar(app, world, who):
    client = login(app, world.users[who].username)
    before = audit_count("admin_access_denied", "forbidden")
    assert client.get("/admin/workdays").status_code == 404
    response = client.post("/admin/workdays", data={"year": "2027", "holidays": "2027-01-01 元旦"})
    assert response.status_code in (400, 404)  # no CSRF token of an admin page to be had: refused either way
    assert db.session.get(WorkCalendarYear, 2027) is None
    assert audit_count("admin_access_denied", "forbidden") > before
    assert app.test_client().get("/admin/workdays").status_code in (302, 303, 404)  # not logged in


def test_a_station_admin_with_a_valid_token_is_still_refused(app, world):
    client = login(app, "admin_a")
    response = post_form(
        client,
        "/admin/workdays",
        {"year": "2027", "holidays": "2027-01-01 元旦"},
        page=f"/admin/stations/{world.station_a.id}",
    )
    assert response.status_code == 404
    assert db.session.get(WorkCalendarYear, 2027) is None
    assert db.session.scalar(
        select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "admin_access_denied")
    )


# --- a paused item: one definition of overdue ---------------------------------------------------------------------


def accepted_item(deputy) -> Item:
    item = make_item(deputy)
    item.status = ItemStatus.ACCEPTED
    db.session.commit()
    return item


def test_a_paused_item_keeps_its_remaining_working_time_across_national_day(app):
    item = Item(status=ItemStatus.ACCEPTED, due_at=china(2026, 10, 9, 10))
    remaining = working_time_between(china(2026, 9, 30, 10), item.due_at)
    assert remaining == timedelta(hours=48)
    deadlines.pause_clock(item, china(2026, 9, 30, 10))
    assert not is_overdue(item, china(2026, 10, 20, 0))  # still waiting for the resident: not late
    deadlines.resume_clock(item, china(2026, 10, 12, 9))
    # 48 working hours from Monday Oct 12 09:00: Mon 15 h, Tue 24 h, Wed 9 h.
    assert item.due_at == china(2026, 10, 14, 9)
    assert working_time_between(china(2026, 10, 12, 9), item.due_at) == remaining
    assert not is_overdue(item, china(2026, 10, 14, 8, 59)) and is_overdue(item, china(2026, 10, 14, 9, 1))


def test_overdue_is_one_definition_for_inbox_label_export_and_reminders(app, world):
    deputy_user = world.users["deputy"]
    now = china(2026, 10, 20, 10)
    due = china(2026, 9, 29, 10)
    running = accepted_item(world.d1)
    paused_late = accepted_item(world.d1)
    paused_in_time = accepted_item(world.d1)
    for item in (running, paused_late, paused_in_time):
        item.due_at = due
    paused_late.paused_at = due + timedelta(days=1)  # it was a day late when it began to wait
    paused_in_time.paused_at = due - timedelta(hours=2)
    db.session.commit()

    expected = {running.id, paused_late.id}
    assert {i.id for i in (running, paused_late, paused_in_time) if is_overdue(i, now)} == expected
    in_sql = set(db.session.scalars(select(Item.id).where(deadlines.overdue_condition(now))))
    assert in_sql == expected
    page = inbox_page(deputy_user, state="overdue", now=now)
    assert {row.item.id for row in page.rows} == expected
    # The paused item's lateness stopped growing when it paused: one day, three weeks later.
    assert overdue_by(paused_late, now) == timedelta(days=1)
    assert overdue_label(paused_late, now) == "超期1天"
    assert overdue_label(running, now) == "超期21天"
    assert overdue_by(paused_in_time, now) == timedelta(0)
    # The worker's reminders: the same two items.
    queue_overdue_notices(now)
    reminded = set(db.session.scalars(select(OutboxMessage.item_id).where(OutboxMessage.kind == "deputy_item_overdue")))
    assert reminded == expected


def test_waiting_for_the_resident_through_the_action_and_resuming(app, world):
    deputy_user = world.users["deputy"]
    item = accepted_item(world.d1)
    item.due_at = add_working_time(datetime.now(CHINA_TZ), timedelta(days=2))
    db.session.commit()
    perform_action(item, deputy_user, "wait_for_resident", text="请补充路灯的具体位置。")
    db.session.commit()
    assert item.paused_at is not None
    far_future = item.due_at + timedelta(days=60)
    assert not is_overdue(item, far_future)  # while waiting its time does not run
    assert item.id not in set(db.session.scalars(select(Item.id).where(deadlines.overdue_condition(far_future))))
