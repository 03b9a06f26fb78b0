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


def worker(url: str, number: int, plain_begin: bool, start, results, read_mode: bool = False) -> None:
    """One gunicorn worker's share: read the row count, then write a row recording it; commit.

    With ``read_mode`` each transaction runs as a GET request's does (deferred, upgraded at its write)."""
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
                    with app.test_request_context(method="GET" if read_mode else "POST"):
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


def run_workers(url: str, plain_begin: bool, read_mode: bool = False) -> list[tuple[int, int, int, list[str]]]:
    """Start the worker processes together and collect what each did."""
    # Forked from a server that imported the app once, as gunicorn --preload forks its workers;
    # each worker then builds its own app and engine, as gunicorn workers do without --preload.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["backend", worker.__module__])
    start = context.Barrier(WORKERS)
    results = context.Queue()
    processes = [
        context.Process(target=worker, args=(url, n, plain_begin, start, results, read_mode)) for n in range(WORKERS)
    ]
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


def test_in_read_mode_the_same_workers_are_upgraded_at_their_write_and_never_locked(sqlite_url):
    """GET requests begin deferred; each transaction's first write upgrades it, so none is refused."""
    outcomes = run_workers(sqlite_url, plain_begin=False, read_mode=True)
    assert outcomes == [(n, TRANSACTIONS, 0, []) for n in range(WORKERS)]
    counts = stored_counts(sqlite_url)
    assert len(counts) == WORKERS * TRANSACTIONS
    # What a transaction read before its write may be older than the write (READ COMMITTED), never newer.
    assert all(0 <= seen < WORKERS * TRANSACTIONS for seen in counts)


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
            with database.read_phase(then_write=True):  # a read phase that writes next takes it at its first write
                db.session.scalar(select(func.count()).select_from(text("throttle_counters")))
            fcntl.flock(gate, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(gate, fcntl.LOCK_UN)
            db.session.execute(text("UPDATE throttle_counters SET count = 2"))
            with pytest.raises(BlockingIOError):
                fcntl.flock(gate, fcntl.LOCK_EX | fcntl.LOCK_NB)
            db.session.rollback()
            fcntl.flock(gate, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(gate, fcntl.LOCK_UN)
            db.engine.dispose()
    finally:
        os.close(gate)


def _statements(engine) -> list[str]:
    """Every statement the engine sends from now on (appended as sent)."""
    sent: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def record(conn, cursor, statement, parameters, context, executemany):
        sent.append(statement if statement.startswith("BEGIN") else statement.split()[0].upper())

    return sent


def test_a_get_request_reads_without_the_write_lock_and_writes_after_upgrading(sqlite_url):
    """A page that reads for long holds up no writer; its first write waits for the lock like any other."""
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": sqlite_url})
    path = Path(sqlite_url.removeprefix("sqlite:///"))
    gate = os.open(str(path) + "-writers.lock", os.O_RDWR | os.O_CREAT)
    try:
        with app.test_request_context("/supervision/", method="GET"):
            sent = _statements(db.engine)
            db.session.scalar(select(func.count()).select_from(text("throttle_counters")))
            assert sent == ["BEGIN", "SELECT"]  # deferred
            fcntl.flock(gate, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the gate is free
            fcntl.flock(gate, fcntl.LOCK_UN)
            began = time.monotonic()
            write_one(path, "submitted-meanwhile")  # a resident's submission while the page reads
            assert time.monotonic() - began < 1
            # The page now writes (a scan count, a throttle hit): the transaction is upgraded first,
            # although another connection wrote after this one read (a plain deferred write would fail).
            db.session.execute(text("INSERT INTO throttle_counters VALUES ('page', 1, '2030-01-01 00:00:00.000000')"))
            with pytest.raises(BlockingIOError):  # it holds the gate now
                fcntl.flock(gate, fcntl.LOCK_EX | fcntl.LOCK_NB)
            late = threading.Thread(target=write_one, args=(path, "late"))
            late.start()
            time.sleep(0.3)
            assert late.is_alive()  # and the write lock: the next writer waits
            db.session.commit()
            late.join(timeout=10)
            assert not late.is_alive()
        with app.app_context():
            keys = set(db.session.scalars(text("SELECT key FROM throttle_counters")))
            assert keys == {"submitted-meanwhile", "page", "late"}
            db.session.remove()
            db.engine.dispose()
    finally:
        os.close(gate)


def test_a_post_request_begins_immediate(sqlite_url):
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": sqlite_url})
    with app.test_request_context("/api/v1/items", method="POST"):
        sent = _statements(db.engine)
        db.session.scalar(select(func.count()).select_from(text("throttle_counters")))
        assert sent == ["BEGIN IMMEDIATE", "SELECT"]
        db.session.rollback()
        with database.read_phase():  # unless the operation declares a read phase
            db.session.scalar(select(func.count()).select_from(text("throttle_counters")))
        assert sent[2:] == ["BEGIN", "SELECT"]
        db.engine.dispose()


@pytest.mark.parametrize(
    "write",
    [
        pytest.param(lambda: db.session.execute(text("UPDATE throttle_counters SET count = 3")), id="update"),
        pytest.param(lambda: db.session.execute(text("DELETE FROM throttle_counters")), id="delete"),
        pytest.param(  # SAVEPOINT is sent with the next statement
            lambda: (db.session.begin_nested(), db.session.execute(text("SELECT 1"))), id="savepoint"
        ),
        pytest.param(
            lambda: db.session.execute(select(text("1")).select_from(text("throttle_counters")).with_for_update()),
            id="select-for-update",
        ),
    ],
)
def test_read_mode_upgrades_before_every_kind_of_write(sqlite_url, write):
    """Each statement that writes or locks is preceded by the upgrade: COMMIT, then BEGIN IMMEDIATE."""
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": sqlite_url})
    with app.test_request_context("/", method="GET"):
        sent = _statements(db.engine)
        upgrades: list[str] = []
        real_enter = database._enter_write_gate
        database._enter_write_gate = lambda conn: (upgrades.append("gate"), real_enter(conn))
        try:
            db.session.scalar(select(func.count()).select_from(text("throttle_counters")))
            assert not upgrades
            write()
            assert upgrades == ["gate"]
            db.session.execute(text("UPDATE throttle_counters SET count = 4"))
            assert upgrades == ["gate"]  # once per transaction
        finally:
            database._enter_write_gate = real_enter
        assert sent[:2] == ["BEGIN", "SELECT"]
        db.session.rollback()
        db.engine.dispose()
