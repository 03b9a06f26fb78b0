"""The item state machine: every action in every status, what each writes, departments, the resident's verdict."""

from __future__ import annotations

import inspect
import threading
from datetime import timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from backend.errors import UserError
from backend.extensions import db
from backend.items import deadlines, lifecycle
from backend.items.claims import in_person_item
from backend.items.lifecycle import (
    TRANSITIONS,
    department_answer,
    department_link_token,
    find_forward,
    forward_link_token,
    perform_action,
    rate_item,
    revoke_forward,
)
from backend.models import (
    AuditEntry,
    DeputyStatus,
    Item,
    ItemChannel,
    ItemEvent,
    ItemForward,
    ItemOutcome,
    ItemStatus,
    OutboxMessage,
    StaffRole,
    StaffUser,
    utcnow,
)
from backend.stations.calendar import today_in_china
from tests.factories import (
    CountyFactory,
    DepartmentFactory,
    DeputyFactory,
    ItemFactory,
    ResidentFactory,
    StationFactory,
    staff_users,
)
from tests.helpers import DEPUTY_ACTIONS_ON_SUBMITTED

S = ItemStatus
IN_HAND = {S.ACCEPTED, S.FORWARDED, S.ANSWERED}
BEFORE_WORK = {S.SUBMITTED, S.ACCEPTED}

# The table as the issue states it, written out independently of the module.
# action: (statuses it is allowed in, status after (None = unchanged), event kind, public?, resident outbox kind)
EXPECTED = {
    "accept": ({S.SUBMITTED}, S.ACCEPTED, "accepted", True, "item_accepted"),
    "decline": (BEFORE_WORK, S.DECLINED, "declined", True, "item_declined"),
    "duplicate": (BEFORE_WORK, S.DUPLICATE, "duplicate", True, "item_duplicate"),
    "reassign": (BEFORE_WORK, None, "reassigned", True, "item_reassigned"),
    # On a submitted item a reply or a forward implies the 受理 (issue 14): written first, as its own event.
    "reply": (IN_HAND | {S.SUBMITTED}, S.ANSWERED, "replied", True, "item_answered"),
    "forward": (IN_HAND | {S.SUBMITTED}, S.FORWARDED, "forwarded", True, "item_forwarded"),
    "resolve": (IN_HAND, S.RESOLVED, "resolved", True, "item_resolved"),
    "extend": (IN_HAND, None, "extended", True, "item_extended"),
    "wait_for_resident": (IN_HAND, None, "note", True, "item_waiting"),
    "resume": (IN_HAND, None, "note", False, None),
    "note": (set(S), None, "note", False, None),
    "supervise": ({S.SUBMITTED, S.ACCEPTED, S.FORWARDED, S.ANSWERED}, None, "supervised", False, None),
}

CASES = [(action, status) for action in EXPECTED for status in S]

# The resident's rows: (statuses, clock it needs, event kind, the deputy's outbox kind).
RESIDENT_EXPECTED = {
    "resident_reply": (IN_HAND, "paused", "resident_replied", "deputy_resident_replied"),
    "follow_up": (
        {S.SUBMITTED, S.ACCEPTED, S.FORWARDED, S.ANSWERED},
        "running",
        "followed_up",
        "deputy_resident_followup",
    ),
}
RESIDENT_CASES = [(a, s, paused) for a in RESIDENT_EXPECTED for s in S for paused in (False, True)]


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def written_rows() -> dict:
    return {m.__name__: count(m) for m in (ItemEvent, OutboxMessage, AuditEntry, ItemForward, Item)}


@pytest.fixture
def world(app):
    """Two stations in one county, a station in another county, deputies, staff of every role, a department."""
    county = CountyFactory()
    other_county = CountyFactory(code="440305", name="南山区")
    station = StationFactory(region=county)
    other_station = StationFactory(name="南山区某街道联络站", region=other_county)
    d1 = DeputyFactory(name="张秀英", station=station)
    foreign = DeputyFactory(name="赵外站", station=other_station)
    department = DepartmentFactory(region=county)
    users = staff_users(
        ("d1", "d1", StaffRole.DEPUTY, {"deputy": d1}),
        ("d2", "d2", StaffRole.DEPUTY, {"deputy": DeputyFactory(name="李建国", station=station)}),
        ("foreign", "foreign", StaffRole.DEPUTY, {"deputy": foreign}),
        ("admin", "admin", StaffRole.STATION_ADMIN, {"station": station}),
        ("supervisor", "sup", StaffRole.SUPERVISOR, {"region": county}),
        ("department", "dept", StaffRole.DEPARTMENT, {"department": department}),
    )
    world = SimpleNamespace(
        station=station,
        other_station=other_station,
        d1=d1,
        d2=users["d2"].deputy,
        resigned=DeputyFactory(name="王辞职", station=station, status=DeputyStatus.RESIGNED),
        foreign=foreign,
        users=users,
        department=department,
        department2=DepartmentFactory(name="炎陵县交通运输局", region=county),
        far_department=DepartmentFactory(name="南山区城管局", region=other_county),
        resident=ResidentFactory(openid="o-resident-1"),
    )
    db.session.commit()
    return world


@pytest.fixture
def make_item(world):
    """Builder: an item of deputy d1 (by default) put straight into ``status``, its columns to match."""

    def _make(status=S.SUBMITTED, deputy=None, station=None, resident=True, paused=False) -> Item:
        now = utcnow()
        answered = now - timedelta(hours=10) if status in (S.ANSWERED, S.RESOLVED) else None
        item = ItemFactory(
            deputy=deputy or world.d1,
            station=station or (deputy or world.d1).station,
            resident=world.resident if resident else None,
            status=status,
            created_ago=timedelta(days=1),
            due_at=now + timedelta(days=2),
            accepted_at=None if status == S.SUBMITTED else now - timedelta(hours=20),
            first_answered_at=answered,
            resolved_at=now - timedelta(hours=1) if status == S.RESOLVED else None,
            outcome=ItemOutcome.SOLVED if status == S.RESOLVED else None,
            paused_at=now - timedelta(hours=1) if paused else None,
        )
        db.session.commit()
        return item

    return _make


def valid_inputs(action: str, world, make_item) -> dict:
    """Good inputs for ``action`` on an item of d1 at the main station."""
    in_ten_days = (today_in_china() + timedelta(days=10)).isoformat()
    if action == "accept":
        return {}
    if action in ("reply", "note", "decline", "wait_for_resident", "supervise"):
        return {"text": "已联系村委会，本周内修复。"}
    if action == "resume":
        return {}
    if action == "forward":
        return {"department_id": world.department.id, "due": in_ten_days, "text": "请核实后处理。"}
    if action == "reassign":
        return {"deputy_id": world.d2.id, "text": "该片区由李代表联系。"}
    if action == "duplicate":
        return {"duplicate_of": make_item(status=S.ACCEPTED).ref}
    if action == "resolve":
        return {"outcome": "solved"}
    if action == "extend":
        return {"due": (today_in_china() + timedelta(days=200)).isoformat(), "text": "需要协调资金。"}
    raise AssertionError(action)


def test_table_in_module_is_the_table_of_the_issue():
    assert set(TRANSITIONS) == set(EXPECTED) | set(RESIDENT_EXPECTED)
    assert set(lifecycle.ACTIONS) == set(EXPECTED) and set(RESIDENT_EXPECTED) == lifecycle.RESIDENT_ACTIONS
    for action, (allowed, clock, kind, notice) in RESIDENT_EXPECTED.items():
        row = TRANSITIONS[action]
        assert (set(row.allowed_from), row.clock, row.event_kind.value, row.staff_notice) == (
            allowed,
            clock,
            kind,
            notice,
        )
        assert row.is_public and row.resident_notice is None and action in lifecycle.__doc__
    for action, (allowed, to, kind, public, notice) in EXPECTED.items():
        row = TRANSITIONS[action]
        assert set(row.allowed_from) == allowed, action
        assert row.to == to, action
        assert row.event_kind.value == kind, action
        assert row.is_public == public, action
        assert row.resident_notice == notice, action
    # Documented in the module, as the brief asks.
    for action in EXPECTED:
        assert action in lifecycle.__doc__


@pytest.mark.parametrize(
    ("action", "status", "paused"), RESIDENT_CASES, ids=[f"{a}-{s.value}-{p}" for a, s, p in RESIDENT_CASES]
)
def test_every_resident_row_in_every_status(world, make_item, action, status, paused):
    allowed, clock, kind, notice = RESIDENT_EXPECTED[action]
    item = make_item(status=status, paused=paused)
    before_rows = written_rows()
    if status not in allowed or paused != (clock == "paused"):
        with pytest.raises(UserError) as err:
            lifecycle.resident_action(item, action, "路灯在村委会往东50米。")
        assert err.value.status == 409
        db.session.rollback()
        assert written_rows() == before_rows
        return
    event = lifecycle.resident_action(item, action, "路灯在村委会往东50米。")
    db.session.commit()
    db.session.refresh(item)
    assert item.status == status and item.paused_at is None
    assert event.kind.value == kind and event.is_public and event.actor_user_id is None
    rows = db.session.scalars(select(OutboxMessage).where(OutboxMessage.item_id == item.id)).all()
    assert [m.kind for m in rows] == [notice]


@pytest.mark.parametrize(("action", "status"), CASES, ids=[f"{a}-{s.value}" for a, s in CASES])
def test_every_action_in_every_status(world, make_item, action, status):
    allowed, to, kind, public, notice = EXPECTED[action]
    item = make_item(status=status, paused=(action == "resume"))
    inputs = valid_inputs(action, world, make_item)
    before_rows = written_rows()
    actor = world.users["supervisor" if action == "supervise" else "d1"]

    if status not in allowed:
        with pytest.raises(UserError) as err:
            perform_action(item, actor, action, **inputs)
        assert err.value.status == 409
        assert err.value.code == "transition_not_allowed"
        from backend.models.item import ITEM_STATUS_LABELS

        assert ITEM_STATUS_LABELS[status] in err.value.message
        assert TRANSITIONS[action].label in err.value.message
        assert written_rows() == before_rows
        db.session.refresh(item)
        assert item.status == status
        return

    event = perform_action(item, actor, action, **inputs)
    db.session.commit()
    db.session.refresh(item)
    assert item.status == (to or status)
    assert event.kind.value == kind
    assert event.is_public is public
    assert event.actor_kind.value == "staff" and event.actor_user_id == actor.id
    assert event.data["action"] == action
    implied = TRANSITIONS[action].accepts_first and status == S.SUBMITTED  # the 受理 is written first
    rows = written_rows()
    assert rows["ItemEvent"] == before_rows["ItemEvent"] + 1 + implied
    resident_rows = db.session.scalars(
        select(OutboxMessage).where(OutboxMessage.resident_id.is_not(None)).order_by(OutboxMessage.id)
    ).all()
    expected_notices = (["item_accepted"] if implied else []) + ([notice] if notice else [])
    assert [r.kind for r in resident_rows] == expected_notices
    if notice:
        assert resident_rows[-1].item_id == item.id and resident_rows[-1].payload == {"event_id": event.id}
    audit = db.session.scalars(select(AuditEntry).where(AuditEntry.action == f"item_{action}")).one()
    assert audit.staff_user_id == actor.id and audit.object_id == str(item.id)
    assert audit.data["from"] == (S.ACCEPTED if implied else status).value and audit.data["to"] == item.status.value


@pytest.mark.parametrize("status", [S.ACCEPTED, S.ANSWERED])
def test_wait_for_resident_twice_and_resume_when_running_are_refused(world, make_item, status):
    running = make_item(status=status)
    with pytest.raises(UserError) as err:
        perform_action(running, world.users["d1"], "resume")
    assert err.value.status == 409
    paused = make_item(status=status, paused=True)
    with pytest.raises(UserError) as err:
        perform_action(paused, world.users["d1"], "wait_for_resident", text="请补充照片")
    assert err.value.status == 409
    assert count(ItemEvent) == 0


def test_allowed_actions_follow_the_table_and_the_role(world, make_item):
    item = make_item(status=S.SUBMITTED)
    assert lifecycle.allowed_actions(item, world.users["d1"]) == DEPUTY_ACTIONS_ON_SUBMITTED
    assert lifecycle.allowed_actions(item, world.users["supervisor"]) == ["supervise", "note"]
    resolved = make_item(status=S.RESOLVED)
    assert lifecycle.allowed_actions(resolved) == ["note"]
    paused = make_item(status=S.ACCEPTED, paused=True)
    assert "resume" in lifecycle.allowed_actions(paused) and "wait_for_resident" not in lifecycle.allowed_actions(
        paused
    )


def test_unknown_action_is_400(world, make_item):
    item = make_item()
    with pytest.raises(UserError) as err:
        perform_action(item, world.users["d1"], "approve")
    assert (err.value.status, err.value.field) == (400, "action")


def test_no_resident_outbox_rows_without_a_resident(world, make_item):
    item = make_item(resident=False)
    perform_action(item, world.users["d1"], "accept")
    assert count(OutboxMessage) == 0


def test_accept_reply_resolve_mirror_columns_and_deadlines(world, make_item):
    item = make_item()
    perform_action(item, world.users["d1"], "accept", text="已收到，我会去现场看看。")
    assert item.accepted_at is not None
    assert item.due_at == deadlines.answer_deadline(item.accepted_at)
    perform_action(item, world.users["d1"], "reply", text="已联系村委会。")
    first = item.first_answered_at
    assert first is not None and item.due_at == deadlines.resolve_deadline(first)
    due = item.due_at
    perform_action(item, world.users["d1"], "reply", text="补充：下周二施工。")
    assert item.first_answered_at == first and item.due_at == due
    event = perform_action(item, world.users["d1"], "resolve", outcome="partly", text="路灯已修，线路改造待明年。")
    assert item.status == S.RESOLVED and item.resolved_at is not None
    assert item.outcome == ItemOutcome.PARTLY and item.outcome_reason == "路灯已修，线路改造待明年。"
    assert "部分解决" in event.body and "线路改造" in event.body


@pytest.mark.parametrize(
    ("action", "inputs", "field"),
    [
        ("reply", {"text": ""}, "text"),
        ("reply", {"text": "字" * 2001}, "text"),
        ("note", {"text": "字" * 2001}, "text"),
        ("note", {"text": "  "}, "text"),
        ("decline", {"text": ""}, "text"),
        ("decline", {"text": "字" * 2001}, "text"),
        ("resolve", {"outcome": "partly"}, "text"),
        ("resolve", {"outcome": "unsolved", "text": ""}, "text"),
        ("resolve", {"outcome": "done"}, "outcome"),
        ("resolve", {"outcome": "solved", "text": "字" * 2001}, "text"),
        ("extend", {"due": "2099-01-01", "text": "需要协调"}, "due"),
        ("extend", {"text": "需要协调"}, "due"),
        ("wait_for_resident", {"text": ""}, "text"),
        ("forward", {"due": "2099-01-01"}, "department_id"),
        ("forward", {"department_id": "abc"}, "department_id"),
        ("forward", {"department_id": 10**6}, "department_id"),
        ("reassign", {"text": "换人"}, "deputy_id"),
        ("duplicate", {}, "duplicate_of"),
        ("duplicate", {"duplicate_of": "not a ref"}, "duplicate_of"),
    ],
)
def test_bad_inputs_are_400_and_write_nothing(world, make_item, action, inputs, field):
    status = S.SUBMITTED if action in ("reassign", "duplicate", "decline") else S.ACCEPTED
    item = make_item(status=status)
    before = written_rows()
    with pytest.raises(UserError) as err:
        perform_action(item, world.users["d1"], action, **inputs)
    assert (err.value.status, err.value.field) == (400, field)
    assert written_rows() == before
    db.session.refresh(item)
    assert item.status == status


def test_reply_of_exactly_2000_characters_is_accepted(world, make_item):
    item = make_item(status=S.ACCEPTED)
    event = perform_action(item, world.users["d1"], "reply", text="字" * 2000)
    assert len(event.body) == 2000


def test_decline_reason_is_shown_to_the_resident(world, make_item):
    item = make_item()
    event = perform_action(item, world.users["d1"], "decline", text="属于民事纠纷，请通过法院解决。")
    assert event.is_public and event.body == "属于民事纠纷，请通过法院解决。"
    assert item.outcome_reason == event.body


def test_duplicate_across_stations_of_itself_and_of_a_duplicate_are_refused(world, make_item):
    item = make_item()
    elsewhere = make_item(deputy=world.foreign)
    for ref in (elsewhere.ref, item.ref):
        with pytest.raises(UserError) as err:
            perform_action(item, world.users["d1"], "duplicate", duplicate_of=ref)
        assert err.value.field == "duplicate_of"
    already = make_item(status=S.DUPLICATE)
    with pytest.raises(UserError):
        perform_action(item, world.users["d1"], "duplicate", duplicate_of=already.ref)
    assert count(ItemEvent) == 0


def test_duplicate_of_another_deputys_item_at_the_same_station(world, make_item):
    item = make_item()
    original = make_item(deputy=world.d2, status=S.ACCEPTED)
    display = f"{original.ref[:4]}-{original.ref[4:].lower()}"
    event = perform_action(item, world.users["d1"], "duplicate", duplicate_of=display)
    assert item.status == S.DUPLICATE and item.duplicate_of_id == original.id
    assert event.data["duplicate_of"] == original.ref and original.ref[:4] in event.body


@pytest.mark.parametrize("who", ["foreign", "resigned", "same"])
def test_reassign_refused_to_other_station_resigned_or_same_deputy(world, make_item, who):
    item = make_item()
    target = {"foreign": world.foreign, "resigned": world.resigned, "same": world.d1}[who]
    with pytest.raises(UserError) as err:
        perform_action(item, world.users["d1"], "reassign", deputy_id=target.id, text="换人")
    assert (err.value.status, err.value.field) == (400, "deputy_id")
    assert item.deputy_id == world.d1.id and count(ItemEvent) == 0


def test_reassign_notifies_the_new_deputy_and_keeps_the_reason_internal(world, make_item):
    item = make_item()
    event = perform_action(item, world.users["d1"], "reassign", deputy_id=world.d2.id, text="该片区由李代表联系。")
    assert item.deputy_id == world.d2.id and item.status == S.SUBMITTED
    assert event.is_public and "李建国" in event.body and "片区" not in event.body
    assert event.data["reason"] == "该片区由李代表联系。"
    staff_rows = db.session.scalars(select(OutboxMessage).where(OutboxMessage.staff_user_id.is_not(None))).all()
    assert [(r.kind, r.staff_user_id) for r in staff_rows] == [("deputy_new_item", world.users["d2"].id)]


def test_forward_makes_a_link_derived_not_stored(world, make_item):
    item = make_item(status=S.ACCEPTED)
    due = (today_in_china() + timedelta(days=10)).isoformat()
    event = perform_action(
        item, world.users["d1"], "forward", department_id=world.department.id, due=due, text="内部：请先电话联系村支书"
    )
    db.session.commit()
    token = forward_link_token(event)
    forward = db.session.get(ItemForward, event.data["forward_id"])
    # <id>.<version>.<128 bits of HMAC-SHA256>, URL-safe; derived again from the forward, stored nowhere.
    assert token == f"{forward.id}.1.{token.rsplit('.', 1)[1]}" and len(token.rsplit(".", 1)[1]) == 22
    assert token == department_link_token(forward) and forward.token_hash is None
    assert forward.instructions == "内部：请先电话联系村支书" and forward.forwarded_by_id == world.users["d1"].id
    assert item.status == S.FORWARDED and item.due_at == forward.due_at
    assert event.is_public and world.department.name in event.body and "村支书" not in event.body
    # The raw token is nowhere in the database.
    stored = [e.data for e in db.session.scalars(select(ItemEvent))]
    stored += [a.data for a in db.session.scalars(select(AuditEntry))]
    stored += [o.payload for o in db.session.scalars(select(OutboxMessage))]
    assert stored and not any(token in repr(row) for row in stored)
    dept_rows = db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "department_new_item")).all()
    assert len(dept_rows) == 1
    assert dept_rows[0].payload == {"forward_id": forward.id}
    # The department has an account: the row goes to it (without one: no recipient, test_department_chain.py).
    assert dept_rows[0].resident_id is None and dept_rows[0].staff_user_id == world.users["department"].id


def test_forward_again_same_department_refused_other_department_allowed(world, make_item):
    item = make_item(status=S.ACCEPTED)
    due = (today_in_china() + timedelta(days=10)).isoformat()
    perform_action(item, world.users["d1"], "forward", department_id=world.department.id, due=due)
    with pytest.raises(UserError) as err:
        perform_action(item, world.users["d1"], "forward", department_id=world.department.id, due=due)
    assert err.value.status == 409
    perform_action(item, world.users["d1"], "forward", department_id=world.department2.id, due=due)
    assert count(ItemForward) == 2


def test_forward_refuses_another_countys_department_and_past_due(world, make_item):
    item = make_item(status=S.ACCEPTED)
    with pytest.raises(UserError) as err:
        perform_action(item, world.users["d1"], "forward", department_id=world.far_department.id, due="2099-01-01")
    assert err.value.field == "department_id"
    yesterday = (today_in_china() - timedelta(days=1)).isoformat()
    with pytest.raises(UserError) as err:
        perform_action(item, world.users["d1"], "forward", department_id=world.department.id, due=yesterday)
    assert err.value.field == "due"
    assert count(ItemForward) == 0


def test_extend_needs_a_later_date_and_moves_the_open_forward(world, make_item):
    item = make_item(status=S.ACCEPTED)
    due = (today_in_china() + timedelta(days=10)).isoformat()
    event = perform_action(item, world.users["d1"], "forward", department_id=world.department.id, due=due)
    forward = db.session.get(ItemForward, event.data["forward_id"])
    with pytest.raises(UserError) as err:
        perform_action(item, world.users["d1"], "extend", due=due, text="协调中")
    assert err.value.field == "due"
    later = (today_in_china() + timedelta(days=40)).isoformat()
    with pytest.raises(UserError) as err:
        perform_action(item, world.users["d1"], "extend", due=later)
    assert err.value.field == "text"
    ext = perform_action(item, world.users["d1"], "extend", due=later, text="需要协调资金。")
    assert ext.is_public and "需要协调资金" in ext.body
    assert item.due_at == forward.due_at == deadlines.end_of_day(today_in_china() + timedelta(days=40))


def test_supervisor_may_only_note_and_department_users_cannot_act(world, make_item):
    item = make_item()
    with pytest.raises(UserError) as err:
        perform_action(item, world.users["supervisor"], "accept")
    assert err.value.status == 403
    note = perform_action(item, world.users["supervisor"], "note", text="请抓紧受理。")
    assert not note.is_public
    for who in ("department", "foreign", "d2"):
        with pytest.raises(UserError) as err:
            perform_action(item, world.users[who], "accept")
        assert err.value.status == 404
    assert item.status == S.SUBMITTED


def test_station_admin_handles_items_without_a_deputy(world, make_item):
    item = make_item()
    item.deputy = None
    db.session.commit()
    perform_action(item, world.users["admin"], "reassign", deputy_id=world.d1.id, text="分给张代表")
    assert item.deputy_id == world.d1.id


def test_paused_item_restarts_its_clock_on_reply(world, make_item):
    item = make_item(status=S.ACCEPTED, paused=True)
    event = perform_action(item, world.users["d1"], "reply", text="收到您的补充材料。")
    assert item.paused_at is None and "clock_restarted_after_seconds" in event.data


# --- departments -------------------------------------------------------------------------------


@pytest.fixture
def forwarded(world, make_item):
    """An item forwarded to the department, with the raw link token."""
    item = make_item(status=S.ACCEPTED)
    due = (today_in_china() + timedelta(days=10)).isoformat()
    event = perform_action(item, world.users["d1"], "forward", department_id=world.department.id, due=due)
    db.session.commit()
    token = forward_link_token(event)
    return SimpleNamespace(item=item, token=token, forward=find_forward(token))


def test_department_answers_once_privately_and_the_deputy_is_told(world, forwarded):
    assert forwarded.forward is not None and forwarded.forward.item_id == forwarded.item.id
    promised = today_in_china() + timedelta(days=5)
    event = department_answer(forwarded.forward, "已派人维修，预计5天内完成。", promised)
    db.session.commit()
    assert event.kind.value == "department_replied" and not event.is_public
    assert event.actor_kind.value == "department" and event.actor_user_id is None
    assert forwarded.forward.answer == "已派人维修，预计5天内完成。" and forwarded.forward.promised_by == promised
    assert forwarded.item.status == S.FORWARDED
    rows = db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "deputy_department_replied")).all()
    assert [(r.staff_user_id, r.payload) for r in rows] == [
        (world.users["d1"].id, {"forward_id": forwarded.forward.id, "event_id": event.id})
    ]
    before = written_rows()
    with pytest.raises(UserError) as err:
        department_answer(forwarded.forward, "再答一次", None)
    assert err.value.status == 409
    assert written_rows() == before


def test_revoked_token_is_refused(world, forwarded):
    revoke_forward(forwarded.forward, world.users["d1"])
    db.session.commit()
    assert find_forward(forwarded.token) is None
    with pytest.raises(UserError) as err:
        department_answer(forwarded.forward, "已处理", None)
    assert err.value.status == 404
    revoke_forward(forwarded.forward, world.users["d1"])  # twice: no-op
    notes = [e for e in forwarded.item.events if e.data.get("action") == "revoke_forward"]
    assert len(notes) == 1 and not notes[0].is_public
    audit = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "forward_revoked")).all()
    assert len(audit) == 1


def test_token_of_another_item_cannot_be_used_for_this_one(world, make_item, forwarded):
    other = make_item(status=S.ACCEPTED)
    assert find_forward(forwarded.token, item_id=other.id) is None
    assert find_forward(forwarded.token, item_id=forwarded.item.id) is forwarded.forward
    assert find_forward("x" * 22) is None
    assert find_forward(forwarded.token[:-1]) is None
    assert find_forward(None) is None
    # A token of the right shape for another forward id, or another version, fails its HMAC.
    forward_id, version, mac = forwarded.token.split(".")
    assert find_forward(f"{int(forward_id) + 1}.{version}.{mac}") is None
    assert find_forward(f"{forward_id}.{int(version) + 1}.{mac}") is None


def test_department_answer_checks_its_input(world, forwarded):
    for text, promised, field in [("", None, "text"), ("字" * 2001, None, "text"), ("好", "明天", "promised_by")]:
        with pytest.raises(UserError) as err:
            department_answer(forwarded.forward, text, promised)
        assert err.value.field == field
    assert forwarded.forward.answered_at is None


def test_another_deputy_cannot_revoke(world, forwarded):
    with pytest.raises(UserError) as err:
        revoke_forward(forwarded.forward, world.users["d2"])
    assert err.value.status == 404
    assert forwarded.forward.revoked_at is None


# --- the resident's verdict --------------------------------------------------------------------


def test_rating_takes_no_staff_actor():
    assert list(inspect.signature(rate_item).parameters) == ["item", "satisfaction", "solved", "comment"]
    assert not any("rate" in action for action in TRANSITIONS)


@pytest.mark.parametrize("who", ["d1", "admin", "supervisor", "department"])
@pytest.mark.parametrize("action", ["rate", "rate_item", "satisfied"])
def test_no_staff_role_can_rate_through_actions(world, make_item, who, action):
    item = make_item(status=S.RESOLVED)
    with pytest.raises(UserError) as err:
        perform_action(item, world.users[who], action, outcome="solved")
    assert err.value.status == 400
    assert item.satisfaction is None and item.rated_at is None


def test_rating_a_resolved_item_once(world, make_item):
    item = make_item(status=S.RESOLVED)
    event = rate_item(item, "satisfied", True, "谢谢代表！")
    db.session.commit()
    assert event.kind.value == "rated" and event.is_public and event.actor_kind.value == "resident"
    assert event.actor_user_id is None
    assert item.satisfaction.value == "satisfied" and item.is_solved_per_resident is True and item.rated_at
    assert item.status == S.RESOLVED
    before = written_rows()
    with pytest.raises(UserError) as err:
        rate_item(item, "unsatisfied", False, "改主意了")
    assert err.value.status == 409
    assert written_rows() == before and item.satisfaction.value == "satisfied"


@pytest.mark.parametrize("status", [s for s in S if s != S.RESOLVED])
def test_rating_before_resolution_is_409(world, make_item, status):
    item = make_item(status=status)
    with pytest.raises(UserError) as err:
        rate_item(item, "satisfied", True)
    assert err.value.status == 409
    assert count(ItemEvent) == 0


@pytest.mark.parametrize(
    ("satisfaction", "solved", "comment", "field"),
    [
        ("unsatisfied", False, "", "comment"),
        ("great", True, "", "satisfaction"),
        ("satisfied", "maybe", "", "solved"),
        ("satisfied", None, "", "solved"),
        ("basically", True, "字" * 2001, "comment"),
    ],
)
def test_rating_input_is_checked(world, make_item, satisfaction, solved, comment, field):
    item = make_item(status=S.RESOLVED)
    with pytest.raises(UserError) as err:
        rate_item(item, satisfaction, solved, comment)
    assert (err.value.status, err.value.field) == (400, field)
    assert item.rated_at is None and count(ItemEvent) == 0


def test_unsatisfied_reopens_on_top_and_can_be_rated_again_after_resolving(world, make_item):
    item = make_item(status=S.RESOLVED)
    rate_item(item, "unsatisfied", "false", "路灯又坏了。")
    db.session.commit()
    assert item.status == S.ACCEPTED and item.reopen_count == 1
    assert item.resolved_at is None and item.outcome is None
    assert item.satisfaction.value == "unsatisfied" and item.is_solved_per_resident is False
    assert item.due_at > utcnow() and item.due_at == deadlines.answer_deadline(item.rated_at)
    kinds = [(e.kind.value, e.is_public, e.actor_kind.value) for e in item.events]
    assert kinds[-2:] == [("rated", True, "resident"), ("reopened", True, "resident")]
    assert "路灯又坏了" in item.events[-2].body
    rows = db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "deputy_item_reopened")).all()
    assert [r.staff_user_id for r in rows] == [world.users["d1"].id]

    perform_action(item, world.users["d1"], "resolve", outcome="solved", text="已更换新灯。")
    assert item.satisfaction is None and item.rated_at is None
    rate_item(item, "basically", True)
    assert item.satisfaction.value == "basically" and item.status == S.RESOLVED


def run_at_once(app, count_, work):
    """Run ``work()`` in ``count_`` threads, each with its own session, released together; return their outcomes."""
    db.session.commit()  # SQLite: release this test's write lock
    barrier = threading.Barrier(count_)
    outcomes = []

    def one():
        with app.app_context():
            barrier.wait()
            try:
                work()
                db.session.commit()
                outcomes.append("ok")
            except UserError as exc:
                db.session.rollback()
                outcomes.append(exc.status)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=one) for _ in range(count_)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    db.session.expire_all()
    return sorted(outcomes, key=str)


def test_two_ratings_at_once_make_one(app, world, make_item):
    item_id = make_item(status=S.RESOLVED).id
    outcomes = run_at_once(app, 4, lambda: rate_item(db.session.get(Item, item_id), "unsatisfied", False, "没修好"))
    assert outcomes == [409, 409, 409, "ok"]
    assert count(ItemEvent) == 2  # one RATED, one REOPENED
    assert db.session.get(Item, item_id).reopen_count == 1


def test_two_accepts_at_once_make_one(app, world, make_item):
    item_id = make_item().id
    user_id = world.users["d1"].id

    def accept():
        perform_action(db.session.get(Item, item_id), db.session.get(StaffUser, user_id), "accept")

    assert run_at_once(app, 3, accept) == [409, 409, "ok"]
    assert count(ItemEvent) == 1


# --- 代表接待选民 ------------------------------------------------------------------------------------


# An in-person item with nothing but a message: no contact, no consent, no note of the occasion.
IN_PERSON_BARE = {
    "body": "反映小区门口积水问题。",
    "category": "urban",
    "name": "",
    "phone": "",
    "consent": False,
    "channel_note": "",
}


def test_in_person_item_is_entered_by_the_deputy(world):
    item, receipt_token = in_person_item(
        world.users["d1"],
        body="反映小区门口积水问题，雨天无法通行。",
        category="urban",
        name="刘大爷",
        phone="13812345678",
        consent=True,
        channel_note="11月20日接待日，霞阳镇联络站",
    )
    db.session.commit()
    assert item.channel == ItemChannel.IN_PERSON and item.deputy_id == world.d1.id
    assert item.station_id == world.station.id and item.status == S.SUBMITTED
    assert item.ref and item.consented_at is not None
    # No key until the resident claims it with the receipt: the deputy holds nothing that rates.
    assert item.access_key == "" and item.claimed_at is None and item.awaits_claim
    assert len(receipt_token) >= 22 and receipt_token not in repr(item.events[0].data)
    assert item.due_at == deadlines.accept_deadline(item.created_at)
    (event,) = item.events
    assert event.kind.value == "submitted" and event.actor_kind.value == "staff"
    assert event.actor_user_id == world.users["d1"].id
    assert event.data["entered_by"] == "deputy" and event.data["channel_note"] == "11月20日接待日，霞阳镇联络站"
    assert db.session.scalars(select(AuditEntry).where(AuditEntry.action == "item_entered_in_person")).one()


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"body": "短"}, "too_short"),
        ({"phone": "13812345678", "consent": False}, "consent_required"),
        ({"phone": "12345"}, "invalid_phone"),
        ({"category": "weather"}, "invalid_category"),
        ({"channel_note": "字" * 201}, "too_long"),
    ],
)
def test_in_person_item_reuses_the_form_checks(world, fields, code):
    with pytest.raises(UserError) as err:
        in_person_item(world.users["d1"], **(IN_PERSON_BARE | fields))
    assert err.value.code == code
    assert count(Item) == 0


@pytest.mark.parametrize("who", ["admin", "supervisor", "department"])
def test_in_person_item_only_by_a_deputy(world, who):
    with pytest.raises(UserError) as err:
        in_person_item(world.users[who], **IN_PERSON_BARE)
    assert err.value.status == 403
