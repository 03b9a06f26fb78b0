"""What a WeChat user allowed us to send: one-time credits and long-term switches, per template.

A template's kind is configuration (``WECHAT_TEMPLATES[purpose]["kind"]``, and
``WECHAT_MP_TEMPLATES`` for the official account): ``one_time`` — each acceptance allows
exactly one message, so acceptances are counted and each send spends one — or
``long_term`` — one acceptance allows every later message until the user switches the
template off in WeChat's settings. Both live in ``SubscriptionCredit.credits``: a count
for a one-time template, 1 (on) or 0 (off) for a long-term one, so the worker's
reservation (``credits > 0``) reads the same for both.

Acceptances arrive two ways: the page's own report (``wx.requestSubscribeMessage``'s
result, the ``wx-open-subscribe`` tag's ``success`` event) and WeChat's push
(``subscribe_msg_popup_event``). Counted once: a long-term acceptance sets the switch,
which any number of reports of it leave on; a one-time acceptance is counted from the
page's report only — a push carries nothing that ties it to a report, so counting both
would allow two messages for one acceptance (and meet WeChat's 43101 on the second).
``subscribe_msg_change_event`` (the user switched a template off, or on again) and a
``subscribe_msg_sent_event`` that says the user refused set the switch. Operations flush;
the caller commits.

This module knows nothing of the outbox: the outbox asks it (``template_kind``, ``notices_state``), never the
other way. Which purposes a page asks WeChat for is read from the outbox's table of notice kinds, so it is
answered there (``backend.outbox.notifications.audience_purposes``, ``staff_notices_off``).
"""

from __future__ import annotations

from flask import current_app
from sqlalchemy import select, update

from backend import database
from backend.extensions import db
from backend.models import SubscriptionCredit, utcnow
from backend.wechat.client import official_account_configured
from backend.wechat.jssdk import page_config

ONE_TIME = "one_time"
LONG_TERM = "long_term"
KINDS = (ONE_TIME, LONG_TERM)
RESULTS = ("accept", "reject", "ban", "filter")
SETTINGS = ("WECHAT_TEMPLATES", "WECHAT_MP_TEMPLATES")
# subscribe_msg_sent_event's ErrorCode when the user has refused or switched the template off.
REFUSED_ERRCODES = frozenset({43101})

_credits = SubscriptionCredit.__table__


def configured_templates() -> dict[str, dict]:
    """Every configured template by id (mini-program and official account), each with its purpose and setting."""
    found: dict[str, dict] = {}
    for setting in SETTINGS:
        for purpose, entry in (current_app.config.get(setting) or {}).items():
            found[entry["id"]] = {**entry, "purpose": purpose, "setting": setting}
    return found


def template_kind(template: dict) -> str:
    """A template entry's kind: ``long_term`` when configured so, ``one_time`` otherwise (WeChat's default)."""
    return LONG_TERM if template.get("kind") == LONG_TERM else ONE_TIME


def kind_of(template_id: str) -> str:
    """The kind of a configured template id (``one_time`` for an unknown one)."""
    template = configured_templates().get(template_id)
    return template_kind(template) if template is not None else ONE_TIME


def _set(openid: str, template_id: str, credits: int, *, add: bool = False) -> None:
    """Write one user's credits for one template: ``credits`` itself, or added to what is there (flushes)."""
    now = utcnow()
    stmt = database.dialect_insert(_credits).values(
        openid=openid, template_id=template_id, credits=credits, updated_at=now
    )
    value = _credits.c.credits + credits if add else credits
    db.session.execute(
        stmt.on_conflict_do_update(
            index_elements=[_credits.c.openid, _credits.c.template_id], set_={"credits": value, "updated_at": now}
        )
    )


def record_results(openid: str, results: dict[str, str], *, source: str = "page") -> None:
    """Record what the user chose for each template, reported by the page (``source="page"``) or WeChat's push.

    Long-term: accept switches the template on, reject or ban switches it off (the user's latest
    choice is the state WeChat keeps). One-time: an accept from the page adds one credit; a push
    accept counts nothing (the page reports the same acceptance); a refusal leaves earlier credits.
    ``filter`` (WeChat filtered the template out) changes nothing. Flushes; the caller commits.
    """
    for template_id, result in sorted(results.items()):
        if kind_of(template_id) == LONG_TERM:
            if result == "accept":
                _set(openid, template_id, 1)
            elif result in ("reject", "ban"):
                _set(openid, template_id, 0)
        elif result == "accept" and source == "page":
            _set(openid, template_id, 1, add=True)


def switch_off(openid: str, template_id: str) -> None:
    """The user refuses this template now (switched off, or WeChat answered 43101): nothing more is sent (flushes)."""
    db.session.execute(
        update(_credits)
        .where(_credits.c.openid == openid, _credits.c.template_id == template_id)
        .values(credits=0, updated_at=utcnow())
    )


def credits_for(openid: str, template_ids: list[str]) -> dict[str, int]:
    """What ``openid`` may still be sent per template named (0 when nothing is recorded)."""
    rows = dict(
        db.session.execute(
            select(SubscriptionCredit.template_id, SubscriptionCredit.credits).where(
                SubscriptionCredit.openid == openid, SubscriptionCredit.template_id.in_(list(template_ids))
            )
        ).all()
    )
    return {template_id: rows.get(template_id, 0) for template_id in sorted(template_ids)}


def notices_state(openid: str | None, purposes: list[str], setting: str = "WECHAT_TEMPLATES") -> dict:
    """Whether ``openid`` will hear of these purposes: ``{"on": bool, "off": [template ids to ask for again]}``.

    A purpose is on when its template has a credit (one-time) or is switched on (long-term). What
    is off is what a page offers to switch on again.
    """
    configured = current_app.config.get(setting) or {}
    ids = [configured[p]["id"] for p in purposes if p in configured]
    if not openid or not ids:
        return {"on": False, "off": ids, "kinds": {i: kind_of(i) for i in ids}}
    credits = credits_for(openid, ids)
    off = [i for i in ids if credits.get(i, 0) <= 0]
    return {"on": not off, "off": off, "kinds": {i: kind_of(i) for i in ids}}


# --- WeChat's pushes ----------------------------------------------------------------------

PUSH_EVENTS = {
    "subscribe_msg_popup_event": "SubscribeMsgPopupEvent",
    "subscribe_msg_change_event": "SubscribeMsgChangeEvent",
    "subscribe_msg_sent_event": "SubscribeMsgSentEvent",
}


class BadPush(ValueError):
    """A push this server cannot read: refused with a 400, nothing written."""


def _entries(message: dict, container: str) -> list[dict]:
    """The ``List`` entries of a subscribe event, whether one (a dict) or several (a list), XML or JSON."""
    body = message.get(container)
    listed = body.get("List") if isinstance(body, dict) else message.get("List")
    if isinstance(listed, dict):
        listed = [listed]
    if not isinstance(listed, list) or not all(isinstance(e, dict) for e in listed):
        raise BadPush(f"{container}: no List of templates")
    return listed


def apply_push(message: dict) -> int:
    """Apply one of WeChat's subscribe pushes to the credits; return how many templates it named.

    Popup and change events carry ``SubscribeStatusString`` per template (accept / reject);
    a sent event carries ``ErrorCode``: a refusal (43101) switches the template off. Other
    events are not ours to act on (0). A template this server does not know is ignored — the
    account may have templates another system sends. Raises ``BadPush`` for a malformed one.
    Flushes; the caller commits.
    """
    event = message.get("Event")
    if message.get("MsgType") != "event" or event not in PUSH_EVENTS:
        return 0
    openid = message.get("FromUserName")
    if not isinstance(openid, str) or not openid or len(openid) > 64:
        raise BadPush("FromUserName: the user's openid")
    known = configured_templates()
    results: dict[str, str] = {}
    for entry in _entries(message, PUSH_EVENTS[event]):
        template_id = entry.get("TemplateId")
        if not isinstance(template_id, str) or not template_id:
            raise BadPush("TemplateId missing")
        if template_id not in known:
            continue
        if event == "subscribe_msg_sent_event":
            try:
                errcode = int(entry.get("ErrorCode") or 0)
            except (TypeError, ValueError):
                raise BadPush("ErrorCode: a number") from None
            if errcode in REFUSED_ERRCODES:
                switch_off(openid, template_id)
            continue
        status = entry.get("SubscribeStatusString")
        if status not in RESULTS:
            raise BadPush(f"SubscribeStatusString: {status!r}")
        if event == "subscribe_msg_change_event" and status == "reject":
            switch_off(openid, template_id)  # switched off in WeChat's settings, whatever its kind
            continue
        results[template_id] = status
    record_results(openid, results, source="push")
    return len(results)


# --- the H5 resident's notices (service account) ------------------------------------------

OA_PURPOSES = ("item_progress",)  # one long-term template tells every step (notifications.official_account_template)


def resident_notices_panel(resident, in_wechat: bool, page_url: str) -> dict:
    """What the confirmation and tracking pages say about notices, for the resident who wrote the item.

    ``mode``: ``"on"`` (the service account's notices are on), ``"ask"`` (in WeChat with an
    official-account openid: the ``wx-open-subscribe`` button, with its ``wx.config``),
    ``"unavailable"`` (in WeChat, but no button can be offered now), or ``"outside"`` (not in
    WeChat: progress shows only on the tracking page).
    """
    if not in_wechat:
        return {"mode": "outside"}
    openid = getattr(resident, "mp_openid", None)
    if not openid or not official_account_configured():
        return {"mode": "unavailable"}
    state = notices_state(openid, list(OA_PURPOSES), setting="WECHAT_MP_TEMPLATES")
    if state["on"]:
        return {"mode": "on"}
    config = page_config(page_url)
    if config is None:
        return {"mode": "unavailable"}
    return {"mode": "ask", "templates": state["off"], "config": config}


def record_page_report(resident, results: object) -> dict[str, int]:
    """Count what the ``wx-open-subscribe`` tag's ``success`` event reported (the page's own report; flushes).

    ``results``: ``{template_id: "accept"|"reject"|…}`` for the service account's templates. Raises
    ``ValueError`` with a Chinese message for anything else; nothing is written then.
    """
    openid = getattr(resident, "mp_openid", None)
    if not openid:
        raise LookupError("这条留言没有关联微信，无法开启通知。")
    if not isinstance(results, dict) or not results or len(results) > 10:
        raise ValueError("results 须为 {模板ID: accept|reject}。")
    known = {entry["id"] for entry in (current_app.config.get("WECHAT_MP_TEMPLATES") or {}).values()}
    if any(k not in known for k in results) or any(v not in RESULTS for v in results.values()):
        raise ValueError("未知的模板或订阅结果。")
    record_results(openid, results, source="page")
    return credits_for(openid, list(results))
