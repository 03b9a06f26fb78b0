"""The province bench's item statement (``bench.province.chunk_sql``) on PostgreSQL: the rows it makes have the
shape its docstring and bench/README.md describe, with foreign keys checked (the build itself skips them)."""

from __future__ import annotations

import time
from collections import Counter

import pytest
from sqlalchemy import text

from backend.extensions import db
from bench import province
from tests.conftest import PG_URL
from tests.factories import county_world

pytestmark = pytest.mark.skipif(not PG_URL, reason="the province bench runs on PostgreSQL only")

ITEMS = 2_000  # two whole runs of g % 1000, so every share below is exact
EXPORT_ITEMS = 300


def _make(world) -> tuple[province.Plan, list[int]]:
    """Items 0–1999 of a province spread over the county world's deputies, written by two statements; the plan
    and the (items, events, forwards) the statements said they made."""
    demo, others = world.d1, [world.d2, world.d3, world.d4]
    county_of = {world.station_a.id: 0, world.station_b.id: 0, world.station_c.id: 1}
    departments = {0: [world.department.id, world.department2.id], 1: [world.far_department.id]}
    ids = [
        db.session.execute(text(f"SELECT COALESCE(max(id), 0) + 1 FROM {t}")).scalar()
        for t in ("items", "item_events", "item_forwards")
    ]
    plan = province.Plan(
        total=ITEMS,
        export_items=EXPORT_ITEMS,
        first_item=ids[0],
        ids={"event": ids[1], "forward": ids[2], "user": world.users["station_admin"].id},
        now=int(time.time()),
        export_start=int(time.time()) - 40 * 86400,
        deputies=len(others),
        county_deputies=2,
    )
    db.session.execute(
        text(
            f"""CREATE TEMP TABLE {province.SPREAD_TABLE} (k int PRIMARY KEY, deputy_id int, station_id int,
                county int, departments int[]) ON COMMIT DROP"""
        )
    )
    rows = [(k, d) for k, d in enumerate(others)] + [(province.SPREAD_DEMO_DEPUTY, demo), (-2, demo), (-3, world.d2)]
    for k, deputy in rows:
        county = county_of[deputy.station_id]
        db.session.execute(
            text(f"INSERT INTO {province.SPREAD_TABLE} VALUES (:k, :d, :s, :c, :deps)"),
            {"k": k, "d": deputy.id, "s": deputy.station_id, "c": county, "deps": departments[county]},
        )
    made = [
        db.session.execute(text(province.chunk_sql(plan, first, last))).one()
        for first, last in ((0, ITEMS // 2 - 1), (ITEMS // 2, ITEMS - 1))
    ]
    return plan, [sum(counts[k] for counts in made) for k in range(3)]


def _rows(query: str, **params) -> list:
    return db.session.execute(text(query), params).mappings().all()


def test_the_province_statement_makes_the_items_events_and_forwards_its_rules_describe(app):
    world = county_world()
    plan, made = _make(world)
    items = _rows("SELECT * FROM items WHERE id >= :first ORDER BY id", first=plan.first_item)
    assert len(items) == ITEMS
    by_id = {item["id"]: item for item in items}
    statuses = Counter(item["status"] for item in items)
    assert statuses == {
        "submitted": 40,
        "accepted": 60,
        "forwarded": 60,
        "answered": 40,
        "declined": 40,
        "duplicate": 20,
        "resolved": 1740,
    }
    now = plan.now
    open_items = [i for i in items if i["status"] in province.OPEN_STATUSES]
    overdue = [i for i in open_items if i["due_at"].timestamp() < now]
    assert all(now - 3 * 86400 < i["due_at"].timestamp() <= now + 7 * 86400 for i in open_items)
    assert len(overdue) == len(open_items) * 3 // 10  # (g / 100) % 10 < 3: three tenths, "a third" in the README
    assert all(i["rated_at"] is None or i["rated_at"].timestamp() <= now for i in items)  # nothing in the future
    export = items[:EXPORT_ITEMS]
    assert {i["deputy_id"] for i in export} == {world.d1.id, world.d2.id}  # the demo county's deputies, in turn
    assert all(0 <= i["created_at"].timestamp() - plan.export_start < plan.export_span for i in export)
    assert {i["deputy_id"] for i in items[EXPORT_ITEMS:] if (i["id"] - plan.first_item) % 1000 == 0} == {world.d1.id}
    assert sum(i["channel"] == "in_person" for i in items) == ITEMS // 20
    assert sum(i["contact_phone"] != "" for i in items) == ITEMS // 2
    assert len({i["ref"] for i in items}) == ITEMS
    rated = [i for i in items if i["status"] == "resolved" and i["satisfaction"]]
    assert len(rated) == 51 * 20  # g % 5 < 3 among g % 100 ≥ 13: 51 in 87, the README's "three in five"
    reopened = [i for i in items if i["reopen_count"]]
    assert reopened and all(i["satisfaction"] == "unsatisfied" and i["status"] == "accepted" for i in reopened)

    forwards = _rows("SELECT * FROM item_forwards WHERE id >= :first", first=plan.ids["forward"])
    forwarded = {f["item_id"] for f in forwards}
    assert len(forwarded) == len(forwards)
    assert {i["id"] for i in items if i["status"] == "forwarded"} <= forwarded
    answered_or_resolved = [i for i in items if i["status"] in ("answered", "resolved")]
    assert sum(i["id"] in forwarded for i in answered_or_resolved) == len(answered_or_resolved) * 3 // 10
    assert forwarded <= {i["id"] for i in items if i["status"] in ("forwarded", "answered", "resolved")}
    for f in forwards:  # the department is the item's county's; an answer or a return only once the item moved on
        station = by_id[f["item_id"]]["station_id"]
        county_departments = (
            {world.far_department.id} if station == world.station_c.id else {world.department.id, world.department2.id}
        )
        assert f["department_id"] in county_departments
        assert (f["answered_at"] or f["returned_at"]) is None or by_id[f["item_id"]]["status"] != "forwarded"

    events = _rows("SELECT * FROM item_events WHERE item_id >= :first ORDER BY item_id, id", first=plan.first_item)
    assert 4.5 < len(events) / ITEMS < 5.0  # about 4.7 an item
    assert made == [len(items), len(events), len(forwards)]  # the build's counts are the statements' own
    per_item: dict[int, list] = {}
    for event in events:
        per_item.setdefault(event["item_id"], []).append(event)
    assert set(per_item) == set(by_id)
    for item_id, item_events in per_item.items():
        item, g = by_id[item_id], item_id - plan.first_item
        base = plan.ids["event"] + g * province.EVENTS_PER_ITEM
        assert [e["id"] for e in item_events] == list(range(base, base + len(item_events)))  # numbered in order
        kinds = [e["kind"] for e in item_events]
        assert item_events[0]["kind"] == "submitted" and item_events[0]["created_at"] == item["created_at"]
        moments = {e["kind"]: e["created_at"] for e in item_events}
        for kind, column in (
            ("accepted", "accepted_at"),
            ("replied", "first_answered_at"),
            ("resolved", "resolved_at"),
            ("rated", "rated_at"),
        ):
            assert moments.get(kind) == item[column], (kind, item)
        assert ("forwarded" in kinds) == (item_id in forwarded)
        assert ("declined" in kinds) == (item["status"] == "declined")
        assert ("reopened" in kinds) == bool(item["reopen_count"])
        assert all(e["actor_user_id"] == plan.ids["user"] for e in item_events if e["actor_kind"] == "staff")
    db.session.rollback()
