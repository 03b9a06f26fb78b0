"""The item lifecycle: one state machine for what staff, departments and residents do to an item.

Every operation here validates first and writes nothing when it refuses; when it acts it
writes the status and the columns that mirror it, one event, the outbox rows for the
people concerned and an audit row, then flushes. The request commits.

The transition table (``TRANSITIONS`` below is the same table as data)::

    action             from                                  to         event (public?)          resident outbox
    -----------------  ------------------------------------  ---------  -----------------------  -----------------
    accept             submitted                             accepted   ACCEPTED (public)        item_accepted
    decline            submitted, accepted                   declined   DECLINED (public)        item_declined
    duplicate          submitted, accepted                   duplicate  DUPLICATE (public)       item_duplicate
    reassign           submitted, accepted                   (same)     REASSIGNED (public)      item_reassigned
    reply              submitted*, accepted, forwarded,      answered   REPLIED (public)         item_answered
                       answered
    forward            submitted*, accepted, forwarded,      forwarded  FORWARDED (public)       item_forwarded
                       answered
    resolve            accepted, forwarded, answered         resolved   RESOLVED (public)        item_resolved
    extend             accepted, forwarded, answered         (same)     EXTENDED (public)        item_extended
    wait_for_resident  accepted, forwarded, answered; clock  (same)     NOTE (public)            item_waiting
                       running
    resume             accepted, forwarded, answered; clock  (same)     NOTE (private)           —
                       paused
    supervise          submitted, accepted, forwarded,       (same)     SUPERVISED (private)     —
                       answered
    note               every status                          (same)     NOTE (private)           —
    resident_reply     accepted, forwarded, answered; clock  (same)     RESIDENT_REPLIED         —
      (resident)       paused                                           (public)
    follow_up          submitted, accepted, forwarded,       (same)     FOLLOWED_UP (public)     —
      (resident)       answered; clock running
    rate (resident)    resolved, not yet rated               resolved   RATED (public)           —
      … unsatisfied    resolved                              accepted   + REOPENED (public)      —

* A first reply or forward on a submitted item implies the 受理 (``accepts_first``): one tap
for the deputy, not two. The accept is written first as the explicit one is — its ACCEPTED
event (``data["implied_by"]``), the resident's ``item_accepted`` notice and its audit row — so
the resident hears 受理 once, and a later reply finds the item in hand and adds no second one.
The action's own event carries ``data["implied_accept"]``; the timelines show the pair as one
entry ("受理并答复", ``presenters``/``timeline``).

Anything not in the table answers 409 ``transition_not_allowed``: declined and duplicate
items take nothing but notes; a resolved item takes notes from staff and one rating from
the resident per resolution; an item must be accepted (or be answered or forwarded, which
accepts it) before it is resolved or extended.

Inputs and what they mean (text ≤ 2000 characters everywhere):

- accept: ``text`` optional, shown to the resident. Answer deadline starts.
- decline (不予受理): ``text`` = the reason, required, shown to the resident.
- duplicate: ``duplicate_of`` = the reference of another item of the same station that is
  not itself a duplicate or declined; ``text`` optional (default names the other item).
- reassign (转交): ``deputy_id`` = another serving deputy of the same station; ``text`` =
  the reason, required, kept internal (event ``data`` and audit); the resident sees only
  the new deputy's name. The deadline does not restart: the clock is the resident's.
- reply (答复): ``text`` required. The first reply sets ``first_answered_at``; entering
  "answered" starts the resolve deadline, a further reply leaves it.
- forward (交办): ``department_id`` (active, in the station's region or a region above it),
  ``due`` (a date ahead, ≤ a year), ``text`` = instructions to the department, internal
  (kept on the forward only). The public event names the department and the due date.
  The item's ``due_at`` becomes the forward's. One open (unanswered, unrevoked) forward per
  department: forward to another department, or revoke first.
- resolve (办结): ``outcome`` solved | partly | unsolved; ``text`` = the reason, required
  for partly and unsolved, shown to the resident. Clears any earlier rating columns: a new
  resolution waits for a new verdict.
- extend: ``due`` later than the current due time and ``text`` = the reason, both
  required; a forwarded item's open forward moves too.
- wait_for_resident: ``text`` = what is awaited, required and public (a paused clock is
  visible to the resident, so it cannot silently hide lateness); resume: ``text`` optional.
  Status-changing actions on a paused item (reply, forward, resolve, decline, duplicate)
  restart the clock first.
- supervise (督办): ``text`` optional, internal (default: a request to hurry). Supervisors
  only, on open items; the deputy's accounts (or, for an item without a deputy, the
  station's administrators) get a ``deputy_item_supervised`` outbox row. Nothing changes
  for the resident; the deadline stays.
- resident_reply (补充, the resident answering 等待群众补充): ``text`` required (≤
  ``ITEM_BODY_MAX_CHARS``), photos optional (the submission's limits). Restarts the clock: the
  paused time does not count. The deputy is told (``deputy_resident_replied``).
- follow_up (追问): ``text`` required, one per item per day (China time), on an open item
  whose clock runs (a paused one asks for a reply instead). The deputy is told
  (``deputy_resident_followup``).

Who may act: deputies and station administrators take every staff action on items they
can see but 督办; supervisors only write notes and supervise; departments act on their forward, through
its link or their accounts' inbox, never through the table: progress and the final answer
(``department_answer``; the resident is told that it came, ``item_department_replied``), a request
for more time (``department_request_extension``, which the
deputy grants or refuses: ``decide_extension``), 退回 (``department_return``) and a second hop to
one of their own units (``department_pass_on``); the resident's rows (``RESIDENT_ACTIONS``) are taken only through
``resident_action``, by the holder of the item's key, never by staff. The resident's rating (``rate_item``) takes no staff actor at
all: there is no code path by which staff record satisfaction (被满意).

Event ``body`` is what the resident reads on public events; ``data`` is for staff only.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from flask import current_app
from sqlalchemy import func, select

from backend.access import can_see_item
from backend.audit import record_audit
from backend.errors import UserError
from backend.extensions import db
from backend.items import deadlines, operations, photo_store
from backend.items import photos as photo_intake
from backend.items.refs import format_ref, normalize_ref
from backend.items.validation import clean_id, clean_text, parse_bool
from backend.models import (
    ActorKind,
    Department,
    Deputy,
    DeputyStatus,
    Item,
    ItemEvent,
    ItemEventKind,
    ItemForward,
    ItemOutcome,
    ItemPhoto,
    ItemStatus,
    OutboxMessage,
    Satisfaction,
    StaffRole,
    StaffUser,
    utcnow,
)
from backend.models.item import ITEM_OUTCOME_LABELS, ITEM_STATUS_LABELS, SATISFACTION_LABELS
from backend.outbox import queue as notices
from backend.stations.calendar import CHINA_TZ, format_month_day, today_in_china

STAFF_TEXT_MAX_CHARS = 2000
CHANNEL_NOTE_MAX_CHARS = 200

_IN_HAND = frozenset({ItemStatus.ACCEPTED, ItemStatus.FORWARDED, ItemStatus.ANSWERED})
_BEFORE_WORK = frozenset({ItemStatus.SUBMITTED, ItemStatus.ACCEPTED})


@dataclass(frozen=True)
class Transition:
    """One row of the table: where an action may start, where it leads, what event and notice it writes."""

    label: str  # the action in Chinese, for messages and buttons
    allowed_from: frozenset[ItemStatus]
    to: ItemStatus | None  # None: the status stays
    event_kind: ItemEventKind
    is_public: bool
    resident_notice: str | None = None  # outbox kind for the resident, when the item has one
    clock: str | None = None  # "running" / "paused": the clock must also be so (wait_for_resident, resume)
    restarts_clock: bool = False  # a paused clock restarts before the action
    staff_notice: str | None = None  # outbox kind for the item's handlers (its deputy's accounts)
    accepts_first: bool = False  # on a submitted item, a 受理 is implied and written first (one tap, not two)


TRANSITIONS: dict[str, Transition] = {
    "accept": Transition(
        "受理", frozenset({ItemStatus.SUBMITTED}), ItemStatus.ACCEPTED, ItemEventKind.ACCEPTED, True, "item_accepted"
    ),
    "decline": Transition(
        "不予受理",
        _BEFORE_WORK,
        ItemStatus.DECLINED,
        ItemEventKind.DECLINED,
        True,
        "item_declined",
        restarts_clock=True,
    ),
    "duplicate": Transition(
        "标记为重复件",
        _BEFORE_WORK,
        ItemStatus.DUPLICATE,
        ItemEventKind.DUPLICATE,
        True,
        "item_duplicate",
        restarts_clock=True,
    ),
    "reassign": Transition("转交其他代表", _BEFORE_WORK, None, ItemEventKind.REASSIGNED, True, "item_reassigned"),
    "reply": Transition(
        "答复",
        _IN_HAND | {ItemStatus.SUBMITTED},
        ItemStatus.ANSWERED,
        ItemEventKind.REPLIED,
        True,
        "item_answered",
        restarts_clock=True,
        accepts_first=True,
    ),
    "forward": Transition(
        "交办",
        _IN_HAND | {ItemStatus.SUBMITTED},
        ItemStatus.FORWARDED,
        ItemEventKind.FORWARDED,
        True,
        "item_forwarded",
        restarts_clock=True,
        accepts_first=True,
    ),
    "resolve": Transition(
        "办结", _IN_HAND, ItemStatus.RESOLVED, ItemEventKind.RESOLVED, True, "item_resolved", restarts_clock=True
    ),
    "extend": Transition("延长办理期限", _IN_HAND, None, ItemEventKind.EXTENDED, True, "item_extended"),
    "wait_for_resident": Transition(
        "等待群众补充", _IN_HAND, None, ItemEventKind.NOTE, True, "item_waiting", clock="running"
    ),
    "resume": Transition("恢复计时", _IN_HAND, None, ItemEventKind.NOTE, False, clock="paused"),
    "supervise": Transition(
        "督办", ItemStatus.open_statuses(), None, ItemEventKind.SUPERVISED, False, staff_notice="deputy_item_supervised"
    ),
    "note": Transition("写内部备注", frozenset(ItemStatus), None, ItemEventKind.NOTE, False),
    "resident_reply": Transition(
        "补充",
        _IN_HAND,
        None,
        ItemEventKind.RESIDENT_REPLIED,
        True,
        clock="paused",
        restarts_clock=True,
        staff_notice="deputy_resident_replied",
    ),
    "follow_up": Transition(
        "追问",
        ItemStatus.open_statuses(),
        None,
        ItemEventKind.FOLLOWED_UP,
        True,
        clock="running",
        staff_notice="deputy_resident_followup",
    ),
}

# The resident's rows: taken through ``resident_action`` only, never by staff.
RESIDENT_ACTIONS = frozenset({"resident_reply", "follow_up"})
ACTIONS = tuple(name for name in TRANSITIONS if name not in RESIDENT_ACTIONS)

# Which staff roles may take which actions (on items they can see).
ROLE_ACTIONS: dict[StaffRole, frozenset[str]] = {
    StaffRole.DEPUTY: frozenset(ACTIONS) - {"supervise"},
    StaffRole.STATION_ADMIN: frozenset(ACTIONS) - {"supervise"},
    StaffRole.SUPERVISOR: frozenset({"note", "supervise"}),
    StaffRole.DEPARTMENT: frozenset(),
}


@dataclass
class _Step:
    """What an action's checks produced, then what its writes add to the event."""

    text: str = ""
    department: Department | None = None
    due: datetime | None = None
    deputy: Deputy | None = None
    target: Item | None = None
    outcome: ItemOutcome | None = None
    body: str = ""
    data: dict = field(default_factory=dict)
    forward: ItemForward | None = None
    token: str | None = None


def allowed_actions(item: Item, actor: StaffUser | None = None) -> list[str]:
    """The actions the item's state allows (and ``actor``'s role, when given), in table order."""
    permitted = ROLE_ACTIONS.get(actor.role, frozenset()) if actor is not None else frozenset(ACTIONS)
    return [name for name, row in TRANSITIONS.items() if name in permitted and _refusal(item, row) is None]


def _refusal(item: Item, row: Transition) -> str | None:
    """Why the table refuses ``row`` for ``item`` now, or None."""
    status_label = ITEM_STATUS_LABELS[item.status]
    if item.status not in row.allowed_from:
        return f"该件当前状态为“{status_label}”，不能{row.label}。"
    if row.clock == "running" and item.paused_at is not None:
        return f"该件已在等待群众补充（当前状态“{status_label}”），不能再次{row.label}。"
    if row.clock == "paused" and item.paused_at is None:
        return f"该件没有在等待群众补充（当前状态“{status_label}”），无需{row.label}。"
    return None


def perform_action(
    item: Item,
    actor: StaffUser,
    action: str,
    *,
    text: str = "",
    department_id=None,
    due=None,
    deputy_id=None,
    duplicate_of=None,
    outcome=None,
) -> ItemEvent:
    """Take a staff ``action`` on ``item`` (see the module table) and return the event it wrote.

    Refuses with a UserError and writes nothing: 400 for an unknown action or bad input
    (``field`` names the input), 404 when ``actor`` cannot see the item (the route should
    have answered that already, via ``access.find_item_for_staff``), 403 when the actor's
    role may not take the action, 409 ``transition_not_allowed`` when the state forbids it.
    Flushes; the caller commits. After a forward, ``forward_link_token(event)`` gives the
    department's link token (``department_link_token(forward)`` gives it again later).
    """
    row = TRANSITIONS.get(action) if isinstance(action, str) else None
    if row is None:
        raise UserError("invalid_action", "不支持的操作。", 400, field="action")
    if not can_see_item(actor, item):
        raise UserError("unknown_item", "找不到该留言，请核对编号。", 404)
    if action not in ROLE_ACTIONS.get(actor.role, frozenset()):
        raise UserError("action_not_permitted", f"您的账号不能对留言进行“{row.label}”操作。", 403)
    lock_row(item)
    refusal = _refusal(item, row)
    if refusal is not None:
        raise UserError("transition_not_allowed", refusal, 409)

    now = utcnow()
    step = _CHECKS[action](
        item,
        _Step(),
        text=text,
        department_id=department_id,
        due=due,
        deputy_id=deputy_id,
        duplicate_of=duplicate_of,
        outcome=outcome,
        now=now,
    )

    # Everything is checked; from here on, write.
    if row.accepts_first and item.status == ItemStatus.SUBMITTED:
        # A first reply or forward takes the item on: the 受理 is written as the explicit one is (its own
        # event, notice and audit row), marked as implied, so the resident hears 受理 once and the record
        # keeps every step; the timelines show the two as one entry (``implied_accept``).
        implied = _Step(data={"implied_by": action})
        _apply_accept(item, actor, implied, now)
        _write(item, actor, "accept", implied, now)
        step.data["implied_accept"] = True
    _restart_clock_first(item, row, now, step.data)
    _APPLY[action](item, actor, step, now)
    return _write(item, actor, action, step, now)


def _write(item: Item, actor: StaffUser, action: str, step: _Step, now: datetime) -> ItemEvent:
    """Write what a checked and applied ``action`` leaves: the status, its event, the outbox rows, the audit row."""
    row = TRANSITIONS[action]
    before = item.status
    if row.to is not None:
        item.status = row.to
    item.updated_at = now
    event = ItemEvent(
        kind=row.event_kind,
        actor_kind=ActorKind.STAFF,
        actor_user_id=actor.id,
        is_public=row.is_public,
        body=step.body,
        data={"action": action, **step.data},
        created_at=now,
    )
    item.events.append(event)
    db.session.flush()

    if row.resident_notice and item.resident_id is not None:
        db.session.add(
            OutboxMessage(
                kind=row.resident_notice,
                item_id=item.id,
                resident_id=item.resident_id,
                payload={"event_id": event.id},
            )
        )
    if action == "reassign":
        notices.queue_new_item_notices(db.session.connection(), item.id, None, step.deputy.id, now, reassigned=True)
    if action == "forward":
        # A department with accounts hears of it in WeChat (its bound accounts) and finds it in its inbox;
        # one without keeps the no-account link, and its row has no recipient (skipped by the worker).
        accounts = department_accounts(step.department.id)
        for user_id in [user.id for user in accounts] or [None]:
            db.session.add(
                OutboxMessage(
                    kind="department_new_item",
                    item_id=item.id,
                    staff_user_id=user_id,
                    payload={"forward_id": step.forward.id},
                )
            )
    _notify_handlers(item, row, event)
    audit_data = {"ref": item.ref, "from": before.value, "to": item.status.value, "event_id": event.id}
    audit_data.update({k: v for k, v in step.data.items() if k in _AUDITED_KEYS})
    record_audit(f"item_{action}", user=actor, object_type="item", object_id=item.id, data=audit_data)
    if step.token is not None:
        event._department_token = step.token  # transient: read by forward_link_token
    return event


def _restart_clock_first(item: Item, row: Transition, now: datetime, data: dict) -> None:
    """A paused clock restarts before a row that says so (``restarts_clock``); the counted pause goes in ``data``."""
    if row.restarts_clock and item.paused_at is not None:
        waited = deadlines.resume_clock(item, now)
        data["clock_restarted_after_seconds"] = int(waited.total_seconds())


def _notify_handlers(item: Item, row: Transition, event: ItemEvent) -> None:
    """Queue the row's ``staff_notice`` for each of the item's handlers (its deputy's accounts, or the station's
    administrators), naming the event: through ``outbox.queue``, so several within the hour go as one."""
    if row.staff_notice is None:
        return
    notices.queue_for_item(row.staff_notice, item, event.created_at, {"event_id": event.id})


_AUDITED_KEYS = {
    "forward_id",
    "department_id",
    "from_deputy_id",
    "to_deputy_id",
    "duplicate_of",
    "outcome",
    "due",
    "implied_by",
}


def lock_row(row) -> None:
    """Re-read ``row`` under a row lock (PostgreSQL), so that two people acting at once act one after the other.

    SQLite serialises the same way with its write lock, which a transaction holds from its BEGIN
    IMMEDIATE, or (one begun in read mode, ``backend.database``) from this locking read on. Changes
    the caller made to ``row`` without flushing are discarded.
    """
    if row in db.session and row.id is not None:
        db.session.refresh(row, with_for_update=True)


def forward_link_token(event: ItemEvent) -> str | None:
    """The department's link token, right after the forward that made it; None for any other event."""
    return getattr(event, "_department_token", None)


# --- checks: validate inputs, write nothing ----------------------------------------------


def _staff_text(value: object, label: str, *, required: bool) -> str:
    return clean_text(value, "text", label, max_chars=STAFF_TEXT_MAX_CHARS, required=required, multiline=True)


def _text_only(label: str, *, required: bool):
    """The check of an action whose only input is its text, named ``label`` in the error."""

    def check(item: Item, step: _Step, *, text, **_) -> _Step:
        step.text = _staff_text(text, label, required=required)
        return step

    return check


def _check_supervise(item: Item, step: _Step, *, text, now, **_) -> _Step:
    step.text = _staff_text(text, "督办意见", required=False)
    # A second 督办 moments after the first (a double click, two supervisors at once) would remind
    # the deputy twice: refused, saying when the last one was. The item is locked (lock_row) by now.
    last = db.session.scalar(
        select(ItemEvent.created_at)
        .where(ItemEvent.item_id == item.id, ItemEvent.kind == ItemEventKind.SUPERVISED)
        .order_by(ItemEvent.created_at.desc())
        .limit(1)
    )
    if last is not None and now - last < SUPERVISE_REPEAT_AFTER:
        at = last.astimezone(CHINA_TZ)
        raise UserError(
            "recently_supervised",
            f"该件已于 {at:%H:%M} 督办，代表已收到提醒；{SUPERVISE_REPEAT_AFTER.seconds // 60} 分钟内不再重复督办。",
            409,
        )
    return step


def _open_forwards(item: Item) -> list[ItemForward]:
    return list(
        db.session.scalars(
            select(ItemForward)
            .where(ItemForward.item_id == item.id, *ItemForward.live_conditions(), ItemForward.answered_at.is_(None))
            .order_by(ItemForward.id.desc())
        )
    )


def _check_forward(item: Item, step: _Step, *, text, department_id, due, now, **_) -> _Step:
    message = "请选择一个承办单位。"
    if department_id in (None, ""):
        raise UserError("required", message, 400, field="department_id")
    department = db.session.get(Department, clean_id(department_id, "department_id", message))
    allowed_regions = {region.id for region in item.station.region.lineage()}
    if department is None or not department.is_active or department.region_id not in allowed_regions:
        raise UserError("invalid_department_id", "请选择本地区的一个承办单位。", 400, field="department_id")
    step.due = deadlines.parse_due(due, now)
    step.text = _staff_text(text, "交办要求", required=False)
    if any(f.department_id == department.id for f in _open_forwards(item)):
        raise UserError(
            "already_forwarded",
            f"该件已交办给{department.name}，尚未答复；如需重新交办，请先收回原交办链接。",
            409,
            field="department_id",
        )
    step.department = department
    return step


def _check_reassign(item: Item, step: _Step, *, text, deputy_id, **_) -> _Step:
    message = "请选择本站的另一位在任代表。"
    if deputy_id in (None, ""):
        raise UserError("required", message, 400, field="deputy_id")
    deputy = db.session.get(Deputy, clean_id(deputy_id, "deputy_id", message))
    if (
        deputy is None
        or deputy.station_id != item.station_id
        or deputy.status != DeputyStatus.SERVING
        or deputy.id == item.deputy_id
    ):
        raise UserError("invalid_deputy_id", message, 400, field="deputy_id")
    step.text = _staff_text(text, "转交原因", required=True)
    step.deputy = deputy
    return step


def _check_duplicate(item: Item, step: _Step, *, text, duplicate_of, **_) -> _Step:
    ref = normalize_ref(duplicate_of) if isinstance(duplicate_of, str) else None
    if ref is None:
        raise UserError("invalid_duplicate_of", "请填写与之重复的留言编号，例如7K4P-9QXD。", 400, field="duplicate_of")
    target = db.session.scalar(select(Item).where(Item.ref == ref))
    # Items of other stations answer like unknown ones: a reference says nothing beyond the station.
    if target is None or target.station_id != item.station_id:
        raise UserError(
            "invalid_duplicate_of", f"本站没有编号为{format_ref(ref)}的留言，请核对编号。", 400, field="duplicate_of"
        )
    if target.id == item.id:
        raise UserError("invalid_duplicate_of", "不能把留言标记为与自己重复。", 400, field="duplicate_of")
    if target.status in (ItemStatus.DUPLICATE, ItemStatus.DECLINED, ItemStatus.WITHDRAWN):
        raise UserError(
            "invalid_duplicate_of",
            f"编号{format_ref(ref)}的留言本身已是重复件、不予受理或已被群众撤回，请填写原始留言的编号。",
            400,
            field="duplicate_of",
        )
    step.text = _staff_text(text, "说明", required=False)
    step.target = target
    return step


def _check_resolve(item: Item, step: _Step, *, text, outcome, **_) -> _Step:
    try:
        step.outcome = ItemOutcome(outcome)
    except ValueError:
        raise UserError(
            "invalid_outcome", "请选择办理结果：已解决、部分解决或未能解决。", 400, field="outcome"
        ) from None
    needs_reason = step.outcome != ItemOutcome.SOLVED
    step.text = _staff_text(
        text, "办理结果说明" if not needs_reason else "部分解决或未能解决的原因", required=needs_reason
    )
    return step


def _check_extend(item: Item, step: _Step, *, text, due, now, **_) -> _Step:
    step.due = deadlines.parse_due(due, now)
    if item.due_at is not None and step.due <= item.due_at:
        current = format_month_day(item.due_at.astimezone(CHINA_TZ).date())
        raise UserError("due_not_later", f"延长后的期限应晚于原期限（{current}）。", 400, field="due")
    step.text = _staff_text(text, "延期原因", required=True)
    return step


_CHECKS = {
    "accept": _text_only("受理说明", required=False),
    "decline": _text_only("不予受理的原因", required=True),
    "duplicate": _check_duplicate,
    "reassign": _check_reassign,
    "reply": _text_only("答复内容", required=True),
    "forward": _check_forward,
    "resolve": _check_resolve,
    "extend": _check_extend,
    "wait_for_resident": _text_only("需要群众补充的内容", required=True),
    "resume": _text_only("说明", required=False),
    "supervise": _check_supervise,
    "note": _text_only("备注内容", required=True),
}


# --- writes: the columns each action mirrors, and the event's body and data ---------------


def _due_label(moment: datetime) -> str:
    return format_month_day(moment.astimezone(CHINA_TZ).date())


def _apply_accept(item: Item, actor: StaffUser, step: _Step, now: datetime) -> None:
    item.accepted_at = now
    item.due_at = deadlines.answer_deadline(now)
    step.body = step.text


def _apply_decline(item: Item, actor: StaffUser, step: _Step, now: datetime) -> None:
    item.outcome_reason = step.text  # the reason the resident is shown
    step.body = step.text


def _apply_duplicate(item: Item, actor: StaffUser, step: _Step, now: datetime) -> None:
    item.duplicate_of_id = step.target.id
    step.body = step.text or f"与编号{format_ref(step.target.ref)}的留言反映的问题相同，将一并办理。"
    step.data["duplicate_of"] = step.target.ref


def _apply_reassign(item: Item, actor: StaffUser, step: _Step, now: datetime) -> None:
    step.data.update({"from_deputy_id": item.deputy_id, "to_deputy_id": step.deputy.id, "reason": step.text})
    item.deputy = step.deputy
    step.body = f"已转交{step.deputy.name}代表办理。"


def _apply_reply(item: Item, actor: StaffUser, step: _Step, now: datetime) -> None:
    if item.first_answered_at is None:
        item.first_answered_at = now
    if item.status != ItemStatus.ANSWERED:
        item.due_at = deadlines.resolve_deadline(now)
    step.body = step.text


def _apply_forward(item: Item, actor: StaffUser, step: _Step, now: datetime) -> None:
    forward = ItemForward(
        item_id=item.id,
        department_id=step.department.id,
        forwarded_by_id=actor.id,
        instructions=step.text,
        due_at=step.due,
        created_at=now,
    )
    db.session.add(forward)
    db.session.flush()
    item.due_at = step.due
    step.forward, step.token = forward, department_link_token(forward)
    step.body = f"已交办{step.department.name}，办理期限{_due_label(step.due)}。"
    step.data.update(
        {
            "forward_id": forward.id,
            "department_id": step.department.id,
            "department": step.department.name,
            "due": step.due.isoformat(),
        }
    )


def _apply_resolve(item: Item, actor: StaffUser, step: _Step, now: datetime) -> None:
    item.resolved_at = now
    item.outcome = step.outcome
    item.outcome_reason = step.text
    # A new resolution waits for a new verdict.
    item.satisfaction = None
    item.is_solved_per_resident = None
    item.rated_at = None
    label = ITEM_OUTCOME_LABELS[step.outcome]
    step.body = f"办理结果：{label}。{step.text}" if step.text else f"办理结果：{label}。"
    step.data["outcome"] = step.outcome.value


def _apply_extend(item: Item, actor: StaffUser, step: _Step, now: datetime) -> None:
    previous = item.due_at
    item.due_at = step.due
    if item.status == ItemStatus.FORWARDED:
        for forward in _open_forwards(item)[:1]:
            if forward.due_at < step.due:
                forward.due_at = step.due
                step.data["forward_id"] = forward.id
    step.body = f"办理期限延长至{_due_label(step.due)}。{step.text}"
    step.data.update({"from": previous.isoformat() if previous else None, "due": step.due.isoformat()})


def _apply_wait(item: Item, actor: StaffUser, step: _Step, now: datetime) -> None:
    deadlines.pause_clock(item, now)
    step.body = step.text


def _apply_resume(item: Item, actor: StaffUser, step: _Step, now: datetime) -> None:
    waited = deadlines.resume_clock(item, now)
    step.body = step.text
    step.data["paused_seconds"] = int(waited.total_seconds())


SUPERVISE_DEFAULT_TEXT = "请抓紧办理，尽快答复群众。"
SUPERVISE_REPEAT_AFTER = timedelta(minutes=10)  # a second 督办 of one item within this is refused


def _apply_supervise(item: Item, actor: StaffUser, step: _Step, now: datetime) -> None:
    step.body = step.text or SUPERVISE_DEFAULT_TEXT
    step.data.update(
        {
            "was_overdue": deadlines.is_overdue(item, now),
            "due": item.due_at.isoformat() if item.due_at else None,
        }
    )


def _apply_note(item: Item, actor: StaffUser, step: _Step, now: datetime) -> None:
    step.body = step.text


_APPLY = {
    "accept": _apply_accept,
    "decline": _apply_decline,
    "duplicate": _apply_duplicate,
    "reassign": _apply_reassign,
    "reply": _apply_reply,
    "forward": _apply_forward,
    "resolve": _apply_resolve,
    "extend": _apply_extend,
    "wait_for_resident": _apply_wait,
    "resume": _apply_resume,
    "supervise": _apply_supervise,
    "note": _apply_note,
}


# --- departments ---------------------------------------------------------------------------


def hash_forward_token(token: str) -> str:
    """The SHA-256 hex digest under which a link handed out before link versions was stored (``token_hash``)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


LINK_MAC_BYTES = 16  # 128 bits of HMAC-SHA256 in every link
_LINK_TOKEN_RE = re.compile(r"^([1-9][0-9]{0,11})\.([1-9][0-9]{0,5})\.([A-Za-z0-9_-]{22})$")


def _link_mac(forward_id: int, version: int) -> str:
    key = current_app.config["SECRET_KEY"].encode()
    message = f"department-link|{forward_id}|{version}".encode()
    digest = hmac.new(key, message, hashlib.sha256).digest()[:LINK_MAC_BYTES]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def department_link_token(forward: ItemForward) -> str:
    """The department's link token of ``forward`` at its current version: ``<id>.<version>.<HMAC>``.

    Derived, not stored: the item page can show it again at any time (the forward and the secret
    key give it back), and renewing (``renew_forward_link``) bumps the version, so every earlier
    token stops working. Changing ``SECRET_KEY`` ends every department link, as it ends every session.
    """
    return f"{forward.id}.{forward.link_version}.{_link_mac(forward.id, forward.link_version)}"


@dataclass(frozen=True)
class ForwardLink:
    """What a department link token opens: the forward and the link's state.

    ``state``: "live"; "expired" (answered and resolved, and the grace period over: ``expired_at``);
    "revoked" (收回交办); "superseded" (a renewal made a newer link); or "unknown" (no such link:
    ``forward`` is None).
    """

    state: str
    forward: ItemForward | None = None
    expired_at: datetime | None = None


def link_expires_at(forward: ItemForward, item: Item) -> datetime | None:
    """When a department link stops working: ``DEPARTMENT_LINK_GRACE_DAYS`` after the later of the forward's
    answer and the item's resolution (or of a renewal); None while either is outstanding or the item is open again."""
    if forward.answered_at is None or item.status != ItemStatus.RESOLVED or item.resolved_at is None:
        return None
    since = max(filter(None, (forward.answered_at, item.resolved_at, forward.link_renewed_at)))
    return since + timedelta(days=current_app.config["DEPARTMENT_LINK_GRACE_DAYS"])


def open_forward_link(token: object, now: datetime | None = None) -> ForwardLink:
    """The forward behind a department link token and whether the link still works (``ForwardLink``).

    Tokens of the current form are checked by their HMAC (in constant time) before any look-up;
    older random ones by their stored SHA-256.
    """
    if not isinstance(token, str) or not 16 <= len(token) <= 128:
        return ForwardLink("unknown")
    match = _LINK_TOKEN_RE.match(token)
    if match is not None:
        forward_id, version, mac = int(match[1]), int(match[2]), match[3]
        if not hmac.compare_digest(mac, _link_mac(forward_id, version)):
            return ForwardLink("unknown")
        forward = db.session.get(ItemForward, forward_id)
        if forward is None:
            return ForwardLink("unknown")
        if version != forward.link_version:
            return ForwardLink("superseded", forward)
    else:
        forward = db.session.scalar(select(ItemForward).where(ItemForward.token_hash == hash_forward_token(token)))
        if forward is None:
            return ForwardLink("unknown")
    if forward.revoked_at is not None:
        return ForwardLink("revoked", forward)
    expires_at = link_expires_at(forward, db.session.get(Item, forward.item_id))
    if expires_at is not None and expires_at <= (now or utcnow()):
        return ForwardLink("expired", forward, expires_at)
    return ForwardLink("live", forward)


def find_forward(token: str, item_id: int | None = None) -> ItemForward | None:
    """The forward behind a working department link token; with ``item_id``, only if it is that item's."""
    link = open_forward_link(token)
    if link.state != "live" or (item_id is not None and link.forward.item_id != item_id):
        return None
    return link.forward


def renew_forward_link(forward: ItemForward, actor: StaffUser) -> str:
    """Give the department a new link to a forward (its old ones stop working); returns the new token.

    For the deputy or station administrator of the item, on a forward not revoked: after its
    link expired (the department must look again), or when a link went astray. The link works
    for ``DEPARTMENT_LINK_GRACE_DAYS`` from now even on an answered, resolved item. Writes a
    private note and an audit row; flushes, the caller commits.
    """
    item = db.session.get(Item, forward.item_id)
    if not can_see_item(actor, item) or actor.role not in (StaffRole.DEPUTY, StaffRole.STATION_ADMIN):
        raise UserError("unknown_item", "找不到该留言，请核对编号。", 404)
    lock_row(forward)
    if forward.revoked_at is not None:
        raise UserError("forward_revoked", "该交办链接已收回，不能重新开通；如需再交办，请重新交办。", 409)
    now = utcnow()
    forward.link_version += 1
    forward.link_renewed_at = now
    forward.token_hash = None  # a link of the older form stops working too
    _forward_note(
        item,
        forward,
        actor,
        now,
        "forward_link_renewed",
        body=f"已为{forward.department.name}重新开通交办链接，原链接作废。",
        data={"action": "renew_forward_link", "forward_id": forward.id, "link_version": forward.link_version},
    )
    return department_link_token(forward)


def add_private_note(item: Item, actor: StaffUser, now: datetime, body: str, data: dict) -> ItemEvent:
    """A private note on the item's timeline for something staff did beside the table's actions
    (``data["action"]`` names it: revoke_forward, renew_forward_link, reissue_receipt). Flushes."""
    event = ItemEvent(
        kind=ItemEventKind.NOTE,
        actor_kind=ActorKind.STAFF,
        actor_user_id=actor.id,
        is_public=False,
        body=body,
        data=data,
        created_at=now,
    )
    item.events.append(event)
    db.session.flush()
    return event


def _forward_note(item: Item, forward: ItemForward, actor: StaffUser, now, audit_action: str, *, body, data) -> None:
    """A private note on the item's timeline for something done to a forward's link, and its audit row."""
    add_private_note(item, actor, now, body, data)
    audited = {"ref": item.ref, "department_id": forward.department_id}
    if "link_version" in data:
        audited["link_version"] = data["link_version"]
    record_audit(audit_action, user=actor, object_type="item_forward", object_id=forward.id, data=audited)


def revoke_forward(forward: ItemForward, actor: StaffUser) -> None:
    """Withdraw a department's link (收回交办); a no-op when already revoked. Writes a private note and an audit row."""
    item = db.session.get(Item, forward.item_id)
    if not can_see_item(actor, item) or actor.role not in (StaffRole.DEPUTY, StaffRole.STATION_ADMIN):
        raise UserError("unknown_item", "找不到该留言，请核对编号。", 404)
    lock_row(forward)
    if forward.revoked_at is not None:
        return
    now = utcnow()
    forward.revoked_at = now
    _forward_note(
        item,
        forward,
        actor,
        now,
        "forward_revoked",
        body=f"已收回给{forward.department.name}的交办链接。",
        data={"action": "revoke_forward", "forward_id": forward.id, "department_id": forward.department_id},
    )


def _parse_promised_by(value: object, item: Item) -> date | None:
    if value in (None, ""):
        return None
    invalid = UserError("invalid_promised_by", "请填写有效的完成日期，例如2026-12-31。", 400, field="promised_by")
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value.strip())
        except ValueError:
            raise invalid from None
    if isinstance(value, datetime) or not isinstance(value, date):
        raise invalid
    earliest = today_in_china(item.created_at)
    if not earliest <= value <= today_in_china() + timedelta(days=2 * 366):
        raise invalid
    return value


def department_accounts(department_id: int) -> list[StaffUser]:
    """The active accounts of a department: who finds its forwarded items in the inbox and is told of new ones."""
    return list(
        db.session.scalars(
            select(StaffUser)
            .where(
                StaffUser.department_id == department_id,
                StaffUser.role == StaffRole.DEPARTMENT,
                StaffUser.is_active.is_(True),
            )
            .order_by(StaffUser.id)
        )
    )


def live_forward_of_department(item: Item, department_id: int) -> ItemForward | None:
    """The department's latest forward of ``item`` still in its hands (neither revoked nor returned), or None."""
    return db.session.scalar(
        select(ItemForward)
        .where(
            ItemForward.item_id == item.id, ItemForward.department_id == department_id, *ItemForward.live_conditions()
        )
        .order_by(ItemForward.id.desc())
        .limit(1)
    )


def _department_may_act(forward: ItemForward, *, what: str) -> Item:
    """Lock the forward and refuse (writing nothing) what a department may no longer do on it; its item."""
    lock_row(forward)
    if forward.revoked_at is not None:
        raise UserError("unknown_forward", "该交办链接已失效，请联系交办的代表。", 404)
    if forward.returned_at is not None:
        raise UserError("forward_returned", f"该件已退回交办的代表，不能再{what}。", 409)
    item = db.session.get(Item, forward.item_id)
    if item.status in (ItemStatus.DECLINED, ItemStatus.DUPLICATE):
        raise UserError("transition_not_allowed", f"该件已{ITEM_STATUS_LABELS[item.status]}，不能再{what}。", 409)
    return item


def _department_step(
    item: Item,
    forward: ItemForward,
    kind: ItemEventKind,
    body: str,
    data: dict,
    notice: str,
    audit: str,
    now,
    *,
    resident_notice: str | None = None,
) -> ItemEvent:
    """A department's step: a private event on the item's timeline (the deputy decides what the resident is told),
    the handlers' outbox rows of kind ``notice``, the resident's of kind ``resident_notice`` when given (it says
    that the step happened, never the private text), and an audit row. Flushes."""
    event = ItemEvent(
        kind=kind,
        actor_kind=ActorKind.DEPARTMENT,
        is_public=False,
        body=body,
        data={"forward_id": forward.id, "department_id": forward.department_id, "department": forward.department.name}
        | data,
        created_at=now,
    )
    item.events.append(event)
    item.updated_at = now
    db.session.flush()
    notices.queue_deputy_notice(
        db.session.connection(),
        notice,
        item.id,
        [u.id for u in _handlers_of(item)],
        now,
        {"forward_id": forward.id, "event_id": event.id},
    )
    if resident_notice is not None and item.resident_id is not None:
        db.session.add(
            OutboxMessage(
                kind=resident_notice,
                item_id=item.id,
                resident_id=item.resident_id,
                payload={"forward_id": forward.id, "event_id": event.id},
            )
        )
    record_audit(
        audit,
        object_type="item_forward",
        object_id=forward.id,
        data={"ref": item.ref, "department_id": forward.department_id, "event_id": event.id},
    )
    return event


def department_answer(forward: ItemForward, text: str, promised_by: date | None, *, final: bool = True) -> ItemEvent:
    """Record a department's answer to a forward: a progress report (``final=False``, as often as needed) or the
    final answer, what was done and by when (once per forward).

    The event is private: the deputy reads it and decides what the resident is told. The
    item's deputy (or, for an item without one, the station's administrators) gets a
    ``deputy_department_replied`` outbox row; the resident an ``item_department_replied`` one
    (部门已答复: that the department answered, not what). Refuses a revoked link (404), anything after the
    final answer, a returned forward and an item closed as declined or duplicate (409).
    Flushes; the caller commits.
    """
    item = _department_may_act(forward, what="答复")
    if forward.answered_at is not None:
        raise UserError("already_answered", "该交办件已经答复过，不能重复答复。如需补充，请联系交办的代表。", 409)
    label = "办理情况" if final else "办理进展"
    answer = clean_text(text, "text", label, max_chars=STAFF_TEXT_MAX_CHARS, required=True, multiline=True)
    promised = _parse_promised_by(promised_by, item)

    now = utcnow()
    if final:
        forward.answer = answer
        forward.answered_at = now
        forward.promised_by = promised
        forward.extension_due_at, forward.extension_reason, forward.extension_requested_at = None, "", None
    data = {"promised_by": promised.isoformat() if promised else None, "final": final}
    audit = "forward_answered" if final else "forward_progress"
    return _department_step(
        item,
        forward,
        ItemEventKind.DEPARTMENT_REPLIED,
        answer,
        data,
        "deputy_department_replied",
        audit,
        now,
        resident_notice="item_department_replied",
    )


def department_return(forward: ItemForward, reason: object) -> ItemEvent:
    """退回: the department gives the item back to the deputy, saying why (required: 400 without).

    The forward closes (it leaves the department's inbox; its link shows the item, read-only);
    an item left with no other forward in hand goes back to 已受理 with the deputy. The deputy
    is told (``deputy_department_returned``). Refused after the final answer (409). Flushes.
    """
    item = _department_may_act(forward, what="退回")
    if forward.answered_at is not None:
        raise UserError("already_answered", "该交办件已经答复，不能再退回。", 409)
    text = clean_text(reason, "reason", "退回理由", max_chars=STAFF_TEXT_MAX_CHARS, required=True, multiline=True)
    now = utcnow()
    forward.returned_at = now
    forward.return_reason = text
    forward.extension_due_at, forward.extension_reason, forward.extension_requested_at = None, "", None
    lock_row(item)
    if item.status == ItemStatus.FORWARDED and not _open_forwards(item):
        item.status = ItemStatus.ACCEPTED
    return _department_step(
        item,
        forward,
        ItemEventKind.DEPARTMENT_RETURNED,
        text,
        {},
        "deputy_department_returned",
        "forward_returned",
        now,
    )


def sub_units(department_id: int) -> list[Department]:
    """The active units of a department (``Department.parent_id``): where it may pass an item on to."""
    return list(
        db.session.scalars(
            select(Department)
            .where(Department.parent_id == department_id, Department.is_active.is_(True))
            .order_by(Department.name, Department.id)
        )
    )


def department_pass_on(forward: ItemForward, department_id: object, due: object, text: object) -> ItemForward:
    """A second hop: the department passes the item on to one of its own units, with a due date of its own (on or
    before its own) and instructions; the unit answers back up the chain on its own forward.

    Refused, writing nothing: a unit that is not the department's own (400), a due date past the
    department's own (400), a forward that is itself a second hop, or answered, returned or
    revoked (409/404), a unit already holding the item (409). The unit's accounts are told
    (``department_new_item``) and find it in their inbox; one without accounts gets its own link,
    which the department's page shows. The deputy is told (``deputy_department_passed_on``). Flushes.
    """
    item = _department_may_act(forward, what="转交下属单位")
    if forward.answered_at is not None:
        raise UserError("already_answered", "该交办件已经答复，不能再转交。", 409)
    if forward.parent_forward_id is not None:
        raise UserError("second_hop_only", "下属单位不能再转交，请直接办理，或退回交办的单位。", 409)
    message = "请选择本单位的一个下属单位。"
    if department_id in (None, ""):
        raise UserError("required", message, 400, field="department_id")
    unit = db.session.get(Department, clean_id(department_id, "department_id", message))
    if unit is None or unit.parent_id != forward.department_id or not unit.is_active:
        raise UserError("invalid_department_id", message, 400, field="department_id")
    now = utcnow()
    unit_due = deadlines.parse_due(due, now)
    if unit_due > forward.due_at:
        raise UserError(
            "due_too_late", f"下属单位的期限不能晚于本单位的期限（{_due_label(forward.due_at)}）。", 400, field="due"
        )
    instructions = _staff_text(text, "转交要求", required=False)
    if live_forward_of_department(item, unit.id) is not None:
        raise UserError("already_forwarded", f"{unit.name}已经在办理该件。", 409, field="department_id")
    hop = ItemForward(
        item_id=item.id,
        department_id=unit.id,
        parent_forward_id=forward.id,
        instructions=instructions,
        due_at=unit_due,
        share_contact=forward.share_contact,
        created_at=now,
    )
    db.session.add(hop)
    db.session.flush()
    for user_id in [user.id for user in department_accounts(unit.id)] or [None]:
        db.session.add(
            OutboxMessage(
                kind="department_new_item", item_id=item.id, staff_user_id=user_id, payload={"forward_id": hop.id}
            )
        )
    _department_step(
        item,
        forward,
        ItemEventKind.SUB_FORWARDED,
        f"转交{unit.name}办理，期限{_due_label(unit_due)}。{instructions}",
        {"sub_forward_id": hop.id, "sub_department_id": unit.id, "due": unit_due.isoformat()},
        "deputy_department_passed_on",
        "forward_passed_on",
        now,
    )
    return hop


def extension_limit_days(item: Item) -> int:
    """The most days one extension a department asks for may add: the station's setting, else the configured one."""
    own = item.station.department_extension_max_days
    return own if own is not None else current_app.config["DEPARTMENT_EXTENSION_MAX_DAYS"]


def department_request_extension(forward: ItemForward, due: object, reason: object) -> ItemEvent:
    """The department asks the deputy for more time: a later due date, within the station's limit, and why.

    One request at a time (409 while one waits for the deputy); refused after the final answer
    (409); a date not later than the current due date, or past the limit, is refused (400). The
    deputy is told (``deputy_extension_requested``) and grants or refuses (``decide_extension``).
    Flushes.
    """
    item = _department_may_act(forward, what="申请延期")
    if forward.answered_at is not None:
        raise UserError("already_answered", "该交办件已经答复，无需延期。", 409)
    if forward.extension_requested_at is not None:
        raise UserError("extension_pending", "已申请延期，请等待交办的代表答复。", 409)
    now = utcnow()
    wanted = deadlines.parse_due(due, now)
    if wanted <= forward.due_at:
        current = _due_label(forward.due_at)
        raise UserError("due_not_later", f"申请的期限应晚于现在的期限（{current}）。", 400, field="due")
    limit = extension_limit_days(item)
    if wanted > deadlines.end_of_day(forward.due_at.astimezone(CHINA_TZ).date() + timedelta(days=limit)):
        raise UserError("extension_too_long", f"每次最多申请延期{limit}天，请重新选择日期。", 400, field="due")
    text = clean_text(reason, "text", "延期理由", max_chars=STAFF_TEXT_MAX_CHARS, required=True, multiline=True)
    forward.extension_due_at, forward.extension_reason, forward.extension_requested_at = wanted, text, now
    return _department_step(
        item,
        forward,
        ItemEventKind.EXTENSION_REQUESTED,
        f"申请延期至{_due_label(wanted)}。{text}",
        {"due": wanted.isoformat(), "from": forward.due_at.isoformat()},
        "deputy_extension_requested",
        "forward_extension_requested",
        now,
    )


def decide_extension(forward: ItemForward, actor: StaffUser, grant: object, text: object = "") -> ItemEvent:
    """The deputy (or the station's administrator) grants or refuses a department's request for more time.

    Granting moves the forward's due date to the one asked for, and the item's when that is
    later (an 延长办理期限 the resident sees, through the table's ``extend``, with ``text`` as the
    reason, the department's by default). Refusing writes a private note (``text``: why,
    optional). Either way the request is cleared and the department reads the outcome on its
    page. 404 for someone who cannot see the item or may not decide, 409 without a pending
    request. Flushes.
    """
    item = db.session.get(Item, forward.item_id)
    if not can_see_item(actor, item) or actor.role not in (StaffRole.DEPUTY, StaffRole.STATION_ADMIN):
        raise UserError("unknown_item", "找不到该留言，请核对编号。", 404)
    lock_row(forward)
    if forward.extension_requested_at is None or not forward.is_live:
        raise UserError("no_extension_request", "承办单位没有待处理的延期申请。", 409)
    if grant not in (True, False, "grant", "refuse"):
        raise UserError("invalid_decision", "请选择同意或不同意延期。", 400, field="decision")
    granted = grant in (True, "grant")
    note = _staff_text(text, "说明", required=False)
    wanted, previous = forward.extension_due_at, forward.due_at
    now = utcnow()
    if granted and item.due_at is not None and wanted > item.due_at and item.status in _IN_HAND:
        event = perform_action(
            item,
            actor,
            "extend",
            due=wanted.astimezone(CHINA_TZ).date().isoformat(),
            text=note or forward.extension_reason,
        )
        event.data = {**event.data, "extension_of_forward": forward.id}
    else:
        body = (
            f"同意{forward.department.name}延期至{_due_label(wanted)}。"
            if granted
            else (f"不同意{forward.department.name}延期申请。{note}")
        )
        event = add_private_note(
            item,
            actor,
            now,
            body,
            {"action": "grant_extension" if granted else "refuse_extension", "forward_id": forward.id},
        )
    if granted:
        forward.due_at = wanted
    forward.extension_due_at, forward.extension_reason, forward.extension_requested_at = None, "", None
    record_audit(
        "forward_extension_granted" if granted else "forward_extension_refused",
        user=actor,
        object_type="item_forward",
        object_id=forward.id,
        data={
            "ref": item.ref,
            "department_id": forward.department_id,
            "from": previous.isoformat(),
            "due": wanted.isoformat(),
        },
    )
    db.session.flush()
    return event


def _handlers_of(item: Item) -> list[StaffUser]:
    """Who is told of work on an item: its deputy's accounts, or the station's administrators when it has none."""
    if item.deputy_id is not None:
        return operations.deputy_staff_users(item.deputy_id)
    return list(
        db.session.scalars(
            select(StaffUser)
            .where(
                StaffUser.station_id == item.station_id,
                StaffUser.role == StaffRole.STATION_ADMIN,
                StaffUser.is_active.is_(True),
            )
            .order_by(StaffUser.id)
        )
    )


# --- the resident answers back -------------------------------------------------------------

FOLLOW_UPS_PER_DAY = 1


def waiting_question(item: Item) -> ItemEvent | None:
    """While the item waits for the resident (等待群众补充), the deputy's public request that paused it; else None."""
    if item.paused_at is None or item.status not in _IN_HAND:
        return None
    for event in reversed(item.events):
        if event.is_public and (event.data or {}).get("action") == "wait_for_resident":
            return event
    return None


def _start_of_day_in_china(now: datetime) -> datetime:
    return datetime.combine(today_in_china(now), time(0), tzinfo=CHINA_TZ)


def follow_ups_today(item: Item, now: datetime | None = None) -> int:
    """How many 追问 the item took since midnight, China time: one a day is allowed (``FOLLOW_UPS_PER_DAY``)."""
    now = now or utcnow()
    return db.session.scalar(
        select(func.count())
        .select_from(ItemEvent)
        .where(
            ItemEvent.item_id == item.id,
            ItemEvent.kind == ItemEventKind.FOLLOWED_UP,
            ItemEvent.created_at >= _start_of_day_in_china(now),
        )
    )


def can_follow_up(item: Item, now: datetime | None = None) -> bool:
    """True when the resident may send a 追问 now: the table allows it and today's one is not spent."""
    return (
        not item.awaits_claim
        and _refusal(item, TRANSITIONS["follow_up"]) is None
        and follow_ups_today(item, now) < FOLLOW_UPS_PER_DAY
    )


def _resident_refusal(item: Item, action: str) -> UserError:
    """Why the resident's ``action`` is refused, in the resident's words (409)."""
    status_label = ITEM_STATUS_LABELS[item.status]
    if action == "resident_reply":
        return UserError(
            "not_waiting",
            f"这件留言目前没有需要您补充的内容（当前状态“{status_label}”）。如有新情况，可以追问。",
            409,
        )
    if item.status in ItemStatus.open_statuses() and item.paused_at is not None:
        return UserError("waiting_for_you", "代表正在等您补充情况，请在“待您补充”处回复。", 409)
    return UserError("not_open", f"这件留言已{status_label.removeprefix('已')}，不能再追问。", 409)


def resident_action(item: Item, action: str, text: object, photos: list[photo_intake.ProcessedPhoto] = ()) -> ItemEvent:
    """The resident answers back on their item: a reply to 等待群众补充 (``resident_reply``), or a 追问 (``follow_up``).

    Only the holder of the item's key may call this: the route has checked the key and refused
    any request carrying a staff credential; it takes no staff actor. Photos (replies only)
    come decoded (``photos.process_photo``), before the write transaction began.

    Refuses with a UserError and writes nothing: 400 for an empty or too long text, too many
    photos, or photos on a 追问; 409 when the table refuses (not waiting, not open), for an item
    not yet claimed, and for a second 追问 the same day. Writes the public event (with the
    positions of its photos), restarts a paused clock (the paused time does not count toward
    the deadline), queues the deputy's notice and an audit row. Flushes; the caller commits.
    """
    if action not in RESIDENT_ACTIONS:
        raise UserError("invalid_action", "不支持的操作。", 400, field="action")
    row = TRANSITIONS[action]
    config = current_app.config
    body = clean_text(
        text,
        "text",
        "补充内容" if action == "resident_reply" else "追问内容",
        max_chars=config["ITEM_BODY_MAX_CHARS"],
        required=True,
        multiline=True,
    )
    photos = list(photos)
    if photos and action != "resident_reply":
        raise photo_intake.photo_error("photos_not_allowed", "追问只能写文字；需要补充照片时，请等代表请您补充。")
    if len(photos) > config["ITEM_MAX_PHOTOS"]:
        raise photo_intake.too_many_photos()
    # Written to the photo store before the row lock (a rollback below removes them again: photo_store).
    photo_rows = photo_store.store_photos(photos)
    lock_row(item)
    if item.awaits_claim:
        raise UserError("not_claimed", "这件意见是代表接待时录入的，请先用手机扫描回执认领。", 409)
    if _refusal(item, row) is not None:
        raise _resident_refusal(item, action)
    now = utcnow()
    if action == "follow_up" and follow_ups_today(item, now) >= FOLLOW_UPS_PER_DAY:
        raise UserError("follow_up_limit", "您今天已经追问过一次，代表会尽快处理；请明天再追问。", 409)

    data: dict = {"action": action}
    question = waiting_question(item)
    if question is not None:
        data["question_event_id"] = question.id
    _restart_clock_first(item, row, now, data)
    if photo_rows:
        start = max((p.position for p in item.photos), default=-1) + 1
        for photo_row in photo_rows:
            item.photos.append(ItemPhoto(**(photo_row | {"position": start + photo_row["position"]})))
        data["photos"] = list(range(start, start + len(photo_rows)))
    item.updated_at = now
    event = ItemEvent(
        kind=row.event_kind,
        actor_kind=ActorKind.RESIDENT,
        is_public=row.is_public,
        body=body,
        data=data,
        created_at=now,
    )
    item.events.append(event)
    db.session.flush()
    _notify_handlers(item, row, event)
    record_audit(
        f"item_{action}",
        object_type="item",
        object_id=item.id,
        data={"ref": item.ref, "event_id": event.id, "photos": len(photos)},
    )
    return event


# --- the resident's verdict ----------------------------------------------------------------

_SOLVED_WORDS = {
    "true": True,
    "1": True,
    "yes": True,
    "on": True,
    "false": False,
    "0": False,
    "no": False,
    "off": False,
}


def _parse_solved(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _SOLVED_WORDS:
        return parse_bool(value.strip())
    raise UserError("invalid_solved", "请选择问题是否已经解决。", 400, field="solved")


def judged_forward(item: Item) -> ItemForward | None:
    """The forward whose answer the resident's rating about to be given judges, or None when no department answered.

    The latest answer a department gave since the item's previous rating (or ever, for a first
    rating; a forward the deputy took back after the answer still counts): the departments' 满意率
    (``supervision.departments``) counts the verdict against that department. A rating after a
    reopening with no new department answer judges the deputy's work again, not a department's.
    """
    previous = db.session.scalar(
        select(func.max(ItemEvent.created_at)).where(
            ItemEvent.item_id == item.id, ItemEvent.kind == ItemEventKind.RATED
        )
    )
    query = select(ItemForward).where(ItemForward.item_id == item.id, ItemForward.answered_at.is_not(None))
    if previous is not None:
        query = query.where(ItemForward.answered_at > previous)
    return db.session.scalar(query.order_by(ItemForward.answered_at.desc(), ItemForward.id.desc()).limit(1))


def rate_item(item: Item, satisfaction: str, solved: bool, comment: str = "") -> ItemEvent:
    """Record the resident's verdict (满意度测评) on a resolved item; "unsatisfied" reopens it.

    Only the resident may call this: the route must have checked the item's access key or
    the resident's WeChat identity, and refused any request carrying a staff credential. It
    takes no staff actor on purpose, and no staff route may call it, so that nobody records
    satisfaction on a resident's behalf (被满意). An item a deputy entered in person is refused
    (409 ``not_claimed``) until the resident claimed it on their own phone (``items.claims``):
    the deputy never holds a key that rates.

    One rating per resolution (409 for a second, and for an item not resolved). Not
    satisfied needs the reason (``comment``) and puts the item back in hand: status
    accepted, ``reopen_count`` + 1, a fresh answer deadline from now (so it comes back on
    top of the inbox), and a ``deputy_item_reopened`` outbox row for the item's deputy.
    The forward whose department's answer the verdict judges (``judged_forward``) gets it too.
    Returns the RATED event. Flushes; the caller commits.
    """
    lock_row(item)
    if item.awaits_claim:
        raise UserError(
            "not_claimed",
            "这件意见是代表接待时录入的，群众本人用手机扫描回执认领后才能评价。",
            409,
        )
    if item.status != ItemStatus.RESOLVED:
        raise UserError(
            "transition_not_allowed",
            f"该件当前状态为“{ITEM_STATUS_LABELS[item.status]}”，办结后才能评价。",
            409,
        )
    if item.rated_at is not None:
        raise UserError("already_rated", "您已经评价过这次办理结果，不能重复评价。", 409)
    try:
        verdict = Satisfaction(satisfaction)
    except ValueError:
        raise UserError("invalid_satisfaction", "请选择满意、基本满意或不满意。", 400, field="satisfaction") from None
    is_solved = _parse_solved(solved)
    unsatisfied = verdict == Satisfaction.UNSATISFIED
    comment = clean_text(comment, "comment", "评价意见", max_chars=STAFF_TEXT_MAX_CHARS, required=False, multiline=True)
    if unsatisfied and not comment:
        raise UserError("required", "选择“不满意”时，请写下不满意的原因，代表会重新办理。", 400, field="comment")

    now = utcnow()
    judged = judged_forward(item)
    if judged is not None:
        judged.verdict, judged.verdict_at = verdict, now
    item.satisfaction = verdict
    item.is_solved_per_resident = is_solved
    item.rated_at = now
    item.updated_at = now
    summary = f"{SATISFACTION_LABELS[verdict]}；问题{'已' if is_solved else '未'}解决。"
    rated = ItemEvent(
        kind=ItemEventKind.RATED,
        actor_kind=ActorKind.RESIDENT,
        is_public=True,
        body=f"{summary}{comment}",
        data={"satisfaction": verdict.value, "solved": is_solved},
        created_at=now,
    )
    item.events.append(rated)
    if unsatisfied:
        item.status = ItemStatus.ACCEPTED
        item.reopen_count += 1
        item.paused_at = None
        item.resolved_at = None
        item.outcome = None
        item.outcome_reason = ""
        item.due_at = deadlines.answer_deadline(now)
        item.events.append(
            ItemEvent(
                kind=ItemEventKind.REOPENED,
                actor_kind=ActorKind.RESIDENT,
                is_public=True,
                body="您的意见已退回代表重新办理。",
                data={"reopen_count": item.reopen_count, "reason": comment},
                created_at=now,
            )
        )
    db.session.flush()
    if unsatisfied:
        notices.queue_for_event(item, item.events[-1])  # the REOPENED event just added
    record_audit(
        "item_rated",
        object_type="item",
        object_id=item.id,
        data={"ref": item.ref, "satisfaction": verdict.value, "solved": is_solved, "reopened": unsatisfied},
    )
    return rated
