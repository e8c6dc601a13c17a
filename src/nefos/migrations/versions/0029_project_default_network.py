"""a project's default public network, for its servers created without networks

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-09
"""

import sqlalchemy as sa
from alembic import op

from nefos.core.db import UtcDateTime

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "network_project_defaults",
        sa.Column("project", sa.String(length=36), nullable=False),
        sa.Column("network_id", sa.Uuid(), nullable=False),
        sa.Column("updated", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["network_id"],
            ["network_networks.id"],
            name=op.f("fk_network_project_defaults_network_id_network_networks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project", name=op.f("pk_network_project_defaults")),
    )
    with op.batch_alter_table("network_project_defaults") as batch:
        batch.create_index(batch.f("ix_network_project_defaults_network_id"), ["network_id"])


def downgrade() -> None:
    with op.batch_alter_table("network_project_defaults") as batch:
        batch.drop_index(batch.f("ix_network_project_defaults_network_id"))
    op.drop_table("network_project_defaults")
