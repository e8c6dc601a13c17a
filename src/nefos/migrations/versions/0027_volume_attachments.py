"""volume attachments: which server a volume is attached to, as which device

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

from nefos.core.db import UtcDateTime

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "volume_attachments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("volume_id", sa.Uuid(), nullable=False),
        sa.Column("server_id", sa.BigInteger(), nullable=False),
        sa.Column("device", sa.String(length=64), nullable=False),
        sa.Column("boot_index", sa.Integer(), nullable=True),
        sa.Column("created", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["volume_id"],
            ["volume_volumes.id"],
            name=op.f("fk_volume_attachments_volume_id_volume_volumes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_volume_attachments")),
        sa.UniqueConstraint("volume_id", name=op.f("uq_volume_attachments_volume_id")),
    )
    with op.batch_alter_table("volume_attachments") as batch:
        batch.create_index(batch.f("ix_volume_attachments_server_id"), ["server_id"])


def downgrade() -> None:
    with op.batch_alter_table("volume_attachments") as batch:
        batch.drop_index(batch.f("ix_volume_attachments_server_id"))
    op.drop_table("volume_attachments")
