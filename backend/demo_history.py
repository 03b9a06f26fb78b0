"""Twelve months of the demo county's history, so that a fresh install shows what the product is for.

``flask demo load --history`` (what ``make run`` does) adds, after the county itself, about sixty
residents' messages a month for the twelve months before today, each taken through the real
operations at the moment it would have happened (``models.base.clock_at``): submitted through
the resident's own path (``submit_item``, by the deputy's code), accepted, answered, forwarded to a county
department that answers, resolved, rated by the resident (sometimes 不满意, which reopens it),
declined or marked duplicate, and a few left open past their deadlines. So the dashboard's
答复率, 办结率, 满意率, trends and 履职积分 have something to show the day the demo is installed,
and every figure is one the code itself computed from events it wrote. Deputies also came to their
station on most of the reception days their calendar gave them, signed in at 9:00 and out before noon
through the same operation as a phone's scan (``stations.presence``), so 见面率 has a number too.

The stories are drawn from a fixed seed, so two loads give the same county (the reference
numbers and keys differ). Every serving deputy gets a staff account for it (``deputy`` is the
first one's, as before; the others have unusable random passwords: the demo logs in as
``deputy`` only). No notice is sent for the past: the outbox rows the operations queue for it
are removed, and the past items carry no resident's WeChat identity.
"""

from __future__ import annotations

import random
import secrets
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import delete, select

from backend.auth.passwords import hash_password
from backend.extensions import db
from backend.items import lifecycle
from backend.items.operations import CleanMessage, Submission, submit_item
from backend.models import (
    Department,
    Deputy,
    DeputyStatus,
    Item,
    ItemCategory,
    ItemForward,
    OutboxMessage,
    PresenceSource,
    StaffRole,
    StaffUser,
)
from backend.models.base import clock_at
from backend.qr.codes import current_code
from backend.stations import presence
from backend.timefmt import CHINA

SEED = 20261203
MONTHS = 12
ITEMS_PER_DEPUTY_MONTH = (3, 7)  # drawn per deputy and month: ~60 a month for the demo's 11 serving deputies

# What residents write about, by category: the field reports' own subjects.
MESSAGES: dict[ItemCategory, tuple[str, ...]] = {
    ItemCategory.URBAN: (
        "小区门口的路灯坏了两个多月，晚上老人出门很不方便，希望尽快修好。",
        "我们组的自来水管老化，经常爆管停水，请帮忙反映更换。",
        "菜市场旁边的排水沟堵塞，下雨就漫到路上，气味很大。",
        "老旧小区改造什么时候能轮到我们院子？楼道墙皮脱落严重。",
    ),
    ItemCategory.TRANSPORT: (
        "村里到镇上的公交车一天只有两班，学生放学赶不上，希望增加班次。",
        "县道上那段弯道没有护栏，去年出过事故，建议加装护栏和减速带。",
        "学校门口上下学时段车辆乱停，孩子过马路很危险。",
    ),
    ItemCategory.EDUCATION: (
        "村小学只剩两个老师，孩子们的英语课没人上，希望协调支教。",
        "幼儿园收费比去年涨了不少，想了解收费标准是怎么定的。",
    ),
    ItemCategory.HEALTH: (
        "村卫生室经常没人值班，老人量个血压都要跑到镇上。",
        "希望镇卫生院能开通慢性病长期处方，每个月跑县城拿药太远了。",
    ),
    ItemCategory.SOCIAL_SECURITY: (
        "我母亲的高龄补贴这半年都没有到账，不知道是什么原因。",
        "想咨询城乡居民养老保险怎么补缴，村里说不清楚。",
        "残疾人两项补贴的申请材料交上去三个月了，一直没有消息。",
    ),
    ItemCategory.ENVIRONMENT: (
        "河边有人倒建筑垃圾，已经堆了很大一片，影响河道。",
        "附近的养猪场污水直接排到田里，气味很重，庄稼也受影响。",
    ),
    ItemCategory.RURAL: (
        "黄桃今年丰收但销路不好，希望政府帮忙对接电商平台。",
        "组里的机耕道被水冲坏了，农机下不了田，请帮忙修复。",
        "高标准农田建设的水渠有一段漏水，灌溉用水不够。",
    ),
    ItemCategory.PUBLIC_SAFETY: (
        "最近晚上常有摩托车在街上飙车，噪音大也很危险。",
        "村口的监控坏了很久，前段时间有人家里被偷。",
    ),
    ItemCategory.OTHER: ("建议在村部设一个代表接待的固定时间，方便大家反映问题。",),
}
REPLIES = (
    "已收到您的意见，我已到现场了解情况，并与村（社区）负责人沟通，正在协调解决。",
    "已向相关部门反映，对方答复将在近期安排处理，我会继续跟进。",
    "经了解，此事已列入今年的工作计划，具体时间确定后会第一时间告知您。",
)
DEPARTMENT_ANSWERS = (
    "已安排工作人员现场核查，列入本月维修计划，预计两周内完成。",
    "经核实，情况属实，已责成所在乡镇限期整改，我局将跟踪督促。",
    "已按政策核查，相关待遇已于本月补发到位。",
)
RESOLUTIONS = (
    "问题已经解决，感谢您的反映。",
    "已处理完毕，后续如有问题欢迎继续反映。",
)
PARTLY = "已完成主要部分，其余需纳入明年预算统筹解决，已向您说明。"
UNSOLVED = "受政策和资金限制，目前暂不能解决，已向您解释原因并记录在案。"
DECLINE = "该事项已进入司法程序，不属于代表联络站受理范围，已告知您相关渠道。"
UNSATISFIED = "说是修好了，但过了一周又坏了，问题没有真正解决。"
FORWARD_NOTE = "请核实情况并于期限内答复。"


# How each department behaves, so that the league table has something to rank: (hours from forward to answer,
# low and high; forwards are due in 15 days = 360 h, so a slow one answers some late). A unit shares its
# department's forwards; the last department gets only a few, under the minimum sample.
ANSWER_HOURS = {
    "炎陵县住房和城乡建设局": (24, 200),
    "炎陵县交通运输局": (120, 480),
    "炎陵县教育局": (48, 300),
}
DEFAULT_ANSWER_HOURS = (48, 240)
RETURN_SHARE = 0.06  # forwards given back (退回) with a reason; the deputy answers the resident
PROMISE_SHARE = 0.3  # answers that promise completion by a date (承诺解决台账)
UNIT_SHARE = 0.3  # of the housing bureau's forwards, made to its town unit directly
PUBLISH_SHARE = 0.4  # residents who tick 同意公示 on the form (the station's 公示 shows them once resolved)
FEW_EVERY = 25  # every 25th forward goes to the department kept under the minimum sample (about 8 a year)
RETURN_REASON = "该事项属于乡镇职责范围，请转交所在镇人民政府办理。"


@dataclass
class _Cast:
    """Who acts in the history: each serving deputy's account, the county's departments (those taking most
    forwards, then the one taking few), their units, and the departments' own draws (``conduct``): a second
    sequence, so that the stories drawn from the first stay as they were before departments were measured."""

    accounts: dict[int, StaffUser]
    departments: list[Department]
    few: Department | None
    units: dict[int, list[Department]]
    conduct: random.Random
    forwards: int = 0

    def pick_department(self, rng: random.Random) -> Department:
        """The department a deputy forwards to: one of the main ones, now and then the small one or a unit."""
        department = rng.choice(self.departments)
        self.forwards += 1
        if self.few is not None and self.forwards % FEW_EVERY == 0:
            return self.few
        units = self.units.get(department.id)
        if units and self.conduct.random() < UNIT_SHARE:
            return units[0]
        return department

    def answer_hours(self, department: Department) -> tuple[int, int]:
        """How soon it answers (``ANSWER_HOURS``): a unit as its department does."""
        parents = {unit.id: parent for parent in self.departments for unit in self.units.get(parent.id, [])}
        named = parents.get(department.id, department).name
        return ANSWER_HOURS.get(named, DEFAULT_ANSWER_HOURS)


def _cast() -> _Cast:
    """Give every serving deputy an account (the first already has ``deputy``); the county's departments."""
    deputies = list(db.session.scalars(select(Deputy).where(Deputy.status == DeputyStatus.SERVING).order_by(Deputy.id)))
    accounts = {
        user.deputy_id: user
        for user in db.session.scalars(select(StaffUser).where(StaffUser.role == StaffRole.DEPUTY))
        if user.deputy_id is not None
    }
    unusable = hash_password(secrets.token_urlsafe(24))
    for number, deputy in enumerate(deputies, start=1):
        if deputy.id not in accounts:
            user = StaffUser(
                username=f"deputy{number:02d}",
                display_name=deputy.name,
                password_hash=unusable,
                role=StaffRole.DEPUTY,
                deputy=deputy,
            )
            db.session.add(user)
            accounts[deputy.id] = user
    db.session.flush()
    everyone = list(db.session.scalars(select(Department).order_by(Department.id)))
    top = [d for d in everyone if d.parent_id is None]
    units: dict[int, list[Department]] = {}
    for department in everyone:
        if department.parent_id is not None:
            units.setdefault(department.parent_id, []).append(department)
    main, few = (top[:-1], top[-1]) if len(top) > 1 else (top, None)
    conduct = random.Random(SEED + 1)  # noqa: S311 - a reproducible demo, not a secret
    return _Cast({d.id: accounts[d.id] for d in deputies}, main, few, units, conduct)


def _at(day: date, rng: random.Random) -> datetime:
    """A moment of office or evening hours on ``day`` in China."""
    return datetime.combine(day, time(rng.randint(8, 20), rng.randint(0, 59)), tzinfo=CHINA)


def _message(rng: random.Random) -> CleanMessage:
    category = rng.choice(list(MESSAGES))
    named = rng.random() < 0.6
    return CleanMessage(
        body=rng.choice(MESSAGES[category]),
        category=category,
        name=rng.choice("王李张刘陈杨黄赵周吴") + rng.choice(("桂芳", "建国", "秀英", "志强", "海燕", "长生"))
        if named
        else "",
        phone=f"138{rng.randint(0, 99_999_999):08d}" if named else "",
        consent=named,
    )


def _story(
    item: Item,
    earlier: Item | None,
    user: StaffUser,
    cast: _Cast,
    start: datetime,
    today_end: datetime,
    rng: random.Random,
) -> None:
    """Take one item from submission as far as its drawn fate goes, each step at its own moment.

    Fates, by the first draw: 4 % declined, 2 % a duplicate of the station's previous item,
    in the last sixty days 3 % accepted and then left (overdue by now) and 2 % waiting for the
    resident's answer; the rest answered (30 % through a department, which now and then gives the item back or
    promises completion by a date, at its own pace: ``ANSWER_HOURS``) and resolved, 70 % of those
    rated (10 % 不满意: the deputy takes it up again, and the resident's second verdict,
    when there is one, is not always kinder).
    """
    moment = start

    def step(hours_low: float, hours_high: float) -> datetime | None:
        nonlocal moment
        moment = moment + timedelta(hours=rng.uniform(hours_low, hours_high))
        return moment if moment < today_end else None

    fate = rng.random()
    if step(2, 60) is None:
        return  # still waiting to be accepted (overdue when the draw was slow)
    with clock_at(moment):
        if fate < 0.04:
            lifecycle.perform_action(item, user, "decline", text=DECLINE)
            return
        if fate < 0.06 and earlier is not None and earlier.status.value not in ("declined", "duplicate"):
            lifecycle.perform_action(
                item, user, "duplicate", duplicate_of=earlier.ref, text="与此前反映的问题相同，合并办理。"
            )
            return
        lifecycle.perform_action(item, user, "accept")
    recent = today_end - start < timedelta(days=60)
    if fate < 0.09 and recent:
        return  # accepted and left: overdue once its answer deadline passed (a recent lapse, not a forgotten one)
    if 0.09 <= fate < 0.11 and recent:
        if step(4, 48) is not None:
            with clock_at(moment):
                lifecycle.perform_action(item, user, "wait_for_resident", text="请补充具体位置，最好附上照片。")
        return
    forwarded = rng.random() < 0.3
    if forwarded:
        if step(4, 48) is None:
            return
        with clock_at(moment):
            due = (moment.astimezone(CHINA) + timedelta(days=15)).date().isoformat()
            department = cast.pick_department(rng)
            lifecycle.perform_action(item, user, "forward", department_id=department.id, due=due, text=FORWARD_NOTE)
        if step(*cast.answer_hours(department)) is None:
            return
        forward = db.session.scalars(
            select(ItemForward).where(ItemForward.item_id == item.id).order_by(ItemForward.id.desc())
        ).first()
        with clock_at(moment):
            if cast.conduct.random() < RETURN_SHARE:
                lifecycle.department_return(forward, RETURN_REASON)
            else:
                promised = None
                if cast.conduct.random() < PROMISE_SHARE:
                    promised = (moment.astimezone(CHINA) + timedelta(days=cast.conduct.randint(20, 120))).date()
                lifecycle.department_answer(forward, rng.choice(DEPARTMENT_ANSWERS), promised)
    if step(6, 150 if fate > 0.9 else 72) is None:
        return  # in hand; overdue when the answer deadline passed before today
    with clock_at(moment):
        lifecycle.perform_action(item, user, "reply", text=rng.choice(REPLIES))
    if step(24, 200) is None:
        return
    outcome = rng.choices(("solved", "partly", "unsolved"), weights=(80, 14, 6))[0]
    text = {"solved": rng.choice(RESOLUTIONS), "partly": PARTLY, "unsolved": UNSOLVED}[outcome]
    with clock_at(moment):
        lifecycle.perform_action(item, user, "resolve", outcome=outcome, text=text)
    if rng.random() > 0.7 or step(2, 96) is None:
        return  # most residents rate; some never do
    verdict = rng.choices(("satisfied", "basically", "unsatisfied"), weights=(74, 16, 10))[0]
    with clock_at(moment):
        lifecycle.rate_item(
            item,
            verdict,
            outcome == "solved" and verdict != "unsatisfied",
            UNSATISFIED if verdict == "unsatisfied" else "",
        )
    if verdict == "unsatisfied" and step(24, 120) is not None:
        with clock_at(moment):
            lifecycle.perform_action(item, user, "reply", text="已再次到现场，联系施工单位返修，并约定一个月后回访。")
        if step(48, 200) is not None:
            with clock_at(moment):
                lifecycle.perform_action(item, user, "resolve", outcome="solved", text=rng.choice(RESOLUTIONS))
            if rng.random() < 0.6 and step(2, 72) is not None:
                second = rng.choices(("satisfied", "basically", "unsatisfied"), weights=(40, 30, 30))[0]
                with clock_at(moment):
                    lifecycle.rate_item(
                        item, second, second != "unsatisfied", UNSATISFIED if second == "unsatisfied" else ""
                    )


PRESENT_SHARE = 0.8  # of the reception days the calendar gave a deputy, how many they came on


def _presence(cast: _Cast, deputies: list[Deputy], first_day: date, now: datetime) -> None:
    """Each deputy's visits on most of their reception days before ``now`` (a random stream of its own, so that
    the items are the same with or without it)."""
    rng = random.Random(SEED + 1)  # noqa: S311 - a reproducible demo, not a secret
    for deputy in deputies:
        user = cast.accounts[deputy.id]
        day = first_day
        while day < now.astimezone(CHINA).date():
            if presence.is_reception_day_of(deputy, deputy.station, day) and rng.random() < PRESENT_SHARE:
                arrived = datetime.combine(day, time(9, rng.randint(0, 30)), tzinfo=CHINA)
                with clock_at(arrived):
                    presence.check_in_or_out(user, deputy, deputy.station, PresenceSource.SCAN)
                with clock_at(arrived + timedelta(hours=2, minutes=rng.randint(0, 40))):
                    presence.check_in_or_out(user, deputy, deputy.station, PresenceSource.SCAN)
            day += timedelta(days=1)
    db.session.flush()


def load_history(today: date, now: datetime, months: int = MONTHS) -> int:
    """Write the demo county's last ``months`` whole months and this one so far (flushes; the caller commits).

    Returns how many items it wrote. ``now`` ends the history: nothing happens at or after it.
    """
    cast = _cast()
    rng = random.Random(SEED)  # noqa: S311 - a reproducible demo, not a secret
    slugs = {deputy_id: current_code(user.deputy).slug for deputy_id, user in cast.accounts.items()}
    deputies = list(db.session.scalars(select(Deputy).where(Deputy.id.in_(cast.accounts)).order_by(Deputy.id)))
    first_day = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
    for _ in range(months - 1):
        first_day = (first_day - timedelta(days=1)).replace(day=1)
    written: list[int] = []
    previous: dict[int, Item] = {}  # the station's latest item, for a duplicate
    day = first_day
    while day <= today:
        for deputy in deputies:
            if rng.random() > rng.uniform(*ITEMS_PER_DEPUTY_MONTH) / 30:
                continue  # about 3–7 a month each, spread over the days
            start = _at(day, rng)
            if start >= now:
                continue
            message = _message(rng)
            submission = Submission(
                code=slugs[deputy.id],
                body=message.body,
                category=message.category.value,
                name=message.name,
                phone=message.phone,
                consent=message.consent,
                publish_consent=cast.conduct.random() < PUBLISH_SHARE,
                address=f"198.51.100.{len(written) % 250 + 1}",  # documentation addresses, one resident each
            )
            with clock_at(start):
                item = db.session.get(Item, submit_item(submission).item_id)
            _story(item, previous.get(deputy.station_id), cast.accounts[deputy.id], cast, start, now, rng)
            previous[deputy.station_id] = item
            written.append(item.id)
        day += timedelta(days=1)
        db.session.flush()
    _presence(cast, deputies, first_day, now)
    # The past sends nothing: its notices would reach today's phones.
    db.session.execute(delete(OutboxMessage).where(OutboxMessage.item_id.in_(written)))
    db.session.flush()
    return len(written)
