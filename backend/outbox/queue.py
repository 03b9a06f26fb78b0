"""Who is told of what: every deputy notice the backend queues goes through here, one row per step.

A deputy (or, for an item without one, its station's administrators: the item's *handlers*)
hears of a new item, a reopened one, one about to be overdue or overdue, a supervisor's 督办,
a department's answer and a resident's answer (``NOTICE_FOR_EVENT`` maps the item events that
make one). Several within ``NOTICE_COALESCE_SECONDS`` become one message:

- here, each step gets its own row (so each stays findable by item and kind, in the item's
  transaction: the outbox's rule), due at once when the account was told nothing in the
  window, else at the end of the window after the last message (so the hour's later steps
  wait for each other);
- the worker, claiming an account's deputy notice, folds into it every other unsent one of
  that account (``worker._fold``): they end ``merged``, the claimed row's payload lists them
  (``also``) and its one message names them all.

So each step is told exactly once — in its own message or in the one it was folded into.
Works on a Core connection (the submission's fast path) and on the ORM session's alike.
Flushes; the caller commits.

The deadline reminders live here too (``queue_overdue_notices``, ``queue_due_soon_notices``): they are
deputy notices written in bulk, so they sit with the writer they use (``queue_reminders``).

This is the outbox's low-level writer: it writes the rows it is told to and decides nothing about
WeChat's templates. Whether a resident is told "已提交" depends on the template configured for it
(``notifications.is_received_notice_sent``, ``notifications.h5_received_template``): the caller asks
``notifications`` and passes the answer in (``queue_new_item_notices``'s ``resident_id``), or
``notifications`` decides and calls ``queue_received_once``. So the arrows run one way —
``notifications`` → ``queue`` — and this module imports nothing of the outbox or of WeChat.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import and_, bindparam, exists, func, insert, literal, select
from sqlalchemy.orm import aliased

from backend import database
from backend.extensions import db
from backend.items.deadlines import overdue_condition
from backend.models import Item, ItemStatus, OutboxMessage, OutboxStatus, StaffRole, StaffUser
from backend.models.base import UTCDateTime

_outbox = OutboxMessage.__table__

NEW_ITEM = "deputy_new_item"
OVERDUE = "deputy_item_overdue"
DUE_SOON = "deputy_item_due_soon"
REOPENED = "deputy_item_reopened"
SUPERVISED = "deputy_item_supervised"
DEPARTMENT_REPLIED = "deputy_department_replied"
RESIDENT_REPLIED = "deputy_resident_replied"
# The chain's steps (issue 11 part 3 and 4): the transition table's staff_notice and the department's steps.
RESIDENT_FOLLOWUP = "deputy_resident_followup"
DEPARTMENT_RETURNED = "deputy_department_returned"
EXTENSION_REQUESTED = "deputy_extension_requested"
DEPARTMENT_PASSED_ON = "deputy_department_passed_on"
# The resident's "已提交" (``queue_new_item_notices``, ``queue_received_once``).
RECEIVED = "item_received"
DEPUTY_KINDS = (
    NEW_ITEM,
    OVERDUE,
    DUE_SOON,
    REOPENED,
    SUPERVISED,
    DEPARTMENT_REPLIED,
    RESIDENT_REPLIED,
    RESIDENT_FOLLOWUP,
    DEPARTMENT_RETURNED,
    EXTENSION_REQUESTED,
    DEPARTMENT_PASSED_ON,
)

# The item events (by value) whose step the handlers are told of. ``resident_replied`` is the
# resident's answer to 等待群众补充 (issue 11 part 4): its notice is here whether or not the event
# kind exists yet, so the reply operation only has to call ``queue_for_event``.
NOTICE_FOR_EVENT = {
    "department_replied": DEPARTMENT_REPLIED,
    "resident_replied": RESIDENT_REPLIED,
    "reopened": REOPENED,
    "supervised": SUPERVISED,
}


def handler_ids(conn, deputy_id: int | None, station_id: int | None) -> list[int]:
    """Who is told of work on an item: its deputy's active accounts, or its station's administrators without one."""
    if deputy_id is not None:
        return list(conn.execute(_DEPUTY_ACCOUNTS, {"deputy_id": deputy_id}).scalars())
    if station_id is not None:
        where = (
            StaffUser.station_id == station_id,
            StaffUser.role == StaffRole.STATION_ADMIN,
            StaffUser.is_active.is_(True),
        )
    else:
        return []
    return list(conn.execute(select(StaffUser.id).where(*where).order_by(StaffUser.id)).scalars())


# The submission's fast path runs these on every item: module-level, so their SQL is compiled once.
_DEPUTY_ACCOUNTS = (
    select(StaffUser.id).where(*StaffUser.accounts_of_deputy(bindparam("deputy_id"))).order_by(StaffUser.id)
)
_LAST_NOTICES = select(
    func.min(_outbox.c.next_attempt_at).filter(_outbox.c.status.in_((OutboxStatus.PENDING, OutboxStatus.HELD))),
    func.max(_outbox.c.sent_at).filter(
        _outbox.c.status == OutboxStatus.SENT, _outbox.c.sent_at > bindparam("sent_since", type_=UTCDateTime)
    ),
).where(
    _outbox.c.staff_user_id == bindparam("staff_user_id"),
    _outbox.c.kind.in_(DEPUTY_KINDS),
    _outbox.c.created_at > bindparam("queued_since", type_=UTCDateTime),
)


def _due_at(conn, staff_user_id: int, now: datetime, window: timedelta) -> datetime:
    """When a new notice to this account may go, so that one message at most goes out per window.

    With an unsent notice waiting for the window's end: at the same time (the worker folds them
    together). With one about to go now, or one sent within the window: a window after it.
    Otherwise now.
    """
    params = {"staff_user_id": staff_user_id, "sent_since": now - window, "queued_since": now - window - window}
    waiting, last_sent = conn.execute(_LAST_NOTICES, params).one()
    if waiting is not None:
        return waiting if waiting > now else waiting + window
    if last_sent is not None:
        return last_sent + window
    return now


def queue_deputy_notice(
    conn, kind: str, item_id: int, staff_user_ids: Iterable[int], now: datetime, payload: dict | None = None
) -> None:
    """Tell each account of one step (``kind`` of ``DEPUTY_KINDS``): a row each, due when the window allows."""
    window = timedelta(seconds=float(current_app.config["NOTICE_COALESCE_SECONDS"]))
    rows = [
        {
            "kind": kind,
            "item_id": item_id,
            "staff_user_id": staff_user_id,
            "payload": dict(payload or {}),
            "status": OutboxStatus.PENDING,
            "attempts": 0,
            "next_attempt_at": _due_at(conn, staff_user_id, now, window) if window > timedelta(0) else now,
            "last_error": "",
            "created_at": now,
        }
        for staff_user_id in staff_user_ids
    ]
    if rows:
        conn.execute(insert(_outbox), rows)


def queue_new_item_notices(
    conn,
    item_id: int,
    resident_id: int | None,
    deputy_id: int | None,
    now: datetime,
    *,
    station_id: int | None = None,
    held: bool = False,
    reassigned: bool = False,
) -> None:
    """A new item (submitted, released from review, or passed on to another deputy): its handlers are told.

    The handlers are the deputy's accounts, or, for an item with no deputy (a topic code's message, a
    station's message nobody was chosen for), the station's administrators (``handler_ids``, given
    ``station_id``): the same notice, through the same channel (their bound WeChat). An item ``held`` for
    content review tells nobody yet (its release does). On submission ``resident_id`` names the resident
    to tell "已提交" too, and None when nobody is: the caller decides, asking
    ``notifications.is_received_notice_sent`` (only with a long-term progress template: a one-time
    credit is kept for 受理), since which notice a resident gets is not the writer's to decide.
    """
    if resident_id is not None and not reassigned:
        conn.execute(
            insert(_outbox).values(
                kind=RECEIVED, item_id=item_id, resident_id=resident_id, next_attempt_at=now, created_at=now
            )
        )
    if not held:
        payload = {"reassigned": True} if reassigned else {}
        queue_deputy_notice(conn, NEW_ITEM, item_id, handler_ids(conn, deputy_id, station_id), now, payload)


def queue_received_once(item: Item, now: datetime) -> bool:
    """Queue the resident's "已提交" row for ``item`` unless one was pending or sent already; True when queued.

    For ``notifications.queue_received_after_subscribing`` (which decides whether the resident is told): every
    earlier "已提交" row of the item must have been skipped, so a second report of the same acceptance, or a
    reload and a second tap, queues nothing. Flushes; the caller commits.
    """
    told = db.session.scalar(
        select(func.count())
        .select_from(OutboxMessage)
        .where(
            OutboxMessage.item_id == item.id,
            OutboxMessage.kind == RECEIVED,
            OutboxMessage.status != OutboxStatus.SKIPPED,
        )
    )
    if told:
        return False
    db.session.add(
        OutboxMessage(kind=RECEIVED, item_id=item.id, resident_id=item.resident_id, next_attempt_at=now, created_at=now)
    )
    db.session.flush()
    return True


def queue_for_item(kind: str, item: Item, now: datetime, payload: dict | None = None) -> None:
    """Tell the item's handlers of one step (ORM callers: the lifecycle's operations). Flushes."""
    db.session.flush()
    conn = db.session.connection()
    queue_deputy_notice(conn, kind, item.id, handler_ids(conn, item.deputy_id, item.station_id), now, payload)


def queue_for_event(item: Item, event) -> bool:
    """Tell the item's handlers of an event whose kind makes a notice (``NOTICE_FOR_EVENT``); False for others."""
    kind = NOTICE_FOR_EVENT.get(getattr(event.kind, "value", event.kind))
    if kind is None:
        return False
    db.session.flush()  # the event's id
    payload = {"event_id": event.id}
    payload.update({k: v for k, v in (event.data or {}).items() if k == "forward_id"})
    queue_for_item(kind, item, event.created_at, payload)
    return True


def queue_reminders(kind: str, condition, since, now: datetime) -> int:
    """One reminder row of ``kind`` per matching item and handler account, once per deadline (INSERT … SELECT).

    ``condition`` selects the items; ``since`` (an expression on ``Item``, or a time) is when the
    current deadline's reminder may have been queued at the earliest: a row of the kind queued after it
    means this deadline was reminded already. Items held for review are left out. A lock until the
    commit keeps two workers from queueing the same reminder. Flushes; the caller commits.
    Returns how many.
    """
    session = db.session
    database.lock_until_commit(session.connection(), f"reminder-scan:{kind}")
    earlier = aliased(OutboxMessage)
    already = exists().where(
        earlier.item_id == Item.id,
        earlier.kind == kind,
        earlier.staff_user_id == StaffUser.id,
        earlier.created_at >= since,
    )
    rows = (
        select(
            literal(kind),
            Item.id,
            StaffUser.id,
            literal({}, type_=_outbox.c.payload.type),
            literal(OutboxStatus.PENDING, type_=_outbox.c.status.type),
            literal(0),
            literal(now, type_=UTCDateTime),
            literal(""),
            literal(now, type_=UTCDateTime),
        )
        .select_from(Item)
        .join(StaffUser, and_(*StaffUser.accounts_of_deputy(Item.deputy_id)))
        .where(condition, Item.is_held.is_(False), ~already)
    )
    columns = ["kind", "item_id", "staff_user_id", "payload", "status", "attempts", "next_attempt_at"]
    columns += ["last_error", "created_at"]
    # RETURNING counts the rows on both engines (an INSERT … SELECT's rowcount is -1 through psycopg).
    return len(session.execute(insert(_outbox).from_select(columns, rows).returning(_outbox.c.id)).all())


# --- deadline reminders -------------------------------------------------------------------


def queue_overdue_notices(now: datetime) -> int:
    """Queue one ``deputy_item_overdue`` row per overdue item and deputy account, once per deadline.

    An item counts as notified for its current deadline when a row of that kind was queued
    after its ``due_at``; a deadline that moves (extended, reopened) earns a new reminder once
    it passes too. Flushes; the caller commits. Returns how many (``queue_reminders``).
    """
    return queue_reminders(OVERDUE, overdue_condition(now), Item.due_at, now)


def queue_due_soon_notices(now: datetime) -> int:
    """Queue one ``deputy_item_due_soon`` row per running item due within ``NOTICE_DUE_SOON_HOURS``, once per deadline.

    Only items whose clock runs (a paused item waits for the resident, not the deputy).
    Flushes; the caller commits.
    """
    lead = timedelta(hours=float(current_app.config["NOTICE_DUE_SOON_HOURS"]))
    if lead <= timedelta(0):
        return 0
    condition = and_(
        Item.status.in_(ItemStatus.open_statuses()),
        Item.due_at.is_not(None),
        Item.paused_at.is_(None),
        Item.due_at >= now,
        Item.due_at < now + lead,
    )
    # Reminded once per lead time: a deadline moved later earns a new reminder when it comes near again.
    return queue_reminders(DUE_SOON, condition, now - lead, now)
