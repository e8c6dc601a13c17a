"""compute: each network's state on each backend; network: a port's firewall profile

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-10
"""

import sqlalchemy as sa
from alembic import op

import nefos.core.db

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "compute_backend_networks",
        sa.Column("network_id", sa.Uuid(), nullable=False),
        sa.Column("backend_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("job_id", sa.BigInteger(), nullable=True),
        sa.Column("logmsg", sa.Text(), nullable=False),
        sa.Column("updated", nefos.core.db.UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["backend_id"],
            ["compute_backends.id"],
            name=op.f("fk_compute_backend_networks_backend_id_compute_backends"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["network_id"],
            ["network_networks.id"],
            name=op.f("fk_compute_backend_networks_network_id_network_networks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "network_id", "backend_id", name=op.f("pk_compute_backend_networks")
        ),
    )
    with op.batch_alter_table("network_ports", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "firewall_profile", sa.String(length=16), nullable=False, server_default="DISABLED"
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("network_ports", schema=None) as batch_op:
        batch_op.drop_column("firewall_profile")
    op.drop_table("compute_backend_networks")
