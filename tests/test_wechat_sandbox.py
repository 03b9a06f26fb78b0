"""The local WeChat sandbox: every endpoint and error code, driven through wechatpy over real HTTP
where wechatpy has a call; the controls; the 模拟微信 page; state shared by gunicorn workers."""

# ruff: noqa: F811 - the wechat_sandbox fixture is imported, then named as a parameter

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import zxingcpp
from PIL import Image
from wechatpy.exceptions import WeChatClientException, WeChatOAuthException
from werkzeug.test import Client

from backend import create_app
from backend.extensions import db
from backend.wechat import api
from backend.wechat.client import client_class, get_client, get_mp_client
from tests.helpers import run_to_end
from tests.wechat_server import (
    APPID,
    MP_APPID,
    SECRET,
    wechat_sandbox,  # noqa: F401
)
from wechat_sandbox import compose

pytestmark = pytest.mark.engine_independent(reason="the sandbox is an app of its own with no database")

TEMPLATE = "tpl-item-progress"  # long-term by default
ONE_TIME_TEMPLATE = "tpl-item-resolved"
ALICE = "oAlice"
SEND = "cgi-bin/message/subscribe/send"


def raw(sandbox, method: str, path: str, **kwargs) -> requests.Response:
    """A request to the sandbox without wechatpy (for what wechatpy cannot send)."""
    return requests.request(method, sandbox.url + path, timeout=5, **kwargs)


def errcode_of(call) -> int | None:
    """The errcode of the WeChatClientException ``call()`` raises."""
    with pytest.raises(WeChatClientException) as exc_info:
        call()
    return exc_info.value.errcode


@pytest.fixture
def sandbox_setting(wechat_sandbox):
    """Change a setting of the sandbox server for one test."""
    saved = {}

    def _set(name, value):
        saved.setdefault(name, wechat_sandbox.sandbox_app.config.get(name))
        wechat_sandbox.sandbox_app.config[name] = value

    yield _set
    wechat_sandbox.sandbox_app.config.update(saved)


# --- access token ---------------------------------------------------------------------------------


def test_token_is_new_on_every_fetch(app, wechat_sandbox):
    client = get_client()
    first = client.fetch_access_token()
    second = client.fetch_access_token()
    assert first["expires_in"] == 7200
    assert first["access_token"] != second["access_token"]
    assert wechat_sandbox.stats()["cgi-bin/token"] == 2


def test_token_refuses_wrong_credentials(app, wechat_sandbox):
    cls = client_class(wechat_sandbox.url)
    assert errcode_of(cls("wx-unknown", SECRET, timeout=2).fetch_access_token) == 40013
    assert errcode_of(cls(APPID, "wrong-secret", timeout=2).fetch_access_token) == 40125
    answer = raw(wechat_sandbox, "GET", "cgi-bin/token", params={"grant_type": "x", "appid": APPID, "secret": SECRET})
    assert answer.json()["errcode"] == 40002
    assert "rid:" in answer.json()["errmsg"]


def test_calls_without_a_valid_token(app, wechat_sandbox):
    body = b'{"version": 2, "openid": "oAlice", "scene": 2, "content": "x"}'
    assert raw(wechat_sandbox, "POST", "wxa/msg_sec_check", data=body).json()["errcode"] == 41001
    answer = raw(wechat_sandbox, "POST", "wxa/msg_sec_check", params={"access_token": "forged"}, data=body)
    assert answer.json()["errcode"] == 40001


# --- jscode2session -------------------------------------------------------------------------------


def test_code_to_session_once(app, wechat_sandbox):
    code = wechat_sandbox.login_code(ALICE)
    session = api.code_to_session(code)
    assert session["openid"] == ALICE
    assert len(session["session_key"]) >= 16
    assert "unionid" not in session
    assert errcode_of(lambda: api.code_to_session(code)) == 40163
    assert errcode_of(lambda: api.code_to_session("never-issued")) == 40029


def test_code_to_session_with_unionid_and_expiry(app, wechat_sandbox):
    assert api.code_to_session(wechat_sandbox.login_code("oBob", unionid="uBob"))["unionid"] == "uBob"
    code = wechat_sandbox.login_code(ALICE)
    wechat_sandbox.advance_clock(301)  # wx.login codes live five minutes
    assert errcode_of(lambda: get_client().wxa.code_to_session(code)) == 40029


def test_code_to_session_busy_on_demand(app, wechat_sandbox):
    code = wechat_sandbox.login_code(ALICE)
    wechat_sandbox.fault("sns/jscode2session", "busy", times=1)
    assert errcode_of(lambda: api.code_to_session(code)) == -1
    assert api.code_to_session(code)["openid"] == ALICE  # the busy answer did not spend the code


# --- getwxacodeunlimit ----------------------------------------------------------------------------


def decode_qr(png: bytes) -> list[str]:
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG"
    return [barcode.text for barcode in zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)]


def test_wxacode_is_a_png_that_decodes_to_the_scene(app, wechat_sandbox):
    scene = "d=Ab3_x9!#$&'()*+,/:;=?@-._~"
    png = api.get_wxacode_unlimited(scene, "pages/landing/landing", check_path=False, env_version="develop")
    assert decode_qr(png) == [scene]
    assert Image.open(io.BytesIO(png)).size == (430, 430)
    # wechatpy's own call (no check_path, no env_version) works too and answers a requests.Response.
    response = get_client().wxa.get_wxa_code_unlimited("s=1", width=2000)
    assert response.headers["Content-Type"] == "image/png"
    assert decode_qr(response.content) == ["s=1"]
    assert Image.open(io.BytesIO(response.content)).size == (1280, 1280)


@pytest.mark.parametrize(
    ("scene", "errcode"),
    [("张秀英", 40129), ("a b", 40129), ("100%", 40129), ("x" * 33, 40169), ("", 40169), ("x" * 32, None)],
)
def test_wxacode_scene_rules(app, wechat_sandbox, scene, errcode):
    call = lambda: api.get_wxacode_unlimited(scene, None)  # noqa: E731
    if errcode is None:
        assert decode_qr(call()) == [scene]
    else:
        assert errcode_of(call) == errcode


def test_wxacode_page_rules(app, wechat_sandbox, sandbox_setting):
    sandbox_setting("WECHAT_SANDBOX_PAGES", ["pages/landing/landing", "pages/form/form"])
    assert decode_qr(api.get_wxacode_unlimited("s=1", "pages/form/form", check_path=True)) == ["s=1"]
    assert errcode_of(lambda: api.get_wxacode_unlimited("s=1", "pages/gone/gone", check_path=True)) == 41030
    assert decode_qr(api.get_wxacode_unlimited("s=1", "pages/gone/gone", check_path=False)) == ["s=1"]
    assert errcode_of(lambda: api.get_wxacode_unlimited("s=1", "/pages/form/form")) == 41030
    assert errcode_of(lambda: api.get_wxacode_unlimited("s=1", "pages/form/form?x=1")) == 41030
    assert errcode_of(lambda: api.get_wxacode_unlimited("s=1", None, env_version="beta")) == 40097
    # wechatpy's call sends no check_path: WeChat's default (true) applies.
    assert errcode_of(lambda: get_client().wxa.get_wxa_code_unlimited("s=1", page="pages/gone/gone")) == 41030


# --- subscribe messages ---------------------------------------------------------------------------

PROGRESS = {"character_string1": "MSL-2024-000123", "phrase2": "已受理", "thing3": "路灯坏了", "time4": "15:01"}


def test_one_message_per_acceptance(app, wechat_sandbox):
    """A one-time template (the resolution's): one acceptance, one message."""
    wechat_sandbox.login_code(ALICE)
    wechat_sandbox.subscribe(ALICE, ONE_TIME_TEMPLATE)
    api.send_subscribe_message(ALICE, ONE_TIME_TEMPLATE, PROGRESS, page="pages/item/item?ref=MSL-2024-000123")
    assert errcode_of(lambda: api.send_subscribe_message(ALICE, ONE_TIME_TEMPLATE, PROGRESS)) == 43101
    assert wechat_sandbox.subscribe(ALICE, ONE_TIME_TEMPLATE, count=2) == 2
    api.send_subscribe_message(ALICE, ONE_TIME_TEMPLATE, PROGRESS)
    api.send_subscribe_message(ALICE, ONE_TIME_TEMPLATE, PROGRESS)
    assert errcode_of(lambda: api.send_subscribe_message(ALICE, ONE_TIME_TEMPLATE, PROGRESS)) == 43101
    messages = wechat_sandbox.messages(ALICE)
    assert len(messages) == 3
    first = messages[0]
    assert first["template_id"] == ONE_TIME_TEMPLATE
    assert first["page"] == "pages/item/item?ref=MSL-2024-000123"
    assert first["data"] == {key: {"value": value} for key, value in PROGRESS.items()}
    assert first["miniprogram_state"] == "developer"
    assert first["lang"] == "zh_CN"
    assert first["at"]
    assert messages[1]["page"] is None


def test_a_long_term_template_takes_many_messages_from_one_acceptance(app, wechat_sandbox):
    """Residents' progress is long-term by default: one acceptance, every message, until switched off."""
    wechat_sandbox.login_code(ALICE)
    assert errcode_of(lambda: api.send_subscribe_message(ALICE, TEMPLATE, PROGRESS)) == 43101  # never accepted
    assert wechat_sandbox.subscribe(ALICE, TEMPLATE) == 1
    assert wechat_sandbox.subscribe(ALICE, TEMPLATE, count=3) == 1  # on is on: accepting again changes nothing
    for _ in range(4):
        api.send_subscribe_message(ALICE, TEMPLATE, PROGRESS)
    assert wechat_sandbox.subscriptions(ALICE)[TEMPLATE] == 1
    assert len(wechat_sandbox.messages(ALICE)) == 4


def test_acceptances_are_per_template(app, wechat_sandbox):
    wechat_sandbox.subscribe(ALICE, "tpl-item-answered")
    assert errcode_of(lambda: api.send_subscribe_message(ALICE, TEMPLATE, PROGRESS)) == 43101
    wechat_sandbox.subscribe("oBob", TEMPLATE)
    assert errcode_of(lambda: api.send_subscribe_message(ALICE, TEMPLATE, PROGRESS)) == 43101


def test_wechatpys_own_subscribe_call(app, wechat_sandbox):
    wechat_sandbox.subscribe(ALICE, TEMPLATE)
    get_client().wxa.send_subscribe_message(ALICE, TEMPLATE, {"thing3": {"value": "路灯坏了"}})
    assert wechat_sandbox.messages(ALICE)[0]["miniprogram_state"] == "formal"  # WeChat's default


def test_unknown_user_and_template(app, wechat_sandbox):
    wechat_sandbox.subscribe(ALICE, TEMPLATE)
    assert errcode_of(lambda: api.send_subscribe_message("oNobody", TEMPLATE, PROGRESS)) == 40003
    assert errcode_of(lambda: api.send_subscribe_message(ALICE, "tpl-unknown", PROGRESS)) == 40037
    assert errcode_of(lambda: api.send_subscribe_message(ALICE, "not-a-template", PROGRESS)) == 40037
    assert wechat_sandbox.subscriptions(ALICE) == {TEMPLATE: 1}


VALUE_CASES = [
    ("thing3", "二十个字的事项" * 2 + "办理情况说明", True),
    ("thing3", "二十个字的事项" * 3, False),
    ("thing3", "", False),
    ("phrase2", "已受理", True),
    ("phrase2", "正在认真办理", False),
    ("phrase2", "OK", False),
    ("character_string1", "MSL-2024-000123", True),
    ("character_string1", "A" * 33, False),
    ("character_string1", "编号1", False),
    ("time4", "15:01", True),
    ("time4", "2019年10月1日 15:01", True),
    ("time4", "15:01~16:30", True),
    ("time4", "2019-10-01 15:01", False),
    ("time4", "下午三点", False),
    ("date5", "2019年10月1日", True),
    ("date5", "2019/10/01", False),
    ("number6", "12.5", True),
    ("number6", "12a", False),
    ("number6", "1" * 33, False),
    ("name7", "张秀英", True),
    ("name7", "张" * 11, False),
    ("name7", "Zhang Xiuying", True),
    ("name7", "Z" * 21, False),
    ("name7", "张Xiu", False),
    ("phone_number8", "138-0000-1234", True),
    ("phone_number8", "1" * 18, False),
    ("letter9", "abc", True),
    ("letter9", "ab1", False),
    ("symbol10", "~!", True),
    ("symbol10", "abc", False),
    ("amount11", "¥12.50元", True),
    ("amount11", "twelve", False),
    ("car_number12", "湘B12345", True),
    ("car_number12", "湘B123456X", False),
]


@pytest.mark.parametrize(("key", "value", "accepted"), VALUE_CASES)
def test_value_limits(app, wechat_sandbox, key, value, accepted):
    wechat_sandbox.subscribe(ALICE, TEMPLATE)
    send = lambda: api.send_subscribe_message(ALICE, TEMPLATE, {"thing3": "路灯坏了", key: value})  # noqa: E731
    if accepted:
        send()
        assert wechat_sandbox.messages(ALICE)[0]["data"][key] == {"value": value}
    else:
        with pytest.raises(WeChatClientException) as exc_info:
            send()
        assert exc_info.value.errcode == 47003
        assert f"data.{key}.value" in exc_info.value.errmsg
        assert wechat_sandbox.subscriptions(ALICE) == {TEMPLATE: 1}  # a refused message spends nothing


def test_malformed_data_and_state(app, wechat_sandbox):
    wechat_sandbox.subscribe(ALICE, TEMPLATE)
    post = get_client().wxa._post
    body = {"touser": ALICE, "template_id": TEMPLATE}
    assert errcode_of(lambda: post(SEND, data={**body, "data": {}})) == 47003
    assert errcode_of(lambda: post(SEND, data={**body, "data": {"thing3": "no value key"}})) == 47003
    bad_state = {**body, "data": {"thing3": {"value": "x"}}, "miniprogram_state": "beta"}
    assert "miniprogram_state" in _errmsg(lambda: post(SEND, data=bad_state))
    assert errcode_of(lambda: post(SEND, data=b"not json")) == 47001


def _errmsg(call) -> str:
    with pytest.raises(WeChatClientException) as exc_info:
        call()
    return exc_info.value.errmsg


def test_subscribe_page_must_be_published(app, wechat_sandbox, sandbox_setting):
    sandbox_setting("WECHAT_SANDBOX_PAGES", ["pages/item/item"])
    wechat_sandbox.subscribe(ALICE, TEMPLATE, count=2)
    assert errcode_of(lambda: api.send_subscribe_message(ALICE, TEMPLATE, PROGRESS, page="pages/gone/gone")) == 41030
    api.send_subscribe_message(ALICE, TEMPLATE, PROGRESS, page="pages/item/item?ref=1")
    assert wechat_sandbox.subscriptions(ALICE) == {TEMPLATE: 1}


# --- official account: template messages and OAuth -----------------------------------------------


def test_template_message(app, wechat_sandbox):
    wechat_sandbox.login_code("oMp")  # the user is known to the sandbox
    api.send_template_message("oMp", TEMPLATE, {"thing3": "路灯坏了"}, url="https://msl.example.cn/t/1")
    (message,) = wechat_sandbox.messages("oMp")
    assert message["kind"] == "template"
    assert message["url"] == "https://msl.example.cn/t/1"
    assert message["data"] == {"thing3": {"value": "路灯坏了"}}
    assert errcode_of(lambda: api.send_template_message("oNobody", TEMPLATE, {"thing3": "x"})) == 40003
    assert errcode_of(lambda: api.send_template_message("oMp", "tpl-unknown", {"thing3": "x"})) == 40037
    assert errcode_of(lambda: api.send_template_message("oMp", TEMPLATE, {"thing3": "x" * 21})) == 47003
    # The mini-program's token may not send official-account messages.
    assert errcode_of(lambda: get_client().message.send_template("oMp", TEMPLATE, {"thing3": {"value": "x"}})) == 48001
    assert get_mp_client().appid == MP_APPID


def test_oauth_round_trip(app, wechat_sandbox):
    redirect_uri = "https://msl.example.cn/c/abc?from=scan"
    url = api.oauth_authorize_url(redirect_uri, state="s123")
    assert url.startswith(wechat_sandbox.url + "connect/oauth2/authorize?appid=" + MP_APPID)
    assert url.endswith("#wechat_redirect")
    browser = requests.Session()
    answer = browser.get(url, allow_redirects=False, timeout=5)
    assert answer.status_code == 302
    location = urlsplit(answer.headers["Location"])
    assert location.netloc == "msl.example.cn" and location.path == "/c/abc"
    query = parse_qs(location.query)
    assert query["from"] == ["scan"] and query["state"] == ["s123"]
    openid = api.oauth_openid(query["code"][0])
    assert openid.startswith("o")
    with pytest.raises(WeChatOAuthException) as exc_info:
        api.oauth_openid(query["code"][0])
    assert exc_info.value.errcode == 40163
    with pytest.raises(WeChatOAuthException) as exc_info:
        api.oauth_openid("never-issued")
    assert exc_info.value.errcode == 40029
    # The same browser is the same WeChat user next time.
    again = parse_qs(urlsplit(browser.get(url, allow_redirects=False, timeout=5).headers["Location"]).query)
    assert api.oauth_openid(again["code"][0]) == openid
    # A chosen user (a sandbox extension, for tests).
    chosen = browser.get(url.replace("#wechat_redirect", "&openid=oChosen"), allow_redirects=False, timeout=5)
    assert api.oauth_openid(parse_qs(urlsplit(chosen.headers["Location"]).query)["code"][0]) == "oChosen"


def test_oauth_authorize_refuses_bad_requests(app, wechat_sandbox):
    good = {"appid": MP_APPID, "redirect_uri": "https://msl.example.cn/x", "response_type": "code"}
    good["scope"] = "snsapi_base"
    path = "connect/oauth2/authorize"
    assert raw(wechat_sandbox, "GET", path, params=good, allow_redirects=False).status_code == 302
    for change in ({"appid": APPID}, {"redirect_uri": "https://evil.example.com/x"}, {"scope": "other"}):
        answer = raw(wechat_sandbox, "GET", path, params={**good, **change}, allow_redirects=False)
        assert answer.status_code == 400
        assert "微信授权失败" in answer.text


# --- content security -------------------------------------------------------------------------------


def test_msg_sec_check_verdicts(app, wechat_sandbox):
    wechat_sandbox.login_code(ALICE)
    assert api.msg_sec_check(ALICE, "小区路灯坏了三天") == {"suggest": "pass", "label": 100}
    assert api.msg_sec_check(ALICE, "【复核】请核实")["suggest"] == "review"
    assert api.msg_sec_check(ALICE, "【风险】内容") == {"suggest": "risky", "label": 21000}
    assert errcode_of(lambda: api.msg_sec_check("oNobody", "路灯")) == 40003
    assert errcode_of(lambda: api.msg_sec_check(ALICE, "长" * 2501)) == 47003
    # wechatpy's check_text_security is v1: risky content is an error there.
    assert errcode_of(lambda: get_client().wxa.check_text_security("【风险】")) == 87014
    assert get_client().wxa.check_text_security("路灯")["errcode"] == 0


# --- faults and controls ----------------------------------------------------------------------------


def test_faults_count_down_and_can_last_until_cleared(app, wechat_sandbox):
    wechat_sandbox.login_code(ALICE)
    wechat_sandbox.fault("wxa/msg_sec_check", "busy", times=2)
    assert errcode_of(lambda: api.msg_sec_check(ALICE, "x")) == -1
    assert [(f["path"], f["kind"], f["remaining"]) for f in wechat_sandbox.pending_faults()] == [
        ("wxa/msg_sec_check", "busy", 1)
    ]
    assert errcode_of(lambda: api.msg_sec_check(ALICE, "x")) == -1
    assert wechat_sandbox.pending_faults() == []  # spent
    assert api.msg_sec_check(ALICE, "x")["suggest"] == "pass"
    wechat_sandbox.fault("*", "http500", times=-1)  # WeChat is down
    for _ in range(3):
        assert errcode_of(lambda: api.msg_sec_check(ALICE, "x")) is None
    wechat_sandbox.clear_faults()
    assert api.msg_sec_check(ALICE, "x")["suggest"] == "pass"
    assert wechat_sandbox.stats()["wxa/msg_sec_check"] == 7


def test_refused_fault_spends_nothing(app, wechat_sandbox):
    wechat_sandbox.subscribe(ALICE, TEMPLATE)
    wechat_sandbox.fault(SEND, "refused", times=1)
    assert errcode_of(lambda: api.send_subscribe_message(ALICE, TEMPLATE, PROGRESS)) == 43101
    api.send_subscribe_message(ALICE, TEMPLATE, PROGRESS)
    assert len(wechat_sandbox.messages(ALICE)) == 1


def test_stats_and_reset(app, wechat_sandbox):
    wechat_sandbox.subscribe(ALICE, TEMPLATE)
    api.send_subscribe_message(ALICE, TEMPLATE, PROGRESS)
    assert wechat_sandbox.stats() == {"cgi-bin/token": 1, SEND: 1}  # controls are not counted
    assert errcode_of(lambda: get_client().wxa._post("wxa/not_a_thing", data={})) == 48001
    assert wechat_sandbox.stats()["wxa/not_a_thing"] == 1
    wechat_sandbox.fault(SEND, "busy", times=-1)
    wechat_sandbox.reset()
    assert wechat_sandbox.stats() == {}
    assert wechat_sandbox.messages() == []
    assert wechat_sandbox.subscriptions(ALICE) == {}
    # Tokens were forgotten too: the stored one is refused, and the client fetches a new one.
    wechat_sandbox.subscribe(ALICE, TEMPLATE)
    api.send_subscribe_message(ALICE, TEMPLATE, PROGRESS)
    assert wechat_sandbox.stats() == {"cgi-bin/token": 1, SEND: 2}


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("login-code", {"openid": "has space"}),
        ("login-code", {}),
        ("subscribe", {"openid": ALICE, "template_id": "tpl-unknown"}),
        ("subscribe", {"openid": ALICE, "template_id": TEMPLATE, "count": 0}),
        ("faults", {"path": SEND, "kind": "meteor"}),
        ("faults", {"path": SEND, "kind": "busy", "times": 0}),
        ("faults", {"kind": "busy"}),
        ("clock", {"advance": -5}),
    ],
)
def test_controls_refuse_bad_requests(app, wechat_sandbox, path, body):
    answer = raw(wechat_sandbox, "POST", "sandbox/" + path, json=body)
    assert answer.status_code == 400
    assert answer.json()["error"]


# --- the 模拟微信 page ------------------------------------------------------------------------------


def test_page_shows_what_each_user_received(app, wechat_sandbox):
    wechat_sandbox.login_code("oBob")
    wechat_sandbox.subscribe(ALICE, TEMPLATE, count=2)
    api.send_subscribe_message(ALICE, TEMPLATE, {**PROGRESS, "phrase2": "已受理"}, page="pages/item/item?ref=1")
    api.send_subscribe_message(ALICE, TEMPLATE, {**PROGRESS, "phrase2": "已办结"})
    answer = raw(wechat_sandbox, "GET", "")
    assert answer.status_code == 200
    assert answer.headers["Content-Security-Policy"].startswith("default-src 'none'; style-src 'self';")
    html = answer.text
    assert "模拟微信" in html and 'lang="zh-CN"' in html
    assert "oAlice" in html and "oBob" in html
    assert html.index("oAlice") < html.index("oBob")  # the user with the newest message first
    assert html.count("<h3>办理进度通知</h3>") == 2
    assert html.index("已办结") < html.index("已受理")  # newest first
    assert "编号：</span>MSL-2024-000123" in html
    assert "pages/item/item?ref=1" in html
    assert "<script" not in html and "style=" not in html and "<style" not in html
    assert "还没有收到通知" in html  # Bob
    stylesheet = raw(wechat_sandbox, "GET", "static/sandbox.css")  # its own, under /_wechat/ like the page
    assert '<link rel="stylesheet" href="/_wechat/static/sandbox.css">' in html
    assert stylesheet.status_code == 200 and stylesheet.headers["Content-Type"].startswith("text/css")


def test_page_form_accepts_a_subscription(app, wechat_sandbox):
    answer = raw(
        wechat_sandbox,
        "POST",
        "sandbox/subscribe",
        data={"openid": "oForm", "template_id": TEMPLATE},
        allow_redirects=False,
    )
    assert answer.status_code == 302
    assert wechat_sandbox.subscriptions("oForm") == {TEMPLATE: 1}
    assert "oForm" in raw(wechat_sandbox, "GET", "").text


# --- state shared by gunicorn workers ----------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_state_is_shared_by_gunicorn_workers(tmp_path):
    # The sandbox alone, from its own factory and the environment: WeChat's paths from the root.
    port = _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("WECHAT_")},
        "INSTANCE_PATH": str(tmp_path),
        "WECHAT_SANDBOX_DB": str(tmp_path / "sandbox.sqlite3"),
    }
    gunicorn = Path(sys.executable).parent / "gunicorn"
    process = subprocess.Popen(
        [str(gunicorn), "--workers", "3", "--bind", f"127.0.0.1:{port}", "wechat_sandbox:create_app()"],
        cwd=Path(__file__).resolve().parents[1],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(base + "sandbox/stats", timeout=5)
                break
            except (requests.ConnectionError, requests.Timeout):
                assert time.monotonic() < deadline, "gunicorn did not start"
                assert process.poll() is None, process.stderr.read().decode()
                time.sleep(0.1)

        def call(method, path, **kwargs):  # a new connection each time: any worker may answer
            return requests.request(method, base + path, headers={"Connection": "close"}, timeout=5, **kwargs)

        codes = [call("POST", "sandbox/login-code", json={"openid": f"o{i}"}).json()["code"] for i in range(10)]
        token = call(
            "GET", "cgi-bin/token", params={"grant_type": "client_credential", "appid": APPID, "secret": SECRET}
        ).json()["access_token"]
        call("POST", "sandbox/faults", json={"path": "sns/jscode2session", "kind": "busy", "times": 4})
        answers = []
        for code in codes * 2:
            params = {"appid": APPID, "secret": SECRET, "js_code": code, "grant_type": "authorization_code"}
            params["access_token"] = token
            answers.append(call("GET", "sns/jscode2session", params=params).json().get("errcode", 0))
        assert answers.count(-1) == 4  # the fault was spent exactly four times, across workers
        assert answers.count(0) == 10  # each code worked once …
        assert answers.count(40163) == 6  # … and was refused afterwards, by whichever worker
        body = b'{"version": 2, "openid": "o1", "scene": 2, "content": "x"}'
        for _ in range(6):
            check = call("POST", "wxa/msg_sec_check", params={"access_token": token}, data=body).json()
            assert check["errcode"] == 0
        assert call("GET", "sandbox/stats").json() == {
            "cgi-bin/token": 1,
            "sns/jscode2session": 20,
            "wxa/msg_sec_check": 6,
        }
    finally:
        process.terminate()
        process.wait(10)
        process.stderr.close()


# --- kept out of production: its own app, never imported or served by the production app ------------------


@pytest.fixture
def built_apps():
    """Apps a test builds itself: their database connections are closed afterwards."""
    built = []
    yield built
    for built_app in built:
        with built_app.app_context():
            db.engine.dispose()


# Every setting that ever switched the sandbox on, or configures it; the production app must ignore them all.
EVERY_SANDBOX_SETTING = {
    "WECHAT_SANDBOX": "1",
    "WECHAT_SANDBOX_STAGING": "1",
    "WECHAT_APPID": "",
    "WECHAT_SECRET": "",
    "WECHAT_MP_APPID": "wx-sandbox-mp",
    "WECHAT_MP_SECRET": "sandbox-mp-secret",
    "WECHAT_SANDBOX_DB": "/nonexistent/sandbox.sqlite3",
    "WECHAT_SANDBOX_PAGES": "pages/landing/landing",
    "WECHAT_SANDBOX_OAUTH_HOSTS": "msl.example.cn",
    "WECHAT_SANDBOX_TOKEN_DAILY_LIMIT": "5",
    "WECHAT_SANDBOX_TIMEOUT_SECONDS": "1",
}

# Run in a fresh interpreter: build the production app under each environment, import every module of the
# production package besides (whatever a request or a command might load), knock on the sandbox's doors.
PROBE = """
import importlib, json, os, pkgutil, sys
import backend
from backend import create_app

report = []
for env in json.loads(sys.argv[1]):
    os.environ.update(env)
    app = create_app()
    for module in pkgutil.walk_packages(backend.__path__, "backend."):
        importlib.import_module(module.name)
    client = app.test_client()
    report.append({
        "sandbox_setting": app.config["WECHAT_SANDBOX"],
        "rules": [r.rule for r in app.url_map.iter_rules() if "wechat_sandbox" in r.endpoint or "_wechat" in r.rule],
        "answers": [
            client.get("/_wechat/").status_code,
            client.get("/_wechat/sandbox/messages").status_code,
            client.post("/_wechat/sandbox/login-code", json={"openid": "oVictim"}).status_code,
            client.get("/_wechat/cgi-bin/token", query_string={"grant_type": "client_credential"}).status_code,
        ],
        "modules": sorted(name for name in sys.modules if name.split(".")[0] == "wechat_sandbox"),
    })
print(json.dumps(report))
"""


def test_the_production_app_never_loads_or_serves_the_sandbox_whatever_the_settings(tmp_path, database_url):
    base = {
        **{k: v for k, v in os.environ.items() if not k.startswith("WECHAT_") and k != "PUBLIC_BASE_URL"},
        "INSTANCE_PATH": str(tmp_path),
        "DATABASE_URL": database_url,
    }
    environments = [
        {},  # nothing set, not even WECHAT_APPID: the H5-only deployment of finding 5
        {**EVERY_SANDBOX_SETTING, "PUBLIC_BASE_URL": "http://127.0.0.1:5000"},  # make run's
        {**EVERY_SANDBOX_SETTING, "PUBLIC_BASE_URL": "https://staging.msl.example.cn"},  # a staging server
    ]
    output = run_to_end([sys.executable, "-c", PROBE, json.dumps(environments)], base, Path(__file__).parents[1])
    report = json.loads(output)
    assert [r["sandbox_setting"] for r in report] == [False, True, True]
    for answer in report:
        assert answer["rules"] == []
        assert answer["answers"] == [404, 404, 404, 404]
        assert answer["modules"] == []


@pytest.mark.parametrize("value", [None, "", "0", "false", "off", "no", "2"])
def test_the_sandbox_setting_is_off_unless_set(app, monkeypatch, tmp_path, database_url, built_apps, value):
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path))
    for name in [n for n in os.environ if n.startswith("WECHAT_")] + ["PUBLIC_BASE_URL"]:
        monkeypatch.delenv(name, raising=False)
    if value is not None:
        monkeypatch.setenv("WECHAT_SANDBOX", value)
    production = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": database_url})
    built_apps.append(production)
    assert production.config["WECHAT_SANDBOX"] is False
    assert production.config["WECHAT_APPID"] is None  # no sandbox id stands in for a missing one
    assert production.config["WECHAT_API_BASE"] == "https://api.weixin.qq.com/"
    assert production.config["WECHAT_MINIPROGRAM_STATE"] == "formal"
    client = production.test_client()
    for path in ("/_wechat/", "/_wechat/sandbox/messages", "/_wechat/connect/oauth2/authorize"):
        assert client.get(path).status_code == 404, path
    minted = client.post("/_wechat/sandbox/login-code", json={"openid": "oVictim"})
    assert minted.status_code == 404
    assert b"oVictim" not in minted.data


REFUSED_ADDRESSES = [
    "https://msl.example.cn",
    "http://203.0.113.7:5000",
    "http://0.0.0.0:5000",  # every interface
    "http://192.168.1.10:5000",  # a LAN is other people too
    "http://[2001:db8::1]:5000",
    "http://127.0.0.1.nip.io:5000",  # a name that only looks like loopback
    "http://localhost.example.cn",
    "http://",
]
ALLOWED_ADDRESSES = ["http://127.0.0.1:5000", "http://localhost:8000", "http://[::1]:5000", "http://127.0.0.2"]


def _sandbox_environment(monkeypatch, tmp_path, public_base_url: str, **more: str) -> None:
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path))
    for name in [n for n in os.environ if n.startswith("WECHAT_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("WECHAT_SANDBOX", "1")
    monkeypatch.setenv("PUBLIC_BASE_URL", public_base_url)
    for name, value in more.items():
        monkeypatch.setenv(name, value)


@pytest.mark.parametrize("public_base_url", REFUSED_ADDRESSES)
def test_the_app_refuses_to_start_with_the_sandbox_on_a_public_address(app, monkeypatch, tmp_path, public_base_url):
    _sandbox_environment(monkeypatch, tmp_path, public_base_url)
    with pytest.raises(RuntimeError) as refused:
        create_app({"TESTING": True})
    message = str(refused.value)
    assert f"WECHAT_SANDBOX=1 but PUBLIC_BASE_URL={public_base_url.rstrip('/')} is not a loopback address" in message
    assert "WECHAT_SANDBOX_STAGING=1" in message
    # The same when the settings come from the factory's argument instead of the environment.
    monkeypatch.delenv("WECHAT_SANDBOX")
    with pytest.raises(RuntimeError, match="WECHAT_SANDBOX_STAGING=1"):
        create_app({"TESTING": True, "WECHAT_SANDBOX": True, "PUBLIC_BASE_URL": public_base_url})
    # A staging value that is not a yes is no override.
    monkeypatch.setenv("WECHAT_SANDBOX", "1")
    for not_yes in ("0", "", "false"):
        monkeypatch.setenv("WECHAT_SANDBOX_STAGING", not_yes)
        with pytest.raises(RuntimeError, match="not a loopback address"):
            create_app({"TESTING": True})


@pytest.mark.parametrize("public_base_url", ALLOWED_ADDRESSES)
def test_the_sandbox_setting_is_accepted_on_loopback(app, monkeypatch, tmp_path, public_base_url):
    _sandbox_environment(monkeypatch, tmp_path, public_base_url)
    config = create_app({"TESTING": True}).config
    assert config["WECHAT_SANDBOX"] is True
    assert config["WECHAT_API_BASE"] == public_base_url + "/_wechat/"
    assert config["WECHAT_MINIPROGRAM_STATE"] == "developer"


def test_a_staging_server_may_point_at_the_sandbox_when_it_says_so(app, monkeypatch, tmp_path, built_apps):
    _sandbox_environment(monkeypatch, tmp_path, "https://staging.msl.example.cn", WECHAT_SANDBOX_STAGING="1")
    production = create_app({"TESTING": True})
    built_apps.append(production)
    assert production.config["WECHAT_API_BASE"] == "https://staging.msl.example.cn/_wechat/"
    assert production.test_client().get("/_wechat/").status_code == 404  # served only by the composition


# --- make run's composition --------------------------------------------------------------------------------


def test_make_runs_composition_serves_both_apps_and_the_sandbox_knows_the_apps_settings(
    app, monkeypatch, tmp_path, database_url, built_apps
):
    _sandbox_environment(
        monkeypatch,
        tmp_path,
        "http://localhost:5123",
        WECHAT_APPID="wx-demo-composed",  # not the sandbox's default: the composition passes the app's own
        WECHAT_SECRET="composed-secret",
        WECHAT_SANDBOX_DB=str(tmp_path / "sandbox.sqlite3"),
    )
    monkeypatch.setenv("DATABASE_URL", database_url)
    composed = compose.create_app()
    built_apps.append(composed.app)
    served = Client(composed)

    page = served.get("/_wechat/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "模拟微信" in html
    assert "办理进度通知（tpl-item-progress）" in html  # the app's templates, as its WeChat console would list them
    stylesheet = served.get("/_wechat/static/sandbox.css")
    stylesheet.close()
    assert stylesheet.status_code == 200
    assert served.get("/stations").status_code == 200  # the production app, at the root
    assert served.get("/_wechatx").status_code == 404  # only /_wechat/ is the sandbox's

    token = served.get(
        "/_wechat/cgi-bin/token",
        query_string={"grant_type": "client_credential", "appid": "wx-demo-composed", "secret": "composed-secret"},
    ).get_json()
    assert token["expires_in"] == 7200
    default_app = served.get(
        "/_wechat/cgi-bin/token", query_string={"grant_type": "client_credential", "appid": APPID, "secret": SECRET}
    ).get_json()
    assert default_app["errcode"] == 40013  # the sandbox knows the composed app, not its own default


def test_on_a_staging_server_the_sandboxs_oauth_page_returns_to_the_apps_host_only(
    app, monkeypatch, tmp_path, database_url, built_apps
):
    _sandbox_environment(
        monkeypatch,
        tmp_path,
        "https://staging.msl.example.cn",
        WECHAT_SANDBOX_STAGING="1",
        WECHAT_MP_APPID=MP_APPID,
        WECHAT_MP_SECRET="mp-secret",
        WECHAT_SANDBOX_DB=str(tmp_path / "sandbox.sqlite3"),
        WECHAT_SANDBOX_OAUTH_HOSTS="preview.msl.example.cn",  # kept beside the app's own host
    )
    monkeypatch.setenv("DATABASE_URL", database_url)
    composed = compose.create_app()
    built_apps.append(composed.app)
    served = Client(composed)
    oauth = {"appid": MP_APPID, "response_type": "code", "scope": "snsapi_base"}
    back = served.get(
        "/_wechat/connect/oauth2/authorize",
        query_string={**oauth, "redirect_uri": "https://staging.msl.example.cn/c/abc"},
        headers={"Host": "staging.msl.example.cn"},
    )
    assert back.status_code == 302
    assert back.headers["Location"].startswith("https://staging.msl.example.cn/c/abc?code=")
    preview = served.get(
        "/_wechat/connect/oauth2/authorize",
        query_string={**oauth, "redirect_uri": "https://preview.msl.example.cn/c/abc"},
        headers={"Host": "staging.msl.example.cn"},
    )
    assert preview.status_code == 302
    elsewhere = served.get(
        "/_wechat/connect/oauth2/authorize",
        query_string={**oauth, "redirect_uri": "https://evil.example.com/c/abc"},
        headers={"Host": "staging.msl.example.cn"},
    )
    assert elsewhere.status_code == 400
    assert "redirect_uri 域名与后台配置不一致" in elsewhere.get_data(as_text=True)


def test_the_composition_needs_the_sandbox_setting_and_a_loopback_address(app, monkeypatch, tmp_path, database_url):
    _sandbox_environment(monkeypatch, tmp_path, "http://127.0.0.1:5000")
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.delenv("WECHAT_SANDBOX")
    with pytest.raises(RuntimeError, match="needs WECHAT_SANDBOX=1"):
        compose.create_app()
    monkeypatch.setenv("WECHAT_SANDBOX", "1")
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://msl.example.cn")
    with pytest.raises(RuntimeError, match="WECHAT_SANDBOX_STAGING=1"):
        compose.create_app()
