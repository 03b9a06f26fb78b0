"""Administration pages for accounts: ``/admin/accounts`` (supervisors only), and a station's activation sheet
(its administrator and the supervisors of its region: ``/admin/stations/<id>/activation-sheet``).

On the administration blueprint (``admin.bp``). Anyone but a supervisor gets 404 and an audit
row (``require_supervisor``); an account outside the supervisor's region answers 404 like an
unknown one. A new account and a new activation both end on a page that shows the one-time
link and its QR code for the person to scan; the link is not shown again (only its hash is
kept): "new activation" makes another, and ends this one.
"""

from __future__ import annotations

import base64

from flask import current_app, request
from sqlalchemy import select

from backend import pagination
from backend.access import (
    ADMIN_ROLES,
    can_manage_region,
    manageable_stations_query,
    region_subtree,
    require_station,
    require_supervisor,
)
from backend.admin import accounts as account_ops
from backend.admin import activation_sheet
from backend.auth import ROLE_LABELS, describe_scope
from backend.auth.sessions import current_staff, login_required
from backend.downloads import download
from backend.errors import UserError
from backend.extensions import db
from backend.items.validation import MAX_ID
from backend.models import Department, Deputy, DeputyStatus, Region, Station
from backend.qr.render import qr_svg
from backend.routes.admin import _done, _page, _refused_page, bp
from backend.routes.posters import require_fonts


def _supervisor():
    user = current_staff()
    require_supervisor(user)
    return user


def _choices(user) -> dict:
    stations = list(db.session.scalars(manageable_stations_query(user).where(Station.is_active).order_by(Station.id)))
    station_ids = [s.id for s in stations]
    deputies = list(
        db.session.scalars(
            select(Deputy)
            .where(Deputy.station_id.in_(station_ids), Deputy.status == DeputyStatus.SERVING)
            .order_by(Deputy.id)
        )
    )
    departments = [
        d
        for d in db.session.scalars(select(Department).where(Department.is_active).order_by(Department.id))
        if can_manage_region(user, d.region)
    ]
    regions = [
        r
        for r in db.session.scalars(
            select(Region).where(Region.id.in_(region_subtree(user.region_id))).order_by(Region.code)
        )
        if r.id != user.region_id
    ]
    return {"stations": stations, "deputies": deputies, "departments": departments, "regions": regions}


def _list_context() -> dict:
    user = current_staff()
    q = request.args.get("q", "")
    role = request.args.get("role", "")
    page_number = pagination.page_number(request.args.get("page"))
    rows, total = account_ops.list_accounts(user, q, role, page_number)
    return {
        "rows": rows,
        "total": total,
        "q": q[: account_ops.SEARCH_MAX],
        "role": role,
        "page_number": page_number,
        "pages": pagination.page_count(total, account_ops.PAGE_SIZE),
        "role_labels": ROLE_LABELS,
        "describe_scope": describe_scope,
        "grantable": [(r.value, ROLE_LABELS[r]) for r in account_ops.GRANTABLE],
        **_choices(user),
    }


def _link_page(account, token: str, status: int = 200, created: bool = False):
    full = account_ops.activation_url(token)
    svg = base64.b64encode(qr_svg(full, 220)).decode()
    return _page(
        "admin/account_link.html",
        status,
        account=account,
        link=full,
        qr=svg,
        created=created,
        role_labels=ROLE_LABELS,
        scope=describe_scope(account),
        days=current_app.config.get("ACTIVATION_DAYS", 14),
    )


@bp.get("/accounts")
@login_required(*ADMIN_ROLES)
def accounts():
    """The accounts of the supervisor's region: search, role, scope, last seen, and what to do with each."""
    _supervisor()
    return _page("admin/accounts.html", **_list_context())


@bp.post("/accounts")
@login_required(*ADMIN_ROLES)
def account_create():
    """A new account with no password: the page that follows shows its one-time activation link."""
    user = _supervisor()
    try:
        account, token = account_ops.create_account(user, request.form)
    except UserError as exc:
        return _refused_page("admin/accounts.html", exc, _list_context, "new")
    return _link_page(account, token, created=True)


@bp.post(f"/accounts/<int(max={MAX_ID}):account_id>/activation")
@login_required(*ADMIN_ROLES)
def account_activation(account_id: int):
    """A new one-time link for an account (a new phone, a forgotten password); older links end."""
    user = _supervisor()
    try:
        account = account_ops.require_account(user, account_id)
        token = account_ops.new_activation(user, account)
    except UserError as exc:
        if exc.status == 404:
            raise
        return _refused_page("admin/accounts.html", exc, _list_context, f"account-{account_id}")
    return _link_page(account, token)


@bp.post(f"/accounts/<int(max={MAX_ID}):account_id>/active")
@login_required(*ADMIN_ROLES)
def account_active(account_id: int):
    """Disable an account (its logins and links end at once) or enable it again."""
    user = _supervisor()
    account = account_ops.require_account(user, account_id)
    try:
        account_ops.set_active(user, account, request.form.get("active") == "1")
    except UserError as exc:
        return _refused_page("admin/accounts.html", exc, _list_context, f"account-{account_id}")
    state = "启用" if account.is_active else "停用"
    return _done(f"已{state}账号 {account.username}。", "admin.accounts", q=account.username)


@bp.post(f"/stations/<int(max={MAX_ID}):station_id>/activation-sheet")
@login_required(*ADMIN_ROLES)
def activation_sheet_pdf(station_id: int):
    """The station's activation sheet (PDF): a fresh one-time link per account not yet activated, older ones
    ended. A POST: printing it changes which links work. Nothing to print goes back to the page, saying so."""
    user = current_staff()
    station = require_station(user, station_id)
    try:
        require_fonts()
        data, _ = activation_sheet.print_activation_sheet(user, station)
    except UserError as exc:
        db.session.rollback()
        if exc.status == 503:
            raise
        return _done(exc.message, "admin.station", station_id=station.id, _anchor="activation")
    return download(data, "application/pdf", f"{station.name}-账号激活单.pdf", f"station-{station.id}-activation.pdf")
