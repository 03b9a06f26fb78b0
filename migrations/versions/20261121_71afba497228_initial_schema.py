"""initial schema

Revision ID: 71afba497228
Revises: 
Create Date: 2026-11-21 04:27:46.037247

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '71afba497228'
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('regions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=12), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('level', sa.Enum('province', 'city', 'county', 'township', name='regionlevel', native_enum=False, length=10), nullable=False),
    sa.Column('parent_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['parent_id'], ['regions.id'], name=op.f('fk_regions_parent_id_regions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_regions')),
    sa.UniqueConstraint('code', name=op.f('uq_regions_code'))
    )
    with op.batch_alter_table('regions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_regions_parent_id'), ['parent_id'], unique=False)

    op.create_table('residents',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('openid', sa.String(length=64), nullable=True),
    sa.Column('mp_openid', sa.String(length=64), nullable=True),
    sa.Column('unionid', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_residents')),
    sa.UniqueConstraint('mp_openid', name=op.f('uq_residents_mp_openid')),
    sa.UniqueConstraint('openid', name=op.f('uq_residents_openid')),
    sa.UniqueConstraint('unionid', name=op.f('uq_residents_unionid'))
    )
    op.create_table('throttle_counters',
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_throttle_counters'))
    )
    with op.batch_alter_table('throttle_counters', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_throttle_counters_expires_at'), ['expires_at'], unique=False)

    op.create_table('departments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('region_id', sa.Integer(), nullable=False),
    sa.Column('contact_name', sa.String(length=50), nullable=False),
    sa.Column('contact_phone', sa.String(length=30), nullable=False),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['region_id'], ['regions.id'], name=op.f('fk_departments_region_id_regions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_departments'))
    )
    with op.batch_alter_table('departments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_departments_region_id'), ['region_id'], unique=False)

    op.create_table('stations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('region_id', sa.Integer(), nullable=False),
    sa.Column('address', sa.String(length=200), nullable=False),
    sa.Column('contact_name', sa.String(length=50), nullable=False),
    sa.Column('contact_phone', sa.String(length=30), nullable=False),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['region_id'], ['regions.id'], name=op.f('fk_stations_region_id_regions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stations'))
    )
    with op.batch_alter_table('stations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_stations_region_id'), ['region_id'], unique=False)

    op.create_table('deputies',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=50), nullable=False),
    sa.Column('station_id', sa.Integer(), nullable=False),
    sa.Column('constituency', sa.String(length=200), nullable=False),
    sa.Column('occupation', sa.String(length=100), nullable=False),
    sa.Column('phone', sa.String(length=30), nullable=False),
    sa.Column('term_start', sa.Date(), nullable=True),
    sa.Column('term_end', sa.Date(), nullable=True),
    sa.Column('status', sa.Enum('serving', 'resigned', 'recalled', 'term_ended', name='deputystatus', native_enum=False, length=12), nullable=False),
    sa.Column('status_changed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('photo_jpeg', sa.LargeBinary(), nullable=True),
    sa.Column('photo_version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['station_id'], ['stations.id'], name=op.f('fk_deputies_station_id_stations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_deputies'))
    )
    with op.batch_alter_table('deputies', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_deputies_station_id'), ['station_id'], unique=False)

    op.create_table('codes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('slug', sa.String(length=32), nullable=False),
    sa.Column('deputy_id', sa.Integer(), nullable=True),
    sa.Column('station_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('retired_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('retired_reason', sa.String(length=200), nullable=False),
    sa.Column('scan_count', sa.Integer(), nullable=False),
    sa.CheckConstraint('(deputy_id IS NULL) <> (station_id IS NULL)', name=op.f('ck_codes_one_owner')),
    sa.ForeignKeyConstraint(['deputy_id'], ['deputies.id'], name=op.f('fk_codes_deputy_id_deputies')),
    sa.ForeignKeyConstraint(['station_id'], ['stations.id'], name=op.f('fk_codes_station_id_stations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_codes')),
    sa.UniqueConstraint('slug', name=op.f('uq_codes_slug'))
    )
    with op.batch_alter_table('codes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_codes_deputy_id'), ['deputy_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_codes_station_id'), ['station_id'], unique=False)
        batch_op.create_index('uq_codes_current_deputy', ['deputy_id'], unique=True, sqlite_where=sa.text('retired_at IS NULL'), postgresql_where=sa.text('retired_at IS NULL'))
        batch_op.create_index('uq_codes_current_station', ['station_id'], unique=True, sqlite_where=sa.text('retired_at IS NULL'), postgresql_where=sa.text('retired_at IS NULL'))

    op.create_table('deputy_levels',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('deputy_id', sa.Integer(), nullable=False),
    sa.Column('level', sa.Enum('national', 'province', 'city', 'county', 'township', name='congresslevel', native_enum=False, length=10), nullable=False),
    sa.Column('constituency', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['deputy_id'], ['deputies.id'], name=op.f('fk_deputy_levels_deputy_id_deputies')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_deputy_levels')),
    sa.UniqueConstraint('deputy_id', 'level', name=op.f('uq_deputy_levels_deputy_id_level'))
    )
    with op.batch_alter_table('deputy_levels', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_deputy_levels_deputy_id'), ['deputy_id'], unique=False)

    op.create_table('reception_rules',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('station_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('weekly', 'monthly', 'xun', name='receptionrulekind', native_enum=False, length=10), nullable=False),
    sa.Column('day', sa.SmallInteger(), nullable=False),
    sa.Column('deputy_id', sa.Integer(), nullable=True),
    sa.Column('note', sa.String(length=100), nullable=False),
    sa.CheckConstraint("(kind = 'weekly' AND day BETWEEN 1 AND 7) OR (kind = 'monthly' AND day BETWEEN 1 AND 31) OR (kind = 'xun' AND day BETWEEN 0 AND 9)", name=op.f('ck_reception_rules_day_in_range')),
    sa.ForeignKeyConstraint(['deputy_id'], ['deputies.id'], name=op.f('fk_reception_rules_deputy_id_deputies')),
    sa.ForeignKeyConstraint(['station_id'], ['stations.id'], name=op.f('fk_reception_rules_station_id_stations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reception_rules'))
    )
    with op.batch_alter_table('reception_rules', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reception_rules_deputy_id'), ['deputy_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_reception_rules_station_id'), ['station_id'], unique=False)

    op.create_table('staff_users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=50), nullable=False),
    sa.Column('display_name', sa.String(length=50), nullable=False),
    sa.Column('password_hash', sa.String(length=256), nullable=False),
    sa.Column('role', sa.Enum('deputy', 'station_admin', 'supervisor', 'department', name='staffrole', native_enum=False, length=16), nullable=False),
    sa.Column('deputy_id', sa.Integer(), nullable=True),
    sa.Column('station_id', sa.Integer(), nullable=True),
    sa.Column('region_id', sa.Integer(), nullable=True),
    sa.Column('department_id', sa.Integer(), nullable=True),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['department_id'], ['departments.id'], name=op.f('fk_staff_users_department_id_departments')),
    sa.ForeignKeyConstraint(['deputy_id'], ['deputies.id'], name=op.f('fk_staff_users_deputy_id_deputies')),
    sa.ForeignKeyConstraint(['region_id'], ['regions.id'], name=op.f('fk_staff_users_region_id_regions')),
    sa.ForeignKeyConstraint(['station_id'], ['stations.id'], name=op.f('fk_staff_users_station_id_stations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_users')),
    sa.UniqueConstraint('username', name=op.f('uq_staff_users_username'))
    )
    with op.batch_alter_table('staff_users', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_staff_users_department_id'), ['department_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_staff_users_deputy_id'), ['deputy_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_staff_users_region_id'), ['region_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_staff_users_station_id'), ['station_id'], unique=False)

    op.create_table('audit_entries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('staff_user_id', sa.Integer(), nullable=True),
    sa.Column('action', sa.String(length=50), nullable=False),
    sa.Column('object_type', sa.String(length=30), nullable=False),
    sa.Column('object_id', sa.String(length=64), nullable=False),
    sa.Column('address', sa.String(length=64), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['staff_user_id'], ['staff_users.id'], name=op.f('fk_audit_entries_staff_user_id_staff_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_entries'))
    )
    with op.batch_alter_table('audit_entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_entries_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_entries_staff_user_id'), ['staff_user_id'], unique=False)

    op.create_table('items',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ref', sa.String(length=16), nullable=False),
    sa.Column('access_key', sa.String(length=32), nullable=False),
    sa.Column('client_id', sa.String(length=64), nullable=True),
    sa.Column('station_id', sa.Integer(), nullable=False),
    sa.Column('deputy_id', sa.Integer(), nullable=True),
    sa.Column('code_id', sa.Integer(), nullable=True),
    sa.Column('resident_id', sa.Integer(), nullable=True),
    sa.Column('channel', sa.Enum('qr_h5', 'miniprogram', 'in_person', name='itemchannel', native_enum=False, length=12), nullable=False),
    sa.Column('category', sa.Enum('urban', 'transport', 'education', 'health', 'social_security', 'environment', 'rural', 'public_safety', 'other', name='itemcategory', native_enum=False, length=20), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('contact_name', sa.String(length=50), nullable=False),
    sa.Column('contact_phone', sa.String(length=20), nullable=False),
    sa.Column('consented_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('status', sa.Enum('submitted', 'accepted', 'forwarded', 'answered', 'resolved', 'declined', 'duplicate', name='itemstatus', native_enum=False, length=12), nullable=False),
    sa.Column('needs_review', sa.Boolean(), nullable=False),
    sa.Column('review_reason', sa.String(length=200), nullable=False),
    sa.Column('body_fingerprint', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['code_id'], ['codes.id'], name=op.f('fk_items_code_id_codes')),
    sa.ForeignKeyConstraint(['deputy_id'], ['deputies.id'], name=op.f('fk_items_deputy_id_deputies')),
    sa.ForeignKeyConstraint(['resident_id'], ['residents.id'], name=op.f('fk_items_resident_id_residents')),
    sa.ForeignKeyConstraint(['station_id'], ['stations.id'], name=op.f('fk_items_station_id_stations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_items')),
    sa.UniqueConstraint('client_id', name=op.f('uq_items_client_id')),
    sa.UniqueConstraint('ref', name=op.f('uq_items_ref'))
    )
    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_items_code_id'), ['code_id'], unique=False)
        batch_op.create_index('ix_items_deputy_status_created', ['deputy_id', 'status', 'created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_items_resident_id'), ['resident_id'], unique=False)
        batch_op.create_index('ix_items_station_created', ['station_id', 'created_at'], unique=False)

    op.create_table('item_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('submitted', 'accepted', 'replied', 'note', 'forwarded', 'department_replied', 'reassigned', 'duplicate', 'declined', 'resolved', 'rated', 'reopened', 'supervised', 'extended', 'flagged', name='itemeventkind', native_enum=False, length=20), nullable=False),
    sa.Column('actor_kind', sa.Enum('resident', 'staff', 'department', 'system', name='actorkind', native_enum=False), nullable=False),
    sa.Column('actor_user_id', sa.Integer(), nullable=True),
    sa.Column('is_public', sa.Boolean(), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['actor_user_id'], ['staff_users.id'], name=op.f('fk_item_events_actor_user_id_staff_users')),
    sa.ForeignKeyConstraint(['item_id'], ['items.id'], name=op.f('fk_item_events_item_id_items')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_item_events'))
    )
    with op.batch_alter_table('item_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_item_events_item_id'), ['item_id'], unique=False)

    op.create_table('item_photos',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('width', sa.Integer(), nullable=False),
    sa.Column('height', sa.Integer(), nullable=False),
    sa.Column('jpeg', sa.LargeBinary(), nullable=True),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['item_id'], ['items.id'], name=op.f('fk_item_photos_item_id_items')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_item_photos'))
    )
    with op.batch_alter_table('item_photos', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_item_photos_item_id'), ['item_id'], unique=False)

    op.create_table('outbox_messages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=True),
    sa.Column('resident_id', sa.Integer(), nullable=True),
    sa.Column('staff_user_id', sa.Integer(), nullable=True),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('status', sa.Enum('pending', 'sent', 'held', 'failed', 'dead', 'skipped', name='outboxstatus', native_enum=False, length=10), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('lease_expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['item_id'], ['items.id'], name=op.f('fk_outbox_messages_item_id_items')),
    sa.ForeignKeyConstraint(['resident_id'], ['residents.id'], name=op.f('fk_outbox_messages_resident_id_residents')),
    sa.ForeignKeyConstraint(['staff_user_id'], ['staff_users.id'], name=op.f('fk_outbox_messages_staff_user_id_staff_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox_messages'))
    )
    with op.batch_alter_table('outbox_messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outbox_messages_item_id'), ['item_id'], unique=False)
        batch_op.create_index('ix_outbox_messages_status_next', ['status', 'next_attempt_at'], unique=False)



def downgrade():
    with op.batch_alter_table('outbox_messages', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_messages_status_next')
        batch_op.drop_index(batch_op.f('ix_outbox_messages_item_id'))

    op.drop_table('outbox_messages')
    with op.batch_alter_table('item_photos', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_item_photos_item_id'))

    op.drop_table('item_photos')
    with op.batch_alter_table('item_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_item_events_item_id'))

    op.drop_table('item_events')
    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.drop_index('ix_items_station_created')
        batch_op.drop_index(batch_op.f('ix_items_resident_id'))
        batch_op.drop_index('ix_items_deputy_status_created')
        batch_op.drop_index(batch_op.f('ix_items_code_id'))

    op.drop_table('items')
    with op.batch_alter_table('audit_entries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_entries_staff_user_id'))
        batch_op.drop_index(batch_op.f('ix_audit_entries_created_at'))

    op.drop_table('audit_entries')
    with op.batch_alter_table('staff_users', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_staff_users_station_id'))
        batch_op.drop_index(batch_op.f('ix_staff_users_region_id'))
        batch_op.drop_index(batch_op.f('ix_staff_users_deputy_id'))
        batch_op.drop_index(batch_op.f('ix_staff_users_department_id'))

    op.drop_table('staff_users')
    with op.batch_alter_table('reception_rules', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reception_rules_station_id'))
        batch_op.drop_index(batch_op.f('ix_reception_rules_deputy_id'))

    op.drop_table('reception_rules')
    with op.batch_alter_table('deputy_levels', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_deputy_levels_deputy_id'))

    op.drop_table('deputy_levels')
    with op.batch_alter_table('codes', schema=None) as batch_op:
        batch_op.drop_index('uq_codes_current_station', sqlite_where=sa.text('retired_at IS NULL'), postgresql_where=sa.text('retired_at IS NULL'))
        batch_op.drop_index('uq_codes_current_deputy', sqlite_where=sa.text('retired_at IS NULL'), postgresql_where=sa.text('retired_at IS NULL'))
        batch_op.drop_index(batch_op.f('ix_codes_station_id'))
        batch_op.drop_index(batch_op.f('ix_codes_deputy_id'))

    op.drop_table('codes')
    with op.batch_alter_table('deputies', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_deputies_station_id'))

    op.drop_table('deputies')
    with op.batch_alter_table('stations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_stations_region_id'))

    op.drop_table('stations')
    with op.batch_alter_table('departments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_departments_region_id'))

    op.drop_table('departments')
    with op.batch_alter_table('throttle_counters', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_throttle_counters_expires_at'))

    op.drop_table('throttle_counters')
    op.drop_table('residents')
    with op.batch_alter_table('regions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_regions_parent_id'))

    op.drop_table('regions')
