"""Reads from a PostgreSQL streaming replica, decided in one place: ``reads_from_replica()``.

A province's dashboards, monthly exports, public pages and supervisors' county-wide lists are
the heavy reads (issue 16); a hot standby made with ``pg_basebackup -R`` takes them off the
primary, which keeps residents' submissions and staff's actions. With ``DATABASE_REPLICA_URL``
set, the replica is Flask-SQLAlchemy's bind ``replica`` and a view declares that it may read
from it, as a GET that writes declares ``database.writing()``::

    @bp.get("/")
    @login_required(*VIEWERS)          # who is logged in: read from the primary, before the block
    @replica.reads_from_replica()
    def dashboard(): ...

Inside the block every read goes to the replica (``extensions.Session.get_bind``); writes never
do (a flush, an INSERT/UPDATE/DELETE, a ``database.writing()`` block such as an audit row). The
block reads from the primary instead when

- **whoever asks just acted**: a request that changed something (a POST, PUT, PATCH or DELETE
  answered under 400) marks the browser's signed session with the time until which its reads go
  to the primary (``REPLICA_READ_OWN_WRITES_SECONDS``); the mark travels with the cookie, so it
  holds on whichever web host the next request lands. API clients (bearer tokens) keep no cookie:
  the views that read from the replica are pages, and ``/api/v1/stats`` reads from the primary;
- **the replica lags**: its lag is measured at most every ``REPLICA_CHECK_SECONDS`` per process
  (cached between): zero when it has replayed all the WAL the primary had written just before
  (``pg_current_wal_insert_lsn()`` on the primary, ``pg_last_wal_replay_lsn()`` on the replica), else the
  time since the last transaction it replayed (``pg_last_xact_replay_timestamp()``); beyond
  ``REPLICA_MAX_LAG_SECONDS`` it is not used. A server that is not in recovery (a replica
  promoted after a failover, which no longer follows this primary) is not used either;
- **the replica is down**: the measurement or the block's first connection fails (connect
  timeout ``REPLICA_CONNECT_TIMEOUT_SECONDS``); it counts as down until the next measurement.

The block opens its replica connection when it begins, so an outage found then sends the page
to the primary rather than to an error; a replica that dies in the milliseconds after that
fails the one request, as a primary would.

Why a second engine chosen per view rather than per model (``__bind_key__``): the same tables
are read from either server, and what decides is who reads and why, which only the view knows.
Under SQLite the setting is refused at start (there is no replica of an SQLite file to read).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from flask import Flask, current_app, has_app_context, has_request_context, request, session
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from backend.config import _database_uri
from backend.database import READ_METHODS
from backend.extensions import db, replica_reads

log = logging.getLogger(__name__)

BIND = "replica"
# The signed session's key: epoch seconds until which this browser's reads go to the primary.
PRIMARY_UNTIL = "primary_until"
_STATE = "msl_replica_state"
_LAG_SQL = text(
    "SELECT pg_is_in_recovery() AS is_standby,"
    " COALESCE(pg_last_wal_replay_lsn() >= CAST(:primary_lsn AS pg_lsn), false) AS caught_up,"
    " EXTRACT(EPOCH FROM clock_timestamp() - pg_last_xact_replay_timestamp()) AS behind"
)


@dataclass(frozen=True)
class ReplicaState:
    """What the last measurement found: usable or not, the lag in seconds (None: unknown), and why."""

    checked_at: float  # time.monotonic() of the measurement
    is_usable: bool
    lag_seconds: float | None
    reason: str


def configure(app: Flask) -> None:
    """Before ``db.init_app``: the replica as the bind ``replica``; refused at start unless both servers are
    PostgreSQL."""
    url = app.config.get("DATABASE_REPLICA_URL")
    if not url:
        return
    url = _database_uri(url)
    primary = app.config["SQLALCHEMY_DATABASE_URI"]
    if not primary.startswith("postgresql") or not url.startswith("postgresql"):
        raise RuntimeError(
            f"DATABASE_REPLICA_URL is set, but a read replica needs PostgreSQL for both DATABASE_URL and "
            f"DATABASE_REPLICA_URL (DATABASE_URL is {primary.split(':', 1)[0]}, DATABASE_REPLICA_URL is "
            f"{url.split(':', 1)[0]}). SQLite has no streaming replica: unset DATABASE_REPLICA_URL."
        )
    binds = dict(app.config.get("SQLALCHEMY_BINDS") or {})
    binds[BIND] = {
        "url": url,
        "pool_pre_ping": True,
        "connect_args": {"connect_timeout": int(app.config["REPLICA_CONNECT_TIMEOUT_SECONDS"])},
    }
    app.config["SQLALCHEMY_BINDS"] = binds


def init_app(app: Flask) -> None:
    """Mark a browser that just changed something, so that its next reads come from the primary."""
    if not app.config.get("DATABASE_REPLICA_URL"):
        return

    @app.after_request
    def _mark_own_writes(response):
        seconds = float(current_app.config["REPLICA_READ_OWN_WRITES_SECONDS"])
        is_browser = "Authorization" not in request.headers  # an API client keeps no cookie to carry the mark
        if request.method not in READ_METHODS and response.status_code < 400 and seconds > 0 and is_browser:
            session[PRIMARY_UNTIL] = round(time.time() + seconds, 3)
        return response


def replica_engine() -> Engine | None:
    """The replica's engine, when ``DATABASE_REPLICA_URL`` is set."""
    if not current_app.config.get("DATABASE_REPLICA_URL"):
        return None
    return db.engines.get(BIND)


def measure(engine: Engine) -> ReplicaState:
    """Measure the replica's lag now (see the module's docstring); never raises for a replica that is down."""
    now = time.monotonic()
    max_lag = float(current_app.config["REPLICA_MAX_LAG_SECONDS"])
    try:
        with db.engine.connect() as primary:
            primary_lsn = primary.execute(text("SELECT pg_current_wal_insert_lsn()::text")).scalar_one()
        with engine.connect() as replica:
            row = replica.execute(_LAG_SQL, {"primary_lsn": primary_lsn}).one()
    except DBAPIError as exc:
        reason = f"replica unreachable: {str(exc.orig or exc).strip().splitlines()[0]}"
        return ReplicaState(now, False, None, reason)
    if not row.is_standby:
        return ReplicaState(now, False, None, "the replica is not in recovery (promoted?): not following the primary")
    lag = 0.0 if row.caught_up else (float(row.behind) if row.behind is not None else None)
    if lag is None:
        return ReplicaState(now, False, None, "the replica has WAL to replay and has replayed no transaction yet")
    if lag > max_lag:
        return ReplicaState(now, False, lag, f"the replica is {lag:.1f} s behind (REPLICA_MAX_LAG_SECONDS={max_lag:g})")
    return ReplicaState(now, True, lag, "")


def current_state(engine: Engine) -> ReplicaState:
    """The replica's state as this process last measured it, measured again when older than
    ``REPLICA_CHECK_SECONDS``."""
    state: ReplicaState | None = current_app.extensions.get(_STATE)
    every = float(current_app.config["REPLICA_CHECK_SECONDS"])
    if state is None or time.monotonic() - state.checked_at >= every:
        state = measure(engine)
        if not state.is_usable:
            log.warning("reads go to the primary: %s", state.reason)
        current_app.extensions[_STATE] = state
    return state


def _reads_own_writes() -> bool:
    """True while the browser asking changed something less than ``REPLICA_READ_OWN_WRITES_SECONDS`` ago."""
    if not has_request_context():
        return False
    until = session.get(PRIMARY_UNTIL)
    return isinstance(until, (int, float)) and until > time.time()


def _replica_for_this_read() -> Engine | None:
    """The replica's engine when this read may use it (see the module's docstring), else None (the primary)."""
    if not has_app_context():
        return None
    engine = replica_engine()
    if engine is None or _reads_own_writes() or not current_state(engine).is_usable:
        return None
    try:
        db.session.connection(bind_arguments={"bind": engine})  # found down now, not in the middle of the page
    except DBAPIError as exc:
        current_app.extensions[_STATE] = ReplicaState(time.monotonic(), False, None, f"replica unreachable: {exc}")
        log.warning("reads go to the primary: the replica does not answer (%s)", exc.orig or exc)
        return None
    return engine


@contextmanager
def reads_from_replica(when: bool = True) -> Iterator[None]:
    """Reads inside this block come from the replica, when there is one that keeps up and the reader did not just
    act; else from the primary. Also a view decorator (``@replica.reads_from_replica()``), below the login check.
    ``when=False`` reads from the primary (a view whose reader decides: a supervisor's inbox, not a deputy's)."""
    engine = _replica_for_this_read() if when else None
    token = replica_reads.set(engine)
    try:
        yield
    finally:
        replica_reads.reset(token)


def is_reading_from_replica() -> bool:
    """True inside a block whose reads go to the replica."""
    return replica_reads.get() is not None
