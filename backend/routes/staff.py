"""Staff pages: login, logout, the landing page after login and the account's own page (mobile first, Simplified
Chinese)."""

from __future__ import annotations

from flask import Blueprint, make_response, redirect, render_template, request, url_for

from backend.admin import accounts
from backend.auth import ROLE_LABELS, describe_scope, own_account
from backend.auth.navigation import landing_url, nav_links
from backend.auth.sessions import USERNAME_MAX_LENGTH, current_staff, is_safe_next, login, login_required, logout
from backend.errors import UserError
from backend.extensions import db
from backend.models import SessionKind, StaffRole

bp = Blueprint("staff", __name__, url_prefix="/staff")


def _next_target(value: object) -> str:
    """Where to go after login: the requested local path, or the page the role comes for (a deputy: the inbox)."""
    if is_safe_next(value):
        return value
    user = current_staff()
    return landing_url(user) if user is not None else url_for("staff.home")


@bp.app_context_processor
def _staff_nav() -> dict:
    """``staff_nav()`` for every page's header (staff/_nav.html): the bar of the logged-in role, empty for others."""
    return {"staff_nav": lambda: nav_links(current_staff(), request.endpoint)}


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
    return redirect(_next_target(next_value), 303)


@bp.post("/logout", endpoint="logout")
def logout_submit():
    """End the session server-side (POST with a CSRF token; GET is not allowed) and go to the login page."""
    logout()
    return redirect(url_for("staff.login", logged_out=1), 303)


@bp.get("/")
@login_required
def home():
    """Who is logged in, and the way to the inbox."""
    user = current_staff()
    return render_template("staff/home.html", user=user, role_label=ROLE_LABELS[user.role], scope=describe_scope(user))


def _account_page(status: int = 200, **context):
    user = current_staff()
    context.setdefault("error", None)
    context.setdefault("error_field", None)
    page = render_template(
        "staff/account.html",
        user=user,
        sessions=own_account.own_sessions(user),
        min_length=own_account.PASSWORD_MIN_LENGTH,
        done=request.args.get("done", ""),
        **context,
    )
    return make_response(page, status)


@bp.get("/account")
@login_required
def account():
    """The account's own page: change the password, see every login and end the ones not wanted."""
    return _account_page()


@bp.post("/account/password")
@login_required
def account_password():
    """Change the password (the current one first); every other login of the account ends."""
    form = request.form
    try:
        own_account.change_password(current_staff(), form.get("current"), form.get("password"), form.get("confirm"))
    except UserError as exc:
        db.session.rollback()
        response = _account_page(exc.status, error=exc.message, error_field=exc.field)
        if exc.retry_after is not None:
            response.headers["Retry-After"] = str(exc.retry_after)
        return response
    return redirect(url_for("staff.account", done="password"), 303)


@bp.post("/account/sessions/<int(max=2147483647):session_id>/end")
@login_required
def account_session_end(session_id: int):
    """End one of the account's own logins (the current one too: that is a logout)."""
    if session_id == own_account.current_session_id():
        logout()
        return redirect(url_for("staff.login", logged_out=1), 303)
    try:
        own_account.end_session(current_staff(), session_id)
    except UserError as exc:
        db.session.rollback()
        return _account_page(exc.status, error=exc.message)
    return redirect(url_for("staff.account", done="session"), 303)


@bp.post("/account/sessions/end-others")
@login_required
def account_sessions_end_others():
    """End every login of the account but this one."""
    own_account.end_other_sessions(current_staff())
    return redirect(url_for("staff.account", done="others"), 303)


@bp.route("/activate/<token>", methods=["GET", "POST"], endpoint="activate")
def activate(token: str):
    """A one-time activation link: the person sets their own password, is logged in, and may bind WeChat next."""
    try:
        link = accounts.open_activation(token)
    except UserError as exc:
        return make_response(render_template("staff/activate.html", failure=exc.message, account=None), exc.status)
    account = link.staff_user
    if request.method == "GET":
        return render_template(
            "staff/activate.html",
            account=account,
            failure=None,
            error=None,
            error_field=None,
            min_length=own_account.PASSWORD_MIN_LENGTH,
        )
    password = request.form.get("password", "")
    try:
        accounts.activate(token, password, request.form.get("confirm"))
    except UserError as exc:
        db.session.rollback()
        page = render_template(
            "staff/activate.html",
            account=account,
            failure=None,
            error=exc.message,
            error_field=exc.field,
            min_length=own_account.PASSWORD_MIN_LENGTH,
        )
        return make_response(page, exc.status)
    try:
        login(account.username, password, SessionKind.WEB)
    except UserError:  # the password is set (and kept); the login itself was refused (a throttled address)
        return redirect(url_for("staff.login"), 303)
    if account.role == StaffRole.DEPUTY:  # straight to what a deputy came for, with WeChat binding offered there
        return redirect(url_for("deputy.inbox", activated=1), 303)
    return redirect(url_for("staff.home", activated=1), 303)
