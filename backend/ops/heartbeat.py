"""Worker heartbeats: each background worker process says every few seconds that its loop still turns.

The outbox worker (``flask outbox run``) and the poster worker (``flask posters run``) call
``beat`` at the top of each turn of their loop (the poster worker also after each progress
write, since one county batch renders for minutes); it writes at most every
``WORKER_HEARTBEAT_SECONDS`` (5 s): one upsert of the row (kind, host, pid) in a transaction of
its own. A beat from the loop itself, rather than from a thread beside it, means a wedged loop
stops beating: /readyz and the admin page then see the worker as gone (``WORKER_ALIVE_SECONDS``). A worker that stops
cleanly marks its row stopped; one killed simply stops beating. Rows unseen for
``KEEP_DAYS`` are deleted by the next worker that starts.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from backend.database import committed
from backend.extensions import db
from backend.models import WorkerHeartbeat, utcnow

KINDS = {
    "outbox": "微信通知发送进程（flask outbox run）",
    "posters": "批量海报生成进程（flask posters run）",
}
KEEP_DAYS = 7
_last_beat: dict[tuple[str, int], float] = {}  # (kind, pid) → monotonic time of the last write

_table = WorkerHeartbeat.__table__


def _insert():
    dialect = db.session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(_table)


def beat(kind: str, *, force: bool = False) -> bool:
    """Record that this worker process is alive (at most every ``WORKER_HEARTBEAT_SECONDS`` unless ``force``);
    commits its own short transaction. Returns True when it wrote."""
    key = (kind, os.getpid())
    every = float(current_app.config.get("WORKER_HEARTBEAT_SECONDS", 5))
    now_mono = time.monotonic()
    if not force and key in _last_beat and now_mono - _last_beat[key] < every:
        return False
    now = utcnow()
    first = key not in _last_beat
    stmt = _insert().values(
        kind=kind, host=socket.gethostname()[:255], pid=os.getpid(), started_at=now, last_seen_at=now
    )
    changes = {"last_seen_at": stmt.excluded.last_seen_at, "stopped_at": None}
    if first:  # a new process that got the pid of an old one on the same host starts afresh
        changes["started_at"] = stmt.excluded.started_at
    stmt = stmt.on_conflict_do_update(index_elements=[_table.c.kind, _table.c.host, _table.c.pid], set_=changes)
    with committed():
        db.session.execute(stmt)
        if first:
            db.session.execute(delete(_table).where(_table.c.last_seen_at < now - timedelta(days=KEEP_DAYS)))
    _last_beat[key] = now_mono
    return True


def stop(kind: str) -> None:
    """Mark this worker process stopped (it is leaving cleanly); commits."""
    with committed():
        db.session.execute(
            update(_table)
            .where(_table.c.kind == kind, _table.c.host == socket.gethostname()[:255], _table.c.pid == os.getpid())
            .values(stopped_at=utcnow())
        )
    _last_beat.pop((kind, os.getpid()), None)


def alive_seconds() -> float:
    """A worker seen within this many seconds is alive (``WORKER_ALIVE_SECONDS``, a minute)."""
    return float(current_app.config.get("WORKER_ALIVE_SECONDS", 60))


@dataclass(frozen=True)
class WorkerState:
    """What the pages say about one kind of worker."""

    kind: str
    label: str
    last_seen_at: datetime | None
    processes: int  # alive now (seen within WORKER_ALIVE_SECONDS, not stopped)
    is_alive: bool


def states(now: datetime | None = None) -> list[WorkerState]:
    """Each kind of worker: when one was last seen, and how many are alive now."""
    now = now or utcnow()
    since = now - timedelta(seconds=alive_seconds())
    last = dict(
        db.session.execute(select(_table.c.kind, func.max(_table.c.last_seen_at)).group_by(_table.c.kind)).all()
    )
    alive = dict(
        db.session.execute(
            select(_table.c.kind, func.count())
            .where(_table.c.last_seen_at >= since, _table.c.stopped_at.is_(None))
            .group_by(_table.c.kind)
        ).all()
    )
    return [
        WorkerState(kind, label, last.get(kind), alive.get(kind, 0), alive.get(kind, 0) > 0)
        for kind, label in KINDS.items()
    ]


def recent_processes(now: datetime | None = None, hours: int = 24) -> list[WorkerHeartbeat]:
    """The worker processes seen in the last ``hours``, newest first (the admin page's table)."""
    now = now or utcnow()
    return list(
        db.session.scalars(
            select(WorkerHeartbeat)
            .where(WorkerHeartbeat.last_seen_at >= now - timedelta(hours=hours))
            .order_by(WorkerHeartbeat.last_seen_at.desc())
            .limit(50)
        )
    )
