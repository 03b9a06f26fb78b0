"""One-time activation links: a person sets their own password; nobody else ever sees it.

Reviewed: one new table, empty; downgrade drops it. Accounts made before keep their passwords.

- ``activation_links``: the account, the SHA-256 of the token (unique), who made it, when it was
  made, expires, was used or was ended by a newer one.

Revision ID: 5e2b8c4f9a61
Revises: 3c9e5a7d1b24
Create Date: 2026-12-03 08:00:00.000000

"""

from alembic import op
import sqlalchemy as sa



# revision identifiers, used by Alembic.
revision = "5e2b8c4f9a61"
down_revision = "3c9e5a7d1b24"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "activation_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("staff_user_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["staff_users.id"], name=op.f("fk_activation_links_created_by_id_staff_users")
        ),
        sa.ForeignKeyConstraint(
            ["staff_user_id"], ["staff_users.id"], name=op.f("fk_activation_links_staff_user_id_staff_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_activation_links")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_activation_links_token_hash")),
    )
    with op.batch_alter_table("activation_links", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_activation_links_staff_user_id"), ["staff_user_id"], unique=False)


def downgrade():
    with op.batch_alter_table("activation_links", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_activation_links_staff_user_id"))
    op.drop_table("activation_links")
