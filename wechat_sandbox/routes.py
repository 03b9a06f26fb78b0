"""The sandbox's HTTP endpoints: WeChat's (as WeChat answers them, at WeChat's paths), the test and demo
controls under ``sandbox/``, and the 模拟微信 page at the root. WeChat answers errors with HTTP 200 and
``{"errcode": N, "errmsg": "… rid: …"}``.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import secrets
import time
from datetime import datetime
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import qrcode
import requests
from flask import Blueprint, Response, current_app, jsonify, redirect, render_template, request, url_for
from PIL import Image

from wechat_sandbox.state import CHINA, SandboxError, SandboxState

bp = Blueprint("wechat_sandbox", __name__)

FAULT_KINDS = ("http500", "timeout", "busy", "quota", "refused", "invalid_token")
FAULT_ERRORS = {
    "busy": (-1, "system error"),
    "quota": (45009, "reach max api daily quota limit"),
    "refused": (43101, "user refuse to accept the msg"),
    "invalid_token": (40001, "invalid credential, access_token is invalid or not latest"),
}
MINIPROGRAM_STATES = ("developer", "trial", "formal")
ENV_VERSIONS = ("release", "trial", "develop")
# Titles and field labels of the project's templates as the 模拟微信 page shows them, by purpose
# (WECHAT_TEMPLATES) and by the value each field carries; an entry's own "title"/"labels" win.
TEMPLATE_TITLES = {
    "item_progress": "办理进度通知",
    "item_answered": "留言回复通知",
    "item_resolved": "办结评价提醒",
    "deputy_task": "待办事项提醒",
}
VALUE_LABELS = {"ref": "编号", "status": "状态", "summary": "内容", "deputy": "代表", "at": "时间", "answer": "答复"}
TYPE_LABELS = {
    "thing": "事项",
    "character_string": "编号",
    "phrase": "状态",
    "time": "时间",
    "date": "日期",
    "name": "姓名",
    "number": "数量",
    "phone_number": "电话",
}
OPENID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
SCENE_CHARS = re.compile(r"^[0-9A-Za-z!#$&'()*+,/:;=?@\-._~]+$")
OPENID_COOKIE = "wechat_sandbox_openid"


def state() -> SandboxState:
    """The sandbox state of this app (``WECHAT_SANDBOX_DB``)."""
    return SandboxState(current_app.config["WECHAT_SANDBOX_DB"])


def wx_error(errcode: int, errmsg: str) -> Response:
    """A WeChat error answer: HTTP 200, errcode and errmsg with a request id as WeChat appends one."""
    rid = f"{secrets.token_hex(4)}-{secrets.token_hex(4)}-{secrets.token_hex(4)}"
    return jsonify(errcode=errcode, errmsg=f"{errmsg} rid: {rid}")


def wx_ok(**fields) -> Response:
    """A WeChat success answer."""
    return jsonify(errcode=0, errmsg="ok", **fields)


class ControlError(Exception):
    """A bad request to a sandbox control (not a WeChat endpoint): HTTP 400."""


@bp.errorhandler(SandboxError)
def _sandbox_error(exc: SandboxError):
    return wx_error(exc.errcode, exc.errmsg)


@bp.errorhandler(ControlError)
def _control_error(exc: ControlError):
    return jsonify(error=str(exc)), 400


# --- settings the sandbox answers from ------------------------------------------------------------


def apps() -> dict[str, tuple[str, str]]:
    """App id → (secret, "miniprogram" or "official_account"), from this server's own settings."""
    config = current_app.config
    known = {config["WECHAT_APPID"]: (config["WECHAT_SECRET"], "miniprogram")}
    if config.get("WECHAT_MP_APPID"):
        known[config["WECHAT_MP_APPID"]] = (config.get("WECHAT_MP_SECRET") or "", "official_account")
    return known


def templates() -> dict[str, dict] | None:
    """Template id → its ``WECHAT_TEMPLATES`` entry (and ``WECHAT_MP_TEMPLATES``'), with the purpose;
    None when neither setting exists (then any id starting with ``tpl-`` is known)."""
    config = current_app.config
    found: dict[str, dict] | None = None
    for setting in ("WECHAT_TEMPLATES", "WECHAT_MP_TEMPLATES"):
        entries = config.get(setting)
        if entries is None:
            continue
        found = found or {}
        for purpose, entry in entries.items():
            if isinstance(entry, dict) and entry.get("id"):
                found[entry["id"]] = {**entry, "purpose": purpose}
            elif isinstance(entry, str):
                found[entry] = {"id": entry, "purpose": purpose}
    return found


def is_long_term(template_id: str) -> bool:
    """True for a template configured ``"kind": "long_term"``: one acceptance allows every later message."""
    entry = (templates() or {}).get(template_id) or {}
    return entry.get("kind") == "long_term"


def is_known_template(template_id: object) -> bool:
    """True for a template id this sandbox's app has (40037 otherwise)."""
    if not isinstance(template_id, str) or not template_id:
        return False
    known = templates()
    return template_id.startswith("tpl-") if known is None else template_id in known


def published_pages() -> set[str] | None:
    """The mini-program's published pages: ``WECHAT_SANDBOX_PAGES``, else miniprogram_stub/app.json; None if unknown."""
    pages = current_app.config.get("WECHAT_SANDBOX_PAGES")
    if pages is not None:
        return {p.strip("/") for p in pages}
    app_json = Path(current_app.root_path).parent / "miniprogram_stub" / "app.json"
    try:
        manifest = json.loads(app_json.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    found = set(manifest.get("pages") or [])
    for package in manifest.get("subpackages") or manifest.get("subPackages") or []:
        root = package.get("root", "").strip("/")
        found.update(f"{root}/{page}" for page in package.get("pages") or [])
    return found or None


def check_page(page: object, must_be_published: bool) -> None:
    """41030 for a page that is not a plain path of the mini-program (or not published, when checked)."""
    if not isinstance(page, str) or not page or page.startswith("/"):
        raise SandboxError(41030, "invalid page")
    path = page.split("?", 1)[0]
    pages = published_pages()
    if must_be_published and pages is not None and path not in pages:
        raise SandboxError(41030, f"invalid page: {path} is not a published page")


# --- value limits of template data -------------------------------------------------------------

CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_TIME = r"\d{1,2}:\d{2}"
_DATE = r"\d{4}年\d{1,2}月\d{1,2}日"
TIME_VALUE = re.compile(rf"^(?:{_DATE} )?{_TIME}(?:\s*~\s*(?:{_DATE} )?{_TIME})?$")
DATE_VALUE = re.compile(rf"^{_DATE}(?: {_TIME})?(?:\s*~\s*{_DATE}(?: {_TIME})?)?$")


# Each data key type: its length limit (characters), and the pattern a value must match with the
# complaint when it does not. "name" has two limits (Chinese or letters) and is checked apart.
VALUE_RULES: dict[str, tuple[int | None, re.Pattern | None, str]] = {
    "thing": (20, None, ""),
    "number": (32, re.compile(r"\d+(?:\.\d+)?"), "is not a number"),
    "letter": (32, re.compile(r"[A-Za-z]+"), "must be letters only"),
    "symbol": (5, re.compile(r"[^\w\s]+"), "must be symbols only"),
    "character_string": (32, re.compile(r"[\x21-\x7e]+"), "must be digits, letters or symbols"),
    "time": (None, TIME_VALUE, "is not a time like 15:01 or 2019年10月1日 15:01"),
    "date": (None, DATE_VALUE, "is not a date like 2019年10月1日"),
    "amount": (None, re.compile(r"[¥$€£]?\d{1,10}(?:\.\d{1,2})?元?"), "is not an amount"),
    "phone_number": (17, re.compile(r"[\d+\-() ]+"), "must be digits and symbols"),
    "car_number": (8, None, ""),
    "phrase": (5, re.compile(rf"[{CJK}]+"), "must be Chinese characters only"),
}


def value_problem(kind: str, value: str) -> str | None:
    """Why ``value`` breaks WeChat's limit for a data key of type ``kind``, or None."""
    n = len(value)
    if kind == "name":
        if re.fullmatch(rf"[{CJK}]+", value):
            return "exceeds 10 Chinese characters" if n > 10 else None
        if re.fullmatch(rf"[^\d{CJK}]+", value):
            return "exceeds 20 letters" if n > 20 else None
        return "must be Chinese characters only or letters only"
    if kind not in VALUE_RULES:
        return None  # first/remark/keyword1 of official-account templates: no limit enforced here
    limit, pattern, complaint = VALUE_RULES[kind]
    if limit is not None and n > limit:
        return f"exceeds {limit} characters"
    if pattern is not None and not pattern.fullmatch(value):
        return complaint
    return None


def check_template_data(data: object) -> dict:
    """The data as sent, or 47003 naming the first field that breaks its limit."""
    if not isinstance(data, dict) or not data:
        raise SandboxError(47003, "argument invalid! data is empty")
    for key, item in data.items():
        field = f"data.{key}.value"
        if not isinstance(item, dict) or "value" not in item:
            raise SandboxError(47003, f"argument invalid! {field} is missing")
        value = item["value"]
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise SandboxError(47003, f"argument invalid! {field} is not a string")
        value = str(value)
        if not value.strip():
            raise SandboxError(47003, f"argument invalid! {field} is empty")
        problem = value_problem(re.sub(r"\d+$", "", key), value)
        if problem:
            raise SandboxError(47003, f"argument invalid! {field} {problem}")
    return data


def wxacode_png(scene: str, width: int) -> bytes:
    """A mini-program code as the sandbox draws it: a plain QR code of the scene, ``width`` pixels square."""
    image = qrcode.make(scene, box_size=1, border=4).get_image().convert("1")
    out = io.BytesIO()
    image.resize((width, width), Image.Resampling.NEAREST).save(out, format="PNG")
    return out.getvalue()


# --- WeChat's endpoints ------------------------------------------------------------------------

WECHAT_ENDPOINTS = set()


def wechat_endpoint(rule: str, methods: tuple[str, ...]):
    """Register a WeChat path: counted in /stats and subject to faults."""

    def decorate(view):
        WECHAT_ENDPOINTS.add(f"{bp.name}.{view.__name__}")
        return bp.route(rule, methods=list(methods))(view)

    return decorate


@bp.before_request
def _count_and_inject_faults():
    if request.endpoint not in WECHAT_ENDPOINTS:
        return None
    path = request.path.strip("/")  # below wherever the sandbox is mounted
    fault = state().record_call(path)
    if fault is None:
        return None
    kind = fault["kind"]
    if kind == "timeout":
        time.sleep(fault["seconds"] or current_app.config["WECHAT_SANDBOX_TIMEOUT_SECONDS"])
        return Response("upstream timed out", status=504, mimetype="text/plain")
    if kind == "http500":
        return Response("<html><body>500 Internal Server Error</body></html>", status=500, mimetype="text/html")
    return wx_error(*FAULT_ERRORS[kind])


def _body() -> dict:
    """The JSON body; wechatpy sends it without a Content-Type."""
    body = request.get_json(force=True, silent=True)
    if not isinstance(body, dict):
        raise SandboxError(47001, "data format error")
    return body


def _check_app(kind: str, appid: str | None, secret: str | None) -> None:
    known = apps().get(appid or "")
    if known is None or known[1] != kind:
        raise SandboxError(40013, "invalid appid")
    if secret != known[0]:
        raise SandboxError(40125, "invalid appsecret")


def _redeem(app_kind: str, code_kind: str, code_arg: str) -> dict:
    """The user behind the one-time code an app exchanges with its secret (``grant_type=authorization_code``),
    refused as WeChat refuses a wrong app, secret or grant type."""
    args = request.args
    _check_app(app_kind, args.get("appid"), args.get("secret"))
    if args.get("grant_type") != "authorization_code":
        raise SandboxError(40002, "invalid grant_type")
    return state().redeem_code(code_kind, args.get(code_arg))


def _with_unionid(answer: dict, user: dict):
    """The exchange's answer, with the unionid WeChat adds only for a user who has one."""
    if user["unionid"]:
        answer["unionid"] = user["unionid"]
    return jsonify(answer)


def _token_app(kind: str) -> str:
    """The app of the call's access token, which must be of ``kind`` (48001 otherwise)."""
    appid = state().check_token(request.args.get("access_token"))
    if apps().get(appid, ("", ""))[1] != kind:
        raise SandboxError(48001, "api unauthorized")
    return appid


def _known_user(openid: object) -> str:
    if not isinstance(openid, str) or not state().is_user(openid):
        raise SandboxError(40003, "invalid openid")
    return openid


@wechat_endpoint("/cgi-bin/token", ("GET",))
def token():
    """``GET cgi-bin/token``: a new token on every fetch; the previous one works five more minutes."""
    if request.args.get("grant_type") != "client_credential":
        raise SandboxError(40002, "invalid grant_type")
    appid = request.args.get("appid")
    known = apps().get(appid or "")
    if known is None:
        raise SandboxError(40013, "invalid appid")
    if request.args.get("secret") != known[0]:
        raise SandboxError(40125, "invalid appsecret")
    access_token, expires_in = state().issue_token(appid, current_app.config["WECHAT_SANDBOX_TOKEN_DAILY_LIMIT"])
    return jsonify(access_token=access_token, expires_in=expires_in)


@wechat_endpoint("/sns/jscode2session", ("GET",))
def jscode2session():
    """``GET sns/jscode2session``: a code from /sandbox/login-code → openid and session key, once."""
    user = _redeem("miniprogram", "login", "js_code")
    return _with_unionid({"openid": user["openid"], "session_key": secrets.token_urlsafe(16)}, user)


@wechat_endpoint("/wxa/getwxacodeunlimit", ("POST",))
def getwxacodeunlimit():
    """``POST wxa/getwxacodeunlimit``: a PNG (a plain QR code here) that encodes the scene."""
    _token_app("miniprogram")
    body = _body()
    scene = body.get("scene")
    if not isinstance(scene, str) or not 0 < len(scene) <= 32:
        raise SandboxError(40169, "invalid length for scene, or the data is not json string")
    if not SCENE_CHARS.fullmatch(scene):
        raise SandboxError(40129, "invalid scene")
    env_version = body.get("env_version", "release")
    if env_version not in ENV_VERSIONS:
        raise SandboxError(40097, "invalid args: env_version")
    if body.get("page") is not None:
        check_page(body["page"], must_be_published=body.get("check_path", True) is not False)
        if "?" in body["page"]:
            raise SandboxError(41030, "invalid page: no query allowed, pass it in scene")
    try:
        width = min(max(int(body.get("width", 430)), 280), 1280)
    except (TypeError, ValueError):
        width = 430
    return Response(wxacode_png(scene, width), mimetype="image/png")


def _message_to_send(app: str) -> tuple[str, dict, str]:
    """What every send API checks first: the caller's token (of an ``app`` kind of app), a recipient it knows and a
    template it knows; (appid, body, openid)."""
    appid = _token_app(app)
    body = _body()
    openid = _known_user(body.get("touser"))
    if not is_known_template(body.get("template_id")):
        raise SandboxError(40037, "invalid template id")
    return appid, body, openid


def _deliver(
    kind: str, appid: str, openid: str, body: dict, data: dict, *, page, url, mp_state=None, lang="zh_CN", **how
):
    """Deliver a checked message to its recipient's phone (``how``: whether it spends or needs a subscription);
    WeChat's answer with its msgid."""
    message = {
        "kind": kind,
        "appid": appid,
        "openid": openid,
        "template_id": body["template_id"],
        "page": page,
        "url": url,
        "data": data,
        "miniprogram_state": mp_state,
        "lang": lang,
    }
    return wx_ok(msgid=state().deliver(message, **how))


@wechat_endpoint("/cgi-bin/message/subscribe/send", ("POST",))
def subscribe_send():
    """``POST cgi-bin/message/subscribe/send``: one message per acceptance, data within WeChat's limits."""
    appid, body, openid = _message_to_send("miniprogram")
    miniprogram_state = body.get("miniprogram_state", "formal")
    if miniprogram_state not in MINIPROGRAM_STATES:
        raise SandboxError(47003, "argument invalid! miniprogram_state")
    data = check_template_data(body.get("data"))
    page = body.get("page")
    if page is not None:
        check_page(page, must_be_published=True)
    return _deliver(
        "subscribe",
        appid,
        openid,
        body,
        data,
        page=page,
        url=None,
        mp_state=miniprogram_state,
        lang=body.get("lang", "zh_CN"),
        spend_subscription=not is_long_term(body["template_id"]),
        need_subscription=True,
    )


def _official_account_message() -> tuple[str, dict, str, dict, str | None]:
    """A service account's message, checked: (appid, body, openid, data, the mini-program page it may open)."""
    appid, body, openid = _message_to_send("official_account")
    data = check_template_data(body.get("data"))
    miniprogram = body.get("miniprogram") if isinstance(body.get("miniprogram"), dict) else {}
    return appid, body, openid, data, miniprogram.get("pagepath")


@wechat_endpoint("/cgi-bin/message/template/send", ("POST",))
def template_send():
    """``POST cgi-bin/message/template/send`` (official account): no acceptance needed."""
    appid, body, openid, data, page = _official_account_message()
    return _deliver("template", appid, openid, body, data, page=page, url=body.get("url"), spend_subscription=False)


@wechat_endpoint("/cgi-bin/message/subscribe/bizsend", ("POST",))
def subscribe_bizsend():
    """``POST cgi-bin/message/subscribe/bizsend`` (service account 订阅通知): needs a live subscription (43101)."""
    appid, body, openid, data, page = _official_account_message()
    return _deliver(
        "bizsend",
        appid,
        openid,
        body,
        data,
        page=page,
        url=body.get("page") if isinstance(body.get("page"), str) else None,
        spend_subscription=not is_long_term(body["template_id"]),
        need_subscription=True,
    )


@wechat_endpoint("/cgi-bin/ticket/getticket", ("GET",))
def getticket():
    """``GET cgi-bin/ticket/getticket?type=jsapi`` (service account): a JS-SDK ticket for 7,200 s."""
    appid = _token_app("official_account")
    if request.args.get("type") != "jsapi":
        raise SandboxError(40097, "invalid args: type")
    return wx_ok(ticket=f"sandbox-jsapi-{appid}-{secrets.token_hex(8)}", expires_in=7200)


@wechat_endpoint("/wxa/msg_sec_check", ("POST",))
def msg_sec_check():
    """``POST wxa/msg_sec_check``: risky when the text holds 【风险】, review for 【复核】, else pass."""
    _token_app("miniprogram")
    body = _body()
    content = body.get("content")
    if not isinstance(content, str) or not content:
        raise SandboxError(47003, "argument invalid! content is empty")
    if len(content) > 2500:
        raise SandboxError(47003, "argument invalid! content exceeds 2500 characters")
    suggest = "risky" if "【风险】" in content else "review" if "【复核】" in content else "pass"
    label = 100 if suggest == "pass" else 21000
    if body.get("version") != 2:  # v1: risky content is an error
        return wx_error(87014, "risky content") if suggest == "risky" else wx_ok()
    _known_user(body.get("openid"))
    if body.get("scene") not in (1, 2, 3, 4):
        raise SandboxError(47003, "argument invalid! scene")
    trace_id = secrets.token_hex(12)
    return wx_ok(
        result={"suggest": suggest, "label": label},
        detail=[{"strategy": "content_model", "errcode": 0, "suggest": suggest, "label": label, "prob": 90}],
        trace_id=trace_id,
    )


@wechat_endpoint("/sns/oauth2/access_token", ("GET",))
def oauth_access_token():
    """``GET sns/oauth2/access_token``: the code the authorize page gave → the official-account openid."""
    user = _redeem("official_account", "oauth", "code")
    answer = {
        "access_token": "sbxweb_" + secrets.token_urlsafe(32),
        "expires_in": 7200,
        "refresh_token": "sbxref_" + secrets.token_urlsafe(32),
        "openid": user["openid"],
        "scope": "snsapi_base",
        "is_snapshotuser": 0,
    }
    return _with_unionid(answer, user)


def oauth_refused(reason: str) -> tuple[str, int]:
    """The page WeChat's browser shows when the authorize request is wrong (HTTP 400 here)."""
    return render_template("error.html", message=f"微信授权失败：{reason}（模拟微信）。"), 400


def _redirect_allowed(uri: str) -> bool:
    """Like WeChat's 网页授权域名: only this server's host, loopback and ``WECHAT_SANDBOX_OAUTH_HOSTS``
    (which ``compose.py`` gives the production app's host)."""
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    allowed = {
        urlsplit(request.host_url).hostname,
        "localhost",
        "127.0.0.1",
        "::1",
        *current_app.config.get("WECHAT_SANDBOX_OAUTH_HOSTS", ()),
    }
    return parts.hostname in allowed


@wechat_endpoint("/connect/oauth2/authorize", ("GET",))
def oauth_authorize():
    """``GET connect/oauth2/authorize``: silent (snsapi_base), so straight back to redirect_uri with a code.

    The user is ``?openid=`` when given (a sandbox extension), else this browser's sandbox user (a cookie).
    """
    args = request.args
    known = apps().get(args.get("appid") or "")
    if known is None or known[1] != "official_account":
        return oauth_refused("appid 无效")
    redirect_uri = args.get("redirect_uri") or ""
    if not _redirect_allowed(redirect_uri):
        return oauth_refused("redirect_uri 域名与后台配置不一致（10003）")
    if args.get("response_type") != "code" or args.get("scope") not in ("snsapi_base", "snsapi_userinfo"):
        return oauth_refused("参数错误")
    openid = args.get("openid") or request.cookies.get(OPENID_COOKIE) or ""
    if not OPENID.fullmatch(openid):
        openid = "o" + secrets.token_urlsafe(20)
    code = state().mint_code("oauth", openid)
    query = urlencode({"code": code, "state": args.get("state", "")})
    response = redirect(redirect_uri + ("&" if "?" in redirect_uri else "?") + query)
    response.set_cookie(OPENID_COOKIE, openid, max_age=365 * 86400, httponly=True, samesite="Lax")
    return response


@bp.get("/open/js/jweixin-1.6.0.js")
def jssdk_script():
    """WeChat's JS-SDK at WeChat's path, as 模拟微信 emulates it: ``wx.config`` and the ``<wx-open-subscribe>`` tag,
    whose sheet posts the choice to ``sandbox/oa-subscribe`` for this browser's user (templates/jweixin.js says
    exactly what is emulated and what is not). The production app loads it only under ``WECHAT_SANDBOX``."""
    titles = {
        template_id: entry.get("title") or TEMPLATE_TITLES.get(entry.get("purpose", ""), template_id)
        for template_id, entry in (templates() or {}).items()
    }
    script = render_template("jweixin.js", control_url=url_for(".control_oa_subscribe"), titles=titles)
    return Response(script, mimetype="text/javascript", headers={"Cache-Control": "no-store"})


@wechat_endpoint("/<path:path>", ("GET", "POST"))
def not_implemented(path: str):
    """Any other WeChat path: the sandbox does not speak it."""
    return wx_error(48001, f"api unauthorized: the local WeChat sandbox does not implement {path}")


# --- controls for tests and demos ----------------------------------------------------------------


def _control_body() -> dict:
    if request.form:
        return request.form.to_dict()
    body = request.get_json(force=True, silent=True)
    if not isinstance(body, dict):
        raise ControlError("send a JSON object")
    return body


def _openid(body: dict) -> str:
    openid = body.get("openid")
    if not isinstance(openid, str) or not OPENID.fullmatch(openid):
        raise ControlError("openid: 1–64 letters, digits, _ or -")
    return openid


@bp.post("/sandbox/login-code")
def control_login_code():
    """What ``wx.login`` would give this user: ``{"openid"[, "unionid"]}`` → ``{"code"}``."""
    body = _control_body()
    openid = _openid(body)
    unionid = body.get("unionid") or None
    return jsonify(code=state().mint_code("login", openid, unionid), openid=openid)


@bp.post("/sandbox/subscribe")
def control_subscribe():
    """The user accepts one subscribe message of a template (``count`` for more): ``{"openid", "template_id"}``."""
    body = _control_body()
    openid = _openid(body)
    template_id = body.get("template_id")
    if not is_known_template(template_id):
        raise ControlError(f"unknown template id {template_id!r} (errcode 20001 in wx.requestSubscribeMessage)")
    try:
        count = int(body.get("count", 1))
    except (TypeError, ValueError):
        raise ControlError("count: a whole number") from None
    if count < 1:
        raise ControlError("count: at least 1")
    credits = state().subscribe(openid, template_id, count, long_term=is_long_term(template_id))
    if request.form:
        return redirect(url_for(".index") + f"#user-{openid}")
    return jsonify(openid=openid, template_id=template_id, credits=credits)


def push_event(openid: str, event: str, entries: list[dict]) -> int | None:
    """Push a subscribe event to the app's push URL, signed as WeChat signs it; the answer's status (None: not pushed)."""
    config = current_app.config
    token = config.get("WECHAT_PUSH_TOKEN")
    if not token:
        return None
    url = config.get("WECHAT_SANDBOX_PUSH_URL") or request.host_url + "wechat/push"
    timestamp, nonce = str(int(time.time())), secrets.token_hex(6)
    signature = hashlib.sha1("".join(sorted([token, timestamp, nonce])).encode()).hexdigest()  # noqa: S324 - WeChat's
    container = "".join(part.capitalize() for part in event.split("_"))
    lists = "".join(
        "<List>" + "".join(f"<{k}><![CDATA[{v}]]></{k}>" for k, v in entry.items()) + "</List>" for entry in entries
    )
    body = (
        f"<xml><ToUserName><![CDATA[gh_sandbox]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>"
        f"<CreateTime>{timestamp}</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[{event}]]></Event>"
        f"<{container}>{lists}</{container}></xml>"
    )
    answer = requests.post(
        url,
        params={"signature": signature, "timestamp": timestamp, "nonce": nonce},
        data=body.encode(),
        headers={"Content-Type": "text/xml"},
        timeout=10,
    )
    return answer.status_code


@bp.post("/sandbox/oa-subscribe")
def control_oa_subscribe():
    """What ``<wx-open-subscribe>`` does in WeChat: ``{"openid", "template_id", "status": "accept"|"reject"}``.

    Records the choice (a long-term template switched on or off; a one-time one counted) and pushes
    ``subscribe_msg_popup_event`` to the app's push URL, signed. Without ``openid``, the user is this
    browser's (the cookie the OAuth page set): what the emulated open tag (``jssdk_script``) posts.
    """
    body = _control_body()
    if not body.get("openid") and request.cookies.get(OPENID_COOKIE):
        body = {**body, "openid": request.cookies[OPENID_COOKIE]}
    openid = _openid(body)
    template_id = body.get("template_id")
    if not is_known_template(template_id):
        raise ControlError(f"unknown template id {template_id!r}")
    status = body.get("status")
    if status not in ("accept", "reject"):
        raise ControlError("status: accept or reject")
    long_term = is_long_term(template_id)
    if status == "accept":
        credits = state().subscribe(openid, template_id, 1, long_term=long_term)
    else:
        credits = state().subscribe(openid, template_id, 0, long_term=True) if long_term else 0
    pushed = push_event(
        openid,
        "subscribe_msg_popup_event",
        [{"TemplateId": template_id, "SubscribeStatusString": status, "PopupScene": "2"}],
    )
    return jsonify(openid=openid, template_id=template_id, credits=credits, pushed=pushed)


@bp.get("/sandbox/subscriptions")
def control_subscriptions():
    """Acceptances left per template for ``?openid=``."""
    return jsonify(state().subscriptions(request.args.get("openid", "")))


@bp.get("/sandbox/messages")
def control_messages():
    """The messages received, oldest first (one user's with ``?openid=``)."""
    return jsonify(state().messages(request.args.get("openid") or None))


@bp.post("/sandbox/faults")
def control_set_fault():
    """Fail calls to a path: ``{"path", "kind", "times": N or -1, "seconds"?}``; path ``*`` is every WeChat path."""
    body = _control_body()
    path = str(body.get("path") or "").strip("/")
    kind = body.get("kind")
    if not path:
        raise ControlError("path: a WeChat path such as cgi-bin/message/subscribe/send, or *")
    if kind not in FAULT_KINDS:
        raise ControlError(f"kind: one of {', '.join(FAULT_KINDS)}")
    try:
        times = int(body.get("times", 1))
        seconds = float(body["seconds"]) if body.get("seconds") is not None else None
    except (TypeError, ValueError):
        raise ControlError("times: a whole number (-1 = until cleared); seconds: a number") from None
    if times == 0 or times < -1:
        raise ControlError("times: at least 1, or -1 for until cleared")
    state().set_fault(path, kind, times, seconds)
    return jsonify(path=path, kind=kind, times=times, seconds=seconds)


@bp.get("/sandbox/faults")
def control_faults():
    """The faults still to apply, e.g. ``[{"path", "kind", "remaining", "seconds"}]``: a spent one is gone."""
    return jsonify(state().faults())


@bp.delete("/sandbox/faults")
def control_clear_faults():
    """Remove every fault."""
    return jsonify(cleared=state().clear_faults())


@bp.post("/sandbox/reset")
def control_reset():
    """Forget everything the sandbox holds."""
    state().reset()
    return jsonify(reset=True)


@bp.get("/sandbox/stats")
def control_stats():
    """Calls per WeChat path since the last reset, e.g. ``{"cgi-bin/token": 1}``."""
    return jsonify(state().stats())


@bp.post("/sandbox/clock")
def control_clock():
    """Move the sandbox's clock forward ``{"advance": seconds}`` (token grace and expiry, code expiry)."""
    body = _control_body()
    try:
        advance = float(body.get("advance", 0))
    except (TypeError, ValueError):
        raise ControlError("advance: seconds") from None
    if advance < 0:
        raise ControlError("advance: the clock only moves forward")
    return jsonify(offset=state().advance_clock(advance))


# --- the 模拟微信 page ---------------------------------------------------------------------------


def _notification(message: dict) -> dict:
    """A received message as WeChat shows a service notification: title, time, labelled lines, link."""
    entry = (templates() or {}).get(message["template_id"], {})
    fields = entry.get("fields") if isinstance(entry.get("fields"), dict) else {}
    labels = entry.get("labels") if isinstance(entry.get("labels"), dict) else {}
    keys = [k for k in fields if k in message["data"]] + [k for k in message["data"] if k not in fields]
    lines = []
    for key in keys:
        label = labels.get(key) or VALUE_LABELS.get(fields.get(key, "")) or TYPE_LABELS.get(re.sub(r"\d+$", "", key))
        value = message["data"][key]
        lines.append({"label": label or key, "value": value.get("value") if isinstance(value, dict) else value})
    at = datetime.fromisoformat(message["at"]).astimezone(CHINA)
    return {
        **message,
        "title": entry.get("title") or TEMPLATE_TITLES.get(entry.get("purpose", "")) or message["template_id"],
        "when": f"{at.month}月{at.day}日 {at:%H:%M}",
        "lines": lines,
    }


@bp.get("/")
def index():
    """模拟微信: every sandbox user and the notifications they received, newest first."""
    sandbox = state()
    people = []
    for openid in sandbox.users():
        people.append(
            {
                "openid": openid,
                "messages": [_notification(m) for m in sandbox.messages(openid, newest_first=True)],
                "subscriptions": sandbox.subscriptions(openid),
            }
        )
    known = templates()
    template_choices = [
        {"id": tid, "title": entry.get("title") or TEMPLATE_TITLES.get(entry["purpose"], tid)}
        for tid, entry in (known or {}).items()
    ]
    return render_template("index.html", people=people, template_choices=template_choices)
