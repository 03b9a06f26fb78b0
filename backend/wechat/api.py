"""The WeChat calls the project makes, each a thin function over the shared clients of ``client.py``.

Errors are wechatpy's, never wrapped, so the outbox worker can classify them:
``WeChatClientException`` with ``.errcode`` (None for an HTTP error; 43101, 40003, 47003, 40037 …),
``APILimitedException`` for 45009, ``TokenRefreshLimitExceeded`` when WeChat keeps refusing fresh
tokens, and ``requests`` exceptions for timeouts and refused connections.
"""

from __future__ import annotations

from flask import current_app
from wechatpy.exceptions import WeChatClientException

from backend.wechat.client import get_client, get_mp_client, make_oauth


def _template_data(data: dict) -> dict:
    """WeChat's ``{"key": {"value": ...}}`` shape; plain values are wrapped."""
    return {key: value if isinstance(value, dict) else {"value": value} for key, value in data.items()}


def send_subscribe_message(openid: str, template_id: str, data: dict, page: str | None = None) -> None:
    """Send a mini-program subscribe message (spends one of the user's acceptances at WeChat).

    ``data`` is ``{"thing1": {"value": "…"}}`` or ``{"thing1": "…"}``; values must already fit
    WeChat's limits (47003 otherwise). ``page`` may carry a query. ``miniprogram_state`` comes from
    ``WECHAT_MINIPROGRAM_STATE``.
    """
    body = {
        "touser": openid,
        "template_id": template_id,
        "data": _template_data(data),
        "miniprogram_state": current_app.config["WECHAT_MINIPROGRAM_STATE"],
        "lang": "zh_CN",
    }
    if page:
        body["page"] = page
    get_client().wxa._post("cgi-bin/message/subscribe/send", data=body)


def code_to_session(js_code: str) -> dict:
    """Exchange a ``wx.login`` code for ``{"openid", "session_key"[, "unionid"]}`` (never send session_key on)."""
    result = get_client().wxa.code_to_session(js_code)
    return {key: result[key] for key in ("openid", "session_key", "unionid") if key in result}


def get_wxacode_unlimited(
    scene: str, page: str | None, check_path: bool = False, env_version: str = "release"
) -> bytes:
    """The image bytes of a mini-program code for ``scene`` (≤32 visible ASCII characters) opening ``page``.

    A JSON answer (40129 bad scene, 40169 bad length, 41030 unknown page …) raises ``WeChatClientException``.
    """
    body: dict = {"scene": scene, "check_path": check_path, "env_version": env_version}
    if page:
        body["page"] = page
    result = get_client().wxa._post("wxa/getwxacodeunlimit", data=body)
    if isinstance(result, dict):  # a JSON answer with errcode 0 carries no image either
        raise WeChatClientException(result.get("errcode"), result.get("errmsg") or "no image in the answer")
    return result.content


def msg_sec_check(openid: str, content: str) -> dict:
    """Screen a resident's text with msgSecCheck v2 (scene 2, comment): ``{"suggest", "label"}``.

    ``suggest`` is ``pass``, ``review`` or ``risky``; risky content is still errcode 0.
    """
    result = get_client().wxa._post(
        "wxa/msg_sec_check", data={"version": 2, "openid": openid, "scene": 2, "content": content}
    )
    verdict = result.get("result") or {}
    return {"suggest": verdict.get("suggest", "pass"), "label": int(verdict.get("label", 100))}


def oauth_authorize_url(redirect_uri: str, state: str = "") -> str:
    """Where to send a browser for the official account's silent OAuth (snsapi_base)."""
    return make_oauth(redirect_uri, state).authorize_url


def oauth_openid(code: str) -> str:
    """The official-account openid for the ``code`` the OAuth redirect brought back (snsapi_base)."""
    return make_oauth().fetch_access_token(code)["openid"]


def send_template_message(openid: str, template_id: str, data: dict, url: str | None = None) -> None:
    """Send an official-account template message; ``url`` is the page it opens."""
    get_mp_client().message.send_template(openid, template_id, _template_data(data), url=url)


def send_oa_subscribe_message(openid: str, template_id: str, data: dict, url: str | None = None) -> None:
    """Send a service account's subscribe notice (``cgi-bin/message/subscribe/bizsend``) to an official-account openid.

    Without a live subscription WeChat answers 43101; ``url`` (a web page: the tracking page) opens on a tap.
    """
    body: dict = {"touser": openid, "template_id": template_id, "data": _template_data(data)}
    if url:
        body["page"] = url
    get_mp_client().message._post("message/subscribe/bizsend", data=body)


def jsapi_ticket_answer() -> dict:
    """``cgi-bin/ticket/getticket?type=jsapi`` for the official account: ``{"ticket", "expires_in"}``."""
    return get_mp_client().jsapi.get_ticket("jsapi")
