"""A resident withdraws a message that went into a 代表建议: one rule, here, for the tracking page and the API.

What a resident expects: a message nobody has acted on can be taken back. A 建议 that is only drafted has not
left the drafter's desk and said nothing on the message's tracking page (drafting writes no event on the items:
``operations``), so withdrawing takes the message out of every draft that holds it; the drafter sees it gone
from the draft, and the draft's history (``history``) says a message was withdrawn by its resident, by its
number. Once a 建议 holding the message has been submitted or answered (``ProposalStatus.holds_its_items``), the
message is part of what the congress received, and the resident's tracking page said so: withdrawing is refused
(409 ``in_submitted_proposal``, with the sentence the page shows). Erasing the contact still works then: it
anonymises the message, which stays behind the 建议 (``items.retention.erase_contact`` never unlinks).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select

from backend.audit import record_audit
from backend.errors import UserError
from backend.extensions import db
from backend.items.refs import format_ref
from backend.models import AuditEntry, Item, Proposal, ProposalItem, ProposalStatus, StaffUser, utcnow

WITHDRAWN_ACTION = "proposal_item_withdrawn"  # the draft's history line (an audit row of the proposal)
HOLDING = tuple(status for status in ProposalStatus if status.holds_its_items)


def _proposals_holding(item: Item, statuses) -> list[Proposal]:
    return list(
        db.session.scalars(
            select(Proposal)
            .join(ProposalItem, ProposalItem.proposal_id == Proposal.id)
            .where(ProposalItem.item_id == item.id, Proposal.status.in_(statuses))
            .order_by(Proposal.id)
        )
    )


def withdraw_refusal(item: Item) -> UserError | None:
    """409 when a submitted or answered 建议 holds ``item`` (it can no longer be withdrawn), else None."""
    held_by = _proposals_holding(item, HOLDING)
    if not held_by:
        return None
    return UserError(
        "in_submitted_proposal",
        f"这条留言已写入代表建议《{held_by[0].title}》并已提交，不能再撤回。"
        "如不希望再被联系，可以删除您的联系方式，建议照常办理。",
        409,
    )


def release_withdrawn_item(item: Item) -> list[Proposal]:
    """Take a withdrawn ``item`` out of every draft that holds it, each with a line in the draft's history (flushes).

    The caller (``retention.withdraw_item``) has locked the item and checked ``withdraw_refusal``.
    Returns the drafts it left.
    """
    drafts = _proposals_holding(item, (ProposalStatus.DRAFTED,))
    if not drafts:
        return []
    now = utcnow()
    db.session.execute(
        delete(ProposalItem).where(
            ProposalItem.item_id == item.id, ProposalItem.proposal_id.in_([p.id for p in drafts])
        )
    )
    for proposal in drafts:
        db.session.expire(proposal, ["links"])
        proposal.updated_at = now
        record_audit(WITHDRAWN_ACTION, object_type="proposal", object_id=proposal.id, data={"ref": item.ref})
    db.session.flush()
    return drafts


@dataclass(frozen=True)
class HistoryLine:
    """One step of a 建议 as its page lists it: when, who (a staff name, or 群众), what."""

    at: datetime
    who: str
    what: str


def _what(entry: AuditEntry) -> str | None:
    data = entry.data or {}
    if entry.action == "proposal_drafted":
        return f"起草，汇集留言{len(data.get('items') or [])}件"
    if entry.action == "proposal_submit":
        return "提交"
    if entry.action == "proposal_answer":
        return "记录承办单位的答复"
    if entry.action == WITHDRAWN_ACTION:
        return f"留言{format_ref(data.get('ref', ''))}已由群众撤回，移出本建议"
    return None  # refusals to others and the like are the audit log's, not the draft's history


def history(proposal: Proposal) -> list[HistoryLine]:
    """The 建议's steps, oldest first, read from its audit rows (the actions above only)."""
    entries = db.session.scalars(
        select(AuditEntry)
        .where(AuditEntry.object_type == "proposal", AuditEntry.object_id == str(proposal.id))
        .order_by(AuditEntry.created_at, AuditEntry.id)
    ).all()
    users = {entry.staff_user_id for entry in entries if entry.staff_user_id is not None}
    names = {
        user.id: user.display_name or user.username
        for user in (db.session.scalars(select(StaffUser).where(StaffUser.id.in_(users))) if users else [])
    }
    lines = []
    for entry in entries:
        what = _what(entry)
        if what is not None:
            who = names.get(entry.staff_user_id, "") if entry.staff_user_id is not None else "群众"
            lines.append(HistoryLine(at=entry.created_at, who=who, what=what))
    return lines
