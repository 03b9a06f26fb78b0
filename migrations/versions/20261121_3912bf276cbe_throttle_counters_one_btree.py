"""Throttle counters in one b-tree: no index on expires_at, and on SQLite a WITHOUT ROWID table.

Every submission writes two counters (its address's and its code's). An index on
expires_at, used only by the hourly purge, cost a b-tree write per counter; on SQLite a
rowid table with a text primary key is two b-trees (the rows and the key's index), where a
WITHOUT ROWID table keeps the rows in the key's b-tree. SQLite cannot change that in place:
the table is rebuilt and its rows copied.

Revision ID: 3912bf276cbe
Revises: 4328f9e0b15c
Create Date: 2026-11-21 08:00:00

"""
from alembic import op
import sqlalchemy as sa



# revision identifiers, used by Alembic.
revision = '3912bf276cbe'
down_revision = '4328f9e0b15c'
branch_labels = None
depends_on = None


def _rebuild(with_rowid: bool):
    """SQLite only: copy the counters into a table of the other kind under the same name."""
    op.create_table(
        'throttle_counters_rebuilt',
        sa.Column('key', sa.String(length=200), nullable=False),
        sa.Column('count', sa.Integer(), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('key', name='pk_throttle_counters'),
        sqlite_with_rowid=with_rowid,
    )
    op.execute('INSERT INTO throttle_counters_rebuilt (key, count, expires_at) SELECT key, count, expires_at FROM throttle_counters')
    op.drop_table('throttle_counters')
    op.rename_table('throttle_counters_rebuilt', 'throttle_counters')


def upgrade():
    with op.batch_alter_table('throttle_counters', schema=None) as batch_op:
        batch_op.drop_index('ix_throttle_counters_expires_at')
    if op.get_bind().dialect.name == 'sqlite':
        _rebuild(with_rowid=False)


def downgrade():
    if op.get_bind().dialect.name == 'sqlite':
        _rebuild(with_rowid=True)
    with op.batch_alter_table('throttle_counters', schema=None) as batch_op:
        batch_op.create_index('ix_throttle_counters_expires_at', ['expires_at'], unique=False)
