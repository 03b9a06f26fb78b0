"""Lifecycle columns on items, server-side staff sessions, forwards to departments, reply templates.

Reviewed: the two NOT NULL columns added to ``items`` carry a server default so that the
upgrade works on a database that already holds items.

Revision ID: 166ee72c2c1d
Revises: 71afba497228
Create Date: 2026-11-21 04:37:20.261725

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '166ee72c2c1d'
down_revision = '71afba497228'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('reply_templates',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('station_id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=50), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['station_id'], ['stations.id'], name=op.f('fk_reply_templates_station_id_stations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reply_templates'))
    )
    with op.batch_alter_table('reply_templates', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reply_templates_station_id'), ['station_id'], unique=False)

    op.create_table('staff_sessions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('staff_user_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('web', 'api', name='sessionkind', native_enum=False, length=8), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('address', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['staff_user_id'], ['staff_users.id'], name=op.f('fk_staff_sessions_staff_user_id_staff_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_sessions')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_staff_sessions_token_hash'))
    )
    with op.batch_alter_table('staff_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_staff_sessions_staff_user_id'), ['staff_user_id'], unique=False)

    op.create_table('item_forwards',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('department_id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('forwarded_by_id', sa.Integer(), nullable=True),
    sa.Column('instructions', sa.Text(), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('share_contact', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('answer', sa.Text(), nullable=False),
    sa.Column('promised_by', sa.Date(), nullable=True),
    sa.ForeignKeyConstraint(['department_id'], ['departments.id'], name=op.f('fk_item_forwards_department_id_departments')),
    sa.ForeignKeyConstraint(['forwarded_by_id'], ['staff_users.id'], name=op.f('fk_item_forwards_forwarded_by_id_staff_users')),
    sa.ForeignKeyConstraint(['item_id'], ['items.id'], name=op.f('fk_item_forwards_item_id_items')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_item_forwards')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_item_forwards_token_hash'))
    )
    with op.batch_alter_table('item_forwards', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_item_forwards_department_id'), ['department_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_item_forwards_item_id'), ['item_id'], unique=False)

    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.add_column(sa.Column('due_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('accepted_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('first_answered_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('outcome', sa.Enum('solved', 'partly', 'unsolved', name='itemoutcome', native_enum=False, length=10), nullable=True))
        batch_op.add_column(sa.Column('outcome_reason', sa.Text(), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('duplicate_of_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('paused_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('satisfaction', sa.Enum('satisfied', 'basically', 'unsatisfied', name='satisfaction', native_enum=False, length=12), nullable=True))
        batch_op.add_column(sa.Column('is_solved_per_resident', sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column('rated_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('reopen_count', sa.Integer(), nullable=False, server_default='0'))
        batch_op.create_index('ix_items_deputy_due', ['deputy_id', 'due_at'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_items_duplicate_of_id_items'), 'items', ['duplicate_of_id'], ['id'])



def downgrade():
    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_items_duplicate_of_id_items'), type_='foreignkey')
        batch_op.drop_index('ix_items_deputy_due')
        batch_op.drop_column('reopen_count')
        batch_op.drop_column('rated_at')
        batch_op.drop_column('is_solved_per_resident')
        batch_op.drop_column('satisfaction')
        batch_op.drop_column('paused_at')
        batch_op.drop_column('duplicate_of_id')
        batch_op.drop_column('outcome_reason')
        batch_op.drop_column('outcome')
        batch_op.drop_column('resolved_at')
        batch_op.drop_column('first_answered_at')
        batch_op.drop_column('accepted_at')
        batch_op.drop_column('due_at')

    with op.batch_alter_table('item_forwards', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_item_forwards_item_id'))
        batch_op.drop_index(batch_op.f('ix_item_forwards_department_id'))

    op.drop_table('item_forwards')
    with op.batch_alter_table('staff_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_staff_sessions_staff_user_id'))

    op.drop_table('staff_sessions')
    with op.batch_alter_table('reply_templates', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reply_templates_station_id'))

    op.drop_table('reply_templates')
