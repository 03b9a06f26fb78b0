"""Business operations on items. They flush; the request or job that calls them commits."""

from __future__ import annotations

import difflib
import hashlib
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from backend.errors import UserError
from backend.extensions import db
from backend.items import deadlines
from backend.items import photos as photo_intake
from backend.items.refs import new_access_key, new_ref
from backend.items.validation import clean_client_id, clean_mobile, clean_text, parse_bool
from backend.models import (
    ActorKind,
    Code,
    Deputy,
    DeputyStatus,
    Item,
    ItemCategory,
    ItemChannel,
    ItemEvent,
    ItemEventKind,
    ItemPhoto,
    OutboxMessage,
    Resident,
    StaffRole,
    StaffUser,
    Station,
    utcnow,
)
from backend.qr.codes import ResolvedCode, resolve_slug
from backend.stations.calendar import duty_assignment, today_in_china

DUTY_CHOICE = "duty"  # the resident lets the reception calendar choose (值班代表)
NEAR_DUPLICATE_RATIO = 0.9
NEAR_DUPLICATE_LOOKBACK = 20


@dataclass
class Submission:
    """What a resident sent, as received from the form or the API, before any check."""

    code: object
    body: object
    category: object = None
    deputy_choice: object = None  # a deputy id (station codes) or "duty"
    name: object = None
    phone: object = None
    consent: object = False
    client_id: object = None
    photos: list[bytes] = field(default_factory=list)
    channel: ItemChannel = ItemChannel.QR_H5
    resident: Resident | None = None
    address: str = ""


@dataclass(frozen=True)
class CleanMessage:
    """The checked text fields of a message, shared by the resident's form and the deputy's in-person entry."""

    body: str
    category: ItemCategory
    name: str
    phone: str
    consent: bool


@dataclass(frozen=True)
class SubmitResult:
    """The item, and whether this call created it (False for a repeated client_id)."""

    item: Item
    created: bool


def resolve_code_for_form(slug: object) -> ResolvedCode:
    """The code behind a slug, or a UserError: 404 for unknown or malformed, 410 for a replaced code."""
    resolved = resolve_slug(slug) if isinstance(slug, str) else None
    if resolved is None:
        raise UserError("unknown_code", "找不到这个二维码，请确认扫描的是码上联海报上的二维码。", 404, field="code")
    if resolved.is_retired:
        raise UserError(
            "code_replaced",
            "这个二维码已经更换，请扫描联络站或代表海报上的新二维码。",
            410,
            field="code",
        )
    return resolved


def choose_deputy(resolved: ResolvedCode, choice: object) -> Deputy | None:
    """Who receives the item: the code's deputy, or for a station the chosen or on-duty deputy."""
    if not resolved.routes_to_station:
        return resolved.deputy
    if choice in (None, "", DUTY_CHOICE):
        return duty_assignment(resolved.station, today_in_china()).deputy
    try:
        deputy_id = int(choice)
    except (TypeError, ValueError):
        raise UserError("invalid_deputy", "请选择本站的一位代表，或选择“值班代表”。", 400, field="deputy_id") from None
    deputy = db.session.get(Deputy, deputy_id)
    if deputy is None or deputy.station_id != resolved.station.id or deputy.status != DeputyStatus.SERVING:
        raise UserError("invalid_deputy", "请选择本站的一位在任代表，或选择“值班代表”。", 400, field="deputy_id")
    return deputy


def clean_category(value: object) -> ItemCategory:
    """The category the resident chose; "other" when none was given."""
    if value in (None, ""):
        return ItemCategory.OTHER
    try:
        return ItemCategory(value)
    except ValueError:
        raise UserError("invalid_category", "请选择一个有效的类别。", 400, field="category") from None


def body_fingerprint(body: str) -> str:
    """A fingerprint that ignores spacing, punctuation, width and case, for spotting repeats."""
    return hashlib.sha256(_normalized(body).encode()).hexdigest()


def _normalized(body: str) -> str:
    text = unicodedata.normalize("NFKC", body).lower()
    return re.sub(r"[\W_]+", "", text)


def clean_message(body: object, category: object, name: object, phone: object, consent: object) -> CleanMessage:
    """Check a message's text, category and contact fields; a name or number needs the resident's consent."""
    config = current_app.config
    body = clean_text(
        body,
        "body",
        "留言内容",
        max_chars=config["ITEM_BODY_MAX_CHARS"],
        min_chars=config["ITEM_BODY_MIN_CHARS"],
        required=True,
        multiline=True,
    )
    category = clean_category(category)
    name = clean_text(name, "name", "姓名", max_chars=20)
    phone = clean_mobile(phone)
    consent = parse_bool(consent)
    if (name or phone) and not consent:
        raise UserError(
            "consent_required", "留下姓名或手机号时，请勾选同意说明；也可以不留联系方式匿名提交。", 400, field="consent"
        )
    return CleanMessage(body=body, category=category, name=name, phone=phone, consent=consent)


def new_item(
    message: CleanMessage,
    *,
    station: Station,
    deputy: Deputy | None,
    channel: ItemChannel,
    now: datetime,
    code: Code | None = None,
    resident: Resident | None = None,
    client_id: str | None = None,
) -> Item:
    """A new, not yet stored item in status submitted, due to be accepted by the accept deadline."""
    has_contact = bool(message.name or message.phone)
    return Item(
        access_key=new_access_key(),
        client_id=client_id,
        station=station,
        deputy=deputy,
        code=code,
        resident=resident,
        channel=channel,
        category=message.category,
        body=message.body,
        contact_name=message.name,
        contact_phone=message.phone,
        consented_at=now if (message.consent and has_contact) else None,
        body_fingerprint=body_fingerprint(message.body),
        due_at=deadlines.accept_deadline(now),
        created_at=now,
        updated_at=now,
    )


def store_new_item(item: Item, client_id: str | None = None) -> Item:
    """Add and flush ``item`` under a fresh reference number, drawing again on a collision.

    Returns ``item``, or the item that already holds ``client_id`` when the same submission
    was stored at the same moment by another request.
    """
    for _attempt in range(3):
        item.ref = new_ref()
        try:
            with db.session.begin_nested():
                db.session.add(item)
                db.session.flush()
        except IntegrityError:
            if item in db.session:
                db.session.expunge(item)
            if client_id is not None:
                # The same submission arrived twice at once and the other request won.
                existing = db.session.scalar(select(Item).where(Item.client_id == client_id))
                if existing is not None:
                    return existing
            continue  # a reference number collision: draw another
        return item
    raise RuntimeError("could not store the item")


def submit_item(sub: Submission) -> SubmitResult:
    """Validate a resident's message and record it as an item with its first event, photos and outbox rows.

    A repeated ``client_id`` returns the first item instead of making a second, also when
    both requests arrive at once. Flushes; the caller commits.
    """
    config = current_app.config
    client_id = clean_client_id(sub.client_id)
    if client_id is not None:
        existing = db.session.scalar(select(Item).where(Item.client_id == client_id))
        if existing is not None:
            return SubmitResult(existing, created=False)

    resolved = resolve_code_for_form(sub.code)
    message = clean_message(sub.body, sub.category, sub.name, sub.phone, sub.consent)
    if len(sub.photos) > config["ITEM_MAX_PHOTOS"]:
        raise UserError("too_many_photos", f"最多上传{config['ITEM_MAX_PHOTOS']}张照片。", 400, field="photos")
    processed = [photo_intake.process_photo(data) for data in sub.photos]
    deputy = choose_deputy(resolved, sub.deputy_choice)

    from backend import throttle

    throttle.register_submission(sub.address, resolved.code.slug)

    now = utcnow()
    item = new_item(
        message,
        station=resolved.station,
        deputy=deputy,
        channel=sub.channel,
        now=now,
        code=resolved.code,
        resident=sub.resident,
        client_id=client_id,
    )
    item.events.append(
        ItemEvent(kind=ItemEventKind.SUBMITTED, actor_kind=ActorKind.RESIDENT, is_public=True, created_at=now)
    )
    for position, photo in enumerate(processed):
        item.photos.append(
            ItemPhoto(position=position, width=photo.width, height=photo.height, jpeg=photo.jpeg, sha256=photo.sha256)
        )
    _flag_near_duplicate(item)

    stored = store_new_item(item, client_id)
    if stored is not item:
        return SubmitResult(stored, created=False)

    _queue_submission_notices(item)
    return SubmitResult(item, created=True)


def _flag_near_duplicate(item: Item) -> None:
    """Keep near-identical messages to one deputy in a short time, but mark them for review."""
    since = item.created_at - timedelta(minutes=current_app.config["NEAR_DUPLICATE_MINUTES"])
    query = select(Item.ref, Item.body, Item.body_fingerprint).where(Item.created_at >= since)
    if item.deputy is not None:
        query = query.where(Item.deputy_id == item.deputy.id)
    else:
        query = query.where(Item.station_id == item.station.id, Item.deputy_id.is_(None))
    recent = db.session.execute(query.order_by(Item.id.desc()).limit(NEAR_DUPLICATE_LOOKBACK)).all()
    normalized = _normalized(item.body)
    for ref, body, fingerprint in recent:
        same = fingerprint == item.body_fingerprint
        if same or difflib.SequenceMatcher(None, normalized, _normalized(body)).ratio() >= NEAR_DUPLICATE_RATIO:
            item.needs_review = True
            item.review_reason = f"与 {ref} 内容高度相似"
            item.events.append(
                ItemEvent(
                    kind=ItemEventKind.FLAGGED,
                    actor_kind=ActorKind.SYSTEM,
                    is_public=False,
                    body=item.review_reason,
                    data={"similar_to": ref},
                    created_at=item.created_at,
                )
            )
            return


def _queue_submission_notices(item: Item) -> None:
    """Outbox rows for the people a new item concerns: the resident (received) and the deputy (new item)."""
    if item.resident is not None:
        db.session.add(OutboxMessage(kind="item_received", item_id=item.id, resident_id=item.resident.id))
    if item.deputy is not None:
        for user in deputy_staff_users(item.deputy.id):
            db.session.add(OutboxMessage(kind="deputy_new_item", item_id=item.id, staff_user_id=user.id))
    db.session.flush()


def deputy_staff_users(deputy_id: int) -> list[StaffUser]:
    """The active deputy accounts of a deputy: who is told when work reaches them."""
    return list(
        db.session.scalars(
            select(StaffUser)
            .where(
                StaffUser.deputy_id == deputy_id,
                StaffUser.role == StaffRole.DEPUTY,
                StaffUser.is_active.is_(True),
            )
            .order_by(StaffUser.id)
        )
    )


def find_item_for_resident(ref: object, key: object, address: str) -> Item | None:
    """The item with this reference when ``key`` is its access key; None otherwise (same answer either way).

    Guessing is throttled per address: misses are counted (and committed), and past the
    limit every look-up from the address answers 429 until the window ends.
    """
    from backend import throttle
    from backend.items.refs import keys_match, normalize_ref

    throttle.guard_lookup(address)
    normalized = normalize_ref(ref) if isinstance(ref, str) else None
    item = db.session.scalar(select(Item).where(Item.ref == normalized)) if normalized else None
    if item is None or not keys_match(key if isinstance(key, str) else None, item.access_key):
        throttle.register_failed_lookup(address)
        return None
    return item
