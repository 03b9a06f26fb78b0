"""Staff login, server-side sessions and API tokens, and the role checks in front of staff pages.

A login creates a ``StaffSession`` row holding only the SHA-256 of a random secret. The
secret travels in the signed Flask cookie session (``session["sid"]``, nothing else) for
the mobile pages, or as ``Authorization: Bearer <secret>`` for the JSON API. Revoking
the row ends the session wherever the secret is kept, so logout really logs out.

Failed logins are counted per (account, address) pair and per address, never per
account alone: an attacker guessing from one address cannot lock every deputy out of
their own phone. Each attempt is counted before its password is checked and the right
password takes the count back, so only failures use the limit up; a throttled attempt is
refused even with the right password.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta

from flask import abort, current_app, g, has_request_context, redirect, request, session, url_for
from sqlalchemy import select, update
from sqlalchemy.orm import contains_eager
from werkzeug.security import check_password_hash, generate_password_hash

from backend import database, throttle
from backend.audit import record_added, record_audit
from backend.auth.passwords import password_hash_method
from backend.errors import UserError, error_response, wants_json
from backend.extensions import db
from backend.models import SessionKind, StaffRole, StaffSession, StaffUser, utcnow
from backend.security import client_address

USERNAME_MAX_LENGTH = 50  # StaffUser.username
SECRET_MAX_LENGTH = 128  # token_urlsafe(32) is 43 characters; anything much longer is not ours
LAST_SEEN_INTERVAL = timedelta(minutes=1)
BAD_CREDENTIALS_MESSAGE = "用户名或密码错误。"


def hash_secret(secret: str) -> str:
    """The SHA-256 hex digest stored in ``StaffSession.token_hash`` for a session secret."""
    return hashlib.sha256(secret.encode()).hexdigest()


def normalize_username(username: str) -> str:
    """Usernames are compared lower-cased and trimmed: phone keyboards capitalise the first letter."""
    return username.strip().lower()


def _dummy_password_hash() -> str:
    """A hash of a random password, made with the same method as real ones.

    Checked when the username is unknown, so that an unknown user costs as much time as a
    wrong password and the answer's timing does not say which usernames exist.
    """
    return _random_password_hash(password_hash_method())


@functools.cache
def _random_password_hash(method: str) -> str:
    """One hash of a random password per method, made once: the method is the application's setting."""
    return generate_password_hash(secrets.token_urlsafe(16), method=method)


def login_limits() -> tuple[int, int, int]:
    """(failures per account and address, failures per address, window in seconds)."""
    config = current_app.config
    return (
        config.get("LOGIN_FAILURES_PER_ACCOUNT_ADDRESS", 5),
        config.get("LOGIN_FAILURES_PER_ADDRESS", 30),
        config.get("LOGIN_WINDOW_SECONDS", 15 * 60),
    )


def login_throttle_limits(username: str, address: str) -> dict[str, int]:
    """The counters of one (account, address) pair and of the address, with their limits."""
    per_pair, per_address, _ = login_limits()
    return {f"login-fail:pair:{username}:{address}": per_pair, f"login-fail:addr:{address}": per_address}


def _refuse(user: StaffUser | None, reason: str, kind: SessionKind, error: UserError) -> UserError:
    """Audit a refused login (kept through the error answer), and return ``error``."""
    # An unknown username is not written down: people type their password into that field.
    data = {"reason": reason, "kind": kind.value}
    if user is not None:
        data["username"] = user.username
    record_audit(
        "login_failed", user=user, object_type="staff_user", object_id=user.id if user else "", data=data, keep=True
    )
    return error


def login(username: str, password: str, kind: SessionKind) -> tuple[StaffUser, str]:
    """Check a username and password and open a session; return the user and the session's secret.

    Raises ``UserError``: 400 ``missing_credentials``, 401 ``bad_credentials`` (the same for
    an unknown user and a wrong password), 403 ``account_inactive`` (only after the right
    password), 429 ``too_many_logins``. A success flushes and the caller commits.

    Every attempt is counted first, before any password is checked, in one statement that
    counts and reports (``throttle.count_or_refuse``), and committed at once: of any number of
    attempts at the same moment only as many as the limit reach the password check. The right
    password takes its count back, so that only failures use the limit up. The user is read in
    a read transaction (``database.reading``) and the password hash checked with none open: on
    SQLite nobody waits for it.

    For ``SessionKind.WEB`` the cookie session is cleared and given the new ``sid`` (a new
    session id at every login), and a session the browser still held is revoked.
    """
    if not isinstance(username, str) or not isinstance(password, str) or not username.strip() or not password:
        raise UserError("missing_credentials", "请输入用户名和密码。", 400)
    username = normalize_username(username)
    address = client_address()
    limits = login_throttle_limits(username, address)
    throttle.count_or_refuse(limits, login_limits()[2], "too_many_logins", "登录失败次数太多")
    db.session.commit()

    user = None
    with database.reading():
        if len(username) <= USERNAME_MAX_LENGTH:
            user = db.session.scalar(select(StaffUser).where(StaffUser.username == username))
    if user is None:
        check_password_hash(_dummy_password_hash(), password)
        raise _refuse(None, "unknown_user", kind, UserError("bad_credentials", BAD_CREDENTIALS_MESSAGE, 401))
    if not check_password_hash(user.password_hash, password):
        raise _refuse(user, "bad_password", kind, UserError("bad_credentials", BAD_CREDENTIALS_MESSAGE, 401))
    throttle.take_back(list(limits))
    if not user.is_active:
        # Said plainly, but only to someone who knows the password.
        error = UserError("account_inactive", "该账号已停用，请联系县人大常委会工作人员。", 403)
        raise _refuse(user, "inactive", kind, error)

    return user, open_session(user, kind, address)


def open_session(user: StaffUser, kind: SessionKind, address: str, how: str = "password") -> str:
    """Open a session for ``user``, already proven to be them, and return its secret (flushes, audited as a login).

    ``how``: what proved it — the password (``login``) or a one-time WeChat binding code spent by the deputy's own
    WeChat (the mini-program's binding signs in, backend.wechat.identity.bind_staff_wechat)."""
    now = utcnow()
    if kind == SessionKind.WEB:
        lifetime = timedelta(hours=current_app.config.get("STAFF_SESSION_HOURS", 12))
    else:
        lifetime = timedelta(days=current_app.config.get("API_TOKEN_DAYS", 30))
    secret = secrets.token_urlsafe(32)
    staff_session = StaffSession(
        token_hash=hash_secret(secret),
        user=user,
        kind=kind,
        created_at=now,
        last_seen_at=now,
        expires_at=now + lifetime,
        address=address[:64],
    )
    if kind == SessionKind.WEB:
        previous = find_session(session.get("sid"), SessionKind.WEB)
        if previous is not None:  # the browser held another login (a shared phone): end it
            previous.revoked_at = now
        _clear_cookie_session()  # a fresh cookie session: nothing planted before login survives it
        session["sid"] = secret
        session.permanent = True  # survives WeChat closing its browser; the row's expiry still rules
    record_added(
        staff_session,
        "login",
        user=user,
        object_type="staff_session",
        data={"kind": kind.value} | ({"how": how} if how != "password" else {}),
    )
    g.staff_request = request._get_current_object()
    g.staff = user
    g.staff_session = staff_session
    return secret


def _clear_cookie_session() -> None:
    """Empty the cookie session, and forget the CSRF token Flask-WTF keeps for it in ``g``.

    That token's secret lived in the session just cleared: a form rendered later in the
    same request would otherwise carry a token that can never validate.
    """
    session.clear()
    g.pop(current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token"), None)


def find_session(secret: object, kind: SessionKind) -> StaffSession | None:
    """The live session of ``kind`` for a secret: not revoked, not expired, its user active."""
    if not isinstance(secret, str) or not secret or len(secret) > SECRET_MAX_LENGTH:
        return None
    return db.session.scalar(
        select(StaffSession)
        .join(StaffSession.user)
        .options(contains_eager(StaffSession.user))
        .where(
            StaffSession.token_hash == hash_secret(secret),
            StaffSession.kind == kind,
            StaffSession.revoked_at.is_(None),
            StaffSession.expires_at > utcnow(),
            StaffUser.is_active.is_(True),
        )
    )


def _request_kind() -> SessionKind:
    """API requests authenticate with a bearer token only, pages with the cookie only.

    The API is exempt from CSRF checks, so it must never accept the cookie a browser
    sends by itself.
    """
    return SessionKind.API if wants_json() else SessionKind.WEB


def _bearer_token() -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def current_staff() -> StaffUser | None:
    """The staff user of this request, or None; looked up once per request and kept in ``g.staff``.

    The session is read in a read transaction of its own (``database.reading``): a POST's write
    transaction begins with its first write, after whatever slow work comes before it. The
    session is marked seen at most once a minute, by the decorators (``_commit_seen_mark``).
    """
    if not has_request_context():
        return None
    if g.get("staff_request") is request._get_current_object():
        return g.staff
    # ``g`` belongs to the app context, which a test (or a CLI command) may keep open across
    # several requests: the cache is tied to this request object, not merely to ``g``.
    g.staff_request = request._get_current_object()
    kind = _request_kind()
    secret = _bearer_token() if kind == SessionKind.API else session.get("sid")
    with database.reading():
        staff_session = find_session(secret, kind)
    g.staff_session = staff_session
    g.staff = staff_session.user if staff_session is not None else None
    if staff_session is not None and utcnow() - staff_session.last_seen_at >= LAST_SEEN_INTERVAL:
        g.staff_seen_marked = True
    return g.staff


def logout() -> None:
    """End the current session server-side and clear the cookie session (flushes; the caller commits)."""
    current_staff()
    staff_session = g.get("staff_session")
    if staff_session is not None:
        staff_session.revoked_at = utcnow()
        record_audit(
            "logout",
            user=staff_session.user,
            object_type="staff_session",
            object_id=staff_session.id,
            data={"kind": staff_session.kind.value},
        )
        db.session.flush()
    if _request_kind() == SessionKind.WEB and session:  # revoking an API token leaves a browser's cookie alone
        _clear_cookie_session()
    g.staff_request = request._get_current_object()
    g.staff = None
    g.staff_session = None


def end_sessions(account: StaffUser, now: datetime, *, keep_id: int | None = None) -> int:
    """End every live session and API token of ``account`` but ``keep_id``'s: once its password changes or it is
    disabled, nothing signed in with the old state goes on. Returns how many ended."""
    statement = update(StaffSession).where(StaffSession.staff_user_id == account.id, StaffSession.revoked_at.is_(None))
    if keep_id is not None:
        statement = statement.where(StaffSession.id != keep_id)
    return db.session.execute(statement.values(revoked_at=now)).rowcount


def _commit_seen_mark() -> None:
    """Write and commit ``last_seen_at`` before the view runs, so that nothing of the view's is committed with it
    (a write of every kind of request, GET included)."""
    if g.pop("staff_seen_marked", False):
        with database.writing():
            g.staff_session.last_seen_at = utcnow()
            db.session.commit()


def _refuse_role(user: StaffUser, roles: tuple[StaffRole, ...]) -> None:
    """Audit an attempt on a page or endpoint of another role (kept through the error answer), and answer 404."""
    record_audit(
        "forbidden",
        user=user,
        object_type="path",
        object_id=request.path[:64],
        data={"method": request.method, "path": request.path[:500], "roles": [str(role) for role in roles]},
        keep=True,
    )
    abort(404)  # the same answer as an unknown page: it says nothing about what exists


def is_safe_next(target: object) -> bool:
    """True for a local path only (``/staff/inbox?x=1``); never ``//host``, ``/\\host`` or a URL."""
    if not isinstance(target, str) or not target.startswith("/") or len(target) > 2000:
        return False
    if target.startswith("//") or "\\" in target:
        return False
    # Browsers drop tabs and newlines from URLs: "/\t/evil.example" would become "//evil.example".
    return not any(ord(char) < 32 or ord(char) == 127 for char in target)


def _login_redirect():
    """303 to the login page, coming back to this page afterwards."""
    target = request.full_path if request.query_string else request.path
    return redirect(url_for("staff.login", next=target), 303)


def _api_unauthorized():
    """401 JSON ``unauthorized`` with the bearer challenge: no valid token came with the request."""
    response = error_response("unauthorized", "请先登录，或登录已失效，请重新登录。", 401)
    response.headers["WWW-Authenticate"] = 'Bearer realm="mashanglian"'
    return response


def _roles_decorator(roles: tuple, anonymous: Callable[[], object]):
    """The view runs for a logged-in user of one of ``roles`` (any role when none is listed): nobody logged in gets
    ``anonymous()``, any other role 404 and an audit row. ``@decorator``, ``@decorator()`` and
    ``@decorator(StaffRole.X, …)`` all work."""

    def wrap(view: Callable, allowed: tuple[StaffRole, ...]) -> Callable:
        @functools.wraps(view)
        def wrapped(*args, **kwargs):
            user = current_staff()
            if user is None:
                return anonymous()
            if allowed and user.role not in allowed:
                _refuse_role(user, allowed)
            _commit_seen_mark()
            return view(*args, **kwargs)

        return wrapped

    if len(roles) == 1 and callable(roles[0]) and not isinstance(roles[0], StaffRole):
        return wrap(roles[0], ())
    unknown = [role for role in roles if not isinstance(role, StaffRole)]
    if unknown:
        raise TypeError(f"not staff roles: {unknown!r}")
    return lambda view: wrap(view, roles)


def login_required(*roles: StaffRole):
    """Page decorator: not logged in → 303 to the login page; a role not listed → 404 and an audit row."""
    return _roles_decorator(roles, _login_redirect)


def api_auth_required(*roles: StaffRole):
    """API decorator: no valid bearer token → 401 JSON ``unauthorized``; a role not listed → 404 and an audit row."""
    return _roles_decorator(roles, _api_unauthorized)


def staff_in_request() -> StaffUser | None:
    """The staff user whose session cookie or bearer token this request carries, whatever its path; None for neither.

    ``current_staff`` reads one credential per path (the cookie for pages, the token for the API).
    What staff must never do — rate an item, claim an in-person item — looks at both, and counts
    a session that has expired or been revoked too: a browser or an app that holds one is a staff
    member's, and the resident's own phone holds none.
    """
    if not has_request_context():
        return None
    for secret in (session.get("sid"), _bearer_token()):
        if isinstance(secret, str) and secret and len(secret) <= SECRET_MAX_LENGTH:
            user = db.session.scalar(
                select(StaffUser)
                .join(StaffSession, StaffSession.staff_user_id == StaffUser.id)
                .where(StaffSession.token_hash == hash_secret(secret))
            )
            if user is not None:
                return user
    return None
