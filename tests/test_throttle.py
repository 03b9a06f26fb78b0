"""Submission throttling: limits per address and per code, windows that end, exact counts under
concurrent workers, and the same behaviour from Redis."""

from __future__ import annotations

import re
import socket
import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import redis
from sqlalchemy import select, update

from backend import create_app, throttle
from backend.errors import UserError
from backend.extensions import db
from backend.models import ThrottleCounter, utcnow
from backend.qr.codes import current_code
from tests.conftest import app_config_for, redis_test_url
from tests.helpers import outbox_worker_running, redis_or_skip, wait_until

REDIS_TEST_URL = redis_test_url(15)
# The day is named when the time to try again is past midnight in China (retry_message): a run near midnight
# gets "12月4日 00:21", any other run "14:05".
TIME_SENTENCE = re.compile(r"^提交太频繁，请在 (\d{1,2}月\d{1,2}日 )?\d{2}:\d{2} 之后再试（约 \d+ 分钟后）。$")


@pytest.fixture
def db_app(app):
    """The app counting in the database, whatever REDIS_URL the environment has."""
    app.config["REDIS_URL"] = None
    return app


def counter(key: str) -> ThrottleCounter | None:
    return db.session.scalar(select(ThrottleCounter).where(ThrottleCounter.key == key))


def end_window(key: str) -> None:
    """Move a counter's window into the past, as if its hour had gone by."""
    db.session.execute(
        update(ThrottleCounter).where(ThrottleCounter.key == key).values(expires_at=utcnow() - timedelta(seconds=1))
    )
    db.session.commit()


# -- hit() on the database --------------------------------------------------------------------


def test_hit_counts_up_to_the_limit_then_refuses(db_app):
    results = [throttle.hit("k", limit=3, window_seconds=600) for _ in range(5)]
    assert [r.count for r in results] == [1, 2, 3, 4, 5]
    assert [r.allowed for r in results] == [True, True, True, False, False]
    assert all(0 < r.retry_after <= 600 for r in results)
    row = counter("k")
    assert row.count == 5
    assert timedelta(seconds=590) < row.expires_at - utcnow() <= timedelta(seconds=600)


def test_window_is_anchored_at_the_first_hit(db_app):
    throttle.hit("k", limit=5, window_seconds=600)
    first_end = counter("k").expires_at
    db.session.execute(
        update(ThrottleCounter).where(ThrottleCounter.key == "k").values(expires_at=utcnow() + timedelta(seconds=30))
    )
    result = throttle.hit("k", limit=5, window_seconds=600)
    assert result.count == 2
    assert result.retry_after <= 30  # later hits do not push the window's end out
    assert counter("k").expires_at < first_end


def test_an_ended_window_starts_again_at_one(db_app):
    for _ in range(4):
        throttle.hit("k", limit=3, window_seconds=600)
    db.session.commit()
    end_window("k")
    result = throttle.hit("k", limit=3, window_seconds=600)
    assert (result.allowed, result.count) == (True, 1)
    assert result.retry_after > 590
    assert counter("k").expires_at > utcnow() + timedelta(seconds=590)


def test_hit_joins_the_callers_transaction_and_does_not_commit(db_app):
    throttle.hit("k", limit=3, window_seconds=600)
    db.session.rollback()
    assert counter("k") is None


def test_keys_are_independent(db_app):
    for _ in range(3):
        throttle.hit("a", limit=3, window_seconds=600)
    assert throttle.hit("a", limit=3, window_seconds=600).allowed is False
    assert throttle.hit("b", limit=3, window_seconds=600).count == 1


def test_overlong_keys_are_hashed_into_the_column(db_app):
    key = "submit:addr:" + "x" * 500
    assert throttle.hit(key, limit=3, window_seconds=600).count == 1
    assert throttle.hit(key, limit=3, window_seconds=600).count == 2
    (stored,) = db.session.scalars(select(ThrottleCounter.key)).all()
    assert stored.startswith("sha256:") and len(stored) <= 200


def test_purge_expired_deletes_only_ended_windows(db_app):
    throttle.hit("old", limit=3, window_seconds=600)
    throttle.hit("new", limit=3, window_seconds=600)
    db.session.commit()
    end_window("old")
    assert throttle.purge_expired() == 1
    db.session.rollback()  # purge flushes but does not commit
    assert counter("old") is not None
    assert throttle.purge_expired() == 1
    db.session.commit()
    assert [row.key for row in db.session.scalars(select(ThrottleCounter))] == ["new"]


def hammer(app, key: str, limit: int, hits: int, start: threading.Barrier, results: list, errors: list) -> None:
    """One worker: its own app context and session, one committed hit at a time."""
    try:
        with app.app_context():
            start.wait(timeout=30)
            for _ in range(hits):
                results.append(throttle.hit(key, limit=limit, window_seconds=600))
                db.session.commit()
            db.session.remove()
    except Exception as exc:  # reported to the test thread
        errors.append(exc)


def test_concurrent_hits_are_counted_exactly(db_app):
    threads_count, hits, limit = 8, 10, 50
    start = threading.Barrier(threads_count)
    results: list[throttle.ThrottleResult] = []
    errors: list[Exception] = []
    threads = [
        threading.Thread(target=hammer, args=(db_app, "busy", limit, hits, start, results, errors))
        for _ in range(threads_count)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert len(results) == threads_count * hits
    assert sorted(r.count for r in results) == list(range(1, threads_count * hits + 1))  # no count seen twice
    assert sum(r.allowed for r in results) == limit
    db.session.expire_all()
    assert counter("busy").count == threads_count * hits


# -- register_submission() --------------------------------------------------------------------


def test_register_submission_refuses_with_429_and_says_when(db_app):
    db_app.config.update(THROTTLE_PER_ADDRESS=2, THROTTLE_PER_CODE=100, THROTTLE_WINDOW_SECONDS=1800)
    throttle.register_submission("203.0.113.7", "d-abc")
    throttle.register_submission("203.0.113.7", "d-abc")
    with pytest.raises(UserError) as info:
        throttle.register_submission("203.0.113.7", "d-abc")
    error = info.value
    assert (error.code, error.status) == ("too_many_submissions", 429)
    assert 1790 < error.retry_after <= 1800
    assert TIME_SENTENCE.match(error.message), error.message
    assert "约 30 分钟后" in error.message


def test_per_address_and_per_code_limits_are_independent(db_app):
    db_app.config.update(THROTTLE_PER_ADDRESS=2, THROTTLE_PER_CODE=3, THROTTLE_WINDOW_SECONDS=600)
    # One address over its limit does not stop another address on the same code…
    throttle.register_submission("198.51.100.1", "d-one")
    throttle.register_submission("198.51.100.1", "d-one")
    with pytest.raises(UserError):
        throttle.register_submission("198.51.100.1", "d-two")
    throttle.register_submission("198.51.100.2", "d-one")
    # …but the code's own limit (3) stops every address.
    with pytest.raises(UserError) as info:
        throttle.register_submission("198.51.100.3", "d-one")
    assert info.value.code == "too_many_submissions"
    throttle.register_submission("198.51.100.3", "d-three")
    assert counter("submit:addr:198.51.100.1").count == 3
    assert counter("submit:code:d-one").count == 4


def test_register_submission_reports_the_later_of_two_windows(db_app):
    db_app.config.update(THROTTLE_PER_ADDRESS=1, THROTTLE_PER_CODE=1, THROTTLE_WINDOW_SECONDS=3600)
    throttle.register_submission("192.0.2.9", "s-x")
    db.session.execute(
        update(ThrottleCounter)
        .where(ThrottleCounter.key == "submit:addr:192.0.2.9")
        .values(expires_at=utcnow() + timedelta(seconds=120))
    )
    with pytest.raises(UserError) as info:
        throttle.register_submission("192.0.2.9", "s-x")
    assert info.value.retry_after > 3500  # the code's window, not the address's two minutes


@pytest.mark.fresh_app  # adds a route: never to the session's app, whose routes other tests list
def test_refused_submission_through_the_error_handler_answers_429_with_retry_after(db_app):
    @db_app.post("/api/_throttle_probe")
    def _probe():
        throttle.register_submission("192.0.2.1", "d-probe")
        return {"ok": True}

    db_app.config.update(
        THROTTLE_PER_ADDRESS=1, THROTTLE_PER_CODE=100, THROTTLE_WINDOW_SECONDS=600, WTF_CSRF_ENABLED=False
    )
    client = db_app.test_client()
    throttle.register_submission("192.0.2.1", "d-probe")
    db.session.commit()
    response = client.post("/api/_throttle_probe")
    assert response.status_code == 429
    assert 0 < int(response.headers["Retry-After"]) <= 600
    assert response.json["error"]["code"] == "too_many_submissions"
    assert TIME_SENTENCE.match(response.json["error"]["message"])


@pytest.mark.parametrize(
    ("hops", "forwarded", "second"),
    [
        (0, "198.51.100.2", 429),  # no proxy: the header is the client's own word, ignored
        (1, "198.51.100.2", 201),  # one proxy: what it saw is the address
        (1, "198.51.100.1, 198.51.100.2", 201),  # a forged first hop: only the proxy's own entry counts
        (1, "198.51.100.2, 198.51.100.1", 429),  # …which is the same address as before: refused
    ],
)
def test_x_forwarded_for_is_the_address_only_behind_trusted_proxies(
    database_url, app, create_deputy, hops, forwarded, second
):
    """TRUSTED_PROXY_HOPS (ProxyFix): behind one proxy the throttle counts the address it forwarded; without one
    the header is ignored, so a resident cannot write one to escape the per-address limit."""
    settings = {"TRUSTED_PROXY_HOPS": hops, "REDIS_URL": None, "THROTTLE_PER_ADDRESS": 1, "THROTTLE_PER_CODE": 100}
    proxied = create_app({**app_config_for(database_url), **settings})
    slug = current_code(create_deputy()).slug
    db.session.commit()  # the other app's request writes (SQLite: one writer at a time)
    client = proxied.test_client()

    def submit(header: str) -> int:
        body = {"code": slug, "body": "村口路灯坏了三个月，晚上出行很不方便。", "client_id": uuid.uuid4().hex}
        return client.post("/api/v1/items", json=body, headers={"X-Forwarded-For": header}).status_code

    try:
        assert submit("198.51.100.1") == 201
        assert submit(forwarded) == second
    finally:
        with proxied.app_context():
            db.engine.dispose()


@pytest.mark.parametrize(
    ("now", "retry_after", "expected"),
    [
        # 13:41:10 China time + 23 min 50 s = 14:05:00 exactly
        (datetime(2026, 3, 2, 5, 41, 10, tzinfo=UTC), 1430, "请在 14:05 之后再试（约 24 分钟后）"),
        # a second later is rounded up: never tell someone a time at which they would still be refused
        (datetime(2026, 3, 2, 5, 41, 11, tzinfo=UTC), 1430, "请在 14:06 之后再试（约 24 分钟后）"),
        (datetime(2026, 3, 2, 5, 41, 0, tzinfo=UTC), 20, "请在 13:42 之后再试（约 1 分钟后）"),
        (datetime(2026, 3, 2, 5, 0, 0, tzinfo=UTC), 7200, "请在 15:00 之后再试（约 2 小时后）"),
        (datetime(2026, 3, 2, 5, 0, 0, tzinfo=UTC), 5400, "请在 14:30 之后再试（约 1 小时 30 分钟后）"),
        # 23:30 China time + 1 hour is tomorrow: the date is named
        (datetime(2026, 3, 2, 15, 30, 0, tzinfo=UTC), 3600, "请在 3月3日 00:30 之后再试（约 1 小时后）"),
    ],
)
def test_retry_message_names_the_china_clock_time(now, retry_after, expected):
    message = throttle.retry_message(retry_after, now=now)
    assert message == f"提交太频繁，{expected}。"


# -- Redis ------------------------------------------------------------------------------------


@pytest.fixture
def redis_app(app):
    """The app counting in Redis database 15, emptied before and after."""
    redis_or_skip(REDIS_TEST_URL)
    app.config["REDIS_URL"] = REDIS_TEST_URL
    client = redis.Redis.from_url(REDIS_TEST_URL)
    client.flushdb()
    yield app
    client.flushdb()
    client.close()
    app_client = app.extensions.pop("redis", None)
    if app_client is not None:
        app_client.close()


def test_redis_counts_to_the_limit_and_keeps_nothing_in_the_database(redis_app):
    results = [throttle.hit("k", limit=3, window_seconds=600) for _ in range(5)]
    assert [(r.count, r.allowed) for r in results] == [(1, True), (2, True), (3, True), (4, False), (5, False)]
    assert all(0 < r.retry_after <= 600 for r in results)
    assert db.session.scalar(select(ThrottleCounter)) is None
    store = redis_app.extensions["redis"]
    assert int(store.get(throttle.REDIS_PREFIX + "k")) == 5
    assert 590 < store.ttl(throttle.REDIS_PREFIX + "k") <= 600


def test_redis_window_is_anchored_and_ends(redis_app):
    throttle.hit("k", limit=2, window_seconds=600)
    store = redis_app.extensions["redis"]
    name = throttle.REDIS_PREFIX + "k"
    store.expire(name, 30)
    assert throttle.hit("k", limit=2, window_seconds=600).retry_after <= 30  # not pushed out by hits
    assert throttle.hit("k", limit=2, window_seconds=600).allowed is False
    store.delete(name)  # what the expiry does when the window ends
    result = throttle.hit("k", limit=2, window_seconds=600)
    assert (result.count, result.allowed) == (1, True)
    assert result.retry_after > 590


def test_redis_key_without_expiry_gets_one(redis_app):
    store = redis_app.extensions.get("redis") or throttle.redis_client()
    store.set(throttle.REDIS_PREFIX + "k", 7)
    assert throttle.hit("k", limit=3, window_seconds=600).count == 8
    assert 0 < store.ttl(throttle.REDIS_PREFIX + "k") <= 600


def test_redis_register_submission_refuses_with_429(redis_app):
    redis_app.config.update(THROTTLE_PER_ADDRESS=1, THROTTLE_PER_CODE=100, THROTTLE_WINDOW_SECONDS=900)
    throttle.register_submission("203.0.113.8", "d-r")
    with pytest.raises(UserError) as info:
        throttle.register_submission("203.0.113.8", "d-r")
    assert info.value.status == 429
    assert 890 < info.value.retry_after <= 900
    assert TIME_SENTENCE.match(info.value.message)
    throttle.register_submission("203.0.113.9", "d-r")  # another address on the same code


def test_redis_concurrent_hits_are_counted_exactly(redis_app):
    start = threading.Barrier(8)
    results: list[throttle.ThrottleResult] = []
    errors: list[Exception] = []
    threads = [
        threading.Thread(target=hammer, args=(redis_app, "busy", 50, 10, start, results, errors)) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert sorted(r.count for r in results) == list(range(1, 81))
    assert sum(r.allowed for r in results) == 50


def test_unreachable_redis_falls_back_to_the_database(app):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app.config["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
    try:
        assert throttle.hit("k", limit=3, window_seconds=600).count == 1
        assert throttle.hit("k", limit=3, window_seconds=600).count == 2
        assert counter("k").count == 2
    finally:
        app.extensions.pop("redis").close()


def test_the_outbox_worker_purges_ended_windows_while_it_runs(db_app):
    """Nothing else deletes counters: the worker's periodic scan does, in its own loop."""
    throttle.hit("submit:addr:10.0.0.1", limit=3, window_seconds=600)
    throttle.hit("submit:addr:10.0.0.2", limit=3, window_seconds=600)
    db.session.commit()
    end_window("submit:addr:10.0.0.1")
    db_app.config.update(OUTBOX_OVERDUE_SCAN_SECONDS=0.05, OUTBOX_IDLE_SECONDS=0.02)
    with outbox_worker_running(db_app):
        # Each look a transaction of its own, to see the worker's commits.
        wait_until(
            lambda: db.session.rollback() or counter("submit:addr:10.0.0.1") is None, "the worker to purge the window"
        )
    assert counter("submit:addr:10.0.0.1") is None
    assert counter("submit:addr:10.0.0.2") is not None
