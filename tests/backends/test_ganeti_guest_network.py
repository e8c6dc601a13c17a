"""Issue 20 end to end: guests that nefos makes on the real Ganeti, wired by nefos's KVM
ifup hook and answered by its responder (docs/network.md, "Ganeti" and "Data plane").

The data plane is installed into the dev cluster's namespaces as an operator would
(``scripts/ganeti-dev.sh exec nefos ganeti install-network``) for this module only, and
removed again (responder stopped by its pid, hook deleted): the other Ganeti tests keep
Ganeti's own ifup. Three KVM (QEMU TCG) guests are made through nefos's compute service
and boot the dev guest with ``nefos.net=dhcp nefos.shell=ttyS0``: every NIC asks DHCP
for its address, the leases and SLAAC addresses show on the serial console, and a shell
there runs the pings.

- G1 and G2 on the private MAC_FILTERED network A, G2 also on the public network
  (bridged on the backend's link, IPv4 by DHCP, IPv6 by SLAAC);
- G3 on the private network B, same bridge, same subnet numbers;
- G2's NIC on A turns protected, then unprotected, while it runs: the node's chain
  follows (a new inbound TCP connection is dropped, then reaches it);
- a port made for G1 on B is hot-plugged into it, gets its lease, and reaches G3;
- a floating IP held by a port on G1 moves to G3 (the port deleted, another made).

The guests boot once and the tests share them, in file order; the last one deletes the
servers and finds no binding or rule of theirs left on the node.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import secrets
import signal
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import select

from nefos.backends import base
from nefos.backends.ganeti.cluster import GanetiCluster
from nefos.backends.ganeti.eventd import QueueWatcher
from nefos.backends.ops import RemoveInstance, RemoveNetwork, ShutdownInstance
from nefos.compute.models import BackendNetwork
from nefos.compute.views import ServerView
from nefos.core.config import Settings, ensure_data_dir
from nefos.network.access import Caller
from nefos.network.nics import NicRequest
from nefos.nodenet.install import MARKER
from nefos.server.engines import Engines
from tests.backends.conftest import (
    SCRIPT,
    Ganeti,
    add_ganeti_backend,
    number_servers_apart,
    tenant,
)
from tests.backends.test_ganeti_backend import until_status
from tests.backends.test_ganeti_network import until
from tests.conftest import NEFOS

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]
HOOK = Path("/etc/ganeti/kvm-vif-bridge")  # inside the cluster's namespaces (its own copy)
MODIFY_HOOK = Path("/etc/ganeti/hooks/instance-modify-post.d/nefos-firewall")
DNS = "192.0.2.53"
DOMAIN = "guests.example.org"
KERNEL_ARGS = "ro quiet nefos.net=dhcp nefos.shell=ttyS0"


# -- the data plane on the dev cluster's node ------------------------------------------------


@dataclass
class DataPlane:
    directory: Path
    responder_pid: int

    @property
    def bindings(self) -> Path:
        return self.directory / "state" / "bindings"

    def bound(self) -> dict[str, dict[str, object]]:
        """The node's bindings by TAP (what each ifup wrote)."""
        return {path.stem: json.loads(path.read_text()) for path in self.bindings.glob("*.json")}


def _sysctl(ganeti: Ganeti, key: str, value: str | None = None) -> str:
    command = ["sysctl", "-n", key] if value is None else ["sysctl", "-qw", f"{key}={value}"]
    done = ganeti.exec(*command)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.fixture(scope="module")
def dataplane(ganeti: Ganeti, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DataPlane]:
    """``nefos ganeti install-network`` in the cluster's namespaces, with its settings and
    bindings in a directory of this run; afterwards the responder is stopped (by pid),
    leftover bindings are torn down, the hook is removed and the sysctls restored."""
    if ganeti.exec("test", "-e", str(HOOK)).returncode == 0:
        pytest.skip(f"{HOOK} exists on the dev cluster: another run's data plane is installed")
    directory = tmp_path_factory.mktemp("guestnet")
    config = directory / "node.toml"
    sysctls = {
        key: _sysctl(ganeti, key)
        for key in ("net.bridge.bridge-nf-call-iptables", "net.bridge.bridge-nf-call-ip6tables")
    }
    done = ganeti.exec(
        NEFOS, "ganeti", "install-network",
        "--dns", DNS, "--domain", DOMAIN,
        "--node-config", str(config), "--state-dir", str(directory / "state"),
    )  # fmt: skip
    pid = re.search(r"responder: pid (\d+)", done.stdout)
    plane = DataPlane(directory, int(pid.group(1)) if pid else 0)
    try:
        assert done.returncode == 0 and pid, done.stdout + done.stderr
        yield plane
    finally:
        deadline = time.monotonic() + 15  # the responder tears down bindings of gone TAPs
        while plane.bound() and time.monotonic() < deadline:
            time.sleep(0.2)
        python = str(Path(NEFOS).with_name("python"))
        for tap in plane.bound():
            ganeti.exec(python, "-m", "nefos.nodenet", "--config", str(config), "ifdown", tap)
        if plane.responder_pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(plane.responder_pid, signal.SIGTERM)
        for installed in (HOOK, MODIFY_HOOK):
            hook = ganeti.exec("cat", str(installed)).stdout
            if MARKER in hook and str(config) in hook:  # ours, not a later run's
                ganeti.exec("rm", "-f", str(installed))
        for key, value in sysctls.items():
            _sysctl(ganeti, key, value)


@pytest.fixture(scope="module")
def guest_boot(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """The dev guest's kernel and an initramfs built now from this tree's script (the
    running cluster may have been started with an older one)."""
    directory = tmp_path_factory.mktemp("guest")
    done = subprocess.run(
        ["bash", str(SCRIPT), "guest-initramfs", str(directory)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    found = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    return found["KERNEL"], found["INITRD"]


# -- the guests' serial consoles ----------------------------------------------------------------


class Console:
    """A guest's serial port (the unix socket Ganeti's QEMU listens on): what the guest
    prints, and a shell that runs one command per line."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.output = ""
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.pump: asyncio.Task[None] | None = None
        self.changed = asyncio.Event()
        self.count = 0

    async def open(self, path: Path, within: float = 30) -> None:
        deadline = time.monotonic() + within
        while True:
            try:
                self.reader, self.writer = await asyncio.open_unix_connection(str(path))
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)
        self.pump = asyncio.create_task(self._pump())

    async def _pump(self) -> None:
        assert self.reader is not None
        while chunk := await self.reader.read(65536):
            self.output += chunk.decode(errors="replace").replace("\r", "")
            self.changed.set()

    async def wait_for(self, pattern: str, within: float, start: int = 0) -> re.Match[str]:
        """The first match of ``pattern`` after ``start`` in what the guest printed."""
        deadline = time.monotonic() + within
        while True:
            found = re.compile(pattern).search(self.output, start)
            if found:
                return found
            left = deadline - time.monotonic()
            if left <= 0 or (self.pump is not None and self.pump.done()):
                raise AssertionError(f"{self.name}: no {pattern!r} in: {self.output[-3000:]}")
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), min(left, 1.0))

    async def sh(self, command: str, within: float = 30) -> tuple[int, str]:
        """Run ``command`` in the guest's shell: its exit status and what came out (the
        guest's own console lines included)."""
        assert self.writer is not None
        self.count += 1
        marker = f"NEFOS-SH-DONE-{self.count}-{secrets.token_hex(3)}"
        start = len(self.output)
        self.writer.write(f"{command}; echo {marker} $?\n".encode())
        await self.writer.drain()
        found = await self.wait_for(rf"{marker} (\d+)\n", within, start)
        return int(found.group(1)), self.output[start : found.start()]

    async def lease(self, mac: str, within: float = 60) -> dict[str, str]:
        """The DHCP lease of the NIC with ``mac``, as the guest prints it."""
        found = await self.wait_for(rf"NEFOS-GUEST-LEASE (\S+) mac={mac} (.*)\n", within)
        return {"nic": found.group(1)} | dict(item.split("=", 1) for item in found.group(2).split())

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        if self.pump is not None:
            self.pump.cancel()
            await asyncio.gather(self.pump, return_exceptions=True)


# -- nefos, its networks and the three guests ------------------------------------------------


def random_net() -> str:
    """A /24 and a /64 prefix no other run on the shared cluster is likely to hold."""
    return f"10.{secrets.randbelow(200) + 20}.{secrets.randbelow(250)}"


@dataclass
class World:
    engines: Engines
    cluster: GanetiCluster
    user: str
    caller: Caller
    networks: dict[str, str]  # "a", "b", "public" -> network id
    servers: dict[str, ServerView]  # "g1", "g2", "g3" -> the ACTIVE server
    consoles: dict[str, Console]
    plane: DataPlane
    ganeti: Ganeti
    extra: dict[str, object] = field(default_factory=dict)

    def nic(self, guest: str, network: str) -> tuple[str, str, str | None]:
        """(MAC, IPv4, IPv6) of a guest's NIC on a network, as nefos's port holds them."""
        for nic in self.servers[guest].nics:
            if nic.network_id == self.networks[network]:
                v4 = next(a.address for a in nic.addresses if a.version == 4)
                v6 = next((a.address for a in nic.addresses if a.version == 6), None)
                return nic.mac, v4, v6
        raise AssertionError(f"{guest} has no NIC on {network}")


@pytest.fixture(scope="module")
def module_settings(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """One nefos for the whole module (its guests are shared), on SQLite as every test
    here: the database is not what is under test."""
    directory = tmp_path_factory.mktemp("nefos")
    database = directory / "nefos.db"
    database.write_bytes(sqlite_template.read_bytes())
    return ensure_data_dir(
        Settings(
            data_dir=directory / "data",
            database_url=f"sqlite+aiosqlite:///{database}",
            log_level="WARNING",
        )
    )


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(
    ganeti: Ganeti, dataplane: DataPlane, guest_boot: tuple[str, str], module_settings: Settings
) -> AsyncIterator[World]:
    settings = module_settings
    settings.network.mac_filtered_bridge = ganeti.private_bridge
    engines = Engines(settings)
    await engines.start()
    await number_servers_apart(engines, 5)
    kernel, initrd = guest_boot
    name = f"ganeti-guestnet-{uuid.uuid4().hex[:6]}"
    cluster = GanetiCluster(
        name,
        ganeti.rapi_url,
        ganeti.rapi_user,
        ganeti.rapi_password,
        certificate=str(ganeti.rapi_cert),
        hypervisor="kvm",
        node=ganeti.node,
        hvparams={"kernel_path": kernel, "initrd_path": initrd, "kernel_args": KERNEL_ARGS},
    )
    engines.compute._clusters[name] = cluster  # the row has no hypervisor settings (yet)
    watcher = QueueWatcher(ganeti.queue_dir, name, engines.bus.publish, replay_seconds=0)
    eventd = asyncio.create_task(watcher.run())
    consoles: dict[str, Console] = {}
    made: list[str] = []
    try:
        await asyncio.wait_for(watcher.ready.wait(), 10)
        await add_ganeti_backend(engines, ganeti, name)
        await engines.start_dispatcher()
        ours = await tenant(engines, "guestnet")
        flavor = await engines.compute.create_flavor(1, 128, 1, "diskless")
        network, admin = engines.compute.network, Caller("admin", admin=True)
        caller = Caller(ours.user)
        private = random_net()
        a = await network.create_network(caller, "lan-a")
        await network.create_subnet(caller, str(a.id), f"{private}.0/24", 4)
        b = await network.create_network(caller, "lan-b")
        await network.create_subnet(caller, str(b.id), f"{private}.0/24", 4)
        public = await network.create_network(
            admin, "public", "CUSTOM", public=True, floating_ip_pool=True
        )
        public_net = random_net()
        await network.create_subnet(admin, str(public.id), f"{public_net}.0/24", 4)
        v6 = f"2001:db8:{secrets.randbelow(0xFFFF):x}::/64"
        await network.create_subnet(admin, str(public.id), v6, 6, ipv6_mode="slaac")
        networks = {"a": str(a.id), "b": str(b.id), "public": str(public.id)}
        made.extend(base.network_name(n) for n in networks.values())

        plan = {
            "g1": [NicRequest(network=networks["a"])],
            "g2": [NicRequest(network=networks["a"]), NicRequest(network=networks["public"])],
            # B's first address would be A's first one too: G3 takes one A does not give
            "g3": [NicRequest(network=networks["b"], fixed_ip=f"{private}.50")],
        }
        created = {}
        for guest, nics in plan.items():
            view, _ = await engines.compute.create_server(
                ours.user, guest, ours.image_id, flavor.id, networks=nics
            )
            created[guest] = view.server.id
            made.append(base.instance_name(view.server.id))
        servers = {}
        for guest, server_id in created.items():
            servers[guest] = await until_status(engines, ours.user, server_id, "ACTIVE", 180)
            consoles[guest] = Console(guest)
            await consoles[guest].open(
                ganeti.kvm_ctrl_dir / f"{base.instance_name(server_id)}.serial"
            )
        yield World(
            engines, cluster, ours.user, caller, networks, servers, consoles, dataplane, ganeti
        )
    finally:
        for console in consoles.values():
            await console.close()
        await _remove(cluster, made)
        eventd.cancel()
        await asyncio.gather(eventd, return_exceptions=True)
        await engines.close()


async def _remove(cluster: GanetiCluster, names: list[str]) -> None:
    """What the tests left on the shared cluster: instances, then networks."""
    there = await cluster.instances()
    for name in names:
        if name in there:
            await cluster.wait(await cluster.submit(ShutdownInstance(name, 0)), within=60)
            await cluster.wait(await cluster.submit(RemoveInstance(name)), within=60)
    for _ in range(5):  # a disconnect fails when the group's instances change meanwhile
        networks = {n["name"] for n in await cluster.rapi.networks()}
        for name in names:
            if name in networks:
                await cluster.wait(await cluster.submit(RemoveNetwork(name)), within=60)
    await cluster.close()


# -- the tests ---------------------------------------------------------------------------------


async def test_private_guests_get_their_addresses_by_dhcp_and_ping_each_other(
    world: World,
) -> None:
    g1, g2 = world.consoles["g1"], world.consoles["g2"]
    (mac1, ip1, _), (mac2, ip2, _) = world.nic("g1", "a"), world.nic("g2", "a")
    prefix = ip1.rsplit(".", 1)[0]
    first = await g1.lease(mac1)
    assert first == {
        "nic": "eth0",
        "ip": f"{ip1}/24",
        "router": f"{prefix}.1",
        "dns": DNS,
        "hostname": base.instance_name(world.servers["g1"].server.id),
        "domain": DOMAIN,
        "server": f"{prefix}.1",
    }
    assert (await g2.lease(mac2))["ip"] == f"{ip2}/24"
    assert ip1 != ip2
    for console, target in ((g1, ip2), (g2, ip1)):
        status, out = await console.sh(f"ping -c 2 -W 2 {target}")
        assert status == 0, out


async def test_another_private_network_on_the_same_bridge_cannot_reach_them(
    world: World,
) -> None:
    mac3, ip3, _ = world.nic("g3", "b")
    g3 = world.consoles["g3"]
    assert (await g3.lease(mac3))["ip"] == f"{ip3}/24"  # B's own DHCP answer
    links = {
        n["name"]: n["group_list"]
        for n in await world.cluster.rapi.networks()
        if n["name"] in {base.network_name(world.networks[k]) for k in ("a", "b")}
    }
    assert {str(v) for v in links.values()} == {
        str([["default", "bridged", world.ganeti.private_bridge, ""]])
    }  # one shared bridge
    for guest in ("g1", "g2"):
        _, target, _ = world.nic(guest, "a")
        status, out = await g3.sh(f"ping -c 2 -W 1 {target}")
        assert status != 0 and "100% packet loss" in out, out
    status, out = await world.consoles["g1"].sh(f"ping -c 2 -W 1 {ip3}")
    assert status != 0 and "100% packet loss" in out, out


async def test_a_public_guest_gets_ipv4_by_dhcp_and_ipv6_by_slaac(world: World) -> None:
    mac, ip, ip6 = world.nic("g2", "public")
    g2 = world.consoles["g2"]
    lease = await g2.lease(mac)
    prefix = ip.rsplit(".", 1)[0]
    assert lease["nic"] == "eth1"
    assert (lease["ip"], lease["router"], lease["server"]) == (
        f"{ip}/24",
        f"{prefix}.1",
        f"{prefix}.1",
    )
    assert ip6 is not None
    found = await g2.wait_for(rf"NEFOS-GUEST-SLAAC eth1 mac={mac} addr=(\S+)\n", 60)
    assert found.group(1) == f"{ip6}/64"  # the kernel's SLAAC address is the port's
    status, out = await g2.sh("ip -6 route")
    assert status == 0 and "default via fe80::" in out, out  # the RA named a router


async def test_a_firewall_profile_change_reaches_the_running_guest(world: World) -> None:
    """firewallProfile on a running server: the tag job, then the modify whose hook
    replaces the NIC's chain on the node; the guest keeps running throughout."""
    engines, g1, g2 = world.engines, world.consoles["g1"], world.consoles["g2"]
    server_id = world.servers["g2"].server.id
    mac2, ip2, _ = world.nic("g2", "a")
    port = next(n.port_id for n in world.servers["g2"].nics if n.mac == mac2)
    name = base.instance_name(server_id)

    def profile() -> object:
        bound = world.plane.bound().values()
        return next(b["firewall"] for b in bound if b["instance"] == name and b["mac"] == mac2)

    async def has_profile(wanted: str) -> None:
        async def seen() -> bool:
            return profile() == wanted

        await until(seen, 90)

    await engines.compute.set_firewall(world.user, server_id, port, "ENABLED")
    await has_profile("protected")
    await g2.sh("rm -f /tmp/in; nc -l -p 8081 >/tmp/in & true")
    await asyncio.sleep(0.5)
    status, out = await g1.sh(f"echo inbound | nc -w 3 {ip2} 8081")
    assert status != 0, out  # a new inbound connection: dropped
    status, out = await g1.sh(f"ping -c 1 -W 2 {ip2}")
    assert status == 0, out  # ICMP passes the protected profile

    await engines.compute.set_firewall(world.user, server_id, port, "DISABLED")
    await has_profile("unprotected")
    status, out = await g1.sh(f"echo inbound | nc -w 3 {ip2} 8081")
    assert status == 0, out  # the same listener, reached now
    await asyncio.sleep(0.5)
    assert (await g2.sh("cat /tmp/in"))[1].strip().endswith("inbound")
    view = await until_status(engines, world.user, server_id, "ACTIVE")
    assert view.status == "ACTIVE"  # no reboot: the guest's console never closed
    assert g2.pump is not None and not g2.pump.done()


async def test_a_port_made_for_a_running_guest_is_hotplugged_and_gets_a_lease(
    world: World,
) -> None:
    engines, g1 = world.engines, world.consoles["g1"]
    server_id = world.servers["g1"].server.id
    started = time.monotonic()
    port = await engines.compute.network.create_port(
        world.caller, world.networks["b"], device_id=str(server_id), device_owner="compute:nova"
    )

    async def port_active() -> bool:
        view = await engines.compute.server(world.user, server_id)
        return any(n.port_id == str(port.id) and n.status == "ACTIVE" for n in view.nics)

    await until(port_active, 90)
    view = await until_status(engines, world.user, server_id, "ACTIVE")
    assert view.status == "ACTIVE"  # no reboot: the NIC went in hot
    assert not [d.message for d in view.diagnostics if "next reboot" in d.message]
    nic = next(n for n in view.nics if n.port_id == str(port.id))
    ip = next(a.address for a in nic.addresses if a.version == 4)
    lease = await g1.lease(nic.mac, within=60)
    assert (lease["nic"], lease["ip"]) == ("eth1", f"{ip}/24")
    world.extra["hotplug_seconds"] = time.monotonic() - started
    _, ip3, _ = world.nic("g3", "b")
    status, out = await g1.sh(f"ping -c 2 -W 2 -I eth1 {ip3}")  # now on B, G3 answers
    assert status == 0, out


async def test_a_floating_ip_moves_from_one_server_to_another(world: World) -> None:
    """Synnefo's way: a floating IP is a NIC's own address on its public network. G1
    holds it by a port made with it (fixed_ips, kamaki's ``ip attach``), then G3 by
    Nova's ``addFloatingIp`` (what ``openstack server add floating ip`` comes to), which
    hot-plugs a NIC holding it; G2 reaches whichever does. ``removeFloatingIp`` unplugs
    that NIC again and the address stays the user's."""
    engines, network = world.engines, world.engines.compute.network
    g1, g2 = world.consoles["g1"], world.consoles["g2"]
    floating = await network.create_floating_ip(world.caller, world.networks["public"])
    address = floating.address

    async def hold(guest: str) -> str:
        server_id = world.servers[guest].server.id
        port = await network.create_port(
            world.caller, world.networks["public"], fixed_ips=[{"ip_address": address}],
            device_id=str(server_id), device_owner="compute:nova",
        )  # fmt: skip

        async def active() -> bool:
            view = await engines.compute.server(world.user, server_id)
            return any(n.port_id == str(port.id) and n.status == "ACTIVE" for n in view.nics)

        await until(active, 90)
        view = await engines.compute.server(world.user, server_id)
        mac = next(n.mac for n in view.nics if n.port_id == str(port.id))
        lease = await world.consoles[guest].lease(mac, within=60)
        assert lease["ip"].split("/")[0] == address, lease
        return str(port.id)

    held = await hold("g1")
    status, out = await g2.sh(f"ping -c 2 -W 2 {address}")
    assert status == 0, out
    status, out = await g1.sh("ip -4 addr")
    assert address in out, out

    await network.delete_port(world.caller, held)  # the NIC leaves G1; the IP stays ours
    mine = {f.address for f in await network.floating_ips(world.caller)}
    assert address in mine
    compute, g3 = engines.compute, world.servers["g3"].server.id
    projects = world.caller.projects
    await compute.add_floating_ip(world.user, projects, g3, address)

    async def on_g3() -> list[str]:
        view = await compute.server(world.user, g3)
        return [
            n.mac
            for n in view.nics
            if n.status == "ACTIVE" and any(a.address == address for a in n.addresses)
        ]

    await until(on_g3, 90)
    (mac,) = await on_g3()
    lease = await world.consoles["g3"].lease(mac, within=60)
    assert lease["ip"].split("/")[0] == address, lease
    status, out = await g2.sh(f"ping -c 2 -W 2 {address}")
    assert status == 0, out  # G3 answers now
    status, out = await g1.sh("ip -4 addr")
    assert address not in out, out  # G1's NIC with it was unplugged

    await compute.remove_floating_ip(world.user, projects, g3, address)

    async def gone() -> bool:  # from nefos's records, and from the node's bindings
        unplugged = all(
            address not in [a.address for a in n.addresses]
            for n in (await compute.server(world.user, g3)).nics
        )
        unbound = all(b.get("mac") != mac for b in world.plane.bound().values())
        return unplugged and unbound

    await until(gone, 90)
    assert address in {f.address for f in await network.floating_ips(world.caller)}


async def test_deleted_servers_leave_no_binding_or_rule_on_the_node(world: World) -> None:
    bound = world.plane.bound()
    ours = {base.instance_name(v.server.id) for v in world.servers.values()}
    taps = {tap for tap, b in bound.items() if b["instance"] in ours}
    nics = 0
    for view in world.servers.values():
        nics += len((await world.engines.compute.server(world.user, view.server.id)).nics)
    assert len(taps) == nics == 5  # g1: A and B; g2: A and public; g3: B
    for view in world.servers.values():
        await world.engines.compute.delete_server(world.user, view.server.id)
    for view in world.servers.values():
        await until_status(world.engines, world.user, view.server.id, "DELETED", 90)

    async def unbound() -> bool:  # the responder saw the TAPs go
        return not taps & set(world.plane.bound())

    await until(unbound, 15)
    rules = "".join(
        world.ganeti.exec(*command).stdout
        for command in (["ebtables", "-L"], ["iptables", "-S"], ["ip6tables", "-S"])
    )
    assert not [tap for tap in taps if re.search(rf"\b{tap}\b", rules)], rules

    async def networks_gone() -> bool:
        names = {base.network_name(n) for n in world.networks.values()}
        return not names & {n["name"] for n in await world.cluster.rapi.networks()}

    try:
        await until(networks_gone, 60)  # nefos removes the networks no NIC uses
    except AssertionError:
        async with world.engines.db.session() as s:
            rows = [
                (r.network_id, r.state, r.logmsg) for r in await s.scalars(select(BackendNetwork))
            ]
        raise AssertionError(f"networks left on the cluster; nefos has {rows}") from None
