"""network: whether a port was made for its server (released with it) or is the user's

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-09
"""

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("network_ports", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("owned_by_server", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("network_ports", schema=None) as batch_op:
        batch_op.drop_column("owned_by_server")
