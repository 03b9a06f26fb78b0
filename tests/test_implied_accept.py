"""Issue 14: a first reply or forward takes the item on (受理) in one tap. The 受理 is written as the explicit one
is — its own event, the resident's notice and the audit row — so the resident hears 受理 exactly once, and the
timelines show the pair as one entry. Bad input writes nothing, the 受理 included; a second reply, or a reply on a
reopened item, adds no second 受理."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from backend.errors import UserError
from backend.extensions import db
from backend.items import lifecycle, timeline
from backend.items.lifecycle import perform_action, rate_item
from backend.items.presenters import timeline_rows
from backend.models import AuditEntry, ItemEvent, ItemEventKind, ItemStatus, OutboxMessage, Resident
from backend.outbox.notifications import build_notice
from tests.factories import act, due_in_days, make_item
from tests.helpers import audit_rows, counts

ANSWER = "已联系村委会，路灯本周内修好。"


@pytest.fixture
def item(world):
    """A submitted item of d1 from a resident with WeChat (so the resident's notices are queued)."""
    made = make_item(world.d1)
    resident = Resident(openid="o-resident-implied")
    db.session.add(resident)
    db.session.flush()
    made.resident_id = resident.id
    db.session.commit()
    return made


def resident_notices(item) -> list[str]:
    return list(
        db.session.scalars(
            select(OutboxMessage.kind)
            .where(OutboxMessage.item_id == item.id, OutboxMessage.resident_id.is_not(None))
            .order_by(OutboxMessage.id)
        )
    )


def accepted_events(item) -> list[ItemEvent]:
    return [e for e in item.events if e.kind == ItemEventKind.ACCEPTED]


def test_a_reply_without_accept_accepts_and_answers_in_one_tap(world, item):
    event = act(item, world.users["deputy"], "reply", text=ANSWER)
    db.session.refresh(item)
    assert item.status == ItemStatus.ANSWERED
    assert item.accepted_at == event.created_at == item.first_answered_at
    accepted = accepted_events(item)
    assert len(accepted) == 1 and accepted[0].is_public and accepted[0].data["implied_by"] == "reply"
    assert accepted[0].created_at == event.created_at and accepted[0].id < event.id
    assert event.data["implied_accept"] is True
    # The resident hears 受理 once and the answer once: each its own notice, each naming its event.
    rows = db.session.scalars(
        select(OutboxMessage).where(OutboxMessage.resident_id.is_not(None)).order_by(OutboxMessage.id)
    ).all()
    assert [(r.kind, r.payload["event_id"]) for r in rows] == [
        ("item_accepted", accepted[0].id),
        ("item_answered", event.id),
    ]
    accepted_notice = build_notice(rows[0])
    assert accepted_notice.openid == "o-resident-implied"
    assert "已受理" in str(accepted_notice.data) and ANSWER not in str(accepted_notice.data)
    # Both steps are audited, each from where it started.
    assert [r.data["from"] for r in audit_rows("item_accept")] == ["submitted"]
    assert audit_rows("item_accept")[0].data["implied_by"] == "reply"
    assert [r.data["from"] for r in audit_rows("item_reply")] == ["accepted"]
    # One entry per action, on the staff timeline and on the resident's.
    assert [row["label"] for row in timeline_rows(item)] == ["受理并答复群众"]
    assert [timeline.event_label(e) for e in timeline.public_events(item)] == ["代表受理并答复"]


def test_a_department_forward_without_accept(world, item):
    event = act(
        item,
        world.users["deputy"],
        "forward",
        department_id=world.department.id,
        due=due_in_days(10),
        text="请核实后处理。",
    )
    db.session.refresh(item)
    assert item.status == ItemStatus.FORWARDED and item.accepted_at == event.created_at
    assert item.due_at == lifecycle.deadlines.parse_due(due_in_days(10), event.created_at)
    assert [e.data.get("implied_by") for e in accepted_events(item)] == ["forward"]
    assert resident_notices(item) == ["item_accepted", "item_forwarded"]
    department_rows = db.session.scalar(
        select(func.count()).select_from(OutboxMessage).where(OutboxMessage.kind == "department_new_item")
    )
    assert department_rows == 1
    assert [row["label"] for row in timeline_rows(item)] == ["受理并交办承办单位"]
    assert [timeline.event_label(e) for e in timeline.public_events(item)] == ["已受理并交办承办单位"]


def test_a_second_reply_adds_no_second_accept(world, item):
    act(item, world.users["deputy"], "reply", text=ANSWER)
    second = act(item, world.users["deputy"], "reply", text="补充：施工队周三上午到。")
    assert "implied_accept" not in second.data
    assert len(accepted_events(item)) == 1
    assert resident_notices(item) == ["item_accepted", "item_answered", "item_answered"]
    assert [row["label"] for row in timeline_rows(item)] == ["受理并答复群众", "答复群众"]


def test_an_explicit_accept_then_reply_is_two_entries_and_one_accept(world, item):
    act(item, world.users["deputy"], "accept", text="已收到。")
    reply = act(item, world.users["deputy"], "reply", text=ANSWER)
    assert "implied_accept" not in reply.data
    assert [e.data.get("implied_by") for e in accepted_events(item)] == [None]
    assert resident_notices(item) == ["item_accepted", "item_answered"]
    assert [row["label"] for row in timeline_rows(item)] == ["受理", "答复群众"]


def test_a_reply_on_a_reopened_item_is_no_new_accept(world, item):
    act(item, world.users["deputy"], "reply", text=ANSWER)
    act(item, world.users["deputy"], "resolve", outcome="solved")
    rate_item(item, "unsatisfied", False, "路灯还是不亮。")
    db.session.commit()
    assert item.status == ItemStatus.ACCEPTED and item.is_reopened
    # The status says it was reopened, not "已受理 · 代表已受理，正在了解情况".
    assert timeline.status_label(item) == "已重新办理"
    assert timeline.next_step(item) == timeline.REOPENED_NEXT_STEP
    reply = act(item, world.users["deputy"], "reply", text="已再次联系供电所，明天更换灯泡。")
    assert "implied_accept" not in reply.data
    assert len(accepted_events(item)) == 1
    assert resident_notices(item).count("item_accepted") == 1
    assert timeline.status_label(item) == "已答复" and not item.is_reopened


@pytest.mark.parametrize(
    ("action", "inputs", "field"),
    [
        ("reply", {"text": ""}, "text"),
        ("reply", {"text": "   "}, "text"),
        ("reply", {"text": "长" * 2001}, "text"),
        ("forward", {"department_id": "", "due": due_in_days(10)}, "department_id"),
        ("forward", {"department_id": "abc", "due": due_in_days(10)}, "department_id"),
        ("forward", {"department_id": "999999", "due": due_in_days(10)}, "department_id"),
        ("forward", {"department_id": "far", "due": due_in_days(10)}, "department_id"),
        ("forward", {"department_id": "own", "due": "2020-01-01"}, "due"),
        ("forward", {"department_id": "own", "due": "not-a-date"}, "due"),
    ],
)
def test_bad_input_writes_nothing_not_even_the_accept(world, item, action, inputs, field):
    inputs = dict(inputs)
    if inputs.get("department_id") == "far":
        inputs["department_id"] = str(world.far_department.id)
    elif inputs.get("department_id") == "own":
        inputs["department_id"] = str(world.department.id)
    before = counts() | {"audit": db.session.scalar(select(func.count()).select_from(AuditEntry))}
    with pytest.raises(UserError) as err:
        perform_action(item, world.users["deputy"], action, **inputs)
    assert err.value.status == 400 and err.value.field == field
    db.session.rollback()
    db.session.refresh(item)
    assert item.status == ItemStatus.SUBMITTED and item.accepted_at is None
    assert counts() | {"audit": db.session.scalar(select(func.count()).select_from(AuditEntry))} == before


@pytest.mark.parametrize(
    ("who", "status"),
    [("supervisor", 403), ("deputy2", 404), ("deputy_b", 404), ("station_admin_b", 404), ("department", 404)],
)
def test_only_those_handling_the_item_may_reply_first(world, item, who, status):
    before = counts()
    with pytest.raises(UserError) as err:
        perform_action(item, world.users[who], "reply", text=ANSWER)
    assert err.value.status == status
    db.session.rollback()
    db.session.refresh(item)
    assert item.status == ItemStatus.SUBMITTED and counts() == before


def test_the_station_admin_may_reply_first_too(world, item):
    act(item, world.users["station_admin"], "reply", text=ANSWER)
    assert item.status == ItemStatus.ANSWERED and len(accepted_events(item)) == 1


@pytest.mark.parametrize("action", ["resolve", "extend", "wait_for_resident"])
def test_other_work_still_needs_the_item_in_hand(world, item, action):
    inputs = {"resolve": {"outcome": "solved"}, "extend": {"due": due_in_days(30), "text": "需要协调。"}}
    with pytest.raises(UserError) as err:
        perform_action(item, world.users["deputy"], action, **inputs.get(action, {"text": "请补充照片。"}))
    assert err.value.code == "transition_not_allowed"
    db.session.rollback()
    assert accepted_events(item) == []
