"""Units of a stopped department are stopped too (data only).

Reviewed: no schema change. From now on deactivating a department deactivates its units with it
(``admin.departments.set_active``); a department stopped before that may still have active units, which a deputy
would be offered when forwarding. This stops them, as deactivating their department now would.

Downgrade changes nothing: which of those units were active before cannot be known, and a supervisor can
reactivate a unit once its department is back.

Revision ID: e4a8d2c6b913
Revises: b7e2c4a91d05
Create Date: 2026-12-03 17:15:00.000000

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "e4a8d2c6b913"
down_revision = "b7e2c4a91d05"
branch_labels = None
depends_on = None

departments = sa.table(
    "departments", sa.column("id", sa.Integer), sa.column("parent_id", sa.Integer), sa.column("is_active", sa.Boolean)
)


def upgrade():
    parents = departments.alias("parents")
    stopped = sa.select(parents.c.id).where(parents.c.is_active == sa.false())
    op.execute(
        departments.update()
        .where(departments.c.parent_id.in_(stopped), departments.c.is_active == sa.true())
        .values(is_active=False)
    )


def downgrade():
    pass
