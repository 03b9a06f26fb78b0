"""联系群众 without an item: a deputy's 走访, 座谈 or phone call, logged in three taps.

What is kept is what the county counts ("联系群众次数1.8万余次"): when, where, how many people and a
line of what was raised, with the deputy and their station. A contact that raised something to be
handled becomes an in-person item through the existing entry (``items.claims.in_person_item``),
prefilled from the log (``prefill``); the log then points at the item (``link_item``), once.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import func, select

from backend.audit import record_added
from backend.errors import UserError
from backend.extensions import db
from backend.items.validation import clean_text, parse_day, parse_id
from backend.models import ContactKind, ContactLog, Item, StaffRole, StaffUser
from backend.stations.calendar import today_in_china

PLACE_MAX_CHARS = 100  # ContactLog.place
SUMMARY_MAX_CHARS = 200  # ContactLog.summary
MAX_PEOPLE = 10000  # the table's check
# A contact is logged soon after it happened; a date further back is a typing slip more often than not.
MAX_DAYS_BACK = 92


def _deputy_of(user: StaffUser):
    if user is None or not user.is_active or user.role != StaffRole.DEPUTY or user.deputy is None:
        raise UserError("not_a_deputy", "只有代表本人可以记录联系群众。", 404)
    if not user.deputy.is_serving:
        raise UserError("deputy_not_serving", "您已不在任，不能再记录联系群众。", 409)
    return user.deputy


def clean_kind(raw: object) -> ContactKind:
    """走访 / 座谈 / 电话 from the form's value, or a 400 naming the field."""
    try:
        return ContactKind(raw)
    except ValueError:
        raise UserError("invalid_kind", "请选择联系方式：走访、座谈或电话。", 400, field="kind") from None


def clean_held_on(raw: object, today: date) -> date:
    """The contact's date: today or up to ``MAX_DAYS_BACK`` days before; never ahead."""
    held_on = parse_day(raw, "held_on", "联系日期")
    if held_on > today:
        raise UserError("held_on_ahead", "联系日期不能晚于今天。", 400, field="held_on")
    if held_on < today - timedelta(days=MAX_DAYS_BACK):
        raise UserError("held_on_too_old", f"只能记录{MAX_DAYS_BACK}天以内的联系。", 400, field="held_on")
    return held_on


def clean_people(raw: object) -> int:
    """How many people were met: a whole number from 1 to ``MAX_PEOPLE``."""
    number = parse_id(raw) if not isinstance(raw, bool) else None
    if number is None or number < 1 or number > MAX_PEOPLE:
        raise UserError("invalid_people", f"请填写见到的群众人数（1到{MAX_PEOPLE}之间的整数）。", 400, field="people")
    return number


def log_contact(user: StaffUser, *, kind, held_on, place, people, summary, now: datetime | None = None) -> ContactLog:
    """Log a contact of the user's deputy (flushes; the caller commits); every bad input a 400 naming its field."""
    deputy = _deputy_of(user)
    today = today_in_china(now)
    log = ContactLog(
        deputy_id=deputy.id,
        station_id=deputy.station_id,
        kind=clean_kind(kind),
        held_on=clean_held_on(held_on, today),
        place=clean_text(place, "place", "地点", max_chars=PLACE_MAX_CHARS),
        people=clean_people(people),
        summary=clean_text(summary, "summary", "群众反映的内容", max_chars=SUMMARY_MAX_CHARS, required=True),
        recorded_by_id=user.id,
    )
    record_added(log, "contact_logged", user=user, object_type="contact_log", data={"kind": log.kind.value})
    return log


def own_contact(user: StaffUser, contact_id: object) -> ContactLog:
    """The user's deputy's own contact log ``contact_id``; anything else answers 404 as unknown."""
    number = parse_id(contact_id)
    log = db.session.get(ContactLog, number) if number is not None else None
    if log is None or user.role != StaffRole.DEPUTY or user.deputy_id != log.deputy_id:
        raise UserError("unknown_contact", "找不到这条联系记录。", 404)
    return log


def prefill(log: ContactLog) -> dict[str, str]:
    """The in-person form's values for turning ``log`` into an item: the line raised, and how it was heard."""
    how = ContactKind(log.kind).label
    where = f"，{log.place}" if log.place else ""
    return {
        "body": log.summary,
        "category": "other",
        "channel_note": f"{how}{where}，{log.held_on.month}月{log.held_on.day}日，{log.people}人",
    }


def link_item(log: ContactLog, item: Item | None) -> None:
    """Record that ``log`` became ``item`` (flushes); a log already turned into an item is refused (409)."""
    if log.item_id is not None or item is None:
        raise UserError("contact_already_item", "这条联系记录已经转为留言件。", 409)
    log.item_id = item.id
    db.session.flush()


def recent_contacts(user: StaffUser, limit: int = 10) -> list[ContactLog]:
    """The deputy's latest logged contacts, newest first."""
    return list(
        db.session.scalars(
            select(ContactLog)
            .where(ContactLog.deputy_id == user.deputy_id)
            .order_by(ContactLog.held_on.desc(), ContactLog.id.desc())
            .limit(limit)
        )
    )


def contacts_count(
    *, start: date, end: date, deputy_id: int | None = None, station_ids: list[int] | None = None
) -> int:
    """Contacts held on China dates ``[start, end)``, of one deputy or of some stations (the figures, 履职积分)."""
    query = select(func.count()).where(ContactLog.held_on >= start, ContactLog.held_on < end)
    if deputy_id is not None:
        query = query.where(ContactLog.deputy_id == deputy_id)
    if station_ids is not None:
        if not station_ids:
            return 0
        query = query.where(ContactLog.station_id.in_(station_ids))
    return db.session.scalar(query)


def contact_json(log: ContactLog) -> dict:
    """A logged contact as the API answers it (the mini-program lists them; ``item_ref`` once it became an item)."""
    item_ref = db.session.scalar(select(Item.ref).where(Item.id == log.item_id)) if log.item_id else None
    return {
        "id": log.id,
        "kind": ContactKind(log.kind).value,
        "kind_label": ContactKind(log.kind).label,
        "held_on": log.held_on.isoformat(),
        "place": log.place or "",
        "people": log.people,
        "summary": log.summary,
        "station": {"id": log.station.id, "name": log.station.name},
        "item_ref": item_ref,
        "created_at": log.created_at.isoformat(),
    }
