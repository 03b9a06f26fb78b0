"""Who among the staff may see which items.

| role          | sees                                                                  |
|---------------|-----------------------------------------------------------------------|
| deputy        | items addressed to their own deputy record (``Item.deputy_id``)       |
| station_admin | every item of their station                                           |
| supervisor    | items of stations whose region is theirs or lies under it (any depth) |
| department    | items forwarded to their department and still in its hands (neither   |
|               | revoked nor returned); without an account: the one item behind a link |

An inactive user, or one whose scope column is empty, sees nothing. ``can_see_item`` and
``visible_items_query`` apply the same rule, one to a loaded item, one in SQL.
"""

from __future__ import annotations

from sqlalchemy import Select, false, select

from backend.audit import record_audit
from backend.extensions import db
from backend.items.refs import normalize_ref
from backend.models import Item, ItemForward, Region, StaffRole, StaffUser, Station


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
    row. The route answers 404 either way, and must commit that row before answering: the
    UserError handler rolls the session back.
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
        )
        return None
    return item
