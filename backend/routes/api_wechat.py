"""WeChat subscription accounting for the mini-program: which templates to request, and what the user accepted.

Each ``accept`` of ``wx.requestSubscribeMessage`` allows exactly one message with a
one-time template, and every later one with a long-term template until the user switches
it off; WeChat offers no way to ask how many remain: the mini-program reports every result
here and the backend keeps the count or the switch (``backend.wechat.subscriptions``); the
outbox worker spends one credit per message sent with a one-time template. A client that
reports accepts it never got only earns a 43101 from WeChat, which sets the count back to zero.
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request

from backend import api_schemas
from backend.api_schemas import RESIDENT, STAFF, describe
from backend.api_schemas import models as m
from backend.errors import UserError
from backend.extensions import csrf, db
from backend.models import SessionKind
from backend.outbox.notifications import audience_purposes
from backend.wechat import subscriptions
from backend.wechat.identity import current_resident

bp = Blueprint("api_wechat", __name__, url_prefix="/api/v1/wechat")
csrf.exempt(bp)  # the API takes no cookies; tokens come in headers

TEMPLATES_PER_REQUEST = 3  # wx.requestSubscribeMessage takes at most three ids a call
RESULTS = subscriptions.RESULTS
TOKEN_MAX_LENGTH = 256
REPORT_MAX_RESULTS = 10


def _bearer_token() -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > TOKEN_MAX_LENGTH:
        return None
    return token


def _current_openid() -> str:
    """The mini-program openid of the caller: a resident's token, or a deputy's API token with a bound WeChat."""
    resident = current_resident()
    if resident is not None:
        openid = resident.openid
    else:
        from backend.auth.sessions import find_session

        staff_session = find_session(_bearer_token(), SessionKind.API)
        if staff_session is None:
            raise UserError("unauthorized", "请先登录。", 401)
        openid = staff_session.user.wechat_openid
    if not openid:
        raise UserError("no_wechat_identity", "当前账号没有关联微信，无法订阅消息。", 409)
    return openid


@bp.get("/templates")
@describe(tags=("微信",), responses={200: m.TemplatesAnswer})
def templates():
    """The template ids to request: per audience, in calls of at most three ids, and each id's purpose and kind.

    ``kind`` is ``one_time`` (ask again before each message you want) or ``long_term`` (one
    acceptance is enough until the user switches it off).
    """
    configured = current_app.config["WECHAT_TEMPLATES"]
    audiences = audience_purposes()
    requests_ = {
        audience: [
            [configured[p]["id"] for p in purposes[i : i + TEMPLATES_PER_REQUEST]]
            for i in range(0, len(purposes), TEMPLATES_PER_REQUEST)
        ]
        for audience, purposes in audiences.items()
    }
    return jsonify(
        templates=[
            {
                "purpose": purpose,
                "id": template["id"],
                "kind": subscriptions.template_kind(template),
                "keys": list(template["fields"]),
            }
            for purpose, template in configured.items()
        ],
        requests=requests_,
        max_per_request=TEMPLATES_PER_REQUEST,
    )


@bp.post("/subscriptions")
@describe(
    tags=("微信",),
    security=[RESIDENT, STAFF],  # a resident's token, or a deputy's API token with a bound WeChat
    json=m.SubscriptionReport,
    responses={
        200: m.CreditsAnswer,
        401: m.ErrorResponse,
        409: m.ErrorResponse,
    },
)
def report_subscriptions():
    """Count the accepts of one ``wx.requestSubscribeMessage`` call: ``{"results": {template_id: result}}``.

    Answers the caller's credits for the templates named. ``errMsg`` (which the mini-program's
    result object carries) is ignored; an unknown template id or result is a 400 and counts nothing.
    """
    openid = _current_openid()
    results = api_schemas.body().results
    if not isinstance(results, dict):
        raise UserError("invalid_results", "results 须为 {模板ID: accept|reject|ban|filter}。", 400, field="results")
    results = {k: v for k, v in results.items() if k != "errMsg"}
    if not results or len(results) > REPORT_MAX_RESULTS:
        raise UserError("invalid_results", "results 为空或过多。", 400, field="results")
    known = {template["id"] for template in current_app.config["WECHAT_TEMPLATES"].values()}
    unknown = sorted(str(k) for k in results if k not in known)
    if unknown:
        raise UserError("unknown_template", f"未知的模板ID：{'、'.join(unknown)}", 400, field="results")
    bad = sorted(str(k) for k, v in results.items() if v not in RESULTS)
    if bad:
        raise UserError("invalid_result", f"订阅结果须为 accept、reject、ban 或 filter：{'、'.join(bad)}", 400)

    subscriptions.record_results(openid, results, source="page")
    credits = subscriptions.credits_for(openid, list(results))
    return jsonify(credits=credits)


@bp.get("/subscriptions")
@describe(
    tags=("微信",),
    security=[RESIDENT, STAFF],
    responses={200: m.NoticesAnswer, 401: m.ErrorResponse, 409: m.ErrorResponse},
)
def subscriptions_state():
    """Whether the caller's notices are on: per template, the credits left (one-time) or 1/0 (long-term).

    ``on`` is true when every template of the caller's audience may be sent; ``off`` lists the
    template ids to ask for again (``wx.requestSubscribeMessage``), in calls of at most three.
    """
    openid = _current_openid()
    audience = "resident" if current_resident() is not None else "deputy"
    purposes = audience_purposes()[audience]
    state = subscriptions.notices_state(openid, purposes)
    configured = current_app.config["WECHAT_TEMPLATES"]
    ids = [configured[p]["id"] for p in purposes]
    credits = subscriptions.credits_for(openid, ids)
    db.session.rollback()
    off = state["off"]
    return jsonify(
        on=state["on"],
        credits=credits,
        kinds=state["kinds"],
        ask_again=[off[i : i + TEMPLATES_PER_REQUEST] for i in range(0, len(off), TEMPLATES_PER_REQUEST)],
    )
