"""How an item reads to staff: its labels, timeline rows, the page's context, and what its forms offer.

Shared by every view that shows an item to staff (the deputy's pages, the staff API, the
supervision export). Reading only: nothing here writes.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app, request
from sqlalchemy import select

from backend.extensions import db
from backend.items import inbox as inbox_query
from backend.items import timeline
from backend.items.claims import receipt_summary
from backend.items.contact import masked_contact
from backend.items.deadlines import is_overdue
from backend.items.lifecycle import STAFF_TEXT_MAX_CHARS, TRANSITIONS, allowed_actions, link_expires_at
from backend.items.refs import format_ref
from backend.models import (
    ActorKind,
    Department,
    Deputy,
    DeputyStatus,
    Item,
    ItemEvent,
    ItemEventKind,
    ItemForward,
    Region,
    ReplyTemplate,
    StaffRole,
    StaffUser,
    utcnow,
)
from backend.models.item import (
    ITEM_CATEGORY_LABELS,
    ITEM_OUTCOME_LABELS,
    SATISFACTION_LABELS,
    ItemChannel,
)
from backend.stations.calendar import today_in_china

CHANNEL_LABELS = ItemChannel.labels()

# How each event reads to staff; public ones are also shown to the resident (timeline.py).
STAFF_EVENT_LABELS = {
    ItemEventKind.SUBMITTED: "群众留言",
    ItemEventKind.ACCEPTED: "受理",
    ItemEventKind.REPLIED: "答复群众",
    ItemEventKind.NOTE: "内部备注",
    ItemEventKind.FORWARDED: "交办承办单位",
    ItemEventKind.DEPARTMENT_REPLIED: "承办单位答复",
    ItemEventKind.REASSIGNED: "转交其他代表",
    ItemEventKind.DUPLICATE: "标记为重复件",
    ItemEventKind.DECLINED: "不予受理",
    ItemEventKind.RESOLVED: "办结",
    ItemEventKind.RATED: "群众评价",
    ItemEventKind.REOPENED: "群众不满意，重新办理",
    ItemEventKind.SUPERVISED: "督办",
    ItemEventKind.EXTENDED: "延长办理期限",
    ItemEventKind.FLAGGED: "标记待审核",
    ItemEventKind.CLAIMED: "群众本人认领",
    ItemEventKind.WITHDRAWN: "群众已撤回",
    ItemEventKind.CONTACT_ERASED: "群众已删除联系方式",
    ItemEventKind.ANONYMISED: "按保存期限删除个人信息",
    ItemEventKind.RESIDENT_REPLIED: "群众补充情况",
    ItemEventKind.FOLLOWED_UP: "群众追问",
    ItemEventKind.DEPARTMENT_RETURNED: "承办单位退回",
    ItemEventKind.EXTENSION_REQUESTED: "承办单位申请延期",
    ItemEventKind.SUB_FORWARDED: "承办单位转交下属单位",
    ItemEventKind.PROPOSAL_INCLUDED: "写入代表建议",
    ItemEventKind.PROPOSAL_ANSWERED: "代表建议已答复",
}
NOTE_ACTION_LABELS = {
    "wait_for_resident": "等待群众补充",
    "resume": "恢复计时",
    "revoke_forward": "收回交办",
    "renew_forward_link": "重新开通交办链接",
    "reissue_receipt": "重新出具回执",
    "grant_extension": "同意承办单位延期",
    "refuse_extension": "不同意承办单位延期",
}

# What the page says after each action succeeded.
DONE_MESSAGES = {
    "accept": "已受理，群众会收到通知。",
    "decline": "已不予受理，原因会告知群众。",
    "duplicate": "已标记为重复件。",
    "reassign": "已转交其他代表。",
    "reply": "答复已发送给群众。",
    "resolve": "已办结，等待群众评价。",
    "extend": "办理期限已延长。",
    "wait_for_resident": "已暂停计时，等待群众补充。",
    "resume": "已恢复计时。",
    "note": "内部备注已保存。",
    "revoke_forward": "交办链接已收回，承办单位无法再打开。",
    "grant_extension": "已同意延期，办理期限已顺延。",
    "refuse_extension": "已不同意延期，承办单位会在交办页面看到。",
    "reveal": "",
}


def departments_for_region(region: Region | None) -> list[Department]:
    """Active departments an item of ``region`` may be forwarded to: the region's own and those above it, nearest first."""
    if region is None:
        return []
    lineage = region.lineage()
    depth = {r.id: index for index, r in enumerate(lineage)}
    departments = db.session.scalars(
        select(Department).where(Department.region_id.in_(depth), Department.is_active.is_(True))
    ).all()
    return sorted(departments, key=lambda d: (-depth[d.region_id], d.name, d.id))


def user_region(user: StaffUser) -> Region | None:
    """The region a staff user works in: their station's (deputy, station admin) or their own (supervisor)."""
    if user.role == StaffRole.DEPUTY and user.deputy is not None:
        return user.deputy.station.region
    if user.role == StaffRole.STATION_ADMIN and user.station is not None:
        return user.station.region
    if user.role == StaffRole.SUPERVISOR:
        return user.region
    return None


def user_station_id(user: StaffUser) -> int | None:
    """The station whose reply templates a user keeps: a deputy's station, or a station admin's."""
    if user.role == StaffRole.DEPUTY and user.deputy is not None:
        return user.deputy.station_id
    if user.role == StaffRole.STATION_ADMIN:
        return user.station_id
    return None


# A first reply or forward that took the item on (lifecycle: ``accepts_first``): one entry, saying both.
IMPLIED_ACCEPT_LABELS = {ItemEventKind.REPLIED: "受理并答复群众", ItemEventKind.FORWARDED: "受理并交办承办单位"}
IMPLIED_ACCEPT_OWN_LABELS = {"reply": "受理（随首次答复）", "forward": "受理（随交办）"}


def staff_event_label(event: ItemEvent) -> str:
    """What an event is called on the staff timeline (and in the export, where an implied 受理 says what brought it)."""
    data = event.data or {}
    if timeline.is_implied_accept(event):
        return IMPLIED_ACCEPT_OWN_LABELS.get(data["implied_by"], "受理")
    if data.get("implied_accept") and event.kind in IMPLIED_ACCEPT_LABELS:
        return IMPLIED_ACCEPT_LABELS[event.kind]
    if event.kind == ItemEventKind.NOTE:
        action = (event.data or {}).get("action")
        if action in NOTE_ACTION_LABELS:
            return NOTE_ACTION_LABELS[action]
    if event.kind == ItemEventKind.SUBMITTED and event.actor_kind == ActorKind.STAFF:
        return "代表接待时录入"
    return STAFF_EVENT_LABELS.get(event.kind, "办理进展")


def _actor_names(events: list[ItemEvent]) -> dict[int, str]:
    ids = {e.actor_user_id for e in events if e.actor_user_id is not None}
    if not ids:
        return {}
    users = db.session.scalars(select(StaffUser).where(StaffUser.id.in_(ids))).all()
    return {u.id: u.display_name or u.username for u in users}


def event_actor(event: ItemEvent, names: dict[int, str]) -> str:
    """Who caused an event, as staff read it."""
    if event.actor_kind == ActorKind.RESIDENT:
        return "群众"
    if event.actor_kind == ActorKind.DEPARTMENT:
        return (event.data or {}).get("department") or "承办单位"
    if event.actor_kind == ActorKind.SYSTEM:
        return "系统"
    return names.get(event.actor_user_id, "工作人员")


def _event_internal_detail(event: ItemEvent) -> str:
    """The staff-only part of a public event (the reason of a reassignment, a resident's reopening reason)."""
    data = event.data or {}
    if event.kind == ItemEventKind.REASSIGNED:
        return data.get("reason", "")
    if event.kind == ItemEventKind.DEPARTMENT_REPLIED and data.get("promised_by"):
        return f"承诺完成日期：{data['promised_by']}"
    return ""


def timeline_rows(item: Item) -> list[dict]:
    """Every step of an item, oldest first, with its label, actor and whether the resident sees it.

    One entry per action: the 受理 a first reply or forward implied is part of that entry's label.
    """
    events = [e for e in item.events if not timeline.is_implied_accept(e)]
    names = _actor_names(events)
    return [
        {
            "event": e,
            "label": staff_event_label(e),
            "actor": event_actor(e, names),
            "is_public": e.is_public,
            "detail": _event_internal_detail(e),
        }
        for e in events
    ]


def reopen_reason(item: Item) -> str:
    """Why the resident sent a reopened item back (their latest 不满意 reason), while it waits for new work."""
    if not item.is_reopened:
        return ""
    reopened = [e for e in item.events if e.kind == ItemEventKind.REOPENED]
    return (reopened[-1].data or {}).get("reason", "") if reopened else ""


def _forwards(item: Item) -> list[ItemForward]:
    return list(db.session.scalars(select(ItemForward).where(ItemForward.item_id == item.id).order_by(ItemForward.id)))


def link_ends(item: Item, forwards: list[ItemForward]) -> dict[int, datetime]:
    """When each unrevoked forward's department link stops (or stopped) working, by forward id; those with no end yet are left out."""
    ends = {f.id: link_expires_at(f, item) for f in forwards if f.revoked_at is None}
    return {forward_id: end for forward_id, end in ends.items() if end is not None}


def _station_deputies(item: Item) -> list[Deputy]:
    """Serving deputies of the item's station other than its own: whom it may be reassigned to."""
    return list(
        db.session.scalars(
            select(Deputy)
            .where(
                Deputy.station_id == item.station_id,
                Deputy.status == DeputyStatus.SERVING,
                Deputy.id != (item.deputy_id or 0),
            )
            .order_by(Deputy.id)
        )
    )


def templates_of(station_id: int | None) -> list[ReplyTemplate]:
    """The reply templates a station keeps (oldest first); none without a station."""
    if station_id is None:
        return []
    return list(
        db.session.scalars(
            select(ReplyTemplate).where(ReplyTemplate.station_id == station_id).order_by(ReplyTemplate.id)
        )
    )


def item_context(item: Item, user: StaffUser, **extra) -> dict:
    """Everything the item page shows: the message, contact (masked), forwards, timeline, the forms allowed."""
    now = utcnow()
    allowed = allowed_actions(item, user)
    today = today_in_china()
    forwards = _forwards(item)
    context = {
        "user": user,
        "item": item,
        "ref_display": format_ref(item.ref),
        "status_label": timeline.status_label(item),
        "category_label": ITEM_CATEGORY_LABELS[item.category],
        "channel_label": CHANNEL_LABELS.get(item.channel, ""),
        "outcome_labels": ITEM_OUTCOME_LABELS,
        "satisfaction_label": SATISFACTION_LABELS.get(item.satisfaction, "") if item.satisfaction else "",
        "is_overdue": is_overdue(item, now),
        "overdue_label": inbox_query.overdue_label(item, now) if item.due_at else "",
        "masked": masked_contact(item),
        "revealed": None,
        "forwards": forwards,
        "receipts": receipt_summary(item),
        "link_ends": link_ends(item, forwards),
        "timeline": timeline_rows(item),
        "reopen_reason": reopen_reason(item),
        "allowed": allowed,
        "action_labels": {name: row.label for name, row in TRANSITIONS.items()},
        "departments": departments_for_region(item.station.region) if "forward" in allowed else [],
        "station_deputies": _station_deputies(item) if "reassign" in allowed else [],
        "templates": templates_of(item.station_id) if "reply" in allowed else [],
        "can_revoke": user.role in (StaffRole.DEPUTY, StaffRole.STATION_ADMIN),
        "now": now,
        "grace_days": current_app.config["DEPARTMENT_LINK_GRACE_DAYS"],
        "today": today.isoformat(),
        "default_due": (today + timedelta(days=15)).isoformat(),
        "max_due": (today + timedelta(days=366)).isoformat(),
        "text_max": STAFF_TEXT_MAX_CHARS,
        "values": {},
        "error": None,
        "error_field": None,
        "error_action": None,
        "notice": DONE_MESSAGES.get(request.args.get("done", ""), ""),
    }
    context.update(extra)
    return context
