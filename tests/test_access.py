"""Who sees which item: deputies, station administrators, supervisors up and across the region tree, departments."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from backend.access import can_see_item, find_item_for_staff, visible_items_query
from backend.extensions import db
from backend.items.lifecycle import perform_action
from backend.items.refs import new_access_key, new_ref
from backend.models import (
    AuditEntry,
    Department,
    Item,
    ItemCategory,
    ItemChannel,
    Region,
    RegionLevel,
    StaffRole,
    StaffUser,
)


@pytest.fixture
def tree(app, create_station, create_deputy):
    """province → city → {county K (→ township T), sibling county J}; stations in T, in K, in J; an item per deputy."""
    province = Region(code="430000", name="湖南省", level=RegionLevel.PROVINCE)
    city = Region(code="430200", name="株洲市", level=RegionLevel.CITY, parent=province)
    county = Region(code="430225", name="炎陵县", level=RegionLevel.COUNTY, parent=city)
    township = Region(code="430225100", name="霞阳镇", level=RegionLevel.TOWNSHIP, parent=county)
    sibling = Region(code="430224", name="茶陵县", level=RegionLevel.COUNTY, parent=city)
    db.session.add_all([province, city, county, township, sibling])
    db.session.commit()

    st_town = create_station(name="霞阳镇联络站", region=township)
    st_county = create_station(name="县城社区联络站", region=county)
    st_sibling = create_station(name="茶陵某镇联络站", region=sibling)
    d1 = create_deputy(name="张秀英", station=st_town)
    d2 = create_deputy(name="李建国", station=st_town)
    d3 = create_deputy(name="陈县城", station=st_county)
    d4 = create_deputy(name="刘茶陵", station=st_sibling)

    def item(deputy):
        it = Item(
            ref=new_ref(),
            access_key=new_access_key(),
            station=deputy.station,
            deputy=deputy,
            channel=ItemChannel.QR_H5,
            category=ItemCategory.OTHER,
            body="请关注学校门口交通安全。",
        )
        db.session.add(it)
        return it

    items = {"d1": item(d1), "d2": item(d2), "d3": item(d3), "d4": item(d4)}
    department = Department(name="炎陵县交通运输局", region=county)

    def user(name, role, **scope):
        u = StaffUser(username=name, password_hash="x", role=role, **scope)
        db.session.add(u)
        return u

    users = {
        "deputy_d1": user("u1", StaffRole.DEPUTY, deputy=d1),
        "deputy_d4": user("u4", StaffRole.DEPUTY, deputy=d4),
        "deputy_unbound": user("u0", StaffRole.DEPUTY),
        "deputy_inactive": user("ux", StaffRole.DEPUTY, deputy=d2, is_active=False),
        "admin_town": user("a1", StaffRole.STATION_ADMIN, station=st_town),
        "admin_sibling": user("a2", StaffRole.STATION_ADMIN, station=st_sibling),
        "sup_province": user("s0", StaffRole.SUPERVISOR, region=province),
        "sup_city": user("s1", StaffRole.SUPERVISOR, region=city),
        "sup_county": user("s2", StaffRole.SUPERVISOR, region=county),
        "sup_township": user("s3", StaffRole.SUPERVISOR, region=township),
        "sup_sibling": user("s4", StaffRole.SUPERVISOR, region=sibling),
        "sup_unscoped": user("s5", StaffRole.SUPERVISOR),
        "department": user("dp", StaffRole.DEPARTMENT, department=department),
    }
    db.session.add(department)
    db.session.commit()
    return SimpleNamespace(items=items, users=users, d2=d2)


EXPECTED = {
    "deputy_d1": {"d1"},
    "deputy_d4": {"d4"},
    "deputy_unbound": set(),
    "deputy_inactive": set(),
    "admin_town": {"d1", "d2"},
    "admin_sibling": {"d4"},
    "sup_province": {"d1", "d2", "d3", "d4"},
    "sup_city": {"d1", "d2", "d3", "d4"},
    "sup_county": {"d1", "d2", "d3"},  # its own station and the township's below it
    "sup_township": {"d1", "d2"},
    "sup_sibling": {"d4"},
    "sup_unscoped": set(),
    "department": set(),
}


@pytest.mark.parametrize("who", list(EXPECTED))
def test_visibility_per_role_and_scope(tree, who):
    user = tree.users[who]
    by_id = {item.id: name for name, item in tree.items.items()}
    in_query = {by_id[i.id] for i in db.session.scalars(visible_items_query(user))}
    by_check = {name for name, item in tree.items.items() if can_see_item(user, item)}
    assert in_query == by_check == EXPECTED[who]


def test_visible_query_composes_with_filters_and_counts(tree):
    query = visible_items_query(tree.users["sup_county"])
    counted = db.session.scalar(select(func.count()).select_from(query.subquery()))
    assert counted == 3
    only_d3 = db.session.scalars(query.where(Item.deputy_id == tree.items["d3"].deputy_id)).all()
    assert [i.id for i in only_d3] == [tree.items["d3"].id]


def test_find_item_for_staff_visible_hidden_unknown(tree):
    user = tree.users["deputy_d1"]
    mine, theirs = tree.items["d1"], tree.items["d2"]
    assert find_item_for_staff(user, f"{mine.ref[:4]}-{mine.ref[4:].lower()}") is mine
    assert db.session.scalar(select(func.count(AuditEntry.id))) == 0

    assert find_item_for_staff(user, theirs.ref) is None
    (audit,) = db.session.scalars(select(AuditEntry)).all()
    assert audit.action == "item_access_denied" and audit.staff_user_id == user.id
    assert audit.object_type == "item" and audit.object_id == str(theirs.id)

    for unknown in ("ZZZZZZZZ", "not-a-ref", None, 42):
        assert find_item_for_staff(user, unknown) is None
    assert db.session.scalar(select(func.count(AuditEntry.id))) == 1


def test_department_user_never_finds_an_item_by_reference(tree):
    assert find_item_for_staff(tree.users["department"], tree.items["d1"].ref) is None
    assert db.session.scalars(select(AuditEntry.action)).all() == ["item_access_denied"]


def test_reassigning_moves_visibility(tree):
    item = tree.items["d1"]
    perform_action(item, tree.users["deputy_d1"], "reassign", deputy_id=tree.d2.id, text="该片区由李代表联系。")
    assert not can_see_item(tree.users["deputy_d1"], item)
    assert can_see_item(tree.users["admin_town"], item)
