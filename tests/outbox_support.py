"""Builders shared by the outbox tests: a deputy with a bound WeChat, residents, items and outbox rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import insert, select

from backend.extensions import db
from backend.items.refs import new_access_key, new_ref
from backend.models import (
    Deputy,
    Item,
    ItemCategory,
    ItemChannel,
    OutboxMessage,
    OutboxStatus,
    Resident,
    StaffRole,
    StaffUser,
    SubscriptionCredit,
    utcnow,
)

RESIDENT_TEMPLATES = ("tpl-item-progress", "tpl-item-answered", "tpl-item-resolved")
DEPUTY_TEMPLATE = "tpl-deputy-task"


@dataclass
class World:
    """One deputy (and its staff account with a WeChat), and the ids the tests need."""

    deputy_id: int
    station_id: int
    staff_user_id: int
    deputy_openid: str


def make_world(create_deputy, deputy_openid: str = "o-deputy-1") -> World:
    """A deputy at a station, with a staff account bound to ``deputy_openid``."""
    deputy: Deputy = create_deputy()
    user = StaffUser(
        username="deputy1", password_hash="x", role=StaffRole.DEPUTY, deputy=deputy, wechat_openid=deputy_openid
    )
    db.session.add(user)
    db.session.commit()
    return World(deputy.id, deputy.station_id, user.id, deputy_openid)


def make_resident(openid: str | None, credits: int = 0, templates=RESIDENT_TEMPLATES) -> int:
    """A resident with ``credits`` subscription credits for each template; returns its id."""
    resident = Resident(openid=openid)
    db.session.add(resident)
    if openid and credits:
        give_credits(openid, credits, templates)
    db.session.commit()
    return resident.id


def give_credits(openid: str, credits: int, templates=RESIDENT_TEMPLATES) -> None:
    """Set ``openid``'s credits for ``templates`` (flushes)."""
    for template_id in templates:
        row = db.session.scalar(
            select(SubscriptionCredit).where(
                SubscriptionCredit.openid == openid, SubscriptionCredit.template_id == template_id
            )
        )
        if row is None:
            db.session.add(SubscriptionCredit(openid=openid, template_id=template_id, credits=credits))
        else:
            row.credits = credits
    db.session.flush()


def credits_of(openid: str, template_id: str) -> int:
    """The free credits of ``openid`` for ``template_id`` (0 when no row)."""
    value = db.session.scalar(
        select(SubscriptionCredit.credits).where(
            SubscriptionCredit.openid == openid, SubscriptionCredit.template_id == template_id
        )
    )
    db.session.rollback()
    return value or 0


def make_item(world: World, resident_id: int | None, body: str = "村口路灯坏了三个月，晚上出行很不方便。") -> int:
    """An item to the world's deputy; returns its id (no outbox rows)."""
    now = utcnow()
    item = Item(
        ref=new_ref(),
        access_key=new_access_key(),
        station_id=world.station_id,
        deputy_id=world.deputy_id,
        resident_id=resident_id,
        channel=ItemChannel.MINIPROGRAM,
        category=ItemCategory.URBAN,
        body=body,
        due_at=now + timedelta(days=2),
        created_at=now,
    )
    db.session.add(item)
    db.session.commit()
    return item.id


def queue(item_id: int, kind: str, *, resident_id: int | None = None, staff_user_id: int | None = None, **extra) -> int:
    """One pending outbox row; returns its id."""
    extra.setdefault("payload", {})
    row = OutboxMessage(kind=kind, item_id=item_id, resident_id=resident_id, staff_user_id=staff_user_id, **extra)
    db.session.add(row)
    db.session.commit()
    return row.id


def queue_many(rows: list[dict]) -> None:
    """Insert many pending outbox rows at once (each dict: kind, item_id, resident_id…)."""
    now = utcnow()
    values = [
        {
            "kind": r["kind"],
            "item_id": r.get("item_id"),
            "resident_id": r.get("resident_id"),
            "staff_user_id": r.get("staff_user_id"),
            "payload": r.get("payload", {}),
            "status": OutboxStatus.PENDING,
            "attempts": 0,
            "next_attempt_at": now,
            "last_error": "",
            "created_at": now,
        }
        for r in rows
    ]
    db.session.execute(insert(OutboxMessage), values)
    db.session.commit()


def row(message_id: int) -> OutboxMessage:
    """A fresh read of an outbox row (the session's cached copy is dropped)."""
    db.session.expire_all()
    message = db.session.get(OutboxMessage, message_id)
    db.session.expunge(message)  # keeps its loaded state: reading it opens no transaction
    db.session.rollback()
    return message


def statuses() -> dict[int, str]:
    """Every outbox row's status by id."""
    result = {i: s.value for i, s in db.session.execute(select(OutboxMessage.id, OutboxMessage.status))}
    db.session.rollback()
    return result


def make_templates_one_time(app) -> None:
    """Every configured template one-time: for the tests of one-time credit accounting (``app`` restores it)."""
    for template in app.config["WECHAT_TEMPLATES"].values():
        template["kind"] = "one_time"
