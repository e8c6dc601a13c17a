"""Cutting a body into blocks while it arrives, and storing them as it goes.

A PUT's body comes as chunks of whatever size the socket gave. Each byte is copied once,
into a 4 MiB block buffer (a body of one chunk, the usual small object, is not copied at
all). A full buffer goes to two workers at once while the next one fills: the block
store, which names it by SHA-256, writes and fsyncs it in a thread, and the body's MD5
(the Swift ETag), which runs block after block in a thread of its own. hashlib and the
file writes release the GIL, so receiving, the two hashes and the disk overlap on
separate cores instead of taking turns.

A body that looks like a copy of a stored one (the same file uploaded again, under
another name or by someone else: its declared size is a stored body's, and every block
so far turns out to be stored already) puts its MD5 off: the blocks that follow are not
hashed for it. If the body ends that way, the MD5 of an identical stored version is
taken (``Copies.md5``: same Merkle hash and size, so the same bytes); failing that, and
as soon as a block turns out to be new, the digest catches up by reading the skipped
blocks back from the store. The bet costs when it is lost, as the skipped blocks are
then hashed after the fact instead of while the body arrived; a size no stored body has
(a file grown since, or new) never makes it. So a re-upload costs SHA-256 alone, and
the MD5 that python-swiftclient checks is still the body's.

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
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from nefos.blocks import BLOCK_SIZE, EMPTY_HASH, Buffer
from nefos.core import errors
from nefos.storage.stores import BlockStore, Put

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


@dataclass(frozen=True)
class Copies:
    """What an upload asks of the stored bodies (the namespace answers from its versions
    of more than one block): whether one has a given size, and the MD5 of the one with a
    given hashmap and size, if any."""

    of_size: Callable[[int], Awaitable[bool]]
    md5: Callable[[list[str], int], Awaitable[str | None]]


class _InFlight:
    """One block handed to the workers: its place in the body, the store's task, the MD5
    step that ends with it (None: none yet, or its MD5 is put off), and the buffer to
    reuse once both are done (None: a chunk of the client's)."""

    __slots__ = ("buffer", "index", "md5", "stored")

    def __init__(
        self,
        index: int,
        stored: asyncio.Future[Put],
        md5: asyncio.Future[None] | None,
        buffer: bytearray | None,
    ):
        self.index = index
        self.stored = stored
        self.md5 = md5
        self.buffer = buffer

    def wrote(self) -> bool | None:
        """Whether the store had to write this block; None while that is not known."""
        if not self.stored.done() or self.stored.cancelled() or self.stored.exception():
            return None
        return self.stored.result()[1]


async def _after(
    previous: asyncio.Future[None] | None, digest: hashlib._Hash, data: Buffer
) -> None:
    """An MD5 step: the body's digest takes its blocks in order, one thread at a time."""
    if previous is not None:
        await previous
    await asyncio.get_running_loop().run_in_executor(DIGESTS, digest.update, data)


async def _catch_up(
    previous: asyncio.Future[None] | None,
    digest: hashlib._Hash,
    store: BlockStore,
    blocks: list[str | asyncio.Future[Put]],
    lengths: list[int],
) -> None:
    """MD5 steps for blocks whose MD5 was put off, read back from the store in order
    (the store keeps them without trailing zeros, so those are given back)."""
    if previous is not None:
        await previous
    loop = asyncio.get_running_loop()
    for block, length in zip(blocks, lengths, strict=True):
        name = block if isinstance(block, str) else (await block)[0]
        (data,) = await store.get_blocks([name])
        await loop.run_in_executor(DIGESTS, _feed, digest, data, length)


def _feed(digest: hashlib._Hash, data: bytes, length: int) -> None:
    digest.update(data)
    if len(data) < length:
        digest.update(bytes(length - len(data)))


async def store_stream(
    store: BlockStore,
    chunks: AsyncIterator[bytes],
    max_size: int | None = None,
    md5: bool = True,
    block_size: int = BLOCK_SIZE,
    copies: Copies | None = None,
    declared: int | None = None,
    admit: Callable[[memoryview], Awaitable[None]] | None = None,
) -> Stored:
    """Store a body as blocks; its hashmap is ``[H(b"")]`` when empty. Beyond
    ``max_size`` bytes the upload fails with TooLarge. With ``copies`` and the body's
    ``declared`` size, a body that repeats a stored one may take its MD5 from there (the
    module's docstring). ``admit`` is awaited with each block, in order, before it is
    stored: what it raises ends the upload with that block and the rest unstored."""
    digest = hashlib.md5(usedforsecurity=False) if md5 else None
    # Whether a stored body has the declared size: asked with the first block, looked at
    # (never waited for) when the body has proved stored so far.
    likely_copy: asyncio.Future[bool] | None = None
    md5_step: asyncio.Future[None] | None = None  # the last one, which ends after the others
    put_off: int | None = None  # the first block whose MD5 is put off, while any is
    wrote = False  # some block was new: the body is not a copy, its MD5 is not put off
    lengths: list[int] = []  # of the blocks handed to the workers, in order
    flight: deque[_InFlight] = deque()
    spare: list[bytearray] = []
    hashes: list[str] = []
    size = 0
    held: memoryview | None = None  # a block's first chunk, copied only if more follow
    buffer: bytearray | None = None
    view: memoryview | None = None
    filled = 0

    def catch_up() -> None:
        """Feed the digest the blocks put off so far."""
        nonlocal md5_step, put_off
        assert digest is not None and put_off is not None
        skipped = [*hashes[put_off:], *(b.stored for b in flight if b.index >= put_off)]
        md5_step = asyncio.ensure_future(
            _catch_up(md5_step, digest, store, skipped, lengths[put_off:])
        )
        put_off = None

    async def land() -> None:
        """Wait for the oldest block in flight; keep its hash, reuse its buffer."""
        nonlocal wrote
        oldest = flight.popleft()
        name, written = await oldest.stored
        hashes.append(name)
        if written:
            wrote = True
            if put_off is not None:
                catch_up()
        if oldest.md5 is not None:
            await oldest.md5
        if oldest.buffer is not None:
            spare.append(oldest.buffer)

    def looks_like_a_copy() -> bool:
        """A stored body has the declared size, and every block sent so far (at least
        one) was stored already."""
        if likely_copy is None or not likely_copy.done() or likely_copy.exception():
            return False
        return (
            likely_copy.result()
            and bool(lengths)
            and not wrote
            and all(b.wrote() is False for b in flight)
        )

    async def send(data: memoryview, owner: bytearray | None) -> None:
        nonlocal likely_copy, md5_step, put_off, wrote
        if len(flight) >= IN_FLIGHT:
            await land()
        step = None
        if digest is not None:
            if (
                likely_copy is None
                and copies is not None
                and declared is not None
                and declared > block_size
            ):
                likely_copy = asyncio.ensure_future(copies.of_size(declared))
            if put_off is not None and any(b.wrote() for b in flight):
                wrote = True
                catch_up()
            elif put_off is None and looks_like_a_copy():
                put_off = len(lengths)
            if put_off is None:
                if len(data) < INLINE_MD5 and (md5_step is None or md5_step.done()):
                    digest.update(data)
                else:
                    step = md5_step = asyncio.ensure_future(_after(md5_step, digest, data))
        if admit is not None:
            await admit(data)
        stored = asyncio.ensure_future(store.put_block(data))
        flight.append(_InFlight(len(lengths), stored, step, owner))
        lengths.append(len(data))

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
        if put_off is not None:
            assert copies is not None
            known = await copies.md5(hashes, size)
            if known:
                return Stored(hashes, size, known)
            catch_up()
        if md5_step is not None:
            await md5_step
    except BaseException:
        # Let the blocks in flight finish (their threads would run on anyway), so that
        # nothing of this upload is still writing once the caller hears of the failure.
        await asyncio.gather(
            *(t for block in flight for t in (block.stored, block.md5) if t is not None),
            *(step for step in (md5_step, likely_copy) if step is not None),
            return_exceptions=True,
        )
        raise
    finally:
        if likely_copy is not None:
            if not likely_copy.done():
                likely_copy.cancel()  # the body ended, or proved new, before the answer
            elif not likely_copy.cancelled():
                likely_copy.exception()  # seen: a failed question only meant no bet
    return Stored(hashes or [EMPTY_HASH], size, digest.hexdigest() if digest is not None else "")
