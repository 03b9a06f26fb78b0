"""wechatpy clients built from settings: one base URL for WeChat or the local sandbox, timeouts on
every call, an access token shared by every process, and a bounded refresh-and-retry.

wechatpy 1.8.18 needs four corrections here (see ../shared/WECHAT.md):

- its token URL is hard-coded and ``client.wxa`` has a base URL of its own, so a client class is
  built per base URL (:func:`client_class`);
- it keeps the token's expiry per process (issue #684), so the expiry is read from the shared
  store on every call and a token refreshed by another process is used, not refetched;
- on 40001/40014/42001 it refreshes and retries recursively without end, so the retry is ours and
  stops after ``WECHAT_TOKEN_REFRESH_LIMIT`` token fetches (:class:`TokenRefreshLimitExceeded`);
- the token fetch and OAuth pass no timeout, so both are given one.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext, suppress
from datetime import timedelta
from typing import Any

import requests
from flask import Flask, current_app
from sqlalchemy import delete, select
from sqlalchemy.engine import Connection
from wechatpy.client import WeChatClient as _WechatpyClient
from wechatpy.client.api.base import BaseWeChatAPI
from wechatpy.exceptions import APILimitedException, WeChatClientException
from wechatpy.oauth import WeChatOAuth
from wechatpy.session import SessionStorage
from wechatpy.session.redisstorage import RedisStorage
from wechatpy.utils import json as wechat_json

from backend import database
from backend.extensions import db
from backend.models.base import utcnow
from backend.models.wechat import WechatAccessToken

WECHAT_API_BASE = "https://api.weixin.qq.com/"
WECHAT_OAUTH_BASE = "https://open.weixin.qq.com/connect/"
# 40001 invalid credential, 40014 invalid access token, 42001 access token expired.
TOKEN_ERRCODES = frozenset({40001, 40014, 42001})
QUOTA_ERRCODE = 45009
# Refresh a token this many seconds before WeChat's expiry, as wechatpy does.
TOKEN_EXPIRY_MARGIN_SECONDS = 60
ACCESS_TOKEN_SUFFIX = "_access_token"  # noqa: S105 - a key suffix, not a secret
JSAPI_TICKET_SUFFIX = "_jsapi_ticket"  # the official account's JS-SDK ticket, shared like the token


class TokenRefreshLimitExceeded(WeChatClientException):
    """WeChat kept refusing fresh access tokens within one call; ``errcode`` is its last answer."""


# --- token stores -------------------------------------------------------------------------------


class DatabaseTokenStorage(SessionStorage):
    """wechatpy session storage over the ``wechat_access_tokens`` table, shared by every process.

    Reads and writes run in a short transaction of their own (``engine.begin()``), never in the
    caller's session, so they work in the worker outside a request and commit nothing of the
    caller's. Reads begin as reads and writes as writes (``backend.database``), whatever the
    request. One exception, on SQLite only: when a transaction of this thread holds the write
    lock, a second connection could only wait for it; the token is then read and written through
    that transaction and is committed (or rolled back, and fetched again later) with it. (The
    request paths call WeChat with no transaction open; a worker or a test may not.) Access tokens
    (keys ``<appid>_access_token``, row ``<appid>``) and the official account's JS-SDK ticket (key
    and row ``<appid>_jsapi_ticket``, ``jssdk.py``) are stored; any other key stays in this process.
    """

    def __init__(self, app: Flask) -> None:
        self._app = app
        with app.app_context():
            self._engine = db.engine
        self._table = WechatAccessToken.__table__
        self._local = threading.local()  # the connection holding the refresh lock, in this thread
        self._other: dict[str, Any] = {}

    # SessionStorage ----------------------------------------------------------------------------

    def get(self, key: str, default: Any = None) -> Any:
        """The stored token for ``key`` while it has not expired, else ``default``."""
        token, expires_at = self.get_token(key)
        if token is None:
            return self._other.get(key, default) if self._appid(key) is None else default
        if expires_at is not None and expires_at <= time.time():
            return default
        return token

    def set(self, key: str, value: Any, ttl: int | None = None) -> None:
        """Store the token for ``key``, valid ``ttl`` seconds (7,200 when not given)."""
        if value is None:
            return
        appid = self._appid(key)
        if appid is None:
            self._other[key] = value
            return
        now = utcnow()
        row = {
            "appid": appid,
            "access_token": str(value),
            "expires_at": now + timedelta(seconds=ttl or 7200),
            "fetched_at": now,
        }
        with self._connection(database.writing) as conn:
            stmt = database.dialect_insert(self._table, self._engine.dialect.name).values(**row)
            stmt = stmt.on_conflict_do_update(
                index_elements=[self._table.c.appid],
                set_={k: stmt.excluded[k] for k in ("access_token", "expires_at", "fetched_at")},
            )
            conn.execute(stmt)

    def delete(self, key: str) -> None:
        """Forget the token for ``key``."""
        appid = self._appid(key)
        if appid is None:
            self._other.pop(key, None)
            return
        with self._connection(database.writing) as conn:
            conn.execute(delete(self._table).where(self._table.c.appid == appid))

    # shared-token protocol (used by WeChatClient) ------------------------------------------------

    def get_token(self, key: str) -> tuple[str | None, float | None]:
        """The stored token and its expiry (a Unix time), expired or not; ``(None, None)`` when none."""
        appid = self._appid(key)
        if appid is None:
            return self._other.get(key), None
        with self._connection(database.reading) as conn:
            row = conn.execute(
                select(self._table.c.access_token, self._table.c.expires_at).where(self._table.c.appid == appid)
            ).first()
        if row is None:
            return None, None
        return row.access_token, row.expires_at.timestamp()

    @contextmanager
    def refresh_lock(self, key: str) -> Iterator[None]:
        """Hold a lock shared by every process while this thread fetches a new token for ``key``.

        ``database.lock_until_commit`` on a write transaction of its own (also in a GET request): on
        SQLite its write lock, on PostgreSQL an advisory lock. The token is written on the same
        connection, and the lock ends with its commit.
        """
        if getattr(self._local, "conn", None) is not None or database.write_transaction_of_this_thread() is not None:
            yield  # already serialised: this thread holds the lock, or SQLite's write lock
            return
        with database.writing(), self._engine.begin() as conn:
            database.lock_until_commit(conn, "wechat-token:" + key)
            self._local.conn = conn
            try:
                yield
            finally:
                self._local.conn = None

    # helpers -------------------------------------------------------------------------------------

    @staticmethod
    def _appid(key: str) -> str | None:
        """The row a key is kept in: the app id for its access token, the whole key for its JS-SDK ticket."""
        if key.endswith(ACCESS_TOKEN_SUFFIX):
            return key[: -len(ACCESS_TOKEN_SUFFIX)]
        return key if key.endswith(JSAPI_TICKET_SUFFIX) else None

    @contextmanager
    def _connection(self, mode) -> Iterator[Connection]:
        """This thread's refresh or SQLite write transaction if any, else a short transaction begun in ``mode``."""
        held = getattr(self._local, "conn", None) or database.write_transaction_of_this_thread()
        if held is not None:
            yield held
            return
        with mode(), self._engine.begin() as conn:
            yield conn


class RedisTokenStorage(RedisStorage):
    """wechatpy's ``RedisStorage`` (keys ``wechatpy:<appid>_access_token``) with the token's expiry
    read from the key's TTL, and a Redis lock around refreshes."""

    def __init__(self, redis, prefix: str = "wechatpy", lock_seconds: float = 10) -> None:
        super().__init__(redis, prefix)
        self.lock_seconds = lock_seconds

    def get_token(self, key: str) -> tuple[str | None, float | None]:
        """The stored token and its expiry (a Unix time); ``(None, None)`` when none."""
        pipe = self.redis.pipeline()
        pipe.get(self.key_name(key))
        pipe.pttl(self.key_name(key))
        value, pttl = pipe.execute()
        if value is None:
            return None, None
        token = wechat_json.loads(value.decode() if isinstance(value, bytes) else value)
        return token, (time.time() + pttl / 1000 if pttl and pttl > 0 else None)

    @contextmanager
    def refresh_lock(self, key: str) -> Iterator[None]:
        """Hold a Redis lock while this process fetches a new token; go on without it if Redis makes us wait too long."""
        lock = self.redis.lock(self.key_name(key) + ":refresh", timeout=self.lock_seconds)
        acquired = lock.acquire(blocking_timeout=self.lock_seconds)
        try:
            yield
        finally:
            if acquired:
                from redis.exceptions import LockError

                with suppress(LockError):  # expired meanwhile: another process may hold it now
                    lock.release()


# --- the client ---------------------------------------------------------------------------------


class WeChatClient(_WechatpyClient):
    """wechatpy's client with a shared token store, timeouts, and a bounded token refresh.

    Use :func:`client_class` for a subclass bound to a base URL; this class itself talks to WeChat.
    Errors stay wechatpy's: ``WeChatClientException`` (``errcode`` None for an HTTP error),
    ``APILimitedException`` for 45009, and ``requests`` exceptions for timeouts and refused connections.
    """

    def __init__(
        self,
        appid: str,
        secret: str,
        access_token: str | None = None,
        session: SessionStorage | None = None,
        timeout: float | None = None,
        auto_retry: bool = True,
        refresh_limit: int = 3,
    ) -> None:
        super().__init__(appid, secret, access_token=access_token, session=session, timeout=timeout)
        self.retry_token_errors = auto_retry
        self.auto_retry = False  # wechatpy's own retry recurses without end; _request retries instead
        self.refresh_limit = refresh_limit
        self._call = threading.local()  # token fetches of the current logical call, per thread

    # wechatpy overrides --------------------------------------------------------------------------

    @property
    def access_token(self) -> str:
        """The shared token; fetched when missing or within a minute of its expiry."""
        token, expires_at = self._stored_token()
        if token and self._is_fresh(expires_at):
            return token
        return self._renew_access_token(stale=token)

    def fetch_access_token(self) -> dict:
        """Fetch a new token from ``<base>cgi-bin/token`` and store it (counts against the refresh limit)."""
        if getattr(self._call, "active", False):
            if self._call.fetches >= self.refresh_limit:
                errcode = getattr(self._call, "errcode", None)
                raise TokenRefreshLimitExceeded(
                    errcode,
                    f"WeChat refused the access token again (errcode {errcode}) after {self._call.fetches} "
                    f"token fetches in one call (WECHAT_TOKEN_REFRESH_LIMIT={self.refresh_limit}); giving up. "
                    f"Check WECHAT_APPID/WECHAT_SECRET, and that nothing else fetches tokens for {self.appid}.",
                    client=self,
                )
            self._call.fetches += 1
        return self._fetch_access_token(
            url=self.API_BASE_URL + "token",
            params={"grant_type": "client_credential", "appid": self.appid, "secret": self.secret},
        )

    def _fetch_access_token(self, url: str, params: dict) -> dict:
        """wechatpy's token fetch, with the client's timeout and 45009 as ``APILimitedException``."""
        res = self._http.get(url=url, params=params, timeout=self.timeout)
        try:
            res.raise_for_status()
        except requests.RequestException as exc:
            raise WeChatClientException(
                errcode=None, errmsg=None, client=self, request=exc.request, response=exc.response
            ) from exc
        try:
            result = res.json()
        except ValueError:
            raise WeChatClientException(None, "token response is not JSON", client=self, response=res) from None
        errcode = int(result.get("errcode") or 0)
        if errcode:
            exc_class = APILimitedException if errcode == QUOTA_ERRCODE else WeChatClientException
            raise exc_class(errcode, result.get("errmsg", errcode), client=self, request=res.request, response=res)
        expires_in = int(result.get("expires_in") or 7200)
        self.session.set(self.access_token_key, result["access_token"], expires_in)
        self.expires_at = int(time.time()) + expires_in
        return result

    def _request(self, method: str, url_or_endpoint: str, **kwargs):
        """One logical call: refresh the token and retry on 40001/40014/42001, within the refresh limit."""
        outermost = not getattr(self._call, "active", False)
        if outermost:
            self._call.active = True
            self._call.fetches = 0
            self._call.errcode = None
        try:
            return self._request_retrying_token(method, url_or_endpoint, kwargs)
        finally:
            if outermost:
                self._call.active = False

    # helpers -------------------------------------------------------------------------------------

    def _request_retrying_token(self, method: str, url_or_endpoint: str, kwargs: dict):
        params = kwargs.pop("params", None)
        if params is None:
            params = {}
        # A token the caller passed is theirs to renew.
        ours = isinstance(params, dict) and "access_token" not in params
        refusals = 0
        while True:
            call_params = dict(params) if isinstance(params, dict) else params
            used_token = None
            if ours:
                used_token = call_params["access_token"] = self.access_token
            try:
                return super()._request(method, url_or_endpoint, params=call_params, **kwargs)
            except WeChatClientException as exc:
                if not (ours and self.retry_token_errors and exc.errcode in TOKEN_ERRCODES):
                    raise
                self._call.errcode = exc.errcode
                refusals += 1
                # Each pass fetches a token (counted) or takes one another process stored meanwhile;
                # the second bound only matters if other processes keep refreshing too.
                if refusals > 2 * self.refresh_limit:
                    raise TokenRefreshLimitExceeded(
                        exc.errcode,
                        f"WeChat refused {refusals} access tokens in one call (errcode {exc.errcode}); giving up.",
                        client=self,
                    ) from exc
                self._renew_access_token(stale=used_token)

    def _stored_token(self) -> tuple[str | None, float | None]:
        get_token = getattr(self.session, "get_token", None)
        if get_token is not None:
            return get_token(self.access_token_key)
        return self.session.get(self.access_token_key), self.expires_at  # a plain wechatpy storage

    @staticmethod
    def _is_fresh(expires_at: float | None) -> bool:
        return expires_at is None or expires_at - time.time() > TOKEN_EXPIRY_MARGIN_SECONDS

    def _renew_access_token(self, stale: str | None) -> str:
        """Replace ``stale`` (expired or refused), unless another process already has, under the store's lock."""
        lock = getattr(self.session, "refresh_lock", None)
        with lock(self.access_token_key) if lock is not None else nullcontext():
            token, expires_at = self._stored_token()
            if token and token != stale and self._is_fresh(expires_at):
                return token
            self.fetch_access_token()
            token, _ = self._stored_token()
            return token


def _rebased(endpoint: BaseWeChatAPI, api_base: str) -> BaseWeChatAPI | None:
    """A copy of a wechatpy API group whose own absolute base URL is moved under ``api_base``."""
    own = getattr(type(endpoint), "API_BASE_URL", "")
    if not own.startswith(WECHAT_API_BASE):
        return None
    cls = type(type(endpoint).__name__, (type(endpoint),), {"API_BASE_URL": api_base + own[len(WECHAT_API_BASE) :]})
    return cls()


def client_class(api_base: str) -> type[WeChatClient]:
    """The :class:`WeChatClient` subclass whose every call (token, ``wxa`` …) goes to ``api_base``."""
    return _client_class(api_base if api_base.endswith("/") else api_base + "/")


@functools.cache
def _client_class(api_base: str) -> type[WeChatClient]:
    if api_base == WECHAT_API_BASE:
        return WeChatClient
    attrs: dict[str, Any] = {"API_BASE_URL": api_base + "cgi-bin/"}
    for name in dir(_WechatpyClient):
        endpoint = getattr(_WechatpyClient, name)
        if isinstance(endpoint, BaseWeChatAPI):
            rebased = _rebased(endpoint, api_base)
            if rebased is not None:
                attrs[name] = rebased  # wxa, cloud, datacube, invoice, marketing, shakearound
    return type("WeChatClient", (WeChatClient,), attrs)


class WeChatOAuthClient(WeChatOAuth):
    """wechatpy's web OAuth with a timeout on every call; see :func:`oauth_class` for other base URLs."""

    timeout: float | None = None

    def _request(self, method: str, url_or_endpoint: str, **kwargs):
        kwargs.setdefault("timeout", self.timeout)
        return super()._request(method, url_or_endpoint, **kwargs)


@functools.cache
def oauth_class(api_base: str, oauth_base: str) -> type[WeChatOAuthClient]:
    """The OAuth class whose token exchange goes to ``api_base`` and authorize page to ``oauth_base``."""
    return type("WeChatOAuthClient", (WeChatOAuthClient,), {"API_BASE_URL": api_base, "OAUTH_BASE_URL": oauth_base})


# --- factories ----------------------------------------------------------------------------------


def api_base(config) -> str:
    """``WECHAT_API_BASE`` with its trailing slash."""
    base = config["WECHAT_API_BASE"]
    return base if base.endswith("/") else base + "/"


def oauth_base(config) -> str:
    """Where the OAuth authorize page is: ``WECHAT_OAUTH_BASE``, else beside the API base (WeChat's own for WeChat)."""
    if config.get("WECHAT_OAUTH_BASE"):
        base = config["WECHAT_OAUTH_BASE"]
        return base if base.endswith("/") else base + "/"
    base = api_base(config)
    return WECHAT_OAUTH_BASE if base == WECHAT_API_BASE else base + "connect/"


def token_storage(app: Flask) -> SessionStorage:
    """The store every process shares: Redis when ``REDIS_URL`` is set, else the database."""
    timeout = float(app.config["WECHAT_TIMEOUT_SECONDS"])
    if app.config.get("REDIS_URL"):
        import redis

        connection = redis.Redis.from_url(
            app.config["REDIS_URL"], socket_timeout=timeout, socket_connect_timeout=timeout
        )
        return RedisTokenStorage(connection, prefix="wechatpy", lock_seconds=timeout + 5)
    return DatabaseTokenStorage(app)


def build_client(app: Flask, appid: str, secret: str) -> WeChatClient:
    """A new client for ``appid`` on the app's base URL, token store, timeout and refresh limit."""
    cls = client_class(api_base(app.config))
    return cls(
        appid,
        secret,
        session=token_storage(app),
        timeout=float(app.config["WECHAT_TIMEOUT_SECONDS"]),
        refresh_limit=int(app.config["WECHAT_TOKEN_REFRESH_LIMIT"]),
    )


_build_lock = threading.Lock()


def _cached(key: str, build) -> WeChatClient:
    app = current_app._get_current_object()
    client = app.extensions.get(key)
    if client is None:
        with _build_lock:
            client = app.extensions.get(key)
            if client is None:
                client = app.extensions[key] = build(app)
    return client


def get_client() -> WeChatClient:
    """The mini-program's client (``WECHAT_APPID``), one per app, kept in ``app.extensions["wechat_client"]``."""
    return _cached(
        "wechat_client",
        lambda app: build_client(app, app.config["WECHAT_APPID"], app.config["WECHAT_SECRET"]),
    )


def official_account_configured() -> bool:
    """True when an official account (``WECHAT_MP_APPID`` and ``WECHAT_MP_SECRET``) is configured."""
    config = current_app.config
    return bool(config.get("WECHAT_MP_APPID") and config.get("WECHAT_MP_SECRET"))


def get_mp_client() -> WeChatClient:
    """The official account's client, one per app; ``RuntimeError`` when none is configured."""
    if not official_account_configured():
        raise RuntimeError("no official account configured (WECHAT_MP_APPID, WECHAT_MP_SECRET)")
    return _cached(
        "wechat_mp_client",
        lambda app: build_client(app, app.config["WECHAT_MP_APPID"], app.config["WECHAT_MP_SECRET"]),
    )


def make_oauth(redirect_uri: str = "", state: str = "") -> WeChatOAuthClient:
    """An snsapi_base OAuth helper for the official account; ``RuntimeError`` when none is configured."""
    if not official_account_configured():
        raise RuntimeError("no official account configured (WECHAT_MP_APPID, WECHAT_MP_SECRET)")
    config = current_app.config
    oauth = oauth_class(api_base(config), oauth_base(config))(
        config["WECHAT_MP_APPID"], config["WECHAT_MP_SECRET"], redirect_uri, scope="snsapi_base", state=state
    )
    oauth.timeout = float(config["WECHAT_TIMEOUT_SECONDS"])
    return oauth
