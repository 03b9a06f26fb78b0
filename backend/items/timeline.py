"""How an item's status and events read to a resident."""

from __future__ import annotations

from sqlalchemy import select

from backend.extensions import db
from backend.models import Item, ItemEvent, ItemEventKind, ItemForward, ItemStatus
from backend.models.item import ITEM_CATEGORY_LABELS, ITEM_STATUS_LABELS

PUBLIC_EVENT_LABELS = {
    ItemEventKind.SUBMITTED: "留言已提交",
    ItemEventKind.ACCEPTED: "代表已受理",
    ItemEventKind.REPLIED: "代表答复",
    ItemEventKind.FORWARDED: "已交办承办单位",
    ItemEventKind.REASSIGNED: "已转交其他代表",
    ItemEventKind.DUPLICATE: "已合并到相同问题",
    ItemEventKind.DECLINED: "不予受理",
    ItemEventKind.RESOLVED: "已办结",
    ItemEventKind.RATED: "您的评价",
    ItemEventKind.REOPENED: "已重新办理",
    ItemEventKind.EXTENDED: "办理期限延长",
    ItemEventKind.CLAIMED: "本人已认领",
    ItemEventKind.WITHDRAWN: "群众已撤回",
    ItemEventKind.CONTACT_ERASED: "群众已删除联系方式",
    ItemEventKind.RESIDENT_REPLIED: "您的补充",
    ItemEventKind.FOLLOWED_UP: "您的追问",
    ItemEventKind.PROPOSAL_INCLUDED: "已写入代表建议",
    ItemEventKind.PROPOSAL_ANSWERED: "代表建议已答复",
}

# A first reply or forward that took the item on (lifecycle: ``accepts_first``) reads as one step.
IMPLIED_ACCEPT_LABELS = {
    ItemEventKind.REPLIED: "代表受理并答复",
    ItemEventKind.FORWARDED: "已受理并交办承办单位",
}

STATUS_NEXT_STEP = {
    ItemStatus.SUBMITTED: "代表会在2个工作日内受理，受理和答复都会显示在这里。",
    ItemStatus.ACCEPTED: "代表已受理，正在了解情况。",
    ItemStatus.FORWARDED: "代表已将您的意见交给相关部门办理。",
    ItemStatus.ANSWERED: "代表已答复，问题办结后请您评价。",
    ItemStatus.RESOLVED: "已办结，请您对办理结果进行评价。",
    ItemStatus.DECLINED: "该意见不在代表受理范围内，原因见下方。",
    ItemStatus.DUPLICATE: "该意见与另一件相同，将一并办理。",
    ItemStatus.WITHDRAWN: "您已撤回这条留言，代表不会再办理。",
}


# Said instead of STATUS_NEXT_STEP[ACCEPTED] while a reopened item waits for new work.
REOPENED_NEXT_STEP = "您评价不满意，已退回代表重新办理，代表会再次答复您。"


def is_implied_accept(event: ItemEvent) -> bool:
    """True for the 受理 a first reply or forward wrote before itself: shown as part of that step, not alone."""
    return event.kind == ItemEventKind.ACCEPTED and bool((event.data or {}).get("implied_by"))


def public_events(item: Item) -> list[ItemEvent]:
    """The steps of an item the resident may see, oldest first: one per action (an implied 受理 is in its step)."""
    return [e for e in item.events if e.is_public and not is_implied_accept(e)]


def department_answers(item: Item) -> list[ItemEvent]:
    """The answers and progress reports of the departments the item was forwarded to, as steps the resident sees.

    Each is the department's step on the deputy's timeline, addressed to the deputy. The resident was told that it
    came (部门已答复 / 部门报进展: who answered, never what), and the tracking page says the same: which department
    and when (``event_label``), not its text (``resident_body``): the deputy's own 答复 tells the resident what
    was done. Never the account that wrote it or the deputy's instructions; none of a forward the deputy revoked
    (sent by mistake).
    """
    answers = [e for e in item.events if e.kind == ItemEventKind.DEPARTMENT_REPLIED]
    if not answers:
        return []
    revoked = set(
        db.session.scalars(
            select(ItemForward.id).where(ItemForward.item_id == item.id, ItemForward.revoked_at.is_not(None))
        )
    )
    return [e for e in answers if (e.data or {}).get("forward_id") not in revoked]


def resident_events(item: Item) -> list[ItemEvent]:
    """The tracking page's timeline: the public steps and the departments' answers, oldest first."""
    events = public_events(item) + department_answers(item)
    return sorted(events, key=lambda e: (e.created_at, e.id or 0))


def resident_body(event: ItemEvent) -> str | None:
    """The text of a step as the resident reads it: none for a department's answer, which is addressed to the deputy
    (the resident sees that it came and when; the deputy's 答复 says what was done), the step's own otherwise."""
    return None if event.kind == ItemEventKind.DEPARTMENT_REPLIED else event.body


def event_label(event: ItemEvent) -> str:
    """A resident-facing name for an event; the deputy's request for more reads as what it is, a department's answer
    names the department."""
    data = event.data or {}
    if event.kind == ItemEventKind.DEPARTMENT_REPLIED:
        what = "已向代表答复" if data.get("final", True) else "已向代表报告进展"
        return f"{data.get('department') or '承办单位'}{what}"
    if data.get("action") == "wait_for_resident":
        return "请您补充"
    if data.get("implied_accept") and event.kind in IMPLIED_ACCEPT_LABELS:
        return IMPLIED_ACCEPT_LABELS[event.kind]
    return PUBLIC_EVENT_LABELS.get(event.kind, "办理进展")


def next_step(item: Item) -> str:
    """What happens next, in the resident's words: the status's sentence, or the reopened one."""
    return REOPENED_NEXT_STEP if item.is_reopened else STATUS_NEXT_STEP[item.status]


def event_photo_positions(event: ItemEvent) -> list[int]:
    """The positions of the photos the resident sent with a reply (they show under it, not with the message)."""
    positions = (event.data or {}).get("photos") or []
    return [p for p in positions if isinstance(p, int)]


def message_photos(item: Item) -> list:
    """The photos of the message itself: those not sent later with a reply."""
    later = {p for e in item.events for p in event_photo_positions(e)}
    return [p for p in item.photos if p.position not in later]


REOPENED_LABEL = "已重新办理"


def status_label(item: Item) -> str:
    """The item's status in Chinese; a reopened item says it was reopened (not "已受理")."""
    return REOPENED_LABEL if item.is_reopened else ITEM_STATUS_LABELS[item.status]


def category_label(item: Item) -> str:
    """The item's category in Chinese."""
    return ITEM_CATEGORY_LABELS[item.category]
