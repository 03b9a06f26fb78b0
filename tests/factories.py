"""The tests' data in one place: factory-boy factories for the models the tests build, the worlds made of them
(the small county every staff test shares, its administration and supervision variants, the outbox's deputy),
and the steps that take an item through the real lifecycle.

Factories flush and never commit, as the operations do (one commit point): a test, a fixture or a world
builder commits where the data must outlive the next request (a GET rolls back what it did not declare) or
be seen by another connection."""

from __future__ import annotations

import copy
import functools
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from types import SimpleNamespace

import factory
from factory.alchemy import SQLAlchemyModelFactory
from flask import current_app, g
from sqlalchemy import exists, insert, select
from sqlalchemy import inspect as inspect_row
from werkzeug.security import generate_password_hash

from backend.extensions import db
from backend.items.claims import in_person_item
from backend.items.lifecycle import forward_link_token, perform_action
from backend.items.refs import new_access_key, new_ref
from backend.models import (
    CongressLevel,
    Department,
    Deputy,
    DeputyLevel,
    DeputyStatus,
    Item,
    ItemCategory,
    ItemChannel,
    ItemEvent,
    ItemForward,
    OutboxMessage,
    OutboxStatus,
    ReceptionRule,
    ReceptionRuleKind,
    Region,
    RegionLevel,
    Resident,
    StaffRole,
    StaffUser,
    Station,
    SubscriptionCredit,
    utcnow,
)
from backend.models.base import Base
from backend.qr.codes import current_code, issue_code
from backend.stations.calendar import today_in_china
from tests.helpers import PASSWORD, TEST_PASSWORD_HASH_METHOD, stored_photo

HOME_COUNTY = "430225"  # 炎陵县, the county most tests live in
RESIDENT_TEMPLATES = ("tpl-item-progress", "tpl-item-answered", "tpl-item-resolved")
DEPUTY_TEMPLATE = "tpl-deputy-task"
STREETLIGHT = "村口路灯坏了三个月，晚上出行很不方便。"


@functools.cache
def password_hash() -> str:
    """One hash of ``PASSWORD`` for every test user, made with the tests' cheap method (so each login is cheap)."""
    return generate_password_hash(PASSWORD, method=TEST_PASSWORD_HASH_METHOD)


class Factory(SQLAlchemyModelFactory):
    """Rows added to the app's session and flushed, never committed (the test commits, as a request would)."""

    class Meta:
        abstract = True
        sqlalchemy_session_factory = lambda: db.session  # noqa: E731 - the session of the app context in force
        sqlalchemy_session_persistence = "flush"


class RegionFactory(Factory):
    """A region, found by its code when it exists already (a county's province and city are shared)."""

    class Meta:
        model = Region
        sqlalchemy_get_or_create = ("code",)

    code = HOME_COUNTY
    name = "炎陵县"
    level = RegionLevel.COUNTY
    parent = None


class CountyFactory(RegionFactory):
    """A county with its city and province (湖南省 → 株洲市 by default), codes derived from the county's."""

    parent = factory.SubFactory(
        RegionFactory,
        code=factory.LazyAttribute(lambda o: o.factory_parent.code[:4] + "00"),
        name="株洲市",
        level=RegionLevel.CITY,
        parent=factory.SubFactory(
            RegionFactory,
            code=factory.LazyAttribute(lambda o: o.factory_parent.code[:2] + "0000"),
            name="湖南省",
            level=RegionLevel.PROVINCE,
        ),
    )


class CodedFactory(Factory):
    """A deputy or a station, given its first QR code once it has an id."""

    class Meta:
        abstract = True

    @factory.post_generation
    def code(owner, create, _value, **_):
        if create:
            db.session.flush()
            issue_code(owner)


class StationFactory(CodedFactory):
    """A station in 炎陵县 unless told, with its code; ``rules``: (kind, day, deputy) reception rules."""

    class Meta:
        model = Station

    name = "霞阳镇人大代表联络站"
    region = factory.SubFactory(CountyFactory)
    address = "霞阳镇炎帝大道1号"

    @factory.post_generation
    def rules(station, create, rules, **_):
        for kind, day, deputy in rules or ():
            station.reception_rules.append(ReceptionRule(kind=ReceptionRuleKind(kind), day=day, deputy=deputy))


class DeputyFactory(CodedFactory):
    """A serving county deputy at a new station unless told, with a constituency, a term and a code."""

    class Meta:
        model = Deputy

    name = "张秀英"
    station = factory.SubFactory(StationFactory)
    constituency = "霞阳镇第三选区"
    status = DeputyStatus.SERVING
    term_start = date(2021, 12, 1)
    term_end = date(2026, 11, 30)

    @factory.post_generation
    def levels(deputy, create, levels, **_):
        deputy.levels = [
            DeputyLevel(level=level, constituency=deputy.constituency) for level in levels or (CongressLevel.COUNTY,)
        ]


class StaffUserFactory(Factory):
    """A staff account whose password is ``PASSWORD``; give its role and scope (deputy, station, region, …)."""

    class Meta:
        model = StaffUser

    username = factory.Sequence(lambda n: f"staff{n}")
    display_name = factory.SelfAttribute("username")
    password_hash = factory.LazyFunction(password_hash)
    role = StaffRole.DEPUTY


class DepartmentFactory(Factory):
    """A handling department (承办单位) of 炎陵县 unless told."""

    class Meta:
        model = Department

    name = "炎陵县住房和城乡建设局"
    region = factory.SubFactory(CountyFactory)


class ResidentFactory(Factory):
    """A resident, known by a mini-program openid or by none."""

    class Meta:
        model = Resident

    openid = None


class ItemFactory(Factory):
    """A submitted item of a deputy at the deputy's station, an hour old and due in two days unless told;
    the resident's consent is dated when a name or a phone is given."""

    class Meta:
        model = Item

    class Params:
        created_ago = timedelta(hours=1)
        due_in = timedelta(days=2)

    ref = factory.LazyFunction(new_ref)
    access_key = factory.LazyFunction(new_access_key)
    deputy = factory.SubFactory(DeputyFactory)
    station = factory.LazyAttribute(lambda o: o.deputy.station)
    channel = ItemChannel.QR_H5
    category = ItemCategory.URBAN
    body = STREETLIGHT
    contact_name = ""
    contact_phone = ""
    created_at = factory.LazyAttribute(lambda o: utcnow() - o.created_ago)
    updated_at = factory.SelfAttribute("created_at")
    due_at = factory.LazyAttribute(lambda o: o.created_at + o.due_in)
    consented_at = factory.LazyAttribute(lambda o: utcnow() if (o.contact_name or o.contact_phone) else None)


class OutboxMessageFactory(Factory):
    """A pending outbox row; give its kind and whom it is for."""

    class Meta:
        model = OutboxMessage

    payload = factory.LazyFunction(dict)


def staff_users(*rows: tuple[str, str, StaffRole, dict]) -> dict[str, StaffUser]:
    """Staff accounts by the tests' key for them: each row (key, username, role, scope and other columns)."""
    return {key: StaffUserFactory(username=username, role=role, **scope) for key, username, role, scope in rows}


def make_item(deputy: Deputy, *, name: str = "王桂芳", phone: str = "13812341234", **fields) -> Item:
    """A submitted item of ``deputy`` with the resident's contact details, committed as its submission was."""
    item = ItemFactory(deputy=deputy, contact_name=name, contact_phone=phone, **fields)
    db.session.commit()
    return item


def with_photo_and_resident(item: Item, openid: str = "", notice_kind: str = "item_accepted") -> Item:
    """Give ``item`` a photo, a WeChat resident (``o-<ref>`` unless told) and a ``notice_kind`` notice to them still
    waiting (committed): everything that erasing or anonymising an item must reach."""
    resident = ResidentFactory(openid=openid or f"o-{item.ref}")
    item.resident_id = resident.id
    db.session.add(stored_photo(item.id, sha256="0" * 64))
    OutboxMessageFactory(kind=notice_kind, item_id=item.id, resident_id=resident.id)
    db.session.commit()
    return item


# Worlds are built once per test session and put back from a snapshot after that.


@dataclass(frozen=True)
class _Row:
    """Where a world's model instance is kept in a snapshot: its class and primary key."""

    model: type
    identity: tuple


# By builder and database: the rows the builder wrote (by table, in primary-key order) and its namespace with
# every model instance as a ``_Row``.
_SNAPSHOTS: dict[tuple[str, str], tuple[dict[str, list[dict]], SimpleNamespace]] = {}


def _map(value, leaf):
    """``value`` rebuilt through its namespaces, dicts, lists and tuples, with ``leaf`` applied to everything else."""
    if isinstance(value, SimpleNamespace):
        return SimpleNamespace(**{name: _map(v, leaf) for name, v in vars(value).items()})
    if isinstance(value, dict):
        return {key: _map(v, leaf) for key, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_map(v, leaf) for v in value)
    return leaf(value)


def _as_ref(value):
    """A model instance as a ``_Row``; anything else copied."""
    return _Row(type(value), inspect_row(value).identity) if isinstance(value, Base) else copy.deepcopy(value)


def _from_ref(value):
    """A ``_Row`` as its instance in the current session (each read once before, by ``snapshot_world``)."""
    return db.session.get(value.model, value.identity) if isinstance(value, _Row) else copy.deepcopy(value)


def _empty(tables) -> bool:
    """Whether none of ``tables`` holds a row (one statement)."""
    held = db.session.execute(select(*[exists().select_from(t) for t in tables])).one()
    return not any(held)


def snapshot_world(builder):
    """``builder`` (a world builder without arguments) made once per test session: its first call on an empty
    database builds the world with the factories and keeps the rows it wrote; later calls on an empty database
    insert those rows again (same ids, a statement per table) and return the same namespace read back from them.

    Building the small county flushes ~25 factory rows and issues their codes one at a time, about a third of a
    typical staff test; putting it back costs a few statements. A database that already holds rows (a test that
    made some before asking for its world) gets the world built as before, so ids and unique values never clash.
    """

    @functools.wraps(builder)
    def build_or_restore():
        key = (builder.__qualname__, db.engine.url.render_as_string())
        kept = _SNAPSHOTS.get(key)
        tables = Base.metadata.sorted_tables
        if kept is None:
            if not _empty(tables):
                return builder()
            world = builder()
            rows = {}
            for table in tables:
                found = db.session.execute(table.select().order_by(*table.primary_key.columns)).mappings().all()
                if found:
                    rows[table.name] = [dict(row) for row in found]
            _SNAPSHOTS[key] = (rows, _map(world, _as_ref))
            return world
        rows, kept_world = kept
        if not _empty([t for t in tables if t.name in rows]):
            return builder()
        for table in tables:
            if table.name in rows:
                db.session.execute(insert(table), rows[table.name])
        db.session.commit()
        identities: dict[type, list] = {}
        _map(kept_world, lambda v: isinstance(v, _Row) and identities.setdefault(v.model, []).append(v.identity[0]))
        for model, ids in identities.items():  # one read a model, not one a row
            (key_column,) = inspect_row(model).primary_key
            db.session.scalars(select(model).where(key_column.in_(ids))).all()
        return _map(kept_world, _from_ref)

    return build_or_restore


# The small county: what most staff, department and rating tests share.


@snapshot_world
def county_world() -> SimpleNamespace:
    """Two stations in 炎陵县 (A, B), one in 南山区 (C); deputies d1, d2 (A), d3 (B), d4 (C); three departments;
    a user per role (committed)."""
    county = CountyFactory()
    other_county = CountyFactory(code="440305", name="南山区")
    station_a = StationFactory(name="霞阳镇人大代表联络站", region=county)
    station_b = StationFactory(name="沔渡镇人大代表之家", region=county)
    station_c = StationFactory(name="南山区某街道联络站", region=other_county)
    d1 = DeputyFactory(name="张秀英", station=station_a)
    d2 = DeputyFactory(name="李建国", station=station_a)
    d3 = DeputyFactory(name="周桂兰", station=station_b)
    d4 = DeputyFactory(name="赵外站", station=station_c)
    department = DepartmentFactory(region=county, contact_name="王志刚")
    users = staff_users(
        ("deputy", "deputy_d1", StaffRole.DEPUTY, {"deputy": d1}),
        ("deputy2", "deputy_d2", StaffRole.DEPUTY, {"deputy": d2}),
        ("deputy_b", "deputy_d3", StaffRole.DEPUTY, {"deputy": d3}),
        ("deputy_far", "deputy_d4", StaffRole.DEPUTY, {"deputy": d4}),
        ("station_admin", "admin_a", StaffRole.STATION_ADMIN, {"station": station_a}),
        ("station_admin_b", "admin_b", StaffRole.STATION_ADMIN, {"station": station_b}),
        ("supervisor", "sup_county", StaffRole.SUPERVISOR, {"region": county}),
        ("supervisor_far", "sup_far", StaffRole.SUPERVISOR, {"region": other_county}),
        ("department", "dept_user", StaffRole.DEPARTMENT, {"department": department}),
    )
    world = SimpleNamespace(
        county=county,
        station_a=station_a,
        station_b=station_b,
        station_c=station_c,
        d1=d1,
        d2=d2,
        d3=d3,
        d4=d4,
        department=department,
        department2=DepartmentFactory(name="炎陵县交通运输局", region=county),
        far_department=DepartmentFactory(name="南山区城管局", region=other_county),
        users=users,
    )
    db.session.commit()
    return world


SIBLING_COUNTY = "430224"  # 茶陵县, beside 炎陵县 under 株洲市


@snapshot_world
def admin_world() -> SimpleNamespace:
    """``county_world`` plus 霞阳镇 under the county with station T and deputy d5, and 茶陵县 with station S, deputy
    d6 and its supervisor; a supervisor of the township too (committed)."""
    world = county_world()
    world.township = RegionFactory(code="430225100", name="霞阳镇", level=RegionLevel.TOWNSHIP, parent=world.county)
    world.sibling = CountyFactory(code=SIBLING_COUNTY, name="茶陵县")
    world.station_t = StationFactory(name="霞阳镇城东社区联络站", region=world.township)
    world.station_s = StationFactory(name="茶陵县城关联络站", region=world.sibling)
    world.d5 = DeputyFactory(name="罗开华", station=world.station_t)
    world.d6 = DeputyFactory(name="谭茶陵", station=world.station_s)
    for username, region in (("sup_sibling", world.sibling), ("sup_township", world.township)):
        world.users[username] = StaffUserFactory(username=username, role=StaffRole.SUPERVISOR, region=region)
    db.session.commit()
    return world


# The outbox's world: one deputy with a bound WeChat, residents with subscription credits.


def outbox_world(deputy_openid: str = "o-deputy-1") -> SimpleNamespace:
    """A deputy at a station with a staff account bound to ``deputy_openid`` (committed); ids, which outlive the
    sessions the outbox tests expire and roll back."""
    deputy = DeputyFactory()
    user = StaffUserFactory(username="deputy1", deputy=deputy, wechat_openid=deputy_openid)
    db.session.commit()
    return SimpleNamespace(
        deputy_id=deputy.id, station_id=deputy.station_id, staff_user_id=user.id, deputy_openid=deputy_openid
    )


def outbox_item(world: SimpleNamespace, resident_id: int | None, body: str = STREETLIGHT) -> int:
    """A mini-program item to the outbox world's deputy, just submitted (committed, no outbox rows); its id."""
    item = ItemFactory(
        deputy=db.session.get(Deputy, world.deputy_id),
        resident_id=resident_id,
        channel=ItemChannel.MINIPROGRAM,
        body=body,
        created_ago=timedelta(0),
    )
    db.session.commit()
    return item.id


def make_resident(openid: str | None, credits: int = 0, templates=RESIDENT_TEMPLATES) -> int:
    """A resident with ``credits`` subscription credits for each template (committed); its id."""
    resident = ResidentFactory(openid=openid)
    if openid and credits:
        give_credits(openid, credits, templates)
    db.session.commit()
    return resident.id


def give_credits(openid: str, credits: int, templates=RESIDENT_TEMPLATES) -> None:
    """Set ``openid``'s credits for ``templates`` (flushes)."""
    for template_id in templates:
        row = db.session.scalar(
            select(SubscriptionCredit).where(
                SubscriptionCredit.openid == openid, SubscriptionCredit.template_id == template_id
            )
        )
        if row is None:
            db.session.add(SubscriptionCredit(openid=openid, template_id=template_id, credits=credits))
        else:
            row.credits = credits
    db.session.flush()


def queue(item_id: int, kind: str, **fields) -> int:
    """One pending outbox row (committed, for the worker's own connection to find); its id."""
    message = OutboxMessageFactory(item_id=item_id, kind=kind, **fields)
    db.session.commit()
    return message.id


def queue_many(rows: list[dict]) -> None:
    """Many pending outbox rows in one statement (each dict: kind, item_id, resident_id …; committed)."""
    now = utcnow()
    values = [
        {
            "kind": r["kind"],
            "item_id": r.get("item_id"),
            "resident_id": r.get("resident_id"),
            "staff_user_id": r.get("staff_user_id"),
            "payload": r.get("payload", {}),
            "status": OutboxStatus.PENDING,
            "attempts": 0,
            "next_attempt_at": now,
            "last_error": "",
            "created_at": now,
        }
        for r in rows
    ]
    db.session.execute(insert(OutboxMessage), values)
    db.session.commit()


# Items in any state, reached through the real lifecycle.


def act(item: Item, actor: StaffUser, action: str, **inputs) -> ItemEvent:
    """Take an action through the lifecycle and commit, as the staff page's request would; the event."""
    event = perform_action(item, actor, action, **inputs)
    db.session.commit()
    return event


def due_in_days(days: int) -> str:
    """A due date ``days`` ahead, as the forms send it."""
    return (today_in_china() + timedelta(days=days)).isoformat()


def forward(item: Item, actor: StaffUser, department: Department) -> tuple[ItemForward, str]:
    """Accept (if needed) and forward ``item``; the forward and its raw link token."""
    if item.status.value == "submitted":
        act(item, actor, "accept")
    event = perform_action(item, actor, "forward", department_id=department.id, due=due_in_days(10), text="请核实。")
    token = forward_link_token(event)
    db.session.commit()
    return db.session.get(ItemForward, event.data["forward_id"]), token


def handle(item: Item, user: StaffUser, *steps: str) -> Item:
    """Take the named steps through the lifecycle (accept, reply, resolve[:partly], decline)."""
    for step in steps:
        if step == "reply":
            act(item, user, "reply", text="已联系有关部门，正在处理。")
        elif step.startswith("resolve"):
            outcome = step.partition(":")[2] or "solved"
            act(item, user, "resolve", outcome=outcome, text="" if outcome == "solved" else "部分问题需要明年解决。")
        elif step == "decline":
            act(item, user, "decline", text="该问题属于法院审理范围，请依法起诉。")
        else:
            act(item, user, step)
    db.session.refresh(item)
    return item


def make_overdue(item: Item, days: int = 3) -> None:
    """Let time pass: the item's deadline is ``days`` behind it, as if nobody acted since (committed)."""
    item.due_at = utcnow() - timedelta(days=days)
    db.session.commit()


def submit(client, deputy: Deputy, body: str, *, name: str = "", phone: str = "", category: str = "urban") -> Item:
    """A resident's submission through ``POST /api/v1/items`` to ``deputy``'s code; the stored item, its key kept
    as ``test_key``."""
    payload = {"code": current_code(deputy).slug, "body": body, "category": category, "client_id": uuid.uuid4().hex}
    if name or phone:
        payload.update(name=name, phone=phone, consent=True)
    response = client.post("/api/v1/items", json=payload)
    assert response.status_code == 201, response.get_json()
    item = db.session.scalar(select(Item).where(Item.ref == response.get_json()["ref"]))
    item.test_key = response.get_json()["key"]
    return item


def rate(client, item: Item, satisfaction: str, comment: str = "") -> None:
    """The resident's verdict through ``POST /api/v1/items/<ref>/rating?key=``."""
    body = {"satisfaction": satisfaction, "solved": satisfaction != "unsatisfied", "comment": comment}
    response = client.post(f"/api/v1/items/{item.ref}/rating?key={item.test_key}", json=body)
    assert response.status_code == 200, response.get_json()
    db.session.refresh(item)


def entered_in_person(user: StaffUser, body: str) -> Item:
    """An item the deputy entered after meeting the resident (代表接待选民), committed; its receipt's claim token
    kept as ``receipt_token``."""
    item, token = in_person_item(
        user, body=body, category="urban", name="", phone="", consent=False, channel_note="接待日进站"
    )
    db.session.commit()
    item.receipt_token = token
    return item


# The supervision world: the small county with items of known outcomes, and the figures they must produce.


def supervision_world() -> SimpleNamespace:
    """``county_world`` with the submission limits out of the way (the outcomes are submitted through the API;
    the ``app`` fixture restores the configuration)."""
    current_app.config.update(THROTTLE_PER_ADDRESS=10_000, THROTTLE_PER_CODE=10_000, REDIS_URL=None)
    return county_world()


def build_outcomes(client, w: SimpleNamespace) -> SimpleNamespace:
    """Items with known outcomes in station A (deputies d1, d2), station B (d3) and the other county (d4)."""
    d1, d2, d3, d4 = (w.users[k] for k in ("deputy", "deputy2", "deputy_b", "deputy_far"))
    items = SimpleNamespace()
    items.sat = handle(submit(client, w.d1, STREETLIGHT), d1, "accept", "reply", "resolve")
    rate(client, items.sat, "satisfied")
    items.basic = handle(
        submit(client, w.d1, "小区门口垃圾站傍晚才清运，气味很大。"), d1, "accept", "reply", "resolve:partly"
    )
    rate(client, items.basic, "basically")
    items.unsat = handle(
        submit(client, w.d1, "学校门口上下学车辆乱停，孩子过马路危险。"), d1, "accept", "reply", "resolve"
    )
    rate(client, items.unsat, "unsatisfied", "晚上还是没人管。")
    items.resolved_no_reply = handle(submit(client, w.d1, "卫生院周末没有儿科医生。"), d1, "accept", "resolve")
    items.answered = handle(submit(client, w.d1, "班车下午四点以后就没有了。"), d1, "accept", "reply")
    items.accepted = handle(submit(client, w.d1, "灌溉渠多处破损漏水，需要修补。"), d1, "accept")
    items.submitted = submit(client, w.d1, "菜市场周边占道经营严重。")
    items.declined = handle(submit(client, w.d1, "邻居欠钱不还，请代表帮忙要回来。"), d1, "decline")
    items.duplicate = submit(client, w.d1, "村口的路灯三个月没亮了，请修一下。")
    act(items.duplicate, d1, "duplicate", duplicate_of=items.sat.ref)
    items.in_person = entered_in_person(d1, "养老金认证手续复杂，老人不会用手机。")
    handle(items.in_person, d1, "accept", "reply")
    items.held = submit(client, w.d1, "这条留言被内容安全检查暂扣，等待管理员审核。")
    # Content screening holds an item only for a WeChat resident whose text WeChat flags: set the
    # column the screening writes, the one fault the test cannot cause through the API alone.
    items.held.is_held = True
    db.session.commit()
    items.d2_sat = handle(submit(client, w.d2, "路口红绿灯坏了一个星期。"), d2, "accept", "reply", "resolve")
    rate(client, items.d2_sat, "satisfied")
    items.b_sat = handle(submit(client, w.d3, "沔渡镇自来水经常停水。"), d3, "accept", "reply", "resolve")
    rate(client, items.b_sat, "satisfied")
    items.c_item = handle(submit(client, w.d4, "南山区某街道噪音扰民。"), d4, "accept", "reply")
    g.pop("csrf_token", None)
    return items


# The figures of build_outcomes, by scope (held excluded, declined and duplicate out of the denominators). Each
# scope holds one declined, one duplicate, one held, one entered in person, one basically satisfied and one
# unsatisfied item of station A's deputy d1.
_ONE_EACH = dict(declined=1, duplicate=1, basically_satisfied=1, unsatisfied=1, in_person=1, held=1)
STATION_A = dict(_ONE_EACH, received=11, valid=9, answered=7, resolved=4, rated=4, fully_satisfied=2)
DEPUTY_D1 = dict(_ONE_EACH, received=10, valid=8, answered=6, resolved=3, rated=3, fully_satisfied=1)
COUNTY = dict(_ONE_EACH, received=12, valid=10, answered=8, resolved=5, rated=5, fully_satisfied=3)


def first_event(item: Item) -> ItemEvent:
    """The item's first event (its submission)."""
    return db.session.scalar(select(ItemEvent).where(ItemEvent.item_id == item.id).order_by(ItemEvent.id))
