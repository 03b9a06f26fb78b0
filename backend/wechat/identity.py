"""Who a resident is in WeChat: the mini-program's login token, the H5 form's silent OAuth, a deputy's binding.

- Mini-program: ``wx.login`` → ``code`` → :func:`login_resident` (``code2Session``) → a random
  token whose SHA-256 is stored in ``ResidentSession`` with WeChat's session key, which never
  leaves the server. :func:`current_resident` reads ``Authorization: Bearer <token>``.
- H5 form in WeChat's browser, when an official account is configured: :func:`h5_oauth_redirect`
  sends the browser through the silent snsapi_base OAuth once, with a signed ``state`` carrying
  the form's path; :func:`finish_h5_oauth` keeps the resident's id in the Flask session, where
  :func:`session_resident` finds it when the form is submitted.
- Deputies: :func:`create_binding_code` (one-time, 10 minutes, only its SHA-256 stored) and
  :func:`bind_staff_wechat`, which ties the scanning WeChat user to the deputy's account.

The WeChat calls happen before any write: on SQLite every write transaction holds the database's
write lock until it commits, and no request may hold it while waiting for WeChat.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import time
from datetime import datetime, timedelta

import requests
from flask import current_app, g, has_request_context, redirect, request, session, url_for
from sqlalchemy import select, update
from wechatpy.exceptions import WeChatClientException

from backend import database
from backend.access import WECHAT_BINDERS
from backend.audit import record_added, record_audit
from backend.errors import UserError
from backend.extensions import db
from backend.models import Resident, ResidentSession, SessionKind, StaffUser, WechatBindingCode, utcnow
from backend.wechat import api as wechat_api
from backend.wechat.client import official_account_configured

log = logging.getLogger(__name__)

TOKEN_BYTES = 32  # 256 bits; token_urlsafe makes 43 characters
TOKEN_MAX_LENGTH = 256
LOGIN_CODE_MAX_LENGTH = 128  # wx.login codes are 32 characters; anything much longer is not one
LOGIN_CODE_RE = re.compile(r"^[\x21-\x7e]{1,128}$")
BINDING_CODE_BYTES = 12  # 96 bits → 16 URL-safe characters; "b=<code>" fits a mini-program code's 32-character scene
BINDING_CODE_RE = re.compile(r"^[A-Za-z0-9_-]{16}$")
BINDING_CODE_MINUTES = 10
SESSION_RESIDENT_KEY = "wechat_resident_id"
SESSION_OAUTH_TRIED_KEY = "wechat_oauth_tried"
SESSION_OAUTH_NONCE_KEY = "wechat_oauth_nonce"
OAUTH_STATE_MAX_BYTES = 128  # WeChat's limit on ``state``, which may hold only a-z, A-Z and 0-9
OAUTH_STATE_MAX_AGE_SECONDS = 600
OAUTH_STATE_SIG_BYTES = 10  # 80 bits
WECHAT_USER_AGENT_MARK = "MicroMessenger"

# WeChat's answers to jscode2session that are the client's fault, as (status, code, message).
LOGIN_ERRORS = {
    40029: (400, "invalid_login_code", "登录凭证无效或已过期，请重新打开小程序。"),
    40163: (400, "login_code_used", "登录凭证已使用过，请重新打开小程序。"),
    45011: (429, "too_many_logins", "登录太频繁，请稍后再试。"),
    40226: (403, "wechat_user_restricted", "微信判定当前账号存在风险，暂时无法登录，请改用扫码网页留言。"),
}
WECHAT_UNAVAILABLE = ("wechat_unavailable", "微信服务暂时不可用，请稍后再试；也可以直接扫码在网页上留言。")
WECHAT_RETRY_AFTER_SECONDS = 30


def hash_token(token: str) -> str:
    """The SHA-256 hex digest stored for a resident token or a binding code."""
    return hashlib.sha256(token.encode()).hexdigest()


def wechat_failure(exc: Exception, what: str) -> UserError:
    """The 503 answer for WeChat being unreachable or refusing us (busy, 5xx, timeout, token or quota errors)."""
    log.warning("WeChat %s failed: %r", what, exc)
    return UserError(*WECHAT_UNAVAILABLE, 503, retry_after=WECHAT_RETRY_AFTER_SECONDS)


def exchange_login_code(code: object) -> dict:
    """``code2Session`` for a ``wx.login`` code: ``{"openid", "session_key"[, "unionid"]}``, or a UserError.

    400 ``invalid_login_code`` / ``login_code_used``, 429 ``too_many_logins``, 403
    ``wechat_user_restricted``, 503 ``wechat_unavailable`` (busy, 5xx, timeouts, token errors).
    """
    if not isinstance(code, str) or not LOGIN_CODE_RE.fullmatch(code):
        raise UserError("invalid_login_code", "缺少登录凭证（wx.login 的 code），请重新打开小程序。", 400, field="code")
    try:
        session_data = wechat_api.code_to_session(code)
    except WeChatClientException as exc:
        known = LOGIN_ERRORS.get(exc.errcode)
        if known is not None:
            status, error_code, message = known
            raise UserError(error_code, message, status, field="code" if status == 400 else None) from None
        raise wechat_failure(exc, "code2Session") from None
    except (requests.RequestException, ValueError) as exc:
        raise wechat_failure(exc, "code2Session") from None
    if not session_data.get("openid"):
        raise wechat_failure(ValueError("no openid in the answer"), "code2Session")
    return session_data


# --- residents ------------------------------------------------------------------------------------


def _insert_ignoring_conflicts(values: dict):
    return database.dialect_insert(Resident.__table__).values(**values).on_conflict_do_nothing()


def upsert_resident(column: str, openid: str, unionid: str | None = None) -> Resident:
    """The resident with ``openid`` in ``column`` ("openid" for the mini-program, "mp_openid" for the official
    account), created when new; concurrent calls for one openid make one row (flushes; the caller commits).

    A ``unionid`` links the two openids of one person: a resident known by the unionid but not yet by this
    kind of openid gets it, instead of a second row.
    """
    field = getattr(Resident, column)
    resident = db.session.scalar(select(Resident).where(field == openid))
    if resident is None and unionid:
        # Known through the other channel: attach this openid, unless a concurrent request already did.
        db.session.execute(
            update(Resident).where(Resident.unionid == unionid, field.is_(None)).values({column: openid})
        )
        resident = db.session.scalar(select(Resident).where(field == openid))
    if resident is None:
        db.session.execute(_insert_ignoring_conflicts({column: openid, "unionid": unionid, "created_at": utcnow()}))
        resident = db.session.scalar(select(Resident).where(field == openid))
        if resident is None:  # the unionid belongs to someone with another openid of this kind: keep them apart
            db.session.execute(_insert_ignoring_conflicts({column: openid, "created_at": utcnow()}))
            resident = db.session.scalar(select(Resident).where(field == openid))
    elif unionid and resident.unionid is None:
        taken = db.session.scalar(select(Resident.id).where(Resident.unionid == unionid))
        if taken is None:
            resident.unionid = unionid
    db.session.flush()
    return resident


def login_resident(code: object) -> tuple[Resident, str, datetime]:
    """Exchange a ``wx.login`` code and open a resident session: (resident, token, expiry).

    Only the token's SHA-256 is stored; WeChat's session key stays in the row and is never
    answered. Raises the UserErrors of :func:`exchange_login_code`. Flushes; the caller commits.
    """
    session_data = exchange_login_code(code)  # before any write (see the module docstring)
    resident = upsert_resident("openid", session_data["openid"], session_data.get("unionid"))
    now = utcnow()
    token = secrets.token_urlsafe(TOKEN_BYTES)
    expires_at = now + timedelta(days=current_app.config["RESIDENT_TOKEN_DAYS"])
    db.session.add(
        ResidentSession(
            token_hash=hash_token(token),
            resident_id=resident.id,
            session_key=session_data.get("session_key", "")[:128],
            created_at=now,
            expires_at=expires_at,
        )
    )
    db.session.flush()
    return resident, token, expires_at


def bearer_token() -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None when there is none."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


def _invalid_token() -> UserError:
    return UserError("invalid_token", "登录已失效，请重新打开小程序后再试。", 401)


def current_resident() -> Resident | None:
    """The resident whose token this request carries, or None when it carries none.

    A token that is neither a live resident token nor a live staff API token (unknown,
    expired, revoked) raises UserError 401 ``invalid_token``: a resident who thinks they are
    logged in is never silently treated as anonymous. The resident comes back detached
    from the session (its columns loaded), read without holding SQLite's write lock, so the
    caller's writes can still begin in a transaction of their own.
    """
    if not has_request_context():
        return None
    if g.get("resident_request") is request._get_current_object():
        return g.resident
    token = bearer_token()
    resident = None
    if token is not None:
        if len(token) > TOKEN_MAX_LENGTH:
            raise _invalid_token()
        with database.reading():
            row = db.session.execute(
                select(Resident, ResidentSession.expires_at, ResidentSession.revoked_at)
                .join(ResidentSession, ResidentSession.resident_id == Resident.id)
                .where(ResidentSession.token_hash == hash_token(token))
            ).first()
            if row is not None:
                resident, expires_at, revoked_at = row
                if revoked_at is not None or expires_at <= utcnow():
                    raise _invalid_token()
                db.session.expunge(resident)
            else:
                from backend.auth.sessions import find_session

                if find_session(token, SessionKind.API) is None:  # a deputy's token is not a resident's
                    raise _invalid_token()
    g.resident_request = request._get_current_object()
    g.resident = resident
    return resident


def require_resident() -> Resident:
    """:func:`current_resident`, or UserError 401 ``unauthorized`` when the request carries no resident token."""
    resident = current_resident()
    if resident is None:
        raise UserError("unauthorized", "请先在小程序中登录。", 401)
    return resident


# --- H5 silent OAuth ------------------------------------------------------------------------------


def _state_signature(payload: str, nonce: str) -> str:
    key = current_app.config["SECRET_KEY"].encode()
    message = f"wechat-oauth-state|{payload}|{nonce}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()[: OAUTH_STATE_SIG_BYTES * 2]


def sign_oauth_state(path: str) -> str | None:
    """A ``state`` for the OAuth redirect carrying ``path``: hex(path) z hex(time) z signature (letters and digits
    only, as WeChat requires), bound to this browser by a nonce in its session; None when it would exceed 128 bytes."""
    nonce = session.get(SESSION_OAUTH_NONCE_KEY)
    if not nonce:
        nonce = session[SESSION_OAUTH_NONCE_KEY] = secrets.token_hex(8)
    payload = f"{path.encode().hex()}z{int(time.time()):x}"
    state = f"{payload}z{_state_signature(payload, nonce)}"
    return state if len(state) <= OAUTH_STATE_MAX_BYTES else None


def verify_oauth_state(state: object) -> str | None:
    """The path a ``state`` from :func:`sign_oauth_state` carries, when its signature, browser and age check out."""
    if not isinstance(state, str) or len(state) > OAUTH_STATE_MAX_BYTES or state.count("z") != 2:
        return None
    path_hex, issued_hex, signature = state.split("z")
    nonce = session.get(SESSION_OAUTH_NONCE_KEY) or ""
    if not nonce or not hmac.compare_digest(signature, _state_signature(f"{path_hex}z{issued_hex}", nonce)):
        return None
    try:
        path = bytes.fromhex(path_hex).decode()
        issued = int(issued_hex, 16)
    except ValueError:
        return None
    if not 0 <= time.time() - issued <= OAUTH_STATE_MAX_AGE_SECONDS:
        return None
    from backend.auth.sessions import is_safe_next

    return path if is_safe_next(path) else None


def h5_oauth_redirect(path: str):
    """A redirect through WeChat's silent OAuth for the H5 form, or None to show the form as it is.

    Only inside WeChat's browser (``MicroMessenger`` in the user agent), with an official account
    configured, when this browser has no resident yet and has not tried already (no loops: an
    OAuth that fails leaves the form anonymous, never blocked).
    """
    if WECHAT_USER_AGENT_MARK not in request.headers.get("User-Agent", ""):
        return None
    if not official_account_configured():
        return None
    if session.get(SESSION_RESIDENT_KEY) or session.get(SESSION_OAUTH_TRIED_KEY):
        return None
    state = sign_oauth_state(path)
    if state is None:
        return None
    session[SESSION_OAUTH_TRIED_KEY] = True
    callback = current_app.config["PUBLIC_BASE_URL"] + url_for("wechat_pages.oauth_callback")
    try:
        target = wechat_api.oauth_authorize_url(callback, state)
    except RuntimeError:  # the official account was unconfigured meanwhile
        return None
    return redirect(target, 302)


def finish_h5_oauth(code: object, state: object) -> str:
    """The OAuth callback's work: the path to go back to, with the resident kept in the Flask session.

    A bad or stale ``state`` is a UserError 400; WeChat failing leaves the form anonymous
    (the path is still returned). Flushes; the caller commits.
    """
    path = verify_oauth_state(state)
    if path is None:
        raise UserError("invalid_oauth_state", "微信授权链接已失效，请重新扫码打开留言页面。", 400)
    if not isinstance(code, str) or not LOGIN_CODE_RE.fullmatch(code):
        return path  # no code: the user went back, or WeChat said no; the form works without it
    try:
        openid = wechat_api.oauth_openid(code)
    except (WeChatClientException, requests.RequestException, RuntimeError, KeyError, ValueError) as exc:
        log.warning("WeChat OAuth code exchange failed: %r", exc)
        return path
    resident = upsert_resident("mp_openid", openid)
    session[SESSION_RESIDENT_KEY] = resident.id
    session.permanent = True
    return path


def session_resident() -> Resident | None:
    """The resident the H5 OAuth kept in this browser's Flask session, detached, read without a write lock."""
    resident_id = session.get(SESSION_RESIDENT_KEY)
    if not isinstance(resident_id, int):
        return None
    with database.reading():
        resident = db.session.get(Resident, resident_id)
        if resident is not None:
            db.session.expunge(resident)
    return resident


# --- deputies -------------------------------------------------------------------------------------


def new_binding_code() -> str:
    """A random binding code (96 bits, 16 URL-safe characters), not stored yet."""
    return secrets.token_urlsafe(BINDING_CODE_BYTES)


def create_binding_code(user: StaffUser, code: str | None = None) -> tuple[str, WechatBindingCode]:
    """Store a one-time binding code for ``user`` (a new one unless given); returns the code and its row.

    Earlier unused codes of the user stop working: only the newest one on the screen counts.
    Audited; flushes, the caller commits.
    """
    now = utcnow()
    db.session.execute(
        update(WechatBindingCode)
        .where(
            WechatBindingCode.staff_user_id == user.id,
            WechatBindingCode.used_at.is_(None),
            WechatBindingCode.expires_at > now,
        )
        .values(expires_at=now)
    )
    code = code or new_binding_code()
    row = WechatBindingCode(
        code_hash=hash_token(code),
        staff_user_id=user.id,
        created_at=now,
        expires_at=now + timedelta(minutes=BINDING_CODE_MINUTES),
    )
    record_added(row, "wechat_binding_code_created", user=user, object_type="wechat_binding_code")
    return code, row


def _binding_refused(row: WechatBindingCode | None, reason: str, message: str) -> UserError:
    """Audit a refused binding of a known code (kept through the error answer), and the error to raise."""
    if row is not None:
        user = db.session.get(StaffUser, row.staff_user_id)
        record_audit(
            "wechat_bind_refused",
            user=user,
            object_type="wechat_binding_code",
            object_id=row.id,
            data={"reason": reason},
            keep=True,
        )
    return UserError(f"binding_code_{reason}", message, 400, field="binding_code")


def bind_staff_wechat(login_code: object, binding_code: object) -> StaffUser:
    """Tie the WeChat user of ``login_code`` to the deputy whose ``binding_code`` it is; return the deputy's account.

    The binding code is checked first (unknown, used or expired: 400 with a Chinese message), then
    WeChat is asked who scanned it, then the code is spent atomically — a code used twice at
    once binds once. An openid bound to another account moves to this one. Audited; flushes,
    the caller commits.
    """
    if not isinstance(binding_code, str) or not BINDING_CODE_RE.fullmatch(binding_code.strip()):
        raise _binding_refused(None, "unknown", "绑定码无效，请在电脑上打开“绑定微信”页面，扫描新的绑定码。")
    binding_code = binding_code.strip()
    with database.reading():
        row = db.session.scalar(
            select(WechatBindingCode).where(WechatBindingCode.code_hash == hash_token(binding_code))
        )
        checked = _check_binding_row(row)
        # Plain values: the read transaction ends here, and touching an expired row would begin a write one.
        row_id, user_id = (row.id, row.staff_user_id) if row is not None else (None, None)
    if checked is not None:
        raise _binding_refused(row, *checked)
    session_data = exchange_login_code(login_code)  # WeChat before the write
    now = utcnow()
    spent = db.session.execute(
        update(WechatBindingCode)
        .where(
            WechatBindingCode.id == row_id,
            WechatBindingCode.used_at.is_(None),
            WechatBindingCode.expires_at > now,
        )
        .values(used_at=now)
    ).rowcount
    if spent != 1:
        db.session.rollback()
        row = db.session.get(WechatBindingCode, row_id)
        raise _binding_refused(row, *(_check_binding_row(row) or ("used", "该绑定码已经使用过。")))
    user = db.session.get(StaffUser, user_id)
    if user is None or not user.is_active or user.role not in WECHAT_BINDERS:
        db.session.rollback()
        raise UserError("binding_account_inactive", "该账号已停用，或不是代表、联络站管理员的账号，无法绑定微信。", 400)
    openid = session_data["openid"]
    previous = db.session.scalar(select(StaffUser).where(StaffUser.wechat_openid == openid, StaffUser.id != user.id))
    if previous is not None:
        previous.wechat_openid = None
        db.session.flush()  # the unique openid is free before this account takes it
        record_audit(
            "wechat_unbound",
            user=previous,
            object_type="staff_user",
            object_id=previous.id,
            data={"reason": "bound_to_another_account", "to_user_id": user.id},
        )
    replaced = user.wechat_openid is not None and user.wechat_openid != openid
    user.wechat_openid = openid
    db.session.flush()
    record_audit(
        "wechat_bound",
        user=user,
        object_type="staff_user",
        object_id=user.id,
        data={"binding_code_id": row_id, "replaced_previous": replaced},
    )
    return user


def _check_binding_row(row: WechatBindingCode | None) -> tuple[str, str] | None:
    """Why a binding code cannot be used (reason, message), or None when it can."""
    if row is None:
        return "unknown", "绑定码无效，请在电脑上打开“绑定微信”页面，扫描新的绑定码。"
    if row.used_at is not None:
        return "used", "该绑定码已经使用过，请在“绑定微信”页面生成新的绑定码。"
    if row.expires_at <= utcnow():
        return "expired", f"绑定码已过期（有效期{BINDING_CODE_MINUTES}分钟），请在“绑定微信”页面生成新的绑定码。"
    return None


def unbind_staff_wechat(user: StaffUser) -> None:
    """Forget the WeChat bound to ``user`` (audited; flushes, the caller commits)."""
    if user.wechat_openid is None:
        return
    user.wechat_openid = None
    db.session.flush()
    record_audit("wechat_unbound", user=user, object_type="staff_user", object_id=user.id, data={"reason": "by_user"})
