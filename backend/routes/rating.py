"""The resident's verdict (满意度测评): on the tracking page and through the JSON API.

Only the holder of the item's access key may rate, and never from a browser or an app that
carries a staff credential: a request with a staff session cookie or a staff bearer token
(live, expired or revoked) is refused with 403 before the key is even looked at, audited, and
nothing else is written. No staff page or API action records a rating either (被满意:
``lifecycle.rate_item`` takes no staff actor, and only this module calls it), and an item a
deputy entered in person cannot be rated until the resident claimed it (``items.claims``).
"""

from __future__ import annotations

from flask import Blueprint, g, jsonify, redirect, request, url_for

from backend import api_schemas
from backend.api_schemas import describe
from backend.api_schemas import models as m
from backend.audit import record_audit
from backend.auth.sessions import staff_in_request
from backend.errors import UserError
from backend.extensions import csrf, db
from backend.items.lifecycle import rate_item
from backend.items.operations import find_item_for_resident
from backend.items.refs import format_ref
from backend.models import Item, Satisfaction
from backend.models.item import ITEM_STATUS_LABELS
from backend.routes import resident
from backend.security import client_address

bp = Blueprint("rating", __name__)

RATING_FIELDS = ("satisfaction", "solved", "comment")


STAFF_REFUSED_MESSAGE = (
    "工作人员账号不能评价。满意度测评只能由群众本人在自己的手机上进行，工作人员不能代为评价；"
    "如果这是群众本人的手机，请先退出工作人员登录。"
)


def refuse_staff(
    ref: str,
    *,
    audit_action: str = "rating_refused_staff",
    code: str = "staff_cannot_rate",
    message: str = STAFF_REFUSED_MESSAGE,
) -> None:
    """403 for a request that carries any staff credential (audited and committed: someone tried to act as the
    resident). Rating by default; the resident's withdrawal and erasure pass their own action, code and message."""
    user = staff_in_request()
    if user is None:
        return
    record_audit(
        audit_action,
        user=user,
        object_type="item_ref",
        object_id=ref[:64],
        data={"path": request.path[:500], "role": user.role.value},
    )
    db.session.commit()  # the error answer rolls the request back; the audit row must stay
    raise UserError(code, message, 403)


def _item_for_key(ref: str, key: object, message: str) -> Item:
    item = find_item_for_resident(ref, key, client_address())
    if item is None:
        raise UserError("unknown_item", message, 404)
    return item


@bp.post("/t/<ref>/rating")
def rate_page(ref: str):
    """The rating form of the tracking page (CSRF-protected); back to the page, or the page again with the error."""
    refuse_staff(ref)
    item = _item_for_key(ref, request.args.get("k"), "找不到该留言。请核对编号和查询链接是否完整。")
    values = {name: request.form.get(name, "") for name in RATING_FIELDS}
    try:
        rate_item(item, values["satisfaction"], values["solved"] or None, values["comment"])
    except UserError as exc:
        if exc.status not in (400, 409):
            raise
        db.session.rollback()
        # The tracking page as it is, with the form's error and what the resident typed.
        g.rating_form = {"error": exc.message, "field": exc.field, "values": values}
        try:
            response = resident.track(item.ref)
        finally:
            g.pop("rating_form", None)
        response.status_code = exc.status
        return response
    db.session.commit()
    return redirect(url_for("resident.track", ref=item.ref, k=item.access_key, _anchor="timeline"), 303)


@bp.post("/api/v1/items/<ref>/rating")
@csrf.exempt
@describe(
    tags=("群众",),
    query=m.KeyQuery,
    json=m.RatingRequest,
    responses={
        200: m.RatingAnswer,
        403: m.ErrorResponse,  # staff_cannot_rate: the request carries a staff credential
        404: m.ErrorResponse,
        409: m.ErrorResponse,
        429: m.ErrorResponse,
    },
)
def rate_api(ref: str):
    """``?key=`` and ``{"satisfaction": "satisfied"|"basically"|"unsatisfied", "solved": bool, "comment"}`` → 200.

    Answers the item's status after the verdict ("accepted" again when not satisfied).
    """
    refuse_staff(ref)
    item = _item_for_key(ref, request.args.get("key"), "找不到该留言，请核对编号和查询码。")
    data: m.RatingRequest = api_schemas.body()
    event = rate_item(item, data.satisfaction, data.solved, data.comment or "")
    db.session.commit()
    return jsonify(
        ref=item.ref,
        ref_display=format_ref(item.ref),
        status=item.status.value,
        status_label=ITEM_STATUS_LABELS[item.status],
        satisfaction=event.data["satisfaction"],
        solved=event.data["solved"],
        reopened=event.data["satisfaction"] == Satisfaction.UNSATISFIED.value,
    )
