"""Who sees which item: deputies, station administrators, supervisors up and across the region tree, departments."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from backend.access import can_see_item, find_item_for_staff, visible_items_query
from backend.extensions import db
from backend.items.lifecycle import perform_action
from backend.models import (
    AuditEntry,
    Item,
    ItemCategory,
    RegionLevel,
    StaffRole,
)
from tests.factories import (
    CountyFactory,
    DepartmentFactory,
    DeputyFactory,
    ItemFactory,
    RegionFactory,
    StationFactory,
    staff_users,
)


@pytest.fixture
def tree(app):
    """province → city → {county K (→ township T), sibling county J}; stations in T, in K, in J; an item per deputy."""
    county = CountyFactory()
    city, province = county.parent, county.parent.parent
    township = RegionFactory(code="430225100", name="霞阳镇", level=RegionLevel.TOWNSHIP, parent=county)
    sibling = CountyFactory(code="430224", name="茶陵县")
    st_town = StationFactory(name="霞阳镇联络站", region=township)
    st_county = StationFactory(name="县城社区联络站", region=county)
    st_sibling = StationFactory(name="茶陵某镇联络站", region=sibling)
    d1 = DeputyFactory(name="张秀英", station=st_town)
    d2 = DeputyFactory(name="李建国", station=st_town)
    d3 = DeputyFactory(name="陈县城", station=st_county)
    d4 = DeputyFactory(name="刘茶陵", station=st_sibling)
    items = {
        key: ItemFactory(deputy=deputy, category=ItemCategory.OTHER, body="请关注学校门口交通安全。")
        for key, deputy in (("d1", d1), ("d2", d2), ("d3", d3), ("d4", d4))
    }
    department = DepartmentFactory(name="炎陵县交通运输局", region=county)
    users = staff_users(
        ("deputy_d1", "u1", StaffRole.DEPUTY, {"deputy": d1}),
        ("deputy_d4", "u4", StaffRole.DEPUTY, {"deputy": d4}),
        ("deputy_unbound", "u0", StaffRole.DEPUTY, {}),
        ("deputy_inactive", "ux", StaffRole.DEPUTY, {"deputy": d2, "is_active": False}),
        ("admin_town", "a1", StaffRole.STATION_ADMIN, {"station": st_town}),
        ("admin_sibling", "a2", StaffRole.STATION_ADMIN, {"station": st_sibling}),
        ("sup_province", "s0", StaffRole.SUPERVISOR, {"region": province}),
        ("sup_city", "s1", StaffRole.SUPERVISOR, {"region": city}),
        ("sup_county", "s2", StaffRole.SUPERVISOR, {"region": county}),
        ("sup_township", "s3", StaffRole.SUPERVISOR, {"region": township}),
        ("sup_sibling", "s4", StaffRole.SUPERVISOR, {"region": sibling}),
        ("sup_unscoped", "s5", StaffRole.SUPERVISOR, {}),
        ("department", "dp", StaffRole.DEPARTMENT, {"department": department}),
    )
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
