"""volume api: a volume's description, status, type, delete_on_termination and metadata

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None

NEFOS_TYPE = "3cb0c0bd-c911-5008-a213-265a1a04253f"  # nefos.volume.types.NEFOS, ext_nefos
NAMES = ("description", "status", "volume_type", "delete_on_termination")


def _columns() -> list[sa.Column]:
    """Existing volumes get the values a new one gets (the models give them from here on)."""
    return [
        sa.Column("description", sa.String(length=255), nullable=False, server_default=""),
        sa.Column("status", sa.String(length=16), nullable=False, server_default="available"),
        sa.Column("volume_type", sa.String(length=64), nullable=False, server_default=NEFOS_TYPE),
        sa.Column("delete_on_termination", sa.Boolean(), nullable=False, server_default=sa.false()),
    ]


def upgrade() -> None:
    with op.batch_alter_table("volume_volumes") as batch:
        for column in _columns():
            batch.add_column(column)
    with op.batch_alter_table("volume_volumes") as batch:
        for name in NAMES:
            batch.alter_column(name, server_default=None)
    op.create_table(
        "volume_metadata",
        sa.Column("volume_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("value", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(
            ["volume_id"],
            ["volume_volumes.id"],
            name=op.f("fk_volume_metadata_volume_id_volume_volumes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("volume_id", "key", name=op.f("pk_volume_metadata")),
    )


def downgrade() -> None:
    op.drop_table("volume_metadata")
    with op.batch_alter_table("volume_volumes") as batch:
        for name in reversed(NAMES):
            batch.drop_column(name)
