"""代表建议 (proposals) drawn from items, and topic codes (专题码) with their own short form and closing date.

Reviewed: three new tables and one nullable column; nothing existing changes but one partial index.

- ``proposals``: a 建议's title, text, answering department, status (drafted/submitted/answered), where it was
  drafted (region) and by whom, and its answer.
- ``proposal_items``: the items a proposal was drawn from (one row per pair).
- ``topics``: a station's topic (monitoring point, draft law, poll): prompt, choices, closing time.
- ``codes.topic_id``: a topic's code belongs to its station too, so "one current code per station"
  (``uq_codes_current_station``) now leaves topic codes out, and each topic has at most one current code
  (``uq_codes_current_topic``). Every existing code has no topic: the index keeps the same rows.

Downgrade removes the tables, the column and the new index, and restores the old partial index (it refuses, as
the old index would, once a station has a current topic code beside its own: drop the topics first).

Revision ID: fd5c1fabea7e
Revises: 9d4f2a6b8c17
Create Date: 2026-12-03 13:50:00.000000

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "fd5c1fabea7e"
down_revision = "9d4f2a6b8c17"
branch_labels = None
depends_on = None

OLD_WHERE = "retired_at IS NULL"
STATION_WHERE = "retired_at IS NULL AND topic_id IS NULL"
TOPIC_WHERE = "retired_at IS NULL AND topic_id IS NOT NULL"


def upgrade():
    op.create_table(
        "proposals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=100), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column(
            "status",
            sa.Enum("drafted", "submitted", "answered", name="proposalstatus", native_enum=False, length=10),
            nullable=False,
        ),
        sa.Column("department_id", sa.Integer(), nullable=False),
        sa.Column("region_id", sa.Integer(), nullable=False),
        sa.Column("drafted_by_id", sa.Integer(), nullable=False),
        sa.Column("deputy_id", sa.Integer(), nullable=True),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["department_id"], ["departments.id"], name=op.f("fk_proposals_department_id_departments")
        ),
        sa.ForeignKeyConstraint(["deputy_id"], ["deputies.id"], name=op.f("fk_proposals_deputy_id_deputies")),
        sa.ForeignKeyConstraint(
            ["drafted_by_id"], ["staff_users.id"], name=op.f("fk_proposals_drafted_by_id_staff_users")
        ),
        sa.ForeignKeyConstraint(["region_id"], ["regions.id"], name=op.f("fk_proposals_region_id_regions")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_proposals")),
    )
    op.create_index(op.f("ix_proposals_department_id"), "proposals", ["department_id"], unique=False)
    op.create_index(op.f("ix_proposals_deputy_id"), "proposals", ["deputy_id"], unique=False)
    op.create_index(op.f("ix_proposals_drafted_by_id"), "proposals", ["drafted_by_id"], unique=False)
    op.create_index("ix_proposals_region_created", "proposals", ["region_id", "created_at"], unique=False)

    op.create_table(
        "topics",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("station_id", sa.Integer(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("monitoring", "draft_law", "poll", name="topickind", native_enum=False, length=12),
            nullable=False,
        ),
        sa.Column("title", sa.String(length=60), nullable=False),
        sa.Column("prompt", sa.String(length=200), nullable=False),
        sa.Column("choices", sa.JSON(), nullable=False),
        sa.Column("closes_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["staff_users.id"], name=op.f("fk_topics_created_by_id_staff_users")
        ),
        sa.ForeignKeyConstraint(["station_id"], ["stations.id"], name=op.f("fk_topics_station_id_stations")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_topics")),
    )
    op.create_index(op.f("ix_topics_station_id"), "topics", ["station_id"], unique=False)

    op.create_table(
        "proposal_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("proposal_id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["item_id"], ["items.id"], name=op.f("fk_proposal_items_item_id_items")),
        sa.ForeignKeyConstraint(
            ["proposal_id"], ["proposals.id"], name=op.f("fk_proposal_items_proposal_id_proposals")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_proposal_items")),
        sa.UniqueConstraint("proposal_id", "item_id", name=op.f("uq_proposal_items_proposal_id_item_id")),
    )
    op.create_index(op.f("ix_proposal_items_item_id"), "proposal_items", ["item_id"], unique=False)

    if op.get_context().dialect.name == "sqlite":
        # Batch mode would copy the table, which items' foreign key to codes refuses once it holds rows;
        # SQLite adds a nullable column with its REFERENCES clause in place.
        op.execute(
            "ALTER TABLE codes ADD COLUMN topic_id INTEGER CONSTRAINT fk_codes_topic_id_topics REFERENCES topics (id)"
        )
    else:
        op.add_column("codes", sa.Column("topic_id", sa.Integer(), nullable=True))
        op.create_foreign_key(op.f("fk_codes_topic_id_topics"), "codes", "topics", ["topic_id"], ["id"])
    op.drop_index("uq_codes_current_station", table_name="codes")
    _partial_index("uq_codes_current_station", "station_id", STATION_WHERE)
    _partial_index("uq_codes_current_topic", "topic_id", TOPIC_WHERE)


def _partial_index(name: str, column: str, where: str) -> None:
    op.create_index(name, "codes", [column], unique=True, sqlite_where=sa.text(where), postgresql_where=sa.text(where))


def downgrade():
    op.drop_index("uq_codes_current_topic", table_name="codes")
    op.drop_index("uq_codes_current_station", table_name="codes")
    _partial_index("uq_codes_current_station", "station_id", OLD_WHERE)
    if op.get_context().dialect.name == "sqlite":
        with op.batch_alter_table("codes", schema=None) as batch_op:
            batch_op.drop_column("topic_id")  # the table is copied without it, and without its REFERENCES
    else:
        op.drop_constraint(op.f("fk_codes_topic_id_topics"), "codes", type_="foreignkey")
        op.drop_column("codes", "topic_id")
    op.drop_index(op.f("ix_proposal_items_item_id"), table_name="proposal_items")
    op.drop_table("proposal_items")
    op.drop_index(op.f("ix_topics_station_id"), table_name="topics")
    op.drop_table("topics")
    op.drop_index("ix_proposals_region_created", table_name="proposals")
    op.drop_index(op.f("ix_proposals_drafted_by_id"), table_name="proposals")
    op.drop_index(op.f("ix_proposals_deputy_id"), table_name="proposals")
    op.drop_index(op.f("ix_proposals_department_id"), table_name="proposals")
    op.drop_table("proposals")
