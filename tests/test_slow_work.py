"""Nothing slow runs while SQLite's write lock is held (issue 10, finding 2): a login's password hash, an
import's parsing (dry run and confirmation), a resident's photos. Each is watched where it begins (a
profile hook on the function, in the request's own thread) and SQLite is asked, at that moment, whether
a writer could take the lock at once; a submission with the lock taken would have waited for all of it.
"""

from __future__ import annotations

import io
import sqlite3
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import select
from werkzeug.security import check_password_hash

from backend.admin import importer
from backend.extensions import db
from backend.items import photos
from backend.models import ItemPhoto
from backend.qr.codes import current_code
from tests.conftest import PG_URL
from tests.factories import StaffUserFactory, admin_world
from tests.helpers import PASSWORD, csrf_token_from, csv_bytes, fresh_token, hidden_value, jpeg_bytes, login

pytestmark = pytest.mark.skipif(bool(PG_URL), reason="about SQLite's write lock; PostgreSQL has none to hold")

ROSTER = [
    ["姓名", "代表层级", "选区", "联络站", "联系电话", "职业", "任期"],
    *([f"代表{i}", "乡镇人大代表", "霞阳镇第一选区", "霞阳镇人大代表联络站", "", "", ""] for i in range(200)),
]


def write_lock_is_free() -> bool:
    """Ask SQLite: a connection with no busy timeout takes the write lock at once, or is refused at once."""
    probe = sqlite3.connect(Path(db.engine.url.database), isolation_level=None, timeout=0)
    try:
        probe.execute("BEGIN IMMEDIATE")
        probe.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError as exc:
        assert "database is locked" in str(exc)
        return False
    finally:
        probe.close()


@contextmanager
def watching(app, function) -> Iterator[list[bool]]:
    """Each call of ``function`` in this thread, as whether the write lock was free when it began.

    The requests inside run in an app context (so a database session) of their own, as in a server:
    nothing the test's session or an earlier request left open is carried into them.
    """
    db.session.commit()
    calls: list[bool] = []

    def profile(frame, event, _arg):
        if event == "call" and frame.f_code is function.__code__:
            calls.append(write_lock_is_free())

    sys.setprofile(profile)
    try:
        with app.app_context():
            yield calls
    finally:
        sys.setprofile(None)


def test_a_login_checks_the_password_holding_no_write_lock(app, client, create_deputy):
    StaffUserFactory(username="zxy", deputy=create_deputy())
    db.session.commit()
    with watching(app, check_password_hash) as calls:
        wrong = client.post("/api/v1/auth/token", json={"username": "zxy", "password": "falsch-falsch"})
        right = client.post("/api/v1/auth/token", json={"username": "zxy", "password": PASSWORD})
        unknown = client.post("/api/v1/auth/token", json={"username": "nobody", "password": PASSWORD})
    assert (wrong.status_code, right.status_code, unknown.status_code) == (401, 201, 401)
    assert calls == [True, True, True]


def test_an_import_parses_holding_no_write_lock(app, create_county, create_station, create_deputy):
    admin_world()
    admin = login(app, "admin_a")
    _, token = fresh_token(admin, "/admin/import")
    with watching(app, importer.read_table) as dry_run_calls:
        html = admin.post(
            "/admin/import", data={"csrf_token": token, "file": (io.BytesIO(csv_bytes(ROSTER)), "名册.csv")}
        ).get_data(as_text=True)
    assert "共200位代表" in html
    fields = {name: hidden_value(html, name) for name in ("upload_id", "sha256")}
    with watching(app, importer.read_table) as confirm_calls:
        confirmed = admin.post("/admin/import/confirm", data={"csrf_token": csrf_token_from(html), **fields})
    assert confirmed.status_code == 303
    assert dry_run_calls == confirm_calls == [True]


def test_a_submission_decodes_its_photos_holding_no_write_lock(app, client, create_deputy):
    slug = current_code(create_deputy()).slug
    db.session.commit()
    form = client.get(f"/c/{slug}").get_data(as_text=True)
    fields = {"csrf_token": csrf_token_from(form), "client_id": hidden_value(form, "client_id")}
    photo = [(io.BytesIO(jpeg_bytes((640, 480))), "a.jpg"), (io.BytesIO(jpeg_bytes((480, 640))), "b.jpg")]
    with watching(app, photos._reencode) as calls:
        answer = client.post(f"/c/{slug}", data={**fields, "body": "附上两张现场照片。", "photos": photo})
    assert answer.status_code == 303
    assert calls == [True, True]
    assert len(db.session.scalars(select(ItemPhoto)).all()) == 2
