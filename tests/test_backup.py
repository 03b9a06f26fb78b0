"""``flask backup`` / ``flask restore``: a round trip on the suite's engine (SQLite, or PostgreSQL with
TEST_DATABASE_URL) while a thread submits items through the API, and the refusals.

Bad input tried: a restore into a non-empty instance; a missing directory; a directory without a manifest; a
manifest that is not JSON, that is another program's, of a newer format, or incomplete; a database file whose
bytes changed; a schema revision this code does not know; a backup into a non-empty directory; photos in the
backup restored into an instance whose photo folder is not empty, or whose photos are in S3. Each is refused with
its message and leaves the target as it was. Photos: the files store's folder is in the backup (the round trip
submits photos throughout); an S3 backup names the bucket and restores rows that read the bucket as it is."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tempfile
import threading
import uuid
from pathlib import Path

import pytest
from sqlalchemy import func, inspect, select
from sqlalchemy.engine import make_url

from backend import create_app
from backend.extensions import db
from backend.items.photo_store import photo_store, read_photo
from backend.models import Item, ItemEvent, ItemEventKind, ItemPhoto, OutboxMessage
from backend.ops import backup
from backend.qr.codes import current_code
from tests.conftest import PG_URL, app_config_for, create_pg_database, drop_pg_database, s3_settings
from tests.factories import StaffUserFactory
from tests.helpers import jpeg_bytes, stored_photo


@pytest.fixture
def fresh_database(tmp_path):
    """Builder: URLs of new, empty databases on the suite's engine (dropped afterwards)."""
    made = []

    def _make() -> str:
        url = create_pg_database(PG_URL) if PG_URL else "sqlite:///" + str(tmp_path / f"restored-{len(made)}.sqlite3")
        made.append(url)
        return url

    yield _make
    for url in made:
        if url.startswith("postgresql"):
            drop_pg_database(url)


def _other_app(url: str, **config):
    """Another instance on ``url``; its photo folder beside the database (never the checkout's instance/)."""
    folder = Path(make_url(url).database or "").parent if url.startswith("sqlite") else None
    photos = str((folder or Path(tempfile.mkdtemp())) / f"photos-{uuid.uuid4().hex[:8]}")
    other = create_app({**app_config_for(url), "PHOTOS_DIR": photos, **config})
    return other


def _refs() -> set[str]:
    return set(db.session.scalars(select(Item.ref)))


class Submitter(threading.Thread):
    """Submits items through the API in a loop until stopped; keeps the refs the server confirmed (201)."""

    def __init__(self, app, slug: str) -> None:
        super().__init__(daemon=True)
        self.app, self.slug = app, slug
        self.stop = threading.Event()
        self.confirmed: list[str] = []
        self.lock = threading.Lock()
        self.progress = threading.Condition(self.lock)
        self.errors: list[str] = []

    def run(self) -> None:
        with self.app.app_context():
            client = self.app.test_client()
            number = 0
            while not self.stop.is_set():
                number += 1
                body = f"第{number}件：小区路灯不亮，请帮忙看看。"
                if number % 2:  # the form, with a photo (the app's CSRF check is off for this thread's posts)
                    photo = jpeg_bytes((32 + number % 50, 24), (number % 255, 80, 80))
                    response = client.post(
                        f"/c/{self.slug}",
                        data={"body": body, "client_id": uuid.uuid4().hex, "photos": [(io.BytesIO(photo), "p.jpg")]},
                        content_type="multipart/form-data",
                    )
                    ref = response.headers.get("Location", "").split("/t/")[-1].split("?")[0]
                    created = response.status_code == 303 and ref
                else:
                    response = client.post(
                        "/api/v1/items", json={"code": self.slug, "body": body, "client_id": uuid.uuid4().hex}
                    )
                    created = response.status_code == 201
                    ref = created and response.get_json()["ref"]
                with self.progress:
                    if created:
                        self.confirmed.append(ref)
                    else:
                        self.errors.append(f"{response.status_code} {response.get_data(as_text=True)[:200]}")
                    self.progress.notify_all()
            db.session.remove()

    def wait_for(self, count: int) -> list[str]:
        """Block until ``count`` items are confirmed (or an error); return the confirmed refs so far."""
        with self.progress:
            assert self.progress.wait_for(lambda: len(self.confirmed) >= count or self.errors, timeout=60)
            assert not self.errors, self.errors
            return list(self.confirmed)


def test_round_trip_while_residents_submit(app, create_deputy, fresh_database, tmp_path):
    app.config.update(
        THROTTLE_PER_ADDRESS=100_000, THROTTLE_PER_CODE=100_000, NEAR_DUPLICATE_MINUTES=0, WTF_CSRF_ENABLED=False
    )
    deputy = create_deputy()
    StaffUserFactory(username="d1", deputy=deputy)
    slug = current_code(deputy).slug
    db.session.commit()  # on SQLite this thread's write transaction would hold the submitter back
    submitter = Submitter(app, slug)
    submitter.start()
    try:
        before = set(submitter.wait_for(5))
        target = tmp_path / "backup"
        manifest = backup.create_backup(target)
        during = set(submitter.wait_for(len(submitter.confirmed) + 5))  # and it went on after the snapshot
    finally:
        submitter.stop.set()
        submitter.join(30)
    assert not submitter.errors
    snapshot_items = manifest["tables"]["items"]
    assert len(before) <= snapshot_items <= len(during)
    assert manifest["schema_revision"] and manifest["engine"] == db.engine.dialect.name
    database_file = backup.SQLITE_FILE if not PG_URL else backup.PG_FILE
    photo_files = {name for name in manifest["files"] if name.startswith("photos/")}
    assert set(manifest["files"]) == {database_file} | photo_files and manifest["photos"] == "folder"
    # Every photo of the snapshot is in the folder (written before its item committed); a photo of a
    # submission in flight may be there without its item.
    assert len(photo_files) >= manifest["tables"]["item_photos"] >= 1

    restored_app = _other_app(fresh_database())
    with restored_app.app_context():
        result = backup.restore_backup(target)
        assert result.upgraded_from is None
        refs = _refs()
        # Every restored photo reads back from the restored folder, byte for byte as recorded.
        photos = db.session.scalars(select(ItemPhoto)).all()
        assert len(photos) == manifest["tables"]["item_photos"]
        for photo in photos:
            data = read_photo(photo)
            assert data is not None and hashlib.sha256(data).hexdigest() == photo.sha256 and len(data) == photo.size
        # Every item confirmed before the backup began is there, none that was never confirmed.
        assert before <= refs <= during
        assert len(refs) == snapshot_items
        # Every item is whole: its first event and the deputy's notice came in the same transaction.
        first_events = dict(
            db.session.execute(
                select(ItemEvent.item_id, func.count())
                .where(ItemEvent.kind == ItemEventKind.SUBMITTED)
                .group_by(ItemEvent.item_id)
            ).all()
        )
        notices = dict(
            db.session.execute(
                select(OutboxMessage.item_id, func.count())
                .where(OutboxMessage.kind == "deputy_new_item")
                .group_by(OutboxMessage.item_id)
            ).all()
        )
        ids = set(db.session.scalars(select(Item.id)))
        assert all(first_events.get(i) == 1 for i in ids) and all(notices.get(i) == 1 for i in ids)
        # The restored database answers the snapshot's figures.
        statuses = {str(s): c for s, c in db.session.execute(select(Item.status, func.count()).group_by(Item.status))}
        assert statuses == manifest["items_by_status"] and sum(statuses.values()) == snapshot_items
        assert {name: n for name, n in backup.instance_rows().items()} == {
            name: n for name, n in manifest["tables"].items() if n
        }
        # Restoring a second time into this (now full) instance is refused, nothing changed.
        with pytest.raises(backup.BackupError, match="已有数据"):
            backup.restore_backup(target)
        assert _refs() == refs
        db.session.remove()
        db.engine.dispose()


def _item_with_photo(app, create_deputy) -> tuple[Item, bytes]:
    deputy = create_deputy()
    slug = current_code(deputy).slug
    db.session.commit()
    answer = app.test_client().post("/api/v1/items", json={"code": slug, "body": "路灯不亮。", "client_id": "a" * 32})
    assert answer.status_code == 201
    item = db.session.scalar(select(Item))
    data = jpeg_bytes((40, 30), (20, 120, 220))
    db.session.add(stored_photo(item.id, data=data, sha256=hashlib.sha256(data).hexdigest()))
    db.session.commit()
    return item, data


def test_the_cli_round_trip_with_the_photo_folder(app, create_deputy, fresh_database, tmp_path):
    item, data = _item_with_photo(app, create_deputy)
    ref, key = item.ref, item.access_key
    runner = app.test_cli_runner()
    target = tmp_path / "backup"
    result = runner.invoke(args=["backup", str(target)])
    assert result.exit_code == 0, result.output
    assert "备份完成" in result.output and "照片：在备份里" in result.output
    manifest = json.loads((target / backup.MANIFEST).read_text())
    stored_key = db.session.scalar(select(ItemPhoto.storage_key))
    assert f"photos/{stored_key}" in manifest["files"] and manifest["photos"] == "folder"

    # A backup into the same, now non-empty, directory is refused.
    again = runner.invoke(args=["backup", str(target)])
    assert again.exit_code == 1 and "不是空目录" in again.output

    db.session.remove()  # this thread's transaction on the first instance ends before another instance's begins
    # Refused, nothing written: an instance whose photo folder holds files, and one whose photos are in S3.
    busy_photos = tmp_path / "busy-photos"
    busy_photos.mkdir()
    (busy_photos / "x.jpg").write_bytes(b"x")
    s3 = s3_settings("http://127.0.0.1:9", "unused")
    for config, message in (({"PHOTOS_DIR": str(busy_photos)}, "不是空的"), (s3, "PHOTO_STORE=s3")):
        refusing_app = _other_app(fresh_database(), **config)
        with refusing_app.app_context():
            refused = refusing_app.test_cli_runner().invoke(args=["restore", str(target)])
            assert refused.exit_code == 1 and message in refused.output
            assert not set(inspect(db.session.connection()).get_table_names()) - {"alembic_version"}  # nothing written
            db.session.remove()
            db.engine.dispose()
    assert [p.name for p in busy_photos.iterdir()] == ["x.jpg"]

    restored_photos = tmp_path / "restored-photos"
    restored_app = _other_app(fresh_database(), PHOTOS_DIR=str(restored_photos))
    with restored_app.app_context():
        done = restored_app.test_cli_runner().invoke(args=["restore", str(target)])
        assert done.exit_code == 0, done.output
        assert (restored_photos / stored_key).read_bytes() == data
        assert db.session.scalar(select(func.count()).select_from(Item)) == manifest["tables"]["items"]
        # The photo's URL answers on the restored instance as it did before.
        served = restored_app.test_client().get(f"/t/{ref}/photos/0.jpg?k={key}")
        assert served.status_code == 200 and served.data == data
        db.session.remove()
        db.engine.dispose()


def test_with_photos_in_s3_the_backup_names_the_bucket_and_the_restore_reads_it(
    app, create_deputy, fresh_database, tmp_path, s3_photos, s3_server
):
    bucket = s3_photos()
    item, data = _item_with_photo(app, create_deputy)
    ref, key = item.ref, item.access_key
    result = app.test_cli_runner().invoke(args=["backup", str(tmp_path / "backup")])
    assert result.exit_code == 0, result.output
    assert "对象存储" in result.output
    manifest = json.loads((tmp_path / "backup" / backup.MANIFEST).read_text())
    assert manifest["photos"].startswith(f"s3://{bucket} ")
    assert not [name for name in manifest["files"] if name.startswith("photos")]
    db.session.remove()

    restored_app = _other_app(fresh_database(), **s3_settings(s3_server, bucket))
    with restored_app.app_context():
        backup.restore_backup(tmp_path / "backup")
        photo = db.session.scalar(select(ItemPhoto))
        assert read_photo(photo) == data == photo_store().get(photo.storage_key)
        served = restored_app.test_client().get(f"/t/{ref}/photos/0.jpg?k={key}")
        assert served.status_code == 200 and served.data == data
        db.session.remove()
        db.engine.dispose()


def _damage(target: Path, how: str) -> None:
    manifest_path = target / backup.MANIFEST
    manifest = json.loads(manifest_path.read_text())
    database_file = target / next(iter(manifest["files"]))
    if how == "no_manifest":
        manifest_path.unlink()
    elif how == "not_json":
        manifest_path.write_text('{"format": "mashanglian-backup", ')
    elif how == "foreign":
        manifest_path.write_text(json.dumps({"format": "pg_backup_tool", "version": 3}))
    elif how == "newer_format":
        manifest["format_version"] = backup.FORMAT_VERSION + 1
        manifest_path.write_text(json.dumps(manifest))
    elif how == "incomplete":
        del manifest["tables"]
        manifest_path.write_text(json.dumps(manifest))
    elif how == "file_changed":
        data = bytearray(database_file.read_bytes())
        data[len(data) // 2] ^= 0xFF
        database_file.write_bytes(bytes(data))
    elif how == "file_missing":
        database_file.unlink()
    elif how == "unknown_revision":
        manifest["schema_revision"] = ["ffffffffffff"]
        manifest_path.write_text(json.dumps(manifest))
    elif how == "escapes":
        manifest["files"]["../outside"] = {"bytes": 1, "sha256": "0" * 64}
        manifest_path.write_text(json.dumps(manifest))


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("no_manifest", "没有 manifest.json"),
        ("not_json", "不是有效的 JSON"),
        ("foreign", "不是码上联备份的清单"),
        ("newer_format", "不是本程序能读的"),
        ("incomplete", "不完整"),
        ("file_changed", "已损坏"),
        ("file_missing", "备份缺少文件"),
        ("unknown_revision", "不在本程序的迁移里"),
        ("escapes", "不在备份目录里"),
    ],
)
def test_a_damaged_or_foreign_backup_is_refused_and_nothing_is_written(
    app, create_deputy, fresh_database, tmp_path, how, message
):
    create_deputy()
    target = tmp_path / "backup"
    backup.create_backup(target)
    _damage(target, how)
    empty_app = _other_app(fresh_database())
    with empty_app.app_context():
        result = empty_app.test_cli_runner().invoke(args=["restore", str(target)])
        assert result.exit_code == 1
        assert message in result.output, result.output
        assert not set(inspect(db.session.connection()).get_table_names()) - {"alembic_version"}
        db.session.remove()
        db.engine.dispose()


def test_a_restore_into_a_non_empty_instance_or_from_nowhere_is_refused(app, create_deputy, runner, tmp_path):
    create_deputy()
    target = tmp_path / "backup"
    backup.create_backup(target)
    before = backup.instance_rows()
    result = runner.invoke(args=["restore", str(target)])
    assert result.exit_code == 1 and "已有数据" in result.output and "没有做任何改动" in result.output
    assert backup.instance_rows() == before
    missing = runner.invoke(args=["restore", str(tmp_path / "nowhere")])
    assert missing.exit_code == 1 and "找不到备份目录" in missing.output
    assert backup.instance_rows() == before
    shutil.rmtree(target)
