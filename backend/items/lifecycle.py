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
    reply              accepted, forwarded, answered         answered   REPLIED (public)         item_answered
    forward            accepted, forwarded, answered         forwarded  FORWARDED (public)       item_forwarded
    resolve            accepted, forwarded, answered         resolved   RESOLVED (public)        item_resolved
    extend             accepted, forwarded, answered         (same)     EXTENDED (public)        item_extended
    wait_for_resident  accepted, forwarded, answered; clock  (same)     NOTE (public)            item_waiting
                       running
    resume             accepted, forwarded, answered; clock  (same)     NOTE (private)           —
                       paused
    supervise          submitted, accepted, forwarded,       (same)     SUPERVISED (private)     —
                       answered
    note               every status                          (same)     NOTE (private)           —
    rate (resident)    resolved, not yet rated               resolved   RATED (public)           —
      … unsatisfied    resolved                              accepted   + REOPENED (public)      —

Anything not in the table answers 409 ``transition_not_allowed``: declined and duplicate
items take nothing but notes; a resolved item takes notes from staff and one rating from
the resident per resolution; an item must be accepted before it is answered, forwarded,
resolved or extended.

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

Who may act: deputies and station administrators take every staff action on items they
can see but 督办; supervisors only write notes and supervise; department users act only through their forward
link (``department_answer``). The resident's rating (``rate_item``) takes no staff actor at
all: there is no code path by which staff record satisfaction (被满意).

Event ``body`` is what the resident reads on public events; ``data`` is for staff only.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from flask import current_app
from sqlalchemy import select

from backend.audit import record_audit
from backend.errors import UserError
from backend.extensions import db
from backend.items import deadlines, operations
from backend.items.access import can_see_item
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

_OPEN = frozenset({ItemStatus.SUBMITTED, ItemStatus.ACCEPTED, ItemStatus.FORWARDED, ItemStatus.ANSWERED})
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
        "答复", _IN_HAND, ItemStatus.ANSWERED, ItemEventKind.REPLIED, True, "item_answered", restarts_clock=True
    ),
    "forward": Transition(
        "交办", _IN_HAND, ItemStatus.FORWARDED, ItemEventKind.FORWARDED, True, "item_forwarded", restarts_clock=True
    ),
    "resolve": Transition(
        "办结", _IN_HAND, ItemStatus.RESOLVED, ItemEventKind.RESOLVED, True, "item_resolved", restarts_clock=True
    ),
    "extend": Transition("延长办理期限", _IN_HAND, None, ItemEventKind.EXTENDED, True, "item_extended"),
    "wait_for_resident": Transition(
        "等待群众补充", _IN_HAND, None, ItemEventKind.NOTE, True, "item_waiting", clock="running"
    ),
    "resume": Transition("恢复计时", _IN_HAND, None, ItemEventKind.NOTE, False, clock="paused"),
    "supervise": Transition("督办", _OPEN, None, ItemEventKind.SUPERVISED, False),
    "note": Transition("写内部备注", frozenset(ItemStatus), None, ItemEventKind.NOTE, False),
}

ACTIONS = tuple(TRANSITIONS)

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
    before = item.status
    if row.restarts_clock and item.paused_at is not None:
        waited = deadlines.resume_clock(item, now)
        step.data["clock_restarted_after_seconds"] = int(waited.total_seconds())
    _APPLY[action](item, actor, step, now)
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
        db.session.add(
            OutboxMessage(kind="department_new_item", item_id=item.id, payload={"forward_id": step.forward.id})
        )
    if action == "supervise":
        notices.queue_for_event(item, event)
    audit_data = {"ref": item.ref, "from": before.value, "to": item.status.value, "event_id": event.id}
    audit_data.update({k: v for k, v in step.data.items() if k in _AUDITED_KEYS})
    record_audit(f"item_{action}", user=actor, object_type="item", object_id=item.id, data=audit_data)
    if step.token is not None:
        event._department_token = step.token  # transient: read by forward_link_token
    return event


_AUDITED_KEYS = {"forward_id", "department_id", "from_deputy_id", "to_deputy_id", "duplicate_of", "outcome", "due"}


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
            .where(ItemForward.item_id == item.id, ItemForward.revoked_at.is_(None), ItemForward.answered_at.is_(None))
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
    if target.status in (ItemStatus.DUPLICATE, ItemStatus.DECLINED):
        raise UserError(
            "invalid_duplicate_of",
            f"编号{format_ref(ref)}的留言本身已是重复件或不予受理，请填写原始留言的编号。",
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


def department_answer(forward: ItemForward, text: str, promised_by: date | None) -> ItemEvent:
    """Record a department's answer to a forward: what was done, and by when (once per forward).

    The event is private: the deputy reads it and decides what the resident is told. The
    item's deputy (or, for an item without one, the station's administrators) gets a
    ``deputy_department_replied`` outbox row. Refuses a revoked link (404), a second answer
    and an item closed as declined or duplicate (409). Flushes; the caller commits.
    """
    lock_row(forward)
    if forward.revoked_at is not None:
        raise UserError("unknown_forward", "该交办链接已失效，请联系交办的代表。", 404)
    if forward.answered_at is not None:
        raise UserError("already_answered", "该交办件已经答复过，不能重复答复。如需补充，请联系交办的代表。", 409)
    item = db.session.get(Item, forward.item_id)
    if item.status in (ItemStatus.DECLINED, ItemStatus.DUPLICATE):
        raise UserError("transition_not_allowed", f"该件已{ITEM_STATUS_LABELS[item.status]}，无需答复。", 409)
    answer = clean_text(text, "text", "办理情况", max_chars=STAFF_TEXT_MAX_CHARS, required=True, multiline=True)
    promised = _parse_promised_by(promised_by, item)

    now = utcnow()
    forward.answer = answer
    forward.answered_at = now
    forward.promised_by = promised
    event = ItemEvent(
        kind=ItemEventKind.DEPARTMENT_REPLIED,
        actor_kind=ActorKind.DEPARTMENT,
        is_public=False,
        body=answer,
        data={
            "forward_id": forward.id,
            "department_id": forward.department_id,
            "department": forward.department.name,
            "promised_by": promised.isoformat() if promised else None,
        },
        created_at=now,
    )
    item.events.append(event)
    item.updated_at = now
    db.session.flush()
    notices.queue_for_event(item, event)  # the handlers: "承办单位已答复"
    record_audit(
        "forward_answered",
        object_type="item_forward",
        object_id=forward.id,
        data={"ref": item.ref, "department_id": forward.department_id, "event_id": event.id},
    )
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
