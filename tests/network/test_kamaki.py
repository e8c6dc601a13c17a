"""kamaki's ``network``, ``subnet``, ``port`` and ``ip`` commands, replayed in process.

kamaki runs on Python 2 only, so the requests its code sends (kamaki 0.17,
``kamaki/clients/network``, ``CycladesNetworkClient`` in ``kamaki/clients/cyclades`` and
``kamaki/cli/cmds/network.py``) are sent here as it sends them: method, path, JSON body,
``X-Auth-Token``, each with the status kamaki's ``success=`` accepts (any other raises its
``ClientError``), on the network endpoint the v2.0 catalog publishes (the Synnefo
dialect), in the order of a user's session. Each step asserts the fields kamaki reads.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from nefos.core.config import Settings
from nefos.network.service import Caller
from nefos.server.engines import Engines
from tests.compute.conftest import setup, wait  # noqa: F401 (the fixture)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.compute.embedded_delay = 0.02
    return settings


class Kamaki:
    """One user's kamaki: its endpoints from the v2.0 catalog, its token on every request,
    and the status each call of its client demands (``success=``)."""

    def __init__(self, client: httpx.AsyncClient, token: str, catalog: dict[str, str]):
        self.client = client
        self.token = token
        self.network = catalog["network"]
        self.compute = catalog["compute"]

    async def call(
        self, method: str, path: str, success: int, body: Any = None, base: str | None = None
    ) -> httpx.Response:
        headers = {"X-Auth-Token": self.token}
        if body is not None:  # kamaki's json=: dumped, with its Content-Type
            headers["Content-Type"] = "application/json"
        reply = await self.client.request(
            method, (base or self.network) + path, json=body, headers=headers
        )
        assert reply.status_code == success, f"{method} {path}: {reply.status_code} {reply.text}"
        return reply

    async def status_of(self, path: str) -> int:
        """A call kamaki makes to learn why another failed (its errors decorators)."""
        reply = await self.client.get(self.network + path, headers={"X-Auth-Token": self.token})
        return reply.status_code

    async def wait_port_while(self, port_id: str, status: str) -> dict[str, Any] | None:
        """``port wait`` / ``--wait``: GET the port until its status changes (None: gone,
        the 404 kamaki's ``port delete --wait`` takes as done)."""
        for _ in range(500):
            reply = await self.client.get(
                f"{self.network}/ports/{port_id}", headers={"X-Auth-Token": self.token}
            )
            if reply.status_code == 404:
                return None
            assert reply.status_code == 200, reply.text
            if reply.json()["port"]["status"] != status:
                return reply.json()["port"]
            await asyncio.sleep(0.01)
        raise AssertionError(f"port {port_id} stayed {status}")


async def login(client: httpx.AsyncClient, token: str) -> Kamaki:
    """``kamaki user authenticate``: POST /tokens on the identity URL; kamaki then takes
    each service's ``publicURL`` from ``access.serviceCatalog`` by its type."""
    reply = await client.post(
        "/astakos/identity/v2.0/tokens", json={"auth": {"token": {"id": token}}}
    )
    assert reply.status_code == 200, reply.text
    catalog = {
        s["type"]: urlsplit(s["endpoints"][0]["publicURL"]).path
        for s in reply.json()["access"]["serviceCatalog"]
    }
    assert catalog["network"] == "/cyclades/network/v2.0"
    return Kamaki(client, token, catalog)


async def test_a_kamaki_session_of_networks_subnets_ports_and_ips(
    client: httpx.AsyncClient,
    engines: Engines,
    setup: dict,  # noqa: F811
):
    alice_id, alice_auth = setup["people"]["alice"]
    _, bob_auth = setup["people"]["bob"]
    kamaki = await login(client, alice_auth["X-Auth-Token"])
    bob = await login(client, bob_auth["X-Auth-Token"])

    # kamaki network create --name lan  (type MAC_FILTERED unless --type)
    made = await kamaki.call(
        "POST", "/networks", 201,
        {"network": {"type": "MAC_FILTERED", "admin_state_up": True, "name": "lan"}},
    )  # fmt: skip
    network = made.json()["network"]
    net_id = network["id"]
    assert (network["name"], network["type"], network["public"]) == ("lan", "MAC_FILTERED", False)
    assert network["user_id"] == alice_id and network["SNF:floating_ip_pool"] is False
    # --shared and --project-id ride along; a flavor users may not make is 403
    shared = {"type": "PHYSICAL_VLAN", "admin_state_up": True, "shared": True}
    await kamaki.call("POST", "/networks", 403, {"network": shared})

    # kamaki network list  (always the detail form; reads id, name, public, user_id)
    listed = (await kamaki.call("GET", "/networks/detail", 200)).json()["networks"]
    mine = [n for n in listed if n["user_id"] == alice_id]  # --user-id
    assert [(n["id"], n["name"], n["public"]) for n in mine] == [(net_id, "lan", False)]
    # kamaki network info / modify
    info = (await kamaki.call("GET", f"/networks/{net_id}", 200)).json()["network"]
    assert info["id"] == net_id and info["status"] == "ACTIVE" and info["subnets"] == []
    renamed = await kamaki.call("PUT", f"/networks/{net_id}", 200, {"network": {"name": "wan"}})
    assert renamed.json()["network"]["name"] == "wan"
    # another user's network is 404, as kamaki's network_id decorator expects
    assert await bob.status_of(f"/networks/{net_id}") == 404

    # kamaki subnet create --network-id N --cidr 10.0.0.0/24 --name s \
    #   --alloc-pool 10.0.0.10,10.0.0.20 --with-dhcp
    subnet = {
        "network_id": net_id, "cidr": "10.0.0.0/24", "ip_version": 4, "name": "s",
        "allocation_pools": [{"start": "10.0.0.10", "end": "10.0.0.20"}], "enable_dhcp": True,
    }  # fmt: skip
    made = (await kamaki.call("POST", "/subnets", 201, {"subnet": subnet})).json()["subnet"]
    sub_id = made["id"]
    assert made["allocation_pools"] == [{"start": "10.0.0.10", "end": "10.0.0.20"}]
    assert made["gateway_ip"] == "10.0.0.1" and made["enable_dhcp"] is True
    # ... --ipv6, and --no-gateway (gateway_ip null) on another network
    v6 = {"network_id": net_id, "cidr": "2001:db8::/64", "ip_version": 6}
    made6 = (await kamaki.call("POST", "/subnets", 201, {"subnet": v6})).json()["subnet"]
    assert made6["ip_version"] == 6 and made6["enable_slaac"] is True
    plain = {"network": {"type": "MAC_FILTERED", "admin_state_up": True}}
    other = (await kamaki.call("POST", "/networks", 201, plain)).json()["network"]
    bare = {"network_id": other["id"], "cidr": "10.9.0.0/24", "ip_version": 4, "gateway_ip": None}
    made_bare = (await kamaki.call("POST", "/subnets", 201, {"subnet": bare})).json()["subnet"]
    assert made_bare["gateway_ip"] is None and made_bare["name"] == ""
    # an overlapping CIDR is refused with a status kamaki's network_id check handles
    overlap = {"network_id": net_id, "cidr": "10.0.0.0/16", "ip_version": 4}
    await kamaki.call("POST", "/subnets", 400, {"subnet": overlap})

    # kamaki subnet list / info / modify  (list reads id, name, network_id; info prints
    # the whole answer)
    subnets = (await kamaki.call("GET", "/subnets", 200)).json()["subnets"]
    assert sorted((s["id"], s["network_id"]) for s in subnets) == sorted(
        [(sub_id, net_id), (made6["id"], net_id), (made_bare["id"], other["id"])]
    )
    assert {s["name"] for s in subnets} == {"s", ""}
    shown = (await kamaki.call("GET", f"/subnets/{sub_id}", 200)).json()
    assert shown["subnet"]["cidr"] == "10.0.0.0/24"
    modified = await kamaki.call("PUT", f"/subnets/{sub_id}", 200, {"subnet": {"name": "s2"}})
    assert modified.json()["subnet"]["name"] == "s2"
    assert await bob.status_of(f"/subnets/{sub_id}") == 404

    # A server to connect (kamaki server create, on the compute endpoint of the catalog).
    server = await kamaki.call(
        "POST", "/servers", 202,
        {"server": {"name": "vm", "imageRef": setup["image"], "flavorRef": setup["flavor"]}},
        base=kamaki.compute,
    )  # fmt: skip
    server_id = server.json()["server"]["id"]
    await wait(client, alice_auth, server_id, "ACTIVE")

    # kamaki network connect N --device-id S --wait  (a port with device_id)
    port = await kamaki.call(
        "POST", "/ports", 201, {"port": {"network_id": net_id, "device_id": server_id}}
    )
    connected = port.json()["port"]
    assert connected["device_id"] == server_id and connected["network_id"] == net_id
    v4 = [f for f in connected["fixed_ips"] if "." in f["ip_address"]]
    assert v4 == [{"subnet": sub_id, "ip_address": "10.0.0.10"}]  # the lowest free
    assert connected["status"] == "BUILD"  # what --wait waits while
    settled = await kamaki.wait_port_while(connected["id"], connected["status"])
    assert settled is not None and settled["status"] == "ACTIVE"

    # kamaki port create --network-id N --device-id S --name p --subnet-id SUB \
    #   --ip-address 10.0.0.15
    fixed = [{"ip_address": "10.0.0.15", "subnet_id": sub_id}]
    body = {"network_id": net_id, "device_id": server_id, "name": "p", "fixed_ips": fixed}
    named = (await kamaki.call("POST", "/ports", 201, {"port": body})).json()["port"]
    assert named["name"] == "p" and named["user_id"] == alice_id
    assert {"subnet": sub_id, "ip_address": "10.0.0.15"} in named["fixed_ips"]
    # the same address again: 409 (kamaki then looks the IP up among floating IPs)
    await kamaki.call("POST", "/ports", 409, {"port": body})
    assert (await kamaki.call("GET", "/floatingips", 200)).json()["floatingips"] == []

    # kamaki port list / info / modify  (list reads id, name and, with --user-id, user_id;
    # modify reads the port for its network_id and sends it back with the name)
    ports = (await kamaki.call("GET", "/ports", 200)).json()["ports"]
    assert sorted((p["id"], p["name"], p["user_id"]) for p in ports) == sorted(
        [(connected["id"], "", alice_id), (named["id"], "p", alice_id)]
    )
    assert (await bob.call("GET", "/ports", 200)).json()["ports"] == []
    info = (await kamaki.call("GET", f"/ports/{named['id']}", 200)).json()["port"]
    assert info["network_id"] == net_id and info["mac_address"]
    changed = await kamaki.call(
        "PUT", f"/ports/{named['id']}", 200,
        {"port": {"network_id": info["network_id"], "name": "p2"}},
    )  # fmt: skip
    assert changed.json()["port"]["name"] == "p2"
    moved = {"port": {"network_id": other["id"], "name": "p3"}}
    await kamaki.call("PUT", f"/ports/{named['id']}", 400, moved)  # no moving ports

    # kamaki port delete P --wait
    status = (await kamaki.call("GET", f"/ports/{named['id']}", 200)).json()["port"]["status"]
    await kamaki.call("DELETE", f"/ports/{named['id']}", 204)
    assert await kamaki.wait_port_while(named["id"], status) is None

    # kamaki network delete while connected: 409 (its network_in_use decorator)
    await kamaki.call("DELETE", f"/networks/{net_id}", 409)
    # kamaki network disconnect N --device-id S: the server's attachments on the compute
    # endpoint name the ports, each deleted
    vm = (await kamaki.call("GET", f"/servers/{server_id}", 200, base=kamaki.compute)).json()
    attached = [a for a in vm["server"]["attachments"] if a["network_id"] == net_id]
    assert [a["id"] for a in attached] == [connected["id"]]
    for attachment in attached:
        await kamaki.call("DELETE", f"/ports/{attachment['id']}", 204)
    assert await kamaki.status_of(f"/ports/{connected['id']}") == 404

    # kamaki network delete N  (its subnets go with it)
    await kamaki.call("DELETE", f"/networks/{net_id}", 204)
    assert await kamaki.status_of(f"/networks/{net_id}") == 404
    assert await kamaki.status_of(f"/subnets/{sub_id}") == 404

    # Floating IPs: the operator's pool, then kamaki ip create (200, as Cyclades answers)
    root = Caller("root", admin=True)
    pool = await engines.network.create_network(root, "public", "CUSTOM", floating_ip_pool=True)
    await engines.network.create_subnet(root, str(pool.id), "192.0.2.0/24")
    first = (await kamaki.call("POST", "/floatingips", 200, {"floatingip": {}})).json()
    ip = first["floatingip"]
    assert ip["floating_network_id"] == str(pool.id) and ip["port_id"] is None
    assert ip["floating_ip_address"] == "192.0.2.2" and ip["user_id"] == alice_id
    # kamaki ip create --network-id N --address A --project-id P  (a taken address: 409)
    asked = {"floating_network_id": str(pool.id), "floating_ip_address": "192.0.2.2",
             "project": alice_id}  # fmt: skip
    taken = await kamaki.call("POST", "/floatingips", 409, {"floatingip": asked})
    assert "192.0.2.2" in taken.text
    asked["floating_ip_address"] = "192.0.2.9"
    second = (await kamaki.call("POST", "/floatingips", 200, {"floatingip": asked})).json()
    assert second["floatingip"]["floating_ip_address"] == "192.0.2.9"

    # kamaki ip list / info  (reads id, floating_ip_address, floating_network_id, port_id)
    ips = (await kamaki.call("GET", "/floatingips", 200)).json()["floatingips"]
    assert sorted(i["floating_ip_address"] for i in ips) == ["192.0.2.2", "192.0.2.9"]
    info = (await kamaki.call("GET", f"/floatingips/{ip['id']}", 200)).json()["floatingip"]
    assert info["floating_ip_address"] == "192.0.2.2"
    assert await bob.status_of(f"/floatingips/{ip['id']}") == 404

    # kamaki ip attach 192.0.2.2 --server-id S: find it in the list, then a port on its
    # network with it as the fixed IP
    found = next(i for i in ips if i["floating_ip_address"] == "192.0.2.2")
    attach = {"network_id": found["floating_network_id"], "device_id": server_id,
              "fixed_ips": [{"ip_address": "192.0.2.2"}]}  # fmt: skip
    holder = (await kamaki.call("POST", "/ports", 201, {"port": attach})).json()["port"]
    assert [f["ip_address"] for f in holder["fixed_ips"]] == ["192.0.2.2"]
    ips = (await kamaki.call("GET", "/floatingips", 200)).json()["floatingips"]
    found = next(i for i in ips if i["floating_ip_address"] == "192.0.2.2")
    assert found["port_id"] == holder["id"] and found["instance_id"] == server_id
    # bob's attach of alice's address: 404
    bobs = {**attach, "fixed_ips": [{"ip_address": "192.0.2.9"}]}
    await bob.call("POST", "/ports", 404, {"port": bobs})
    # kamaki ip delete of an attached IP: 409
    await kamaki.call("DELETE", f"/floatingips/{ip['id']}", 409)

    # kamaki ip detach 192.0.2.2: the list names the port, which is deleted
    await kamaki.call("DELETE", f"/ports/{found['port_id']}", 204)
    ips = (await kamaki.call("GET", "/floatingips", 200)).json()["floatingips"]
    assert all(i["port_id"] is None for i in ips)

    # kamaki ip delete ID (both)
    for item in ips:
        await kamaki.call("DELETE", f"/floatingips/{item['id']}", 204)
    assert (await kamaki.call("GET", "/floatingips", 200)).json()["floatingips"] == []
    assert await kamaki.status_of(f"/floatingips/{ip['id']}") == 404
