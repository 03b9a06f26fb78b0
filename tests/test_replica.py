"""Reads from a streaming replica (backend/replica.py, issue 16 part 3), against a real one: a PostgreSQL
primary and a hot standby made with ``pg_basebackup -R`` for this module (tests/pg_replica.py).

How a read is shown to come from the replica: its replay is paused (``pg_wal_replay_pause``), a row is
changed on the primary, and the page shows the row as the replica still has it. Each case ends with replay
resumed and the replica caught up, so the next starts from one state on both servers.

PostgreSQL suite only: SQLite has no streaming replica, and with SQLite the setting is refused at start
(``test_sqlite_refuses_the_replica_setting``, which runs in both suites).
"""

from __future__ import annotations

import io
import time

import pytest
from flask_migrate import upgrade
from openpyxl import load_workbook
from pydantic import ValidationError
from sqlalchemy import func, select, update

from backend import create_app, replica
from backend.config import ReplicaSettings, documented
from backend.extensions import db
from backend.models import AuditEntry, Item, Station
from backend.ops import doctor
from backend.stations.calendar import CHINA_TZ
from tests.conftest import PG_URL, app_config_for
from tests.factories import make_item, make_overdue
from tests.helpers import api_token, fresh_token, login

needs_postgresql = pytest.mark.skipif(
    not PG_URL,
    reason="the read replica is a PostgreSQL streaming standby: PostgreSQL suite only (TEST_DATABASE_URL); "
    "the SQLite suite checks that the setting is refused",
)

OLD_BODY = "村口路灯坏了三个月，晚上出行很不方便。"
NEW_BODY = "村口路灯已经修好了，这条是后来改的内容。"


@pytest.fixture(scope="module")
def pair():
    """The primary and its replica, for this module."""
    if not PG_URL:
        pytest.skip("PostgreSQL suite only")
    from tests.pg_replica import start_pair

    started = start_pair()
    yield started
    started.stop()


@pytest.fixture(scope="module")
def database_url(pair):
    """The app's database on the pair's primary, migrated to head and replayed by the replica."""
    pair.sql(pair.primary_port, "CREATE DATABASE msl")
    url = pair.url(pair.primary_port, "msl")
    migrating = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": url})
    with migrating.app_context():
        upgrade()
        db.engine.dispose()
    pair.wait_until_replayed()
    return url


@pytest.fixture(scope="module")
def shared_app(database_url, pair):
    """The tests' application on the primary, reading from the replica; the lag measured at every read."""
    app = create_app(
        app_config_for(database_url)
        | {"DATABASE_REPLICA_URL": pair.url(pair.replica_port, "msl"), "REPLICA_CHECK_SECONDS": 0}
    )
    yield app
    with app.app_context():
        for engine in db.engines.values():
            engine.dispose()


@pytest.fixture
def caught_up(pair):
    """After the test: replay resumed, the replica caught up with the primary (the app fixture empties it)."""
    yield
    pair.resume_replay()
    pair.wait_until_replayed()


def change_on_primary_only(pair, statement) -> None:
    """Pause the replica's replay once it has everything so far, then make ``statement`` on the primary alone."""
    db.session.commit()
    pair.wait_until_replayed()
    pair.pause_replay()
    db.session.execute(statement)
    db.session.commit()
    db.session.remove()  # the next request's session starts empty, as every request's does outside the tests


def body_of(pair, port: int, item_id: int) -> str:
    """The item's body as the server at ``port`` has it, asked directly."""
    return pair.sql(port, "SELECT body FROM items WHERE id = %s", database="msl", params=(item_id,))[0]


@needs_postgresql
def test_the_directory_reads_from_the_replica(app, client, create_station, create_deputy, pair, caught_up):
    station = create_station(name="霞阳镇人大代表联络站")
    create_deputy(name="张秀英", station=station)  # the directory page lists stations by their serving deputies
    station_id = station.id
    change_on_primary_only(pair, update(Station).where(Station.id == station_id).values(name="霞阳镇代表之家"))
    assert pair.sql(pair.replica_port, "SELECT name FROM stations", database="msl")[0] == "霞阳镇人大代表联络站"

    page = client.get("/stations")
    assert page.status_code == 200
    assert "霞阳镇人大代表联络站" in page.text and "霞阳镇代表之家" not in page.text
    listed = client.get("/api/v1/stations").json["stations"]
    assert [s["name"] for s in listed] == ["霞阳镇人大代表联络站"]

    pair.resume_replay()
    pair.wait_until_replayed()
    assert "霞阳镇代表之家" in client.get("/stations").text


@needs_postgresql
def test_a_supervisors_pages_and_export_read_from_the_replica_and_a_deputys_inbox_does_not(app, world, pair, caught_up):
    app.config["REPLICA_READ_OWN_WRITES_SECONDS"] = 0  # their logins (writes) would send them to the primary
    supervisor = login(app, "sup_county")
    deputy = login(app, "deputy_d1")
    item = make_item(world.d1, body=OLD_BODY)
    item_id, month, county = item.id, item.created_at.astimezone(CHINA_TZ).strftime("%Y-%m"), world.county.code
    change_on_primary_only(pair, update(Item).where(Item.id == item_id).values(body=NEW_BODY))
    assert (body_of(pair, pair.replica_port, item_id), body_of(pair, pair.primary_port, item_id)) == (
        OLD_BODY,
        NEW_BODY,
    )

    for path in ("/staff/inbox?state=all", "/supervision/items?figure=received"):
        page = supervisor.get(path)
        assert page.status_code == 200, path
        assert OLD_BODY[:8] in page.text and NEW_BODY[:8] not in page.text, path
    assert NEW_BODY[:8] in deputy.get("/staff/inbox?state=all").text  # a deputy acts on their list: the primary

    exported = supervisor.get(f"/supervision/export.xlsx?region={county}&month={month}")
    assert exported.status_code == 200
    rows = load_workbook(io.BytesIO(exported.data))["民意件"].iter_rows(values_only=True)
    exported.close()
    cells = [str(cell) for row in rows for cell in row]
    assert any(OLD_BODY[:8] in c for c in cells) and not any(NEW_BODY[:8] in c for c in cells)
    # The download's audit row is a write: it went to the primary while the page read from the replica.
    audited = select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "stats_exported")
    assert db.session.scalar(audited) == 1


@needs_postgresql
def test_whoever_just_acted_reads_their_own_writes(app, world, pair, caught_up):
    app.config["REPLICA_READ_OWN_WRITES_SECONDS"] = 0
    onlooker = login(app, "sup_county")  # logged in before: no recent write of their own
    app.config["REPLICA_READ_OWN_WRITES_SECONDS"] = 300
    actor = login(app, "sup_county")
    item = make_item(world.d1)
    make_overdue(item)
    db.session.commit()
    pair.wait_until_replayed()
    pair.pause_replay()

    _, token = fresh_token(actor, "/supervision/")
    done = actor.post(f"/supervision/items/{item.ref}/supervise", data={"csrf_token": token, "text": "请尽快答复。"})
    assert done.status_code == 303
    assert "已督办1次" in actor.get("/supervision/").text  # the primary: their own 督办 is there
    assert "已督办" not in onlooker.get("/supervision/").text  # the replica, paused before it

    pair.resume_replay()
    pair.wait_until_replayed()
    assert "已督办1次" in onlooker.get("/supervision/").text


@needs_postgresql
def test_the_mark_is_a_browsers_and_an_api_client_gets_no_cookie(app, world, pair):
    app.config["REPLICA_READ_OWN_WRITES_SECONDS"] = 300
    ref = make_item(world.d1).ref
    browser = login(app, "deputy_d1")
    assert browser.get_cookie("session") is not None
    marked = app.session_interface.get_signing_serializer(app).loads(browser.get_cookie("session").value)
    assert marked[replica.PRIMARY_UNTIL] > time.time() + 200  # the login was a change: the primary for 5 minutes
    headers = api_token(app, "deputy_d1")
    answer = app.test_client().post(f"/api/v1/items/{ref}/actions", json={"action": "accept"}, headers=headers)
    assert answer.status_code == 200, answer.text
    assert "Set-Cookie" not in answer.headers  # a bearer client keeps no cookie to carry a mark


@needs_postgresql
def test_a_replica_behind_the_lag_limit_is_not_read(app, world, pair, caught_up):
    app.config["REPLICA_READ_OWN_WRITES_SECONDS"] = 0
    supervisor = login(app, "sup_county")
    item_id = make_item(world.d1, body=OLD_BODY).id
    change_on_primary_only(pair, update(Item).where(Item.id == item_id).values(body=NEW_BODY))
    pair.wait_until_received()  # it has the change and does not apply it: it lags, and more every moment

    app.config["REPLICA_MAX_LAG_SECONDS"] = 0
    page = supervisor.get("/supervision/items?figure=received")
    assert page.status_code == 200 and NEW_BODY[:8] in page.text  # the primary
    state = replica.current_state(replica.replica_engine())
    assert not state.is_usable and state.lag_seconds > 0 and "behind" in state.reason

    app.config["REPLICA_MAX_LAG_SECONDS"] = 3600
    assert OLD_BODY[:8] in supervisor.get("/supervision/items?figure=received").text  # within the limit: the replica


@needs_postgresql
def test_a_stopped_replica_sends_reads_to_the_primary(app, world, pair):
    app.config["REPLICA_READ_OWN_WRITES_SECONDS"] = 0
    supervisor = login(app, "sup_county")
    item = make_item(world.d1, body=OLD_BODY)
    db.session.execute(update(Item).where(Item.id == item.id).values(body=NEW_BODY))
    db.session.commit()
    assert supervisor.get("/supervision/items?figure=received").status_code == 200  # measured: usable
    app.config["REPLICA_CHECK_SECONDS"] = 3600  # this process still believes it up: the page finds it down
    pair.stop_replica()
    try:
        for path in ("/supervision/", "/supervision/items?figure=received", "/staff/inbox?state=all", "/stations"):
            page = supervisor.get(path)
            assert page.status_code == 200, (path, page.status_code)
        assert NEW_BODY[:8] in supervisor.get("/supervision/items?figure=received").text
        assert not replica.current_state(replica.replica_engine()).is_usable
        app.config["REPLICA_CHECK_SECONDS"] = 0  # measured again while down: still the primary, no error
        assert supervisor.get("/supervision/").status_code == 200
        assert "unreachable" in replica.current_state(replica.replica_engine()).reason
        [finding] = doctor.check_replica()  # flask doctor says so, as a warning: nothing fails meanwhile
        assert (finding.check, finding.level, finding.breaks) == ("replica", "warning", False)
        assert "只读副本现在不可用" in finding.message
    finally:
        pair.start_replica()
    pair.wait_until_replayed()
    assert supervisor.get("/supervision/").status_code == 200
    assert replica.current_state(replica.replica_engine()).is_usable  # back once it is
    assert doctor.check_replica() == []


@needs_postgresql
def test_outside_the_replica_block_and_in_writes_everything_reads_from_the_primary(app, world, pair, caught_up):
    item_id = make_item(world.d1, body=OLD_BODY).id
    change_on_primary_only(pair, update(Item).where(Item.id == item_id).values(body=NEW_BODY))
    with app.test_request_context("/supervision/"):
        with replica.reads_from_replica():
            assert replica.is_reading_from_replica()
            assert db.session.scalar(select(Item.body).where(Item.id == item_id)) == OLD_BODY
            from backend import database

            with database.writing():
                assert not replica.is_reading_from_replica()
                assert db.session.scalar(select(Item.body).where(Item.id == item_id)) == NEW_BODY
        assert not replica.is_reading_from_replica()
        db.session.rollback()


@pytest.mark.parametrize(
    ("primary", "replica_url"),
    [
        ("sqlite:///{tmp}/x.sqlite3", "postgresql://postgres@127.0.0.1:5433/msl"),
        ("postgresql://postgres@127.0.0.1:5432/msl", "sqlite:///{tmp}/replica.sqlite3"),
    ],
    ids=["sqlite-primary", "sqlite-replica"],
)
def test_sqlite_refuses_the_replica_setting(tmp_path, primary, replica_url):
    with pytest.raises(RuntimeError, match="SQLite has no streaming replica: unset DATABASE_REPLICA_URL"):
        create_app(
            {
                "TESTING": True,
                "SQLALCHEMY_DATABASE_URI": primary.format(tmp=tmp_path),
                "DATABASE_REPLICA_URL": replica_url.format(tmp=tmp_path),
            }
        )


@pytest.mark.parametrize(
    ("name", "value"),
    [("REPLICA_MAX_LAG_SECONDS", "-1"), ("REPLICA_MAX_LAG_SECONDS", "ten"), ("REPLICA_CHECK_SECONDS", "-0.5")],
)
def test_a_bad_replica_setting_stops_the_start_with_its_name(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=name):
        ReplicaSettings()


def test_without_the_setting_nothing_reads_from_a_replica(tmp_path):
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": "sqlite:///" + str(tmp_path / "x.sqlite3")})
    with app.test_request_context("/stations"), replica.reads_from_replica():
        assert replica.replica_engine() is None and not replica.is_reading_from_replica()


def test_the_settings_are_documented():
    listed = {name: meaning for _, name, _, meaning in documented()}
    for name in ("DATABASE_REPLICA_URL", "REPLICA_MAX_LAG_SECONDS", "REPLICA_CHECK_SECONDS"):
        assert listed[name]
