"""SQLite holds concurrent gunicorn workers: WAL, a busy timeout, and write transactions that
begin IMMEDIATE. Eight processes, each its own app and engine, run read-then-write transactions
on one database file; none is refused with "database is locked", and the transactions come out
serialised. The same workers with a plain BEGIN are refused, and the mechanism is shown step by
step on two connections."""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from flask_migrate import upgrade
from sqlalchemy import event, func, select, text
from sqlalchemy.exc import OperationalError

from backend import create_app, database
from backend.database import SQLITE_BUSY_TIMEOUT_MS
from backend.extensions import db
from tests.conftest import PG_URL

pytestmark = pytest.mark.skipif(bool(PG_URL), reason="about SQLite; TEST_DATABASE_URL selects PostgreSQL")

WORKERS = 8
TRANSACTIONS = 25


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    """A fresh SQLite file migrated to head."""
    url = "sqlite:///" + str(tmp_path / "workers.sqlite3")
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        upgrade()
        db.engine.dispose()
    return url


def _plain_begin(conn, cursor, statement, parameters, context, executemany):
    """Fault injection: the engine's own BEGIN IMMEDIATE sent as a plain (deferred) BEGIN."""
    return ("BEGIN" if statement == "BEGIN IMMEDIATE" else statement), parameters


def worker(url: str, number: int, plain_begin: bool, start, results) -> None:
    """One gunicorn worker's share: read the row count, then write a row recording it; commit."""
    from backend.models import ThrottleCounter, utcnow

    committed, locked, other = 0, 0, []
    try:
        app = create_app({"SQLALCHEMY_DATABASE_URI": url})
        with app.app_context():
            if plain_begin:
                event.listen(db.engine, "before_cursor_execute", _plain_begin, retval=True)
                # The write gate alone would serialise these writers too: take it away as well.
                database._enter_write_gate = lambda conn: None
            start.wait(timeout=60)
            for i in range(TRANSACTIONS):
                try:
                    seen = db.session.scalar(select(func.count()).select_from(ThrottleCounter))
                    db.session.add(ThrottleCounter(key=f"worker{number}-{i}", count=seen, expires_at=utcnow()))
                    db.session.commit()
                    committed += 1
                except OperationalError as exc:
                    db.session.rollback()
                    if "database is locked" in str(exc):
                        locked += 1
                    else:
                        other.append(str(exc))
            db.session.remove()
            db.engine.dispose()
    except Exception as exc:  # reported to the test process
        other.append(f"{type(exc).__name__}: {exc}")
    results.put((number, committed, locked, other))


def run_workers(url: str, plain_begin: bool) -> list[tuple[int, int, int, list[str]]]:
    """Start the worker processes together and collect what each did."""
    # Forked from a server that imported the app once, as gunicorn --preload forks its workers;
    # each worker then builds its own app and engine, as gunicorn workers do without --preload.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["backend", worker.__module__])
    start = context.Barrier(WORKERS)
    results = context.Queue()
    processes = [context.Process(target=worker, args=(url, n, plain_begin, start, results)) for n in range(WORKERS)]
    for process in processes:
        process.start()
    outcomes = sorted(results.get(timeout=120) for _ in processes)
    for process in processes:
        process.join(timeout=30)
    return outcomes


def stored_counts(url: str) -> list[int]:
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        counts = db.session.scalars(text("SELECT count FROM throttle_counters")).all()
        db.session.remove()
        db.engine.dispose()
    return sorted(counts)


def test_engine_connections_use_wal_and_a_busy_timeout(sqlite_url):
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": sqlite_url})
    with app.app_context(), db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == SQLITE_BUSY_TIMEOUT_MS > 0
    with app.app_context():
        db.engine.dispose()


def test_eight_worker_processes_write_without_database_is_locked(sqlite_url):
    outcomes = run_workers(sqlite_url, plain_begin=False)
    assert outcomes == [(n, TRANSACTIONS, 0, []) for n in range(WORKERS)]
    # Each transaction saw exactly the rows committed before it: they ran one after another.
    assert stored_counts(sqlite_url) == list(range(WORKERS * TRANSACTIONS))


def test_with_plain_begin_the_same_workers_get_database_is_locked(sqlite_url):
    """The claim's other half: a plain BEGIN instead of IMMEDIATE (and no write gate), and writers are refused."""
    outcomes = run_workers(sqlite_url, plain_begin=True)
    assert [other for *_, other in outcomes] == [[]] * WORKERS
    locked = sum(locked for _, _, locked, _ in outcomes)
    assert locked > 0
    assert len(stored_counts(sqlite_url)) == WORKERS * TRANSACTIONS - locked


def write_one(path: Path, key: str) -> None:
    """A writer on its own connection, beginning IMMEDIATE as the app does."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO throttle_counters VALUES (?, 0, '2030-01-01 00:00:00.000000')", (key,))
        conn.execute("COMMIT")
    finally:
        conn.close()


def test_a_deferred_begin_that_read_first_fails_at_once_despite_the_busy_timeout(sqlite_url):
    """Why IMMEDIATE: with a plain BEGIN, a reader whose snapshot went stale cannot wait for the lock."""
    path = Path(sqlite_url.removeprefix("sqlite:///"))
    reader = sqlite3.connect(path, isolation_level=None, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)
    writer = sqlite3.connect(path, isolation_level=None, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)
    try:
        assert reader.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        reader.execute("BEGIN")  # deferred: no lock until the first write
        reader.execute("SELECT count(*) FROM throttle_counters").fetchone()
        writer.execute("BEGIN")
        writer.execute("INSERT INTO throttle_counters VALUES ('w', 0, '2030-01-01 00:00:00.000000')")
        writer.execute("COMMIT")
        began = time.monotonic()
        with pytest.raises(sqlite3.OperationalError, match="database is locked"):
            reader.execute("INSERT INTO throttle_counters VALUES ('r', 0, '2030-01-01 00:00:00.000000')")
        assert time.monotonic() - began < 1  # refused at once: the busy timeout was no help
        reader.execute("ROLLBACK")

        # With BEGIN IMMEDIATE the second writer waits for the first instead of failing.
        reader.execute("BEGIN IMMEDIATE")
        reader.execute("SELECT count(*) FROM throttle_counters").fetchone()
        second = threading.Thread(target=write_one, args=(path, "late"))
        second.start()
        time.sleep(0.3)  # the second writer is now queued behind the busy timeout
        assert second.is_alive()
        reader.execute("INSERT INTO throttle_counters VALUES ('r', 1, '2030-01-01 00:00:00.000000')")
        reader.execute("COMMIT")
        second.join(timeout=10)
        keys = {key for (key,) in reader.execute("SELECT key FROM throttle_counters")}
        assert keys == {"w", "r", "late"}
    finally:
        reader.close()
        writer.close()


def test_write_transactions_queue_on_the_gate_until_the_connection_is_checked_in(sqlite_url):
    """The write gate: an exclusive flock beside the database, taken at BEGIN IMMEDIATE, freed at check-in."""
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": sqlite_url})
    gate = os.open(sqlite_url.removeprefix("sqlite:///") + "-writers.lock", os.O_RDWR | os.O_CREAT)
    try:
        with app.app_context():
            with database.read_phase():  # reads do not take it
                db.session.scalar(select(func.count()).select_from(text("throttle_counters")))
                fcntl.flock(gate, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(gate, fcntl.LOCK_UN)
            db.session.execute(text("INSERT INTO throttle_counters VALUES ('k', 1, '2030-01-01 00:00:00.000000')"))
            with pytest.raises(BlockingIOError):  # a write transaction holds it
                fcntl.flock(gate, fcntl.LOCK_EX | fcntl.LOCK_NB)
            db.session.commit()  # commit, then the connection goes back to the pool: free again
            fcntl.flock(gate, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(gate, fcntl.LOCK_UN)
            with database.read_phase(then_write=True):  # a read phase that writes next takes it at its end
                db.session.scalar(select(func.count()).select_from(text("throttle_counters")))
            with pytest.raises(BlockingIOError):
                fcntl.flock(gate, fcntl.LOCK_EX | fcntl.LOCK_NB)
            db.session.rollback()
            fcntl.flock(gate, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(gate, fcntl.LOCK_UN)
            db.engine.dispose()
    finally:
        os.close(gate)
