"""Server consoles on a real Ganeti: the cluster says where an instance's VNC server is,
and the console proxy takes a VNC client there.

The kvm instance is diskless and boots the dev cluster's guest initramfs, with VNC on
every address of the node (``vnc_bind_address=0.0.0.0``, what clusters usually set). The
dev cluster's serial console stays on: QEMU serves VNC all the same (only Ganeti's own
console resource then points at the serial one, and nefos does not ask it).
"""

from __future__ import annotations

import asyncio
import struct
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from nefos.backends.base import ConsoleInfo, InstanceSpec
from nefos.backends.ganeti.cluster import GanetiCluster
from nefos.backends.ops import CreateInstance, ShutdownInstance
from nefos.compute.console import ConsoleProxy, console_for, vnc_response
from nefos.core import errors
from tests.backends.conftest import Ganeti


def cluster_for(ganeti: Ganeti, hypervisor: str, **hvparams: object) -> GanetiCluster:
    return GanetiCluster(
        "ganeti-console",
        ganeti.rapi_url,
        ganeti.rapi_user,
        ganeti.rapi_password,
        certificate=str(ganeti.rapi_cert),
        hypervisor=hypervisor,
        node=ganeti.node,
        hvparams=hvparams,
    )


def spec(name: str) -> InstanceSpec:
    return InstanceSpec(
        name=name, vcpus=1, memory=128, disk=0, disk_template="diskless", os="noop", image={}
    )


@pytest.fixture
async def proxy() -> AsyncIterator[ConsoleProxy]:
    proxy = ConsoleProxy("127.0.0.1", "0", seconds=30)
    yield proxy
    await proxy.close()


async def read(reader: asyncio.StreamReader, size: int) -> bytes:
    return await asyncio.wait_for(reader.readexactly(size), 15)


INSTANCES = {  # name: (hvparams, network_port, running)
    "snf-ip": ({"vnc_bind_address": "198.18.0.7"}, 11000, True),
    "snf-any": ({"vnc_bind_address": "0.0.0.0"}, 11001, True),
    "snf-any6": ({"vnc_bind_address": "::"}, 11002, True),
    "snf-iface": ({"vnc_bind_address": "br0"}, 11003, True),
    "snf-unix": ({"vnc_bind_address": "/var/run/vnc"}, 11004, True),
    "snf-novnc": ({"vnc_bind_address": ""}, 11005, True),
    "snf-fake": ({}, 0, True),
    "snf-down": ({"vnc_bind_address": "0.0.0.0"}, 11006, False),
    "snf-pwd": ({"vnc_bind_address": "0.0.0.0", "vnc_password_file": "/etc/vnc"}, 11007, True),
    "snf-tls": ({"vnc_bind_address": "0.0.0.0", "vnc_tls": True}, 11008, True),
}


def fake_rapi(request: httpx.Request) -> httpx.Response:
    name = request.url.path.rsplit("/", 1)[1]
    if request.url.path == "/2/nodes/node1":
        return httpx.Response(200, json={"name": "node1", "pip": "10.0.0.1", "sip": "10.1.0.1"})
    if name in INSTANCES:
        hvparams, port, running = INSTANCES[name]
        body = {"name": name, "pnode": "node1", "network_port": port, "oper_state": running}
        return httpx.Response(200, json={**body, "hvparams": hvparams})
    return httpx.Response(404, json={"code": 404, "explain": f"Instance '{name}' not known"})


@pytest.mark.parametrize(
    ("instance", "host", "port"),
    [
        ("snf-ip", "198.18.0.7", 11000),
        ("snf-any", "10.0.0.1", 11001),  # a wildcard: the primary node's address
        ("snf-any6", "10.0.0.1", 11002),
        ("snf-iface", "10.0.0.1", 11003),
    ],
)
async def test_where_the_vnc_server_is(instance: str, host: str, port: int) -> None:
    cluster = GanetiCluster(
        "g", "https://g.test:5080", "u", "p", transport=httpx.MockTransport(fake_rapi)
    )
    try:
        assert await cluster.console(instance) == ConsoleInfo("vnc", host, port, None)
    finally:
        await cluster.close()


@pytest.mark.parametrize(
    ("instance", "error", "match"),
    [
        ("snf-unix", errors.Conflict, "no VNC console"),
        ("snf-novnc", errors.Conflict, "no VNC console"),
        ("snf-fake", errors.Conflict, "no VNC console"),
        ("snf-down", errors.Conflict, "not running"),
        ("snf-pwd", errors.NotImplementedYet, "not supported yet"),
        ("snf-tls", errors.NotImplementedYet, "not supported yet"),
        ("snf-gone", errors.NotFound, "not known"),
    ],
)
async def test_consoles_nefos_cannot_reach(instance: str, error: type, match: str) -> None:
    cluster = GanetiCluster(
        "g", "https://g.test:5080", "u", "p", transport=httpx.MockTransport(fake_rapi)
    )
    try:
        with pytest.raises(error, match=match):
            await cluster.console(instance)
    finally:
        await cluster.close()


@pytest.mark.slow
async def test_a_kvm_guest_console_through_the_proxy(
    ganeti: Ganeti,
    instance_name: str,
    proxy: ConsoleProxy,
    timings: list[tuple[str, float]],
) -> None:
    """``console()`` finds QEMU's VNC server on the node (the wildcard bind address is
    replaced by the node's address), and a VNC client that answers the ticket's challenge
    gets QEMU's ServerInit through the proxy, then framebuffer updates on request."""
    cluster = cluster_for(ganeti, "kvm", vnc_bind_address="0.0.0.0")
    try:
        started = time.monotonic()
        job = await cluster.wait(await cluster.submit(CreateInstance(spec(instance_name))))
        assert job["status"] == "success", job
        timings.append(("console: kvm create (diskless, started)", time.monotonic() - started))

        console = await cluster.console(instance_name)
        details = await cluster.rapi.instance(instance_name)
        assert console.kind == "vnc"
        nodes = {node["name"]: node for node in await cluster.rapi.nodes()}
        assert console.host == nodes[ganeti.node]["pip"] != "0.0.0.0"
        assert console.port == details["network_port"] and console.port > 5900
        assert console.password is None

        started = time.monotonic()
        ticket = await console_for(proxy, cluster, instance_name)
        reader, writer = await asyncio.open_connection(ticket.host, ticket.port)
        try:
            assert await read(reader, 12) == b"RFB 003.008\n"
            writer.write(b"RFB 003.008\n")
            assert await read(reader, 2) == bytes([1, 2])
            writer.write(bytes([2]))
            writer.write(vnc_response(await read(reader, 16), ticket.password))
            assert await read(reader, 4) == bytes(4)  # SecurityResult: OK
            writer.write(bytes([1]))  # ClientInit, shared
            width, height = struct.unpack("!HH", await read(reader, 4))
            pixel_format = await read(reader, 16)
            (length,) = struct.unpack("!I", await read(reader, 4))
            name = await read(reader, length)
            timings.append(("console: ticket to ServerInit", time.monotonic() - started))
            assert width > 0 and height > 0
            assert pixel_format[0] in (8, 16, 32)  # bits per pixel
            assert instance_name.encode() in name  # QEMU names the display after -name

            # FramebufferUpdateRequest (not incremental): QEMU answers with an update.
            writer.write(struct.pack("!BBHHHH", 3, 0, 0, 0, width, height))
            message_type, _, rectangles = struct.unpack("!BBH", await read(reader, 4))
            assert message_type == 0 and rectangles >= 1
        finally:
            writer.close()
    finally:
        await cluster.close()


async def test_consoles_ganeti_cannot_offer_are_refused(
    ganeti: Ganeti, instance_name: str, proxy: ConsoleProxy
) -> None:
    """An instance on the fake hypervisor has no VNC console, and a stopped one none
    either: conflicts, and no ticket opened."""
    cluster = cluster_for(ganeti, "fake")
    try:
        job = await cluster.wait(await cluster.submit(CreateInstance(spec(instance_name))))
        assert job["status"] == "success", job
        with pytest.raises(errors.Conflict, match="no VNC console"):
            await console_for(proxy, cluster, instance_name)
        assert proxy.listening == []

        job = await cluster.wait(await cluster.submit(ShutdownInstance(instance_name, 0)))
        assert job["status"] == "success", job
        with pytest.raises(errors.Conflict, match="not running"):
            await cluster.console(instance_name)
        with pytest.raises(errors.NotFound):
            await cluster.console(f"{instance_name}-missing")
    finally:
        await cluster.close()
