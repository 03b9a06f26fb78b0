"""Fixtures: a migrated database per session (SQLite, or PostgreSQL when TEST_DATABASE_URL is set),
emptied after every test; the app, its client and CLI runner; and builder functions."""

from __future__ import annotations

import copy
import functools
import os
import secrets
import shutil
import uuid
from urllib.parse import urlsplit, urlunsplit

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from werkzeug.utils import cached_property

from backend import create_app
from backend.extensions import db
from backend.models import Base, CongressLevel, Deputy, DeputyStatus, Region, Station
from backend.qr.codes import current_code
from tests.factories import HOME_COUNTY, CountyFactory, DeputyFactory, StationFactory, county_world
from tests.helpers import TEST_PASSWORD_HASH_METHOD, missing_tool

PG_URL = os.environ.get("TEST_DATABASE_URL", "")


# Set by scripts/run-tests.sh when it runs the two engines' suites side by side: each browser test module then runs
# in one of them only (see ``browser_modules_for``).
BROWSER_SPLIT = os.environ.get("BROWSER_SPLIT") == "1"


def browser_modules_for(engine: str, items) -> set:
    """When both suites run (``BROWSER_SPLIT``), the browser test modules the suite on ``engine`` ("sqlite" or
    "postgresql") keeps: the modules are dealt
    to the two engines, largest first, each to the one with less so far (a module weighs its tests plus three for
    what it sets up: servers, counties), so that each suite runs about half of them. What a browser test checks is the page a person
    uses; the engine's part of each step is tested in both suites by the tests outside tests/browser/. Run alone
    (``pytest`` without the variable), a suite keeps them all."""
    sizes: dict = {}
    for item in items:
        if item.get_closest_marker("browser"):
            sizes[item.path] = sizes.get(item.path, 3) + 1
    load = {"sqlite": 0, "postgresql": 0}
    kept = set()
    for path, size in sorted(sizes.items(), key=lambda entry: (-entry[1], str(entry[0]))):
        dealt = min(load, key=lambda name: (load[name], name))
        load[dealt] += size
        if dealt == engine:
            kept.add(path)
    return kept


def pytest_collection_modifyitems(config, items):
    """The PostgreSQL suite leaves out the tests marked ``engine_independent``: what they check (rendering, parsing,
    images, PDFs) is the same whatever the engine, and ``make test`` runs the SQLite suite beside it, which runs
    them. With ``BROWSER_SPLIT`` each suite also leaves out the browser modules the other runs. The numbers are
    said in the summary (``pytest_terminal_summary``)."""
    browser_kept = browser_modules_for("postgresql" if PG_URL else "sqlite", items) if BROWSER_SPLIT else None
    kept, left_out, browser_left_out = [], [], []
    for item in items:
        if PG_URL and item.get_closest_marker("engine_independent"):
            left_out.append(item)
        elif browser_kept is not None and item.get_closest_marker("browser") and item.path not in browser_kept:
            browser_left_out.append(item)
        else:
            kept.append(item)
    if left_out or browser_left_out:
        config.hook.pytest_deselected(items=left_out + browser_left_out)
        items[:] = kept
        config.stash[_ENGINE_INDEPENDENT] = len(left_out)
        config.stash[_BROWSER_ELSEWHERE] = len(browser_left_out)


_ENGINE_INDEPENDENT = pytest.StashKey[int]()
_BROWSER_ELSEWHERE = pytest.StashKey[int]()


def pytest_terminal_summary(terminalreporter, config):
    """Say how many tests this suite left to the other one."""
    if left_out := config.stash.get(_ENGINE_INDEPENDENT, 0):
        terminalreporter.write_line(
            f"{left_out} tests marked engine_independent run in the SQLite suite only (deselected here)"
        )
    if elsewhere := config.stash.get(_BROWSER_ELSEWHERE, 0):
        other = "SQLite" if PG_URL else "PostgreSQL"
        terminalreporter.write_line(
            f"{elsewhere} browser tests run in the {other} suite (BROWSER_SPLIT; deselected here)"
        )


def redis_test_url(number: int) -> str:
    """A Redis database of the local server for one test module: ``number`` on SQLite, two lower on
    PostgreSQL, so that the two suites (run side by side by ``make test``) never flush each other's.
    ``TEST_REDIS_URL`` (default ``redis://127.0.0.1:6379``) names another server, for a second checkout's run; a
    database number in it is replaced by the module's (it named a URL that no server answers before)."""
    server = urlsplit(os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379"))._replace(path="")
    return f"{urlunsplit(server)}/{number - 2 if PG_URL else number}"


def pg_admin_url(url: str):
    """The given PostgreSQL URL with the psycopg driver."""
    parsed = make_url(url)
    return parsed.set(drivername="postgresql+psycopg")


def create_pg_database(url: str) -> str:
    """Create a fresh, uniquely named database on the server of ``url``; return its URL."""
    admin = pg_admin_url(url)
    name = f"msl_test_{os.getpid()}_{secrets.token_hex(3)}"
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return admin.set(database=name).render_as_string(hide_password=False)


def drop_pg_database(url: str) -> None:
    """Drop a database made by ``create_pg_database``."""
    target = make_url(url)
    admin = pg_admin_url(PG_URL)
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
    engine.dispose()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    """A database migrated to head once per test session."""
    if PG_URL:
        url = create_pg_database(PG_URL)
    else:
        url = "sqlite:///" + str(tmp_path_factory.mktemp("db") / "test.sqlite3")
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": url})
    from flask_migrate import upgrade

    with app.app_context():
        upgrade()
        db.engine.dispose()
    yield url
    if PG_URL:
        drop_pg_database(url)


@pytest.fixture
def old_database(tmp_path):
    """An empty database of its own on the suite's engine, for a test that migrates it from an old revision."""
    url = create_pg_database(PG_URL) if PG_URL else "sqlite:///" + str(tmp_path / "old.sqlite3")
    yield url
    if PG_URL:
        drop_pg_database(url)


def empty_database() -> None:
    """Delete every row of every table (faster than recreating the schema)."""
    tables = [t.name for t in Base.metadata.sorted_tables]
    # DELETE beats TRUNCATE here: the tables hold a handful of rows, and TRUNCATE of every
    # table costs PostgreSQL a few hundred milliseconds per test.
    with db.engine.begin() as conn:
        for table in reversed(tables):
            conn.execute(text(f'DELETE FROM "{table}"'))


def app_config_for(database_url: str) -> dict:
    """The configuration of the tests' application."""
    return {
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "PUBLIC_BASE_URL": "https://msl.example.cn",
        "WTF_CSRF_ENABLED": True,
        "PASSWORD_HASH_METHOD": TEST_PASSWORD_HASH_METHOD,
    }


@pytest.fixture(scope="session")
def shared_app(database_url):
    """One application for the whole session: ``create_app`` costs ~50 ms (Werkzeug compiles each of
    its URL rules), a minute of every suite when made per test. ``app`` gives each test its own
    configuration and extensions back as they were. Its pool of connections is kept for the session too."""
    app = create_app(app_config_for(database_url))
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def app(request, database_url, shared_app, tmp_path):
    """The application on the session's database, emptied after the test.

    The session's application, with the configuration and the extensions (cached clients) each
    test changes put back afterwards; a new one for a test marked ``fresh_app`` (one that adds
    routes, which Flask allows only before the first request).
    """
    fresh = request.node.get_closest_marker("fresh_app") is not None
    app = create_app(app_config_for(database_url)) if fresh else shared_app
    config = copy.deepcopy(dict(app.config))
    extensions = dict(app.extensions)
    attributes = dict(vars(app))  # what a test may set on it (test_client_class, instance_path …)
    app.instance_path = str(tmp_path / "instance")  # files a test makes (import dry runs) stay out of the checkout
    with app.app_context():
        yield app
        db.session.remove()
        empty_database()
        if app.config.get("REDIS_URL"):  # counters kept in Redis are state too
            import contextlib

            import redis

            # A test may point REDIS_URL at a dead port on purpose.
            with contextlib.suppress(redis.ConnectionError):
                redis.Redis.from_url(app.config["REDIS_URL"], socket_connect_timeout=1).flushdb()
        if fresh:
            db.engine.dispose()  # the session's application keeps its pool: a new connection each test cost
            # PostgreSQL a backend started and its catalog read again, SQLite the file opened and its schema parsed
    app.config.clear()
    app.config.update(config)
    app.extensions.clear()
    app.extensions.update(extensions)
    for name in set(vars(app)) - set(attributes):
        if not isinstance(getattr(type(app), name, None), (functools.cached_property, cached_property)):
            delattr(app, name)  # set by the test; Flask's lazily computed attributes may stay
    for name, value in attributes.items():
        if vars(app).get(name) is not value:
            setattr(app, name, value)


@pytest.fixture
def poppler():
    """pdfinfo and pdftoppm (Debian's poppler-utils)."""
    if not (shutil.which("pdftoppm") and shutil.which("pdfinfo")):
        missing_tool("poppler-utils is not installed (scripts/system-deps.sh --test)")


@pytest.fixture
def client(app):
    """A test client."""
    return app.test_client()


@pytest.fixture
def runner(app):
    """A CLI runner."""
    return app.test_cli_runner()


@pytest.fixture
def create_county(app):
    """Builder: a province → city → county chain (tests/factories.py's ``CountyFactory``); returns the county."""

    def _create(code: str = HOME_COUNTY, name: str = "炎陵县") -> Region:
        return CountyFactory(code=code, name=name)

    return _create


@pytest.fixture
def create_station(app):
    """Builder: a station with its code (``StationFactory``), in 炎陵县 unless a region is given; committed."""

    def _create(name: str = "霞阳镇人大代表联络站", region: Region | None = None, rules=()) -> Station:
        station = StationFactory(name=name, rules=rules, **({"region": region} if region is not None else {}))
        db.session.commit()
        return station

    return _create


@pytest.fixture
def create_deputy(app):
    """Builder: a deputy with levels and a code (``DeputyFactory``), at a new station unless one is given;
    committed."""

    def _create(
        name: str = "张秀英",
        station: Station | None = None,
        levels=(CongressLevel.COUNTY,),
        status: DeputyStatus = DeputyStatus.SERVING,
        constituency: str = "霞阳镇第三选区",
    ) -> Deputy:
        fields = {"station": station} if station is not None else {}
        deputy = DeputyFactory(name=name, levels=levels, status=status, constituency=constituency, **fields)
        db.session.commit()
        return deputy

    return _create


@pytest.fixture
def deputy(create_deputy):
    """A serving deputy at a station of 炎陵县, for the resident's side (the form, the API, WeChat)."""
    return create_deputy()


@pytest.fixture
def slug(deputy):
    """The deputy's code, as its poster's QR code carries it."""
    return current_code(deputy).slug


@pytest.fixture
def count_in_database(app):
    """Look-up and login throttle counters in the database, which every test empties, whatever REDIS_URL says
    (a module uses it with ``pytestmark = pytest.mark.usefixtures("count_in_database")``)."""
    app.config["REDIS_URL"] = None


@pytest.fixture
def world(request, app):
    """The module's world from tests/factories.py: the small county (``county_world``) unless the module names
    another builder as ``WORLD`` (``admin_world``, ``supervision_world``) or defines a ``world`` of its own."""
    return getattr(request.module, "WORLD", county_world)()


@pytest.fixture
def client_id():
    """A fresh idempotency key, as a client would make one."""
    return uuid.uuid4().hex


@pytest.fixture
def cjk_font():
    """Noto Sans CJK SC for posters (scripts/system-deps.sh): skipped without it, failed without it in CI."""
    from backend.qr import fonts

    try:
        fonts.find_face("bold")
        fonts.find_face("regular")
    except fonts.FontMissingError as exc:
        missing_tool(str(exc))


@pytest.fixture(scope="session")
def s3_server():
    """A local S3-compatible server (moto's server mode) on a free port: real HTTP through boto3. Its URL."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        missing_tool("moto[server] is not installed (pip install -r requirements-dev.txt)")
    import socket

    with socket.socket() as probe:  # a free port, handed to the server
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3_photos(app, s3_server):
    """Builder: switch the app's photo store to S3 on the local server, in a new bucket; returns the bucket."""

    def _use(bucket: str | None = None) -> str:
        import boto3

        bucket = bucket or f"photos-{uuid.uuid4().hex[:12]}"
        settings = s3_settings(s3_server, bucket)
        client = boto3.client(
            "s3",
            endpoint_url=s3_server,
            region_name=settings["S3_REGION"],
            aws_access_key_id=settings["S3_ACCESS_KEY_ID"],
            aws_secret_access_key=settings["S3_SECRET_ACCESS_KEY"],
        )
        client.create_bucket(Bucket=bucket)
        app.config.update(settings)
        return bucket

    return _use


def s3_settings(endpoint: str, bucket: str) -> dict:
    """The configuration of an app whose photos are in ``bucket`` of the local S3 server."""
    return {
        "PHOTO_STORE": "s3",
        "S3_ENDPOINT_URL": endpoint,
        "S3_BUCKET": bucket,
        "S3_REGION": "us-east-1",
        "S3_ACCESS_KEY_ID": "testing",
        "S3_SECRET_ACCESS_KEY": "testing",
    }
