"""Departments in the chain (issue 11 part 3): a department with accounts finds a forward in its inbox and is told;
one without keeps the link, which the deputy can show again at any time; through either, a department reports
progress then answers, asks for more time (the deputy grants or refuses), or gives the item back (退回)."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest
from flask import g
from sqlalchemy import func, select

from backend.extensions import db
from backend.items.lifecycle import department_link_token, revoke_forward
from backend.models import (
    Department,
    ItemEvent,
    ItemEventKind,
    ItemForward,
    ItemStatus,
    OutboxMessage,
    StaffRole,
    StaffUser,
)
from backend.outbox.notifications import build_notice
from backend.stations.calendar import CHINA_TZ, today_in_china
from tests.factories import StaffUserFactory, act, county_world, forward, make_item
from tests.helpers import api_token, audit_rows, counts, fresh_token, login

BODY = "炎帝大道人行道地砖松动，下雨天溅水。请联系我13812341234。"


@pytest.fixture(autouse=True)
def count_in_database(app):
    """Look-up throttle counters in the database, which every test empties."""
    app.config["REDIS_URL"] = None


@pytest.fixture
def world(app):
    """The county of tests/factories.py; the housing bureau has an account ("dept_user", bound to WeChat), the
    transport bureau a second one ("dept_transport"); the far department none."""
    w = county_world()
    w.users["department"].wechat_openid = "o-dept-user"
    w.users["deputy"].wechat_openid = "o-deputy-d1"
    w.users["department_b"] = StaffUserFactory(
        username="dept_transport", display_name="交通局", role=StaffRole.DEPARTMENT, department=w.department2
    )
    db.session.commit()
    return w


@pytest.fixture
def item(world):
    return make_item(world.d1, body=BODY)


@pytest.fixture
def forwarded(world, item):
    """(forward, raw token) of the item forwarded by d1 to the housing bureau (which has an account)."""
    return forward(item, world.users["deputy"], world.department)


def post_form(client, raw: str, path: str = "", **fields):
    """A form of the department's page, with a fresh CSRF token (from the login page: the page itself may have no
    form left)."""
    _, token = fresh_token(client, "/staff/login")
    return client.post(f"/d/{raw}{path}", data={"csrf_token": token, **fields})


def due(days: int) -> str:
    return (today_in_china() + timedelta(days=days)).isoformat()


def rows(kind: str) -> list[OutboxMessage]:
    return list(db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == kind).order_by(OutboxMessage.id)))


# -- the inbox and the notice -----------------------------------------------------------------


def test_a_department_with_an_account_finds_the_forward_in_its_inbox_and_is_told(app, world, item, forwarded):
    fwd, _ = forwarded
    (row,) = rows("department_new_item")
    assert row.staff_user_id == world.users["department"].id and row.payload == {"forward_id": fwd.id}
    notice = build_notice(row)
    assert notice.openid == "o-dept-user" and notice.data["phrase2"]["value"] == "新交办"

    department = login(app, "dept_user")
    inbox = department.get("/staff/inbox").text
    assert item.ref[:4] in inbox and "地砖松动" in inbox
    assert "13812341234" not in inbox  # a department reads the message masked, as on its page
    api = app.test_client().get("/api/v1/inbox", headers=api_token(app, "dept_user")).json
    assert [r["ref"] for r in api["items"]] == [item.ref] and "13812341234" not in api["items"][0]["first_line"]
    # Its item page is the forward's page.
    opened = department.get(f"/staff/items/{item.ref}")
    assert opened.status_code == 303 and opened.headers["Location"] == f"/d/{department_link_token(fwd)}"
    # Another department's account sees nothing of it.
    other = login(app, "dept_transport")
    assert item.ref[:4] not in other.get("/staff/inbox").text
    assert other.get(f"/staff/items/{item.ref}").status_code == 404
    other_api = app.test_client().get("/api/v1/inbox", headers=api_token(app, "dept_transport")).json
    assert other_api["total"] == 0


def test_a_department_without_accounts_keeps_the_link_the_deputy_can_show_again(app, world, item):
    world.users["department_b"].is_active = False  # its only account, switched off
    db.session.commit()
    fwd, raw = forward(item, world.users["deputy"], world.department2)
    (row,) = rows("department_new_item")
    assert row.staff_user_id is None  # no account: the link is the channel
    deputy = login(app, "deputy_d1")
    assert f'id="show-link-{fwd.id}"' in deputy.get(f"/staff/items/{item.ref}").text
    for _ in range(2):  # at any time, as often as needed: the same link
        shown = deputy.get(f"/staff/items/{item.ref}/forwards/{fwd.id}/link").text
        assert f"/d/{raw}" in shown and 'id="link-again"' in shown and 'id="department-accounts"' not in shown
    other = make_item(world.d1)
    with_accounts, _ = forward(other, world.users["deputy"], world.department)
    shown = deputy.get(f"/staff/items/{other.ref}/forwards/{with_accounts.id}/link").text
    assert 'id="department-accounts"' in shown


def test_after_a_return_or_a_revoke_the_item_leaves_the_department_inbox(app, world, item, forwarded):
    _, raw = forwarded
    client = app.test_client()
    assert post_form(client, raw, "/return", reason="不属于住建局职责，建议交办县交通运输局。").status_code == 303
    department = login(app, "dept_user")
    assert item.ref[:4] not in department.get("/staff/inbox").text
    assert department.get(f"/staff/items/{item.ref}").status_code == 404


# -- progress, then the final answer ---------------------------------------------------------


def test_progress_reports_then_one_final_answer(app, world, item, forwarded):
    fwd, raw = forwarded
    client = app.test_client()
    first = post_form(client, raw, text="已派人现场查看，需更换地砖。", kind="progress")
    assert first.status_code == 303 and first.headers["Location"].endswith("done=progress")
    assert post_form(client, raw, text="地砖已订购，下周施工。", kind="progress").status_code == 303
    db.session.refresh(fwd)
    assert fwd.answered_at is None
    page = client.get(f"/d/{raw}").text
    assert 'id="progress"' in page and "下周施工" in page and 'id="answer-form"' in page
    final = post_form(client, raw, text="已更换全部松动地砖。", kind="final")
    assert final.status_code == 303
    db.session.refresh(fwd)
    assert fwd.answered_at is not None and fwd.answer == "已更换全部松动地砖。"
    events = db.session.scalars(
        select(ItemEvent).where(ItemEvent.kind == ItemEventKind.DEPARTMENT_REPLIED).order_by(ItemEvent.id)
    ).all()
    assert [e.data["final"] for e in events] == [False, False, True] and not any(e.is_public for e in events)
    assert len(rows("deputy_department_replied")) == 3  # each step tells the deputy
    before = counts()
    again = post_form(client, raw, text="再报告一次进展。", kind="progress")
    assert again.status_code == 409 and counts() == before
    deputy_page = login(app, "deputy_d1").get(f"/staff/items/{item.ref}").text
    assert "下周施工" in deputy_page and "已更换全部松动地砖。" in deputy_page


# -- more time ---------------------------------------------------------------------------------


def test_extension_requested_then_granted_moves_the_due_dates(app, world, item, forwarded):
    fwd, raw = forwarded
    client = app.test_client()
    old_due = fwd.due_at
    response = post_form(client, raw, "/extension", due=due(20), text="需等材料到货。")
    assert response.status_code == 303
    db.session.refresh(fwd)
    assert fwd.extension_requested_at is not None and fwd.due_at == old_due
    assert 'id="extension-pending"' in client.get(f"/d/{raw}").text
    (told,) = rows("deputy_extension_requested")
    assert told.staff_user_id == world.users["deputy"].id
    assert build_notice(told).data["phrase2"]["value"] == "申请延期"
    before = counts()
    assert post_form(client, raw, "/extension", due=due(21), text="再申请一次。").status_code == 409
    assert counts() == before

    deputy = login(app, "deputy_d1")
    html, token = fresh_token(deputy, f"/staff/items/{item.ref}")
    assert f'id="extension-{fwd.id}"' in html and "需等材料到货。" in html
    granted = deputy.post(
        f"/staff/items/{item.ref}/forwards/{fwd.id}/extension", data={"csrf_token": token, "decision": "grant"}
    )
    assert granted.status_code == 303
    db.session.refresh(fwd)
    db.session.refresh(item)
    assert fwd.due_at > old_due and fwd.extension_requested_at is None and item.due_at == fwd.due_at
    extended = db.session.scalars(select(ItemEvent).where(ItemEvent.kind == ItemEventKind.EXTENDED)).all()
    assert len(extended) == 1 and extended[0].is_public
    assert "交办的代表已同意延期" in client.get(f"/d/{raw}").text
    assert len(audit_rows("forward_extension_granted")) == 1


def test_extension_refused_leaves_the_due_date(app, world, item, forwarded):
    fwd, raw = forwarded
    client = app.test_client()
    old_due = fwd.due_at
    assert post_form(client, raw, "/extension", due=due(15), text="人手不足。").status_code == 303
    deputy = login(app, "deputy_d1")
    _, token = fresh_token(deputy, f"/staff/items/{item.ref}")
    refused = deputy.post(
        f"/staff/items/{item.ref}/forwards/{fwd.id}/extension",
        data={"csrf_token": token, "decision": "refuse", "text": "请按原期限办理。"},
    )
    assert refused.status_code == 303
    db.session.refresh(fwd)
    assert fwd.due_at == old_due and fwd.extension_requested_at is None
    assert "不同意延期" in client.get(f"/d/{raw}").text
    # Nothing left to decide.
    _, token = fresh_token(deputy, f"/staff/items/{item.ref}")
    again = deputy.post(
        f"/staff/items/{item.ref}/forwards/{fwd.id}/extension", data={"csrf_token": token, "decision": "grant"}
    )
    assert again.status_code == 409


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"due": "", "text": "材料未到。"}, "日期"),
        ({"due": "2020-01-01", "text": "材料未到。"}, ""),
        ({"due": "tomorrow", "text": "材料未到。"}, ""),
        ({"text": "材料未到。", "due": "LIMIT+1"}, "每次最多申请延期15天"),
        ({"due": "PLUS5", "text": ""}, "延期理由"),
    ],
)
def test_bad_extension_requests_are_refused_and_write_nothing(app, world, item, forwarded, fields, message):
    fwd, raw = forwarded
    current = fwd.due_at.astimezone(CHINA_TZ).date()
    if fields["due"] == "LIMIT+1":
        fields = {**fields, "due": (current + timedelta(days=16)).isoformat()}
    if fields["due"] == "PLUS5":
        fields = {**fields, "due": (current + timedelta(days=5)).isoformat()}
    before = counts()
    response = post_form(app.test_client(), raw, "/extension", **fields)
    assert response.status_code == 400 and message in response.text
    assert counts() == before
    db.session.refresh(fwd)
    assert fwd.extension_requested_at is None


def test_the_station_sets_its_own_extension_limit(app, world, item, forwarded):
    fwd, raw = forwarded
    world.station_a.department_extension_max_days = 3
    db.session.commit()
    current = fwd.due_at.astimezone(CHINA_TZ).date()
    client = app.test_client()
    too_far = post_form(client, raw, "/extension", due=(current + timedelta(days=4)).isoformat(), text="材料未到。")
    assert too_far.status_code == 400 and "每次最多申请延期3天" in too_far.text
    ok = post_form(client, raw, "/extension", due=(current + timedelta(days=3)).isoformat(), text="材料未到。")
    assert ok.status_code == 303


def test_only_the_items_deputy_or_station_admin_decides(app, world, item, forwarded):
    fwd, raw = forwarded
    assert post_form(app.test_client(), raw, "/extension", due=due(15), text="人手不足。").status_code == 303
    before = counts()
    for username in ("deputy_d2", "deputy_d3", "deputy_d4", "admin_b", "sup_county", "dept_user"):
        other = login(app, username)
        g.pop("csrf_token", None)
        _, token = fresh_token(other, "/staff/")
        response = other.post(
            f"/staff/items/{item.ref}/forwards/{fwd.id}/extension", data={"csrf_token": token, "decision": "grant"}
        )
        assert response.status_code == 404, username
    # A resident's key, or the department's own link, is no credential for the deputy's page.
    assert app.test_client().post(
        f"/staff/items/{item.ref}/forwards/{fwd.id}/extension?k={item.access_key}", data={"decision": "grant"}
    ).status_code in (303, 400)
    assert counts() == before
    db.session.refresh(fwd)
    assert fwd.extension_requested_at is not None
    # The station's administrator may.
    admin = login(app, "admin_a")
    _, token = fresh_token(admin, f"/staff/items/{item.ref}")
    assert (
        admin.post(
            f"/staff/items/{item.ref}/forwards/{fwd.id}/extension", data={"csrf_token": token, "decision": "refuse"}
        ).status_code
        == 303
    )


# -- 退回 ----------------------------------------------------------------------------------------


def test_return_needs_a_reason_then_goes_back_to_the_deputy(app, world, item, forwarded):
    fwd, raw = forwarded
    client = app.test_client()
    before = counts()
    empty = post_form(client, raw, "/return", reason="  ")
    assert empty.status_code == 400 and "退回理由" in empty.text and counts() == before
    response = post_form(client, raw, "/return", reason="不属于住建局职责，建议交办县交通运输局。")
    assert response.status_code == 303
    db.session.refresh(fwd)
    db.session.refresh(item)
    assert fwd.returned_at is not None and item.status == ItemStatus.ACCEPTED
    (event,) = db.session.scalars(select(ItemEvent).where(ItemEvent.kind == ItemEventKind.DEPARTMENT_RETURNED)).all()
    assert not event.is_public and "交通运输局" in event.body
    (told,) = rows("deputy_department_returned")
    assert told.staff_user_id == world.users["deputy"].id and "退回" in build_notice(told).data["thing3"]["value"]
    page = client.get(f"/d/{raw}").text
    assert 'id="returned"' in page and 'id="answer-form"' not in page
    before = counts()
    for path, fields in (
        ("", {"text": "补充答复"}),
        ("/extension", {"due": due(20), "text": "x"}),
        ("/return", {"reason": "再退"}),
    ):
        assert post_form(client, raw, path, **fields).status_code == 409
    assert counts() == before
    deputy_page = login(app, "deputy_d1").get(f"/staff/items/{item.ref}").text
    assert "已退回" in deputy_page and "建议交办县交通运输局" in deputy_page
    # The deputy can forward it on.
    act(item, world.users["deputy"], "forward", department_id=world.department2.id, due=due(10), text="请办理。")
    db.session.refresh(item)
    assert item.status == ItemStatus.FORWARDED


def test_refused_links_stay_refused_for_every_department_action(app, world, item, forwarded):
    fwd, raw = forwarded
    client = app.test_client()
    before = counts()
    _, token = fresh_token(client, f"/d/{raw}")
    for path, fields in (("/extension", {"due": due(20), "text": "x"}), ("/return", {"reason": "退回"})):
        # A resident's key, an unknown token, another item's key: no link.
        for bad in (item.access_key, "1.1.AAAAAAAAAAAAAAAAAAAAAA", "nonsense"):
            assert client.post(f"/d/{bad}{path}", data={"csrf_token": token, **fields}).status_code == 404
    # A revoked link.
    revoke_forward(fwd, world.users["deputy"])
    db.session.commit()
    before = counts()
    for path, fields in (("/extension", {"due": due(20), "text": "x"}), ("/return", {"reason": "退回"})):
        assert client.post(f"/d/{raw}{path}", data={"csrf_token": token, **fields}).status_code == 404
    assert counts() == before
    assert (
        db.session.scalar(select(func.count()).select_from(ItemForward).where(ItemForward.returned_at.is_not(None)))
        == 0
    )


# -- the API ------------------------------------------------------------------------------------


def test_the_chain_through_the_api(app, world, item, forwarded):
    fwd, _ = forwarded
    client = app.test_client()
    dept = api_token(app, "dept_user")
    url = f"/api/v1/inbox/{item.ref}/department"
    progress = client.post(url, json={"action": "progress", "text": "已现场查看。"}, headers=dept)
    assert progress.status_code == 200, progress.text
    assert progress.json["forward"]["answered_at"] is None
    asked = client.post(url, json={"action": "extension", "due": due(18), "text": "等材料。"}, headers=dept)
    assert asked.status_code == 200 and asked.json["forward"]["extension_due_at"] is not None
    before = counts()
    for headers in (api_token(app, "dept_transport"), api_token(app, "deputy_d1"), api_token(app, "sup_county")):
        assert client.post(url, json={"action": "return", "reason": "x"}, headers=headers).status_code == 404
    assert client.post(url, json={"action": "return", "reason": "x"}).status_code == 401
    assert client.post(url, json={"action": "return"}, headers=dept).status_code == 400
    assert client.post(url, json={"action": "rate"}, headers=dept).status_code == 400
    assert counts() == before

    decision_url = f"/api/v1/items/{item.ref}/forwards/{fwd.id}/extension"
    for username in ("deputy_d2", "deputy_d4", "admin_b", "sup_county", "dept_user"):
        response = client.post(decision_url, json={"decision": "grant"}, headers=api_token(app, username))
        assert response.status_code == 404, username
    deputy = api_token(app, "deputy_d1")
    assert client.post(decision_url, json={"decision": "maybe"}, headers=deputy).status_code == 400
    assert counts() == before
    granted = client.post(decision_url, json={"decision": "grant", "text": "材料到货需时间。"}, headers=deputy)
    assert granted.status_code == 200 and granted.json["forward"]["extension_due_at"] is None
    assert granted.json["forward"]["due_at"] > fwd.created_at.isoformat()
    assert client.post(decision_url, json={"decision": "grant"}, headers=deputy).status_code == 409

    answered = client.post(url, json={"action": "answer", "text": "已修复。"}, headers=dept)
    assert answered.status_code == 200 and answered.json["forward"]["answered_at"] is not None
    assert client.post(url, json={"action": "return", "reason": "晚了"}, headers=dept).status_code == 409
    # Returned through the API, another item leaves the department's hands.
    other = make_item(world.d1)
    forward(other, world.users["deputy"], world.department)
    back = client.post(
        f"/api/v1/inbox/{other.ref}/department", json={"action": "return", "reason": "非本单位职责。"}, headers=dept
    )
    assert back.status_code == 200 and back.json["status"] == "accepted"
    refs = [r["ref"] for r in client.get("/api/v1/inbox", headers=dept).json["items"]]
    assert other.ref not in refs


# -- a second hop -------------------------------------------------------------------------------


@pytest.fixture
def units(world):
    """Two units of the housing bureau: one with an account ("dept_unit"), one without; and a unit of the first."""
    town = Department(name="霞阳镇城建办", region=world.county, parent_id=world.department.id)
    quiet = Department(name="沔渡镇城建办", region=world.county, parent_id=world.department.id)
    db.session.add_all([town, quiet])
    db.session.flush()
    below = Department(name="霞阳镇城建办施工队", region=world.county, parent_id=town.id)
    db.session.add(below)
    StaffUserFactory(username="dept_unit", display_name="城建办", role=StaffRole.DEPARTMENT, department=town)
    db.session.commit()
    return SimpleNamespace(town=town, quiet=quiet, below=below)


def test_a_second_hop_to_a_unit_which_answers_back_up_the_chain(app, world, item, forwarded, units):
    fwd, raw = forwarded
    client = app.test_client()
    page = client.get(f"/d/{raw}").text
    assert 'id="pass-on-form"' in page and "霞阳镇城建办" in page and "施工队" not in page  # its own units only
    before = counts()
    for fields, message in (
        ({"department_id": world.department2.id, "due": due(5)}, "下属单位"),  # not one of its units
        ({"department_id": units.below.id, "due": due(5)}, "下属单位"),  # a unit's unit
        ({"department_id": "", "due": due(5)}, "下属单位"),
        ({"department_id": units.town.id, "due": due(30)}, "不能晚于本单位的期限"),
    ):
        response = post_form(client, raw, "/pass-on", **fields)
        assert response.status_code == 400 and message in response.text, fields
    assert counts() == before
    response = post_form(client, raw, "/pass-on", department_id=units.town.id, due=due(7), text="请派人现场修复。")
    assert response.status_code == 303
    hop = db.session.scalar(select(ItemForward).where(ItemForward.parent_forward_id == fwd.id))
    assert hop.department_id == units.town.id and hop.due_at < fwd.due_at
    unit_account = db.session.scalar(select(StaffUser).where(StaffUser.username == "dept_unit"))
    assert [r.staff_user_id for r in rows("department_new_item") if r.payload["forward_id"] == hop.id] == [
        unit_account.id
    ]
    (told,) = rows("deputy_department_passed_on")
    assert told.staff_user_id == world.users["deputy"].id
    assert build_notice(told).data["phrase2"]["value"] == "转下属单位"
    assert post_form(client, raw, "/pass-on", department_id=units.town.id, due=due(7)).status_code == 409

    # The unit finds it in its inbox; its page says who passed it on; it may not pass it further.
    unit = login(app, "dept_unit")
    assert item.ref[:4] in unit.get("/staff/inbox").text
    opened = unit.get(f"/staff/items/{item.ref}")
    assert opened.status_code == 303
    hop_raw = opened.headers["Location"].rsplit("/", 1)[1]
    unit_page = unit.get(opened.headers["Location"]).text
    assert "由炎陵县住房和城乡建设局转交" in unit_page and 'id="pass-on-form"' not in unit_page
    headers = api_token(app, "dept_unit")
    further = app.test_client().post(
        f"/api/v1/inbox/{item.ref}/department",
        json={"action": "pass_on", "department_id": units.below.id, "due": due(5)},
        headers=headers,
    )
    assert further.status_code == 409 and further.json["error"]["code"] == "second_hop_only"
    # Another department cannot pass it on.
    other = app.test_client().post(
        f"/api/v1/inbox/{item.ref}/department",
        json={"action": "pass_on", "department_id": units.town.id, "due": due(5)},
        headers=api_token(app, "dept_transport"),
    )
    assert other.status_code == 404

    # The unit answers: progress, then final; it shows up the chain, and the deputy hears of each.
    assert post_form(client, hop_raw, text="已到现场。", kind="progress").status_code == 303
    assert post_form(client, hop_raw, text="已修复三块地砖。", kind="final").status_code == 303
    parent_page = client.get(f"/d/{raw}").text
    assert f'id="hop-{hop.id}"' in parent_page and "已到现场。" in parent_page and "已修复三块地砖。" in parent_page
    assert len(rows("deputy_department_replied")) == 2
    deputy_page = login(app, "deputy_d1").get(f"/staff/items/{item.ref}").text
    assert "霞阳镇城建办" in deputy_page and "承办单位转交下属单位" in deputy_page and "已修复三块地砖。" in deputy_page


def test_a_second_hop_through_the_api_to_a_unit_without_accounts(app, world, item, forwarded, units):
    fwd, raw = forwarded
    client = app.test_client()
    response = client.post(
        f"/api/v1/inbox/{item.ref}/department",
        json={"action": "pass_on", "department_id": units.quiet.id, "due": due(6), "text": "请核实。"},
        headers=api_token(app, "dept_user"),
    )
    assert response.status_code == 200, response.text
    hop = db.session.scalar(select(ItemForward).where(ItemForward.parent_forward_id == fwd.id))
    assert [r.staff_user_id for r in rows("department_new_item") if r.payload["forward_id"] == hop.id] == [None]
    page = client.get(f"/d/{raw}").text
    link = page.split(f'id="hop-link-{hop.id}">')[1].split("<", 1)[0]
    assert link.endswith(f"/d/{department_link_token(hop)}")
    assert client.get(f"/d/{department_link_token(hop)}").status_code == 200


def test_an_expired_link_takes_no_step(app, world, item, forwarded, units):
    fwd, raw = forwarded
    client = app.test_client()
    assert post_form(client, raw, text="已修复。", kind="final").status_code == 303
    act(item, world.users["deputy"], "reply", text="已修复。")
    act(item, world.users["deputy"], "resolve", outcome="solved")
    db.session.refresh(fwd)
    fwd.answered_at -= timedelta(days=30)
    item.resolved_at -= timedelta(days=30)
    db.session.commit()
    before = counts()
    for path, fields in (
        ("", {"text": "再报告进展。", "kind": "progress"}),
        ("/extension", {"due": due(20), "text": "等材料。"}),
        ("/return", {"reason": "退回。"}),
        ("/pass-on", {"department_id": units.town.id, "due": due(3)}),
    ):
        assert post_form(client, raw, path, **fields).status_code == 410, path
    assert counts() == before
    assert len(audit_rows("forward_link_denied")) == 4
