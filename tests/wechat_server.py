"""The local WeChat sandbox over real HTTP, for tests that drive wechatpy against it.

    from tests.wechat_server import wechat_sandbox  # noqa: F401

``wechat_sandbox`` is function-scoped: it resets the sandbox, points the test's ``app`` at it
(``WECHAT_API_BASE``, app ids and secrets, a 2-second ``WECHAT_TIMEOUT_SECONDS``) and drops any cached
client. The server behind it is started once per test session and is what ``make run`` serves: the
sandbox, built by its own factory (``wechat_sandbox.create_app``) with its own SQLite file, at
``/_wechat/``, beside a production app of its own (``backend.create_app`` with ``WECHAT_SANDBOX`` on, on the
session's database) at the root (``wechat_sandbox.compose``); served by werkzeug (``threaded=True``) on a
free localhost port in a daemon thread, stopped when the session ends. ``url`` is the sandbox's base,
``app`` the production app served beside it, ``sandbox_app`` the sandbox's own. A "timeout" fault sleeps
``TIMEOUT_FAULT_SECONDS`` (longer than the client's timeout) unless the fault gives ``seconds``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
import requests
from werkzeug.serving import WSGIRequestHandler, make_server

from backend import create_app
from tests.helpers import TEST_PASSWORD_HASH_METHOD
from wechat_sandbox import create_app as create_sandbox_app
from wechat_sandbox.compose import compose, sandbox_settings
from wechat_sandbox.config import APPID, SECRET

MP_APPID = "wx-sandbox-mp"
MP_SECRET = "sandbox-mp-secret"
PUSH_TOKEN = "sandbox-push-token"
CLIENT_TIMEOUT_SECONDS = 2.0
TIMEOUT_FAULT_SECONDS = 3.0


class _QuietHandler(WSGIRequestHandler):
    """No access log on stderr."""

    def log_request(self, code="-", size="-"):
        pass


@dataclass
class WeChatSandbox:
    """The running sandbox: its base URL (what ``WECHAT_API_BASE`` is set to) and its controls."""

    url: str
    app: object  # the production app served beside it, as `make run` composes them
    _http: requests.Session
    sandbox_app: object = None  # the sandbox's own app (its settings: app.config)

    def _control(self, method: str, path: str, **kwargs):
        response = self._http.request(method, self.url + "sandbox/" + path, timeout=10, **kwargs)
        assert response.status_code == 200, f"{method} sandbox/{path}: {response.status_code} {response.text}"
        return response.json()

    def login_code(self, openid: str, unionid: str | None = None) -> str:
        """The code ``wx.login`` would give ``openid``."""
        return self._control("POST", "login-code", json={"openid": openid, "unionid": unionid})["code"]

    def subscribe(self, openid: str, template_id: str, count: int = 1) -> int:
        """``openid`` accepts ``count`` subscribe messages of ``template_id``; return how many are left."""
        body = {"openid": openid, "template_id": template_id, "count": count}
        return self._control("POST", "subscribe", json=body)["credits"]

    def subscriptions(self, openid: str) -> dict[str, int]:
        """Acceptances left per template."""
        return self._control("GET", "subscriptions", params={"openid": openid})

    def messages(self, openid: str | None = None) -> list[dict]:
        """Messages received, oldest first."""
        return self._control("GET", "messages", params={"openid": openid} if openid else None)

    def fault(self, path: str, kind: str, times: int = 1, seconds: float | None = None) -> None:
        """Fail the next ``times`` calls to ``path`` (-1: until cleared; ``*``: every WeChat path)."""
        self._control("POST", "faults", json={"path": path, "kind": kind, "times": times, "seconds": seconds})

    def pending_faults(self) -> list[dict]:
        """The faults not yet spent by a call."""
        return self._control("GET", "faults")

    def clear_faults(self) -> None:
        """Remove every fault."""
        self._control("DELETE", "faults")

    def stats(self) -> dict[str, int]:
        """Calls per WeChat path since the last reset."""
        return self._control("GET", "stats")

    def advance_clock(self, seconds: float) -> None:
        """Move the sandbox's clock forward."""
        self._control("POST", "clock", json={"advance": seconds})

    def reset(self) -> None:
        """Forget everything."""
        self._control("POST", "reset")


_server: dict[str, WeChatSandbox] = {}


def _start(database_url: str, tmp_path_factory, config) -> WeChatSandbox:
    """Start the session's sandbox server once; stop it when the session ends."""
    if "sandbox" in _server:
        return _server["sandbox"]
    production_app = create_app(
        {
            "TESTING": True,
            "PASSWORD_HASH_METHOD": TEST_PASSWORD_HASH_METHOD,
            "SQLALCHEMY_DATABASE_URI": database_url,
            "PUBLIC_BASE_URL": "http://127.0.0.1",  # the port follows once the server has one
            "WECHAT_SANDBOX": True,
            "WECHAT_APPID": APPID,
            "WECHAT_SECRET": SECRET,
            "WECHAT_MP_APPID": MP_APPID,
            "WECHAT_MP_SECRET": MP_SECRET,
            "PHOTOS_DIR": str(tmp_path_factory.mktemp("photos")),  # not the checkout's instance/ folder
            "WECHAT_PUSH_TOKEN": PUSH_TOKEN,
        }
    )
    sandbox_app = create_sandbox_app(
        {
            **sandbox_settings(production_app),
            "WECHAT_SANDBOX_DB": str(tmp_path_factory.mktemp("wechat_sandbox") / "wechat_sandbox.sqlite3"),
            "WECHAT_SANDBOX_TIMEOUT_SECONDS": TIMEOUT_FAULT_SECONDS,
        }
    )
    served = compose(production_app, sandbox_app)
    server = make_server("127.0.0.1", 0, served, threaded=True, request_handler=_QuietHandler)
    base = f"http://127.0.0.1:{server.server_port}"
    production_app.config.update(PUBLIC_BASE_URL=base, WECHAT_API_BASE=base + "/_wechat/")
    thread = threading.Thread(target=server.serve_forever, name="wechat-sandbox", daemon=True)
    thread.start()

    def _stop():
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        _server.pop("sandbox", None)

    config.add_cleanup(_stop)
    sandbox = _server["sandbox"] = WeChatSandbox(
        url=base + "/_wechat/", app=production_app, _http=requests.Session(), sandbox_app=sandbox_app
    )
    return sandbox


@pytest.fixture
def wechat_sandbox(app, database_url, tmp_path_factory, request) -> WeChatSandbox:
    """The WeChat sandbox over HTTP, emptied, with the test's ``app`` pointed at it (function-scoped)."""
    sandbox = _start(database_url, tmp_path_factory, request.config)
    sandbox.reset()
    app.config.update(
        WECHAT_API_BASE=sandbox.url,
        WECHAT_OAUTH_BASE=None,
        WECHAT_APPID=APPID,
        WECHAT_SECRET=SECRET,
        WECHAT_MP_APPID=MP_APPID,
        WECHAT_MP_SECRET=MP_SECRET,
        WECHAT_TIMEOUT_SECONDS=CLIENT_TIMEOUT_SECONDS,
        WECHAT_MINIPROGRAM_STATE="developer",
        WECHAT_PUSH_TOKEN=PUSH_TOKEN,
    )
    app.extensions.pop("wechat_client", None)
    app.extensions.pop("wechat_mp_client", None)
    # The app under test is the site the OAuth page redirects back to (its 网页授权域名).
    sandbox.sandbox_app.config["WECHAT_SANDBOX_OAUTH_HOSTS"] = [urlsplit(app.config["PUBLIC_BASE_URL"]).hostname]
    yield sandbox
    sandbox.clear_faults()
