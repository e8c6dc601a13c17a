"""storage namespace

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

import nefos.core.db

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pithos_nodes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("path", sa.String(length=2048), nullable=False),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["pithos_nodes.id"],
            name=op.f("fk_pithos_nodes_parent_id_pithos_nodes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pithos_nodes")),
        sa.UniqueConstraint("path", name=op.f("uq_pithos_nodes_path")),
    )
    with op.batch_alter_table("pithos_nodes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_pithos_nodes_parent_id"), ["parent_id"], unique=False)

    op.create_table(
        "pithos_policies",
        sa.Column("node_id", sa.Integer(), nullable=False),
        sa.Column("quota", sa.BigInteger(), nullable=False),
        sa.Column("versioning", sa.String(length=8), nullable=False),
        sa.Column("project", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(
            ["node_id"],
            ["pithos_nodes.id"],
            name=op.f("fk_pithos_policies_node_id_pithos_nodes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("node_id", name=op.f("pk_pithos_policies")),
    )
    op.create_table(
        "pithos_versions",
        sa.Column("serial", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("node_id", sa.Integer(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("type", sa.String(length=256), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("checksum", sa.String(length=32), nullable=False),
        sa.Column("map_name", sa.String(length=200), nullable=False),
        sa.Column("uuid", sa.Uuid(), nullable=False),
        sa.Column("mtime", nefos.core.db.UtcDateTime(), nullable=False),
        sa.Column("muser", sa.String(length=80), nullable=False),
        sa.Column("cluster", sa.SmallInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["node_id"],
            ["pithos_nodes.id"],
            name=op.f("fk_pithos_versions_node_id_pithos_nodes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("serial", name=op.f("pk_pithos_versions")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("pithos_versions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_pithos_versions_map_name"), ["map_name"], unique=False)
        batch_op.create_index(
            "ix_pithos_versions_node_cluster", ["node_id", "cluster"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_pithos_versions_uuid"), ["uuid"], unique=False)

    op.create_table(
        "pithos_attributes",
        sa.Column("serial", sa.Integer(), nullable=False),
        sa.Column("domain", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("value", sa.String(length=256), nullable=False),
        sa.ForeignKeyConstraint(
            ["serial"],
            ["pithos_versions.serial"],
            name=op.f("fk_pithos_attributes_serial_pithos_versions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("serial", "domain", "key", name=op.f("pk_pithos_attributes")),
    )


def downgrade() -> None:
    op.drop_table("pithos_attributes")
    with op.batch_alter_table("pithos_versions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pithos_versions_uuid"))
        batch_op.drop_index("ix_pithos_versions_node_cluster")
        batch_op.drop_index(batch_op.f("ix_pithos_versions_map_name"))

    op.drop_table("pithos_versions")
    op.drop_table("pithos_policies")
    with op.batch_alter_table("pithos_nodes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pithos_nodes_parent_id"))

    op.drop_table("pithos_nodes")
