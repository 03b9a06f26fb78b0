"""Builders for the supervision tests (no tests here): items made through the real operations —
submitted through the JSON API, handled with ``perform_action``, rated by the resident through the
rating API — with known outcomes, and the figures they must produce."""

from __future__ import annotations

import uuid
from datetime import timedelta
from types import SimpleNamespace

from flask import g
from sqlalchemy import select

from backend.extensions import db
from backend.items.claims import in_person_item
from backend.models import Item, ItemEvent, utcnow
from backend.qr.codes import current_code
from tests.staff_world import act, build_world


def supervision_world(app, create_county, create_station, create_deputy) -> SimpleNamespace:
    """The small county of tests/staff_world.py, with submission limits out of the way."""
    app.config.update(THROTTLE_PER_ADDRESS=10_000, THROTTLE_PER_CODE=10_000, REDIS_URL=None)
    return build_world(create_county, create_station, create_deputy)


def submit(client, deputy, body: str, *, name: str = "", phone: str = "", category: str = "urban") -> Item:
    """A resident's submission through ``POST /api/v1/items`` to ``deputy``'s code; the stored item (its key kept)."""
    payload = {"code": current_code(deputy).slug, "body": body, "category": category, "client_id": uuid.uuid4().hex}
    if name or phone:
        payload.update(name=name, phone=phone, consent=True)
    response = client.post("/api/v1/items", json=payload)
    assert response.status_code == 201, response.get_json()
    item = db.session.scalar(select(Item).where(Item.ref == response.get_json()["ref"]))
    item.test_key = response.get_json()["key"]
    return item


def rate(client, item: Item, satisfaction: str, comment: str = "") -> None:
    """The resident's verdict through ``POST /api/v1/items/<ref>/rating?key=``."""
    body = {"satisfaction": satisfaction, "solved": satisfaction != "unsatisfied", "comment": comment}
    response = client.post(f"/api/v1/items/{item.ref}/rating?key={item.test_key}", json=body)
    assert response.status_code == 200, response.get_json()
    db.session.refresh(item)


def handle(item: Item, user, *steps: str) -> Item:
    """Take the named steps through the lifecycle (accept, reply, resolve[:partly], decline)."""
    for step in steps:
        if step == "reply":
            act(item, user, "reply", text="已联系有关部门，正在处理。")
        elif step.startswith("resolve"):
            outcome = step.partition(":")[2] or "solved"
            act(item, user, "resolve", outcome=outcome, text="" if outcome == "solved" else "部分问题需要明年解决。")
        elif step == "decline":
            act(item, user, "decline", text="该问题属于法院审理范围，请依法起诉。")
        else:
            act(item, user, step)
    db.session.refresh(item)
    return item


def entered_in_person(user, body: str) -> Item:
    """An item the deputy entered after meeting the resident (代表接待选民); its receipt's claim token kept."""
    item, token = in_person_item(
        user, body=body, category="urban", name="", phone="", consent=False, channel_note="接待日进站"
    )
    db.session.commit()
    item.receipt_token = token
    return item


def build_outcomes(client, w) -> SimpleNamespace:
    """Items with known outcomes in station A (deputies d1, d2), station B (d3) and the other county (d4)."""
    d1, d2, d3, d4 = (w.users[k] for k in ("deputy", "deputy2", "deputy_b", "deputy_far"))
    items = SimpleNamespace()
    items.sat = handle(submit(client, w.d1, "村口路灯坏了三个月，晚上出行很不方便。"), d1, "accept", "reply", "resolve")
    rate(client, items.sat, "satisfied")
    items.basic = handle(
        submit(client, w.d1, "小区门口垃圾站傍晚才清运，气味很大。"), d1, "accept", "reply", "resolve:partly"
    )
    rate(client, items.basic, "basically")
    items.unsat = handle(
        submit(client, w.d1, "学校门口上下学车辆乱停，孩子过马路危险。"), d1, "accept", "reply", "resolve"
    )
    rate(client, items.unsat, "unsatisfied", "晚上还是没人管。")
    items.resolved_no_reply = handle(submit(client, w.d1, "卫生院周末没有儿科医生。"), d1, "accept", "resolve")
    items.answered = handle(submit(client, w.d1, "班车下午四点以后就没有了。"), d1, "accept", "reply")
    items.accepted = handle(submit(client, w.d1, "灌溉渠多处破损漏水，需要修补。"), d1, "accept")
    items.submitted = submit(client, w.d1, "菜市场周边占道经营严重。")
    items.declined = handle(submit(client, w.d1, "邻居欠钱不还，请代表帮忙要回来。"), d1, "decline")
    items.duplicate = submit(client, w.d1, "村口的路灯三个月没亮了，请修一下。")
    act(items.duplicate, d1, "duplicate", duplicate_of=items.sat.ref)
    items.in_person = entered_in_person(d1, "养老金认证手续复杂，老人不会用手机。")
    handle(items.in_person, d1, "accept", "reply")
    items.held = submit(client, w.d1, "这条留言被内容安全检查暂扣，等待管理员审核。")
    # Content screening holds an item only for a WeChat resident whose text WeChat flags: set the
    # column the screening writes, the one fault the test cannot cause through the API alone.
    items.held.is_held = True
    db.session.commit()
    items.d2_sat = handle(submit(client, w.d2, "路口红绿灯坏了一个星期。"), d2, "accept", "reply", "resolve")
    rate(client, items.d2_sat, "satisfied")
    items.b_sat = handle(submit(client, w.d3, "沔渡镇自来水经常停水。"), d3, "accept", "reply", "resolve")
    rate(client, items.b_sat, "satisfied")
    items.c_item = handle(submit(client, w.d4, "南山区某街道噪音扰民。"), d4, "accept", "reply")
    g.pop("csrf_token", None)
    return items


# The figures of build_outcomes, by scope (held excluded, declined and duplicate out of the denominators).
STATION_A = dict(
    received=11,
    declined=1,
    duplicate=1,
    valid=9,
    answered=7,
    resolved=4,
    rated=4,
    fully_satisfied=2,
    basically_satisfied=1,
    unsatisfied=1,
    in_person=1,
    held=1,
)
DEPUTY_D1 = dict(
    received=10,
    declined=1,
    duplicate=1,
    valid=8,
    answered=6,
    resolved=3,
    rated=3,
    fully_satisfied=1,
    basically_satisfied=1,
    unsatisfied=1,
    in_person=1,
    held=1,
)
COUNTY = dict(
    received=12,
    declined=1,
    duplicate=1,
    valid=10,
    answered=8,
    resolved=5,
    rated=5,
    fully_satisfied=3,
    basically_satisfied=1,
    unsatisfied=1,
    in_person=1,
    held=1,
)


def make_overdue(item: Item, days: int = 3) -> None:
    """Let time pass: the item's deadline is ``days`` behind it (as if nobody acted since)."""
    item.due_at = utcnow() - timedelta(days=days)
    db.session.commit()


def first_event(item: Item) -> ItemEvent:
    """The item's first event (its submission)."""
    return db.session.scalar(select(ItemEvent).where(ItemEvent.item_id == item.id).order_by(ItemEvent.id))
