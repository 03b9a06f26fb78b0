"""An account's recent notices: an index on ``outbox_messages (staff_user_id, kind, created_at)``.

Reviewed: one new index, nothing else. Every new item to a deputy with an account asks when that account's last
notice went and whether one is waiting (``backend.outbox.queue._LAST_NOTICES``), inside the submission's write
transaction; the outbox keeps its rows, so without the index each submission read the whole table (the plan was
a full scan on both engines). Downgrade drops the index.

Revision ID: d2f6b8a4c1e7
Revises: e4a8d2c6b913
Create Date: 2026-12-03 21:15:00.000000

"""

from alembic import op


# revision identifiers, used by Alembic.
revision = "d2f6b8a4c1e7"
down_revision = "e4a8d2c6b913"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index(
        "ix_outbox_messages_account_kind_created",
        "outbox_messages",
        ["staff_user_id", "kind", "created_at"],
        unique=False,
    )


def downgrade():
    op.drop_index("ix_outbox_messages_account_kind_created", table_name="outbox_messages")
