"""container statistics rolled up by writes

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

import nefos.core.db

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pithos_container_stats",
        sa.Column("node_id", sa.Integer(), nullable=False),
        sa.Column("objects", sa.BigInteger(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("mtime", nefos.core.db.UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["node_id"],
            ["pithos_nodes.id"],
            name=op.f("fk_pithos_container_stats_node_id_pithos_nodes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("node_id", name=op.f("pk_pithos_container_stats")),
    )
    # What the aggregates said: current versions counted, any version's time.
    op.execute(
        """
        INSERT INTO pithos_container_stats (node_id, objects, bytes, mtime)
        SELECT n.parent_id,
               SUM(CASE WHEN v.cluster = 0 THEN 1 ELSE 0 END),
               SUM(CASE WHEN v.cluster = 0 THEN v.size ELSE 0 END),
               MAX(v.mtime)
        FROM pithos_nodes n JOIN pithos_versions v ON v.node_id = n.id
        WHERE n.parent_id IN (SELECT node_id FROM pithos_policies)
        GROUP BY n.parent_id
        """
    )


def downgrade() -> None:
    op.drop_table("pithos_container_stats")
