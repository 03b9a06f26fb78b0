"""Index items by deputy and submission time: the near-duplicate check reads a deputy's latest items.

Revision ID: 7ad9fee07911
Revises: d4713d1e8a50
Create Date: 2026-11-21 05:03:23.271622

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '7ad9fee07911'
down_revision = 'd4713d1e8a50'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.create_index('ix_items_deputy_created', ['deputy_id', 'created_at'], unique=False)



def downgrade():
    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.drop_index('ix_items_deputy_created')

