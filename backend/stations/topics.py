"""Topic codes (专题码): a station collects opinions on one topic — a 营商环境监测点, a draft law open for
opinions (立法联系点), a 民生实事 poll — through a code of its own, with a short form and a closing date.

The form is kept simple on purpose: one prompt line, and optionally two to six choices of which the
resident picks one; the message itself is an ordinary item of the station (no deputy: the station's
administrators handle it, ``queue.handler_ids``), reached through the topic's code, so the inbox,
the lifecycle, the notices and the figures need nothing new. The choice is written at the head of
the message (``【choice】``, read by whoever handles it and in the export) and in the submission
event's data (``topic_choice``), from which the topic page counts the answers.

After the closing day (China time) the code opens a page saying the topic is closed, never a form,
and every submission to it is refused (410 ``topic_closed``).
"""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta

from sqlalchemy import select

from backend.audit import record_audit
from backend.errors import FieldErrors, UserError, checked
from backend.extensions import db
from backend.items.validation import clean_text, parse_day
from backend.models import Code, Item, ItemEvent, ItemEventKind, StaffUser, Station, Topic, TopicKind
from backend.qr.codes import current_code, issue_code
from backend.stations.calendar import CHINA_TZ, today_in_china
from backend.supervision.stats import china_midnight

TITLE_MAX_CHARS = 60
PROMPT_MAX_CHARS = 200
CHOICE_MAX_CHARS = 20
MAX_CHOICES = 6
LONGEST_OPEN_DAYS = 366


def closes_at(day: date) -> datetime:
    """The end of ``day`` in China (the next midnight), when a topic closing that day stops taking messages."""
    return china_midnight(day + timedelta(days=1))


def closing_day(topic: Topic) -> date:
    """The last day a topic takes messages (China time)."""
    return (topic.closes_at.astimezone(CHINA_TZ) - timedelta(seconds=1)).date()


def _choices(value: object) -> list[str]:
    """The choices typed one per line: none, or two to six distinct ones of up to 20 characters."""
    text = value if isinstance(value, str) else ""
    lines: list[str] = []
    for line in text.splitlines():
        choice = clean_text(line, "choices", "选项", max_chars=CHOICE_MAX_CHARS)
        if choice and choice not in lines:
            lines.append(choice)
    if len(lines) == 1 or len(lines) > MAX_CHOICES:
        raise UserError(
            "invalid_choices", f"选项请写2到{MAX_CHOICES}个（每行一个），或者不设选项。", 400, field="choices"
        )
    return lines


def _closing_day(value: object) -> date:
    day = parse_day(value, "closes_on", "截止日期")
    today = today_in_china()
    if day < today:
        raise UserError("closes_in_past", "截止日期不能早于今天。", 400, field="closes_on")
    if day > today + timedelta(days=LONGEST_OPEN_DAYS):
        raise UserError("closes_too_late", "截止日期最多设在一年之后。", 400, field="closes_on")
    return day


def _kind(value: object) -> TopicKind:
    try:
        return TopicKind(value)
    except ValueError:
        raise UserError("invalid_kind", "请选择专题类型。", 400, field="kind") from None


def create_topic(user: StaffUser, station: Station, form) -> Topic:
    """A new topic of ``station`` with its code (flushes); every field checked first, nothing written on a refusal.

    ``form``: ``kind``, ``title``, ``prompt``, ``choices`` (one per line, optional), ``closes_on`` (YYYY-MM-DD,
    today or later). The caller has checked that ``user`` manages ``station`` (``access.require_station``).
    """
    if not station.is_active:
        raise UserError("station_inactive", f"{station.name}已停用，不能再设专题码。", 400)
    errors: list[UserError] = []

    kind = checked(errors, lambda: _kind(form.get("kind")))
    title = checked(
        errors,
        lambda: clean_text(
            form.get("title"), "title", "专题名称", max_chars=TITLE_MAX_CHARS, min_chars=2, required=True
        ),
    )
    prompt = checked(
        errors,
        lambda: clean_text(
            form.get("prompt"), "prompt", "提问", max_chars=PROMPT_MAX_CHARS, min_chars=2, required=True
        ),
    )
    choices = checked(errors, lambda: _choices(form.get("choices")))
    day = checked(errors, lambda: _closing_day(form.get("closes_on")))
    if errors:
        raise FieldErrors(errors)
    topic = Topic(
        station=station,
        kind=kind,
        title=title,
        prompt=prompt,
        choices=choices,
        closes_at=closes_at(day),
        created_by_id=user.id,
    )
    db.session.add(topic)
    db.session.flush()
    code = issue_code(topic)
    record_audit(
        "topic_created",
        user=user,
        object_type="topic",
        object_id=topic.id,
        data={"station_id": station.id, "slug": code.slug, "closes_on": day.isoformat()},
    )
    return topic


def topics_of(station: Station) -> list[Topic]:
    """A station's topics, newest first."""
    return list(db.session.scalars(select(Topic).where(Topic.station_id == station.id).order_by(Topic.id.desc())))


def topic_code(topic: Topic) -> Code | None:
    """The topic's current code."""
    return current_code(topic)


def topic_items_query(topic: Topic):
    """``select(Item)`` of the messages sent through the topic's codes (every one it ever had)."""
    return select(Item).join(Code, Item.code_id == Code.id).where(Code.topic_id == topic.id)


def topic_items(topic: Topic) -> list[Item]:
    """The topic's messages, newest first."""
    return list(db.session.scalars(topic_items_query(topic).order_by(Item.created_at.desc(), Item.id.desc())))


def choice_counts(topic: Topic) -> list[tuple[str, int]]:
    """How many messages picked each of the topic's choices, in the topic's order (a choice nobody picked: 0)."""
    ids = topic_items_query(topic).with_only_columns(Item.id)
    data = db.session.scalars(
        select(ItemEvent.data).where(ItemEvent.item_id.in_(ids), ItemEvent.kind == ItemEventKind.SUBMITTED)
    )
    counted = Counter((row or {}).get("topic_choice") for row in data)
    return [(choice, counted.get(choice, 0)) for choice in topic.choices]


def topic_closed(topic_title: str) -> UserError:
    """The answer to a message for a topic past its closing day."""
    return UserError(
        "topic_closed", f"“{topic_title}”的意见征集已经结束，不再接收留言。感谢您的关注。", 410, field="code"
    )


def clean_choice(choices: list[str], value: object) -> str:
    """The resident's choice: one of the topic's (required when it has any), or "" for a topic without choices."""
    if not choices:
        return ""
    if not isinstance(value, str) or value not in choices:
        raise UserError("invalid_choice", "请选择一项。", 400, field="choice")
    return value
