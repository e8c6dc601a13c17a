"""Volumes (Archipelago, rebuilt): block devices made of the blocks files are made of.

A volume is a size and a map (``nefos.volume.models``): block ``i`` of the volume is the
content-addressed block its entry names in the deployment's block store, the same
store, names and bytes as Pithos files and images, or the volume's own **extent** for
that block (written in place by ``nefos volumed``, ``nefos.volume.devices``), or zeros
where there is no entry. Whatever another map takes from a volume (a snapshot, a clone)
is content-addressed: its extents are sealed first, into blocks (``_sealed_map``).

* **From an image** the image file's hashmap becomes the map: no byte is copied, so
  creating a volume takes the same time for any image size.
* **A clone** of a volume copies its entries (rows, not blocks; its extents sealed into
  blocks first), and may be larger.
* **A write** never changes a block. The blocks it touches are read (unless it covers
  them whole), patched, and stored as new content-addressed blocks, durable when
  ``put_blocks`` returns; then one transaction points the entries at them and marks
  them ``owned``. That is spec §6's copy-on-write for every write, not only the first
  to a shared entry: the store has only immutable, content-addressed blocks (in both
  engines), so a torn write cannot exist, a write is durable exactly when the call
  returns, and a snapshot needs no hashing pass (an owned block is content-addressed
  already). The price is a 4 MiB read, hash and write for a small write; the block
  server of a later slice (``nefos volumed``) coalesces writes between flushes.
* **A snapshot** freezes the map as a Pithos file in the owner's ``snapshots``
  container (a hashmap PUT: the storage service charges ``pithos.diskspace``) and
  registers it as an image, so it lists, clones and boots as one. The volume's epoch
  moves on: its owned entries are shared with the snapshot from then on.
* **Delete** drops the map; blocks nobody references any more are the block
  collector's (``nefos storage gc``), which sees volume maps through :meth:`Volumes.pinned`.

A volume holds ``cyclades.disk`` (its size, in bytes) in its project, charged and
released in the transaction that creates, extends or deletes it (``Quotas.take``).
Only a volume's owner sees it: anyone else gets NotFound.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Uuid, delete, false, func, insert, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from nefos.blocks import EMPTY_HASH
from nefos.core import errors
from nefos.core.config import Settings
from nefos.core.db import Database, utcnow
from nefos.images.service import IMAGES_CONTAINER, VISIBILITIES, Image, Images
from nefos.quotas.service import Quotas, charge
from nefos.storage.maintenance import Problem
from nefos.storage.service import Namespace, check_object_name
from nefos.storage.stores import BlockMissing, BlockStore, is_extent
from nefos.volume import attachments, details, fsck, maps, states
from nefos.volume.details import Details, VolumeView
from nefos.volume.devices import seal_extents
from nefos.volume.models import EXTENT_ENTRY, Snapshot, Volume, VolumeBlock, VolumeMetadata

CLIENTKEY = "cyclades"  # Synnefo charges volumes as Cyclades resources
DISK = "cyclades.disk"
SNAPSHOTS = "snapshots"  # the container a user's snapshots are files in
MAX_SIZE = 1 << 44  # 16 TiB, Archipelago's largest map v2 volume is far beyond a VM's
MAX_IO = 64 << 20  # one read or write (NBD asks for 32 MiB at most)
MAX_NAME = 255
INSERT_BATCH = 2000  # map rows per INSERT
WRITE_TRIES = 5  # a write that meets another process's write to its blocks starts over
LOCKS = 64  # writes to one volume in this process take turns (striped by volume)
SEAL_TRIES = 5  # a volumed sealing extents meanwhile removes them: read the map again


class Volumes:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        store: BlockStore,
        storage: Namespace,
        images: Images,
        quotas: Quotas,
    ):
        self.db = db
        self.settings = settings
        self.store = store
        self.storage = storage
        self.images = images
        self.quotas = quotas
        self._locks = [asyncio.Lock() for _ in range(LOCKS)]

    def _lock(self, volume_id: uuid.UUID) -> asyncio.Lock:
        return self._locks[volume_id.int % LOCKS]

    # -- reading --------------------------------------------------------------------------

    async def get(self, user: str, volume_id: uuid.UUID | str) -> Volume:
        async with self.db.session() as s:
            return await self.owned(s, user, volume_id)

    async def owner_of(self, volume_id: uuid.UUID | str) -> str | None:
        """Who owns a volume (None: no such volume). For the nodes' data plane only
        (``nefos volumed``), which administers every volume and then acts as its owner;
        never for a request made on a user's behalf."""
        async with self.db.session() as s:
            return await s.scalar(select(Volume.user_id).where(Volume.id == _volume_key(volume_id)))

    async def listing(self, user: str) -> list[Volume]:
        async with self.db.session() as s:
            query = select(Volume).where(Volume.user_id == user).order_by(Volume.created)
            return list(await s.scalars(query))

    async def show(self, user: str, volume_id: uuid.UUID | str) -> VolumeView:
        async with self.db.session() as s:
            return await details.view(s, await self.owned(s, user, volume_id))

    async def views(
        self, user: str, name: str | None = None, status: str | None = None
    ) -> list[VolumeView]:
        """The caller's volumes with their metadata (two queries for any number), those
        of a name or a status if given (Cinder's filters)."""
        async with self.db.session() as s:
            query = select(Volume).where(Volume.user_id == user).order_by(Volume.created)
            if name is not None:
                query = query.where(Volume.name == name)
            if status is not None:
                query = query.where(Volume.status == status)
            found = list(await s.scalars(query))
            metadata = await details.metadata_of(s, [v.id for v in found])
            attached = await attachments.of_volumes(s, [v.id for v in found])
        return [VolumeView(v, metadata[v.id], attached[v.id]) for v in found]

    async def counts(self, user: str) -> tuple[int, int]:
        """How many volumes and snapshots the caller has (Cinder's limits count them)."""
        async with self.db.session() as s:
            volumes = await s.scalar(select(func.count()).where(Volume.user_id == user))
            taken = await s.scalar(select(func.count()).where(Snapshot.user_id == user))
        return volumes or 0, taken or 0

    async def project_counts(self, project: str) -> tuple[int, int]:
        """How many volumes a project holds, and snapshots of them."""
        async with self.db.session() as s:
            volumes = await s.scalar(select(func.count()).where(Volume.project == project))
            taken = await s.scalar(
                select(func.count())
                .select_from(Snapshot)
                .join(Volume, Volume.id == Snapshot.volume_id)
                .where(Volume.project == project)
            )
        return volumes or 0, taken or 0

    async def entries(self, user: str, volume_id: uuid.UUID | str) -> dict[int, tuple[str, bool]]:
        """The volume's map: each non-zero block's hash and whether the volume owns it
        (wrote it in its current epoch)."""
        async with self.db.session() as s:
            volume = await self.owned(s, user, volume_id)
            rows = await s.execute(
                select(VolumeBlock.position, VolumeBlock.hash, VolumeBlock.owned).where(
                    VolumeBlock.volume_id == volume.id
                )
            )
            return {position: (h, owned) for position, h, owned in rows}

    async def read(self, user: str, volume_id: uuid.UUID | str, offset: int, length: int) -> bytes:
        """Bytes ``[offset, offset + length)`` of the volume; zeros where it was never
        written. The range must lie inside the volume (InvalidInput)."""
        if length > MAX_IO:
            raise errors.InvalidInput(f"A read is at most {MAX_IO} bytes")
        async with self.db.session() as s:
            volume = await self.owned(s, user, volume_id)
            maps.check_range(offset, length, volume.size, "read")
            touched = maps.pieces(offset, length, volume.size)
            found = await self._hashes(s, volume.id, [p.position for p in touched])
        wanted = list(dict.fromkeys(found.values()))
        data = dict(zip(wanted, await self._blocks(wanted), strict=True))
        out = bytearray()
        for piece in touched:
            block = data.get(found.get(piece.position, EMPTY_HASH), b"")
            out += block[piece.start : piece.end].ljust(piece.end - piece.start, b"\0")
        return bytes(out)

    async def flush(self, user: str, volume_id: uuid.UUID | str) -> None:
        """Every write is durable when it returns (see the module docstring), so a flush
        has nothing to wait for; it still answers only for a volume the caller owns."""
        await self.get(user, volume_id)

    async def pinned(self) -> tuple[set[str], set[str]]:
        """The blocks volume maps reference, for the block collector and fsck
        (``nefos.storage.maintenance``): a block only a volume uses is never garbage."""
        async with self.db.session() as s:
            found = set(await s.scalars(select(VolumeBlock.hash).where(~EXTENT_ENTRY).distinct()))
        return set(), found

    async def check_extents(self) -> list[Problem]:
        """fsck of the extents volume maps name (``nefos storage fsck``)."""
        return await fsck.check_extents(self.db, self.store)

    # -- creating -------------------------------------------------------------------------

    async def create(
        self,
        user: str,
        size: int,
        name: str = "",
        project: str | None = None,
        extra: Details | None = None,
        new_id: uuid.UUID | None = None,
    ) -> Volume:
        """An empty volume: zeros, and no blocks until written. ``new_id``: the id
        to give it (a node's ExtStorage provider derives one from Ganeti's disk name);
        one in use is a Conflict."""
        _check_size(size)
        extra = details.check_details(extra or Details())
        async with self.db.transaction() as s:
            volume = await self._new(s, user, project, size, name, "", "", extra, new_id)
        return volume

    async def create_from_image(
        self,
        user: str,
        image_id: uuid.UUID | str,
        size: int | None = None,
        name: str = "",
        project: str | None = None,
        extra: Details | None = None,
        kind: str = "image",
        new_id: uuid.UUID | None = None,
    ) -> Volume:
        """A volume whose map is the image file's hashmap (an image, or a snapshot, which
        is an image too): nothing is copied. ``size`` defaults to the image's and is
        never smaller (InvalidInput)."""
        extra = details.check_details(extra or Details())
        image, record = await self.images.data(user, image_id)
        if record is None:
            raise errors.Conflict(f"The image {image.id} has no data yet")
        size = record.size if size is None else size
        if size < record.size:
            raise errors.InvalidInput(
                f"A volume of {size} bytes is smaller than its image ({record.size} bytes)"
            )
        _check_size(size)
        entries = maps.entries_of(await self.storage.hashmap(record))
        # The image's file may lose this version while we commit: touched blocks are
        # young to the collector for its grace period, as for a hashmap PUT.
        if await self.store.missing(list(entries.values()), touch=True):
            raise errors.Unavailable(f"Blocks of the image {image.id} are missing")
        async with self.db.transaction() as s:
            volume = await self._new(
                s, user, project, size, name, kind, str(image.id), extra, new_id
            )
            await _insert_entries(s, volume.id, entries)
        return volume

    async def create_from_snapshot(
        self,
        user: str,
        snapshot_id: uuid.UUID | str,
        size: int | None = None,
        name: str = "",
        project: str | None = None,
        extra: Details | None = None,
    ) -> Volume:
        """A volume over a snapshot's blocks. Only the snapshot's owner may (NotFound
        for anyone else, even if its image was made public: a public snapshot is used
        as an image, by ``imageRef``)."""
        key = _snapshot_key(snapshot_id)
        async with self.db.session() as s:
            found = await s.scalar(
                select(Snapshot.id).where(Snapshot.id == key, Snapshot.user_id == user)
            )
        if found is None:
            raise errors.NotFound(f"Snapshot {snapshot_id} could not be found")
        return await self.create_from_image(user, key, size, name, project, extra, "snapshot")

    async def clone(
        self,
        user: str,
        volume_id: uuid.UUID | str,
        size: int | None = None,
        name: str = "",
        project: str | None = None,
        extra: Details | None = None,
        new_id: uuid.UUID | None = None,
    ) -> Volume:
        """A new volume over the same blocks (rows copied, no block); at least as large
        as its source. The source's owned entries become shared, as at a snapshot: the
        clone references them now."""
        extra = details.check_details(extra or Details())
        key = _volume_key(volume_id)
        for _ in range(SEAL_TRIES):
            _, sealed, extents = await self._sealed_map(user, key)
            async with self.db.transaction() as s:
                source = await self.owned(s, user, key, lock=True)
                size = source.size if size is None else size
                if size < source.size:
                    raise errors.InvalidInput(
                        f"A volume of {size} bytes is smaller than its source ({source.size} bytes)"
                    )
                _check_size(size)
                # The source's extents must be those just sealed: one written since (a
                # volumed writing the source meanwhile) was not, and the clone starts over.
                now = dict(
                    (await s.execute(
                        select(VolumeBlock.position, VolumeBlock.hash).where(
                            VolumeBlock.volume_id == source.id, EXTENT_ENTRY
                        )
                    )).all()
                )  # fmt: skip
                if now != extents:
                    continue
                volume = await self._new(
                    s, user, project, size, name, "volume", str(source.id), extra, new_id
                )
                volume.bootable = source.bootable
                copied = select(
                    literal(volume.id, Uuid()), VolumeBlock.position, VolumeBlock.hash, false()
                ).where(VolumeBlock.volume_id == source.id, ~EXTENT_ENTRY)
                await s.execute(
                    insert(VolumeBlock).from_select(
                        ["volume_id", "position", "hash", "owned"], copied
                    )
                )
                blocks = {p: sealed[p] for p in extents if sealed[p] != EMPTY_HASH}
                await _insert_entries(s, volume.id, blocks)
                await _next_epoch(s, source, owned=None)
                return volume
        raise errors.Conflict(f"The blocks of volume {key} kept changing; retry")

    async def _new(
        self,
        s: AsyncSession,
        user: str,
        project: str | None,
        size: int,
        name: str,
        source_kind: str,
        source_id: str,
        extra: Details,
        new_id: uuid.UUID | None = None,
    ) -> Volume:
        _check_name(name)
        project = project or user
        if new_id is not None and await s.get(Volume, new_id) is not None:
            raise errors.Conflict(f"Volume {new_id} exists already")
        volume = Volume(
            id=new_id or uuid.uuid4(),
            user_id=user,
            project=project,
            name=name,
            size=size,
            epoch=0,
            source_kind=source_kind,
            source_id=source_id,
            description=extra.description,
            status=states.AVAILABLE,
            volume_type=extra.volume_type,
            delete_on_termination=extra.delete_on_termination,
            bootable=source_kind in ("image", "snapshot"),
        )
        s.add(volume)
        await s.flush()
        await details.set_metadata(s, volume, extra.metadata, replace=True)
        await self.charge_disk(s, user, project, size, f"volume create {volume.id}")
        return volume

    async def charge_disk(
        self, s: AsyncSession, user: str, project: str, quantity: int, what: str
    ) -> None:
        """Take (or give back, below zero) ``cyclades.disk`` in the caller's transaction:
        the volume and its charge commit together. A user who is not a member of the
        project has no holding in it, and is refused."""
        try:
            await self.quotas.take(
                await s.connection(), CLIENTKEY, charge(user, project, DISK, quantity), what
            )
        except errors.NotFound:
            raise errors.PermissionDenied(f"You may not use project {project}") from None

    # -- changing -------------------------------------------------------------------------

    async def write(
        self, user: str, volume_id: uuid.UUID | str, offset: int, data: bytes | bytearray
    ) -> None:
        """Write ``data`` at ``offset``; durable when this returns. The range must lie
        inside the volume (InvalidInput)."""
        if len(data) > MAX_IO:
            raise errors.InvalidInput(f"A write is at most {MAX_IO} bytes")
        key = _volume_key(volume_id)
        async with self._lock(key):
            for _ in range(WRITE_TRIES):
                if await self._write_once(user, key, offset, memoryview(data)):
                    return
        raise errors.Conflict("The volume's blocks kept changing under this write; retry")

    async def _write_once(
        self, user: str, volume_id: uuid.UUID, offset: int, data: memoryview
    ) -> bool:
        """One attempt: False if another writer changed the blocks meanwhile."""
        async with self.db.session() as s:
            volume = await self.owned(s, user, volume_id)
            maps.check_range(offset, len(data), volume.size, "write")
            touched = maps.pieces(offset, len(data), volume.size)
            before = await self._hashes(s, volume.id, [p.position for p in touched])
        partial = [before[p.position] for p in touched if not p.whole and p.position in before]
        old = dict(zip(partial, await self._blocks(partial), strict=True))
        new_blocks = []
        done = 0
        for piece in touched:
            size = piece.end - piece.start
            if piece.whole:
                new_blocks.append(data[done : done + size])
            else:
                block = bytearray(old.get(before.get(piece.position, EMPTY_HASH), b""))
                block.extend(bytes(piece.length - len(block)))
                block[piece.start : piece.end] = data[done : done + size]
                new_blocks.append(block)
            done += size
        hashes = await self.store.put_blocks(new_blocks)  # durable from here
        positions = [p.position for p in touched]
        async with self.db.transaction() as s:
            volume = await self.owned(s, user, volume_id, lock=True)
            if await self._hashes(s, volume.id, positions) != before:
                return False
            await s.execute(
                delete(VolumeBlock).where(
                    VolumeBlock.volume_id == volume.id, VolumeBlock.position.in_(positions)
                )
            )
            written = {p: h for p, h in zip(positions, hashes, strict=True) if h != EMPTY_HASH}
            await _insert_entries(s, volume.id, written, owned=True)
            volume.updated = utcnow()
        replaced = [name for name in before.values() if is_extent(name)]
        if replaced:  # the volume's blocks now: its extents there are nobody's
            await self.store.delete_extents(replaced)
        return True

    async def extend(self, user: str, volume_id: uuid.UUID | str, size: int) -> Volume:
        """Grow the volume; the new bytes read as zeros (nothing is stored for them)."""
        async with self.db.transaction() as s:
            volume = await self.owned(s, user, volume_id, lock=True)
            states.require(volume, "extend")
            if isinstance(size, bool) or not isinstance(size, int) or size <= volume.size:
                raise errors.InvalidInput(
                    f"A volume grows only: {size!r} is not more than its {volume.size} bytes"
                )
            _check_size(size)
            await self.charge_disk(
                s, user, volume.project, size - volume.size, f"volume extend {volume.id}"
            )
            volume.size = size
            volume.updated = utcnow()
        return volume

    async def delete(self, user: str, volume_id: uuid.UUID | str) -> None:
        """Drop the volume and its map, and release its ``cyclades.disk``. Its blocks go
        to the collector once nothing else references them (snapshots, clones, files and
        images keep theirs)."""
        async with self.db.transaction() as s:
            volume = await self.owned(s, user, volume_id, lock=True)
            states.require(volume, "delete")
            await s.execute(delete(VolumeBlock).where(VolumeBlock.volume_id == volume.id))
            await s.execute(delete(VolumeMetadata).where(VolumeMetadata.volume_id == volume.id))
            await s.execute(delete(Volume).where(Volume.id == volume.id))
            what = f"volume delete {volume.id}"
            await self.charge_disk(s, user, volume.project, -volume.size, what)
        # Its extents were only ever its own (a crash here leaves them to fsck's report).
        await self.store.delete_extents(await self.store.extent_names(volume.id.hex))

    async def update(
        self,
        user: str,
        volume_id: uuid.UUID | str,
        name: str | None = None,
        description: str | None = None,
        metadata: dict[str, str] | None = None,
        delete_on_termination: bool | None = None,
        bootable: bool | None = None,
        readonly: bool | None = None,
    ) -> VolumeView:
        """Change what is given (None: leave it); ``metadata`` replaces the whole set.
        The read-only flag changes only while the volume is available (Cinder's rule:
        an attachment keeps the mode it was made with)."""
        if name is not None:
            _check_name(name)
        if description is not None:
            details.check_description(description)
        for flag, value in (
            ("delete_on_termination", delete_on_termination),
            ("bootable", bootable),
            ("readonly", readonly),
        ):
            if value is not None and not isinstance(value, bool):
                raise errors.InvalidInput(f"{flag} is true or false")
        async with self.db.transaction() as s:
            volume = await self.owned(s, user, volume_id, lock=True)
            if readonly is not None:
                states.require(volume, "change the read-only flag of")
                volume.readonly = readonly
            if name is not None:
                volume.name = name
            if description is not None:
                volume.description = description
            if delete_on_termination is not None:
                volume.delete_on_termination = delete_on_termination
            if bootable is not None:
                volume.bootable = bootable
            if metadata is not None:
                await details.set_metadata(s, volume, metadata, replace=True)
            volume.updated = utcnow()
            return await details.view(s, volume)

    async def metadata(self, user: str, volume_id: uuid.UUID | str) -> dict[str, str]:
        return (await self.show(user, volume_id)).metadata

    async def set_metadata(
        self, user: str, volume_id: uuid.UUID | str, items: dict[str, str], replace: bool
    ) -> dict[str, str]:
        """Merge (or with ``replace``, replace) the volume's metadata."""
        async with self.db.transaction() as s:
            volume = await self.owned(s, user, volume_id, lock=True)
            volume.updated = utcnow()
            return await details.set_metadata(s, volume, items, replace)

    async def delete_metadata_item(self, user: str, volume_id: uuid.UUID | str, key: str) -> None:
        async with self.db.transaction() as s:
            volume = await self.owned(s, user, volume_id, lock=True)
            done = await s.execute(
                delete(VolumeMetadata).where(
                    VolumeMetadata.volume_id == volume.id, VolumeMetadata.key == key
                )
            )
            if not done.rowcount:
                raise errors.NotFound(f"Metadata item {key} of volume {volume.id} was not found")
            volume.updated = utcnow()

    async def reassign(self, user: str, volume_id: uuid.UUID | str, project: str) -> VolumeView:
        """Move the volume, and its ``cyclades.disk``, to another project the owner is a
        member of (Cyclades's reassign): released in the old project and charged in the
        new one in one transaction, so over quota (413) changes nothing."""
        if not isinstance(project, str) or not project:
            raise errors.InvalidInput("reassign needs the project to move the volume to")
        async with self.db.transaction() as s:
            volume = await self.owned(s, user, volume_id, lock=True)
            if project != volume.project:
                what = f"volume reassign {volume.id}"
                await self.charge_disk(s, user, volume.project, -volume.size, what)
                await self.charge_disk(s, user, project, volume.size, what)
                volume.project = project
                volume.updated = utcnow()
            return await details.view(s, volume)

    # -- snapshots ------------------------------------------------------------------------

    async def snapshot(
        self,
        user: str,
        volume_id: uuid.UUID | str,
        name: str,
        description: str = "",
        metadata: dict[str, str] | None = None,
        force: bool = False,
    ) -> tuple[Snapshot, Image]:
        """Freeze the map as the file ``snapshots/<name>`` of the owner and register it
        as an image (spec §6: ``exclude_all_tasks=yes``, so a server booted from it is
        not customised again). A hashmap PUT: no block is read or written, so it takes
        the same time for any size; the storage service charges ``pithos.diskspace``
        (OverQuota past it). A file of that name already there is a Conflict: the
        snapshot's id is its file's UUID, which a new version would share."""
        details.check_description(description)
        metadata = details.check_metadata(metadata or {})
        image, snapshot = await self._freeze(
            user, volume_id, SNAPSHOTS, name, "snapshot", force,
            register=dict(description=description, properties=metadata, disk_format="diskdump"),
        )  # fmt: skip
        assert snapshot is not None
        return snapshot, image

    async def upload_to_image(
        self,
        user: str,
        volume_id: uuid.UUID | str,
        name: str,
        disk_format: str = "raw",
        container_format: str = "bare",
        visibility: str = "private",
        protected: bool = False,
        force: bool = False,
    ) -> Image:
        """Cinder's ``os-volume_upload_image``: frozen as ``images/<name>`` and
        registered, as a snapshot is (no data copied), with no snapshot record."""
        if visibility not in VISIBILITIES:
            raise errors.InvalidInput(f"visibility is one of {', '.join(VISIBILITIES)}")
        image, _ = await self._freeze(
            user, volume_id, IMAGES_CONTAINER, name, "upload to an image", force,
            register=dict(disk_format=disk_format, container_format=container_format),
            snapshot=False,
        )  # fmt: skip
        if visibility != "private" or protected:
            fields = {"visibility": visibility, "protected": protected}
            image = await self.images.update(user, image.id, fields=fields)
        return image

    async def _freeze(
        self,
        user: str,
        volume_id: uuid.UUID | str,
        container: str,
        name: str,
        action: str,
        force: bool,
        register: dict[str, Any],
        snapshot: bool = True,
    ) -> tuple[Image, Snapshot | None]:
        """The volume's map as the owner's file ``container/name``, registered as an
        image (``register``: the image's formats and fields), and, for a snapshot, the
        snapshot's record. The volume's epoch moves on: the file shares its blocks."""
        check_object_name(name)
        key = _volume_key(volume_id)
        async with self._lock(key):
            async with self.db.session() as s:
                volume = await self.owned(s, user, key)
                states.require(volume, f"{action}_forced" if force else action)
            volume, frozen, _ = await self._sealed_map(user, key)
            try:
                await self.storage.get_object(user, container, name)
            except errors.NotFound:
                pass
            else:
                raise errors.Conflict(f"{container}/{name} exists already")
            hashes = maps.hashmap_of(frozen, volume.size)
            await self.storage.create_container(user, container)
            # The volume's owner holds these bytes (they wrote them or could read their
            # source), so a hashmap PUT of them is theirs to make (nefos.storage.known).
            held = [h for h in dict.fromkeys(frozen.values()) if h != EMPTY_HASH]
            await self.storage.had_blocks(user, held)
            await self.storage.put_hashmap(user, container, name, volume.size, hashes, muser=user)
            image = await self._register(user, volume, container, name, **register)
            made = None
            async with self.db.transaction() as s:
                volume = await self.owned(s, user, key, lock=True)
                if snapshot:
                    made = Snapshot(
                        id=image.id,
                        volume_id=volume.id,
                        user_id=user,
                        name=name,
                        size=volume.size,
                        epoch=volume.epoch,
                    )
                    s.add(made)
                await _next_epoch(s, volume, owned=frozen)
        return image, made

    async def _sealed_map(
        self, user: str, key: uuid.UUID
    ) -> tuple[Volume, dict[int, str], dict[int, str]]:
        """The volume's map with every entry a block's hash, and the extents it sealed
        to get there (hashed and stored as blocks; the extents stay the volume's). A
        volumed sealing them itself meanwhile removes them: the map is read again."""
        for _ in range(SEAL_TRIES):
            async with self.db.session() as s:
                volume = await self.owned(s, user, key)
                rows = await s.execute(
                    select(VolumeBlock.position, VolumeBlock.hash).where(
                        VolumeBlock.volume_id == volume.id
                    )
                )
                entries = dict(rows.all())
            extents = {p: name for p, name in entries.items() if is_extent(name)}
            try:
                hashes = await seal_extents(self.store, list(extents.values()))
            except BlockMissing:
                continue
            sealed = {**entries, **dict(zip(extents, hashes, strict=True))}
            return volume, sealed, extents  # (an extent of zeros seals as EMPTY_HASH)
        raise errors.Conflict(f"The blocks of volume {key} kept changing; retry")

    async def _register(
        self,
        user: str,
        volume: Volume,
        container: str,
        name: str,
        disk_format: str,
        container_format: str = "bare",
        description: str = "",
        properties: dict[str, str] | None = None,
    ) -> Image:
        try:
            return await self.images.register(
                user,
                f"pithos://{user}/{container}/{name}",
                name[:MAX_NAME],
                disk_format=disk_format,
                container_format=container_format,
                properties={
                    **(properties or {}),
                    "exclude_all_tasks": "yes",
                    "volume_id": str(volume.id),
                },
                description=description,
            )
        except BaseException:
            await self.storage.delete_object(user, container, name, muser=user)
            raise

    async def owned(
        self, s: AsyncSession, user: str, volume_id: uuid.UUID | str, lock: bool = False
    ) -> Volume:
        """The caller's volume (``lock``: for update); another user's is NotFound."""
        key = _volume_key(volume_id)
        query = select(Volume).where(Volume.id == key, Volume.user_id == user)
        if lock:
            query = query.with_for_update().execution_options(populate_existing=True)
        found = await s.scalar(query)
        if found is None:
            raise errors.NotFound(f"Volume {volume_id} could not be found")
        return found

    @staticmethod
    async def _hashes(
        s: AsyncSession, volume_id: uuid.UUID, positions: list[int]
    ) -> dict[int, str]:
        rows = await s.execute(
            select(VolumeBlock.position, VolumeBlock.hash).where(
                VolumeBlock.volume_id == volume_id, VolumeBlock.position.in_(positions)
            )
        )
        return dict(rows.all())

    async def _blocks(self, names: Sequence[str]) -> list[bytes]:
        """The bytes of blocks or extents (an extent may end early: zeros follow)."""
        if not names:
            return []
        try:
            hashes = [n for n in names if not is_extent(n)]
            found = dict(zip(hashes, await self.store.get_blocks(hashes), strict=True))
            for name in names:
                if is_extent(name):
                    found[name] = await self.store.read_extent(name)
            return [found[n] for n in names]
        except BlockMissing as exc:
            raise errors.Unavailable("Blocks of the volume are missing from the store") from exc


async def _insert_entries(
    s: AsyncSession, volume_id: uuid.UUID, entries: dict[int, str], owned: bool = False
) -> None:
    rows = [
        {"volume_id": volume_id, "position": position, "hash": h, "owned": owned}
        for position, h in entries.items()
    ]
    for start in range(0, len(rows), INSERT_BATCH):
        await s.execute(insert(VolumeBlock), rows[start : start + INSERT_BATCH])


async def _next_epoch(s: AsyncSession, volume: Volume, owned: dict[int, str] | None) -> None:
    """Start the volume's next epoch: its owned entries are shared from now on (with a
    snapshot or clone). ``owned``: only the entries still naming these blocks (a write
    after the snapshot's read stays the volume's own); None: all of them."""
    volume.epoch += 1
    query = update(VolumeBlock).where(
        VolumeBlock.volume_id == volume.id, VolumeBlock.owned, ~EXTENT_ENTRY
    )
    if owned is None:
        await s.execute(query.values(owned=False))
        return
    rows = await s.execute(
        select(VolumeBlock.position, VolumeBlock.hash).where(
            VolumeBlock.volume_id == volume.id, VolumeBlock.owned, ~EXTENT_ENTRY
        )
    )
    frozen = [position for position, h in rows if owned.get(position) == h]
    for start in range(0, len(frozen), INSERT_BATCH):
        chunk = frozen[start : start + INSERT_BATCH]
        await s.execute(query.where(VolumeBlock.position.in_(chunk)).values(owned=False))


def _volume_key(value: uuid.UUID | str) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise errors.NotFound(f"Volume {value} could not be found") from None


def _snapshot_key(value: uuid.UUID | str) -> uuid.UUID:
    try:
        return _volume_key(value)
    except errors.NotFound:
        raise errors.NotFound(f"Snapshot {value} could not be found") from None


def _check_size(size: int) -> None:
    if isinstance(size, bool) or not isinstance(size, int) or not 0 < size <= MAX_SIZE:
        raise errors.InvalidInput(f"A volume's size is a whole number of bytes, 1 to {MAX_SIZE}")


def _check_name(name: str) -> None:
    if not isinstance(name, str) or len(name) > MAX_NAME:
        raise errors.InvalidInput(f"A volume's name is text of at most {MAX_NAME} characters")
