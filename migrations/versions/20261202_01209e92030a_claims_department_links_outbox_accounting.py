"""Department links that expire and can be renewed; outbox accounting (sends apart from claims).

Reviewed by hand.

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
Revises: 75246af8fb6b
Create Date: 2026-12-02 09:00:00.000000

"""

import hashlib
import secrets

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "01209e92030a"
down_revision = "75246af8fb6b"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("item_forwards", schema=None) as batch_op:
        batch_op.alter_column("token_hash", existing_type=sa.String(length=64), nullable=True)
        batch_op.add_column(sa.Column("link_version", sa.Integer(), server_default="1", nullable=False))
        batch_op.add_column(sa.Column("link_renewed_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lease_token", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("quota_holds", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("releases", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("has_reserved_credit", sa.Boolean(), server_default=sa.false(), nullable=False))
    op.execute(
        "UPDATE outbox_messages SET lease_token = attempts,"
        " has_reserved_credit = (attempts > 0 AND status IN ('pending', 'held', 'sent'))"
    )


def downgrade():
    connection = op.get_bind()
    forwards = sa.table("item_forwards", sa.column("id", sa.Integer), sa.column("token_hash", sa.String))
    for (forward_id,) in connection.execute(sa.select(forwards.c.id).where(forwards.c.token_hash.is_(None))):
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
