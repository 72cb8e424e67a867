"""Dispositions: ``contact_attempts.note`` (the agent's free text) and ``disposed_at``
(when the disposition was recorded, for the audit trail).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01

Written by hand after autogenerate's shape.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('contact_attempts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('note', sa.String(length=1000), nullable=True))
        batch_op.add_column(sa.Column('disposed_at', sa.DateTime(timezone=True),
                                      nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('contact_attempts', schema=None) as batch_op:
        batch_op.drop_column('disposed_at')
        batch_op.drop_column('note')
