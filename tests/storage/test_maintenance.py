"""fsck and gc on both block stores and both databases, and ``nefos storage`` itself."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from nefos import blocks
from nefos.blocks import BLOCK_SIZE, EMPTY_HASH
from nefos.core import errors
from nefos.core.claims import PeriodicClaim
from nefos.core.config import Settings
from nefos.core.db import utcnow
from nefos.quotas.service import project_holder, user_holder
from nefos.server.app import create_app
from nefos.server.engines import Engines
from nefos.storage import maintenance
from nefos.storage.filestore import HELD, FileStore
from nefos.storage.maintenance import fsck, gc
from nefos.storage.models import HISTORY, Node, PendingBlock, Version
from nefos.storage.service import Namespace, ObjectRecord
from nefos.storage.stores import BlockStore, Kind
from tests.conftest import run_nefos

STORES = ["file", "rados"]
HOUR = dt.timedelta(hours=1)
ZERO = dt.timedelta(0)


@pytest.fixture(params=STORES)
async def ns(
    request: pytest.FixtureRequest, engines: Engines, settings: Settings
) -> AsyncIterator[Namespace]:
    """The namespace over each store: the deployment's own file store, or a RADOS pool."""
    if request.param == "file":
        yield engines.storage
        return
    store = await request.getfixturevalue("rados_store_factory")()
    yield Namespace(engines.db, settings, store, engines.quotas)
    await store.close()


@pytest.fixture
async def account(engines: Engines) -> str:
    user, _ = await engines.identity.create_user(f"m-{uuid.uuid4().hex[:6]}@example.org")
    return str(user.id)


async def stream(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), 1 << 20):
        yield data[start : start + (1 << 20)]


async def body(ns: Namespace, record: ObjectRecord) -> bytes:
    return b"".join([chunk async for chunk in ns.read(record)])


async def backdate(store: BlockStore, kind: Kind, names: list[str], seconds: float) -> None:
    """Make objects look last put ``seconds`` ago, as time would."""
    when = time.time() - seconds
    if isinstance(store, FileStore):
        where = store._block_path if kind == "block" else store._map_path
        for name in names:
            await asyncio.to_thread(os.utime, where(name), (when, when))
        return
    from nefos.storage.rados import BLOCK_PREFIX, MAP_PREFIX

    io = store._io()
    for name in names:
        op = io.create_write_op()
        op.set_xattr("nefos.put", b"")
        key = (BLOCK_PREFIX if kind == "block" else MAP_PREFIX) + name
        await asyncio.to_thread(io.operate_write_op, op, key, int(when))
        io.release_write_op(op)


async def age_everything(store: BlockStore, seconds: float = 2 * 3600) -> None:
    await backdate(store, "block", await store.block_names(), seconds)
    await backdate(store, "map", await store.map_names(), seconds)


async def corrupt(store: BlockStore, name: str) -> None:
    """Change a block's bytes behind the store's back (bit rot, a bad disk)."""
    if isinstance(store, FileStore):
        await asyncio.to_thread(store._block_path(name).write_bytes, b"rotten")
        return
    from nefos.storage.rados import BLOCK_PREFIX

    await asyncio.to_thread(store._io().write_full, BLOCK_PREFIX + name, b"rotten")


async def crashed_upload(store: BlockStore, data: bytes) -> tuple[list[str], str]:
    """What a writer killed before its commit leaves: blocks and a map, no version."""
    hashes = await store.put_blocks([bytes(b) for b in blocks.split(data)])
    name = secrets.token_hex(16)
    await store.put_map(name, hashes)
    return [h for h in hashes if h != EMPTY_HASH], name


def kinds(report: maintenance.FsckReport) -> set[tuple[int, str, str]]:
    return {(p.serial, p.path, p.kind) for p in report.problems}


# 3 blocks stored (a full one, one with trailing zeros, a short tail) and a zero block
DATA = (
    os.urandom(BLOCK_SIZE)
    + bytes(BLOCK_SIZE)
    + os.urandom(1000)
    + bytes(BLOCK_SIZE - 1000)
    + b"tail"
)


# -- fsck ----------------------------------------------------------------------------------


async def test_a_sound_namespace_checks_clean(ns: Namespace, account: str):
    await ns.create_container(account, "c")
    big = await ns.put_object(account, "c", "big", stream(DATA))
    await ns.put_object(account, "c", "empty", stream(b""))
    await ns.put_object(account, "c", "o", stream(b"first"))
    await ns.put_object(account, "c", "o", stream(b"second"))  # the first goes to history
    await ns.copy_object(account, "c", "big", "c", "copy")  # shares the map
    await ns.delete_object(account, "c", "empty")  # a deleted marker has no map
    # the versions of one block at most (empty, first, second) have none either
    assert await ns.store.map_names() == [big.map_name]

    for deep in (False, True):
        report = await fsck(ns.db, ns.store, deep=deep)
        assert report.clean, report.problems
        # big and copy (one map); empty and first (history); second; not the marker
        assert (report.versions, report.maps, report.blocks) == (5, 1, 5)
        assert report.orphan_maps == [] and report.orphan_blocks == []
    await age_everything(ns.store)
    cleaned = await gc(ns.db, ns.store, grace=ZERO)
    assert (cleaned.maps, cleaned.blocks, cleaned.stopped) == ([], [], "")


async def test_a_lost_block_is_reported_with_every_version_using_it(ns: Namespace, account: str):
    await ns.create_container(account, "c")
    big = await ns.put_object(account, "c", "big", stream(DATA))
    old = await ns.put_object(account, "c", "o", stream(DATA[:BLOCK_SIZE]))  # shares block 0
    unrelated = os.urandom(BLOCK_SIZE) + b"unrelated"
    new = await ns.put_object(account, "c", "o", stream(unrelated))
    lost = blocks.hashmap(DATA)[0]
    await ns.store.delete_blocks([lost])

    report = await fsck(ns.db, ns.store)
    assert kinds(report) == {
        (big.serial, f"{account}/c/big", "blocks-missing"),
        (old.serial, f"{account}/c/o", "blocks-missing"),
    }
    assert all(p.blocks == (lost,) for p in report.problems)
    assert new.serial not in {p.serial for p in report.problems}

    await ns.store.delete_map(new.map_name)
    report = await fsck(ns.db, ns.store)
    assert (new.serial, f"{account}/c/o", "map-missing") in kinds(report)
    # the unreadable map's blocks are referenced by nothing known, so they show as orphans
    assert sorted(report.orphan_blocks) == sorted(blocks.hashmap(unrelated))


async def test_a_rotten_block_takes_a_deep_check(ns: Namespace, account: str):
    await ns.create_container(account, "c")
    record = await ns.put_object(account, "c", "big", stream(DATA))
    rotten = blocks.hashmap(DATA)[2]
    await corrupt(ns.store, rotten)

    assert (await fsck(ns.db, ns.store)).clean  # the block is there
    (problem,) = (await fsck(ns.db, ns.store, deep=True)).problems
    assert (problem.serial, problem.kind, problem.blocks) == (
        record.serial,
        "blocks-corrupt",
        (rotten,),
    )


async def test_a_version_that_disagrees_with_its_map(ns: Namespace, account: str, engines: Engines):
    await ns.create_container(account, "c")
    record = await ns.put_object(account, "c", "big", stream(DATA))
    async with engines.db.transaction() as s:
        await s.execute(
            update(Version)
            .where(Version.serial == record.serial)
            .values(size=BLOCK_SIZE, hash=blocks.EMPTY_HASH)
        )
    assert {p.kind for p in (await fsck(ns.db, ns.store)).problems} == {"size", "hash"}


# -- gc ----------------------------------------------------------------------------------------


async def test_a_crashed_upload_is_collected_once_old(ns: Namespace, account: str):
    await ns.create_container(account, "c")
    kept = await ns.put_object(account, "c", "kept", stream(DATA))
    leftover = os.urandom(BLOCK_SIZE) + b"half an upload"
    garbage, map_name = await crashed_upload(ns.store, leftover)
    report = await fsck(ns.db, ns.store)
    assert report.clean
    assert report.orphan_maps == [map_name]
    assert sorted(report.orphan_blocks) == sorted(garbage)

    young = await gc(ns.db, ns.store)  # the default hour: it may be an upload in flight
    assert (young.maps, young.blocks) == ([], [])
    assert (young.maps_kept, young.blocks_kept) == (1, 2)

    await backdate(ns.store, "map", [map_name], 10)
    await backdate(ns.store, "block", garbage, 10)
    assert (await gc(ns.db, ns.store, grace=HOUR)).maps == []
    dry = await gc(ns.db, ns.store, grace=ZERO, dry_run=True)
    assert (dry.maps, sorted(dry.blocks)) == ([map_name], sorted(garbage))
    assert (await fsck(ns.db, ns.store)).orphan_maps == [map_name]  # nothing deleted

    done = await gc(ns.db, ns.store, grace=ZERO)
    assert (done.maps, sorted(done.blocks)) == ([map_name], sorted(garbage))
    assert await ns.store.map_names() == [kept.map_name]
    assert await ns.store.missing(garbage) == garbage
    report = await fsck(ns.db, ns.store, deep=True)
    assert report.clean and report.orphan_maps == [] and report.orphan_blocks == []
    assert await body(ns, await ns.get_object(account, "c", "kept")) == DATA


async def test_history_keeps_its_blocks(ns: Namespace, account: str):
    await ns.create_container(account, "c")
    first = await ns.put_object(account, "c", "o", stream(DATA))
    await ns.put_object(account, "c", "o", stream(b"second"))
    await ns.delete_object(account, "c", "o")
    await age_everything(ns.store)
    report = await gc(ns.db, ns.store, grace=ZERO)
    assert (report.maps, report.blocks) == ([], [])
    assert await body(ns, await ns.get_object(account, "c", "o", first.serial)) == DATA


async def test_shared_blocks_outlive_an_unversioned_delete(ns: Namespace, account: str):
    await ns.create_container(account, "c", {"versioning": "none"})
    shared, only_a, only_b = (os.urandom(BLOCK_SIZE) for _ in range(3))
    a = await ns.put_object(account, "c", "a", stream(shared + only_a))
    b = await ns.put_object(account, "c", "b", stream(shared + only_b))
    await ns.delete_object(account, "c", "a")
    with pytest.raises(errors.NotFound):
        await ns.versions(account, "c", "a")  # nothing keeps a's map any more
    await age_everything(ns.store)

    report = await gc(ns.db, ns.store, grace=ZERO)
    assert (report.maps, report.blocks) == ([a.map_name], [blocks.block_hash(only_a)])
    assert sorted(await ns.store.block_names()) == sorted(
        blocks.block_hash(x) for x in (shared, only_b)
    )
    assert await body(ns, await ns.get_object(account, "c", "b")) == shared + only_b
    after = await fsck(ns.db, ns.store, deep=True)
    assert after.clean and after.orphan_maps == [] and after.orphan_blocks == []
    assert b.map_name in await ns.store.map_names()


async def test_a_block_an_upload_finds_stored_is_young_again(ns: Namespace):
    """A streaming upload deduplicates against an old orphan: its put refreshes it, so gc
    keeps it until the upload commits (or for the grace period)."""
    garbage, map_name = await crashed_upload(ns.store, b"old orphan")
    await age_everything(ns.store)
    await ns.store.put_blocks([b"old orphan"])  # an upload of the same bytes, mid-stream
    report = await gc(ns.db, ns.store)
    assert (report.maps, report.blocks) == ([map_name], [])
    assert await ns.store.missing(garbage) == []


async def test_missing_with_touch_refreshes_what_it_finds(ns: Namespace):
    (name,) = await ns.store.put_blocks([b"for a hashmap put"])
    await age_everything(ns.store)
    absent = blocks.block_hash(b"not stored")
    assert await ns.store.missing([name, absent]) == [absent]  # a plain look
    assert await ns.store.collect("block", [name], utcnow() - HOUR, dry_run=True) == [name]
    assert await ns.store.missing([name, absent, EMPTY_HASH], touch=True) == [absent]
    assert await ns.store.collect("block", [name], utcnow() - HOUR) == []
    assert await ns.store.missing([absent], touch=True) == [absent]
    assert await ns.store.block_names() == [name]  # a touch creates nothing


async def test_a_young_map_keeps_its_old_blocks(ns: Namespace):
    """A hashmap PUT between storing its map and committing: the map is young and its
    blocks, found already stored, are old."""
    (old,) = await ns.store.put_blocks([b"deduplicated"])
    await age_everything(ns.store)
    in_flight = secrets.token_hex(16)
    await ns.store.put_map(in_flight, [old])
    report = await gc(ns.db, ns.store)
    assert (report.maps, report.blocks, report.maps_kept, report.blocks_kept) == ([], [], 1, 1)
    assert await ns.store.missing([old]) == []


async def adopt(engines: Engines, account: str, map_name: str, hashes: list[str]) -> None:
    """Commit a (history) version on ``map_name``, as a racing writer would."""
    async with engines.db.transaction() as s:
        node = await s.scalar(select(Node).where(Node.path == f"{account}/c/o"))
        assert node is not None
        s.add(
            Version(
                node_id=node.id,
                size=len(hashes) * BLOCK_SIZE,
                hash=blocks.merkle(hashes),
                map_name=map_name,
                uuid=uuid.uuid4(),
                cluster=HISTORY,
            )
        )


async def test_gc_looks_again_before_deleting_maps(
    ns: Namespace, account: str, engines: Engines, monkeypatch: pytest.MonkeyPatch
):
    """A copy that adopts an orphan map after gc read the references keeps it whole."""
    await ns.create_container(account, "c")
    await ns.put_object(account, "c", "o", stream(b"o"))
    data = os.urandom(BLOCK_SIZE)
    garbage, map_name = await crashed_upload(ns.store, data)
    await age_everything(ns.store)
    original = maintenance._all_referenced

    async def then_adopt(db: Any) -> set[str]:
        found = await original(db)
        monkeypatch.setattr(maintenance, "_all_referenced", original)
        await adopt(engines, account, map_name, garbage)
        return found

    monkeypatch.setattr(maintenance, "_all_referenced", then_adopt)
    report = await gc(ns.db, ns.store, grace=ZERO)
    assert (report.maps, report.blocks) == ([], [])
    assert (await fsck(ns.db, ns.store, deep=True)).clean


async def test_gc_looks_again_before_deleting_blocks(
    ns: Namespace, account: str, engines: Engines, monkeypatch: pytest.MonkeyPatch
):
    """A version committed mid-gc on a new map over an old, untouched orphan block (a
    hashmap PUT racing gc) keeps that block."""
    await ns.create_container(account, "c")
    await ns.put_object(account, "c", "o", stream(DATA))  # a map for gc to read
    (orphan,) = await ns.store.put_blocks([os.urandom(BLOCK_SIZE)])
    await age_everything(ns.store)
    store: Any = ns.store
    original = store.get_map

    async def commit_first(name: str) -> list[str]:
        monkeypatch.setattr(store, "get_map", original)
        racing = secrets.token_hex(16)
        await store.put_map(racing, [orphan])
        await adopt(engines, account, racing, [orphan])
        return await original(name)

    monkeypatch.setattr(store, "get_map", commit_first)
    report = await gc(ns.db, ns.store, grace=ZERO)
    assert report.blocks == []
    assert await ns.store.missing([orphan]) == []


async def test_gc_looks_again_for_one_block_versions(
    ns: Namespace, account: str, engines: Engines, monkeypatch: pytest.MonkeyPatch
):
    """A one-block version committed mid-gc over an old, untouched orphan block (a
    hashmap PUT of one hash racing gc) keeps that block."""
    await ns.create_container(account, "c")
    await ns.put_object(account, "c", "o", stream(b"o"))
    (orphan,) = await ns.store.put_blocks([b"an orphan block"])
    await age_everything(ns.store)
    original = maintenance._one_block_hashes

    async def then_commit(db: Any, among: Any = None) -> set[str]:
        found = await original(db, among)
        monkeypatch.setattr(maintenance, "_one_block_hashes", original)
        await adopt(engines, account, "", [orphan])
        return found

    monkeypatch.setattr(maintenance, "_one_block_hashes", then_commit)
    report = await gc(ns.db, ns.store, grace=ZERO)
    assert report.blocks == []
    assert await ns.store.missing([orphan]) == []
    assert (await fsck(ns.db, ns.store, deep=True)).clean


async def test_gc_keeps_what_readers_outside_the_namespace_pin(ns: Namespace, account: str):
    """A map and a one-block version's block that no version references any more, but
    that a pin names (a server's build reading the image it was created from), stay;
    once the pins are gone, gc takes them."""
    await ns.create_container(account, "c", {"versioning": "none"})
    big = await ns.put_object(account, "c", "big", stream(DATA))
    small = await ns.put_object(account, "c", "small", stream(b"one block"))
    await ns.delete_object(account, "c", "big")
    await ns.delete_object(account, "c", "small")
    await age_everything(ns.store)
    pins = ({big.map_name}, {small.hash})
    asked: list[int] = []

    async def pinned() -> tuple[set[str], set[str]]:
        asked.append(1)
        return pins

    report = await gc(ns.db, ns.store, grace=ZERO, pinned=pinned)
    assert (report.maps, report.blocks) == ([], []) and asked
    assert await ns.store.get_map(big.map_name) == blocks.hashmap(DATA)
    assert await ns.store.missing([*blocks.hashmap(DATA), small.hash]) == []
    pins = (set(), set())
    report = await gc(ns.db, ns.store, grace=ZERO, pinned=pinned)
    assert report.maps == [big.map_name]
    assert sorted(report.blocks) == sorted(
        {h for h in blocks.hashmap(DATA) if h != EMPTY_HASH} | {small.hash}
    )


async def test_a_one_block_version_names_its_block_without_a_map(ns: Namespace, account: str):
    """A version of one block stores no map (its hash is its map): fsck checks its block,
    and gc keeps that block while a version names it and takes it after."""
    await ns.create_container(account, "c", {"versioning": "none"})
    small = os.urandom(1000)
    record = await ns.put_object(account, "c", "small", stream(small))
    (block,) = blocks.hashmap(small)
    assert (record.map_name, record.hash) == ("", block)
    assert await ns.store.map_names() == []
    assert await ns.hashmap(record) == [block]
    await age_everything(ns.store)

    report = await fsck(ns.db, ns.store, deep=True)
    assert report.clean and (report.versions, report.maps, report.blocks) == (1, 0, 1)
    assert report.orphan_blocks == []
    assert (await gc(ns.db, ns.store, grace=ZERO)).blocks == []
    assert await body(ns, record) == small

    await corrupt(ns.store, block)
    (problem,) = (await fsck(ns.db, ns.store, deep=True)).problems
    assert (problem.serial, problem.kind, problem.blocks) == (
        record.serial,
        "blocks-corrupt",
        (block,),
    )
    await ns.store.delete_blocks([block])
    (problem,) = (await fsck(ns.db, ns.store)).problems
    assert (problem.serial, problem.kind) == (record.serial, "blocks-missing")

    await ns.put_object(account, "c", "small", stream(small))  # stores the block again
    await ns.delete_object(account, "c", "small")  # versioning none: nothing names it now
    await age_everything(ns.store)
    assert (await fsck(ns.db, ns.store)).orphan_blocks == [block]
    assert (await gc(ns.db, ns.store, grace=ZERO)).blocks == [block]


async def test_gc_leaves_blocks_alone_when_a_referenced_map_is_lost(ns: Namespace, account: str):
    await ns.create_container(account, "c")
    data = os.urandom(BLOCK_SIZE) + b"its blocks"
    record = await ns.put_object(account, "c", "o", stream(data))
    garbage, map_name = await crashed_upload(ns.store, b"garbage")
    await ns.store.delete_map(record.map_name)
    await age_everything(ns.store)
    report = await gc(ns.db, ns.store, grace=ZERO)
    assert report.maps == [map_name]  # maps are judged by the database alone
    assert report.blocks == [] and record.map_name in report.stopped
    assert await ns.store.missing([*garbage, *blocks.hashmap(data)]) == []


# -- blocks uploaded on their own (nefos.storage.pending) --------------------------------------


async def charged(engines: Engines, account: str) -> int:
    """The account's pithos.diskspace usage in its own project."""
    (held,) = [
        h.usage_max
        for h in await engines.quotas.holdings([user_holder(account)])
        if h.resource == "pithos.diskspace" and h.source == project_holder(account)
    ]
    return held


async def pending_blocks(engines: Engines) -> dict[tuple[str, str], int]:
    async with engines.db.session() as s:
        rows = await s.execute(select(PendingBlock.account, PendingBlock.hash, PendingBlock.size))
        return {(account, name): size for account, name, size in rows}


async def backdate_uploads(engines: Engines, seconds: float) -> None:
    async with engines.db.transaction() as s:
        when = utcnow() - dt.timedelta(seconds=seconds)
        await s.execute(update(PendingBlock).values(uploaded_at=when))


async def test_gc_collects_unused_uploads_and_frees_their_charge(
    ns: Namespace, account: str, engines: Engines
):
    """A: posted and never used; B: used by the account's hashmap PUT; C: used by
    another account's version; D: unused but touched since (a hashmap PUT that failed)."""
    ns.settings.storage.hashmap_reuse = "any"  # C: Synnefo's reuse of any stored block
    other = (await engines.identity.create_user("other@example.org"))[0].id
    for owner in (account, str(other)):
        await ns.create_container(owner, "c")
    a, b, c, d = (os.urandom(1000) + b"!" for _ in range(4))
    for data in (a, b, c, d):
        assert await ns.upload_blocks(account, account, "c", stream(data)) == [
            blocks.block_hash(data)
        ]
    assert await charged(engines, account) == 4 * 1001
    await ns.put_hashmap(account, "c", "b", 1001, [blocks.block_hash(b)])
    await ns.put_hashmap(str(other), "c", "c", 1001, [blocks.block_hash(c)])
    assert await charged(engines, account) == 4 * 1001  # B as a version, no longer pending
    assert set(await pending_blocks(engines)) == {
        (account, blocks.block_hash(x)) for x in (a, c, d)
    }
    await age_everything(ns.store)
    await backdate_uploads(engines, 2 * 3600)
    await ns.store.missing([blocks.block_hash(d)], touch=True)

    dry = await gc(ns.db, ns.store, grace=HOUR, dry_run=True, quotas=engines.quotas)
    assert (dry.blocks, dry.uploads) == ([blocks.block_hash(a)], 2)
    assert await charged(engines, account) == 4 * 1001 and len(await pending_blocks(engines)) == 3

    done = await gc(ns.db, ns.store, grace=HOUR, quotas=engines.quotas)
    assert (done.blocks, done.uploads) == ([blocks.block_hash(a)], 2)
    assert await ns.store.missing([blocks.block_hash(x) for x in (a, b, c, d)]) == [
        blocks.block_hash(a)
    ]
    assert await pending_blocks(engines) == {(account, blocks.block_hash(d)): 1001}
    assert await charged(engines, account) == 2 * 1001  # B's version and D, still stored

    await age_everything(ns.store)
    last = await gc(ns.db, ns.store, grace=HOUR, quotas=engines.quotas)
    assert (last.blocks, last.uploads) == ([blocks.block_hash(d)], 1)
    assert await pending_blocks(engines) == {}
    assert await charged(engines, account) == 1001
    assert await body(ns, await ns.get_object(str(other), "c", "c")) == c


async def test_gc_keeps_the_charge_of_a_block_posted_again(ns: Namespace, account: str, engines):
    """Posted again after gc's cutoff, a block is an upload in flight: its row stays,
    even if gc had decided to collect the old copy (the post stores it again)."""
    await ns.create_container(account, "c")
    data = os.urandom(1000) + b"!"
    await ns.upload_blocks(account, account, "c", stream(data))
    await age_everything(ns.store)
    await backdate_uploads(engines, 2 * 3600)
    assert await ns.upload_blocks(account, account, "c", stream(data)) == [blocks.block_hash(data)]
    await age_everything(ns.store)  # as if gc listed it old just before the post
    report = await gc(ns.db, ns.store, grace=HOUR, quotas=engines.quotas)
    assert (report.blocks, report.uploads) == ([blocks.block_hash(data)], 0)
    assert await charged(engines, account) == 1001  # charged once, still
    assert await ns.upload_blocks(account, account, "c", stream(data)) == [blocks.block_hash(data)]
    assert await ns.store.missing([blocks.block_hash(data)]) == []
    assert await charged(engines, account) == 1001


async def test_the_server_collects_garbage_in_the_background(
    engines: Engines, settings: Settings, account: str
):
    """The app's lifespan (what ``nefos up`` and ``nefos serve`` run) starts the loop:
    here on real engines, with a short interval and no grace period."""
    settings.storage.gc_seconds = 0.1
    settings.storage.gc_grace_seconds = 0
    ns = engines.storage
    await ns.create_container(account, "c")
    data = os.urandom(1000) + b"!"
    name = blocks.block_hash(data)
    await ns.upload_blocks(account, account, "c", stream(data))
    assert await charged(engines, account) == 1001
    server = Engines(settings)  # the server process's own, closed by its lifespan
    app = create_app(settings, server)
    async with app.router.lifespan_context(app):
        deadline = time.monotonic() + 10
        while await ns.store.missing([name]) != [name] or await charged(engines, account):
            assert time.monotonic() < deadline, "the collector never ran"
            await asyncio.sleep(0.05)
    assert await pending_blocks(engines) == {}


async def test_one_process_collects_per_interval(engines: Engines, settings: Settings):
    """Every API process runs the loop; the run is claimed in the database, so one of
    them does the work per interval."""
    twin = Engines(settings)  # another process of the deployment, on the same database
    try:
        first, second = await asyncio.gather(engines.collect(), twin.collect())
        assert [r is None for r in (first, second)].count(True) == 1
        assert await engines.collect() is None and await twin.collect() is None
        async with engines.db.transaction() as s:  # the interval passes, as time would
            await s.execute(update(PeriodicClaim).values(next_at=utcnow()))
        assert (await twin.collect()) is not None
        assert await engines.collect() is None
    finally:
        await twin.db.close()


# -- the stores' collect ----------------------------------------------------------------------


async def test_collect_deletes_only_what_is_old(ns: Namespace):
    store = ns.store
    old, young = await store.put_blocks([b"old", b"young"])
    await store.put_map("old-map", [old])
    await store.put_map("young-map", [young])
    await backdate(store, "block", [old], 60)
    await backdate(store, "map", ["old-map"], 60)
    before = utcnow() - dt.timedelta(seconds=30)
    absent = blocks.block_hash(b"absent")
    names = [old, young, absent, EMPTY_HASH]
    assert await store.collect("block", names, before, dry_run=True) == [old]
    assert await store.missing([old, young]) == []
    assert await store.collect("block", names, before) == [old]
    assert await store.block_names() == [young]
    assert await store.collect("map", ["old-map", "young-map", "nope"], before) == ["old-map"]
    assert await store.map_names() == ["young-map"]


async def test_collect_keeps_a_block_a_writer_touches_as_it_decides(
    ns: Namespace, monkeypatch: pytest.MonkeyPatch
):
    """A writer finds the block stored (and so touches it) after collect has read its age
    and before it deletes: the block stays."""
    store: Any = ns.store
    (name,) = await store.put_blocks([b"raced"])
    await backdate(store, "block", [name], 60)
    raced: list[bool] = []

    def writer_first(original: Any) -> Any:
        def hooked(*args: Any) -> Any:
            if not raced:
                raced.append(True)
                store._put_blocks([b"raced"])  # the writer's own code, in collect's thread
            return original(*args)

        return staticmethod(hooked)

    if isinstance(store, FileStore):  # between the age check and the rename
        monkeypatch.setattr(FileStore, "_held", writer_first(FileStore._held))
    else:  # between the stat and the conditional remove
        from nefos.storage.rados import RadosStore

        monkeypatch.setattr(RadosStore, "_operate", writer_first(RadosStore._operate))
    assert await store.collect("block", [name], utcnow() - dt.timedelta(seconds=30)) == []
    assert raced and await store.get_blocks([name]) == [b"raced"]


async def test_a_file_held_by_a_killed_collect_is_put_back(tmp_path: Path):
    store = FileStore(tmp_path)
    (name,) = await store.put_blocks([b"held"])
    path = store._block_path(name)
    held = path.with_name(f".{path.name}{HELD}")
    os.rename(path, held)  # killed between its rename and its second look
    assert await store.block_names() == []
    assert await store.collect("block", [], utcnow()) == []
    assert await store.block_names() == [name] and not held.exists()
    assert await store.get_blocks([name]) == [b"held"]


# -- nefos storage ----------------------------------------------------------------------------


async def test_the_commands(settings: Settings, engines: Engines, account: str):
    ns = engines.storage
    await ns.create_container(account, "c")
    record = await ns.put_object(account, "c", "o", stream(DATA))
    garbage, map_name = await crashed_upload(ns.store, b"crashed")

    run = run_nefos
    checked = json.loads((await run(settings, "storage", "fsck", "--json")).stdout)
    assert checked["clean"] and checked["versions"] == 1 and checked["blocks"] == 3
    assert (checked["orphan_maps"], checked["orphan_blocks"]) == ([map_name], garbage)

    kept = json.loads((await run(settings, "storage", "gc", "--json")).stdout)
    assert (kept["maps"], kept["blocks"], kept["maps_kept"], kept["grace"]) == ([], [], 1, 3600)
    dry = await run(settings, "storage", "gc", "--grace", "0", "--dry-run")
    assert "would delete 1 maps and 1 blocks" in dry.stdout
    done = json.loads((await run(settings, "storage", "gc", "--grace", "0", "--json")).stdout)
    assert (done["maps"], done["blocks"], done["dry_run"]) == ([map_name], garbage, False)
    assert await ns.store.map_names() == [record.map_name]
    (posted,) = await ns.upload_blocks(account, account, "c", stream(b"posted, never used"))
    freed = await run(settings, "storage", "gc", "--grace", "0")
    assert "deleted 0 maps and 1 blocks" in freed.stdout
    assert "released the charge of 1 uploaded blocks" in freed.stdout
    assert await ns.store.missing([posted]) == [posted]

    text = await run(settings, "storage", "fsck", "--deep")
    assert "checked 1 versions, 1 maps, 3 blocks" in text.stdout and "no problems" in text.stdout
    await corrupt(ns.store, blocks.hashmap(DATA)[0])
    await ns.store.delete_blocks([blocks.hashmap(DATA)[2]])
    bad = await run(settings, "storage", "fsck", "--deep", check=False)
    assert bad.returncode == 1, bad.stderr
    assert f"{account}/c/o" in bad.stdout and "blocks-missing" in bad.stdout
    assert "blocks-corrupt" in bad.stdout and "2 problems" in bad.stderr
    assert (await run(settings, "storage", "gc", "--grace", "-1", check=False)).returncode == 2
