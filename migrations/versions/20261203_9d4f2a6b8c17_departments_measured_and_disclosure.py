"""Departments measured and 公示: which department's answer a rating judged; the resident's consent to publish.

Reviewed: columns and indexes added; downgrade drops them.

- ``item_forwards.verdict``, ``verdict_at``: the resident's verdict on the forward whose answer it judged
  (``lifecycle.judged_forward``). Backfilled from the timeline: for every RATED event, the forward of
  that item answered last after the item's previous RATED event (or ever, for the first) gets that
  event's verdict and time (as ``judged_forward`` chooses it when a resident rates). A
  rating of an item a deputy entered in person, given without (or before) the resident's claim, is
  not the resident's own for certain (``stats.VERDICT_SOURCES``) and is not carried over. Where a
  later rating judged the same forward (no new answer between), the later one is kept, as the item
  keeps its latest verdict.
- ``ix_item_forwards_department_created``: the departments' figures over a range, from the index;
  ``ix_item_forwards_department_open_due``: the forwards still waiting for an answer (overdue, 台账).
- ``items.publish_consented_at``: when the resident agreed on the form to publish the item (公示);
  empty for every item there is: nobody was asked, so nothing is published.
- ``ix_items_station_published``: a station's published items, latest first (partial: only those).

Revision ID: 9d4f2a6b8c17
Revises: 7d41c2e9a5b3
Create Date: 2026-12-03 14:00:00.000000

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "9d4f2a6b8c17"
down_revision = "7d41c2e9a5b3"
branch_labels = None
depends_on = None

PUBLISHED_SQL = "publish_consented_at IS NOT NULL AND status = 'resolved'"
OPEN_FORWARD_SQL = "answered_at IS NULL AND returned_at IS NULL AND revoked_at IS NULL"

_events = sa.table(
    "item_events",
    sa.column("id", sa.Integer),
    sa.column("item_id", sa.Integer),
    sa.column("kind", sa.String),
    sa.column("data", sa.JSON),
    sa.column("created_at", sa.DateTime(timezone=True)),
)
_items = sa.table(
    "items",
    sa.column("id", sa.Integer),
    sa.column("channel", sa.String),
    sa.column("claimed_at", sa.DateTime(timezone=True)),
)
_forwards = sa.table(
    "item_forwards",
    sa.column("id", sa.Integer),
    sa.column("item_id", sa.Integer),
    sa.column("answered_at", sa.DateTime(timezone=True)),
    sa.column("revoked_at", sa.DateTime(timezone=True)),
    sa.column("returned_at", sa.DateTime(timezone=True)),
    sa.column("verdict", sa.String),
    sa.column("verdict_at", sa.DateTime(timezone=True)),
)


def _naive(moment):
    """Every moment as a naive UTC datetime: SQLite hands them back naive, PostgreSQL aware."""
    return moment.replace(tzinfo=None) if moment is not None and moment.tzinfo is not None else moment


def _backfill_verdicts(connection) -> None:
    ratings = connection.execute(
        sa.select(_events.c.item_id, _events.c.data, _events.c.created_at, _items.c.channel, _items.c.claimed_at)
        .join(_items, _items.c.id == _events.c.item_id)
        .where(_events.c.kind == "rated")
        .order_by(_events.c.item_id, _events.c.created_at, _events.c.id)
    ).all()
    if not ratings:
        return
    item_ids = sorted({row.item_id for row in ratings})
    answered: dict[int, list] = {}
    for start in range(0, len(item_ids), 500):
        rows = connection.execute(
            sa.select(_forwards.c.id, _forwards.c.item_id, _forwards.c.answered_at).where(
                _forwards.c.item_id.in_(item_ids[start : start + 500]),
                _forwards.c.answered_at.is_not(None),
            )
        ).all()
        for row in rows:
            answered.setdefault(row.item_id, []).append(row)
    previous: dict[int, object] = {}
    judged: dict[int, tuple] = {}
    for row in ratings:
        at = _naive(row.created_at)
        since = previous.get(row.item_id)
        previous[row.item_id] = at
        verdict = (row.data or {}).get("satisfaction")
        claimed = _naive(row.claimed_at)
        if verdict is None or (row.channel == "in_person" and (claimed is None or claimed > at)):
            continue
        candidates = [
            f
            for f in answered.get(row.item_id, [])
            if _naive(f.answered_at) <= at and (since is None or _naive(f.answered_at) > since)
        ]
        if candidates:
            latest = max(candidates, key=lambda f: (_naive(f.answered_at), f.id))
            judged[latest.id] = (verdict, row.created_at)
    for forward_id, (verdict, at) in judged.items():
        connection.execute(
            sa.update(_forwards).where(_forwards.c.id == forward_id).values(verdict=verdict, verdict_at=at)
        )


def upgrade():
    with op.batch_alter_table("item_forwards", schema=None) as batch_op:
        batch_op.add_column(sa.Column("verdict", sa.String(length=12), nullable=True))
        batch_op.add_column(sa.Column("verdict_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_item_forwards_department_created",
        "item_forwards",
        ["department_id", "created_at"],
        unique=False,
        postgresql_include=["due_at", "answered_at", "returned_at", "revoked_at", "parent_forward_id", "verdict"],
    )
    op.create_index(
        "ix_item_forwards_department_open_due",
        "item_forwards",
        ["department_id", "due_at"],
        unique=False,
        postgresql_include=["item_id"],
        sqlite_where=sa.text(OPEN_FORWARD_SQL),
        postgresql_where=sa.text(OPEN_FORWARD_SQL),
    )
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.add_column(sa.Column("publish_consented_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_items_station_published",
        "items",
        ["station_id", "resolved_at"],
        unique=False,
        sqlite_where=sa.text(PUBLISHED_SQL),
        postgresql_where=sa.text(PUBLISHED_SQL),
    )
    _backfill_verdicts(op.get_bind())


def downgrade():
    op.drop_index("ix_items_station_published", table_name="items")
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.drop_column("publish_consented_at")
    op.drop_index("ix_item_forwards_department_open_due", table_name="item_forwards")
    op.drop_index("ix_item_forwards_department_created", table_name="item_forwards")
    with op.batch_alter_table("item_forwards", schema=None) as batch_op:
        batch_op.drop_column("verdict_at")
        batch_op.drop_column("verdict")
