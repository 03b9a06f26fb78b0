"""Engine setup: SQLite in WAL mode with IMMEDIATE write transactions, so gunicorn workers share it."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine

from backend.extensions import db

SQLITE_BUSY_TIMEOUT_MS = 15000
# How the next SQLite transaction begins; IMMEDIATE unless a caller declared a read phase.
_sqlite_begin: ContextVar[str] = ContextVar("sqlite_begin", default="BEGIN IMMEDIATE")


def _configure_sqlite(engine: Engine) -> None:
    """WAL, a busy timeout, foreign keys, and BEGIN IMMEDIATE for every transaction.

    A deferred BEGIN takes the write lock only at the first write, and a transaction that
    read first then cannot wait for it: SQLite answers "database is locked" at once instead
    of honouring the busy timeout. BEGIN IMMEDIATE takes the lock up front, so concurrent
    writers queue behind the busy timeout.
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
        gate = record.info.get(_GATE)
        if gate is not None:
            fcntl.flock(gate, fcntl.LOCK_UN)

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        begin = _sqlite_begin.get()
        if begin == "BEGIN IMMEDIATE":
            _enter_write_gate(conn)
        conn.exec_driver_sql(begin)


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

    On SQLite with no transaction open yet, the statements inside run in a DEFERRED
    transaction, which is ended when the block exits, so the writes that follow begin
    IMMEDIATE in a short transaction of their own. Whatever was read may change before the
    write: use it only where the write re-checks what matters (a unique key, ON CONFLICT).
    With ``then_write`` the block's connection goes straight on into that IMMEDIATE
    transaction (one connection, no pool round trip): for a caller that always writes next.
    Elsewhere (PostgreSQL, or a transaction already open) it changes nothing.
    """
    if db.session().in_transaction() or db.engine.dialect.name != "sqlite":
        yield
        return
    token = _sqlite_begin.set("BEGIN")
    try:
        yield
        if then_write and db.session().in_transaction():
            connection = db.session.connection()
            connection.exec_driver_sql("COMMIT")  # the reads end here: nothing was written
            _enter_write_gate(connection)
            connection.exec_driver_sql("BEGIN IMMEDIATE")  # the same session transaction writes on
        else:
            db.session.commit()  # ends the read transaction; nothing was written in it
    finally:
        _sqlite_begin.reset(token)


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
