"""storage: the blocks each account has had, which its hashmap PUTs may name unsent

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pithos_known_blocks",
        sa.Column("account", sa.String(length=80), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("account", "hash", name=op.f("pk_pithos_known_blocks")),
    )


def downgrade() -> None:
    op.drop_table("pithos_known_blocks")
