"""The submission's hot path stays cheap: every statement it runs can be cached by SQLAlchemy, and what it
reads of the outbox it reads through an index.

A statement SQLAlchemy cannot cache is compiled again on every request (a multi-row VALUES
did that once and made a submission five times slower); the benchmark (``bench/submit.py``)
would show it, these tests say which statement it was.
"""

from __future__ import annotations

import pytest
from sqlalchemy.dialects import postgresql, sqlite

from backend.extensions import db
from backend.items import operations
from backend.models import utcnow
from backend.outbox import queue
from backend.throttle import _hit_many_statement


@pytest.mark.parametrize(
    ("module", "name"),
    [(operations, "_EARLIER_BY_CLIENT_ID"), (queue, "_DEPUTY_ACCOUNTS"), (queue, "_LAST_NOTICES")],
)
def test_submission_queries_are_cacheable(module, name):
    assert getattr(module, name)._generate_cache_key() is not None


@pytest.mark.parametrize("dialect", [sqlite, postgresql])
def test_item_insert_and_throttle_upsert_are_cacheable(dialect):
    items = operations._items
    assert dialect.insert(items).on_conflict_do_nothing().returning(items.c.id)._generate_cache_key() is not None
    assert _hit_many_statement(2)._generate_cache_key() is not None


def test_an_accounts_recent_notices_are_read_through_its_index(app):
    """Each new item to a deputy with an account asks when that account's last notice went (``_LAST_NOTICES``),
    inside the submission's write transaction; the outbox keeps every row, so a plan that reads the whole table
    grows slower with every notice ever sent. (PostgreSQL is told to avoid a sequential scan where it has any
    other way: on a test's few rows it would otherwise read the table whatever the indexes.)"""
    now = utcnow()
    statement = queue._LAST_NOTICES.params(staff_user_id=1, sent_since=now, queued_since=now)
    with db.engine.connect() as conn:
        sql = str(statement.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SET enable_seqscan = off")
            plan = " ".join(row[0] for row in conn.exec_driver_sql("EXPLAIN " + sql))
        else:
            plan = " ".join(row[3] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql))
        conn.rollback()
    assert "ix_outbox_messages_account_kind_created" in plan, plan
