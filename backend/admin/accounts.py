"""Accounts at county scale: a supervisor lists, creates, disables and (re)activates the accounts of their region.

No password is ever chosen, printed, mailed or shown by anyone but its owner: a new account,
or one whose owner forgot the password, gets a one-time activation link (``ActivationLink``),
which the supervisor hands over (the link, its QR code on screen, or a station's activation
sheet). The person opens it on their phone, sets a password, and is logged in; from there the
landing page offers to bind WeChat. A link is good once, for ``ACTIVATION_DAYS``, only while
the account is active; a newer link ends the older ones; disabling an account ends its
sessions and its links.

Which accounts are a supervisor's: those whose scope lies in their region (a deputy of one of
its stations, a station's administrator, one of its departments, a supervisor of a region
under theirs), the same rule the audit log uses (``region_staff``). Each function validates
first and writes nothing when it refuses (``UserError`` naming the field), then writes,
records an audit row and flushes; the caller commits.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app, url_for
from sqlalchemy import Select, false, func, or_, select, update

from backend import pagination
from backend.access import can_manage_region, can_manage_station, region_subtree
from backend.audit import record_added, record_audit
from backend.auth.own_account import check_new_password
from backend.auth.passwords import hash_password
from backend.auth.sessions import USERNAME_MAX_LENGTH, end_sessions, normalize_username
from backend.errors import UserError
from backend.extensions import db
from backend.items.validation import clean_text, parse_id
from backend.models import (
    ActivationLink,
    Department,
    Deputy,
    DeputyStatus,
    Region,
    StaffRole,
    StaffSession,
    StaffUser,
    Station,
    utcnow,
)

PAGE_SIZE = 50
SEARCH_MAX = 50
# The roles a supervisor grants here; a supervisor account for a region below is made the same way.
GRANTABLE = (StaffRole.DEPUTY, StaffRole.STATION_ADMIN, StaffRole.DEPARTMENT, StaffRole.SUPERVISOR)
SCOPE_FIELD = {
    StaffRole.DEPUTY: "deputy_id",
    StaffRole.STATION_ADMIN: "station_id",
    StaffRole.DEPARTMENT: "department_id",
    StaffRole.SUPERVISOR: "region_id",
}
USERNAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_.-")


def hash_token(token: str) -> str:
    """What is stored of an activation token."""
    return hashlib.sha256(token.encode()).hexdigest()


def region_staff(region_id: int, regions=None) -> Select:
    """``select(StaffUser.id)`` of the accounts whose scope lies in the region or under it.

    ``regions``: the region's subtree as a subquery the caller already uses in the same statement
    (one recursive CTE per statement).
    """
    if regions is None:
        regions = region_subtree(region_id).scalar_subquery()
    stations = select(Station.id).where(Station.region_id.in_(regions))
    return select(StaffUser.id).where(
        or_(
            StaffUser.region_id.in_(regions),
            StaffUser.station_id.in_(stations),
            StaffUser.deputy_id.in_(select(Deputy.id).where(Deputy.station_id.in_(stations))),
            StaffUser.department_id.in_(select(Department.id).where(Department.region_id.in_(regions))),
        )
    )


def _mine(user: StaffUser) -> Select:
    if user is None or not user.is_active or user.role != StaffRole.SUPERVISOR or user.region_id is None:
        return select(StaffUser).where(false())
    return select(StaffUser).where(StaffUser.id.in_(region_staff(user.region_id)))


@dataclass(frozen=True)
class AccountRow:
    """One account as the list shows it."""

    account: StaffUser
    last_seen_at: datetime | None
    activation_pending: bool


def list_accounts(user: StaffUser, q: str = "", role: str = "", page: int = 1) -> tuple[list[AccountRow], int]:
    """The supervisor's accounts matching a search (username or name) and a role; one page and the total."""
    query = _mine(user)
    q = q.strip()[:SEARCH_MAX]
    if q:
        pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(
            or_(StaffUser.username.ilike(pattern, escape="\\"), StaffUser.display_name.ilike(pattern, escape="\\"))
        )
    if role in {r.value for r in StaffRole}:
        query = query.where(StaffUser.role == StaffRole(role))
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    accounts = list(
        db.session.scalars(
            query.order_by(StaffUser.role, StaffUser.username)
            .offset(pagination.offset(page, PAGE_SIZE))
            .limit(PAGE_SIZE)
        )
    )
    ids = [a.id for a in accounts]
    seen = dict(
        db.session.execute(
            select(StaffSession.staff_user_id, func.max(StaffSession.last_seen_at))
            .where(StaffSession.staff_user_id.in_(ids))
            .group_by(StaffSession.staff_user_id)
        ).all()
    )
    now = utcnow()
    pending = set(
        db.session.scalars(
            select(ActivationLink.staff_user_id).where(
                ActivationLink.staff_user_id.in_(ids),
                ActivationLink.used_at.is_(None),
                ActivationLink.revoked_at.is_(None),
                ActivationLink.expires_at > now,
            )
        )
    )
    return [AccountRow(a, seen.get(a.id), a.id in pending) for a in accounts], total


def require_account(user: StaffUser, account_id: int) -> StaffUser:
    """One of the supervisor's accounts; 404 for any other (unknown, or elsewhere)."""
    account = db.session.scalar(_mine(user).where(StaffUser.id == account_id))
    if account is None:
        raise UserError("unknown_account", "找不到这个账号。", 404)
    return account


def _scope(user: StaffUser, role: StaffRole, raw: object) -> dict:
    """The scope column for a new account of ``role``, checked to lie in the supervisor's region."""
    field = SCOPE_FIELD[role]
    target_id = parse_id(raw)
    model = {"deputy_id": Deputy, "station_id": Station, "department_id": Department, "region_id": Region}[field]
    target = db.session.get(model, target_id) if target_id is not None else None
    if isinstance(target, Deputy):
        ok = can_manage_station(user, target.station) and target.is_serving
    elif isinstance(target, Station):
        ok = can_manage_station(user, target) and target.is_active
    elif isinstance(target, Department):
        ok = can_manage_region(user, target.region)
    elif isinstance(target, Region):
        ok = can_manage_region(user, target) and target.id != user.region_id
    else:
        ok = False
    if not ok:
        raise UserError(f"invalid_{field}", "请选择您辖区内的代表、联络站、承办单位或下级地区。", 400, field=field)
    return {field: target.id}


def clean_username(value: object) -> str:
    """A username: 3–50 of a–z, digits, "_", "." and "-" (case does not matter), not yet taken."""
    username = normalize_username(value) if isinstance(value, str) else ""
    if not 3 <= len(username) <= USERNAME_MAX_LENGTH or not set(username) <= USERNAME_CHARS:
        raise UserError(
            "invalid_username", "用户名用3到50个英文字母、数字或 _ . - ，例如 zhangxy。", 400, field="username"
        )
    if db.session.scalar(select(StaffUser.id).where(StaffUser.username == username)) is not None:
        raise UserError("username_taken", f"用户名 {username} 已被使用，请换一个。", 409, field="username")
    return username


def create_account(user: StaffUser, form) -> tuple[StaffUser, str]:
    """A new account of a role and scope in the supervisor's region, with no password; return it and its link's token."""
    try:
        role = StaffRole(form.get("role", ""))
    except ValueError:
        raise UserError("invalid_role", "请选择账号的角色。", 400, field="role") from None
    if role not in GRANTABLE:
        raise UserError("invalid_role", "不能创建这种角色的账号。", 400, field="role")
    username = clean_username(form.get("username"))
    display_name = clean_text(form.get("display_name"), "display_name", "姓名", max_chars=50, required=True)
    scope = _scope(user, role, form.get(SCOPE_FIELD[role]))
    account = StaffUser(
        username=username,
        display_name=display_name,
        password_hash=unusable_password_hash(),  # nobody knows it: the link sets one
        role=role,
        **scope,
    )
    record_added(
        account,
        "staff_user_created",
        user=user,
        object_type="staff_user",
        data={"username": username, "role": role.value, **scope, "via": "admin"},
    )
    return account, new_activation(user, account)


def new_activation(user: StaffUser | None, account: StaffUser) -> str:
    """A fresh one-time link for ``account`` (older ones end); return the token, which is stored only hashed."""
    if not account.is_active:
        raise UserError("account_inactive", "该账号已停用，请先启用。", 409)
    [(token, link)] = _new_links(user, [account])
    record_audit(
        "activation_created", user=user, object_type="staff_user", object_id=account.id, data={"link_id": link.id}
    )
    return token


def new_activations(user: StaffUser, accounts: list[StaffUser]) -> list[tuple[str, ActivationLink]]:
    """A fresh one-time link for each of many active accounts (an import, a station's activation sheet); older
    links of those accounts end. Written in bulk (one update, one flush); the caller writes the audit row that
    says why. Returns (token, link) in the order of ``accounts``; only the tokens' hashes are stored."""
    if any(not account.is_active for account in accounts):
        raise UserError("account_inactive", "其中有已停用的账号，请先启用。", 409)
    return _new_links(user, accounts)


def _new_links(user: StaffUser | None, accounts: list[StaffUser]) -> list[tuple[str, ActivationLink]]:
    now = utcnow()
    ids = [account.id for account in accounts]
    for start in range(0, len(ids), 500):  # within every engine's limit of bound parameters
        db.session.execute(
            update(ActivationLink)
            .where(
                ActivationLink.staff_user_id.in_(ids[start : start + 500]),
                ActivationLink.used_at.is_(None),
                ActivationLink.revoked_at.is_(None),
            )
            .values(revoked_at=now)
        )
    days = current_app.config.get("ACTIVATION_DAYS", 14)
    made = []
    for account in accounts:
        token = secrets.token_urlsafe(24)
        link = ActivationLink(
            staff_user_id=account.id,
            token_hash=hash_token(token),
            created_by_id=user.id if user is not None else None,
            created_at=now,
            expires_at=now + timedelta(days=days),
        )
        made.append((token, link))
    db.session.add_all([link for _, link in made])
    db.session.flush()
    return made


def activation_url(token: str) -> str:
    """The full address of an activation link, as it is shown, printed and scanned (``PUBLIC_BASE_URL``)."""
    return f"{current_app.config['PUBLIC_BASE_URL']}{url_for('staff.activate', token=token)}"


def unusable_password_hash() -> str:
    """A password hash nobody knows the password of, for accounts their owner activates; made once per call
    (one hash for a whole import: hashing is slow on purpose), with the same method as real ones."""
    return hash_password(secrets.token_urlsafe(32))


def pending_accounts_query(station_id: int) -> Select:
    """``select(StaffUser)`` of a station's active accounts not yet activated: its administrators and its serving
    deputies' accounts that were given activation links and have used none (an account made with a password,
    ``flask user create``, has no link and is never listed)."""
    used = select(ActivationLink.id).where(
        ActivationLink.staff_user_id == StaffUser.id, ActivationLink.used_at.is_not(None)
    )
    given = select(ActivationLink.id).where(ActivationLink.staff_user_id == StaffUser.id)
    serving = select(Deputy.id).where(Deputy.station_id == station_id, Deputy.status == DeputyStatus.SERVING)
    return select(StaffUser).where(
        StaffUser.is_active.is_(True),
        or_(
            (StaffUser.role == StaffRole.STATION_ADMIN) & (StaffUser.station_id == station_id),
            (StaffUser.role == StaffRole.DEPUTY) & StaffUser.deputy_id.in_(serving),
        ),
        given.exists(),
        ~used.exists(),
    )


def set_active(user: StaffUser, account: StaffUser, active: bool) -> bool:
    """Disable (ending its sessions and links) or enable an account; never one's own. False when nothing changed."""
    if account.id == user.id:
        raise UserError("own_account", "不能停用自己的账号。", 409)
    if account.is_active == active:
        return False
    account.is_active = active
    now = utcnow()
    if not active:
        end_sessions(account, now)
        db.session.execute(
            update(ActivationLink)
            .where(
                ActivationLink.staff_user_id == account.id,
                ActivationLink.used_at.is_(None),
                ActivationLink.revoked_at.is_(None),
            )
            .values(revoked_at=now)
        )
    db.session.flush()
    record_audit(
        "staff_user_enabled" if active else "staff_user_disabled",
        user=user,
        object_type="staff_user",
        object_id=account.id,
    )
    return True


def open_activation(token: object) -> ActivationLink:
    """The link behind a token if it can still be used; else a ``UserError`` a person can act on (404 / 410)."""
    link = None
    if isinstance(token, str) and 16 <= len(token) <= 64:
        link = db.session.scalar(select(ActivationLink).where(ActivationLink.token_hash == hash_token(token)))
    if link is None:
        raise UserError("unknown_activation", "找不到这个激活链接，请核对，或请工作人员重新生成。", 404)
    if link.used_at is not None:
        raise UserError(
            "activation_used", "这个激活链接已经用过了。请直接登录；忘记密码请找工作人员重新生成链接。", 410
        )
    if link.revoked_at is not None or link.expires_at <= utcnow() or not link.staff_user.is_active:
        raise UserError("activation_expired", "这个激活链接已失效，请找工作人员重新生成。", 410)
    return link


def activate(token: object, password: object, confirm: object) -> StaffUser:
    """Set the account's own password through its link, once; end its other links and sessions; return it."""
    link = open_activation(token)
    account = link.staff_user
    new_password = check_new_password(password, confirm, account.username)
    now = utcnow()
    account.password_hash = hash_password(new_password)
    link.used_at = now
    db.session.execute(
        update(ActivationLink)
        .where(
            ActivationLink.staff_user_id == account.id,
            ActivationLink.id != link.id,
            ActivationLink.revoked_at.is_(None),
        )
        .values(revoked_at=now)
    )
    end_sessions(account, now)
    db.session.flush()
    record_audit(
        "account_activated", user=account, object_type="staff_user", object_id=account.id, data={"link_id": link.id}
    )
    return account
