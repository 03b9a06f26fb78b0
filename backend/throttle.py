"""Submission throttling: fixed-window counters every worker shares.

The counters live in the database (``throttle_counters``), or in Redis when ``REDIS_URL`` is
set. A window starts at a key's first hit and lasts ``window_seconds``; the hit that finds the
window over starts the next one.

In the database the counter is one ``INSERT … ON CONFLICT DO UPDATE … RETURNING`` statement,
atomic on PostgreSQL and on SQLite (where write transactions begin IMMEDIATE, see
``backend.database``). It runs in the caller's transaction and is never committed here: a
submission that fails after being counted rolls its count back with it.
"""

from __future__ import annotations

import functools
import hashlib
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import redis
from flask import current_app
from sqlalchemy import Integer, String, bindparam, delete, select, text

from backend.errors import UserError
from backend.extensions import db
from backend.models import ThrottleCounter, utcnow
from backend.models.base import UTCDateTime
from backend.timefmt import CHINA

REDIS_PREFIX = "msl:throttle:"
KEY_MAX_LENGTH = 200  # ThrottleCounter.key


@dataclass(frozen=True)
class ThrottleResult:
    """One hit's outcome: whether it is within the limit, the window's count, and seconds until it ends."""

    allowed: bool
    count: int
    retry_after: int


def _stored_key(key: str) -> str:
    """Keys longer than the column are stored as their SHA-256."""
    if len(key) > KEY_MAX_LENGTH:
        return "sha256:" + hashlib.sha256(key.encode()).hexdigest()
    return key


def hit(key: str, limit: int, window_seconds: int) -> ThrottleResult:
    """Count one hit on ``key`` and say whether it is within ``limit`` hits per window."""
    key = _stored_key(key)
    count_retry = None
    if current_app.config.get("REDIS_URL"):
        count_retry = _hit_redis(key, window_seconds)
    count, retry_after = count_retry or _hit_database_many([key], window_seconds)[key]
    return ThrottleResult(allowed=count <= limit, count=count, retry_after=retry_after)


def submission_limits(address: str, code_slug: str) -> dict[str, int]:
    """The counters a submission hits (its address's and its code's, as stored) and their limits."""
    config = current_app.config
    return {
        _stored_key(f"submit:addr:{address}"): config["THROTTLE_PER_ADDRESS"],
        _stored_key(f"submit:code:{code_slug}"): config["THROTTLE_PER_CODE"],
    }


def register_submission(address: str, code_slug: str) -> None:
    """Count a submission against its address and its code; raise a 429 ``UserError`` when either is over."""
    config = current_app.config
    window = config["THROTTLE_WINDOW_SECONDS"]
    limits = submission_limits(address, code_slug)
    counted = None
    if config.get("REDIS_URL"):
        counted = [_hit_redis(key, window) for key in limits]
        counted = None if None in counted else dict(zip(limits, counted, strict=True))
    if counted is None:
        counted = _hit_database_many(list(limits), window)  # both keys in one statement: the hot path
    refuse_if_over(limits, counted)


def refuse_if_over(limits: dict[str, int], counted: dict[str, tuple[int, int]]) -> None:
    """Raise the 429 ``UserError`` when a counter (key → (count, seconds left)) is over its limit."""
    over = [retry_after for key, (count, retry_after) in counted.items() if count > limits[key]]
    if over:
        retry_after = max(over)
        raise UserError("too_many_submissions", retry_message(retry_after), 429, retry_after=retry_after)


def database_hits_cte(key_count: int):
    """PostgreSQL: the counters' upsert (``_HIT_MANY_SQL``) as a CTE ``hits`` (key, count, expires_at), to run
    inside a larger statement. Parameters as :func:`database_hit_params` gives them."""
    return _hit_many_statement(key_count).cte("hits")


def database_hit_params(keys: list[str], now: datetime, window_seconds: int | None = None) -> dict:
    """The upsert's parameters: the keys sorted (a fixed lock order), now, and the end of a window that starts now."""
    window = current_app.config["THROTTLE_WINDOW_SECONDS"] if window_seconds is None else window_seconds
    params = {f"k{i}": key for i, key in enumerate(sorted(keys))}
    params.update(now=now, expires=now + timedelta(seconds=window))
    return params


def seconds_left(expires_at: datetime, now: datetime) -> int:
    """Whole seconds until a window ends, at least 1."""
    return max(1, math.ceil((expires_at - now).total_seconds()))


def peek(key: str, limit: int) -> ThrottleResult:
    """The running window's count for ``key`` without counting a hit."""
    key = _stored_key(key)
    count, retry_after = 0, 0
    looked_up = _peek_redis(key) if current_app.config.get("REDIS_URL") else None
    if looked_up is None:
        now = utcnow()
        row = db.session.execute(
            select(ThrottleCounter.count, ThrottleCounter.expires_at).where(
                ThrottleCounter.key == key, ThrottleCounter.expires_at > now
            )
        ).one_or_none()
        if row is not None:
            count, retry_after = row.count, seconds_left(row.expires_at, now)
    else:
        count, retry_after = looked_up
    return ThrottleResult(allowed=count < limit, count=count, retry_after=retry_after)


def guard_lookup(address: str) -> None:
    """Refuse item look-ups from an address that guessed wrong too often (429), before any look-up."""
    config = current_app.config
    result = peek(f"lookup-miss:addr:{address}", config["LOOKUP_MISSES_PER_ADDRESS"])
    if not result.allowed:
        message = retry_message(result.retry_after, what="查询失败次数太多")
        raise UserError("too_many_lookups", message, 429, retry_after=result.retry_after)


def register_failed_lookup(address: str) -> None:
    """Count a look-up with an unknown reference or a wrong key, and commit it.

    The request answers 404 (and the session is rolled back by the error handler), so
    the count is committed here, on its own, before the answer goes out.
    """
    config = current_app.config
    hit(f"lookup-miss:addr:{address}", config["LOOKUP_MISSES_PER_ADDRESS"], config["LOOKUP_WINDOW_SECONDS"])
    db.session.commit()


def retry_message(retry_after: int, now: datetime | None = None, what: str = "提交太频繁") -> str:
    """Tell a person in Chinese when to try again: "提交太频繁，请在 14:05 之后再试（约 23 分钟后）。"."""
    now = (now or utcnow()).astimezone(CHINA)
    retry_at = now + timedelta(seconds=retry_after)
    if retry_at.second or retry_at.microsecond:  # "after 14:05" must not be too early: round up
        retry_at = retry_at.replace(second=0, microsecond=0) + timedelta(minutes=1)
    clock = f"{retry_at:%H:%M}"
    if retry_at.date() != now.date():
        clock = f"{retry_at.month}月{retry_at.day}日 {clock}"
    minutes = max(1, math.ceil(retry_after / 60))
    if minutes < 60:
        wait = f"{minutes} 分钟"
    elif minutes % 60:
        wait = f"{minutes // 60} 小时 {minutes % 60} 分钟"
    else:
        wait = f"{minutes // 60} 小时"
    return f"{what}，请在 {clock} 之后再试（约 {wait}后）。"


def purge_expired() -> int:
    """Delete the database counters whose window is over (flushes, never commits); return how many."""
    db.session.flush()
    result = db.session.execute(delete(ThrottleCounter.__table__).where(ThrottleCounter.expires_at <= utcnow()))
    return result.rowcount


# Several keys in one statement (the same SQL on PostgreSQL and SQLite ≥ 3.35). The keys are
# sorted first, so that two transactions never lock the same rows in opposite orders.
_HIT_MANY_SQL = """
INSERT INTO throttle_counters (key, count, expires_at) VALUES {rows}
ON CONFLICT (key) DO UPDATE SET
  count = CASE WHEN throttle_counters.expires_at <= :now THEN 1 ELSE throttle_counters.count + 1 END,
  expires_at = CASE WHEN throttle_counters.expires_at <= :now THEN excluded.expires_at
                    ELSE throttle_counters.expires_at END
RETURNING key, count, expires_at
"""


@functools.cache
def _hit_many_statement(n: int):
    rows = ", ".join(f"(:k{i}, 1, :expires)" for i in range(n))
    return (
        text(_HIT_MANY_SQL.format(rows=rows))
        .bindparams(bindparam("now", type_=UTCDateTime), bindparam("expires", type_=UTCDateTime))
        .columns(key=String, count=Integer, expires_at=UTCDateTime)
    )


def _hit_database_many(keys: list[str], window_seconds: int) -> dict[str, tuple[int, int]]:
    """Count one hit on each key in a single upsert; key → (count, seconds until its window ends)."""
    now = utcnow()
    params = database_hit_params(keys, now, window_seconds)
    rows = db.session.connection().execute(_hit_many_statement(len(keys)), params).all()
    found = {row.key: (row.count, seconds_left(row.expires_at, now)) for row in rows}
    return {key: found[key] for key in keys}


def _hit_redis(key: str, window_seconds: int) -> tuple[int, int] | None:
    """SET NX EX anchors the window at the first hit, INCR counts, PTTL says when it ends; one MULTI.

    None when Redis cannot be reached: the caller counts in the database instead, so that a
    Redis outage never turns a resident's submission into an error page.
    """
    name = REDIS_PREFIX + key
    try:
        pipe = _redis().pipeline(transaction=True)
        # SET NX EX rather than EXPIRE NX (Redis 7+): the same window, on the Redis 5/6 still common too.
        pipe.set(name, 0, ex=window_seconds, nx=True)
        pipe.incr(name)
        pipe.pttl(name)
        _, count, pttl = pipe.execute()
        if pttl < 0:  # a key left without expiry by something else: never let it throttle forever
            _redis().expire(name, window_seconds)
            pttl = window_seconds * 1000
    except redis.RedisError:
        current_app.logger.warning("Redis unreachable; throttling in the database", exc_info=True)
        return None
    return count, max(1, math.ceil(pttl / 1000))


def _peek_redis(key: str) -> tuple[int, int] | None:
    """GET and PTTL of a Redis counter; None when Redis cannot be reached."""
    name = REDIS_PREFIX + key
    try:
        pipe = _redis().pipeline(transaction=True)
        pipe.get(name)
        pipe.pttl(name)
        value, pttl = pipe.execute()
    except redis.RedisError:
        current_app.logger.warning("Redis unreachable; reading throttle counters from the database", exc_info=True)
        return None
    return (int(value) if value else 0), max(0, math.ceil(pttl / 1000))


def _redis():
    """The app's Redis client, created at first use and shared by its threads."""
    extensions = current_app.extensions
    client = extensions.get("redis")
    if client is None:
        # setdefault: two threads racing here end up sharing one client.
        client = redis.Redis.from_url(
            current_app.config["REDIS_URL"], socket_connect_timeout=2, socket_timeout=2, health_check_interval=30
        )
        client = extensions.setdefault("redis", client)
    return client
