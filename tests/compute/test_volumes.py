"""Servers and volumes (issue 22, scope 3 and 5) on the embedded backend: Nova's
``os-volume_attachments``, the volume's states through an attach and a detach (a disk
job the backend completes), both documents showing the attachment, rights, and what a
server's deletion does to its volumes. Nova's endpoint, Cinder's v3."""

from __future__ import annotations

import asyncio

import httpx

from nefos.server.engines import Engines
from tests.compute.conftest import COMPUTE, usage, wait

CINDER = "/volume/v3"
GiB = 1 << 30


async def _server(client: httpx.AsyncClient, setup: dict, auth: dict) -> dict:
    body = {"name": "vm", "imageRef": setup["image"], "flavorRef": setup["flavor"]}
    created = await client.post(f"{COMPUTE}/servers", json={"server": body}, headers=auth)
    assert created.status_code == 202, created.text
    return await wait(client, auth, created.json()["server"]["id"], "ACTIVE")


async def _volume(client: httpx.AsyncClient, auth: dict, size: int = 1) -> dict:
    made = await client.post(f"{CINDER}/volumes", json={"volume": {"size": size}}, headers=auth)
    assert made.status_code == 202, made.text
    return made.json()["volume"]


async def _volume_in(client: httpx.AsyncClient, auth: dict, volume_id: str, status: str) -> dict:
    for _ in range(500):
        found = (await client.get(f"{CINDER}/volumes/{volume_id}", headers=auth)).json()["volume"]
        if found["status"] == status:
            return found
        await asyncio.sleep(0.01)
    raise AssertionError(found)


def _attachments(server_id: object) -> str:
    return f"{COMPUTE}/servers/{server_id}/os-volume_attachments"


async def _disks(engines: Engines, server_id: object) -> list[dict]:
    cluster = engines.compute.cluster(await engines.compute.backend("embedded"))
    await cluster.idle()
    cluster.state.read()
    return cluster.state.instances[f"snf-{server_id}"].get("volumes", [])


async def test_attach_and_detach_move_the_volume_and_show_in_both_documents(client, engines, setup):
    _, alice = setup["people"]["alice"]
    server = await _server(client, setup, alice)
    volume = await _volume(client, alice)
    sid, vid = server["id"], volume["id"]
    assert server["os-extended-volumes:volumes_attached"] == []

    attached = await client.post(
        _attachments(sid), json={"volumeAttachment": {"volumeId": vid}}, headers=alice
    )
    assert attached.status_code == 200, attached.text
    expected = {"id": vid, "volumeId": vid, "serverId": sid, "device": "/dev/vdb"}
    assert attached.json() == {"volumeAttachment": expected}
    shown = (await client.get(f"{CINDER}/volumes/{vid}", headers=alice)).json()["volume"]
    assert shown["status"] in ("attaching", "in-use")

    in_use = await _volume_in(client, alice, vid, "in-use")
    (attachment,) = in_use["attachments"]
    assert attachment["server_id"] == sid and attachment["device"] == "/dev/vdb"
    assert attachment["volume_id"] == vid and attachment["attachment_id"]
    (disk,) = await _disks(engines, sid)
    assert disk["name"] == f"nefos-vol-{vid}" and disk["volume"] == vid
    assert disk["provider"] == "nefos" and disk["size"] == 1024

    shown_server = (await client.get(f"{COMPUTE}/servers/{sid}", headers=alice)).json()["server"]
    assert shown_server["os-extended-volumes:volumes_attached"] == [
        {"id": vid, "delete_on_termination": False}
    ]
    assert shown_server["volumes"] == [vid]
    listed = (await client.get(f"{COMPUTE}/servers/detail", headers=alice)).json()["servers"]
    assert listed[0]["os-extended-volumes:volumes_attached"][0]["id"] == vid
    listing = (await client.get(_attachments(sid), headers=alice)).json()
    assert listing == {"volumeAttachments": [expected]}
    one = (await client.get(f"{_attachments(sid)}/{vid}", headers=alice)).json()
    assert one == {"volumeAttachment": expected}

    # An attached volume is not deleted, nor attached again (here or elsewhere).
    deleted = await client.delete(f"{CINDER}/volumes/{vid}", headers=alice)
    assert deleted.status_code == 400 and "in-use" in deleted.json()["badRequest"]["message"]
    again = await client.post(
        _attachments(sid), json={"volumeAttachment": {"volumeId": vid}}, headers=alice
    )
    assert again.status_code == 400, again.text
    assert "Invalid volume" in again.json()["badRequest"]["message"]

    # A second volume takes the next device.
    second = await _volume(client, alice)
    next_one = await client.post(
        _attachments(sid), json={"volumeAttachment": {"volumeId": second["id"]}}, headers=alice
    )
    assert next_one.json()["volumeAttachment"]["device"] == "/dev/vdc"
    await _volume_in(client, alice, second["id"], "in-use")

    detached = await client.delete(f"{_attachments(sid)}/{vid}", headers=alice)
    assert detached.status_code == 202, detached.text
    available = await _volume_in(client, alice, vid, "available")
    assert available["attachments"] == []
    assert [d["volume"] for d in await _disks(engines, sid)] == [second["id"]]
    ids = [
        v["id"]
        for v in (await client.get(_attachments(sid), headers=alice)).json()["volumeAttachments"]
    ]
    assert ids == [second["id"]]
    missing = await client.delete(f"{_attachments(sid)}/{vid}", headers=alice)
    assert missing.status_code == 404 and "itemNotFound" in missing.json()
    assert (await client.get(f"{_attachments(sid)}/{vid}", headers=alice)).status_code == 404
    assert (await client.delete(f"{CINDER}/volumes/{vid}", headers=alice)).status_code == 202


async def test_rights_another_users_volume_or_server_is_not_found(client, engines, setup):
    _, alice = setup["people"]["alice"]
    _, bob = setup["people"]["bob"]
    alices_server = await _server(client, setup, alice)
    alices_volume = await _volume(client, alice)
    bobs_volume = await _volume(client, bob)
    body = {"volumeAttachment": {"volumeId": alices_volume["id"]}}
    # bob's volume to alice's server, as bob: the server is not his
    bobs_body = {"volumeAttachment": {"volumeId": bobs_volume["id"]}}
    refused = await client.post(_attachments(alices_server["id"]), json=bobs_body, headers=bob)
    assert refused.status_code == 404 and "itemNotFound" in refused.json()
    # alice's volume to alice's server, as bob: neither is his
    assert (
        await client.post(_attachments(alices_server["id"]), json=body, headers=bob)
    ).status_code == 404
    # bob's volume to alice's server, as alice: the volume is not hers
    refused = await client.post(_attachments(alices_server["id"]), json=bobs_body, headers=alice)
    assert refused.status_code == 404, refused.text
    assert "could not be found" in refused.json()["itemNotFound"]["message"]
    assert (await client.get(_attachments(alices_server["id"]), headers=bob)).status_code == 404
    # nothing moved
    for auth, volume in ((alice, alices_volume), (bob, bobs_volume)):
        shown = (await client.get(f"{CINDER}/volumes/{volume['id']}", headers=auth)).json()
        assert shown["volume"]["status"] == "available"
    # bad bodies
    for bad in ({}, {"volumeAttachment": {}}, {"volumeAttachment": {"volumeId": 7}}):
        answer = await client.post(_attachments(alices_server["id"]), json=bad, headers=alice)
        assert answer.status_code == 400, bad
    nonsense = {"volumeAttachment": {"volumeId": "not-a-uuid"}}
    answer = await client.post(_attachments(alices_server["id"]), json=nonsense, headers=alice)
    assert answer.status_code == 404


async def test_a_failed_attach_leaves_the_volume_available(client, engines, setup):
    _, alice = setup["people"]["alice"]
    server = await _server(client, setup, alice)
    volume = await _volume(client, alice)
    cluster = engines.compute.cluster(await engines.compute.backend("embedded"))
    cluster.fail_next("OP_INSTANCE_SET_PARAMS", "Hotplug failed")
    answer = await client.post(
        _attachments(server["id"]),
        json={"volumeAttachment": {"volumeId": volume["id"]}},
        headers=alice,
    )
    assert answer.status_code == 200
    await cluster.idle()
    shown = await _volume_in(client, alice, volume["id"], "available")
    assert shown["attachments"] == []
    await asyncio.sleep(0.05)
    found = (await client.get(f"{COMPUTE}/servers/{server['id']}", headers=alice)).json()["server"]
    assert found["os-extended-volumes:volumes_attached"] == []
    assert any(
        volume["id"] in d["details"] or volume["id"] in d.get("message", "")
        for d in found["diagnostics"]
    ), found["diagnostics"]
    assert await _disks(engines, server["id"]) == []


async def test_deleting_the_server_detaches_or_deletes_its_volumes(client, engines, setup):
    user, alice = setup["people"]["alice"]
    server = await _server(client, setup, alice)
    kept, doomed = await _volume(client, alice), await _volume(client, alice, size=2)
    update = {"volume": {"delete_on_termination": True}}
    assert (
        await client.put(f"{CINDER}/volumes/{doomed['id']}", json=update, headers=alice)
    ).status_code == 200
    for volume in (kept, doomed):
        body = {"volumeAttachment": {"volumeId": volume["id"]}}
        assert (
            await client.post(_attachments(server["id"]), json=body, headers=alice)
        ).status_code == 200
        await _volume_in(client, alice, volume["id"], "in-use")
    shown = (await client.get(f"{COMPUTE}/servers/{server['id']}", headers=alice)).json()
    assert {
        v["id"]: v["delete_on_termination"]
        for v in shown["server"]["os-extended-volumes:volumes_attached"]
    } == {kept["id"]: False, doomed["id"]: True}
    disk_before = (await usage(engines, user, "cyclades.disk"))[0]

    assert (
        await client.delete(f"{COMPUTE}/servers/{server['id']}", headers=alice)
    ).status_code == 204
    left = await _volume_in(client, alice, kept["id"], "available")
    assert left["attachments"] == []
    for _ in range(500):
        gone = await client.get(f"{CINDER}/volumes/{doomed['id']}", headers=alice)
        if gone.status_code == 404:
            break
        await asyncio.sleep(0.01)
    assert gone.status_code == 404
    # the server's own disk and the doomed volume's 2 GiB are released
    disk_after = (await usage(engines, user, "cyclades.disk"))[0]
    assert disk_before - disk_after >= 2 * GiB
