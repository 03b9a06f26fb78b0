"""What staff do with their own account: change the password, see their logins and end them.

A deputy who lent their phone, or lost it, ends that login here without calling anyone. The
rules for a password live here once (``check_new_password``), for the page and for
``flask user reset-password`` alike. Changing the password asks for the current one, counted
against the same throttle as the login (a stolen session cannot try passwords faster than the
login form), and ends every other session and API token of the account: whoever held them must
log in with the new password. Each function flushes; the caller commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask import g
from sqlalchemy import select
from werkzeug.security import check_password_hash

from backend import throttle
from backend.audit import record_audit
from backend.auth.passwords import hash_password
from backend.auth.sessions import end_sessions, login_limits, login_throttle_limits
from backend.errors import UserError
from backend.extensions import db
from backend.models import SessionKind, StaffSession, StaffUser, utcnow
from backend.security import client_address

PASSWORD_MIN_LENGTH = 8
PASSWORD_MAX_LENGTH = 128
KIND_LABELS = {SessionKind.WEB: "网页登录", SessionKind.API: "小程序或接口"}


def check_new_password(password: object, confirm: object, username: str) -> str:
    """A new password that is long enough, typed the same twice, and not the username; a 400 ``UserError`` otherwise."""
    if not isinstance(password, str) or len(password) < PASSWORD_MIN_LENGTH:
        raise UserError("password_too_short", f"新密码至少{PASSWORD_MIN_LENGTH}个字符。", 400, field="password")
    if len(password) > PASSWORD_MAX_LENGTH:
        raise UserError("password_too_long", f"新密码最多{PASSWORD_MAX_LENGTH}个字符。", 400, field="password")
    if password.strip().lower() == username.lower():
        raise UserError("password_is_username", "新密码不能和用户名相同。", 400, field="password")
    if confirm is not None and confirm != password:
        raise UserError("password_mismatch", "两次输入的新密码不一致。", 400, field="confirm")
    return password


def change_password(user: StaffUser, current: object, new: object, confirm: object) -> int:
    """Set a new password after checking the current one; end every other session; return how many ended.

    A wrong current password is a failed login for the throttle (429 after the limit) and is
    audited: the count is committed here before the check, as the login does, and the audit row is kept
    through the error answer; nothing else is written then.
    """
    new_password = check_new_password(new, confirm, user.username)
    limits = login_throttle_limits(user.username, client_address())
    throttle.count_or_refuse(limits, login_limits()[2], "too_many_logins", "密码错误次数太多")
    db.session.commit()  # counted before the check and kept whatever the answer, as the login does
    if not isinstance(current, str) or not check_password_hash(user.password_hash, current):
        record_audit("password_change_refused", user=user, object_type="staff_user", object_id=user.id, keep=True)
        raise UserError("wrong_password", "当前密码不对，请重新输入。", 400, field="current")
    throttle.take_back(list(limits))
    if check_password_hash(user.password_hash, new_password):
        raise UserError("password_unchanged", "新密码和当前密码相同，请换一个。", 400, field="password")
    user.password_hash = hash_password(new_password)
    ended = end_other_sessions(user, audit=False)
    record_audit("password_changed", user=user, object_type="staff_user", object_id=user.id, data={"revoked": ended})
    return ended


@dataclass(frozen=True)
class OwnSession:
    """One live login of the account, as its owner sees it."""

    id: int
    kind_label: str
    created_at: datetime
    last_seen_at: datetime
    address: str
    is_current: bool


def current_session_id() -> int | None:
    """The id of the session this request runs in (None for none)."""
    current = g.get("staff_session")
    return current.id if current is not None else None


def _live(user: StaffUser):
    now = utcnow()
    return select(StaffSession).where(
        StaffSession.staff_user_id == user.id, StaffSession.revoked_at.is_(None), StaffSession.expires_at > now
    )


def own_sessions(user: StaffUser) -> list[OwnSession]:
    """The account's live sessions, the current one first, then the most recently seen."""
    current = current_session_id()
    rows = [
        OwnSession(s.id, KIND_LABELS[s.kind], s.created_at, s.last_seen_at, s.address, s.id == current)
        for s in db.session.scalars(_live(user).order_by(StaffSession.last_seen_at.desc()))
    ]
    return sorted(rows, key=lambda row: not row.is_current)


def end_session(user: StaffUser, session_id: int) -> None:
    """End one of the account's own sessions (another account's, or one already ended: 404, nothing written)."""
    staff_session = db.session.scalar(_live(user).where(StaffSession.id == session_id))
    if staff_session is None:
        raise UserError("unknown_session", "找不到这个登录，可能已经结束。", 404)
    staff_session.revoked_at = utcnow()
    db.session.flush()
    record_audit(
        "session_ended", user=user, object_type="staff_session", object_id=staff_session.id, data={"by": "owner"}
    )


def end_other_sessions(user: StaffUser, *, audit: bool = True) -> int:
    """End every live session of the account but the current one; return how many."""
    ended = end_sessions(user, utcnow(), keep_id=current_session_id())
    if audit:
        record_audit("sessions_ended", user=user, object_type="staff_user", object_id=user.id, data={"revoked": ended})
    return ended
