"""API tokens for the mini-program: issue with a password, revoke, and say whose token it is."""

from __future__ import annotations

from flask import Blueprint, g, jsonify

from backend.auth.sessions import api_auth_required, current_staff, login, logout
from backend.extensions import csrf, db
from backend.models import SessionKind, StaffUser
from backend.routes.api import json_body

bp = Blueprint("api_auth", __name__, url_prefix="/api/v1/auth")
csrf.exempt(bp)  # the API takes no cookies; tokens come in headers


def staff_json(user: StaffUser) -> dict:
    """A staff user as the mini-program shows them."""
    return {"id": user.id, "username": user.username, "role": user.role.value, "display_name": user.display_name}


@bp.post("/token")
def issue_token():
    """``{"username", "password"}`` → 201 with a bearer token, its expiry and the user."""
    data = json_body()
    user, secret = login(data.get("username"), data.get("password"), SessionKind.API)
    expires_at = g.staff_session.expires_at
    db.session.commit()
    return jsonify(token=secret, expires_at=expires_at.isoformat(), user=staff_json(user)), 201


@bp.delete("/token")
@api_auth_required
def revoke_token():
    """Revoke the token this request presents: 204, and it no longer works anywhere."""
    logout()
    db.session.commit()
    return "", 204


@bp.get("/me")
@api_auth_required
def whoami():
    """The user the presented token belongs to, and when the token expires."""
    user = current_staff()
    return jsonify(user=staff_json(user), expires_at=g.staff_session.expires_at.isoformat())
