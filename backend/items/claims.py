"""Items a deputy enters in person (代表接待选民), their receipts (回执), and the resident's claim (认领).

被满意 — staff recording satisfaction in a resident's name — is closed here for the one kind of
item staff create themselves:

- the deputy never sees such an item's access key: it is stored with none (``access_key = ""``,
  which no key matches, ``refs.keys_match``), so nobody can look it up or rate it;
- the deputy gives the resident a receipt instead: a one-time claim link, printed on a slip and
  shown as a QR code on the deputy's phone (``ItemReceipt``, only the token's SHA-256 stored);
- the resident opens it on their own phone and claims the item: a fresh access key is made and
  shown only there (the tracking page), and the resident's WeChat identity (the H5 OAuth's,
  ``wechat.identity.session_resident``) is bound when the browser has one;
- an unclaimed item cannot be rated (``lifecycle.rate_item``), and the claim page and the rating
  endpoints refuse a browser or an app carrying any staff credential (``auth.sessions.staff_in_request``);
- the deputy may issue a new receipt while the item is unclaimed; the earlier one stops working.

What this cannot stop: a deputy who opens the receipt's link on a device with no staff login.
The claim is one-time, so the resident then finds their receipt used — the page says when and
whom to tell — and every claim is audited with its address. The figures keep in-person items'
satisfaction apart from residents' own items (``supervision.stats``).

Operations flush; the request commits.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update

from backend.access import can_see_item
from backend.audit import record_audit
from backend.errors import UserError
from backend.extensions import db
from backend.items import operations
from backend.items.lifecycle import add_private_note, lock_row
from backend.items.refs import new_access_key
from backend.items.validation import clean_text
from backend.models import (
    ActorKind,
    DeputyStatus,
    Item,
    ItemChannel,
    ItemEvent,
    ItemEventKind,
    ItemReceipt,
    Resident,
    StaffRole,
    StaffUser,
    utcnow,
)

CHANNEL_NOTE_MAX_CHARS = 200
RECEIPT_TOKEN_BYTES = 16  # 128 random bits
TOKEN_MAX_CHARS = 64
VOID_KEY = ""  # an in-person item's access key until it is claimed: matches nothing


def hash_receipt_token(token: str) -> str:
    """The SHA-256 hex digest under which a receipt's claim token is stored."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _issue_receipt(item: Item, actor: StaffUser, now: datetime) -> tuple[ItemReceipt, str]:
    token = secrets.token_urlsafe(RECEIPT_TOKEN_BYTES)
    receipt = ItemReceipt(item_id=item.id, token_hash=hash_receipt_token(token), issued_by_id=actor.id, created_at=now)
    db.session.add(receipt)
    db.session.flush()
    return receipt, token


def in_person_item(actor: StaffUser, *, body, category, name, phone, consent, channel_note) -> tuple[Item, str]:
    """Record an item a serving deputy received in person (代表接待选民), and its first receipt's claim token.

    The message is checked exactly as a resident's form is (``operations.clean_message``); the
    item goes to the deputy, at their station, in status submitted with the usual accept
    deadline, with no access key (the resident's claim makes one). The first event says the
    deputy entered it. Flushes; the caller commits and hands the resident the receipt.
    """
    deputy = actor.deputy if actor is not None and actor.role == StaffRole.DEPUTY and actor.is_active else None
    if deputy is None or deputy.status != DeputyStatus.SERVING:
        raise UserError("action_not_permitted", "只有在任代表本人可以录入接待选民时收到的意见。", 403)
    message = operations.clean_message(body, category, name, phone, consent)
    note = clean_text(channel_note, "channel_note", "接待情况说明", max_chars=CHANNEL_NOTE_MAX_CHARS)

    now = utcnow()
    item = operations.new_item(message, station=deputy.station, deputy=deputy, channel=ItemChannel.IN_PERSON, now=now)
    item.access_key = VOID_KEY
    item.events.append(
        ItemEvent(
            kind=ItemEventKind.SUBMITTED,
            actor_kind=ActorKind.STAFF,
            actor_user_id=actor.id,
            is_public=True,
            body="代表接待时记录的意见。",
            data={"entered_by": "deputy", "entered_by_user_id": actor.id, "channel_note": note},
            created_at=now,
        )
    )
    operations.store_new_item(item)
    receipt, token = _issue_receipt(item, actor, now)
    record_audit(
        "item_entered_in_person",
        user=actor,
        object_type="item",
        object_id=item.id,
        data={"ref": item.ref, "deputy_id": deputy.id, "receipt_id": receipt.id},
    )
    return item, token


def reissue_receipt(item: Item, actor: StaffUser) -> str:
    """A new receipt for an unclaimed in-person item (the resident lost theirs, or it was never printed).

    Every earlier receipt of the item stops working. For the item's deputy and the station's
    administrators (404 for anyone else, as for an unknown item); 409 for an item not entered in
    person or already claimed. Writes a private note and an audit row; flushes, the caller
    commits. Returns the new claim token (shown once: only its hash is stored).
    """
    if not can_see_item(actor, item) or actor.role not in (StaffRole.DEPUTY, StaffRole.STATION_ADMIN):
        raise UserError("unknown_item", "找不到该留言，请核对编号。", 404)
    lock_row(item)  # one after the other with a claim of the same item
    if item.channel != ItemChannel.IN_PERSON:
        raise UserError("not_in_person", "只有代表接待时录入的意见需要回执；群众自己提交的留言已有查询码。", 409)
    if item.claimed_at is not None:
        raise UserError("already_claimed", "群众已经用本人手机认领了这件意见，不能再出具回执。", 409)
    now = utcnow()
    voided = db.session.execute(
        update(ItemReceipt)
        .where(ItemReceipt.item_id == item.id, ItemReceipt.voided_at.is_(None), ItemReceipt.claimed_at.is_(None))
        .values(voided_at=now)
    ).rowcount
    receipt, token = _issue_receipt(item, actor, now)
    add_private_note(
        item, actor, now, "重新出具回执，原回执作废。", {"action": "reissue_receipt", "receipt_id": receipt.id}
    )
    record_audit(
        "receipt_reissued",
        user=actor,
        object_type="item",
        object_id=item.id,
        data={"ref": item.ref, "receipt_id": receipt.id, "voided": voided},
    )
    return token


@dataclass(frozen=True)
class ReceiptLookup:
    """What a claim token opens: ``state`` "live", "used", "voided" or "unknown", with the receipt and its item."""

    state: str
    receipt: ItemReceipt | None = None
    item: Item | None = None


def open_receipt(token: object) -> ReceiptLookup:
    """The receipt behind a claim token and whether it can still be used."""
    if not isinstance(token, str) or not 16 <= len(token) <= TOKEN_MAX_CHARS:
        return ReceiptLookup("unknown")
    receipt = db.session.scalar(select(ItemReceipt).where(ItemReceipt.token_hash == hash_receipt_token(token)))
    if receipt is None:
        return ReceiptLookup("unknown")
    item = db.session.get(Item, receipt.item_id)
    if receipt.claimed_at is not None:
        return ReceiptLookup("used", receipt, item)
    if receipt.voided_at is not None or item.claimed_at is not None:
        return ReceiptLookup("voided", receipt, item)
    return ReceiptLookup("live", receipt, item)


def receipt_refusal(lookup: ReceiptLookup) -> UserError:
    """Why a receipt that is not live cannot be used, in the words the resident's page shows."""
    if lookup.state == "used":
        return UserError(
            "receipt_used",
            "这张回执已经被认领过，不能再次认领。如果不是您本人认领的，请联系接待您的代表或联络站。",
            409,
        )
    if lookup.state == "voided":
        return UserError(
            "receipt_voided", "这张回执已作废（代表已重新出具回执）。请使用最新的回执，或联系接待您的代表。", 410
        )
    return UserError("unknown_receipt", "找不到这张回执，请确认扫描的是代表给您的回执上的二维码。", 404)


def claim_item(token: object, resident: Resident | None) -> tuple[Item, str]:
    """The resident claims an in-person item with a receipt's token: returns the item and its new access key.

    Once per receipt, also when two phones claim at once (the receipt is spent by one guarded
    UPDATE). Binds ``resident`` (the WeChat identity of the claiming browser, if any) to the item
    when it has none. Writes the public CLAIMED event and an audit row; flushes, the caller commits.
    Refuses with ``receipt_refusal`` (404 unknown, 409 used, 410 voided) and writes nothing.
    """
    lookup = open_receipt(token)
    if lookup.state != "live":
        raise receipt_refusal(lookup)
    item = lookup.item
    lock_row(item)
    now = utcnow()
    spent = db.session.execute(
        update(ItemReceipt)
        .where(ItemReceipt.id == lookup.receipt.id, ItemReceipt.claimed_at.is_(None), ItemReceipt.voided_at.is_(None))
        .values(claimed_at=now, resident_id=resident.id if resident is not None else None)
    ).rowcount
    if spent != 1 or item.claimed_at is not None:
        db.session.rollback()
        raise receipt_refusal(open_receipt(token))
    key = new_access_key()
    item.access_key = key
    item.claimed_at = now
    item.updated_at = now
    bound = resident is not None and item.resident_id is None
    if bound:
        item.resident_id = resident.id
    item.events.append(
        ItemEvent(
            kind=ItemEventKind.CLAIMED,
            actor_kind=ActorKind.RESIDENT,
            is_public=True,
            body="已用群众本人的手机认领，此后凭本人手机上的查询链接查看进展、评价办理结果。",
            data={"receipt_id": lookup.receipt.id, "wechat": bound},
            created_at=now,
        )
    )
    db.session.flush()
    record_audit(
        "item_claimed",
        object_type="item",
        object_id=item.id,
        data={"ref": item.ref, "receipt_id": lookup.receipt.id, "wechat_bound": bound},
    )
    return item, key


@dataclass(frozen=True)
class ReceiptSummary:
    """An in-person item's receipts as its page shows them: how many were issued, the latest, and the claim."""

    issued: int
    last_issued_at: datetime | None
    claimed_at: datetime | None


def receipt_summary(item: Item) -> ReceiptSummary | None:
    """The receipts of an in-person item (None for other items)."""
    if item.channel != ItemChannel.IN_PERSON:
        return None
    issued, last = db.session.execute(
        select(func.count(), func.max(ItemReceipt.created_at)).where(ItemReceipt.item_id == item.id)
    ).one()
    return ReceiptSummary(issued=issued, last_issued_at=last, claimed_at=item.claimed_at)
