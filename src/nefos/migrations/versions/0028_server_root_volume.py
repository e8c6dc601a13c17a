"""server root volume: a server whose root disk is a volume charges no flavor disk

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-09

Servers that exist already keep False: they hold their flavor's cyclades.disk, and
what a server releases must be what it holds.
"""

import sqlalchemy as sa
from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("compute_servers", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("root_volume", sa.Boolean(), server_default="0", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("compute_servers", schema=None) as batch_op:
        batch_op.drop_column("root_volume")
