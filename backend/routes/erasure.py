"""The resident withdraws an item or erases their contact: on the tracking page (with a confirmation step) and
through the JSON API (``POST /api/v1/items/<ref>/erase?key=``).

Only the holder of the item's access key may, and never with a staff credential (``rating.refuse_staff``:
403, audited): a deputy who entered an item or a clerk at the resident's elbow cannot withdraw it or cut
the resident off. What each request keeps and removes is ``items.retention``'s.
"""

from __future__ import annotations

from flask import Blueprint, jsonify, redirect, render_template, request, url_for

from backend import api_schemas
from backend.api_schemas import describe
from backend.api_schemas import models as m
from backend.errors import UserError
from backend.extensions import csrf
from backend.items import retention, timeline
from backend.items.refs import format_ref
from backend.models import Item
from backend.routes.rating import KEY_HOLDER_ERRORS, refuse_staff
from backend.routes.resident import UNKNOWN_BY_KEY, item_for_key

bp = Blueprint("erasure", __name__)

STAFF_REFUSED_MESSAGE = (
    "工作人员账号不能撤回留言或删除群众的联系方式，只能由群众本人在自己的手机上操作；"
    "如果这是群众本人的手机，请先退出工作人员登录。"
)

# what → (the area's operation, its refusal)
WHATS = {
    "withdraw": (retention.withdraw_item, retention.withdraw_refusal),
    "contact": (retention.erase_contact, retention.erase_refusal),
}


def _refuse_staff(ref: str) -> None:
    refuse_staff(ref, audit_action="erasure_refused_staff", code="staff_cannot_erase", message=STAFF_REFUSED_MESSAGE)


def _what(value: object) -> str:
    if not isinstance(value, str) or value not in WHATS:
        raise UserError(
            "invalid_what", "请选择要做的事：撤回留言（withdraw）或删除联系方式（contact）。", 400, field="what"
        )
    return value


@bp.app_template_global()
def resident_may_withdraw(item: Item) -> bool:
    """For the tracking page: show 撤回留言 while nobody has answered the item."""
    return retention.withdraw_refusal(item) is None


@bp.app_template_global()
def resident_withdraw_note(item: Item) -> str:
    """For the tracking page: why 撤回留言 is gone when a submitted 代表建议 holds the item ("" otherwise)."""
    refusal = retention.withdraw_refusal(item)
    return refusal.message if refusal is not None and refusal.code == "in_submitted_proposal" else ""


@bp.app_template_global()
def resident_may_erase_contact(item: Item) -> bool:
    """For the tracking page: show 删除我的联系方式 while something of the contact is left."""
    return retention.erase_refusal(item) is None


@bp.get("/t/<ref>/erase")
def confirm_page(ref: str):
    """The confirmation step: what withdrawing or erasing does, and a button to confirm (a tap alone never erases)."""
    _refuse_staff(ref)
    what = _what(request.args.get("what"))
    item = item_for_key(ref, request.args.get("k"))
    refusal = WHATS[what][1](item)
    if refusal is not None:
        raise refusal
    response = render_template("erase_confirm.html", item=item, what=what, ref_display=format_ref(item.ref))
    return response, 200


@bp.post("/t/<ref>/erase")
def erase_page(ref: str):
    """The confirmation page's form (CSRF-protected): do it, and back to the tracking page's timeline."""
    _refuse_staff(ref)
    item = item_for_key(ref, request.args.get("k"))
    what = _what(request.form.get("what"))
    WHATS[what][0](item)
    return redirect(url_for("resident.track", ref=item.ref, k=item.access_key, _anchor="timeline"), 303)


@bp.post("/api/v1/items/<ref>/erase")
@csrf.exempt
@describe(
    tags=("群众",),
    query=m.KeyQuery,
    json=m.EraseRequest,
    # 403 staff_cannot_erase; 409 already_withdrawn, already_answered, in_submitted_proposal, already_erased
    responses={200: m.EraseAnswer, **KEY_HOLDER_ERRORS},
)
def erase_api(ref: str):
    """``?key=`` and ``{"what": "withdraw"|"contact"}`` → 200 with the item's status after it.

    withdraw: an item nobody has answered yet is closed as withdrawn (已撤回), its contact and photos
    removed; contact: the name, number and WeChat link are removed, the item goes on.
    """
    _refuse_staff(ref)
    item = item_for_key(ref, request.args.get("key"), UNKNOWN_BY_KEY)
    data: m.EraseRequest = api_schemas.body()
    what = _what(data.what)
    WHATS[what][0](item)
    return jsonify(
        ref=item.ref,
        ref_display=format_ref(item.ref),
        what=what,
        status=item.status.value,
        status_label=timeline.status_label(item),
        has_contact=item.has_contact,
    )
