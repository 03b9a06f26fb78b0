"""The resident's side of the JSON API (v1) with a WeChat identity: log in, my items; and a deputy binding WeChat.

Residents never need this to write or to look an item up (the reference and key do that);
a token only lets the mini-program list "my items" and lets notifications reach them.
"""

from __future__ import annotations

from flask import Blueprint, jsonify, request
from sqlalchemy import func, select

from backend.errors import UserError
from backend.extensions import csrf, db
from backend.items.inbox import first_line
from backend.items.refs import format_ref, normalize_ref
from backend.models import Item
from backend.models.item import ITEM_STATUS_LABELS
from backend.routes.api import json_body, track_url
from backend.routes.api_auth import staff_json
from backend.wechat.identity import bind_staff_wechat, login_resident, require_resident

bp = Blueprint("api_resident", __name__, url_prefix="/api/v1")
csrf.exempt(bp)  # the API takes no cookies; tokens come in headers

DEFAULT_PER_PAGE = 20
MAX_PER_PAGE = 50
MAX_PAGE = 10_000


@bp.post("/wechat/login")
def wechat_login():
    """``{"code"}`` from ``wx.login`` → 201 ``{"token", "expires_at"}``; the session key stays on the server."""
    data = json_body()
    _resident, token, expires_at = login_resident(data.get("code"))
    db.session.commit()
    return jsonify(token=token, expires_at=expires_at.isoformat()), 201


def my_item_json(item: Item) -> dict:
    """One of the resident's items: reference, status, when, and the tracking link (with its key)."""
    return {
        "ref": item.ref,
        "ref_display": format_ref(item.ref),
        "key": item.access_key,
        "status": item.status.value,
        "status_label": ITEM_STATUS_LABELS[item.status],
        "is_under_review": item.is_held,
        "summary": first_line(item.body, 30),
        "deputy": {"id": item.deputy.id, "name": item.deputy.name} if item.deputy else None,
        "station": {"id": item.station.id, "name": item.station.name},
        "created_at": item.created_at.isoformat(),
        "track_url": track_url(item.ref, item.access_key),
    }


def _positive_int(name: str, default: int, maximum: int) -> int:
    raw = request.args.get(name)
    if raw in (None, ""):
        return default
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= maximum:
        raise UserError(f"invalid_{name}", f"{name} 须为 1 到 {maximum} 之间的整数。", 400, field=name)
    return int(raw)


@bp.get("/me/items")
def my_items():
    """The resident's items, newest first: ``?page=&per_page=`` (20 a page, at most 50)."""
    resident = require_resident()
    page = _positive_int("page", 1, MAX_PAGE)
    per_page = _positive_int("per_page", DEFAULT_PER_PAGE, MAX_PER_PAGE)
    total = db.session.scalar(select(func.count()).select_from(Item).where(Item.resident_id == resident.id))
    items = db.session.scalars(
        select(Item)
        .where(Item.resident_id == resident.id)
        .order_by(Item.created_at.desc(), Item.id.desc())
        .offset((page - 1) * per_page)
        .limit(per_page)
    ).all()
    rows = [my_item_json(item) for item in items]
    return jsonify(
        items=rows,
        page=page,
        per_page=per_page,
        total=total,
        pages=max(1, -(-total // per_page)),
        has_next=page * per_page < total,
    )


@bp.get("/me/items/<ref>")
def my_item(ref: str):
    """One of the resident's items by reference (what a notification's page opens: it carries no key)."""
    resident = require_resident()
    normalized = normalize_ref(ref)
    item = (
        db.session.scalar(select(Item).where(Item.ref == normalized, Item.resident_id == resident.id))
        if normalized
        else None
    )
    if item is None:
        raise UserError("unknown_item", "找不到该留言，请核对编号。", 404)
    return jsonify(my_item_json(item))


@bp.post("/wechat/bind")
def wechat_bind():
    """``{"code": <wx.login code>, "binding_code"}`` → the deputy's account, now tied to this WeChat user."""
    data = json_body()
    user = bind_staff_wechat(data.get("code"), data.get("binding_code"))
    db.session.commit()
    return jsonify(bound=True, user=staff_json(user))
