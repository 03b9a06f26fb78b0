"""代表建议 (proposals): drafting one from several residents' items, submitting it, recording its answer.

Operations validate first and write nothing when they refuse; when they act they write the
proposal, one public event on every item behind it, the outbox rows for the residents
concerned and an audit row, then flush. The request commits.

The transition table (``TRANSITIONS`` below is the same table as data)::

    action   from       to         event on each item (public)   resident outbox
    -------  ---------  ---------  ----------------------------  ----------------------
    submit   drafted    submitted  PROPOSAL_INCLUDED             —
    answer   submitted  answered   PROPOSAL_ANSWERED             item_proposal_answered

Who: the deputy who drafted it, or a supervisor whose region holds it (``access.can_see_proposal``).
A proposal is drawn only from items the drafter can see (``access.visible_items_query``); a
reference that is unknown or out of sight is refused alike, and each hidden one leaves an
``item_access_denied`` audit row, as opening it would.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from backend.access import (
    PROPOSAL_DRAFTERS,
    can_see_item,
    can_see_proposal,
    manageable_stations_query,
    visible_items_query,
    visible_proposals_query,
)
from backend.audit import record_added, record_audit
from backend.errors import FieldErrors, UserError, checked
from backend.extensions import db
from backend.items.lifecycle import lock_row
from backend.items.presenters import departments_for_region, user_region
from backend.items.refs import format_ref, normalize_ref
from backend.items.validation import clean_id, clean_text
from backend.models import (
    ActorKind,
    Department,
    Item,
    ItemCategory,
    ItemEvent,
    ItemEventKind,
    OutboxMessage,
    Proposal,
    ProposalItem,
    ProposalStatus,
    StaffRole,
    StaffUser,
    Station,
    utcnow,
)

TITLE_MAX_CHARS = 100  # Proposal.title
BODY_MAX_CHARS = 5000
ANSWER_MAX_CHARS = 5000
MAX_ITEMS = 50  # one 建议 gathers a handful of messages, not a station's year
SEARCH_LIMIT = 50
WORDS_MAX_CHARS = 30
ANSWERED_NOTICE = "item_proposal_answered"


@dataclass(frozen=True)
class Transition:
    """One row of the table: where an action may start, where it leads, what each item's timeline and resident get."""

    label: str
    allowed_from: frozenset[ProposalStatus]
    to: ProposalStatus
    item_event: ItemEventKind
    resident_notice: str | None = None


TRANSITIONS: dict[str, Transition] = {
    "submit": Transition(
        label="提交",
        allowed_from=frozenset({ProposalStatus.DRAFTED}),
        to=ProposalStatus.SUBMITTED,
        item_event=ItemEventKind.PROPOSAL_INCLUDED,
    ),
    "answer": Transition(
        label="记录答复",
        allowed_from=frozenset({ProposalStatus.SUBMITTED}),
        to=ProposalStatus.ANSWERED,
        item_event=ItemEventKind.PROPOSAL_ANSWERED,
        resident_notice=ANSWERED_NOTICE,
    ),
}


def allowed_actions(proposal: Proposal) -> list[str]:
    """The actions the proposal's status allows now, in table order."""
    return [name for name, row in TRANSITIONS.items() if proposal.status in row.allowed_from]


def require_drafter(user: StaffUser) -> None:
    """403 for a role that drafts no 建议 (station administrators, departments)."""
    if user is None or user.role not in PROPOSAL_DRAFTERS:
        raise UserError("forbidden", "只有人大代表和人大常委会工作人员可以起草代表建议。", 403)


def departments_for(user: StaffUser) -> list[Department]:
    """The departments a user's 建议 may be addressed to: those of their region and the regions above it."""
    return departments_for_region(user_region(user))


def stations_for(user: StaffUser) -> list[Station]:
    """The places a user may search items by: a deputy's own station, a supervisor's stations."""
    if user.role == StaffRole.DEPUTY and user.deputy is not None:
        return [user.deputy.station]
    return list(db.session.scalars(manageable_stations_query(user).order_by(Station.id)))


def search_items(user: StaffUser, *, category: object = "", station_id: object = "", words: object = "") -> list[Item]:
    """The newest items ``user`` may see that match a category, a place (station) and words in the message.

    Items held for review are left out (nobody has seen them yet). At most ``SEARCH_LIMIT``.
    """
    query = visible_items_query(user).where(Item.is_held.is_(False))
    if category:
        try:
            query = query.where(Item.category == ItemCategory(category))
        except ValueError:
            raise UserError("invalid_category", "请选择一个有效的类别。", 400, field="category") from None
    if station_id:
        query = query.where(Item.station_id == clean_id(station_id, "station_id", "请选择一个有效的地点。"))
    text = clean_text(words, "q", "关键词", max_chars=WORDS_MAX_CHARS)
    if text:
        escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(Item.body.like(f"%{escaped}%", escape="\\"))
    return list(
        db.session.scalars(
            query.options(selectinload(Item.station), selectinload(Item.deputy))
            .order_by(Item.created_at.desc(), Item.id.desc())
            .limit(SEARCH_LIMIT)
        )
    )


def _refs(value: object) -> list[str]:
    """The references given, normalized and each once, in the order given; 400 when none or too many."""
    if isinstance(value, str):
        value = [part for part in value.replace("，", ",").replace("\n", ",").split(",") if part.strip()]
    if not isinstance(value, list | tuple) or not value:
        raise UserError("no_items", "请至少选择一件群众留言。", 400, field="item_refs")
    if len(value) > MAX_ITEMS:
        raise UserError("too_many_items", f"一件建议最多汇集{MAX_ITEMS}件留言。", 400, field="item_refs")
    refs: list[str] = []
    unknown: list[str] = []
    for raw in value:
        ref = normalize_ref(raw) if isinstance(raw, str) else None
        if ref is None:
            unknown.append(str(raw)[:20])
        elif ref not in refs:
            refs.append(ref)
    if unknown:
        raise _unknown_items(unknown)
    return refs


def _unknown_items(refs: list[str]) -> UserError:
    shown = "、".join(refs[:5]) + ("等" if len(refs) > 5 else "")
    return UserError("unknown_items", f"找不到这些留言：{shown}。请从检索结果中选择。", 400, field="item_refs")


def _items_in_sight(user: StaffUser, refs: list[str]) -> list[Item]:
    """The items of ``refs`` in the order given, or 400 naming those unknown or out of ``user``'s sight."""
    found = {item.ref: item for item in db.session.scalars(select(Item).where(Item.ref.in_(refs)))}
    hidden = [ref for ref, item in found.items() if not can_see_item(user, item)]
    for ref in hidden:  # as opening it would: the refusal is written down and kept through the error
        record_audit(
            "item_access_denied",
            user=user,
            object_type="item",
            object_id=found[ref].id,
            data={"ref": ref, "role": user.role.value, "via": "proposal"},
            keep=True,
        )
    missing = [ref for ref in refs if ref not in found or ref in hidden]
    if missing:
        raise _unknown_items([format_ref(ref) for ref in missing])
    return [found[ref] for ref in refs]


def _department(user: StaffUser, value: object) -> Department:
    department_id = clean_id(value, "department_id", "请选择答复这件建议的承办单位。")
    department = next((d for d in departments_for(user) if d.id == department_id), None)
    if department is None:
        raise UserError("invalid_department", "请选择本地区（或上级）的在用承办单位。", 400, field="department_id")
    return department


def draft_proposal(
    user: StaffUser, *, title: object, body: object, item_refs: object, department_id: object
) -> Proposal:
    """A new 建议 (drafted) from items ``user`` can see, addressed to a department of their region (flushes).

    Every field is checked before anything is refused (``FieldErrors``); nothing is written on a refusal
    but the audit rows of items out of sight.
    """
    require_drafter(user)
    errors: list[UserError] = []

    clean_title = checked(
        errors, lambda: clean_text(title, "title", "建议标题", max_chars=TITLE_MAX_CHARS, min_chars=4, required=True)
    )
    clean_body = checked(errors, lambda: clean_text(body, "body", "建议内容", max_chars=BODY_MAX_CHARS, multiline=True))
    department = checked(errors, lambda: _department(user, department_id))
    refs = checked(errors, lambda: _refs(item_refs))
    items = checked(errors, lambda: _items_in_sight(user, refs)) if refs is not None else None
    if errors:
        raise FieldErrors(errors)
    proposal = Proposal(
        title=clean_title,
        body=clean_body,
        department=department,
        region=user_region(user),
        drafted_by=user,
        deputy_id=user.deputy_id if user.role == StaffRole.DEPUTY else None,
        status=ProposalStatus.DRAFTED,
        links=[ProposalItem(item=item) for item in items],
    )
    record_added(
        proposal,
        "proposal_drafted",
        user=user,
        object_type="proposal",
        data={"items": [item.ref for item in items], "department_id": department.id},
    )
    return proposal


def find_proposal(user: StaffUser, proposal_id: object) -> Proposal:
    """The proposal if ``user`` may see it; 404 alike for unknown and out of sight (the latter audited)."""
    number = clean_id(proposal_id, "proposal_id", "找不到这件建议。")
    proposal = db.session.get(Proposal, number)
    if proposal is None:
        raise _no_proposal()
    if user is None or user.role not in PROPOSAL_DRAFTERS or not can_see_proposal(user, proposal):
        record_audit(
            "proposal_access_denied",
            user=user,
            object_type="proposal",
            object_id=proposal.id,
            data={"role": user.role.value if user is not None else None},
            keep=True,
        )
        raise _no_proposal()
    return proposal


def _no_proposal() -> UserError:
    return UserError("unknown_proposal", "找不到这件建议。", 404)


def proposals_of(user: StaffUser) -> list[Proposal]:
    """The proposals ``user`` may see, newest first."""
    return list(
        db.session.scalars(
            visible_proposals_query(user)
            .options(selectinload(Proposal.department), selectinload(Proposal.links))
            .order_by(Proposal.created_at.desc(), Proposal.id.desc())
        )
    )


def item_counts(proposals: list[Proposal]) -> dict[int, int]:
    """How many items stand behind each proposal (one query)."""
    ids = [p.id for p in proposals]
    if not ids:
        return {}
    rows = db.session.execute(
        select(ProposalItem.proposal_id, func.count())
        .where(ProposalItem.proposal_id.in_(ids))
        .group_by(ProposalItem.proposal_id)
    )
    return dict(rows.all())


def _hold_items(proposal: Proposal) -> None:
    """Lock the items behind a draft about to be submitted and read them again: a resident withdrawing one at the
    same moment either goes first (it left the draft) or waits and is refused (``membership``). 409 when every
    message behind the draft was withdrawn: there is nothing left to submit."""
    for link in list(proposal.links):
        lock_row(link.item)
    db.session.expire(proposal, ["links"])
    if not proposal.links:
        raise UserError(
            "no_items_left",
            "这件建议汇集的留言都已被群众撤回，不能提交。请重新选择留言起草。",
            409,
        )


def perform(proposal: Proposal, user: StaffUser, action: str, text: object = "") -> Proposal:
    """Take one action of the table on ``proposal`` (the caller has found it through ``find_proposal``).

    ``answer`` needs ``text`` (the department's answer), shown to every resident behind it. 409
    ``transition_not_allowed`` when the status does not allow the action, 409 ``no_items_left`` when a draft's
    messages were all withdrawn by their residents; nothing is written then.
    """
    row = TRANSITIONS.get(action)
    if row is None:
        raise UserError("invalid_action", "没有这项操作。", 400, field="action")
    if proposal.status not in row.allowed_from:
        raise UserError(
            "transition_not_allowed",
            f"这件建议当前状态为“{proposal.status.label}”，不能{row.label}。",
            409,
        )
    if action == "submit":
        _hold_items(proposal)
    answer = ""
    if action == "answer":
        answer = clean_text(
            text, "text", "答复内容", max_chars=ANSWER_MAX_CHARS, min_chars=2, required=True, multiline=True
        )
    now = utcnow()
    proposal.status = row.to
    proposal.updated_at = now
    if action == "submit":
        proposal.submitted_at = now
        body = (
            f"您的留言已与其他群众意见一并写入代表建议《{proposal.title}》，已提交，由{proposal.department.name}答复。"
        )
    else:
        proposal.answer = answer
        proposal.answered_at = now
        body = f"代表建议《{proposal.title}》已由{proposal.department.name}答复：{answer}"
    told = 0
    for item in proposal.items:
        event = ItemEvent(
            item=item,
            kind=row.item_event,
            actor_kind=ActorKind.STAFF,
            actor_user_id=user.id,
            is_public=True,
            body=body,
            data={"proposal_id": proposal.id},
            created_at=now,
        )
        db.session.add(event)
        if row.resident_notice and item.resident_id is not None:
            db.session.flush()  # the event's id, for the notice
            db.session.add(
                OutboxMessage(
                    kind=row.resident_notice,
                    item_id=item.id,
                    resident_id=item.resident_id,
                    payload={"event_id": event.id, "proposal_id": proposal.id},
                )
            )
            told += 1
    db.session.flush()
    record_audit(
        f"proposal_{action}",
        user=user,
        object_type="proposal",
        object_id=proposal.id,
        data={"status": proposal.status.value, "residents_told": told},
    )
    return proposal
