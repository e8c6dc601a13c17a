"""Volumes as maps over the block store (issue 22, item 1): reads and writes across
block edges, copy-on-write over images, clones that share blocks, snapshots that are
images, quotas, and the block collector and fsck seeing volume maps. File store, on
SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import uuid
from collections.abc import AsyncIterator

import pytest

from nefos import blocks
from nefos.blocks import BLOCK_SIZE, EMPTY_HASH
from nefos.core import errors
from nefos.core.config import Settings
from nefos.core.faults import status_of
from nefos.images.service import Image
from nefos.quotas.service import user_holder
from nefos.server.engines import Engines
from nefos.storage.maintenance import fsck, gc
from nefos.volume.service import Volumes
from tests.conftest import invoke_nefos

MiB = 1 << 20
ZERO = dt.timedelta(0)


async def stream(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), MiB):
        yield data[start : start + MiB]


async def new_user(engines: Engines) -> str:
    user, _ = await engines.identity.create_user(f"v-{uuid.uuid4().hex[:8]}@example.org")
    return str(user.id)


async def make_image(engines: Engines, owner: str, data: bytes, name: str = "disk.img") -> Image:
    await engines.storage.create_container(owner, "images")
    await engines.storage.put_object(owner, "images", name, stream(data))
    return await engines.images.register(owner, f"pithos://{owner}/images/{name}", name)


async def image_bytes(engines: Engines, image: Image) -> bytes:
    record = await engines.storage.get_object(image.owner, image.container, image.path)
    return b"".join([chunk async for chunk in engines.storage.read(record)])


def stored_blocks(engines: Engines) -> set[str]:
    root = engines.store.blocks  # the file store's directory of blocks
    return {p.name for p in root.glob("*/*/*") if not p.name.startswith(".")}


async def disk_usage(engines: Engines, user: str) -> int:
    (holding,) = [
        h
        for h in await engines.quotas.holdings([user_holder(user)])
        if h.resource == "cyclades.disk"
    ]
    return holding.usage_max


async def test_reads_and_writes_round_trip_across_block_edges(volumes: Volumes, user: str):
    size = 3 * BLOCK_SIZE + 12345  # a short last block
    volume = await volumes.create(user, size, name="scratch")
    assert await volumes.read(user, volume.id, 0, 4096) == bytes(4096)
    assert await volumes.entries(user, volume.id) == {}  # zeros cost no block
    model = bytearray(size)
    writes = [
        (BLOCK_SIZE - 10, os.urandom(20)),  # across the first edge
        (0, os.urandom(BLOCK_SIZE)),  # one whole block
        (BLOCK_SIZE + 100, os.urandom(2 * BLOCK_SIZE)),  # spans three blocks
        (size - 7, os.urandom(7)),  # the very last bytes
        (5, b""),  # nothing
    ]
    for offset, data in writes:
        await volumes.write(user, volume.id, offset, data)
        model[offset : offset + len(data)] = data
    assert await volumes.read(user, volume.id, 0, size) == bytes(model)
    for offset, length in ((BLOCK_SIZE - 3, 9), (2 * BLOCK_SIZE - 1, 2), (size - 1, 1), (7, 0)):
        assert (
            await volumes.read(user, volume.id, offset, length) == model[offset : offset + length]
        )
    entries = await volumes.entries(user, volume.id)
    assert sorted(entries) == [0, 1, 2, 3]
    assert all(owned for _, owned in entries.values())
    # Writing zeros over a whole block frees its entry: zeros are never stored.
    await volumes.write(user, volume.id, 0, bytes(BLOCK_SIZE))
    assert 0 not in await volumes.entries(user, volume.id)
    await volumes.flush(user, volume.id)


async def test_writes_to_an_image_clone_copy_up_and_leave_the_image_alone(
    engines: Engines, volumes: Volumes, user: str
):
    data = os.urandom(2 * BLOCK_SIZE + 500)
    image = await make_image(engines, user, data)
    before = stored_blocks(engines)
    volume = await volumes.create_from_image(user, image.id, size=4 * BLOCK_SIZE)
    assert stored_blocks(engines) == before  # the map is the image's: nothing copied
    shared = await volumes.entries(user, volume.id)
    record = await engines.storage.get_object(user, "images", "disk.img")
    hashmap = await engines.storage.hashmap(record)
    assert {p: h for p, (h, _) in shared.items()} == dict(enumerate(hashmap))
    assert not any(owned for _, owned in shared.values())
    assert await volumes.read(user, volume.id, 0, len(data)) == data
    assert await volumes.read(user, volume.id, len(data), 100) == bytes(100)

    await volumes.write(user, volume.id, BLOCK_SIZE + 1, b"patched")
    after = await volumes.entries(user, volume.id)
    assert after[1][1] and after[1][0] != hashmap[1]  # copied up into a block of its own
    assert after[0] == (hashmap[0], False) and after[2] == (hashmap[2], False)
    expected = bytearray(data)
    expected[BLOCK_SIZE + 1 : BLOCK_SIZE + 8] = b"patched"
    assert await volumes.read(user, volume.id, 0, len(data)) == bytes(expected)
    assert await image_bytes(engines, image) == data  # the image still reads its bytes
    assert len(stored_blocks(engines) - before) == 1


async def test_ten_clones_of_an_image_share_its_blocks(
    engines: Engines, volumes: Volumes, user: str
):
    data = os.urandom(3 * BLOCK_SIZE)
    image = await make_image(engines, user, data)
    image_blocks = stored_blocks(engines)
    assert len(image_blocks) == 3
    clones = [await volumes.create_from_image(user, image.id) for _ in range(10)]
    for number, volume in enumerate(clones):
        await volumes.write(user, volume.id, number * 1000, f"clone {number}".encode())
    # one image plus one written delta per clone
    assert len(stored_blocks(engines)) == len(image_blocks) + 10
    for number, volume in enumerate(clones):
        got = await volumes.read(user, volume.id, 0, BLOCK_SIZE)
        mark = f"clone {number}".encode()
        assert got[number * 1000 : number * 1000 + len(mark)] == mark
        assert got[: number * 1000] == data[: number * 1000]


async def test_a_snapshot_keeps_the_old_bytes_and_is_an_image_to_clone(
    engines: Engines, volumes: Volumes, user: str
):
    volume = await volumes.create(user, 2 * BLOCK_SIZE + 4096)
    old = os.urandom(BLOCK_SIZE + 10)
    await volumes.write(user, volume.id, 100, old)
    snapshot, image = await volumes.snapshot(user, volume.id, "first")
    assert snapshot.id == image.id and snapshot.volume_id == volume.id
    assert (image.container, image.path, image.size) == ("snapshots", "first", volume.size)
    assert image.properties["exclude_all_tasks"] == "yes"
    assert image.properties["volume_id"] == str(volume.id)
    assert not any(owned for _, owned in (await volumes.entries(user, volume.id)).values())
    assert (await volumes.get(user, volume.id)).epoch == 1

    await volumes.write(user, volume.id, 100, b"new bytes")
    assert await volumes.read(user, volume.id, 100, 9) == b"new bytes"
    file = await image_bytes(engines, image)  # the snapshot is an ordinary file
    assert len(file) == volume.size and file[100 : 100 + len(old)] == old
    record = await engines.storage.get_object(user, "snapshots", "first")
    assert record.hash == blocks.merkle(await engines.storage.hashmap(record))

    clone = await volumes.create_from_image(user, snapshot.id, size=4 * BLOCK_SIZE)
    assert await volumes.read(user, clone.id, 100, len(old)) == old
    assert (clone.source_kind, clone.source_id) == ("image", str(snapshot.id))
    assert (await fsck(engines.db, engines.store, pinned=engines.block_pins)).clean


async def test_clone_of_a_volume_and_extend(engines: Engines, volumes: Volumes, user: str):
    source = await volumes.create(user, BLOCK_SIZE)
    await volumes.write(user, source.id, 0, b"source")
    clone = await volumes.clone(user, source.id, size=3 * BLOCK_SIZE)
    assert await volumes.read(user, clone.id, 0, 6) == b"source"
    assert (await volumes.entries(user, source.id))[0][1] is False  # shared now
    await volumes.write(user, clone.id, 0, b"CLONE!")
    assert await volumes.read(user, source.id, 0, 6) == b"source"

    used = await disk_usage(engines, user)
    grown = await volumes.extend(user, source.id, 2 * BLOCK_SIZE + 1)
    assert grown.size == 2 * BLOCK_SIZE + 1
    assert await disk_usage(engines, user) == used + BLOCK_SIZE + 1
    assert await volumes.read(user, source.id, BLOCK_SIZE, BLOCK_SIZE + 1) == bytes(BLOCK_SIZE + 1)
    await volumes.write(user, source.id, 2 * BLOCK_SIZE, b"x")
    assert await volumes.read(user, source.id, 0, 6) == b"source"


async def test_delete_releases_quota_and_blocks_to_gc(
    engines: Engines, volumes: Volumes, user: str
):
    before = await disk_usage(engines, user)
    volume = await volumes.create(user, 2 * BLOCK_SIZE)
    assert await disk_usage(engines, user) == before + 2 * BLOCK_SIZE
    data = os.urandom(BLOCK_SIZE)
    await volumes.write(user, volume.id, 0, data)
    written = blocks.block_hash(data)
    assert written in stored_blocks(engines)

    # A block only a volume references is never collected, and fsck finds all clean.
    report = await gc(engines.db, engines.store, grace=ZERO, pinned=engines.block_pins)
    assert written not in report.blocks and written in stored_blocks(engines)
    checked = await fsck(engines.db, engines.store, pinned=engines.block_pins)
    assert checked.clean and written not in checked.orphan_blocks
    # Without the volumes' pins it would have been garbage: the hook is what keeps it.
    bare = await fsck(engines.db, engines.store, pinned=engines.compute.vmapi.pinned)
    assert written in bare.orphan_blocks

    await volumes.delete(user, volume.id)
    assert await disk_usage(engines, user) == before
    with pytest.raises(errors.NotFound):
        await volumes.get(user, volume.id)
    report = await gc(engines.db, engines.store, grace=ZERO, pinned=engines.block_pins)
    assert written in report.blocks and written not in stored_blocks(engines)


async def test_the_storage_commands_see_volume_maps(
    engines: Engines, settings: Settings, volumes: Volumes, user: str
):
    volume = await volumes.create(user, BLOCK_SIZE)
    data = os.urandom(5000)
    await volumes.write(user, volume.id, 0, data)
    written = blocks.block_hash(data)
    done = await invoke_nefos(settings, "storage", "fsck", "--json")
    report = json.loads(done.stdout)
    assert report["clean"] and written not in report["orphan_blocks"]
    done = await invoke_nefos(settings, "storage", "gc", "--grace", "0", "--json")
    assert written not in json.loads(done.stdout)["blocks"]
    assert await volumes.read(user, volume.id, 0, len(data)) == data


async def test_fsck_reports_a_volume_block_gone_missing(
    engines: Engines, volumes: Volumes, user: str
):
    volume = await volumes.create(user, BLOCK_SIZE)
    data = os.urandom(1000)
    await volumes.write(user, volume.id, 0, data)
    await engines.store.delete_blocks([blocks.block_hash(data)])
    report = await fsck(engines.db, engines.store, pinned=engines.block_pins)
    assert not report.clean
    (problem,) = report.problems
    assert problem.kind == "blocks-missing" and problem.blocks == (blocks.block_hash(data),)
    with pytest.raises(errors.Unavailable):
        await volumes.read(user, volume.id, 0, 10)


async def test_bad_input(engines: Engines, volumes: Volumes, user: str):
    image = await make_image(engines, user, os.urandom(BLOCK_SIZE + 1))
    volume = await volumes.create(user, BLOCK_SIZE)
    stranger = await new_user(engines)
    cases = [
        (volumes.create_from_image(user, image.id, size=BLOCK_SIZE), 400, "smaller"),
        (volumes.clone(user, volume.id, size=BLOCK_SIZE - 1), 400, "smaller"),
        (volumes.extend(user, volume.id, BLOCK_SIZE), 400, "grows only"),
        (volumes.write(user, volume.id, BLOCK_SIZE - 2, b"abc"), 400, "Cannot write"),
        (volumes.write(user, volume.id, -1, b"a"), 400, "offset"),
        (volumes.read(user, volume.id, BLOCK_SIZE, 1), 400, "Cannot read"),
        (volumes.create(user, 0), 400, "size"),
        (volumes.read(stranger, volume.id, 0, 1), 404, "could not be found"),
        (volumes.write(stranger, volume.id, 0, b"a"), 404, "could not be found"),
        (volumes.clone(stranger, volume.id), 404, "could not be found"),
        (volumes.delete(stranger, volume.id), 404, "could not be found"),
        (volumes.snapshot(stranger, volume.id, "theirs"), 404, "could not be found"),
        (volumes.create_from_image(stranger, image.id), 404, "No image"),
        (volumes.get(user, "not-a-uuid"), 404, "could not be found"),
        (volumes.create(user, BLOCK_SIZE, project=stranger), 403, "project"),
    ]
    for call, status, words in cases:
        with pytest.raises(errors.NefosError) as caught:
            await call
        assert status_of(caught.value) == status, caught.value.message
        assert words in caught.value.message
    assert await volumes.read(user, volume.id, 0, 3) == bytes(3)  # nothing written
    assert [v.id for v in await volumes.listing(user)] == [volume.id]
    assert await volumes.listing(stranger) == []


async def test_over_quota_names_the_resource_and_leaves_nothing(
    engines: Engines, volumes: Volumes, user: str
):
    await engines.quotas.set_base_quota(uuid.UUID(user), "cyclades.disk", 3 * BLOCK_SIZE)
    volume = await volumes.create(user, 2 * BLOCK_SIZE)
    for call in (
        volumes.create(user, 2 * BLOCK_SIZE),
        volumes.clone(user, volume.id),
        volumes.extend(user, volume.id, 4 * BLOCK_SIZE),
    ):
        with pytest.raises(errors.OverQuota) as caught:
            await call
        assert status_of(caught.value) == 413 and "cyclades.disk" in caught.value.message
    assert [v.id for v in await volumes.listing(user)] == [volume.id]
    assert (await volumes.get(user, volume.id)).size == 2 * BLOCK_SIZE

    # A snapshot is a file: it needs pithos.diskspace, and past it nothing is left.
    await engines.quotas.set_base_quota(uuid.UUID(user), "pithos.diskspace", BLOCK_SIZE)
    await volumes.write(user, volume.id, 0, b"data")
    with pytest.raises(errors.OverQuota) as caught:
        await volumes.snapshot(user, volume.id, "too big")
    assert status_of(caught.value) == 413 and "pithos.diskspace" in caught.value.message
    assert (await volumes.get(user, volume.id)).epoch == 0
    with pytest.raises(errors.NotFound):
        await engines.storage.get_object(user, "snapshots", "too big")


async def test_a_snapshot_name_in_use_is_a_conflict(volumes: Volumes, user: str):
    volume = await volumes.create(user, BLOCK_SIZE)
    await volumes.snapshot(user, volume.id, "daily")
    with pytest.raises(errors.Conflict):
        await volumes.snapshot(user, volume.id, "daily")


async def test_concurrent_writes_to_one_block_lose_nothing(volumes: Volumes, user: str):
    volume = await volumes.create(user, BLOCK_SIZE)
    await asyncio.gather(
        *(volumes.write(user, volume.id, n * 10, bytes([n + 1]) * 10) for n in range(8))
    )
    got = await volumes.read(user, volume.id, 0, 80)
    assert got == b"".join(bytes([n + 1]) * 10 for n in range(8))
    assert EMPTY_HASH not in {h for h, _ in (await volumes.entries(user, volume.id)).values()}


def test_attachment_moves_are_one_table():
    """Every step of an attach and a detach, from the status it needs; any other status
    is left alone (a late or repeated event)."""
    from nefos.volume import states
    from nefos.volume.models import Volume

    expected = {
        ("attach", "begin"): ("available", "attaching"),
        ("attach", "done"): ("attaching", "in-use"),
        ("attach", "failed"): ("attaching", "available"),
        ("detach", "begin"): ("in-use", "detaching"),
        ("detach", "done"): ("detaching", "available"),
        ("detach", "failed"): ("detaching", "in-use"),
    }
    assert expected == states.MOVES
    for (action, step), (before, after) in expected.items():
        for status in states.STATUSES:
            volume = Volume(status=status)
            moved = states.move(volume, action, step)
            assert moved == (status == before)
            assert volume.status == (after if moved else status)
