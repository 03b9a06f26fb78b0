"""WeChat's message push (消息推送) to this server: the subscribe events of the mini-program and the service account.

    GET  /wechat/push?signature&timestamp&nonce&echostr   the console's check: echo ``echostr``
    POST /wechat/push?signature&timestamp&nonce           one event, XML or JSON (plaintext mode)

Every request is signed with ``WECHAT_PUSH_TOKEN``: ``sha1(sorted([token, timestamp, nonce]))``.
A bad or missing signature is refused (403) before the body is read, so nothing is written;
without a token configured every push is refused. What the events mean for the credits is
``backend.wechat.subscriptions.apply_push``. Safe mode (encrypted bodies) is not supported:
choose 明文模式 in the console.
"""

from __future__ import annotations

import json
import logging
from xml.parsers.expat import ExpatError

import xmltodict
from flask import Blueprint, Response, current_app, request
from wechatpy.exceptions import InvalidSignatureException
from wechatpy.utils import check_signature

from backend.extensions import csrf, db
from backend.wechat import subscriptions

bp = Blueprint("wechat_push", __name__, url_prefix="/wechat")
csrf.exempt(bp)  # WeChat's server signs its requests; it has no cookie
log = logging.getLogger("backend.wechat")

PUSH_MAX_BYTES = 64 * 1024


def _text(body: str, status: int) -> Response:
    return Response(body, status=status, mimetype="text/plain")


def _signed() -> bool:
    """True when the query's signature is WeChat's for our token."""
    token = current_app.config.get("WECHAT_PUSH_TOKEN")
    args = request.args
    if not token or not all(isinstance(args.get(k), str) for k in ("signature", "timestamp", "nonce")):
        return False
    try:
        check_signature(token, args["signature"], args["timestamp"], args["nonce"])
    except InvalidSignatureException:
        return False
    return True


def _parse(raw: bytes) -> dict:
    """The pushed message as a dict (XML's ``<xml>`` root or a JSON object); ``BadPush`` otherwise."""
    text = raw.decode("utf-8", errors="strict").strip()
    if text.startswith("{"):
        message = json.loads(text)
    else:
        message = (xmltodict.parse(text, disable_entities=True) or {}).get("xml")
    if not isinstance(message, dict):
        raise subscriptions.BadPush("not a WeChat message")
    return message


@bp.get("/push")
def verify():
    """The console's check of the push URL: echo ``echostr`` when signed with our token."""
    if not _signed():
        return _text("invalid signature", 403)
    return _text(request.args.get("echostr", ""), 200)


@bp.post("/push")
def receive():
    """One pushed event: subscribe events change what we may send; anything else is acknowledged and ignored."""
    if not _signed():
        log.warning("wechat push refused: bad or missing signature")
        return _text("invalid signature", 403)
    raw = request.get_data(cache=False)
    if len(raw) > PUSH_MAX_BYTES:
        return _text("too large", 413)
    try:
        message = _parse(raw)
        subscriptions.apply_push(message)
    except (subscriptions.BadPush, ValueError, ExpatError) as exc:  # UnicodeDecodeError is a ValueError
        db.session.rollback()
        log.warning("wechat push not understood: %s", exc)
        return _text("bad message", 400)
    return _text("success", 200)
