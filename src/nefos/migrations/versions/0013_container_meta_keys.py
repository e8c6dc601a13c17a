"""the object metadata keys each container's objects use

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pithos_container_meta_keys",
        sa.Column("node_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("objects", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["node_id"],
            ["pithos_nodes.id"],
            name=op.f("fk_pithos_container_meta_keys_node_id_pithos_nodes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("node_id", "key", name=op.f("pk_pithos_container_meta_keys")),
    )
    # What the current versions say now: user metadata (system keys start with ":").
    op.execute(
        """
        INSERT INTO pithos_container_meta_keys (node_id, key, objects)
        SELECT n.parent_id, a.key, COUNT(*)
        FROM pithos_attributes a
        JOIN pithos_versions v ON v.serial = a.serial
        JOIN pithos_nodes n ON n.id = v.node_id
        WHERE v.cluster = 0 AND a.domain = 'pithos' AND a.key NOT LIKE ':%'
        GROUP BY n.parent_id, a.key
        """
    )


def downgrade() -> None:
    op.drop_table("pithos_container_meta_keys")
