"""What each outbox kind tells whom: recipient, subscribe-message template, data and page.

Residents are told when their item is received, accepted, forwarded, answered by the department
it was forwarded to (that it answered the deputy, never what: the answer is the deputy's to
pass on), answered (with the beginning of the answer) and resolved (with a request to rate),
and of the other public steps the lifecycle reports (declined, duplicate, reassigned,
extended, waiting), and when a 代表建议 drawn from their item is answered. Deputies
are told of a new item, one about to be overdue, an overdue item, a reopened item, a
supervisor's 督办, a department's reply, return (退回) or request for more time, the resident's reply
to 等待群众补充 and the resident's 追问 — queued by ``queue``, and several within
``NOTICE_COALESCE_SECONDS`` sent as one (``payload["also"]``: a digest). A department with accounts
is told of a new forward through its accounts' bound WeChat; one without has its link as its channel.

Templates are chosen per purpose in ``WECHAT_TEMPLATES``, each one-time or long-term
(``backend.wechat.subscriptions``). With one-time templates one ``accept`` allows one
message, so the resident's progress notices spend the ``item_progress`` credit and never
the one kept for the answer or the resolution; and the "已提交" notice (the confirmation
page said it already) is queued only when the progress template is long-term, so it never
takes the one-time credit that 受理 needs (``is_received_notice_sent``).

WeChat refuses a value over its key type's limit with 47003, so every value is cut here,
deliberately, to the limit of the key's type (the key name without its number:
``thing3`` → thing). Lengths are counted in UTF-16 code units — what the mini-program's
JavaScript counts, and never less than the code points WeChat's server may count — and a
cut never splits a character, a surrogate pair or an emoji sequence.

Where this module stands: above ``queue`` (the low-level writer, which decides nothing about
templates) and above ``backend.wechat.subscriptions`` (credits and switches, which knows nothing
of the outbox). The decisions that need both the table of kinds and the templates live here:
whether a resident is told "已提交" (``is_received_notice_sent``, asked by the submission before it
calls the writer; ``queue_received_after_subscribing``), and which purposes a page asks WeChat for
(``audience_purposes``, ``staff_notices_off``). So every arrow between the three runs one way:
``notifications`` → ``queue``, ``notifications`` → ``subscriptions``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from backend.extensions import db
from backend.items.refs import tracking_url
from backend.models import Item, ItemEvent, ItemForward, ItemStatus, OutboxMessage, Proposal, Resident, StaffUser
from backend.models.item import ITEM_OUTCOME_LABELS
from backend.outbox import queue
from backend.timefmt import CHINA
from backend.wechat.subscriptions import LONG_TERM, notices_state, template_kind

ELLIPSIS = "…"
RESIDENT_PAGE = "pages/item/item?ref={ref}"
DEPUTY_PAGE = "pages/inbox/item?ref={ref}"
EMPTY_VALUE = {"thing": "无", "phrase": "无", "name": "无"}

# Limits of WeChat's subscribe-message value types (WECHAT.md).
THING_MAX = 20
PHRASE_MAX = 5
CHARACTER_STRING_MAX = 32
NUMBER_MAX = 32
LETTER_MAX = 32
SYMBOL_MAX = 5
NAME_HAN_MAX = 10
NAME_LETTERS_MAX = 20
PHONE_NUMBER_MAX = 17
CAR_NUMBER_MAX = 8

_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]")
_ASCII_VISIBLE = re.compile(r"[!-~]")
_WHITESPACE = re.compile(r"\s+")
_ZWJ = "\u200d"
_SKIN_TONES = range(0x1F3FB, 0x1F400)
_REGIONAL_INDICATORS = range(0x1F1E6, 0x1F200)


class NoChannel(Exception):
    """The message has no WeChat channel (no identity, no template): it is skipped, never retried."""


class NotDefined(Exception):
    """The outbox kind has no notification defined: a programming error, recorded as a permanent failure."""


@dataclass(frozen=True)
class Notice:
    """One subscribe message, ready to send."""

    openid: str
    purpose: str
    template_id: str
    data: dict
    page: str
    is_long_term: bool = False  # the template is long-term: on until switched off, nothing to spend
    channel: str = "miniprogram"  # or "official_account": a service account's notice (bizsend) to an H5 resident


# --- value limits -------------------------------------------------------------------------


def key_type(key: str) -> str:
    """The value type of a template key: ``thing3`` → ``thing``, ``character_string1`` → ``character_string``."""
    return re.sub(r"\d+$", "", key)


def utf16_length(text: str) -> int:
    """Length in UTF-16 code units: an emoji outside the BMP counts 2."""
    return sum(2 if ord(ch) > 0xFFFF else 1 for ch in text)


def clusters(text: str) -> list[str]:
    """Split ``text`` into user-perceived characters, closely enough never to cut one in two.

    Keeps together a base and its combining marks, variation selectors, skin-tone modifiers,
    ZWJ-joined emoji sequences and regional-indicator pairs (flags).
    """
    out: list[str] = []
    for ch in text:
        code = ord(ch)
        if out:
            last = out[-1]
            joins = (
                unicodedata.combining(ch)
                or 0xFE00 <= code <= 0xFE0F
                or code in _SKIN_TONES
                or 0xE0020 <= code <= 0xE007F  # emoji tag sequences
                or ch == _ZWJ
                or last.endswith(_ZWJ)
                or (
                    code in _REGIONAL_INDICATORS
                    and ord(last[-1]) in _REGIONAL_INDICATORS
                    and sum(ord(c) in _REGIONAL_INDICATORS for c in last) % 2 == 1
                )
            )
            if joins:
                out[-1] = last + ch
                continue
        out.append(ch)
    return out


def cut_text(text: str, limit: int, ellipsis: str = ELLIPSIS) -> str:
    """``text`` if it fits in ``limit`` UTF-16 units, else its beginning plus ``ellipsis``, fitting the limit."""
    if utf16_length(text) <= limit:
        return text
    budget = limit - utf16_length(ellipsis)
    kept: list[str] = []
    used = 0
    for cluster in clusters(text):
        size = utf16_length(cluster)
        if used + size > budget:
            break
        kept.append(cluster)
        used += size
    return "".join(kept).rstrip() + ellipsis


def one_line(text: str) -> str:
    """Newlines, tabs and runs of spaces become one space; control characters go."""
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Cc" or ch in "\t\n\r")
    return _WHITESPACE.sub(" ", text).strip()


def wechat_time(value: datetime) -> str:
    """A time as WeChat's ``time`` type takes it, in China time: ``2026年11月21日 15:01``."""
    local = value.astimezone(CHINA)
    return f"{local.year}年{local.month}月{local.day}日 {local:%H:%M}"


def wechat_date(value: datetime) -> str:
    """A date as WeChat's ``date`` type takes it, in China time: ``2026年11月21日``."""
    local = value.astimezone(CHINA)
    return f"{local.year}年{local.month}月{local.day}日"


def fit_value(key: str, value: object) -> str:
    """``value`` made acceptable for template key ``key``: cut to its type's limit, in its type's charset."""
    kind = key_type(key)
    if isinstance(value, datetime):
        return wechat_date(value) if kind == "date" else wechat_time(value)
    text = one_line("" if value is None else str(value))
    if kind == "thing":
        text = cut_text(text, THING_MAX)
    elif kind == "phrase":  # at most five Chinese characters, nothing else
        text = "".join(_HAN.findall(text))[:PHRASE_MAX]
    elif kind == "character_string":  # digits, letters and symbols
        text = "".join(_ASCII_VISIBLE.findall(text))[:CHARACTER_STRING_MAX]
    elif kind == "number":
        text = "".join(re.findall(r"[0-9.]", text))[:NUMBER_MAX]
    elif kind == "letter":
        text = "".join(re.findall(r"[A-Za-z]", text))[:LETTER_MAX]
    elif kind == "symbol":
        text = "".join(re.findall(r"[!-/:-@\[-`{-~]", text))[:SYMBOL_MAX]
    elif kind == "name":  # ten Chinese characters, or twenty letters — never mixed
        han = "".join(_HAN.findall(text))
        text = han[:NAME_HAN_MAX] if han else "".join(re.findall(r"[A-Za-z ]", text)).strip()[:NAME_LETTERS_MAX]
    elif kind == "phone_number":
        text = "".join(re.findall(r"[0-9+\-() ]", text)).strip()[:PHONE_NUMBER_MAX]
    elif kind == "car_number":
        text = text.replace(" ", "")[:CAR_NUMBER_MAX]
    elif kind not in ("time", "date"):
        text = cut_text(text, THING_MAX)  # an unknown type: the most common limit
    return text or EMPTY_VALUE.get(kind, "-")


def template_data(purpose: str, values: dict[str, object]) -> tuple[str, dict]:
    """The template id of ``purpose`` and its ``data`` dict, each value fitted to its key's limits."""
    template = current_app.config["WECHAT_TEMPLATES"][purpose]
    data = {key: {"value": fit_value(key, values.get(name))} for key, name in template["fields"].items()}
    return template["id"], data


def is_received_notice_sent() -> bool:
    """True when a new item's "已提交" notice is worth queueing: only with a long-term progress template.

    With a one-time template it would spend the resident's one progress credit on what the
    confirmation page already said, and 受理 — the step the resident waits for — would find none.
    """
    template = current_app.config["WECHAT_TEMPLATES"].get(KINDS["item_received"].purpose)
    return template is not None and template_kind(template) == LONG_TERM


def h5_received_template(resident: Resident | None) -> dict | None:
    """The service account's template that tells an H5 resident "已提交", or None when the resident is not told.

    Issue 11 left it: the mini-program resident subscribes at the submit tap, so the "已提交" row queued with the
    item finds a credit; the H5 resident can only subscribe afterwards, on the confirmation page (the
    ``wx-open-subscribe`` tag needs the page to exist), so that row went out first and was skipped. WECHAT.md allows
    a bizsend to whoever holds a live subscription, so the notice is queued again when the resident accepts
    (``queue_received_after_subscribing``) — under the same rule as the mini-program's: only with a long-term
    template, since a one-time credit is kept for 受理. Only for a resident reached through the service account (an
    official-account openid and no mini-program one: ``build_notice`` prefers the mini-program).
    """
    if resident is None or not resident.mp_openid or resident.openid:
        return None
    template = official_account_template(KINDS["item_received"].purpose)
    if template is None or template_kind(template) != LONG_TERM:
        return None
    return template


def purpose_of_template(template_id: str) -> str | None:
    """The purpose a configured template id serves, or None for an unknown id."""
    for purpose, template in current_app.config["WECHAT_TEMPLATES"].items():
        if template["id"] == template_id:
            return purpose
    return None


# --- what each kind says ------------------------------------------------------------------


@dataclass(frozen=True)
class Context:
    """What a message is about: the outbox row, its item, and the event it reports (when it names one)."""

    message: OutboxMessage
    item: Item
    event: ItemEvent | None

    @property
    def at(self) -> datetime:
        """When the reported step happened."""
        return self.event.created_at if self.event is not None else self.message.created_at

    @property
    def event_text(self) -> str:
        """The public text of the reported event (what the resident reads on the tracking page)."""
        return self.event.body if self.event is not None else ""

    def deputy_label(self) -> str:
        """Who answers: "张秀英代表", or the station when no deputy holds the item."""
        if self.item.deputy is not None:
            return f"{self.item.deputy.name}代表"
        return self.item.station.name


@dataclass(frozen=True)
class KindSpec:
    """How one outbox kind becomes a message: audience, template purpose, and its values."""

    audience: str  # "resident" | "staff" | "none"
    purpose: str | None
    values: Callable[[Context], dict[str, object]] | None = None


def _progress(status: str, fallback: Callable[[Context], str] | str) -> Callable[[Context], dict[str, object]]:
    """Values of a progress notice: the step's status and the event's text (or a fallback)."""

    def values(ctx: Context) -> dict[str, object]:
        default = fallback(ctx) if callable(fallback) else fallback
        return {"status": status, "summary": ctx.event_text or default, "deputy": ctx.deputy_label()}

    return values


def _received(ctx: Context) -> dict[str, object]:
    return {"status": "已提交", "summary": f"已送达{ctx.deputy_label()}，请留意答复", "deputy": ctx.deputy_label()}


def _answered(ctx: Context) -> dict[str, object]:
    return {"status": "已答复", "summary": ctx.event_text or "代表已答复您的留言", "deputy": ctx.deputy_label()}


def _resolved(ctx: Context) -> dict[str, object]:
    outcome = ITEM_OUTCOME_LABELS.get(ctx.item.outcome, "已办结") if ctx.item.outcome else "已办结"
    return {"status": outcome, "summary": "已办结，请对办理结果进行评价", "deputy": ctx.deputy_label()}


def _deputy_new(ctx: Context) -> dict[str, object]:
    """A new item to its handlers: a deputy's, one passed on (转交件), or a topic code's to the station (专题留言)."""
    if (ctx.message.payload or {}).get("reassigned"):
        status = "转交件"
    elif ctx.item.deputy_id is None and ctx.item.code is not None and ctx.item.code.topic_id is not None:
        status = "专题留言"
    else:
        status = "新留言"
    return {"status": status, "summary": ctx.item.body}


def _deputy_overdue(ctx: Context) -> dict[str, object]:
    return {"status": "已超期", "summary": ctx.item.body}


def _deputy_reopened(ctx: Context) -> dict[str, object]:
    return {"status": "被重开", "summary": "群众评价不满意，留言已重新打开"}


def _deputy_supervised(ctx: Context) -> dict[str, object]:
    return {"status": "督办", "summary": ctx.event_text or "上级督办，请尽快办理"}


def _deputy_due_soon(ctx: Context) -> dict[str, object]:
    return {"status": "即将超期", "summary": ctx.item.body}


# What each deputy notice is called when several go out as one (a digest's summary).
DEPUTY_SHORT_LABELS = {
    "deputy_new_item": "新留言",
    "deputy_item_overdue": "超期",
    "deputy_item_due_soon": "即将超期",
    "deputy_item_reopened": "重开",
    "deputy_item_supervised": "督办",
    "deputy_department_replied": "部门答复",
    "deputy_resident_replied": "群众补充",
    "deputy_resident_followup": "群众追问",
    "deputy_department_returned": "部门退回",
    "deputy_extension_requested": "申请延期",
    "deputy_department_passed_on": "转下属单位",
}
DIGEST_PAGE = "pages/inbox/inbox"


WITHDRAWN_NOTE = "群众已撤回留言，不再通知"  # why the worker skips a notice of a withdrawn item


def withdrawn_item_ids(item_ids: set[int]) -> set[int]:
    """Which of these items the resident has withdrawn: their notices are no longer worth sending."""
    ids = {i for i in item_ids if isinstance(i, int)}
    if not ids:
        return set()
    return set(db.session.scalars(select(Item.id).where(Item.id.in_(ids), Item.status == ItemStatus.WITHDRAWN)))


def _live_steps(message: OutboxMessage) -> list[str]:
    """The kinds a message tells (its own and those folded into it), less those of items withdrawn since."""
    entries = [{"kind": message.kind, "item_id": message.item_id}, *(message.payload or {}).get("also", [])]
    withdrawn = withdrawn_item_ids({entry.get("item_id") for entry in entries})
    return [entry.get("kind") for entry in entries if entry.get("item_id") not in withdrawn]


def _digest(message: OutboxMessage) -> dict[str, object]:
    """Values of a message that carries several steps (``payload["also"]``, folded by the worker).

    A step of an item withdrawn after it was folded in is left out (``_live_steps``).
    """
    kinds = _live_steps(message)
    counts: dict[str, int] = {}
    for kind in kinds:
        label = DEPUTY_SHORT_LABELS.get(kind, "动态")
        counts[label] = counts.get(label, 0) + 1
    summary = "、".join(f"{label}{count}条" for label, count in counts.items())
    return {"status": "多条新动态", "summary": summary}


def _forward_department(ctx: Context) -> str:
    forward_id = (ctx.message.payload or {}).get("forward_id")
    forward = db.session.get(ItemForward, forward_id) if forward_id else None
    return forward.department.name if forward is not None else "承办单位"


def _department_replied(ctx: Context) -> dict[str, object]:
    """The resident's notice of a department's answer or progress report: who answered, not what (a private text)."""
    department = _forward_department(ctx)
    if ctx.event is not None and (ctx.event.data or {}).get("final") is False:
        return {"status": "部门报进展", "summary": f"{department}已向代表报告进展", "deputy": ctx.deputy_label()}
    return {"status": "部门已答复", "summary": f"{department}已向代表答复", "deputy": ctx.deputy_label()}


def _deputy_department_replied(ctx: Context) -> dict[str, object]:
    return {"status": "部门答复", "summary": f"{_forward_department(ctx)}已答复"}


def _deputy_department_returned(ctx: Context) -> dict[str, object]:
    return {"status": "部门退回", "summary": f"{_forward_department(ctx)}退回：{ctx.event_text}"}


def _deputy_extension_requested(ctx: Context) -> dict[str, object]:
    return {"status": "申请延期", "summary": f"{_forward_department(ctx)}申请延期"}


def _deputy_department_passed_on(ctx: Context) -> dict[str, object]:
    return {"status": "转下属单位", "summary": f"{_forward_department(ctx)}已转交下属单位"}


def _department_new(ctx: Context) -> dict[str, object]:
    return {"status": "新交办", "summary": ctx.item.body}


def _proposal_answered(ctx: Context) -> dict[str, object]:
    """The resident's notice that the 代表建议 their message went into was answered: its title (the answer is on
    the tracking page)."""
    proposal_id = (ctx.message.payload or {}).get("proposal_id")
    proposal = db.session.get(Proposal, proposal_id) if isinstance(proposal_id, int) else None
    title = f"《{proposal.title}》" if proposal is not None else ""
    return {"status": "建议已答复", "summary": f"代表建议{title}已答复", "deputy": ctx.deputy_label()}


def _deputy_resident_replied(ctx: Context) -> dict[str, object]:
    return {"status": "群众已补充", "summary": ctx.event_text or "群众已补充情况，计时已恢复"}


def _deputy_resident_followup(ctx: Context) -> dict[str, object]:
    return {"status": "群众追问", "summary": ctx.event_text or "群众追问办理进展"}


KINDS: dict[str, KindSpec] = {
    # Residents.
    "item_received": KindSpec("resident", "item_progress", _received),
    "item_accepted": KindSpec("resident", "item_progress", _progress("已受理", "代表已受理您的留言")),
    "item_forwarded": KindSpec("resident", "item_progress", _progress("已交办", "已交有关部门办理")),
    "item_declined": KindSpec("resident", "item_progress", _progress("不予受理", "您的留言不予受理")),
    "item_duplicate": KindSpec("resident", "item_progress", _progress("重复件", "与已有留言重复，合并办理")),
    "item_reassigned": KindSpec("resident", "item_progress", _progress("已转交", "已转交其他代表办理")),
    "item_extended": KindSpec("resident", "item_progress", _progress("已延期", "办理期限已延长")),
    "item_waiting": KindSpec("resident", "item_progress", _progress("待补充", "请补充有关情况")),
    "item_department_replied": KindSpec("resident", "item_progress", _department_replied),
    # The 代表建议 the item went into was answered (backend.proposals): a progress notice, so the one-time credit
    # kept for the deputy's own answer is not spent on it.
    "item_proposal_answered": KindSpec("resident", "item_progress", _proposal_answered),
    "item_answered": KindSpec("resident", "item_answered", _answered),
    "item_resolved": KindSpec("resident", "item_resolved", _resolved),
    # Deputies (staff users with a bound WeChat).
    "deputy_new_item": KindSpec("staff", "deputy_task", _deputy_new),
    "deputy_item_overdue": KindSpec("staff", "deputy_task", _deputy_overdue),
    "deputy_item_reopened": KindSpec("staff", "deputy_task", _deputy_reopened),
    "deputy_item_supervised": KindSpec("staff", "deputy_task", _deputy_supervised),
    "deputy_department_replied": KindSpec("staff", "deputy_task", _deputy_department_replied),
    "deputy_item_due_soon": KindSpec("staff", "deputy_task", _deputy_due_soon),
    "deputy_resident_replied": KindSpec("staff", "deputy_task", _deputy_resident_replied),
    "deputy_resident_followup": KindSpec("staff", "deputy_task", _deputy_resident_followup),
    "deputy_department_returned": KindSpec("staff", "deputy_task", _deputy_department_returned),
    "deputy_extension_requested": KindSpec("staff", "deputy_task", _deputy_extension_requested),
    "deputy_department_passed_on": KindSpec("staff", "deputy_task", _deputy_department_passed_on),
    # Departments: their accounts' bound WeChat (one row per account); a department without accounts
    # has its forward link as its channel (a row with no recipient, skipped).
    "department_new_item": KindSpec("staff", "deputy_task", _department_new),
}


def recipient_openid(message: OutboxMessage) -> str | None:
    """The mini-program openid a message goes to, or None when its recipient has none."""
    spec = KINDS.get(message.kind)
    if spec is None or spec.audience == "none":
        return None
    if spec.audience == "resident":
        resident = db.session.get(Resident, message.resident_id) if message.resident_id else None
        return resident.openid if resident is not None else None
    user = db.session.get(StaffUser, message.staff_user_id) if message.staff_user_id else None
    return user.wechat_openid if user is not None and user.is_active else None


def official_account_template(purpose: str) -> dict | None:
    """The service account's template for a resident purpose (``item_progress``'s when it has none of its own)."""
    config = current_app.config
    if not (config.get("WECHAT_MP_APPID") and config.get("WECHAT_MP_SECRET")):
        return None
    templates = config.get("WECHAT_MP_TEMPLATES") or {}
    return templates.get(purpose) or templates.get("item_progress")


def _official_account_notice(message: OutboxMessage, spec: KindSpec, item: Item, values: dict) -> Notice | None:
    """The H5 resident's notice through the service account (bizsend), when they have no mini-program openid."""
    resident = db.session.get(Resident, message.resident_id) if message.resident_id else None
    template = official_account_template(spec.purpose) if resident is not None and resident.mp_openid else None
    if template is None:
        return None
    data = {key: {"value": fit_value(key, values.get(name))} for key, name in template["fields"].items()}
    return Notice(
        openid=resident.mp_openid,
        purpose=spec.purpose,
        template_id=template["id"],
        data=data,
        page=tracking_url(item.ref, item.access_key),
        is_long_term=template_kind(template) == LONG_TERM,
        channel="official_account",
    )


def prefetch(messages: list[OutboxMessage]) -> list:
    """Load what ``build_notice`` reads for these rows in a few queries.

    Returns the loaded objects: hold on to them while building, since the session's identity
    map keeps objects only while something else references them.
    """
    loaded: list = []

    def load(model, ids, *options):
        ids = {i for i in ids if isinstance(i, int)}
        if ids:
            loaded.extend(db.session.scalars(select(model).where(model.id.in_(ids)).options(*options)).all())

    load(Item, (m.item_id for m in messages), selectinload(Item.deputy), selectinload(Item.station))
    load(Resident, (m.resident_id for m in messages))
    load(StaffUser, (m.staff_user_id for m in messages))
    load(ItemEvent, ((m.payload or {}).get("event_id") for m in messages))
    return loaded


def build_notice(message: OutboxMessage) -> Notice:
    """The subscribe message for an outbox row; ``NoChannel`` when it cannot go over WeChat.

    Raises ``NotDefined`` for a kind this module does not know.
    """
    spec = KINDS.get(message.kind)
    if spec is None:
        raise NotDefined(f"no notification is defined for outbox kind {message.kind!r}")
    if spec.audience == "none" or spec.purpose is None or spec.values is None:
        raise NoChannel(f"{message.kind}: no WeChat channel for this recipient")
    item = db.session.get(Item, message.item_id) if message.item_id else None
    folded = spec.audience == "staff" and bool((message.payload or {}).get("also"))
    if item is not None and item.status == ItemStatus.WITHDRAWN and not (folded and _live_steps(message)):
        raise NoChannel(f"{message.kind}: {WITHDRAWN_NOTE}")
    openid = recipient_openid(message)
    if not openid and spec.audience == "resident" and item is not None:
        event_id = (message.payload or {}).get("event_id")
        event = db.session.get(ItemEvent, event_id) if event_id else None
        ctx = Context(message=message, item=item, event=event)
        notice = _official_account_notice(message, spec, item, {"ref": item.ref, "at": ctx.at, **spec.values(ctx)})
        if notice is not None:
            return notice
    if spec.purpose not in current_app.config["WECHAT_TEMPLATES"]:
        raise NoChannel(f"{message.kind}: no template configured for {spec.purpose}")
    if not openid:
        raise NoChannel(f"{message.kind}: the recipient has no WeChat identity")
    if item is None:
        raise NotDefined(f"{message.kind}: item {message.item_id} not found")
    event_id = (message.payload or {}).get("event_id")
    event = db.session.get(ItemEvent, event_id) if event_id else None
    ctx = Context(message=message, item=item, event=event)
    values = {"ref": item.ref, "at": ctx.at, **(_digest(message) if folded else spec.values(ctx))}
    template_id, data = template_data(spec.purpose, values)
    page = (RESIDENT_PAGE if spec.audience == "resident" else DEPUTY_PAGE).format(ref=item.ref)
    if folded:
        page = DIGEST_PAGE  # several items: the inbox, where each is marked
    is_long_term = template_kind(current_app.config["WECHAT_TEMPLATES"][spec.purpose]) == LONG_TERM
    return Notice(
        openid=openid,
        purpose=spec.purpose,
        template_id=template_id,
        data=data,
        page=page,
        is_long_term=is_long_term,
    )


# --- what a resident or a deputy is asked to accept ---------------------------------------


def queue_received_after_subscribing(item: Item, results: object, now: datetime) -> bool:
    """The H5 resident just accepted the service account's notices on ``item``'s page: tell them "已提交" now.

    Their "已提交" row was queued with the item, before they could subscribe, and skipped for want of a
    subscription (``h5_received_template`` says why and when the resident is told). Queued once: only while the
    item is still submitted (after 受理 that step's own notice tells more), only when ``results`` (the page's
    report, ``{template_id: "accept"|…}``) accepts that long-term template, and only when every earlier "已提交"
    row of the item was skipped (``queue.queue_received_once``). True when a row was queued. Here, not in
    ``queue``: which notice a resident gets is decided where the templates are known; the writer only writes.
    Flushes; the caller commits.
    """
    template = h5_received_template(item.resident) if item.status == ItemStatus.SUBMITTED else None
    if template is None or not isinstance(results, dict) or results.get(template["id"]) != "accept":
        return False
    return queue.queue_received_once(item, now)


def audience_purposes() -> dict[str, list[str]]:
    """The mini-program's template purposes per audience (``resident``, ``deputy`` — every staff account), in the
    order a page should ask for them: what matters most to a resident first (the answer, the resolution, progress).

    Read from ``KINDS``, so a page asks for exactly the templates some notice uses: here, beside the table,
    rather than in ``backend.wechat.subscriptions``, which keeps the credits and knows nothing of the outbox.
    """
    configured = current_app.config["WECHAT_TEMPLATES"]
    out: dict[str, list[str]] = {"resident": [], "deputy": []}
    for spec in KINDS.values():
        if spec.purpose is None or spec.purpose not in configured:
            continue
        audience = "resident" if spec.audience == "resident" else "deputy"
        if spec.purpose not in out[audience]:
            out[audience].append(spec.purpose)
    priority = {"item_answered": 0, "item_resolved": 1, "item_progress": 2}
    out["resident"].sort(key=lambda purpose: priority.get(purpose, 9))
    return out


def staff_notices_off(user) -> bool:
    """True when ``user`` bound a WeChat but will not hear of new items there: a staff template switched off (or,
    one-time, spent). The staff pages say so; only the mini-program can ask WeChat to switch it on again.
    """
    openid = getattr(user, "wechat_openid", None)
    if not openid:
        return False
    purposes = audience_purposes()["deputy"]
    return bool(purposes) and not notices_state(openid, purposes)["on"]
