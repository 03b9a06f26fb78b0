"""WeChat state (shared access token, subscription credits, resident sessions, deputy binding
codes, mini-program code cache) and content screening of items.

Reviewed: NOT NULL columns added to existing tables carry server defaults.

Revision ID: d4713d1e8a50
Revises: 166ee72c2c1d
Create Date: 2026-11-21 04:44:48.054195

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'd4713d1e8a50'
down_revision = '166ee72c2c1d'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('subscription_credits',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('openid', sa.String(length=64), nullable=False),
    sa.Column('template_id', sa.String(length=128), nullable=False),
    sa.Column('credits', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_subscription_credits')),
    sa.UniqueConstraint('openid', 'template_id', name=op.f('uq_subscription_credits_openid_template_id'))
    )
    with op.batch_alter_table('subscription_credits', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_subscription_credits_openid'), ['openid'], unique=False)

    op.create_table('wechat_access_tokens',
    sa.Column('appid', sa.String(length=64), nullable=False),
    sa.Column('access_token', sa.String(length=512), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('fetched_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('appid', name=op.f('pk_wechat_access_tokens'))
    )
    op.create_table('resident_sessions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('resident_id', sa.Integer(), nullable=False),
    sa.Column('session_key', sa.String(length=128), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['resident_id'], ['residents.id'], name=op.f('fk_resident_sessions_resident_id_residents')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_resident_sessions')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_resident_sessions_token_hash'))
    )
    with op.batch_alter_table('resident_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_resident_sessions_resident_id'), ['resident_id'], unique=False)

    op.create_table('miniprogram_codes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code_id', sa.Integer(), nullable=False),
    sa.Column('scene', sa.String(length=32), nullable=False),
    sa.Column('png', sa.LargeBinary(), nullable=True),
    sa.Column('fetched_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['code_id'], ['codes.id'], name=op.f('fk_miniprogram_codes_code_id_codes')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_miniprogram_codes')),
    sa.UniqueConstraint('code_id', name=op.f('uq_miniprogram_codes_code_id'))
    )
    op.create_table('wechat_binding_codes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('staff_user_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['staff_user_id'], ['staff_users.id'], name=op.f('fk_wechat_binding_codes_staff_user_id_staff_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_wechat_binding_codes')),
    sa.UniqueConstraint('code_hash', name=op.f('uq_wechat_binding_codes_code_hash'))
    )
    with op.batch_alter_table('wechat_binding_codes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_wechat_binding_codes_staff_user_id'), ['staff_user_id'], unique=False)

    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.add_column(sa.Column('screening', sa.Enum('unscreened', 'pass', 'review', 'risky', name='screeningresult', native_enum=False, length=10), nullable=False, server_default='unscreened'))
        batch_op.add_column(sa.Column('screening_label', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('is_held', sa.Boolean(), nullable=False, server_default=sa.false()))

    with op.batch_alter_table('staff_users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('wechat_openid', sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_staff_users_wechat_openid'), ['wechat_openid'])



def downgrade():
    with op.batch_alter_table('staff_users', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_staff_users_wechat_openid'), type_='unique')
        batch_op.drop_column('wechat_openid')

    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.drop_column('is_held')
        batch_op.drop_column('screening_label')
        batch_op.drop_column('screening')

    with op.batch_alter_table('wechat_binding_codes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_wechat_binding_codes_staff_user_id'))

    op.drop_table('wechat_binding_codes')
    op.drop_table('miniprogram_codes')
    with op.batch_alter_table('resident_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_resident_sessions_resident_id'))

    op.drop_table('resident_sessions')
    op.drop_table('wechat_access_tokens')
    with op.batch_alter_table('subscription_credits', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_subscription_credits_openid'))

    op.drop_table('subscription_credits')
