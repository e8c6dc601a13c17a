"""Extents (issue 22's data plane): the blocks a volume owns, written in place by its
device, sealed into content-addressed blocks when a snapshot, a clone or idleness asks.
In process, on the test's deployment (file store; SQLite, and PostgreSQL when set)."""

from __future__ import annotations

import asyncio
import os
import uuid

import pytest
from sqlalchemy import select

from nefos.blocks import BLOCK_SIZE, block_hash
from nefos.core import errors
from nefos.server.engines import Engines
from nefos.storage.maintenance import fsck
from nefos.storage.stores import ExtentWrite, extent_name, is_extent
from nefos.volume.devices import Device
from nefos.volume.models import Volume
from nefos.volume.service import Volumes
from tests.conftest import invoke_nefos
from tests.volume.test_service import image_bytes, make_image, new_user

MiB = 1 << 20
PAGE = 4096


async def written(
    engines: Engines, volumes: Volumes, user: str, blocks: int
) -> tuple[Volume, Device, bytes]:
    """A volume of ``blocks`` blocks written whole through a device, flushed: extents."""
    volume = await volumes.create(user, blocks * BLOCK_SIZE)
    device = await Device.open(engines.db, engines.store, volume.id)
    data = os.urandom(blocks * BLOCK_SIZE)
    await device.write(0, data)
    await device.flush()
    return volume, device, data


def block_hashes(data: bytes) -> set[str]:
    return {block_hash(data[i : i + BLOCK_SIZE]) for i in range(0, len(data), BLOCK_SIZE)}


async def write_blocks(device: Device, positions: range) -> None:
    """Random blocks, one write each, as a sequential writer sends them: past the
    device's dirty bound each write starts a background write-back of the oldest."""
    for position in positions:
        await device.write(position * BLOCK_SIZE, os.urandom(BLOCK_SIZE))
        if device.background is not None:
            await device.background


async def updated(engines: Engines, volume_id: uuid.UUID):
    async with engines.db.session() as s:
        return await s.scalar(select(Volume.updated).where(Volume.id == volume_id))


async def test_small_writes_land_in_place_after_one_copy_up(
    engines: Engines, volumes: Volumes, user: str
):
    data = os.urandom(2 * BLOCK_SIZE)
    image = await make_image(engines, user, data)
    volume = await volumes.create_from_image(user, image.id, size=24 * MiB)
    device = await Device.open(engines.db, engines.store, volume.id)
    name = extent_name(volume.id.hex, 1)

    await device.write(BLOCK_SIZE + PAGE, b"a" * PAGE)  # a shared block: copied up, whole
    await device.flush()
    entries = await volumes.entries(user, volume.id)
    assert entries[1] == (name, True) and entries[0] == (block_hash(data[:BLOCK_SIZE]), False)
    expected = bytearray(data[BLOCK_SIZE:])
    expected[PAGE : 2 * PAGE] = b"a" * PAGE
    assert await engines.store.read_extent(name) == bytes(expected)

    # Its next writes change only their pages, and a flush needs no transaction.
    before = await updated(engines, volume.id)
    for page in (0, 7, 1023):
        await device.write(BLOCK_SIZE + page * PAGE, bytes([page % 256]) * PAGE)
        expected[page * PAGE : (page + 1) * PAGE] = bytes([page % 256]) * PAGE
    await device.flush()
    assert await updated(engines, volume.id) == before
    assert await engines.store.read_extent(name) == bytes(expected)
    assert await volumes.read(user, volume.id, BLOCK_SIZE, BLOCK_SIZE) == bytes(expected)
    assert await image_bytes(engines, image) == data  # the image kept its bytes

    # A page written into a block that reads as zeros makes an extent of that page.
    await device.write(5 * BLOCK_SIZE + 3 * PAGE, b"z" * PAGE)
    await device.flush()
    assert await engines.store.read_extent(extent_name(volume.id.hex, 5)) == bytes(3 * PAGE) + (
        b"z" * PAGE
    )
    reopened = await Device.open(engines.db, engines.store, volume.id)
    assert await reopened.read(BLOCK_SIZE, BLOCK_SIZE) == bytes(expected)


async def test_a_snapshot_and_a_clone_seal_extents_and_keep_their_bytes(
    engines: Engines, volumes: Volumes, user: str
):
    volume, device, first = await written(engines, volumes, user, 3)
    entries = await volumes.entries(user, volume.id)
    assert all(is_extent(name) for name, _ in entries.values()) and len(entries) == 3

    snapshot, image = await volumes.snapshot(user, volume.id, "sealed")
    clone = await volumes.clone(user, volume.id)
    # Both name content-addressed blocks; the volume still owns its extents.
    assert await image_bytes(engines, image) == first
    clone_entries = await volumes.entries(user, clone.id)
    assert {n for n, _ in clone_entries.values()} == block_hashes(first)
    assert await volumes.entries(user, volume.id) == entries

    # The volume writes on in place; the snapshot and the clone do not change.
    await device.write(0, b"after" * 1000)
    await device.flush()
    assert await image_bytes(engines, image) == first
    assert await volumes.read(user, clone.id, 0, 3 * BLOCK_SIZE) == first
    assert (await volumes.read(user, volume.id, 0, 5000)) == (b"after" * 1000)[:5000]
    from_snapshot = await volumes.create_from_snapshot(user, snapshot.id)
    assert await volumes.read(user, from_snapshot.id, 0, 3 * BLOCK_SIZE) == first
    assert not (await fsck(engines.db, engines.store, pinned=engines.block_pins)).problems


async def test_sealing_turns_extents_into_blocks_and_idle_ones_seal_themselves(
    engines: Engines, volumes: Volumes, user: str
):
    volume, device, data = await written(engines, volumes, user, 4)
    assert len(await engines.store.extent_names(volume.id.hex)) == 4

    sealer = asyncio.create_task(device.seal_idle(after=0.5))
    try:
        for _ in range(100):
            await asyncio.sleep(0.1)
            if not await engines.store.extent_names(volume.id.hex):
                break
    finally:
        sealer.cancel()
    entries = await volumes.entries(user, volume.id)
    assert {n for n, _ in entries.values()} == block_hashes(data)
    assert await engines.store.extent_names(volume.id.hex) == []
    assert await device.read(0, 4 * BLOCK_SIZE) == data

    # A sealed block written again is copied up into a new extent, as after a snapshot.
    await device.write(BLOCK_SIZE, b"x" * PAGE)
    await device.flush()
    assert (await volumes.entries(user, volume.id))[1][0] == extent_name(volume.id.hex, 1)
    expected = b"x" * PAGE + data[BLOCK_SIZE + PAGE : 2 * BLOCK_SIZE]
    assert await volumes.read(user, volume.id, BLOCK_SIZE, BLOCK_SIZE) == expected


async def test_a_hot_block_stays_an_extent(engines: Engines, volumes: Volumes, user: str):
    volume = await volumes.create(user, 2 * BLOCK_SIZE)
    device = await Device.open(engines.db, engines.store, volume.id)
    await device.write(0, b"cold" * PAGE)
    await device.flush()
    await asyncio.sleep(0.3)
    await device.write(BLOCK_SIZE, b"hot!" * PAGE)
    await device.flush()
    assert await device.seal(idle_for=0.25) == 1  # only the block left alone long enough
    entries = await volumes.entries(user, volume.id)
    assert not is_extent(entries[0][0]) and entries[1][0] == extent_name(volume.id.hex, 1)


async def test_extents_nobody_names_go_at_open_and_with_the_volume(
    engines: Engines, volumes: Volumes, user: str
):
    volume = await volumes.create(user, 2 * BLOCK_SIZE)
    device = await Device.open(engines.db, engines.store, volume.id)
    await device.write(0, b"kept".ljust(PAGE, b"."))
    await device.flush()
    # As a crash leaves it: an extent written for a commit that never happened.
    stray = extent_name(volume.id.hex, 1)
    await engines.store.write_extents([ExtentWrite(stray, [(0, b"lost")], fresh=True)])
    reopened = await Device.open(engines.db, engines.store, volume.id)
    assert await engines.store.extent_names(volume.id.hex) == [extent_name(volume.id.hex, 0)]
    assert await reopened.read(BLOCK_SIZE, 4) == bytes(4)  # it never was the volume's

    await volumes.delete(user, volume.id)
    assert await engines.store.extent_names(volume.id.hex) == []


async def test_the_service_write_over_an_extent_replaces_it(
    engines: Engines, volumes: Volumes, user: str
):
    volume = await volumes.create(user, BLOCK_SIZE)
    device = await Device.open(engines.db, engines.store, volume.id)
    await device.write(0, b"device".ljust(PAGE, b"-"))
    await device.flush()
    await volumes.write(user, volume.id, 2, b"API")
    (name, owned), *_ = (await volumes.entries(user, volume.id)).values()
    assert not is_extent(name) and owned
    assert await engines.store.extent_names(volume.id.hex) == []
    assert await volumes.read(user, volume.id, 0, 8) == b"deAPIe--"


@pytest.mark.parametrize("count", [1, 3])
async def test_zeros_written_whole_drop_the_extent(
    engines: Engines, volumes: Volumes, user: str, count: int
):
    volume = await volumes.create(user, 4 * BLOCK_SIZE)
    device = await Device.open(engines.db, engines.store, volume.id)
    await device.write(0, b"\1" * (count * BLOCK_SIZE))
    await device.flush()
    await device.write(0, bytes(count * BLOCK_SIZE))
    await device.flush()
    assert await volumes.entries(user, volume.id) == {}
    assert await engines.store.extent_names(volume.id.hex) == []


async def test_background_write_backs_leave_the_sync_and_the_commit_to_the_flush(
    engines: Engines, volumes: Volumes, user: str
):
    """A background write-back, of new extents or into existing ones, makes neither a
    sync (each ``syncfs`` costs a journal commit) nor a transaction: the next flush makes
    everything written since durable at once, then commits the map in one transaction."""
    synced: list[list[str]] = []
    store = engines.store
    real_sync = store.sync_extents

    async def sync_extents(names):
        synced.append(list(names))
        await real_sync(names)

    store.sync_extents = sync_extents  # type: ignore[method-assign]
    try:
        volume = await volumes.create(user, 8 * BLOCK_SIZE)
        everything = {extent_name(volume.id.hex, p) for p in range(8)}
        before = await updated(engines, volume.id)
        device = await Device.open(engines.db, engines.store, volume.id, dirty_blocks=2)
        await write_blocks(device, range(8))
        assert device.blocks_written >= 4  # new extents, written in the background
        assert synced == [] and await volumes.entries(user, volume.id) == {}
        assert await updated(engines, volume.id) == before
        await device.flush()
        assert len(synced) == 1 and set(synced[0]) == everything
        assert {name for name, _ in (await volumes.entries(user, volume.id)).values()} == (
            everything
        )
        synced.clear()
        committed = await updated(engines, volume.id)
        for position in range(8):  # in place now; the bound of 2 writes them back early
            await device.write(position * BLOCK_SIZE, bytes([position + 1]) * PAGE)
        if device.background is not None:
            await device.background
        assert synced == []  # in place, in the background: not yet
        await device.flush()
        assert len(synced) == 1 and set(synced[0]) == everything
        assert await updated(engines, volume.id) == committed  # nothing new to name
    finally:
        del store.sync_extents
    reopened = await Device.open(engines.db, engines.store, volume.id)
    for position in range(8):
        assert await reopened.read(position * BLOCK_SIZE, 2) == bytes([position + 1]) * 2


async def test_a_crash_before_the_flush_loses_only_what_was_not_flushed(
    engines: Engines, volumes: Volumes, user: str
):
    """New extents a background write-back made, and a TRIM, before the crash (a device
    opened again without the first one's flush): the map still names what the last
    flush committed; the extents no map names are removed; each 4 KiB page of a block
    written since reads as it was flushed or as written after."""
    volume = await volumes.create(user, 12 * BLOCK_SIZE)
    device = await Device.open(engines.db, engines.store, volume.id, dirty_blocks=1)
    data = os.urandom(4 * BLOCK_SIZE)
    await device.write(0, data)
    await device.flush()  # blocks 0-3: extents, committed
    committed = await volumes.entries(user, volume.id)
    await device.zero(0, BLOCK_SIZE)  # TRIM of block 0: noted, not committed
    again = os.urandom(BLOCK_SIZE // 2)
    await device.write(0, again)  # block 0 again: a new extent over the dropped one
    await write_blocks(device, range(6, 12))  # new extents, in the background
    assert device.blocks_written > 4
    assert await volumes.entries(user, volume.id) == committed
    assert len(await engines.store.extent_names(volume.id.hex)) > len(committed)

    reopened = await Device.open(engines.db, engines.store, volume.id)  # after the crash
    assert set(await engines.store.extent_names(volume.id.hex)) == {
        name for name, _ in committed.values()
    }
    assert await reopened.read(6 * BLOCK_SIZE, 6 * BLOCK_SIZE) == bytes(6 * BLOCK_SIZE)
    assert await reopened.read(BLOCK_SIZE, 3 * BLOCK_SIZE) == data[BLOCK_SIZE:]
    block = await reopened.read(0, BLOCK_SIZE)
    for start in range(0, BLOCK_SIZE, PAGE):
        page = block[start : start + PAGE]
        after = again[start : start + PAGE] if start < len(again) else bytes(PAGE)
        assert page in (data[start : start + PAGE], bytes(PAGE), after)
    assert not (await fsck(engines.db, engines.store, pinned=engines.block_pins)).problems


async def test_fsck_reports_an_extent_a_map_names_and_the_store_lost(
    engines: Engines, volumes: Volumes, user: str, settings
):
    volume, _, _ = await written(engines, volumes, user, 2)
    done = await invoke_nefos(settings, "storage", "fsck", check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    lost = extent_name(volume.id.hex, 1)
    await engines.store.delete_extents([lost])
    (problem,) = await volumes.check_extents()
    assert problem.kind == "extents-missing" and problem.blocks == (lost,)
    done = await invoke_nefos(settings, "storage", "fsck", check=False)
    assert done.returncode == 1 and "extents-missing" in done.stdout


async def test_another_user_cannot_seal_clone_snapshot_or_read_a_volumes_extents(
    engines: Engines, volumes: Volumes, user: str
):
    """Sealing is work done on the owner's data: another user's clone, snapshot, read
    or write of the volume is NotFound before anything is sealed or changed."""
    volume, _, data = await written(engines, volumes, user, 2)
    before = await volumes.entries(user, volume.id)
    mallory = await new_user(engines)
    for attempt in (
        volumes.clone(mallory, volume.id),
        volumes.snapshot(mallory, volume.id, "stolen"),
        volumes.read(mallory, volume.id, 0, 16),
        volumes.write(mallory, volume.id, 0, b"x"),
        volumes.delete(mallory, volume.id),
    ):
        with pytest.raises(errors.NotFound):
            await attempt
    assert await volumes.entries(user, volume.id) == before  # still extents, unsealed
    assert len(await engines.store.extent_names(volume.id.hex)) == 2
    assert await volumes.read(user, volume.id, 0, 2 * BLOCK_SIZE) == data
