"""Messages left after hours: ``callbacks.recording_id``, the message an agent hears
before a ``message`` callback dials the customer.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01

Written by hand after autogenerate's shape (after 0006, the campaigns).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('callbacks', schema=None) as batch_op:
        batch_op.add_column(sa.Column(
            'recording_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
            nullable=True))
        batch_op.create_foreign_key(
            batch_op.f('fk_callbacks_recording_id_recordings'), 'recordings',
            ['recording_id'], ['id'], ondelete='SET NULL')


def downgrade() -> None:
    with op.batch_alter_table('callbacks', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_callbacks_recording_id_recordings'),
                                 type_='foreignkey')
        batch_op.drop_column('recording_id')
