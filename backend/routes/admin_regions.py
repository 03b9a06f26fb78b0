"""Administration pages for the region tree and its stations (supervisors only): ``/admin/regions``.

They belong to the administration blueprint (``admin.bp``: the same audience, login and
refusal rules). Anyone but a supervisor gets 404 and an audit row (``require_supervisor``); a
station or region outside the supervisor's region answers like an unknown one, with an audit
row (``require_station``) or as a refused field (``regions.managed_region``). Each POST shows
the page again with the reason when refused, and writes nothing.
"""

from __future__ import annotations

from flask import request

from backend.access import ADMIN_ROLES, require_station, require_supervisor
from backend.admin import regions as region_ops
from backend.auth.sessions import current_staff, login_required
from backend.errors import UserError
from backend.items.validation import MAX_ID
from backend.models.region import REGION_LEVEL_LABELS
from backend.routes.admin import _done, _page, _refused_page, bp


def _context() -> dict:
    user = current_staff()
    rows = region_ops.tree(user)
    return {
        "rows": rows,
        "level_labels": REGION_LEVEL_LABELS,
        "child_levels": region_ops.CHILD_LEVEL,
        "open_stations": [s for _, _, stations in rows for s in stations if s.is_active],
    }


def _supervisor():
    user = current_staff()
    require_supervisor(user)
    return user


def _regions_refused(exc: UserError, form_name: str):
    """The regions page again after one of its forms was refused."""
    return _refused_page("admin/regions.html", exc, _context, form_name)


@bp.get("/regions")
@login_required(*ADMIN_ROLES)
def regions():
    """The supervisor's region tree with the stations in each region, and the forms that keep them."""
    _supervisor()
    return _page("admin/regions.html", **_context())


@bp.post("/regions")
@login_required(*ADMIN_ROLES)
def region_create():
    """Add a region under one of the supervisor's."""
    user = _supervisor()
    try:
        region = region_ops.create_region(user, request.form)
    except UserError as exc:
        return _regions_refused(exc, f"region-new-{request.form.get('parent_id', '')}"[:40])
    return _done(f"已新增{region.name}（{region.code}）。", "admin.regions", _anchor=f"region-{region.id}")


@bp.post(f"/regions/<int(max={MAX_ID}):region_id>/name")
@login_required(*ADMIN_ROLES)
def region_rename(region_id: int):
    """Rename one of the supervisor's regions."""
    user = _supervisor()
    try:
        region = region_ops.managed_region(user, region_id)
        changed = region_ops.rename_region(user, region, request.form)
    except UserError as exc:
        return _regions_refused(exc, f"region-name-{region_id}")
    return _done("已改名。" if changed else "没有修改。", "admin.regions", _anchor=f"region-{region_id}")


@bp.post("/stations/new")
@login_required(*ADMIN_ROLES)
def station_create():
    """Open a station in one of the supervisor's regions; its code is issued at once."""
    user = _supervisor()
    try:
        station = region_ops.create_station(user, request.form)
    except UserError as exc:
        return _regions_refused(exc, f"station-new-{request.form.get('region_id', '')}"[:40])
    return _done(
        f"已新建{station.name}，可以添加代表和接待日，打印二维码海报。", "admin.station", station_id=station.id
    )


@bp.post(f"/stations/<int(max={MAX_ID}):station_id>/name")
@login_required(*ADMIN_ROLES)
def station_rename(station_id: int):
    """Rename a station (its code stays; reprint the posters to show the new name)."""
    user = _supervisor()
    station = require_station(user, station_id)
    try:
        changed = region_ops.rename_station(user, station, request.form)
    except UserError as exc:
        return _regions_refused(exc, f"station-{station_id}")
    message = "已改名。二维码不变，重新打印海报后显示新名称。" if changed else "没有修改。"
    return _done(message, "admin.regions", _anchor=f"station-{station_id}")


@bp.post(f"/stations/<int(max={MAX_ID}):station_id>/close")
@login_required(*ADMIN_ROLES)
def station_close(station_id: int):
    """Close a station that has no serving deputy and no open item."""
    user = _supervisor()
    station = require_station(user, station_id)
    try:
        region_ops.close_station(user, station)
    except UserError as exc:
        return _regions_refused(exc, f"station-{station_id}")
    return _done(
        f"已撤销{station.name}。扫描它的二维码会提示已撤销。", "admin.regions", _anchor=f"station-{station_id}"
    )


@bp.post(f"/stations/<int(max={MAX_ID}):station_id>/reopen")
@login_required(*ADMIN_ROLES)
def station_reopen(station_id: int):
    """Open a closed station again."""
    user = _supervisor()
    station = require_station(user, station_id)
    try:
        region_ops.reopen_station(user, station)
    except UserError as exc:
        return _regions_refused(exc, f"station-{station_id}")
    return _done(f"已恢复{station.name}。", "admin.regions", _anchor=f"station-{station_id}")


@bp.post(f"/stations/<int(max={MAX_ID}):station_id>/merge")
@login_required(*ADMIN_ROLES)
def station_merge(station_id: int):
    """Merge a station into another: deputies, accounts and open items move; its code leads there."""
    user = _supervisor()
    station = require_station(user, station_id)
    try:
        target = region_ops.merge_station(user, station, request.form)
    except UserError as exc:
        return _regions_refused(exc, f"station-{station_id}")
    return _done(
        f"已把{station.name}合并到{target.name}：代表、工作人员账号和未办结的留言都已转过去，原二维码扫描后进入{target.name}。",
        "admin.station",
        station_id=target.id,
    )
