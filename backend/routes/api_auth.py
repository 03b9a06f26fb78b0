"""API tokens for the mini-program: issue with a password, revoke, and say whose token it is."""

from __future__ import annotations

from flask import Blueprint, g, jsonify

from backend import api_schemas
from backend.api_schemas import STAFF, describe
from backend.api_schemas import models as m
from backend.auth.sessions import api_auth_required, current_staff, login, logout
from backend.extensions import csrf
from backend.models import SessionKind, StaffUser

bp = Blueprint("api_auth", __name__, url_prefix="/api/v1/auth")
csrf.exempt(bp)  # the API takes no cookies; tokens come in headers


def staff_json(user: StaffUser) -> dict:
    """A staff user as the mini-program shows them."""
    return {"id": user.id, "username": user.username, "role": user.role.value, "display_name": user.display_name}


@bp.post("/token")
@describe(
    tags=("员工",),
    json=m.TokenRequest,
    responses={
        201: m.TokenAnswer,
        401: m.ErrorResponse,
        403: m.ErrorResponse,
        429: m.ErrorResponse,
    },
)
def issue_token():
    """``{"username", "password"}`` → 201 with a bearer token, its expiry and the user.

    401 ``bad_credentials`` (the same for an unknown user), 403 ``account_inactive``, 429 ``too_many_logins``.
    """
    data: m.TokenRequest = api_schemas.body()
    user, secret = login(data.username, data.password, SessionKind.API)
    expires_at = g.staff_session.expires_at
    return jsonify(token=secret, expires_at=expires_at.isoformat(), user=staff_json(user)), 201


@bp.delete("/token")
@api_auth_required
@describe(tags=("员工",), security=STAFF, responses={204: None, 401: m.ErrorResponse})
def revoke_token():
    """Revoke the token this request presents: 204, and it no longer works anywhere."""
    logout()
    return "", 204


@bp.get("/me")
@api_auth_required
@describe(tags=("员工",), security=STAFF, responses={200: m.WhoAmI, 401: m.ErrorResponse})
def whoami():
    """The user the presented token belongs to, and when the token expires."""
    user = current_staff()
    return jsonify(user=staff_json(user), expires_at=g.staff_session.expires_at.isoformat())
