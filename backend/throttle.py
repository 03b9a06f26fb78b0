"""Submission throttling: fixed-window counters every worker shares.

The counters live in the database (``throttle_counters``), or in Redis when ``REDIS_URL`` is
set. A window starts at a key's first hit and lasts ``window_seconds``; the hit that finds the
window over starts the next one.

In the database the counter is one ``INSERT … ON CONFLICT DO UPDATE … RETURNING`` statement,
atomic on PostgreSQL and on SQLite (where write transactions begin IMMEDIATE, see
``backend.database``): it counts and reports in one step, so of requests arriving together
only as many as the limit pass (``count_or_refuse``). It runs in the caller's transaction and
is never committed here: a submission that fails after being counted rolls its count back with
it. Before slow work a caller can refuse what is already at its limit without counting
(``refuse_at_limit``, a read).
"""

from __future__ import annotations

import functools
import hashlib
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import redis
from flask import current_app
from sqlalchemy import Integer, String, bindparam, delete, select, text, update

from backend import database
from backend.errors import UserError
from backend.extensions import db
from backend.models import ThrottleCounter, utcnow
from backend.models.base import UTCDateTime
from backend.timefmt import CHINA

REDIS_PREFIX = "msl:throttle:"
SUBMISSIONS = "提交太频繁"
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
    count, retry_after = _count({key: limit}, window_seconds)[key]
    return ThrottleResult(allowed=count <= limit, count=count, retry_after=retry_after)


def peek(key: str, limit: int) -> ThrottleResult:
    """The running window's count for ``key`` without counting a hit; allowed while one more would be within ``limit``."""
    key = _stored_key(key)
    count, retry_after = _peek([key])[key]
    return ThrottleResult(allowed=count < limit, count=count, retry_after=retry_after)


def count_or_refuse(limits: dict[str, int], window_seconds: int, code: str, what: str) -> None:
    """Count one hit on each key (key → limit), then raise a 429 ``UserError`` if any went over.

    Counted first, checked after, in one statement (database) or one MULTI per key (Redis):
    of concurrent requests, only as many as the limit allows ever pass.
    """
    limits = {_stored_key(key): limit for key, limit in limits.items()}
    _refuse_over(limits, _count(limits, window_seconds), code, what)


def refuse_at_limit(limits: dict[str, int], code: str, what: str) -> None:
    """Raise the 429 ``UserError`` if a key (key → limit) has no hit left in its window; counts nothing."""
    limits = {_stored_key(key): limit for key, limit in limits.items()}
    peeked = _peek(list(limits))
    _refuse_over(limits, {key: (count + 1, retry_after) for key, (count, retry_after) in peeked.items()}, code, what)


def take_back(keys: list[str]) -> None:
    """Take one hit back from each key (a login that turned out right); never below zero."""
    keys = [_stored_key(key) for key in keys]
    if current_app.config.get("REDIS_URL"):
        try:
            for key in keys:
                redis_client().eval(_TAKE_BACK_LUA, 1, REDIS_PREFIX + key)
            return
        except redis.RedisError:
            current_app.logger.warning("Redis unreachable; taking the hit back in the database", exc_info=True)
    db.session.execute(
        update(ThrottleCounter)
        .where(ThrottleCounter.key.in_(keys), ThrottleCounter.count > 0)
        .values(count=ThrottleCounter.count - 1)
    )


def submission_limits(address: str, code_slug: str) -> dict[str, int]:
    """The counters a submission hits (its address's and its code's) and their limits."""
    config = current_app.config
    return {
        f"submit:addr:{address}": config["THROTTLE_PER_ADDRESS"],
        f"submit:code:{code_slug}": config["THROTTLE_PER_CODE"],
    }


def check_submission(address: str, code_slug: str) -> None:
    """Refuse (429) a submission whose address or code has used its window up, before any work is done for it."""
    refuse_at_limit(submission_limits(address, code_slug), "too_many_submissions", SUBMISSIONS)


def register_submission(address: str, code_slug: str) -> None:
    """Count a submission against its address and its code; raise a 429 ``UserError`` when either is over.

    In the caller's transaction (database counters): a submission that fails afterwards takes
    its count back with its rollback.
    """
    window = current_app.config["THROTTLE_WINDOW_SECONDS"]
    count_or_refuse(submission_limits(address, code_slug), window, "too_many_submissions", SUBMISSIONS)


def _refuse_over(limits: dict[str, int], counted: dict[str, tuple[int, int]], code: str, what: str) -> None:
    over = [retry_after for key, (count, retry_after) in counted.items() if count > limits[key]]
    if over:
        retry_after = max(over)
        raise UserError(code, retry_message(retry_after, what=what), 429, retry_after=retry_after)


def seconds_left(expires_at: datetime, now: datetime) -> int:
    """Whole seconds until a window ends, at least 1."""
    return max(1, math.ceil((expires_at - now).total_seconds()))


def _phone_lookup_key(ref: str) -> str:
    return f"lookup-phone-miss:ref:{ref}"


def guard_lookup(address: str, phone_ref: str | None = None) -> None:
    """Refuse item look-ups from an address that guessed wrong too often (429), before any look-up.

    ``phone_ref``: a look-up by the phone number's last four digits also stops at its reference's
    own limit, whoever asks (see ``backend.items.lookup``)."""
    limits = {f"lookup-miss:addr:{address}": current_app.config["LOOKUP_MISSES_PER_ADDRESS"]}
    if phone_ref is not None:
        limits[_phone_lookup_key(phone_ref)] = current_app.config["LOOKUP_PHONE_MISSES_PER_REF"]
    refuse_at_limit(limits, "too_many_lookups", "查询失败次数太多")


def register_failed_lookup(address: str, phone_ref: str | None = None) -> None:
    """Count a look-up with an unknown reference or a wrong key (or wrong phone digits, on ``phone_ref``), and commit it.

    The request answers 404 (and the session is rolled back by the error handler), so
    the count is committed here, on its own, before the answer goes out; it is a write of a
    GET request (``database.writing``).
    """
    config = current_app.config
    with database.writing():
        hit(f"lookup-miss:addr:{address}", config["LOOKUP_MISSES_PER_ADDRESS"], config["LOOKUP_WINDOW_SECONDS"])
        if phone_ref is not None:
            hit(
                _phone_lookup_key(phone_ref),
                config["LOOKUP_PHONE_MISSES_PER_REF"],
                config["LOOKUP_PHONE_WINDOW_SECONDS"],
            )
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


def _count(limits: dict[str, int], window_seconds: int) -> dict[str, tuple[int, int]]:
    """Count one hit on each stored key, in Redis when configured and reachable, else in the database;
    key → (count, seconds until its window ends)."""
    if current_app.config.get("REDIS_URL"):
        counted = _hit_redis(list(limits), window_seconds)
        if counted is not None:
            return counted
    now = utcnow()
    params = {f"k{i}": key for i, key in enumerate(sorted(limits))}
    params.update(now=now, expires=now + timedelta(seconds=window_seconds))
    statement = _hit_many_statement(len(limits))
    rows = db.session.connection().execute(statement, params).all()  # (a write transaction may begin here)
    return {row.key: (row.count, seconds_left(row.expires_at, now)) for row in rows}


_PEEK = select(ThrottleCounter.key, ThrottleCounter.count, ThrottleCounter.expires_at).where(
    ThrottleCounter.key.in_(bindparam("keys", expanding=True)),
    ThrottleCounter.expires_at > bindparam("now", type_=UTCDateTime),
)


def _peek(keys: list[str]) -> dict[str, tuple[int, int]]:
    """The running windows of stored keys, without counting: key → (count, seconds left), (0, 0) for none."""
    found = _peek_redis(keys) if current_app.config.get("REDIS_URL") else None
    if found is None:
        now = utcnow()
        rows = db.session.connection().execute(_PEEK, {"keys": keys, "now": now})
        found = {row.key: (row.count, seconds_left(row.expires_at, now)) for row in rows}
    return {key: found.get(key, (0, 0)) for key in keys}


def _hit_redis(keys: list[str], window_seconds: int) -> dict[str, tuple[int, int]] | None:
    """Count one hit on each key in one MULTI: SET NX EX anchors a window at its first hit, INCR counts, PTTL says
    when it ends. One transaction for all the keys, so concurrent requests are counted in the same order on each
    (the n-th request is the n-th on every key, as in the database's one statement): a login that is fifth for
    its account is never thirty-first for its address only because another request slipped in between.

    None when Redis cannot be reached: the caller counts in the database instead, so that a
    Redis outage never turns a resident's submission into an error page.
    """
    names = [REDIS_PREFIX + key for key in keys]
    try:
        pipe = redis_client().pipeline(transaction=True)
        for name in names:
            # SET NX EX rather than EXPIRE NX (Redis 7+): the same window, on the Redis 5/6 still common too.
            pipe.set(name, 0, ex=window_seconds, nx=True)
            pipe.incr(name)
            pipe.pttl(name)
        answers = pipe.execute()
        counted = {}
        for index, (key, name) in enumerate(zip(keys, names, strict=True)):
            count, pttl = answers[3 * index + 1], answers[3 * index + 2]
            if pttl < 0:  # a key left without expiry by something else: never let it throttle forever
                redis_client().expire(name, window_seconds)
                pttl = window_seconds * 1000
            counted[key] = (count, max(1, math.ceil(pttl / 1000)))
    except redis.RedisError:
        current_app.logger.warning("Redis unreachable; throttling in the database", exc_info=True)
        return None
    return counted


def _peek_redis(keys: list[str]) -> dict[str, tuple[int, int]] | None:
    """GET and PTTL of Redis counters; None when Redis cannot be reached."""
    try:
        pipe = redis_client().pipeline(transaction=True)
        for key in keys:
            pipe.get(REDIS_PREFIX + key)
            pipe.pttl(REDIS_PREFIX + key)
        answers = pipe.execute()
    except redis.RedisError:
        current_app.logger.warning("Redis unreachable; reading throttle counters from the database", exc_info=True)
        return None
    pairs = zip(answers[::2], answers[1::2], strict=True)
    return {
        key: (int(value) if value else 0, max(0, math.ceil(pttl / 1000)))
        for key, (value, pttl) in zip(keys, pairs, strict=True)
    }


# DECR only a live counter above zero: an expired or missing one stays missing.
_TAKE_BACK_LUA = (
    "local n = tonumber(redis.call('GET', KEYS[1])) if n and n > 0 then return redis.call('DECR', KEYS[1]) end return 0"
)


def redis_client():
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
