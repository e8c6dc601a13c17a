"""Storage namespace tables (Pithos): nodes, their versions, version attributes and
container policies.

A node is one path: an account (the user UUID), ``<account>/<container>`` or
``<account>/<container>/<object>``; object nodes hang directly off their container so a
listing is one scan of a container's children. Every write is a new version row with a
global serial (``X-Object-Version``); the current version of a node is its highest
serial in cluster 0. A container's object count, bytes and last change are rolled up
in ``pithos_container_stats`` by each write, in the write's own transaction (one
statement), as Pithos keeps its statistics: computing them over the container's
versions took 150 ms at 200,000 objects, for every container HEAD.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import BigInteger, ForeignKey, Index, SmallInteger, String, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column

from nefos.core.db import Base, UtcDateTime, utcnow

CURRENT, HISTORY, DELETED = 0, 1, 2  # version clusters, as in Synnefo
MAX_PATH = 2048  # account (36) + container (256) + object (1024) + separators, with room


class Node(Base):
    __tablename__ = "pithos_nodes"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("pithos_nodes.id", ondelete="CASCADE"), index=True, default=None
    )
    # Names order by code point, as Swift's: SQLite's default; PostgreSQL's column is
    # given the C collation, so listings read its unique index in order (migration 0010).
    path: Mapped[str] = mapped_column(
        String(MAX_PATH).with_variant(String(MAX_PATH, collation="C"), "postgresql"),
        unique=True,
    )


class Version(Base):
    """One version of a node; ``serial`` is global and never reused (AUTOINCREMENT on
    SQLite, a sequence on PostgreSQL), because clients keep it as ``X-Object-Version``."""

    __tablename__ = "pithos_versions"
    __table_args__ = (
        Index("ix_pithos_versions_node_cluster", "node_id", "cluster"),
        # "Is there a stored body of this size?" and "what is the MD5 of the one with
        # this hash?", asked by uploads that may repeat one (nefos.storage.upload); only
        # bodies of more than one block ask, so small objects' writes skip it (0014).
        Index(
            "ix_pithos_versions_content",
            "size",
            "hash",
            sqlite_where=text("size > 4194304"),
            postgresql_where=text("size > 4194304"),
        ),
        {"sqlite_autoincrement": True},
    )

    serial: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("pithos_nodes.id", ondelete="CASCADE"))
    size: Mapped[int] = mapped_column(BigInteger)
    type: Mapped[str] = mapped_column(String(256), default="")
    hash: Mapped[str] = mapped_column(String(64))  # Merkle root, hex
    checksum: Mapped[str] = mapped_column(String(32), default="")  # MD5 hex or ""
    # "": no map in the store, as a one-block version's map is its hash (deleted markers
    # have none either)
    map_name: Mapped[str] = mapped_column(String(200), index=True)
    uuid: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    mtime: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    muser: Mapped[str] = mapped_column(String(80), default="")
    cluster: Mapped[int] = mapped_column(SmallInteger, default=CURRENT)


class Attribute(Base):
    """``(serial, domain, key) → value``: ``pithos`` user metadata, later ``plankton``."""

    __tablename__ = "pithos_attributes"
    __table_args__ = (
        # The expirer's question, "which objects are past their X-Delete-At", reads only
        # the rows that hold one (migration 0012).
        Index(
            "ix_pithos_attributes_delete_at",
            "value",
            sqlite_where=text("key = ':delete-at'"),
            postgresql_where=text("key = ':delete-at'"),
        ),
    )

    serial: Mapped[int] = mapped_column(
        ForeignKey("pithos_versions.serial", ondelete="CASCADE"), primary_key=True
    )
    domain: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[str] = mapped_column(String(256), default="")


class ContainerStats(Base):
    """What a container holds now: current versions and their bytes, and when it or
    anything in it last changed (its creation, metadata and policies, any write or
    delete)."""

    __tablename__ = "pithos_container_stats"

    node_id: Mapped[int] = mapped_column(
        ForeignKey("pithos_nodes.id", ondelete="CASCADE"), primary_key=True
    )
    objects: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    mtime: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class ContainerMetaKey(Base):
    """How many of a container's current objects have user metadata ``key``: what its
    ``X-Container-Object-Meta`` lists, kept by each write in its transaction (computing
    it over the container's versions would cost every HEAD what the statistics used to).
    A key no object has any more has no row."""

    __tablename__ = "pithos_container_meta_keys"

    node_id: Mapped[int] = mapped_column(
        ForeignKey("pithos_nodes.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    objects: Mapped[int] = mapped_column(BigInteger, default=0)


class Policy(Base):
    """A container's policies: quota in bytes (0 = unlimited), versioning, project."""

    __tablename__ = "pithos_policies"

    node_id: Mapped[int] = mapped_column(
        ForeignKey("pithos_nodes.id", ondelete="CASCADE"), primary_key=True
    )
    quota: Mapped[int] = mapped_column(BigInteger, default=0)
    versioning: Mapped[str] = mapped_column(String(8), default="auto")
    project: Mapped[str] = mapped_column(String(36))


class NodeMeta(Base):
    """User metadata of an account or container node (objects keep theirs per version)."""

    __tablename__ = "pithos_node_meta"

    node_id: Mapped[int] = mapped_column(
        ForeignKey("pithos_nodes.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[str] = mapped_column(String(256), default="")


class GroupMember(Base):
    """An account's user groups (``X-Account-Group-<name>``), named in sharing lists as
    ``<account>:<group>``."""

    __tablename__ = "pithos_groups"

    account: Mapped[str] = mapped_column(String(80), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    member: Mapped[str] = mapped_column(String(256), primary_key=True)


class Permission(Base):
    """Who may read or write a path and everything below it (the nearest path with
    permissions wins). They belong to the path, not to a version."""

    __tablename__ = "pithos_permissions"

    path: Mapped[str] = mapped_column(String(MAX_PATH), primary_key=True)
    access: Mapped[str] = mapped_column(String(8), primary_key=True)  # read | write
    subject: Mapped[str] = mapped_column(String(256), primary_key=True)


class PublicLink(Base):
    """An object published at ``/public/<token>``."""

    __tablename__ = "pithos_public"

    path: Mapped[str] = mapped_column(String(MAX_PATH), primary_key=True)
    token: Mapped[str] = mapped_column(String(32), unique=True)


class PendingBlock(Base):
    """A block an account uploaded on its own (``POST <container>`` with raw bytes) that
    no version of the account has used yet: charged to the account, in the project of
    the container it was posted to, until a version uses it or gc drops it
    (``nefos.storage.pending``). ``size``: what the store keeps of it (no trailing
    zeros). No foreign key to the container: the row outlives it, as its charge does."""

    __tablename__ = "pithos_pending_blocks"

    account: Mapped[str] = mapped_column(String(80), primary_key=True)
    hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    project: Mapped[str] = mapped_column(String(36))
    container_id: Mapped[int | None] = mapped_column(index=True, default=None)
    uploaded_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, index=True)


class KnownBlock(Base):
    """A block an account has had: sent in a body or an upload, or found in a map it
    copied in. A hashmap PUT may name such a block without sending it; any other block
    it must send, whether the store has it or not (``nefos.storage.known``)."""

    __tablename__ = "pithos_known_blocks"

    account: Mapped[str] = mapped_column(String(80), primary_key=True)
    hash: Mapped[str] = mapped_column(String(64), primary_key=True)
