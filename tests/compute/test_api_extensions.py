"""Synnefo's extensions to the servers API: tags, reassign between projects (quota moves
with the server), servers shared to a project, flavor access per project, and what a
create hands the build (password, keys, personality, user data) through the vmapi."""

from __future__ import annotations

import base64
import datetime as dt
import uuid
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import select

from nefos.compute.vmapi import digest
from nefos.compute.vmapi_models import BuildSecret
from nefos.quotas.project_rules import Actor
from nefos.quotas.service import project_holder, user_holder
from nefos.server.engines import Engines
from tests.compute.conftest import COMPUTE, wait

RESOURCES = ("cyclades.vm", "cyclades.total_cpu", "cyclades.cpu", "cyclades.total_ram")


async def holdings(engines: Engines, user: str, project: str) -> dict[str, int]:
    found = {}
    for h in await engines.quotas.holdings([user_holder(user)]):
        if h.source == project_holder(project) and h.resource in RESOURCES:
            assert h.usage_min == h.usage_max, h  # nothing left pending
            found[h.resource] = h.usage_max
    return found


async def new_project(engines: Engines, owner: str, vms: int) -> str:
    actor = Actor(uuid.UUID(owner), False)
    capacity = {"project_capacity": vms * 4, "member_capacity": vms}
    resources = {
        "cyclades.vm": capacity,
        "cyclades.total_cpu": {"project_capacity": 64, "member_capacity": 16},
        "cyclades.cpu": {"project_capacity": 64, "member_capacity": 16},
        "cyclades.total_ram": {"project_capacity": 64 << 30, "member_capacity": 16 << 30},
        "cyclades.ram": {"project_capacity": 64 << 30, "member_capacity": 16 << 30},
        "cyclades.disk": {"project_capacity": 1 << 40, "member_capacity": 1 << 40},
    }
    end = dt.datetime.now(dt.UTC) + dt.timedelta(days=30)
    project_id, app_id = await engines.projects.submit(
        actor, {"name": f"p-{uuid.uuid4().hex[:8]}", "end_date": end, "resources": resources}
    )
    await engines.projects.application_action(None, project_id, "approve", app_id)
    return str(project_id)


async def create(client: httpx.AsyncClient, auth: dict, setup: dict, **extra: Any) -> str:
    body = {"server": {"name": "vm", "imageRef": setup["image"], "flavorRef": setup["flavor"]}}
    body["server"].update(extra)
    reply = await client.post(f"{COMPUTE}/servers", json=body, headers=auth)
    assert reply.status_code == 202, reply.text
    return reply.json()["server"]["id"]


async def test_tags(client: httpx.AsyncClient, setup):
    _, alice = setup["people"]["alice"]
    _, bob = setup["people"]["bob"]
    server_id = await create(client, alice, setup, tags=["web"])
    url = f"{COMPUTE}/servers/{server_id}/tags"
    assert (await client.get(url, headers=alice)).json() == {"tags": ["web"]}
    added = await client.put(f"{url}/db", headers=alice)
    assert added.status_code == 201 and added.headers["Location"].endswith("/tags/db")
    assert (await client.put(f"{url}/db", headers=alice)).status_code == 204  # already there
    assert (await client.get(f"{url}/db", headers=alice)).status_code == 204
    assert (await client.get(f"{url}/nope", headers=alice)).status_code == 404
    shown = (await client.get(f"{COMPUTE}/servers/{server_id}", headers=alice)).json()["server"]
    assert shown["tags"] == ["db", "web"]
    replaced = await client.put(url, json={"tags": ["a", "b", "a"]}, headers=alice)
    assert replaced.json() == {"tags": ["a", "b"]}
    for bad in ({"tags": ["x/y"]}, {"tags": ["," * 3]}, {"tags": ["t" * 61]}, {"tag": []}):
        reply = await client.put(url, json=bad, headers=alice)
        assert reply.status_code == 400 and "badRequest" in reply.json(), bad
    too_many = await client.put(url, json={"tags": [f"t{i}" for i in range(51)]}, headers=alice)
    assert too_many.status_code == 400
    assert (await client.get(url, headers=alice)).json() == {"tags": ["a", "b"]}  # untouched
    assert (await client.get(url, headers=bob)).status_code == 404
    assert (await client.put(f"{url}/mine", headers=bob)).status_code == 404
    assert (await client.delete(f"{url}/a", headers=alice)).status_code == 204
    assert (await client.delete(f"{url}/a", headers=alice)).status_code == 404
    assert (await client.delete(url, headers=alice)).status_code == 204
    assert (await client.get(url, headers=alice)).json() == {"tags": []}


async def test_reassign_moves_the_quota_and_sharing_shows_it_to_members(
    client: httpx.AsyncClient, engines: Engines, setup
):
    alice_id, alice = setup["people"]["alice"]
    bob_id, bob = setup["people"]["bob"]
    project = await new_project(engines, alice_id, vms=2)
    for member in (alice_id, bob_id):  # an owner is a member only once enrolled
        await engines.projects.enroll(None, project, member)
    server_id = await create(client, alice, setup)
    await wait(client, alice, server_id, "ACTIVE")
    before = await holdings(engines, alice_id, alice_id)
    assert before["cyclades.vm"] == 1 and before["cyclades.cpu"] == 1

    action = f"{COMPUTE}/servers/{server_id}/action"
    moved = await client.post(action, json={"reassign": {"project": project}}, headers=alice)
    assert moved.status_code == 202, moved.text
    assert await holdings(engines, alice_id, alice_id) == dict.fromkeys(before, 0)
    assert await holdings(engines, alice_id, project) == before
    shown = (await client.get(f"{COMPUTE}/servers/{server_id}", headers=alice)).json()["server"]
    assert shown["tenant_id"] == project and shown["shared_to_project"] is False

    # Bob is a member but the server is not shared: he cannot see it.
    assert (await client.get(f"{COMPUTE}/servers/{server_id}", headers=bob)).status_code == 404
    shared = {"reassign": {"project": project, "shared_to_project": True}}
    assert (await client.post(action, json=shared, headers=alice)).status_code == 202
    assert await holdings(engines, alice_id, project) == before  # same project: no move
    seen = await client.get(f"{COMPUTE}/servers/{server_id}", headers=bob)
    assert seen.status_code == 200 and seen.json()["server"]["shared_to_project"] is True
    listed = (await client.get(f"{COMPUTE}/servers", headers=bob)).json()["servers"]
    assert [s["id"] for s in listed] == [server_id]
    # Seeing is not owning: every change stays alice's.
    stop = await client.post(action, json={"os-stop": {}}, headers=bob)
    assert stop.status_code == 404
    assert (await client.delete(f"{COMPUTE}/servers/{server_id}", headers=bob)).status_code == 404
    assert (
        await client.put(f"{COMPUTE}/servers/{server_id}/tags/x", headers=bob)
    ).status_code == 404

    # Bad requests change nothing.
    stranger = await client.post(
        action, json={"reassign": {"project": str(uuid.uuid4())}}, headers=alice
    )
    assert stranger.status_code == 403
    malformed = await client.post(action, json={"reassign": {"project": 7}}, headers=alice)
    assert malformed.status_code == 400
    # Moving back releases the project's quota again.
    back = {"reassign": {"project": alice_id}}
    assert (await client.post(action, json=back, headers=alice)).status_code == 202
    assert await holdings(engines, alice_id, project) == dict.fromkeys(before, 0)
    assert await holdings(engines, alice_id, alice_id) == before


async def test_reassign_beyond_the_projects_quota_is_413(
    client: httpx.AsyncClient, engines: Engines, setup
):
    alice_id, alice = setup["people"]["alice"]
    project = await new_project(engines, alice_id, vms=1)
    await engines.projects.enroll(None, project, alice_id)
    first, second = await create(client, alice, setup), await create(client, alice, setup)
    for server_id in (first, second):
        await wait(client, alice, server_id, "ACTIVE")
    body = {"reassign": {"project": project}}
    ok = await client.post(f"{COMPUTE}/servers/{first}/action", json=body, headers=alice)
    assert ok.status_code == 202
    over = await client.post(f"{COMPUTE}/servers/{second}/action", json=body, headers=alice)
    assert over.status_code == 413 and "overLimit" in over.json()
    shown = (await client.get(f"{COMPUTE}/servers/{second}", headers=alice)).json()["server"]
    assert shown["tenant_id"] == alice_id
    assert (await holdings(engines, alice_id, project))["cyclades.vm"] == 1
    assert (await holdings(engines, alice_id, alice_id))["cyclades.vm"] == 1


async def test_flavor_access_per_project(client: httpx.AsyncClient, engines: Engines, setup):
    alice_id, alice = setup["people"]["alice"]
    _, bob = setup["people"]["bob"]
    project = await new_project(engines, alice_id, vms=1)
    await engines.projects.enroll(None, project, alice_id)
    private = await engines.compute.create_flavor(8, 8192, 20, public=False, projects=[project])
    url = f"{COMPUTE}/flavors/detail"
    mine = {f["id"]: f for f in (await client.get(url, headers=alice)).json()["flavors"]}
    assert mine[str(private.id)]["SNF:flavor-access"] == [project]
    assert mine[str(private.id)]["os-flavor-access:is_public"] is False
    theirs = [f["id"] for f in (await client.get(url, headers=bob)).json()["flavors"]]
    assert str(private.id) not in theirs and theirs
    assert (await client.get(f"{COMPUTE}/flavors/{private.id}", headers=bob)).status_code == 404
    only = await client.get(url, params={"SNF:flavor-access": project}, headers=alice)
    assert [f["id"] for f in only.json()["flavors"]] == [str(private.id)]


async def test_create_hands_the_build_its_customization(
    client: httpx.AsyncClient, engines: Engines, setup
):
    """What the guest must get travels sealed through the vmapi, once, never the job."""
    _, alice = setup["people"]["alice"]
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDmlTHBIIkCNO3EWbwB1Y6UZ9B1VQ+c2pI3mnHhb9FGD x@y"
    imported = await client.post(
        f"{COMPUTE}/os-keypairs", json={"keypair": {"name": "k", "public_key": key}}, headers=alice
    )
    assert imported.status_code == 200, imported.text
    cluster = engines.compute.cluster(await engines.compute.backend("embedded"))
    cluster.delay = 5.0  # keep the build (and its secret) open while the test reads it
    motd = base64.b64encode(b"hello\n").decode()
    server_id = await create(
        client,
        alice,
        setup,
        adminPass="Sup3r-secret-pass",
        key_name="k",
        personality=[{"path": "/etc/motd", "contents": motd, "mode": 0o644, "owner": "root"}],
        user_data=base64.b64encode(b"#cloud-config\n").decode(),
    )
    config = await _build_config(engines, int(server_id))
    assert config["password"] == "Sup3r-secret-pass"
    assert config["public_keys"] == [key]
    assert config["personality"] == [
        {"path": "/etc/motd", "contents": motd, "mode": 0o644, "owner": "root"}
    ]
    assert base64.b64decode(config["user_data"]) == b"#cloud-config\n"


async def _build_config(engines: Engines, server_id: int) -> dict:
    """Open the server's sealed build configuration the way the vmapi does, without the
    URL secret (the test has no cluster to read it from): the row holds only its hash."""

    async with engines.db.session() as s:
        row = await s.scalar(select(BuildSecret).where(BuildSecret.server_id == server_id))
    assert row is not None and row.sealed and row.digest != digest("")
    return orjson.loads(engines.compute.vmapi._sealer.decrypt(row.sealed.encode()))


@pytest.mark.parametrize(
    ("extra", "status"),
    [
        ({"personality": [{"path": f"/f{i}", "contents": ""} for i in range(6)]}, 413),
        (
            {"personality": [{"path": "/f", "contents": base64.b64encode(b"x" * 10241).decode()}]},
            413,
        ),
        ({"personality": [{"path": "/f", "contents": "not base64!"}]}, 400),
        ({"personality": [{"path": "relative", "contents": ""}]}, 400),
        ({"personality": [{"path": "/a/../etc/shadow", "contents": ""}]}, 400),
        ({"personality": [{"path": "/f", "contents": "", "mode": "0644"}]}, 400),
        ({"personality": {"path": "/f"}}, 400),
        ({"user_data": "%%%"}, 400),
        ({"adminPass": 12345}, 400),
        ({"adminPass": ""}, 400),
        ({"adminPass": "two\nlines-Pass1"}, 400),
        ({"key_name": "missing"}, 400),
    ],
)
async def test_bad_customization_is_refused_before_anything_is_made(
    client: httpx.AsyncClient, engines: Engines, setup, extra: dict, status: int
):
    alice_id, alice = setup["people"]["alice"]
    body = {"server": {"name": "vm", "imageRef": setup["image"], "flavorRef": setup["flavor"]}}
    body["server"].update(extra)
    reply = await client.post(f"{COMPUTE}/servers", json=body, headers=alice)
    assert reply.status_code == status, reply.text
    assert (await client.get(f"{COMPUTE}/servers", headers=alice)).json() == {"servers": []}
    assert (await holdings(engines, alice_id, alice_id)).get("cyclades.vm", 0) == 0


async def test_a_listing_shows_every_change_since_the_last_one(client: httpx.AsyncClient, setup):
    """Listings reuse what they rendered before (by content): nothing stale may show."""
    _, alice = setup["people"]["alice"]
    server_id = await create(client, alice, setup)
    await wait(client, alice, server_id, "ACTIVE")
    url = f"{COMPUTE}/servers/detail"

    async def listed() -> dict:
        (server,) = (await client.get(url, headers=alice)).json()["servers"]
        return server

    before = await listed()
    assert before == await listed()
    base = f"{COMPUTE}/servers/{server_id}"
    await client.put(base, json={"server": {"name": "renamed"}}, headers=alice)
    await client.put(f"{base}/metadata/role", json={"meta": {"role": "db"}}, headers=alice)
    await client.put(f"{base}/tags/blue", headers=alice)
    after = await listed()
    assert after["name"] == "renamed" and after["metadata"] == {"role": "db"}
    assert after["tags"] == ["blue"]
    await client.delete(f"{base}/metadata/role", headers=alice)
    assert (await listed())["metadata"] == {}
    await client.post(f"{base}/action", json={"os-stop": {}}, headers=alice)
    await wait(client, alice, server_id, "STOPPED")
    assert (await listed())["status"] == "STOPPED"
    v20 = (await client.get("/compute/v2.0/servers/detail", headers=alice)).json()["servers"]
    assert v20[0]["links"][0]["href"].endswith(f"/compute/v2.0/servers/{server_id}")


async def test_console_answers_in_the_specs_order(client: httpx.AsyncClient, setup):
    """The console itself (ticket, proxy, a real guest) is tested in test_console.py and
    over Ganeti's KVM; here what the API says before any port is opened."""
    _, alice = setup["people"]["alice"]
    _, bob = setup["people"]["bob"]
    server_id = await create(client, alice, setup)
    await wait(client, alice, server_id, "ACTIVE")
    action = f"{COMPUTE}/servers/{server_id}/action"
    cases = [
        ({"console": {"type": "vnc"}}, alice, 409, "conflict"),  # embedded: no guest
        ({"console": {"type": "spice"}}, alice, 400, "badRequest"),
        ({"console": {}}, alice, 400, "badRequest"),
        ({"console": {"type": "vnc-wss"}}, alice, 501, "notImplemented"),
        ({"os-getVNCConsole": {"type": "novnc"}}, alice, 501, "notImplemented"),
        ({"console": {"type": "vnc"}}, bob, 404, "itemNotFound"),
    ]
    for body, auth, status, fault in cases:
        reply = await client.post(action, json=body, headers=auth)
        assert reply.status_code == status and fault in reply.json(), (body, reply.text)
    await client.post(action, json={"os-stop": {}}, headers=alice)
    await wait(client, alice, server_id, "STOPPED")
    stopped = await client.post(action, json={"console": {"type": "vnc"}}, headers=alice)
    assert stopped.status_code == 400 and "ACTIVE" in stopped.json()["badRequest"]["message"]
