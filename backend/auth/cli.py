"""``flask user create`` and ``flask user reset-password``: staff accounts from the command line.

Every check runs before anything is written; an error leaves the database as it was.
"""

from __future__ import annotations

import re

import click
from flask.cli import AppGroup
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from backend.audit import record_audit
from backend.auth.own_account import check_new_password
from backend.auth.passwords import hash_password
from backend.auth.sessions import USERNAME_MAX_LENGTH, end_sessions, normalize_username
from backend.errors import UserError
from backend.extensions import db
from backend.models import Department, Deputy, DeputyStatus, Region, StaffRole, StaffUser, Station, utcnow

DISPLAY_NAME_MAX_LENGTH = 50  # StaffUser.display_name
USERNAME_PATTERN = re.compile(rf"^[a-z0-9][a-z0-9_.@-]{{2,{USERNAME_MAX_LENGTH - 1}}}$")

# The scope option each role needs.
SCOPE_OPTION = {
    StaffRole.DEPUTY: "deputy",
    StaffRole.STATION_ADMIN: "station",
    StaffRole.SUPERVISOR: "region",
    StaffRole.DEPARTMENT: "department",
}

user_cli = AppGroup("user", help="员工账号：创建账号、重置密码。")


def check_password(password: str, username: str = "") -> str:
    """The password if ``own_account.check_new_password`` takes it; a ClickException saying why otherwise."""
    try:
        return check_new_password(password, None, username)
    except UserError as exc:
        raise click.ClickException(exc.message) from None


def _find_scope(role: StaffRole, scopes: dict[str, object]) -> dict:
    """The scope columns for a role from the options given; a ClickException when they do not fit."""
    needed = SCOPE_OPTION[role]
    extra = sorted(f"--{name}" for name, value in scopes.items() if value is not None and name != needed)
    if extra:
        raise click.ClickException(f"角色 {role.value} 不能使用 {'、'.join(extra)}，只需要 --{needed}。")
    value = scopes[needed]
    if value is None:
        raise click.ClickException(f"角色 {role.value} 需要 --{needed}。")

    if role == StaffRole.DEPUTY:
        deputy = db.session.get(Deputy, value)
        if deputy is None:
            raise click.ClickException(f"找不到编号为 {value} 的代表。")
        if deputy.status != DeputyStatus.SERVING:
            raise click.ClickException(f"代表 {deputy.name}（编号 {value}）已不在任，不能创建账号。")
        taken = db.session.scalar(select(StaffUser.username).where(StaffUser.deputy_id == deputy.id).limit(1))
        if taken is not None:
            raise click.ClickException(f"代表 {deputy.name}（编号 {value}）已有账号 {taken}。")
        return {"deputy": deputy, "display_name": deputy.name}
    if role == StaffRole.STATION_ADMIN:
        station = db.session.get(Station, value)
        if station is None:
            raise click.ClickException(f"找不到编号为 {value} 的联络站。")
        return {"station": station, "display_name": station.contact_name or station.name}
    if role == StaffRole.SUPERVISOR:
        region = db.session.scalar(select(Region).where(Region.code == str(value).strip()))
        if region is None:
            raise click.ClickException(f"找不到行政区划代码为 {value} 的地区。")
        return {"region": region, "display_name": f"{region.name}人大常委会"}
    department = db.session.get(Department, value)
    if department is None:
        raise click.ClickException(f"找不到编号为 {value} 的承办单位。")
    if not department.is_active:
        raise click.ClickException(f"承办单位 {department.name}（编号 {value}）已停用。")
    return {"department": department, "display_name": department.name}


@user_cli.command("create")
@click.argument("username")
@click.option("--role", required=True, type=click.Choice([role.value for role in StaffRole]), help="账号角色。")
@click.option("--deputy", "deputy_id", type=int, help="代表编号（角色 deputy）。")
@click.option("--station", "station_id", type=int, help="联络站编号（角色 station_admin）。")
@click.option("--region", "region_code", help="行政区划代码（角色 supervisor），如 430225。")
@click.option("--department", "department_id", type=int, help="承办单位编号（角色 department）。")
@click.option("--display-name", help="显示的名字；默认取代表姓名、联络站联系人、地区或单位名称。")
@click.option(
    "--password", prompt="密码", hide_input=True, confirmation_prompt="再次输入密码", help="不给出时提示输入。"
)
def create_command(
    username: str,
    role: str,
    deputy_id: int | None,
    station_id: int | None,
    region_code: str | None,
    department_id: int | None,
    display_name: str | None,
    password: str,
) -> None:
    """Create a staff user with a role and the scope that role needs."""
    username = normalize_username(username)
    if not USERNAME_PATTERN.match(username):
        raise click.ClickException(
            f"用户名须为 3–{USERNAME_MAX_LENGTH} 个字符：小写字母、数字和 _ . @ -，以字母或数字开头。"
        )
    check_password(password)
    staff_role = StaffRole(role)
    scope = _find_scope(
        staff_role,
        {"deputy": deputy_id, "station": station_id, "region": region_code, "department": department_id},
    )
    if db.session.scalar(select(StaffUser.id).where(StaffUser.username == username)) is not None:
        raise click.ClickException(f"用户名 {username} 已存在。")
    default_name = scope.pop("display_name")
    display_name = (display_name or "").strip() or default_name[:DISPLAY_NAME_MAX_LENGTH]
    if len(display_name) > DISPLAY_NAME_MAX_LENGTH:
        raise click.ClickException(f"显示名字最多 {DISPLAY_NAME_MAX_LENGTH} 个字符。")

    user = StaffUser(
        username=username,
        display_name=display_name,
        password_hash=hash_password(password),
        role=staff_role,
        **scope,
    )
    db.session.add(user)
    try:
        db.session.flush()
    except IntegrityError:  # created by someone else between the check and now
        db.session.rollback()
        raise click.ClickException(f"用户名 {username} 已存在。") from None
    record_audit("staff_user_created", user=None, object_type="staff_user", object_id=user.id, data={"via": "cli"})
    db.session.commit()
    click.echo(f"已创建账号 {username}（{staff_role.value}，{display_name}）。")


@user_cli.command("reset-password")
@click.argument("username")
@click.option(
    "--password", prompt="新密码", hide_input=True, confirmation_prompt="再次输入新密码", help="不给出时提示输入。"
)
def reset_password_command(username: str, password: str) -> None:
    """Set a new password and end every session and API token of the user."""
    username = normalize_username(username)
    check_password(password, username)
    user = db.session.scalar(select(StaffUser).where(StaffUser.username == username))
    if user is None:
        raise click.ClickException(f"找不到用户名为 {username} 的账号。")
    user.password_hash = hash_password(password)
    revoked = end_sessions(user, utcnow())
    record_audit(
        "password_reset",
        user=None,
        object_type="staff_user",
        object_id=user.id,
        data={"via": "cli", "revoked": revoked},
    )
    db.session.commit()
    click.echo(f"已重置 {username} 的密码，并结束了 {revoked} 个登录会话。")
