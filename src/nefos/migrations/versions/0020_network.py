"""network: networks, subnets, pools (bitmaps), ports and their addresses

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op

import nefos.core.db

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "network_networks",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("project", sa.String(length=36), nullable=False),
        sa.Column("shared_to_project", sa.Boolean(), nullable=False),
        sa.Column("flavor", sa.String(length=32), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("link", sa.String(length=64), nullable=False),
        sa.Column("mac_prefix", sa.String(length=17), nullable=False),
        sa.Column("public", sa.Boolean(), nullable=False),
        sa.Column("floating_ip_pool", sa.Boolean(), nullable=False),
        sa.Column("external_router", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created", nefos.core.db.UtcDateTime(), nullable=False),
        sa.Column("updated", nefos.core.db.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_network_networks")),
    )
    for column in ("user_id", "project", "public"):
        op.create_index(
            op.f(f"ix_network_networks_{column}"), "network_networks", [column], unique=False
        )
    op.create_table(
        "network_subnets",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("network_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("cidr", sa.String(length=64), nullable=False),
        sa.Column("ip_version", sa.Integer(), nullable=False),
        sa.Column("gateway", sa.String(length=64), nullable=True),
        sa.Column("dhcp", sa.Boolean(), nullable=False),
        sa.Column("slaac", sa.Boolean(), nullable=False),
        sa.Column("dns_nameservers", sa.Text(), nullable=False),
        sa.Column("host_routes", sa.Text(), nullable=False),
        sa.Column("created", nefos.core.db.UtcDateTime(), nullable=False),
        sa.Column("updated", nefos.core.db.UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["network_id"],
            ["network_networks.id"],
            name=op.f("fk_network_subnets_network_id_network_networks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_network_subnets")),
    )
    op.create_index(
        op.f("ix_network_subnets_network_id"), "network_subnets", ["network_id"], unique=False
    )
    op.create_table(
        "network_pools",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("subnet_id", sa.Uuid(), nullable=True),
        sa.Column("base", sa.String(length=64), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("available", sa.LargeBinary(), nullable=False),
        sa.Column("reserved", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["subnet_id"],
            ["network_subnets.id"],
            name=op.f("fk_network_pools_subnet_id_network_subnets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_network_pools")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_network_pools_kind"), "network_pools", ["kind"], unique=False)
    op.create_index(
        op.f("ix_network_pools_subnet_id"), "network_pools", ["subnet_id"], unique=False
    )
    op.create_table(
        "network_ports",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("network_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("project", sa.String(length=36), nullable=False),
        sa.Column("mac", sa.String(length=17), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=True),
        sa.Column("device_owner", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created", nefos.core.db.UtcDateTime(), nullable=False),
        sa.Column("updated", nefos.core.db.UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["network_id"],
            ["network_networks.id"],
            name=op.f("fk_network_ports_network_id_network_networks"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_network_ports")),
        sa.UniqueConstraint("mac", name=op.f("uq_network_ports_mac")),
    )
    op.create_index(
        op.f("ix_network_ports_network_id"), "network_ports", ["network_id"], unique=False
    )
    op.create_index(op.f("ix_network_ports_user_id"), "network_ports", ["user_id"], unique=False)
    op.create_table(
        "network_ip_addresses",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("network_id", sa.Uuid(), nullable=False),
        sa.Column("subnet_id", sa.Uuid(), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("ip_version", sa.Integer(), nullable=False),
        sa.Column("port_id", sa.Uuid(), nullable=True),
        sa.Column("floating", sa.Boolean(), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("project", sa.String(length=36), nullable=False),
        sa.Column("shared_to_project", sa.Boolean(), nullable=False),
        sa.Column("created", nefos.core.db.UtcDateTime(), nullable=False),
        sa.Column("updated", nefos.core.db.UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["network_id"],
            ["network_networks.id"],
            name=op.f("fk_network_ip_addresses_network_id_network_networks"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["port_id"],
            ["network_ports.id"],
            name=op.f("fk_network_ip_addresses_port_id_network_ports"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["subnet_id"],
            ["network_subnets.id"],
            name=op.f("fk_network_ip_addresses_subnet_id_network_subnets"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_network_ip_addresses")),
        sa.UniqueConstraint("subnet_id", "address", name=op.f("uq_network_ip_addresses_subnet_id")),
    )
    op.create_index(
        "ix_network_ip_addresses_floating_user",
        "network_ip_addresses",
        ["floating", "user_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_network_ip_addresses_network_id"),
        "network_ip_addresses",
        ["network_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_network_ip_addresses_port_id"), "network_ip_addresses", ["port_id"], unique=False
    )


def downgrade() -> None:
    op.drop_table("network_ip_addresses")
    op.drop_table("network_ports")
    op.drop_table("network_pools")
    op.drop_table("network_subnets")
    op.drop_table("network_networks")
