"""Departments measured (issue 15 part 1): each figure of a department over a small county built through the
lifecycle with known answers — answered in time, late, returned, extended, unanswered past due, a unit's forward
counted under its parent, a second hop counted once, a revoked forward not at all — and whose answer each rating
judged; the league table with the minimum-sample rule, the 台账, the page, the API, and who is refused."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from backend.extensions import db
from backend.items import lifecycle
from backend.models import AuditEntry, Department, ItemForward, Satisfaction, utcnow
from backend.supervision import departments, stats
from tests.factories import act, due_in_days, forward, make_item
from tests.helpers import api_token, audit_rows, login

pytestmark = pytest.mark.usefixtures("count_in_database")

HOUR = timedelta(hours=1)


def _answer(fwd: ItemForward, text: str = "已派人现场处理。", promised_by=None) -> None:
    lifecycle.department_answer(fwd, text, promised_by)
    db.session.commit()


def _times(fwd: ItemForward, created, due=None, answered=None) -> None:
    """Time has passed: the forward was made at ``created``, due at ``due``, answered at ``answered``."""
    fwd.created_at = created
    if due is not None:
        fwd.due_at = due
    if answered is not None:
        fwd.answered_at = answered
    db.session.commit()


def _resolve_and_rate(w, item, verdict: str, comment: str = "") -> None:
    act(item, w.users["deputy"], "resolve", outcome="solved", text="已办结。")
    lifecycle.rate_item(item, verdict, verdict != "unsatisfied", comment)
    db.session.commit()


@pytest.fixture
def county(app, world):
    """The housing bureau (D) with a unit (U) and the forwards of the module's docstring, times set by hand.

    D: f1 answered in 10 h (due in 10 days), f2 answered in 72 h past its 2-day due, f3 returned, f4 answered
    after its first due date within the extension granted (720 h), f5 unanswered a day past due, f6 to the
    unit directly (5 h), f7 passed on to the unit (which answered in 25 h) and answered by D in 30 h,
    f8 revoked before any answer. The transport bureau answers f2's item after the resident's 不满意.
    """
    app.config["STATS_MIN_SAMPLE"] = 1
    deputy = world.users["deputy"]
    unit = Department(name="霞阳镇城建办", region=world.county, parent_id=world.department.id)
    db.session.add(unit)
    db.session.commit()
    now = utcnow()
    t0 = now - timedelta(days=30)
    f = {}
    items = {}
    for key in ("f1", "f2", "f3", "f4", "f5", "f7", "f8"):
        items[key] = make_item(world.d1, body=f"{key}：村口路灯坏了。")
        f[key], _ = forward(items[key], deputy, world.department)
    items["f6"] = make_item(world.d1, body="f6：村口路灯坏了。")
    f["f6"], _ = forward(items["f6"], deputy, unit)

    _answer(f["f1"])
    _times(f["f1"], t0, due=t0 + timedelta(days=10), answered=t0 + 10 * HOUR)
    _answer(f["f2"])
    _times(f["f2"], t0, due=t0 + timedelta(days=2), answered=t0 + 72 * HOUR)
    lifecycle.department_return(f["f3"], "非本单位职责。")
    db.session.commit()
    _times(f["f3"], t0)
    # f4: its first due date passed; the department asked for five more days, the deputy granted them.
    _times(f["f4"], t0, due=now - HOUR)
    lifecycle.department_request_extension(f["f4"], due_in_days(5), "需等材料到货。")
    db.session.commit()
    lifecycle.decide_extension(f["f4"], deputy, "grant")
    db.session.commit()
    _answer(f["f4"], promised_by=(now + timedelta(days=60)).date())
    _times(f["f4"], t0)
    _times(f["f5"], t0, due=now - timedelta(days=1))
    _answer(f["f6"])
    _times(f["f6"], t0, answered=t0 + 5 * HOUR)
    hop = lifecycle.department_pass_on(f["f7"], unit.id, due_in_days(5), "请现场核实。")
    db.session.commit()
    _answer(hop)
    _times(hop, t0 + HOUR, answered=t0 + 25 * HOUR)
    _answer(f["f7"])
    _times(f["f7"], t0, answered=t0 + 30 * HOUR)
    lifecycle.revoke_forward(f["f8"], deputy)
    db.session.commit()
    return SimpleNamespace(w=world, unit=unit, f=f, hop=hop, items=items, now=now)


def test_each_figure_of_a_department_with_its_unit_rolled_in(county):
    w = county.w
    figures = departments.department_figures(w.department, stats.default_range(), county.now)
    assert figures.received == 7  # f1–f7; f7's hop into the unit once; f8 revoked before an answer not at all
    assert figures.answered == 5  # f1, f2, f4, f6, f7
    assert figures.answered_on_time == 4  # f1, f4 (within its extension), f6, f7
    assert figures.answered_late == 1  # f2
    assert figures.returned == 1  # f3
    assert figures.overdue == 1  # f5
    assert figures.unanswered_past_due == 1
    assert figures.median_answer_hours == pytest.approx(30.0)  # 5, 10, 30, 72, 720
    assert figures.on_time_rate.value == pytest.approx(4 / 6)
    assert figures.rated == 0 and figures.satisfaction_rate.value is None

    unit = departments.department_figures(county.unit, stats.default_range(), county.now)
    assert (unit.received, unit.answered, unit.answered_on_time) == (2, 2, 2)  # f6 and the hop of f7
    assert unit.median_answer_hours == pytest.approx(14.5)  # 5 and 24

    other = departments.department_figures(w.department2, stats.default_range(), county.now)
    assert other.received == 0 and other.median_answer_hours is None and other.on_time_rate.value is None


def test_a_rating_is_recorded_against_the_department_whose_answer_it_judged(county):
    w, f, items = county.w, county.f, county.items
    _resolve_and_rate(w, items["f1"], "satisfied")
    _resolve_and_rate(w, items["f7"], "basically")  # D answered after its unit: D's answer is judged
    _resolve_and_rate(w, items["f2"], "unsatisfied", "路灯还是不亮。")  # reopened
    # The deputy forwards it again, to the transport bureau, which answers; the resident is satisfied now.
    second, _ = forward(items["f2"], w.users["deputy"], w.department2)
    _answer(second)
    _resolve_and_rate(w, items["f2"], "satisfied")
    # f6: 不满意, then the deputy resolves again without any new department answer: that verdict judges nobody.
    _resolve_and_rate(w, items["f6"], "unsatisfied", "没有人来。")
    _resolve_and_rate(w, items["f6"], "satisfied")

    for fwd in (*f.values(), county.hop, second):
        db.session.refresh(fwd)
    assert f["f1"].verdict == Satisfaction.SATISFIED
    assert f["f7"].verdict == Satisfaction.BASICALLY and county.hop.verdict is None
    assert f["f2"].verdict == Satisfaction.UNSATISFIED and second.verdict == Satisfaction.SATISFIED
    assert f["f6"].verdict == Satisfaction.UNSATISFIED and f["f6"].verdict_at is not None

    figures = departments.department_figures(w.department, stats.default_range(), county.now)
    assert (figures.rated, figures.fully_satisfied, figures.basically_satisfied, figures.unsatisfied) == (4, 1, 1, 2)
    assert figures.satisfaction_rate.value == pytest.approx(0.5)
    transport = departments.department_figures(w.department2, stats.default_range(), county.now)
    assert (transport.received, transport.rated, transport.satisfaction_rate.value) == (1, 1, 1.0)


def test_the_league_table_ranks_with_the_minimum_sample_rule(app, county):
    w = county.w
    _resolve_and_rate(w, county.items["f1"], "satisfied")
    app.config["STATS_MIN_SAMPLE"] = 2
    table = departments.league(w.county.id, stats.default_range(), county.now)
    # The unit is no row of its own; the far county's bureau is not in this county's table.
    assert [row.department.id for row in table.ranked] == [w.department.id]  # 按时答复率 4/6 over 6 ≥ 2
    assert [row.department.id for row in table.under_sample] == [w.department2.id]
    (housing,) = table.ranked
    assert housing.satisfaction_rate.value is None  # one verdict, under the sample of 2
    assert housing.received == 7 and housing.overdue == 1 and housing.median_answer_hours == pytest.approx(30.0)


def test_the_ledger_lists_open_commitments_overdue_first(county):
    w, f = county.w, county.f
    rows = departments.ledger(w.department, county.now)
    # Unanswered in hand: f5 (overdue); answered with a promise not yet confirmed solved: f4. Returned f3,
    # revoked f8 and answered-without-promise forwards are no commitment.
    assert [(row.forward.id, row.kind, row.is_overdue) for row in rows] == [
        (f["f5"].id, "answer", True),
        (f["f4"].id, "promise", False),
    ]


def test_the_department_page_for_a_supervisor_of_its_county(app, county):
    w = county.w
    supervisor = login(app, "sup_county")
    league = supervisor.get("/supervision/departments")
    assert league.status_code == 200
    assert f'id="department-{w.department.id}"' in league.text and county.unit.name not in league.text
    assert supervisor.get("/supervision/").text.count('id="department-league-link"') == 1
    page = supervisor.get(f"/supervision/departments/{w.department.id}")
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    assert '<span id="value-received">7</span>' in page.text and '<b id="value-returned">1</b>' in page.text
    assert f'id="commitment-{county.f["f5"].id}"' in page.text and county.unit.name in page.text


def test_a_supervisor_of_another_county_is_refused_the_department_as_unknown(app, county):
    w = county.w
    client = login(app, "sup_far")
    before = len(audit_rows("stats_access_denied"))
    page = client.get(f"/supervision/departments/{w.department.id}")
    assert page.status_code == 404 and "找不到该承办单位" in page.text and "住房和城乡建设局" not in page.text
    (refusal,) = audit_rows("stats_access_denied")[before:]
    assert refusal.object_type == "department" and refusal.object_id == str(w.department.id)
    table = client.get("/supervision/departments")  # their own county's table, without this county's bureaus
    assert table.status_code == 200 and "住房和城乡建设局" not in table.text and "南山区城管局" in table.text


@pytest.mark.parametrize("username", ["deputy_d1", "admin_a", "dept_user"])
def test_other_roles_are_refused_the_department_page_and_the_league(app, county, username):
    client = login(app, username)
    before = len(audit_rows("forbidden"))
    for path in (f"/supervision/departments/{county.w.department.id}", "/supervision/departments"):
        page = client.get(path)
        assert page.status_code == 404 and "住房和城乡建设局" not in page.text
    assert len(audit_rows("forbidden")) == before + 2


def test_an_unknown_department_looks_like_one_out_of_scope_and_writes_no_audit(app, county):
    client = login(app, "sup_county")
    before = db.session.scalars(select(AuditEntry)).all()
    assert client.get("/supervision/departments/99999").status_code == 404
    assert client.get("/supervision/departments/99999999999").status_code == 404
    assert len(db.session.scalars(select(AuditEntry)).all()) == len(before)


def test_the_stats_api_for_a_department(app, county):
    w = county.w
    headers = api_token(app, "sup_county")
    answer = app.test_client().get(f"/api/v1/stats?department={w.department.id}", headers=headers)
    assert answer.status_code == 200, answer.text
    body = answer.json
    assert {k: body[k] for k in ("received", "answered_on_time", "returned", "overdue")} == {
        "received": 7,
        "answered_on_time": 4,
        "returned": 1,
        "overdue": 1,
    }
    assert body["median_answer_hours"] == 30.0
    assert body["satisfaction_rate"] is None and "样本不足" in body["satisfaction_rate_note"]
    _resolve_and_rate(w, county.items["f1"], "satisfied")
    again = app.test_client().get(f"/api/v1/stats?department={w.department.id}", headers=headers).json
    assert again["satisfaction_rate"] == 1.0 and again["satisfaction_rate_note"] is None


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ("department=abc", 400, "invalid_department"),
        ("department=-1", 400, "invalid_department"),
        ("department=99999", 404, "unknown_department"),
        ("department={far}", 404, "unknown_department"),
        ("department={dept}&station={station}", 400, "too_many_scopes"),
        ("department={dept}&from=2026-13-01", 400, "invalid_from"),
    ],
)
def test_bad_department_queries_are_refused(app, county, query, status, code):
    w = county.w
    query = query.format(far=w.far_department.id, dept=w.department.id, station=w.station_a.id)
    answer = app.test_client().get(f"/api/v1/stats?{query}", headers=api_token(app, "sup_county"))
    assert answer.status_code == status and answer.json["error"]["code"] == code, answer.text


@pytest.mark.parametrize("username", ["sup_far", "deputy_d1", "admin_a"])
def test_the_api_refuses_a_department_to_anyone_but_its_supervisors(app, county, username):
    before = len(audit_rows("stats_access_denied"))
    answer = app.test_client().get(
        f"/api/v1/stats?department={county.w.department.id}", headers=api_token(app, username)
    )
    assert answer.status_code == 404 and answer.json["error"]["code"] == "unknown_department"
    assert len(audit_rows("stats_access_denied")) == before + 1
