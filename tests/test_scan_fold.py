"""Scans counted in Redis and folded into code_scan_days by the worker (issue 16 part 2, issue 15 part 7): every
scan added once, through a fold that dies before or after its commit, and counted in the database when Redis
is down."""

from __future__ import annotations

import pytest
import redis
from sqlalchemy import select

from backend.extensions import db
from backend.models import CodeScanDay, CodeScanFold
from backend.outbox import worker
from backend.qr import scans
from backend.qr.codes import current_code
from backend.stations.calendar import today_in_china
from tests.conftest import redis_test_url

REDIS_TEST_URL = redis_test_url(6)


@pytest.fixture
def in_redis(app):
    app.config["REDIS_URL"] = REDIS_TEST_URL
    client = redis.Redis.from_url(REDIS_TEST_URL)
    client.flushdb()
    yield client
    client.close()


def stored(code_id: int) -> int:
    db.session.expire_all()
    return scans.total_scans([code_id]).get(code_id, 0)


def test_scans_wait_in_redis_until_the_worker_folds_them(app, client, world, in_redis):
    code = current_code(world.d1)
    for _ in range(30):
        assert client.get(f"/c/{code.slug}").status_code == 200
    assert stored(code.id) == 0  # not yet folded
    assert in_redis.hget(scans.REDIS_PENDING, f"{code.id}:{today_in_china().isoformat()}") == b"30"
    assert worker.fold_code_scans() == 30
    assert stored(code.id) == 30
    assert not in_redis.exists(scans.REDIS_PENDING) and list(in_redis.scan_iter(scans.REDIS_FOLDING + "*")) == []
    assert worker.fold_code_scans() == 0  # nothing new: nothing added
    client.get(f"/c/{code.slug}")
    assert worker.fold_code_scans() == 1 and stored(code.id) == 31
    # The dashboard reads the folded counts.
    row = db.session.scalar(select(CodeScanDay).where(CodeScanDay.code_id == code.id, CodeScanDay.shard == 0))
    assert row.day == today_in_china() and row.scans == 31


def test_a_fold_that_died_before_its_commit_is_redone(app, world, in_redis):
    code = current_code(world.d1)
    day = today_in_china().isoformat()
    in_redis.hset(scans.REDIS_FOLDING + "dead-before", f"{code.id}:{day}", 7)  # renamed, never added
    assert scans.fold_scans() == 7 and stored(code.id) == 7
    assert not in_redis.exists(scans.REDIS_FOLDING + "dead-before")


def test_a_fold_that_died_after_its_commit_adds_nothing_twice(app, world, in_redis):
    code = current_code(world.d1)
    day = today_in_china().isoformat()
    in_redis.hset(scans.REDIS_FOLDING + "dead-after", f"{code.id}:{day}", 7)
    db.session.add(CodeScanFold(key=scans.REDIS_FOLDING + "dead-after"))  # its commit happened, its DEL did not
    db.session.commit()
    assert scans.fold_scans() == 0 and stored(code.id) == 0
    assert not in_redis.exists(scans.REDIS_FOLDING + "dead-after")


def test_with_redis_down_the_scan_is_counted_in_the_database(app, client, world):
    app.config["REDIS_URL"] = "redis://127.0.0.1:1/0"  # nothing listens there
    code = current_code(world.d1)
    assert client.get(f"/c/{code.slug}").status_code == 200
    assert stored(code.id) == 1
