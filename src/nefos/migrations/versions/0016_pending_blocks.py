"""blocks uploaded but not yet used, charged to their account; periodic work claims

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pithos_pending_blocks",
        sa.Column("account", sa.String(length=80), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("project", sa.String(length=36), nullable=False),
        sa.Column("container_id", sa.Integer(), nullable=True),
        sa.Column("uploaded_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("account", "hash", name=op.f("pk_pithos_pending_blocks")),
    )
    op.create_index(
        op.f("ix_pithos_pending_blocks_container_id"), "pithos_pending_blocks", ["container_id"]
    )
    op.create_index(
        op.f("ix_pithos_pending_blocks_uploaded_at"), "pithos_pending_blocks", ["uploaded_at"]
    )
    op.create_table(
        "periodic_claims",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("next_at", sa.DateTime(), nullable=False),
        sa.Column("holder", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_periodic_claims")),
    )


def downgrade() -> None:
    op.drop_table("periodic_claims")
    op.drop_index(op.f("ix_pithos_pending_blocks_uploaded_at"), table_name="pithos_pending_blocks")
    op.drop_index(op.f("ix_pithos_pending_blocks_container_id"), table_name="pithos_pending_blocks")
    op.drop_table("pithos_pending_blocks")
