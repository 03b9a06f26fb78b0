"""The department's page behind a forward link (``/d/<token>``): no account, one item, answer once.

The token is the only credential and travels in the path only. An unknown token, a
revoked one, or a token used for something of another item answers 404 with the same
page; the last two also write an audit row (committed before the answer). The resident's
contact details are shown only when the forward shares them (``ItemForward.share_contact``),
masked first and revealed on request with an audit row.
"""

from __future__ import annotations

from flask import Blueprint, make_response, redirect, render_template, request, url_for
from sqlalchemy import select

from backend.audit import record_audit
from backend.errors import UserError
from backend.extensions import db
from backend.items.lifecycle import department_answer, find_forward, hash_forward_token
from backend.items.masking import mask_message, mask_name, mask_phone
from backend.items.refs import format_ref
from backend.models import Item, ItemForward, ItemPhoto
from backend.models.item import ITEM_CATEGORY_LABELS
from backend.routes.deputy import jpeg_response
from backend.stations.calendar import today_in_china

bp = Blueprint("department", __name__, url_prefix="/d")

UNKNOWN_FORWARD_MESSAGE = "找不到该交办件，链接可能有误或已被收回。请联系交办的代表。"
TOKEN_MAX_CHARS = 128


@bp.after_request
def _no_store(response):
    """The page is reached with a secret in its path: never cached anywhere."""
    response.headers["Cache-Control"] = "no-store"
    return response


def _unknown() -> UserError:
    return UserError("unknown_forward", UNKNOWN_FORWARD_MESSAGE, 404)


def _deny(forward: ItemForward, reason: str, **data) -> UserError:
    """Audit a refused use of a real link (revoked, or aimed at another item), commit it, and return the 404."""
    record_audit(
        "forward_link_denied",
        object_type="item_forward",
        object_id=forward.id,
        data={"reason": reason, "item_id": forward.item_id, **data},
    )
    db.session.commit()
    return _unknown()


def forward_or_404(token: str) -> ItemForward:
    """The live forward behind ``token``; a revoked one is audited; both it and an unknown token answer 404."""
    forward = find_forward(token)
    if forward is not None:
        return forward
    if isinstance(token, str) and len(token) <= TOKEN_MAX_CHARS:
        revoked = db.session.scalar(select(ItemForward).where(ItemForward.token_hash == hash_forward_token(token)))
        if revoked is not None:
            raise _deny(revoked, "revoked")
    raise _unknown()


def _page(forward: ItemForward, status: int = 200, **extra):
    item = db.session.get(Item, forward.item_id)
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
        "masked": {"name": mask_name(item.contact_name), "phone": mask_phone(item.contact_phone)},
        "revealed": None,
        "values": {},
        "error": None,
        "error_field": None,
        "done": request.args.get("done") == "1",
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
    try:
        department_answer(forward, values["text"], values["promised_by"] or None)
    except UserError as exc:
        if exc.status == 404:
            raise
        db.session.rollback()
        return _page(forward, exc.status, values=values, error=exc.message, error_field=exc.field)
    db.session.commit()
    return redirect(url_for("department.forward_page", token=token, done=1), 303)


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
    )
    db.session.commit()
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
    return jpeg_response(found.jpeg)
