"""The deputy's phone: inbox, item page, actions, reveal of contact details, reply templates, in-person entry.

Every page is for logged-in staff (``login_required``), every POST carries a CSRF token
(CSRFProtect), every answer is ``Cache-Control: no-store`` (backend/security.py). Items are opened only through
``access.find_item_for_staff``: an item of someone else answers exactly like an unknown
reference (404), and the refusal's audit row is committed before the answer. Actions go
through ``lifecycle.perform_action``; this module only reads forms and shows results.
"""

from __future__ import annotations

import base64
from datetime import datetime, timedelta

from flask import (
    Blueprint,
    abort,
    current_app,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from sqlalchemy import select

from backend import pagination
from backend.audit import record_audit
from backend.auth.sessions import current_staff, login_required
from backend.errors import UserError
from backend.extensions import db
from backend.items import inbox as inbox_query
from backend.items.access import can_see_item, find_item_for_staff
from backend.items.claims import in_person_item, receipt_summary, reissue_receipt
from backend.items.deadlines import is_overdue
from backend.items.lifecycle import (
    STAFF_TEXT_MAX_CHARS,
    TRANSITIONS,
    allowed_actions,
    forward_link_token,
    link_expires_at,
    perform_action,
    renew_forward_link,
    revoke_forward,
)
from backend.items.masking import mask_name, mask_phone
from backend.items.refs import format_ref
from backend.items.validation import clean_text
from backend.models import (
    ActorKind,
    Department,
    Deputy,
    DeputyStatus,
    Item,
    ItemEvent,
    ItemEventKind,
    ItemForward,
    ItemPhoto,
    ItemStatus,
    Region,
    ReplyTemplate,
    StaffRole,
    StaffUser,
    utcnow,
)
from backend.models.item import (
    ITEM_CATEGORY_LABELS,
    ITEM_OUTCOME_LABELS,
    ITEM_STATUS_LABELS,
    SATISFACTION_LABELS,
    ItemChannel,
)
from backend.qr.render import qr_png
from backend.stations.calendar import today_in_china

bp = Blueprint("deputy", __name__, url_prefix="/staff")

HANDLERS = (StaffRole.DEPUTY, StaffRole.STATION_ADMIN, StaffRole.SUPERVISOR)
ACTION_FIELDS = ("action", "text", "department_id", "due", "deputy_id", "duplicate_of", "outcome")
TEMPLATE_TITLE_MAX_CHARS = 50  # ReplyTemplate.title
RECEIPT_QR_PIXELS = 480  # shown at 240 CSS pixels: sharp on a 2x phone screen, and on paper
UNKNOWN_ITEM_MESSAGE = "找不到该留言，请核对编号。"

CHANNEL_LABELS = {
    ItemChannel.QR_H5: "扫码留言",
    ItemChannel.MINIPROGRAM: "小程序留言",
    ItemChannel.IN_PERSON: "代表接待选民",
}

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
}
NOTE_ACTION_LABELS = {
    "wait_for_resident": "等待群众补充",
    "resume": "恢复计时",
    "revoke_forward": "收回交办",
    "renew_forward_link": "重新开通交办链接",
    "reissue_receipt": "重新出具回执",
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
    "reveal": "",
}


# --- shared helpers --------------------------------------------------------------------------


def item_or_404(user: StaffUser, ref: str) -> Item:
    """The item ``ref`` if ``user`` may see it; else commit the refusal's audit row and answer 404 like an unknown ref."""
    item = find_item_for_staff(user, ref)
    if item is None:
        db.session.commit()  # the audit row of a hidden item survives the 404's rollback
        raise UserError("unknown_item", UNKNOWN_ITEM_MESSAGE, 404)
    return item


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


def staff_event_label(event: ItemEvent) -> str:
    """What an event is called on the staff timeline."""
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
    """Every event of an item, oldest first, with its label, actor and whether the resident sees it."""
    events = list(item.events)
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
    if item.status != ItemStatus.ACCEPTED or not item.reopen_count:
        return ""
    reopened = [e for e in item.events if e.kind == ItemEventKind.REOPENED]
    return (reopened[-1].data or {}).get("reason", "") if reopened else ""


def masked_contact(item: Item) -> dict:
    """The resident's name and number as shown before a reveal: 王** / 138****1234."""
    return {"name": mask_name(item.contact_name), "phone": mask_phone(item.contact_phone)}


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


def _templates_of(station_id: int | None) -> list[ReplyTemplate]:
    if station_id is None:
        return []
    return list(
        db.session.scalars(
            select(ReplyTemplate).where(ReplyTemplate.station_id == station_id).order_by(ReplyTemplate.id)
        )
    )


def _page(template: str, status: int = 200, **context):
    return make_response(render_template(template, **context), status)


def _wants_json() -> bool:
    return request.accept_mimetypes.best == "application/json"


# --- inbox -----------------------------------------------------------------------------------


@bp.get("/inbox")
@login_required
def inbox():
    """The inbox: counts per group, then overdue, reopened, new and in-progress items; search by ref or text."""
    user = current_staff()
    page = inbox_query.inbox_page(
        user,
        state=request.args.get("state", "todo"),
        query=request.args.get("q", ""),
        page=pagination.page_number(request.args.get("page")),
    )
    return _page(
        "staff/inbox.html",
        user=user,
        inbox=page,
        labels=inbox_query.GROUP_LABELS,
        status_labels=ITEM_STATUS_LABELS,
        category_labels=ITEM_CATEGORY_LABELS,
        first_line=inbox_query.first_line,
        age_label=inbox_query.age_label,
        overdue_label=inbox_query.overdue_label,
        format_ref=format_ref,
        notice=DONE_MESSAGES.get(request.args.get("done", ""), ""),
        can_enter_in_person=user.role == StaffRole.DEPUTY,
        can_keep_templates=user_station_id(user) is not None,
    )


# --- the item page ---------------------------------------------------------------------------


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
        "status_label": ITEM_STATUS_LABELS[item.status],
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
        "templates": _templates_of(item.station_id) if "reply" in allowed else [],
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


@bp.get("/items/<ref>")
@login_required(*HANDLERS)
def item_page(ref: str):
    """One item: message, photos, masked contact with a reveal button, forwards, the whole timeline, the actions allowed."""
    user = current_staff()
    item = item_or_404(user, ref)
    return _page("staff/item.html", **item_context(item, user))


@bp.get("/items/<ref>/photos/<int:position>.jpg")
@login_required(*HANDLERS)
def item_photo(ref: str, position: int):
    """A photo of an item, to staff who may see the item; only ever as a sandboxed JPEG."""
    return photo_response(item_or_404(current_staff(), ref), position)


def photo_response(item: Item, position: int):
    """The item's photo at ``position`` as a private, sandboxed JPEG; 404 when it has none there."""
    photo = db.session.scalar(select(ItemPhoto).where(ItemPhoto.item_id == item.id, ItemPhoto.position == position))
    if photo is None:
        abort(404)
    return jpeg_response(photo.jpeg)


def jpeg_response(data: bytes):
    """A private JPEG answer that no browser will run as anything else."""
    response = make_response(data)
    response.headers["Content-Type"] = "image/jpeg"
    response.headers["Content-Disposition"] = "inline"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


@bp.post("/items/<ref>/reveal")
@login_required(*HANDLERS)
def reveal_contact(ref: str):
    """Show the resident's full name and number, and write a ``reveal_contact`` audit row first."""
    user = current_staff()
    item = item_or_404(user, ref)
    revealed = revealed_contact(item, user)
    if _wants_json():
        return jsonify(revealed)
    return _page("staff/item.html", **item_context(item, user, revealed=revealed))


def revealed_contact(item: Item, user: StaffUser) -> dict:
    """The resident's full name and number; when there are any, a ``reveal_contact`` audit row is committed first."""
    revealed = {"name": item.contact_name, "phone": item.contact_phone}
    if item.has_contact:
        record_audit(
            "reveal_contact",
            user=user,
            object_type="item",
            object_id=item.id,
            data={"ref": item.ref, "fields": [k for k, v in revealed.items() if v]},
        )
        db.session.commit()
    return revealed


@bp.post("/items/<ref>/actions")
@login_required(*HANDLERS)
def item_action(ref: str):
    """Take one action (form field ``action``) through the lifecycle; on refusal show the page again with the reason."""
    user = current_staff()
    item = item_or_404(user, ref)
    values = {name: request.form.get(name, "") for name in ACTION_FIELDS}
    action = values["action"]
    try:
        event = perform_action(
            item,
            user,
            action,
            text=values["text"],
            department_id=values["department_id"] or None,
            due=values["due"] or None,
            deputy_id=values["deputy_id"] or None,
            duplicate_of=values["duplicate_of"] or None,
            outcome=values["outcome"] or None,
        )
    except UserError as exc:
        if exc.status == 404:
            raise
        db.session.rollback()
        context = item_context(
            item, user, values=values, error=exc.message, error_field=exc.field, error_action=action, notice=""
        )
        return _page("staff/item.html", exc.status, **context)
    token = forward_link_token(event)
    db.session.commit()
    if token is not None:
        return _forwarded_page(item, db.session.get(ItemForward, event.data["forward_id"]), token)
    if not can_see_item(user, item):  # reassigned away from this deputy
        return redirect(url_for("deputy.inbox", done=action), 303)
    return redirect(url_for("deputy.item_page", ref=item.ref, done=action), 303)


def _forwarded_page(item: Item, forward: ItemForward, token: str, *, renewed: bool = False):
    return _page(
        "staff/forwarded.html",
        item=item,
        ref_display=format_ref(item.ref),
        forward=forward,
        link=department_link(token),
        renewed=renewed,
        grace_days=current_app.config["DEPARTMENT_LINK_GRACE_DAYS"],
    )


def department_link(token: str) -> str:
    """The department's no-account link for a forward token (absolute, token in the path only)."""
    return current_app.config["PUBLIC_BASE_URL"] + url_for("department.forward_page", token=token)


@bp.post("/items/<ref>/forwards/<int:forward_id>/revoke")
@login_required(StaffRole.DEPUTY, StaffRole.STATION_ADMIN)
def revoke(ref: str, forward_id: int):
    """Withdraw a department's link (收回交办): it answers 404 from now on."""
    user = current_staff()
    item = item_or_404(user, ref)
    forward = _forward_of(item, forward_id)
    revoke_forward(forward, user)
    db.session.commit()
    return redirect(url_for("deputy.item_page", ref=item.ref, done="revoke_forward"), 303)


@bp.post("/items/<ref>/forwards/<int:forward_id>/renew")
@login_required(StaffRole.DEPUTY, StaffRole.STATION_ADMIN)
def renew_link(ref: str, forward_id: int):
    """Give the department a new link (its old one stops working): after it expired, or when it went astray."""
    user = current_staff()
    item = item_or_404(user, ref)
    forward = _forward_of(item, forward_id)
    token = renew_forward_link(forward, user)
    db.session.commit()
    return _forwarded_page(item, forward, token, renewed=True)


def _forward_of(item: Item, forward_id: int) -> ItemForward:
    forward = db.session.get(ItemForward, forward_id)
    if forward is None or forward.item_id != item.id:
        raise UserError("unknown_forward", "找不到该交办记录。", 404)
    return forward


# --- reply templates -------------------------------------------------------------------------


def _templates_page(user: StaffUser, station_id: int, status: int = 200, **extra):
    context = {
        "user": user,
        "templates": _templates_of(station_id),
        "values": {},
        "error": None,
        "error_field": None,
        "notice": "",
        "text_max": STAFF_TEXT_MAX_CHARS,
        "title_max": TEMPLATE_TITLE_MAX_CHARS,
    }
    context.update(extra)
    return _page("staff/templates.html", status, **context)


def _own_station(user: StaffUser) -> int:
    station_id = user_station_id(user)
    if station_id is None:
        abort(404)
    return station_id


@bp.route("/templates", methods=["GET", "POST"])
@login_required(StaffRole.DEPUTY, StaffRole.STATION_ADMIN)
def templates():
    """The station's reusable replies (常用答复): list, and add one."""
    user = current_staff()
    station_id = _own_station(user)
    if request.method == "GET":
        notice = {"added": "已添加。", "deleted": "已删除。"}.get(request.args.get("done", ""), "")
        return _templates_page(user, station_id, notice=notice)
    values = {"title": request.form.get("title", ""), "body": request.form.get("body", "")}
    try:
        title = clean_text(values["title"], "title", "标题", max_chars=TEMPLATE_TITLE_MAX_CHARS, required=True)
        body = clean_text(
            values["body"], "body", "答复内容", max_chars=STAFF_TEXT_MAX_CHARS, required=True, multiline=True
        )
    except UserError as exc:
        return _templates_page(user, station_id, exc.status, values=values, error=exc.message, error_field=exc.field)
    template = ReplyTemplate(station_id=station_id, title=title, body=body, created_at=utcnow())
    db.session.add(template)
    db.session.flush()
    record_audit(
        "reply_template_added",
        user=user,
        object_type="reply_template",
        object_id=template.id,
        data={"station_id": station_id, "title": title},
    )
    db.session.commit()
    return redirect(url_for("deputy.templates", done="added"), 303)


@bp.post("/templates/<int:template_id>/delete")
@login_required(StaffRole.DEPUTY, StaffRole.STATION_ADMIN)
def delete_template(template_id: int):
    """Remove one of the station's reply templates (another station's answers 404)."""
    user = current_staff()
    station_id = _own_station(user)
    template = db.session.get(ReplyTemplate, template_id)
    if template is None or template.station_id != station_id:
        abort(404)
    record_audit(
        "reply_template_deleted",
        user=user,
        object_type="reply_template",
        object_id=template.id,
        data={"station_id": station_id, "title": template.title},
    )
    db.session.delete(template)
    db.session.commit()
    return redirect(url_for("deputy.templates", done="deleted"), 303)


# --- 代表接待选民 ------------------------------------------------------------------------------

IN_PERSON_FIELDS = ("body", "category", "name", "phone", "consent", "channel_note")


def _in_person_form(user: StaffUser, status: int = 200, **extra):
    context = {
        "user": user,
        "categories": list(ITEM_CATEGORY_LABELS.items()),
        "values": {"category": "other"},
        "error": None,
        "error_field": None,
        "limits": current_app.config,
    }
    context.update(extra)
    return _page("staff/in_person.html", status, **context)


@bp.route("/in-person", methods=["GET", "POST"])
@login_required(StaffRole.DEPUTY)
def in_person():
    """Enter an item received on a reception day (代表接待选民), then show its receipt (回执) to print or to scan.

    The deputy never sees the item's access key: the receipt carries a one-time claim link, and
    the key is made on the resident's phone when they claim it (``items.claims``).
    """
    user = current_staff()
    if request.method == "GET":
        return _in_person_form(user)
    values = {name: request.form.get(name, "") for name in IN_PERSON_FIELDS}
    try:
        item, token = in_person_item(
            user,
            body=values["body"],
            category=values["category"],
            name=values["name"],
            phone=values["phone"],
            consent=values["consent"],
            channel_note=values["channel_note"],
        )
    except UserError as exc:
        if exc.status != 400:
            raise
        db.session.rollback()
        return _in_person_form(user, exc.status, values=values, error=exc.message, error_field=exc.field)
    db.session.commit()
    return _receipt_page(user, item, token)


def _receipt_page(user: StaffUser, item: Item, token: str, *, reissued: bool = False):
    """The receipt: a slip to print and a QR code to scan on this screen, both carrying the one-time claim link."""
    claim_url = current_app.config["PUBLIC_BASE_URL"] + url_for("claim.receipt_page", token=token)
    qr = "data:image/png;base64," + base64.b64encode(qr_png(claim_url, RECEIPT_QR_PIXELS)).decode()
    return _page(
        "staff/receipt.html",
        user=user,
        item=item,
        ref_display=format_ref(item.ref),
        claim_url=claim_url,
        qr=qr,
        reissued=reissued,
    )


@bp.post("/items/<ref>/receipt")
@login_required(StaffRole.DEPUTY, StaffRole.STATION_ADMIN)
def reissue(ref: str):
    """A new receipt for an in-person item not yet claimed; the earlier receipt stops working."""
    user = current_staff()
    item = item_or_404(user, ref)
    try:
        token = reissue_receipt(item, user)
    except UserError as exc:
        if exc.status != 409:
            raise
        db.session.rollback()
        return _page("staff/item.html", exc.status, **item_context(item, user, error=exc.message, notice=""))
    db.session.commit()
    return _receipt_page(user, item, token, reissued=True)
