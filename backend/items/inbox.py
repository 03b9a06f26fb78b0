"""The staff inbox: what is overdue first, then what came back from the resident, then new, then in hand.

Each item falls in exactly one group, decided in SQL by ``group_expression`` (and in
Python by ``group_of``, the same rule for a loaded item):

| group       | items                                                                      | order                   |
|-------------|----------------------------------------------------------------------------|-------------------------|
| overdue     | open (submitted … answered) and past due (``deadlines.overdue_condition``) | most overdue first      |
| reopened    | not overdue, status accepted after the resident rated 不满意                | soonest due first       |
| new         | not overdue, submitted (未受理)                                             | newest first            |
| in_progress | not overdue, accepted / forwarded / answered (not reopened)                | soonest due first       |
| resolved    | resolved                                                                   | newest first            |
| closed      | declined, duplicate or withdrawn by the resident                           | newest first            |

New items come newest first: the deputy who opens the inbox from WeChat's "新留言" notice finds
the item it announced at the top of 新留言; the oldest new item is the nearest its deadline, and
once past it it is overdue and moves to the top of the inbox.

The default view ("todo") lists the four open groups in that order, with one rule for the
first page (``first_page_shares``): the three groups that wait on the deputy — overdue,
reopened, new — each get a share of page 1, so that a long overdue list never pushes what
is new (or reopened) to page 2, where nobody looks. When they all fit, page 1 is simply the
groups in order. When they do not, page 1 shows the head of each (the most overdue, the
reopened soonest due, the newest new), still in that order, and page 2 goes on with the rest
of the overdue, reopened and new items, then the ones in hand. With 20 a page, 30 overdue
and 5 new items: page 1 is 15 overdue and the 5 new; page 2 the other 15 overdue.

A page is cut from the groups' counts and each stretch of a group is read with its own
``ORDER BY … OFFSET … LIMIT``, so that a page never sorts more than the groups it touches;
every query stays within ``visible_items_query(user)`` and uses the indexes on ``items``
(``deputy_id, status, created_at`` and the open items' ``deputy_id, due_at`` for a deputy; ``station_id,
created_at`` and the open items' ``station_id, due_at`` for a station or region; the open ones carry every column
the open groups filter and sort on, so that those are counted and picked from the index alone). Items held for content review are not in a deputy's inbox yet.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlalchemy import Select, and_, case, func, literal, not_, or_, select
from sqlalchemy.orm import selectinload

from backend import pagination
from backend.access import region_subtree, visible_items_query
from backend.extensions import db
from backend.items.deadlines import is_overdue, overdue_by, overdue_condition
from backend.items.masking import mask_message
from backend.items.refs import normalize_ref
from backend.models import Item, ItemEvent, ItemEventKind, ItemStatus, StaffRole, StaffUser, Station, utcnow

OPEN_GROUPS = ("overdue", "reopened", "new", "in_progress")
WAITING_GROUPS = ("overdue", "reopened", "new")  # what waits on the deputy: a share of page 1 each
CLOSED_GROUPS = ("resolved", "closed")
GROUPS = OPEN_GROUPS + CLOSED_GROUPS
STATES = ("todo", *GROUPS)  # what ``state=`` may ask for

GROUP_LABELS = {
    "todo": "待办",
    "overdue": "已超期",
    "reopened": "不满意重办",
    "new": "新留言",
    "in_progress": "办理中",
    "resolved": "已办结",
    "closed": "不予受理/重复/撤回",
}

SEARCH_MAX_CHARS = 50
_CLOSED_OTHER = (ItemStatus.DECLINED, ItemStatus.DUPLICATE, ItemStatus.WITHDRAWN)


@dataclass(frozen=True)
class InboxRow:
    """One line of the inbox: the item, its group, and whether it is overdue."""

    item: Item
    group: str
    is_overdue: bool
    mark: str = ""  # "承办单位已答复" / "群众已补充" when the item's latest step is theirs (``MARKS``)


@dataclass
class InboxPage:
    """A page of the inbox with the counts per group (for the whole inbox, not only this page)."""

    rows: list[InboxRow]
    counts: dict[str, int]
    state: str
    query: str
    page: int
    per_page: int
    total: int
    now: datetime
    notes: list[str] = field(default_factory=list)

    @property
    def pages(self) -> int:
        """How many pages the current view has (at least one)."""
        return pagination.page_count(self.total, self.per_page)

    @property
    def has_next(self) -> bool:
        """True when a later page exists."""
        return self.page < self.pages

    @property
    def has_previous(self) -> bool:
        """True when an earlier page exists."""
        return self.page > 1


def group_expression(now: datetime):
    """The SQL ``CASE`` naming each item's group (see the module table)."""
    return case(
        (overdue_condition(now), literal("overdue")),
        (Item.is_reopened, literal("reopened")),
        (Item.status == ItemStatus.SUBMITTED, literal("new")),
        (Item.status.in_(ItemStatus.open_statuses()), literal("in_progress")),
        (Item.status == ItemStatus.RESOLVED, literal("resolved")),
        else_=literal("closed"),
    )


def group_of(item: Item, now: datetime | None = None) -> str:
    """The group of a loaded item, by the same rule as ``group_expression``."""
    if is_overdue(item, now):
        return "overdue"
    if item.is_reopened:
        return "reopened"
    if item.status == ItemStatus.SUBMITTED:
        return "new"
    if item.status in ItemStatus.open_statuses():
        return "in_progress"
    if item.status == ItemStatus.RESOLVED:
        return "resolved"
    return "closed"


def visible_to(user: StaffUser) -> Select:
    """``visible_items_query(user)``, for a supervisor with their region's stations also named by id (read once
    per page and passed to ``_base_query``).

    The same items: the ids are those of the subquery it keeps. But the planner cannot see how few stations a
    recursive region query yields (it guesses a thousand of the province's two thousand), so it read every open
    item of the province and then kept the county's; with the ids it reads only the county's stations' open items
    through ``ix_items_station_open_groups``.
    """
    query = visible_items_query(user)
    if user is not None and user.is_active and user.role == StaffRole.SUPERVISOR and user.region_id is not None:
        query = query.where(Item.station_id.in_(db.session.scalars(_region_stations(user.region_id)).all()))
    return query


def _base_query(user: StaffUser, *, open_items: bool | None = None, visible: Select | None = None) -> Select:
    """``visible`` (default ``visible_to(user)``) without the open items a deputy may not see yet (held for
    content review).

    ``open_items``: True when only open items are read, False when only closed ones (no filter,
    so that counting them stays an index-only scan), None for both.
    """
    query = visible if visible is not None else visible_to(user)
    if user is None or user.role != StaffRole.DEPUTY or open_items is False:
        return query
    if open_items:
        return query.where(Item.is_held.is_(False))
    return query.where(or_(Item.is_held.is_(False), Item.status.not_in(ItemStatus.open_statuses())))


def _region_stations(region_id: int) -> Select:
    """The ids of the stations in ``region_id`` and the regions under it (those ``visible_items_query`` allows)."""
    return select(Station.id).where(Station.region_id.in_(region_subtree(region_id)))


def _group_filter(group: str, now: datetime):
    """The WHERE clause of one group, written so that each can use the status index."""
    overdue = overdue_condition(now)
    if group == "overdue":
        return overdue
    if group == "reopened":
        return and_(Item.is_reopened, not_(overdue))
    if group == "new":
        return and_(Item.status == ItemStatus.SUBMITTED, not_(overdue))
    if group == "in_progress":
        return and_(
            Item.status.in_((ItemStatus.ACCEPTED, ItemStatus.FORWARDED, ItemStatus.ANSWERED)),
            not_(Item.is_reopened),
            not_(overdue),
        )
    if group == "resolved":
        return Item.status == ItemStatus.RESOLVED
    return Item.status.in_(_CLOSED_OTHER)


def _group_order(group: str) -> tuple:
    if group == "new":
        return (Item.created_at.desc(), Item.id.desc())
    if group in OPEN_GROUPS:
        # Sorted by an expression on purpose: a deputy's few open items are found through the
        # status index and sorted, instead of walking (deputy_id, due_at) through every closed
        # item due in the past. A partial index on open items would serve this better still.
        return (func.coalesce(Item.due_at, Item.created_at).asc(), Item.id.asc())
    return (Item.created_at.desc(), Item.id.desc())


def count_groups(user: StaffUser, now: datetime | None = None, *, visible: Select | None = None) -> dict[str, int]:
    """Items per group in ``user``'s inbox: open groups in one grouped query, closed ones by status (``visible``:
    ``visible_to(user)`` if the caller has it already)."""
    now = now or utcnow()
    visible = visible if visible is not None else visible_to(user)
    counts = dict.fromkeys(GROUPS, 0)
    inner = (
        _base_query(user, open_items=True, visible=visible)
        .where(Item.status.in_(ItemStatus.open_statuses()))
        .with_only_columns(group_expression(now).label("grp"))
        .subquery()
    )
    grouped = select(inner.c.grp, func.count()).group_by(inner.c.grp)
    for group, number in db.session.execute(grouped):
        counts[group] = number
    closed = (
        _base_query(user, open_items=False, visible=visible)
        .where(Item.status.in_((ItemStatus.RESOLVED, *_CLOSED_OTHER)))
        .with_only_columns(Item.status, func.count())
        .group_by(Item.status)
    )
    for status, number in db.session.execute(closed):
        counts["resolved" if status == ItemStatus.RESOLVED else "closed"] += number
    counts["todo"] = sum(counts[g] for g in OPEN_GROUPS)
    return counts


def _load_options(query: Select, user: StaffUser) -> Select:
    if user is not None and user.role != StaffRole.DEPUTY:
        query = query.options(selectinload(Item.deputy))
    if user is not None and user.role == StaffRole.SUPERVISOR:
        query = query.options(selectinload(Item.station))
    return query


# An item whose latest step is someone else's answer waits for the deputy: the inbox says whose.
# By value: ``resident_replied`` is the resident's answer to 等待群众补充 (issue 11 part 4).
MARKS = {"department_replied": "承办单位已答复", "resident_replied": "群众已补充"}


def marks_of(item_ids: list[int]) -> dict[int, str]:
    """The mark of each item whose latest event is a department's or a resident's answer (one query)."""
    if not item_ids:
        return {}
    latest = (
        select(func.max(ItemEvent.id))
        .where(ItemEvent.item_id.in_(item_ids), ItemEvent.kind != ItemEventKind.NOTE)
        .group_by(ItemEvent.item_id)
    )
    rows = db.session.execute(select(ItemEvent.item_id, ItemEvent.kind).where(ItemEvent.id.in_(latest)))
    return {item_id: MARKS[kind.value] for item_id, kind in rows if kind.value in MARKS}


def _rows(items, now: datetime, group: str | None = None) -> list[InboxRow]:
    return [InboxRow(item=item, group=group or group_of(item, now), is_overdue=is_overdue(item, now)) for item in items]


def _marked(rows: list[InboxRow]) -> list[InboxRow]:
    """The page's rows with their marks, read in one query for the whole page."""
    marks = marks_of([row.item.id for row in rows if row.item.status.is_open])
    return [replace(row, mark=marks[row.item.id]) if row.item.id in marks else row for row in rows]


def _search_filter(text: str):
    ref = normalize_ref(text)
    by_text = Item.body.contains(text, autoescape=True)
    return or_(Item.ref == ref, by_text) if ref else by_text


def clean_query(value: object) -> str:
    """The search text as typed, trimmed and cut to a sane length ("" when none)."""
    if not isinstance(value, str):
        return ""
    return " ".join(value.split())[:SEARCH_MAX_CHARS]


def inbox_page(
    user: StaffUser,
    *,
    state: str = "todo",
    query: str = "",
    page: int = 1,
    per_page: int = pagination.DEFAULT_PER_PAGE,
    now: datetime | None = None,
) -> InboxPage:
    """One page of ``user``'s inbox: a group (``state``), all open groups in order ("todo"), or a search.

    "todo" reads overdue (most overdue first), reopened, new (newest first), then in hand; when the first three do
    not fit page 1 they share it (``first_page_shares``), so the newest message and the most overdue are both there.

    A search (``query``: a reference in any case, with or without the hyphen, or words of
    the message) looks through every item the user may see, newest first, whatever its state.
    """
    now = now or utcnow()
    state = state if state in STATES else "todo"
    query = clean_query(query)
    visible = visible_to(user)
    counts = count_groups(user, now, visible=visible)
    offset = pagination.offset(page, per_page)

    if query:
        matching = _base_query(user, visible=visible).where(_search_filter(query))
        total = db.session.scalar(matching.with_only_columns(func.count()).order_by(None))
        items = db.session.scalars(
            _load_options(matching, user)
            .order_by(Item.created_at.desc(), Item.id.desc())
            .offset(offset)
            .limit(per_page)
        ).all()
        return InboxPage(_marked(_rows(items, now)), counts, state, query, page, per_page, total, now)

    rows: list[InboxRow] = []
    stretches = todo_stretches(counts, per_page) if state == "todo" else [(state, 0, counts[state])]
    total = sum(size for _, _, size in stretches)
    start = 0  # where the current stretch begins in the whole list
    for group, first, size in stretches:
        wanted = per_page - len(rows)
        if wanted <= 0:
            break
        skip = max(0, offset - start)
        if size and skip < size:
            items = _stretch(user, group, now, visible, offset=first + skip, limit=min(wanted, size - skip))
            rows.extend(_rows(items, now, group))
        start += size
    return InboxPage(_marked(rows), counts, state, query, page, per_page, total, now)


def _stretch(user: StaffUser, group: str, now: datetime, visible: Select, *, offset: int, limit: int) -> list[Item]:
    """Items ``offset`` to ``offset + limit`` of ``group`` in its order.

    An open group's ids are picked first and its rows read by id after: every column the pick filters and sorts on
    is in the open-items indexes (``ix_items_station_open_groups``, ``ix_items_deputy_open_groups``), so PostgreSQL
    sorts a county's tens of thousands of open items from the index alone and reads only the page's rows, where
    reading whole rows it visited each item's table page. Closed groups are read as they are, newest first.
    """
    order = _group_order(group)
    picked = _base_query(user, open_items=group in OPEN_GROUPS, visible=visible).where(_group_filter(group, now))
    if group in OPEN_GROUPS:
        ids = picked.with_only_columns(Item.id).order_by(*order).offset(offset).limit(limit)
        picked = select(Item).where(Item.id.in_(ids.scalar_subquery()))
        offset = 0
    return db.session.scalars(_load_options(picked, user).order_by(*order).offset(offset).limit(limit)).all()


def first_page_shares(counts: dict[str, int], per_page: int) -> dict[str, int]:
    """How many of each waiting group (overdue, reopened, new) page 1 of "todo" shows.

    All of each when they fit; otherwise the page is shared out evenly, a group smaller than
    its share keeping what it has and leaving the rest to the others, and a slot that does not
    divide evenly going to the earlier group (overdue before reopened before new). So each
    waiting group that has items shows at least one on page 1 (with three or more a page).
    """
    wanting = {group: counts.get(group, 0) for group in WAITING_GROUPS if counts.get(group, 0) > 0}
    shares = dict.fromkeys(WAITING_GROUPS, 0)
    slots = per_page
    while wanting:
        share = slots // len(wanting)
        small = {group: size for group, size in wanting.items() if size <= share}
        if not small:
            break
        for group, size in small.items():
            shares[group] = size
            slots -= size
            del wanting[group]
    if wanting:
        share, extra = divmod(slots, len(wanting))
        for position, group in enumerate(wanting):  # in WAITING_GROUPS' order
            shares[group] = share + (1 if position < extra else 0)
    return shares


def todo_stretches(counts: dict[str, int], per_page: int) -> list[tuple[str, int, int]]:
    """The "todo" list as stretches ``(group, first, size)`` read in order: page 1's share of each waiting group,
    then the rest of each, then the items in hand (``first_page_shares``). Empty stretches are left out."""
    shares = first_page_shares(counts, per_page)
    stretches = [(group, 0, shares[group]) for group in WAITING_GROUPS]
    stretches += [(group, shares[group], counts[group] - shares[group]) for group in WAITING_GROUPS]
    stretches.append(("in_progress", 0, counts["in_progress"]))
    return [stretch for stretch in stretches if stretch[2] > 0]


def row_text(item: Item, user: StaffUser) -> str:
    """The first line of an item's message as ``user`` may read it in a list: a department reads it with mobile
    numbers and the resident's name masked, as on its forward page."""
    if user is not None and user.role == StaffRole.DEPARTMENT:
        return first_line(mask_message(item.body, item.contact_name))
    return first_line(item.body)


def first_line(text: str, limit: int = 60) -> str:
    """The first non-empty line of a message, cut at ``limit`` characters with an ellipsis."""
    line = next((part.strip() for part in text.splitlines() if part.strip()), "")
    return line if len(line) <= limit else line[: limit - 1] + "…"


def age_label(moment: datetime, now: datetime) -> str:
    """How long ago, as a deputy reads it: 刚刚 / 5分钟前 / 3小时前 / 2天前."""
    seconds = max(0, int((now - moment).total_seconds()))
    if seconds < 60:
        return "刚刚"
    if seconds < 3600:
        return f"{seconds // 60}分钟前"
    if seconds < 86400:
        return f"{seconds // 3600}小时前"
    return f"{seconds // 86400}天前"


def overdue_label(item: Item, now: datetime) -> str:
    """How late an overdue item is: 超期3小时 / 超期2天 (``deadlines.overdue_by``: frozen while it waits for the resident)."""
    seconds = int(overdue_by(item, now).total_seconds())
    if seconds < 86400:
        return f"超期{max(1, seconds // 3600)}小时"
    return f"超期{seconds // 86400}天"
