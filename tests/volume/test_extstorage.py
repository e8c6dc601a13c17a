"""The ``nefos`` ExtStorage provider (issue 22, item 4): its installer, its scripts run
with Ganeti's environment by hand, and a real Ganeti ``ext`` disk on the dev cluster
whose KVM guest reads an image's first line through ``nefos volumed``."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import stat
import subprocess
import uuid
from pathlib import Path

import pytest

from nefos.blocks import BLOCK_SIZE
from nefos.server.engines import Engines
from nefos.volume import extstorage
from tests.backends.conftest import Ganeti, ganeti  # noqa: F401 (the session's cluster)
from tests.backends.test_ganeti_engine import Serial
from tests.conftest import NEFOS
from tests.volume.node import Node, need_qemu_tools, qemu
from tests.volume.test_service import image_bytes, make_image, new_user

MiB = 1 << 20


def install(target: Path, node: Node, name: str = "nefos") -> Path:
    done = subprocess.run(
        [NEFOS, "ganeti", "install-extstorage", "--target", str(target), "--name", name,
         "--run-dir", str(node.run_dir), "--no-socket-buffers"],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    assert f"installed {target / name}" in done.stdout
    return target / name


def script(folder: Path, action: str, **env: str) -> subprocess.CompletedProcess[str]:
    """One action as Ganeti runs it: the provider's folder as cwd, a clean environment."""
    return subprocess.run(
        [str(folder / action)],
        env={"PATH": os.environ["PATH"], **env},
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_the_scripts_with_ganetis_environment(engines: Engines, node: Node, tmp_path: Path):
    need_qemu_tools()
    folder = install(tmp_path / "es", node)
    first = {p.name: p.read_bytes() for p in folder.iterdir()}
    install(tmp_path / "es", node)  # again: the same provider
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == first
    assert set(first) == {*extstorage.ACTIONS, "parameters.list"}
    assert all(os.access(folder / action, os.X_OK) for action in extstorage.ACTIONS)
    assert (folder / "parameters.list").read_text().split("\n")[0].startswith("volume ")
    assert stat.S_IMODE((node.run_dir / "control.sock").stat().st_mode) == 0o600

    owner, stranger = await new_user(engines), await new_user(engines)
    data = b"first line of the image\n" + os.urandom(BLOCK_SIZE)
    image = await make_image(engines, owner, data)
    disk = {"VOL_NAME": f"{uuid.uuid4()}.ext.disk0", "EXTP_ORIGIN": str(image.id)}

    refused = script(folder, "create", **disk, VOL_SIZE="16")
    assert refused.returncode == 1 and "owner=<user id>" in refused.stderr
    small = script(folder, "create", **disk, VOL_SIZE="4", EXTP_OWNER=owner)
    assert small.returncode == 1 and "smaller than its image" in small.stderr
    bad = script(folder, "verify", **{**disk, "EXTP_ORIGIN": "not-an-id"})
    assert bad.returncode == 1 and "EXTP_ORIGIN is not an id" in bad.stderr
    assert script(folder, "verify", **disk).returncode == 0
    done = script(folder, "create", **disk, VOL_SIZE="16", EXTP_OWNER=owner)
    assert done.returncode == 0, done.stderr
    volume = str(uuid.uuid5(extstorage.GANETI_NAMESPACE, disk["VOL_NAME"]))
    assert (await engines.volumes.get(owner, volume)).size == 16 * MiB
    again = script(folder, "create", **disk, VOL_SIZE="16", EXTP_OWNER=owner)
    assert again.returncode == 0  # Ganeti retries: a create that was done is done

    attached = script(folder, "attach", **disk)
    assert attached.returncode == 0, attached.stderr
    socket = node.run_dir / "nbd.sock"
    assert attached.stdout == f"\nkvm:nbd:unix:{socket}:exportname={volume}\n"
    uri = attached.stdout.split("\n")[1].removeprefix("kvm:")
    qemu("qemu-io", "-t", "writeback", "-f", "raw", uri, "-c", "read -P 0 8M 8M")
    qemu("qemu-io", "-t", "writeback", "-f", "raw", uri, "-c", "write -P 0x5a 9M 4k")

    grown = script(folder, "grow", **disk, VOL_NEW_SIZE="32")
    assert grown.returncode == 0, grown.stderr
    assert (await engines.volumes.get(owner, volume)).size == 32 * MiB
    assert script(folder, "setinfo", **disk, VOL_METADATA="originstname+x").returncode == 0

    snapped = script(folder, "snapshot", **disk, VOL_SNAPSHOT_NAME="by-ganeti")
    assert snapped.returncode == 0, snapped.stderr
    said = json.loads(snapped.stderr.split(": ", 1)[1])  # what Ganeti's log keeps
    shot = await engines.images.get(owner, said["image"])
    assert (shot.container, shot.path) == ("snapshots", "by-ganeti")
    frozen = await image_bytes(engines, shot)
    assert frozen[: len(data)] == data and frozen[9 * MiB : 9 * MiB + 4096] == b"\x5a" * 4096

    # Rights: another user's disk cannot start from this user's volume.
    theirs = {"VOL_NAME": f"{uuid.uuid4()}.ext.disk0", "EXTP_ORIGIN": volume}
    stolen = script(folder, "create", **theirs, VOL_SIZE="32", EXTP_OWNER=stranger)
    assert stolen.returncode == 1 and "could not be found" in stolen.stderr
    assert await engines.volumes.listing(stranger) == []

    assert script(folder, "detach", **disk).returncode == 0
    assert script(folder, "remove", **disk).returncode == 0
    assert await engines.volumes.owner_of(volume) is None
    assert script(folder, "remove", **disk).returncode == 0  # removed twice: done
    gone = script(folder, "attach", **disk)
    assert gone.returncode == 1 and "does not exist" in gone.stderr


async def test_a_ganeti_ext_disk_boots_a_guest_from_an_image_clone(
    engines: Engines,
    node: Node,
    ganeti: Ganeti,  # noqa: F811
):
    """The real thing: Ganeti creates the disk through the provider, KVM opens it over
    NBD from volumed, the guest prints its first line: the image's. Once per run (on
    SQLite): the database's part is the same as in the tests above, and a guest is slow."""
    if not engines.settings.database.startswith("sqlite"):
        pytest.skip("the Ganeti guest runs once, on SQLite")
    provider = f"nefos-t{secrets.token_hex(4)}"
    folder = install(Path("/srv/ganeti/extstorage"), node, provider)
    instance = f"vd-{secrets.token_hex(4)}.ganeti.test"
    try:
        owner = await new_user(engines)
        marker = f"NEFOS-VOLUME {uuid.uuid4().hex}"
        image = await make_image(engines, owner, f"{marker}\n".encode() + bytes(MiB))
        disk = f"0:size=64M,provider={provider},owner={owner},origin={image.id},access=userspace"
        add = ganeti.exec(
            "gnt-instance", "add", "-t", "ext", "--disk", disk, "-o", "noop", "--no-install",
            "--no-ip-check", "--no-name-check", "--no-nics", "-n", ganeti.node, "-H",
            f"kvm:kernel_path={ganeti.kvm_kernel},initrd_path={ganeti.kvm_initrd}",
            "-B", "memory=128M", instance, timeout=180,
        )  # fmt: skip
        assert add.returncode == 0, add.stdout + add.stderr
        # --no-install (the noop OS writes nothing: the disk is the image) implies no start
        start = ganeti.exec("gnt-instance", "startup", instance, timeout=180)
        assert start.returncode == 0, start.stdout + start.stderr
        serial = Serial(str(ganeti.kvm_ctrl_dir / f"{instance}.serial"), timeout=10)
        try:
            line = await asyncio.to_thread(serial.wait_for, b"NEFOS-GUEST-DISK", 90)
        finally:
            serial.close()
        assert line == f"NEFOS-GUEST-DISK {marker}".encode()
        (volume,) = await engines.volumes.listing(owner)
        info = await node.control("info", EXTP_VOLUME=str(volume.id))
        assert info["open"] is True and info["size"] == 64 * MiB
    finally:
        ganeti.exec("gnt-instance", "remove", "-f", "--shutdown-timeout=0", instance, timeout=180)
        for path in folder.iterdir():
            path.unlink()
        folder.rmdir()
    assert await engines.volumes.listing(owner) == []  # Ganeti's remove removed it


def test_installing_raises_the_default_socket_send_buffer(tmp_path: Path):
    conf, live = tmp_path / "sysctl.d" / "60-nefos-volumed.conf", tmp_path / "wmem_default"
    live.write_text("212992\n")
    changed = extstorage.tune_socket_buffers(conf, live)
    assert changed == [str(conf), f"net.core.wmem_default 212992 -> {4 << 20}"]
    assert int(live.read_text()) == 4 << 20
    assert f"net.core.wmem_default = {4 << 20}\n" in conf.read_text()  # and at boot
    assert extstorage.tune_socket_buffers(conf, live) == []  # again: nothing to do
    live.write_text(f"{16 << 20}\n")  # an operator's larger value stays
    assert extstorage.tune_socket_buffers(conf, live) == []
    assert int(live.read_text()) == 16 << 20
