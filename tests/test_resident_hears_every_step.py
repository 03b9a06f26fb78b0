"""Issue 11's last steps for the resident: the department's answer reaches them (that it came, never what), once per
step, in the mini-program and through the service account alike; and a withdrawn item's notices still waiting in
the outbox are skipped, saying why, never delivered (alone or in a deputy's digest)."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from backend.extensions import db
from backend.items.lifecycle import department_answer
from backend.models import Item, OutboxMessage, OutboxStatus, Resident, utcnow
from backend.outbox import queue as notices
from backend.outbox import worker
from backend.outbox.notifications import WITHDRAWN_NOTE, NoChannel, build_notice
from tests.factories import DEPUTY_TEMPLATE, due_in_days, forward, give_credits, make_item, outbox_item, outbox_world
from tests.helpers import api_token, counts, fresh_token
from tests.wechat_server import wechat_sandbox  # noqa: F401 - the fixture

PROGRESS_TEMPLATE = "tpl-item-progress"  # the mini-program's long-term progress template (config's default)
OA_TEMPLATE = "tpl-oa-item-progress"
MP_OPENID = "o-res-chain"
OA_OPENID = "oa-res-chain"
PRIVATE_ANSWER = "已更换全部松动地砖，施工队长电话13900001111。"


pytestmark = pytest.mark.usefixtures("count_in_database")


def drain() -> None:
    while worker.run_once(20):
        pass


def resident_item(world, **resident) -> Item:
    """An item of d1 written by a resident with the given WeChat identity (``openid`` or ``mp_openid``)."""
    item = make_item(world.d1, body="炎帝大道人行道地砖松动，下雨天溅水。")
    person = Resident(**resident)
    db.session.add(person)
    db.session.flush()
    item.resident_id = person.id
    db.session.commit()
    return item


def department_steps(app, item, raw: str) -> None:
    """The housing bureau reports progress on its page (the link), then answers through the API (its account)."""
    client = app.test_client()
    _, token = fresh_token(client, "/staff/login")
    progress = client.post(f"/d/{raw}", data={"csrf_token": token, "text": "已派人现场查看。", "kind": "progress"})
    assert progress.status_code == 303, progress.text
    answer = client.post(
        f"/api/v1/inbox/{item.ref}/department",
        json={"action": "answer", "text": PRIVATE_ANSWER},
        headers=api_token(app, "dept_user"),
    )
    assert answer.status_code == 200, answer.text


def rows_of(kind: str) -> list[OutboxMessage]:
    found = list(db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == kind).order_by(OutboxMessage.id)))
    db.session.rollback()
    return found


# -- the department's answer reaches the resident ------------------------------------------------------------


def test_the_mini_program_resident_hears_each_department_step_once(app, world, wechat_sandbox):  # noqa: F811
    item = resident_item(world, openid=MP_OPENID)
    wechat_sandbox.subscribe(MP_OPENID, PROGRESS_TEMPLATE)  # long-term: one acceptance
    give_credits(MP_OPENID, 1, (PROGRESS_TEMPLATE,))
    db.session.commit()
    _, raw = forward(item, world.users["deputy"], world.department)
    department_steps(app, item, raw)

    resident_rows = rows_of("item_department_replied")
    assert len(resident_rows) == 2  # progress, then the final answer: a row each, in the step's transaction
    assert len(rows_of("deputy_department_replied")) == 2  # the deputy is told as before
    drain()
    drain()  # a second pass sends nothing again
    messages = wechat_sandbox.messages(MP_OPENID)
    assert [m["data"]["phrase2"]["value"] for m in messages] == ["已受理", "已交办", "部门报进展", "部门已答复"]
    told = messages[2:]
    assert [m["data"]["thing3"]["value"] for m in told] == [
        "炎陵县住房和城乡建设局已向代表报告进展",
        "炎陵县住房和城乡建设局已向代表答复",
    ]
    for message in told:
        assert message["template_id"] == PROGRESS_TEMPLATE and message["page"] == f"pages/item/item?ref={item.ref}"
        assert "13900001111" not in str(message["data"]) and "地砖" not in str(message["data"])  # the text is private
    assert [r.status for r in rows_of("item_department_replied")] == [OutboxStatus.SENT] * 2
    assert wechat_sandbox.subscriptions(MP_OPENID)[PROGRESS_TEMPLATE] == 1  # long-term: nothing spent


def test_the_h5_resident_hears_the_department_answer_through_the_service_account(app, world, wechat_sandbox):  # noqa: F811
    item = resident_item(world, mp_openid=OA_OPENID)
    accepted = wechat_sandbox._control(
        "POST", "oa-subscribe", json={"openid": OA_OPENID, "template_id": OA_TEMPLATE, "status": "accept"}
    )
    assert accepted["pushed"] == 200
    _, raw = forward(item, world.users["deputy"], world.department)
    department_steps(app, item, raw)
    drain()
    messages = wechat_sandbox.messages(OA_OPENID)
    assert [m["kind"] for m in messages] == ["bizsend"] * 4
    assert [m["data"]["phrase2"]["value"] for m in messages] == ["已受理", "已交办", "部门报进展", "部门已答复"]
    tracking = f"{app.config['PUBLIC_BASE_URL']}/t/{item.ref}?k={item.access_key}"
    assert all(m["url"] == tracking for m in messages)
    assert "13900001111" not in str(messages)


def test_a_unit_of_a_second_hop_answering_tells_the_resident_too(app, world, wechat_sandbox):  # noqa: F811
    from backend.items.lifecycle import department_pass_on
    from backend.models import Department

    item = resident_item(world, mp_openid=OA_OPENID)
    wechat_sandbox._control(
        "POST", "oa-subscribe", json={"openid": OA_OPENID, "template_id": OA_TEMPLATE, "status": "accept"}
    )
    fwd, _ = forward(item, world.users["deputy"], world.department)
    unit = Department(name="炎陵县市政设施维护所", region=world.department.region, parent_id=world.department.id)
    db.session.add(unit)
    db.session.commit()
    hop = department_pass_on(fwd, unit.id, due_in_days(5), "请修复。")
    db.session.commit()
    assert rows_of("item_department_replied") == []  # passing on is not an answer: the resident hears nothing
    department_answer(hop, "已修复。", None)
    db.session.commit()
    drain()
    told = [m["data"]["thing3"]["value"] for m in wechat_sandbox.messages(OA_OPENID)]
    assert told[-1] == "炎陵县市政设施维护所已向代表答复"
    assert len(rows_of("item_department_replied")) == 1


def test_other_department_steps_and_refused_answers_tell_the_resident_nothing(app, world):
    item = resident_item(world, openid=MP_OPENID)
    forward(item, world.users["deputy"], world.department)
    client = app.test_client()
    url = f"/api/v1/inbox/{item.ref}/department"
    dept = api_token(app, "dept_user")
    asked = client.post(url, json={"action": "extension", "due": due_in_days(18), "text": "等材料。"}, headers=dept)
    assert asked.status_code == 200, asked.text
    before = counts()
    for bad in ({"action": "answer"}, {"action": "answer", "text": ""}, {"action": "answer", "text": "长" * 2001}):
        assert client.post(url, json=bad, headers=dept).status_code == 400, bad
    # The wrong hands: another department's account, the deputy, nobody.
    assert (
        client.post(url, json={"action": "answer", "text": "x"}, headers=api_token(app, "deputy_d1")).status_code == 404
    )
    assert client.post(url, json={"action": "answer", "text": "x"}).status_code == 401
    assert counts() == before
    returned = client.post(url, json={"action": "return", "reason": "不属于本局职责。"}, headers=dept)
    assert returned.status_code == 200, returned.text
    after_return = client.post(url, json={"action": "answer", "text": "已修复。"}, headers=dept)
    assert after_return.status_code in (404, 409)
    assert rows_of("item_department_replied") == []
    assert {r.kind for r in rows_of("deputy_extension_requested") + rows_of("deputy_department_returned")} == {
        "deputy_extension_requested",
        "deputy_department_returned",
    }


def test_an_item_without_a_resident_gets_no_resident_row(app, world):
    item = make_item(world.d1)
    fwd, _ = forward(item, world.users["deputy"], world.department)
    department_answer(fwd, "已修复。", None)
    db.session.commit()
    assert rows_of("item_department_replied") == [] and len(rows_of("deputy_department_replied")) == 1


# -- a withdrawn item's notices are skipped ----------------------------------------------------------------


@pytest.fixture
def deputy_world(app, create_deputy, wechat_sandbox):  # noqa: F811
    """A deputy bound to WeChat with its long-term notices on, in the app and in the sandbox."""
    w = outbox_world()
    give_credits(w.deputy_openid, 1, (DEPUTY_TEMPLATE,))
    db.session.commit()
    wechat_sandbox.subscribe(w.deputy_openid, DEPUTY_TEMPLATE)
    return w


def submit(world, client_address: str = "") -> Item:
    """An item submitted by a resident, its "new item" notice queued for the deputy as the submission does."""
    item_id = outbox_item(world, None)
    notices.queue_new_item_notices(db.session.connection(), item_id, None, world.deputy_id, utcnow())
    db.session.commit()
    return db.session.get(Item, item_id)


def withdraw(app, item: Item) -> None:
    """The resident withdraws the item through the API, with its key."""
    answer = app.test_client().post(f"/api/v1/items/{item.ref}/erase?key={item.access_key}", json={"what": "withdraw"})
    assert answer.status_code == 200, answer.text


def make_all_due() -> None:
    db.session.execute(update(OutboxMessage).values(next_attempt_at=utcnow()))
    db.session.commit()


def test_a_withdrawn_items_new_item_notice_is_skipped_and_never_delivered(app, deputy_world, wechat_sandbox):  # noqa: F811
    item = submit(deputy_world)
    withdraw(app, item)
    drain()
    assert wechat_sandbox.messages(deputy_world.deputy_openid) == []
    (row,) = rows_of("deputy_new_item")
    assert row.status == OutboxStatus.SKIPPED and WITHDRAWN_NOTE in row.last_error and row.attempts == 0
    assert wechat_sandbox.stats().get("cgi-bin/message/subscribe/send") is None  # no call was made


def test_a_withdrawn_item_is_left_out_of_the_deputys_digest(app, deputy_world, wechat_sandbox):  # noqa: F811
    kept, withdrawn, also_kept = submit(deputy_world), submit(deputy_world), submit(deputy_world)
    withdraw(app, withdrawn)
    make_all_due()  # the window's later rows, due now: the worker would fold them all into one
    drain()
    (message,) = wechat_sandbox.messages(deputy_world.deputy_openid)
    assert message["data"]["thing3"]["value"] == "新留言2条"  # two live items, not three
    by_item = {r.item_id: r for r in rows_of("deputy_new_item")}
    assert by_item[withdrawn.id].status == OutboxStatus.SKIPPED and WITHDRAWN_NOTE in by_item[withdrawn.id].last_error
    assert {by_item[kept.id].status, by_item[also_kept.id].status} == {OutboxStatus.SENT, OutboxStatus.MERGED}


def test_a_digest_built_again_after_a_withdrawal_counts_only_live_steps(app, deputy_world):
    first, second = submit(deputy_world), submit(deputy_world)
    rows = rows_of("deputy_new_item")
    digest = db.session.get(OutboxMessage, rows[0].id)
    digest.payload = {"also": [{"kind": "deputy_new_item", "item_id": second.id, "outbox_id": rows[1].id}]}
    db.session.commit()
    assert build_notice(digest).data["thing3"]["value"] == "新留言2条"
    withdraw(app, second)  # after the fold, before a retry: the retry tells only the live step
    digest = db.session.get(OutboxMessage, rows[0].id)
    assert build_notice(digest).data["thing3"]["value"] == "新留言1条"
    withdraw(app, first)  # the digest's own item too: nothing live is left to tell
    digest = db.session.get(OutboxMessage, rows[0].id)
    with pytest.raises(NoChannel, match=WITHDRAWN_NOTE):
        build_notice(digest)


def test_withdrawal_skips_the_residents_notices_with_the_items_own(app, create_deputy, wechat_sandbox):  # noqa: F811
    w = outbox_world()
    resident = Resident(mp_openid=OA_OPENID)
    db.session.add(resident)
    db.session.commit()
    wechat_sandbox._control(
        "POST", "oa-subscribe", json={"openid": OA_OPENID, "template_id": OA_TEMPLATE, "status": "accept"}
    )
    item_id = outbox_item(w, resident.id)
    notices.queue_new_item_notices(db.session.connection(), item_id, resident.id, w.deputy_id, utcnow())
    db.session.commit()
    assert {r.kind for r in db.session.scalars(select(OutboxMessage))} == {"item_received", "deputy_new_item"}
    db.session.rollback()
    withdraw(app, db.session.get(Item, item_id))
    drain()
    assert wechat_sandbox.messages(OA_OPENID) == [] and wechat_sandbox.messages(w.deputy_openid) == []
    assert {r.status for r in db.session.scalars(select(OutboxMessage))} == {OutboxStatus.SKIPPED}
