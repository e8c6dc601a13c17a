"""nefos's OS provider for Ganeti: its scripts alone, then a real guest booting an image.

Without a cluster: ``nefos ganeti install-os``, the checks of ``nefos-write-image``,
``verify``, and ``create`` run by hand, with the environment Ganeti gives it, against a
live nefos API. With the cluster of ``scripts/ganeti-dev.sh``: a server created through
nefos on the kvm hypervisor (QEMU TCG), whose image the provider writes from nefos's
storage onto the instance's disk; the guest boots and prints the disk's first line on
its serial console.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import socket
import stat
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn

import nefos.backends.ganeti
from nefos.backends import base
from nefos.backends.base import InstanceSpec
from nefos.backends.ganeti import GanetiCluster, osprovider
from nefos.backends.ganeti.eventd import QueueWatcher
from nefos.backends.ops import CreateInstance, Op, RemoveInstance, ShutdownInstance
from nefos.blocks import BLOCK_SIZE, hashmap, merkle
from nefos.server.app import create_app
from nefos.server.engines import Engines
from tests.backends.conftest import SCRIPT, Ganeti, add_ganeti_backend, number_servers_apart
from tests.backends.test_ganeti_backend import fake_rapi, until_status
from tests.backends.test_ganeti_engine import Serial
from tests.compute.conftest import stream
from tests.conftest import NEFOS

OS_DIR = Path(nefos.backends.ganeti.__file__).parent / "os"
HOST_IP = "198.18.0.254"  # the root namespace's end of the cluster's network
DISK_LINE = b"NEFOS-GUEST-DISK"
MiB = 1 << 20


def image_data(marker: str, size: int) -> bytes:
    """A raw disk whose first line the test guest prints; random after it, so a wrong
    or missing byte anywhere changes the image's hash."""
    head = f"NEFOS-IMAGE {marker}\n".encode()
    return head + secrets.token_bytes(size - len(head))


def free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


@asynccontextmanager
async def serving(engines: Engines, host: str, port: int) -> AsyncIterator[None]:
    """nefos's API in this event loop, on the test's engines (its lifespan is the
    test's), so a script run meanwhile must not block the loop."""
    app = create_app(engines.settings, engines)
    server = uvicorn.Server(
        uvicorn.Config(app, host=host, port=port, lifespan="off", log_config=None)
    )
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + 10
    while not server.started:
        if task.done() or time.monotonic() > deadline:
            raise RuntimeError(f"nefos's API did not start on {host}:{port}")
        await asyncio.sleep(0.02)
    try:
        yield
    finally:
        server.should_exit = True
        await task


async def run(
    command: list[str], env: dict[str, str] | None = None, stdin: bytes | None = None
) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *command,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(stdin), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def new_image(engines: Engines, data: bytes) -> tuple[str, str]:
    """A user and an image of theirs holding ``data``."""
    user_row, _ = await engines.identity.create_user(f"os-{uuid.uuid4().hex[:6]}@example.org")
    user = str(user_row.id)
    await engines.storage.create_container(user, "images")
    await engines.storage.put_object(user, "images", "disk.raw", stream(data))
    image = await engines.images.register(
        user, f"pithos://{user}/images/disk.raw", "Raw disk", disk_format="raw"
    )
    return user, str(image.id)


# -- without a cluster ----------------------------------------------------------------------


def test_install_os_puts_a_valid_definition_in_place(tmp_path: Path) -> None:
    env = {**os.environ, "NEFOS_DATA_DIR": str(tmp_path / "data")}
    done = subprocess.run(
        [NEFOS, "ganeti", "install-os", "--target", str(tmp_path / "os"), "--name", "nefos"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "nefos+default" in done.stdout
    folder = tmp_path / "os" / "nefos"
    assert sorted(p.name for p in folder.iterdir()) == sorted(osprovider.FILES)
    for name, mode in osprovider.FILES.items():
        assert stat.S_IMODE((folder / name).stat().st_mode) == mode, name
        assert (folder / name).read_bytes() == (OS_DIR / name).read_bytes()
    # What Ganeti's OS loader insists on for API 20 (backend._TryOSFromDisk).
    assert "20" in (folder / "ganeti_api_version").read_text().split()
    assert (folder / "variants.list").read_text().split() == ["default"]
    assert [line.split()[0] for line in (folder / "parameters.list").read_text().splitlines()] == [
        "config_url"
    ]
    bad = subprocess.run(
        [NEFOS, "ganeti", "install-os", "--target", str(tmp_path), "--name", "a+b"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert bad.returncode == 1 and "not an OS name" in bad.stderr


async def test_write_image_checks_size_and_hash(tmp_path: Path) -> None:
    data = image_data("checked", 2 * BLOCK_SIZE + 5)
    data = data[:BLOCK_SIZE] + bytes(BLOCK_SIZE) + data[2 * BLOCK_SIZE :]  # a zero block
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"image": {"id": "i", "size": len(data), "hash": ""}}))
    disk = tmp_path / "disk"
    writer = [str(OS_DIR / "nefos-write-image"), str(config), str(disk)]

    def configure(size: int, hash_: str) -> None:
        config.write_text(json.dumps({"image": {"id": "i", "size": size, "hash": hash_}}))

    with disk.open("wb") as sink:
        sink.truncate(16 * MiB)
    configure(len(data), merkle(hashmap(data)))  # nefos's own hash of the same bytes
    code, out, err = await run(writer, stdin=data)
    assert code == 0, err
    assert "hash checked" in out
    assert disk.stat().st_size == 16 * MiB  # written into, never truncated
    assert disk.read_bytes()[: len(data)] == data

    refusals = [
        (len(data), "0" * 64, data, "does not match its hash"),
        (len(data), merkle(hashmap(data)), data[:-1], f"ended after {len(data) - 1} of"),
        (len(data) - 1, merkle(hashmap(data)), data, "more data arrived"),
        (32 * MiB, merkle(hashmap(data)), data, "larger than the disk"),
    ]
    for size, hash_, given, message in refusals:
        configure(size, hash_)
        code, _, err = await run(writer, stdin=given)
        assert code == 1 and message in err, (message, err)
    code, _, err = await run([*writer[:2], str(tmp_path / "missing")], stdin=data)
    assert code == 1 and "cannot write the image" in err  # never creates a disk


async def test_verify_accepts_only_http_config_urls() -> None:
    verify = str(OS_DIR / "verify")
    for value, expected in [
        ("http://198.18.0.254:8000/vmapi/s", 0),
        ("https://nefos.example.org/vmapi/s", 0),
        (None, 0),  # cluster verification, without instance parameters
        ("", 1),
        ("file:///etc/shadow", 1),
    ]:
        env = {"PATH": "/usr/bin:/bin"}
        if value is not None:
            env["OSP_CONFIG_URL"] = value
        code, _, _ = await run([verify, "parameters"], env=env)
        assert code == expected, value
    code, _, err = await run([verify, "something"], env={"PATH": "/usr/bin:/bin"})
    assert code == 1 and "unknown check" in err


async def test_create_writes_the_image_once(engines: Engines, tmp_path: Path) -> None:
    """The ``create`` script by hand, with the environment Ganeti gives it, against a
    live nefos API: the disk gets the image; the same URL a second time gets nothing."""
    port = free_port("127.0.0.1")
    engines.settings.compute.vmapi_url = f"http://127.0.0.1:{port}"
    compute = engines.compute
    await compute.ensure_embedded()
    data = image_data("by-hand", 3 * MiB)
    user, image_id = await new_image(engines, data)
    flavor = await compute.create_flavor(1, 128, 1)
    cluster = compute.cluster(await compute.backend("embedded"))
    specs: list[InstanceSpec] = []
    submit = cluster.submit

    async def recording(op: Op) -> int:
        if isinstance(op, CreateInstance):
            specs.append(op.spec)
        return await submit(op)

    cluster.submit = recording  # type: ignore[method-assign]
    await compute.create_server(user, "by-hand", image_id, flavor.id)
    config_url = specs[0].osparams["config_url"]
    disk = tmp_path / "disk0"
    with disk.open("wb") as sink:
        sink.truncate(8 * MiB)
    env = {
        "PATH": "/sbin:/bin:/usr/sbin:/usr/bin",  # Ganeti's, for OS scripts
        "OS_API_VERSION": "20",
        "OS_NAME": "nefos",
        "OS_VARIANT": "default",
        "INSTANCE_NAME": specs[0].name,
        "DISK_COUNT": "1",
        "DISK_0_PATH": str(disk),
        "DISK_0_ACCESS": "rw",
        "NIC_COUNT": "0",
        "OSP_CONFIG_URL": config_url,
    }
    create = str(OS_DIR / "create")
    async with serving(engines, "127.0.0.1", port):
        code, out, err = await run([create], env=env)
        assert code == 0, out + err
        assert disk.read_bytes() == data + bytes(8 * MiB - len(data))
        secret = config_url.rsplit("/", 1)[1]
        assert secret not in out + err

        code, out, err = await run([create], env=env)  # the configuration is gone
        assert code == 1
        assert "nefos: cannot fetch the build configuration" in err
        assert "returned error: 404" in err and secret not in out + err

        code, _, err = await run([create], env={**env, "OSP_CONFIG_URL": ""})
        assert code == 1 and "no config_url OS parameter" in err


async def test_the_cluster_asks_for_its_os_with_the_spec_parameters() -> None:
    seen: list[httpx.Request] = []
    spec = InstanceSpec(
        "snf-1", 1, 128, 1, "file", "nefos+default", {}, osparams={"config_url": "http://n/v/s"}
    )
    for os_type, expected in [(None, "nefos+default"), ("noop", "noop")]:
        cluster = GanetiCluster(
            "g",
            "https://ganeti.test:5080",
            "nefos",
            "pw",
            os_type=os_type,
            hvparams={"initrd_path": "/boot/x"},
            transport=fake_rapi(seen),
        )
        assert await cluster.submit(CreateInstance(spec)) == 17
        body = json.loads(seen[-1].content)
        assert body["os_type"] == expected
        assert body["osparams"] == {"config_url": "http://n/v/s"}
        assert body["hvparams"] == {"initrd_path": "/boot/x"}
        await cluster.close()


# -- on the cluster ----------------------------------------------------------------------------


@pytest.fixture
def installed_os(ganeti: Ganeti) -> Iterator[str]:
    """nefos's provider where the cluster's node looks for OS definitions (the namespace
    shares this filesystem); removed afterwards if this test put it there."""
    target = osprovider.DEFAULT_TARGET
    folder = target / osprovider.DEFAULT_NAME
    existed, target_existed = folder.exists(), target.exists()
    done = subprocess.run(
        [NEFOS, "ganeti", "install-os", "--target", str(target)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    yield osprovider.os_type()
    if not existed:
        shutil.rmtree(folder)
    if not target_existed and not any(target.iterdir()):
        target.rmdir()


@pytest.fixture
def guest(tmp_path: Path) -> tuple[str, str]:
    """The test guest's kernel and an initramfs built now, with the disk-reading init,
    whatever the running cluster was started with."""
    done = subprocess.run(
        ["bash", str(SCRIPT), "guest-initramfs", str(tmp_path / "guest")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    found = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    return found["KERNEL"], found["INITRD"]


@asynccontextmanager
async def nefos_on_ganeti(
    engines: Engines,
    ganeti: Ganeti,
    os_type: str,
    hypervisor: str,
    hvparams: dict[str, str] | None = None,
    vmapi_path: str = "",
) -> AsyncIterator[GanetiCluster]:
    """Test (c)'s whole path, plus what the provider needs: nefos's API on the root
    namespace's end of the cluster's network, where the node fetches from (at
    ``vmapi_path`` below its root, to misconfigure it). Instances a test leaves behind
    are forced off and removed."""
    compute = engines.compute
    await number_servers_apart(engines, 9)
    port = free_port(HOST_IP)
    engines.settings.compute.vmapi_url = f"http://{HOST_IP}:{port}{vmapi_path}"
    # The backend row has no OS or hypervisor settings (yet): the cluster is made here and
    # handed to compute before the row is added, which then uses it.
    name = f"ganeti-{hypervisor}"
    compute._clusters[name] = cluster = GanetiCluster(
        name,
        ganeti.rapi_url,
        ganeti.rapi_user,
        ganeti.rapi_password,
        certificate=str(ganeti.rapi_cert),
        os_type=os_type,
        hypervisor=hypervisor,
        hvparams=hvparams,
    )
    watcher = QueueWatcher(ganeti.queue_dir, name, engines.bus.publish, replay_seconds=0)
    eventd = asyncio.create_task(watcher.run())
    try:
        await asyncio.wait_for(watcher.ready.wait(), 10)
        assert os_type in await cluster.rapi.operating_systems()
        backend = await add_ganeti_backend(engines, ganeti, name)
        assert backend.hypervisor == hypervisor
        await engines.start_dispatcher()
        async with serving(engines, HOST_IP, port):
            yield cluster
    finally:
        eventd.cancel()
        await asyncio.gather(eventd, return_exceptions=True)
        ours = {
            base.instance_name(v.server.id)
            for v in await compute.servers(None, include_deleted=True)
        }
        for leftover in ours & set(await cluster.instances()):
            await cluster.wait(
                await cluster.submit(ShutdownInstance(leftover, grace_seconds=0)), within=60
            )
            await cluster.wait(await cluster.submit(RemoveInstance(leftover)), within=60)


@pytest.mark.slow
async def test_kvm_guest_boots_the_image_the_provider_wrote(
    ganeti: Ganeti,
    engines: Engines,
    installed_os: str,
    guest: tuple[str, str],
    timings: list[tuple[str, float]],
) -> None:
    """An image registered in nefos, a server created through nefos on kvm: the create job
    runs nefos's OS provider, which fetches the build configuration and the image from
    nefos's vmapi and writes it onto the disk; the guest boots and reads it back."""
    began = time.monotonic()
    compute = engines.compute
    kernel, initrd = guest
    hvparams = {"kernel_path": kernel, "initrd_path": initrd}
    async with nefos_on_ganeti(engines, ganeti, installed_os, "kvm", hvparams) as cluster:
        marker = uuid.uuid4().hex
        user, image_id = await new_image(engines, image_data(marker, MiB))
        flavor = await compute.create_flavor(1, 128, 1, "file")
        submitted = time.monotonic()
        view, password = await compute.create_server(user, "kvm-guest", image_id, flavor.id)
        server_id, name = view.server.id, base.instance_name(view.server.id)
        assert view.status == "BUILD"
        active = await until_status(engines, user, server_id, "ACTIVE", within=60)
        timings.append(("os provider: create -> ACTIVE (kvm)", time.monotonic() - submitted))
        assert active.progress == 100

        serial = Serial(str(ganeti.kvm_ctrl_dir / f"{name}.serial"), timeout=10)
        try:
            line = await asyncio.to_thread(serial.wait_for, DISK_LINE, 60)
        finally:
            serial.close()
        timings.append(("os provider: create -> guest read its disk", time.monotonic() - submitted))
        assert line == f"NEFOS-GUEST-DISK NEFOS-IMAGE {marker}".encode()

        # The build is over: its URL opens nothing, and no secret went through Ganeti.
        job_id = next(j.job_id for j in await compute.jobs(server_id) if j.opcode == base.OP_CREATE)
        job = await cluster.rapi.job(job_id)
        config_url = job["ops"][0]["osparams"]["config_url"]
        assert config_url.startswith(f"{engines.settings.compute.vmapi_url}/vmapi/")
        async with httpx.AsyncClient() as http:
            assert (await http.get(config_url)).status_code == 404
            assert (await http.get(config_url + "/image")).status_code == 404
        assert password not in json.dumps(job)
        log = await asyncio.to_thread(_os_log, f"add-{installed_os}-{name}-*.log")
        assert f"({MiB} bytes, hash checked)" in log
        assert password not in log and config_url.rsplit("/", 1)[1] not in log

        started = time.monotonic()
        await compute.delete_server(user, server_id)
        gone = await until_status(engines, user, server_id, "DELETED", within=60)
        timings.append(("os provider: delete -> DELETED (kvm)", time.monotonic() - started))
        assert gone.server.deleted and name not in await cluster.instances()
    timings.append(("os provider: the whole kvm test", time.monotonic() - began))


async def test_a_failed_build_tells_the_user_why(
    ganeti: Ganeti, engines: Engines, installed_os: str
) -> None:
    """A node that cannot get the build configuration (here nefos's vmapi URL is
    misconfigured) fails the create job with the provider's reason, which the server's
    diagnostic shows. The fake hypervisor: the OS scripts run, no guest does."""
    compute = engines.compute
    async with nefos_on_ganeti(
        engines, ganeti, installed_os, "fake", vmapi_path="/nowhere"
    ) as cluster:
        user, image_id = await new_image(engines, image_data("never", MiB))
        flavor = await compute.create_flavor(1, 128, 1, "file")
        view, _ = await compute.create_server(user, "misconfigured", image_id, flavor.id)
        failed = await until_status(engines, user, view.server.id, "ERROR", within=60)
        message = failed.diagnostics[0].message
        assert "OS create script failed" in message
        assert "nefos: cannot fetch the build configuration from " in message
        assert "/nowhere/vmapi/<secret>" in message and "returned error: 404" in message
        await compute.delete_server(user, view.server.id)
        await until_status(engines, user, view.server.id, "DELETED", within=60)
        assert base.instance_name(view.server.id) not in await cluster.instances()


def _os_log(pattern: str) -> str:
    """The OS scripts' logs Ganeti keeps on the node (create: ``add-<os>-<name>-*``)."""
    return "".join(path.read_text() for path in Path("/var/log/ganeti/os").glob(pattern))
