"""Item photos out of the database: the photo store on files and on S3 (moto's server mode, real HTTP through
boto3), on the suite's engine; the photo URLs and their access checks as before; no orphan left by a
transaction that does not commit; deletion after the commit only; the migration out of the database and back.

Bad input tried: an unknown ``PHOTO_STORE``; S3 without a bucket; a wrong access key for a photo URL; a photo
position that does not exist; a store that has lost a photo's bytes (404, not 500); a key that climbs out of
the photo folder."""

from __future__ import annotations

import hashlib
import io
import re

import pytest
from sqlalchemy import func, inspect, select

from backend import create_app
from backend.extensions import db
from backend.items.photo_store import (
    FileStore,
    PhotoStoreError,
    delete_item_photos,
    new_key,
    photo_store,
    photos_dir,
    store_photos,
    sweep_orphans,
)
from backend.items.photos import process_photo
from backend.models import Item, ItemPhoto
from tests.conftest import app_config_for
from tests.helpers import csrf_token_from, hidden_value, jpeg_bytes


@pytest.fixture(params=["files", "s3"])
def store_kind(request, app):
    """Each test twice: photos under the instance folder, and in a bucket of the local S3 server."""
    if request.param == "s3":
        request.getfixturevalue("s3_photos")()
    return request.param


def _stored_keys() -> set[str]:
    return {key for key, _written in photo_store().listing()}


def _submit(client, slug: str, photos: list[bytes]):
    html = client.get(f"/c/{slug}").text
    data = {
        "csrf_token": csrf_token_from(html),
        "client_id": hidden_value(html, "client_id"),
        "body": "小区门口的路灯坏了，附上照片。",
        "photos": [(io.BytesIO(p), f"p{i}.jpg") for i, p in enumerate(photos)],
    }
    return client.post(f"/c/{slug}", data=data, content_type="multipart/form-data")


def test_put_get_delete_by_key(store_kind):
    store = photo_store()
    key = new_key()
    assert re.fullmatch(r"items/[0-9a-f]{2}/[0-9a-f]{32}\.jpg", key) and key != new_key()
    assert store.get(key) is None
    store.put(key, b"\xff\xd8bytes\xff\xd9", "image/jpeg")
    assert store.get(key) == b"\xff\xd8bytes\xff\xd9"
    assert key in _stored_keys()
    store.delete(key)
    assert store.get(key) is None and key not in _stored_keys()
    store.delete(key)  # gone already: not an error


def test_a_submitted_photo_is_in_the_store_and_served_as_before(app, client, slug, store_kind):
    sent = jpeg_bytes((64, 48))
    assert _submit(client, slug, [sent, jpeg_bytes((30, 40), (10, 200, 10))]).status_code == 303
    item = db.session.scalar(select(Item))
    photos = db.session.scalars(select(ItemPhoto).order_by(ItemPhoto.position)).all()
    assert [p.position for p in photos] == [0, 1]
    assert "jpeg" not in {c["name"] for c in inspect(db.session.connection()).get_columns("item_photos")}
    for photo in photos:
        data = photo_store().get(photo.storage_key)
        assert photo.size == len(data) and photo.content_type == "image/jpeg"
        assert photo.sha256 == hashlib.sha256(data).hexdigest()
        # Nothing about the item in the key.
        assert item.ref not in photo.storage_key and f"/{item.id}/" not in photo.storage_key
    assert _stored_keys() == {p.storage_key for p in photos}
    if store_kind == "files":
        assert (photos_dir() / photos[0].storage_key).is_file()
    # The URL is the one it always was; the key-holder gets the stored bytes, no one else does.
    ok = client.get(f"/t/{item.ref}/photos/0.jpg?k={item.access_key}")
    assert ok.status_code == 200 and ok.mimetype == "image/jpeg"
    assert ok.data == photo_store().get(photos[0].storage_key)
    assert "sandbox" in ok.headers["Content-Security-Policy"] and ok.headers["Cache-Control"] == "no-store"
    assert client.get(f"/t/{item.ref}/photos/0.jpg?k=WRONGKEY23456789A").status_code == 404
    assert client.get(f"/t/{item.ref}/photos/5.jpg?k={item.access_key}").status_code == 404


def test_a_photo_the_store_lost_answers_404_not_500(app, client, slug, store_kind):
    assert _submit(client, slug, [jpeg_bytes()]).status_code == 303
    item = db.session.scalar(select(Item))
    photo = db.session.scalar(select(ItemPhoto))
    photo_store().delete(photo.storage_key)
    assert client.get(f"/t/{item.ref}/photos/0.jpg?k={item.access_key}").status_code == 404


def test_a_submission_that_does_not_commit_leaves_no_photo(app, client, slug, store_kind, monkeypatch):
    """A fault after the photos are written and the item inserted: the 500 rolls back, the files go too."""
    from backend.items import operations

    def _fault(*args, **kwargs):
        raise RuntimeError("injected: the outbox insert failed")

    monkeypatch.setattr(operations.notices, "queue_new_item_notices", _fault)
    assert _submit(client, slug, [jpeg_bytes(), jpeg_bytes()]).status_code == 500
    assert db.session.scalar(select(func.count(Item.id))) == 0
    assert _stored_keys() == set()


def test_savepoints_do_not_decide_the_photos_fate(app, store_kind):
    """Only the outermost transaction keeps or removes the photos written in it."""
    rows = store_photos([process_photo(jpeg_bytes())])
    with db.session.begin_nested():  # a savepoint released
        db.session.execute(select(1))
    db.session.rollback()
    assert _stored_keys() == set()  # the outer rollback removed it

    rows = store_photos([process_photo(jpeg_bytes())])
    nested = db.session.begin_nested()
    nested.rollback()  # a savepoint rolled back: the outer transaction may still commit its rows
    assert _stored_keys() == {rows[0]["storage_key"]}
    db.session.commit()
    assert _stored_keys() == {rows[0]["storage_key"]}  # committed: kept
    photo_store().delete(rows[0]["storage_key"])


def test_deleting_an_item_s_photos_removes_the_bytes_after_the_commit_only(app, client, slug, store_kind):
    assert _submit(client, slug, [jpeg_bytes(), jpeg_bytes()]).status_code == 303
    item = db.session.scalar(select(Item))
    keys = _stored_keys()
    assert len(keys) == 2
    assert delete_item_photos(item.id) == 2
    assert _stored_keys() == keys  # not before the commit
    db.session.rollback()
    assert _stored_keys() == keys and db.session.scalar(select(func.count(ItemPhoto.id))) == 2
    assert delete_item_photos(item.id) == 2
    db.session.commit()
    assert _stored_keys() == set() and db.session.scalar(select(func.count(ItemPhoto.id))) == 0
    assert client.get(f"/t/{item.ref}/photos/0.jpg?k={item.access_key}").status_code == 404


def test_the_sweep_removes_old_orphans_only(app, client, slug, store_kind):
    from datetime import UTC, datetime, timedelta

    assert _submit(client, slug, [jpeg_bytes()]).status_code == 303
    kept = db.session.scalar(select(ItemPhoto.storage_key))
    orphan = new_key()
    photo_store().put(orphan, b"orphan", "image/jpeg")
    assert sweep_orphans() == 0  # younger than an hour: may be a submission in flight
    assert sweep_orphans(now=datetime.now(UTC) + timedelta(hours=2)) == 1
    assert _stored_keys() == {kept}
    result = app.test_cli_runner().invoke(args=["photos", "sweep"])
    assert result.exit_code == 0 and "0" in result.output


def test_a_store_that_does_not_answer_is_a_503_not_a_500(app, client, slug, s3_photos):
    """S3 down (a port nobody listens on): a submission with a photo and a photo page answer 503 and nothing is
    written; the text-only path is unaffected."""
    import socket

    s3_photos()
    assert _submit(client, slug, [jpeg_bytes()]).status_code == 303
    item = db.session.scalar(select(Item))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}"
    app.config["S3_ENDPOINT_URL"] = dead
    refused = _submit(client, slug, [jpeg_bytes()])
    assert refused.status_code == 503 and "照片暂时无法保存" in refused.text
    assert db.session.scalar(select(func.count(Item.id))) == 1
    photo = client.get(f"/t/{item.ref}/photos/0.jpg?k={item.access_key}")
    assert photo.status_code == 503
    assert _submit(client, slug, []).status_code == 303


def test_a_deputy_s_new_portrait_replaces_the_old_after_the_commit(app, client, create_deputy, store_kind):
    from backend.items.photo_store import read_deputy_photo, replace_deputy_photo

    deputy = create_deputy()
    first, second = jpeg_bytes((30, 40)), jpeg_bytes((40, 30), (0, 0, 200))
    replace_deputy_photo(deputy, first)
    deputy.photo_version = 1
    db.session.commit()
    old_key = deputy.photo_key
    served = client.get(f"/deputies/{deputy.id}/photo-1.jpg")
    assert served.status_code == 200 and served.data == first and "public" in served.headers["Cache-Control"]
    replace_deputy_photo(deputy, second)
    deputy.photo_version = 2
    db.session.flush()
    assert photo_store().get(old_key) == first  # not before the commit
    db.session.commit()
    assert photo_store().get(old_key) is None and read_deputy_photo(deputy) == second
    assert _stored_keys() == {deputy.photo_key} and deputy.photo_key.startswith("deputies/")
    assert client.get(f"/deputies/{deputy.id}/photo-2.jpg").data == second
    assert client.get(f"/deputies/{deputy.id}/photo-1.jpg").status_code == 404


def test_bad_settings_are_refused_with_the_setting_named(app, tmp_path):
    app.config["PHOTO_STORE"] = "ftp"
    with pytest.raises(PhotoStoreError, match="PHOTO_STORE"):
        photo_store()
    app.config.update(PHOTO_STORE="s3", S3_BUCKET=None)
    with pytest.raises(PhotoStoreError, match="S3_BUCKET"):
        photo_store()
    with pytest.raises(PhotoStoreError, match="PHOTO_STORE"):
        create_app({**app_config_for("sqlite://"), "PHOTO_STORE": "disk"})
    with pytest.raises(ValueError, match="outside"):
        FileStore(tmp_path).put("../../etc/x.jpg", b"x", "image/jpeg")


def test_doctor_finds_a_store_that_cannot_keep_photos(app, store_kind, tmp_path):
    from backend.ops.doctor import diagnose

    assert not [f for f in diagnose(offline=True) if f.check == "photo_store"]
    if store_kind == "s3":
        app.config["S3_BUCKET"] = "no-such-bucket"
    else:
        (tmp_path / "a-file").write_bytes(b"")
        app.config["PHOTOS_DIR"] = str(tmp_path / "a-file")  # a file where the folder should be
    found = [f for f in diagnose(offline=True) if f.check == "photo_store"]
    assert len(found) == 1 and found[0].level == "problem" and "无法写入照片" in found[0].message
    assert ("no-such-bucket" if store_kind == "s3" else "a-file") in found[0].message


# --- the migration ------------------------------------------------------------------------------------------


BEFORE_PHOTO_STORE = "5e2b8c4f9a61"  # the revision just before the photo store's


@pytest.mark.parametrize("kind", ["files", "s3"])
def test_the_migration_moves_photos_out_and_back(old_database, tmp_path, kind, request):
    """Photos stored as BLOBs by the old code: upgrade writes each to the store and drops the column;
    downgrade brings the bytes back and removes the files."""
    from flask_migrate import downgrade, upgrade
    from sqlalchemy import text

    from backend.models import utcnow

    config = {**app_config_for(old_database), "REDIS_URL": None}
    if kind == "s3":
        import uuid

        import boto3

        from tests.conftest import s3_settings

        endpoint = request.getfixturevalue("s3_server")
        config.update(s3_settings(endpoint, f"mig-{uuid.uuid4().hex[:12]}"))
        boto3.client(
            "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t"
        ).create_bucket(Bucket=config["S3_BUCKET"])
    else:
        config["PHOTOS_DIR"] = str(tmp_path / "photos")
    app = create_app(config)
    app.instance_path = str(tmp_path / "instance")
    blobs = [jpeg_bytes((20 + i, 20)) for i in range(7)] + [None]
    with app.app_context():
        upgrade(revision=BEFORE_PHOTO_STORE)
        now = utcnow()
        # Rows written with SQL of the old schema: the models are today's, with columns added since.
        region_id = db.session.execute(
            text("INSERT INTO regions (code, name, level) VALUES ('430225', '炎陵县', 'county') RETURNING id")
        ).scalar()
        station_id = db.session.execute(
            text(
                "INSERT INTO stations (name, region_id, address, contact_name, contact_phone, reception_hours,"
                " is_active, created_at) VALUES ('霞阳镇人大代表联络站', :region, '霞阳镇', '', '', '', true, :now)"
                " RETURNING id"
            ),
            {"region": region_id, "now": now},
        ).scalar()
        item_id = db.session.execute(
            text(
                "INSERT INTO items (ref, access_key, station_id, channel, category, body, contact_name, contact_phone,"
                " status, reopen_count, screening, is_held, needs_review, review_reason, body_fingerprint,"
                " created_at, updated_at) VALUES ('7K4P9QXD', 'K', :station, 'web', 'other', 'b', '', '',"
                " 'submitted', 0, 'unscreened', false, false, '', 'f', :now, :now) RETURNING id"
            ),
            {"station": station_id, "now": now},
        ).scalar()
        for position, blob in enumerate(blobs):
            sha = hashlib.sha256(blob).hexdigest() if blob else "0" * 64
            db.session.execute(
                text(
                    "INSERT INTO item_photos (item_id, position, width, height, jpeg, sha256)"
                    " VALUES (:item, :position, 20, 20, :jpeg, :sha)"
                ),
                {"item": item_id, "position": position, "jpeg": blob, "sha": sha},
            )
        portrait = jpeg_bytes((60, 80), (70, 110, 160))
        for name, blob in (("张秀英", portrait), ("李建国", None)):
            db.session.execute(
                text(
                    "INSERT INTO deputies (name, station_id, constituency, occupation, phone, status, photo_jpeg,"
                    " photo_version, created_at) VALUES (:name, :station, '', '', '', 'serving', :jpeg, :version, :now)"
                ),
                {"name": name, "station": station_id, "jpeg": blob, "version": 1 if blob else 0, "now": now},
            )
        db.session.commit()
        db.session.remove()

        upgrade()
        deputy_keys = dict(db.session.execute(text("SELECT name, photo_key FROM deputies")).all())
        assert deputy_keys["李建国"] is None and deputy_keys["张秀英"].startswith("deputies/")
        assert photo_store().get(deputy_keys["张秀英"]) == portrait
        assert "photo_jpeg" not in {c["name"] for c in inspect(db.session.connection()).get_columns("deputies")}
        rows = db.session.execute(
            text("SELECT position, storage_key, size, content_type, sha256 FROM item_photos ORDER BY position")
        ).all()
        assert len(rows) == len(blobs) and len({r.storage_key for r in rows}) == len(blobs)
        for row, blob in zip(rows, blobs, strict=True):
            assert row.content_type == "image/jpeg" and row.size == len(blob or b"")
            assert photo_store().get(row.storage_key) == blob  # the row without bytes has nothing stored
            assert "7K4P9QXD" not in row.storage_key
        assert "jpeg" not in {c["name"] for c in inspect(db.session.connection()).get_columns("item_photos")}
        keys = [r.storage_key for r in rows]
        db.session.remove()

        downgrade(revision=BEFORE_PHOTO_STORE)
        back = db.session.execute(text("SELECT jpeg FROM item_photos ORDER BY position")).scalars().all()
        assert [bytes(b) if b is not None else None for b in back] == blobs
        assert all(photo_store().get(key) is None for key in keys)  # the database holds them again
        back = dict(db.session.execute(text("SELECT name, photo_jpeg FROM deputies")).all())
        assert bytes(back["张秀英"]) == portrait and back["李建国"] is None
        assert photo_store().get(deputy_keys["张秀英"]) is None
        assert _stored_keys() == set()
        db.session.remove()
        db.engine.dispose()
