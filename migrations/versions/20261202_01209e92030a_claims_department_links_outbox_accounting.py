"""Receipts and claims for in-person items (被满意); department links that expire and can be renewed;
outbox accounting (sends apart from claims).

Reviewed by hand.

items, item_receipts
    An item a deputy enters in person no longer has a key the deputy sees: it has none until the
    resident claims it with a receipt's one-time link (``item_receipts``, the token's SHA-256
    only; ``items.claimed_at``). In-person items made before this change had their key shown to
    the deputy on the entry page, so they count as unclaimed: their ``access_key`` is voided
    (set to "", which matches no key), whatever their status. Nobody — resident or deputy — can
    look them up or rate them with the old key from now on; the deputy issues a receipt from the
    item page and the resident claims the item on their own phone, which makes a fresh key. Their
    past ratings stay as recorded (the figures show in-person items' satisfaction apart, and count
    only verdicts given after a claim). On PostgreSQL ``ix_items_station_created`` gains
    ``rated_at`` and ``claimed_at`` in its INCLUDE list, so that telling those verdicts apart keeps
    the figures an index-only scan (rebuilt: on a county of a million items, tens of seconds).
    Receipts are read by their unique hash and by item.
    Downgrade: the voided keys get fresh random keys nobody holds (the old code needs one; the
    items stay unreachable, as they are now, until staff hand a key out the old way); CLAIMED
    events become public notes (the old code knows no such kind); the column and the table go.

item_forwards
    A department link's token is now derived from the forward's id and ``link_version`` with an
    HMAC of the secret key, so nothing secret is stored, the page can show it again, and a renewal
    (``link_version + 1``, ``link_renewed_at``) ends the earlier ones. Links handed out before keep
    working through their stored ``token_hash`` until renewed, so the column stays, nullable (new
    forwards store none). Downgrade: forwards with no ``token_hash`` get the SHA-256 of a random
    value nobody holds: their links stop working under the old code, which cannot check an HMAC;
    the deputy forwards again if a department still needs one.

outbox_messages
    ``attempts`` was also the claim's lease token, so it counted claims, held and released
    ones included. New columns: ``lease_token`` (claims; the token that guards a claim's writes),
    ``quota_holds`` and ``releases`` (claims given back unsent), and ``has_reserved_credit``
    (a subscription credit is set aside for the row, which ``attempts = 0`` used to say).
    Existing rows: ``lease_token = attempts``, so a claim in flight during the upgrade keeps a
    valid token (stop the workers anyway); ``has_reserved_credit`` is true where the old rules
    held a credit — claimed at least once and pending, held or sent (dead and failed rows gave
    theirs back, skipped rows never had one). Their ``attempts`` keep the old count of claims:
    how many of those were sends is not recorded anywhere, and the count is an upper bound.
    Downgrade: ``attempts = lease_token``, which is what the old worker expects of a row that
    holds a credit (above 0) and of a claim's token, then the columns go.

Revision ID: 01209e92030a
Revises: b5d1f0c8a3e2
Create Date: 2026-12-02 09:00:00.000000

"""

import hashlib
import secrets

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "01209e92030a"
down_revision = "b5d1f0c8a3e2"
branch_labels = None
depends_on = None

KEY_ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"  # backend/items/refs.py, as of this revision
# ix_items_station_created's INCLUDE list (PostgreSQL): 75246af8fb6b's, and the two columns the verdicts need.
FIGURE_COLUMNS = [
    "status", "is_held", "first_answered_at", "resolved_at", "satisfaction", "channel", "deputy_id", "rated_at",
    "claimed_at",
]


def upgrade():
    op.create_table(
        "item_receipts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("issued_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("voided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resident_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["issued_by_id"], ["staff_users.id"], name=op.f("fk_item_receipts_issued_by_id_staff_users")),
        sa.ForeignKeyConstraint(["item_id"], ["items.id"], name=op.f("fk_item_receipts_item_id_items")),
        sa.ForeignKeyConstraint(["resident_id"], ["residents.id"], name=op.f("fk_item_receipts_resident_id_residents")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_item_receipts")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_item_receipts_token_hash")),
    )
    with op.batch_alter_table("item_receipts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_item_receipts_item_id"), ["item_id"], unique=False)
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE items SET access_key = '' WHERE channel = 'in_person'")
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_items_station_created", table_name="items")
        op.create_index(
            "ix_items_station_created", "items", ["station_id", "created_at"], postgresql_include=FIGURE_COLUMNS
        )

    with op.batch_alter_table("item_forwards", schema=None) as batch_op:
        batch_op.alter_column("token_hash", existing_type=sa.String(length=64), nullable=True)
        batch_op.add_column(sa.Column("link_version", sa.Integer(), server_default="1", nullable=False))
        batch_op.add_column(sa.Column("link_renewed_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lease_token", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("quota_holds", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("releases", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("has_reserved_credit", sa.Boolean(), server_default="0", nullable=False))
    op.execute(
        "UPDATE outbox_messages SET lease_token = attempts,"
        " has_reserved_credit = (attempts > 0 AND status IN ('pending', 'held', 'sent'))"
    )


def downgrade():
    connection = op.get_bind()
    if connection.dialect.name == "postgresql":
        op.drop_index("ix_items_station_created", table_name="items")
        op.create_index(
            "ix_items_station_created", "items", ["station_id", "created_at"], postgresql_include=FIGURE_COLUMNS[:-2]
        )
    items = sa.table("items", sa.column("id", sa.Integer), sa.column("access_key", sa.String))
    for (item_id,) in connection.execute(sa.select(items.c.id).where(items.c.access_key == "")).all():
        unheld = "".join(secrets.choice(KEY_ALPHABET) for _ in range(17))
        connection.execute(items.update().where(items.c.id == item_id).values(access_key=unheld))
    op.execute("UPDATE item_events SET kind = 'note' WHERE kind = 'claimed'")
    # A plain DROP COLUMN (SQLite 3.35+): a batch would copy ``items``, and SQLite refuses to drop the old
    # table while item_events, item_photos … refer to it.
    op.execute("ALTER TABLE items DROP COLUMN claimed_at")
    with op.batch_alter_table("item_receipts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_item_receipts_item_id"))
    op.drop_table("item_receipts")

    forwards = sa.table("item_forwards", sa.column("id", sa.Integer), sa.column("token_hash", sa.String))
    for (forward_id,) in connection.execute(sa.select(forwards.c.id).where(forwards.c.token_hash.is_(None))).all():
        unheld = hashlib.sha256(secrets.token_bytes(32)).hexdigest()
        connection.execute(forwards.update().where(forwards.c.id == forward_id).values(token_hash=unheld))
    with op.batch_alter_table("item_forwards", schema=None) as batch_op:
        batch_op.drop_column("link_renewed_at")
        batch_op.drop_column("link_version")
        batch_op.alter_column("token_hash", existing_type=sa.String(length=64), nullable=False)
    op.execute("UPDATE outbox_messages SET attempts = lease_token")
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.drop_column("has_reserved_credit")
        batch_op.drop_column("releases")
        batch_op.drop_column("quota_holds")
        batch_op.drop_column("lease_token")
