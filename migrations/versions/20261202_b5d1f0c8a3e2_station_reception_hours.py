"""The hours a station receives residents on its reception days.

Reviewed: one column added to ``stations``, empty for the stations there are (posters print the
days alone until the hours are entered at /admin/stations/<id>); downgrade drops it.

- ``stations.reception_hours``: free text such as "上午9:00—11:30", at most 50 characters,
  printed after the reception days on the station's and its deputies' posters.

Revision ID: b5d1f0c8a3e2
Revises: a7c3e91d2f40
Create Date: 2026-12-02 18:05:00.000000

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "b5d1f0c8a3e2"
down_revision = "a7c3e91d2f40"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("stations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reception_hours", sa.String(length=50), nullable=False, server_default=""))


def downgrade():
    with op.batch_alter_table("stations", schema=None) as batch_op:
        batch_op.drop_column("reception_hours")
