"""Servers get NICs (issue 20, item 4), on the Synnefo-dialect endpoint: the default
public NIC, NICs by network, port and fixed IP, all or none, release on delete,
floating IPs and os-interface, with the embedded backend keeping the NICs."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest

from nefos.core.config import Settings
from nefos.network.models import IpAddress, Port
from nefos.network.service import Caller
from nefos.server.engines import Engines
from tests.compute.conftest import COMPUTE, usage, wait
from tests.compute.test_api_extensions import new_project

NETWORK = "/network/v2.0"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.network.default_public_network = "public"
    return settings


@pytest.fixture
async def nets(engines: Engines, setup: dict) -> dict:
    """A public network (the default, and a floating IP pool) with IPv4 and IPv6."""
    root = Caller(f"root-{uuid.uuid4().hex[:6]}", admin=True)
    net = engines.network
    public = await net.create_network(root, "public", "CUSTOM", public=True, floating_ip_pool=True)
    await net.create_subnet(root, str(public.id), "192.0.2.0/29")  # 5 addresses after the gateway
    await net.create_subnet(root, str(public.id), "2001:db8::/64", ip_version=6)
    return {"public": str(public.id), "root": root}


async def _create(client: httpx.AsyncClient, setup: dict, auth: dict, **extra) -> httpx.Response:
    body = {"name": "vm", "imageRef": setup["image"], "flavorRef": setup["flavor"], **extra}
    return await client.post(f"{COMPUTE}/servers", json={"server": body}, headers=auth)


async def _held(engines: Engines) -> set[str]:
    async with engines.db.session() as s:
        from sqlalchemy import select

        return set(await s.scalars(select(IpAddress.address).where(~IpAddress.floating)))


async def _instance_nics(engines: Engines, server_id: str) -> list[dict]:
    cluster = engines.compute.cluster(await engines.compute.backend("embedded"))
    await cluster.idle()
    cluster.state.read()
    return cluster.state.instances[f"snf-{server_id}"]["nics"]


async def _settled(client: httpx.AsyncClient, auth: dict, server_id: str, engines: Engines) -> dict:
    cluster = engines.compute.cluster(await engines.compute.backend("embedded"))
    await cluster.idle()
    await asyncio.sleep(0.05)  # the events of the last job reach the dispatcher
    return (await client.get(f"{COMPUTE}/servers/{server_id}", headers=auth)).json()["server"]


async def test_default_public_nic_and_delete_releases_it(client, engines, setup, nets):
    _, alice = setup["people"]["alice"]
    for networks in ({}, {"networks": []}, {"networks": "auto"}):  # the openstack CLI sends []
        created = await _create(client, setup, alice, **networks)
        assert created.status_code == 202, created.text
        server = created.json()["server"]
        (v4, v6) = server["addresses"]["public"]
        assert v4["version"] == 4 and v4["addr"].startswith("192.0.2.")
        assert v4["OS-EXT-IPS:type"] == "fixed"
        mac = v4["OS-EXT-IPS-MAC:mac_addr"]
        assert v6["version"] == 6 and v6["addr"].startswith("2001:db8::")
        (attachment,) = server["attachments"]
        assert attachment["network_id"] == nets["public"] and attachment["mac_address"] == mac
        assert attachment["ipv4"] == v4["addr"] and attachment["ipv6"] == v6["addr"]
        active = await wait(client, alice, server["id"], "ACTIVE")
        assert active["addresses"] == server["addresses"]
        (nic,) = await _instance_nics(engines, server["id"])
        assert (
            nic["ip"] == v4["addr"]
            and nic["mac"] == mac
            and nic["name"] == f"nefos-port-{attachment['id']}"
        )
        ips = (await client.get(f"{COMPUTE}/servers/{server['id']}/ips", headers=alice)).json()
        assert ips == {"addresses": {"public": [{"version": 4, "addr": v4["addr"]},
                                                {"version": 6, "addr": v6["addr"]}]}}  # fmt: skip
        port = await client.get(f"{NETWORK}/ports/{attachment['id']}", headers=alice)
        assert port.json()["port"]["device_id"] == server["id"]
        assert port.json()["port"]["device_owner"] == "compute:nova"
        assert v4["addr"] in await _held(engines)
        deleted = await client.delete(f"{COMPUTE}/servers/{server['id']}", headers=alice)
        assert deleted.status_code == 204
        await wait(client, alice, server["id"], "DELETED")
        assert v4["addr"] not in await _held(engines)
        gone = await client.get(f"{NETWORK}/ports/{attachment['id']}", headers=alice)
        assert gone.status_code == 404
    none = await _create(client, setup, alice, networks="none")
    assert none.json()["server"]["addresses"] == {}


async def test_no_default_network_means_no_nic(client, engines, setup):
    engines.settings.network.default_public_network = ""
    _, alice = setup["people"]["alice"]
    created = await _create(client, setup, alice)
    assert created.json()["server"]["addresses"] == {}
    assert created.json()["server"]["attachments"] == []


async def test_a_project_default_network_wins_over_the_deployments(client, engines, setup, nets):
    """A server created without networks in a project that names its own default
    network (`nefos project default-network`) gets a NIC there; in another project, the
    deployment's default; with the project's setting gone, the deployment's again."""
    alice_id, alice = setup["people"]["alice"]
    project = await new_project(engines, alice_id, vms=5)
    await engines.projects.enroll(None, project, alice_id)
    root, net = nets["root"], engines.network
    campus = await net.create_network(root, "campus", "CUSTOM", public=True)
    await net.create_subnet(root, str(campus.id), "198.51.100.0/29")
    assert (await net.set_project_network(project, "campus")).id == campus.id

    def first_nic(server: dict) -> tuple[str, str]:
        (attachment,) = server["attachments"]
        return attachment["network_id"], attachment["ipv4"]

    in_project = (await _create(client, setup, alice, project=project)).json()["server"]
    network_id, address = first_nic(in_project)
    assert network_id == str(campus.id) and address.startswith("198.51.100.")
    assert set(in_project["addresses"]) == {"campus"}
    for networks in ({"networks": []}, {"networks": "auto"}):  # the openstack CLI sends []
        also = (await _create(client, setup, alice, project=project, **networks)).json()
        assert first_nic(also["server"])[0] == str(campus.id)
    asked = await _create(
        client, setup, alice, project=project, networks=[{"uuid": nets["public"]}]
    )
    assert first_nic(asked.json()["server"])[0] == nets["public"]  # networks named: those
    elsewhere = (await _create(client, setup, alice)).json()["server"]  # her own project
    assert first_nic(elsewhere)[0] == nets["public"]
    await net.set_project_network(project, None)
    after = (await _create(client, setup, alice, project=project)).json()["server"]
    assert first_nic(after)[0] == nets["public"]


async def test_networks_by_network_port_and_fixed_ip(client, engines, setup, nets):
    _, alice = setup["people"]["alice"]
    _, bob = setup["people"]["bob"]
    lan = (
        await client.post(f"{NETWORK}/networks", json={"network": {"name": "lan"}}, headers=alice)
    ).json()["network"]
    subnet = await client.post(
        f"{NETWORK}/subnets",
        json={"subnet": {"network_id": lan["id"], "cidr": "10.0.0.0/24", "ip_version": 4}},
        headers=alice,
    )
    assert subnet.status_code == 201
    mine = (
        await client.post(
            f"{NETWORK}/ports", json={"port": {"network_id": lan["id"]}}, headers=alice
        )
    ).json()["port"]
    created = await _create(
        client, setup, alice,
        networks=[{"uuid": lan["id"], "fixed_ip": "10.0.0.50"}, {"port": mine["id"]},
                  {"uuid": nets["public"]}],
    )  # fmt: skip
    assert created.status_code == 202, created.text
    server = created.json()["server"]
    lan_addresses = sorted(a["addr"] for a in server["addresses"]["lan"])
    assert lan_addresses == sorted(["10.0.0.50", mine["fixed_ips"][0]["ip_address"]])
    assert [a["version"] for a in server["addresses"]["public"]] == [4, 6]
    assert len(server["attachments"]) == 3
    await wait(client, alice, server["id"], "ACTIVE")
    assert len(await _instance_nics(engines, server["id"])) == 3

    # Bob may not use alice's network or port: Nova's 400, and nothing is left behind.
    before = await _held(engines)
    for networks in ([{"uuid": lan["id"]}], [{"port": mine["id"]}], [{"uuid": str(uuid.uuid4())}]):
        refused = await _create(client, setup, bob, networks=networks)
        assert refused.status_code == 400, refused.text
    taken = await _create(
        client, setup, alice, networks=[{"uuid": lan["id"], "fixed_ip": "10.0.0.50"}]
    )
    assert taken.status_code == 409
    in_use = await _create(client, setup, alice, networks=[{"port": mine["id"]}])
    assert in_use.status_code == 409
    bad = await _create(client, setup, alice, networks=[{"uuid": lan["id"], "port": mine["id"]}])
    assert bad.status_code == 400
    assert await _held(engines) == before

    # Deleting the server releases the ports made for it, and detaches alice's own.
    await client.delete(f"{COMPUTE}/servers/{server['id']}", headers=alice)
    await wait(client, alice, server["id"], "DELETED")
    kept = (await client.get(f"{NETWORK}/ports/{mine['id']}", headers=alice)).json()["port"]
    assert kept["device_id"] == "" or kept["device_id"] is None
    assert "10.0.0.50" not in await _held(engines)
    assert mine["fixed_ips"][0]["ip_address"] in await _held(engines)


async def test_all_or_none_when_the_pool_runs_out_or_the_backend_refuses(
    client, engines, setup, nets
):
    _, alice = setup["people"]["alice"]
    # The public /29 has 5 addresses; with 4 held, a create of 2 servers gets neither.
    for _ in range(4):
        await engines.network.create_port(nets["root"], nets["public"])
    before = await _held(engines)
    many = await _create(client, setup, alice, min_count=2, max_count=2)
    assert many.status_code == 409, many.text
    assert await _held(engines) == before
    listed = (await client.get(f"{COMPUTE}/servers", headers=alice)).json()["servers"]
    assert listed == []
    # A backend that refuses the build: the server is in ERROR, its address released.
    cluster = engines.compute.cluster(await engines.compute.backend("embedded"))
    real = cluster.submit

    async def refuse(op):
        cluster.submit = real
        raise RuntimeError("no room")

    cluster.submit = refuse
    refused = await _create(client, setup, alice)
    server = refused.json()["server"]
    assert server["status"] == "ERROR"
    assert await _held(engines) == before
    shown = (await client.get(f"{COMPUTE}/servers/{server['id']}", headers=alice)).json()
    assert shown["server"]["addresses"] == {}


async def test_floating_ips_and_interfaces(client, engines, setup, nets):
    alice_id, alice = setup["people"]["alice"]
    _, bob = setup["people"]["bob"]
    server = (await _create(client, setup, alice)).json()["server"]
    await wait(client, alice, server["id"], "ACTIVE")
    port_id = server["attachments"][0]["id"]  # its default NIC, with a public fixed IPv4
    action = f"{COMPUTE}/servers/{server['id']}/action"
    fip = (
        await client.post(f"{NETWORK}/floatingips", json={"floatingip": {}}, headers=alice)
    ).json()["floatingip"]
    address, fip_url = fip["floating_ip_address"], f"{NETWORK}/floatingips/{fip['id']}"
    assert await usage(engines, alice_id, "cyclades.floating_ip") == (1, 1)
    theirs = await client.post(action, json={"addFloatingIp": {"address": address}}, headers=bob)
    assert theirs.status_code == 404  # bob does not see alice's server
    unknown = await client.post(
        action, json={"addFloatingIp": {"address": "192.0.2.200"}}, headers=alice
    )
    assert unknown.status_code == 404

    # addFloatingIp, as Synnefo: a new NIC on the floating IP's network holds it (the
    # default NIC keeps its own address: a node routes one address per NIC, no NAT).
    added = await client.post(action, json={"addFloatingIp": {"address": address}}, headers=alice)
    assert added.status_code == 202, added.text
    shown = await _settled(client, alice, server["id"], engines)
    floating = [a for a in shown["addresses"]["public"] if a["OS-EXT-IPS:type"] == "floating"]
    assert [a["addr"] for a in floating] == [address]
    first, holder = shown["attachments"]
    assert first["id"] == port_id and first["ipv4"] != address
    assert holder["ipv4"] == address and holder["OS-EXT-IPS:type"] == "floating"
    assert [n["ip"] for n in await _instance_nics(engines, server["id"])] == [
        first["ipv4"], address
    ]  # fmt: skip
    seen = (await client.get(fip_url, headers=alice)).json()["floatingip"]
    assert seen["port_id"] == holder["id"]
    busy = await client.delete(fip_url, headers=alice)
    assert busy.status_code == 409
    twice = await client.post(action, json={"addFloatingIp": {"address": address}}, headers=alice)
    assert twice.status_code == 202  # already there: no second NIC
    assert len(await _instance_nics(engines, server["id"])) == 2
    removed = await client.post(
        action, json={"removeFloatingIp": {"address": address}}, headers=alice
    )
    assert removed.status_code == 202
    shown = await _settled(client, alice, server["id"], engines)
    assert all(a["OS-EXT-IPS:type"] == "fixed" for a in shown["addresses"]["public"])
    assert [a["id"] for a in shown["attachments"]] == [port_id]
    assert len(await _instance_nics(engines, server["id"])) == 1
    assert (await client.get(f"{NETWORK}/ports/{holder['id']}", headers=alice)).status_code == 404
    assert (await client.get(fip_url, headers=alice)).json()["floatingip"]["port_id"] is None
    assert await usage(engines, alice_id, "cyclades.floating_ip") == (1, 1)
    again = await client.post(
        action, json={"removeFloatingIp": {"address": address}}, headers=alice
    )
    assert again.status_code == 409

    # Neutron's PUT with one of the server's ports (what `openstack server add floating
    # ip` sends) does the same: the answer's port_id is the NIC that now holds it.
    put = await client.put(fip_url, json={"floatingip": {"port_id": port_id}}, headers=alice)
    assert put.status_code == 200, put.text
    holder_id = put.json()["floatingip"]["port_id"]
    assert holder_id not in (None, port_id)
    same = await client.put(fip_url, json={"floatingip": {"port_id": port_id}}, headers=alice)
    assert same.status_code == 200 and same.json()["floatingip"]["port_id"] == holder_id
    shown = await _settled(client, alice, server["id"], engines)
    assert address in [a["addr"] for a in shown["addresses"]["public"]]
    assert [n["ip"] for n in await _instance_nics(engines, server["id"])][1] == address
    other = await client.put(fip_url, json={"floatingip": {"port_id": port_id}}, headers=bob)
    assert other.status_code == 404 and "NeutronError" in other.json()
    put = await client.put(fip_url, json={"floatingip": {"port_id": None}}, headers=alice)
    assert put.status_code == 200 and put.json()["floatingip"]["port_id"] is None
    assert len(await _instance_nics(engines, server["id"])) == 1
    assert await usage(engines, alice_id, "cyclades.floating_ip") == (1, 1)

    # os-interface: attach a NIC on a private network, see it on the instance, detach it.
    lan = (
        await client.post(f"{NETWORK}/networks", json={"network": {"name": "lan"}}, headers=alice)
    ).json()["network"]
    await client.post(
        f"{NETWORK}/subnets",
        json={"subnet": {"network_id": lan["id"], "cidr": "10.1.0.0/24", "ip_version": 4}},
        headers=alice,
    )
    interfaces = f"{COMPUTE}/servers/{server['id']}/os-interface"
    attached = await client.post(
        interfaces, json={"interfaceAttachment": {"net_id": lan["id"]}}, headers=alice
    )
    assert attached.status_code == 200, attached.text
    nic = attached.json()["interfaceAttachment"]
    assert nic["net_id"] == lan["id"] and nic["fixed_ips"][0]["ip_address"].startswith("10.1.0.")
    shown = await _settled(client, alice, server["id"], engines)
    assert set(shown["addresses"]) == {"public", "lan"}
    names = [n["name"] for n in await _instance_nics(engines, server["id"])]
    assert names == [f"nefos-port-{port_id}", f"nefos-port-{nic['port_id']}"]
    listed = (await client.get(interfaces, headers=alice)).json()["interfaceAttachments"]
    assert [i["port_id"] for i in listed] == [port_id, nic["port_id"]]
    assert (await client.get(interfaces, headers=bob)).status_code == 404

    # The server's ports by device_id (a text id, not a UUID: what `openstack server add
    # floating ip` looks up). A port on another network takes no floating IP itself (no
    # NAT): the server gets a NIC of the floating IP's network holding it, gone on detach.
    by_device = await client.get(
        f"{NETWORK}/ports", params={"device_id": server["id"]}, headers=alice
    )
    assert sorted(p["id"] for p in by_device.json()["ports"]) == sorted([port_id, nic["port_id"]])
    put = await client.put(
        f"{NETWORK}/floatingips/{fip['id']}",
        json={"floatingip": {"port_id": nic["port_id"]}},
        headers=alice,
    )
    assert put.status_code == 200, put.text
    assert put.json()["floatingip"]["port_id"] not in (port_id, nic["port_id"])
    shown = await _settled(client, alice, server["id"], engines)
    assert address in [a["addr"] for a in shown["addresses"]["public"]]
    assert len(await _instance_nics(engines, server["id"])) == 3
    put = await client.put(
        f"{NETWORK}/floatingips/{fip['id']}", json={"floatingip": {"port_id": None}}, headers=alice
    )
    assert put.status_code == 200
    assert len(await _instance_nics(engines, server["id"])) == 2

    detached = await client.delete(f"{interfaces}/{nic['port_id']}", headers=alice)
    assert detached.status_code == 202
    shown = await _settled(client, alice, server["id"], engines)
    assert set(shown["addresses"]) == {"public"}
    assert [n["name"] for n in await _instance_nics(engines, server["id"])] == [
        f"nefos-port-{port_id}"
    ]
    gone = await client.get(f"{NETWORK}/ports/{nic['port_id']}", headers=alice)
    assert gone.status_code == 404

    # A Neutron port made with the server's id as device_id is a NIC added; deleting it
    # removes the NIC.
    made = await client.post(
        f"{NETWORK}/ports",
        json={"port": {"network_id": lan["id"], "device_id": server["id"],
                       "device_owner": "compute:nova"}},
        headers=alice,
    )  # fmt: skip
    assert made.status_code == 201
    made_id = made.json()["port"]["id"]
    await _settled(client, alice, server["id"], engines)
    assert f"nefos-port-{made_id}" in [
        n["name"] for n in await _instance_nics(engines, server["id"])
    ]
    await client.delete(f"{NETWORK}/ports/{made_id}", headers=alice)
    await _settled(client, alice, server["id"], engines)
    assert f"nefos-port-{made_id}" not in [
        n["name"] for n in await _instance_nics(engines, server["id"])
    ]
    # Bob's port naming alice's server is not her NIC.
    bobs_net = (
        await client.post(f"{NETWORK}/networks", json={"network": {"name": "b"}}, headers=bob)
    ).json()["network"]
    await client.post(
        f"{NETWORK}/subnets",
        json={"subnet": {"network_id": bobs_net["id"], "cidr": "10.2.0.0/24", "ip_version": 4}},
        headers=bob,
    )
    await client.post(
        f"{NETWORK}/ports",
        json={"port": {"network_id": bobs_net["id"], "device_id": server["id"]}},
        headers=bob,
    )
    shown = await _settled(client, alice, server["id"], engines)
    assert set(shown["addresses"]) == {"public"}


async def test_a_floating_ip_goes_on_a_nic_of_a_server_only(client, engines, setup, nets):
    """Who may put which floating IP where, and its quota through a server's delete: a
    port on no server, another user's port or floating IP, and a floating IP on another
    server answer Neutron's 404 and 409; a user's own port of the floating IP's network
    holding no address (kamaki's `ip attach`, then detached) takes it itself."""
    alice_id, alice = setup["people"]["alice"]
    _, bob = setup["people"]["bob"]
    one = (await _create(client, setup, alice)).json()["server"]
    two = (await _create(client, setup, alice)).json()["server"]
    await wait(client, alice, one["id"], "ACTIVE")
    await wait(client, alice, two["id"], "ACTIVE")
    # a device id names a server only in ASCII digits; someone else's server is not one
    nics = engines.compute.server_nics
    assert await nics.is_server_of(alice_id, str(one["id"]))
    assert not await nics.is_server_of(setup["people"]["bob"][0], str(one["id"]))
    for odd in ("\u00b2", "\u0661", "9" * 30, "", "-1"):
        assert not await nics.is_server_of(alice_id, odd)
    fips = [
        (await client.post(f"{NETWORK}/floatingips", json={"floatingip": {}}, headers=who)).json()[
            "floatingip"
        ]
        for who in (alice, alice, bob)
    ]
    first, second, bobs = (f"{NETWORK}/floatingips/{f['id']}" for f in fips)
    one_port, two_port = one["attachments"][0]["id"], two["attachments"][0]["id"]

    def put(url: str, port: str | None, auth: dict) -> Any:
        return client.put(url, json={"floatingip": {"port_id": port}}, headers=auth)

    assert (await put(first, one_port, alice)).status_code == 200
    taken = await put(first, two_port, alice)
    assert taken.status_code == 409 and "NeutronError" in taken.json()
    moved = await client.post(
        f"{COMPUTE}/servers/{two['id']}/action",
        json={"addFloatingIp": {"address": fips[0]["floating_ip_address"]}},
        headers=alice,
    )
    assert moved.status_code == 409
    lan = (
        await client.post(f"{NETWORK}/networks", json={"network": {"name": "l"}}, headers=alice)
    ).json()["network"]
    await client.post(
        f"{NETWORK}/subnets",
        json={"subnet": {"network_id": lan["id"], "cidr": "10.3.0.0/24", "ip_version": 4}},
        headers=alice,
    )
    loose = (
        await client.post(
            f"{NETWORK}/ports", json={"port": {"network_id": lan["id"]}}, headers=alice
        )
    ).json()["port"]
    for url, port, auth in (
        (second, loose["id"], alice),  # a port on no server
        (second, str(uuid.uuid4()), alice),  # no such port
        (second, one_port, bob),  # alice's floating IP: bob sees neither it nor the port
        (bobs, one_port, bob),  # bob's floating IP, alice's port
        (bobs, one_port, alice),  # alice's port, bob's floating IP
    ):
        refused = await put(url, port, auth)
        assert refused.status_code == 404 and "NeutronError" in refused.json(), (url, port)
    assert (await client.get(second, headers=alice)).json()["floatingip"]["port_id"] is None

    # kamaki's `ip attach`: a port of alice's on the public network holding the address.
    address = fips[1]["floating_ip_address"]
    own = await client.post(
        f"{NETWORK}/ports",
        json={"port": {"network_id": nets["public"], "device_id": two["id"],
                       "fixed_ips": [{"ip_address": address}]}},
        headers=alice,
    )  # fmt: skip
    assert own.status_code == 201, own.text
    own_id = own.json()["port"]["id"]
    await _settled(client, alice, two["id"], engines)
    assert [n["ip"] for n in await _instance_nics(engines, two["id"])][1] == address
    assert (await put(second, None, alice)).json()["floatingip"]["port_id"] is None
    assert [n["ip"] for n in await _instance_nics(engines, two["id"])][1] is None
    back = await put(second, own_id, alice)  # it holds no address: it takes it itself
    assert back.status_code == 200 and back.json()["floatingip"]["port_id"] == own_id
    assert [n["ip"] for n in await _instance_nics(engines, two["id"])][1] == address
    assert await usage(engines, alice_id, "cyclades.floating_ip") == (2, 2)

    # A server's delete releases the NIC made for a floating IP, which stays allocated
    # (charged once); a user's own port is only detached from the server, as Nova does,
    # and keeps its floating IP until it is deleted.
    for server in (one, two):
        await client.delete(f"{COMPUTE}/servers/{server['id']}", headers=alice)
        await wait(client, alice, server["id"], "DELETED")
    assert (await client.get(first, headers=alice)).json()["floatingip"]["port_id"] is None
    kept = (await client.get(f"{NETWORK}/ports/{own_id}", headers=alice)).json()["port"]
    assert kept["device_id"] == "" and address in str(kept["fixed_ips"])
    assert (await client.get(second, headers=alice)).json()["floatingip"]["port_id"] == own_id
    assert (await client.delete(f"{NETWORK}/ports/{own_id}", headers=alice)).status_code == 204
    assert await usage(engines, alice_id, "cyclades.floating_ip") == (2, 2)
    for url in (first, second):
        assert (await client.delete(url, headers=alice)).status_code == 204
    assert await usage(engines, alice_id, "cyclades.floating_ip") == (0, 0)


async def test_reconciler_releases_ports_of_a_server_gone(engines, setup, nets, client):
    from nefos.compute.reconcile import reconcile_servers

    _, alice = setup["people"]["alice"]
    server = (await _create(client, setup, alice)).json()["server"]
    await wait(client, alice, server["id"], "ACTIVE")
    address = server["addresses"]["public"][0]["addr"]
    # The server row goes behind nefos's back (as after a lost event and a purge).
    async with engines.db.transaction() as s:
        from nefos.compute.models import Server

        row = await s.get(Server, int(server["id"]))
        row.deleted = True
    findings = await reconcile_servers(engines.compute, fix=False)
    assert any(f.server_id == int(server["id"]) and not f.fixed for f in findings)
    assert address in await _held(engines)
    findings = await reconcile_servers(engines.compute, fix=True)
    assert any(f.server_id == int(server["id"]) and f.fixed for f in findings)
    assert address not in await _held(engines)
    async with engines.db.session() as s:
        from sqlalchemy import select

        assert (await s.scalar(select(Port).where(Port.device_id == server["id"]))) is None


async def test_firewall_profile_action_sets_the_nic_tag(client, engines, setup, nets):
    """Synnefo's firewallProfile: the NIC's profile shows in ``attachments`` and becomes
    the instance's tag, one per NIC; bad input and another user's server are refused."""
    _, alice = setup["people"]["alice"]
    _, bob = setup["people"]["bob"]
    server = (await _create(client, setup, alice)).json()["server"]
    await wait(client, alice, server["id"], "ACTIVE")
    (attachment,) = server["attachments"]
    port = attachment["id"]
    action = f"{COMPUTE}/servers/{server['id']}/action"
    cluster = engines.compute.cluster(await engines.compute.backend("embedded"))

    async def firewall_tags() -> list[str]:
        await cluster.idle()
        cluster.state.read()
        tags = cluster.state.instances[f"snf-{server['id']}"]["tags"]
        return [t for t in tags if t.startswith("nefos:firewall:")]

    assert await firewall_tags() == [f"nefos:firewall:nefos-port-{port}:unprotected"]
    for profile, level in (("ENABLED", "protected"), ("PROTECTED", "limited")):
        body = {"firewallProfile": {"profile": profile, "nic": port}}
        answer = await client.post(action, json=body, headers=alice)
        assert answer.status_code == 202, answer.text
        assert await firewall_tags() == [f"nefos:firewall:nefos-port-{port}:{level}"]
        shown = await _settled(client, alice, server["id"], engines)
        assert shown["attachments"][0]["firewallProfile"] == profile

    refused = [
        ({"profile": "OPEN", "nic": port}, alice, 400),
        ({"profile": "ENABLED"}, alice, 400),
        ({"profile": "ENABLED", "nic": str(uuid.uuid4())}, alice, 404),
        ({"profile": "DISABLED", "nic": port}, bob, 404),
    ]
    for args, who, status in refused:
        answer = await client.post(action, json={"firewallProfile": args}, headers=who)
        assert answer.status_code == status, (args, answer.text)
    assert await firewall_tags() == [f"nefos:firewall:nefos-port-{port}:limited"]
