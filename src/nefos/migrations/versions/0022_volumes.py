"""volumes: volumes, their maps of blocks, and their snapshots

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

import nefos.core.db

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "volume_volumes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("project", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("source_kind", sa.String(length=16), nullable=False),
        sa.Column("source_id", sa.String(length=36), nullable=False),
        sa.Column("created", nefos.core.db.UtcDateTime(), nullable=False),
        sa.Column("updated", nefos.core.db.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_volume_volumes")),
    )
    for column in ("user_id", "project"):
        op.create_index(
            op.f(f"ix_volume_volumes_{column}"), "volume_volumes", [column], unique=False
        )
    op.create_table(
        "volume_blocks",
        sa.Column("volume_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("owned", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["volume_id"],
            ["volume_volumes.id"],
            name=op.f("fk_volume_blocks_volume_id_volume_volumes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("volume_id", "position", name=op.f("pk_volume_blocks")),
    )
    op.create_index(op.f("ix_volume_blocks_hash"), "volume_blocks", ["hash"], unique=False)
    op.create_table(
        "volume_snapshots",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("volume_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("created", nefos.core.db.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_volume_snapshots")),
    )
    for column in ("volume_id", "user_id"):
        op.create_index(
            op.f(f"ix_volume_snapshots_{column}"), "volume_snapshots", [column], unique=False
        )


def downgrade() -> None:
    op.drop_table("volume_snapshots")
    op.drop_table("volume_blocks")
    op.drop_table("volume_volumes")
