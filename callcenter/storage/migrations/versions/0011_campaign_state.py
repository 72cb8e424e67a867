"""Campaign run state: ``campaigns.state`` (``running``, ``paused``, ``stopped``; every
existing campaign ``running``, as it behaved before), who changed it last and when;
``campaign_state_changes``, the audit of every change; ``dialer_nodes``, the heartbeat
of each dialer process running a campaign.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01

Written by hand after autogenerate's shape. When merged after another 0010, only
``down_revision`` changes.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.add_column(sa.Column('state', sa.String(length=16), nullable=False,
                                      server_default='running'))
        batch_op.add_column(sa.Column('state_changed_by', sa.String(length=64),
                                      nullable=True))
        batch_op.add_column(sa.Column('state_changed_at', sa.DateTime(timezone=True),
                                      nullable=True))
    op.create_table('campaign_state_changes',
    sa.Column('id', _ID, nullable=False),
    sa.Column('campaign_id', _ID, nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('previous', sa.String(length=16), nullable=False),
    sa.Column('changed_by', sa.String(length=64), nullable=False),
    sa.Column('changed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('via', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=True),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'],
                            name=op.f('fk_campaign_state_changes_campaign_id_campaigns'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_campaign_state_changes'))
    )
    with op.batch_alter_table('campaign_state_changes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_campaign_state_changes_campaign_id'),
                              ['campaign_id'], unique=False)
    op.create_table('dialer_nodes',
    sa.Column('id', _ID, nullable=False),
    sa.Column('campaign_id', _ID, nullable=False),
    sa.Column('node', sa.String(length=48), nullable=False),
    sa.Column('host', sa.String(length=200), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'],
                            name=op.f('fk_dialer_nodes_campaign_id_campaigns'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dialer_nodes')),
    sa.UniqueConstraint('campaign_id', 'node', name=op.f('uq_dialer_nodes_campaign_id_node'))
    )


def downgrade() -> None:
    op.drop_table('dialer_nodes')
    with op.batch_alter_table('campaign_state_changes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_campaign_state_changes_campaign_id'))
    op.drop_table('campaign_state_changes')
    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.drop_column('state_changed_at')
        batch_op.drop_column('state_changed_by')
        batch_op.drop_column('state')
