"""A NIC that holds a floating IP, as the Ganeti backend sends it, over a fake RAPI: no
cluster needed. ``addFloatingIp`` (and Neutron's association with a server's port) adds
a NIC of the floating IP's network whose one address is the floating IP, so the node's
ifup script binds and routes that address (Synnefo's way; there is no NAT)."""

from __future__ import annotations

import json
import uuid

import httpx

from nefos.backends.ganeti import GanetiCluster
from nefos.backends.ops import AddNic, RemoveNic
from nefos.compute.backend_networks import nic_params
from nefos.network.nics import Nic, NicAddress


def _fake(seen: list[httpx.Request]) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=len(seen))

    return httpx.MockTransport(handle)


def _nic(*addresses: NicAddress) -> Nic:
    return Nic(
        port_id=str(uuid.uuid4()), network_id=str(uuid.uuid4()), network_name="public",
        mac="aa:00:00:12:34:56", mode="bridged", link="br0", addresses=addresses,
    )  # fmt: skip


async def test_a_floating_ip_is_the_one_address_of_its_own_nic() -> None:
    subnet, subnet6 = str(uuid.uuid4()), str(uuid.uuid4())
    holder = _nic(NicAddress("192.0.2.20", 4, True, subnet))
    params = nic_params(holder)
    assert params == {
        "name": f"nefos-port-{holder.port_id}",
        "network": f"nefos-net-{holder.network_id}",
        "ip": "192.0.2.20",
        "mac": "aa:00:00:12:34:56",
    }
    # A NIC with its own fixed IPv4 keeps it as its address: a floating IP recorded on
    # it too (from before floating IPs got NICs of their own) would not be routed.
    mixed = _nic(
        NicAddress("192.0.2.5", 4, False, subnet),
        NicAddress("2001:db8::a800:ff:fe12:3456", 6, False, subnet6),
        NicAddress("192.0.2.21", 4, True, subnet),
    )
    assert nic_params(mixed)["ip"] == "192.0.2.5"

    seen: list[httpx.Request] = []
    cluster = GanetiCluster("g", "https://g.test:5080", "u", "p", transport=_fake(seen))
    await cluster.submit(AddNic("snf-7", params, hotplug=True, depends=(41,)))
    add = seen[-1]
    assert (add.method, add.url.path) == ("PUT", "/2/instances/snf-7/modify")
    body = json.loads(add.content)
    assert body["nics"] == [["add", -1, params]] and body["hotplug_if_possible"] is True
    assert body["depends"] == [[41, ["success"]]]
    await cluster.submit(RemoveNic("snf-7", params["name"], hotplug=False))
    body = json.loads(seen[-1].content)
    assert body["nics"] == [["remove", params["name"], {}]] and "hotplug_if_possible" not in body
    await cluster.close()
