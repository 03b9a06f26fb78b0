"""Scans over time: each scan of a code counted on its China date, and the items each code led to.

Two ways to count, one table to read (``code_scan_days``):

- **With Redis** (``REDIS_URL``, as production runs): a scan is one ``HINCRBY`` on a hash in Redis
  (field ``<code id>:<day>``), well under a millisecond, whatever the database is doing. The outbox
  worker folds the hash into the table every ``SCAN_FOLD_SECONDS`` (``fold_scans``): it renames the
  hash (new scans go to a fresh one), adds its counts in one transaction that also records the
  renamed key (``code_scan_folds``), then deletes the key. A fold that dies before its commit is
  redone from the key; one that dies after it finds its key recorded and only deletes it: every
  scan is added once. The dashboard lags by at most one fold. When Redis cannot be reached, the
  scan is counted in the database instead (never an error page for a resident).
- **Without Redis** (``make run`` on SQLite): the scan adds one to one of ``SHARDS`` rows of its
  code and day, picked at random, in the request's own transaction, so concurrent scans of one
  busy poster rarely wait on one row's lock.

bench/scans.py measures both against issue 16's target (500 scans/s on one code, p99 < 50 ms,
no count lost); bench/README.md has the numbers, which are why the Redis way exists: the
database way missed the target on the shared 2-core machine (each scan a committed transaction).
"""

from __future__ import annotations

import logging
import random
import secrets
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import redis
from flask import current_app
from sqlalchemy import func, select

from backend.database import committed, dialect_insert
from backend.extensions import db
from backend.models import Code, CodeScanDay, CodeScanFold, Deputy, Item, Station, utcnow
from backend.stations.calendar import today_in_china
from backend.supervision.stats import china_midnight
from backend.throttle import redis_client

log = logging.getLogger(__name__)

SHARDS = 8
WEEKS_SHOWN = 12  # the dashboard's weekly chart
REDIS_PENDING = "msl:scans:pending"
REDIS_FOLDING = "msl:scans:folding:"
FOLDS_KEPT = timedelta(days=7)  # a fold's record outlives any key it could be asked about again


def count_scan(code_id: int, now: datetime | None = None) -> None:
    """Count one scan of the code today (China date): in Redis when configured and reachable, else in the
    caller's transaction (the caller commits)."""
    day = today_in_china(now or utcnow())
    if current_app.config.get("REDIS_URL"):
        try:
            redis_client().hincrby(REDIS_PENDING, f"{code_id}:{day.isoformat()}", 1)
            return
        except redis.RedisError:
            log.warning("Redis unreachable; counting the scan in the database", exc_info=True)
    _add_scans(code_id, day, 1, random.randrange(SHARDS))  # noqa: S311 - spreads rows, guards nothing


def _add_scans(code_id: int, day: date, scans: int, shard: int) -> None:
    table = CodeScanDay.__table__
    statement = dialect_insert(table).values(code_id=code_id, day=day, shard=shard, scans=scans)
    statement = statement.on_conflict_do_update(
        index_elements=[table.c.code_id, table.c.day, table.c.shard], set_={"scans": table.c.scans + scans}
    )
    db.session.execute(statement)


def fold_scans() -> int:
    """Add the scans counted in Redis to ``code_scan_days``, each exactly once, committing each batch; how many.

    For the worker (a job of its own: it commits). Batches a dead fold left behind are finished first.
    """
    if not current_app.config.get("REDIS_URL"):
        return 0
    client = redis_client()
    keys = [key.decode() if isinstance(key, bytes) else key for key in client.scan_iter(REDIS_FOLDING + "*")]
    fresh = REDIS_FOLDING + secrets.token_hex(8)
    try:
        client.rename(REDIS_PENDING, fresh)  # atomic: scans after this go to a new hash
        keys.append(fresh)
    except redis.ResponseError:  # no scan since the last fold
        pass
    folded = 0
    for key in sorted(keys):
        folded += _fold_key(client, key)
    return folded


def _fold_key(client, key: str) -> int:
    counts = client.hgetall(key)
    with committed():
        recorded = db.session.execute(
            dialect_insert(CodeScanFold.__table__)
            .values(key=key, folded_at=utcnow())
            .on_conflict_do_nothing(index_elements=["key"])
            .returning(CodeScanFold.__table__.c.key)
        ).scalar()
        added = 0
        if recorded is not None:  # not yet added (a fold that died before its commit left the key as it was)
            for field_, value in counts.items():
                code_id, _, day = (field_.decode() if isinstance(field_, bytes) else field_).partition(":")
                _add_scans(int(code_id), date.fromisoformat(day), int(value), 0)
                added += int(value)
        db.session.execute(CodeScanFold.__table__.delete().where(CodeScanFold.folded_at < utcnow() - FOLDS_KEPT))
    client.delete(key)
    return added


def total_scans(code_ids: list[int]) -> dict[int, int]:
    """All scans ever counted of each code: code id → scans (codes never scanned are absent)."""
    if not code_ids:
        return {}
    rows = db.session.execute(
        select(CodeScanDay.code_id, func.sum(CodeScanDay.scans))
        .where(CodeScanDay.code_id.in_(code_ids))
        .group_by(CodeScanDay.code_id)
    ).all()
    return {code_id: int(scans) for code_id, scans in rows}


def station_codes(station: Station) -> list[Code]:
    """Every code of the station and of its deputies, current and retired: the station's first, then by id."""
    deputies = select(Deputy.id).where(Deputy.station_id == station.id)
    where = (Code.station_id == station.id) | Code.deputy_id.in_(deputies)
    return list(db.session.scalars(select(Code).where(where).order_by(Code.station_id.is_(None), Code.id)))


@dataclass
class CodeGroup:
    """Codes shown together on the scans chart: the station's own and its deputies', or one topic's (专题码)."""

    title: str
    codes: list[Code]
    topic_id: int | None = None


STATION_GROUP_TITLE = "联络站码和代表码"


def code_groups(codes: list[Code]) -> list[CodeGroup]:
    """``codes`` in the chart's groups, each keeping the order given: the station's and deputies' codes first, then
    each topic's codes (current and retired) under the topic's title, oldest topic first. A topic's messages
    answer its own question, not a deputy's poster: mixed in, they would read as one more poster of the station."""
    own = [code for code in codes if code.topic_id is None]
    groups = [CodeGroup(STATION_GROUP_TITLE, own)] if own else []
    by_topic: dict[int, list[Code]] = defaultdict(list)
    for code in codes:
        if code.topic_id is not None:
            by_topic[code.topic_id].append(code)
    for topic_id in sorted(by_topic):
        topic_codes = by_topic[topic_id]
        groups.append(CodeGroup(f"专题：{topic_codes[0].topic.title}", topic_codes, topic_id))
    return groups


@dataclass
class CodeDays:
    """One code's scans and items per China date (only days with either), over a range."""

    code: Code
    scans: dict[date, int] = field(default_factory=dict)
    items: dict[date, int] = field(default_factory=dict)

    @property
    def days(self) -> list[date]:
        """Days with a scan or an item, in order."""
        return sorted(set(self.scans) | set(self.items))


def days_of(codes: list[Code], start: date, end: date) -> list[CodeDays]:
    """Scans and items per code and China date in ``[start, end)``: two grouped reads, whatever the range."""
    if not codes:
        return []
    ids = [code.id for code in codes]
    found = {code.id: CodeDays(code) for code in codes}
    scan_rows = db.session.execute(
        select(CodeScanDay.code_id, CodeScanDay.day, func.sum(CodeScanDay.scans))
        .where(CodeScanDay.code_id.in_(ids), CodeScanDay.day >= start, CodeScanDay.day < end)
        .group_by(CodeScanDay.code_id, CodeScanDay.day)
    ).all()
    for code_id, day, scans in scan_rows:
        found[code_id].scans[day] = int(scans)
    # Items are bucketed by China date here rather than in SQL, where each engine writes time zones its own way.
    item_rows = db.session.execute(
        select(Item.code_id, Item.created_at).where(
            Item.code_id.in_(ids), Item.created_at >= china_midnight(start), Item.created_at < china_midnight(end)
        )
    ).all()
    for code_id, created_at in item_rows:
        day = today_in_china(created_at)
        found[code_id].items[day] = found[code_id].items.get(day, 0) + 1
    return [found[code.id] for code in codes]


def week_start(day: date) -> date:
    """The Monday of ``day``'s week."""
    return day - timedelta(days=day.weekday())


def weekly(code_days: list[CodeDays], weeks: list[date]) -> list[dict]:
    """Per code, scans and items of each week starting at ``weeks`` (Mondays): the dashboard's chart rows."""
    rows = []
    for entry in code_days:
        scans: dict[date, int] = defaultdict(int)
        items: dict[date, int] = defaultdict(int)
        for day, number in entry.scans.items():
            scans[week_start(day)] += number
        for day, number in entry.items.items():
            items[week_start(day)] += number
        rows.append(
            {
                "code": entry.code,
                "weeks": [{"week": week, "scans": scans[week], "items": items[week]} for week in weeks],
            }
        )
    return rows


def last_weeks(today: date | None = None, count: int = WEEKS_SHOWN) -> list[date]:
    """The Mondays of the last ``count`` weeks, this one included, oldest first."""
    this_week = week_start(today or today_in_china())
    return [this_week - timedelta(weeks=back) for back in range(count - 1, -1, -1)]
