"""Cutting bodies into blocks as they arrive (``nefos.storage.upload``): whatever the
chunking, the hashmap, the stored blocks and the MD5 are those of the whole body."""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from nefos import blocks
from nefos.blocks import BLOCK_SIZE, EMPTY_HASH, Buffer
from nefos.core import errors
from nefos.storage import upload
from nefos.storage.filestore import FileStore
from nefos.storage.stores import Put
from nefos.storage.upload import Copies, store_stream

SMALL = 16  # a block size that 1-byte chunks can fill quickly


async def pieces(data: bytes, sizes: Sequence[int]) -> AsyncIterator[bytes]:
    """``data`` in chunks of the given sizes, cycled."""
    start, turn = 0, 0
    while start < len(data):
        size = sizes[turn % len(sizes)]
        yield data[start : start + size]
        start, turn = start + size, turn + 1


async def check(store: FileStore, data: bytes, sizes: Sequence[int], block_size: int) -> None:
    stored = await store_stream(store, pieces(data, sizes), block_size=block_size)
    assert stored.size == len(data)
    assert stored.md5 == hashlib.md5(data).hexdigest()
    assert stored.hashes == blocks.hashmap(data, block_size)
    for raw, name in zip(blocks.split(data, block_size), stored.hashes, strict=True):
        if name != EMPTY_HASH:
            assert await store.get_blocks([name]) == [blocks.canonical(raw)]


@pytest.fixture
def store(tmp_path: Path) -> FileStore:
    return FileStore(tmp_path / "store")


@pytest.mark.parametrize("blocks_", [1, 2])
async def test_a_body_of_exactly_whole_blocks(store: FileStore, blocks_: int):
    data = os.urandom(blocks_ * BLOCK_SIZE)
    await check(store, data, [1 << 20], BLOCK_SIZE)
    await check(store, data, [BLOCK_SIZE], BLOCK_SIZE)  # each chunk a whole block
    await check(store, data, [BLOCK_SIZE + 1], BLOCK_SIZE)


async def test_chunks_straddling_blocks(store: FileStore):
    data = os.urandom(3 * BLOCK_SIZE + 12345)
    await check(store, data, [65536 + 7, 3, 1 << 20, BLOCK_SIZE - 1], BLOCK_SIZE)


async def test_one_byte_chunks(store: FileStore):
    data = os.urandom(5 * SMALL + 3)
    await check(store, data, [1], SMALL)
    await check(store, b"x", [1], BLOCK_SIZE)


async def test_zero_blocks_and_trailing_zeros(store: FileStore):
    data = os.urandom(SMALL) + bytes(SMALL) + b"ab" + bytes(SMALL - 2) + bytes(5)
    await check(store, data, [3, 7, 1], SMALL)
    stored = await store_stream(store, pieces(bytes(3 * SMALL), [5]), block_size=SMALL)
    assert stored.hashes == [EMPTY_HASH] * 3


async def test_random_chunkings(store: FileStore):
    rng = random.Random(4)
    for _ in range(20):
        data = os.urandom(rng.randrange(0, 10 * SMALL))
        await check(store, data, [rng.randrange(1, 3 * SMALL) for _ in range(5)], SMALL)


async def test_an_empty_body(store: FileStore):
    stored = await store_stream(store, pieces(b"", [1]))
    assert (stored.hashes, stored.size, stored.md5) == ([EMPTY_HASH], 0, hashlib.md5().hexdigest())
    assert await store.block_names() == []


async def test_too_large_a_body_fails_and_stops_reading(store: FileStore):
    read = []

    async def body() -> AsyncIterator[bytes]:
        for index in range(100):
            read.append(index)
            yield b"x" * 10

    with pytest.raises(errors.TooLarge):
        await store_stream(store, body(), max_size=25, block_size=SMALL)
    assert read == [0, 1, 2]


class Counting:
    """A store that records how many puts run at once, and can be made to fail."""

    def __init__(self, inner: FileStore, fail_at: int | None = None):
        self.inner = inner
        self.fail_at = fail_at
        self.running = self.most = self.calls = 0

    async def put_block(self, given: Buffer) -> Put:
        self.calls += 1
        if self.calls == self.fail_at:
            raise OSError("disk full")
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            await asyncio.sleep(0.01)
            return await self.inner.put_block(given)
        finally:
            self.running -= 1


async def test_blocks_in_flight_are_bounded(store: FileStore):
    counting = Counting(store)
    data = os.urandom(40 * SMALL)
    stored = await store_stream(counting, pieces(data, [SMALL]), block_size=SMALL)  # type: ignore[arg-type]
    assert stored.hashes == blocks.hashmap(data, SMALL)
    assert counting.most == upload.IN_FLIGHT


async def test_a_failing_store_fails_the_upload(store: FileStore):
    counting = Counting(store, fail_at=3)
    with pytest.raises(OSError, match="disk full"):
        await store_stream(counting, pieces(os.urandom(40 * SMALL), [SMALL]), block_size=SMALL)  # type: ignore[arg-type]


# -- bodies that repeat stored data --------------------------------------------------------


async def arriving(data: bytes) -> AsyncIterator[bytes]:
    """``data`` in 1 MiB chunks with a pause between them, as a network delivers a body:
    each block is stored before the next one is complete."""
    for start in range(0, len(data), 1 << 20):
        await asyncio.sleep(0.01)
        yield data[start : start + (1 << 20)]


@pytest.fixture
def md5_steps(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Bytes the body's MD5 is fed in threads, per step: as the body arrives, or read
    back from the store to catch up."""
    fed: list[tuple[str, int]] = []
    after, feed = upload._after, upload._feed

    async def counted_after(previous, digest, data):  # type: ignore[no-untyped-def]
        fed.append(("arriving", len(data)))
        await after(previous, digest, data)

    def counted_feed(digest, data, length):  # type: ignore[no-untyped-def]
        fed.append(("read back", length))
        feed(digest, data, length)

    monkeypatch.setattr(upload, "_after", counted_after)
    monkeypatch.setattr(upload, "_feed", counted_feed)
    return fed


async def any_size(size: int) -> bool:
    return True


async def test_a_stored_body_takes_the_md5_of_its_stored_copy(store: FileStore, md5_steps):
    data = os.urandom(5 * BLOCK_SIZE + 1000)
    first = await store_stream(store, arriving(data))
    assert first.md5 == hashlib.md5(data).hexdigest()
    asked = []

    async def of_size(size: int) -> bool:
        asked.append(size)
        return True

    async def md5(hashes: list[str], size: int) -> str | None:
        asked.append((hashes, size))
        return first.md5

    md5_steps.clear()
    copies = Copies(of_size, md5)
    again = await store_stream(store, arriving(data), copies=copies, declared=len(data))
    assert again == first
    assert asked == [len(data), (first.hashes, len(data))]
    # the first block or two were hashed before the body was seen to repeat; no more
    assert sum(n for _, n in md5_steps) <= 2 * BLOCK_SIZE


async def test_a_put_off_md5_catches_up_from_the_store(store: FileStore, md5_steps):
    """Without a known copy, or once a block is new, the MD5 is the body's all the same:
    the blocks whose MD5 was put off are read back (trailing zeros included)."""
    zero_tailed = os.urandom(BLOCK_SIZE - 100) + bytes(100)
    stored = zero_tailed * 4 + os.urandom(BLOCK_SIZE)
    await store_stream(store, arriving(stored))

    async def no_copy(hashes: list[str], size: int) -> str | None:
        return None

    bodies = {
        "all stored, no known copy": stored,
        "stored, then new": stored[: 3 * BLOCK_SIZE] + os.urandom(2 * BLOCK_SIZE + 77),
        "stored but the short last block": stored + b"a new tail",
        "stored, ending in a shorter stored block": stored[: 4 * BLOCK_SIZE - 50],
    }
    for case, body in bodies.items():
        md5_steps.clear()
        copies = Copies(any_size, no_copy)
        result = await store_stream(store, arriving(body), copies=copies, declared=len(body))
        assert result.md5 == hashlib.md5(body).hexdigest(), case
        assert result.hashes == blocks.hashmap(body), case
        assert ("read back", BLOCK_SIZE) in md5_steps, case


async def test_no_bet_without_a_stored_body_of_its_size(store: FileStore, md5_steps):
    """A new body, or a stored file grown since (stored blocks, then new ones, and a
    size no stored body has), hashes its MD5 as it arrives: none is read back."""

    async def not_asked(hashes: list[str], size: int) -> str | None:
        raise AssertionError("no copy to ask for")

    async def no_body_of(size: int) -> bool:
        return False

    data = os.urandom(4 * BLOCK_SIZE + 5)
    grown = data + os.urandom(2 * BLOCK_SIZE)
    for body, of_size in ((data, any_size), (data, no_body_of), (grown, no_body_of)):
        md5_steps.clear()
        copies = Copies(of_size, not_asked)
        result = await store_stream(store, arriving(body), copies=copies, declared=len(body))
        assert result.md5 == hashlib.md5(body).hexdigest()
        assert md5_steps[:4] == [("arriving", BLOCK_SIZE)] * 4
        assert all(kind == "arriving" for kind, _ in md5_steps)
