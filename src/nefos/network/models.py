"""Network tables (Cyclades networking): networks, subnets, ports, addresses, pools.

A port's addresses and a floating IP are one kind of row, :class:`IpAddress`: a floating
IP is an address on a public network that a project holds with no port (or attached to
one). ``UNIQUE(subnet_id, address)`` is the last word on who holds an address: the pools
hand out each value once, and the database refuses a twin even if they did not.

Pools (spec §4.3) are bitmaps, one row per pool: allocation locks the row, takes the
lowest value free in both maps and writes the row back (see ``nefos.network.pools``).
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from nefos.core.db import Base, UtcDateTime, utcnow


class Network(Base):
    __tablename__ = "network_networks"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(255), default="")
    user_id: Mapped[str] = mapped_column(String(36), index=True)
    project: Mapped[str] = mapped_column(String(36), index=True)
    shared_to_project: Mapped[bool] = mapped_column(Boolean, default=False)
    flavor: Mapped[str] = mapped_column(String(32))  # spec §4.2: MAC_FILTERED, ...
    mode: Mapped[str] = mapped_column(String(16))  # bridged | routed
    link: Mapped[str] = mapped_column(String(64))  # the bridge or routing table
    mac_prefix: Mapped[str] = mapped_column(String(17))
    public: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    floating_ip_pool: Mapped[bool] = mapped_column(Boolean, default=False)
    external_router: Mapped[bool] = mapped_column(Boolean, default=False)
    state: Mapped[str] = mapped_column(String(16), default="ACTIVE")
    created: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)

    subnets: Mapped[list[Subnet]] = relationship(
        order_by="Subnet.created", lazy="raise", viewonly=True
    )


class Subnet(Base):
    __tablename__ = "network_subnets"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    network_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("network_networks.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(255), default="")
    user_id: Mapped[str] = mapped_column(String(36))
    cidr: Mapped[str] = mapped_column(String(64))
    ip_version: Mapped[int] = mapped_column(Integer)
    gateway: Mapped[str | None] = mapped_column(String(64), nullable=True)
    dhcp: Mapped[bool] = mapped_column(Boolean, default=True)
    slaac: Mapped[bool] = mapped_column(Boolean, default=False)  # IPv6 by the MAC
    dns_nameservers: Mapped[str] = mapped_column(Text, default="[]")  # JSON list
    host_routes: Mapped[str] = mapped_column(Text, default="[]")  # JSON list
    created: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)

    pools: Mapped[list[Pool]] = relationship(order_by="Pool.offset", lazy="raise", viewonly=True)
    # Loaded with the subnet where it is read (its project and publicity are in its view).
    network: Mapped[Network] = relationship(lazy="raise", viewonly=True)


class Pool(Base):
    """A range of values, free or taken: IPs of one allocation range of a subnet, the
    MAC prefixes of private networks, or the bridges of PHYSICAL_VLAN networks.

    ``available`` has a 1 bit for each value not allocated, ``reserved`` a 0 bit for
    each value kept out by the operator or the pool itself (a network or broadcast
    address, the gateway, a multicast MAC prefix); a value is free if both say so.
    Bit ``i`` of the maps (little-endian) is value ``i``.
    """

    __tablename__ = "network_pools"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16), index=True)  # ip | mac_prefix | bridge
    subnet_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("network_subnets.id", ondelete="CASCADE"), nullable=True, index=True
    )
    base: Mapped[str] = mapped_column(String(64))  # network address, MAC base, bridge stem
    offset: Mapped[int] = mapped_column(BigInteger, default=0)  # first value's index from base
    size: Mapped[int] = mapped_column(Integer)
    available: Mapped[bytes] = mapped_column(LargeBinary)
    reserved: Mapped[bytes] = mapped_column(LargeBinary)


class Port(Base):
    __tablename__ = "network_ports"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    network_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("network_networks.id", ondelete="RESTRICT"), index=True
    )
    name: Mapped[str] = mapped_column(String(255), default="")
    user_id: Mapped[str] = mapped_column(String(36), index=True)
    project: Mapped[str] = mapped_column(String(36))
    mac: Mapped[str] = mapped_column(String(17), unique=True)
    device_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    device_owner: Mapped[str] = mapped_column(String(64), default="")
    status: Mapped[str] = mapped_column(String(16), default="DOWN")
    # Made by compute for its server (released with it), not a port the user made and
    # passed in, which a server's delete only detaches (Nova's preserve_on_delete).
    owned_by_server: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Synnefo's firewallProfile of the NIC: DISABLED (unprotected), ENABLED (protected),
    # PROTECTED (limited); an instance tag on Ganeti (nefos.compute.firewall).
    firewall_profile: Mapped[str] = mapped_column(
        String(16), default="DISABLED", server_default="DISABLED"
    )
    created: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)

    addresses: Mapped[list[IpAddress]] = relationship(
        order_by="IpAddress.created", lazy="raise", viewonly=True
    )


class IpAddress(Base):
    """A fixed IP of a port, or a floating IP (``floating``), attached to a port or not."""

    __tablename__ = "network_ip_addresses"
    __table_args__ = (
        UniqueConstraint("subnet_id", "address"),
        Index("ix_network_ip_addresses_floating_user", "floating", "user_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    network_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("network_networks.id", ondelete="RESTRICT"), index=True
    )
    subnet_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("network_subnets.id", ondelete="RESTRICT")
    )
    address: Mapped[str] = mapped_column(String(64))
    ip_version: Mapped[int] = mapped_column(Integer)
    port_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("network_ports.id", ondelete="SET NULL"), nullable=True, index=True
    )
    floating: Mapped[bool] = mapped_column(Boolean, default=False)
    user_id: Mapped[str] = mapped_column(String(36))
    project: Mapped[str] = mapped_column(String(36))
    shared_to_project: Mapped[bool] = mapped_column(Boolean, default=False)
    created: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)

    port: Mapped[Port | None] = relationship(lazy="raise", viewonly=True)


class ProjectNetwork(Base):
    """The public network a project's servers get when created without ``networks``
    (issue 20: a deployment, or a project, names a default public network); set by an
    operator, it wins over ``[network] default_public_network``."""

    __tablename__ = "network_project_defaults"

    project: Mapped[str] = mapped_column(String(36), primary_key=True)
    network_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("network_networks.id", ondelete="CASCADE"), index=True
    )
    updated: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
