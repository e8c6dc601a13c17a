"""Every row of every dialect table, walked against the endpoints each catalog publishes:
the v3 catalog's speak OpenStack, the v2.0 catalog's speak Synnefo (core.dialects)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from nefos.compute import dialect as compute_dialect
from nefos.core.dialects import Table
from nefos.images import dialect as images_dialect
from nefos.network import dialect as network_dialect
from nefos.network.service import Caller
from nefos.storage import dialect as storage_dialect
from nefos.volume import dialect as volume_dialect
from tests.compute.conftest import wait

TABLES: list[Table] = [
    compute_dialect.TABLE,
    storage_dialect.TABLE,
    images_dialect.TABLE,
    network_dialect.TABLE,
    volume_dialect.TABLE,
]

Probe = Callable[[httpx.AsyncClient, dict[str, Any], dict[str, str]], Awaitable[Any]]
PROBES: dict[tuple[str, str], Probe] = {}


def probe(api: str, name: str) -> Callable[[Probe], Probe]:
    def register(function: Probe) -> Probe:
        PROBES[(api, name)] = function
        return function

    return register


def path(url: str) -> str:
    return urlsplit(url).path


async def catalogs(client: httpx.AsyncClient, auth: dict[str, str]) -> dict[str, dict]:
    """Each dialect's endpoints by service type, read from the catalog that publishes them."""
    token = auth["X-Auth-Token"]
    v2 = await client.post("/identity/v2.0/tokens", json={"auth": {"token": {"id": token}}})
    v3 = await client.post(
        "/identity/v3/auth/tokens",
        json={"auth": {"identity": {"methods": ["token"], "token": {"id": token}}}},
    )
    assert v2.status_code == 200 and v3.status_code == 201, (v2.text, v3.text)
    synnefo = {
        s["type"]: path(s["endpoints"][0]["publicURL"])
        for s in v2.json()["access"]["serviceCatalog"]
    }
    openstack = {s["type"]: path(s["endpoints"][0]["url"]) for s in v3.json()["token"]["catalog"]}
    user = v2.json()["access"]["user"]["id"]
    synnefo["object-store"] += f"/{user}"  # kamaki appends the account itself
    openstack["image"] += "/v1"  # the v3 catalog names Glance's root; v1 lies below it
    return {"openstack": openstack, "synnefo": synnefo}


async def stopped_server(client, endpoints, auth, setup) -> str:
    compute = endpoints["compute"]
    body = {"server": {"name": "vm", "imageRef": setup["image"], "flavorRef": setup["flavor"]}}
    created = await client.post(f"{compute}/servers", json=body, headers=auth)
    assert created.status_code == 202, created.text
    server_id = created.json()["server"]["id"]
    await wait(client, auth, server_id, "ACTIVE")
    stop = await client.post(
        f"{compute}/servers/{server_id}/action", json={"os-stop": None}, headers=auth
    )
    assert stop.status_code == 202
    return server_id


@probe("compute", "stopped_status")
async def _(client, endpoints, auth, setup):
    server_id = await stopped_server(client, endpoints, auth, setup)
    compute = endpoints["compute"]
    for _ in range(500):
        server = (await client.get(f"{compute}/servers/{server_id}", headers=auth)).json()
        status = server["server"]["status"]
        if status not in ("ACTIVE", "BUILD"):
            break
        await asyncio.sleep(0.01)
    listed = await client.get(f"{compute}/servers?status={status}", headers=auth)
    assert server_id in [s["id"] for s in listed.json()["servers"]]  # the filter takes it
    return status


@probe("compute", "server_extras")
async def _(client, endpoints, auth, setup):
    servers = await client.get(f"{endpoints['compute']}/servers/detail", headers=auth)
    if not servers.json()["servers"]:
        await stopped_server(client, endpoints, auth, setup)
        servers = await client.get(f"{endpoints['compute']}/servers/detail", headers=auth)
    return frozenset(servers.json()["servers"][0]) & compute_dialect.SERVER_EXTRAS


@probe("compute", "server_security_groups")
async def _(client, endpoints, auth, setup):
    servers = await client.get(f"{endpoints['compute']}/servers/detail", headers=auth)
    if not servers.json()["servers"]:
        await stopped_server(client, endpoints, auth, setup)
        servers = await client.get(f"{endpoints['compute']}/servers/detail", headers=auth)
    groups = servers.json()["servers"][0]["security_groups"]
    levels = {"protected", "limited", "unprotected"}
    assert groups == [{"name": "default"}] or {g["name"] for g in groups} <= levels
    return "default" if groups == [{"name": "default"}] else "profiles"


@probe("compute", "flavor_extras")
async def _(client, endpoints, auth, setup):
    flavors = await client.get(f"{endpoints['compute']}/flavors/detail", headers=auth)
    return frozenset(flavors.json()["flavors"][0]) & compute_dialect.FLAVOR_EXTRAS


@probe("compute", "image_extras")
async def _(client, endpoints, auth, setup):
    images = await client.get(f"{endpoints['compute']}/images/detail", headers=auth)
    return frozenset(images.json()["images"][0]) & compute_dialect.IMAGE_EXTRAS


@probe("object-store", "account_post_status")
async def _(client, endpoints, auth, setup):
    account = endpoints["object-store"]
    reply = await client.post(account, headers={**auth, "X-Account-Meta-Colour": "blue"})
    assert (await client.head(account, headers=auth)).headers["X-Account-Meta-Colour"] == "blue"
    return reply.status_code


@probe("object-store", "container_post_status")
async def _(client, endpoints, auth, setup):
    container = f"{endpoints['object-store']}/images"
    reply = await client.post(container, headers={**auth, "X-Container-Meta-Colour": "red"})
    assert (await client.head(container, headers=auth)).headers["X-Container-Meta-Colour"] == "red"
    return reply.status_code


@probe("object-store", "object_item_extras")
async def _(client, endpoints, auth, setup):
    listing = await client.get(f"{endpoints['object-store']}/images?format=json", headers=auth)
    return frozenset(listing.json()[0]) & storage_dialect.OBJECT_ITEM_EXTRAS


@probe("object-store", "container_item_extras")
async def _(client, endpoints, auth, setup):
    listing = await client.get(f"{endpoints['object-store']}?format=json", headers=auth)
    return frozenset(listing.json()[0]) & storage_dialect.CONTAINER_ITEM_EXTRAS


@probe("object-store", "meta_value_encoding")
async def _(client, endpoints, auth, setup):
    container = f"{endpoints['object-store']}/images"
    sent = "snö".encode()  # as swiftclient sends it: the UTF-8 bytes
    reply = await client.post(container, headers={**auth, "X-Container-Meta-Word": sent})
    assert reply.status_code in (202, 204), reply.text
    back = dict((await client.head(container, headers=auth)).headers.raw)[b"x-container-meta-word"]
    return {sent: "utf-8", b"sn%C3%B6": "percent"}.get(back, back)


@probe("object-store", "path_lists_subdirs")
async def _(client, endpoints, auth, setup):
    container = f"{endpoints['object-store']}/dialect-probe"
    assert (await client.put(container, headers=auth)).status_code in (201, 202)
    for name in ("dir/file", "dir/sub/file"):
        assert (await client.put(f"{container}/{name}", headers=auth)).status_code == 201
    listing = await client.get(f"{container}?path=dir&format=json", headers=auth)
    names = [item.get("subdir") or item["name"] for item in listing.json()]
    assert "dir/file" in names and "dir/sub/file" not in names
    return "dir/sub/" in names


@probe("object-store", "bad_name_status")
async def _(client, endpoints, auth, setup):
    not_utf8 = await client.head(f"{endpoints['object-store']}/%FF", headers=auth)
    with_nul = await client.put(f"{endpoints['object-store']}/a%00b", headers=auth)
    assert not_utf8.status_code == with_nul.status_code
    return with_nul.status_code


@probe("image v1", "listing_shape")
async def _(client, endpoints, auth, setup):
    listing = (await client.get(f"{endpoints['image']}/images", headers=auth)).json()
    return "array" if isinstance(listing, list) else "object"


@probe("image v1", "detail_extras")
async def _(client, endpoints, auth, setup):
    listing = (await client.get(f"{endpoints['image']}/images/detail", headers=auth)).json()
    images = listing if isinstance(listing, list) else listing["images"]
    return frozenset(images[0]) & images_dialect.DETAIL_EXTRAS


@probe("image v1", "status_names")
async def _(client, endpoints, auth, setup):
    listing = (await client.get(f"{endpoints['image']}/images/detail", headers=auth)).json()
    images = listing if isinstance(listing, list) else listing["images"]
    status = next(i["status"] for i in images if i["id"] == setup["image"])
    table = images_dialect.TABLE.row("status_names")
    return (
        table.openstack
        if status == table.openstack["active"]
        else (table.synnefo if status == table.synnefo["active"] else status)
    )


def neutron(endpoints: dict[str, str]) -> str:
    """The v3 catalog names Neutron's root; clients append the version."""
    base = endpoints["network"].rstrip("/")
    return base if base.endswith("/v2.0") else base + "/v2.0"


async def probe_network(client, endpoints, auth) -> dict[str, Any]:
    """One private network with an IPv4 and an IPv6 subnet and one port (made once,
    seen through both endpoints). ``type`` is taken as input on either."""
    base = neutron(endpoints)
    found = await client.get(f"{base}/networks", params={"name": "probe"}, headers=auth)
    if found.json()["networks"]:
        network = found.json()["networks"][0]
    else:
        created = await client.post(
            f"{base}/networks", json={"network": {"name": "probe", "type": "MAC_FILTERED"}},
            headers=auth,
        )  # fmt: skip
        assert created.status_code == 201, created.text
        network = created.json()["network"]
        for cidr in ("10.0.0.0/24", "2001:db8::/64"):
            subnet = {"network_id": network["id"], "cidr": cidr}
            made = await client.post(f"{base}/subnets", json={"subnet": subnet}, headers=auth)
            assert made.status_code == 201, made.text
        port = await client.post(
            f"{base}/ports", json={"port": {"network_id": network["id"]}}, headers=auth
        )
        assert port.status_code == 201, port.text
    return network


@probe("network", "network_extras")
async def _(client, endpoints, auth, setup):
    await probe_network(client, endpoints, auth)
    listing = await client.get(f"{neutron(endpoints)}/networks/detail", headers=auth)
    return frozenset(listing.json()["networks"][0]) & network_dialect.NETWORK_EXTRAS


@probe("network", "subnet_extras")
async def _(client, endpoints, auth, setup):
    await probe_network(client, endpoints, auth)
    listing = await client.get(f"{neutron(endpoints)}/subnets/detail", headers=auth)
    v6 = next(s for s in listing.json()["subnets"] if s["ip_version"] == 6)
    return frozenset(v6) & network_dialect.SUBNET_EXTRAS


async def probe_port(client, endpoints, auth) -> dict[str, Any]:
    network = await probe_network(client, endpoints, auth)
    listing = await client.get(
        f"{neutron(endpoints)}/ports", params={"network_id": network["id"]}, headers=auth
    )
    return listing.json()["ports"][0]


@probe("network", "port_extras")
async def _(client, endpoints, auth, setup):
    return frozenset(await probe_port(client, endpoints, auth)) & network_dialect.PORT_EXTRAS


@probe("network", "fixed_ip_subnet_key")
async def _(client, endpoints, auth, setup):
    fixed = (await probe_port(client, endpoints, auth))["fixed_ips"][0]
    return next(key for key in fixed if key != "ip_address")


@probe("network", "no_device_id")
async def _(client, endpoints, auth, setup):
    return (await probe_port(client, endpoints, auth))["device_id"]


async def probe_floating_ip(client, endpoints, auth) -> httpx.Response:
    """A floating IP made on this endpoint (the operator makes the pool once); its
    release frees the quota for the next probe."""
    net = client._transport.app.state.engines.network
    if not await net.networks(Caller("probe", admin=True), {"name": ["probe-public"]}):
        pool = await net.create_network(
            Caller("probe", admin=True), "probe-public", "CUSTOM", floating_ip_pool=True
        )
        await net.create_subnet(Caller("probe", admin=True), str(pool.id), "192.0.2.0/24")
    created = await client.post(
        f"{neutron(endpoints)}/floatingips", json={"floatingip": {}}, headers=auth
    )
    assert created.status_code in (200, 201), created.text
    gone = await client.delete(
        f"{neutron(endpoints)}/floatingips/{created.json()['floatingip']['id']}", headers=auth
    )
    assert gone.status_code == 204, gone.text
    return created


@probe("network", "floating_ip_extras")
async def _(client, endpoints, auth, setup):
    created = await probe_floating_ip(client, endpoints, auth)
    return frozenset(created.json()["floatingip"]) & network_dialect.FLOATING_IP_EXTRAS


@probe("network", "floating_ip_create_status")
async def _(client, endpoints, auth, setup):
    return (await probe_floating_ip(client, endpoints, auth)).status_code


@probe("network", "port_update_network_id")
async def _(client, endpoints, auth, setup):
    port = await probe_port(client, endpoints, auth)
    own = {"port": {"network_id": port["network_id"], "name": "renamed"}}
    reply = await client.put(f"{neutron(endpoints)}/ports/{port['id']}", json=own, headers=auth)
    if reply.status_code == 200:
        assert reply.json()["port"]["name"] == "renamed"
        elsewhere = {"port": {"network_id": str(uuid.uuid4()), "name": "moved"}}
        moved = await client.put(
            f"{neutron(endpoints)}/ports/{port['id']}", json=elsewhere, headers=auth
        )
        assert moved.status_code == 400, moved.text  # a port never moves
    return reply.status_code


async def probe_volume(client, endpoints, auth) -> tuple[dict[str, Any], dict[str, Any]]:
    """One volume and one snapshot of it (made once, seen through both endpoints); the
    volume is made with Cinder's names on either."""
    base = endpoints["volume"]
    listed = (await client.get(f"{base}/volumes/detail", headers=auth)).json()["volumes"]
    if not listed:
        body = {"volume": {"size": 1, "name": "probe", "description": "d"}}
        made = await client.post(f"{base}/volumes", json=body, headers=auth)
        assert made.status_code == 202, made.text
        taken = {"snapshot": {"volume_id": made.json()["volume"]["id"], "name": "probe"}}
        snapshot = await client.post(f"{base}/snapshots", json=taken, headers=auth)
        assert snapshot.status_code == 202, snapshot.text
        listed = (await client.get(f"{base}/volumes/detail", headers=auth)).json()["volumes"]
    snapshots = await client.get(f"{base}/snapshots/detail", headers=auth)
    return listed[0], snapshots.json()["snapshots"][0]


@probe("volume", "name_keys")
async def _(client, endpoints, auth, setup):
    volume, snapshot = await probe_volume(client, endpoints, auth)
    keys = ("name", "description", "display_name", "display_description")
    seen = tuple(k for k in keys if k in volume)
    assert seen == tuple(k for k in keys if k in snapshot)
    assert [volume[k] for k in seen] == ["probe", "d"]
    return seen


@probe("volume", "volume_extras")
async def _(client, endpoints, auth, setup):
    volume, _ = await probe_volume(client, endpoints, auth)
    return frozenset(volume) & volume_dialect.VOLUME_EXTRAS


@probe("volume", "volume_type_ref")
async def _(client, endpoints, auth, setup):
    volume, _ = await probe_volume(client, endpoints, auth)
    types = await client.get(f"{endpoints['volume']}/types", headers=auth)
    [volume_type] = types.json()["volume_types"]
    return next(k for k in ("name", "id") if volume_type[k] == volume["volume_type"])


@probe("volume", "snapshot_status")
async def _(client, endpoints, auth, setup):
    _, snapshot = await probe_volume(client, endpoints, auth)
    return snapshot["status"]


@probe("volume", "snapshot_extras")
async def _(client, endpoints, auth, setup):
    _, snapshot = await probe_volume(client, endpoints, auth)
    return frozenset(snapshot) & volume_dialect.SNAPSHOT_EXTRAS


@probe("volume", "type_extras")
async def _(client, endpoints, auth, setup):
    types = await client.get(f"{endpoints['volume']}/types", headers=auth)
    return frozenset(types.json()["volume_types"][0]) & volume_dialect.TYPE_EXTRAS


@probe("volume", "volume_in_use")
async def _(client, endpoints, auth, setup):
    """A volume made on a server (server_id) through the dialect's endpoint, once its
    attach is done; the status filter takes the same spelling."""
    compute, base = endpoints["compute"], endpoints["volume"]
    body = {"server": {"name": "vm", "imageRef": setup["image"], "flavorRef": setup["flavor"]}}
    created = await client.post(f"{compute}/servers", json=body, headers=auth)
    server_id = created.json()["server"]["id"]
    await wait(client, auth, server_id, "ACTIVE")
    body = {"volume": {"size": 1, "name": "on-server", "server_id": server_id}}
    made = await client.post(f"{base}/volumes", json=body, headers=auth)
    assert made.status_code == 202, made.text
    volume_id = made.json()["volume"]["id"]
    for _ in range(500):
        shown = (await client.get(f"{base}/volumes/{volume_id}", headers=auth)).json()
        if shown["volume"]["status"] != "attaching":
            break
        await asyncio.sleep(0.01)
    status = shown["volume"]["status"]
    listed = await client.get(f"{base}/volumes/detail?status={status}", headers=auth)
    assert [v["id"] for v in listed.json()["volumes"]] == [volume_id]
    return status


def test_every_row_has_a_probe():
    rows = {(table.api, row.name) for table in TABLES for row in table}
    assert rows == set(PROBES)


@pytest.mark.parametrize("dialect", ["openstack", "synnefo"])
async def test_each_endpoint_speaks_its_dialect(client: httpx.AsyncClient, setup, dialect: str):
    _, alice = setup["people"]["alice"]
    endpoints = (await catalogs(client, alice))[dialect]
    for table in TABLES:
        for row in table:
            seen = await PROBES[(table.api, row.name)](client, endpoints, alice, setup)
            assert seen == getattr(row, dialect), f"{table.api}: {row.name} on {dialect}"


def test_the_docs_name_every_row():
    page = (Path(__file__).parents[2] / "docs" / "dialects.md").read_text()
    for table in TABLES:
        for row in table:
            assert f"| `{row.name}` |" in page, f"docs/dialects.md lacks {table.api}: {row.name}"
