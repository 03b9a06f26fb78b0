"""Where photos' bytes live (items' photos, deputies' portraits): files under the instance folder (default) or
an S3-compatible bucket.

Photos were BLOBs in ``item_photos``: every backup carried every photo ever sent, and a province adds
hundreds of GB a year. The row now keeps what the application reasons about (key, size, content type,
SHA-256, pixel size); the bytes sit behind one small interface, ``PhotoStore`` (put / get / delete by
key), with two implementations:

- ``FileStore`` (``PHOTO_STORE=files``, the default): files under ``PHOTOS_DIR``, by default
  ``<instance>/photos``. Every process must see the same folder (as with SQLite's file). ``flask
  backup`` copies it.
- ``S3Store`` (``PHOTO_STORE=s3``): any S3-compatible object storage through boto3 (``S3_BUCKET``,
  ``S3_ENDPOINT_URL`` for a non-AWS service such as MinIO or a Chinese cloud's OSS/COS S3 endpoint,
  ``S3_ACCESS_KEY_ID`` / ``S3_SECRET_ACCESS_KEY``, ``S3_REGION``). The bucket is backed up by its own
  versioning or replication, not by ``flask backup``.

Deputies' portraits (``Deputy.photo_key``, under ``deputies/``) live in the same store.

Keys are random (``items/ab/<128 random bits>.jpg``): nothing about the item (its reference, its id)
can be read from a key or used to guess one, so a leaked bucket listing or a misconfigured public bucket
does not map photos to items, and the photo URLs (which keep checking access as before) stay the only way in.

Writes follow the transaction that records them:

- a new photo is written *before* its row commits (so a committed row always has its bytes); the key
  is remembered on the session as pending, and if the transaction rolls back (or the request ends
  without a commit) the file is removed at once. A process killed between the write and the commit
  leaves an orphan that no row names; ``flask photos sweep`` removes such orphans older than an hour.
- a photo that is deleted (``delete_item_photos``: retention, withdrawal) loses its row in the
  transaction, and its bytes only *after* that transaction commits: a rollback keeps both.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

from flask import Flask, current_app
from sqlalchemy import delete, event, select
from sqlalchemy.orm import Session

from backend.errors import UserError
from backend.extensions import db
from backend.items.photos import ProcessedPhoto
from backend.models import Deputy, ItemPhoto

JPEG = "image/jpeg"
STORES = ("files", "s3")
KEY_PREFIX = "items/"
DEPUTY_PREFIX = "deputies/"  # deputies' portraits (Deputy.photo_key), public at their versioned URL
PREFIXES = (KEY_PREFIX, DEPUTY_PREFIX)
# Session.info entries: keys written in this transaction (removed on rollback) and keys whose rows this
# transaction deletes (removed after commit).
_PENDING = "photo_store_pending"
_DOOMED = "photo_store_doomed"
ORPHAN_AGE = timedelta(hours=1)


class PhotoStoreError(Exception):
    """The photo store is misconfigured or did not answer; the message says which setting (Chinese)."""


class PhotoStore(Protocol):
    """Bytes by key: all the application asks of a place that keeps photos."""

    def put(self, key: str, data: bytes, content_type: str) -> None:
        """Keep ``data`` under ``key`` (replacing nothing: keys are fresh)."""

    def get(self, key: str) -> bytes | None:
        """The bytes under ``key``, or None when there are none."""

    def delete(self, key: str) -> None:
        """Remove ``key``; a key already gone is not an error."""

    def listing(self) -> Iterator[tuple[str, datetime]]:
        """Every key with the time it was written (for the orphan sweep)."""


@dataclass(frozen=True)
class FileStore:
    """Photos as files under ``root``; a file appears whole or not at all (written aside, then renamed)."""

    root: Path

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root.resolve() not in path.parents:
            raise ValueError(f"photo key outside the store: {key!r}")
        return path

    def put(self, key: str, data: bytes, content_type: str) -> None:
        """Write the file aside and rename it into place, so a reader never sees half a photo."""
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".part-", delete=False) as tmp:
            tmp.write(data)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp.name, path)

    def get(self, key: str) -> bytes | None:
        """The file's bytes, or None when it is missing."""
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None

    def delete(self, key: str) -> None:
        """Unlink the file (gone already is fine)."""
        self._path(key).unlink(missing_ok=True)

    def listing(self) -> Iterator[tuple[str, datetime]]:
        """Every stored photo file with its modification time."""
        for prefix in PREFIXES:
            base = self.root / prefix
            if not base.is_dir():
                continue
            for path in base.rglob("*"):
                if path.is_file() and not path.name.startswith(".part-"):
                    modified = datetime.fromtimestamp(path.stat().st_mtime, UTC)
                    yield path.relative_to(self.root).as_posix(), modified


@dataclass(frozen=True)
class S3Store:
    """Photos as objects of one bucket of an S3-compatible service."""

    client: object
    bucket: str

    def put(self, key: str, data: bytes, content_type: str) -> None:
        """One PUT of the object (photos are at most a few hundred KB once re-encoded)."""
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)

    def get(self, key: str) -> bytes | None:
        """The object's bytes, or None when the bucket has no such key."""
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=key)
        except self.client.exceptions.NoSuchKey:
            return None
        return answer["Body"].read()

    def delete(self, key: str) -> None:
        """DELETE the object (S3 answers 204 for a key that is not there)."""
        self.client.delete_object(Bucket=self.bucket, Key=key)

    def listing(self) -> Iterator[tuple[str, datetime]]:
        """Every object under the photos' prefixes with its LastModified time, page by page."""
        for prefix in PREFIXES:
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
            for page in pages:
                for entry in page.get("Contents", []):
                    yield entry["Key"], entry["LastModified"]


def photos_dir(app: Flask | None = None) -> Path:
    """The folder of the files store: ``PHOTOS_DIR``, or ``<instance>/photos`` when that is unset."""
    app = app or current_app
    return Path(app.config.get("PHOTOS_DIR") or Path(app.instance_path) / "photos")


def store_kind(app: Flask | None = None) -> str:
    """``files`` or ``s3``, as ``PHOTO_STORE`` says; anything else is refused with the setting named."""
    kind = ((app or current_app).config.get("PHOTO_STORE") or "files").strip().lower()
    if kind not in STORES:
        raise PhotoStoreError(f"PHOTO_STORE={kind!r} 无效：只能是 files（实例目录下的文件）或 s3（对象存储）。")
    return kind


def photo_store(app: Flask | None = None) -> PhotoStore:
    """The store this application is configured for (the S3 client is made once per set of settings)."""
    app = app or current_app
    if store_kind(app) == "files":
        return FileStore(photos_dir(app))
    config = app.config
    settings = tuple(
        config.get(name) or None
        for name in ("S3_BUCKET", "S3_ENDPOINT_URL", "S3_REGION", "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY")
    )
    if not settings[0]:
        raise PhotoStoreError("PHOTO_STORE=s3 需要设置 S3_BUCKET（存放照片的桶）。")
    cached = app.extensions.get("photo_store_s3")
    if cached is not None and cached[0] == settings:
        return cached[1]
    import boto3
    from botocore.config import Config as BotoConfig

    bucket, endpoint, region, key_id, secret = settings
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=region or "us-east-1",
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        # Short timeouts: a photo page waiting on a dead endpoint must not hold a worker for a minute.
        config=BotoConfig(connect_timeout=5, read_timeout=20, retries={"max_attempts": 3, "mode": "standard"}),
    )
    store = S3Store(client, bucket)
    app.extensions["photo_store_s3"] = (settings, store)
    return store


def probe() -> None:
    """Write, read back and delete a small object, so ``flask doctor`` finds a store that cannot keep photos
    before a resident's submission does; raises ``PhotoStoreError`` saying what failed."""
    store = photo_store()
    key = f"doctor/probe-{secrets.token_hex(8)}"
    where = f"对象存储桶 {current_app.config.get('S3_BUCKET')}" if store_kind() == "s3" else f"照片目录 {photos_dir()}"
    try:
        store.put(key, b"probe", "text/plain")
        if store.get(key) != b"probe":
            raise PhotoStoreError(f"{where} 写入后读不回来。")
        store.delete(key)
    except PhotoStoreError:
        raise
    except Exception as exc:  # OSError from the folder, botocore's errors from a bucket
        raise PhotoStoreError(f"{where} 无法写入照片：{type(exc).__name__}: {str(exc)[:200]}") from None


def new_key(prefix: str = KEY_PREFIX) -> str:
    """A fresh key that says nothing about its item or deputy: 128 random bits, fanned out over 256 folders."""
    token = secrets.token_hex(16)
    return f"{prefix}{token[:2]}/{token}.jpg"


def store_jpeg(data: bytes, prefix: str = KEY_PREFIX) -> str:
    """Write a JPEG under a fresh key before the transaction that records it; return the key. The key is
    pending until the session commits: a rollback, or a request that ends without committing, removes it.
    A store that does not answer: 503."""
    key = new_key(prefix)
    db.session.info.setdefault(_PENDING, []).append(key)  # first: a put that fails halfway leaves nothing either
    try:
        photo_store().put(key, data, JPEG)
    except Exception:
        current_app.logger.exception("the photo store did not take a photo")
        raise _unavailable("照片暂时无法保存，请稍后再提交。") from None
    return key


def store_photos(photos: Iterable[ProcessedPhoto]) -> list[dict]:
    """Write each photo to the store under a fresh key, before its transaction; return the ``item_photos``
    rows to insert (without ``item_id``). Until the session commits, the keys are pending: a rollback, or
    a request that ends without committing, removes them again. A store that does not answer: 503."""
    rows = []
    for position, photo in enumerate(photos):
        key = store_jpeg(photo.jpeg)
        rows.append(
            {
                "position": position,
                "width": photo.width,
                "height": photo.height,
                "storage_key": key,
                "size": len(photo.jpeg),
                "content_type": JPEG,
                "sha256": photo.sha256,
            }
        )
    return rows


def discard(rows: Iterable[dict]) -> None:
    """Remove photos written by ``store_photos`` whose rows will not be inserted after all."""
    keys = [row["storage_key"] for row in rows]
    pending = db.session.info.get(_PENDING, [])
    for key in keys:
        if key in pending:
            pending.remove(key)
    _remove(keys)


def _unavailable(message: str) -> UserError:
    return UserError("photo_store_unavailable", message, 503, retry_after=60)


def read_jpeg(key: str) -> bytes | None:
    """The bytes under ``key``; None (logged) when the store has lost them, so the page answers 404; 503
    (``UserError``) while the store does not answer."""
    try:
        data = photo_store().get(key)
    except Exception:
        current_app.logger.exception("the photo store did not answer for %s", key)
        raise _unavailable("照片暂时无法显示，请稍后再试。") from None
    if data is None:
        current_app.logger.error("no photo bytes under key %s", key)
    return data


def read_photo(photo: ItemPhoto) -> bytes | None:
    """The bytes of an item's photo (``read_jpeg``)."""
    return read_jpeg(photo.storage_key)


def read_deputy_photo(deputy: Deputy) -> bytes | None:
    """The bytes of a deputy's portrait, None when there is none (``read_jpeg``)."""
    return read_jpeg(deputy.photo_key) if deputy.photo_key else None


def replace_deputy_photo(deputy: Deputy, jpeg: bytes) -> None:
    """Give the deputy a new portrait: the new one stored now, the old one removed once this transaction commits."""
    old = deputy.photo_key
    deputy.photo_key = store_jpeg(jpeg, DEPUTY_PREFIX)
    if old:
        db.session.info.setdefault(_DOOMED, []).append(old)


def delete_item_photos(item_id: int) -> int:
    """Delete an item's photos: the rows now (flushed), the bytes once this transaction commits (retention,
    withdrawal). Returns how many there were."""
    keys = list(db.session.scalars(select(ItemPhoto.storage_key).where(ItemPhoto.item_id == item_id)))
    if keys:
        db.session.execute(delete(ItemPhoto).where(ItemPhoto.item_id == item_id))
        db.session.info.setdefault(_DOOMED, []).extend(keys)
    return len(keys)


def sweep_orphans(now: datetime | None = None) -> int:
    """Remove stored photos that no row names and that are older than ``ORPHAN_AGE`` (a process died
    between writing a photo and committing its item); younger ones may belong to a submission in flight."""
    now = now or datetime.now(UTC)
    store = photo_store()
    removed = 0
    batch: list[tuple[str, datetime]] = []

    def _flush() -> int:
        keys = [key for key, _ in batch]
        known = set(db.session.scalars(select(ItemPhoto.storage_key).where(ItemPhoto.storage_key.in_(keys))))
        known |= set(db.session.scalars(select(Deputy.photo_key).where(Deputy.photo_key.in_(keys))))
        gone = [key for key, written in batch if key not in known and now - written > ORPHAN_AGE]
        _remove(gone, store)
        batch.clear()
        return len(gone)

    for entry in store.listing():
        batch.append(entry)
        if len(batch) >= 500:
            removed += _flush()
    if batch:
        removed += _flush()
    db.session.rollback()
    return removed


def _remove(keys: Iterable[str], store: PhotoStore | None = None) -> None:
    keys = list(keys)
    if not keys:
        return
    store = store or photo_store()
    for key in keys:
        try:
            store.delete(key)
        except Exception:  # a store that fails here leaves an orphan for the sweep, not a 500
            current_app.logger.warning("could not remove photo %s; the orphan sweep will", key, exc_info=True)


def _after_commit(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint released: the outer transaction decides
    session.info.pop(_PENDING, None)
    _remove(session.info.pop(_DOOMED, []))


def _after_rollback(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint rolled back: rows written before it may still commit
    session.info.pop(_DOOMED, None)
    _remove(session.info.pop(_PENDING, []))


def _after_transaction_end(session: Session, transaction) -> None:
    if transaction.parent is None:  # the session closed without a commit (a commit took its keys already)
        session.info.pop(_DOOMED, None)
        _remove(session.info.pop(_PENDING, []))


def init_app(app: Flask) -> None:
    """Check ``PHOTO_STORE``, and remove the photos of transactions that did not commit."""
    store_kind(app)
    if not getattr(init_app, "_listening", False):
        event.listen(Session, "after_commit", _after_commit)
        event.listen(Session, "after_rollback", _after_rollback)
        event.listen(Session, "after_transaction_end", _after_transaction_end)
        init_app._listening = True

    @app.teardown_appcontext
    def _remove_uncommitted(_exc: BaseException | None) -> None:
        # Runs before Flask-SQLAlchemy's own teardown (registered earlier, so called later): a request that
        # wrote photos and ended without a commit or a rollback (an error answer) leaves no files behind.
        session = db.session()
        session.info.pop(_DOOMED, None)
        _remove(session.info.pop(_PENDING, []))
