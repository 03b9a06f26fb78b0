"""Working-day calendar and worker heartbeats.

Reviewed: new tables only, nothing existing changes.

- ``work_calendar_years`` / ``work_calendar_days``: a year's arrangement of statutory holidays and
  调休 working days as a supervisor entered it on /admin/workdays (the State Council publishes the
  next year's each November); a year entered here replaces the bundled ``chinese_calendar``
  library's data for that year. Only days that differ from Monday–Friday are rows; deleting a
  year deletes its days (ON DELETE CASCADE, and the ORM's delete-orphan).
- ``worker_heartbeats``: one row per worker process (kind, host, pid), its ``last_seen_at``
  renewed every few seconds; /readyz and the admin page read the newest per kind through
  (kind, last_seen_at).

Revision ID: a7c3e91d2f40
Revises: 75246af8fb6b
Create Date: 2026-12-02 16:21:05.730379

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "a7c3e91d2f40"
down_revision = "75246af8fb6b"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "worker_heartbeats",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_worker_heartbeats")),
        sa.UniqueConstraint("kind", "host", "pid", name=op.f("uq_worker_heartbeats_kind_host_pid")),
    )
    with op.batch_alter_table("worker_heartbeats", schema=None) as batch_op:
        batch_op.create_index("ix_worker_heartbeats_kind_last_seen_at", ["kind", "last_seen_at"], unique=False)

    op.create_table(
        "work_calendar_years",
        sa.Column("year", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("entered_by_id", sa.Integer(), nullable=True),
        sa.Column("entered_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["entered_by_id"], ["staff_users.id"], name=op.f("fk_work_calendar_years_entered_by_id_staff_users")
        ),
        sa.PrimaryKeyConstraint("year", name=op.f("pk_work_calendar_years")),
    )
    op.create_table(
        "work_calendar_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("is_working_day", sa.Boolean(), nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(
            ["year"],
            ["work_calendar_years.year"],
            name=op.f("fk_work_calendar_days_year_work_calendar_years"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_work_calendar_days")),
    )
    with op.batch_alter_table("work_calendar_days", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_work_calendar_days_year"), ["year"], unique=False)


def downgrade():
    with op.batch_alter_table("work_calendar_days", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_work_calendar_days_year"))

    op.drop_table("work_calendar_days")
    op.drop_table("work_calendar_years")
    with op.batch_alter_table("worker_heartbeats", schema=None) as batch_op:
        batch_op.drop_index("ix_worker_heartbeats_kind_last_seen_at")

    op.drop_table("worker_heartbeats")
