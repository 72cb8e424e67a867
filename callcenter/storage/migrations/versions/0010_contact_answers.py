"""Agentless campaigns' answers: ``contact_answers``, one row per collected variable per
attempt (its contact's too), unique per attempt and variable.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01

Written by hand after autogenerate's shape.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('contact_answers',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('attempt_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('contact_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('variable', sa.String(length=32), nullable=False),
    sa.Column('value', sa.String(length=32), nullable=False),
    sa.Column('answered_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['attempt_id'], ['contact_attempts.id'], name=op.f('fk_contact_answers_attempt_id_contact_attempts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_contact_answers_contact_id_contacts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_contact_answers')),
    sa.UniqueConstraint('attempt_id', 'variable', name=op.f('uq_contact_answers_attempt_id_variable'))
    )
    with op.batch_alter_table('contact_answers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_contact_answers_contact_id'), ['contact_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('contact_answers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_contact_answers_contact_id'))
    op.drop_table('contact_answers')
