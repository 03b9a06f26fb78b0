"""The local WeChat sandbox: every endpoint and error code, driven through wechatpy over real HTTP
where wechatpy has a call; the controls; the 模拟微信 page; state shared by gunicorn workers."""

# ruff: noqa: F811 - the wechat_sandbox fixture is imported, then named as a parameter

from __future__ import annotations

import io
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

from backend.wechat import api
from backend.wechat.client import client_class, get_client, get_mp_client
from tests.wechat_server import (
    APPID,
    MP_APPID,
    SECRET,
    wechat_sandbox,  # noqa: F401
)

TEMPLATE = "tpl-item-progress"
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
        saved.setdefault(name, wechat_sandbox.app.config.get(name))
        wechat_sandbox.app.config[name] = value

    yield _set
    wechat_sandbox.app.config.update(saved)


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
    wechat_sandbox.login_code(ALICE)
    wechat_sandbox.subscribe(ALICE, TEMPLATE)
    api.send_subscribe_message(ALICE, TEMPLATE, PROGRESS, page="pages/item/item?ref=MSL-2024-000123")
    assert errcode_of(lambda: api.send_subscribe_message(ALICE, TEMPLATE, PROGRESS)) == 43101
    assert wechat_sandbox.subscribe(ALICE, TEMPLATE, count=2) == 2
    api.send_subscribe_message(ALICE, TEMPLATE, PROGRESS)
    api.send_subscribe_message(ALICE, TEMPLATE, PROGRESS)
    assert errcode_of(lambda: api.send_subscribe_message(ALICE, TEMPLATE, PROGRESS)) == 43101
    messages = wechat_sandbox.messages(ALICE)
    assert len(messages) == 3
    first = messages[0]
    assert first["template_id"] == TEMPLATE
    assert first["page"] == "pages/item/item?ref=MSL-2024-000123"
    assert first["data"] == {key: {"value": value} for key, value in PROGRESS.items()}
    assert first["miniprogram_state"] == "developer"
    assert first["lang"] == "zh_CN"
    assert first["at"]
    assert messages[1]["page"] is None


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
    assert "script-src 'self'" in answer.headers["Content-Security-Policy"]
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
    port = _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("WECHAT_")},
        "INSTANCE_PATH": str(tmp_path),
        "DATABASE_URL": "sqlite:///" + str(tmp_path / "app.sqlite3"),
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "WECHAT_SANDBOX_DB": str(tmp_path / "sandbox.sqlite3"),
    }
    gunicorn = Path(sys.executable).parent / "gunicorn"
    process = subprocess.Popen(
        [str(gunicorn), "--workers", "3", "--bind", f"127.0.0.1:{port}", "backend:create_app()"],
        cwd=Path(__file__).resolve().parents[1],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}/_wechat/"
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
