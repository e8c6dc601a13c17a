"""Server listings are the database's work (issue 19): Nova's filters, sort keys and
marker/limit pages decided in SQL, in a bounded number of statements however many
servers there are, and never past what the caller may see."""

from __future__ import annotations

import itertools
import uuid

import httpx
import pytest

from nefos.backends import base
from nefos.compute.listing import STATUS, ServerQuery
from nefos.compute.models import Server, ServerMetadata, ServerTag
from nefos.core.config import Settings
from nefos.network.service import Caller
from nefos.server.engines import Engines
from tests.compute.conftest import COMPUTE, wait
from tests.statements import statements

NOVA = "/compute/v2.1"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.network.default_public_network = "public"
    settings.limits.server_list_max = 4
    return settings


async def _public(engines: Engines) -> str:
    """The default public network, IPv4 and IPv6, so servers get addresses."""
    root = Caller(f"root-{uuid.uuid4().hex[:6]}", admin=True)
    net = engines.network
    public = await net.create_network(root, "public", "CUSTOM", public=True)
    await net.create_subnet(root, str(public.id), "192.0.2.0/28")
    await net.create_subnet(root, str(public.id), "2001:db8::/64", ip_version=6)
    return str(public.id)


async def _rows(engines: Engines, user: str, flavor: int, rows: list[dict]) -> list[int]:
    """Server rows written as the update path leaves them (no backend involved: the
    listing reads rows, and the states to cover are more than a test can drive)."""
    async with engines.db.session() as s, s.begin():
        servers = [
            Server(user_id=user, project=user, flavor_id=flavor, image_id="img", **row)
            for row in rows
        ]
        s.add_all(servers)
        await s.flush()
        for server in servers:
            s.add(ServerMetadata(server_id=server.id, key="role", value=server.name))
            s.add(ServerTag(server_id=server.id, tag=f"t-{server.name}"))
        return [server.id for server in servers]


async def test_status_in_sql_is_the_status_the_view_derives(engines: Engines, setup):
    user = f"u-{uuid.uuid4().hex[:8]}"
    flavor = int(setup["flavor"])
    combos = itertools.product(
        [*STATUS, "WEIRD"],
        [base.OP_REBOOT, base.OP_MODIFY, "OP_INSTANCE_STARTUP"],
        [base.QUEUED, base.RUNNING, base.SUCCESS],
        [False, True],
    )
    rows = [
        dict(name=f"s{n}", operstate=o, job_opcode=op, job_status=js, deleted=d)
        for n, (o, op, js, d) in enumerate(combos)
    ]
    await _rows(engines, user, flavor, rows)
    compute = engines.compute
    everything = await compute.listing(user, ServerQuery(include_deleted=True))
    assert len(everything) == len(rows)
    statuses = {view.status for view in everything}
    assert statuses == {"BUILD", "ACTIVE", "STOPPED", "REBOOT", "ERROR", "DELETED", "RESIZE",
                        "UNKNOWN"}  # fmt: skip
    for status in statuses:
        query = ServerQuery(status=status, include_deleted=True)
        found = {v.server.id for v in await compute.listing(user, query)}
        assert found == {v.server.id for v in everything if v.status == status}, status


async def test_a_page_costs_the_same_statements_for_few_and_many(engines: Engines, setup):
    user = f"u-{uuid.uuid4().hex[:8]}"
    flavor = int(setup["flavor"])
    compute = engines.compute
    few_rows = [dict(name=f"few-{n}", operstate="STARTED") for n in range(2)]
    await _rows(engines, user, flavor, few_rows)
    queries = [
        ServerQuery(limit=1000),
        ServerQuery(name="^few", status="ACTIVE", ip="10\\.", sort=(("display_name", "desc"),)),
        ServerQuery(sort=(("launched_at", "asc"), ("created_at", "desc")), limit=1000),
    ]
    few = [(await statements(engines, lambda q=q: compute.listing(user, q)))[0] for q in queries]
    many_rows = [dict(name=f"many-{n}", operstate="STARTED") for n in range(60)]
    ids = await _rows(engines, user, flavor, many_rows)
    many = [(await statements(engines, lambda q=q: compute.listing(user, q)))[0] for q in queries]
    # A page: the servers, their metadata, tags, ports, addresses, volumes... one each.
    assert few == many and max(many) <= 8, (few, many)
    cost, listed = await statements(engines, lambda: compute.listing(user, queries[0]))
    assert len(listed) == 62 and all(v.metadata == {"role": v.server.name} for v in listed)
    assert all(v.tags == [f"t-{v.server.name}"] for v in listed)
    # A marker costs one statement more, whatever the page.
    marked = ServerQuery(sort=(("display_name", "asc"),), after=ids[10], limit=5)
    with_marker, page = await statements(engines, lambda: compute.listing(user, marked))
    assert with_marker == cost + 1 and len(page) == 5


async def test_nova_filters_sorts_and_pages(client: httpx.AsyncClient, engines: Engines, setup):
    _, alice = setup["people"]["alice"]
    _, bob = setup["people"]["bob"]
    await _public(engines)
    made = {}
    for name in ("web-1", "web-2", "db-1"):
        body = {"server": {"name": name, "imageRef": setup["image"], "flavorRef": setup["flavor"]}}
        reply = await client.post(f"{COMPUTE}/servers", json=body, headers=alice)
        made[name] = reply.json()["server"]["id"]
    for server_id in made.values():
        await wait(client, alice, server_id, "ACTIVE")
    stop = {"os-stop": None}
    await client.post(f"{COMPUTE}/servers/{made['db-1']}/action", json=stop, headers=alice)
    await wait(client, alice, made["db-1"], "STOPPED")

    async def names(path: str = COMPUTE, auth: dict = alice, **params) -> list[str]:
        reply = await client.get(f"{path}/servers/detail", params=params, headers=auth)
        assert reply.status_code == 200, reply.text
        return [s["name"] for s in reply.json()["servers"]]

    assert await names(name="^web") == ["web-1", "web-2"]
    assert await names(name="1$") == ["web-1", "db-1"]
    assert await names(status="STOPPED") == ["db-1"]  # Synnefo's name
    assert await names(NOVA, status="SHUTOFF") == ["db-1"]  # Nova's
    assert await names(NOVA, status="active") == ["web-1", "web-2"]
    assert await names(image=setup["image"]) == ["web-1", "web-2", "db-1"]
    assert await names(image=str(uuid.uuid4())) == []
    assert await names(flavor=setup["flavor"]) == ["web-1", "web-2", "db-1"]
    assert await names(flavor=f"http://x/flavors/{setup['flavor']}") == ["web-1", "web-2", "db-1"]
    assert await names(flavor="no-such-flavor") == []  # Nova: an unknown flavor, no match
    assert await names(sort_key="display_name", sort_dir="asc") == ["db-1", "web-1", "web-2"]
    assert await names(sort_key="display_name") == ["web-2", "web-1", "db-1"]  # Nova: desc
    assert await names(auth=bob, name="web") == []  # filters never widen what one sees

    # Pages: limit, marker, and Nova's next link while a page is full.
    first = await client.get(f"{COMPUTE}/servers", params={"limit": "2"}, headers=alice)
    assert [s["name"] for s in first.json()["servers"]] == ["web-1", "web-2"]
    (link,) = first.json()["servers_links"]
    assert link["rel"] == "next" and f"marker={made['web-2']}" in link["href"]
    rest = await client.get(link["href"], headers=alice)
    assert [s["name"] for s in rest.json()["servers"]] == ["db-1"]
    assert "servers_links" not in rest.json()
    assert await names(marker=made["web-1"], sort_key="display_name", sort_dir="asc") == ["web-2"]
    for bad in (
        {"marker": "999999"},  # no such server
        {"marker": "nope"},
        {"limit": "-1"},
        {"limit": "x"},
        {"sort_key": "password"},
        {"sort_key": "display_name", "sort_dir": "up"},
        {"status": "SLEEPING"},
        {"name": "("},
        {"ip": "[1"},
        {"changes-since": "yesterday"},
    ):
        reply = await client.get(f"{COMPUTE}/servers", params=bad, headers=alice)
        assert reply.status_code == 400 and "badRequest" in reply.json(), (bad, reply.text)
    # Another's server is no marker (as good as none: its existence is not told).
    other = await client.get(f"{COMPUTE}/servers", params={"marker": made["web-1"]}, headers=bob)
    assert other.status_code == 400

    # The page size comes from settings: at most [limits] server_list_max (4 here).
    for n in range(2):
        body = {"server": {"name": f"extra-{n}", "imageRef": setup["image"],
                           "flavorRef": setup["flavor"]}}  # fmt: skip
        await client.post(f"{COMPUTE}/servers", json=body, headers=alice)
    capped = await client.get(f"{COMPUTE}/servers", params={"limit": "1000"}, headers=alice)
    assert len(capped.json()["servers"]) == 4 and "servers_links" in capped.json()
    unasked = (await client.get(f"{COMPUTE}/servers", headers=alice)).json()
    assert len(unasked["servers"]) == 4
    following = await client.get(unasked["servers_links"][0]["href"], headers=alice)
    assert [s["name"] for s in following.json()["servers"]] == ["extra-1"]


async def test_ip_filters_match_fixed_addresses_from_the_start(
    client: httpx.AsyncClient, engines: Engines, setup
):
    _, alice = setup["people"]["alice"]
    _, bob = setup["people"]["bob"]
    await _public(engines)
    ids = []
    body = {"server": {"name": "vm", "imageRef": setup["image"], "flavorRef": setup["flavor"]}}
    for _ in range(2):
        reply = await client.post(f"{COMPUTE}/servers", json=body, headers=alice)
        ids.append(reply.json()["server"]["id"])
    shown = (await client.get(f"{COMPUTE}/servers/{ids[0]}", headers=alice)).json()["server"]
    (v4,) = [a["addr"] for a in shown["addresses"]["public"] if a["version"] == 4]
    (v6,) = [a["addr"] for a in shown["addresses"]["public"] if a["version"] == 6]

    async def listed(auth: dict = alice, **params: str) -> list[str]:
        reply = await client.get(f"{COMPUTE}/servers", params=params, headers=auth)
        assert reply.status_code == 200, reply.text
        return [s["id"] for s in reply.json()["servers"]]

    assert await listed(ip=v4.replace(".", "\\.")) == [ids[0]]
    assert await listed(ip="192\\.0\\.2\\.") == ids[:2]
    assert await listed(ip="0\\.2") == []  # from the start, as Nova's re.match
    assert await listed(ip6=v6) == [ids[0]]
    assert await listed(ip6="2001:db8:") == ids[:2]
    assert await listed(ip=v6) == []  # ip is IPv4's, ip6 IPv6's
    assert await listed(bob, ip=v4.replace(".", "\\.")) == []


async def test_with_count_counts_every_page_the_filters_select(
    client: httpx.AsyncClient, engines: Engines, setup
):
    """``with_count=true`` adds how many servers the filters select over all pages (pages
    are 4 here): a client showing a number needs no page of servers; without it the
    body is Nova's."""
    _, alice = setup["people"]["alice"]
    _, bob = setup["people"]["bob"]
    user = setup["people"]["alice"][0]
    flavor = int(setup["flavor"])
    rows = [dict(name=f"up-{n}", operstate="STARTED") for n in range(6)]
    rows += [dict(name=f"down-{n}", operstate="STOPPED") for n in range(3)]
    rows += [dict(name="gone", operstate="STARTED", deleted=True)]
    await _rows(engines, user, flavor, rows)

    async def listed(auth: dict = alice, **params) -> dict:
        reply = await client.get(f"{NOVA}/servers", params=params, headers=auth)
        assert reply.status_code == 200, reply.text
        return reply.json()

    assert listed_count(await listed(with_count="true", limit=0)) == (0, 9)
    assert listed_count(await listed(with_count="true", limit=0, status="ACTIVE")) == (0, 6)
    assert listed_count(await listed(with_count="True", status="SHUTOFF")) == (3, 3)
    assert listed_count(await listed(with_count="true", name="^up-[01]$")) == (2, 2)
    assert listed_count(await listed(with_count="true")) == (4, 9)  # one page, all counted
    assert "count" not in await listed()
    assert "count" not in await listed(with_count="false")
    assert listed_count(await listed(bob, with_count="true")) == (0, 0)  # not bob's
    bad = await client.get(f"{NOVA}/servers", params={"with_count": "yes"}, headers=alice)
    assert bad.status_code == 400 and "with_count" in bad.json()["badRequest"]["message"]


def listed_count(body: dict) -> tuple[int, int]:
    return len(body["servers"]), body["count"]
