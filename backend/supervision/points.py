"""履职积分: a deputy's points from what the system recorded, with every rule written here, once.

``RULES`` is the whole scoring scheme as data: each rule's points, its unit and the
sentence shown beside the score on the deputy's figures page. ``NOT_COUNTED`` says, on the
same page, what a county's 积分管理办法 usually scores but this system cannot see. A county
that scores differently changes the numbers here and nowhere else.

Every count comes from recorded columns and events of items submitted in the range (the
same items as the deputy's figures), except reception days, which count the days on which
the deputy signed in at a station (进站签到, ``stations.presence``) or their own account entered an
item received in person (代表接待选民), and contacts, which count the 走访, 座谈 and phone calls
the deputy logged (``stations.contacts``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from sqlalchemy import select

from backend.extensions import db
from backend.items import deadlines
from backend.models import ActorKind, Item, ItemChannel, ItemEvent, ItemEventKind, StaffRole, StaffUser
from backend.stations import contacts, presence
from backend.stations.calendar import today_in_china
from backend.supervision.stats import FIGURES, Figures, in_range


@dataclass(frozen=True)
class PointRule:
    """One scoring rule: what is counted, per what, for how many points, explained in Chinese."""

    key: str
    title: str
    points: int
    unit: str  # 件 / 天 / 次
    description: str


def on_time_days() -> int:
    """Working days from submission within which a first answer is on time: accept + answer deadlines."""
    return current_app.config["ACCEPT_DUE_DAYS"] + current_app.config["ANSWER_DUE_DAYS"]


def rules() -> tuple[PointRule, ...]:
    """The scoring rules (the on-time rule's day count follows the deadline settings)."""
    days = on_time_days()
    working = "个工作日" if deadlines.counts_working_days() else "天"
    return (
        PointRule(
            "answered",
            "答复群众留言",
            2,
            "件",
            "有效件（不含不予受理、重复件）中已答复的，每件2分；同一件答复多次只计一次。",
        ),
        PointRule(
            "answered_on_time",
            "按期答复",
            1,
            "件",
            f"第一次答复（或未单独答复而直接办结）在群众提交后{days}{working}内的，每件再加1分"
            f"（受理期限与答复期限之和，与系统的办理期限相同）。",
        ),
        PointRule(
            "satisfied",
            "群众评价满意",
            2,
            "件",
            "群众自己提交的留言，群众评价“满意”的，每件2分；每件按群众最近一次评价计。",
        ),
        PointRule(
            "basically_satisfied", "群众评价基本满意", 1, "件", "群众自己提交的留言，群众评价“基本满意”的，每件1分。"
        ),
        PointRule(
            "reception_days",
            "到站接待",
            3,
            "天",
            "代表到联络站签到（本人扫码或在手机上签到，或由联络站管理员代为登记）的日子，以及代表本人在系统中录入"
            "“接待选民时收到的意见”的日子（北京时间），每天3分；同一天签到多次、录入多件只计一次；非接待日的签到也计入。",
        ),
        PointRule(
            "contacts",
            "联系群众",
            1,
            "次",
            "代表记录的走访、座谈、电话联系群众（按联系日期），每次1分；转为留言件的仍计一次，留言件另按上面各项计分。",
        ),
    )


NOT_COUNTED = (
    "签到后没有签退的：只要签到就计当天，系统不按在站时长计分。",
    "暂停计时和延期：按期答复按标准期限计算，不扣除等待群众补充的时间，也不认延长的期限。",
    "群众评价不满意不扣分；超期不扣分（超期件在监督页另列）。",
    "代表接待时录入的意见的满意度：单列在监督页，不计入满意项积分，因为这些意见是代表本人录入的。",
    "视察调研、提出代表建议、出席会议、述职等线下履职：不在本系统记录，由人大常委会另行计分。",
)


@dataclass(frozen=True)
class PointLine:
    """One rule applied: how many were counted and the points they earn."""

    rule: PointRule
    quantity: int

    @property
    def points(self) -> int:
        """quantity × the rule's points."""
        return self.quantity * self.rule.points


@dataclass(frozen=True)
class Points:
    """A deputy's 履职积分 over a range, line by line."""

    lines: tuple[PointLine, ...]

    @property
    def total(self) -> int:
        """The sum of every line."""
        return sum(line.points for line in self.lines)


def _answered_on_time(figures: Figures) -> int:
    """Answered valid items whose first answer came within ``on_time_days`` of submission."""
    rows = db.session.execute(
        select(Item.created_at, Item.first_answered_at, Item.resolved_at).where(
            *in_range(figures.scope, figures.range), Item.is_held.is_(False), FIGURES["answered"]
        )
    ).all()
    days = on_time_days()
    on_time = 0
    for created_at, first_answered_at, resolved_at in rows:
        answered_at = first_answered_at or resolved_at
        if answered_at <= deadlines.due_after(created_at, days):
            on_time += 1
    return on_time


def _reception_days(figures: Figures) -> int:
    """China dates in the range on which the deputy signed in at a station, or one of their accounts entered an
    item received in person."""
    deputy = figures.scope.deputy
    accounts = select(StaffUser.id).where(StaffUser.deputy_id == deputy.id, StaffUser.role == StaffRole.DEPUTY)
    moments: list[datetime] = list(
        db.session.scalars(
            select(ItemEvent.created_at)
            .join(Item, Item.id == ItemEvent.item_id)
            .where(
                ItemEvent.kind == ItemEventKind.SUBMITTED,
                ItemEvent.actor_kind == ActorKind.STAFF,
                ItemEvent.actor_user_id.in_(accounts),
                Item.channel == ItemChannel.IN_PERSON,
                ItemEvent.created_at >= figures.range.start_at,
                ItemEvent.created_at < figures.range.end_at,
            )
        )
    )
    days = {today_in_china(moment) for moment in moments}
    return len(days | presence.presence_days(deputy, figures.range.start_at, figures.range.end_at))


def deputy_points(figures: Figures) -> Points:
    """The 履职积分 of the deputy whose figures these are (``figures.scope.kind == "deputy"``)."""
    if figures.scope.kind != "deputy":
        raise ValueError("points are a deputy's")
    counts = figures.counts
    quantities = {
        "answered": counts.answered,
        "answered_on_time": _answered_on_time(figures),
        "satisfied": counts.fully_satisfied,
        "basically_satisfied": counts.basically_satisfied,
        "reception_days": _reception_days(figures),
        "contacts": contacts.contacts_count(
            start=figures.range.start, end=figures.range.end, deputy_id=figures.scope.deputy.id
        ),
    }
    return Points(tuple(PointLine(rule, quantities[rule.key]) for rule in rules()))
