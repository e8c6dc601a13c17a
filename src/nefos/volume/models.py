"""Volume tables (Archipelago's maps, kept in the database): volumes, their map
entries, and the snapshots taken of them.

A volume's map is one row per block that is not all zeros (``volume_blocks``): block
``position`` of the volume holds the content-addressed block named ``hash`` in the
deployment's block store, the same store and names as Pithos files. A block the map has
no row for reads as zeros, so an empty volume of any size has no rows and a clone of an
image has as many as the image has non-zero blocks. ``owned`` marks the entries this
volume wrote since its last snapshot (its epoch's copy-on-write targets); the others
are shared with the image, file, snapshot or volume they came from. A write never
changes a block, only which block an entry names (``nefos.volume.service``).

A snapshot is a Pithos file (and image) made from the map at one moment; its row here
ties the file's UUID to the volume and epoch it froze. Its name, description and
metadata are the image's (Synnefo keeps them in Plankton too), so they cannot disagree.

A volume's ``status`` is Cinder's word for it (``nefos.volume.states``); its metadata
(``volume_metadata``) is Cinder's and Cyclades's key/value pairs.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import BigInteger, Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from nefos.core.db import Base, UtcDateTime, utcnow
from nefos.volume.types import DEFAULT as DEFAULT_TYPE


class Volume(Base):
    __tablename__ = "volume_volumes"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[str] = mapped_column(String(36), index=True)
    project: Mapped[str] = mapped_column(String(36), index=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    size: Mapped[int] = mapped_column(BigInteger)  # bytes; charged as cyclades.disk
    epoch: Mapped[int] = mapped_column(Integer, default=0)  # bumped by each snapshot
    source_kind: Mapped[str] = mapped_column(String(16), default="")  # "", image, volume
    source_id: Mapped[str] = mapped_column(String(36), default="")
    description: Mapped[str] = mapped_column(String(255), default="")
    status: Mapped[str] = mapped_column(String(32), default="available")
    volume_type: Mapped[str] = mapped_column(String(64), default=DEFAULT_TYPE.id)
    delete_on_termination: Mapped[bool] = mapped_column(Boolean, default=False)
    # Set at creation (from an image or a snapshot, or as its source volume), then by
    # its owner (os-set_bootable); a server boots from a bootable volume only.
    bootable: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    # os-update_readonly_flag; None until first set. volumed refuses a read-only
    # volume's writes.
    readonly: Mapped[bool | None] = mapped_column(Boolean, nullable=True, default=None)
    created: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class VolumeBlock(Base):
    __tablename__ = "volume_blocks"

    volume_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("volume_volumes.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # block index
    hash: Mapped[str] = mapped_column(String(64), index=True)  # hex SHA-256, never H("")
    owned: Mapped[bool] = mapped_column(Boolean, default=False)


# A map entry naming the volume's own extent (a block's hash has no dot).
EXTENT_ENTRY = VolumeBlock.hash.contains(".")


class VolumeMetadata(Base):
    __tablename__ = "volume_metadata"

    volume_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("volume_volumes.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[str] = mapped_column(String(255))


class Snapshot(Base):
    __tablename__ = "volume_snapshots"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)  # the Pithos file's UUID
    volume_id: Mapped[uuid.UUID] = mapped_column(index=True)  # the volume may go first
    user_id: Mapped[str] = mapped_column(String(36), index=True)
    name: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    epoch: Mapped[int] = mapped_column(Integer)  # the volume's epoch it froze
    created: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class VolumeAttachment(Base):
    """A volume attached to a server (one server at a time: no multiattach). The row
    exists from the moment an attach starts (the volume ``attaching``) until its detach
    ends (``available`` again); its id is Cinder's ``attachment_id``. ``server_id`` is
    compute's integer id, kept without a foreign key so that the volume part does not
    depend on compute's tables. ``boot_index`` 0 marks the server's root disk (a server
    booted from a volume), None a disk attached later."""

    __tablename__ = "volume_attachments"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    volume_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("volume_volumes.id", ondelete="CASCADE"), unique=True
    )
    server_id: Mapped[int] = mapped_column(BigInteger, index=True)
    device: Mapped[str] = mapped_column(String(64))
    boot_index: Mapped[int | None] = mapped_column(Integer, nullable=True, default=None)
    created: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class VolumeTransfer(Base):
    """A volume its owner offers to whoever presents the transfer's id and key
    (Cinder's ``os-volume-transfer``); the volume is ``awaiting-transfer`` meanwhile.
    Only a salted hash of the key is kept: the key is shown once, at creation."""

    __tablename__ = "volume_transfers"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    volume_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("volume_volumes.id", ondelete="CASCADE"), unique=True
    )
    user_id: Mapped[str] = mapped_column(String(36), index=True)  # who offers it
    name: Mapped[str] = mapped_column(String(255), default="")
    salt: Mapped[str] = mapped_column(String(32))
    key_hash: Mapped[str] = mapped_column(String(64))  # hex SHA-256 of salt and key
    created: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
