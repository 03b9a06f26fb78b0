"""The resident's side of a receipt (回执): ``/r/<token>``, the claim link a deputy's receipt carries.

``GET`` shows what the deputy recorded (numbers and the resident's name masked: a receipt can be
lost and found) and a button; ``POST`` (CSRF-protected) claims the item for this phone and sends
it to the tracking page with the new access key, which exists only there (``items.claims``). In
WeChat's browser the page first passes the silent OAuth, as the form does, so that the claim binds
the resident's WeChat identity when an official account is configured.

A browser or app carrying any staff credential is refused (403, audited) on both: a claim link is
for the resident's own phone. Unknown links answer 404; a used receipt 409 and a voided one 410,
each with a page that says what happened and whom to ask (and, being real receipts, audited).
"""

from __future__ import annotations

from flask import Blueprint, make_response, redirect, render_template, request, url_for

from backend.audit import record_audit
from backend.auth.sessions import staff_in_request
from backend.errors import UserError
from backend.extensions import db
from backend.items.claims import ReceiptLookup, claim_item, open_receipt, receipt_refusal
from backend.items.masking import mask_message
from backend.items.refs import format_ref
from backend.models.item import ITEM_CATEGORY_LABELS
from backend.wechat import identity as wechat_identity

bp = Blueprint("claim", __name__)

STAFF_REFUSED_MESSAGE = (
    "这部手机或浏览器登录过工作人员账号，不能认领。回执只能由群众本人用自己的手机扫码认领；"
    "请把回执交给群众，由群众用本人手机扫描。"
)


def _audit_refusal(lookup: ReceiptLookup | None, reason: str, *, user=None, **data) -> None:
    """Audit a refused claim of a real receipt, or any attempt by staff, kept through the error answer."""
    receipt = lookup.receipt if lookup is not None else None
    record_audit(
        "claim_refused",
        user=user,
        object_type="item_receipt" if receipt is not None else "path",
        object_id=receipt.id if receipt is not None else request.path[:64],
        data={"reason": reason, "item_id": receipt.item_id if receipt is not None else None, **data},
        keep=True,
    )


def _refuse_staff() -> None:
    user = staff_in_request()
    if user is None:
        return
    lookup = open_receipt(request.view_args.get("token"))
    _audit_refusal(lookup if lookup.receipt is not None else None, "staff", user=user, role=user.role.value)
    raise UserError("staff_cannot_claim", STAFF_REFUSED_MESSAGE, 403)


def _page(lookup: ReceiptLookup, status: int = 200, error: UserError | None = None):
    item = lookup.item
    context = {"lookup": lookup, "item": item, "error": error}
    if item is not None:
        context.update(
            ref_display=format_ref(item.ref),
            category_label=ITEM_CATEGORY_LABELS[item.category],
            body=mask_message(item.body, item.contact_name),
        )
    return make_response(render_template("claim.html", **context), status)


def _refused(lookup: ReceiptLookup):
    error = receipt_refusal(lookup)
    if lookup.receipt is None:
        raise error  # unknown: the plain error page, like any unknown link
    _audit_refusal(lookup, lookup.state)
    return _page(lookup, error.status, error)


def _live_receipt(token: str) -> tuple[ReceiptLookup, object]:
    """The receipt behind ``token`` (staff refused first), and the refusal's page when it cannot be claimed."""
    _refuse_staff()
    lookup = open_receipt(token)
    return lookup, (_refused(lookup) if lookup.state != "live" else None)


@bp.get("/r/<token>")
def receipt_page(token: str):
    """What the receipt's QR code opens: the item as the deputy recorded it, and the button to claim it."""
    lookup, refusal = _live_receipt(token)
    if refusal is not None:
        return refusal
    oauth = wechat_identity.h5_oauth_redirect(request.path)  # WeChat's browser: silent OAuth once, never demanded
    if oauth is not None:
        return oauth
    return _page(lookup)


@bp.post("/r/<token>")
def claim(token: str):
    """Claim the item for this phone; on to its tracking page, where the new key is shown (and only there)."""
    _, refusal = _live_receipt(token)
    if refusal is not None:
        return refusal
    try:
        item, key = claim_item(token, wechat_identity.session_resident())
    except UserError as exc:  # claimed or voided a moment ago, by another request
        db.session.rollback()
        again = open_receipt(token)
        if again.receipt is None:
            raise
        _audit_refusal(again, again.state, race=True)
        return _page(again, exc.status, exc)
    return redirect(url_for("resident.track", ref=item.ref, k=key, claimed=1), 303)
