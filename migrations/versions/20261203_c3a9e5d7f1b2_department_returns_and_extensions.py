"""Departments in the chain: a forward given back (退回), a department's request for more time, a second hop.

Reviewed: columns added, all empty for the forwards and stations there are; downgrade drops them.

- ``item_forwards.returned_at``, ``return_reason``: the department gave the item back to the
  deputy, and why; a returned forward is closed like a revoked one.
- ``item_forwards.extension_due_at``, ``extension_reason``, ``extension_requested_at``: a pending
  request for more time, until the deputy grants or refuses it.
- ``departments.parent_id``: the department a unit belongs to (empty: none); ``item_forwards.parent_forward_id``:
  the forward of the department that passed the item on to its unit (a second hop).
- ``stations.department_extension_max_days``: the most days one such request may add (empty: the
  configured default ``DEPARTMENT_EXTENSION_MAX_DAYS``).

Revision ID: c3a9e5d7f1b2
Revises: 804b2be7f09e
Create Date: 2026-12-03 07:30:00.000000

"""

from alembic import op
import sqlalchemy as sa



# revision identifiers, used by Alembic.
revision = "c3a9e5d7f1b2"
down_revision = "804b2be7f09e"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("item_forwards", schema=None) as batch_op:
        batch_op.add_column(sa.Column("returned_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("return_reason", sa.Text(), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("extension_due_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("extension_reason", sa.Text(), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("extension_requested_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("parent_forward_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_item_forwards_parent_forward_id"), ["parent_forward_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_item_forwards_parent_forward_id_item_forwards"), "item_forwards", ["parent_forward_id"], ["id"]
        )
    with op.batch_alter_table("departments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("parent_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_departments_parent_id"), ["parent_id"], unique=False)
        batch_op.create_foreign_key(batch_op.f("fk_departments_parent_id_departments"), "departments", ["parent_id"], ["id"])
    with op.batch_alter_table("stations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("department_extension_max_days", sa.SmallInteger(), nullable=True))


def downgrade():
    with op.batch_alter_table("stations", schema=None) as batch_op:
        batch_op.drop_column("department_extension_max_days")
    with op.batch_alter_table("departments", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_departments_parent_id_departments"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_departments_parent_id"))
        batch_op.drop_column("parent_id")
    with op.batch_alter_table("item_forwards", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_item_forwards_parent_forward_id_item_forwards"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_item_forwards_parent_forward_id"))
        batch_op.drop_column("parent_forward_id")
        batch_op.drop_column("extension_requested_at")
        batch_op.drop_column("extension_due_at")
        batch_op.drop_column("extension_reason")
        batch_op.drop_column("return_reason")
        batch_op.drop_column("returned_at")
