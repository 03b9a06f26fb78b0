"""Who may manage which station, deputy, department and region.

| role          | manages                                                                     |
|---------------|-----------------------------------------------------------------------------|
| station_admin | their station, its deputies                                                 |
| supervisor    | every station whose region is theirs or lies under it, their deputies; the  |
|               | departments of those regions                                                |
| deputy        | nothing here (their own poster only: ``backend.admin.printing``)            |
| department    | nothing                                                                     |

An inactive user, or one whose scope column is empty, manages nothing. Something that exists
but lies outside the user's scope answers exactly like something unknown (404), and the
refusal is written down (``admin_access_denied``) and committed before the answer: the error
handler rolls the request's transaction back.
"""

from __future__ import annotations

from flask import abort, request
from sqlalchemy import Select, false, select

from backend.audit import record_audit
from backend.extensions import db
from backend.items.access import region_subtree
from backend.models import Department, Deputy, Region, StaffRole, StaffUser, Station

ADMIN_ROLES = (StaffRole.STATION_ADMIN, StaffRole.SUPERVISOR)


def manageable_stations_query(user: StaffUser | None) -> Select:
    """``select(Station)`` limited to the stations ``user`` manages; add ordering on top."""
    query = select(Station)
    if user is None or not user.is_active:
        return query.where(false())
    if user.role == StaffRole.STATION_ADMIN and user.station_id is not None:
        return query.where(Station.id == user.station_id)
    if user.role == StaffRole.SUPERVISOR and user.region_id is not None:
        return query.where(Station.region_id.in_(region_subtree(user.region_id)))
    return query.where(false())


def manageable_region_ids(user: StaffUser | None) -> set[int]:
    """Ids of the regions a supervisor oversees (theirs and every one under it); empty for anyone else."""
    if user is None or not user.is_active or user.role != StaffRole.SUPERVISOR or user.region_id is None:
        return set()
    return set(db.session.scalars(region_subtree(user.region_id)))


def can_manage_region(user: StaffUser | None, region: Region) -> bool:
    """True when ``region`` is the supervisor's own or lies under it."""
    if user is None or not user.is_active or user.role != StaffRole.SUPERVISOR or user.region_id is None:
        return False
    return any(node.id == user.region_id for node in region.lineage())


def can_manage_station(user: StaffUser | None, station: Station) -> bool:
    """True when ``user`` manages ``station`` (see the module table)."""
    if user is None or not user.is_active:
        return False
    if user.role == StaffRole.STATION_ADMIN:
        return user.station_id is not None and station.id == user.station_id
    if user.role == StaffRole.SUPERVISOR:
        return can_manage_region(user, station.region)
    return False


def deny(user: StaffUser | None, object_type: str, object_id: object) -> None:
    """Write and commit an ``admin_access_denied`` row, then answer 404 as for something unknown."""
    record_audit(
        "admin_access_denied",
        user=user,
        object_type=object_type,
        object_id=object_id,
        data={
            "method": request.method,
            "path": request.path[:500],
            "role": user.role.value if user is not None else None,
        },
    )
    db.session.commit()  # the 404 answer rolls the request back; the audit row must stay
    abort(404)


def require_station(user: StaffUser, station_id: int) -> Station:
    """The station if ``user`` manages it; 404 when unknown, 404 and an audit row when out of scope."""
    station = db.session.get(Station, station_id)
    if station is None:
        abort(404)
    if not can_manage_station(user, station):
        deny(user, "station", station.id)
    return station


def require_deputy(user: StaffUser, deputy_id: int) -> Deputy:
    """The deputy if ``user`` manages their station; 404 when unknown, 404 and an audit row when out of scope."""
    deputy = db.session.get(Deputy, deputy_id)
    if deputy is None:
        abort(404)
    if not can_manage_station(user, deputy.station):
        deny(user, "deputy", deputy.id)
    return deputy


def require_department(user: StaffUser, department_id: int) -> Department:
    """The department if it lies in the supervisor's region; 404 when unknown, 404 and an audit row otherwise."""
    department = db.session.get(Department, department_id)
    if department is None:
        abort(404)
    if not can_manage_region(user, department.region):
        deny(user, "department", department.id)
    return department


def require_supervisor(user: StaffUser) -> None:
    """Pages for supervisors only (departments, the county batch): anyone else gets 404 and an audit row."""
    if user.role != StaffRole.SUPERVISOR or user.region_id is None:
        deny(user, "path", request.path[:64])
