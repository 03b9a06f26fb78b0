"""The sandbox's state, in an SQLite file of its own (``WECHAT_SANDBOX_DB``) shared by every gunicorn
worker: WAL, a busy timeout, and BEGIN IMMEDIATE around every change. Never in process memory, never
in the project's schema.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

TOKEN_TTL_SECONDS = 7200
TOKEN_GRACE_SECONDS = 300  # a superseded token keeps working this long
CODE_TTL_SECONDS = 300  # wx.login and OAuth codes
BUSY_TIMEOUT_MS = 15000
CHINA = timezone(timedelta(hours=8))

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tokens (
    token TEXT PRIMARY KEY, appid TEXT NOT NULL, issued_at REAL NOT NULL, expires_at REAL NOT NULL,
    superseded_at REAL
);
CREATE INDEX IF NOT EXISTS ix_tokens_appid ON tokens (appid, issued_at);
CREATE TABLE IF NOT EXISTS users (openid TEXT PRIMARY KEY, unionid TEXT, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS codes (
    code TEXT PRIMARY KEY, kind TEXT NOT NULL, openid TEXT NOT NULL, issued_at REAL NOT NULL, used_at REAL
);
CREATE TABLE IF NOT EXISTS subscriptions (
    openid TEXT NOT NULL, template_id TEXT NOT NULL, credits INTEGER NOT NULL,
    PRIMARY KEY (openid, template_id)
);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, appid TEXT NOT NULL, openid TEXT NOT NULL,
    template_id TEXT NOT NULL, page TEXT, url TEXT, data TEXT NOT NULL, miniprogram_state TEXT, lang TEXT,
    at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_messages_openid ON messages (openid, id);
CREATE TABLE IF NOT EXISTS faults (path TEXT PRIMARY KEY, kind TEXT NOT NULL, remaining INTEGER NOT NULL, seconds REAL);
CREATE TABLE IF NOT EXISTS calls (path TEXT PRIMARY KEY, count INTEGER NOT NULL);
"""
TABLES = ("meta", "tokens", "users", "codes", "subscriptions", "messages", "faults", "calls")

# Which files already have the schema, so it is not re-run on every request (the state itself is in the file).
_ready: set[str] = set()
_ready_lock = threading.Lock()


class SandboxError(Exception):
    """A WeChat error answer: ``errcode`` and ``errmsg``."""

    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(f"{errcode} {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg


class SandboxState:
    """The sandbox's SQLite file and every operation on it; one short connection per operation."""

    def __init__(self, path: str) -> None:
        self.path = path
        if path not in _ready:
            with _ready_lock:
                if path not in _ready:
                    Path(path).parent.mkdir(parents=True, exist_ok=True)
                    with closing(self._connect()) as conn:
                        conn.execute("PRAGMA journal_mode = WAL")
                        conn.executescript(SCHEMA)
                    _ready.add(path)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA synchronous = NORMAL")
        return conn

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A connection for reads (WAL: never waits for writers)."""
        with closing(self._connect()) as conn:
            yield conn

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction, BEGIN IMMEDIATE, so concurrent workers queue behind the busy timeout."""
        with closing(self._connect()) as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    # --- the clock (tests move it forward instead of waiting) ---------------------------------

    @staticmethod
    def _offset(conn: sqlite3.Connection) -> float:
        row = conn.execute("SELECT value FROM meta WHERE key = 'clock_offset'").fetchone()
        return float(row["value"]) if row else 0.0

    def now(self, conn: sqlite3.Connection | None = None) -> float:
        """The sandbox's time: the real time plus whatever the clock was moved forward."""
        if conn is not None:
            return time.time() + self._offset(conn)
        with self.read() as c:
            return time.time() + self._offset(c)

    def advance_clock(self, seconds: float) -> float:
        """Move the sandbox's clock forward; return the total offset."""
        with self.write() as conn:
            offset = self._offset(conn) + seconds
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('clock_offset', ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (str(offset),),
            )
        return offset

    # --- calls and faults --------------------------------------------------------------------

    def record_call(self, path: str) -> dict | None:
        """Count a call to a WeChat path; return the fault to apply to it (spending one), if any."""
        with self.write() as conn:
            conn.execute(
                "INSERT INTO calls (path, count) VALUES (?, 1) ON CONFLICT (path) DO UPDATE SET count = count + 1",
                (path,),
            )
            row = conn.execute(
                "SELECT path, kind, remaining, seconds FROM faults WHERE path IN (?, '*') AND remaining != 0 "
                "ORDER BY path = '*' LIMIT 1",
                (path,),
            ).fetchone()
            if row is None:
                return None
            if row["remaining"] > 0:
                conn.execute("UPDATE faults SET remaining = remaining - 1 WHERE path = ?", (row["path"],))
            return dict(row)

    def set_fault(self, path: str, kind: str, times: int, seconds: float | None) -> None:
        """Make the next ``times`` calls to ``path`` fail with ``kind`` (-1: until cleared; ``*``: every path)."""
        with self.write() as conn:
            conn.execute(
                "INSERT INTO faults (path, kind, remaining, seconds) VALUES (?, ?, ?, ?) ON CONFLICT (path) "
                "DO UPDATE SET kind = excluded.kind, remaining = excluded.remaining, seconds = excluded.seconds",
                (path, kind, times, seconds),
            )

    def faults(self) -> list[dict]:
        """The faults still to apply: path, kind, calls remaining (-1: until cleared), seconds."""
        with self.read() as conn:
            rows = conn.execute("SELECT path, kind, remaining, seconds FROM faults WHERE remaining != 0 ORDER BY path")
            return [dict(row) for row in rows]

    def clear_faults(self) -> int:
        """Remove every fault; return how many there were."""
        with self.write() as conn:
            return conn.execute("DELETE FROM faults").rowcount

    def stats(self) -> dict[str, int]:
        """Calls per WeChat path since the last reset."""
        with self.read() as conn:
            return {row["path"]: row["count"] for row in conn.execute("SELECT path, count FROM calls ORDER BY path")}

    def reset(self) -> None:
        """Forget everything: tokens, users, codes, subscriptions, messages, faults, counts, the clock."""
        with self.write() as conn:
            for table in TABLES:
                conn.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names

    # --- access tokens -----------------------------------------------------------------------

    def issue_token(self, appid: str, daily_limit: int) -> tuple[str, int]:
        """A new token for ``appid``; the previous one keeps working for five minutes. 45009 past the daily limit."""
        with self.write() as conn:
            now = self.now(conn)
            day = datetime.fromtimestamp(now, CHINA).replace(hour=0, minute=0, second=0, microsecond=0)
            issued_today = conn.execute(
                "SELECT COUNT(*) FROM tokens WHERE appid = ? AND issued_at >= ?", (appid, day.timestamp())
            ).fetchone()[0]
            if issued_today >= daily_limit:
                raise SandboxError(45009, "reach max api daily quota limit")
            conn.execute("UPDATE tokens SET superseded_at = ? WHERE appid = ? AND superseded_at IS NULL", (now, appid))
            token = "sbx_" + secrets.token_urlsafe(48)
            conn.execute(
                "INSERT INTO tokens (token, appid, issued_at, expires_at) VALUES (?, ?, ?, ?)",
                (token, appid, now, now + TOKEN_TTL_SECONDS),
            )
        return token, TOKEN_TTL_SECONDS

    def check_token(self, token: str | None) -> str:
        """The app id a token belongs to; 41001 missing, 40001 unknown or superseded over 5 minutes ago, 42001 expired."""
        if not token:
            raise SandboxError(41001, "access_token missing")
        with self.read() as conn:
            now = self.now(conn)
            row = conn.execute("SELECT * FROM tokens WHERE token = ?", (token,)).fetchone()
        if row is None or (row["superseded_at"] is not None and now > row["superseded_at"] + TOKEN_GRACE_SECONDS):
            raise SandboxError(40001, "invalid credential, access_token is invalid or not latest")
        if now >= row["expires_at"]:
            raise SandboxError(42001, "access_token expired")
        return row["appid"]

    # --- users and codes ---------------------------------------------------------------------

    @staticmethod
    def _add_user(conn: sqlite3.Connection, openid: str, unionid: str | None, now: float) -> None:
        conn.execute(
            "INSERT INTO users (openid, unionid, created_at) VALUES (?, ?, ?) ON CONFLICT (openid) "
            "DO UPDATE SET unionid = COALESCE(excluded.unionid, users.unionid)",
            (openid, unionid, now),
        )

    def mint_code(self, kind: str, openid: str, unionid: str | None = None) -> str:
        """A single-use code for ``openid`` (``login``: what wx.login gives; ``oauth``: the OAuth redirect's)."""
        code = secrets.token_urlsafe(24)
        with self.write() as conn:
            now = self.now(conn)
            self._add_user(conn, openid, unionid, now)
            conn.execute(
                "INSERT INTO codes (code, kind, openid, issued_at) VALUES (?, ?, ?, ?)", (code, kind, openid, now)
            )
        return code

    def redeem_code(self, kind: str, code: str | None) -> dict:
        """The user of a code, spending it: 40029 unknown or expired, 40163 already used."""
        with self.write() as conn:
            now = self.now(conn)
            row = conn.execute(
                "SELECT c.*, u.unionid FROM codes c JOIN users u ON u.openid = c.openid WHERE code = ? AND kind = ?",
                (code or "", kind),
            ).fetchone()
            if row is None or now > row["issued_at"] + CODE_TTL_SECONDS:
                raise SandboxError(40029, "invalid code")
            if row["used_at"] is not None:
                raise SandboxError(40163, "code been used")
            conn.execute("UPDATE codes SET used_at = ? WHERE code = ?", (now, code))
        return {"openid": row["openid"], "unionid": row["unionid"]}

    def is_user(self, openid: str) -> bool:
        """True for an openid the sandbox has seen (a login code, a subscription, an OAuth visit)."""
        with self.read() as conn:
            return conn.execute("SELECT 1 FROM users WHERE openid = ?", (openid,)).fetchone() is not None

    def users(self) -> list[str]:
        """Every openid, the one with the newest message first."""
        with self.read() as conn:
            rows = conn.execute(
                "SELECT u.openid FROM users u LEFT JOIN messages m ON m.openid = u.openid "
                "GROUP BY u.openid ORDER BY COALESCE(MAX(m.id), 0) DESC, u.created_at DESC"
            ).fetchall()
        return [row["openid"] for row in rows]

    # --- subscriptions and messages ----------------------------------------------------------

    def subscribe(self, openid: str, template_id: str, count: int = 1, long_term: bool = False) -> int:
        """The user accepts ``count`` more subscribe messages of a template; return how many are left.

        A long-term template is switched on (1) however often it is accepted; ``count=0`` switches it off.
        """
        with self.write() as conn:
            self._add_user(conn, openid, None, self.now(conn))
            conn.execute(
                "INSERT INTO subscriptions (openid, template_id, credits) VALUES (?, ?, ?) "
                "ON CONFLICT (openid, template_id) DO UPDATE SET credits = "
                "CASE WHEN ? THEN excluded.credits ELSE credits + excluded.credits END",
                (openid, template_id, min(count, 1) if long_term else count, long_term),
            )
            return conn.execute(
                "SELECT credits FROM subscriptions WHERE openid = ? AND template_id = ?", (openid, template_id)
            ).fetchone()[0]

    def subscriptions(self, openid: str) -> dict[str, int]:
        """Acceptances left per template for a user."""
        with self.read() as conn:
            rows = conn.execute("SELECT template_id, credits FROM subscriptions WHERE openid = ?", (openid,))
            return {row["template_id"]: row["credits"] for row in rows}

    def deliver(self, message: dict, spend_subscription: bool, need_subscription: bool = False) -> int:
        """Store a received message (spending one acceptance for a subscribe message: 43101 when none is left).

        ``need_subscription`` without ``spend_subscription``: a long-term template, which must be on and stays on.
        """
        with self.write() as conn:
            if need_subscription and not spend_subscription:
                on = conn.execute(
                    "SELECT 1 FROM subscriptions WHERE openid = ? AND template_id = ? AND credits > 0",
                    (message["openid"], message["template_id"]),
                ).fetchone()
                if on is None:
                    raise SandboxError(43101, "user refuse to accept the msg")
            if spend_subscription:
                spent = conn.execute(
                    "UPDATE subscriptions SET credits = credits - 1 WHERE openid = ? AND template_id = ? AND credits > 0",
                    (message["openid"], message["template_id"]),
                ).rowcount
                if not spent:
                    raise SandboxError(43101, "user refuse to accept the msg")
            cursor = conn.execute(
                "INSERT INTO messages (kind, appid, openid, template_id, page, url, data, miniprogram_state, lang, at) "
                "VALUES (:kind, :appid, :openid, :template_id, :page, :url, :data, :miniprogram_state, :lang, :at)",
                {**message, "data": json.dumps(message["data"], ensure_ascii=False), "at": self.now(conn)},
            )
            return cursor.lastrowid

    def messages(self, openid: str | None = None, newest_first: bool = False) -> list[dict]:
        """Messages received, oldest first unless ``newest_first``; one user's when ``openid`` is given."""
        order = "DESC" if newest_first else "ASC"
        with self.read() as conn:
            if openid is None:
                rows = conn.execute(f"SELECT * FROM messages ORDER BY id {order}").fetchall()  # noqa: S608
            else:
                rows = conn.execute(
                    f"SELECT * FROM messages WHERE openid = ? ORDER BY id {order}",  # noqa: S608
                    (openid,),
                ).fetchall()
        return [
            {
                "id": row["id"],
                "kind": row["kind"],
                "openid": row["openid"],
                "template_id": row["template_id"],
                "data": json.loads(row["data"]),
                "page": row["page"],
                "url": row["url"],
                "miniprogram_state": row["miniprogram_state"],
                "lang": row["lang"],
                "at": datetime.fromtimestamp(row["at"], CHINA).isoformat(timespec="seconds"),
            }
            for row in rows
        ]
