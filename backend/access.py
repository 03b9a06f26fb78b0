"""Who among the staff may see or act on which item, station, deputy, department and region: one policy.

Items (seen, and acted on through ``backend.items.lifecycle``):

| role          | sees                                                                  |
|---------------|-----------------------------------------------------------------------|
| deputy        | items addressed to their own deputy record (``Item.deputy_id``)       |
| station_admin | every item of their station                                           |
| supervisor    | items of stations whose region is theirs or lies under it (any depth) |
| department    | items forwarded to their department and still in its hands (neither   |
|               | revoked nor returned); without an account: the one item behind a link |

``can_see_item`` and ``visible_items_query`` apply the same rule, one to a loaded item, one in SQL.

代表建议 (proposals, ``backend.proposals``): a deputy drafts and sees their own; a supervisor those drafted
in their region or under it; nobody else drafts or sees any. A 建议 is drawn only from items its drafter
can see (``visible_items_query``).

Stations, deputies, departments and regions (managed on the admin pages, printed, and seen in
the supervision figures):

| role          | manages                                                                     |
|---------------|-----------------------------------------------------------------------------|
| station_admin | their station, its deputies                                                 |
| supervisor    | every station whose region is theirs or lies under it, their deputies; the  |
|               | departments of those regions                                                |
| deputy        | nothing here (their own poster only: ``backend.admin.printing``); in the    |
|               | figures, their own                                                          |
| department    | nothing                                                                     |

An inactive user, or one whose scope column is empty, sees and manages nothing. Something that
exists but lies outside the user's scope answers exactly like something unknown (404), and the
refusal is written down (``item_access_denied``, ``admin_access_denied``) and committed before
the answer: the error handler rolls the request's transaction back.
"""

from __future__ import annotations

from flask import abort, request
from sqlalchemy import Select, false, select

from backend.audit import record_audit
from backend.extensions import db
from backend.items.refs import normalize_ref
from backend.models import Department, Deputy, Item, ItemForward, Proposal, Region, StaffRole, StaffUser, Station

ADMIN_ROLES = (StaffRole.STATION_ADMIN, StaffRole.SUPERVISOR)


def can_see_item(user: StaffUser, item: Item) -> bool:
    """True when ``user`` may open ``item`` (see the module table)."""
    if user is None or not user.is_active:
        return False
    if user.role == StaffRole.DEPUTY:
        return user.deputy_id is not None and item.deputy_id == user.deputy_id
    if user.role == StaffRole.STATION_ADMIN:
        return user.station_id is not None and item.station_id == user.station_id
    if user.role == StaffRole.SUPERVISOR:
        if user.region_id is None:
            return False
        return any(region.id == user.region_id for region in item.station.region.lineage())
    if user.role == StaffRole.DEPARTMENT:
        return (
            user.department_id is not None
            and db.session.scalar(
                _department_item_ids(user.department_id).where(ItemForward.item_id == item.id).limit(1)
            )
            is not None
        )
    return False


def _department_item_ids(department_id: int) -> Select:
    """``select`` of the ids of the items a department holds: forwarded to it, neither revoked nor returned."""
    return select(ItemForward.item_id).where(ItemForward.department_id == department_id, *ItemForward.live_conditions())


def region_subtree(region_id: int) -> Select:
    """``select`` of the ids of a region and every region under it (one recursive query)."""
    tree = select(Region.id).where(Region.id == region_id).cte("region_tree", recursive=True)
    below = select(Region.id).where(Region.parent_id == tree.c.id)
    tree = tree.union_all(below)
    return select(tree.c.id)


def visible_items_query(user: StaffUser) -> Select:
    """``select(Item)`` limited to the items ``user`` may see; add ordering and paging on top."""
    query = select(Item)
    if user is None or not user.is_active:
        return query.where(false())
    if user.role == StaffRole.DEPUTY and user.deputy_id is not None:
        return query.where(Item.deputy_id == user.deputy_id)
    if user.role == StaffRole.STATION_ADMIN and user.station_id is not None:
        return query.where(Item.station_id == user.station_id)
    if user.role == StaffRole.SUPERVISOR and user.region_id is not None:
        stations = select(Station.id).where(Station.region_id.in_(region_subtree(user.region_id)))
        return query.where(Item.station_id.in_(stations))
    if user.role == StaffRole.DEPARTMENT and user.department_id is not None:
        return query.where(Item.id.in_(_department_item_ids(user.department_id)))
    return query.where(false())


def find_item_for_staff(user: StaffUser, ref: object) -> Item | None:
    """The item with reference ``ref`` if ``user`` may see it, else None (unknown and hidden look alike).

    An item that exists but is hidden from ``user`` writes an ``item_access_denied`` audit
    row, kept through the 404 the route answers either way (``record_audit(keep=True)``).
    """
    normalized = normalize_ref(ref) if isinstance(ref, str) else None
    if normalized is None:
        return None
    item = db.session.scalar(select(Item).where(Item.ref == normalized))
    if item is None:
        return None
    if not can_see_item(user, item):
        record_audit(
            "item_access_denied",
            user=user,
            object_type="item",
            object_id=item.id,
            data={"ref": item.ref, "role": user.role.value if user is not None else None},
            keep=True,
        )
        return None
    return item


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
    """Write an ``admin_access_denied`` row kept through the error answer, then answer 404 as for something unknown."""
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
        keep=True,
    )
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


def can_see_region(user: StaffUser, region: Region) -> bool:
    """True when ``user`` may see the figures of ``region``: a supervisor's own region or one under it."""
    return can_manage_region(user, region)


def can_see_station(user: StaffUser, station: Station) -> bool:
    """True when ``user`` may see the figures of ``station``: the stations they manage."""
    return can_manage_station(user, station)


def can_see_deputy(user: StaffUser, deputy: Deputy) -> bool:
    """True when ``user`` may see a deputy's figures: the deputy themself, or who manages their station."""
    if user.role == StaffRole.DEPUTY:
        return user.is_active and user.deputy_id == deputy.id
    return can_see_station(user, deputy.station)


PROPOSAL_DRAFTERS = (StaffRole.DEPUTY, StaffRole.SUPERVISOR)

# Who binds a WeChat to hear of new items there: those who handle items (a deputy; a station's administrators for
# the items with no deputy, such as a topic code's messages: ``outbox.queue.handler_ids``).
WECHAT_BINDERS = (StaffRole.DEPUTY, StaffRole.STATION_ADMIN)


def can_see_proposal(user: StaffUser | None, proposal: Proposal) -> bool:
    """True when ``user`` may see and act on ``proposal``: the deputy's own, or a supervisor's region's."""
    if user is None or not user.is_active:
        return False
    if user.role == StaffRole.DEPUTY:
        return user.deputy_id is not None and proposal.deputy_id == user.deputy_id
    return can_manage_region(user, proposal.region)


def visible_proposals_query(user: StaffUser | None) -> Select:
    """``select(Proposal)`` limited to the proposals ``user`` may see (``can_see_proposal`` in SQL)."""
    query = select(Proposal)
    if user is None or not user.is_active:
        return query.where(false())
    if user.role == StaffRole.DEPUTY and user.deputy_id is not None:
        return query.where(Proposal.deputy_id == user.deputy_id)
    if user.role == StaffRole.SUPERVISOR and user.region_id is not None:
        return query.where(Proposal.region_id.in_(region_subtree(user.region_id)))
    return query.where(false())
