"""The Compute API in process: Nova's shapes and faults, in the order spec §2.4 gives."""

from __future__ import annotations

import uuid

import httpx

from tests.compute.conftest import V21, wait


async def test_server_shapes_actions_and_faults(client: httpx.AsyncClient, engines, setup):
    alice_id, alice = setup["people"]["alice"]
    _, bob = setup["people"]["bob"]
    cluster = engines.compute.cluster(await engines.compute.backend("embedded"))
    cluster.delay = 1.0  # the build is still running when the stop comes
    body = {"server": {"name": "vm", "imageRef": setup["image"], "flavorRef": setup["flavor"]}}
    created = await client.post(f"{V21}/servers", json=body, headers=alice)
    assert created.status_code == 202
    server = created.json()["server"]
    assert server["status"] == "BUILD" and server["SNF:task_state"] == "BUILDING"
    assert len(server["adminPass"]) >= 10
    assert created.headers["X-OpenStack-Nova-API-Version"] == "2.1"
    server_id = server["id"]
    busy = await client.post(
        f"{V21}/servers/{server_id}/action", json={"os-stop": None}, headers=alice
    )
    assert busy.status_code == 409 and "conflict" in busy.json()
    cluster.delay = 0.02
    active = await wait(client, alice, server_id, "ACTIVE")
    assert active["user_id"] == alice_id and active["flavor"]["id"] == setup["flavor"]
    assert (await client.get(f"{V21}/servers/{server_id}", headers=bob)).status_code == 404
    listed = (await client.get(f"{V21}/servers", headers=alice)).json()["servers"]
    assert [s["id"] for s in listed] == [server_id] and set(listed[0]) == {"id", "name", "links"}
    again = await client.post(
        f"{V21}/servers/{server_id}/action", json={"os-start": None}, headers=alice
    )
    assert again.status_code == 409  # already running
    await client.post(f"{V21}/servers/{server_id}/action", json={"os-stop": None}, headers=alice)
    await wait(client, alice, server_id, "STOPPED")
    unknown = await client.post(
        f"{V21}/servers/{server_id}/action", json={"levitate": {}}, headers=alice
    )
    assert unknown.status_code == 400 and "badRequest" in unknown.json()
    rebuild = await client.post(
        f"{V21}/servers/{server_id}/action", json={"rebuild": {}}, headers=alice
    )
    assert rebuild.status_code == 501
    meta = await client.post(
        f"{V21}/servers/{server_id}/metadata", json={"metadata": {"a": "1"}}, headers=alice
    )
    assert meta.json() == {"metadata": {"a": "1"}}
    item = await client.get(f"{V21}/servers/{server_id}/metadata/a", headers=alice)
    assert item.json() == {"meta": {"a": "1"}}
    renamed = await client.put(
        f"{V21}/servers/{server_id}", json={"server": {"name": "db"}}, headers=alice
    )
    assert renamed.json()["server"]["name"] == "db"
    assert (await client.delete(f"{V21}/servers/{server_id}", headers=alice)).status_code == 204
    await wait(client, alice, server_id, "DELETED")
    assert (await client.get(f"{V21}/servers", headers=alice)).json() == {"servers": []}


async def test_bad_input(client: httpx.AsyncClient, setup):
    _, alice = setup["people"]["alice"]
    _, bob = setup["people"]["bob"]
    good = {"name": "vm", "imageRef": setup["image"], "flavorRef": setup["flavor"]}
    cases = [
        ({"server": {**good, "flavorRef": "999"}}, alice, 404),
        ({"server": {**good, "imageRef": str(uuid.uuid4())}}, alice, 400),
        ({"server": good}, bob, 400),  # alice's private image
        ({"server": {**good, "name": ""}}, alice, 400),
        ({"server": {"name": "vm"}}, alice, 400),
        ({"server": {**good, "metadata": {str(i): "v" for i in range(11)}}}, alice, 413),
        ({"servers": good}, alice, 400),
    ]
    for body, auth, status in cases:
        reply = await client.post(f"{V21}/servers", json=body, headers=auth)
        assert reply.status_code == status, (body, reply.text)
    garbage = await client.post(f"{V21}/servers", content=b"{nope", headers=alice)
    assert garbage.status_code == 400
    newer = await client.get(
        f"{V21}/servers", headers={**alice, "X-OpenStack-Nova-API-Version": "2.90"}
    )
    assert newer.status_code == 406
    assert (await client.get(f"{V21}/servers")).status_code == 401


async def test_flavors_images_and_changes_since(client: httpx.AsyncClient, setup):
    _, alice = setup["people"]["alice"]
    flavors = (await client.get(f"{V21}/flavors/detail", headers=alice)).json()["flavors"]
    assert flavors[0]["SNF:disk_template"] == "file" and flavors[0]["vcpus"] == 1
    images = (await client.get(f"{V21}/images/detail", headers=alice)).json()["images"]
    assert [(i["id"], i["status"]) for i in images] == [(setup["image"], "ACTIVE")]
    since = await client.get(
        f"{V21}/servers/detail", params={"changes-since": "2100-01-01T00:00:00Z"}, headers=alice
    )
    assert since.status_code == 304
    limits = (await client.get(f"{V21}/limits", headers=alice)).json()["limits"]["absolute"]
    assert limits["maxTotalInstances"] > 0 and limits["totalInstancesUsed"] == 0
