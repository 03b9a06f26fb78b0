"""The deputy's phone: inbox, item page, actions, reveal of contact details, reply templates, in-person entry.

Every page is for logged-in staff (``login_required``), every POST carries a CSRF token
(CSRFProtect), every answer is ``Cache-Control: no-store`` (backend/security.py). Items are opened only through
``access.find_item_for_staff``: an item of someone else answers exactly like an unknown
reference (404), and the refusal's audit row is kept through that answer. Actions go
through ``lifecycle.perform_action``; this module only reads forms and shows results.
"""

from __future__ import annotations

import base64

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

from backend import pagination, replica
from backend.access import can_see_item, find_item_for_staff
from backend.audit import record_added, record_audit
from backend.auth.sessions import current_staff, login_required
from backend.downloads import jpeg_response
from backend.errors import UserError
from backend.extensions import db
from backend.items import inbox as inbox_query
from backend.items.claims import in_person_item, reissue_receipt
from backend.items.contact import revealed_contact
from backend.items.lifecycle import (
    STAFF_TEXT_MAX_CHARS,
    decide_extension,
    department_accounts,
    department_link_token,
    forward_link_token,
    live_forward_of_department,
    perform_action,
    renew_forward_link,
    revoke_forward,
)
from backend.items.photo_store import read_photo
from backend.items.presenters import DONE_MESSAGES, item_context, templates_of, user_station_id
from backend.items.refs import format_ref
from backend.items.validation import clean_text
from backend.models import Item, ItemForward, ItemPhoto, ReplyTemplate, StaffRole, StaffUser, utcnow
from backend.models.item import ITEM_CATEGORY_LABELS, ITEM_STATUS_LABELS
from backend.outbox.notifications import staff_notices_off
from backend.qr.render import qr_png
from backend.stations import contacts

bp = Blueprint("deputy", __name__, url_prefix="/staff")

HANDLERS = (StaffRole.DEPUTY, StaffRole.STATION_ADMIN, StaffRole.SUPERVISOR)
ACTION_FIELDS = ("action", "text", "department_id", "due", "deputy_id", "duplicate_of", "outcome")
TEMPLATE_TITLE_MAX_CHARS = 50  # ReplyTemplate.title
RECEIPT_QR_PIXELS = 480  # shown at 240 CSS pixels: sharp on a 2x phone screen, and on paper
UNKNOWN_ITEM_MESSAGE = "找不到该留言，请核对编号。"
# After an action the item page opens at its notice, beside the actions, not at the top of a long page.
DONE_ANCHOR = "notice"


# --- shared helpers --------------------------------------------------------------------------


def item_or_404(user: StaffUser, ref: str) -> Item:
    """The item ``ref`` if ``user`` may see it; else answer 404 like an unknown ref (the refusal's audit row kept)."""
    item = find_item_for_staff(user, ref)
    if item is None:
        raise UserError("unknown_item", UNKNOWN_ITEM_MESSAGE, 404)
    return item


def _page(template: str, status: int = 200, **context):
    return make_response(render_template(template, **context), status)


def _wants_json() -> bool:
    return request.accept_mimetypes.best == "application/json"


# --- inbox -----------------------------------------------------------------------------------


@bp.get("/inbox")
@login_required
def inbox():
    """The inbox: counts per group, then overdue, reopened, new and in-progress items; search by ref or text.

    A supervisor's (a whole county's) reads from the replica when there is one; a deputy's, who acts on it, from the
    primary."""
    user = current_staff()
    with replica.reads_from_replica(when=user.role == StaffRole.SUPERVISOR):  # a county's list, not a deputy's
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
            row_text=inbox_query.row_text,
            age_label=inbox_query.age_label,
            overdue_label=inbox_query.overdue_label,
            format_ref=format_ref,
            notice=DONE_MESSAGES.get(request.args.get("done", ""), ""),
            can_enter_in_person=user.role == StaffRole.DEPUTY,
            can_keep_templates=user_station_id(user) is not None,
            notices_off=staff_notices_off(user),
        )


# --- the item page ---------------------------------------------------------------------------


@bp.get("/items/<ref>")
@login_required(*HANDLERS, StaffRole.DEPARTMENT)
def item_page(ref: str):
    """One item: message, photos, masked contact with a reveal button, forwards, the whole timeline, the actions allowed.

    A department's account is sent on to its forward's page (``/d/<token>``): one page for what a
    department does, whether it came from its inbox or from the link."""
    user = current_staff()
    item = item_or_404(user, ref)
    if user.role == StaffRole.DEPARTMENT:
        forward = live_forward_of_department(item, user.department_id)
        return redirect(url_for("department.forward_page", token=department_link_token(forward)), 303)
    return _page("staff/item.html", **item_context(item, user))


@bp.get("/items/<ref>/photos/<int:position>.jpg")
@login_required(*HANDLERS)
def item_photo(ref: str, position: int):
    """A photo of an item, to staff who may see the item; only ever as a sandboxed JPEG."""
    return photo_response(item_or_404(current_staff(), ref), position)


def photo_response(item: Item, position: int):
    """The item's photo at ``position`` as a private, sandboxed JPEG; 404 when it has none there."""
    photo = db.session.scalar(select(ItemPhoto).where(ItemPhoto.item_id == item.id, ItemPhoto.position == position))
    data = read_photo(photo) if photo is not None else None
    if data is None:
        abort(404)
    return jpeg_response(data)


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
    if token is not None:  # a redirect: reloading the page shows the link again and forwards nothing twice
        return redirect(url_for("deputy.forward_link", ref=item.ref, forward_id=event.data["forward_id"]), 303)
    if not can_see_item(user, item):  # reassigned away from this deputy
        return redirect(url_for("deputy.inbox", done=action), 303)
    return redirect(url_for("deputy.item_page", ref=item.ref, done=action, _anchor=DONE_ANCHOR), 303)


@bp.get("/items/<ref>/forwards/<int:forward_id>/link")
@login_required(StaffRole.DEPUTY, StaffRole.STATION_ADMIN)
def forward_link(ref: str, forward_id: int):
    """The department's link of a forward, to copy and send (again) at any time: derived, never stored, never
    "shown once". Where the forward answers after 交办 (a redirect) and after a renewal (``?renewed=1``)."""
    user = current_staff()
    item, forward = _item_and_forward(user, ref, forward_id)
    if forward.revoked_at is not None:
        raise UserError("forward_revoked", "该交办链接已收回。", 404)
    return _page(
        "staff/forwarded.html",
        item=item,
        ref_display=format_ref(item.ref),
        forward=forward,
        link=department_link(department_link_token(forward)),
        accounts=len(department_accounts(forward.department_id)),
        renewed=request.args.get("renewed") == "1",
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
    item, forward = _item_and_forward(user, ref, forward_id)
    revoke_forward(forward, user)
    return redirect(url_for("deputy.item_page", ref=item.ref, done="revoke_forward", _anchor=DONE_ANCHOR), 303)


@bp.post("/items/<ref>/forwards/<int:forward_id>/renew")
@login_required(StaffRole.DEPUTY, StaffRole.STATION_ADMIN)
def renew_link(ref: str, forward_id: int):
    """Give the department a new link (its old one stops working): after it expired, or when it went astray."""
    user = current_staff()
    item, forward = _item_and_forward(user, ref, forward_id)
    renew_forward_link(forward, user)
    return redirect(url_for("deputy.forward_link", ref=item.ref, forward_id=forward.id, renewed=1), 303)


@bp.post("/items/<ref>/forwards/<int:forward_id>/extension")
@login_required(StaffRole.DEPUTY, StaffRole.STATION_ADMIN)
def extension_decision(ref: str, forward_id: int):
    """Grant or refuse a department's request for more time (``decision`` grant|refuse, ``text``)."""
    user = current_staff()
    item, forward = _item_and_forward(user, ref, forward_id)
    decision = request.form.get("decision", "")
    try:
        decide_extension(forward, user, decision, request.form.get("text", ""))
    except UserError as exc:
        if exc.status == 404:
            raise
        db.session.rollback()
        context = item_context(item, user, error=exc.message, error_action="extension", notice="")
        return _page("staff/item.html", exc.status, **context)
    done = "grant_extension" if decision == "grant" else "refuse_extension"
    return redirect(url_for("deputy.item_page", ref=item.ref, done=done, _anchor=DONE_ANCHOR), 303)


def _item_and_forward(user: StaffUser, ref: str, forward_id: int) -> tuple[Item, ItemForward]:
    """The staff user's item and one of its forwards; 404 for either unknown (or the item not theirs)."""
    item = item_or_404(user, ref)
    forward = db.session.get(ItemForward, forward_id)
    if forward is None or forward.item_id != item.id:
        raise UserError("unknown_forward", "找不到该交办记录。", 404)
    return item, forward


# --- reply templates -------------------------------------------------------------------------


def _templates_page(user: StaffUser, station_id: int, status: int = 200, **extra):
    context = {
        "user": user,
        "templates": templates_of(station_id),
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
    record_added(
        template,
        "reply_template_added",
        user=user,
        object_type="reply_template",
        data={"station_id": station_id, "title": title},
    )
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
        "contact": None,
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
    # A contact logged without an item (走访/座谈/电话) that the deputy turns into one: prefilled from it.
    raw_contact = request.values.get("contact", "")
    contact = contacts.own_contact(user, raw_contact) if raw_contact else None
    if request.method == "GET":
        if contact is None:
            return _in_person_form(user)
        return _in_person_form(user, values=contacts.prefill(contact), contact=contact)
    values = {name: request.form.get(name, "") for name in IN_PERSON_FIELDS}
    try:
        if contact is not None and contact.item_id is not None:
            contacts.link_item(contact, None)  # refused: it became an item already
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
        if exc.status not in (400, 409):
            raise
        db.session.rollback()
        return _in_person_form(
            user, exc.status, values=values, error=exc.message, error_field=exc.field, contact=contact
        )
    if contact is not None:
        contacts.link_item(contact, item)
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
    return _receipt_page(user, item, token, reissued=True)
