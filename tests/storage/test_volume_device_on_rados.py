"""A volume's device over the ``rados`` store (issue 22: the data plane "works with the
file store and with RADOS"): extents written in place in the volume's namespace, a
shared block copied up, sealing, and a reopened device reading it all back. The map
lives in the test's database; the blocks and extents in a pool of the test's own."""

from __future__ import annotations

import os
import uuid

from nefos.blocks import BLOCK_SIZE, block_hash
from nefos.server.engines import Engines
from nefos.storage.stores import extent_name, is_extent
from nefos.volume.devices import Device

PAGE = 4096


async def test_a_device_writes_in_place_copies_up_and_seals_on_rados(
    engines: Engines, rados_store_factory
):
    store = await rados_store_factory()
    try:
        user, _ = await engines.identity.create_user(f"r-{uuid.uuid4().hex[:8]}@example.org")
        volume = await engines.volumes.create(str(user.id), 3 * BLOCK_SIZE)
        device = await Device.open(engines.db, store, volume.id)
        data = bytearray(os.urandom(2 * BLOCK_SIZE))
        await device.write(0, data)
        await device.write(2 * BLOCK_SIZE + PAGE, b"p" * PAGE)  # one page of a zero block
        await device.flush()
        names = await store.extent_names(volume.id.hex)
        assert names == sorted(extent_name(volume.id.hex, p) for p in range(3))
        assert await store.read_extent(names[2]) == bytes(PAGE) + b"p" * PAGE

        # Sealed into the pool's blocks; the extents go.
        assert await device.seal() == 3
        entries = await engines.volumes.entries(str(user.id), volume.id)
        assert entries[0][0] == block_hash(data[:BLOCK_SIZE])
        assert not any(is_extent(name) for name, _ in entries.values())
        assert await store.extent_names(volume.id.hex) == []

        # A page written into a sealed block copies it up; then in place.
        await device.write(BLOCK_SIZE, b"q" * PAGE)
        await device.flush()
        await device.write(BLOCK_SIZE + 2 * PAGE, b"r" * PAGE)
        await device.flush()
        data[BLOCK_SIZE : BLOCK_SIZE + PAGE] = b"q" * PAGE
        data[BLOCK_SIZE + 2 * PAGE : BLOCK_SIZE + 3 * PAGE] = b"r" * PAGE
        assert await store.extent_names(volume.id.hex) == [extent_name(volume.id.hex, 1)]
        reopened = await Device.open(engines.db, store, volume.id)
        assert await reopened.read(0, 2 * BLOCK_SIZE) == bytes(data)
        third = await reopened.read(2 * BLOCK_SIZE, BLOCK_SIZE)
        assert third == bytes(PAGE) + b"p" * PAGE + bytes(BLOCK_SIZE - 2 * PAGE)
    finally:
        await store.close()
