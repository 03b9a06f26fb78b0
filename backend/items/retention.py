"""Retention and erasure: what the consent text promises about a resident's personal data, kept by the system.

The form's consent says the name and number are deleted three years after the item is closed
(办结满三年后删除). Three things do it, each through :func:`_scrub` so that "what identifies a
resident" is written once:

- **Retention** (:func:`run_retention`; ``flask retention run``, and the outbox worker once a day):
  items closed more than ``RETENTION_DAYS`` ago (default 1,095) are anonymised. The contact
  name and number and the link to the resident's WeChat identity go; mobile numbers (and the
  contact's name) written inside the message, the events' texts, the resolution's reason and the
  forwards' texts are masked as the contact is masked elsewhere (``masking.mask_message``); the
  photos are deleted. What the figures read stays: status, dates, outcome, rating, category,
  channel, station, deputy. A private ``ANONYMISED`` event marks the item done, so a run is
  idempotent and the next one reads only what closed since.
- **Withdrawal** (:func:`withdraw_item`, the resident on the tracking page or the API): an item
  nobody has answered yet (submitted, or accepted with no answer, never forwarded, resolved or
  reopened) and in no submitted 代表建议 (a draft lets it go: ``proposals.membership``) is closed
  with its own status, ``withdrawn`` (已撤回). The simplest honest record: it
  stays counted as received and withdrawn (the dashboard shows 群众撤回 beside 不予受理 and 重复件),
  leaves the valid items behind every rate as declined and duplicate ones do, and moves from
  the deputy's to-do groups to the closed group. Its personal data go at once as retention
  would take them; the message's text stays, masked, for the record and for a review in progress.
- **Contact erasure** (:func:`erase_contact`, the resident, at any time later): the name, the
  number, the numbers written in the texts and the WeChat link (so notices stop; those still
  waiting in the outbox are skipped). The item goes on being handled.

Closed (``closed_statuses``) is every status that is not open (``ItemStatus.open_statuses()``). An
item's closing time is ``resolved_at`` for a resolved one, the time of its closing event for
the others (``_CLOSING_EVENTS``); an item reopened after a rating is open again and waits.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from flask import current_app
from sqlalchemy import and_, exists, or_, select, update
from sqlalchemy.orm import selectinload

from backend import database
from backend.audit import record_audit
from backend.errors import UserError
from backend.extensions import db
from backend.items.lifecycle import lock_row
from backend.items.masking import mask_message
from backend.items.photo_store import delete_item_photos
from backend.models import (
    ActorKind,
    AuditEntry,
    Item,
    ItemEvent,
    ItemEventKind,
    ItemForward,
    ItemReceipt,
    ItemStatus,
    OutboxMessage,
    OutboxStatus,
    utcnow,
)
from backend.proposals import membership
from backend.stations.calendar import today_in_china
from backend.supervision.stats import china_midnight

RUN_ACTION = "retention_run"  # the audit row of each run: as_of, cutoff, how many items

# How each closed status's closing time is known: resolved items by ``resolved_at``, the others by their event.
_CLOSING_EVENTS = {
    ItemStatus.DECLINED: ItemEventKind.DECLINED,
    ItemStatus.DUPLICATE: ItemEventKind.DUPLICATE,
    ItemStatus.WITHDRAWN: ItemEventKind.WITHDRAWN,
}


def closed_statuses() -> frozenset[ItemStatus]:
    """The statuses of a closed item: every status that is not open."""
    return frozenset(ItemStatus) - ItemStatus.open_statuses()


# A new closed status must say how its closing time is known before retention can take it.
assert closed_statuses() == {ItemStatus.RESOLVED, *_CLOSING_EVENTS}, "retention: closing time of a closed status"

WITHDRAWABLE = frozenset({ItemStatus.SUBMITTED, ItemStatus.ACCEPTED})


# --- what identifies a resident, removed in one place ---------------------------------------------


def _mask_data(data: dict, name: str) -> dict:
    return {key: mask_message(value, name) if isinstance(value, str) else value for key, value in (data or {}).items()}


def _scrub(item: Item, *, photos: bool) -> None:
    """Remove the resident's contact from ``item``: name, number, WeChat link (with the notices still waiting),
    the numbers and the name written in every text of it, the consent to publish it (公示); with ``photos``, the
    photos too. Flushes."""
    name = item.contact_name
    item.body = mask_message(item.body, name)
    item.outcome_reason = mask_message(item.outcome_reason, name)
    for event in item.events:
        event.body = mask_message(event.body, name)
        masked = _mask_data(event.data, name)
        if masked != event.data:
            event.data = masked
    for forward in db.session.scalars(select(ItemForward).where(ItemForward.item_id == item.id)):
        forward.instructions = mask_message(forward.instructions, name)
        forward.answer = mask_message(forward.answer, name)
    item.contact_name = ""
    item.contact_phone = ""
    # 公示: without the contact nobody can mask the resident's name in the texts any more, and the resident
    # who withdraws or erases has taken back what they gave: the item is never published again.
    item.publish_consented_at = None
    item.resident_id = None
    db.session.execute(
        update(ItemReceipt)
        .where(ItemReceipt.item_id == item.id, ItemReceipt.resident_id.is_not(None))
        .values(resident_id=None)
    )
    db.session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.item_id == item.id,
            OutboxMessage.resident_id.is_not(None),
            OutboxMessage.status.in_((OutboxStatus.PENDING, OutboxStatus.HELD)),
        )
        .values(status=OutboxStatus.SKIPPED, last_error="群众已删除联系方式，不再通知")
    )
    # No recipient left on any of the item's rows: a retry of a skipped or dead notice reaches nobody.
    db.session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.item_id == item.id, OutboxMessage.resident_id.is_not(None))
        .values(resident_id=None)
    )
    if photos:
        delete_item_photos(item.id)  # the rows now, the stored bytes once the transaction commits
        db.session.expire(item, ["photos"])
    db.session.flush()


def has_contact_traces(item: Item) -> bool:
    """True while ``item`` still holds something of the resident's contact: what erasure would remove."""
    if item.contact_name or item.contact_phone or item.resident_id is not None:
        return True
    return mask_message(item.body) != item.body


def may_withdraw(item: Item) -> bool:
    """True while nobody has answered ``item``: submitted, or accepted with no answer, forward, resolution or reopening."""
    return (
        item.status in WITHDRAWABLE
        and item.first_answered_at is None
        and item.resolved_at is None
        and item.reopen_count == 0
        and not item.awaits_claim
    )


# --- the resident's requests -------------------------------------------------------------------


def withdraw_refusal(item: Item) -> UserError | None:
    """Why ``item`` cannot be withdrawn now (409), or None: what the confirmation page and the request both check."""
    if item.status == ItemStatus.WITHDRAWN:
        return UserError("already_withdrawn", "这条留言已经撤回，无需再次撤回。", 409)
    if not may_withdraw(item):
        return UserError(
            "already_answered",
            "代表已经答复或办理这条留言，不能再撤回。如不希望再被联系，可以删除您的联系方式。",
            409,
        )
    return membership.withdraw_refusal(item)  # a submitted 建议 holds it (a draft lets it go: withdraw_item)


def erase_refusal(item: Item) -> UserError | None:
    """Why the contact of ``item`` cannot be erased now (409: nothing left to erase), or None."""
    if not has_contact_traces(item):
        return UserError("already_erased", "这条留言里已经没有您的联系方式，无需再删除。", 409)
    return None


def _resident_event(item: Item, kind: ItemEventKind, body: str, now: datetime, data: dict) -> ItemEvent:
    event = ItemEvent(kind=kind, actor_kind=ActorKind.RESIDENT, is_public=True, body=body, data=data, created_at=now)
    item.events.append(event)
    item.updated_at = now
    db.session.flush()
    return event


def withdraw_item(item: Item) -> ItemEvent:
    """The resident withdraws an item nobody has answered yet (see the module's docstring for what it keeps).

    The route has checked the access key and refused staff credentials. 409 ``already_withdrawn``
    for a second request, 409 ``already_answered`` once a deputy answered, forwarded or resolved it
    (erasing the contact is still possible then), 409 ``in_submitted_proposal`` once a 代表建议 holding it
    was submitted; nothing is written when refused. Writes the status, a public ``WITHDRAWN`` event
    (群众已撤回) and an audit row, takes the item out of the drafts that hold it
    (``proposals.membership``), and removes the personal data as retention would. Flushes; the caller commits.
    """
    lock_row(item)
    refusal = withdraw_refusal(item)
    if refusal is not None:
        raise refusal
    now = utcnow()
    before = item.status
    item.status = ItemStatus.WITHDRAWN
    item.paused_at = None
    event = _resident_event(
        item,
        ItemEventKind.WITHDRAWN,
        "留言已由提交人撤回，代表不再办理；姓名、手机号和照片已删除。",
        now,
        {"from": before.value},
    )
    membership.release_withdrawn_item(item)
    _scrub(item, photos=True)
    record_audit("item_withdrawn", object_type="item", object_id=item.id, data={"ref": item.ref, "from": before.value})
    return event


def erase_contact(item: Item) -> ItemEvent:
    """The resident erases their contact details from an item: name, number, numbers in the texts, WeChat link.

    For any status: the item goes on being handled, but nobody can call the resident back and no
    WeChat notice reaches them (the tracking page still shows every step). 409 ``already_erased``
    when nothing of the contact is left; nothing is written then. Writes a public
    ``CONTACT_ERASED`` event (群众已删除联系方式) and an audit row. Flushes; the caller commits.
    """
    lock_row(item)
    refusal = erase_refusal(item)
    if refusal is not None:
        raise refusal
    now = utcnow()
    _scrub(item, photos=False)
    event = _resident_event(
        item, ItemEventKind.CONTACT_ERASED, "姓名、手机号已删除，代表不能再联系您，微信也不再通知您。", now, {}
    )
    record_audit("item_contact_erased", object_type="item", object_id=item.id, data={"ref": item.ref})
    return event


# --- retention -----------------------------------------------------------------------------------


def retention_cutoff(as_of: date) -> datetime:
    """Items closed before this instant are past retention on ``as_of``: 00:00 (China) of ``as_of - RETENTION_DAYS``."""
    days = current_app.config["RETENTION_DAYS"]
    if not isinstance(days, int) or days < 1:
        raise UserError(
            "invalid_retention_days", f"RETENTION_DAYS 应为正整数（天），现在是 {days!r}；未做任何更改。", 400
        )
    return china_midnight(as_of - timedelta(days=days))


def due_for_anonymising(cutoff: datetime):
    """The SQL condition of items closed before ``cutoff`` and not anonymised yet."""
    closed_by_event = [
        and_(
            Item.status == status,
            exists().where(ItemEvent.item_id == Item.id, ItemEvent.kind == kind, ItemEvent.created_at < cutoff),
        )
        for status, kind in _CLOSING_EVENTS.items()
    ]
    done = exists().where(ItemEvent.item_id == Item.id, ItemEvent.kind == ItemEventKind.ANONYMISED)
    return and_(
        or_(and_(Item.status == ItemStatus.RESOLVED, Item.resolved_at < cutoff), *closed_by_event),
        ~done,
    )


def run_retention(as_of: date | None = None, *, by: str = "cli") -> int:
    """Anonymise every item closed more than ``RETENTION_DAYS`` before ``as_of`` (today in China by default).

    ``as_of`` after today is refused (400 ``as_of_in_future``, nothing written): running as on a
    later day would delete what the consent text still promises to keep. One run at a time across
    processes (``database.lock_until_commit``); one audit row per run with the count. Returns how
    many items were anonymised (0 when run again). Flushes; the caller commits.
    """
    today = today_in_china()
    as_of = as_of or today
    if as_of > today:
        raise UserError(
            "as_of_in_future",
            f"--as-of 的日期（{as_of.isoformat()}）晚于今天（{today.isoformat()}），不能提前删除群众的信息；未做任何更改。",
            400,
        )
    database.lock_until_commit(db.session.connection(), "retention")
    cutoff = retention_cutoff(as_of)
    items = db.session.scalars(
        select(Item).where(due_for_anonymising(cutoff)).order_by(Item.id).options(selectinload(Item.events))
    ).all()
    now = utcnow()
    for item in items:
        _scrub(item, photos=True)
        item.events.append(
            ItemEvent(
                kind=ItemEventKind.ANONYMISED,
                actor_kind=ActorKind.SYSTEM,
                is_public=False,
                body="已按保存期限删除群众的姓名、手机号和照片，文字中的手机号已隐去。",
                data={"as_of": as_of.isoformat()},
                created_at=now,
            )
        )
    db.session.flush()
    record_audit(
        RUN_ACTION,
        object_type="retention",
        object_id=as_of.isoformat(),
        data={"as_of": as_of.isoformat(), "cutoff": cutoff.isoformat(), "anonymised": len(items), "by": by},
    )
    return len(items)


def ran_on(day: date) -> bool:
    """True when a retention run as of ``day`` was recorded (by the worker or by hand) on that day."""
    entries = db.session.scalars(
        select(AuditEntry).where(AuditEntry.action == RUN_ACTION, AuditEntry.created_at >= china_midnight(day))
    )
    return any(entry.data.get("as_of") == day.isoformat() for entry in entries)


def run_daily(now: datetime | None = None) -> int | None:
    """The worker's daily run: retention as of today, unless a run as of today is already recorded.

    Takes the retention lock first, so two workers checking at once run it once. Returns the
    count, or None when today's run was already done. Flushes; the caller commits.
    """
    database.lock_until_commit(db.session.connection(), "retention")
    today = today_in_china(now)
    if ran_on(today):
        return None
    return run_retention(today, by="worker")
