"""The submission's hot path stays cheap: every statement it runs can be cached by SQLAlchemy.

A statement SQLAlchemy cannot cache is compiled again on every request (a multi-row VALUES
did that once and made a submission five times slower); the benchmark (``bench/submit.py``)
would show it, these tests say which statement it was.
"""

from __future__ import annotations

import pytest
from sqlalchemy.dialects import postgresql, sqlite

from backend.items import operations
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
