"""A volume opened as a block device: what ``nefos volumed`` serves over NBD.

The service's ``Volumes.write`` stores a new 4 MiB block for every write, which is
right for an API call and ruinous for a disk that gets 4 KiB writes. A ``Device`` is a
write-back cache in front of the same model:

* **At open** the volume's map is loaded once (``{position: hash}``); the device is the
  volume's only writer from then on (``nefos.volume.volumed`` refuses a second one), so
  reads need no database: a map lookup, then the block from a small clean cache or the
  store.
* **A write** patches a whole 4 MiB block held in memory (``dirty``); the first write
  to a block reads it (unless the write covers it whole, or the map has no entry, which
  reads as zeros). Nothing reaches the store or the database yet.
* **Write-back** (a flush, a FUA write, or the dirty set past its bound) stores each
  dirty block as a content-addressed block (``BlockStore.put_blocks``: temporary file,
  fsync, rename), then points the map's entries at them in one transaction, marked
  owned. That is the service's copy-on-write exactly: a block is never changed in
  place, the first write-back over an image's block leaves the image's block alone, a
  block written back as all zeros drops its entry, and equal blocks dedupe. A crash
  before the commit loses the unflushed writes and leaves the previous map, whole; the
  blocks stored for it are garbage that the collector takes after its grace period.
* **A flush is acknowledged after the commit returns**: every written byte is in an
  fsynced block, and the map naming it is committed.

Why content-addressed blocks and not volume-owned blocks rewritten in place: the store
has only immutable blocks in both engines, so nothing in it can be torn; snapshots need
no hashing pass; and write-back happens once per 4 MiB per flush, so a burst of small
writes between flushes costs one block write, not one per write. The price is paid by a
workload that flushes after every small write (a 4 MiB hash and write per flush).
"""

from __future__ import annotations

import logging
import uuid
from collections import OrderedDict
from collections.abc import Sequence

from sqlalchemy import delete, insert, select

from nefos.blocks import BLOCK_SIZE, EMPTY_HASH, block_count
from nefos.core.db import Database, utcnow
from nefos.storage.stores import BlockMissing, BlockStore
from nefos.volume import maps
from nefos.volume.models import Volume, VolumeBlock

DIRTY_BLOCKS = 64  # 256 MiB of unflushed writes per device before write-back starts
CLEAN_BLOCKS = 16  # 64 MiB of recently read blocks per device
READ_AHEAD = 4  # blocks fetched together when a read misses the cache
INSERT_BATCH = 2000
log = logging.getLogger("nefos.volumed")
ZEROS = bytes(BLOCK_SIZE)


class DeviceError(Exception):
    """The device cannot serve a request (EIO to the client)."""


class VolumeGone(DeviceError):
    """The volume was deleted while it was open."""


class Device:
    def __init__(
        self,
        db: Database,
        store: BlockStore,
        volume_id: uuid.UUID,
        size: int,
        entries: dict[int, str],
        dirty_blocks: int = DIRTY_BLOCKS,
    ):
        self.db = db
        self.store = store
        self.volume_id = volume_id
        self.size = size
        self.entries = entries
        self.dirty_blocks = max(1, dirty_blocks)
        self.dirty: OrderedDict[int, bytearray] = OrderedDict()
        self.clean: OrderedDict[int, bytes | bytearray] = OrderedDict()
        self.blocks_written = 0  # blocks stored by write-back (for logs and tests)

    @classmethod
    async def open(
        cls, db: Database, store: BlockStore, volume_id: uuid.UUID, dirty_blocks: int = DIRTY_BLOCKS
    ) -> Device:
        async with db.session() as s:
            volume = await s.get(Volume, volume_id)
            if volume is None:
                raise VolumeGone(f"volume {volume_id} does not exist")
            rows = await s.execute(
                select(VolumeBlock.position, VolumeBlock.hash).where(
                    VolumeBlock.volume_id == volume_id
                )
            )
            entries = dict(rows.all())
        return cls(db, store, volume_id, volume.size, entries, dirty_blocks)

    # -- reading --------------------------------------------------------------------------

    async def read(self, offset: int, length: int) -> bytes:
        touched = maps.pieces(offset, length, self.size)
        out = bytearray()
        for piece in touched:
            block = await self._block(piece.position, piece.length)
            out += block[piece.start : piece.end]
        return bytes(out)

    async def _block(self, position: int, length: int) -> bytes | bytearray:
        """Block ``position``'s current bytes, ``length`` long (the volume's last block
        is short)."""
        if position in self.dirty:
            return self.dirty[position]
        if position in self.clean:
            self.clean.move_to_end(position)
            return self.clean[position]
        h = self.entries.get(position)
        if h is None:
            return ZEROS[:length]
        await self._fetch(position)
        return self.clean[position]

    async def _fetch(self, position: int) -> None:
        """Read block ``position`` and the next few mapped ones that are not cached yet
        (a sequential reader asks for them next) in one store call."""
        last = block_count(self.size) - 1
        wanted = [position]
        for following in range(position + 1, min(position + READ_AHEAD, last + 1)):
            if following in self.dirty or following in self.clean:
                break
            if following in self.entries:
                wanted.append(following)
        hashes = [self.entries[p] for p in wanted]
        try:
            found = await self.store.get_blocks(hashes)
        except BlockMissing as exc:
            raise DeviceError(f"blocks of volume {self.volume_id} are missing: {exc}") from exc
        for p, data in zip(wanted, found, strict=True):
            length = min(BLOCK_SIZE, self.size - p * BLOCK_SIZE)
            self._remember(p, data.ljust(length, b"\0") if len(data) < length else data)

    def _remember(self, position: int, data: bytes | bytearray) -> None:
        self.clean[position] = data
        self.clean.move_to_end(position)
        while len(self.clean) > CLEAN_BLOCKS:
            self.clean.popitem(last=False)

    # -- writing --------------------------------------------------------------------------

    async def write(self, offset: int, data: bytes | memoryview) -> None:
        view = memoryview(data)
        done = 0
        for piece in maps.pieces(offset, len(view), self.size):
            size = piece.end - piece.start
            chunk = view[done : done + size]
            done += size
            block = self.dirty.get(piece.position)
            if block is None:
                if piece.whole:
                    block = bytearray(chunk)
                else:
                    block = bytearray(await self._block(piece.position, piece.length))
                    block[piece.start : piece.end] = chunk
                self.clean.pop(piece.position, None)
                self.dirty[piece.position] = block
            else:
                block[piece.start : piece.end] = chunk
                self.dirty.move_to_end(piece.position)
        if len(self.dirty) > self.dirty_blocks:
            # The oldest half: a sequential writer has finished them.
            await self._write_back(list(self.dirty)[: max(1, self.dirty_blocks // 2)])

    async def zero(self, offset: int, length: int) -> None:
        """TRIM and WRITE_ZEROES: whole blocks become zeros without a 4 MiB buffer (the
        entry is dropped at write-back); a partial block is a write of zeros."""
        for piece in maps.pieces(offset, length, self.size):
            if piece.whole and piece.position not in self.dirty:
                if piece.position in self.entries:
                    self.clean.pop(piece.position, None)
                    await self._commit({piece.position: EMPTY_HASH})
                continue
            await self.write(
                piece.position * BLOCK_SIZE + piece.start, ZEROS[: piece.end - piece.start]
            )

    async def flush(self) -> None:
        """Make every write so far durable: blocks stored, then the map committed."""
        if self.dirty:
            await self._write_back(list(self.dirty))

    async def _write_back(self, positions: Sequence[int]) -> None:
        blocks = [self.dirty[p] for p in positions]
        log.debug("%s: writing back blocks %s", self.volume_id, list(positions))
        hashes = await self.store.put_blocks(blocks)  # fsynced when this returns
        await self._commit(dict(zip(positions, hashes, strict=True)))
        self.blocks_written += sum(1 for h in hashes if h != EMPTY_HASH)
        for position, block in zip(positions, blocks, strict=True):
            # A write that arrived meanwhile would have replaced the buffer object.
            if self.dirty.get(position) is block:
                del self.dirty[position]
                self._remember(position, block)  # no longer changed in place: no copy

    async def _commit(self, written: dict[int, str]) -> None:
        """Point ``written`` positions at their blocks (EMPTY_HASH: no entry) in one
        transaction. The device is the volume's only writer, so nothing is compared:
        these are whole blocks, and the last write to a block device wins."""
        positions = list(written)
        async with self.db.transaction() as s:
            volume = await s.scalar(
                select(Volume)
                .where(Volume.id == self.volume_id)
                .with_for_update()
                .execution_options(populate_existing=True)
            )
            if volume is None:
                raise VolumeGone(f"volume {self.volume_id} was deleted")
            for start in range(0, len(positions), INSERT_BATCH):
                chunk = positions[start : start + INSERT_BATCH]
                await s.execute(
                    delete(VolumeBlock).where(
                        VolumeBlock.volume_id == self.volume_id, VolumeBlock.position.in_(chunk)
                    )
                )
            rows = [
                {"volume_id": self.volume_id, "position": p, "hash": h, "owned": True}
                for p, h in written.items()
                if h != EMPTY_HASH
            ]
            for start in range(0, len(rows), INSERT_BATCH):
                await s.execute(insert(VolumeBlock), rows[start : start + INSERT_BATCH])
            volume.updated = utcnow()
        for p, h in written.items():
            if h == EMPTY_HASH:
                self.entries.pop(p, None)
            else:
                self.entries[p] = h
