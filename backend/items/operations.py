"""Business operations on items. They flush; the request or job that calls them commits."""

from __future__ import annotations

import difflib
import functools
import hashlib
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import bindparam, exists, func, insert, select, true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from backend import database, throttle
from backend.audit import record_audit
from backend.errors import FieldErrors, UserError
from backend.errors import checked as _checked
from backend.extensions import db
from backend.items import deadlines, photo_store
from backend.items import photos as photo_intake
from backend.items.refs import keys_match, new_access_key, new_ref, normalize_ref, tracking_url
from backend.items.validation import clean_client_id, clean_id, clean_mobile, clean_text, parse_bool
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
    ItemStatus,
    OutboxMessage,
    ReceptionRule,
    Resident,
    StaffUser,
    Station,
    Topic,
    utcnow,
)
from backend.models.base import UTCDateTime
from backend.outbox import queue as notices
from backend.outbox.notifications import is_received_notice_sent
from backend.qr.codes import SLUG_RE, ResolvedCode, resolve_slug
from backend.stations import topics
from backend.stations.calendar import duty_assignment, today_in_china
from backend.wechat.screening import is_held, screen_message

DEPUTY_NEW_ITEM = "deputy_new_item"
DUTY_CHOICE = "duty"  # the resident lets the reception calendar choose (值班代表)
NEAR_DUPLICATE_RATIO = 0.9
NEAR_DUPLICATE_LOOKBACK = 10  # copies of a campaign arrive together: the last ten are enough
# A difflib ratio of 0.9 leaves at most ~10% of characters changed, and each changed character
# breaks at most two bigrams: such pairs keep a bigram Jaccard index well above 0.5.
BIGRAM_PREFILTER = 0.5


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
    publish_consent: object = False  # 公示: the resident agrees that the resolved item may be published, anonymised
    channel: ItemChannel = ItemChannel.QR_H5
    resident: Resident | None = None
    address: str = ""
    topic_choice: object = None  # a topic code's form: the choice picked (backend.stations.topics)


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
    """The stored item's identity, its tracking page (``refs.tracking_url``), and whether this call created it
    (False for a repeated client_id)."""

    item_id: int
    ref: str
    access_key: str
    status: ItemStatus
    created: bool
    track_url: str


def resolve_code_for_form(slug: object) -> ResolvedCode:
    """The code behind a slug, or a UserError: 404 for unknown or malformed, 410 for a replaced code, a closed
    station, or a topic past its closing day."""
    resolved = resolve_slug(slug) if isinstance(slug, str) else None
    if resolved is None:
        raise _unknown_code()
    if resolved.is_retired:
        raise _code_replaced()
    if not resolved.station.is_active:
        raise station_closed()
    if resolved.topic is not None and resolved.topic.is_closed(utcnow()):
        raise topics.topic_closed(resolved.topic.title)
    return resolved


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
    """Check a message's text, category and contact fields; a name or number needs the resident's consent.

    Every field is checked before anything is refused (``FieldErrors``), so a form shows all its
    problems at once rather than one per attempt.
    """
    config = current_app.config
    errors: list[UserError] = []
    body = _checked(
        errors,
        lambda: clean_text(
            body,
            "body",
            "留言内容",
            max_chars=config["ITEM_BODY_MAX_CHARS"],
            min_chars=config["ITEM_BODY_MIN_CHARS"],
            required=True,
            multiline=True,
        ),
    )
    category = _checked(errors, lambda: clean_category(category))
    clean_name = _checked(errors, lambda: clean_text(name, "name", "姓名", max_chars=20))
    clean_phone = _checked(errors, lambda: clean_mobile(phone))
    consent = parse_bool(consent)
    # A refused name or number was still given: it asks for the consent all the same.
    gave_contact = any(
        cleaned or (cleaned is None and isinstance(raw, str) and raw.strip())
        for cleaned, raw in ((clean_name, name), (clean_phone, phone))
    )
    if gave_contact and not consent:
        errors.append(
            UserError(
                "consent_required",
                "留下姓名或手机号时，请勾选同意说明；也可以不留联系方式匿名提交。",
                400,
                field="consent",
            )
        )
    if errors:
        raise FieldErrors(errors)
    return CleanMessage(body=body, category=category, name=clean_name, phone=clean_phone, consent=consent)


def new_item_values(
    message: CleanMessage,
    *,
    station_id: int,
    deputy_id: int | None,
    channel: ItemChannel,
    now: datetime,
    code_id: int | None = None,
    resident_id: int | None = None,
    client_id: str | None = None,
) -> dict:
    """A new item's columns (all but ``ref``): status submitted, due to be accepted by the accept deadline.

    The one place that knows an item's initial values, for the resident's submission (Core,
    ``submit_item``) and the deputy's in-person entry (ORM, ``new_item``).
    """
    has_contact = bool(message.name or message.phone)
    return {
        "access_key": new_access_key(),
        "client_id": client_id,
        "station_id": station_id,
        "deputy_id": deputy_id,
        "code_id": code_id,
        "resident_id": resident_id,
        "channel": channel,
        "category": message.category,
        "body": message.body,
        "contact_name": message.name,
        "contact_phone": message.phone,
        "consented_at": now if (message.consent and has_contact) else None,
        "status": ItemStatus.SUBMITTED,
        "body_fingerprint": body_fingerprint(message.body),
        "due_at": deadlines.accept_deadline(now),
        "created_at": now,
        "updated_at": now,
    }


def new_item(message: CleanMessage, *, station: Station, deputy: Deputy | None, channel: ItemChannel, now) -> Item:
    """A new, not yet stored item (``new_item_values``) for ``deputy`` at ``station``."""
    values = new_item_values(
        message, station_id=station.id, deputy_id=deputy.id if deputy else None, channel=channel, now=now
    )
    return Item(**values)


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

    One path for every engine, in three steps, so that nothing slow runs while SQLite's write
    lock is held (``backend.database``):

    1. the checks that need no database, then the reads, in a read transaction: the code, an
       earlier item with the same ``client_id`` (``_first_submission``: the first item again, or
       409), the throttle's counters when slow work follows (429 before any photo is decoded or
       WeChat asked) and the deputy's latest items (the near-duplicate mark);
    2. with no transaction open: the photos decoded (``photos.process_photo``, a few at a time
       per process) and WeChat's content check;
    3. the writes: the throttle counted and checked again (429), then the item under a fresh
       reference, its events, photos and outbox rows. A concurrent request that stored the same
       ``client_id`` first is found by the insert's ON CONFLICT and answered as in step 1.
       Nothing else runs between the first write and the request's commit but the answer itself:
       on SQLite the write lock is held throughout, and how long it is held (a writer descheduled
       in it included) is what bounds the submissions a second (``bench/README.md``). So the
       answer's tracking address is built before it, for the reference drawn.

    PostgreSQL once had a second path (one statement of data-modifying CTEs, the throttle counted
    inside it). This one meets the submission targets there (``bench/README.md``: throughput 0.52
    and 0.64 of a bare insert), so nothing measured asks for a second. Flushes nothing through the
    ORM; the caller commits.
    """
    config = current_app.config
    client_id = clean_client_id(sub.client_id)
    errors: list[UserError] = []
    message = _checked(errors, lambda: clean_message(sub.body, sub.category, sub.name, sub.phone, sub.consent))
    if len(sub.photos) > config["ITEM_MAX_PHOTOS"]:
        errors.append(UserError("too_many_photos", f"最多上传{config['ITEM_MAX_PHOTOS']}张照片。", 400, field="photos"))
    else:
        for data in sub.photos:
            _checked(errors, lambda data=data: photo_intake.check_photo_size(data))
    if errors:
        raise FieldErrors(errors)
    now = utcnow()
    fingerprint = body_fingerprint(message.body)
    minutes = config["NEAR_DUPLICATE_MINUTES"]
    if not isinstance(sub.code, str) or not SLUG_RE.match(sub.code):
        raise _unknown_code()
    with database.reading():
        conn = db.session.connection()  # Core on the hot path: the ORM's own execution costs more than the queries
        target = conn.execute(_TARGET, {"slug": sub.code, "client_id": client_id}).first()
        if target is None:
            raise _unknown_code()
        if target.earlier_id is not None:
            return _first_submission(target, target.code_id, fingerprint)
        if target.retired_at is not None:
            raise _code_replaced()
        if not target.station_active:
            raise station_closed()
        topic_choice = None
        if target.topic_id is not None:  # a topic's messages go to the station, not to a deputy
            topic = conn.execute(_TOPIC, {"topic_id": target.topic_id}).one()
            if now >= topic.closes_at:
                raise topics.topic_closed(topic.title)
            topic_choice = topics.clean_choice(topic.choices, sub.topic_choice)
            deputy_id = None
        elif target.deputy_id is not None and target.deputy_status == DeputyStatus.SERVING:
            deputy_id = target.deputy_id
        else:  # a station's code, or a former deputy's: the station's deputy chosen, or the one on duty
            deputy_id = _station_deputy_id(conn, target.station_id, sub.deputy_choice)
        station_id, code_id, slug = target.station_id, target.code_id, sub.code
        if sub.photos or sub.resident is not None:  # slow work ahead (decoding, WeChat's check): refuse first
            throttle.check_submission(sub.address, slug)
        similar_ref = None
        if minutes > 0:
            since = now - timedelta(minutes=minutes)
            similar_ref = _similar_recent_ref(conn, message.body, fingerprint, station_id, deputy_id, since)

    photos = [photo_intake.process_photo(data) for data in sub.photos]

    screening, screening_label = screen_message(sub.resident, message.body)
    held = is_held(screening)
    resident_id = sub.resident.id if sub.resident is not None else None
    values = new_item_values(
        message,
        station_id=station_id,
        deputy_id=deputy_id,
        channel=sub.channel,
        now=now,
        code_id=code_id,
        resident_id=resident_id,
        client_id=client_id,
    )
    values.update(
        publish_consented_at=now if parse_bool(sub.publish_consent) else None,
        screening=screening,
        screening_label=screening_label,
        is_held=held,
        needs_review=similar_ref is not None,
        review_reason=f"与 {similar_ref} 内容高度相似" if similar_ref else "",
    )
    submitted_data = {}
    if topic_choice:  # at the head of the message for whoever reads it; in the event for the topic's counts
        values["body"] = f"【{topic_choice}】{values['body']}"
        submitted_data = {"topic_choice": topic_choice}
    events = [_event_row(ItemEventKind.SUBMITTED, ActorKind.RESIDENT, True, "", submitted_data, now)]
    if similar_ref:
        events.append(
            _event_row(
                ItemEventKind.FLAGGED,
                ActorKind.SYSTEM,
                False,
                values["review_reason"],
                {"similar_to": similar_ref},
                now,
            )
        )

    values["ref"] = new_ref()
    track_url = tracking_url(values["ref"], values["access_key"])
    # Written before the write transaction (no lock held while a bucket answers); removed again if it
    # does not commit (backend.items.photo_store).
    photo_rows = photo_store.store_photos(photos)

    throttle.register_submission(sub.address, slug)  # the first write: the write transaction begins here
    conn = db.session.connection()
    item_id = None
    for _attempt in range(3):
        # No row back: a unique key is taken, the client_id (a concurrent request stored this
        # submission first) or, rarely, the reference number (drawn again).
        item_id = conn.execute(_insert_item(conn.dialect.name), values).scalar()
        if item_id is not None:
            break
        earlier = conn.execute(_EARLIER_BY_CLIENT_ID, {"client_id": client_id}).first() if client_id else None
        if earlier is not None:
            photo_store.discard(photo_rows)  # the earlier submission keeps its own photos
            return _first_submission(earlier, code_id, fingerprint)
        values["ref"] = new_ref()
        track_url = tracking_url(values["ref"], values["access_key"])
    if item_id is None:
        raise RuntimeError("could not store the item")
    rows = [event | {"item_id": item_id} for event in events]
    conn.execute(_INSERT_EVENT, rows[0] if len(rows) == 1 else rows)
    if photo_rows:
        conn.execute(_INSERT_PHOTO, [row | {"item_id": item_id} for row in photo_rows])
    # A held item reaches its handlers when a station administrator releases it (wechat/screening.py). The
    # resident is told "已提交" only with a long-term progress template: the outbox's writer leaves that to us.
    told = resident_id if resident_id is not None and is_received_notice_sent() else None
    notices.queue_new_item_notices(conn, item_id, told, deputy_id, now, station_id=station_id, held=held)
    return SubmitResult(item_id, values["ref"], values["access_key"], ItemStatus.SUBMITTED, True, track_url)


_items = Item.__table__
_INSERT_EVENT = insert(ItemEvent)
_INSERT_PHOTO = insert(ItemPhoto)
_EARLIER_BY_CLIENT_ID = select(
    Item.id.label("earlier_id"),
    Item.ref,
    Item.access_key,
    Item.status,
    Item.code_id.label("earlier_code_id"),
    Item.body_fingerprint,
).where(Item.client_id == bindparam("client_id"))
_code_deputy = aliased(Deputy)
_code_station = aliased(Station)
_target_station = aliased(Station)
_earlier = _EARLIER_BY_CLIENT_ID.subquery()
# Where a code leads: its deputy's station, or its station, or the station that one was merged into.
_TARGET_STATION_ID = func.coalesce(_code_deputy.station_id, _code_station.merged_into_id, Code.station_id)
# One round trip: the code, where it leads (and whether that station is open), its deputy's status, and
# an earlier item with the same client_id.
_TARGET = (
    select(
        Code.id.label("code_id"),
        Code.retired_at,
        Code.deputy_id,
        Code.topic_id,
        _code_deputy.status.label("deputy_status"),
        _TARGET_STATION_ID.label("station_id"),
        _target_station.is_active.label("station_active"),
        *_earlier.c,
    )
    .outerjoin(_code_deputy, _code_deputy.id == Code.deputy_id)
    .outerjoin(_code_station, _code_station.id == Code.station_id)
    .join(_target_station, _target_station.id == _TARGET_STATION_ID)
    .outerjoin(_earlier, true())
    .where(Code.slug == bindparam("slug"))
)


_TOPIC = select(Topic.title, Topic.choices, Topic.closes_at).where(Topic.id == bindparam("topic_id"))


@functools.cache
def _insert_item(dialect: str):
    return database.dialect_insert(_items, dialect).on_conflict_do_nothing().returning(_items.c.id)


def _first_submission(earlier, code_id: int, fingerprint: str) -> SubmitResult:
    """The item stored under a repeated ``client_id``, when this is the same message to the same code (a retry);
    409 ``client_id_reused`` otherwise, and nothing is written: a second message is never taken for the first."""
    if earlier.earlier_code_id != code_id or earlier.body_fingerprint != fingerprint:
        raise UserError(
            "client_id_reused",
            "这条留言和之前提交的另一条留言用了同一个提交编号，没有保存。请再提交一次。",
            409,
            field="client_id",
        )
    track_url = tracking_url(earlier.ref, earlier.access_key)
    return SubmitResult(earlier.earlier_id, earlier.ref, earlier.access_key, earlier.status, False, track_url)


def _station_deputy_id(conn, station_id: int, choice: object) -> int | None:
    """Who receives a message sent through a station's code: the chosen serving deputy, or the one on duty.

    Core queries on the hot path; the reception calendar reads light copies of the rows.
    """
    if choice in (None, "", DUTY_CHOICE):
        deputy = duty_assignment(_DutyStation(conn, station_id), today_in_china()).deputy
        return deputy.id if deputy is not None else None
    deputy_id = clean_id(choice, "deputy_id", "请选择本站的一位代表，或选择“值班代表”。", code="invalid_deputy")
    row = conn.execute(_DEPUTY_PLACE, {"deputy_id": deputy_id}).first()
    if row is None or row.station_id != station_id or row.status != DeputyStatus.SERVING:
        raise UserError("invalid_deputy", "请选择本站的一位在任代表，或选择“值班代表”。", 400, field="deputy_id")
    return deputy_id


@dataclass(frozen=True)
class _DutyDeputy:
    """The columns of a deputy that the reception calendar reads (``backend.stations.calendar``)."""

    id: int
    name: str
    status: DeputyStatus
    station_id: int | None

    @property
    def is_serving(self) -> bool:
        """True while the deputy is in office."""
        return self.status == DeputyStatus.SERVING


@dataclass(frozen=True)
class _DutyRule:
    kind: str
    day: int
    deputy: _DutyDeputy | None


class _DutyStation:
    """A station as the reception calendar reads it, from one Core query (its deputies only if asked)."""

    def __init__(self, conn, station_id: int):
        self.id = station_id
        self._conn = conn
        self.reception_rules = [
            _DutyRule(kind, day, _DutyDeputy(*deputy) if deputy[0] is not None else None)
            for kind, day, *deputy in conn.execute(_STATION_RULES, {"station_id": station_id})
        ]

    @functools.cached_property
    def deputies(self) -> list[_DutyDeputy]:
        """The station's deputies (the calendar's last resort when no rule names anyone)."""
        return [_DutyDeputy(*row) for row in self._conn.execute(_STATION_DEPUTIES, {"station_id": self.id})]


_DEPUTY_COLUMNS = (Deputy.id, Deputy.name, Deputy.status, Deputy.station_id)
_STATION_RULES = (
    select(ReceptionRule.kind, ReceptionRule.day, *_DEPUTY_COLUMNS)
    .outerjoin(Deputy, Deputy.id == ReceptionRule.deputy_id)
    .where(ReceptionRule.station_id == bindparam("station_id"))
    .order_by(ReceptionRule.id)
)
_DEPUTY_PLACE = select(Deputy.station_id, Deputy.status).where(Deputy.id == bindparam("deputy_id"))
_STATION_DEPUTIES = select(*_DEPUTY_COLUMNS).where(Deputy.station_id == bindparam("station_id")).order_by(Deputy.id)


def _unknown_code() -> UserError:
    return UserError("unknown_code", "找不到这个二维码，请确认扫描的是码上联海报上的二维码。", 404, field="code")


def station_closed() -> UserError:
    """The answer to a code of a station that was closed (its deputies moved, nobody reads it now)."""
    return UserError(
        "station_closed", "这个联络站已经撤销，不再接收留言。请在“码上找代表”中找到您所在地的代表。", 410, field="code"
    )


def _code_replaced() -> UserError:
    return UserError("code_replaced", "这个二维码已经更换，请扫描联络站或代表海报上的新二维码。", 410, field="code")


# The near-duplicate check's rows: the latest items to a deputy (or to a station, for nobody in particular).
_RECENT = (
    select(Item.ref, Item.body_fingerprint, Item.body)
    .where(Item.created_at >= bindparam("since", type_=UTCDateTime))
    .order_by(Item.created_at.desc())
    .limit(NEAR_DUPLICATE_LOOKBACK)
)
_RECENT_TO_DEPUTY = _RECENT.where(Item.deputy_id == bindparam("deputy_id"))
_RECENT_TO_STATION = _RECENT.where(Item.station_id == bindparam("station_id"), Item.deputy_id.is_(None))


def _similar_recent_ref(
    conn, body: str, fingerprint: str, station_id: int, deputy_id: int | None, since: datetime
) -> str | None:
    """The reference of a near-identical message to the same deputy (or station) since ``since``, if any.

    Kept, not rejected: the item is marked for review. The comparison is cheap first (same
    fingerprint, then lengths, then shared character pairs) and exact last (difflib).
    """
    if deputy_id is not None:
        recent = conn.execute(_RECENT_TO_DEPUTY, {"deputy_id": deputy_id, "since": since})
    else:
        recent = conn.execute(_RECENT_TO_STATION, {"station_id": station_id, "since": since})
    normalized = _normalized(body)
    bigrams = None
    matcher = None
    for ref, other_fingerprint, other in recent:
        if other_fingerprint == fingerprint:
            return ref
        other_normalized = _normalized(other)
        # difflib's ratio is at most 2·min/(a+b) of the two lengths: most texts end here.
        shorter, longer = sorted((len(normalized), len(other_normalized)))
        if 2 * shorter < NEAR_DUPLICATE_RATIO * (shorter + longer):
            continue
        # Two texts with a ratio ≥ 0.9 share most character pairs: a set intersection rules
        # most of the rest out before the (quadratic) exact comparison.
        if bigrams is None:
            bigrams = _bigrams(normalized)
        other_bigrams = _bigrams(other_normalized)
        union = len(bigrams | other_bigrams)
        if not union or len(bigrams & other_bigrams) / union < BIGRAM_PREFILTER:
            continue
        if matcher is None:
            matcher = difflib.SequenceMatcher(None, autojunk=False)
            matcher.set_seq2(normalized)
        matcher.set_seq1(other_normalized)
        if matcher.ratio() >= NEAR_DUPLICATE_RATIO:
            return ref
    return None


def _bigrams(text: str) -> set[str]:
    return {text[i : i + 2] for i in range(len(text) - 1)} or {text}


def _event_row(kind, actor_kind, is_public, body, data, now) -> dict:
    return {
        "kind": kind,
        "actor_kind": actor_kind,
        "actor_user_id": None,
        "is_public": is_public,
        "body": body,
        "data": data,
        "created_at": now,
    }


def deputy_staff_users(deputy_id: int) -> list[StaffUser]:
    """The active deputy accounts of a deputy: who is told when work reaches them."""
    return list(
        db.session.scalars(
            select(StaffUser)
            .where(
                *StaffUser.accounts_of_deputy(deputy_id),
            )
            .order_by(StaffUser.id)
        )
    )


def release_held_item(item: Item, reviewer: StaffUser) -> None:
    """Let a held item into its handlers' inbox: no longer held, its deputy (or station's administrators) told, an audit
    row (flushes).

    The item is never deleted. Its first deadline (to accept) starts again now, since the
    deputy could not see it while it was held; the deputy's "new item" notice is queued
    unless one was queued already.
    """
    now = utcnow()
    item.is_held = False
    if item.status == ItemStatus.SUBMITTED:
        item.due_at = deadlines.accept_deadline(now)
    item.updated_at = now
    queued = db.session.scalar(
        select(exists().where(OutboxMessage.item_id == item.id, OutboxMessage.kind == DEPUTY_NEW_ITEM))
    )
    db.session.flush()
    if not queued:
        conn = db.session.connection()
        notices.queue_new_item_notices(conn, item.id, None, item.deputy_id, now, station_id=item.station_id)
    record_audit(
        "item_released",
        user=reviewer,
        object_type="item",
        object_id=item.id,
        data={"ref": item.ref, "screening": item.screening.value, "label": item.screening_label},
    )


def find_item_for_resident(ref: object, key: object, address: str) -> Item | None:
    """The item with this reference when ``key`` is its access key; None otherwise (same answer either way).

    Guessing is throttled per address: misses are counted (and committed), and past the
    limit every look-up from the address answers 429 until the window ends.
    """
    throttle.guard_lookup(address)
    normalized = normalize_ref(ref) if isinstance(ref, str) else None
    item = db.session.scalar(select(Item).where(Item.ref == normalized)) if normalized else None
    if item is None or not keys_match(key if isinstance(key, str) else None, item.access_key):
        throttle.register_failed_lookup(address)
        return None
    return item
