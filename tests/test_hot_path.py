"""The submission's hot path stays cheap: every statement it runs can be cached by SQLAlchemy.

A statement SQLAlchemy cannot cache is compiled again on every request (a multi-row VALUES
did that once and made a submission five times slower); the benchmark (``bench/submit.py``)
would show it, these tests say which statement it was.
"""

from __future__ import annotations

import pytest
from sqlalchemy.dialects import postgresql, sqlite

from backend.items import operations
from backend.throttle import _hit_many_statement


@pytest.mark.parametrize("name", ["_EARLIER_BY_CLIENT_ID", "_QUEUE_DEPUTY_NEW_ITEM"])
def test_submission_queries_are_cacheable(name):
    assert getattr(operations, name)._generate_cache_key() is not None


@pytest.mark.parametrize("dialect", [sqlite, postgresql])
def test_item_insert_and_throttle_upsert_are_cacheable(dialect):
    items = operations._items
    assert dialect.insert(items).on_conflict_do_nothing().returning(items.c.id)._generate_cache_key() is not None
    assert _hit_many_statement(2)._generate_cache_key() is not None
