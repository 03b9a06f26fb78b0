"""进站签到 (issue 15 part 2): POST /api/v1/presence, the deputy's page and their scan of the station code,
the administrator's record for a deputy without a phone, 见面率 from recorded presence, presence in 履职积分."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta

import pytest
from flask import g
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from backend.extensions import db
from backend.models import (
    AuditEntry,
    Deputy,
    DeputyStatus,
    PresenceSource,
    ReceptionRule,
    ReceptionRuleKind,
    StationVisit,
    utcnow,
)
from backend.models.base import clock_at
from backend.qr import scans
from backend.qr.codes import current_code
from backend.stations import presence
from backend.stations.calendar import CHINA_TZ, rule_matches, today_in_china
from backend.supervision import points, stats
from tests.factories import DeputyFactory
from tests.helpers import api_token, csrf_token_from, fresh_rows, login, resident_headers


def every_day(world) -> None:
    """A rule for every weekday at station A naming nobody: every day is a reception day of its deputies."""
    for weekday in range(1, 8):
        world.station_a.reception_rules.append(ReceptionRule(kind=ReceptionRuleKind.WEEKLY, day=weekday))
    db.session.commit()


def post(app, headers, body):
    return app.test_client().post("/api/v1/presence", json=body, headers=headers)


def china(day: date, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=CHINA_TZ).astimezone(UTC)


# --- the API ---------------------------------------------------------------------------------------------


def test_a_deputy_checks_in_then_out(app, world):
    every_day(world)
    headers = api_token(app, "deputy_d1")
    first = post(app, headers, {"station_id": world.station_a.id})
    assert first.status_code == 201, first.text
    assert first.json["action"] == "checked_in"
    visit = first.json["visit"]
    assert visit["is_open"] and visit["is_reception_day"] and visit["source"] == "api"
    assert visit["deputy_id"] == world.d1.id and visit["station_id"] == world.station_a.id
    assert visit["day"] == today_in_china().isoformat()

    # A second call a moment later is a double tap: nothing changes.
    again = post(app, headers, {"station_id": str(world.station_a.id)})
    assert again.status_code == 200 and again.json["action"] == "repeated"
    assert len(fresh_rows(StationVisit)) == 1 and fresh_rows(StationVisit)[0].is_open

    # Later, the second call closes the visit.
    row = fresh_rows(StationVisit)[0]
    row.checked_in_at = utcnow() - timedelta(hours=2)
    db.session.commit()
    closed = post(app, headers, {"station_id": world.station_a.id})
    assert closed.status_code == 200 and closed.json["action"] == "checked_out"
    assert closed.json["visit"]["checked_out_at"] is not None and not closed.json["visit"]["is_open"]
    assert "已签退" in closed.json["message"]
    # And the next one opens a new visit.
    assert post(app, headers, {"station_id": world.station_a.id}).status_code == 201
    assert [v.is_open for v in fresh_rows(StationVisit)] == [False, True]


def test_outside_a_reception_day_is_allowed_and_marked(app, world):
    headers = api_token(app, "deputy_d1")  # station A has no reception rule at all
    response = post(app, headers, {"station_id": world.station_a.id})
    assert response.status_code == 201
    assert response.json["visit"]["is_reception_day"] is False
    assert "不是您的接待日" in response.json["message"] and "不计入见面率" in response.json["message"]


def test_a_rule_naming_another_deputy_is_not_this_ones_day(app, world):
    today = today_in_china()
    world.station_a.reception_rules.append(
        ReceptionRule(kind=ReceptionRuleKind.WEEKLY, day=today.isoweekday(), deputy=world.d2)
    )
    db.session.commit()
    assert (
        post(app, api_token(app, "deputy_d1"), {"station_id": world.station_a.id}).json["visit"]["is_reception_day"]
        is False
    )
    assert (
        post(app, api_token(app, "deputy_d2"), {"station_id": world.station_a.id}).json["visit"]["is_reception_day"]
        is True
    )


@pytest.mark.parametrize(
    ("who", "body", "status", "code"),
    [
        ("deputy_b", {"station_id": "A"}, 404, "not_your_station"),  # a deputy of another station, at A
        ("deputy_far", {"station_id": "A"}, 404, "not_your_station"),  # another county
        ("station_admin_b", {"station_id": "A", "deputy_id": "d1"}, 404, "not_your_station"),
        ("station_admin_b", {"station_id": "B", "deputy_id": "d1"}, 404, "not_your_station"),  # d1 is not at B
        ("deputy", {"station_id": "A", "deputy_id": "d2"}, 403, "not_yourself"),  # for another deputy
        ("deputy", {}, 400, "invalid_station_id"),
        ("deputy", {"station_id": "abc"}, 400, "invalid_station_id"),
        ("deputy", {"station_id": 2.5}, 400, "invalid_station_id"),
        ("deputy", {"station_id": True}, 400, "invalid_station_id"),
        ("deputy", {"station_id": 2**31 - 1}, 404, "not_your_station"),  # no such station
        ("station_admin", {"station_id": "A"}, 400, "invalid_deputy_id"),  # an administrator names the deputy
        ("station_admin", {"station_id": "A", "deputy_id": 2**31 - 1}, 404, "unknown_deputy"),
    ],
)
def test_presence_refused_writes_nothing(app, world, who, body, status, code):
    ids = {"A": world.station_a.id, "B": world.station_b.id, "d1": world.d1.id, "d2": world.d2.id}
    body = {key: ids.get(value, value) if isinstance(value, str) else value for key, value in body.items()}
    response = post(app, api_token(app, world.users[who].username), body)
    assert response.status_code == status, response.text
    assert response.json["error"]["code"] == code
    assert fresh_rows(StationVisit) == []


def test_who_is_not_a_deputy_or_administrator_is_refused(app, world):
    body = {"station_id": world.station_a.id}
    assert post(app, {}, body).status_code == 401  # nobody
    assert (
        post(app, resident_headers("o-presence-test"), body).status_code == 401
    )  # a resident's key is not a staff token
    assert post(app, api_token(app, "sup_county"), body).status_code == 404  # a supervisor records nobody's presence
    assert post(app, api_token(app, "dept_user"), body).status_code == 404
    assert fresh_rows(StationVisit) == []


def test_a_refusal_is_audited(app, world):
    post(app, api_token(app, "deputy_d3"), {"station_id": world.station_a.id})
    rows = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "presence_refused")).all()
    assert len(rows) == 1 and rows[0].object_id == str(world.station_a.id)


def test_a_deputy_no_longer_serving_cannot_check_in(app, world):
    headers = api_token(app, "deputy_d1")
    world.d1.status = "resigned"
    db.session.commit()
    response = post(app, headers, {"station_id": world.station_a.id})
    assert response.status_code == 409 and response.json["error"]["code"] == "deputy_not_serving"
    assert fresh_rows(StationVisit) == []


def test_two_check_ins_at_once_make_one_visit(app, world):
    """Two requests released together: one visit, one 201 and one 200 (the repeat), on either engine."""
    headers = api_token(app, "deputy_d1")
    body = {"station_id": world.station_a.id}
    db.session.commit()  # the test's own transaction must not hold SQLite's write lock while the two run
    barrier = threading.Barrier(2)
    answers: list[tuple[int, str]] = []

    def send():
        with app.app_context():  # a request of its own, as from another worker
            client = app.test_client()
            barrier.wait()
            response = client.post("/api/v1/presence", json=body, headers=headers)
            answers.append((response.status_code, response.json["action"]))

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers) == [(200, "repeated"), (201, "checked_in")]
    assert len(fresh_rows(StationVisit)) == 1


def test_the_database_refuses_a_second_open_visit(app, world):
    """The rule the race relies on is the database's (the partial unique index), not the code's read before it."""

    def add_two_visits(**fields) -> None:
        """Two visits of the same deputy at the same station today, open unless ``fields`` close them."""
        for _ in range(2):
            db.session.add(
                StationVisit(
                    deputy_id=world.d1.id,
                    station_id=world.station_a.id,
                    day=today_in_china(),
                    is_reception_day=False,
                    source=PresenceSource.TAP,
                    **fields,
                )
            )

    add_two_visits()
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()
    # Closed visits are not limited.
    add_two_visits(checked_out_at=utcnow())
    db.session.commit()
    assert len(fresh_rows(StationVisit)) == 2


# --- pages: the deputy's scan, the tap, the administrator ---------------------------------------------------


def test_a_deputy_scanning_their_station_code_is_offered_check_in(app, world):
    every_day(world)
    station_slug = current_code(world.station_a).slug
    deputy = login(app, "deputy_d1")
    page = deputy.get(f"/c/{station_slug}")
    assert page.status_code == 200
    assert 'id="check-in"' in page.text and "我要留言" not in page.text
    assert scans.total_scans([current_code(world.station_a).id]) == {}  # a deputy's presence is not a poster's scan
    done = deputy.post(
        "/staff/presence", data={"csrf_token": csrf_token_from(page.text), "source": "scan", "intent": "in"}
    )
    assert done.status_code == 200 and "已签到" in done.text and 'id="check-out"' in done.text
    (visit,) = fresh_rows(StationVisit)
    assert (
        visit.source == PresenceSource.SCAN
        and visit.is_reception_day
        and visit.recorded_by_id == (world.users["deputy"].id)
    )
    # The resident's form is one link away, for the deputy who wanted it.
    assert "我要留言" in deputy.get(f"/c/{station_slug}?as=resident").text


def test_everyone_else_scanning_the_station_code_gets_the_residents_form(app, client, world):
    station_code = current_code(world.station_a)
    assert "我要留言" in client.get(f"/c/{station_code.slug}").text  # a resident
    assert "我要留言" in login(app, "deputy_d3").get(f"/c/{station_code.slug}").text  # a deputy of station B
    assert "我要留言" in login(app, "admin_a").get(f"/c/{station_code.slug}").text  # the station's administrator
    # A deputy's own code opens the form too: presence is recorded at the station's code.
    assert "我要留言" in login(app, "deputy_d1").get(f"/c/{current_code(world.d1).slug}").text
    assert scans.total_scans([station_code.id]) == {station_code.id: 3}
    assert fresh_rows(StationVisit) == []


def test_the_tap_page_checks_in_and_out(app, world):
    deputy = login(app, "deputy_d1")
    page = deputy.get("/staff/presence")
    assert page.status_code == 200 and "尚未签到" in page.text and "不是您的接待日" in page.text
    g.pop("csrf_token", None)
    token = csrf_token_from(page.text)
    # 签退 before any 签到 (a page left open), and no intent at all: refused, nothing written.
    early = deputy.post("/staff/presence", data={"csrf_token": token, "intent": "out"})
    assert early.status_code == 409 and "无需签退" in early.text
    assert deputy.post("/staff/presence", data={"csrf_token": token, "intent": "x"}).status_code == 400
    assert fresh_rows(StationVisit) == []
    deputy.post("/staff/presence", data={"csrf_token": token, "intent": "in"})
    (visit,) = fresh_rows(StationVisit)
    assert visit.source == PresenceSource.TAP and not visit.is_reception_day
    # A second 签到 tap never closes the visit, however late.
    visit.checked_in_at = utcnow() - timedelta(minutes=45)
    db.session.commit()
    again = deputy.post("/staff/presence", data={"csrf_token": token, "intent": "in"})
    assert "无需重复签到" in again.text and fresh_rows(StationVisit)[0].is_open
    # 签退 closes it at once.
    done = deputy.post("/staff/presence", data={"csrf_token": token, "intent": "out"})
    assert "已签退" in done.text and "45分钟" in done.text
    assert not fresh_rows(StationVisit)[0].is_open
    # Not a deputy: no such page.
    assert login(app, "admin_a").get("/staff/presence").status_code == 404


def test_the_administrator_records_for_a_deputy_without_a_phone(app, world):
    admin = login(app, "admin_a")
    page = admin.get(f"/admin/stations/{world.station_a.id}/presence")
    assert page.status_code == 200 and world.d1.name in page.text and "代为签到" in page.text
    token = csrf_token_from(page.text)
    done = admin.post(
        f"/admin/stations/{world.station_a.id}/presence",
        data={"csrf_token": token, "deputy_id": world.d1.id, "intent": "in"},
    )
    assert done.status_code == 200 and "已签到" in done.text and "代为签退" in done.text
    (visit,) = fresh_rows(StationVisit)
    assert visit.source == PresenceSource.BY_ADMIN and visit.recorded_by_id == world.users["station_admin"].id
    out = admin.post(
        f"/admin/stations/{world.station_a.id}/presence",
        data={"csrf_token": token, "deputy_id": world.d1.id, "intent": "out"},
    )
    assert "已签退" in out.text and not fresh_rows(StationVisit)[0].is_open

    # Another station's administrator, a deputy of another station, a bad id: refused, nothing written.
    other = login(app, "admin_b")
    other_token = csrf_token_from(other.get(f"/admin/stations/{world.station_b.id}/presence").text)
    refused = other.post(
        f"/admin/stations/{world.station_a.id}/presence",
        data={"csrf_token": other_token, "deputy_id": world.d2.id, "intent": "in"},
    )
    assert refused.status_code == 404
    refused = other.post(
        f"/admin/stations/{world.station_b.id}/presence",
        data={"csrf_token": other_token, "deputy_id": world.d2.id, "intent": "in"},
    )
    assert refused.status_code == 404
    bad = admin.post(
        f"/admin/stations/{world.station_a.id}/presence", data={"csrf_token": token, "deputy_id": "二", "intent": "in"}
    )
    assert bad.status_code == 400 and "请选择本站的一位代表" in bad.text
    assert len(fresh_rows(StationVisit)) == 1
    # A supervisor sees the page but records nothing (the station's administrator does).
    assert login(app, "sup_county").get(f"/admin/stations/{world.station_a.id}/presence").status_code == 200
    assert login(app, "deputy_d1").get(f"/admin/stations/{world.station_a.id}/presence").status_code == 404


# --- 见面率 and 履职积分 ------------------------------------------------------------------------------------


def stats_of(app, username: str, *, start: date, end: date, **scope) -> dict:
    """GET /api/v1/stats for ``scope`` over ``[start, end)`` with ``username``'s token."""
    args = {**scope, "from": start.isoformat(), "to": end.isoformat()}
    return app.test_client().get("/api/v1/stats", query_string=args, headers=api_token(app, username)).json


def check_in_on(user, deputy, station, day: date) -> None:
    with clock_at(china(day, 9)):
        presence.check_in_or_out(user, deputy, station, PresenceSource.TAP)
    with clock_at(china(day, 11)):
        presence.check_in_or_out(user, deputy, station, PresenceSource.TAP)
    db.session.commit()


def test_meeting_rate_is_present_days_over_the_calendars_days(app, world):
    app.config["STATS_MIN_SAMPLE"] = 1
    # 逢六 for every deputy of A, and every Sunday for d1 alone.
    world.station_a.reception_rules.append(ReceptionRule(kind=ReceptionRuleKind.XUN, day=6))
    world.station_a.reception_rules.append(ReceptionRule(kind=ReceptionRuleKind.WEEKLY, day=7, deputy=world.d1))
    db.session.commit()
    start, end = date(2026, 9, 1), date(2026, 10, 1)  # September 2026: 6, 16, 26 and Sundays 6, 13, 20, 27
    user = world.users["deputy"]
    for day in (date(2026, 9, 6), date(2026, 9, 13), date(2026, 9, 16)):
        check_in_on(user, world.d1, world.station_a, day)
    check_in_on(user, world.d1, world.station_a, date(2026, 9, 8))  # not a reception day: counted in points only
    given = {date(2026, 9, d) for d in (6, 13, 16, 20, 26, 27)}
    data = stats_of(app, "deputy_d1", deputy=world.d1.id, start=start, end=end)
    assert data["meeting_days_given"] == len(given) == 6
    assert data["meeting_days_present"] == 3
    assert data["meeting_rate"] == 3 / 6 and data["meeting_rate_note"] is None
    assert data["station_visits"] == 4

    # d2 has only the 逢六 days, and was never present.
    d2 = stats_of(app, "admin_a", deputy=world.d2.id, start=start, end=end)
    assert (d2["meeting_days_given"], d2["meeting_rate"]) == (3, 0.0)
    # The station sums its deputies' days.
    station = stats_of(app, "admin_a", station=world.station_a.id, start=start, end=end)
    assert (station["meeting_days_present"], station["meeting_days_given"]) == (3, 9)

    # The minimum sample applies, as for every rate.
    app.config["STATS_MIN_SAMPLE"] = 10
    data = stats_of(app, "deputy_d1", deputy=world.d1.id, start=start, end=end)
    assert data["meeting_rate"] is None and "样本不足" in data["meeting_rate_note"]

    # Presence days count in 履职积分, reception day or not (four days).
    figures = stats.compute(
        stats.Scope("deputy", deputy=world.d1, station=world.station_a), stats.DateRange(start, end)
    )
    quantities = {line.rule.key: line.quantity for line in points.deputy_points(figures).lines}
    assert quantities["reception_days"] == 4


def test_meeting_rate_is_null_with_a_note_when_the_calendar_gave_no_day(app, world):
    data = (
        app.test_client()
        .get("/api/v1/stats", query_string={"deputy": world.d3.id}, headers=api_token(app, "deputy_d3"))
        .json
    )
    assert data["meeting_rate"] is None and data["meeting_days_given"] == 0
    assert data["meeting_rate_note"] == stats.DEFINITIONS["meeting_rate_none"]


def test_days_ahead_are_not_given_yet(app, world):
    every_day(world)
    today = today_in_china()
    counted = presence.meeting_counts([world.d1.id], today - timedelta(days=2), today + timedelta(days=30), today)
    assert counted.given == 3  # two days back and today, not the month ahead


def test_the_dashboard_shows_the_meeting_rate_with_its_definition(app, world):
    app.config["STATS_MIN_SAMPLE"] = 1
    every_day(world)
    check_in_on(world.users["deputy"], world.d1, world.station_a, today_in_china())
    page = login(app, "deputy_d1").get("/supervision/", query_string={"deputy": world.d1.id})
    assert page.status_code == 200
    assert stats.DEFINITIONS["meeting_rate"] in page.text
    given = db.session.scalar(select(func.count()).select_from(StationVisit))
    assert given == 1
    assert 'id="value-meeting-present">1<' in page.text


def test_the_demo_history_gives_the_county_a_meeting_rate(app):
    """``flask demo load --history``: deputies came on most of their reception days, through the real operation."""
    from backend.demo import load_demo
    from backend.demo_history import load_history
    from backend.models import Region

    now = utcnow()
    load_demo()
    load_history(today_in_china(now), now, months=3)
    db.session.commit()
    county = db.session.scalar(select(Region).where(Region.code == "430225"))
    today = today_in_china(now)
    rng = stats.DateRange(today - timedelta(days=80), today)  # inside the three months written, today apart
    figures = stats.compute(stats.Scope("region", region=county), rng, now=now)
    assert figures.meeting is not None and figures.meeting.value is not None
    assert 0.5 < figures.meeting.value < 1.0, figures.meeting
    assert figures.station_visits > 0
    assert all(not visit.is_open and visit.is_reception_day for visit in fresh_rows(StationVisit))
    assert {visit.source for visit in fresh_rows(StationVisit)} == {PresenceSource.SCAN}


def per_deputy_meeting_counts(deputies, start: date, end: date, today: date) -> presence.MeetingCount:
    """The per-deputy computation ``meeting_counts`` replaced (a Python loop over deputies, rules and days), kept
    here as the reference its set-based query must equal."""
    end = min(end, today + timedelta(days=1))
    given = present = 0
    days = [start + timedelta(days=n) for n in range((end - start).days)]
    for deputy in deputies:
        rules = presence.reception_rules_of(deputy, deputy.station)
        mine = {day for day in days if any(rule_matches(rule, day) for rule in rules)}
        visited = set(
            db.session.scalars(
                select(StationVisit.day).where(
                    StationVisit.deputy_id == deputy.id, StationVisit.station_id == deputy.station_id
                )
            )
        )
        given += len(mine)
        present += len(mine & visited)
    return presence.MeetingCount(present, given)


def visit_on(deputy, station, day: date) -> None:
    """A closed visit of ``deputy`` at ``station`` on ``day`` (as ``check_in_or_out`` would record it)."""
    db.session.add(
        StationVisit(
            deputy_id=deputy.id,
            station_id=station.id,
            day=day,
            checked_in_at=china(day, 9),
            checked_out_at=china(day, 10),
            is_reception_day=presence.is_reception_day_of(deputy, station, day),
            source=PresenceSource.TAP,
        )
    )


def test_the_meeting_counts_query_equals_the_per_deputy_computation(app, world):
    rule = ReceptionRuleKind
    # Station A: 逢六 for all, every Sunday and the 1st for d1 (the 1st of October is no Sunday), the 31st for d2
    # (August has it, September not) and the 16th for d2 (a 逢六 day too: given once). Station B: every Wednesday
    # for all, and a rule naming d1, who is at A (gives d1 nothing). Station C: no rule (d4 has none). A deputy
    # moved from A to B, a deputy of A no longer serving.
    for kind, day, deputy in (
        (rule.XUN, 6, None),
        (rule.WEEKLY, 7, world.d1),
        (rule.MONTHLY, 1, world.d1),
        (rule.MONTHLY, 31, world.d2),
        (rule.MONTHLY, 16, world.d2),
    ):
        world.station_a.reception_rules.append(ReceptionRule(kind=kind, day=day, deputy=deputy))
    for kind, day, deputy in ((rule.WEEKLY, 3, None), (rule.XUN, 0, world.d1)):
        world.station_b.reception_rules.append(ReceptionRule(kind=kind, day=day, deputy=deputy))
    moved = DeputyFactory(name="刘调站", station=world.station_b)
    world.station_a.reception_rules.append(ReceptionRule(kind=rule.WEEKLY, day=5, deputy=moved))  # his old rule
    retired = DeputyFactory(name="陈离任", station=world.station_a, status=DeputyStatus.RESIGNED)
    db.session.flush()
    start, end, today = date(2026, 8, 20), date(2026, 10, 20), date(2026, 10, 11)  # across two month ends
    for deputy, station, days in (
        # Reception days (6 Sep, Sundays, 1 Oct), days that are not (8 Sep), one after today (16 Oct).
        (world.d1, world.station_a, ("2026-08-26", "2026-09-06", "2026-09-08", "2026-09-13", "2026-10-01")),
        (world.d1, world.station_a, ("2026-10-04", "2026-10-16", "2026-08-19")),
        (world.d1, world.station_b, ("2026-09-20", "2026-09-09")),  # at another station: not present at A
        (world.d2, world.station_a, ("2026-08-31", "2026-09-16", "2026-09-30", "2026-10-06")),
        (world.d3, world.station_b, ("2026-08-26", "2026-09-02", "2026-09-03", "2026-10-07", "2026-10-14")),
        (world.d4, world.station_c, ("2026-09-06",)),
        (moved, world.station_a, ("2026-09-04", "2026-09-06")),  # visits at his old station
        (moved, world.station_b, ("2026-09-02", "2026-09-16")),
        (retired, world.station_a, ("2026-09-06",)),
    ):
        for day in days:
            visit_on(deputy, station, date.fromisoformat(day))
    db.session.commit()
    db.session.expire_all()

    everyone = [world.d1, world.d2, world.d3, world.d4, moved, retired]
    for deputies in ([d] for d in everyone):
        ids = [d.id for d in deputies]
        expected = per_deputy_meeting_counts(deputies, start, end, today)
        assert presence.meeting_counts(ids, start, end, today) == expected, deputies[0].name
    assert presence.meeting_counts([world.d4.id], start, end, today) == presence.MeetingCount(0, 0)
    expected = per_deputy_meeting_counts(everyone, start, end, today)
    assert expected.given > 0 and 0 < expected.present < expected.given
    assert presence.meeting_counts([d.id for d in everyone], start, end, today) == expected
    # The dashboard's selection: the serving deputies of the county's stations, as a select.
    serving = select(Deputy.id).where(
        Deputy.station_id.in_([world.station_a.id, world.station_b.id]), Deputy.status == DeputyStatus.SERVING
    )
    county = [world.d1, world.d2, world.d3, moved]
    assert presence.meeting_counts(serving, start, end, today) == per_deputy_meeting_counts(county, start, end, today)
    # Ranges: one day, one month, ending before today, starting after it, empty.
    for a, b in (
        (date(2026, 9, 6), date(2026, 9, 7)),
        (date(2026, 9, 1), date(2026, 10, 1)),
        (date(2026, 8, 1), date(2026, 9, 1)),
        (date(2026, 10, 12), date(2026, 11, 1)),
        (date(2026, 9, 6), date(2026, 9, 6)),
    ):
        assert presence.meeting_counts(serving, a, b, today) == per_deputy_meeting_counts(county, a, b, today), a
    assert presence.meeting_counts([], start, end, today) == presence.MeetingCount(0, 0)
