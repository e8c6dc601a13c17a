"""``nefos volumed`` (issue 22, item 4): QEMU's tools reading and writing volumes over
NBD, clones of an image reading its bytes and writing only the 4 MiB blocks they
change, ten clones sharing one image's blocks, and a SIGKILL in the middle of writes
losing no flushed write and leaving fsck clean. A real volumed process, file store."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import random
import signal
import uuid
from pathlib import Path

import pytest

from nefos.blocks import BLOCK_SIZE, block_hash
from nefos.cli.volumed import socket_buffer_hint
from nefos.server.engines import Engines
from nefos.storage.stores import is_extent
from nefos.volume.devices import Device
from tests.conftest import invoke_nefos
from tests.volume.nbdclient import NbdClient, NbdError
from tests.volume.node import Node, need_qemu_tools, qemu, store_usage
from tests.volume.test_service import image_bytes, make_image, new_user

MiB = 1 << 20


async def new_volume(node: Node, owner: str, size_mib: int, origin: str = "") -> str:
    """A volume made and attached the way Ganeti's ``ext`` template does it."""
    env = {"VOL_NAME": f"t-{uuid.uuid4()}", "VOL_SIZE": str(size_mib), "EXTP_OWNER": owner}
    if origin:
        env["EXTP_ORIGIN"] = origin
    created = await node.control("create", **env)
    attached = await node.control("attach", **env)
    assert attached["volume"] == created["volume"]
    return str(created["volume"])


async def test_qemu_reads_a_clone_of_an_image_and_writes_only_changed_blocks(
    engines: Engines, node: Node, tmp_path: Path
):
    need_qemu_tools()
    owner = await new_user(engines)
    data = os.urandom(3 * BLOCK_SIZE + 5000)  # three whole blocks and a short one
    image = await make_image(engines, owner, data)
    volume = await new_volume(node, owner, 32, origin=str(image.id))
    info = qemu("qemu-img", "info", "--output=json", node.uri(volume))
    assert '"virtual-size": 33554432' in info

    copy = tmp_path / "copy.raw"
    qemu("qemu-img", "convert", "-f", "raw", "-O", "raw", node.uri(volume), str(copy))
    assert copy.read_bytes() == data + bytes(32 * MiB - len(data))  # the image, then zeros

    blocks_before, _ = store_usage(engines.store.root)
    # Two writes inside block 1, one in block 3, one in the empty block 6; FUA on one.
    # (qemu-io's default cache mode, writethrough, would flush after each write.)
    qemu(
        "qemu-io", "-t", "writeback", "-f", "raw", node.uri(volume),
        "-c", "write -P 0xab 5M 4k",
        "-c", "write -P 0xcd 6M 64k",
        "-c", "write -P 0xef -f 13M 512",
        "-c", "write -P 0x11 25M 4k",
        "-c", "flush",
    )  # fmt: skip
    blocks_after, _ = store_usage(engines.store.root)
    assert blocks_after == blocks_before + 3  # blocks 1, 3 and 6: copy-up per 4 MiB

    expected = bytearray(data + bytes(32 * MiB - len(data)))
    expected[5 * MiB : 5 * MiB + 4096] = b"\xab" * 4096
    expected[6 * MiB : 6 * MiB + 65536] = b"\xcd" * 65536
    expected[13 * MiB : 13 * MiB + 512] = b"\xef" * 512
    expected[25 * MiB : 25 * MiB + 4096] = b"\x11" * 4096
    qemu("qemu-img", "convert", "-f", "raw", "-O", "raw", node.uri(volume), str(copy))
    assert copy.read_bytes() == bytes(expected)
    assert await image_bytes(engines, image) == data  # the image keeps its bytes

    entries = await engines.volumes.entries(owner, volume)
    assert sorted(p for p, (_, owned) in entries.items() if owned) == [1, 3, 6]
    assert sorted(entries) == [0, 1, 2, 3, 6]

    # Zeros: TRIM of a whole block drops its entry; zeros over part of one are a write.
    qemu("qemu-io", "-f", "raw", node.uri(volume), "-c", "discard 24M 4M", "-c", "flush")
    qemu("qemu-io", "-f", "raw", node.uri(volume), "-c", "write -z 0 4k", "-c", "flush")
    entries = await engines.volumes.entries(owner, volume)
    assert 6 not in entries and entries[0][1]  # block 0 copied up with its zeros
    qemu(
        "qemu-io", "-f", "raw", node.uri(volume),
        "-c", "read -P 0 24M 4M", "-c", "read -P 0 0 4k", "-c", "read -P 0xab 5M 4k",
    )  # fmt: skip


async def test_one_writer_per_volume_and_unknown_exports(engines: Engines, node: Node):
    owner = await new_user(engines)
    volume = await new_volume(node, owner, 8)
    first = await NbdClient.connect(node.socket, volume)
    assert first.size == 8 * MiB
    # Any byte may be written; whole blocks are what it asks for (qemu-img then writes
    # 4 MiB at a time); up to 32 MiB in one request.
    assert first.block_sizes == (1, BLOCK_SIZE, 32 * MiB)
    with pytest.raises(NbdError, match="GO refused"):
        await NbdClient.connect(node.socket, volume)  # open already: one writer
    await first.write(8 * MiB - 3, b"end")
    with pytest.raises(NbdError, match="error 28"):  # ENOSPC past the end
        await first.write(8 * MiB - 2, b"end")
    await first.close()
    second = await NbdClient.connect(node.socket, volume)  # DISC flushed, closed
    assert await second.read(8 * MiB - 3, 3) == b"end"
    await second.close()
    with pytest.raises(NbdError, match="GO refused"):
        await NbdClient.connect(node.socket, str(uuid.uuid4()))  # not attached here
    await node.control("detach", EXTP_VOLUME=volume)
    with pytest.raises(NbdError, match="GO refused"):
        await NbdClient.connect(node.socket, volume)  # detached: not served


async def test_ten_clones_share_the_image_blocks_on_disk(engines: Engines, node: Node):
    owner = await new_user(engines)
    data = os.urandom(4 * BLOCK_SIZE)
    image = await make_image(engines, owner, data)
    image_count, image_bytes_on_disk = store_usage(engines.store.root)
    assert image_count == 4
    clones = [await new_volume(node, owner, 16, origin=str(image.id)) for _ in range(10)]
    assert store_usage(engines.store.root) == (image_count, image_bytes_on_disk)
    for number, volume in enumerate(clones):
        client = await NbdClient.connect(node.socket, volume)
        await client.write(number * 4096, f"clone {number}".encode().ljust(4096, b"."))
        await client.flush()
        await client.close()
    count, on_disk = store_usage(engines.store.root)
    assert count == image_count + 10  # one image, one extent per clone (its copy-up)
    assert on_disk <= image_bytes_on_disk + 10 * (BLOCK_SIZE + 4096)
    for number, volume in enumerate(clones):
        client = await NbdClient.connect(node.socket, volume)
        got = await client.read(0, 2 * BLOCK_SIZE)
        await client.close()
        mark = f"clone {number}".encode()
        assert got[number * 4096 : number * 4096 + len(mark)] == mark
        assert got[: number * 4096] == data[: number * 4096]
        assert got[BLOCK_SIZE:] == data[BLOCK_SIZE : 2 * BLOCK_SIZE]


async def test_requests_of_one_connection_are_served_concurrently(engines: Engines, node: Node):
    """Requests sent together, answered by cookie, over a clone of an image: 4 KiB
    writes that read nothing yet must keep the image's bytes around them, unaligned ones
    that must read them, reads of blocks being written, and a dirty bound of two blocks
    so that write-backs run in the background meanwhile. The result is exactly what the
    writes in order make, before and after a flush and a restart."""
    node.kill(signal.SIGTERM)
    node.start("--dirty-mib", "8")
    owner = await new_user(engines)
    data = os.urandom(6 * BLOCK_SIZE)
    image = await make_image(engines, owner, data)
    volume = await new_volume(node, owner, 32, origin=str(image.id))
    expected = bytearray(data + bytes(32 * MiB - len(data)))
    rng = random.Random(3)
    requests: list[tuple[int, int, bytes | int]] = []
    for number in range(120):
        if number % 5 == 4:
            offset = rng.randrange(0, 31 * MiB)
            requests.append((0, offset, rng.choice([4096, 65536, BLOCK_SIZE])))
            continue
        if number % 3 == 0:  # unaligned, sometimes across two blocks
            offset, length = rng.randrange(1, 32 * MiB - 70000), rng.randrange(1, 70000)
        else:  # whole 4 KiB pages
            offset, length = (
                rng.randrange(0, 32 * MiB // 4096 - 16) * 4096,
                4096 * rng.randrange(1, 16),
            )
        requests.append((1, offset, os.urandom(length)))
    # Writes never overlap a read or each other in one batch (the client's rule), so
    # every batch's result is that of its requests in any order.
    batches: list[list[tuple[int, int, bytes | int]]] = [[]]
    taken: list[tuple[int, int]] = []
    for kind, offset, body in requests:
        length = len(body) if isinstance(body, bytes) else body
        if any(offset < end and start < offset + length for start, end in taken):
            batches.append([])
            taken = []
        batches[-1].append((kind, offset, body))
        taken.append((offset, offset + length))
    client = await NbdClient.connect(node.socket, volume)
    for batch in batches:
        answers = await client.pipeline(batch)  # type: ignore[arg-type]
        for index, (kind, offset, body) in enumerate(batch):
            if kind == 0:
                assert answers[index] == expected[offset : offset + body], f"read {offset}"
        for kind, offset, body in batch:
            if kind == 1:
                expected[offset : offset + len(body)] = body
    assert await client.read(0, 32 * MiB) == expected
    await client.flush()
    await client.close()
    node.kill(signal.SIGKILL)  # what is left is what the flush made durable
    node.start()
    client = await NbdClient.connect(node.socket, volume)
    assert await client.read(0, 32 * MiB) == expected
    await client.close()
    assert await image_bytes(engines, image) == data  # copy-on-write kept the image
    assert len(batches) > 5 and max(len(b) for b in batches) > 10


def piece(seed: int, index: int, size: int) -> bytes:
    """The bytes of write ``index``: reproducible, and different for every write."""
    stream = hashlib.shake_256(f"{seed}:{index}".encode())
    return stream.digest(size)


async def test_sigkill_mid_writes_loses_no_flushed_write(engines: Engines, node: Node, settings):
    owner = await new_user(engines)
    size_mib = 64
    volume = await new_volume(node, owner, size_mib)
    slot = 64 * 1024
    # Every write goes to a slot of its own, in a random order across the 16 blocks, so
    # the check knows exactly what each byte must be.
    order = list(range(size_mib * MiB // slot))
    random.Random(7).shuffle(order)
    seed = random.randrange(1 << 30)
    flushed = 0  # writes [0, flushed) were acknowledged as flushed
    sent = 0

    async def writer() -> None:
        nonlocal flushed, sent
        client = await NbdClient.connect(node.socket, volume)
        for index, number in enumerate(order):
            sent = index + 1
            await client.write(number * slot, piece(seed, index, slot))
            if index % 16 == 15:
                await client.flush()
                flushed = index + 1

    task = asyncio.create_task(writer())
    while flushed < 8 * 16:  # let it get going, then kill it between flushes
        await asyncio.sleep(0.01)
        assert not task.done() or task.exception() is None
    node.kill(signal.SIGKILL)
    with contextlib.suppress(NbdError, ConnectionError, asyncio.IncompleteReadError):
        await task
    assert flushed < len(order), "the writer finished before the kill: nothing was tested"
    assert sent > flushed  # writes were in flight, unflushed

    node.start()
    client = await NbdClient.connect(node.socket, volume)  # still attached after restart
    lost = 0
    for index, number in enumerate(order[:sent]):
        got = await client.read(number * slot, slot)
        if index < flushed:
            assert got == piece(seed, index, slot), f"flushed write {index} is lost"
        else:  # unflushed: each 4 KiB page there, or not (a disk promises no more)
            want = piece(seed, index, slot)
            for page in range(0, slot, 4096):
                got_page = got[page : page + 4096]
                assert got_page in (want[page : page + 4096], bytes(4096)), f"write {index}"
            lost += got == bytes(slot)
    for number in order[sent:]:
        assert await client.read(number * slot, slot) == bytes(slot)
    await client.close()
    done = await invoke_nefos(settings, "storage", "fsck", check=False)
    assert done.returncode == 0, done.stdout + done.stderr


async def test_a_block_written_whole_in_pieces_never_reads_the_old_block(
    engines: Engines, node: Node
):
    """``qemu-img convert`` writes 2 MiB at a time: a block written whole in two halves
    over an image's block replaces it, so the old block is not read at write-back. Its
    file is deleted from the store first: a read of it would fail the flush."""
    owner = await new_user(engines)
    data = os.urandom(2 * BLOCK_SIZE)
    image = await make_image(engines, owner, data)
    volume = await new_volume(node, owner, 8, origin=str(image.id))
    first = hashlib.sha256(data[:BLOCK_SIZE]).hexdigest()
    await engines.store.delete_blocks([first])
    new = os.urandom(BLOCK_SIZE)
    client = await NbdClient.connect(node.socket, volume)
    await client.write(0, new[: BLOCK_SIZE // 2])
    await client.write(BLOCK_SIZE // 2, new[BLOCK_SIZE // 2 :])
    await client.flush()
    assert await client.read(0, 2 * BLOCK_SIZE) == new + data[BLOCK_SIZE:]
    await client.close()


async def test_a_payload_received_in_place_survives_a_flush_and_a_fill_meanwhile(
    engines: Engines,
):
    """A write's payload arrives straight into its dirty block (``Device.receive``).
    A flush while it arrives (a control-channel snapshot, or a FLUSH sent before the
    write) writes back the block's completed writes without taking the block from
    under the payload, a read meanwhile fills the block from the image, and the write,
    landed, is in the next flush: the device reopened from the database reads it."""
    owner = await new_user(engines)
    data = os.urandom(2 * BLOCK_SIZE)
    image = await make_image(engines, owner, data)
    volume = await engines.volumes.create_from_image(owner, image.id, size=8 * MiB)
    device = await Device.open(engines.db, engines.store, volume.id)
    first, second = os.urandom(MiB), os.urandom(MiB)
    await device.write(0, first)  # whole pages of the image's block: nothing read yet
    reception = device.receive(MiB, MiB)
    assert reception is not None
    (view,) = reception.views
    view[: MiB // 2] = second[: MiB // 2]  # half the payload is in
    await device.flush()
    assert device.dirty[0].receiving == 1  # still the payload's block
    expected_flushed = first + data[MiB:BLOCK_SIZE]
    assert await device.read(2 * MiB, 2 * MiB) == data[2 * MiB : BLOCK_SIZE]
    view[MiB // 2 :] = second[MiB // 2 :]
    await device.land(reception)
    expected = first + second + data[2 * MiB :]
    assert await device.read(0, 2 * BLOCK_SIZE) == expected
    reopened = await Device.open(engines.db, engines.store, volume.id)
    flushed = await reopened.read(0, BLOCK_SIZE)
    assert flushed[:MiB] == first and flushed[2 * MiB :] == expected_flushed[2 * MiB :]
    await device.flush()
    reopened = await Device.open(engines.db, engines.store, volume.id)
    assert await reopened.read(0, 2 * BLOCK_SIZE) == expected
    assert await image_bytes(engines, image) == data


async def test_a_payload_received_in_place_into_a_grown_volume_lands(engines: Engines):
    """Growing the volume while a payload arrives into its short last block gives the
    block a new buffer; the write lands there when it is in."""
    owner = await new_user(engines)
    volume = await engines.volumes.create(owner, 6 * MiB)
    device = await Device.open(engines.db, engines.store, volume.id)
    await device.write(4 * MiB, b"\1" * 4096)
    reception = device.receive(5 * MiB, MiB)
    assert reception is not None
    device.resize(8 * MiB)
    payload = os.urandom(MiB)
    (view,) = reception.views
    view[:] = payload
    await device.land(reception)
    assert await device.read(4 * MiB, 4 * MiB) == b"\1" * 4096 + bytes(
        MiB - 4096
    ) + payload + bytes(2 * MiB)


async def test_written_blocks_are_extents_until_idle_then_blocks(engines: Engines, node: Node):
    """volumed writes a volume's own blocks in place (extents); a block left unwritten
    for ``--seal-after`` seconds is hashed into a content-addressed block in the
    background, and a snapshot through the control channel seals what is left first."""
    node.kill(signal.SIGTERM)
    node.start("--seal-after", "1")
    owner = await new_user(engines)
    volume = await new_volume(node, owner, 12)
    data = os.urandom(2 * BLOCK_SIZE)
    client = await NbdClient.connect(node.socket, volume)
    await client.write(0, data)
    await client.flush()
    owner_hex = uuid.UUID(volume).hex
    entries = await engines.volumes.entries(owner, volume)
    assert sorted(entries) == [0, 1] and all(is_extent(n) for n, _ in entries.values())

    deadline = asyncio.get_running_loop().time() + 30
    while await engines.store.extent_names(owner_hex):
        assert asyncio.get_running_loop().time() < deadline, "idle extents were not sealed"
        await asyncio.sleep(0.2)
    entries = await engines.volumes.entries(owner, volume)
    assert {n for n, _ in entries.values()} == {
        block_hash(data[:BLOCK_SIZE]),
        block_hash(data[BLOCK_SIZE:]),
    }
    assert await client.read(0, 2 * BLOCK_SIZE) == data

    # Written again: an extent once more, until a snapshot seals it through volumed.
    await client.write(2 * BLOCK_SIZE, b"third".ljust(4096, b"."))
    await client.write(5, b"again")
    answer = await node.control("snapshot", EXTP_VOLUME=volume, VOL_SNAPSHOT_NAME="idle-test")
    assert await engines.store.extent_names(owner_hex) == []
    image = await engines.images.get(owner, str(answer["image"]))
    expected = bytearray(12 * MiB)
    expected[: 2 * BLOCK_SIZE] = data
    expected[2 * BLOCK_SIZE : 2 * BLOCK_SIZE + 4096] = b"third".ljust(4096, b".")
    expected[5:10] = b"again"
    assert await image_bytes(engines, image) == bytes(expected)
    await client.close()


def test_a_small_default_socket_buffer_gets_advice(tmp_path: Path) -> None:
    setting = tmp_path / "wmem_default"
    setting.write_text("212992\n")
    hint = socket_buffer_hint(setting)
    assert hint is not None
    assert "212992 bytes" in hint and "about 20 pieces" in hint
    assert "install-extstorage" in hint
    assert f"net.core.wmem_default={4 << 20}" in hint
    setting.write_text(f"{4 << 20}\n")
    assert socket_buffer_hint(setting) is None
    assert socket_buffer_hint(tmp_path / "absent") is None  # not Linux: no advice


async def test_a_payload_across_a_block_boundary_is_received_into_both_blocks(
    engines: Engines,
):
    """A guest's write that crosses a block boundary (its queue limits split dd's 4 MiB
    writes anywhere) arrives in place in the two blocks; one with a piece that is not
    whole pages of a block not filled yet comes in a buffer of its own."""
    owner = await new_user(engines)
    data = os.urandom(2 * BLOCK_SIZE)
    image = await make_image(engines, owner, data)
    volume = await engines.volumes.create_from_image(owner, image.id, size=12 * MiB)
    device = await Device.open(engines.db, engines.store, volume.id)
    assert device.receive(BLOCK_SIZE - 4096, 4096 + 100) is None  # ends mid-page
    reception = device.receive(BLOCK_SIZE - MiB, 3 * MiB)
    assert reception is not None
    assert [len(view) for view in reception.views] == [MiB, 2 * MiB]
    payload = os.urandom(3 * MiB)
    reception.views[0][:] = payload[:MiB]
    reception.views[1][:] = payload[MiB:]
    await device.land(reception)
    expected = data[: BLOCK_SIZE - MiB] + payload + data[BLOCK_SIZE + 2 * MiB :]
    assert await device.read(0, 2 * BLOCK_SIZE) == expected
    await device.flush()
    reopened = await Device.open(engines.db, engines.store, volume.id)
    assert await reopened.read(0, 2 * BLOCK_SIZE) == expected
    assert await image_bytes(engines, image) == data  # the image's blocks are untouched


async def test_a_read_only_volume_refuses_writes_and_keeps_its_bytes(engines: Engines, node: Node):
    """os-update_readonly_flag: the next client's writes, trims and zeroes get EPERM (no
    byte of the payload lands), its reads and flushes work; cleared, writes work."""
    owner = await new_user(engines)
    volume = await new_volume(node, owner, 8)
    client = await NbdClient.connect(node.socket, volume)
    await client.write(0, b"kept")
    await client.close()
    await engines.volumes.update(owner, volume, readonly=True)
    client = await NbdClient.connect(node.socket, volume)
    for attempt in (
        client.write(0, b"lost"),
        client.write(BLOCK_SIZE - 2, b"across"),
        client.trim(0, BLOCK_SIZE),
        client.write_zeroes(0, 4096),
    ):
        with pytest.raises(NbdError, match=r"^error 1$"):  # EPERM
            await attempt
    await client.flush()
    assert await client.read(0, 4) == b"kept"
    await client.close()
    assert (await engines.volumes.show(owner, volume)).volume.readonly is True

    await engines.volumes.update(owner, volume, readonly=False)
    client = await NbdClient.connect(node.socket, volume)
    await client.write(0, b"new!")
    await client.close()
    client = await NbdClient.connect(node.socket, volume)
    assert await client.read(0, 4) == b"new!"
    await client.close()
