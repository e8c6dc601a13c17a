"""Networks and NICs on the real Ganeti: what the node data plane reads (docs/network.md,
"Ganeti") is what nefos puts there.

The whole path runs on the fake hypervisor (the guest does not matter): a server with a
private MAC-filtered network and a public one makes both networks on the cluster, with
their tags and links, before the instance; its NICs carry network, IP, MAC and name; its
ports turn ACTIVE on the events; ``firewallProfile`` sets and changes the NIC's tag; the
delete removes the networks no NIC uses any more. Hotplug needs a running KVM (TCG)
guest: a NIC is plugged into it and taken out again.
"""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from nefos.backends import base
from nefos.backends.base import InstanceSpec, NetworkSpec
from nefos.backends.ganeti.cluster import GanetiCluster
from nefos.backends.ganeti.eventd import QueueWatcher
from nefos.backends.ops import AddNic, ConnectNetwork, CreateInstance, CreateNetwork, RemoveNic
from nefos.network.access import Caller
from nefos.network.models import Port
from nefos.network.nics import NicRequest
from nefos.server.engines import Engines
from tests.backends.conftest import (
    Ganeti,
    add_ganeti_backend,
    force_remove,
    number_servers_apart,
    tenant,
    wait_for_job,
)
from tests.backends.test_ganeti_backend import until_status


def random_subnet() -> str:
    """A /24 no other run on the shared cluster is likely to hold (Ganeti checks)."""
    return f"10.{secrets.randbelow(200) + 20}.{secrets.randbelow(250)}.0/24"


@pytest.fixture
def leftovers(rapi: httpx.Client) -> Iterator[list[str]]:
    """Networks (``nefos-net-...``) and instances a test made; removed afterwards."""
    names: list[str] = []
    yield names
    for name in names:
        if name.startswith(base.INSTANCE_PREFIX):
            force_remove(rapi, name)
    for name in names:
        if not name.startswith(base.NETWORK_PREFIX) or rapi.get(f"/2/networks/{name}").is_error:
            continue
        for group in rapi.get(f"/2/networks/{name}").json().get("group_list") or []:
            job = rapi.put(f"/2/networks/{name}/disconnect", json={"group_name": group[0]})
            wait_for_job(rapi, job.json())
        wait_for_job(rapi, rapi.delete(f"/2/networks/{name}").json())


async def until(condition, within: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + within
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.1)


async def test_a_server_brings_its_networks_and_takes_them_away(
    ganeti: Ganeti, engines: Engines, rapi: httpx.Client, leftovers: list[str], timings
) -> None:
    settings = engines.settings.network
    settings.mac_filtered_bridge = ganeti.private_bridge
    await number_servers_apart(engines, 8)
    watcher = QueueWatcher(ganeti.queue_dir, "ganeti1", engines.bus.publish, replay_seconds=0)
    eventd = asyncio.create_task(watcher.run())
    try:
        await asyncio.wait_for(watcher.ready.wait(), 10)
        backend = await add_ganeti_backend(engines, ganeti)
        cluster = engines.compute.cluster(backend)
        assert isinstance(cluster, GanetiCluster)
        await engines.start_dispatcher()
        ours = await tenant(engines, "net", b"an image")
        user, network = ours.user, engines.compute.network
        admin = Caller("admin", admin=True)
        public = await network.create_network(admin, "pub", "CUSTOM", public=True)
        public_cidr = random_subnet()
        await network.create_subnet(admin, str(public.id), public_cidr, 4)
        await network.create_subnet(admin, str(public.id), "2001:db8:77::/64", 6, ipv6_mode="slaac")
        caller = Caller(user)
        private = await network.create_network(caller, "lan")
        await network.create_subnet(caller, str(private.id), random_subnet(), 4)
        nets = {n: base.network_name(i) for n, i in (("pub", public.id), ("lan", private.id))}
        leftovers.extend(nets.values())

        started = time.monotonic()
        view, _ = await engines.compute.create_server(
            user,
            "netted",
            ours.image_id,
            ours.flavor_id,
            networks=[NicRequest(network=str(public.id)), NicRequest(network=str(private.id))],
        )
        instance = base.instance_name(view.server.id)
        leftovers.append(instance)
        active = await until_status(engines, user, view.server.id, "ACTIVE")
        timings.append(
            ("network: create with 2 new networks -> ACTIVE", time.monotonic() - started)
        )

        # The networks, as the node scripts will read them.
        shown = {n["name"]: n for n in await cluster.rapi.networks() if n["name"] in nets.values()}
        lan, pub = shown[nets["lan"]], shown[nets["pub"]]
        assert sorted(lan["tags"]) == [
            "nefos:dhcp",
            f"nefos:mac-prefix:{private.mac_prefix}",
            "nefos:mode:mac-filtered",
        ]
        assert lan["group_list"] == [["default", "bridged", ganeti.private_bridge, ""]]
        prefix = private.mac_prefix.replace(":", "")
        assert lan["mac_prefix"].replace(":", "").startswith(prefix)
        assert sorted(pub["tags"]) == ["nefos:dhcp", "nefos:mode:bridged", "nefos:slaac"]
        assert pub["group_list"] == [["default", "bridged", ganeti.bridge, ""]]  # default_link
        assert pub["network"] == public_cidr and pub["network6"] == "2001:db8:77::/64"
        assert pub["mac_prefix"] is None

        # The instance's NICs carry network, IP, MAC and name; the ports are ACTIVE.
        details = await cluster.rapi.instance(instance)
        nics = list(
            zip(
                details["nic.names"],
                details["nic.networks.names"],
                details["nic.ips"],
                details["nic.macs"],
                strict=True,
            )
        )
        expected = []
        for nic in active.nics:
            v4 = next(a.address for a in nic.addresses if a.version == 4)
            expected.append(
                (base.nic_name(nic.port_id), base.network_name(nic.network_id), v4, nic.mac)
            )
        assert nics == expected
        assert {n.status for n in active.nics} == {"ACTIVE"}
        async with engines.db.session() as s:
            for nic in active.nics:
                port = await s.get(Port, uuid.UUID(nic.port_id))
                assert port is not None and port.status == "ACTIVE" and port.mac == nic.mac
        unprotected = {
            base.firewall_tag(base.nic_name(n.port_id), "unprotected") for n in active.nics
        }
        assert unprotected <= set(details["tags"])

        # firewallProfile: the NIC's tag is set, then changed (never two for one NIC).
        lan_nic = next(n for n in active.nics if n.network_id == str(private.id))
        tag_prefix = f"nefos:firewall:{base.nic_name(lan_nic.port_id)}:"

        async def tags_of_lan_nic() -> list[str]:
            tags = await cluster.rapi.instance_tags(instance)
            return [t for t in tags if t.startswith(tag_prefix)]

        for profile, level in (("ENABLED", "protected"), ("PROTECTED", "limited")):
            await engines.compute.set_firewall(user, view.server.id, lan_nic.port_id, profile)

            async def changed(level: str = level) -> bool:
                return await tags_of_lan_nic() == [tag_prefix + level]

            await until(changed, 30)
        shown_server = await engines.compute.server(user, view.server.id)
        assert next(n for n in shown_server.nics if n.port_id == lan_nic.port_id).firewall == (
            "PROTECTED"
        )

        # Deleted: no NIC uses the networks any more, so they leave the cluster.
        await engines.compute.delete_server(user, view.server.id)
        await until_status(engines, user, view.server.id, "DELETED")

        async def networks_gone() -> bool:
            there = {n["name"] for n in await cluster.rapi.networks()}
            return not there & set(nets.values())

        await until(networks_gone, 60)
    finally:
        eventd.cancel()
        await asyncio.gather(eventd, return_exceptions=True)


async def test_a_nic_is_hotplugged_into_a_running_kvm_guest(
    ganeti: Ganeti, rapi: httpx.Client, leftovers: list[str], timings
) -> None:
    """Ganeti 3.0 plugs a NIC into a running KVM (TCG) guest over QMP and takes it out
    again; the jobs' logs say so, and no reboot is asked for."""
    cluster = GanetiCluster(
        "ganeti-hotplug",
        ganeti.rapi_url,
        ganeti.rapi_user,
        ganeti.rapi_password,
        certificate=str(ganeti.rapi_cert),
        hypervisor="kvm",
        node=ganeti.node,
    )
    network = base.network_name(uuid.uuid4())
    instance = f"snf-hotplug-{uuid.uuid4().hex[:8]}"
    leftovers.extend([instance, network])
    try:
        added = await cluster.submit(
            CreateNetwork(
                NetworkSpec(
                    network,
                    random_subnet(),
                    # what nefos tags, so nefos's ifup hook (when installed) takes the NIC
                    tags=("nefos:mode:mac-filtered", "nefos:mac-prefix:aa:00:77"),
                )
            )
        )
        connected = await cluster.submit(
            ConnectNetwork(network, "bridged", ganeti.private_bridge, (added,))
        )
        spec = InstanceSpec(
            name=instance, vcpus=1, memory=128, disk=0, disk_template="diskless", os="noop",
            image={}, depends=(connected,),
        )  # fmt: skip
        created = await cluster.wait(await cluster.submit(CreateInstance(spec)), within=120)
        assert created["status"] == "success", created
        subnet = next(n for n in await cluster.rapi.networks() if n["name"] == network)["network"]
        ip = subnet.rsplit(".", 1)[0] + ".9"
        nic = {"name": "nefos-port-hot", "network": network, "ip": ip, "mac": "aa:00:77:00:00:09"}

        started = time.monotonic()
        plugged = await cluster.wait(
            await cluster.submit(AddNic(instance, nic, hotplug=True)), within=120
        )
        timings.append(("network: hotplug a NIC (kvm)", time.monotonic() - started))
        assert plugged["status"] == "success", plugged
        log = " ".join(entry[3] for entry in plugged["oplog"][0])
        assert "without hotplugging" not in log, log
        info = (await cluster.instances())[instance]
        assert [(n.name, n.network, n.ip, n.mac) for n in info.nics] == [
            ("nefos-port-hot", network, ip, "aa:00:77:00:00:09")
        ]
        assert info.running

        unplugged = await cluster.wait(
            await cluster.submit(RemoveNic(instance, "nefos-port-hot", hotplug=True)), within=120
        )
        assert unplugged["status"] == "success", unplugged
        log = " ".join(entry[3] for entry in unplugged["oplog"][0])
        assert "without hotplugging" not in log, log
        assert (await cluster.instances())[instance].nics == ()
    finally:
        await cluster.close()


async def test_the_fake_hypervisor_takes_the_nic_at_the_next_boot(
    ganeti: Ganeti, rapi: httpx.Client, leftovers: list[str]
) -> None:
    """What Ganeti answers where it cannot hotplug: the change is made, for the next
    boot, and its log says so (the update path tells the user from it)."""
    cluster = GanetiCluster(
        "ganeti-fake",
        ganeti.rapi_url,
        ganeti.rapi_user,
        ganeti.rapi_password,
        certificate=str(ganeti.rapi_cert),
        hypervisor="fake",
        node=ganeti.node,
    )
    instance = f"snf-nohotplug-{uuid.uuid4().hex[:8]}"
    leftovers.append(instance)
    try:
        spec = InstanceSpec(
            name=instance, vcpus=1, memory=128, disk=0, disk_template="diskless", os="noop",
            image={},
        )  # fmt: skip
        assert (await cluster.wait(await cluster.submit(CreateInstance(spec))))["status"] == (
            "success"
        )
        nic = {"name": "nefos-port-cold", "link": ganeti.bridge, "mac": "aa:00:77:00:00:0a"}
        done = await cluster.wait(await cluster.submit(AddNic(instance, nic, hotplug=True)))
        assert done["status"] == "success", done
        log = " ".join(entry[3] for entry in done["oplog"][0])
        assert "Hotplug is not supported" in log and "without hotplugging" in log
        assert [n.name for n in (await cluster.instances())[instance].nics] == ["nefos-port-cold"]
    finally:
        await cluster.close()
