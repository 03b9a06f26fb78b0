"""Deputies keep hearing: each step is a notice to the deputy's WeChat, several within the window become one."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from backend.extensions import db
from backend.items.inbox import marks_of
from backend.models import ItemEvent, ItemEventKind, OutboxMessage, OutboxStatus, utcnow
from backend.models.item import ActorKind
from backend.outbox import notifications, worker
from backend.outbox import queue as notices
from tests.factories import DEPUTY_TEMPLATE, give_credits, outbox_item, outbox_world
from tests.wechat_server import wechat_sandbox  # noqa: F401 - the fixture


@pytest.fixture
def world(app, create_deputy):
    """A deputy whose account is bound to WeChat and switched on for its (long-term) notices."""
    w = outbox_world()
    give_credits(w.deputy_openid, 1, (DEPUTY_TEMPLATE,))
    w.items = [outbox_item(w, None) for _ in range(3)]
    db.session.commit()
    return w


def deputy_rows() -> list[OutboxMessage]:
    rows = db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
    db.session.rollback()
    return rows


def step(world, kind: str, item_index: int = 0) -> None:
    """One step the deputy must hear of, queued as the code that makes it does (then committed)."""
    conn = db.session.connection()
    notices.queue_deputy_notice(conn, kind, world.items[item_index], [world.staff_user_id], utcnow())
    db.session.commit()


def drain() -> None:
    while worker.run_once(20):
        pass


def test_several_steps_within_the_window_arrive_as_one_message(world, wechat_sandbox):  # noqa: F811
    wechat_sandbox.subscribe(world.deputy_openid, DEPUTY_TEMPLATE)
    step(world, notices.NEW_ITEM, 0)
    step(world, notices.DEPARTMENT_REPLIED, 1)
    step(world, notices.NEW_ITEM, 2)
    rows = deputy_rows()
    assert len(rows) == 3  # one row per step, findable by item and kind
    assert rows[0].next_attempt_at <= utcnow() < rows[1].next_attempt_at  # later ones wait for the window
    drain()
    messages = wechat_sandbox.messages(world.deputy_openid)
    assert len(messages) == 1
    assert messages[0]["data"]["phrase2"]["value"] == "多条新动态"
    assert messages[0]["data"]["thing3"]["value"] == "新留言2条、部门答复1条"
    assert messages[0]["page"] == "pages/inbox/inbox"
    rows = deputy_rows()
    assert [r.status for r in rows] == [OutboxStatus.SENT, OutboxStatus.MERGED, OutboxStatus.MERGED]
    assert [e["outbox_id"] for e in rows[0].payload["also"]] == [rows[1].id, rows[2].id]
    assert all(r.last_error == f"told in outbox #{rows[0].id}" for r in rows[1:])
    drain()  # nothing is left to tell: no second message
    assert len(wechat_sandbox.messages(world.deputy_openid)) == 1


def test_a_step_after_a_message_waits_for_the_window_then_goes_alone(world, wechat_sandbox):  # noqa: F811
    wechat_sandbox.subscribe(world.deputy_openid, DEPUTY_TEMPLATE)
    step(world, notices.NEW_ITEM, 0)
    drain()
    step(world, notices.REOPENED, 1)
    later = deputy_rows()[-1]
    sent_at = deputy_rows()[0].sent_at
    assert later.next_attempt_at == sent_at + timedelta(seconds=3600)
    drain()
    assert len(wechat_sandbox.messages(world.deputy_openid)) == 1  # still within the hour
    # The hour is over (moved, not waited for): it goes, as itself.
    db.session.execute(update(OutboxMessage).where(OutboxMessage.id == later.id).values(next_attempt_at=utcnow()))
    db.session.commit()
    drain()
    messages = wechat_sandbox.messages(world.deputy_openid)
    assert len(messages) == 2 and messages[1]["data"]["phrase2"]["value"] == "被重开"
    assert messages[1]["page"].startswith("pages/inbox/item?ref=")


def test_without_a_window_each_step_is_its_own_message(world, wechat_sandbox, app):  # noqa: F811
    app.config["NOTICE_COALESCE_SECONDS"] = 0
    wechat_sandbox.subscribe(world.deputy_openid, DEPUTY_TEMPLATE)
    step(world, notices.NEW_ITEM, 0)
    step(world, notices.NEW_ITEM, 1)
    drain()
    assert len(wechat_sandbox.messages(world.deputy_openid)) == 2


def test_a_switched_off_deputy_hears_nothing_and_nothing_is_merged_into_a_skip(world, app):
    give_credits(world.deputy_openid, 0, (DEPUTY_TEMPLATE,))
    db.session.commit()
    step(world, notices.NEW_ITEM, 0)
    step(world, notices.NEW_ITEM, 1)
    claims, settled, _ = worker.claim(10)
    assert claims == [] and settled == 1  # the due one: skipped, no subscription
    assert [r.status for r in deputy_rows()] == [OutboxStatus.SKIPPED, OutboxStatus.PENDING]


def test_every_step_of_the_chain_has_a_deputy_notice():
    for kind in (
        notices.NEW_ITEM,
        notices.OVERDUE,
        notices.DUE_SOON,
        notices.REOPENED,
        notices.SUPERVISED,
        notices.DEPARTMENT_REPLIED,
        notices.RESIDENT_REPLIED,
    ):
        spec = notifications.KINDS[kind]
        assert spec.audience == "staff" and spec.purpose == "deputy_task"
    # The events that make a notice, by value: the resident's answer fires whether or not its kind exists yet.
    assert notices.NOTICE_FOR_EVENT["resident_replied"] == notices.RESIDENT_REPLIED
    assert notices.NOTICE_FOR_EVENT["department_replied"] == notices.DEPARTMENT_REPLIED


def test_an_item_about_to_be_overdue_is_reminded_once(world, app):
    now = utcnow()
    from backend.models import Item

    item = db.session.get(Item, world.items[0])
    item.due_at = now + timedelta(hours=3)
    other = db.session.get(Item, world.items[1])
    other.due_at = now + timedelta(days=5)  # not near yet
    db.session.commit()
    assert notices.queue_due_soon_notices(now) == 1
    db.session.commit()
    assert notices.queue_due_soon_notices(now + timedelta(minutes=10)) == 0  # once
    db.session.commit()
    rows = deputy_rows()
    assert [(r.kind, r.item_id) for r in rows] == [(notices.DUE_SOON, item.id)]
    app.config["NOTICE_DUE_SOON_HOURS"] = 0
    assert notices.queue_due_soon_notices(now + timedelta(days=4, hours=22)) == 0  # switched off


def test_the_inbox_marks_whose_answer_waits(world, app):
    now = utcnow()
    db.session.add_all(
        [
            ItemEvent(item_id=world.items[0], kind=ItemEventKind.SUBMITTED, actor_kind=ActorKind.RESIDENT,
                      is_public=True, body="", data={}, created_at=now),
            ItemEvent(item_id=world.items[0], kind=ItemEventKind.DEPARTMENT_REPLIED, actor_kind=ActorKind.DEPARTMENT,
                      is_public=False, body="已派人维修。", data={}, created_at=now),
            ItemEvent(item_id=world.items[1], kind=ItemEventKind.DEPARTMENT_REPLIED, actor_kind=ActorKind.DEPARTMENT,
                      is_public=False, body="已答复。", data={}, created_at=now),
            ItemEvent(item_id=world.items[1], kind=ItemEventKind.ACCEPTED, actor_kind=ActorKind.STAFF,
                      is_public=True, body="", data={}, created_at=now),
        ]
    )  # fmt: skip
    db.session.commit()
    # The department's answer is the latest step of the first item; the deputy acted after it on the second.
    assert marks_of(world.items) == {world.items[0]: "承办单位已答复"}
    assert marks_of([]) == {}
