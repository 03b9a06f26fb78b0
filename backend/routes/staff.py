"""Staff pages: login, logout and the landing page after login (mobile first, Simplified Chinese)."""

from __future__ import annotations

from flask import Blueprint, make_response, redirect, render_template, request, url_for

from backend.auth import ROLE_LABELS, describe_scope
from backend.auth.sessions import USERNAME_MAX_LENGTH, current_staff, is_safe_next, login, login_required, logout
from backend.errors import UserError
from backend.extensions import db
from backend.models import SessionKind

bp = Blueprint("staff", __name__, url_prefix="/staff")


def _next_target(value: object) -> str:
    """Where to go after login: the requested local path, or the staff landing page."""
    return value if is_safe_next(value) else url_for("staff.home")


def _login_page(error: str | None = None, username: str = "", next_value: str = "", status: int = 200):
    """The login form, with an error and the username kept after a failed attempt."""
    page = render_template(
        "staff/login.html",
        error=error,
        username=username[:USERNAME_MAX_LENGTH],
        next=next_value if is_safe_next(next_value) else "",
        logged_out=request.args.get("logged_out") == "1",
    )
    return make_response(page, status)


@bp.route("/login", methods=["GET", "POST"], endpoint="login")
def login_page():
    """The login form; a POST checks the password, opens a new session and goes on to ``next`` or the landing page."""
    if request.method == "GET":
        next_value = request.args.get("next", "")
        if current_staff() is not None:  # already logged in: go straight on
            return redirect(_next_target(next_value), 303)
        return _login_page(next_value=next_value)

    username = request.form.get("username", "")
    next_value = request.form.get("next", "")
    try:
        login(username, request.form.get("password", ""), SessionKind.WEB)
    except UserError as exc:
        response = _login_page(exc.message, username.strip(), next_value, exc.status)
        if exc.retry_after is not None:
            response.headers["Retry-After"] = str(exc.retry_after)
        return response
    db.session.commit()
    return redirect(_next_target(next_value), 303)


@bp.post("/logout", endpoint="logout")
def logout_submit():
    """End the session server-side (POST with a CSRF token; GET is not allowed) and go to the login page."""
    logout()
    db.session.commit()
    return redirect(url_for("staff.login", logged_out=1), 303)


@bp.get("/")
@login_required
def home():
    """Who is logged in, and the way to the inbox."""
    user = current_staff()
    return render_template("staff/home.html", user=user, role_label=ROLE_LABELS[user.role], scope=describe_scope(user))
