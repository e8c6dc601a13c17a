"""volume transfers: a volume offered to whoever holds the transfer's id and key;
a volume's status grows to 32 characters for "awaiting-transfer"

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

from nefos.core.db import UtcDateTime

revision = "0031"
down_revision = "0030"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("volume_volumes") as batch:
        batch.alter_column("status", existing_type=sa.String(length=16), type_=sa.String(length=32))
    op.create_table(
        "volume_transfers",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("volume_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("salt", sa.String(length=32), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("created", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["volume_id"],
            ["volume_volumes.id"],
            name=op.f("fk_volume_transfers_volume_id_volume_volumes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_volume_transfers")),
        sa.UniqueConstraint("volume_id", name=op.f("uq_volume_transfers_volume_id")),
    )
    with op.batch_alter_table("volume_transfers") as batch:
        batch.create_index(batch.f("ix_volume_transfers_user_id"), ["user_id"])


def downgrade() -> None:
    with op.batch_alter_table("volume_transfers") as batch:
        batch.drop_index(batch.f("ix_volume_transfers_user_id"))
    op.drop_table("volume_transfers")
    volumes = sa.table("volume_volumes", sa.column("status"))
    op.execute(  # the offers are gone: their volumes are the givers' as before
        volumes.update().where(volumes.c.status == "awaiting-transfer").values(status="available")
    )
    with op.batch_alter_table("volume_volumes") as batch:
        batch.alter_column("status", existing_type=sa.String(length=32), type_=sa.String(length=16))
