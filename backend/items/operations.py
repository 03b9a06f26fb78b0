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
from sqlalchemy import and_, bindparam, exists, insert, literal, null, or_, select, text, true, union_all
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from backend import database, throttle
from backend.errors import UserError
from backend.extensions import db
from backend.items import deadlines
from backend.items import photos as photo_intake
from backend.items.refs import new_access_key, new_ref
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
    OutboxStatus,
    ReceptionRule,
    Resident,
    StaffUser,
    Station,
    utcnow,
)
from backend.models.base import UTCDateTime
from backend.qr.codes import SLUG_RE, ResolvedCode, resolve_slug
from backend.stations.calendar import duty_assignment, today_in_china

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
    """The stored item's identity, and whether this call created it (False for a repeated client_id)."""

    item_id: int
    ref: str
    access_key: str
    status: ItemStatus
    created: bool


def resolve_code_for_form(slug: object) -> ResolvedCode:
    """The code behind a slug, or a UserError: 404 for unknown or malformed, 410 for a replaced code."""
    resolved = resolve_slug(slug) if isinstance(slug, str) else None
    if resolved is None:
        raise _unknown_code()
    if resolved.is_retired:
        raise _code_replaced()
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

    A repeated ``client_id`` returns the first item instead of making a second, also when
    both requests arrive at once. Flushes nothing through the ORM: this is the hot path of
    the system, written as a handful of Core statements (see ``bench/submit.py``). Every
    check that needs no database runs first, the reads run in a read phase, and every value
    the writes need is computed before the first of them, because on SQLite the first write
    takes the write lock and holds it until the caller commits.
    """
    config = current_app.config
    client_id = clean_client_id(sub.client_id)
    message = clean_message(sub.body, sub.category, sub.name, sub.phone, sub.consent)
    if len(sub.photos) > config["ITEM_MAX_PHOTOS"]:
        raise UserError("too_many_photos", f"最多上传{config['ITEM_MAX_PHOTOS']}张照片。", 400, field="photos")
    processed = [photo_intake.process_photo(data) for data in sub.photos]
    resident_id = sub.resident.id if sub.resident is not None else None
    # WeChat's content check, before any database work (it is a network call, and on SQLite
    # the first write holds the write lock). Asked only for a mini-program user.
    from backend.wechat.screening import is_held, screen_message

    screening, screening_label = screen_message(sub.resident, message.body)
    held = is_held(screening)

    now = utcnow()
    with database.read_phase(then_write=True):
        conn = db.session.connection()
        minutes = config["NEAR_DUPLICATE_MINUTES"]
        since = now - timedelta(minutes=minutes) if minutes > 0 else None
        target = _resolve_target(conn, sub.code, sub.deputy_choice, client_id, since)
        if target.existing is not None:
            return target.existing
        # Everything the writes need is computed here, before the write transaction begins:
        # on SQLite every other writer waits while it runs.
        values = new_item_values(
            message,
            station_id=target.station_id,
            deputy_id=target.deputy_id,
            channel=sub.channel,
            now=now,
            code_id=target.code_id,
            resident_id=resident_id,
            client_id=client_id,
        )
        similar_ref = None
        if since is not None:
            similar_ref = _similar_recent_ref(conn, message.body, values["body_fingerprint"], target, since)
        values.update(
            screening=screening,
            screening_label=screening_label,
            is_held=held,
            needs_review=similar_ref is not None,
            review_reason=f"与 {similar_ref} 内容高度相似" if similar_ref else "",
        )
        events = [_event_row(None, ItemEventKind.SUBMITTED, ActorKind.RESIDENT, True, "", {}, now)]
        if similar_ref:
            events.append(
                _event_row(
                    None, ItemEventKind.FLAGGED, ActorKind.SYSTEM, False, values["review_reason"],
                    {"similar_to": similar_ref}, now,
                )
            )  # fmt: skip
        # A held item reaches the deputy when a station administrator releases it (wechat/screening.py).
        notices = _Notices(resident_id=resident_id, deputy_id=None if held else target.deputy_id, at=now)
        photo_rows = [
            {"position": position, "width": p.width, "height": p.height, "jpeg": p.jpeg, "sha256": p.sha256}
            for position, p in enumerate(processed)
        ]

    # On PostgreSQL with the counters in the database, the throttle counts in the insert's own statement.
    limits = None
    if conn.dialect.name == "postgresql" and not config.get("REDIS_URL"):
        limits = throttle.submission_limits(sub.address, target.slug)
    else:
        throttle.register_submission(sub.address, target.slug)
    stored = _store_submission(conn, values, client_id, events, notices, limits)
    if stored.created and photo_rows:
        conn.execute(insert(ItemPhoto), [row | {"item_id": stored.item_id} for row in photo_rows])
    return stored


@dataclass(frozen=True)
class _Target:
    """Where a submission goes, resolved in one query; ``existing`` when its client_id was seen before."""

    slug: str = ""
    code_id: int | None = None
    station_id: int | None = None
    deputy_id: int | None = None
    existing: SubmitResult | None = None
    recent: list[tuple] | None = None  # (ref, fingerprint, body) of the latest items to the deputy, if read


# The near-duplicate check's rows: the latest items since a moment, newest first.
_RECENT = (
    select(Item.ref, Item.body_fingerprint, Item.body)
    .where(Item.created_at >= bindparam("since", type_=UTCDateTime))
    .order_by(Item.created_at.desc())
    .limit(NEAR_DUPLICATE_LOOKBACK)
)
_RECENT_TO_DEPUTY = _RECENT.where(Item.deputy_id == bindparam("deputy_id"))
_RECENT_TO_STATION = _RECENT.where(Item.station_id == bindparam("station_id"), Item.deputy_id.is_(None))
_code_deputy = Deputy.__table__.alias("code_deputy")
_earlier = Item.__table__.alias("earlier")
# One round trip: the code, its deputy's station and status, and an earlier item with the same client_id.
_TARGET_QUERY = (
    select(
        Code.id,
        Code.retired_at,
        Code.deputy_id,
        Code.station_id,
        _code_deputy.c.station_id.label("deputy_station_id"),
        _code_deputy.c.status.label("deputy_status"),
        _earlier.c.id.label("earlier_id"),
        _earlier.c.ref.label("earlier_ref"),
        _earlier.c.access_key.label("earlier_key"),
        _earlier.c.status.label("earlier_status"),
    )
    .select_from(
        Code.__table__.outerjoin(_code_deputy, _code_deputy.c.id == Code.deputy_id).outerjoin(
            _earlier, _earlier.c.client_id == bindparam("client_id")
        )
    )
    .where(Code.slug == bindparam("slug"))
)
# The same round trip can bring the near-duplicate check's rows: the latest items to the code's
# deputy when the code is a serving deputy's (most codes), the target row first.
_code_serving_deputy = (
    select(Code.deputy_id)
    .join(Deputy, Deputy.id == Code.deputy_id)
    .where(Code.slug == bindparam("slug"), Code.is_current, Deputy.status == DeputyStatus.SERVING)
    .scalar_subquery()
)
_recent_to_code_deputy = _RECENT.add_columns(Item.created_at).where(Item.deputy_id == _code_serving_deputy).subquery()
_TARGET_AND_RECENT = union_all(
    _TARGET_QUERY.add_columns(
        *(null().label(f"recent_{c.name}") for c in _recent_to_code_deputy.c), literal(0).label("part")
    ),
    select(*(null() for _ in _TARGET_QUERY.selected_columns), *_recent_to_code_deputy.c, literal(1)),
).order_by(text("part"), text("recent_created_at DESC"))
_EARLIER_BY_CLIENT_ID = select(Item.id, Item.ref, Item.access_key, Item.status).where(
    Item.client_id == bindparam("client_id")
)


def _resolve_target(conn, slug: object, choice: object, client_id: str | None, since: datetime | None) -> _Target:
    """The code, its station and the receiving deputy; or the first item of a repeated client_id.

    With ``since``, the same round trip brings the items sent to a serving deputy's code since
    then (the near-duplicate check's rows, as ``recent``).
    """
    if not isinstance(slug, str) or not SLUG_RE.match(slug):
        if client_id is not None:
            earlier = conn.execute(_EARLIER_BY_CLIENT_ID, {"client_id": client_id}).first()
            if earlier is not None:
                return _Target(existing=SubmitResult(*earlier, created=False))
        raise _unknown_code()
    recent = None
    if since is None:
        row = conn.execute(_TARGET_QUERY, {"slug": slug, "client_id": client_id}).first()
    else:
        rows = conn.execute(_TARGET_AND_RECENT, {"slug": slug, "client_id": client_id, "since": since}).all()
        row = rows[0] if rows and rows[0].part == 0 else None
        recent = [(r.recent_ref, r.recent_body_fingerprint, r.recent_body) for r in rows[1:]]
    if row is None:
        raise _unknown_code()
    if row.earlier_id is not None:
        earlier = SubmitResult(row.earlier_id, row.earlier_ref, row.earlier_key, row.earlier_status, created=False)
        return _Target(existing=earlier)
    if row.retired_at is not None:
        raise _code_replaced()
    if row.deputy_id is not None and row.deputy_status == DeputyStatus.SERVING:
        return _Target(
            slug=slug, code_id=row.id, station_id=row.deputy_station_id, deputy_id=row.deputy_id, recent=recent
        )
    # A station's code, or the code of a deputy no longer serving: the resident chooses among
    # the station's serving deputies, or lets the reception calendar choose.
    station_id = row.station_id if row.station_id is not None else row.deputy_station_id
    return _Target(
        slug=slug, code_id=row.id, station_id=station_id, deputy_id=_station_deputy_id(conn, station_id, choice)
    )


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


def _unknown_code() -> UserError:
    return UserError("unknown_code", "找不到这个二维码，请确认扫描的是码上联海报上的二维码。", 404, field="code")


def _code_replaced() -> UserError:
    return UserError("code_replaced", "这个二维码已经更换，请扫描联络站或代表海报上的新二维码。", 410, field="code")


def _similar_recent_ref(conn, body: str, fingerprint: str, target: _Target, since: datetime) -> str | None:
    """The reference of a near-identical message to the same deputy since ``since``, if any.

    Kept, not rejected: the item is marked for review. The comparison is cheap first (same
    fingerprint, then lengths, then shared character pairs) and exact last (difflib).
    """
    recent = target.recent
    if recent is None and target.deputy_id is not None:
        recent = conn.execute(_RECENT_TO_DEPUTY, {"since": since, "deputy_id": target.deputy_id}).all()
    elif recent is None:
        recent = conn.execute(_RECENT_TO_STATION, {"since": since, "station_id": target.station_id}).all()
    if not recent:
        return None
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


@dataclass(frozen=True)
class _Notices:
    """Who is told of a new item: the resident (when they came through WeChat) and the deputy's accounts."""

    resident_id: int | None
    deputy_id: int | None
    at: datetime


def _store_submission(
    conn, values: dict, client_id: str | None, events: list[dict], notices: _Notices, limits: dict[str, int] | None
) -> SubmitResult:
    """Insert the item under a fresh reference, its events and its outbox rows; draw again on a collision.

    ``INSERT … ON CONFLICT DO NOTHING``: no row back means a unique key was taken, the
    client_id (the same submission stored by a concurrent request, which is returned) or,
    rarely, the reference number (drawn again). On PostgreSQL the item, its events and its
    outbox rows go in one statement (data-modifying CTEs, one round trip), with the throttle's
    counters when ``limits`` are given (a 429 ``UserError`` when one is over: the caller's
    rollback takes the counts back, as with ``throttle.register_submission``); elsewhere in three.
    """
    single_statement = conn.dialect.name == "postgresql"
    for _attempt in range(3):
        values["ref"] = new_ref()
        if single_statement:
            statement = _pg_submission_statement(
                tuple(values),
                len(events),
                notices.resident_id is not None,
                notices.deputy_id is not None,
                len(limits) if limits else 0,
            )
            rows = conn.execute(statement, _pg_submission_params(values, events, notices, limits)).all()
            if limits:
                now = values["created_at"]
                throttle.refuse_if_over(
                    limits, {row.key: (row.count, throttle.seconds_left(row.expires_at, now)) for row in rows}
                )
                limits = None  # counted once: a second attempt (a reference collision) counts nothing
            item_id = rows[0].item_id if rows else None
        else:
            item_id = conn.execute(_insert_item_statement(conn.dialect.name), values).scalar()
            if item_id is not None:
                rows = [event | {"item_id": item_id} for event in events]
                conn.execute(_INSERT_EVENT, rows[0] if len(rows) == 1 else rows)
                _queue_new_item_notices(conn, item_id, notices)
        if item_id is not None:
            return SubmitResult(item_id, values["ref"], values["access_key"], ItemStatus.SUBMITTED, created=True)
        if client_id is not None:
            earlier = conn.execute(_EARLIER_BY_CLIENT_ID, {"client_id": client_id}).first()
            if earlier is not None:
                return SubmitResult(*earlier, created=False)
    raise RuntimeError("could not store the item")


@functools.cache
def _insert_item_statement(dialect: str):
    dialect_insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return dialect_insert(Item.__table__).on_conflict_do_nothing().returning(Item.id)


_items = Item.__table__
_events = ItemEvent.__table__
_INSERT_EVENT = insert(_events)
_EVENT_COLUMNS = ("kind", "actor_kind", "actor_user_id", "is_public", "body", "data", "created_at")
_OUTBOX_COLUMNS = [
    "kind", "item_id", "resident_id", "staff_user_id", "payload", "status", "attempts", "next_attempt_at",
    "last_error", "created_at",
]  # fmt: skip


@functools.cache
def _pg_submission_statement(
    item_columns: tuple[str, ...], event_count: int, tell_resident: bool, tell_deputy: bool, throttle_keys: int
):
    """One PostgreSQL statement: count the throttle hits, insert the item, then its events and outbox rows.

    Parameters: the item's ``item_columns`` by name, ``e{i}_{column}`` for event i, ``resident_id``
    and ``notice_deputy_id``/``notice_at`` for the outbox rows; with ``throttle_keys``, the
    counters' parameters (``throttle.database_hit_params``) and ``limit{i}`` for key i. The item
    is inserted only when no counter went over its limit, and only when no unique key is taken;
    the events and outbox rows only with it. Returns one row per counter (key, count,
    expires_at, item_id), or without counters one row (item_id) or none.
    """
    row = {name: bindparam(name, type_=_items.c[name].type) for name in item_columns}
    for column in _items.columns:  # the other columns' Python-side defaults, which a CTE would not apply
        if column.name not in row and column.default is not None:
            if not column.default.is_scalar:
                raise ValueError(f"items.{column.name} has a computed default: give it a value")
            row[column.name] = literal(column.default.arg, type_=column.type)
    names = list(row)
    values = select(*row.values())
    if throttle_keys:
        hits = throttle.database_hits_cte(throttle_keys)
        over_limit = or_(
            *(
                and_(hits.c.key == bindparam(f"k{i}"), hits.c.count > bindparam(f"limit{i}"))
                for i in range(throttle_keys)
            )
        )
        values = values.where(~exists(select(hits.c.key).where(over_limit)))
    new_item = (
        postgresql.insert(_items)
        .from_select(names, values)
        .on_conflict_do_nothing()
        .returning(_items.c.id)
        .cte("new_item")
    )
    event_rows = [
        select(new_item.c.id, *(bindparam(f"e{i}_{name}", type_=_events.c[name].type) for name in _EVENT_COLUMNS))
        for i in range(event_count)
    ]
    ctes = [
        insert(_events)
        .from_select(["item_id", *_EVENT_COLUMNS], event_rows[0] if event_count == 1 else union_all(*event_rows))
        .cte("new_events")
    ]
    pending = literal(OutboxStatus.PENDING, type_=_outbox.c.status.type)
    no_payload = literal({}, type_=_outbox.c.payload.type)
    at = bindparam("notice_at", type_=UTCDateTime)
    if tell_resident:
        resident_row = select(
            literal("item_received"), new_item.c.id, bindparam("resident_id"), null(), no_payload, pending,
            literal(0), at, literal(""), at,
        )  # fmt: skip
        ctes.append(insert(_outbox).from_select(_OUTBOX_COLUMNS, resident_row).cte("resident_notice"))
    if tell_deputy:
        # The item's id beside each active account of the deputy.
        deputy_rows = (
            select(
                literal("deputy_new_item"), new_item.c.id, null(), StaffUser.id, no_payload, pending,
                literal(0), at, literal(""), at,
            )
            .select_from(new_item.join(StaffUser, true()))
            .where(
                *StaffUser.accounts_of_deputy(bindparam("notice_deputy_id")),
            )
        )  # fmt: skip
        ctes.append(insert(_outbox).from_select(_OUTBOX_COLUMNS, deputy_rows).cte("deputy_notice"))
    if throttle_keys:
        item_id = select(new_item.c.id).scalar_subquery().label("item_id")
        return select(hits.c.key, hits.c.count, hits.c.expires_at, item_id).add_cte(*ctes)
    return select(new_item.c.id.label("item_id")).add_cte(*ctes)


def _pg_submission_params(values: dict, events: list[dict], notices: _Notices, limits: dict[str, int] | None) -> dict:
    params = dict(values)
    if limits:
        params.update(throttle.database_hit_params(list(limits), values["created_at"]))
        params.update({f"limit{i}": limits[key] for i, key in enumerate(sorted(limits))})
    for i, event in enumerate(events):
        params.update({f"e{i}_{name}": event[name] for name in _EVENT_COLUMNS})
    params.update(resident_id=notices.resident_id, notice_deputy_id=notices.deputy_id, notice_at=notices.at)
    return params


def _event_row(item_id, kind, actor_kind, is_public, body, data, now) -> dict:
    return {
        "item_id": item_id,
        "kind": kind,
        "actor_kind": actor_kind,
        "actor_user_id": None,
        "is_public": is_public,
        "body": body,
        "data": data,
        "created_at": now,
    }


_outbox = OutboxMessage.__table__
_INSERT_OUTBOX = insert(_outbox)
# The deputy's active accounts each get a "new item" row, in one INSERT … SELECT.
_QUEUE_DEPUTY_NEW_ITEM = insert(_outbox).from_select(
    [
        "kind",
        "item_id",
        "staff_user_id",
        "payload",
        "status",
        "attempts",
        "next_attempt_at",
        "last_error",
        "created_at",
    ],
    select(
        literal("deputy_new_item"),
        bindparam("item_id"),
        StaffUser.id,
        literal({}, type_=_outbox.c.payload.type),
        literal(OutboxStatus.PENDING, type_=_outbox.c.status.type),
        literal(0),
        bindparam("now", type_=UTCDateTime),
        literal(""),
        bindparam("now", type_=UTCDateTime),
    ).where(
        *StaffUser.accounts_of_deputy(bindparam("deputy_id")),
    ),
)


def _queue_new_item_notices(conn, item_id: int, notices: _Notices) -> None:
    """Outbox rows in the item's transaction: "received" for a resident with WeChat, "new item" for the deputy."""
    now = notices.at
    if notices.resident_id is not None:
        conn.execute(
            _INSERT_OUTBOX,
            {"kind": "item_received", "item_id": item_id, "resident_id": notices.resident_id, "next_attempt_at": now,
             "created_at": now},
        )  # fmt: skip
    if notices.deputy_id is not None:
        conn.execute(_QUEUE_DEPUTY_NEW_ITEM, {"item_id": item_id, "deputy_id": notices.deputy_id, "now": now})


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
