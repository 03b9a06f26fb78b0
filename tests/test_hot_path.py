"""The submission's hot path stays cheap: every statement it runs can be cached by SQLAlchemy.

A statement SQLAlchemy cannot cache is compiled again on every request (a multi-row VALUES
did that once and made a submission five times slower); the benchmark (``bench/submit.py``)
would show it, these tests say which statement it was.
"""

from __future__ import annotations

import itertools

import pytest

from backend.items import operations
from backend.throttle import _hit_many_statement

ITEM_COLUMNS = (
    "access_key", "client_id", "station_id", "deputy_id", "code_id", "resident_id", "channel", "category", "body",
    "contact_name", "contact_phone", "consented_at", "status", "screening", "screening_label", "is_held",
    "needs_review", "review_reason", "body_fingerprint", "due_at", "created_at", "updated_at", "ref",
)  # fmt: skip


@pytest.mark.parametrize(
    ("events", "tell_resident", "tell_deputy", "throttle_keys"),
    list(itertools.product((1, 2), (False, True), (False, True), (0, 2))),
)
def test_postgresql_submission_statement_is_cacheable(events, tell_resident, tell_deputy, throttle_keys):
    statement = operations._pg_submission_statement(ITEM_COLUMNS, events, tell_resident, tell_deputy, throttle_keys)
    assert statement._generate_cache_key() is not None


@pytest.mark.parametrize(
    "name",
    [
        "_TARGET_QUERY", "_TARGET_AND_RECENT", "_EARLIER_BY_CLIENT_ID", "_RECENT_TO_DEPUTY", "_RECENT_TO_STATION",
        "_STATION_RULES", "_STATION_DEPUTIES", "_DEPUTY_PLACE", "_INSERT_EVENT", "_INSERT_OUTBOX",
        "_QUEUE_DEPUTY_NEW_ITEM",
    ],
)  # fmt: skip
def test_submission_queries_are_cacheable(name):
    assert getattr(operations, name)._generate_cache_key() is not None


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_item_insert_and_throttle_upsert_are_cacheable(dialect):
    assert operations._insert_item_statement(dialect)._generate_cache_key() is not None
    assert _hit_many_statement(2)._generate_cache_key() is not None
