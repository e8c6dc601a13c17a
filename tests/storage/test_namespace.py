"""The storage namespace on both databases, over a FileStore under the test's data dir."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import os
import uuid
from collections.abc import AsyncIterator, Callable

import pytest

from nefos import blocks
from nefos.blocks import BLOCK_SIZE
from nefos.core import errors
from nefos.core.db import utcnow
from nefos.quotas.service import Quotas, project_holder, user_holder
from nefos.server.engines import Engines
from nefos.storage import reads, upload
from nefos.storage.service import VERSION_FIELDS, Namespace, ObjectRecord, Subdir

RESOURCE = "pithos.diskspace"


@pytest.fixture
def ns(engines: Engines) -> Namespace:
    return engines.storage


@pytest.fixture
async def account(engines: Engines) -> str:
    user, _ = await engines.identity.create_user(f"s-{uuid.uuid4().hex[:6]}@example.org")
    return str(user.id)


async def stream(data: bytes, piece: int = 1 << 20) -> AsyncIterator[bytes]:
    for start in range(0, len(data), piece):
        yield data[start : start + piece]


async def body(ns: Namespace, record: ObjectRecord, start: int = 0, end: int | None = None):
    return b"".join([chunk async for chunk in ns.read(record, start, end)])


async def usage(quotas: Quotas, account: str) -> int:
    (holding,) = [
        h
        for h in await quotas.holdings([user_holder(account)])
        if h.resource == RESOURCE and h.source == project_holder(account)
    ]
    assert holding.usage_min == holding.usage_max  # nothing left pending
    return holding.usage_min


BIG = (
    os.urandom(BLOCK_SIZE)  # a full block
    + bytes(BLOCK_SIZE)  # an all-zero block, never stored
    + os.urandom(1000)
    + bytes(BLOCK_SIZE - 1000)  # a block with trailing zeros
    + b"tail"  # a short last block
)


async def test_round_trip_and_ranges(ns: Namespace, account: str):
    assert await ns.create_container(account, "c") is True
    assert await ns.create_container(account, "c") is False
    record = await ns.put_object(account, "c", "big", stream(BIG), "application/x-big", {"k": "v"})
    assert record.size == len(BIG)
    assert record.hash == blocks.merkle(blocks.hashmap(BIG))
    assert await ns.hashmap(record) == blocks.hashmap(BIG)
    got = await ns.get_object(account, "c", "big")
    assert got.meta == {"k": "v"} and got.type == "application/x-big"
    assert await body(ns, got) == BIG
    for start, end in [(0, 1), (BLOCK_SIZE - 3, BLOCK_SIZE + 5), (len(BIG) - 7, None), (5, 5)]:
        assert await body(ns, got, start, end) == BIG[start:end]
    # the all-zero block is not stored; the others are, once
    assert len(await ns.store.block_names()) == 3
    with pytest.raises(errors.InvalidInput):
        await body(ns, got, 10, 5)


async def test_one_block_objects_have_no_map(ns: Namespace, account: str):
    await ns.create_container(account, "c")
    data = b"head" + bytes(100)  # read back zero-padded from its canonical block
    record = await ns.put_object(account, "c", "small", stream(data))
    assert record.map_name == "" and await ns.store.map_names() == []
    assert await ns.hashmap(record) == [record.hash] == blocks.hashmap(data)
    assert await body(ns, record) == data
    for start, end in [(0, 1), (3, 50), (100, None), (104, 104), (0, 10**6)]:
        assert await body(ns, record, start, end) == data[start:end]
    with pytest.raises(errors.InvalidInput):
        await body(ns, record, 10, 5)
    zeros = await ns.put_object(account, "c", "zeros", stream(bytes(BLOCK_SIZE)))
    assert await body(ns, zeros) == bytes(BLOCK_SIZE)


async def test_big_reads_ask_for_blocks_ahead_and_drop_them_when_stopped(
    ns: Namespace, account: str, monkeypatch: pytest.MonkeyPatch
):
    await ns.create_container(account, "c")
    data = os.urandom(6 * BLOCK_SIZE + 5)
    record = await ns.put_object(account, "c", "big", stream(data))
    store = ns.store
    original = store.get_blocks
    now = peak = 0

    async def slow(hashes: list[str]) -> list[bytes]:
        nonlocal now, peak
        now += 1
        peak = max(peak, now)
        try:
            await asyncio.sleep(0.01)
            return await original(hashes)
        finally:
            now -= 1

    monkeypatch.setattr(store, "get_blocks", slow)
    assert await body(ns, record) == data
    assert peak == reads.READ_AHEAD  # one sent, the next ones on their way

    # a reader that stops after one block (a client gone) leaves no read behind
    await store.delete_blocks([blocks.hashmap(data)[3]])
    reader = ns.read(record)
    assert await anext(reader) == data[:BLOCK_SIZE]
    await reader.aclose()
    await asyncio.sleep(0.05)
    assert now == 0
    with pytest.raises(errors.Unavailable):  # read through, the lost block is an error
        await body(ns, record)


async def test_empty_object(ns: Namespace, account: str):
    await ns.create_container(account, "c")
    record = await ns.put_object(account, "c", "empty", stream(b""))
    assert (record.size, record.hash) == (0, blocks.EMPTY_HASH)
    assert await body(ns, record) == b""
    assert await ns.hashmap(record) == [blocks.EMPTY_HASH]


async def test_same_data_is_stored_once(ns: Namespace, account: str):
    await ns.create_container(account, "c")
    data = os.urandom(BLOCK_SIZE + 10)
    for i in range(10):
        await ns.put_object(account, "c", f"copy{i}", stream(data))
    assert len(await ns.store.block_names()) == 2
    assert len(await ns.list_objects(account, "c")) == 10
    (info,) = await ns.list_containers(account)
    assert (info.name, info.count, info.bytes) == ("c", 10, 10 * len(data))


async def test_hashmap_put_lists_missing_blocks(ns: Namespace, account: str):
    """What the store lacks, with Synnefo's reuse of any stored block (blocks put
    straight into the store are no account's; tests/storage/test_attacks.py has the
    default)."""
    ns.settings.storage.hashmap_reuse = "any"
    await ns.create_container(account, "c")
    data = os.urandom(2 * BLOCK_SIZE) + bytes(BLOCK_SIZE) + b"end"
    parts = [bytes(p) for p in blocks.split(data)]
    hashes = blocks.hashmap(data)
    await ns.store.put_blocks([parts[1]])
    with pytest.raises(errors.Conflict) as caught:
        await ns.put_hashmap(account, "c", "h", len(data), hashes)
    assert caught.value.data == {"missing": [hashes[0], hashes[3]]}
    with pytest.raises(errors.NotFound):
        await ns.get_object(account, "c", "h")
    with pytest.raises(errors.InvalidInput):
        await ns.put_hashmap(account, "c", "h", len(data), hashes[:2])
    await ns.store.put_blocks([parts[0], parts[3]])
    record = await ns.put_hashmap(account, "c", "h", len(data), hashes, "text/plain")
    assert record.hash == blocks.merkle(hashes) and record.checksum == ""
    assert await body(ns, record) == data


async def test_versions_history_and_deleted_marker(ns: Namespace, account: str):
    await ns.create_container(account, "c")
    first = await ns.put_object(account, "c", "o", stream(b"one"), meta={"a": "1"})
    second = await ns.put_object(account, "c", "o", stream(b"two!"))
    assert second.serial > first.serial
    assert second.uuid == first.uuid  # a path keeps its identity across versions (Pithos)
    assert await body(ns, await ns.get_object(account, "c", "o")) == b"two!"
    old = await ns.get_object(account, "c", "o", version=first.serial)
    assert old.meta == {"a": "1"} and await body(ns, old) == b"one"
    assert [s for s, _ in await ns.versions(account, "c", "o")] == [first.serial, second.serial]
    marker = await ns.delete_object(account, "c", "o")
    assert marker > second.serial
    with pytest.raises(errors.NotFound):
        await ns.get_object(account, "c", "o")
    with pytest.raises(errors.NotFound):
        await ns.get_object(account, "c", "o", version=marker)
    assert await body(ns, await ns.get_object(account, "c", "o", first.serial)) == b"one"
    assert await ns.list_objects(account, "c") == []
    with pytest.raises(errors.NotFound):
        await ns.delete_object(account, "c", "o")


async def test_versioning_none_replaces(ns: Namespace, account: str):
    await ns.create_container(account, "c", {"versioning": "none"})
    first = await ns.put_object(account, "c", "o", stream(b"one"))
    second = await ns.put_object(account, "c", "o", stream(b"two"))
    assert [s for s, _ in await ns.versions(account, "c", "o")] == [second.serial]
    with pytest.raises(errors.NotFound):
        await ns.get_object(account, "c", "o", version=first.serial)


async def test_copy_and_move_share_the_map(ns: Namespace, account: str, engines: Engines):
    await ns.create_container(account, "a")
    await ns.create_container(account, "b")
    data = os.urandom(BLOCK_SIZE + 1)
    source = await ns.put_object(account, "a", "src", stream(data), meta={"m": "1"})
    stored = await ns.store.block_names()
    copy = await ns.copy_object(account, "a", "src", "b", "dup", meta={"n": "2"})
    assert copy.uuid != source.uuid
    assert (copy.hash, copy.map_name, copy.size) == (source.hash, source.map_name, source.size)
    assert copy.meta == {"m": "1", "n": "2"}
    assert await usage(engines.quotas, account) == 2 * len(data)
    moved = await ns.move_object(account, "b", "dup", "b", "dir/renamed")
    assert (moved.uuid, moved.hash) == (copy.uuid, copy.hash)
    with pytest.raises(errors.NotFound):
        await ns.get_object(account, "b", "dup")
    assert await body(ns, moved) == data
    assert await ns.store.block_names() == stored
    assert await usage(engines.quotas, account) == 2 * len(data)


async def test_quota_charged_and_released(ns: Namespace, account: str, engines: Engines):
    await ns.create_container(account, "c")
    assert await usage(engines.quotas, account) == 0
    await ns.put_object(account, "c", "o", stream(b"x" * 1000))
    assert await usage(engines.quotas, account) == 1000
    await ns.put_object(account, "c", "o", stream(b"x" * 300))
    assert await usage(engines.quotas, account) == 300
    await ns.put_object(account, "c", "p", stream(b"y" * 50))
    await ns.delete_object(account, "c", "o")
    assert await usage(engines.quotas, account) == 50


async def test_over_quota_writes_nothing_visible(ns: Namespace, account: str, engines: Engines):
    await engines.quotas.set_base_quota(uuid.UUID(account), RESOURCE, 100)
    await ns.create_container(account, "c")
    await ns.put_object(account, "c", "small", stream(b"s" * 60))
    with pytest.raises(errors.OverQuota):
        await ns.put_object(account, "c", "big", stream(b"b" * 50))
    with pytest.raises(errors.NotFound):
        await ns.get_object(account, "c", "big")
    assert [o.name for o in await ns.list_objects(account, "c")] == ["small"]
    assert await usage(engines.quotas, account) == 60
    await ns.create_container(account, "capped", {"quota": 10})
    with pytest.raises(errors.OverQuota):
        await ns.put_object(account, "capped", "o", stream(b"c" * 11))
    assert await ns.list_objects(account, "capped") == []


async def test_a_container_quota_set_while_the_body_arrives_applies(
    ns: Namespace, account: str, engines: Engines
):
    await ns.create_container(account, "c")

    async def slow() -> AsyncIterator[bytes]:
        yield b"x" * 100
        await ns.create_container(account, "c", {"quota": 10})  # after the write's reads
        yield b"y" * 100

    with pytest.raises(errors.OverQuota):
        await ns.put_object(account, "c", "o", slow())
    assert await ns.list_objects(account, "c") == []
    assert await usage(engines.quotas, account) == 0


async def test_an_object_replaced_while_the_body_arrives(
    ns: Namespace, account: str, engines: Engines
):
    await ns.create_container(account, "c")
    await ns.put_object(account, "c", "o", stream(b"first"))

    async def slow() -> AsyncIterator[bytes]:
        yield b"third"
        await ns.put_object(account, "c", "o", stream(b"second, longer"))

    record = await ns.put_object(account, "c", "o", slow())
    assert (await ns.get_object(account, "c", "o")).serial == record.serial
    assert await body(ns, record) == b"third"
    assert len(await ns.versions(account, "c", "o")) == 3
    assert await usage(engines.quotas, account) == len(b"third")


async def test_an_upload_failing_midway_leaves_nothing_visible(
    ns: Namespace, account: str, engines: Engines
):
    await ns.create_container(account, "c")

    async def broken() -> AsyncIterator[bytes]:
        yield os.urandom(BLOCK_SIZE + 100)  # a whole block goes to the store first
        yield os.urandom(1000)
        raise ConnectionError("the client went away")

    with pytest.raises(ConnectionError):
        await ns.put_object(account, "c", "o", broken())
    with pytest.raises(errors.NotFound):
        await ns.get_object(account, "c", "o")
    assert await ns.list_objects(account, "c") == []
    assert await ns.store.map_names() == []  # no map: the blocks are gc's to take
    assert await usage(engines.quotas, account) == 0
    root = ns.settings.data_dir / "storage"
    assert not [p for p in root.rglob("*") if p.name.endswith(".tmp")]


async def test_one_byte_chunks_and_a_block_sized_body(ns: Namespace, account: str):
    await ns.create_container(account, "c")
    data = os.urandom(3000)
    record = await ns.put_object(account, "c", "bytes", stream(data, 1))
    assert record.checksum == hashlib.md5(data).hexdigest()
    assert await body(ns, record) == data
    exact = os.urandom(BLOCK_SIZE)
    record = await ns.put_object(account, "c", "exact", stream(exact, 3 << 20))
    assert await ns.hashmap(record) == [blocks.block_hash(exact)]
    assert await body(ns, record) == exact


@pytest.mark.parametrize(
    "container,name",
    [
        ("c", "a/../b"),
        ("c", "./x"),
        ("c", "x" * 1025),
        ("c", "\U0001d11e" * 256 + "x"),  # 1025 bytes of UTF-8
        ("c", "nul\0"),
        ("c", "bad\udc80utf8"),
        ("x" * 257, "o"),
        ("\u00e9" * 129, "o"),  # 258 bytes
        ("a/b", "o"),
        ("..", "o"),
    ],
)
async def test_bad_names_are_refused(ns: Namespace, account: str, container: str, name: str):
    await ns.create_container(account, "c")
    with pytest.raises(errors.InvalidInput):
        await ns.put_object(account, container, name, stream(b"data"))
    assert await ns.list_objects(account, "c") == []
    assert await ns.store.block_names() == []
    assert [c.name for c in await ns.list_containers(account)] == ["c"]


@pytest.mark.parametrize(
    "container,name",
    [("c" * 256, "o" * 1024), ("\u00e9" * 128, "\U0001d11e" * 256)],  # at the byte limits
)
async def test_long_names_within_limits(ns: Namespace, account: str, container: str, name: str):
    await ns.create_container(account, container)
    await ns.put_object(account, container, name, stream(b"ok"))
    assert await body(ns, await ns.get_object(account, container, name)) == b"ok"
    assert [o.name for o in await ns.list_objects(account, container)] == [name]


async def test_concurrent_writes_of_one_new_name(ns: Namespace, account: str):
    """Both writers of a name nobody has used yet succeed; one version is current."""
    await ns.create_container(account, "c")
    writes = [ns.put_object(account, "c", "new", stream(bytes([i]) * 100)) for i in range(8)]
    done = await asyncio.gather(*writes, ns.create_container(account, "c2"))
    assert len({record.serial for record in done[:-1]}) == 8
    current = await ns.get_object(account, "c", "new")
    assert current.serial == max(record.serial for record in done[:-1])
    assert len(await ns.versions(account, "c", "new")) == 8


async def test_moves_each_way_between_two_containers_at_once(ns: Namespace, account: str):
    """Each move locks both containers' policies: in one order for every writer, or
    PostgreSQL finds two moves waiting on each other and kills one (deadlock)."""
    await ns.create_container(account, "a")
    await ns.create_container(account, "b")
    for i in range(20):
        await ns.put_object(account, "a", f"from-a/{i}", stream(b"a"))
        await ns.put_object(account, "b", f"from-b/{i}", stream(b"bb"))
    await asyncio.gather(
        *(ns.move_object(account, "a", f"from-a/{i}", "b", f"from-a/{i}") for i in range(20)),
        *(ns.move_object(account, "b", f"from-b/{i}", "a", f"from-b/{i}") for i in range(20)),
    )
    assert [(c.name, c.count, c.bytes) for c in await ns.list_containers(account)] == [
        ("a", 20, 40),
        ("b", 20, 20),
    ]
    assert {o.name for o in await ns.list_objects(account, "a")} == {
        f"from-b/{i}" for i in range(20)
    }


async def test_listing_prefix_delimiter_marker(ns: Namespace, account: str):
    await ns.create_container(account, "c")
    for name in ["a", "d/1", "d/2", "d", "e/x/y", "f%_", "g"]:
        await ns.put_object(account, "c", name, stream(name.encode()))

    def names(items: list[ObjectRecord | Subdir]) -> list[str]:
        return [item.name for item in items]

    everything = await ns.list_objects(account, "c")
    assert names(everything) == ["a", "d", "d/1", "d/2", "e/x/y", "f%_", "g"]
    top = await ns.list_objects(account, "c", delimiter="/")
    assert [(type(i).__name__, i.name) for i in top] == [
        ("ObjectRecord", "a"),
        ("ObjectRecord", "d"),
        ("Subdir", "d/"),
        ("Subdir", "e/"),
        ("ObjectRecord", "f%_"),
        ("ObjectRecord", "g"),
    ]
    assert names(await ns.list_objects(account, "c", prefix="d/", delimiter="/")) == ["d/1", "d/2"]
    assert names(await ns.list_objects(account, "c", prefix="f%")) == ["f%_"]
    assert names(await ns.list_objects(account, "c", prefix="e/", delimiter="/")) == ["e/x/"]
    assert names(await ns.list_objects(account, "c", marker="d/1", limit=2)) == ["d/2", "e/x/y"]


def _listed(
    names: list[str],
    prefix: str = "",
    delimiter: str | None = None,
    marker: str | None = None,
    end_marker: str | None = None,
    limit: int = 10000,
    reverse: bool = False,
    visible: Callable[[str], bool] | None = None,
) -> list[tuple[str, str]]:
    """What a listing must give, worked out from the whole name list: the names between
    the markers (reversed, they swap ends), in code point order; a delimited name rolls
    up into its subdir unless an object has the subdir's name, and a subdir is listed
    when it too lies between the markers."""
    low, high = (end_marker, marker) if reverse else (marker, end_marker)
    entries: dict[str, str] = {}
    for name in names:
        if not name.startswith(prefix) or (visible is not None and not visible(name)):
            continue
        if (low is not None and name <= low) or (high is not None and name >= high):
            continue
        cut = name.find(delimiter, len(prefix)) if delimiter else -1
        if cut >= 0 and cut + len(delimiter or "") < len(name):
            entries.setdefault(name[: cut + len(delimiter or "")], "Subdir")
        else:
            entries[name] = "ObjectRecord"
    chosen = [
        (kind, name)
        for name, kind in sorted(entries.items(), reverse=reverse)
        if (low is None or name > low) and (high is None or name < high)
    ]
    return chosen[:limit]


async def test_listings_read_in_pages_give_what_the_whole_list_gives(
    ns: Namespace, account: str, monkeypatch: pytest.MonkeyPatch
):
    # Pages of three rows, so every listing below crosses pages and subdir jumps.
    monkeypatch.setattr("nefos.storage.listings.LISTING_PAGE", 3)
    monkeypatch.setattr("nefos.storage.listings.DELIMITED_PAGE", 2)
    names = ["a", "b/", "b/1", "b/2", "b/3/x", "b0", "c/d/e", "c/f", "cé", "d", "d/", "e"]
    names += [f"m/{i:02d}" for i in range(10)] + ["z/\U0010ffff", "~", "\ud7ff/x", "\ue000"]
    await ns.create_container(account, "c")
    for name in names:
        await ns.put_object(account, "c", name, stream(b"x"))
    await ns.put_object(account, "c", "gone", stream(b"x"))
    await ns.delete_object(account, "c", "gone")
    cases: list[dict] = [{}]
    for delimiter in (None, "/", "/d"):
        for prefix in ("", "b", "b/", "c/", "m/", "\ud7ff", "z/\U0010ffff"):
            for marker in (None, "b/", "b/2", "c", "m/05", "zz"):
                for end_marker in (None, "b0", "d/", "m/07"):
                    for limit in (2, 10000):
                        cases.append(dict(prefix=prefix, delimiter=delimiter, marker=marker,
                                          end_marker=end_marker, limit=limit))  # fmt: skip
    for case in cases:
        for reverse in (False, True):
            listed = await ns.list_objects(account, "c", reverse=reverse, **case)
            got = [(type(entry).__name__, entry.name) for entry in listed]
            assert got == _listed(names, reverse=reverse, **case), (case, reverse)
    # What another user may see: rows the listing drops, so a page can come back short.
    hidden = {"b/", "b/1", "b/3/x", "c/f", "m/00", "m/01", "m/02", "m/03", "m/04"}
    for case in cases[::7]:
        for reverse in (False, True):
            listed = await ns.list_objects(
                account, "c", reverse=reverse, visible=lambda n: n not in hidden, **case
            )
            got = [(type(entry).__name__, entry.name) for entry in listed]
            expected = _listed(names, reverse=reverse, visible=lambda n: n not in hidden, **case)
            assert got == expected, (case, reverse)


async def test_delete_container(ns: Namespace, account: str):
    await ns.create_container(account, "c")
    await ns.put_object(account, "c", "o", stream(b"data"))
    with pytest.raises(errors.Conflict):
        await ns.delete_container(account, "c")
    await ns.delete_object(account, "c", "o")
    await ns.delete_container(account, "c")
    assert await ns.list_containers(account) == []
    with pytest.raises(errors.NotFound):
        await ns.put_object(account, "c", "o", stream(b"data"))
    with pytest.raises(errors.NotFound):
        await ns.delete_container(account, "c")


async def aggregated(ns: Namespace, account: str, container: str) -> tuple[int, int, object]:
    """What a container's versions say, counted from scratch: current versions and
    their bytes, and the newest version of any kind."""
    from sqlalchemy import case, func, select

    from nefos.storage.models import CURRENT, Node, Version

    current = Version.cluster == CURRENT
    async with ns.db.session() as s:
        parent = await s.scalar(select(Node.id).where(Node.path == f"{account}/{container}"))
        count, size, newest = (
            await s.execute(
                select(
                    func.sum(case((current, 1), else_=0)),
                    func.sum(case((current, Version.size), else_=0)),
                    func.max(Version.mtime),
                )
                .join(Node, Node.id == Version.node_id)
                .where(Node.parent_id == parent)
            )
        ).one()
    return int(count or 0), int(size or 0), newest


async def test_container_statistics_follow_every_kind_of_write(ns: Namespace, account: str):
    await ns.create_container(account, "kept")
    await ns.create_container(account, "flat", {"versioning": "none"})
    assert (await ns.container(account, "kept")).count == 0
    steps = [
        lambda: ns.put_object(account, "kept", "a", stream(b"a" * 100)),
        lambda: ns.put_object(account, "kept", "a", stream(b"a" * 30)),  # smaller again
        lambda: ns.put_object(account, "flat", "b", stream(b"b" * 7)),
        lambda: ns.put_object(account, "flat", "b", stream(b"b" * 70)),
        lambda: ns.copy_object(account, "kept", "a", "flat", "copy"),
        lambda: ns.move_object(account, "flat", "b", "kept", "moved"),
        lambda: ns.put_object(account, "kept", "empty", stream(b"")),
        lambda: ns.delete_object(account, "kept", "a"),
        lambda: ns.put_object(account, "kept", "a", stream(b"again")),  # after its marker
        lambda: ns.delete_object(account, "flat", "copy"),
    ]
    created = {c.name: c.last_modified for c in await ns.list_containers(account)}
    for step in steps:
        await step()
        for container in ("kept", "flat"):
            info = await ns.container(account, container)
            count, size, newest = await aggregated(ns, account, container)
            # Last-Modified: the newest version, or the creation before any write.
            assert (info.count, info.bytes, info.last_modified) == (
                count,
                size,
                newest or created[container],
            )
    assert [(c.name, c.count, c.bytes) for c in await ns.list_containers(account)] == [
        ("flat", 0, 0),
        ("kept", 3, 75),
    ]
    totals = await ns.account(account)
    assert (totals.objects, totals.bytes) == (3, 75)
    await ns.delete_object(account, "kept", "a")
    await ns.delete_object(account, "kept", "moved")
    await ns.delete_object(account, "kept", "empty")
    await ns.delete_container(account, "kept")
    deleted = utcnow()
    await ns.create_container(account, "kept")  # a new container starts from nothing
    info = await ns.container(account, "kept")
    assert (info.count, info.bytes) == (0, 0)
    assert info.last_modified is not None and info.last_modified >= deleted


async def meta_keys_from_scratch(ns: Namespace, account: str, container: str) -> dict[str, int]:
    """How many current objects use each user metadata key, counted over the versions."""
    from sqlalchemy import func, select

    from nefos.storage.models import CURRENT, Attribute, Node, Version

    async with ns.db.session() as s:
        parent = await s.scalar(select(Node.id).where(Node.path == f"{account}/{container}"))
        rows = await s.execute(
            select(Attribute.key, func.count())
            .join(Version, Version.serial == Attribute.serial)
            .join(Node, Node.id == Version.node_id)
            .where(
                Node.parent_id == parent,
                Version.cluster == CURRENT,
                Attribute.domain == "pithos",
                ~Attribute.key.startswith(":"),
            )
            .group_by(Attribute.key)
        )
        return dict(rows.all())


async def meta_keys_counted(ns: Namespace, account: str, container: str) -> dict[str, int]:
    from sqlalchemy import select

    from nefos.storage.models import ContainerMetaKey, Node

    async with ns.db.session() as s:
        rows = await s.execute(
            select(ContainerMetaKey.key, ContainerMetaKey.objects)
            .join(Node, Node.id == ContainerMetaKey.node_id)
            .where(Node.path == f"{account}/{container}")
        )
        return dict(rows.all())


async def test_the_object_meta_keys_in_use_follow_every_kind_of_write(ns: Namespace, account: str):
    await ns.create_container(account, "kept")
    await ns.create_container(account, "flat", {"versioning": "none"})

    def put(container: str, name: str, **meta: str):
        return ns.put_object(account, container, name, stream(b"x"), meta=meta)

    steps = [
        lambda: put("kept", "a", Color="r", Size="1"),
        lambda: put("kept", "a", Color="g", Shape="o"),  # the path's keys change
        lambda: put("kept", "b", Color="b"),
        lambda: put("flat", "c", Size="2"),
        lambda: put("flat", "c", **{":content-encoding": "x"}),  # a system key is not listed
        lambda: ns.copy_object(account, "kept", "a", "flat", "copy", meta={"Extra": "1"}),
        lambda: ns.copy_object(account, "kept", "b", "flat", "new", meta={"New": "1"}, fresh=True),
        lambda: ns.move_object(account, "kept", "b", "flat", "moved"),
        lambda: ns.update_meta(account, "flat", "moved", {"Color": "", "Tag": "t"}),
        lambda: ns.update_meta(account, "flat", "copy", {"Only": "1"}, replace=True),
        lambda: ns.set_domain(account, "kept", "a", "plankton", {"name": "an image"}),
        lambda: ns.delete_object(account, "kept", "a"),
        lambda: ns.delete_object(account, "flat", "copy"),
    ]
    for step in steps:
        await step()
        for container in ("kept", "flat"):
            counted = await meta_keys_counted(ns, account, container)
            assert counted == await meta_keys_from_scratch(ns, account, container)
            assert await ns.object_meta_keys(account, container) == sorted(counted)
    assert await ns.object_meta_keys(account, "flat") == ["New", "Tag"]
    assert await ns.object_meta_keys(account, "kept") == []


async def test_the_migration_counts_the_meta_keys_objects_use(database_url: str):
    import datetime as dt

    from alembic import command
    from sqlalchemy import insert, select
    from sqlalchemy.ext.asyncio import create_async_engine

    from nefos.core.migrate import alembic_config, upgrade_async
    from nefos.storage.models import (
        CURRENT,
        HISTORY,
        Attribute,
        ContainerMetaKey,
        Node,
        Policy,
        Version,
    )

    await asyncio.to_thread(command.downgrade, alembic_config(database_url), "0012")
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as conn:
            nodes = [(1, None, "acct"), (2, 1, "acct/c"), (3, 2, "acct/c/o1"), (4, 2, "acct/c/o2")]
            await conn.execute(
                insert(Node), [{"id": i, "parent_id": p, "path": path} for i, p, path in nodes]
            )
            await conn.execute(
                insert(Policy), [{"node_id": 2, "quota": 0, "versioning": "auto", "project": "p"}]
            )
            versions = [(10, 3, HISTORY), (11, 3, CURRENT), (12, 4, CURRENT)]  # serial, node
            await conn.execute(
                insert(Version),
                [
                    {
                        "serial": serial,
                        "node_id": node,
                        "size": 1,
                        "type": "",
                        "hash": "0" * 64,
                        "checksum": "",
                        "map_name": "",
                        "uuid": uuid.uuid4(),
                        "mtime": dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
                        "muser": "",
                        "cluster": cluster,
                    }
                    for serial, node, cluster in versions
                ],
            )
            attributes = [
                (10, "pithos", "Old"),  # history: not in use
                (11, "pithos", "Color"),
                (11, "pithos", ":content-encoding"),  # a system key
                (11, "plankton", "name"),  # another domain
                (12, "pithos", "Color"),
                (12, "pithos", "Size"),
            ]
            await conn.execute(
                insert(Attribute),
                [{"serial": s, "domain": d, "key": k, "value": "v"} for s, d, k in attributes],
            )
        await upgrade_async(database_url)
        async with engine.connect() as conn:
            rows = (await conn.execute(select(ContainerMetaKey.__table__))).all()
    finally:
        await engine.dispose()
    assert sorted(tuple(row) for row in rows) == [(2, "Color", 2), (2, "Size", 1)]


async def test_the_migration_rolls_up_what_containers_already_hold(database_url: str):
    import datetime as dt

    from alembic import command
    from sqlalchemy import insert, select
    from sqlalchemy.ext.asyncio import create_async_engine

    from nefos.core.migrate import alembic_config, upgrade_async
    from nefos.storage.models import (
        CURRENT,
        DELETED,
        HISTORY,
        ContainerStats,
        Node,
        Policy,
        Version,
    )

    await asyncio.to_thread(command.downgrade, alembic_config(database_url), "0008")
    then = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as conn:
            nodes = [(1, None, "acct"), (2, 1, "acct/full"), (3, 1, "acct/empty")]
            nodes += [(10 + i, 2, f"acct/full/o{i}") for i in range(3)]
            await conn.execute(
                insert(Node), [{"id": i, "parent_id": p, "path": path} for i, p, path in nodes]
            )
            await conn.execute(
                insert(Policy),
                [{"node_id": n, "quota": 0, "versioning": "auto", "project": "p"} for n in (2, 3)],
            )
            versions = [  # node, size, cluster, minutes after ``then``
                (10, 5, HISTORY, 0),
                (10, 7, CURRENT, 1),
                (11, 11, CURRENT, 2),
                (12, 13, HISTORY, 3),
                (12, 0, DELETED, 4),
            ]
            await conn.execute(
                insert(Version),
                [
                    {
                        "node_id": node,
                        "size": size,
                        "type": "",
                        "hash": "0" * 64,
                        "checksum": "",
                        "map_name": "",
                        "uuid": uuid.uuid4(),
                        "mtime": then + dt.timedelta(minutes=minutes),
                        "muser": "",
                        "cluster": cluster,
                    }
                    for node, size, cluster, minutes in versions
                ],
            )
        migrated = utcnow().replace(microsecond=0)
        await upgrade_async(database_url)
        async with engine.connect() as conn:
            rows = (await conn.execute(select(ContainerStats.__table__))).all()
    finally:
        await engine.dispose()
    rows = sorted(tuple(row) for row in rows)
    assert rows[0] == (2, 2, 18, then + dt.timedelta(minutes=4))
    # The container never written to has its Last-Modified from 0011 on.
    assert rows[1][:3] == (3, 0, 0) and rows[1][3] >= migrated
    assert len(rows) == 2


async def test_paths_are_indexed_in_code_point_order(database_url: str):
    """Listings read the unique index of paths in order, in the order Swift lists names
    (code points): PostgreSQL's column must be in the C collation for that."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite compares text as bytes already")
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            collation = await conn.scalar(
                text(
                    "SELECT collation_name FROM information_schema.columns "
                    "WHERE table_name = 'pithos_nodes' AND column_name = 'path'"
                )
            )
            await conn.execute(text("SET enable_seqscan = off"))  # as if the table were big
            plan = "\n".join(
                await conn.scalars(
                    text(
                        "EXPLAIN SELECT path FROM pithos_nodes WHERE path >= 'a/b/' "
                        "AND path < 'a/b0' ORDER BY path LIMIT 10"
                    )
                )
            )
    finally:
        await engine.dispose()
    assert collation == "C"
    assert "Sort" not in plan  # read in order, not sorted


def test_records_are_built_from_the_version_fields_in_order():
    """ObjectRecord is filled positionally from a version row (``VERSION_FIELDS``)."""
    names = [f.name for f in dataclasses.fields(ObjectRecord)]
    assert names == ["account", "container", "name", *VERSION_FIELDS, "meta"]


async def test_small_object_requests_skip_sqlalchemys_execution_on_sqlite(
    ns: Namespace, account: str, monkeypatch: pytest.MonkeyPatch
):
    """Every statement of a small PUT, GET/HEAD and DELETE runs on the fast path of
    nefos.core.prepared (a statement that silently fell back would cost its 150 us)."""
    from nefos.quotas import service as quotas_service
    from nefos.storage import statements

    if not ns.db.url.startswith("sqlite"):
        pytest.skip("the fast path is SQLite's")
    # The statements built per count are kept per process: start from none, so what is
    # checked is what these requests built (not what another test built, and maybe ran
    # only on PostgreSQL, earlier in this process; under pytest-xdist that varies).
    monkeypatch.setattr(statements, "_GRANTS", {})
    monkeypatch.setattr(statements, "_CARRIED", {})
    await ns.create_container(account, "fast")
    await ns.put_object(account, "fast", "a", stream(b"one"), "text/plain", {"k": "v"})
    await ns.put_object(account, "fast", "a", stream(b"two"), "text/plain", {})
    await ns.get_object_shared(account, account, "fast", "a")
    await ns.delete_object(account, "fast", "a")
    hot = [
        statements.POLICY_LOCKED,
        statements.CURRENT_OF_PATH,
        statements.CURRENT_VERSION,
        *statements._GRANTS.values(),
        statements.NEW_NODE["sqlite"],
        statements.NEW_VERSION,
        statements.NEW_ATTRIBUTES,
        *statements._CARRIED.values(),
        statements.TO_HISTORY,
        quotas_service._TAKE_HOLDING,
        quotas_service._NEW_COMMISSION,
        quotas_service._NEW_LOG_ENTRIES,
    ]
    assert statements._GRANTS and statements._CARRIED  # these requests built some
    slow = [str(p.statement)[:60] for p in hot if not p._plans or None in p._plans.values()]
    assert slow == []


async def arriving(data: bytes) -> AsyncIterator[bytes]:
    """1 MiB at a time with pauses, as a network delivers it: each block is stored
    before the next is whole."""
    for start in range(0, len(data), 1 << 20):
        await asyncio.sleep(0.01)
        yield data[start : start + (1 << 20)]


async def test_bytes_stored_before_take_the_md5_of_their_copy(
    ns: Namespace, account: str, monkeypatch: pytest.MonkeyPatch
):
    """The same file uploaded again, under another name, costs no MD5 of its body: the
    stored copy's is its ETag (``nefos.storage.upload``)."""
    await ns.create_container(account, "c")
    data = os.urandom(3 * BLOCK_SIZE + 10)
    first = await ns.put_object(account, "c", "one", arriving(data))
    fed: list[int] = []
    after = upload._after

    async def counted(previous, digest, piece):  # type: ignore[no-untyped-def]
        fed.append(len(piece))
        await after(previous, digest, piece)

    monkeypatch.setattr(upload, "_after", counted)
    again = await ns.put_object(
        account, "c", "two", arriving(data), etag=first.checksum, size_hint=len(data)
    )
    assert again.checksum == first.checksum == hashlib.md5(data).hexdigest()
    assert sum(fed) <= 2 * BLOCK_SIZE  # a block or two before the body was seen to repeat
    assert await body(ns, again) == data
    changed = data[:-1] + b"!"  # the last block is new: the MD5 catches up
    third = await ns.put_object(account, "c", "three", arriving(changed))
    assert third.checksum == hashlib.md5(changed).hexdigest()


@pytest.mark.parametrize("question", ["COPY_OF_SIZE", "COPY_MD5"])
async def test_stored_copies_are_found_through_their_partial_index(
    database_url: str, question: str
):
    """Asked as the service asks, with bound parameters: read from the partial index of
    versions of more than one block, never by scanning every version."""
    from sqlalchemy.ext.asyncio import create_async_engine

    from nefos.storage import statements

    engine = create_async_engine(database_url)
    statement = getattr(statements, question).statement
    query = statement.params(hash="0" * 64, size=2 * BLOCK_SIZE)
    try:
        async with engine.connect() as conn:
            compiled = query.compile(dialect=conn.dialect)
            args = tuple(compiled.params[name] for name in compiled.positiontup or ())
            if database_url.startswith("postgresql"):
                await conn.exec_driver_sql("SET enable_seqscan = off")  # as if it were big
                rows = await conn.exec_driver_sql(f"EXPLAIN {compiled}", args)
            else:
                rows = await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", args)
            plan = "\n".join(str(row[-1]) for row in rows)
    finally:
        await engine.dispose()
    assert "ix_pithos_versions_content" in plan
