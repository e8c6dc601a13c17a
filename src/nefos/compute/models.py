"""Compute tables (Cyclades): flavors, backends (clusters), servers and what the update
path learns about them (backend jobs, diagnostics), metadata, tags and keypairs.

A server's ``operstate`` is what its backend last reported for a finished job (spec
§2.6), never what was asked; ``task``/``task_job_id`` are the request in flight, and
``backendtime`` orders events so an old one never overwrites a newer state.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from nefos.core.db import Base, UtcDateTime, utcnow


class Flavor(Base):
    __tablename__ = "compute_flavors"
    __table_args__ = (
        UniqueConstraint("vcpus", "ram", "disk", "disk_template"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    vcpus: Mapped[int] = mapped_column(Integer)
    ram: Mapped[int] = mapped_column(Integer)  # MiB
    disk: Mapped[int] = mapped_column(Integer)  # GiB
    disk_template: Mapped[str] = mapped_column(String(64))
    public: Mapped[bool] = mapped_column(Boolean, default=True)
    allow_create: Mapped[bool] = mapped_column(Boolean, default=True)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)


class FlavorAccess(Base):
    """Projects that may use a non-public flavor."""

    __tablename__ = "compute_flavor_access"

    flavor_id: Mapped[int] = mapped_column(
        ForeignKey("compute_flavors.id", ondelete="CASCADE"), primary_key=True
    )
    project: Mapped[str] = mapped_column(String(36), primary_key=True)


class Backend(Base):
    """One cluster servers run on: a Ganeti cluster over RAPI, or the embedded one."""

    __tablename__ = "compute_backends"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # embedded | ganeti
    url: Mapped[str] = mapped_column(String(512), default="")
    username: Mapped[str] = mapped_column(String(128), default="")
    # The RAPI password, sealed with the deployment's key (nefos.core.sealing): a copy
    # of the database alone does not give the cluster away.
    password: Mapped[str] = mapped_column(String(256), default="")
    certificate: Mapped[str] = mapped_column(Text, default="")
    drained: Mapped[bool] = mapped_column(Boolean, default=False)
    offline: Mapped[bool] = mapped_column(Boolean, default=False)
    public: Mapped[bool] = mapped_column(Boolean, default=True)
    default_link: Mapped[str] = mapped_column(String(64), default="")
    disk_templates: Mapped[str] = mapped_column(String(256), default="")  # comma-separated
    hypervisor: Mapped[str] = mapped_column(String(32), default="")
    # The Ganeti OS new instances get: "noop" until `nefos ganeti install-os` has put
    # nefos's provider on the nodes, then "nefos+default" (which writes the image).
    os_type: Mapped[str] = mapped_column(String(64), default="noop", server_default="noop")
    # Cached capacity (spec §2.7), refreshed from the cluster.
    mfree: Mapped[int] = mapped_column(BigInteger, default=0)  # MiB
    mtotal: Mapped[int] = mapped_column(BigInteger, default=0)
    dfree: Mapped[int] = mapped_column(BigInteger, default=0)  # MiB
    dtotal: Mapped[int] = mapped_column(BigInteger, default=0)
    ctotal: Mapped[int] = mapped_column(Integer, default=0)
    pinst_cnt: Mapped[int] = mapped_column(Integer, default=0)
    refreshed: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, default=None)


class BackendNetwork(Base):
    """A network's state on one backend (Synnefo's BackendNetwork): made there lazily
    when a server there first needs it, removed when no NIC there uses it.

    ``state``: ``pending`` (its add and connect jobs are in flight; ``job_id`` is the
    connect, which jobs that use the network depend on), ``active``, ``removing``
    (``job_id`` is the removal), ``removed`` (also: never made, or its jobs failed, with
    Ganeti's reason in ``logmsg``)."""

    __tablename__ = "compute_backend_networks"

    network_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("network_networks.id", ondelete="CASCADE"), primary_key=True
    )
    backend_id: Mapped[int] = mapped_column(
        ForeignKey("compute_backends.id", ondelete="CASCADE"), primary_key=True
    )
    state: Mapped[str] = mapped_column(String(16), default="removed")
    job_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    logmsg: Mapped[str] = mapped_column(Text, default="")
    updated: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class Server(Base):
    __tablename__ = "compute_servers"
    __table_args__ = (
        Index("ix_compute_servers_user_deleted", "user_id", "deleted"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(255))
    user_id: Mapped[str] = mapped_column(String(36))
    project: Mapped[str] = mapped_column(String(36))
    flavor_id: Mapped[int] = mapped_column(ForeignKey("compute_flavors.id"))
    image_id: Mapped[str] = mapped_column(String(36))
    backend_id: Mapped[int | None] = mapped_column(
        ForeignKey("compute_backends.id"), default=None, index=True
    )
    operstate: Mapped[str] = mapped_column(String(16), default="BUILD")
    backendtime: Mapped[float] = mapped_column(Float, default=0.0)  # event_time, epoch
    task: Mapped[str | None] = mapped_column(String(32), default=None)
    task_job_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    # The quota serial whose outcome the task's job decides (None: nothing pending).
    serial: Mapped[int | None] = mapped_column(BigInteger, default=None)
    job_status: Mapped[str] = mapped_column(String(16), default="")
    job_opcode: Mapped[str] = mapped_column(String(64), default="")
    build_percentage: Mapped[int] = mapped_column(Integer, default=0)
    key_names: Mapped[str] = mapped_column(Text, default="[]")  # JSON list
    # Members of ``project`` see the server (read only) when its owner shares it.
    shared_to_project: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    # Its root disk is a volume (it holds that volume's cyclades.disk, not the flavor's):
    # fixed at its create, so what it releases is always what it took.
    root_volume: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    created: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)
    # When its build first succeeded (Nova's launched_at); None while it never ran.
    launched: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, default=None)


class ServerMetadata(Base):
    __tablename__ = "compute_server_metadata"

    server_id: Mapped[int] = mapped_column(
        ForeignKey("compute_servers.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[str] = mapped_column(String(255), default="")


class ServerTag(Base):
    __tablename__ = "compute_server_tags"

    server_id: Mapped[int] = mapped_column(
        ForeignKey("compute_servers.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(60), primary_key=True)


class BackendJob(Base):
    """Every job event the update path saw, for ``nefos server show`` and diagnosis."""

    __tablename__ = "compute_backend_jobs"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    server_id: Mapped[int] = mapped_column(
        ForeignKey("compute_servers.id", ondelete="CASCADE"), index=True
    )
    backend_id: Mapped[int | None] = mapped_column(ForeignKey("compute_backends.id"))
    job_id: Mapped[int] = mapped_column(BigInteger)
    opcode: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    logmsg: Mapped[str] = mapped_column(Text, default="")
    event_time: Mapped[float] = mapped_column(Float)
    received: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class Diagnostic(Base):
    """What the user is told about their server's build (spec §2.3 ``diagnostics``)."""

    __tablename__ = "compute_diagnostics"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    server_id: Mapped[int] = mapped_column(
        ForeignKey("compute_servers.id", ondelete="CASCADE"), index=True
    )
    level: Mapped[str] = mapped_column(String(16))  # DEBUG INFO WARNING ERROR
    source: Mapped[str] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(Text)
    details: Mapped[str] = mapped_column(Text, default="")
    source_date: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    created: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class Keypair(Base):
    __tablename__ = "compute_keypairs"

    user_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    public_key: Mapped[str] = mapped_column(Text)
    fingerprint: Mapped[str] = mapped_column(String(128))
    type: Mapped[str] = mapped_column(String(16), default="ssh")
    created: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
