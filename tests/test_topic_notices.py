"""A topic code's message has no deputy: its station's administrators are told of it as deputies are told of theirs
(issue 15's leftover): the same new-item notice (``outbox.queue.queue_new_item_notices``), written in the item's own
transaction, through their bound WeChat (station administrators may now bind one); an administrator with no binding
still finds it in their 待办; nobody outside the station hears of it."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from backend.extensions import db
from backend.models import Item, OutboxMessage, OutboxStatus, ScreeningResult, StaffRole, StaffUser
from backend.outbox import queue, worker
from backend.qr.codes import current_code
from tests.factories import DEPUTY_TEMPLATE, ItemFactory, StaffUserFactory, give_credits
from tests.helpers import fresh_token, login
from tests.test_topics import submit_page, topic  # noqa: F401 - the fixture
from tests.test_wechat_identity import binding_page
from tests.wechat_server import wechat_sandbox  # noqa: F401 - the fixture

OPENIDS = {"admin_a": "o-admin-a", "admin_b": "o-admin-b", "deputy_d1": "o-deputy-d1", "sup_county": "o-sup"}


@pytest.fixture
def bound(app, world, topic):  # noqa: F811
    """Every account of ``OPENIDS`` bound to WeChat with the staff template switched on; a second administrator of
    station A without a binding."""
    users = {}
    for username, openid in OPENIDS.items():
        user = db.session.scalar(select(StaffUser).where(StaffUser.username == username))
        user.wechat_openid = openid
        give_credits(openid, 1, (DEPUTY_TEMPLATE,))
        users[username] = user.id
    users["admin_a2"] = StaffUserFactory(username="admin_a2", role=StaffRole.STATION_ADMIN, station=world.station_a).id
    db.session.commit()
    return users


def staff_rows() -> list[tuple[str, int, int]]:
    rows = db.session.scalars(select(OutboxMessage).where(OutboxMessage.staff_user_id.is_not(None))).all()
    return sorted((row.kind, row.item_id, row.staff_user_id) for row in rows)


def test_a_topic_message_tells_the_stations_administrators_and_nobody_else(
    app,
    world,
    topic,  # noqa: F811
    bound,
    wechat_sandbox,  # noqa: F811
):
    for openid in OPENIDS.values():
        wechat_sandbox.subscribe(openid, DEPUTY_TEMPLATE)
    slug = current_code(topic).slug
    assert submit_page(app, slug, body="建议草案明确物业费公示的周期。", choice="基本赞成").status_code == 303
    item = db.session.scalar(select(Item))
    assert item.deputy_id is None
    # One new-item row per administrator of station A (bound or not), none for anyone else.
    assert staff_rows() == sorted(
        [(queue.NEW_ITEM, item.id, bound["admin_a"]), (queue.NEW_ITEM, item.id, bound["admin_a2"])]
    )

    while worker.run_once(20):
        pass
    [message] = wechat_sandbox.messages("o-admin-a")
    assert message["template_id"] == DEPUTY_TEMPLATE and message["page"] == f"pages/inbox/item?ref={item.ref}"
    assert message["data"]["phrase2"]["value"] == "专题留言"
    assert message["data"]["thing3"]["value"].startswith("【基本赞成】建议草案")
    for outsider in ("admin_b", "deputy_d1", "sup_county"):
        assert wechat_sandbox.messages(OPENIDS[outsider]) == [], outsider
    statuses = {
        row.staff_user_id: (row.status, row.last_error) for row in db.session.scalars(select(OutboxMessage)).all()
    }
    assert statuses[bound["admin_a"]] == (OutboxStatus.SENT, "")
    assert statuses[bound["admin_a2"]][0] == OutboxStatus.SKIPPED  # no WeChat bound: nothing to send it through

    # The administrator without a binding still finds it in their 待办; another station's does not.
    assert "物业费公示" in login(app, "admin_a2").get("/staff/inbox?state=new").text
    assert "物业费公示" not in login(app, "admin_b").get("/staff/inbox?state=new").text


def test_the_notice_is_written_in_the_items_transaction(app, world, topic, bound, monkeypatch):  # noqa: F811
    """A fault after the administrators' rows are inserted: the submission rolls back, the item with them."""
    real = queue.queue_deputy_notice

    def written_then_fault(*args, **kwargs):
        real(*args, **kwargs)
        raise RuntimeError("injected: a fault after the notice rows were written")

    monkeypatch.setattr(queue, "queue_deputy_notice", written_then_fault)
    response = submit_page(app, current_code(topic).slug, body="建议草案明确物业费公示的周期。", choice="赞成")
    assert response.status_code == 500
    assert db.session.scalar(select(func.count()).select_from(Item)) == 0
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage)) == 0


def test_a_deputys_message_still_tells_only_the_deputy(app, client, world, bound):
    response = client.post("/api/v1/items", json={"code": current_code(world.d1).slug, "body": "村口路灯坏了。"})
    assert response.status_code == 201, response.get_json()
    item = db.session.scalar(select(Item))
    assert staff_rows() == [(queue.NEW_ITEM, item.id, bound["deputy_d1"])]


def test_a_station_administrator_may_bind_wechat_but_not_a_supervisor(app, client, world, wechat_sandbox):  # noqa: F811
    page = login(app, "admin_a").get("/staff/wechat-binding")
    assert page.status_code == 200 and "尚未绑定微信" in page.text
    home = login(app, "admin_a").get("/staff/")
    assert 'id="binding-link"' in home.text and "不绑定也能在“待办”里看到" in home.text
    code, _ = binding_page(login(app, "admin_a"))
    bound = client.post(
        "/api/v1/wechat/bind", json={"code": wechat_sandbox.login_code("o-admin-a"), "binding_code": code}
    )
    assert bound.status_code == 200, bound.get_json()
    db.session.expire_all()
    assert db.session.get(StaffUser, world.users["station_admin"].id).wechat_openid == "o-admin-a"
    for username in ("sup_county", "dept_user"):
        assert login(app, username).get("/staff/wechat-binding").status_code == 404


def test_a_held_topic_message_tells_the_administrators_when_released(app, world, topic, bound):  # noqa: F811
    """Held for content review, it tells nobody; released, its handlers (the station's administrators) hear of it."""
    item = ItemFactory(
        deputy=None,
        station=world.station_a,
        code_id=current_code(topic).id,
        body="【赞成】草案很好【风险】",
        screening=ScreeningResult.RISKY,
        is_held=True,
    )
    db.session.commit()
    assert staff_rows() == []
    admin = login(app, "admin_a")
    _, token = fresh_token(admin, "/staff/review")
    assert admin.post(f"/staff/review/{item.ref}/release", data={"csrf_token": token}).status_code == 303
    assert staff_rows() == sorted(
        [(queue.NEW_ITEM, item.id, bound["admin_a"]), (queue.NEW_ITEM, item.id, bound["admin_a2"])]
    )
