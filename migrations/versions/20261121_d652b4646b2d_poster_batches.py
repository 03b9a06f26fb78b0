"""Poster batches: a long batch PDF (a station, its cards, a county) asked for on a page and
rendered by ``flask posters run`` into a file under the instance folder.

Reviewed: a new table only; the check constraint ties the scope column to the kind; the
(status, id) index serves the worker's claim (oldest queued first).

Revision ID: d652b4646b2d
Revises: 3912bf276cbe
Create Date: 2026-11-21 07:35:30.285810

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'd652b4646b2d'
down_revision = '3912bf276cbe'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('poster_batches',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('requested_by_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('station', 'cards', 'region', name='posterbatchkind', native_enum=False, length=10), nullable=False),
    sa.Column('station_id', sa.Integer(), nullable=True),
    sa.Column('region_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.Enum('queued', 'running', 'done', 'failed', 'expired', name='posterbatchstatus', native_enum=False, length=10), nullable=False),
    sa.Column('pages_done', sa.Integer(), nullable=False),
    sa.Column('pages_total', sa.Integer(), nullable=False),
    sa.Column('file_path', sa.String(length=255), nullable=False),
    sa.Column('error', sa.Text(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('lease_expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("(kind = 'region' AND region_id IS NOT NULL AND station_id IS NULL) OR (kind <> 'region' AND station_id IS NOT NULL AND region_id IS NULL)", name=op.f('ck_poster_batches_scope_matches_kind')),
    sa.ForeignKeyConstraint(['region_id'], ['regions.id'], name=op.f('fk_poster_batches_region_id_regions')),
    sa.ForeignKeyConstraint(['requested_by_id'], ['staff_users.id'], name=op.f('fk_poster_batches_requested_by_id_staff_users')),
    sa.ForeignKeyConstraint(['station_id'], ['stations.id'], name=op.f('fk_poster_batches_station_id_stations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_poster_batches'))
    )
    with op.batch_alter_table('poster_batches', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_poster_batches_region_id'), ['region_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_poster_batches_station_id'), ['station_id'], unique=False)
        batch_op.create_index('ix_poster_batches_status_id', ['status', 'id'], unique=False)


def downgrade():
    with op.batch_alter_table('poster_batches', schema=None) as batch_op:
        batch_op.drop_index('ix_poster_batches_status_id')
        batch_op.drop_index(batch_op.f('ix_poster_batches_station_id'))
        batch_op.drop_index(batch_op.f('ix_poster_batches_region_id'))

    op.drop_table('poster_batches')
