"""Dashboard indexes: a station's items by time covering the figures' columns, a station's open items
by due date, and the duplicates of an item; the two indexes no query needs any more are dropped.

Every index on ``items`` is written by each submission, so this trades three for three, and the
new partial ones are small (open items) or written only when an item is marked a duplicate:

- ``ix_items_station_created`` (station_id, created_at) gains INCLUDE columns on PostgreSQL, so
  that the supervision figures of a station or region are an index-only scan (SQLite keeps the
  plain index; it has no INCLUDE);
- ``ix_items_station_open_due`` (station_id, due_at) on open items: the overdue count and list of
  a station or region, and the station inbox's open groups;
- ``ix_items_duplicate_of_id`` on the rows that have one (an unindexed foreign key until now);
- dropped: ``ix_items_station_status_created`` (the station inbox now reads the two above) and
  ``ix_items_deputy_due`` (the deputy inbox reads open items through ``ix_items_deputy_open_due``
  and closed ones through ``ix_items_deputy_status_created``; nothing else orders by due date
  per deputy).

Revision ID: 75246af8fb6b
Revises: d652b4646b2d
Create Date: 2026-11-21 08:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "75246af8fb6b"
down_revision = "d652b4646b2d"
branch_labels = None
depends_on = None

OPEN_STATUS_SQL = "status IN ('submitted', 'accepted', 'forwarded', 'answered')"
FIGURE_COLUMNS = ["status", "is_held", "first_answered_at", "resolved_at", "satisfaction", "channel", "deputy_id"]


def upgrade():
    op.drop_index("ix_items_station_created", table_name="items")
    op.create_index(
        "ix_items_station_created",
        "items",
        ["station_id", "created_at"],
        postgresql_include=FIGURE_COLUMNS,
    )
    op.create_index(
        "ix_items_station_open_due",
        "items",
        ["station_id", "due_at"],
        postgresql_include=["id", "paused_at", "is_held", "deputy_id"],
        sqlite_where=sa.text(OPEN_STATUS_SQL),
        postgresql_where=sa.text(OPEN_STATUS_SQL),
    )
    op.create_index(
        "ix_items_duplicate_of_id",
        "items",
        ["duplicate_of_id"],
        sqlite_where=sa.text("duplicate_of_id IS NOT NULL"),
        postgresql_where=sa.text("duplicate_of_id IS NOT NULL"),
    )
    op.drop_index("ix_items_station_status_created", table_name="items")
    op.drop_index("ix_items_deputy_due", table_name="items")


def downgrade():
    op.create_index("ix_items_deputy_due", "items", ["deputy_id", "due_at"])
    op.create_index("ix_items_station_status_created", "items", ["station_id", "status", "created_at"])
    op.drop_index("ix_items_duplicate_of_id", table_name="items")
    op.drop_index("ix_items_station_open_due", table_name="items")
    op.drop_index("ix_items_station_created", table_name="items")
    op.create_index("ix_items_station_created", "items", ["station_id", "created_at"])
