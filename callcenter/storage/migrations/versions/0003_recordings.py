"""Recordings of queued calls (``recordings``: one row per file, linked to its call).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01

Written from the model, checked by the drift test. Types are spelled as the SQL they
store (no model imports), so this file stays valid however the models evolve.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('recordings',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('queued_call_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('queue', sa.String(length=48), nullable=False),
    sa.Column('agent', sa.String(length=48), nullable=True),
    sa.Column('name', sa.String(length=160), nullable=False),
    sa.Column('format', sa.String(length=32), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('path', sa.String(length=168), nullable=True),
    sa.Column('duration', sa.Float(), nullable=True),
    sa.Column('size', sa.BigInteger(), nullable=True),
    sa.ForeignKeyConstraint(['queued_call_id'], ['queued_calls.id'], name=op.f('fk_recordings_queued_call_id_queued_calls'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recordings')),
    sa.UniqueConstraint('name', name=op.f('uq_recordings_name'))
    )
    with op.batch_alter_table('recordings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_recordings_queued_call_id'), ['queued_call_id'], unique=False)
        batch_op.create_index('ix_recordings_queue_started_at', ['queue', 'started_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('recordings', schema=None) as batch_op:
        batch_op.drop_index('ix_recordings_queue_started_at')
        batch_op.drop_index(batch_op.f('ix_recordings_queued_call_id'))

    op.drop_table('recordings')
