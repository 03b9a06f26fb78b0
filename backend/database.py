"""Engine setup: SQLite in WAL mode with IMMEDIATE write transactions, so gunicorn workers share it.

Two ways a SQLite transaction begins:

- **write mode** (the default: POST requests, workers, the CLI): ``BEGIN IMMEDIATE``, which
  takes the write lock (and the write gate below) at once, so that every transaction sees the
  latest data and writers queue instead of failing.
- **read mode** (GET and HEAD requests, and ``read_phase()``): a deferred ``BEGIN``, which takes
  no lock, so that a page that reads for 300 ms does not hold up every resident's submission.
  The first statement that writes (INSERT, UPDATE, DELETE, REPLACE, a SAVEPOINT or a
  ``SELECT … FOR UPDATE``) first upgrades the transaction: the read transaction is ended
  (nothing was written in it), the write gate is entered and ``BEGIN IMMEDIATE`` starts a
  write transaction on the same connection, in which the statement runs. A deferred
  transaction that read first and then wrote would instead be refused at once with
  "database is locked" whenever another connection had written since (the busy timeout does
  not help there); the upgrade never lets that happen. What the reads saw may have changed by
  the time of the write: read mode gives the guarantees of PostgreSQL's READ COMMITTED, which
  is what the code is written for (it runs on PostgreSQL in production).
"""

from __future__ import annotations

import fcntl
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from flask import Flask, has_request_context, request
from sqlalchemy import event
from sqlalchemy.engine import Engine

from backend.extensions import db

SQLITE_BUSY_TIMEOUT_MS = 15000
WRITE_BEGIN = "BEGIN IMMEDIATE"
READ_BEGIN = "BEGIN"
# Set inside read_phase() and write_mode(): how the next SQLite transaction begins, whatever the request.
_sqlite_begin: ContextVar[str | None] = ContextVar("sqlite_begin", default=None)
# Requests that only read, as HTTP means them; their transactions begin in read mode.
READ_METHODS = frozenset({"GET", "HEAD"})
# A connection's info key: set while its transaction is in read mode and has not written yet.
_READING = "msl_reading"
# Statements that write, or lock as if they did (SQLite compiles FOR UPDATE away; see _writes).
_WRITE_SQL = re.compile(r"\s*(INSERT|UPDATE|DELETE|REPLACE|SAVEPOINT|CREATE|DROP|ALTER)\b", re.IGNORECASE)


def _configure_sqlite(engine: Engine) -> None:
    """WAL, a busy timeout, foreign keys, and transactions in write or read mode (see the module's docstring).

    A deferred BEGIN takes the write lock only at the first write, and a transaction that
    read first then cannot wait for it: SQLite answers "database is locked" at once instead
    of honouring the busy timeout. BEGIN IMMEDIATE takes the lock up front, so concurrent
    writers queue behind the busy timeout; a transaction in read mode is upgraded to one
    before it writes.
    """

    gate_path = _write_gate_path(engine)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, record):
        dbapi_connection.isolation_level = None  # let the "begin" hook below issue BEGIN
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()
        if gate_path is not None:
            record.info[_GATE] = os.open(gate_path, os.O_RDWR | os.O_CREAT, 0o600)

    @event.listens_for(engine, "close")
    def _on_close(_dbapi_connection, record):
        gate = record.info.pop(_GATE, None)
        if gate is not None:
            os.close(gate)  # closing the descriptor also releases its lock

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection, record):
        record.info.pop(_READING, None)
        gate = record.info.get(_GATE)
        if gate is not None:
            fcntl.flock(gate, fcntl.LOCK_UN)

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        begin = _begin_statement()
        if begin == WRITE_BEGIN:
            _enter_write_gate(conn)
        conn.exec_driver_sql(begin)
        if begin == READ_BEGIN:
            conn.info[_READING] = True
        else:
            conn.info.pop(_READING, None)

    @event.listens_for(engine, "commit")
    @event.listens_for(engine, "rollback")
    def _on_end(conn):
        conn.info.pop(_READING, None)

    @event.listens_for(engine, "before_cursor_execute")
    def _upgrade_before_writing(conn, _cursor, statement, _parameters, context, _executemany):
        if conn.info.get(_READING) and _writes(statement, context):
            del conn.info[_READING]
            dbapi_connection = conn.connection.dbapi_connection
            dbapi_connection.execute("COMMIT")  # the read transaction ends here: nothing was written in it
            _enter_write_gate(conn)
            dbapi_connection.execute(WRITE_BEGIN)  # the same transaction, for SQLAlchemy, goes on writing


def _begin_statement() -> str:
    """How the transaction about to begin begins: read mode inside read_phase() and for GET/HEAD requests."""
    begin = _sqlite_begin.get()
    if begin is not None:
        return begin
    if has_request_context() and request.method in READ_METHODS:
        return READ_BEGIN
    return WRITE_BEGIN


def _writes(statement: str, context) -> bool:
    """True for a statement that writes, opens a savepoint or selects FOR UPDATE (which SQLite leaves out)."""
    if _WRITE_SQL.match(statement):
        return True
    compiled = getattr(context, "compiled", None)
    return getattr(getattr(compiled, "statement", None), "_for_update_arg", None) is not None


# SQLite's own wait for its write lock (the busy timeout) polls with sleeps of 1, 2, 5, 10 … ms, long
# beside a write transaction of a few hundred microseconds: under load, waiting writers sleep while
# the lock is free. Writers of this app first queue on an exclusive lock on a file beside the
# database (flock, one open file per connection, so threads exclude each other too), which the
# kernel hands to the next waiter as soon as it is released, at the connection's check-in to the
# pool after its commit or rollback. Writers that do not take it (another program) still get the
# busy timeout. A process that dies holding it releases it with its descriptors.
_GATE = "msl_write_gate"


def _write_gate_path(engine: Engine) -> str | None:
    """The lock file beside a file database; None for an in-memory one."""
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return database + "-writers.lock"


def _enter_write_gate(conn) -> None:
    """Wait for this app's other writers (see ``_GATE``) before BEGIN IMMEDIATE."""
    gate = conn.connection.info.get(_GATE)
    if gate is not None:
        fcntl.flock(gate, fcntl.LOCK_EX)


@contextmanager
def read_phase(then_write: bool = False) -> Iterator[None]:
    """Run the reads of an operation that writes afterwards without holding SQLite's write lock.

    On SQLite with no transaction open yet, the statements inside run in read mode (see the
    module's docstring), whatever the request's method. Whatever was read may change before
    the write: use it only where the write re-checks what matters (a unique key, ON CONFLICT).
    Without ``then_write`` the read transaction is ended when the block exits, so that the
    connection goes back to the pool and the writes that follow, if any, begin a short
    transaction of their own. With ``then_write`` the transaction stays open and its first
    write upgrades it on the same connection: for a caller that always writes next.
    Elsewhere (PostgreSQL, or a transaction already open) it changes nothing.
    """
    if db.session().in_transaction() or db.engine.dialect.name != "sqlite":
        yield
        return
    token = _sqlite_begin.set(READ_BEGIN)
    try:
        yield
        if not then_write:
            db.session.commit()  # ends the read transaction; nothing was written in it
    finally:
        _sqlite_begin.reset(token)


@contextmanager
def write_mode() -> Iterator[None]:
    """Transactions begun inside begin in write mode (``BEGIN IMMEDIATE`` on SQLite), whatever the request.

    For a transaction whose reads must already hold the write lock: a lock that serialises
    a read and the write that depends on it (the WeChat token's refresh).
    """
    token = _sqlite_begin.set(WRITE_BEGIN)
    try:
        yield
    finally:
        _sqlite_begin.reset(token)


def holds_write_lock(connection) -> bool:
    """True when ``connection`` (SQLite) is in a transaction that holds the write lock: begun or upgraded to write."""
    return connection.in_transaction() and not connection.info.get(_READING)


def engine_options(uri: str) -> dict:
    """Engine options for the configured database."""
    if uri.startswith("sqlite"):
        return {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}}
    return {"pool_pre_ping": True}


def init_app(app: Flask) -> None:
    """Attach the SQLite hooks to the app's engine when SQLite is in use."""
    with app.app_context():
        engine = db.engine
        if engine.dialect.name == "sqlite":
            _configure_sqlite(engine)
