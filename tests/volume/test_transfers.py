"""Volume transfers (Cinder's os-volume-transfer): alice offers a volume, bob takes it
with the id and the key; its bytes and its cyclades.disk go with it. A wrong key, over
quota, a stranger's look, a withdrawn offer and bad input change nothing."""

from __future__ import annotations

import uuid

import httpx

from nefos.quotas.service import project_holder, user_holder
from nefos.server.engines import Engines
from tests.volume.conftest import V2, V3, GiB
from tests.volume.test_api import create, fault

TRANSFERS = f"{V3}/os-volume-transfer"


async def disk_used(engines: Engines, user: str) -> int:
    holdings = await engines.quotas.holdings([user_holder(user)])
    return next(
        h.usage_max
        for h in holdings
        if h.resource == "cyclades.disk" and h.source == project_holder(user)
    )


async def offer(client: httpx.AsyncClient, auth: dict, volume_id: str, name: str = "") -> dict:
    body = {"transfer": {"volume_id": volume_id, "name": name}}
    made = await client.post(TRANSFERS, json=body, headers=auth)
    assert made.status_code == 202, made.text
    return made.json()["transfer"]


async def test_a_volume_changes_hands(client: httpx.AsyncClient, engines: Engines, people):
    alice_id, alice = people["alice"]
    bob_id, bob = people["bob"]
    volume = await create(client, alice, size=2, name="dataset")
    await engines.volumes.write(alice_id, volume["id"], 5, b"results")
    entries = await engines.volumes.entries(alice_id, volume["id"])
    made = await offer(client, alice, volume["id"], "for bob")
    assert made["volume_id"] == volume["id"] and made["name"] == "for bob"
    key = made["auth_key"]
    assert len(key) == 16 and made["created_at"] and made["links"]
    url = f"{TRANSFERS}/{made['id']}"
    vurl = f"{V3}/volumes/{volume['id']}"
    shown = (await client.get(vurl, headers=alice)).json()["volume"]
    assert shown["status"] == "awaiting-transfer"
    # the giver sees the offer, never its key again; nothing else happens to the volume
    assert "auth_key" not in (await client.get(url, headers=alice)).json()["transfer"]
    listed = (await client.get(TRANSFERS, headers=alice)).json()["transfers"]
    assert [t["id"] for t in listed] == [made["id"]] and set(listed[0]) == {
        "id",
        "name",
        "volume_id",
        "links",
    }
    detail = (await client.get(f"{V2}/os-volume-transfer/detail", headers=alice)).json()
    assert detail["transfers"][0]["created_at"] == made["created_at"]
    fault(await client.delete(vurl, headers=alice), 400, "badRequest")
    snapshot = {"snapshot": {"volume_id": volume["id"], "force": True}}
    fault(await client.post(f"{V3}/snapshots", json=snapshot, headers=alice), 400, "badRequest")
    fault(await offer_again(client, alice, volume["id"]), 400, "badRequest")
    # a stranger sees no offer; a wrong key moves nothing
    fault(await client.get(url, headers=bob), 404, "itemNotFound")
    assert (await client.get(TRANSFERS, headers=bob)).json() == {"transfers": []}
    fault(await client.delete(url, headers=bob), 404, "itemNotFound")
    for wrong in ("0" * 16, key.upper() if key.upper() != key else key + "x", ""):
        answer = await client.post(
            f"{url}/accept", json={"accept": {"auth_key": wrong}}, headers=bob
        )
        fault(answer, 400, "badRequest")
    mine = await client.post(f"{url}/accept", json={"accept": {"auth_key": key}}, headers=alice)
    fault(mine, 400, "badRequest")
    alice_before, bob_before = await disk_used(engines, alice_id), await disk_used(engines, bob_id)

    accepted = await client.post(f"{url}/accept", json={"accept": {"auth_key": key}}, headers=bob)
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["transfer"]["volume_id"] == volume["id"]
    theirs = (await client.get(vurl, headers=bob)).json()["volume"]
    assert theirs["status"] == "available" and theirs["user_id"] == bob_id
    assert theirs["os-vol-tenant-attr:tenant_id"] == bob_id and theirs["name"] == "dataset"
    assert await engines.volumes.entries(bob_id, volume["id"]) == entries
    assert (await engines.volumes.read(bob_id, volume["id"], 5, 7)) == b"results"
    fault(await client.get(vurl, headers=alice), 404, "itemNotFound")
    assert await disk_used(engines, alice_id) == alice_before - 2 * GiB
    assert await disk_used(engines, bob_id) == bob_before + 2 * GiB
    # the offer is gone
    fault(await client.get(url, headers=alice), 404, "itemNotFound")
    again = await client.post(f"{url}/accept", json={"accept": {"auth_key": key}}, headers=bob)
    fault(again, 404, "itemNotFound")


async def offer_again(client: httpx.AsyncClient, auth: dict, volume_id: str) -> httpx.Response:
    return await client.post(TRANSFERS, json={"transfer": {"volume_id": volume_id}}, headers=auth)


async def test_an_offer_taken_back_or_over_quota_moves_nothing(
    client: httpx.AsyncClient, engines: Engines, people
):
    alice_id, alice = people["alice"]
    bob_id, bob = people["bob"]
    volume = await create(client, alice, size=3)
    vurl = f"{V3}/volumes/{volume['id']}"
    withdrawn = await offer(client, alice, volume["id"])
    assert (await client.delete(f"{TRANSFERS}/{withdrawn['id']}", headers=alice)).status_code == 202
    assert (await client.get(vurl, headers=alice)).json()["volume"]["status"] == "available"
    late = {"accept": {"auth_key": withdrawn["auth_key"]}}
    fault(
        await client.post(f"{TRANSFERS}/{withdrawn['id']}/accept", json=late, headers=bob),
        404,
        "itemNotFound",
    )

    await engines.quotas.set_base_quota(uuid.UUID(bob_id), "cyclades.disk", 2 * GiB)
    made = await offer(client, alice, volume["id"])
    body = {"accept": {"auth_key": made["auth_key"]}}
    over = await client.post(f"{TRANSFERS}/{made['id']}/accept", json=body, headers=bob)
    assert "cyclades.disk" in fault(over, 413, "overLimit")["message"]
    shown = (await client.get(vurl, headers=alice)).json()["volume"]
    assert shown["status"] == "awaiting-transfer" and shown["user_id"] == alice_id
    assert await disk_used(engines, bob_id) == 0
    assert (await client.get(f"{TRANSFERS}/{made['id']}", headers=alice)).status_code == 200


async def test_bad_offers(client: httpx.AsyncClient, people):
    _, alice = people["alice"]
    _, bob = people["bob"]
    volume = await create(client, alice)
    bad = [
        {"transfer": {}},
        {"transfer": {"volume_id": volume["id"], "x": 1}},
        {"transfer": {"volume_id": volume["id"], "name": "n" * 256}},
        {"transfer": {"volume_id": volume["id"], "name": 5}},
        {"volume_id": volume["id"]},
    ]
    for body in bad:
        fault(await client.post(TRANSFERS, json=body, headers=alice), 400, "badRequest")
    theirs = {"transfer": {"volume_id": volume["id"]}}
    fault(await client.post(TRANSFERS, json=theirs, headers=bob), 404, "itemNotFound")
    fault(await client.get(f"{TRANSFERS}/not-an-id", headers=alice), 404, "itemNotFound")
    accept = {"accept": {"auth_key": "x"}}
    fault(
        await client.post(f"{TRANSFERS}/{uuid.uuid4()}/accept", json=accept, headers=bob),
        404,
        "itemNotFound",
    )
    assert (await client.get(TRANSFERS, headers=alice)).json() == {"transfers": []}
    shown = (await client.get(f"{V3}/volumes/{volume['id']}", headers=alice)).json()["volume"]
    assert shown["status"] == "available"
