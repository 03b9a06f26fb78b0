"""SQLite holds ``make run``'s processes on one file: WAL, a busy timeout, and each transaction begun
as its unit of work means it (``backend.database``): writes ``BEGIN IMMEDIATE``, reads a deferred
``BEGIN`` under ``query_only``. Eight processes, each its own app and engine, run read-then-write
transactions on one database file; none is refused with "database is locked", and they come out
serialised. The same workers with a plain BEGIN are refused, and why is shown on two connections.

No clock: whether a connection holds the write lock is asked of SQLite itself, by a probe that
tries ``BEGIN IMMEDIATE`` with no busy timeout at all."""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path

import pytest
from flask_migrate import upgrade
from sqlalchemy import event, func, select, text
from sqlalchemy.exc import OperationalError

from backend import create_app, database
from backend.database import SQLITE_BUSY_TIMEOUT_MS
from backend.extensions import db
from backend.models import ThrottleCounter, utcnow
from tests.conftest import PG_URL

pytestmark = pytest.mark.skipif(bool(PG_URL), reason="about SQLite; TEST_DATABASE_URL selects PostgreSQL")

WORKERS = 8
TRANSACTIONS = 25
ROW = "INSERT INTO throttle_counters VALUES (:key, 1, '2030-01-01 00:00:00.000000')"


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    """A fresh SQLite file migrated to head."""
    url = "sqlite:///" + str(tmp_path / "workers.sqlite3")
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        upgrade()
        db.engine.dispose()
    return url


@pytest.fixture
def sqlite_app(sqlite_url):
    """An app of its own on that file (the session's app may be on PostgreSQL or another file)."""
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": sqlite_url})
    yield app
    with app.app_context():
        db.engine.dispose()


class PlainBegin(sqlite3.Connection):
    """Fault injection: a sqlite3 connection that sends the app's BEGIN IMMEDIATE as a plain (deferred) BEGIN."""

    def execute(self, sql, *args):
        return super().execute("BEGIN" if sql == "BEGIN IMMEDIATE" else sql, *args)


def worker(url: str, number: int, plain_begin: bool, start, results, method: str = "POST") -> None:
    """One gunicorn worker's share: read the row count, then write a row recording it; commit.

    As a GET request the transaction declares its write first (``database.writing``), as a GET that must write does."""
    committed, locked, other = 0, 0, []
    try:
        config = {"SQLALCHEMY_DATABASE_URI": url}
        if plain_begin:
            options = database.engine_options(url)
            config["SQLALCHEMY_ENGINE_OPTIONS"] = options | {
                "connect_args": options["connect_args"] | {"factory": PlainBegin}
            }
        app = create_app(config)
        with app.app_context():
            start.wait(timeout=60)
            for i in range(TRANSACTIONS):
                try:
                    with app.test_request_context(method=method), database.writing():
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


def run_workers(url: str, plain_begin: bool, method: str = "POST") -> list[tuple[int, int, int, list[str]]]:
    """Start the worker processes together and collect what each did."""
    # Forked from a server that imported the app once, as gunicorn --preload forks its workers;
    # each worker then builds its own app and engine, as gunicorn workers do without --preload.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["backend", worker.__module__])
    start = context.Barrier(WORKERS)
    results = context.Queue()
    processes = [
        context.Process(target=worker, args=(url, n, plain_begin, start, results, method)) for n in range(WORKERS)
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


def path_of(url: str) -> Path:
    return Path(url.removeprefix("sqlite:///"))


def write_lock_is_free(path: Path) -> bool:
    """Ask SQLite: a connection with no busy timeout takes the write lock at once, or is refused at once."""
    probe = sqlite3.connect(path, isolation_level=None, timeout=0)
    try:
        probe.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        assert "database is locked" in str(exc)
        return False
    finally:
        if probe.in_transaction:
            probe.execute("ROLLBACK")
        probe.close()
    return True


def write_one(path: Path, key: str) -> None:
    """Another process's write on its own connection, beginning IMMEDIATE as the app's writes do."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(ROW.replace(":key", "?"), (key,))
        conn.execute("COMMIT")
    finally:
        conn.close()


def _statements(engine) -> list[str]:
    """Every statement SQLite runs for the engine's connections opened from now on, as SQLite traces it:
    BEGINs and PRAGMAs whole, the others by their first word."""
    sent: list[str] = []

    def record(statement: str) -> None:
        sent.append(statement if statement.startswith(("BEGIN", "PRAGMA")) else statement.split()[0].upper())

    @event.listens_for(engine, "connect")
    def trace(dbapi_connection, _record):
        dbapi_connection.set_trace_callback(record)

    return sent


def test_engine_connections_use_wal_and_a_busy_timeout(sqlite_app):
    with sqlite_app.app_context(), db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == SQLITE_BUSY_TIMEOUT_MS > 0


def test_eight_worker_processes_write_without_database_is_locked(sqlite_url):
    outcomes = run_workers(sqlite_url, plain_begin=False)
    assert outcomes == [(n, TRANSACTIONS, 0, []) for n in range(WORKERS)]
    # Each transaction saw exactly the rows committed before it: they ran one after another.
    assert stored_counts(sqlite_url) == list(range(WORKERS * TRANSACTIONS))


def test_get_requests_that_declare_their_write_are_never_locked(sqlite_url):
    """GET requests read without the lock; one that writes says so first, and is a write like any other."""
    outcomes = run_workers(sqlite_url, plain_begin=False, method="GET")
    assert outcomes == [(n, TRANSACTIONS, 0, []) for n in range(WORKERS)]
    assert stored_counts(sqlite_url) == list(range(WORKERS * TRANSACTIONS))


def test_with_plain_begin_the_same_workers_get_database_is_locked(sqlite_url):
    """The claim's other half: a plain BEGIN instead of IMMEDIATE, and writers are refused."""
    outcomes = run_workers(sqlite_url, plain_begin=True)
    assert [other for *_, other in outcomes] == [[]] * WORKERS
    locked = sum(locked for _, _, locked, _ in outcomes)
    assert locked > 0
    assert len(stored_counts(sqlite_url)) == WORKERS * TRANSACTIONS - locked


def test_a_deferred_transaction_that_read_first_cannot_write_after_another_did(sqlite_url):
    """Why a transaction's mode is decided at its BEGIN: a deferred one that read, then writes after
    another connection wrote, is refused — even with the other connection gone and the lock free,
    so no busy timeout could help. BEGIN IMMEDIATE has no such moment."""
    path = path_of(sqlite_url)
    reader = sqlite3.connect(path, isolation_level=None, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)
    try:
        assert reader.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        reader.execute("BEGIN")  # deferred: no lock until the first write
        reader.execute("SELECT count(*) FROM throttle_counters").fetchone()
        write_one(path, "w")  # another process writes and is gone
        assert write_lock_is_free(path)
        with pytest.raises(sqlite3.OperationalError, match="database is locked"):
            reader.execute(ROW.replace(":key", "?"), ("r",))
        reader.execute("ROLLBACK")

        reader.execute("BEGIN IMMEDIATE")  # the write lock from the start: nobody writes in between
        reader.execute("SELECT count(*) FROM throttle_counters").fetchone()
        assert not write_lock_is_free(path)  # another writer would queue behind the busy timeout
        reader.execute(ROW.replace(":key", "?"), ("r",))
        reader.execute("COMMIT")
        assert {key for (key,) in reader.execute("SELECT key FROM throttle_counters")} == {"w", "r"}
    finally:
        reader.close()


def test_a_post_request_begins_immediate(sqlite_app, sqlite_url):
    with sqlite_app.test_request_context("/api/v1/items", method="POST"):
        sent = _statements(db.engine)
        db.session.scalar(select(func.count()).select_from(ThrottleCounter))
        assert sent == ["BEGIN IMMEDIATE", "SELECT"]
        assert not write_lock_is_free(path_of(sqlite_url))
        db.session.rollback()
        assert write_lock_is_free(path_of(sqlite_url))


def test_a_get_request_reads_without_the_lock_and_cannot_write(sqlite_app, sqlite_url):
    """A page that reads for long holds up no writer; a write it did not declare fails at once, in every test."""
    path = path_of(sqlite_url)
    with sqlite_app.test_request_context("/supervision/", method="GET"):
        sent = _statements(db.engine)
        db.session.scalar(select(func.count()).select_from(ThrottleCounter))
        assert sent == ["PRAGMA query_only = 1", "BEGIN", "SELECT"]
        assert write_lock_is_free(path)
        write_one(path, "submitted-meanwhile")  # a resident's submission while the page reads
        with pytest.raises(OperationalError, match="readonly database"):
            db.session.execute(text(ROW), {"key": "page"})
        db.session.rollback()
    with sqlite_app.app_context():
        assert set(db.session.scalars(text("SELECT key FROM throttle_counters"))) == {"submitted-meanwhile"}


def test_a_get_that_declares_its_write_writes_after_another_connection_did(sqlite_app, sqlite_url):
    """``writing()`` ends the page's read transaction and begins a write one: the moment that refuses a
    deferred transaction (above) never comes."""
    path = path_of(sqlite_url)
    with sqlite_app.test_request_context("/c/slug", method="GET"):
        sent = _statements(db.engine)
        db.session.scalar(select(func.count()).select_from(ThrottleCounter))
        write_one(path, "submitted-meanwhile")
        with database.writing():
            db.session.execute(text(ROW), {"key": "scan"})
            assert not write_lock_is_free(path)
            db.session.commit()
        assert write_lock_is_free(path)
        db.session.scalar(select(func.count()).select_from(ThrottleCounter))  # back to reading
        assert sent == [
            "PRAGMA query_only = 1", "BEGIN", "SELECT", "COMMIT",
            "PRAGMA query_only = 0", "BEGIN IMMEDIATE", "INSERT", "COMMIT",
            "PRAGMA query_only = 1", "BEGIN", "SELECT",
        ]  # fmt: skip
    with sqlite_app.app_context():
        assert set(db.session.scalars(text("SELECT key FROM throttle_counters"))) == {"submitted-meanwhile", "scan"}


def test_reading_in_a_post_ends_before_the_slow_work_and_refuses_writes(sqlite_app, sqlite_url):
    """``reading()``: a POST's reads in a read transaction that ends with the block; what it loaded stays loaded."""
    path = path_of(sqlite_url)
    write_one(path, "k")
    with sqlite_app.test_request_context("/staff/login", method="POST"):
        sent = _statements(db.engine)
        with database.reading():
            counter = db.session.get(ThrottleCounter, "k")
            assert write_lock_is_free(path)
            with pytest.raises(OperationalError, match="readonly database"):
                db.session.execute(text(ROW), {"key": "sneaked"})
        assert not db.session().in_transaction()  # the slow work runs here, holding nothing
        assert write_lock_is_free(path)
        assert counter.count == 1  # loaded, not expired: no query
        assert sent == ["PRAGMA query_only = 1", "BEGIN", "SELECT", "INSERT", "COMMIT"]
        db.session.execute(text(ROW), {"key": "written"})  # the POST's write begins a write transaction
        assert sent[-2:] == ["BEGIN IMMEDIATE", "INSERT"]
        db.session.commit()


def test_a_thread_holding_the_write_lock_is_refused_a_second_write_at_once(sqlite_app):
    """A second connection of the same thread would wait for the first until the busy timeout: refused instead."""
    with sqlite_app.test_request_context("/", method="POST"):
        db.session.execute(text(ROW), {"key": "held"})
        with pytest.raises(RuntimeError, match="would wait for"), db.engine.begin() as other:
            other.execute(text(ROW), {"key": "other"})
        with database.reading(), db.engine.begin() as other:  # reading on a second connection is fine
            assert other.execute(select(func.count()).select_from(ThrottleCounter)).scalar() == 0
        db.session.commit()
        with db.engine.begin() as other:  # and once the first has ended, so is writing
            other.execute(text(ROW), {"key": "after"})


def test_a_get_requests_read_transaction_ends_with_it(sqlite_app):
    """Tests keep one app context over several requests: a POST after a GET must not inherit its read."""

    @sqlite_app.get("/_read")
    def _read():
        db.session.scalar(select(func.count()).select_from(ThrottleCounter))
        return "read"

    @sqlite_app.post("/_write")
    def _write():
        db.session.execute(text(ROW), {"key": "posted"})
        db.session.commit()
        return "written"

    sqlite_app.config["WTF_CSRF_ENABLED"] = False
    client = sqlite_app.test_client()
    with sqlite_app.app_context():
        assert client.get("/_read").status_code == 200
        assert not db.session().in_transaction()
        assert client.post("/_write").status_code == 200
        assert db.session.scalar(select(func.count()).select_from(ThrottleCounter)) == 1
