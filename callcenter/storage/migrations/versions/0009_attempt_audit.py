"""The dialer's audit trail: ``contact_attempts.rule``, ``.reason`` (the eligibility
verdict that allowed the call) and ``.pacing_rule`` (the pacing decision that placed it);
``campaigns.dnc_blocked``, contacts refused for the do-not-call list.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01

Written by hand after autogenerate's shape.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('contact_attempts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('rule', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('reason', sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column('pacing_rule', sa.String(length=32), nullable=True))
    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.add_column(sa.Column('dnc_blocked', sa.Integer(), nullable=False,
                                      server_default='0'))


def downgrade() -> None:
    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.drop_column('dnc_blocked')
    with op.batch_alter_table('contact_attempts', schema=None) as batch_op:
        batch_op.drop_column('pacing_rule')
        batch_op.drop_column('reason')
        batch_op.drop_column('rule')
