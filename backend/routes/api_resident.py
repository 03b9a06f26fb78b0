"""The resident's side of the JSON API (v1) with a WeChat identity: log in, my items; and a deputy binding WeChat.

Residents never need this to write or to look an item up (the reference and key do that);
a token only lets the mini-program list "my items" and lets notifications reach them.
"""

from __future__ import annotations

from flask import Blueprint, g, jsonify
from sqlalchemy import func, select

from backend import api_schemas, pagination
from backend.api_schemas import RESIDENT, describe
from backend.api_schemas import models as m
from backend.auth.sessions import open_session
from backend.errors import UserError
from backend.extensions import csrf, db
from backend.items import timeline
from backend.items.inbox import first_line
from backend.items.refs import format_ref, normalize_ref, tracking_url
from backend.models import Item, SessionKind
from backend.routes.api_auth import staff_json
from backend.security import client_address
from backend.wechat.identity import bind_staff_wechat, login_resident, require_resident

bp = Blueprint("api_resident", __name__, url_prefix="/api/v1")
csrf.exempt(bp)  # the API takes no cookies; tokens come in headers


@bp.post("/wechat/login")
@describe(
    tags=("群众",),
    json=m.WechatLoginRequest,
    responses={201: m.ResidentToken, 503: m.ErrorResponse},
)
def wechat_login():
    """``{"code"}`` from ``wx.login`` → 201 ``{"token", "expires_at"}``; the session key stays on the server.

    400 for a code WeChat refuses; 503 (with ``Retry-After``) when WeChat cannot be reached.
    """
    data: m.WechatLoginRequest = api_schemas.body()
    _resident, token, expires_at = login_resident(data.code)
    return jsonify(token=token, expires_at=expires_at.isoformat()), 201


def my_item_json(item: Item) -> dict:
    """One of the resident's items: reference, status, when, and the tracking link (with its key)."""
    return {
        "ref": item.ref,
        "ref_display": format_ref(item.ref),
        "key": item.access_key,
        "status": item.status.value,
        "status_label": timeline.status_label(item),
        "is_under_review": item.is_held,
        "summary": first_line(item.body, 30),
        "deputy": {"id": item.deputy.id, "name": item.deputy.name} if item.deputy else None,
        "station": {"id": item.station.id, "name": item.station.name},
        "created_at": item.created_at.isoformat(),
        "track_url": tracking_url(item.ref, item.access_key),
    }


@bp.get("/me/items")
@describe(tags=("群众",), security=RESIDENT, query=m.MyItemsQuery, responses={200: m.MyItems, 401: m.ErrorResponse})
def my_items():
    """The resident's items, newest first: ``?page=&per_page=`` (20 a page, at most 50)."""
    resident = require_resident()
    query: m.MyItemsQuery = api_schemas.args()
    page = query.page or 1
    per_page = query.per_page or pagination.DEFAULT_PER_PAGE
    total = db.session.scalar(select(func.count()).select_from(Item).where(Item.resident_id == resident.id))
    items = db.session.scalars(
        select(Item)
        .where(Item.resident_id == resident.id)
        .order_by(Item.created_at.desc(), Item.id.desc())
        .offset(pagination.offset(page, per_page))
        .limit(per_page)
    ).all()
    rows = [my_item_json(item) for item in items]
    return jsonify(
        items=rows,
        page=page,
        per_page=per_page,
        total=total,
        pages=pagination.page_count(total, per_page),
        has_next=page * per_page < total,
    )


@bp.get("/me/items/<ref>")
@describe(tags=("群众",), security=RESIDENT, responses={200: m.MyItem, 401: m.ErrorResponse, 404: m.ErrorResponse})
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
@describe(
    tags=("员工",),
    json=m.WechatBindRequest,
    responses={200: m.BindAnswer, 503: m.ErrorResponse},
)
def wechat_bind():
    """``{"code": <wx.login code>, "binding_code"}`` → the deputy's account, now tied to this WeChat user, and a
    bearer token for it (the mini-program is signed in)."""
    data: m.WechatBindRequest = api_schemas.body()
    user = bind_staff_wechat(data.code, data.binding_code)
    # Binding signs the deputy in: the one-time code was made by their own logged-in web session and spent by
    # their own WeChat, which proves them as well as the password would; no second login on the phone.
    token = open_session(user, SessionKind.API, client_address(), how="wechat_binding") if user.is_active else None
    expires_at = g.staff_session.expires_at.isoformat() if token else None
    return jsonify(bound=True, user=staff_json(user), token=token, expires_at=expires_at)
