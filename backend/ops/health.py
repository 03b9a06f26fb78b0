"""Whether this instance can serve: the database answers, its schema is at the migrations' head, workers are alive.

``GET /healthz`` asks nothing of the database (the process answers: restart it if not);
``GET /readyz`` runs ``readiness()``: 200 when every check passes, else 503 with the failed
checks named (send no traffic, or page someone). ``flask doctor`` runs the same checks.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import text

from backend.extensions import db
from backend.models import utcnow
from backend.ops import heartbeat
from backend.timefmt import CHINA


@dataclass(frozen=True)
class Check:
    """One readiness check: its name, whether it passed, and what is wrong in plain words."""

    name: str
    ok: bool
    message: str = ""


@functools.cache
def _migration_heads(directory: str) -> frozenset[str]:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", directory)
    return frozenset(ScriptDirectory.from_config(config).get_heads())


def migration_heads() -> frozenset[str]:
    """The head revision(s) of the migrations this code ships."""
    return _migration_heads(current_app.extensions["migrate"].directory)


def database_revisions() -> frozenset[str]:
    """The revision(s) the database says it is at (empty: never migrated)."""
    try:
        rows = db.session.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    except Exception:  # no alembic_version table: an empty database
        db.session.rollback()
        return frozenset()
    return frozenset(rows)


def check_database() -> Check:
    """The database answers a query."""
    try:
        db.session.execute(text("SELECT 1"))
    except Exception as exc:
        db.session.rollback()
        return Check("database", False, f"数据库无法连接：{type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
    return Check("database", True)


def check_migrations() -> Check:
    """The database's schema revision is the code's head."""
    heads, current = migration_heads(), database_revisions()
    if current == heads:
        return Check("migrations", True)
    if not current:
        return Check("migrations", False, "数据库还没有建表：运行 flask db upgrade。")
    return Check(
        "migrations",
        False,
        f"数据库结构版本 {', '.join(sorted(current))} 不是程序需要的 {', '.join(sorted(heads))}：运行 flask db upgrade。",
    )


def check_workers() -> list[Check]:
    """Each kind of worker was seen within ``WORKER_ALIVE_SECONDS``."""
    checks = []
    for state in heartbeat.states(utcnow()):
        name = f"{state.kind}_worker"
        if state.is_alive:
            checks.append(Check(name, True))
            continue
        seen = (
            f"最后一次见到是{state.last_seen_at.astimezone(CHINA):%Y-%m-%d %H:%M:%S}（北京时间）"
            if state.last_seen_at
            else "从未见到"
        )
        checks.append(Check(name, False, f"{state.label}没有在运行：{seen}。"))
    return checks


def readiness() -> list[Check]:
    """Every readiness check, in order; after a database failure the others are not tried."""
    database = check_database()
    if not database.ok:
        return [database]
    checks = [database, check_migrations(), *check_workers()]
    db.session.rollback()  # only reads: end the transaction
    return checks


@dataclass(frozen=True)
class OutboxBacklog:
    """The notices waiting to go out (pending or held): how many, and since when the oldest waits."""

    waiting: int
    oldest_created_at: object  # datetime | None
    oldest_ref: str | None


def outbox_backlog() -> OutboxBacklog:
    """How many WeChat notices wait, and the oldest of them (the admin page: is the worker keeping up?)."""
    from sqlalchemy import func, select

    from backend.models import Item, OutboxMessage, OutboxStatus

    waiting_statuses = (OutboxStatus.PENDING, OutboxStatus.HELD)
    count = db.session.scalar(select(func.count()).where(OutboxMessage.status.in_(waiting_statuses))) or 0
    oldest = db.session.execute(
        select(OutboxMessage.created_at, Item.ref)
        .outerjoin(Item, Item.id == OutboxMessage.item_id)
        .where(OutboxMessage.status.in_(waiting_statuses))
        .order_by(OutboxMessage.id)  # ids grow with time; the primary key answers it
        .limit(1)
    ).first()
    return OutboxBacklog(count, oldest.created_at if oldest else None, oldest.ref if oldest else None)
