"""How each database transaction begins, decided in one place from what the unit of work means to do.

SQLite, the embedded default, lets one connection write at a time, and ``make run`` puts several
processes on one file (gunicorn's workers, the outbox and poster workers). Its connections run
in WAL mode with a busy timeout, and every transaction begins in one of two ways:

- **write** — a POST, PUT, PATCH or DELETE request, a worker's job, a CLI command: ``BEGIN
  IMMEDIATE`` takes the write lock at once, so concurrent writers queue in SQLite's busy
  handler instead of failing, and what the transaction reads is the latest.
- **read** — a GET or HEAD request: a deferred ``BEGIN`` under ``PRAGMA query_only``. It takes no
  lock, so a long page holds up no resident's submission, and a write inside it fails at once
  ("attempt to write a readonly database"), in the tests as anywhere else.

Two declarations change that, both read by the one hook below (``_begin_mode``):

- ``reading()``: the reads of a unit that writes, before its slow work (a login's password
  hash, an import's parsing, a resident's photos, a call to WeChat). They run in a read
  transaction that ends with the block; the writes that follow begin a short write transaction.
- ``writing()``: a read unit that must write (a code's scan count, the OAuth callback, an audit
  row of a refusal, a staff session's last-seen mark, the WeChat token's refresh). Its read
  transaction is ended and the block's transaction begins as a write.

Why decide at BEGIN, from intent: a deferred transaction that has read and then writes is
refused "database is locked" at once whenever another connection wrote meanwhile; the busy
timeout does not apply to it. So the mode must be known before the first statement, and the
statements themselves say it too late (and a regular expression over SQL text misses some, such
as ``WITH … UPDATE``). Making read transactions ``query_only`` turns a forgotten declaration into
an error in every test run rather than a rare "database is locked" under load.

Before this there was a file lock in front of SQLite's own (writers woke sooner than SQLite's
sleeping busy handler lets them) and read transactions upgraded at their first write: both
served a throughput ratio the product does not need (PRODUCT.md's scale is about 0.1 submissions
a second per province; ``bench/README.md`` has the numbers of the simpler way).

One thread must never wait for itself: a thread whose transaction holds the write lock and
begins a write on a second connection would wait out the busy timeout, then fail. That is refused
at once (RuntimeError); the one writer with connections of its own, the WeChat token store, writes
through the thread's write transaction instead (``write_transaction_of_this_thread``).

PostgreSQL (production) needs none of this: MVCC and READ COMMITTED, which the code is written
for. There ``reading()`` and ``writing()`` change nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from flask import Flask, g, has_app_context, has_request_context, request
from sqlalchemy import event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from backend.extensions import db, replica_reads

SQLITE_BUSY_TIMEOUT_MS = 15000
READ = "BEGIN"
WRITE = "BEGIN IMMEDIATE"
# Requests that only read, as HTTP means them.
READ_METHODS = frozenset({"GET", "HEAD"})
# Set by reading() and writing(): how the transactions begun inside begin, whatever the request.
_declared: ContextVar[str | None] = ContextVar("msl_declared_mode", default=None)
# The connection whose transaction holds SQLite's write lock in this thread, if any.
_lock_holder: ContextVar[Connection | None] = ContextVar("msl_sqlite_lock_holder", default=None)
# A connection's info keys: how its open transaction began; whether query_only is on.
_MODE = "msl_mode"
_QUERY_ONLY = "msl_query_only"


def _begin_mode() -> str:
    """READ or WRITE for the transaction about to begin: as declared, else by the request's method."""
    declared = _declared.get()
    if declared is not None:
        return declared
    if has_request_context() and request.method in READ_METHODS:
        return READ
    return WRITE


def _configure_sqlite(engine: Engine) -> None:
    """WAL, a busy timeout, foreign keys, and each transaction begun as ``_begin_mode`` says."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None  # the "begin" hook below issues BEGIN
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        mode = _begin_mode()
        query_only = mode == READ
        dbapi_connection = conn.connection.dbapi_connection  # straight to sqlite3: two statements per transaction
        if conn.info.get(_QUERY_ONLY, False) != query_only:
            dbapi_connection.execute(f"PRAGMA query_only = {int(query_only)}")
            conn.info[_QUERY_ONLY] = query_only
        if mode == WRITE and write_transaction_of_this_thread() is not None:
            raise RuntimeError(
                "this thread already holds SQLite's write lock in another transaction and would wait for "
                "itself: end that transaction (commit) before this one (see backend/database.py)"
            )
        dbapi_connection.execute(mode)
        conn.info[_MODE] = mode
        if mode == WRITE:
            _lock_holder.set(conn)

    @event.listens_for(engine, "commit")
    @event.listens_for(engine, "rollback")
    def _on_end(conn):
        conn.info.pop(_MODE, None)
        if _lock_holder.get() is conn:
            _lock_holder.set(None)


def write_transaction_of_this_thread() -> Connection | None:
    """On SQLite, the connection whose open transaction holds the write lock in this thread; else None.

    A second connection of the same thread that wants to write must use it (the WeChat token store
    does): it could only wait for it.
    """
    holder = _lock_holder.get()
    return holder if holder is not None and not holder.closed and holder.in_transaction() else None


def _in_read_transaction(session: Session) -> bool:
    """True when ``session`` (SQLite) is in a live transaction begun as a read."""
    transaction = session.get_transaction()
    return transaction is not None and transaction.is_active and session.connection().info.get(_MODE) == READ


def _end_read_transaction(session: Session) -> None:
    """End a read transaction; what it loaded stays loaded (as on PostgreSQL, where it goes on)."""
    expire = session.expire_on_commit
    session.expire_on_commit = False
    try:
        session.commit()  # nothing to write: query_only would have refused it
    finally:
        session.expire_on_commit = expire


def _is_sqlite() -> bool:
    return db.engine.dialect.name == "sqlite"


@contextmanager
def reading() -> Iterator[None]:
    """Run the reads of a unit that writes in a read transaction that ends with the block (SQLite).

    For the reads before slow work: the work after the block runs with no transaction open
    and the writes after it begin a short write transaction of their own. The block cannot
    write (``query_only``). What it read may change before the writes: use it where the
    write re-checks what matters (a unique key, ON CONFLICT, a count in the same statement).
    Objects it loaded stay loaded. Inside a transaction already open (a GET's, or one that
    wrote already) the block changes nothing for the session; connections of their own
    begun inside (the WeChat token store's) read. Outside an app context it only declares that.
    """
    session = db.session() if has_app_context() else None
    opened_here = session is not None and not session.in_transaction()
    token = _declared.set(READ)
    try:
        yield
        if opened_here and _is_sqlite() and _in_read_transaction(session):
            _end_read_transaction(session)
    finally:
        _declared.reset(token)


@contextmanager
def writing() -> Iterator[None]:
    """Transactions begun inside this block write (``BEGIN IMMEDIATE`` on SQLite), whatever the request.

    For a read unit (a GET) that must write: a read transaction the session has open is ended
    first (make the changes inside the block), and the caller commits. Also a view decorator
    (``@database.writing()``) for a GET that writes from its start. Inside a block that reads from
    the replica (``replica.reads_from_replica``) it reads from the primary.
    """
    if has_app_context() and _is_sqlite() and _in_read_transaction(db.session()):
        _end_read_transaction(db.session())
    if has_request_context():
        g.setdefault(_DECLARED_WRITE, True)  # a GET that writes commits at its commit point
    token = _declared.set(WRITE)
    primary = replica_reads.set(None)  # a write reads what it changes from the primary (backend/replica.py)
    try:
        yield
    finally:
        replica_reads.reset(primary)
        _declared.reset(token)


@contextmanager
def committed() -> Iterator[None]:
    """One unit of work outside a request (a worker's job, a heartbeat), committed once at the end of the block;
    any error rolls it back and goes on up. A request's work commits at ``commit_point`` instead."""
    try:
        yield
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise


def lock_until_commit(connection, name: str) -> None:
    """Serialise one kind of work (``name``) across every process until ``connection``'s transaction ends.

    PostgreSQL: a transaction-level advisory lock on ``name``. SQLite: nothing to take, for a
    write transaction already holds the database's one write lock (``BEGIN IMMEDIATE``).
    """
    if connection.dialect.name == "postgresql":
        lock_id = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
        connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": lock_id})


def dialect_insert(table, dialect: str | None = None):
    """An INSERT that takes ``on_conflict_do_nothing/do_update``, in ``dialect`` (by name; the app engine's if none)."""
    insert = postgresql.insert if (dialect or db.engine.dialect.name) == "postgresql" else sqlite.insert
    return insert(table)


def engine_options(uri: str) -> dict:
    """Engine options for the configured database."""
    if uri.startswith("sqlite"):
        return {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}}
    return {"pool_pre_ping": True}


def init_app(app: Flask) -> None:
    """Attach the SQLite hooks to the app's engine when SQLite is in use."""
    with app.app_context():
        engine = db.engine
        if engine.dialect.name != "sqlite":
            return
        _configure_sqlite(engine)

    @app.teardown_request
    def _end_read(_exc):
        # A request's read transaction ends with it (the app context's end rolls back the rest).
        # Tests keep one app context over several requests: the next one must not inherit it.
        session = db.session()
        if _in_read_transaction(session):
            session.rollback()


# --- the request's one commit point ----------------------------------------------------------------

_KEPT = "writes_kept_through_error"
_DECLARED_WRITE = "declared_write"
_KEPT_LOST = "writes_kept_lost"


def keep_through_error(write: Callable[[], object]) -> None:
    """Have ``write`` (already made in this request's transaction) made again if that transaction is rolled back.

    For the few writes that must outlive an error answer: the audit row of a refusal (a 404 for
    an item of another station) and the count of a missed lookup. The request's commit point
    (``commit_point``) rolls an error answer back and then makes these writes again and
    commits them: the error path keeps them, in one place, and no view commits early for them.
    Outside a request (a CLI command, a worker's job) the caller's own commit keeps them.
    """
    if has_request_context():
        g.setdefault(_KEPT, []).append(write)


def commit_point(response):
    """The request's one commit: an answer under 400 commits what the operations flushed; an error answer
    rolls back and keeps only the writes made with ``keep_through_error`` (so does a rollback a view made
    itself before answering, e.g. to show a form again as it was). A GET, HEAD or OPTIONS commits only
    when it declared a write (``writing()``): otherwise it is a read, and is rolled back."""
    session = db.session()
    if request.method in ("GET", "HEAD", "OPTIONS") and not g.pop(_DECLARED_WRITE, False):
        session.rollback()  # a read: whatever a view changed on a loaded object for showing it is not kept
        return response
    if response.status_code >= 400:
        session.rollback()
    kept = g.pop(_KEPT, []) if (response.status_code >= 400 or g.pop(_KEPT_LOST, False)) else []
    if kept:
        with writing():
            for write in kept:
                write()
    session.commit()
    return response


def _forget_kept(_session) -> None:
    if has_request_context():
        g.pop(_KEPT, None)  # committed: nothing to make again
        g.pop(_KEPT_LOST, None)


def _kept_lost(_session) -> None:
    if has_request_context() and g.get(_KEPT):
        g.setdefault(_KEPT_LOST, True)


def init_commit_point(app: Flask) -> None:
    """Make ``commit_point`` the request's one commit (views and the operations they call only flush)."""
    if not getattr(init_commit_point, "_listening", False):
        event.listen(Session, "after_commit", _forget_kept)
        event.listen(Session, "after_rollback", _kept_lost)
        init_commit_point._listening = True
    app.after_request(commit_point)


def commit_before_slow_work() -> None:
    """Commit what the request did so far, before it calls WeChat (seconds, over the network).

    The one place a view's transaction ends early, on purpose: on SQLite a POST's transaction holds
    the one write lock from its first statement (the login check), and nobody may hold it while
    WeChat answers. What follows begins a transaction of its own, which the commit point ends.
    """
    session = db.session()
    expire = session.expire_on_commit
    session.expire_on_commit = False  # what was loaded stays loaded, as after a read
    try:
        session.commit()
    finally:
        session.expire_on_commit = expire
