"""The JS-SDK for H5 pages in WeChat's browser: the service account's jsapi ticket and a page's ``wx.config``.

The ticket (``cgi-bin/ticket/getticket?type=jsapi``, 7,200 s) is kept in the shared token store
like the access token — each fetch counts against a daily limit and every process needs the
same one — and fetched again under the store's refresh lock, so concurrent pages fetch it once.
A page's signature is ``sha1("jsapi_ticket=…&noncestr=…&timestamp=…&url=…")`` over its URL
without the fragment; the config asks for the ``wx-open-subscribe`` open tag. Under ``WECHAT_SANDBOX`` the
page loads the sandbox's emulation of the script instead of WeChat's (``script_url``).
"""

from __future__ import annotations

import secrets
import time
from urllib.parse import urlsplit

from flask import current_app

from backend.wechat import api
from backend.wechat.client import JSAPI_TICKET_SUFFIX, get_mp_client, official_account_configured

TICKET_MARGIN_SECONDS = 60  # fetched again this long before WeChat's expiry
JSSDK_ORIGIN = "https://res.wx.qq.com"
JSSDK_PATH = "open/js/jweixin-1.6.0.js"  # 1.6.0: the first with open tags
JSSDK_URL = f"{JSSDK_ORIGIN}/{JSSDK_PATH}"


def script_url() -> str:
    """Where a page loads the JS-SDK from: WeChat's; under ``WECHAT_SANDBOX`` the sandbox's emulation at the same
    path (its ``<wx-open-subscribe>`` opens 模拟微信's subscription sheet: outside WeChat's own browser,
    WeChat's script renders no open tag, so nobody could accept)."""
    config = current_app.config
    if config.get("WECHAT_SANDBOX"):
        return str(config["WECHAT_API_BASE"]).rstrip("/") + "/" + JSSDK_PATH
    return JSSDK_URL


def script_origin() -> str:
    """The origin ``script_url`` is on: what the page's Content-Security-Policy lets scripts come from."""
    parts = urlsplit(script_url())
    return f"{parts.scheme}://{parts.netloc}"


def jsapi_ticket() -> str:
    """The official account's jsapi ticket from the shared store, fetched when missing or about to expire."""
    client = get_mp_client()
    storage = client.session
    key = client.appid + JSAPI_TICKET_SUFFIX

    def fresh() -> str | None:
        ticket, expires_at = storage.get_token(key)
        if ticket and (expires_at is None or expires_at - TICKET_MARGIN_SECONDS > time.time()):
            return ticket
        return None

    ticket = fresh()
    if ticket:
        return ticket
    with storage.refresh_lock(key):
        ticket = fresh()  # another process may have fetched it while this one waited
        if ticket:
            return ticket
        answer = api.jsapi_ticket_answer()
        storage.set(key, answer["ticket"], ttl=int(answer.get("expires_in") or 7200))
        return answer["ticket"]


def page_config(url: str) -> dict | None:
    """``wx.config``'s arguments for the page at ``url`` (the open tag ``wx-open-subscribe``), or None without an
    official account or when WeChat cannot give a ticket now (the page then says so instead of a button)."""
    if not official_account_configured():
        return None
    try:
        ticket = jsapi_ticket()
    except Exception:
        current_app.logger.warning("no jsapi ticket: the subscribe button is left out", exc_info=True)
        return None
    nonce = secrets.token_hex(8)
    timestamp = int(time.time())
    url = url.split("#", 1)[0]
    signature = get_mp_client().jsapi.get_jsapi_signature(nonce, ticket, timestamp, url)
    return {
        "appId": current_app.config["WECHAT_MP_APPID"],
        "timestamp": timestamp,
        "nonceStr": nonce,
        "signature": signature,
        "jsApiList": ["checkJsApi"],
        "openTagList": ["wx-open-subscribe"],
        "script": script_url(),
    }
