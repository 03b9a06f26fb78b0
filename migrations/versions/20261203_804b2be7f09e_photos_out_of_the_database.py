"""Photos out of the database: item photos' bytes move to the photo store; the row keeps the metadata.

Reviewed by hand.

item_photos
    New columns ``storage_key`` (unique; a random key, ``backend.items.photo_store.new_key``),
    ``size`` (bytes) and ``content_type``; ``sha256``, ``width`` and ``height`` stay. Each
    existing photo is written to the store this instance is configured for (``PHOTO_STORE``:
    files under ``PHOTOS_DIR`` / ``<instance>/photos`` by default, or the S3 bucket) and its row
    updated, 200 rows at a time (the BLOBs are read a batch at a time, never all at once); then
    the ``jpeg`` column goes. A row without bytes (the column was nullable) gets a key with
    nothing stored under it and size 0: its URL answers 404, as a missing photo should. If the
    upgrade fails, the files it wrote are removed again (the schema change rolls back with the
    transaction). Run it with the settings the service will use, so the photos land where the
    service reads them; stop the web server and workers meanwhile.
    Downgrade: the ``jpeg`` column comes back and is filled from the store, a batch at a time; the
    new columns go; then the stored files or objects are removed (the database holds them again).
    A photo the store has lost comes back as NULL.

deputies
    ``photo_jpeg`` becomes ``photo_key`` (unique, nullable: a deputy without a portrait has none),
    under ``deputies/`` in the same store, the same way; ``photo_version`` (in the portrait's URL)
    does not change, so every URL and cached copy stays valid. Downgrade: the bytes come back into
    ``photo_jpeg``, then the files go.

The migration uses the application's photo store (``backend.items.photo_store``), so it runs inside
the application (``flask db upgrade``), as every migration here does.

Revision ID: 804b2be7f09e
Revises: 5e2b8c4f9a61
Create Date: 2026-12-03 07:40:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "804b2be7f09e"
down_revision = "5e2b8c4f9a61"
branch_labels = None
depends_on = None

BATCH = 200
JPEG = "image/jpeg"

deputies = sa.table(
    "deputies",
    sa.column("id", sa.Integer),
    sa.column("photo_jpeg", sa.LargeBinary),
    sa.column("photo_key", sa.String),
)
photos = sa.table(
    "item_photos",
    sa.column("id", sa.Integer),
    sa.column("jpeg", sa.LargeBinary),
    sa.column("storage_key", sa.String),
    sa.column("size", sa.Integer),
    sa.column("content_type", sa.String),
)


def _batches(conn, table, *columns, where=None):
    """The rows of ``table`` by id, ``BATCH`` at a time (the BLOBs never all in memory)."""
    last_id = 0
    while True:
        query = sa.select(table.c.id, *columns).where(table.c.id > last_id).order_by(table.c.id).limit(BATCH)
        rows = conn.execute(query if where is None else query.where(where)).all()
        if not rows:
            return
        yield rows
        last_id = rows[-1].id


def upgrade():
    from backend.items.photo_store import DEPUTY_PREFIX, new_key, photo_store

    with op.batch_alter_table("item_photos", schema=None) as batch_op:
        batch_op.add_column(sa.Column("storage_key", sa.String(length=80), nullable=True))
        batch_op.add_column(sa.Column("size", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("content_type", sa.String(length=40), nullable=True))

    conn = op.get_bind()
    store = photo_store()
    written = []
    try:
        last_id = 0
        while True:
            rows = conn.execute(
                sa.select(photos.c.id, photos.c.jpeg).where(photos.c.id > last_id).order_by(photos.c.id).limit(BATCH)
            ).all()
            if not rows:
                break
            for row in rows:
                key = new_key()
                data = bytes(row.jpeg) if row.jpeg is not None else b""
                if data:
                    store.put(key, data, JPEG)
                    written.append(key)
                conn.execute(
                    photos.update()
                    .where(photos.c.id == row.id)
                    .values(storage_key=key, size=len(data), content_type=JPEG)
                )
            last_id = rows[-1].id
        with op.batch_alter_table("deputies", schema=None) as batch_op:
            batch_op.add_column(sa.Column("photo_key", sa.String(length=80), nullable=True))
        for rows in _batches(conn, deputies, deputies.c.photo_jpeg, where=deputies.c.photo_jpeg.is_not(None)):
            for row in rows:
                key = new_key(DEPUTY_PREFIX)
                store.put(key, bytes(row.photo_jpeg), JPEG)
                written.append(key)
                conn.execute(deputies.update().where(deputies.c.id == row.id).values(photo_key=key))
    except BaseException:
        for key in written:
            store.delete(key)
        raise
    with op.batch_alter_table("deputies", schema=None) as batch_op:
        batch_op.create_unique_constraint(batch_op.f("uq_deputies_photo_key"), ["photo_key"])
        batch_op.drop_column("photo_jpeg")

    with op.batch_alter_table("item_photos", schema=None) as batch_op:
        batch_op.alter_column("storage_key", existing_type=sa.String(length=80), nullable=False)
        batch_op.alter_column("size", existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column("content_type", existing_type=sa.String(length=40), nullable=False)
        batch_op.create_unique_constraint(batch_op.f("uq_item_photos_storage_key"), ["storage_key"])
        batch_op.drop_column("jpeg")


def downgrade():
    from backend.items.photo_store import photo_store

    with op.batch_alter_table("item_photos", schema=None) as batch_op:
        batch_op.add_column(sa.Column("jpeg", sa.LargeBinary(), nullable=True))

    conn = op.get_bind()
    store = photo_store()
    keys = []
    last_id = 0
    while True:
        rows = conn.execute(
            sa.select(photos.c.id, photos.c.storage_key)
            .where(photos.c.id > last_id)
            .order_by(photos.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            break
        for row in rows:
            data = store.get(row.storage_key)
            keys.append(row.storage_key)
            conn.execute(photos.update().where(photos.c.id == row.id).values(jpeg=data))
        last_id = rows[-1].id

    with op.batch_alter_table("item_photos", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_item_photos_storage_key"), type_="unique")
        batch_op.drop_column("content_type")
        batch_op.drop_column("size")
        batch_op.drop_column("storage_key")

    with op.batch_alter_table("deputies", schema=None) as batch_op:
        batch_op.add_column(sa.Column("photo_jpeg", sa.LargeBinary(), nullable=True))
    for rows in _batches(conn, deputies, deputies.c.photo_key, where=deputies.c.photo_key.is_not(None)):
        for row in rows:
            keys.append(row.photo_key)
            conn.execute(
                deputies.update().where(deputies.c.id == row.id).values(photo_jpeg=store.get(row.photo_key))
            )
    with op.batch_alter_table("deputies", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_deputies_photo_key"), type_="unique")
        batch_op.drop_column("photo_key")

    for key in keys:  # the database holds the bytes again
        store.delete(key)
