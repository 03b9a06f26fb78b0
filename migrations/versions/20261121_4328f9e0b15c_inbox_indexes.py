"""Inbox indexes: open items of a deputy by due date (partial), and a station's items by status and time.

Revision ID: 4328f9e0b15c
Revises: 7ad9fee07911
Create Date: 2026-11-21 05:32:56.286123

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '4328f9e0b15c'
down_revision = '7ad9fee07911'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.create_index('ix_items_deputy_open_due', ['deputy_id', 'due_at'], unique=False, sqlite_where=sa.text("status IN ('submitted', 'accepted', 'forwarded', 'answered')"), postgresql_where=sa.text("status IN ('submitted', 'accepted', 'forwarded', 'answered')"))
        batch_op.create_index('ix_items_station_status_created', ['station_id', 'status', 'created_at'], unique=False)



def downgrade():
    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.drop_index('ix_items_station_status_created')
        batch_op.drop_index('ix_items_deputy_open_due', sqlite_where=sa.text("status IN ('submitted', 'accepted', 'forwarded', 'answered')"), postgresql_where=sa.text("status IN ('submitted', 'accepted', 'forwarded', 'answered')"))

