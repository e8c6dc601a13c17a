"""server shared to project

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("compute_servers", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("shared_to_project", sa.Boolean(), server_default="0", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("compute_servers", schema=None) as batch_op:
        batch_op.drop_column("shared_to_project")
