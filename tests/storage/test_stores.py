"""The store test suite: every block store engine passes the same tests."""

from __future__ import annotations

import asyncio
import errno
import fcntl
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from nefos.blocks import BLOCK_SIZE, EMPTY_HASH, block_hash
from nefos.storage import filestore
from nefos.storage.filestore import FileStore
from nefos.storage.stores import BlockMissing, BlockStore, ExtentWrite, extent_name

STORES = ["file", "file-fsync-each", "rados"]


@pytest.fixture(params=STORES)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BlockStore]:
    if request.param == "file":
        opened: BlockStore = FileStore(tmp_path / "store")
    elif request.param == "file-fsync-each":
        opened = FileStore(tmp_path / "store", group_sync=False)
    else:
        opened = await request.getfixturevalue(f"{request.param}_store_factory")()
    yield opened
    await opened.close()


async def test_blocks_round_trip_canonically(store: BlockStore):
    blocks = [b"alpha", b"beta\0\0\0", b"\0gamma"]
    names = await store.put_blocks(blocks)
    assert names == [block_hash(b) for b in blocks]
    assert await store.get_blocks(names) == [b"alpha", b"beta", b"\0gamma"]
    assert sorted(await store.block_names()) == sorted(names)


async def test_the_zero_block_is_never_stored(store: BlockStore):
    names = await store.put_blocks([b"", b"\0" * 4096])
    assert names == [EMPTY_HASH, EMPTY_HASH]
    assert await store.block_names() == []
    assert await store.get_blocks([EMPTY_HASH]) == [b""]
    assert await store.missing([EMPTY_HASH]) == []


async def test_storing_twice_stores_once(store: BlockStore):
    await store.put_blocks([b"same"])
    await asyncio.gather(*(store.put_blocks([b"same", b"other"]) for _ in range(10)))
    assert sorted(await store.block_names()) == sorted([block_hash(b"same"), block_hash(b"other")])


async def test_a_put_says_whether_it_wrote_the_block(store: BlockStore):
    small, big = b"small block", os.urandom(BLOCK_SIZE - 1) + b"!"  # no trailing zero to strip
    for block in (small, big):
        assert await store.put_block(block) == (block_hash(block), True)
        assert await store.put_block(block) == (block_hash(block), False)
        assert await store.get_blocks([block_hash(block)]) == [block]
    assert await store.put_block(bytes(4096)) == (EMPTY_HASH, False)
    # Two puts at once: at least one wrote it (on RADOS, which has no claims, both may).
    twice = await asyncio.gather(*(store.put_block(b"raced") for _ in range(2)))
    assert (block_hash(b"raced"), True) in twice
    assert {name for name, _ in twice} == {block_hash(b"raced")}


async def test_missing_lists_absent_blocks_in_order_once(store: BlockStore):
    present = (await store.put_blocks([b"here"]))[0]
    a, b = block_hash(b"absent-a"), block_hash(b"absent-b")
    assert await store.missing([b, present, a, b, EMPTY_HASH]) == [b, a]


async def test_reading_absent_blocks_fails_with_their_names(store: BlockStore):
    present = (await store.put_blocks([b"here"]))[0]
    absent = block_hash(b"nowhere")
    with pytest.raises(BlockMissing) as caught:
        await store.get_blocks([present, absent])
    assert caught.value.names == [absent]


async def test_delete_blocks(store: BlockStore):
    names = await store.put_blocks([b"one", b"two"])
    await store.delete_blocks([names[0], block_hash(b"never-stored"), EMPTY_HASH])
    assert await store.block_names() == [names[1]]
    assert await store.missing(names) == [names[0]]


async def test_maps(store: BlockStore):
    hashes = await store.put_blocks([b"m1", b"m2"])
    await store.put_map("v1", [*hashes, EMPTY_HASH])
    assert await store.get_map("v1") == [*hashes, EMPTY_HASH]
    await store.put_map("v1", hashes[:1])
    assert await store.get_map("v1") == hashes[:1]
    await store.put_map("empty", [])
    assert await store.get_map("empty") == []
    assert sorted(await store.map_names()) == ["empty", "v1"]
    await store.delete_map("v1")
    with pytest.raises(BlockMissing):
        await store.get_map("v1")
    assert await store.map_names() == ["empty"]


@pytest.mark.parametrize("name", ["", "../x", "a/b", "..", "x" * 201, "sp ace"])
async def test_bad_map_names(store: BlockStore, name: str):
    with pytest.raises(ValueError):
        await store.put_map(name, [])


async def test_bad_hashes_are_refused(store: BlockStore):
    with pytest.raises(ValueError):
        await store.put_map("m", ["not-a-hash"])
    with pytest.raises(ValueError):
        await store.get_blocks(["../../etc/passwd"])


async def test_big_blocks(store: BlockStore):
    block = bytes(range(256)) * (4 * 1024 * 1024 // 256)
    (name,) = await store.put_blocks([block])
    assert (await store.get_blocks([name]))[0] == block


# -- the file store's own promises ---------------------------------------------------------


async def test_file_store_leaves_no_temporary_files(tmp_path: Path):
    store = FileStore(tmp_path)
    await store.put_blocks([b"x" * 1000, b"y"])
    await store.put_map("m", [])

    def leftovers() -> list[Path]:
        return [p for p in tmp_path.rglob("*") if p.is_file() and p.name.startswith(".")]

    assert await asyncio.to_thread(leftovers) == []


async def test_file_store_ignores_a_crash_leftover(tmp_path: Path):
    store = FileStore(tmp_path)
    (name,) = await store.put_blocks([b"kept"])
    leftover = tmp_path / "blocks" / name[:2] / name[2:4] / f".{name}.dead.tmp"
    await asyncio.to_thread(leftover.write_bytes, b"half")
    assert await store.block_names() == [name]


async def test_the_configuration_picks_the_store(tmp_path: Path):
    from nefos.core.config import Settings
    from nefos.server.engines import open_store

    store = open_store(Settings(data_dir=tmp_path))
    assert isinstance(store, FileStore) and store.root == tmp_path / "storage"
    elsewhere = open_store(Settings(data_dir=tmp_path, storage={"path": str(tmp_path / "b")}))
    assert elsewhere.root == tmp_path / "b"


async def test_the_configuration_picks_the_rados_store(rados_store_factory):
    from nefos.core.config import Settings
    from nefos.server.engines import open_store
    from nefos.storage.rados import RadosStore

    made = await rados_store_factory()
    storage = {"backend": "rados", "rados_conffile": str(made.conffile), "rados_pool": made.pool}
    store = open_store(Settings(storage=storage))
    try:
        assert isinstance(store, RadosStore) and store.pool == made.pool
        (name,) = await store.put_blocks([b"configured"])
        assert await made.get_blocks([name]) == [b"configured"]
    finally:
        await store.close()
        await made.close()


# -- the file store's writes around the page cache -------------------------------------------

# lengths around O_DIRECT's unit, a bytearray and a view with an odd start (unaligned)
# Random blocks end in a non-zero byte: a block is stored without its trailing zeros
# (Pithos hashes it so), and read back so.
DIRECT_BLOCKS = [b"x", b"y" * 4095, b"z" * 4096, os.urandom(4096) + b"!"]
DIRECT_BLOCKS.append(os.urandom(BLOCK_SIZE - 1) + b"!")


async def test_file_blocks_written_around_the_cache_read_back_exactly(tmp_path: Path):
    store = FileStore(tmp_path / "store")
    store.direct_min = 1  # every block
    unaligned = memoryview(bytearray(b"!" + os.urandom(69999) + b"!"))[1:]
    names = await store.put_blocks([*DIRECT_BLOCKS, bytearray(b"abc"), unaligned])
    expected = [*DIRECT_BLOCKS, b"abc", bytes(unaligned)]
    assert names == [block_hash(b) for b in expected]
    assert await store.get_blocks(names) == expected  # cut to length: no padding stays
    assert store.direct_min == 1  # the disk took O_DIRECT


async def test_file_blocks_are_written_through_the_cache_where_direct_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    store = FileStore(tmp_path / "store")
    store.direct_min = 1
    real = fcntl.fcntl

    def refuse_direct(fd: int, command: int, arg: int = 0) -> int:
        if command == fcntl.F_SETFL and arg & os.O_DIRECT:
            raise OSError(errno.EINVAL, "O_DIRECT refused")
        return real(fd, command, arg)

    monkeypatch.setattr(fcntl, "fcntl", refuse_direct)
    names = await store.put_blocks(DIRECT_BLOCKS)
    assert await store.get_blocks(names) == DIRECT_BLOCKS
    assert store.direct_min is None  # not tried again


async def test_big_blocks_are_read_around_the_cache_unless_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    store = FileStore(tmp_path / "store")
    store.direct_min = 1  # every block
    names = await store.put_blocks(DIRECT_BLOCKS)
    real = fcntl.fcntl
    direct: list[int] = []
    refuse = False

    def watched(fd: int, command: int, arg: int = 0) -> int:
        if command == fcntl.F_SETFL and arg & os.O_DIRECT:
            direct.append(fd)
            if refuse:
                raise OSError(errno.EINVAL, "O_DIRECT refused")
        return real(fd, command, arg)

    monkeypatch.setattr(fcntl, "fcntl", watched)
    assert await store.get_blocks(names) == DIRECT_BLOCKS
    assert len(direct) == len(DIRECT_BLOCKS)
    refuse = True
    assert await store.get_blocks(names) == DIRECT_BLOCKS
    assert store.direct_min is None and len(direct) == len(DIRECT_BLOCKS) + 1  # tried once


def reads_without_waiting(directory: Path) -> bool:
    """Whether the filesystem takes RWF_NOWAIT reads (tmpfs does not)."""
    probe = directory / "probe"
    probe.write_bytes(b"x")
    fd = os.open(probe, os.O_RDONLY)
    try:
        os.preadv(fd, [bytearray(1)], 0, os.RWF_NOWAIT)
    except OSError:
        return False
    finally:
        os.close(fd)
    return True


async def test_small_cached_blocks_are_read_without_a_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    if not reads_without_waiting(tmp_path):
        pytest.skip("no RWF_NOWAIT reads on this filesystem: every block goes to a thread")
    store = FileStore(tmp_path / "store")
    small, big = await store.put_blocks([b"small", os.urandom(filestore.INLINE_READ + 1)])
    threads: list[object] = []
    real = asyncio.to_thread

    async def counted(function: Any, *args: Any) -> Any:
        threads.append(function)
        return await real(function, *args)

    monkeypatch.setattr(filestore.asyncio, "to_thread", counted)
    assert await store.get_blocks([small]) == [b"small"]  # just written: in the cache
    assert threads == []
    assert len((await store.get_blocks([big]))[0]) == filestore.INLINE_READ + 1
    absent = block_hash(b"absent")
    with pytest.raises(BlockMissing):
        await store.get_blocks([absent])
    assert len(threads) == 2  # the big block, and the absent one (the thread says so)


# -- the file store's grouped syncs of small blocks ------------------------------------------


def count_syncs(monkeypatch: pytest.MonkeyPatch, fail_at: int | None = None) -> list[int]:
    """Count the store's syncfs calls (the real ones run); the ``fail_at``-th fails."""
    real = filestore._syncfs
    assert real is not None, "this libc has syncfs"
    calls: list[int] = []

    def counted(fd: int) -> None:
        calls.append(fd)
        if len(calls) == fail_at:
            raise OSError(errno.EIO, "the disk failed")
        real(fd)

    monkeypatch.setattr(filestore, "_syncfs", counted)
    return calls


def temporary_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*.tmp") if p.is_file()]


async def test_small_blocks_written_at_once_share_their_syncs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    store = FileStore(tmp_path)
    assert store.group_sync
    syncs = count_syncs(monkeypatch)
    groups: list[int] = []
    real = store._put_group

    def grouped(blocks: Any) -> Any:
        groups.append(len(blocks))
        return real(blocks)

    monkeypatch.setattr(store, "_put_group", grouped)
    fsyncs: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(filestore.os, "fsync", lambda fd: fsyncs.append(fd) or real_fsync(fd))
    data = [os.urandom(4095) + b"!" for _ in range(40)] + [b"twice", b"twice", b""]
    names = await asyncio.gather(*(store.put_blocks([d]) for d in data))
    assert [n for (n,) in names] == [block_hash(d) for d in data]
    assert sum(groups) == len(data) and len(groups) < len(data)  # the writers were grouped
    assert len(syncs) == 2 * len(groups) and fsyncs == []  # no file fsynced on its own
    assert await store.get_blocks([n for (n,) in names]) == [*data[:-1], b""]
    assert sorted(await store.block_names()) == sorted({block_hash(d) for d in data[:-1]})
    assert temporary_files(tmp_path) == []


async def test_big_blocks_of_one_call_share_their_syncs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """volumed writes back 4 MiB blocks several at a time: two syncfs for the call, no
    fsync of each file; one big block alone is still fsynced on its own."""
    store = FileStore(tmp_path)
    syncs = count_syncs(monkeypatch)
    fsyncs: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(filestore.os, "fsync", lambda fd: fsyncs.append(fd) or real_fsync(fd))
    data = [os.urandom(BLOCK_SIZE - 1) + b"!" for _ in range(3)] + [bytes(BLOCK_SIZE)]
    stored_before = data[1]
    await store.put_blocks([stored_before])  # alone: its own fsyncs
    assert len(fsyncs) == 2 and syncs == []
    fsyncs.clear()
    names = await store.put_blocks([*data, data[0]])
    assert names == [block_hash(d) for d in [*data, data[0]]]
    assert len(syncs) == 2 and fsyncs == []
    assert await store.get_blocks(names[:3]) == data[:3]
    assert temporary_files(tmp_path) == []
    count_syncs(monkeypatch, fail_at=1)  # the first sync of the next call fails
    with pytest.raises(OSError):
        await store.put_blocks([os.urandom(BLOCK_SIZE), os.urandom(BLOCK_SIZE)])
    assert sorted(await store.block_names()) == sorted(names[:3])
    assert temporary_files(tmp_path) == []


async def test_a_failed_sync_fails_its_group_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    store = FileStore(tmp_path)
    (kept,) = await store.put_blocks([b"stored before"])
    count_syncs(monkeypatch, fail_at=1)  # before the renames: no name points to the data
    results = await asyncio.gather(
        store.put_blocks([b"first"]),
        store.put_blocks([b"stored before"]),  # already durable: only touched
        return_exceptions=True,
    )
    assert isinstance(results[0], OSError) and results[0].errno == errno.EIO
    assert results[1] == [kept]
    assert await store.block_names() == [kept] and temporary_files(tmp_path) == []
    assert await store.put_blocks([b"first"]) == [block_hash(b"first")]  # the store goes on
    assert await store.get_blocks([block_hash(b"first")]) == [b"first"]


async def test_a_failed_write_fails_only_its_writer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    store = FileStore(tmp_path)
    real = store._write_temporary

    def disk_full_for_bad(path: Path, data: Any, sync: bool) -> Path:
        if bytes(data) == b"bad":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, data, sync)

    monkeypatch.setattr(store, "_write_temporary", disk_full_for_bad)
    good, bad = await asyncio.gather(
        store.put_blocks([b"good"]), store.put_blocks([b"bad"]), return_exceptions=True
    )
    assert good == [block_hash(b"good")]
    assert isinstance(bad, OSError) and bad.errno == errno.ENOSPC
    assert await store.block_names() == [block_hash(b"good")]


async def test_a_block_still_being_written_is_waited_for(tmp_path: Path):
    """Another writer's block is on disk under its name before it is durable: whoever
    finds it then (a PUT of the same bytes, a hashmap PUT's touch) waits for that
    writer rather than reference it early."""
    store = FileStore(tmp_path)
    name = block_hash(b"in flight")
    path = store._block_path(name)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"in flight")  # renamed into place, not yet synced
    claim = await asyncio.to_thread(store._claim, name)  # its writer is still at it
    touching = asyncio.ensure_future(store.missing([name], touch=True))
    putting = asyncio.ensure_future(store.put_blocks([b"in flight"]))
    await asyncio.sleep(0.2)
    assert not touching.done() and not putting.done()
    store._release(name, claim)
    assert await touching == [] and await putting == [name]


async def test_group_sync_can_be_turned_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from nefos.core.config import Settings
    from nefos.server.engines import open_store

    syncs = count_syncs(monkeypatch)
    store = open_store(Settings(data_dir=tmp_path, storage={"group_sync": False}))
    assert isinstance(store, FileStore) and not store.group_sync
    assert await store.put_blocks([b"each"]) == [block_hash(b"each")]
    assert syncs == []
    assert open_store(Settings(data_dir=tmp_path)).group_sync  # grouped by default


def test_a_direct_read_that_stops_short_is_finished_through_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """O_DIRECT reads may end before the file does: the rest is read buffered, and a
    block is never returned shorter than its file."""
    store = FileStore(tmp_path / "store")
    data = os.urandom(filestore.DIRECT_MIN + 12345)
    (name,) = asyncio.run(store.put_blocks([data]))
    real = os.preadv
    direct_reads: list[int] = []

    def stops_after_one_unit(fd: int, buffers: list[Any], offset: int, *flags: int) -> int:
        if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT:
            direct_reads.append(offset)
            if offset:
                return 0
            return real(fd, [memoryview(buffers[0])[: filestore.ALIGN]], offset, *flags)
        return real(fd, buffers, offset, *flags)

    monkeypatch.setattr(filestore.os, "preadv", stops_after_one_unit)
    assert store._read(store._block_path(name)) == data
    if store.direct_min is not None:  # a filesystem with O_DIRECT took the direct path
        assert direct_reads == [0, filestore.ALIGN]


# -- extents: a volume's own blocks, changed in place -------------------------------------

OWNER = "0123456789abcdef0123456789abcdef"


async def test_extents_are_written_in_place_and_read_back(store: BlockStore):
    name = extent_name(OWNER, 7)
    whole = os.urandom(BLOCK_SIZE)
    await store.write_extents([ExtentWrite(name, [(0, whole)], fresh=True)])
    assert await store.read_extent(name) == whole
    # A run changes only its bytes: no read, no hash of the rest.
    await store.write_extents([ExtentWrite(name, [(4096, b"x" * 4096), (BLOCK_SIZE - 3, b"end")])])
    expected = bytearray(whole)
    expected[4096:8192] = b"x" * 4096
    expected[-3:] = b"end"
    assert await store.read_extent(name) == bytes(expected)
    assert await store.extent_names(OWNER) == [name]
    assert await store.block_names() == []  # extents are no blocks: gc never sees them


async def test_a_fresh_extent_starts_empty_and_reads_short(store: BlockStore):
    name = extent_name(OWNER, 0)
    await store.write_extents([ExtentWrite(name, [(0, b"old" * 1000)], fresh=True)])
    await store.write_extents([ExtentWrite(name, [(8192, b"new")], fresh=True)])
    data = await store.read_extent(name)
    assert data == bytes(8192) + b"new"  # the old bytes are gone; past the end is zeros


async def test_sealing_copies_an_extent_into_a_block(store: BlockStore):
    first, second, empty = (extent_name(OWNER, i) for i in (1, 2, 3))
    body = os.urandom(BLOCK_SIZE - 4096) + bytes(4096)  # trailing zeros are no content
    await store.write_extents(
        [
            ExtentWrite(first, [(0, body)], fresh=True),
            ExtentWrite(second, [(100, b"small")], fresh=True),
            ExtentWrite(empty, [(0, bytes(4096))], fresh=True),
        ]
    )
    hashes = await store.seal_extents([first, second, empty])
    assert hashes == [block_hash(body), block_hash(bytes(100) + b"small"), EMPTY_HASH]
    assert await store.get_blocks(hashes[:2]) == [body.rstrip(b"\0"), bytes(100) + b"small"]
    # The extent stays, and writing it again leaves the sealed block alone.
    await store.write_extents([ExtentWrite(first, [(0, b"changed")])])
    assert await store.get_blocks(hashes[:1]) == [body.rstrip(b"\0")]
    assert (await store.read_extent(first))[:7] == b"changed"


async def test_extents_are_deleted_and_missing_ones_named(store: BlockStore):
    other_owner = "f" * 32
    mine, theirs = extent_name(OWNER, 1), extent_name(other_owner, 1)
    await store.write_extents([ExtentWrite(n, [(0, b"a")], fresh=True) for n in (mine, theirs)])
    assert await store.extent_names(other_owner) == [theirs]
    await store.delete_extents([mine, mine])
    assert await store.extent_names(OWNER) == []
    with pytest.raises(BlockMissing) as caught:
        await store.read_extent(mine)
    assert caught.value.names == [mine]
    with pytest.raises(BlockMissing):
        await store.seal_extents([theirs, mine])
    assert await store.read_extent(theirs) == b"a"


async def test_bad_extent_names_and_runs_are_refused(store: BlockStore):
    for bad in ("", "nodot", f"{OWNER}.", f"{OWNER}.xyz", "../x.1", f"{OWNER}/../x.1"):
        with pytest.raises(ValueError):
            await store.read_extent(bad)
    with pytest.raises(ValueError):
        await store.write_extents([ExtentWrite(extent_name(OWNER, 1), [(BLOCK_SIZE, b"x")])])


async def test_an_extent_sealed_to_be_dropped_stays_safe_if_it_is_not(store: BlockStore):
    """``move``: the store may give the block the extent's own storage (the file store
    links it). If the owner never drops the extent (its commit lost in a crash), its next
    write must still leave the sealed block's bytes alone."""
    name = extent_name(OWNER, 4)
    body = os.urandom(BLOCK_SIZE // 2) + bytes(BLOCK_SIZE // 2)
    await store.write_extents([ExtentWrite(name, [(0, body)], fresh=True)])
    (sealed,) = await store.seal_extents([name], move=True)
    assert sealed == block_hash(body)
    assert await store.get_blocks([sealed]) == [body.rstrip(b"\0")]
    assert (await store.read_extent(name)).ljust(BLOCK_SIZE, b"\0") == body
    await store.write_extents([ExtentWrite(name, [(0, b"overwritten")])])
    assert await store.get_blocks([sealed]) == [body.rstrip(b"\0")]
    assert (await store.read_extent(name))[:11] == b"overwritten"
    # Sealing a second extent of the same bytes finds the block there.
    twin = extent_name(OWNER, 5)
    await store.write_extents([ExtentWrite(twin, [(0, body)], fresh=True)])
    assert await store.seal_extents([twin], move=True) == [sealed]
    await store.delete_extents([twin])
    assert await store.get_blocks([sealed]) == [body.rstrip(b"\0")]
