"""volume bootable and read-only flags: Cinder's os-set_bootable and
os-update_readonly_flag

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-07

A volume made from an image or a snapshot was shown bootable; it now says so in its
own column, which the owner may change. ``readonly`` stays NULL until first set:
Cinder shows it in a volume's metadata only from then on.
"""

import sqlalchemy as sa
from alembic import op

revision = "0030"
down_revision = "0029"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("volume_volumes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("bootable", sa.Boolean(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("readonly", sa.Boolean(), nullable=True))
    volumes = sa.table("volume_volumes", sa.column("bootable"), sa.column("source_kind"))
    op.execute(
        volumes.update()
        .where(volumes.c.source_kind.in_(("image", "snapshot")))
        .values(bootable=sa.true())
    )


def downgrade() -> None:
    with op.batch_alter_table("volume_volumes", schema=None) as batch_op:
        batch_op.drop_column("readonly")
        batch_op.drop_column("bootable")
