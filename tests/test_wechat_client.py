"""The WeChat client factory: settings, base URLs, the shared token store, the bounded refresh,
timeouts and errors — all through wechatpy over real HTTP to the local sandbox."""

# ruff: noqa: F811 - the wechat_sandbox fixture is imported, then named as a parameter

from __future__ import annotations

import os
import socket
import threading
import time
from datetime import timedelta

import pytest
import redis
import requests
from sqlalchemy import select
from wechatpy.client.api import WeChatWxa
from wechatpy.exceptions import APILimitedException, WeChatClientException

from backend import create_app
from backend.extensions import db
from backend.models import Region, RegionLevel
from backend.models.base import utcnow
from backend.models.wechat import WechatAccessToken
from backend.wechat import api
from backend.wechat.client import (
    WECHAT_API_BASE,
    DatabaseTokenStorage,
    RedisTokenStorage,
    TokenRefreshLimitExceeded,
    WeChatClient,
    build_client,
    client_class,
    get_client,
)
from tests.conftest import redis_test_url
from tests.helpers import redis_or_skip
from tests.wechat_server import (
    APPID,
    CLIENT_TIMEOUT_SECONDS,
    SECRET,
    TIMEOUT_FAULT_SECONDS,
    wechat_sandbox,  # noqa: F401
)

SEND = "cgi-bin/message/subscribe/send"
TOKEN = "cgi-bin/token"
REDIS_TEST_URL = redis_test_url(14)


@pytest.fixture
def db_tokens(app):
    """Tokens kept in the database, whatever REDIS_URL the environment has."""
    app.config["REDIS_URL"] = None
    app.extensions.pop("wechat_client", None)


def screen(client: WeChatClient, openid: str = "oScreen") -> dict:
    """A cheap authenticated call (msg_sec_check v2) through ``client``."""
    return client.wxa._post(
        "wxa/msg_sec_check", data={"version": 2, "openid": openid, "scene": 2, "content": "路灯坏了"}
    )


def stored_token(appid: str = APPID) -> WechatAccessToken | None:
    """The token row as another process would read it."""
    with db.engine.connect() as conn:
        return conn.execute(select(WechatAccessToken.__table__).where(WechatAccessToken.appid == appid)).first()


# --- settings and classes ---------------------------------------------------------------------------


def test_make_runs_settings_point_every_call_at_the_sandbox(tmp_path, monkeypatch):
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path))
    for name in [n for n in os.environ if n.startswith("WECHAT_")] + ["PUBLIC_BASE_URL"]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PORT", "5123")
    for name, value in {"WECHAT_SANDBOX": "1", "WECHAT_APPID": APPID, "WECHAT_SECRET": SECRET}.items():
        monkeypatch.setenv(name, value)  # as `make run` sets them
    app = create_app()
    config = app.config
    assert config["WECHAT_SANDBOX"] is True
    assert config["WECHAT_APPID"] == "wx-sandbox-app"
    assert config["WECHAT_SECRET"] == "sandbox-secret"
    assert config["WECHAT_API_BASE"] == "http://127.0.0.1:5123/_wechat/"
    assert config["WECHAT_MINIPROGRAM_STATE"] == "developer"
    assert config["WECHAT_TIMEOUT_SECONDS"] == 5
    assert config["WECHAT_TOKEN_REFRESH_LIMIT"] == 3
    assert config["WECHAT_MP_APPID"] is None
    # The app only points at the sandbox; `make run` serves it beside the app (wechat_sandbox/compose.py).
    assert not [rule.rule for rule in app.url_map.iter_rules() if rule.rule.startswith("/_wechat")]


def test_production_settings_never_serve_the_sandbox(tmp_path, monkeypatch):
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path))
    for name in [n for n in os.environ if n.startswith("WECHAT_")]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WECHAT_APPID", "wx0123456789abcdef")
    monkeypatch.setenv("WECHAT_SECRET", "s3cret")
    app = create_app()
    assert app.config["WECHAT_SANDBOX"] is False
    assert app.config["WECHAT_API_BASE"] == "https://api.weixin.qq.com/"
    assert app.config["WECHAT_MINIPROGRAM_STATE"] == "formal"
    assert not [rule.rule for rule in app.url_map.iter_rules() if rule.rule.startswith("/_wechat")]
    assert app.test_client().get("/_wechat/cgi-bin/token").status_code == 404


def test_one_base_url_for_every_call():
    cls = client_class("http://127.0.0.1:9/_wechat/")
    assert cls is client_class("http://127.0.0.1:9/_wechat")  # one class per base URL
    client = cls("appid", "secret", timeout=1)
    assert isinstance(client, WeChatClient)
    assert client.API_BASE_URL == "http://127.0.0.1:9/_wechat/cgi-bin/"
    assert isinstance(client.wxa, WeChatWxa)
    assert client.wxa.API_BASE_URL == "http://127.0.0.1:9/_wechat/"
    assert client.wxa._client is client
    assert client.datacube.API_BASE_URL == "http://127.0.0.1:9/_wechat/datacube/"
    assert client_class(WECHAT_API_BASE) is WeChatClient
    assert WeChatClient("a", "s").wxa.API_BASE_URL == WECHAT_API_BASE


def test_get_client_is_one_per_app(app, wechat_sandbox, db_tokens):
    client = get_client()
    assert get_client() is client
    assert app.extensions["wechat_client"] is client
    assert client.timeout == CLIENT_TIMEOUT_SECONDS
    assert client.refresh_limit == 3
    assert isinstance(client.session, DatabaseTokenStorage)
    assert wechat_sandbox.url + "cgi-bin/" == client.API_BASE_URL


# --- the shared token -------------------------------------------------------------------------------


def test_token_is_shared_between_clients(app, wechat_sandbox, db_tokens):
    first, second = build_client(app, APPID, SECRET), build_client(app, APPID, SECRET)  # two processes
    wechat_sandbox.login_code("oScreen")
    screen(first)
    row = stored_token()
    assert row is not None and row.expires_at.timestamp() > time.time() + 7000
    screen(second)
    screen(first)
    assert wechat_sandbox.stats()[TOKEN] == 1


def test_token_refreshed_by_another_process_is_used_not_refetched(app, wechat_sandbox, db_tokens):
    """wechatpy issue #684: the expiry is read from the shared store, not kept per process."""
    first, second = build_client(app, APPID, SECRET), build_client(app, APPID, SECRET)
    wechat_sandbox.login_code("oScreen")
    screen(first)
    second.fetch_access_token()  # the other process refreshes
    refreshed = stored_token().access_token
    assert first.access_token == refreshed
    wechat_sandbox.advance_clock(301)  # the first token is now refused
    screen(first)
    screen(second)
    assert wechat_sandbox.stats()[TOKEN] == 2


def test_an_expired_stored_token_is_replaced(app, wechat_sandbox, db_tokens):
    client = build_client(app, APPID, SECRET)
    wechat_sandbox.login_code("oScreen")
    screen(client)
    with db.engine.begin() as conn:  # the store says it has less than a minute left
        conn.execute(WechatAccessToken.__table__.update().values(expires_at=utcnow() + timedelta(seconds=30)))
    screen(client)
    assert wechat_sandbox.stats()[TOKEN] == 2


def test_previous_token_works_five_minutes(app, wechat_sandbox, db_tokens):
    client = build_client(app, APPID, SECRET)
    wechat_sandbox.login_code("oScreen")
    old = client.access_token
    client.fetch_access_token()
    assert client.access_token != old
    body = {"version": 2, "openid": "oScreen", "scene": 2, "content": "x"}
    # A token the caller passes is used as it is: wechatpy neither refreshes nor retries it.
    assert client.wxa._post("wxa/msg_sec_check", data=body, params={"access_token": old})["errcode"] == 0
    wechat_sandbox.advance_clock(299)
    assert client.wxa._post("wxa/msg_sec_check", data=body, params={"access_token": old})["errcode"] == 0
    wechat_sandbox.advance_clock(2)
    with pytest.raises(WeChatClientException) as refused:
        client.wxa._post("wxa/msg_sec_check", data=body, params={"access_token": old})
    assert refused.value.errcode == 40001
    screen(client)  # the current token still works
    assert wechat_sandbox.stats()[TOKEN] == 2


def test_42001_expired_token_is_refreshed_once(app, wechat_sandbox, db_tokens):
    client = build_client(app, APPID, SECRET)
    wechat_sandbox.login_code("oScreen")
    screen(client)
    wechat_sandbox.advance_clock(7201)  # WeChat's clock says expired; ours does not know yet
    assert screen(client)["result"]["suggest"] == "pass"
    stats = wechat_sandbox.stats()
    assert stats[TOKEN] == 2
    assert stats["wxa/msg_sec_check"] == 3


def test_40001_forever_makes_a_bounded_number_of_token_fetches(app, wechat_sandbox, db_tokens):
    wechat_sandbox.login_code("oAlice")
    wechat_sandbox.subscribe("oAlice", "tpl-item-progress", count=10)
    wechat_sandbox.fault(SEND, "invalid_token", times=-1)
    with pytest.raises(TokenRefreshLimitExceeded) as exc_info:
        api.send_subscribe_message("oAlice", "tpl-item-progress", {"thing3": "路灯坏了"})
    exc = exc_info.value
    assert isinstance(exc, WeChatClientException)
    assert exc.errcode == 40001
    assert "WECHAT_TOKEN_REFRESH_LIMIT=3" in exc.errmsg
    stats = wechat_sandbox.stats()
    assert stats[TOKEN] == 3  # the first fetch and two refreshes, then no more
    assert stats[SEND] == 3
    # The next logical call gets its own budget, again bounded.
    with pytest.raises(TokenRefreshLimitExceeded):
        api.send_subscribe_message("oAlice", "tpl-item-progress", {"thing3": "路灯坏了"})
    assert wechat_sandbox.stats()[TOKEN] == 6
    assert wechat_sandbox.messages("oAlice") == []


def test_refresh_limit_is_a_setting(app, wechat_sandbox, db_tokens):
    app.config["WECHAT_TOKEN_REFRESH_LIMIT"] = 1
    wechat_sandbox.login_code("oScreen")
    get_client().access_token  # noqa: B018 - a token is cached before the faults start
    wechat_sandbox.fault("wxa/msg_sec_check", "invalid_token", times=-1)
    with pytest.raises(TokenRefreshLimitExceeded):
        api.msg_sec_check("oScreen", "路灯坏了")
    stats = wechat_sandbox.stats()
    assert stats[TOKEN] == 2  # the cached token's first fetch, then one refresh
    assert stats["wxa/msg_sec_check"] == 2


def test_a_transient_40001_is_refreshed_and_retried(app, wechat_sandbox, db_tokens):
    wechat_sandbox.login_code("oScreen")
    get_client().access_token  # noqa: B018
    wechat_sandbox.fault("wxa/msg_sec_check", "invalid_token", times=1)
    assert api.msg_sec_check("oScreen", "路灯坏了") == {"suggest": "pass", "label": 100}
    assert wechat_sandbox.stats()[TOKEN] == 2


def run_at_once(clients: list[WeChatClient], call) -> list[BaseException]:
    """``call(client)`` in one thread per client, all released together; the exceptions they raised."""
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(clients))

    def run(client):
        try:
            call(client, barrier)
        except BaseException as exc:  # pragma: no cover - reported by the caller
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return errors


def test_concurrent_clients_fetch_one_token(app, wechat_sandbox, db_tokens):
    """Five processes that find no token at once: the refresh lock lets one fetch, the rest read it."""
    wechat_sandbox.login_code("oScreen")

    def call(client, barrier):
        barrier.wait()
        screen(client)

    assert run_at_once([build_client(app, APPID, SECRET) for _ in range(5)], call) == []
    assert wechat_sandbox.stats()[TOKEN] == 1


def test_concurrent_get_requests_that_read_first_fetch_one_token(app, wechat_sandbox, db_tokens):
    """The same inside GET requests that have read already: on SQLite their transactions hold no write
    lock (read mode), so the refresh lock takes it on a connection of its own."""
    wechat_sandbox.login_code("oScreen")

    def call(client, barrier):
        with app.test_request_context("/directory", method="GET"):
            db.session.scalar(select(Region.id))  # the page's read transaction is open
            barrier.wait()
            screen(client)
            db.session.remove()

    assert run_at_once([build_client(app, APPID, SECRET) for _ in range(5)], call) == []
    assert wechat_sandbox.stats()[TOKEN] == 1
    assert stored_token() is not None  # committed by the refresh, not left to the page's transaction


def test_token_store_works_outside_a_request_and_keeps_out_of_the_callers_transaction(app, wechat_sandbox, db_tokens):
    wechat_sandbox.login_code("oScreen")
    region = Region(code="439999", name="测试县", level=RegionLevel.COUNTY)
    db.session.add(region)
    db.session.flush()  # the caller has a transaction open with a pending change
    api.msg_sec_check("oScreen", "路灯坏了")  # fetches and stores a token
    db.session.rollback()
    if db.engine.dialect.name == "sqlite":
        # SQLite has one writer: the token joined the caller's transaction and went with its rollback,
        # so the next call fetches again (the previous token stays valid five minutes meanwhile).
        assert stored_token() is None
    else:
        assert stored_token() is not None  # committed on a connection of its own
    assert db.session.query(Region).filter_by(code="439999").one_or_none() is None
    db.session.remove()
    with app.app_context():  # as the outbox worker runs: an app context, no request
        api.msg_sec_check("oScreen", "路灯坏了")
    assert stored_token() is not None


def test_database_storage_as_a_wechatpy_session(app, db_tokens):
    storage = DatabaseTokenStorage(app)
    assert storage.get("wxapp_access_token") is None
    storage.set("wxapp_access_token", "tok-1", 7200)
    storage.set("wxapp_access_token", "tok-2", 100)
    assert storage.get("wxapp_access_token") == "tok-2"
    token, expires_at = storage.get_token("wxapp_access_token")
    assert token == "tok-2" and 90 < expires_at - time.time() <= 100
    storage.set("wxapp_access_token", "tok-3", -1)  # already expired
    assert storage.get("wxapp_access_token", "none") == "none"
    assert storage.get_token("wxapp_access_token")[0] == "tok-3"
    storage.delete("wxapp_access_token")
    assert storage.get_token("wxapp_access_token") == (None, None)
    storage.set("wxapp_jsapi_ticket", "ticket")  # not a token: kept in this process only
    assert storage.get("wxapp_jsapi_ticket") == "ticket"


def _redis() -> redis.Redis:
    """The test Redis (failed under CI, skipped locally, when it does not answer)."""
    redis_or_skip(REDIS_TEST_URL)
    return redis.Redis.from_url(REDIS_TEST_URL, socket_connect_timeout=1)


def test_redis_store_when_redis_url_is_set(app, wechat_sandbox):
    connection = _redis()
    connection.delete(f"wechatpy:{APPID}_access_token")
    app.config["REDIS_URL"] = REDIS_TEST_URL  # the app fixture empties this Redis database afterwards
    wechat_sandbox.login_code("oScreen")
    first, second = build_client(app, APPID, SECRET), build_client(app, APPID, SECRET)
    assert isinstance(first.session, RedisTokenStorage)
    screen(first)
    screen(second)
    assert wechat_sandbox.stats()[TOKEN] == 1
    assert 7000 < connection.ttl(f"wechatpy:{APPID}_access_token") <= 7200
    token, expires_at = first.session.get_token(f"{APPID}_access_token")
    assert token == second.access_token and expires_at > time.time() + 7000
    assert stored_token() is None  # nothing in the database
    second.fetch_access_token()
    screen(first)  # uses the token the other client stored
    assert wechat_sandbox.stats()[TOKEN] == 2


# --- errors ---------------------------------------------------------------------------------------


def test_45009_raises_api_limited(app, wechat_sandbox, db_tokens):
    wechat_sandbox.login_code("oAlice")
    wechat_sandbox.subscribe("oAlice", "tpl-item-progress")
    wechat_sandbox.fault(SEND, "quota", times=1)
    with pytest.raises(APILimitedException) as exc_info:
        api.send_subscribe_message("oAlice", "tpl-item-progress", {"thing3": "路灯坏了"})
    assert exc_info.value.errcode == 45009
    assert wechat_sandbox.subscriptions("oAlice") == {"tpl-item-progress": 1}  # nothing was spent


def test_token_quota_raises_api_limited(app, wechat_sandbox, db_tokens):
    limit = wechat_sandbox.sandbox_app.config["WECHAT_SANDBOX_TOKEN_DAILY_LIMIT"]
    wechat_sandbox.sandbox_app.config["WECHAT_SANDBOX_TOKEN_DAILY_LIMIT"] = 2
    try:
        client = get_client()
        client.fetch_access_token()
        client.fetch_access_token()
        with pytest.raises(APILimitedException) as exc_info:
            client.fetch_access_token()
        assert exc_info.value.errcode == 45009
    finally:
        wechat_sandbox.sandbox_app.config["WECHAT_SANDBOX_TOKEN_DAILY_LIMIT"] = limit


@pytest.mark.parametrize("path", [SEND, TOKEN])
def test_timeout_raises_a_requests_timeout_within_the_client_timeout(app, wechat_sandbox, db_tokens, path):
    wechat_sandbox.login_code("oAlice")
    wechat_sandbox.subscribe("oAlice", "tpl-item-progress")
    wechat_sandbox.fault(path, "timeout", times=1)
    # The sandbox answers 504 once TIMEOUT_FAULT_SECONDS have passed, which the client would raise as a
    # WeChatClientException: requests.Timeout means it gave up first, at its own timeout.
    assert get_client().timeout == CLIENT_TIMEOUT_SECONDS < TIMEOUT_FAULT_SECONDS
    with pytest.raises(requests.Timeout):
        api.send_subscribe_message("oAlice", "tpl-item-progress", {"thing3": "路灯坏了"})
    assert wechat_sandbox.messages("oAlice") == []


def test_http_500_is_a_client_exception_without_errcode(app, wechat_sandbox, db_tokens):
    wechat_sandbox.login_code("oScreen")
    wechat_sandbox.fault("wxa/msg_sec_check", "http500", times=1)
    with pytest.raises(WeChatClientException) as exc_info:
        api.msg_sec_check("oScreen", "路灯坏了")
    assert exc_info.value.errcode is None
    assert exc_info.value.response.status_code == 500
    wechat_sandbox.fault(TOKEN, "http500", times=1)
    with pytest.raises(WeChatClientException) as exc_info:
        get_client().fetch_access_token()
    assert exc_info.value.errcode is None


def test_busy_is_errcode_minus_one(app, wechat_sandbox, db_tokens):
    wechat_sandbox.login_code("oScreen")
    wechat_sandbox.fault("wxa/msg_sec_check", "busy", times=2)
    for _ in range(2):
        with pytest.raises(WeChatClientException) as exc_info:
            api.msg_sec_check("oScreen", "路灯坏了")
        assert exc_info.value.errcode == -1
    assert api.msg_sec_check("oScreen", "路灯坏了")["suggest"] == "pass"


def test_refused_connection_is_a_requests_error(app, db_tokens):
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    app.config.update(WECHAT_API_BASE=f"http://127.0.0.1:{port}/_wechat/", WECHAT_TIMEOUT_SECONDS=1)
    app.extensions.pop("wechat_client", None)
    with pytest.raises(requests.ConnectionError):
        api.msg_sec_check("oScreen", "路灯坏了")
