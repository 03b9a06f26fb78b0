"""Presence at stations (进站签到), contacts logged without an item (走访/座谈), scans counted per code per day.

Reviewed: four new tables, and one column dropped after its values are carried over.

- ``station_visits``: a deputy's visit to a station, opened by a check-in and closed by a check-out;
  at most one open visit per deputy (``uq_station_visits_open_deputy``, a partial unique index on both
  engines), so two check-ins sent at once make one visit.
- ``contact_logs``: a contact a deputy logged (走访, 座谈, 电话), possibly turned into an item later.
- ``code_scan_days``: scans per code, China date and shard (a few rows per code and day, so no row is hot).
- ``code_scan_folds``: the batches of scans counted in Redis already added to ``code_scan_days`` (their
  Redis keys), so that a fold repeated after a crash adds nothing twice.
- ``codes.scan_count`` is dropped: its totals (scans since each code was issued, with no time) are carried
  into ``code_scan_days`` on the China date the code was issued, shard 0, so a code's total stays what it
  was; they show in the weekly chart only when its range covers that date. Downgrade adds the column back
  with each code's sum of its days, and drops the tables.

Revision ID: 7d41c2e9a5b3
Revises: c3a9e5d7f1b2
Create Date: 2026-12-03 14:00:00.000000

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "7d41c2e9a5b3"
down_revision = "c3a9e5d7f1b2"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "station_visits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("deputy_id", sa.Integer(), nullable=False),
        sa.Column("station_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("checked_in_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("checked_out_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("is_reception_day", sa.Boolean(), nullable=False),
        sa.Column("source", sa.Enum("scan", "tap", "api", "by_admin", name="presencesource", native_enum=False, length=10), nullable=False),
        sa.Column("recorded_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["deputy_id"], ["deputies.id"], name=op.f("fk_station_visits_deputy_id_deputies")),
        sa.ForeignKeyConstraint(["station_id"], ["stations.id"], name=op.f("fk_station_visits_station_id_stations")),
        sa.ForeignKeyConstraint(["recorded_by_id"], ["staff_users.id"], name=op.f("fk_station_visits_recorded_by_id_staff_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_station_visits")),
    )
    op.create_index(
        "uq_station_visits_open_deputy",
        "station_visits",
        ["deputy_id"],
        unique=True,
        sqlite_where=sa.text("checked_out_at IS NULL"),
        postgresql_where=sa.text("checked_out_at IS NULL"),
    )
    op.create_index("ix_station_visits_station_day", "station_visits", ["station_id", "day"])
    op.create_index("ix_station_visits_deputy_day", "station_visits", ["deputy_id", "day"])

    op.create_table(
        "contact_logs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("deputy_id", sa.Integer(), nullable=False),
        sa.Column("station_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.Enum("visit", "meeting", "phone", name="contactkind", native_enum=False, length=10), nullable=False),
        sa.Column("held_on", sa.Date(), nullable=False),
        sa.Column("place", sa.String(length=100), nullable=False),
        sa.Column("people", sa.SmallInteger(), nullable=False),
        sa.Column("summary", sa.String(length=200), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=True),
        sa.Column("recorded_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("people BETWEEN 1 AND 10000", name=op.f("ck_contact_logs_people_in_range")),
        sa.ForeignKeyConstraint(["deputy_id"], ["deputies.id"], name=op.f("fk_contact_logs_deputy_id_deputies")),
        sa.ForeignKeyConstraint(["station_id"], ["stations.id"], name=op.f("fk_contact_logs_station_id_stations")),
        sa.ForeignKeyConstraint(["item_id"], ["items.id"], name=op.f("fk_contact_logs_item_id_items")),
        sa.ForeignKeyConstraint(["recorded_by_id"], ["staff_users.id"], name=op.f("fk_contact_logs_recorded_by_id_staff_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contact_logs")),
        sa.UniqueConstraint("item_id", name=op.f("uq_contact_logs_item_id")),
    )
    op.create_index("ix_contact_logs_deputy_held", "contact_logs", ["deputy_id", "held_on"])
    op.create_index("ix_contact_logs_station_held", "contact_logs", ["station_id", "held_on"])

    op.create_table(
        "code_scan_days",
        sa.Column("code_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("shard", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("scans", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["code_id"], ["codes.id"], name=op.f("fk_code_scan_days_code_id_codes")),
        sa.PrimaryKeyConstraint("code_id", "day", "shard", name=op.f("pk_code_scan_days")),
    )
    op.create_table(
        "code_scan_folds",
        sa.Column("key", sa.String(length=80), nullable=False),
        sa.Column("folded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_code_scan_folds")),
    )
    if op.get_context().dialect.name == "postgresql":
        op.execute(
            "INSERT INTO code_scan_days (code_id, day, shard, scans) "
            "SELECT id, (created_at AT TIME ZONE 'Asia/Shanghai')::date, 0, scan_count FROM codes WHERE scan_count > 0"
        )
        op.drop_column("codes", "scan_count")
    else:
        # SQLite stores the aware datetimes as UTC text; China is UTC+8 all year.
        op.execute(
            "INSERT INTO code_scan_days (code_id, day, shard, scans) "
            "SELECT id, date(created_at, '+8 hours'), 0, scan_count FROM codes WHERE scan_count > 0"
        )
        # In place (SQLite ≥ 3.35): batch mode would copy the table, which items' foreign keys refuse.
        op.execute("ALTER TABLE codes DROP COLUMN scan_count")


def downgrade():
    op.add_column("codes", sa.Column("scan_count", sa.Integer(), nullable=False, server_default="0"))
    op.execute(
        "UPDATE codes SET scan_count = COALESCE("
        "(SELECT SUM(scans) FROM code_scan_days WHERE code_scan_days.code_id = codes.id), 0)"
    )
    op.drop_table("code_scan_folds")
    op.drop_table("code_scan_days")
    op.drop_index("ix_contact_logs_station_held", table_name="contact_logs")
    op.drop_index("ix_contact_logs_deputy_held", table_name="contact_logs")
    op.drop_table("contact_logs")
    op.drop_index("ix_station_visits_deputy_day", table_name="station_visits")
    op.drop_index("ix_station_visits_station_day", table_name="station_visits")
    op.drop_index("uq_station_visits_open_deputy", table_name="station_visits")
    op.drop_table("station_visits")
