"""The inbox: overdue first, then reopened, new, in progress; counts; search; paging; who sees what."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import event

from backend.access import visible_items_query
from backend.extensions import db
from backend.items.inbox import GROUPS, count_groups, first_page_shares, inbox_page
from backend.items.refs import format_ref
from backend.models import Item, ItemStatus, RegionLevel, StaffRole, utcnow
from tests.factories import DeputyFactory, RegionFactory, StaffUserFactory, StationFactory, make_item
from tests.helpers import api_token, login


def put(item, status, *, due_in=None, paused_ago=None, reopen_count=0, held=False):
    """Put an item straight into a state (the inbox reads columns; the lifecycle is tested elsewhere)."""
    now = utcnow()
    item.status = status
    if due_in is not None:
        item.due_at = now + due_in
    if paused_ago is not None:
        item.paused_at = now - paused_ago
    item.reopen_count = reopen_count
    item.is_held = held
    db.session.commit()
    return item


@pytest.fixture
def items(world):
    """Items of deputy d1 in every group, a few of d2 (same station), of d3 (station B) and d4 (other county)."""
    d1 = world.d1
    made = {
        "late_new": put(
            make_item(d1, body="最早的超期件", created_ago=timedelta(days=5)),
            ItemStatus.SUBMITTED,
            due_in=-timedelta(days=3),
        ),
        "late_accepted": put(make_item(d1, body="刚超期的件"), ItemStatus.ACCEPTED, due_in=-timedelta(hours=1)),
        "late_paused": put(
            make_item(d1, body="暂停前已超期"),
            ItemStatus.FORWARDED,
            due_in=-timedelta(days=1),
            paused_ago=timedelta(hours=2),
        ),
        "reopened": put(
            make_item(d1, body="群众不满意退回的件"), ItemStatus.ACCEPTED, due_in=timedelta(days=15), reopen_count=1
        ),
        "new_old": put(make_item(d1, body="较早的新留言", created_ago=timedelta(hours=5)), ItemStatus.SUBMITTED),
        "new_young": put(
            make_item(d1, body="刚到的新留言\n第二行", created_ago=timedelta(minutes=5)), ItemStatus.SUBMITTED
        ),
        "paused_in_time": put(
            make_item(d1, body="暂停中未超期"),
            ItemStatus.ANSWERED,
            due_in=-timedelta(hours=1),
            paused_ago=timedelta(days=1),  # paused a day ago, when it was still in time
        ),
        "forwarded": put(make_item(d1, body="已交办的件"), ItemStatus.FORWARDED, due_in=timedelta(days=10)),
        "answered": put(make_item(d1, body="已答复的件"), ItemStatus.ANSWERED, due_in=timedelta(days=20)),
        "resolved": put(make_item(d1, body="已办结的件"), ItemStatus.RESOLVED, due_in=-timedelta(days=30)),
        "declined": put(make_item(d1, body="不予受理的件"), ItemStatus.DECLINED, due_in=-timedelta(days=30)),
        "held": put(make_item(d1, body="待审核的件"), ItemStatus.SUBMITTED, held=True),
        "d2_new": put(make_item(world.d2, body="李代表的新留言"), ItemStatus.SUBMITTED),
        "d3_new": put(make_item(world.d3, body="沔渡镇的新留言"), ItemStatus.SUBMITTED),
        "d4_new": put(make_item(world.d4, body="南山区的新留言"), ItemStatus.SUBMITTED),
    }
    return made


TODO_ORDER = [
    "late_new",
    "late_paused",
    "late_accepted",
    "reopened",
    "new_young",  # new items newest first: the one WeChat just announced is on top
    "new_old",
    "paused_in_time",
    "forwarded",
    "answered",
]


def names_of(page, items) -> list[str]:
    by_id = {item.id: name for name, item in items.items()}
    return [by_id[row.item.id] for row in page.rows]


def test_todo_order_overdue_then_reopened_then_new_then_in_progress(world, items):
    page = inbox_page(world.users["deputy"])
    assert names_of(page, items) == TODO_ORDER
    groups = [row.group for row in page.rows]
    assert groups == ["overdue"] * 3 + ["reopened"] + ["new"] * 2 + ["in_progress"] * 3
    assert [row.is_overdue for row in page.rows] == [True] * 3 + [False] * 6


def test_counts_per_group(world, items):
    counts = count_groups(world.users["deputy"])
    assert counts == {
        "overdue": 3,
        "reopened": 1,
        "new": 2,
        "in_progress": 3,
        "resolved": 1,
        "closed": 1,
        "todo": 9,
    }


def test_paging_cuts_across_groups(world, items):
    """Three overdue, one reopened and two new items do not fit a page of four: page 1 shares itself out (the
    reopened item, two overdue, the newest new one), page 2 goes on with the rest of them, then the ones in hand."""
    user = world.users["deputy"]
    pages = [inbox_page(user, page=n, per_page=4) for n in (1, 2, 3)]
    assert [names_of(p, items) for p in pages] == [
        ["late_new", "late_paused", "reopened", "new_young"],
        ["late_accepted", "new_old", "paused_in_time", "forwarded"],
        ["answered"],
    ]
    assert pages[0].total == 9 and pages[0].pages == 3
    assert pages[0].has_next and not pages[2].has_next
    assert inbox_page(user, page=9, per_page=4).rows == []


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ("overdue", ["late_new", "late_paused", "late_accepted"]),
        ("new", ["new_young", "new_old"]),
        ("in_progress", ["paused_in_time", "forwarded", "answered"]),
        ("resolved", ["resolved"]),
        ("closed", ["declined"]),
        ("nonsense", TODO_ORDER),
    ],
)
def test_one_group(world, items, state, expected):
    assert names_of(inbox_page(world.users["deputy"], state=state), items) == expected


def test_search_by_reference_in_any_case_and_hyphen(world, items):
    user = world.users["deputy"]
    ref = items["forwarded"].ref
    for typed in (ref, ref.lower(), format_ref(ref).lower(), f" {ref[:4]} {ref[4:]} "):
        assert names_of(inbox_page(user, query=typed), items) == ["forwarded"], typed
    assert names_of(inbox_page(user, query=items["d2_new"].ref), items) == []  # another deputy's


def test_search_by_text_includes_closed_items_newest_first(world, items):
    page = inbox_page(world.users["deputy"], query="已")
    assert set(names_of(page, items)) == {"late_paused", "forwarded", "answered", "resolved"}
    assert names_of(inbox_page(world.users["deputy"], query="100%_"), items) == []  # LIKE wildcards are literal


def test_deputy_sees_only_their_own_items_and_not_held_ones(world, items):
    every = (
        inbox_page(world.users["deputy"], per_page=50).rows + inbox_page(world.users["deputy"], state="resolved").rows
    )
    names = {row.item.body for row in every}
    assert "待审核的件" not in names and "李代表的新留言" not in names


def test_station_admin_sees_the_station_supervisor_the_region(world, items):
    admin = names_of(inbox_page(world.users["station_admin"], state="new"), items)
    assert set(admin) == {"new_old", "new_young", "held", "d2_new"}
    supervisor = names_of(inbox_page(world.users["supervisor"], state="new"), items)
    assert set(supervisor) == {"new_old", "new_young", "held", "d2_new", "d3_new"}
    far = names_of(inbox_page(world.users["supervisor_far"], state="new"), items)
    assert far == ["d4_new"]
    assert count_groups(world.users["department"])["todo"] == 0


def test_queries_per_page_do_not_grow_with_the_rows(app, world, items):
    user = world.users["station_admin"]

    def statements(**kwargs) -> int:
        seen = []
        listener = lambda *args: seen.append(args[2])  # noqa: E731
        event.listen(db.engine, "before_cursor_execute", listener)
        try:
            inbox_page(user, **kwargs)
        finally:
            event.remove(db.engine, "before_cursor_execute", listener)
        # Leave out SQLite's BEGIN and the user re-read after the builders' commits.
        return len([sql for sql in seen if sql.startswith("SELECT") and "FROM staff_users" not in sql])

    before = statements(per_page=50)
    for n in range(15):
        make_item(world.d2, body=f"第{n}件新留言")
    assert statements(per_page=50) == before  # one query per group touched (and its deputies), never per row
    assert before <= 3 + 2 * 4  # two counts; per group its rows and their deputies; the page's marks


# -- the page ---------------------------------------------------------------------------------


def test_inbox_page(app, world, items):
    client = login(app, "deputy_d1")
    response = client.get("/staff/inbox")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    html = response.text
    refs = re.findall(r'href="/staff/items/([0-9A-Z]{8})"', html)
    assert refs == [items[name].ref for name in TODO_ORDER]
    assert re.search(r'id="count-overdue">\s*<span class="count-number">3</span>', html)
    assert re.search(r'id="count-reopened">\s*<span class="count-number">1</span>', html)
    assert html.count("inbox-row group-overdue overdue") == 3
    assert "超期3天" in html and "刚到的新留言" in html and "第二行" not in html  # first line only
    assert "城乡建设" in html and "5分钟前" in html and "期限" in html


def test_inbox_page_search_and_filter(app, world, items):
    client = login(app, "deputy_d1")
    ref = items["answered"].ref
    found = client.get(f"/staff/inbox?q={ref[:4].lower()}-{ref[4:].lower()}").text
    assert re.findall(r'href="/staff/items/([0-9A-Z]{8})"', found) == [ref]
    resolved = client.get("/staff/inbox?state=resolved").text
    assert re.findall(r'href="/staff/items/([0-9A-Z]{8})"', resolved) == [items["resolved"].ref]
    nothing = client.get("/staff/inbox?q=没有这样的留言").text
    assert "没有找到相符的留言" in nothing


def test_inbox_pages_link_to_each_other(app, world, items):
    for n in range(25):
        make_item(world.d1, body=f"第{n}件")
    client = login(app, "deputy_d1")
    first = client.get("/staff/inbox").text
    assert "第1/2页" in first and "page=2" in first
    # 3 overdue, 1 reopened and 27 new share page 1: 16 of the new on it, the 11 oldest named as further on.
    assert re.search(r'id="inbox-more">后面几页还有：<a href="/staff/inbox\?state=new">新留言11件</a>。</p>', first)
    second = client.get("/staff/inbox?page=2").text
    assert "第2/2页" in second and len(re.findall(r'href="/staff/items/', second)) == 34 - 20


def test_a_brand_new_item_is_on_page_1_of_a_deputy_with_a_long_overdue_list(app, world):
    """Brief ui14 part 2: 30 overdue items and a few in hand make three pages; a message that arrives now is on
    page 1 (the newest of 新留言), after the most overdue ones, and page 2 goes on with the rest of the overdue."""
    overdue = [
        put(
            make_item(world.d1, body=f"超期件{n}", created_ago=timedelta(days=40 - n)),
            ItemStatus.ACCEPTED,
            due_in=-timedelta(days=30 - n),  # 超期件0 the most overdue
        )
        for n in range(30)
    ]
    in_hand = [
        put(make_item(world.d1, body=f"办理中{n}"), ItemStatus.FORWARDED, due_in=timedelta(days=5)) for n in range(5)
    ]
    older_new = put(make_item(world.d1, body="昨天的新留言", created_ago=timedelta(days=1)), ItemStatus.SUBMITTED)
    brand_new = make_item(world.d1, body="刚刚提交的新留言")
    user = world.users["deputy"]

    first = inbox_page(user)
    assert first.total == 37 and first.pages == 2
    refs = [row.item.ref for row in first.rows]
    assert refs == [item.ref for item in overdue[:18]] + [brand_new.ref, older_new.ref]
    assert [row.group for row in first.rows] == ["overdue"] * 18 + ["new"] * 2
    second = inbox_page(user, page=2)
    assert [row.item.ref for row in second.rows] == [item.ref for item in overdue[18:] + in_hand[:8]]
    assert {row.item.ref for row in first.rows + second.rows} == {
        i.ref for i in overdue + in_hand + [older_new, brand_new]
    }
    assert inbox_page(user, page=3).rows == []

    # The page the deputy opens from WeChat's notice: the new message on it, with the overdue ones above it.
    html = login(app, "deputy_d1").get("/staff/inbox").text
    page_refs = re.findall(r'href="/staff/items/([0-9A-Z]{8})"', html)
    assert page_refs[0] == overdue[0].ref and brand_new.ref in page_refs and len(page_refs) == 20
    assert "超期的和新留言在前" in html and "第1/2页" in html
    # … and what else waits is named, with a link to its group.
    more = re.search(r'<p class="hint" id="inbox-more">(.*?)</p>', html, re.S).group(1)
    assert re.sub(r"<[^>]+>", "", more) == "后面几页还有：已超期12件。"
    assert 'href="/staff/inbox?state=overdue"' in more
    assert 'id="inbox-more"' not in login(app, "deputy_d1").get("/staff/inbox?page=2").text


@pytest.mark.parametrize(
    ("counts", "per_page", "shares"),
    [
        ({"overdue": 3, "reopened": 1, "new": 2}, 20, {"overdue": 3, "reopened": 1, "new": 2}),  # all fit
        ({"overdue": 30, "reopened": 0, "new": 2}, 20, {"overdue": 18, "reopened": 0, "new": 2}),
        ({"overdue": 2, "reopened": 0, "new": 40}, 20, {"overdue": 2, "reopened": 0, "new": 18}),
        ({"overdue": 30, "reopened": 30, "new": 30}, 20, {"overdue": 7, "reopened": 7, "new": 6}),
        ({"overdue": 30, "reopened": 1, "new": 30}, 20, {"overdue": 10, "reopened": 1, "new": 9}),
        ({"overdue": 0, "reopened": 0, "new": 0}, 20, {"overdue": 0, "reopened": 0, "new": 0}),
        ({"overdue": 5, "reopened": 5, "new": 5}, 1, {"overdue": 1, "reopened": 0, "new": 0}),
    ],
)
def test_page_1_is_shared_among_what_waits_on_the_deputy(counts, per_page, shares):
    assert first_page_shares(counts, per_page) == shares
    assert sum(shares.values()) == min(per_page, sum(counts.values()))


# -- the API ----------------------------------------------------------------------------------


def test_api_inbox_same_order_counts_and_paging(app, world, items):
    headers = api_token(app, "deputy_d1")
    client = app.test_client()
    first = client.get("/api/v1/inbox?per_page=5", headers=headers)
    assert first.status_code == 200
    assert first.headers["Cache-Control"] == "no-store"
    body = first.json
    assert body["counts"]["overdue"] == 3 and body["counts"]["todo"] == 9
    first_page = ["late_new", "late_paused", "reopened", "new_young", "new_old"]  # the new ones on page 1 too
    assert [row["ref"] for row in body["items"]] == [items[n].ref for n in first_page]
    assert body["items"][0]["is_overdue"] is True and body["items"][0]["group"] == "overdue"
    assert body["total"] == 9 and body["pages"] == 2 and body["has_next"] is True
    second = client.get("/api/v1/inbox?per_page=5&page=2", headers=headers).json
    second_page = ["late_accepted", "paused_in_time", "forwarded", "answered"]
    assert [row["ref"] for row in second["items"]] == [items[n].ref for n in second_page]
    row = second["items"][0]
    assert set(row) >= {"ref", "category_label", "first_line", "age", "due_at", "status_label"}

    search = client.get(f"/api/v1/inbox?q={items['declined'].ref.lower()}", headers=headers).json
    assert [r["ref"] for r in search["items"]] == [items["declined"].ref]


def test_api_inbox_needs_a_token_and_a_handling_role(app, world):
    client = app.test_client()
    assert client.get("/api/v1/inbox").status_code == 401
    # A department's account has an inbox of its own (empty here: nothing forwarded to it).
    department = client.get("/api/v1/inbox", headers=api_token(app, "dept_user"))
    assert department.status_code == 200 and department.json["total"] == 0


def test_a_supervisors_inbox_is_exactly_the_items_of_their_regions_stations(app, world, items):
    """The inbox names the region's stations by id (``visible_to``): the same items as ``visible_items_query``,
    stations of the regions below included, nothing of a sibling region."""
    township = RegionFactory(code="430225100", name="霞阳镇", level=RegionLevel.TOWNSHIP, parent=world.county)
    station_t = StationFactory(name="霞阳镇城东社区联络站", region=township)
    d5 = DeputyFactory(name="罗开华", station=station_t)
    items["t_new"] = put(make_item(d5, body="城东社区的新留言"), ItemStatus.SUBMITTED)
    items["t_late"] = put(make_item(d5, body="城东社区的超期件"), ItemStatus.ACCEPTED, due_in=-timedelta(days=2))
    items["t_resolved"] = put(make_item(d5, body="城东社区的办结件"), ItemStatus.RESOLVED)
    sup_township = StaffUserFactory(username="sup_township", role=StaffRole.SUPERVISOR, region=township)
    db.session.commit()

    def everything(user) -> set[str]:
        names = set()
        for state in GROUPS:
            names |= set(names_of(inbox_page(user, state=state, per_page=100), items))
        return names

    for key, expected in (
        ("supervisor", {k for k in items if k != "d4_new"}),
        ("supervisor_far", {"d4_new"}),
    ):
        user = world.users[key]
        visible = set(db.session.scalars(visible_items_query(user).with_only_columns(Item.id)))
        assert everything(user) == expected == {n for n, item in items.items() if item.id in visible}, key
    assert everything(sup_township) == {"t_new", "t_late", "t_resolved"}
    counts = count_groups(sup_township)
    assert (counts["new"], counts["overdue"], counts["resolved"], counts["todo"]) == (1, 1, 1, 2)
    assert [row.item.id for row in inbox_page(sup_township, query="城东社区").rows] == [
        items[k].id for k in ("t_resolved", "t_late", "t_new")
    ]
    # A region without stations: nothing, and no error.
    empty = RegionFactory(code="430225101", name="空镇", level=RegionLevel.TOWNSHIP, parent=world.county)
    sup_empty = StaffUserFactory(username="sup_empty", role=StaffRole.SUPERVISOR, region=empty)
    db.session.commit()
    assert everything(sup_empty) == set() and count_groups(sup_empty)["todo"] == 0


@pytest.mark.parametrize(("username", "index"), [("deputy", "deputy"), ("supervisor", "station")])
def test_open_groups_are_counted_and_picked_from_the_index_alone(app, world, items, username, index):
    """At province scale a county holds tens of thousands of open items: the open groups' count and each stretch's
    pick of ids must be answerable from ``ix_items_<index>_open_groups`` alone, never reading each item's row (which
    made the county supervisor's inbox take a second). PostgreSQL only (SQLite has no INCLUDE). On a test's few rows
    the planner's choice among indexes is a toss-up, so each statement is planned, in a transaction rolled back,
    with that index and the primary key the only ones left and the table avoided where there is any other way,
    after a VACUUM (the visibility map an index-only scan needs): an index lacking a column the statement reads
    would show as an Index Scan, not an Index Only Scan."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only: INCLUDE columns")
    seen = []
    listener = lambda conn, cursor, sql, params, *rest: seen.append((sql, params))  # noqa: E731
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        page = inbox_page(world.users[username])
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    assert page.rows[0].group == "overdue"
    counted = [pair for pair in seen if " AS grp" in pair[0]]
    picked = [pair for pair in seen if "items.id IN (SELECT items.id" in pair[0]]  # a stretch: ids, then rows
    assert len(counted) == 1 and picked, [sql for sql, _ in seen]
    db.session.commit()
    kept = f"ix_items_{index}_open_groups"
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE items")
    with db.engine.connect() as conn:
        others = (
            conn.exec_driver_sql(
                "SELECT indexname FROM pg_indexes WHERE tablename = 'items' AND left(indexname, 3) = 'ix_'"
            )
            .scalars()
            .all()
        )
        for name in [name for name in others if name != kept]:
            conn.exec_driver_sql(f'DROP INDEX "{name}"')
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        conn.exec_driver_sql("SET LOCAL enable_bitmapscan = off")
        for sql, params in counted + picked:
            plan = " ".join(row[0] for row in conn.exec_driver_sql("EXPLAIN " + sql, params))
            assert f"Index Only Scan using {kept}" in plan, plan
        conn.rollback()
