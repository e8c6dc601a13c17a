"""Issue 22 on the real Ganeti: servers whose root disk is a nefos volume, made through
nefos's compute service, run as KVM (QEMU TCG) guests that reach their disks through
``nefos volumed`` (the ExtStorage provider's NBD exports, no kernel block device).

One guest boots from a clone of a registered Linux image: nefos's OS provider customises
the clone in place (through qemu-storage-daemon's FUSE export of the NBD disk) and
writes no image data, so the volume owns only the blocks customisation changed. The
guest writes a file and syncs; ``createImage`` snapshots its root volume; a second
volume is hot-plugged into the running guest, read, and hot-unplugged; a second server
boots from the snapshot and finds the file. Two guest boots in all, once per run, on
SQLite (the database's part is the same as in the other volume tests).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import secrets
import time
import uuid
from pathlib import Path

import pytest

from nefos.backends import base
from nefos.blocks import BLOCK_SIZE
from nefos.compute.volumes import BootVolume
from nefos.server.engines import Engines
from tests.backends.conftest import Ganeti, ganeti  # noqa: F401 (the session's cluster)
from tests.backends.test_ganeti_backend import until_status
from tests.backends.test_ganeti_customize import ext4, guest_tree, new_linux_image, partitioned
from tests.backends.test_ganeti_guest_network import Console
from tests.backends.test_ganeti_os import (  # noqa: F401  (fixtures)
    guest,
    installed_os,
    nefos_on_ganeti,
)
from tests.volume.node import Node
from tests.volume.test_extstorage import install
from tests.volume.test_service import image_bytes, make_image

pytestmark = [pytest.mark.slow]
MiB = 1 << 20
KERNEL_ARGS = "ro quiet nefos.shell=ttyS0"
SHOWN = ("/etc/hostname", "/etc/nefos-note", "/etc/nefos-written")


async def guest_file(console: Console, path: str, within: float = 90) -> str:
    """A file of the guest's root as its init prints it (the first line), from the
    next round of its listing on."""
    found = await console.wait_for(rf"NEFOS-GUEST-FILE {path} ([^\n]*)\n", within)
    return found.group(1).strip()


async def volume_status(engines: Engines, user: str, volume: str, wanted: str) -> None:
    deadline = time.monotonic() + 90
    while (status := (await engines.volumes.get(user, volume)).status) != wanted:
        if time.monotonic() > deadline:
            raise AssertionError(f"volume {volume} stayed {status}, not {wanted}")
        await asyncio.sleep(0.2)


async def until_in_guest(console: Console, command: str, within: float = 30) -> str:
    """What ``command`` printed, once it succeeds in the guest's shell."""
    deadline = time.monotonic() + within
    while True:
        code, out = await console.sh(command)
        if code == 0:
            return out
        if time.monotonic() > deadline:
            raise AssertionError(f"{command!r} kept failing in the guest: {out}")
        await asyncio.sleep(1)


async def test_a_guest_boots_from_a_clone_snapshots_and_hot_plugs_volumes(
    ganeti: Ganeti,  # noqa: F811
    engines: Engines,
    node: Node,
    installed_os: str,  # noqa: F811
    guest: tuple[str, str],  # noqa: F811
    tmp_path: Path,
) -> None:
    if not engines.settings.database.startswith("sqlite"):
        pytest.skip("the Ganeti guests run once, on SQLite")
    compute = engines.compute
    provider = f"nefos-t{secrets.token_hex(4)}"
    folder = install(Path("/srv/ganeti/extstorage"), node, provider)
    compute.server_volumes.provider = provider  # the deployment's compute.volume_provider
    kernel, initrd = guest
    hvparams = {"kernel_path": kernel, "initrd_path": initrd, "kernel_args": KERNEL_ARGS}

    # A Linux image: an MBR, an ext4 root (partition 1) and 12 MiB of other data after it,
    # which no customisation touches: its whole blocks must stay the image's.
    tree = guest_tree(tmp_path / "tree", {"nefos-guest-show": "\n".join(SHOWN) + "\n"})
    tail = os.urandom(12 * MiB)
    partitioned(ext4(tree, tmp_path / "fs", 40 * MiB), tmp_path / "disk", tail)
    data = (tmp_path / "disk").read_bytes()
    properties = {"OSFAMILY": "linux", "ROOT_PARTITION": "1"}
    user, image_id = await new_linux_image(engines, data, properties)
    flavor = await compute.create_flavor(1, 128, 1, "file")
    note = f"NOTE-{uuid.uuid4().hex}"
    personality = [
        {"path": "/etc/nefos-note", "contents": base64.b64encode(note.encode()).decode()}
    ]
    servers: list[int] = []
    consoles: list[Console] = []
    try:
        async with nefos_on_ganeti(engines, ganeti, installed_os, "kvm", hvparams):
            # 1. Boot from a clone of the image: customised, no image data written.
            view, _ = await compute.create_server(
                user, "from-clone", image_id, flavor.id, personality=personality,
                boot_volume=BootVolume("image", image_id, size=128 * MiB),
            )  # fmt: skip
            servers.append(view.server.id)
            active = await until_status(engines, user, view.server.id, "ACTIVE", within=180)
            name = base.instance_name(view.server.id)
            (root,) = active.volumes
            assert root.boot_index == 0 and root.status == "in-use"
            console = Console(name)
            consoles.append(console)
            await console.open(ganeti.kvm_ctrl_dir / f"{name}.serial")
            assert await guest_file(console, "/etc/hostname") == name
            assert await guest_file(console, "/etc/nefos-note") == note
            assert await guest_file(console, "/etc/nefos-written") == "<missing>"

            # The blocks: the volume owns only those customisation changed; the tail's
            # whole blocks are still the image's, and the image is as it was.
            entries = await engines.volumes.entries(user, root.volume_id)
            owned = sorted(position for position, (_, mine) in entries.items() if mine)
            image_blocks = -(-len(data) // BLOCK_SIZE)
            assert 0 < len(owned) < image_blocks, (owned, image_blocks)
            tail_start = MiB + 40 * MiB
            for position in range(
                -(-tail_start // BLOCK_SIZE), (tail_start + len(tail)) // BLOCK_SIZE
            ):
                block = data[position * BLOCK_SIZE : (position + 1) * BLOCK_SIZE]
                assert entries[position] == (hashlib.sha256(block).hexdigest(), False)
            image = await engines.images.get(user, image_id)
            assert await image_bytes(engines, image) == data

            # 2. The guest writes a file and syncs; createImage snapshots its root volume.
            written = f"WRITTEN-{uuid.uuid4().hex}"
            await until_in_guest(
                console,
                f"mount -o remount,rw /guest && echo {written} >/guest/etc/nefos-written && sync",
            )
            snapshot_id = await compute.create_image(
                user, view.server.id, "after-write", properties
            )

            # 3. A second volume hot-plugged into the running guest, read, unplugged.
            marker = f"NEFOS-DATA-{uuid.uuid4().hex}"
            source = await make_image(
                engines, user, f"{marker}\n".encode() + bytes(MiB), "data.img"
            )
            data_volume = await engines.volumes.create_from_image(user, source.id, 64 * MiB)
            volume = str(data_volume.id)
            await compute.attach_volume(user, view.server.id, volume)
            await volume_status(engines, user, volume, "in-use")
            shown = await until_in_guest(console, "head -n 1 /dev/vdb && cat /sys/block/vdb/size")
            assert marker in shown and str(64 * MiB // 512) in shown
            await compute.detach_volume(user, view.server.id, volume)
            await volume_status(engines, user, volume, "available")
            await until_in_guest(console, "! test -e /sys/block/vdb")
            assert await engines.volumes.read(user, volume, 0, len(marker)) == marker.encode()

            # 4. A new server from the snapshot sees the file the first one wrote.
            again, _ = await compute.create_server(
                user, "from-snapshot", snapshot_id, flavor.id,
                boot_volume=BootVolume("image", snapshot_id),
            )  # fmt: skip
            servers.append(again.server.id)
            await until_status(engines, user, again.server.id, "ACTIVE", within=180)
            second = Console(base.instance_name(again.server.id))
            consoles.append(second)
            await second.open(ganeti.kvm_ctrl_dir / f"{second.name}.serial")
            assert await guest_file(second, "/etc/nefos-written") == written
            assert await guest_file(second, "/etc/hostname") == second.name

            for server_id in servers:
                await compute.delete_server(user, server_id)
            for server_id in servers:
                await until_status(engines, user, server_id, "DELETED", within=90)
            # The root volumes are left available (no delete_on_termination), then go.
            for made in await engines.volumes.listing(user):
                await volume_status(engines, user, str(made.id), "available")
                await engines.volumes.delete(user, made.id)
    finally:
        for console in consoles:
            await console.close()
        for path in folder.iterdir():
            path.unlink()
        folder.rmdir()
