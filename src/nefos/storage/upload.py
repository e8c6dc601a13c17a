"""Cutting a body into blocks while it arrives, and storing them as it goes.

A PUT's body comes as chunks of whatever size the socket gave. Each byte is copied once,
into a 4 MiB block buffer (a body of one chunk, the usual small object, is not copied at
all). A full buffer goes to two workers at once while the next one fills: the block
store, which names it by SHA-256, writes and fsyncs it in a thread, and the body's MD5
(the Swift ETag), which runs block after block in a thread of its own. hashlib and the
file writes release the GIL, so receiving, the two hashes and the disk overlap on
separate cores instead of taking turns.

At most ``IN_FLIGHT`` blocks are being stored per upload and their buffers are reused,
so memory stays bounded whatever the size; a slow disk slows the receiving (and so the
client, through TCP) rather than growing a queue. If the body fails midway, the blocks
in flight are let finish and the failure is raised: blocks already stored stay
unreferenced until gc takes them, the same as after a crash.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import deque
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from nefos.core import errors
from nefos.storage.blocks import BLOCK_SIZE, EMPTY_HASH, Buffer
from nefos.storage.stores import BlockStore

IN_FLIGHT = 8  # blocks being hashed and written per upload (32 MiB): disks like a queue
INLINE_MD5 = 256 * 1024  # smaller pieces are hashed on the loop: a thread hop costs more
# MD5 steps get threads of their own, so they never queue behind block writes waiting on
# fsync; an upload's steps run one after the other, so one thread per concurrent upload.
DIGESTS = ThreadPoolExecutor(max_workers=8, thread_name_prefix="nefos-md5")


@dataclass(frozen=True)
class Stored:
    """What a stored body is: its hashmap, its size and (if asked) its MD5 in hex."""

    hashes: list[str]
    size: int
    md5: str = ""


class _InFlight:
    """One block handed to the workers: the store's task, the MD5 step that ends with
    it, and the buffer to reuse once both are done (None: a chunk of the client's)."""

    __slots__ = ("buffer", "md5", "stored")

    def __init__(
        self,
        stored: asyncio.Task[list[str]],
        md5: asyncio.Future[None] | None,
        buffer: bytearray | None,
    ):
        self.stored = stored
        self.md5 = md5
        self.buffer = buffer


async def _after(
    previous: asyncio.Future[None] | None, digest: hashlib._Hash, data: Buffer
) -> None:
    """An MD5 step: the body's digest takes its blocks in order, one thread at a time."""
    if previous is not None:
        await previous
    await asyncio.get_running_loop().run_in_executor(DIGESTS, digest.update, data)


async def store_stream(
    store: BlockStore,
    chunks: AsyncIterator[bytes],
    max_size: int | None = None,
    md5: bool = True,
    block_size: int = BLOCK_SIZE,
) -> Stored:
    """Store a body as blocks; its hashmap is ``[H(b"")]`` when empty. Beyond
    ``max_size`` bytes the upload fails with TooLarge."""
    digest = hashlib.md5(usedforsecurity=False) if md5 else None
    md5_step: asyncio.Future[None] | None = None  # the last one, which ends after the others
    flight: deque[_InFlight] = deque()
    spare: list[bytearray] = []
    hashes: list[str] = []
    size = 0
    held: memoryview | None = None  # a block's first chunk, copied only if more follow
    buffer: bytearray | None = None
    view: memoryview | None = None
    filled = 0

    async def land() -> None:
        """Wait for the oldest block in flight; keep its hash, reuse its buffer."""
        oldest = flight.popleft()
        (name,) = await oldest.stored
        if oldest.md5 is not None:
            await oldest.md5
        hashes.append(name)
        if oldest.buffer is not None:
            spare.append(oldest.buffer)

    async def send(data: memoryview, owner: bytearray | None) -> None:
        nonlocal md5_step
        if len(flight) >= IN_FLIGHT:
            await land()
        step = None
        if digest is not None:
            if len(data) < INLINE_MD5 and (md5_step is None or md5_step.done()):
                digest.update(data)
            else:
                step = md5_step = asyncio.ensure_future(_after(md5_step, digest, data))
        stored = asyncio.ensure_future(store.put_blocks([data]))
        flight.append(_InFlight(stored, step, owner))

    try:
        async for chunk in chunks:
            if not chunk:
                continue
            size += len(chunk)
            if max_size is not None and size > max_size:
                raise errors.TooLarge(f"An object has at most {max_size} bytes")
            data = memoryview(chunk).cast("B")
            while data:
                if buffer is None and held is None:
                    if len(data) >= block_size:  # a whole block in the client's chunk
                        await send(data[:block_size], None)
                        data = data[block_size:]
                    else:
                        held, data = data, data[:0]
                    continue
                if buffer is None:
                    assert held is not None
                    buffer = spare.pop() if spare else bytearray(block_size)
                    view = memoryview(buffer)
                    view[: len(held)] = held
                    filled, held = len(held), None
                assert view is not None
                take = min(block_size - filled, len(data))
                view[filled : filled + take] = data[:take]
                filled += take
                data = data[take:]
                if filled == block_size:
                    await send(view, buffer)
                    buffer = view = None
                    filled = 0
        if held is not None:
            await send(held, None)
        elif buffer is not None and view is not None:
            await send(view[:filled], buffer)
        while flight:
            await land()
    except BaseException:
        # Let the blocks in flight finish (their threads would run on anyway), so that
        # nothing of this upload is still writing once the caller hears of the failure.
        await asyncio.gather(
            *(t for block in flight for t in (block.stored, block.md5) if t is not None),
            return_exceptions=True,
        )
        raise
    return Stored(hashes or [EMPTY_HASH], size, digest.hexdigest() if digest is not None else "")
