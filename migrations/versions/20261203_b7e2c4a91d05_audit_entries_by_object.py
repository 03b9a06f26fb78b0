"""The audit log read by object: an index on ``audit_entries (object_type, object_id, created_at)``.

Reviewed: one new index, nothing else. A 代表建议's page lists its history (drafted, submitted, answered, a
message withdrawn by its resident) from the proposal's own audit rows; without the index each page would read
the whole log. Downgrade drops the index.

Revision ID: b7e2c4a91d05
Revises: fd5c1fabea7e
Create Date: 2026-12-03 17:10:00.000000

"""

from alembic import op


# revision identifiers, used by Alembic.
revision = "b7e2c4a91d05"
down_revision = "fd5c1fabea7e"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index(
        "ix_audit_entries_object", "audit_entries", ["object_type", "object_id", "created_at"], unique=False
    )


def downgrade():
    op.drop_index("ix_audit_entries_object", table_name="audit_entries")
