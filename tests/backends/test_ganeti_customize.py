"""nefos's OS provider customising a Linux image: password, SSH keys, personality files.

Without a cluster: ext4 images made with ``mkfs.ext4 -d`` (the whole disk, or partition 1
of a partitioned disk) customised by ``nefos-customize`` against a file disk, as root,
then read back through a read-only loop mount; ``create`` by hand against a live nefos
API with a server made with a key and personality. With the cluster: a kvm (QEMU TCG)
guest booting such an image prints the files the provider wrote.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
import secrets
import shutil
import stat
import struct
import subprocess
import time
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nefos.backends import base
from nefos.backends.base import InstanceSpec
from nefos.backends.ops import CreateInstance, Op
from nefos.server.engines import Engines
from tests.backends.conftest import Ganeti, _unavailable
from tests.backends.test_ganeti_backend import until_status
from tests.backends.test_ganeti_engine import Serial
from tests.backends.test_ganeti_os import (  # noqa: F401  (fixtures)
    OS_DIR,
    free_port,
    guest,
    installed_os,
    nefos_on_ganeti,
    run,
    serving,
)
from tests.compute.conftest import stream
from tests.compute.test_console import RfbClient

CUSTOMIZE = str(OS_DIR / "nefos-customize")
MiB = 1 << 20
PASSWORD = "Customised-Passw0rd"
OLD_KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOldOldOldOldOldOldOldOldOldOldOldOldOldOld old@image"
)
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINewNewNewNewNewNewNewNewNewNewNewNewNewNew user@nefos"
ALICE = 1000
STAFF = 50


def crypt_matches(password: str, hashed: str) -> bool:
    """glibc's crypt(3), not openssl, checks the hash: what login in the guest does."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt
    return hashed.startswith("$6$") and crypt.crypt(password, hashed) == hashed


@pytest.fixture(autouse=True)
def tools() -> None:
    """Loop devices and mounts need root; images are made with e2fsprogs and sfdisk."""
    if os.geteuid() != 0:
        _unavailable("customising an image mounts it on a loop device: this needs root")
    for tool in ("mkfs.ext4", "sfdisk", "losetup", "partx", "openssl"):
        if shutil.which(tool) is None:
            _unavailable(f"{tool} is not installed (scripts/ganeti-dev.sh install)")


def guest_tree(root: Path, extra: dict[str, str] | None = None) -> Path:
    """A small Debian-like root: users root and alice (who already has a key), group
    staff, a shadow file as Debian has it (0640 root:shadow)."""
    files = {
        "etc/passwd": "root:x:0:0:root:/root:/bin/sh\n"
        f"alice:x:{ALICE}:{ALICE}::/home/alice:/bin/sh\n",
        "etc/shadow": "root:*:19000:0:99999:7:::\nalice:!:19000:0:99999:7:::\n"
        "daemon:*:19000:0:99999:7:::\n",
        "etc/group": f"root:x:0:\nshadow:x:42:\nstaff:x:{STAFF}:\nalice:x:{ALICE}:\n",
        "etc/hosts": "127.0.0.1\tlocalhost\n127.0.1.1\tdebian\n",
        "etc/hostname": "debian\n",
        "home/alice/.ssh/authorized_keys": OLD_KEY + "\n",
        **(extra or {}),
    }
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (root / "root").mkdir(mode=0o700, exist_ok=True)
    os.chown(root / "etc/shadow", 0, 42)
    os.chmod(root / "etc/shadow", 0o640)
    for path in [root / "home/alice", *(root / "home/alice").rglob("*")]:
        os.chown(path, ALICE, ALICE)
    return root


def ext4(tree: Path, path: Path, size: int = 8 * MiB) -> bytes:
    """An ext4 file system holding ``tree`` (owners and modes kept): its bytes."""
    with path.open("wb") as sink:
        sink.truncate(size)
    done = subprocess.run(
        ["mkfs.ext4", "-q", "-F", "-E", "root_owner=0:0", "-d", str(tree), str(path)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    return path.read_bytes()


def partitioned(filesystem: bytes, path: Path, tail: bytes) -> int:
    """A disk with an MBR: partition 1 holds ``filesystem`` at 1 MiB, partition 2
    ``tail``. The offset of partition 1."""
    offset = MiB
    with path.open("wb") as sink:
        sink.truncate(offset + len(filesystem) + len(tail) + MiB)
    table = f"start=2048, size={len(filesystem) // 512}, type=83\ntype=83\n"
    done = subprocess.run(["sfdisk", "-q", str(path)], input=table, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    with path.open("r+b") as sink:
        sink.seek(offset)
        sink.write(filesystem)
        sink.write(tail)
    return offset


def configure(path: Path, properties: dict[str, str], **fields: Any) -> Path:
    config = {
        "server": {"id": 42, "name": "web", "instance": "snf-42"},
        "image": {"id": "i", "size": 0, "hash": "", "properties": properties},
        "password": PASSWORD,
        "public_keys": [],
        "personality": [],
        "user_data": None,
        **fields,
    }
    path.write_text(json.dumps(config))
    return path


def customize(config: Path, disk: Path, tmp: Path) -> subprocess.CompletedProcess[str]:
    """The script as ``create`` runs it (Ganeti's PATH), its temporary mount point under
    ``tmp``; afterwards nothing of it may remain: no mount, no loop device."""
    tmp.mkdir(exist_ok=True)
    done = subprocess.run(
        [CUSTOMIZE, str(config), str(disk)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/sbin:/bin:/usr/sbin:/usr/bin", "TMPDIR": str(tmp)},
    )
    assert subprocess.run(["losetup", "-j", str(disk)], capture_output=True).stdout == b""
    assert list(tmp.iterdir()) == []
    assert PASSWORD not in done.stdout + done.stderr
    return done


@contextlib.contextmanager
def inspected(disk: Path, offset: int = 0) -> Iterator[Path]:
    """The customised file system, read-only, through a loop mount of our own."""
    where = disk.with_name(disk.name + ".mnt")
    where.mkdir()
    mount = ["mount", "-t", "ext4", "-o", f"ro,loop,offset={offset}", str(disk), str(where)]
    done = subprocess.run(mount, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=True)
        where.rmdir()


def shadow(root: Path) -> dict[str, list[str]]:
    return {
        f[0]: f for f in (line.split(":") for line in (root / "etc/shadow").read_text().split())
    }


def owner_and_mode(path: Path) -> tuple[int, int, int]:
    st = path.lstat()
    return st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)


# -- without a cluster ----------------------------------------------------------------------


def test_a_linux_image_gets_the_password_keys_and_files(tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    ext4(guest_tree(tmp_path / "tree"), disk)
    config = configure(
        tmp_path / "config.json",
        {"osfamily": "linux", "users": "root alice"},  # property names in any case
        public_keys=[KEY, OLD_KEY],  # alice has OLD_KEY already: not twice
        personality=[
            {
                "path": "/etc/motd",
                "contents": base64.b64encode(b"Welcome\n").decode(),
                "owner": "alice",
                "group": "staff",
                "mode": 0o640,
            },
            {"path": "/opt/made/for/you", "contents": base64.b64encode(b"\0\1\2").decode()},
        ],
        user_data=base64.b64encode(b"#cloud-config\nruncmd: [true]\n").decode(),
    )
    done = customize(config, disk, tmp_path / "tmp")
    assert done.returncode == 0, done.stderr
    assert "set the password of root, alice" in done.stdout
    assert "wrote /etc/motd (8 bytes, mode 0640)" in done.stdout

    with inspected(disk) as root:
        entries = shadow(root)
        for user in ("root", "alice"):
            assert crypt_matches(PASSWORD, entries[user][1]), entries[user]
            assert entries[user][2] != "19000" and entries[user][3:] == [
                "0",
                "99999",
                "7",
                "",
                "",
                "",
            ]
        assert entries["daemon"][1] == "*"  # not in USERS
        assert owner_and_mode(root / "etc/shadow") == (0, 42, 0o640)  # as it was

        assert (root / "root/.ssh/authorized_keys").read_text() == f"{KEY}\n{OLD_KEY}\n"
        assert owner_and_mode(root / "root/.ssh") == (0, 0, 0o700)
        assert owner_and_mode(root / "root/.ssh/authorized_keys") == (0, 0, 0o600)
        alice = root / "home/alice/.ssh"
        assert (alice / "authorized_keys").read_text() == f"{OLD_KEY}\n{KEY}\n"
        assert owner_and_mode(alice) == (ALICE, ALICE, 0o700)
        assert owner_and_mode(alice / "authorized_keys") == (ALICE, ALICE, 0o600)

        assert (root / "etc/motd").read_bytes() == b"Welcome\n"
        assert owner_and_mode(root / "etc/motd") == (ALICE, STAFF, 0o640)
        assert (root / "opt/made/for/you").read_bytes() == b"\0\1\2"
        assert owner_and_mode(root / "opt/made/for/you") == (0, 0, 0o440)  # Synnefo's default
        assert owner_and_mode(root / "opt/made") == (0, 0, 0o755)

        assert (root / "etc/hostname").read_text() == "snf-42\n"
        assert (root / "etc/hosts").read_text() == "127.0.0.1\tlocalhost\n127.0.1.1\tsnf-42\n"
        seed = root / "var/lib/cloud/seed/nocloud"
        assert (seed / "user-data").read_bytes() == b"#cloud-config\nruncmd: [true]\n"
        assert "instance-id: snf-42" in (seed / "meta-data").read_text()
        assert owner_and_mode(seed / "user-data") == (0, 0, 0o600)
        assert not [p.name for p in root.rglob(".nefos-*")]  # no temporary file left


def test_the_root_file_system_is_the_partition_the_image_names(tmp_path: Path) -> None:
    filesystem = ext4(guest_tree(tmp_path / "tree"), tmp_path / "fs")
    disk = tmp_path / "disk"
    tail = secrets.token_bytes(MiB)
    offset = partitioned(filesystem, disk, tail)
    before = disk.read_bytes()
    config = configure(
        tmp_path / "config.json", {"OSFAMILY": "linux", "ROOT_PARTITION": "1"}, public_keys=[KEY]
    )
    done = customize(config, disk, tmp_path / "tmp")
    assert done.returncode == 0, done.stderr
    after = disk.read_bytes()
    assert after[:offset] == before[:offset]  # the partition table
    end = offset + len(filesystem)
    assert after[end:] == before[end:]  # partition 2 and what follows: untouched
    with inspected(disk, offset) as root:
        assert crypt_matches(PASSWORD, shadow(root)["root"][1])
        assert (root / "root/.ssh/authorized_keys").read_text() == f"{KEY}\n"

    for root_partition, message in [
        ("3", "the image has no partition 3 (its ROOT_PARTITION)"),
        ("first", "the image's ROOT_PARTITION 'first' is not a partition number"),
        ("2", "cannot mount the image's root file system (partition 2)"),
    ]:
        configure(config, {"OSFAMILY": "linux", "ROOT_PARTITION": root_partition})
        done = customize(config, disk, tmp_path / "tmp")
        assert done.returncode == 1 and f"nefos: cannot customise the image: {message}" in (
            done.stderr
        ), done.stderr
    assert disk.read_bytes()[end:] == before[end:]


def test_what_cannot_be_applied_fails_the_build_saying_why(tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    ext4(guest_tree(tmp_path / "tree"), disk)
    config = tmp_path / "config.json"
    linux = {"OSFAMILY": "linux"}
    for properties, fields, message in [
        ({**linux, "USERS": "root bob"}, {}, "the image has no user 'bob' in /etc/shadow"),
        (
            linux,
            {"personality": [{"path": "/etc/x", "contents": "", "owner": "mallory"}]},
            "personality file /etc/x: the image has no user 'mallory'",
        ),
        (
            linux,
            {"personality": [{"path": "/etc/x", "contents": "", "group": "wheel"}]},
            "personality file /etc/x: the image has no group 'wheel'",
        ),
        (linux, {"personality": [{"path": "/home", "contents": ""}]}, "/home is a directory"),
        (linux, {"password": "two\nlines"}, "the admin password is empty or spans lines"),
        (linux, {"public_keys": [f"{KEY}\n{OLD_KEY}"]}, "an SSH public key spans lines"),
        (
            {**linux, "ROOT_PARTITION": "1"},
            {},
            "cannot read the image's partition table",  # a bare file system has none
        ),
    ]:
        configure(config, properties, **fields)
        done = customize(config, disk, tmp_path / "tmp")
        assert done.returncode == 1, (message, done.stdout)
        assert f"nefos: cannot customise the image: {message}" in done.stderr, done.stderr
        assert done.stderr.count("\n") == 1  # one line, for the user's diagnostic


def test_other_images_are_left_as_written_with_a_warning(tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    ext4(guest_tree(tmp_path / "tree"), disk)
    before = hashlib.sha256(disk.read_bytes()).hexdigest()
    config = tmp_path / "config.json"
    for properties, family in [({"OSFAMILY": "windows"}, "windows"), ({}, "not set")]:
        configure(config, properties, public_keys=[KEY])
        done = customize(config, disk, tmp_path / "tmp")
        assert done.returncode == 0, done.stderr
        assert f"nefos: warning: the image's OSFAMILY is {family}" in done.stderr
        assert "(password, SSH keys not applied)" in done.stderr
        assert hashlib.sha256(disk.read_bytes()).hexdigest() == before


def test_symbolic_links_in_the_image_lead_nowhere_outside_it(tmp_path: Path) -> None:
    """The image is the user's: a link in it must not make root write on the node."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "motd").write_text("the node's\n")
    tree = guest_tree(tmp_path / "tree")
    (tree / "srv").mkdir()
    (tree / "srv/out").symlink_to(outside)  # an absolute path on the node
    (tree / "etc/motd").symlink_to(outside / "motd")
    disk = tmp_path / "disk"
    ext4(tree, disk)
    config = configure(
        tmp_path / "config.json",
        {"OSFAMILY": "linux"},
        personality=[{"path": "/srv/out/planted", "contents": "eA=="}],
    )
    done = customize(config, disk, tmp_path / "tmp")
    assert done.returncode == 1
    assert "/srv/out is a symbolic link in the image: not followed" in done.stderr
    assert sorted(p.name for p in outside.iterdir()) == ["motd"]

    # A link in the file's own place is replaced inside the guest, not written through.
    configure(
        config, {"OSFAMILY": "linux"}, personality=[{"path": "/etc/motd", "contents": "eA=="}]
    )
    done = customize(config, disk, tmp_path / "tmp")
    assert done.returncode == 0, done.stderr
    assert (outside / "motd").read_text() == "the node's\n"
    with inspected(disk) as root:
        assert (root / "etc/motd").is_file() and not (root / "etc/motd").is_symlink()
        assert (root / "etc/motd").read_bytes() == b"x"

    # /etc itself a link out of the guest, relative and escaping: nothing is read or written.
    escape = f"nefos-escape-{uuid.uuid4().hex[:8]}"
    shutil.rmtree(tree / "etc")
    (tree / "etc").symlink_to("/tmp/../..")
    ext4(tree, disk)
    configure(
        config, {"OSFAMILY": "linux"}, personality=[{"path": f"/etc/{escape}", "contents": ""}]
    )
    done = customize(config, disk, tmp_path / "tmp")
    assert done.returncode == 1
    assert "/etc is a symbolic link in the image: not followed" in done.stderr
    assert not Path("/", escape).exists()


async def new_linux_image(
    engines: Engines, data: bytes, properties: dict[str, str]
) -> tuple[str, str]:
    user_row, _ = await engines.identity.create_user(f"cz-{uuid.uuid4().hex[:6]}@example.org")
    user = str(user_row.id)
    await engines.storage.create_container(user, "images")
    await engines.storage.put_object(user, "images", "linux.raw", stream(data))
    image = await engines.images.register(
        user, f"pithos://{user}/images/linux.raw", "Linux", disk_format="raw", properties=properties
    )
    return user, str(image.id)


async def test_create_customises_what_the_server_was_created_with(
    engines: Engines, tmp_path: Path
) -> None:
    """``create`` by hand against a live nefos API: the key the user named, the
    personality and user data given at create reach the guest's file system."""
    port = free_port("127.0.0.1")
    engines.settings.compute.vmapi_url = f"http://127.0.0.1:{port}"
    compute = engines.compute
    await compute.ensure_embedded()
    data = ext4(guest_tree(tmp_path / "tree"), tmp_path / "fs")
    user, image_id = await new_linux_image(engines, data, {"OSFAMILY": "linux"})
    keypair = (await engines.keypairs.generate(user, "laptop")).keypair
    flavor = await compute.create_flavor(1, 128, 1)
    cluster = compute.cluster(await compute.backend("embedded"))
    specs: list[InstanceSpec] = []
    submit = cluster.submit

    async def recording(op: Op) -> int:
        if isinstance(op, CreateInstance):
            specs.append(op.spec)
        return await submit(op)

    cluster.submit = recording  # type: ignore[method-assign]
    view, password = await compute.create_server(
        user,
        "customised",
        image_id,
        flavor.id,
        key_names=["laptop"],
        personality=[{"path": "/etc/nefos-note", "contents": base64.b64encode(b"hi\n").decode()}],
        user_data=base64.b64encode(b"#cloud-config\n").decode(),
    )
    disk = tmp_path / "disk0"
    with disk.open("wb") as sink:
        sink.truncate(16 * MiB)
    env = {
        "PATH": "/sbin:/bin:/usr/sbin:/usr/bin",
        "OS_API_VERSION": "20",
        "INSTANCE_NAME": specs[0].name,
        "DISK_COUNT": "1",
        "DISK_0_PATH": str(disk),
        "OSP_CONFIG_URL": specs[0].osparams["config_url"],
    }
    async with serving(engines, "127.0.0.1", port):
        code, out, err = await run([str(OS_DIR / "create")], env=env)
        assert code == 0, out + err

        # What cannot be applied fails the build with one line saying why: Ganeti's job
        # error and the server's diagnostic.
        await compute.create_server(
            user,
            "unowned",
            image_id,
            flavor.id,
            personality=[{"path": "/etc/x", "contents": "", "owner": "mallory"}],
        )
        other = tmp_path / "disk1"
        other.write_bytes(bytes(16 * MiB))
        failing = {
            **env,
            "DISK_0_PATH": str(other),
            "OSP_CONFIG_URL": specs[1].osparams["config_url"],
        }
        code, _, failed = await run([str(OS_DIR / "create")], env=failing)
        assert code == 1
        assert failed.splitlines()[-1] == (
            "nefos: cannot customise the image: "
            "personality file /etc/x: the image has no user 'mallory'"
        )
    assert "nefos: customised the image" in out and password not in out + err
    with inspected(disk) as root:
        assert crypt_matches(password, shadow(root)["root"][1])
        assert (root / "root/.ssh/authorized_keys").read_text() == keypair.public_key.strip() + "\n"
        assert (root / "etc/nefos-note").read_bytes() == b"hi\n"
        assert (root / "etc/hostname").read_text() == f"{base.instance_name(view.server.id)}\n"
        assert (root / "var/lib/cloud/seed/nocloud/user-data").read_bytes() == b"#cloud-config\n"


# -- on the cluster ----------------------------------------------------------------------------


def guest_files(serial: Serial, timeout: float) -> dict[str, list[str]]:
    """One whole round of the test guest's NEFOS-GUEST-FILE lines: path -> lines."""
    serial.wait_for(b"NEFOS-GUEST-FILES-BEGIN", timeout)
    # Drop what came before (perhaps the tail of a round): the next END closes this one.
    serial.output = serial.output[serial.output.index(b"NEFOS-GUEST-FILES-BEGIN") :]
    serial.wait_for(b"NEFOS-GUEST-FILES-END", timeout)
    files: dict[str, list[str]] = {}
    body = serial.output[: serial.output.index(b"NEFOS-GUEST-FILES-END")]
    for line in body.decode(errors="replace").splitlines():
        line = line.strip()
        if line.startswith("NEFOS-GUEST-FILE "):
            path, _, text = line.removeprefix("NEFOS-GUEST-FILE ").partition(" ")
            files.setdefault(path, []).append(text)
    return files


@pytest.mark.slow
async def test_kvm_guest_sees_its_password_key_and_files(
    ganeti: Ganeti,
    engines: Engines,
    installed_os: str,  # noqa: F811
    guest: tuple[str, str],  # noqa: F811
    timings: list[tuple[str, float]],
    tmp_path: Path,
) -> None:
    """A server created through nefos on kvm with a key and a personality file, from a
    partitioned Linux image: the provider writes and customises it, and the booted guest
    mounts its root partition and prints what it finds there."""
    compute = engines.compute
    kernel, initrd = guest
    shown = ["/root/.ssh/authorized_keys", "/etc/nefos-note", "/etc/hostname", "/etc/shadow"]
    tree = guest_tree(tmp_path / "tree", {"nefos-guest-show": "\n".join(shown) + "\n"})
    filesystem = ext4(tree, tmp_path / "fs")
    disk = tmp_path / "image"
    partitioned(filesystem, disk, b"")
    hvparams = {"kernel_path": kernel, "initrd_path": initrd, "vnc_bind_address": "0.0.0.0"}
    async with nefos_on_ganeti(engines, ganeti, installed_os, "kvm", hvparams):
        user, image_id = await new_linux_image(
            engines, disk.read_bytes(), {"OSFAMILY": "linux", "ROOT_PARTITION": "1"}
        )
        keypair = (await engines.keypairs.generate(user, "laptop")).keypair
        note = f"NOTE {uuid.uuid4().hex}"
        flavor = await compute.create_flavor(1, 128, 1, "file")
        submitted = time.monotonic()
        view, password = await compute.create_server(
            user,
            "kvm-custom",
            image_id,
            flavor.id,
            key_names=["laptop"],
            personality=[
                {"path": "/etc/nefos-note", "contents": base64.b64encode(note.encode()).decode()}
            ],
        )
        server_id, name = view.server.id, base.instance_name(view.server.id)
        await until_status(engines, user, server_id, "ACTIVE", within=90)
        timings.append(("customised: create -> ACTIVE (kvm)", time.monotonic() - submitted))

        serial = Serial(str(ganeti.kvm_ctrl_dir / f"{name}.serial"), timeout=10)
        try:
            files = await asyncio.to_thread(guest_files, serial, 60)
        finally:
            serial.close()
        timings.append(("customised: create -> guest read files", time.monotonic() - submitted))
        assert files["/root/.ssh/authorized_keys"] == [keypair.public_key.strip()]
        assert files["/etc/nefos-note"] == [note]
        assert files["/etc/hostname"] == [name]
        root = next(line.split(":") for line in files["/etc/shadow"] if line.startswith("root:"))
        assert crypt_matches(password, root[1])

        # The same guest's console, through the API's ticket and the proxy (one boot).
        ticket = await compute.console(user, server_id, "vnc")
        viewer = RfbClient(*await asyncio.open_connection(ticket["host"], ticket["port"]))
        try:
            assert await viewer.authenticate(ticket["password"]) == (0, "")
            viewer.writer.write(bytes([1]))  # ClientInit, shared
            width, height = struct.unpack("!HH", await viewer.read(4))
            assert width > 0 and height > 0  # QEMU's ServerInit, relayed
        finally:
            viewer.close()

        await compute.delete_server(user, server_id)
        await until_status(engines, user, server_id, "DELETED", within=60)
