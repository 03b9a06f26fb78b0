"""The department's page behind a forward link (``/d/<token>``): no account, one item, answer once.

The token is the only credential and travels in the path only. An unknown token, a
revoked one, one replaced by a renewal, or a token used for something of another item
answers 404 with the same page; all but the first also write an audit row (kept
through the error answer). A link whose forward is answered and whose item is resolved stops
working after ``DEPARTMENT_LINK_GRACE_DAYS``: the page and the photos answer 410 with a page
that says so and whom to ask (the deputy can renew the link from the item page). The
resident's contact details are shown only when the forward shares them
(``ItemForward.share_contact``), masked first and revealed on request with an audit row.
"""

from __future__ import annotations

from flask import Blueprint, current_app, make_response, redirect, render_template, request, url_for
from sqlalchemy import select

from backend.audit import record_audit
from backend.downloads import jpeg_response
from backend.errors import UserError
from backend.extensions import db
from backend.items.contact import masked_contact
from backend.items.lifecycle import (
    ForwardLink,
    department_answer,
    department_link_token,
    department_pass_on,
    department_request_extension,
    department_return,
    extension_limit_days,
    open_forward_link,
    sub_units,
)
from backend.items.masking import mask_message
from backend.items.photo_store import read_photo
from backend.items.refs import format_ref
from backend.models import Item, ItemEvent, ItemEventKind, ItemForward, ItemPhoto
from backend.models.item import ITEM_CATEGORY_LABELS
from backend.stations.calendar import today_in_china

bp = Blueprint("department", __name__, url_prefix="/d")

UNKNOWN_FORWARD_MESSAGE = "找不到该交办件，链接可能有误或已被收回。请联系交办的代表。"
TOKEN_MAX_CHARS = 128


def _unknown() -> UserError:
    return UserError("unknown_forward", UNKNOWN_FORWARD_MESSAGE, 404)


def _audit_refusal(forward: ItemForward, reason: str, **data) -> None:
    """Audit a refused use of a real link, kept through the error answer."""
    record_audit(
        "forward_link_denied",
        object_type="item_forward",
        object_id=forward.id,
        data={"reason": reason, "item_id": forward.item_id, **data},
        keep=True,
    )


def _deny(forward: ItemForward, reason: str, **data) -> UserError:
    """Audit a refused use of a real link (revoked, replaced, or aimed at another item); the 404 to raise."""
    _audit_refusal(forward, reason, **data)
    return _unknown()


def forward_or_404(token: str) -> ItemForward:
    """The forward behind a working link; refused uses of a real link are audited; 410 for an expired one."""
    link = open_forward_link(token)
    if link.state == "live":
        return link.forward
    if link.state == "expired":
        raise _expired(link)
    if link.forward is not None:
        raise _deny(link.forward, link.state)
    raise _unknown()


class LinkExpired(Exception):
    """A department link past its grace period: answered with the expired page (410)."""

    def __init__(self, link: ForwardLink) -> None:
        super().__init__("department link expired")
        self.link = link


def _expired(link: ForwardLink) -> LinkExpired:
    """Audit the use of an expired link (kept through the 410), and the exception that shows the expired page."""
    _audit_refusal(link.forward, "expired")
    return LinkExpired(link)


@bp.errorhandler(LinkExpired)
def _expired_page(exc: LinkExpired):
    """The expired link's page: since when, why, and whom to ask for a new link."""
    forward = exc.link.forward
    item = db.session.get(Item, forward.item_id)
    context = {
        "forward": forward,
        "item": item,
        "ref_display": format_ref(item.ref),
        "expired_at": exc.link.expired_at,
    }
    return make_response(render_template("department/expired.html", **context), 410)


DONE_MESSAGES = {
    "1": "答复已提交，交办的代表会看到。谢谢！",
    "progress": "进展已报告，交办的代表会看到。",
    "extension": "延期申请已提交，交办的代表同意后办理期限会顺延。",
    "return": "已退回交办的代表。",
    "pass_on": "已转交下属单位，对方的办理情况会显示在本页。",
}


def _progress_and_outcome(item: Item, forward: ItemForward) -> tuple[list[ItemEvent], str]:
    """The department's progress reports on this forward, and what the deputy said to its last extension request."""
    mine = [e for e in item.events if (e.data or {}).get("forward_id") == forward.id]
    progress = [e for e in mine if e.kind == ItemEventKind.DEPARTMENT_REPLIED and (e.data or {}).get("final") is False]
    outcome = ""
    for event in mine:
        action = (event.data or {}).get("action")
        if action == "grant_extension" or (event.data or {}).get("extension_of_forward") == forward.id:
            outcome = "交办的代表已同意延期。"
        elif action == "refuse_extension":
            outcome = "交办的代表不同意延期，请按原期限办理。"
    return progress, outcome


def _hops(item: Item, forward: ItemForward) -> list[dict]:
    """The second hops of this forward: each unit, its due date, its progress reports and answer (up the chain)."""
    hops = db.session.scalars(
        select(ItemForward).where(ItemForward.parent_forward_id == forward.id).order_by(ItemForward.id)
    ).all()
    base = current_app.config["PUBLIC_BASE_URL"]
    return [
        {
            "forward": hop,
            "progress": _progress_and_outcome(item, hop)[0],
            "link": base + url_for("department.forward_page", token=department_link_token(hop)) if hop.is_live else "",
        }
        for hop in hops
    ]


def _page(forward: ItemForward, status: int = 200, **extra):
    item = db.session.get(Item, forward.item_id)
    progress, extension_outcome = _progress_and_outcome(item, forward)
    parent = db.session.get(ItemForward, forward.parent_forward_id) if forward.parent_forward_id else None
    # The message and the deputy's instructions with mobile numbers (and the resident's name) masked,
    # like the contact fields; a department the resident allowed to contact them sees them whole after
    # the audited reveal.
    whole = extra.get("revealed") is not None
    context = {
        "body": item.body if whole else mask_message(item.body, item.contact_name),
        "instructions": forward.instructions if whole else mask_message(forward.instructions, item.contact_name),
        "forward": forward,
        "item": item,
        "ref_display": format_ref(item.ref),
        "category_label": ITEM_CATEGORY_LABELS[item.category],
        "shares_contact": forward.share_contact and item.has_contact,
        "masked": masked_contact(item),
        "revealed": None,
        "values": {},
        "error": None,
        "error_field": None,
        "done": request.args.get("done") in DONE_MESSAGES,
        "done_message": DONE_MESSAGES.get(request.args.get("done", ""), ""),
        "progress": progress,
        "extension_outcome": extension_outcome,
        "extension_limit": extension_limit_days(item),
        "parent": parent,
        "units": sub_units(forward.department_id) if parent is None else [],
        "hops": _hops(item, forward),
        "error_action": None,
        "today": today_in_china().isoformat(),
    }
    context.update(extra)
    return make_response(render_template("department/forward.html", **context), status)


@bp.get("/<token>")
def forward_page(token: str):
    """The forwarded item: message, photos, the deputy's instructions and due date, and the answer form."""
    return _page(forward_or_404(token))


@bp.post("/<token>")
def answer(token: str):
    """Record the department's answer (what was done, and by when); shown again with the reason when refused."""
    forward = forward_or_404(token)
    values = {"text": request.form.get("text", ""), "promised_by": request.form.get("promised_by", "")}
    final = request.form.get("kind", "final") != "progress"
    return _act(
        token,
        forward,
        lambda: department_answer(forward, values["text"], values["promised_by"] or None, final=final),
        values,
        done="1" if final else "progress",
    )


@bp.post("/<token>/extension")
def request_extension(token: str):
    """The department asks the deputy for more time (``due``, ``text``: why)."""
    forward = forward_or_404(token)
    values = {"due": request.form.get("due", ""), "extension_text": request.form.get("text", "")}
    return _act(
        token,
        forward,
        lambda: department_request_extension(forward, values["due"], values["extension_text"]),
        values,
        done="extension",
        action="extension",
    )


@bp.post("/<token>/return")
def return_item(token: str):
    """退回: the department gives the item back to the deputy (``reason`` required)."""
    forward = forward_or_404(token)
    values = {"reason": request.form.get("reason", "")}
    return _act(
        token, forward, lambda: department_return(forward, values["reason"]), values, done="return", action="return"
    )


@bp.post("/<token>/pass-on")
def pass_on(token: str):
    """A second hop: pass the item on to one of the department's own units (``department_id``, ``due``, ``text``)."""
    forward = forward_or_404(token)
    values = {
        "unit_id": request.form.get("department_id", ""),
        "unit_due": request.form.get("due", ""),
        "unit_text": request.form.get("text", ""),
    }
    return _act(
        token,
        forward,
        lambda: department_pass_on(forward, values["unit_id"], values["unit_due"], values["unit_text"]),
        values,
        done="pass_on",
        action="pass_on",
    )


def _act(token: str, forward: ItemForward, operation, values: dict, *, done: str, action: str | None = None):
    """Run one of the department's operations; back to the page, or the page again with the reason refused."""
    try:
        operation()
    except UserError as exc:
        if exc.status == 404:
            raise
        db.session.rollback()
        return _page(forward, exc.status, values=values, error=exc.message, error_field=exc.field, error_action=action)
    return redirect(url_for("department.forward_page", token=token, done=done), 303)


@bp.post("/<token>/reveal")
def reveal_contact(token: str):
    """Show the resident's contact details, when the forward shares them; each reveal is audited."""
    forward = forward_or_404(token)
    item = db.session.get(Item, forward.item_id)
    if not (forward.share_contact and item.has_contact):
        raise _unknown()
    record_audit(
        "reveal_contact",
        object_type="item",
        object_id=item.id,
        data={"ref": item.ref, "via": "department_link", "forward_id": forward.id},
        keep=True,
    )
    return _page(forward, revealed={"name": item.contact_name, "phone": item.contact_phone})


@bp.get("/<token>/photos/<int:photo_id>.jpg")
def photo(token: str, photo_id: int):
    """A photo of the forwarded item; a photo of any other item answers 404 and is audited."""
    forward = forward_or_404(token)
    found = db.session.get(ItemPhoto, photo_id)
    if found is None:
        raise _unknown()
    if found.item_id != forward.item_id:
        raise _deny(forward, "other_item", photo_id=photo_id, other_item_id=found.item_id)
    data = read_photo(found)
    if data is None:
        raise _unknown()
    return jpeg_response(data)
