"""公示: what a station (or a region) publishes to everyone, without a login.

Three parts, each from where it already lives:

- the figures of the last twelve months (``stats.compute``, with its minimum-sample rule: a rate
  below ``STATS_MIN_SAMPLE`` reads 样本不足, never a number from too few items);
- the reception days and who is on duty on the next ones (``stations.calendar``);
- the resolved items whose residents ticked 同意公示 on the form (``Item.publish_consented_at``),
  latest first, each with its answer. Their texts are masked as for anyone not handling the item
  (``masking.mask_message``: mobile numbers, and the resident's own name where the text repeats it);
  the resident's name, number and WeChat are never read here. An item reopened, withdrawn, erased
  or anonymised is not shown: the reopening takes it out of 已办结, and the others clear the consent
  (``retention._scrub``). Nothing else a resident sent is ever published.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import ColumnElement, and_, select

from backend.access import region_subtree
from backend.extensions import db
from backend.items.masking import mask_message
from backend.models import Deputy, DeputyStatus, Item, ItemEvent, ItemEventKind, ItemStatus, Region, Station
from backend.models.item import ITEM_CATEGORY_LABELS, ITEM_OUTCOME_LABELS
from backend.stations.calendar import (
    deputies_on_duty,
    describe_rule,
    next_reception_days,
    today_in_china,
)
from backend.supervision import stats

PUBLISHED_LIST_SIZE = 20  # the latest published items a page shows
RECEPTION_DAYS_SHOWN = 3

DEFINITIONS = {
    "published": "只公开群众在留言时勾选了“同意公示”、并且已经办结的留言；不显示姓名和电话，文中的手机号码和留言人姓名已隐去。"
    "群众撤回留言或删除联系方式后，不再公开。",
    "figures": "最近12个月（按群众提交时间，北京时间）的办理情况，由系统根据每件留言的办理记录自动计算，"
    "任何人都不能直接填写。已评价件数不足时不计算满意率。",
}


def published_condition() -> ColumnElement[bool]:
    """The SQL of a published item: resolved, the resident agreed to publish it, not held for review."""
    return and_(Item.publish_consented_at.is_not(None), Item.status == ItemStatus.RESOLVED, Item.is_held.is_(False))


@dataclass(frozen=True)
class PublishedItem:
    """One published item as the page shows it: no name, no number, the texts masked."""

    category: str
    received_on: date
    resolved_on: date
    body: str
    answer: str
    outcome: str
    station_name: str


@dataclass(frozen=True)
class ReceptionDay:
    """A coming reception day and the deputies on duty (empty: the station's deputies, none named)."""

    day: date
    deputies: list[str]


@dataclass
class Disclosure:
    """Everything a 公示 page shows."""

    title: str
    figures: stats.Figures
    published: list[PublishedItem]
    rules: list[str] = field(default_factory=list)
    reception_days: list[ReceptionDay] = field(default_factory=list)
    deputies: list[str] = field(default_factory=list)
    stations: list[Station] = field(default_factory=list)


def public_station(station_id: int) -> Station | None:
    """An active station (None for an unknown or closed one: the page answers 404)."""
    station = db.session.get(Station, station_id)
    return station if station is not None and station.is_active else None


def public_region(code: str) -> Region | None:
    """A region by its code that has at least one active station (None otherwise: 404)."""
    if not isinstance(code, str) or not code.isascii() or not code.isdigit() or len(code) > 12:
        return None
    region = db.session.scalar(select(Region).where(Region.code == code))
    if region is None:
        return None
    has_station = db.session.scalar(
        select(Station.id).where(Station.region_id.in_(region_subtree(region.id)), Station.is_active.is_(True)).limit(1)
    )
    return region if has_station is not None else None


def _replies(item_ids: list[int]) -> dict[int, str]:
    """{item id: the deputy's latest answer to the resident (答复)}, from the public events, one query."""
    if not item_ids:
        return {}
    events = db.session.execute(
        select(ItemEvent.item_id, ItemEvent.body)
        .where(
            ItemEvent.item_id.in_(item_ids),
            ItemEvent.is_public.is_(True),
            ItemEvent.kind == ItemEventKind.REPLIED,
        )
        .order_by(ItemEvent.id)
    )
    return dict(events.all())  # the last of each item's wins


def published_items(station_ids: list[int], limit: int = PUBLISHED_LIST_SIZE) -> list[PublishedItem]:
    """The latest published items of these stations, masked (see the module's docstring)."""
    if not station_ids:
        return []
    items = db.session.execute(
        select(
            Item.id,
            Item.category,
            Item.created_at,
            Item.resolved_at,
            Item.body,
            Item.contact_name,
            Item.outcome,
            Item.outcome_reason,
            Station.name,
        )
        .join(Station, Station.id == Item.station_id)
        .where(Item.station_id.in_(station_ids), published_condition())
        .order_by(Item.resolved_at.desc(), Item.id.desc())
        .limit(limit)
    ).all()
    replies = _replies([row.id for row in items])
    published = []
    for row in items:
        name = row.contact_name  # read only to mask it where the texts repeat it
        answer = mask_message(replies.get(row.id, ""), name)
        label = ITEM_OUTCOME_LABELS[row.outcome] if row.outcome else ""
        reason = mask_message(row.outcome_reason, name)
        outcome = f"{label}。{reason}" if label and reason else label or reason
        published.append(
            PublishedItem(
                category=ITEM_CATEGORY_LABELS[row.category],
                received_on=today_in_china(row.created_at),
                resolved_on=today_in_china(row.resolved_at),
                body=mask_message(row.body, name),
                answer=answer,
                outcome=outcome,
                station_name=row.name,
            )
        )
    return published


def _reception_days(station: Station, today: date) -> list[ReceptionDay]:
    days = next_reception_days(station.reception_rules, today, count=RECEPTION_DAYS_SHOWN)
    return [ReceptionDay(day, [d.name for d in deputies_on_duty(station, day)]) for day in days]


def station_disclosure(station: Station, now: datetime | None = None) -> Disclosure:
    """The 公示 of one station."""
    today = today_in_china(now)
    scope = stats.Scope("station", station=station)
    figures = stats.compute(scope, stats.default_range(today), now=now, with_children=False)
    serving = db.session.scalars(
        select(Deputy.name)
        .where(Deputy.station_id == station.id, Deputy.status == DeputyStatus.SERVING)
        .order_by(Deputy.id)
    ).all()
    return Disclosure(
        title=station.name,
        figures=figures,
        published=published_items([station.id]),
        rules=[describe_rule(rule) for rule in station.reception_rules],
        reception_days=_reception_days(station, today),
        deputies=list(serving),
    )


def region_disclosure(region: Region, now: datetime | None = None) -> Disclosure:
    """The 公示 of a region: its figures, its active stations (each linking to its own page), their items."""
    today = today_in_china(now)
    scope = stats.Scope("region", region=region)
    figures = stats.compute(scope, stats.default_range(today), now=now, with_children=False)
    stations = list(
        db.session.scalars(
            select(Station)
            .where(Station.region_id.in_(region_subtree(region.id)), Station.is_active.is_(True))
            .order_by(Station.id)
        )
    )
    return Disclosure(
        title=region.name,
        figures=figures,
        published=published_items([s.id for s in stations]),
        stations=stations,
    )


def _rate(rate: stats.Rate) -> dict:
    return {
        "value": rate.value,
        "label": rate.percent_label,
        "numerator": rate.numerator,
        "denominator": rate.denominator,
    }


def disclosure_json(disclosure: Disclosure, station: Station) -> dict:
    """``GET /api/v1/public/stations/<id>``: what the station's page shows."""
    figures = disclosure.figures
    counts, rates = figures.counts, figures.rates
    return {
        "station": {"id": station.id, "name": station.name, "address": station.address},
        "from": figures.range.start.isoformat(),
        "to": figures.range.end.isoformat(),
        "min_sample": figures.min_sample,
        "figures": {
            "received": counts.received,
            "valid": counts.valid,
            "answered": counts.answered,
            "resolved": counts.resolved,
            "rated": counts.rated,
            "answer_rate": _rate(rates["answer_rate"]),
            "resolve_rate": _rate(rates["resolve_rate"]),
            "satisfaction_rate": _rate(rates["satisfaction_rate"]),
            "median_first_answer_hours": None
            if figures.median_first_answer_hours is None
            else round(figures.median_first_answer_hours, 1),
        },
        "reception_rules": disclosure.rules,
        "reception_days": [
            {"date": day.day.isoformat(), "deputies_on_duty": day.deputies} for day in disclosure.reception_days
        ],
        "deputies": disclosure.deputies,
        "published": [
            {
                "category": item.category,
                "received_on": item.received_on.isoformat(),
                "resolved_on": item.resolved_on.isoformat(),
                "body": item.body,
                "answer": item.answer,
                "outcome": item.outcome,
            }
            for item in disclosure.published
        ],
        "definitions": DEFINITIONS,
    }
