"""A station merged into another remembers which, so that its printed code leads there.

Reviewed: one nullable column added to ``stations`` with a foreign key to ``stations``, empty for
the stations there are (none was merged before); downgrade drops it. A merged station is also
closed (``is_active`` false), so nothing else reads the column but the code's resolution.

- ``stations.merged_into_id``: the station this one was merged into (admin/regions.py).

Revision ID: 3c9e5a7d1b24
Revises: 01209e92030a
Create Date: 2026-12-03 07:40:00.000000

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "3c9e5a7d1b24"
down_revision = "01209e92030a"
branch_labels = None
depends_on = None


def upgrade():
    if op.get_context().dialect.name == "sqlite":
        # Batch mode would copy the table, which the other tables' foreign keys to stations refuse once they
        # hold rows; SQLite adds a nullable column with its REFERENCES clause in place.
        op.execute(
            "ALTER TABLE stations ADD COLUMN merged_into_id INTEGER "
            "CONSTRAINT fk_stations_merged_into_id_stations REFERENCES stations (id)"
        )
        return
    op.add_column("stations", sa.Column("merged_into_id", sa.Integer(), nullable=True))
    op.create_foreign_key(op.f("fk_stations_merged_into_id_stations"), "stations", "stations", ["merged_into_id"], ["id"])


def downgrade():
    if op.get_context().dialect.name == "sqlite":
        with op.batch_alter_table("stations", schema=None) as batch_op:
            batch_op.drop_column("merged_into_id")  # the table is copied without it, and without its REFERENCES
        return
    op.drop_constraint(op.f("fk_stations_merged_into_id_stations"), "stations", type_="foreignkey")
    op.drop_column("stations", "merged_into_id")
