"""The inbox's open groups read from the index alone: the two open-items indexes carry the columns they filter on.

Reviewed: two indexes replaced, nothing else. At province scale (10,000,000 items, a county's 20 stations with
33,022 open items) each of the supervisor's inbox statements on open items (the groups' count, then the overdue,
reopened and new stretches of page 1) read every open item's row from the table (a bitmap heap scan of 30,489
pages, 130-180 ms each) only to test its status, pause and reopen count; a deputy's (9,973 open items) did the
same over 9,972 pages. With those columns in the index the count is an index-only scan, and each stretch picks its
ids from the index before reading its few rows (``backend.items.inbox``):

- ``ix_items_station_open_due`` (station_id, due_at) on open items, INCLUDE (id, paused_at, is_held, deputy_id)
  becomes ``ix_items_station_open_groups``: the same key and rows, INCLUDE adds status, reopen_count, created_at;
- ``ix_items_deputy_open_due`` (deputy_id, due_at) on open items becomes ``ix_items_deputy_open_groups``: the same
  key and rows, INCLUDE (id, status, paused_at, is_held, reopen_count, created_at).

New names, created IF NOT EXISTS and the old ones dropped IF EXISTS, so that a large database can have them built
ahead with ``CREATE INDEX CONCURRENTLY`` (the same definitions) and this upgrade then only records it. SQLite has no
INCLUDE: there the indexes are the same as before under their new names. Downgrade restores the two old indexes.

Revision ID: a5c8e1f3b7d9
Revises: d2f6b8a4c1e7
Create Date: 2026-12-03 21:30:00.000000

"""

import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = "a5c8e1f3b7d9"
down_revision = "d2f6b8a4c1e7"
branch_labels = None
depends_on = None

OPEN_STATUS_SQL = "status IN ('submitted', 'accepted', 'forwarded', 'answered')"


def _open_index(name: str, owner: str, include: list[str], **options) -> None:
    op.create_index(
        name,
        "items",
        [owner, "due_at"],
        postgresql_include=include,
        sqlite_where=sa.text(OPEN_STATUS_SQL),
        postgresql_where=sa.text(OPEN_STATUS_SQL),
        **options,
    )


def upgrade():
    _open_index(
        "ix_items_station_open_groups",
        "station_id",
        ["id", "paused_at", "is_held", "deputy_id", "status", "reopen_count", "created_at"],
        if_not_exists=True,
    )
    _open_index(
        "ix_items_deputy_open_groups",
        "deputy_id",
        ["id", "status", "paused_at", "is_held", "reopen_count", "created_at"],
        if_not_exists=True,
    )
    op.drop_index("ix_items_station_open_due", table_name="items", if_exists=True)
    op.drop_index("ix_items_deputy_open_due", table_name="items", if_exists=True)


def downgrade():
    _open_index("ix_items_station_open_due", "station_id", ["id", "paused_at", "is_held", "deputy_id"])
    _open_index("ix_items_deputy_open_due", "deputy_id", [])
    op.drop_index("ix_items_deputy_open_groups", table_name="items")
    op.drop_index("ix_items_station_open_groups", table_name="items")
