"""Content screening of new items with WeChat's msgSecCheck v2.

Called by ``submit_item`` before its database work (on SQLite the first write holds the
database's write lock until commit; nobody may hold it while waiting for WeChat). WeChat
can only screen text for a mini-program user (an openid active in the last two hours):
without one nothing is asked. What WeChat says never loses a message: ``risky`` holds the
item for a station administrator's review, ``review`` flags it, and WeChat being slow,
down or refusing us lets it through unscreened.
"""

from __future__ import annotations

import logging

from sqlalchemy import exists, select

from backend.audit import record_audit
from backend.extensions import db
from backend.items import deadlines
from backend.models import Item, ItemStatus, OutboxMessage, Resident, ScreeningResult, StaffUser, utcnow
from backend.wechat import api as wechat_api

log = logging.getLogger(__name__)

CONTENT_MAX_CHARS = 2500  # msgSecCheck's limit
# msgSecCheck's labels, as a reviewer reads them.
LABELS = {
    100: "正常",
    10001: "广告",
    20001: "时政",
    20002: "色情",
    20003: "辱骂",
    20006: "违法犯罪",
    20008: "欺诈",
    20012: "低俗",
    20013: "版权",
    21000: "其他",
}
DEPUTY_NEW_ITEM = "deputy_new_item"
VERDICTS = {"pass": ScreeningResult.PASS, "review": ScreeningResult.REVIEW, "risky": ScreeningResult.RISKY}


def screen_message(resident: Resident | None, body: str) -> tuple[ScreeningResult, int | None]:
    """WeChat's verdict on ``body`` and its label (100 normal, 20001 politics …), for the resident who wrote it.

    ``(UNSCREENED, None)`` without a call when the resident has no mini-program openid, and
    when WeChat cannot be asked (timeout, 5xx, -1 busy, token or quota errors, an openid
    WeChat does not accept): the item goes through as usual.
    """
    openid = resident.openid if resident is not None else None
    if not openid or not body:
        return ScreeningResult.UNSCREENED, None
    try:
        verdict = wechat_api.msg_sec_check(openid, body[:CONTENT_MAX_CHARS])
    except Exception as exc:  # nothing a resident submits is lost because WeChat failed
        log.warning("msgSecCheck failed, the item goes through unscreened: %r", exc)
        return ScreeningResult.UNSCREENED, None
    result = VERDICTS.get(verdict.get("suggest"))
    if result is None:
        log.warning("msgSecCheck answered an unknown suggestion %r; unscreened", verdict.get("suggest"))
        return ScreeningResult.UNSCREENED, None
    return result, verdict.get("label")


def is_held(result: ScreeningResult) -> bool:
    """True when an item with this verdict waits for a station administrator before reaching the deputy."""
    return result == ScreeningResult.RISKY


def label_text(label: int | None) -> str:
    """A msgSecCheck label in Chinese ("时政", "辱骂" …), "" when none."""
    if label is None:
        return ""
    return LABELS.get(label, f"其他（{label}）")


def release_held_item(item: Item, reviewer: StaffUser) -> None:
    """Let a held item into the deputy's inbox: no longer held, its deputy told, an audit row (flushes).

    The item is never deleted. Its first deadline (to accept) starts again now, since the
    deputy could not see it while it was held; the deputy's "new item" notice is queued
    unless one was queued already.
    """
    from backend.outbox import queue as notices

    now = utcnow()
    item.is_held = False
    if item.status == ItemStatus.SUBMITTED:
        item.due_at = deadlines.accept_deadline(now)
    item.updated_at = now
    queued = db.session.scalar(
        select(exists().where(OutboxMessage.item_id == item.id, OutboxMessage.kind == DEPUTY_NEW_ITEM))
    )
    db.session.flush()
    if not queued and item.deputy_id is not None:
        notices.queue_new_item_notices(db.session.connection(), item.id, None, item.deputy_id, now)
    record_audit(
        "item_released",
        user=reviewer,
        object_type="item",
        object_id=item.id,
        data={"ref": item.ref, "screening": item.screening.value, "label": item.screening_label},
    )
