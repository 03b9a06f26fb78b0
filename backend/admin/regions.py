"""The region tree and the stations in it, kept by the region's supervisors without a developer.

A supervisor adds regions under their own (a county's townships; a city's counties), renames
them, and opens, renames, closes, reopens and merges the stations of their region. Each
function validates first and writes nothing when it refuses (``UserError`` naming the field),
then writes, records an audit row and flushes; the caller commits.

What a printed code does afterwards, since a code is never reissued to someone else:
- a new station gets its station code at once (``issue_code``), ready to print;
- a closed station keeps its code, and the form behind it says the station is closed and
  sends the resident to the directory (``qr.codes.resolve_slug``: ``station_closed``);
- a merged station's code leads to the station it was merged into (``Station.merged_into``),
  so posters already on walls keep working. Its deputies, its administrators' accounts and
  its open items move to that station; its closed items stay where they were handled, for
  the figures of the months they belong to; its reception days go (the merged station's
  calendar is the one residents see).
"""

from __future__ import annotations

from sqlalchemy import func, select, update

from backend.access import can_manage_region, can_manage_station, region_subtree
from backend.admin import apply_changes
from backend.admin.stations import update_station
from backend.audit import record_added, record_audit
from backend.errors import UserError
from backend.extensions import db
from backend.items.validation import clean_text, parse_id
from backend.models import (
    Deputy,
    DeputyStatus,
    Item,
    ItemStatus,
    ReceptionRule,
    Region,
    RegionLevel,
    StaffUser,
    Station,
)
from backend.models.region import REGION_LEVEL_LABELS
from backend.qr.codes import issue_code

REGION_NAME_MAX_CHARS = 100  # Region.name
STATION_NAME_MAX_CHARS = 100  # Station.name
CHILD_LEVEL = {
    RegionLevel.PROVINCE: RegionLevel.CITY,
    RegionLevel.CITY: RegionLevel.COUNTY,
    RegionLevel.COUNTY: RegionLevel.TOWNSHIP,
}
# 行政区划代码: how many leading digits a region shares with its parent, and how long it is.
SHARED_PREFIX = {RegionLevel.PROVINCE: 2, RegionLevel.CITY: 4, RegionLevel.COUNTY: 6}
CODE_LENGTH = {RegionLevel.PROVINCE: 6, RegionLevel.CITY: 6, RegionLevel.COUNTY: 6, RegionLevel.TOWNSHIP: 9}
ROOT_LEVELS = (RegionLevel.PROVINCE, RegionLevel.CITY, RegionLevel.COUNTY)


def _not_yours(field: str) -> UserError:
    return UserError(f"invalid_{field}", "请选择您辖区内的地区。", 400, field=field)


def managed_region(user: StaffUser, raw_id: object, field: str = "region_id") -> Region:
    """The region ``raw_id`` names if the supervisor manages it; else a 400 naming ``field`` (unknown or not theirs)."""
    region_id = parse_id(raw_id)
    region = db.session.get(Region, region_id) if region_id is not None else None
    if region is None or not can_manage_region(user, region):
        raise _not_yours(field)
    return region


def _region_name(value: object) -> str:
    return clean_text(value, "name", "地区名称", max_chars=REGION_NAME_MAX_CHARS, required=True)


def create_region(user: StaffUser, form) -> Region:
    """A region under one of the supervisor's regions, one level down, with its 行政区划代码 (unique)."""
    parent = managed_region(user, form.get("parent_id"), "parent_id")
    level = CHILD_LEVEL.get(parent.level)
    if level is None:
        raise UserError(
            "invalid_parent_id", f"{REGION_LEVEL_LABELS[parent.level]}级地区下不能再分地区。", 400, field="parent_id"
        )
    raw = form.get("code")
    code = raw.strip() if isinstance(raw, str) else ""
    prefix = parent.code[: SHARED_PREFIX[parent.level]]
    if len(code) != CODE_LENGTH[level] or not code.isascii() or not code.isdigit() or not code.startswith(prefix):
        example = prefix + "1" + "0" * (CODE_LENGTH[level] - len(prefix) - 1)
        raise UserError(
            "invalid_code",
            f"{REGION_LEVEL_LABELS[level]}级行政区划代码是{CODE_LENGTH[level]}位数字，以{prefix}开头，例如{example}。",
            400,
            field="code",
        )
    name = _region_name(form.get("name"))
    if db.session.scalar(select(Region.id).where(Region.code == code)) is not None:
        raise UserError("code_taken", f"代码{code}已被其他地区使用。", 409, field="code")
    region = Region(code=code, name=name, level=level, parent=parent)
    record_added(region, "region_created", user=user, object_type="region", data={"code": code, "name": name})
    return region


def create_root_region(code: object, name: object, level: object) -> Region:
    """The install's own region (a county, city or province), the one thing a supervisor cannot make in the
    browser: the first supervisor's account (``flask user create --role supervisor``) needs it. Once only."""
    try:
        level = RegionLevel(level)
    except ValueError:
        level = None
    if level not in ROOT_LEVELS:
        raise UserError("invalid_level", "级别应为 county（县）、city（市）或 province（省）。", 400, field="level")
    if db.session.scalar(select(Region.id).where(Region.parent_id.is_(None)).limit(1)) is not None:
        raise UserError(
            "root_exists",
            "本系统已有最上级地区；下级地区请由该地区的人大常委会工作人员在“管理 → 地区和联络站”中添加。",
            409,
        )
    code = code.strip() if isinstance(code, str) else ""
    if len(code) != CODE_LENGTH[level] or not code.isascii() or not code.isdigit():
        raise UserError("invalid_code", "行政区划代码是6位数字，例如430225。", 400, field="code")
    name = _region_name(name)
    region = Region(code=code, name=name, level=level)
    record_added(region, "region_created", object_type="region", data={"code": code, "name": name})
    return region


def rename_region(user: StaffUser, region: Region, form) -> bool:
    """Give a region of the supervisor's a new name; False when it was already so named."""
    return bool(apply_changes(user, region, {"name": _region_name(form.get("name"))}, "region_renamed", "region"))


def _station_name(value: object) -> str:
    return clean_text(value, "name", "联络站名称", max_chars=STATION_NAME_MAX_CHARS, required=True)


def create_station(user: StaffUser, form) -> Station:
    """A new station in one of the supervisor's regions, with address and contact, and its code issued."""
    region = managed_region(user, form.get("region_id"))
    name = _station_name(form.get("name"))
    station = Station(name=name, region=region)
    db.session.add(station)
    update_station(user, station, form)  # address, contact, reception hours: checked as on the station's page
    db.session.flush()
    issue_code(station)
    record_audit("station_created", user=user, object_type="station", object_id=station.id, data={"name": name})
    return station


def rename_station(user: StaffUser, station: Station, form) -> bool:
    """A new name for a station (its code and posters stay valid; reprint to show the name)."""
    return bool(apply_changes(user, station, {"name": _station_name(form.get("name"))}, "station_renamed", "station"))


def _serving_count(station: Station) -> int:
    return db.session.scalar(
        select(func.count(Deputy.id)).where(Deputy.station_id == station.id, Deputy.status == DeputyStatus.SERVING)
    )


def _open_count(station: Station) -> int:
    return db.session.scalar(
        select(func.count(Item.id)).where(Item.station_id == station.id, Item.status.in_(ItemStatus.open_statuses()))
    )


def close_station(user: StaffUser, station: Station) -> None:
    """Close a station with no serving deputy and no open item (else 409 saying what to do first)."""
    if not station.is_active:
        raise UserError("already_closed", "该联络站已经撤销。", 409)
    serving, open_items = _serving_count(station), _open_count(station)
    if serving or open_items:
        parts = [f"{serving}名在任代表" if serving else "", f"{open_items}件未办结的留言" if open_items else ""]
        raise UserError(
            "station_in_use",
            f"该联络站还有{'和'.join(p for p in parts if p)}：请先把代表调到其他联络站，或把本站合并到其他联络站。",
            409,
        )
    station.is_active = False
    db.session.flush()
    record_audit("station_closed", user=user, object_type="station", object_id=station.id, data={"name": station.name})


def reopen_station(user: StaffUser, station: Station) -> None:
    """Open a closed station again (not a merged one: its code leads to the other station now)."""
    if station.is_active:
        raise UserError("not_closed", "该联络站没有撤销。", 409)
    if station.merged_into_id is not None:
        raise UserError("merged", "该联络站已合并到其他联络站，不能恢复；如需要，请新建联络站。", 409)
    station.is_active = True
    db.session.flush()
    record_audit(
        "station_reopened", user=user, object_type="station", object_id=station.id, data={"name": station.name}
    )


def merge_station(user: StaffUser, station: Station, form) -> Station:
    """Merge ``station`` into another of the supervisor's stations; return that station (see the module's docstring)."""
    target_id = parse_id(form.get("into_id"))
    target = db.session.get(Station, target_id) if target_id is not None else None
    if target is None or not can_manage_station(user, target) or not target.is_active:
        raise UserError("invalid_into_id", "请选择您辖区内一个在用的联络站。", 400, field="into_id")
    if target.id == station.id:
        raise UserError("invalid_into_id", "不能合并到本站自己。", 400, field="into_id")
    if not station.is_active:
        raise UserError("already_closed", "该联络站已经撤销或合并。", 409)
    deputies = db.session.scalars(select(Deputy.id).where(Deputy.station_id == station.id)).all()
    moved = {
        "deputies": len(deputies),
        "open_items": _open_count(station),
        "accounts": db.session.scalar(select(func.count(StaffUser.id)).where(StaffUser.station_id == station.id)),
    }
    db.session.execute(update(Deputy).where(Deputy.station_id == station.id).values(station_id=target.id))
    db.session.execute(
        update(Item)
        .where(Item.station_id == station.id, Item.status.in_(ItemStatus.open_statuses()))
        .values(station_id=target.id)
    )
    db.session.execute(update(StaffUser).where(StaffUser.station_id == station.id).values(station_id=target.id))
    for rule in db.session.scalars(select(ReceptionRule).where(ReceptionRule.station_id == station.id)):
        db.session.delete(rule)
    # Stations merged into this one before now lead to the target too: one step from any code, never a chain.
    db.session.execute(update(Station).where(Station.merged_into_id == station.id).values(merged_into_id=target.id))
    station.is_active = False
    station.merged_into_id = target.id
    db.session.flush()
    db.session.expire_all()
    record_audit(
        "station_merged",
        user=user,
        object_type="station",
        object_id=station.id,
        data={"into_id": target.id, "into": target.name, **moved},
    )
    return target


def tree(user: StaffUser) -> list[tuple[Region, int, list[Station]]]:
    """The supervisor's regions depth first, each with its depth and its stations (open ones first)."""
    if user.region is None:
        return []
    stations: dict[int, list[Station]] = {}
    mine = select(Station).where(Station.region_id.in_(region_subtree(user.region_id).scalar_subquery()))
    for station in db.session.scalars(mine.order_by(Station.is_active.desc(), Station.id)):
        stations.setdefault(station.region_id, []).append(station)
    rows: list[tuple[Region, int, list[Station]]] = []

    def walk(region: Region, depth: int) -> None:
        rows.append((region, depth, stations.get(region.id, [])))
        for child in sorted(region.children, key=lambda r: r.code):
            walk(child, depth + 1)

    walk(user.region, 0)
    return rows
