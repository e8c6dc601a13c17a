"""A volume opened as a block device: what ``nefos volumed`` serves over NBD.

The service's ``Volumes.write`` stores a new 4 MiB block for every write, which is
right for an API call and ruinous for a disk that gets 4 KiB writes. A ``Device`` is a
write-back cache in front of the same model, safe for the concurrent requests of one
NBD connection (``nefos.volume.nbd`` serves them in parallel):

* **At open** the volume's map is loaded once (``{position: hash}``); the device is the
  volume's only writer from then on (``nefos.volume.volumed`` refuses a second one), so
  reads need no database: a map lookup, then the block from a clean cache or the store.
  Concurrent reads of one block share one fetch, and a miss starts fetches of the next
  few mapped blocks, each in its own thread, for the sequential reader's next requests;
  its first read of each of those moves the window on, so it meets no miss again.
* **A write** patches a 4 MiB block held in memory (``dirty``). The old block is not
  read at the write when the write covers whole 4 KiB pages: the pages written are
  recorded, and the rest is filled in from the old block only when the block is read or
  written back, and once every page is written the block is whole and the old one is
  never read. So a random 4 KiB write costs a memory copy; an unaligned partial write
  reads the old block first. Nothing reaches the store or the database yet. A write of
  whole pages of one block is received straight into the block (``receive``, then
  ``land``): no buffer and no copy of its own.
* **Write-back** (a flush, a FUA write, or the dirty set past its bound, then in the
  background while requests go on) writes each dirty block into the volume's own
  **extent** for that position (``BlockStore.write_extents``: written in place, made
  durable before it returns), several at once in worker threads. An extent the volume
  already has is written in place, only the pages written since (a random 4 KiB write
  costs 4 KiB); a position whose entry is a shared, content-addressed block (an image's,
  a snapshot's) is copied up into a new extent, whole (spec §6: the first write to a
  read-only entry), and a position with no entry gets an extent of just the pages
  written. The map's entries change only for new extents and for blocks written back as
  all zeros (dropped). A background write-back makes no transaction and no sync: what
  it changes takes effect in memory (``uncommitted``), and the next flush makes every
  extent durable with one sync, then commits every change since in one transaction; a
  flush that only wrote extents in place needs no transaction at all. Blocks being
  written back are frozen (``writing``): a write to one meanwhile starts a new dirty
  block over it. Write-backs take turns. A crash before the flush loses the unflushed
  writes, as a disk may; the extents written for them are removed at the next open, since
  no committed map names them.
* **A flush is acknowledged after the write-back returns**: every write completed before
  it is in a durable extent, and the map naming it is committed.
* **Sealing** turns extents back into content-addressed blocks (hashed, stored, the
  entry pointed at the block, the extent removed): in the background for extents not
  written for a while (``seal_idle``), so that a snapshot or a clone, which needs every
  block named by its hash, finds most of them hashed already. A block sealed and then
  written again is copied up into a new extent, as after a snapshot.

Why extents and not content-addressed blocks for every write-back: hashing each block
written back (SHA-256 costs 0.6 s per GiB on one core here) and writing it whole kept
sequential writes at half a raw file's speed and made a random 4 KiB write cost 4 MiB.
Extents cost what the bytes cost; the hash is paid once per block at a snapshot, a clone
or when the block has gone cold, and a block that is rewritten all day is never hashed.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Collection, Sequence

from sqlalchemy import delete, insert, select

from nefos.blocks import BLOCK_SIZE, EMPTY_HASH, block_count
from nefos.core.db import Database, utcnow
from nefos.storage.stores import BlockMissing, BlockStore, ExtentWrite, extent_name, is_extent
from nefos.volume import maps
from nefos.volume.models import Volume, VolumeBlock

DIRTY_BLOCKS = 64  # 256 MiB of unflushed writes per device before write-back starts
CLEAN_BLOCKS = 32  # 128 MiB of recently read blocks per device
EAGER_BLOCKS = 4  # blocks written whole that start a background write-back
SPARE_BLOCKS = 32  # written-back buffers kept for the next dirty blocks (128 MiB)
READ_AHEAD = 8  # mapped blocks fetched ahead of a sequential reader
PUT_STREAMS = 4  # store calls (threads) one write-back runs at once
SEAL_BATCH = 32  # extents sealed per turn (a flush waits for at most one batch)
SEAL_AFTER = 30.0  # seconds without writes before idle extents are sealed
PAGE = 4096  # the unit of a write that needs no read of the old block
INSERT_BATCH = 2000
log = logging.getLogger("nefos.volumed")
ZEROS = bytes(BLOCK_SIZE)


def whole_pages(piece: maps.Piece) -> bool:
    """Whether a write of ``piece`` covers whole 4 KiB pages (the block's last may be
    short): then the old block need not be read under it."""
    return piece.start % PAGE == 0 and (piece.end % PAGE == 0 or piece.end == piece.length)


class DeviceError(Exception):
    """The device cannot serve a request (EIO to the client)."""


class VolumeGone(DeviceError):
    """The volume was deleted while it was open."""


class Dirty:
    """A block written since the last write-back. Until ``filled``, only the 4 KiB
    pages set in ``pages`` (a bit mask) hold the volume's bytes; the others are zeros
    standing in for the old block, which is read when the whole block is needed."""

    __slots__ = ("buffer", "filled", "pages", "receiving", "whole")

    def __init__(self, buffer: bytearray, filled: bool):
        self.buffer = buffer
        self.filled = filled
        self.whole = filled  # every byte written (not filled in from the old block)
        self.pages = 0
        self.receiving = 0  # writes' payloads arriving in ``buffer``: not written back yet

    def mark(self, start: int, end: int, length: int) -> None:
        """Bytes ``[start, end)`` (whole pages, or up to the block's ``length``) now hold
        the volume's bytes. Every page written (a sequential writer's second half) fills
        the block: the old one is wholly replaced and never needs reading."""
        if self.filled:
            return
        first, last = start // PAGE, -(-end // PAGE)
        self.pages |= ((1 << (last - first)) - 1) << first
        if self.pages == (1 << -(-length // PAGE)) - 1:
            self.filled, self.whole, self.pages = True, True, 0

    def runs(self) -> list[tuple[int, int]]:
        """The byte ranges the written pages cover, merged."""
        found: list[tuple[int, int]] = []
        mask, page = self.pages, 0
        while mask:
            if mask & 1:
                run = page
                while mask & 1:
                    mask >>= 1
                    page += 1
                found.append((run * PAGE, page * PAGE))
            else:
                low = (mask & -mask).bit_length() - 1  # skip the unwritten pages at once
                mask >>= low
                page += low
        return found


class Reception:
    """A write's payload arriving straight into the dirty blocks it covers
    (``Device.receive``), in ``views``, one per block, in order. While it arrives a
    block is never frozen for a write-back (a write-back takes a copy and leaves it
    dirty); ``Device.land`` writes it, and ``release`` alone gives it up (the client went
    away mid-payload: those bytes were never acknowledged, so whatever part of them
    arrived may stay)."""

    __slots__ = ("parts", "released", "views")

    def __init__(self, parts: list[tuple[maps.Piece, Dirty]]):
        # Each block's buffer as it was: a block given a new one meanwhile (filled by a
        # read, grown) gets this piece copied in when it lands.
        self.parts = [(piece, dirty, dirty.buffer) for piece, dirty in parts]
        self.views = [
            memoryview(buffer)[piece.start : piece.end] for piece, _, buffer in self.parts
        ]
        self.released = False

    def release(self) -> None:
        if not self.released:
            self.released = True
            for _, dirty, _ in self.parts:
                dirty.receiving -= 1


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
        self.owner = volume_id.hex  # the extents' owner in the store
        self.size = size
        self.entries = entries  # position -> a block's hash, or this volume's extent
        self.stored = dict(entries)  # the map as committed: what a reopened device finds
        self.uncommitted: dict[int, str] = {}  # entries changed since (EMPTY_HASH: dropped)
        self.dirty_blocks = max(1, dirty_blocks)
        self.dirty: OrderedDict[int, Dirty] = OrderedDict()
        self.writing: dict[int, bytes | bytearray] = {}  # frozen while written back
        self.partial: set[int] = set()  # written back as pages only: read after it ends
        self.written = asyncio.Event()  # set when a write-back ends
        self.written.set()
        self.clean: OrderedDict[int, bytes | bytearray] = OrderedDict()
        self.fetched_ahead: set[int] = set()  # cached by read-ahead, not read yet
        # Buffers of blocks written back and left the cache, for new dirty blocks: a
        # fresh 4 MiB bytearray is zeroed (and faulted in) first, which measured half
        # of the event loop's time under a sequential writer. Their old bytes are never
        # seen: a dirty block's pages count only once written (``Dirty.runs``).
        self.spare: list[bytearray] = []
        # Fetches under way, by position: what they read (the entry, and the position's
        # generation, which each write-back of it moves on), and the fetch.
        self.fetching: dict[int, tuple[tuple[str, int], asyncio.Future[bytes | bytearray]]] = {}
        self.generation: dict[int, int] = {}
        self.write_back_turn = asyncio.Lock()
        self.background: asyncio.Task[None] | None = None
        self.failure: BaseException | None = None  # of a background write-back
        self.blocks_written = 0  # extents written by write-back (for logs and tests)
        self.blocks_sealed = 0
        self.extent_written: dict[int, float] = {}  # position -> when, for sealing
        self.unsynced: set[str] = set()  # extents written in place since the last sync
        self.last_write = time.monotonic()

    @classmethod
    async def open(
        cls, db: Database, store: BlockStore, volume_id: uuid.UUID, dirty_blocks: int = DIRTY_BLOCKS
    ) -> Device:
        """The volume's device; extents its map does not name (written for a commit a
        crash prevented, or dropped by one whose removal did not happen) are removed."""
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
        device = cls(db, store, volume_id, volume.size, entries, dirty_blocks)
        named = set(entries.values())
        stale = [name for name in await store.extent_names(device.owner) if name not in named]
        if stale:
            log.info("%s: removing %d extents no map names", volume_id, len(stale))
            await store.delete_extents(stale)
        now = time.monotonic()
        device.extent_written = {p: now for p, name in entries.items() if is_extent(name)}
        return device

    def _extent(self, position: int) -> str:
        return extent_name(self.owner, position)

    def resize(self, size: int) -> None:
        """Grow to ``size`` bytes: the old last block, if short, is held at its new
        length (zeros after the old end), wherever it is held."""
        last = block_count(self.size) - 1
        self.size = size
        if last < 0:
            return
        length = self._length(last)
        dirty = self.dirty.get(last)
        if dirty is not None and len(dirty.buffer) < length:
            # A new buffer, not extend: a payload may be arriving into the old one
            # (``receive``), and its write lands in this one when it is in.
            dirty.buffer = dirty.buffer + bytes(length - len(dirty.buffer))
        for held in (self.clean, self.writing):
            block = held.get(last)
            if block is not None and len(block) < length:
                held[last] = bytes(block).ljust(length, b"\0")

    def _length(self, position: int) -> int:
        return min(BLOCK_SIZE, self.size - position * BLOCK_SIZE)

    # -- reading --------------------------------------------------------------------------

    async def read(self, offset: int, length: int) -> bytes | bytearray:
        touched = maps.pieces(offset, length, self.size)
        if len(touched) == 1:
            piece = touched[0]
            block = await self._block(piece.position)
            if piece.whole and isinstance(block, bytes) and len(block) == piece.length:
                return block  # immutable: no copy
            return block[piece.start : piece.end]
        out = bytearray()
        for piece in touched:
            block = await self._block(piece.position)
            out += memoryview(block)[piece.start : piece.end]
        return out

    async def _block(self, position: int) -> bytes | bytearray:
        """Block ``position``'s current bytes (the volume's last block is short)."""
        dirty = self.dirty.get(position)
        if dirty is not None:
            if not dirty.filled:
                await self._fill(position, dirty)
            return dirty.buffer
        return await self._base(position, ahead=True)

    async def _base(self, position: int, ahead: bool = False) -> bytes | bytearray:
        """Block ``position`` as last written back: frozen for a write-back, cached, or
        in the store (zeros where the map has no entry)."""
        while position in self.partial:  # its extent is being written: read it after
            await self.written.wait()
        if position in self.writing:
            return self.writing[position]
        if position in self.clean:
            self.clean.move_to_end(position)
            if ahead and position in self.fetched_ahead:
                # A sequential reader reached a block fetched ahead for it: move the
                # window on now, so it never meets a miss (Linux's readahead marker).
                self._read_ahead(position)
            return self.clean[position]
        if position not in self.entries:
            return ZEROS[: self._length(position)]
        wanted = (self.entries[position], self.generation.get(position, 0))
        under_way = self.fetching.get(position)
        pending = (
            under_way[1] if under_way and under_way[0] == wanted else self._start_fetch(position)
        )
        if ahead:
            self._read_ahead(position)
        return await asyncio.shield(pending)

    def _start_fetch(self, position: int) -> asyncio.Future[bytes | bytearray]:
        wanted = (self.entries[position], self.generation.get(position, 0))
        task = asyncio.ensure_future(self._fetch(position, *wanted))
        self.fetching[position] = (wanted, task)
        task.add_done_callback(lambda done: self._fetched(position, done))
        return task

    def _fetched(self, position: int, task: asyncio.Future[bytes | bytearray]) -> None:
        under_way = self.fetching.get(position)
        if under_way is not None and under_way[1] is task:
            del self.fetching[position]
        if not task.cancelled() and task.exception() is not None:
            log.debug("%s: fetching block %d failed", self.volume_id, position)

    def _read_ahead(self, position: int) -> None:
        """Fetch the next mapped blocks not cached yet: a sequential reader asks for
        them next, and each comes in its own thread."""
        self.fetched_ahead.discard(position)
        last = min(position + READ_AHEAD, block_count(self.size) - 1)
        for following in range(position + 1, last + 1):
            if (
                following in self.entries
                and following not in self.dirty
                and following not in self.writing
                and following not in self.partial
                and following not in self.clean
                and following not in self.fetching
            ):
                self._start_fetch(following)
                self.fetched_ahead.add(following)

    async def _fetch(self, position: int, name: str, generation: int) -> bytes | bytearray:
        while True:
            try:
                if is_extent(name):
                    data: bytes | bytearray = await self.store.read_extent(name)
                else:
                    (data,) = await self.store.get_blocks([name])
                break
            except BlockMissing as exc:
                now = self.entries.get(position)
                if now is not None and now != name:  # sealed (or copied up) meanwhile
                    name = now
                    continue
                if now is None:
                    data = b""
                    break
                raise DeviceError(f"blocks of volume {self.volume_id} are missing: {exc}") from exc
        length = self._length(position)
        if len(data) < length:
            data = data.ljust(length, b"\0")
        elif len(data) > length:
            data = data[:length]
        if (
            self.entries.get(position) == name
            and self.generation.get(position, 0) == generation
            and position not in self.writing
            and position not in self.partial
        ):
            self._remember(position, data)
        return data

    def _remember(self, position: int, data: bytes | bytearray) -> None:
        self.clean[position] = data
        self.clean.move_to_end(position)
        while len(self.clean) > CLEAN_BLOCKS:
            gone, evicted = self.clean.popitem(last=False)
            self.fetched_ahead.discard(gone)
            # Only a written-back block is a bytearray here, and nothing else holds it:
            # reads copy what they take from the cache.
            if (
                type(evicted) is bytearray
                and len(evicted) == BLOCK_SIZE
                and len(self.spare) < SPARE_BLOCKS
            ):
                self.spare.append(evicted)

    # -- writing --------------------------------------------------------------------------

    async def write(self, offset: int, data: bytes | bytearray | memoryview) -> None:
        self._raise_failure()
        self.last_write = time.monotonic()
        view = memoryview(data).cast("B")
        done = 0
        for piece in maps.pieces(offset, len(view), self.size):
            size = piece.end - piece.start
            await self._patch(piece, view[done : done + size])
            done += size
        await self._bound()

    async def _patch(self, piece: maps.Piece, chunk: memoryview) -> None:
        position = piece.position
        aligned = whole_pages(piece)
        while True:
            dirty = self._dirty(piece, filled=piece.whole)  # (its bytes are copied in next)
            if dirty.filled or aligned:
                dirty.buffer[piece.start : piece.end] = chunk
                dirty.mark(piece.start, piece.end, piece.length)
                self.dirty.move_to_end(position)
                return
            await self._fill(position, dirty)  # then patch whatever is dirty by then

    def _dirty(self, piece: maps.Piece, filled: bool) -> Dirty:
        """Block ``piece.position`` as held for writing, made if it was not: ``filled``
        only when the caller writes the whole block into it before it next awaits;
        otherwise the pages written are recorded as they come (and a block with no
        entry is written back as just those pages)."""
        dirty = self.dirty.get(piece.position)
        if dirty is None:
            if piece.length == BLOCK_SIZE and self.spare:
                buffer = self.spare.pop()
            else:
                buffer = bytearray(piece.length)
            dirty = self.dirty[piece.position] = Dirty(buffer, filled)
        return dirty

    def receive(self, offset: int, length: int) -> Reception | None:
        """Where a write's payload can arrive in place: straight into its dirty blocks,
        saving a buffer and a copy per write (``nefos.volume.nbd``). None when a piece
        of it is not whole pages of its block (and the block is not one the writer has
        filled), or it lies past the end: then it comes in a buffer of its own, through
        ``write``. A write across a block boundary (a guest's, split by its own queue
        limits) arrives in two blocks."""
        if length <= 0 or offset + length > self.size:
            return None
        touched = maps.pieces(offset, length, self.size)
        for piece in touched:
            dirty = self.dirty.get(piece.position)
            if not whole_pages(piece) and not (dirty is not None and dirty.filled):
                return None
        parts = []
        for piece in touched:
            dirty = self._dirty(piece, filled=False)  # its payload is still to arrive
            dirty.receiving += 1
            parts.append((piece, dirty))
        return Reception(parts)

    async def land(self, reception: Reception) -> None:
        """A payload received in place (``receive``) is written: its pages are marked,
        or, where its block was replaced meanwhile (filled by a read, resized), copied
        into the block held now."""
        self._raise_failure()
        self.last_write = time.monotonic()
        reception.release()
        for (piece, dirty, buffer), view in zip(reception.parts, reception.views, strict=True):
            if self.dirty.get(piece.position) is dirty and dirty.buffer is buffer:
                dirty.mark(piece.start, piece.end, piece.length)
                self.dirty.move_to_end(piece.position)
            else:
                await self._patch(piece, view)
        await self._bound()

    async def _fill(self, position: int, dirty: Dirty) -> None:
        """The old block under the pages written so far (read once, when needed)."""
        base = await self._base(position)
        if dirty.filled:
            return  # another request filled it meanwhile
        block = bytearray(base)
        if len(block) < len(dirty.buffer):
            block.extend(bytes(len(dirty.buffer) - len(block)))
        written = memoryview(dirty.buffer)
        for start, end in dirty.runs():
            block[start:end] = written[start:end]
        dirty.buffer, dirty.filled, dirty.pages = block, True, 0

    async def _bound(self) -> None:
        """Past the dirty bound, write the oldest half back in the background (a
        sequential writer has finished them); past twice the bound, wait for it.
        Below it, blocks written whole that the writer has left (a sequential writer's)
        go back in the background once there are a few, so the disk works while the
        next ones arrive rather than all at the flush."""
        running = self.background
        idle = running is None or running.done()
        if len(self.dirty) > self.dirty_blocks:
            if idle:
                oldest = list(self.dirty)[: max(1, self.dirty_blocks // 2)]
                self.background = asyncio.ensure_future(self._background(oldest))
            elif len(self.dirty) + len(self.writing) > 2 * self.dirty_blocks:
                await asyncio.shield(running)
                self._raise_failure()
            return
        if idle and len(self.dirty) > EAGER_BLOCKS:
            newest = next(reversed(self.dirty))
            done = [
                position
                for position, dirty in self.dirty.items()
                if dirty.whole and not dirty.receiving and position != newest
            ]
            if len(done) >= EAGER_BLOCKS:
                self.background = asyncio.ensure_future(self._background(done))

    async def _background(self, positions: list[int]) -> None:
        try:
            await self._write_back(positions)
        except Exception as exc:  # the next flush or write reports it
            log.exception("%s: write-back failed", self.volume_id)
            self.failure = exc

    def _raise_failure(self) -> None:
        if self.failure is not None:
            failure, self.failure = self.failure, None
            raise DeviceError(f"an earlier write-back failed: {failure}") from failure

    async def zero(self, offset: int, length: int) -> None:
        """TRIM and WRITE_ZEROES: whole blocks become zeros without a 4 MiB buffer (the
        entry is dropped at a write-back, in turn); a partial block is a write of zeros."""
        self.last_write = time.monotonic()
        for piece in maps.pieces(offset, length, self.size):
            position = piece.position
            if piece.whole and position not in self.dirty:
                if position in self.entries or position in self.writing or position in self.partial:
                    async with self.write_back_turn:
                        if position not in self.dirty:
                            await self._note({position: EMPTY_HASH})
                            self.clean.pop(position, None)
                            continue
                else:
                    continue
            await self.write(position * BLOCK_SIZE + piece.start, ZEROS[: piece.end - piece.start])

    async def flush(self) -> None:
        """Make every write completed so far durable: extents written, then the map
        committed (after any write-back already under way)."""
        self._raise_failure()
        await self._write_back(None)
        self._raise_failure()

    def _copies_up(self, position: int) -> bool:
        """Whether a write-back of ``position`` makes a new extent of the whole block:
        its entry is a shared block (or it has none, and it is written as zeros
        around the pages)."""
        name = self.entries.get(position)
        return name is not None and name != self._extent(position)

    async def _write_back(self, positions: Sequence[int] | None) -> None:
        """Write back ``positions`` (None: every dirty block), in turn with others."""
        async with self.write_back_turn:
            chosen = list(self.dirty) if positions is None else positions
            for position in chosen:
                dirty = self.dirty.get(position)
                if dirty is not None and not dirty.filled and self._copies_up(position):
                    await self._fill(position, dirty)
            frozen: dict[int, tuple[bytes | bytearray, list[tuple[int, int]] | None]] = {}
            for position in chosen:
                dirty = self.dirty.get(position)
                if dirty is None or (not dirty.filled and self._copies_up(position)):
                    continue  # (written again after its fill: the next write-back's)
                runs = None if dirty.filled else dirty.runs()
                if dirty.receiving:
                    # A payload is arriving into it (a write sent after this flush): a
                    # flush writes back a copy, and the block stays dirty for that
                    # write; a background write-back leaves it for the next one.
                    if positions is None:
                        frozen[position] = (bytes(dirty.buffer), runs)
                else:
                    frozen[position] = (dirty.buffer, runs)
                    del self.dirty[position]
            if not frozen:
                if positions is None and (self.unsynced or self.uncommitted):  # a flush
                    await self._durable()
                return
            self.written.clear()
            for position, (buffer, runs) in frozen.items():
                self.generation[position] = self.generation.get(position, 0) + 1
                self.clean.pop(position, None)
                if runs is None:
                    self.writing[position] = buffer
                else:
                    self.partial.add(position)
            log.debug("%s: writing back blocks %s", self.volume_id, list(frozen))
            try:
                # (A new extent may replace one the committed map still names, when
                # the block was dropped since: a crash then leaves that name holding
                # zeros and the new pages, each what an unflushed TRIM or write may
                # leave.)
                writes, changed = self._extent_writes(frozen)
                await self._put(list(writes.values()))
                names = {write.name for write in writes.values()}
                if positions is None:  # a flush
                    await self._durable(names, changed)
                else:  # the next flush makes them durable and commits the map
                    self.unsynced |= names
                    await self._note(changed)
            except BaseException:
                for position, (buffer, runs) in frozen.items():
                    self.writing.pop(position, None)
                    self.partial.discard(position)
                    if position not in self.dirty:  # not overwritten meanwhile: retry later
                        again = Dirty(bytearray(buffer), filled=runs is None)
                        for start, end in runs or ():
                            again.mark(start, end, len(buffer))
                        self.dirty[position] = again
                        self.dirty.move_to_end(position, last=False)
                raise
            finally:
                self.written.set()
            now = time.monotonic()
            self.blocks_written += len(writes)
            for position in writes:
                self.extent_written[position] = now
            for position, (buffer, _runs) in frozen.items():
                self.partial.discard(position)
                if position in self.writing:
                    del self.writing[position]
                    self._remember(position, buffer)  # what the volume holds now

    def _extent_writes(
        self, frozen: dict[int, tuple[bytes | bytearray, list[tuple[int, int]] | None]]
    ) -> tuple[dict[int, ExtentWrite], dict[int, str]]:
        """What a write-back writes, by position: each block into its extent (in place,
        or a new one); and the entries that change (new extents; blocks all zeros,
        dropped)."""
        writes: dict[int, ExtentWrite] = {}
        changed: dict[int, str] = {}
        for position, (buffer, runs) in frozen.items():
            name = self._extent(position)
            view = memoryview(buffer)
            if runs is None and buffer == ZEROS[: len(buffer)]:
                if position in self.entries:
                    changed[position] = EMPTY_HASH
                continue
            pieces = [(0, view)] if runs is None else [(a, view[a:b]) for a, b in runs]
            if self.entries.get(position) == name:
                writes[position] = ExtentWrite(name, pieces)
            else:
                writes[position] = ExtentWrite(name, pieces, fresh=True)
                changed[position] = name
        return writes, changed

    async def _put(self, writes: list[ExtentWrite]) -> None:
        """``write_extents`` in a few concurrent calls (each engine works a call in its
        own thread), not yet durable: ``_sync`` makes them so, once for them all."""
        if not writes:
            return
        streams = max(1, min(PUT_STREAMS, len(writes)))
        share = -(-len(writes) // streams)
        parts = [writes[i : i + share] for i in range(0, len(writes), share)]
        await asyncio.gather(*(self.store.write_extents(p, durable=False) for p in parts))

    async def _sync(self, names: set[str]) -> None:
        """Make ``names`` and every extent written in place since the last sync durable
        (in the file store, one ``syncfs``): background write-backs in place leave that
        to the flush that needs it."""
        pending = self.unsynced | names
        self.unsynced = set()
        try:
            await self.store.sync_extents(sorted(pending))
        except BaseException:
            self.unsynced |= pending
            raise

    async def _durable(
        self, names: Collection[str] = (), changed: dict[int, str] | None = None
    ) -> None:
        """Every extent written since the last sync durable (``names`` too), then the
        map naming them committed, with every change noted since (and ``changed``), in
        one transaction; none when nothing changed."""
        await self._sync(set(names))
        pending = {**self.uncommitted, **(changed or {})}
        if pending:
            await self._commit(pending)

    async def _commit(self, written: dict[int, str]) -> None:
        """Point ``written`` positions at their blocks or extents (EMPTY_HASH: no entry)
        in one transaction, then remove the extents no entry names any more. The device
        is the volume's only writer, so nothing is compared: the last write to a block
        device wins."""
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
        dropped = set()
        for p, h in written.items():
            for old in (self.stored.get(p), self.entries.get(p)):
                if old is not None and is_extent(old) and old != h:
                    dropped.add(old)
                    self.extent_written.pop(p, None)
            self.uncommitted.pop(p, None)
            for held in (self.stored, self.entries):
                if h == EMPTY_HASH:
                    held.pop(p, None)
                else:
                    held[p] = h
        if dropped:
            await self.store.delete_extents(sorted(dropped))

    async def _note(self, changed: dict[int, str]) -> None:
        """Entries a background write-back (or a TRIM) changed: in effect at once, in
        the database at the next flush (a crash before it loses only unflushed writes,
        and the reopened device removes the extents they made). An extent made since the
        last commit and dropped again is removed now: no map ever named it."""
        dropped = []
        for p, h in changed.items():
            old = self.entries.get(p)
            if old is not None and is_extent(old) and old != h and self.stored.get(p) != old:
                dropped.append(old)
                self.extent_written.pop(p, None)
            self.uncommitted[p] = h
            if h == EMPTY_HASH:
                self.entries.pop(p, None)
            else:
                self.entries[p] = h
        if dropped:
            await self.store.delete_extents(dropped)

    # -- sealing --------------------------------------------------------------------------

    async def seal(self, idle_for: float | None = None) -> int:
        """Turn the volume's extents into content-addressed blocks (hashed and stored,
        the entries pointed at them, the extents removed), ``SEAL_BATCH`` in each turn
        of the write-back lock so flushes wait at most one batch. ``idle_for``: only
        extents not written back for that many seconds (and not dirty). Returns how
        many were sealed. A snapshot or clone then finds them hashed already."""
        sealed = 0
        while True:
            async with self.write_back_turn:
                if self.uncommitted:  # sealing commits: the map it commits over first
                    await self._durable()
                cutoff = None if idle_for is None else time.monotonic() - idle_for
                batch = [
                    position
                    for position, name in self.entries.items()
                    if name == self._extent(position)
                    and (
                        cutoff is None
                        or (
                            position not in self.dirty
                            and self.extent_written.get(position, 0.0) <= cutoff
                        )
                    )
                ][:SEAL_BATCH]
                if not batch:
                    return sealed
                names = [self.entries[p] for p in batch]
                hashes = await seal_extents(self.store, names, move=True)
                await self._commit(dict(zip(batch, hashes, strict=True)))
                sealed += len(batch)
                self.blocks_sealed += len(batch)

    async def seal_idle(self, after: float = SEAL_AFTER) -> None:
        """Run until cancelled: once the volume has had no write for ``after`` seconds,
        seal the extents not written back for as long. A block a guest keeps writing
        stays an extent; one it has left is hashed while nothing else happens."""
        while True:
            await asyncio.sleep(max(0.5, after / 2))
            if time.monotonic() - self.last_write < after or self.dirty:
                continue
            try:
                count = await self.seal(idle_for=after)
            except Exception:
                log.exception("%s: sealing idle extents failed", self.volume_id)
                continue
            if count:
                log.info("%s: sealed %d idle extents", self.volume_id, count)


async def seal_extents(store: BlockStore, names: list[str], move: bool = False) -> list[str]:
    """``BlockStore.seal_extents`` in a few concurrent calls: reading and hashing each
    extent is the cost, and each call works in a thread of its own (SHA-256 lets go of
    the GIL), so a snapshot right after a burst of writes uses every core."""
    if not names:
        return []
    streams = max(1, min(PUT_STREAMS, len(names)))
    share = -(-len(names) // streams)
    parts = [names[i : i + share] for i in range(0, len(names), share)]
    answers = await asyncio.gather(*(store.seal_extents(part, move=move) for part in parts))
    return [name for answer in answers for name in answer]
