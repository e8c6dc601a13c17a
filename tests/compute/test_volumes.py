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


def _bdm(source: str, uuid: str, **extra) -> list[dict]:
    return [{"uuid": uuid, "boot_index": 0, "source_type": source,
             "destination_type": "volume", **extra}]  # fmt: skip


async def _boot(client: httpx.AsyncClient, setup: dict, auth: dict, bdm: list) -> httpx.Response:
    body = {"name": "bfv", "imageRef": "", "flavorRef": setup["flavor"],
            "block_device_mapping_v2": bdm}  # fmt: skip
    return await client.post(f"{COMPUTE}/servers", json={"server": body}, headers=auth)


async def _volumes(client: httpx.AsyncClient, auth: dict) -> list[dict]:
    return (await client.get(f"{CINDER}/volumes/detail", headers=auth)).json()["volumes"]


async def test_boot_from_a_new_volume_cloned_from_the_image(client, engines, setup):
    user, alice = setup["people"]["alice"]
    disk_before = (await usage(engines, user, "cyclades.disk"))[0]
    made = await _boot(client, setup, alice, _bdm(
        "image", setup["image"], volume_size=1, delete_on_termination=True
    ))  # fmt: skip
    assert made.status_code == 202, made.text
    sid = made.json()["server"]["id"]
    server = await wait(client, alice, sid, "ACTIVE")
    (root,) = server["os-extended-volumes:volumes_attached"]
    assert root["delete_on_termination"] is True
    volume = await _volume_in(client, alice, root["id"], "in-use")
    assert volume["attachments"][0]["device"] == "/dev/vda"
    assert volume["attachments"][0]["server_id"] == sid
    assert volume["bootable"] == "true" and volume["size"] == 1
    assert volume["volume_image_metadata"] == {"image_id": setup["image"]}
    assert server["image"]["id"] == setup["image"]
    # a clone of the image's map: the same blocks, nothing copied
    entries = await engines.volumes.entries(user, root["id"])
    _, record = await engines.images.data(user, setup["image"])
    hashes = await engines.storage.hashmap(record)
    assert {h for h, _ in entries.values()} == set(hashes) and len(entries) == 1
    assert all(not owned for _, owned in entries.values())
    # the volume's GiB counts in cyclades.disk, beside the server's
    disk_after = (await usage(engines, user, "cyclades.disk"))[0]
    assert disk_after - disk_before >= GiB
    (disk,) = await _disks(engines, sid)
    assert disk["volume"] == root["id"]
    # the root volume is not detached
    refused = await client.delete(f"{_attachments(sid)}/{root['id']}", headers=alice)
    assert refused.status_code == 400 and "root" in refused.json()["badRequest"]["message"]
    # it goes with the server
    assert (await client.delete(f"{COMPUTE}/servers/{sid}", headers=alice)).status_code == 204
    for _ in range(500):
        if not await _volumes(client, alice):
            break
        await asyncio.sleep(0.01)
    assert await _volumes(client, alice) == []


async def test_boot_from_a_volume_or_a_snapshot_keeps_the_volume(client, engines, setup):
    _, alice = setup["people"]["alice"]
    body = {"volume": {"size": 1, "imageRef": setup["image"], "name": "system"}}
    system = (await client.post(f"{CINDER}/volumes", json=body, headers=alice)).json()["volume"]
    made = await _boot(client, setup, alice, _bdm("volume", system["id"]))
    assert made.status_code == 202, made.text
    sid = made.json()["server"]["id"]
    await wait(client, alice, sid, "ACTIVE")
    await _volume_in(client, alice, system["id"], "in-use")
    # in use now: another server cannot boot from it
    again = await _boot(client, setup, alice, _bdm("volume", system["id"]))
    assert again.status_code == 400 and "Invalid volume" in again.json()["badRequest"]["message"]
    assert (await client.delete(f"{COMPUTE}/servers/{sid}", headers=alice)).status_code == 204
    await _volume_in(client, alice, system["id"], "available")  # not delete_on_termination

    snap = {"snapshot": {"volume_id": system["id"], "name": "gold"}}
    snapshot = (await client.post(f"{CINDER}/snapshots", json=snap, headers=alice)).json()
    made = await _boot(client, setup, alice, _bdm("snapshot", snapshot["snapshot"]["id"]))
    assert made.status_code == 202, made.text
    sid = made.json()["server"]["id"]
    server = await wait(client, alice, sid, "ACTIVE")
    (root,) = server["os-extended-volumes:volumes_attached"]
    shown = await _volume_in(client, alice, root["id"], "in-use")
    assert shown["snapshot_id"] == snapshot["snapshot"]["id"] and shown["size"] == 1
    assert root["delete_on_termination"] is False
    assert (await client.delete(f"{COMPUTE}/servers/{sid}", headers=alice)).status_code == 204
    await _volume_in(client, alice, root["id"], "available")


async def test_boot_volume_bad_input_and_quota(client, engines, setup):
    _, alice = setup["people"]["alice"]
    _, bob = setup["people"]["bob"]
    over = await _boot(client, setup, alice, _bdm("image", setup["image"], volume_size=1000))
    assert over.status_code == 413, over.text
    assert "cyclades.disk" in over.json()["overLimit"]["message"]
    bobs = await _volume(client, bob)
    cases = [
        (_bdm("volume", bobs["id"]), 404),  # another user's volume
        (_bdm("image", setup["image"]), 400),  # an image into a volume needs a size
        (_bdm("image", setup["image"], volume_size=1, boot_index=1), 400),
        (
            [
                {
                    "source_type": "blank",
                    "destination_type": "volume",
                    "boot_index": 0,
                    "volume_size": 1,
                }
            ],
            400,
        ),
        (_bdm("image", "not-an-image", volume_size=1), 400),
        ("nonsense", 400),
    ]
    for bdm, status in cases:
        answer = await _boot(client, setup, alice, bdm)
        assert answer.status_code == status, (bdm, answer.text)
    # refused after its volume was made (an unknown key): the volume goes again
    body = {"name": "bfv", "flavorRef": setup["flavor"], "key_name": "no-such-key",
            "block_device_mapping_v2": _bdm("image", setup["image"], volume_size=1)}  # fmt: skip
    answer = await client.post(f"{COMPUTE}/servers", json={"server": body}, headers=alice)
    assert answer.status_code == 400 and "key_name" in answer.text
    # nothing was left behind: no volume, no server
    assert await _volumes(client, alice) == []
    servers = (await client.get(f"{COMPUTE}/servers", headers=alice)).json()["servers"]
    assert servers == []
    # the openstack client's plain create names the image twice: still a local disk
    local = [{"uuid": setup["image"], "boot_index": 0, "source_type": "image",
              "destination_type": "local", "delete_on_termination": True}]  # fmt: skip
    answer = await _boot(client, setup, alice, local)
    assert answer.status_code == 202, answer.text
    assert answer.json()["server"]["os-extended-volumes:volumes_attached"] == []


async def test_create_image_snapshots_the_root_volume(client, engines, setup):
    _, alice = setup["people"]["alice"]
    _, bob = setup["people"]["bob"]
    made = await _boot(client, setup, alice, _bdm("image", setup["image"], volume_size=1))
    sid = made.json()["server"]["id"]
    server = await wait(client, alice, sid, "ACTIVE")
    (root,) = server["os-extended-volumes:volumes_attached"]
    await _volume_in(client, alice, root["id"], "in-use")
    action = f"{COMPUTE}/servers/{sid}/action"
    body = {"createImage": {"name": "golden", "metadata": {"tier": "web"}}}
    answer = await client.post(action, json=body, headers=alice)
    assert answer.status_code == 202, answer.text
    assert answer.content == b""
    location = answer.headers["Location"]
    assert "/image/v2/images/" in location
    image_id = location.rsplit("/", 1)[1]
    image = (await client.get(f"/image/v2/images/{image_id}", headers=alice)).json()
    assert image["name"] == "golden" and image["status"] == "active" and image["tier"] == "web"
    snapshots = (await client.get(f"{CINDER}/snapshots/detail", headers=alice)).json()
    (snapshot,) = snapshots["snapshots"]
    assert snapshot["id"] == image_id and snapshot["volume_id"] == root["id"]
    # the image boots a new server
    body = {"name": "copy", "imageRef": image_id, "flavorRef": setup["flavor"]}
    copy = await client.post(f"{COMPUTE}/servers", json={"server": body}, headers=alice)
    assert copy.status_code == 202, copy.text
    await wait(client, alice, copy.json()["server"]["id"], "ACTIVE")
    # bad input: the same name again, no name, another user's server
    again = await client.post(action, json={"createImage": {"name": "golden"}}, headers=alice)
    assert again.status_code == 409, again.text
    nameless = await client.post(action, json={"createImage": {}}, headers=alice)
    assert nameless.status_code == 400
    theirs = await client.post(action, json={"createImage": {"name": "x"}}, headers=bob)
    assert theirs.status_code == 404
    # a server on its own disk: said to be unsupported, in Nova's format
    plain = await _server(client, setup, alice)
    refused = await client.post(
        f"{COMPUTE}/servers/{plain['id']}/action",
        json={"createImage": {"name": "plain"}},
        headers=alice,
    )
    assert refused.status_code == 501, refused.text
    assert "booted from a volume" in refused.json()["notImplemented"]["message"]


async def test_a_server_gone_from_its_backend_releases_its_volumes(client, engines, setup):
    from nefos.backends.base import instance_name
    from nefos.compute.reconcile import reconcile_servers

    _, alice = setup["people"]["alice"]
    server = await _server(client, setup, alice)
    volume = await _volume(client, alice)
    body = {"volumeAttachment": {"volumeId": volume["id"]}}
    await client.post(_attachments(server["id"]), json=body, headers=alice)
    await _volume_in(client, alice, volume["id"], "in-use")
    cluster = engines.compute.cluster(await engines.compute.backend("embedded"))
    cluster.change_behind_back(instance_name(int(server["id"])), running=None)
    await reconcile_servers(engines.compute, fix=True)
    left = await _volume_in(client, alice, volume["id"], "available")
    assert left["attachments"] == []


async def _held(engines: Engines, user: str) -> dict[str, int]:
    resources = ("cyclades.vm", "cyclades.disk", "cyclades.total_ram", "cyclades.ram")
    return {r: (await usage(engines, user, r))[0] for r in resources}


async def _stopped(client: httpx.AsyncClient, auth: dict, sid: object) -> dict:
    action = f"{COMPUTE}/servers/{sid}/action"
    assert (await client.post(action, json={"os-stop": None}, headers=auth)).status_code == 202
    return await wait(client, auth, sid, "STOPPED")


async def test_a_volume_backed_server_charges_its_disk_once(client, engines, setup):
    """The root volume holds cyclades.disk; the server holds no flavor disk beside it,
    through its create, a resize and its deletion."""
    user, alice = setup["people"]["alice"]
    flavor = await engines.compute.flavor(setup["flavor"])  # 1 CPU, 1 GiB RAM, 20 GiB disk
    bigger = await engines.compute.create_flavor(2, 2048, flavor.disk, flavor.disk_template)
    before = await _held(engines, user)
    made = await _boot(client, setup, alice, _bdm(
        "image", setup["image"], volume_size=3, delete_on_termination=True
    ))  # fmt: skip
    assert made.status_code == 202, made.text
    sid = made.json()["server"]["id"]
    await wait(client, alice, sid, "ACTIVE")
    created = await _held(engines, user)
    assert created["cyclades.disk"] - before["cyclades.disk"] == 3 * GiB  # not 3 + 20
    assert created["cyclades.vm"] - before["cyclades.vm"] == 1
    assert created["cyclades.total_ram"] - before["cyclades.total_ram"] == 1 << 30

    await _stopped(client, alice, sid)
    resize = {"resize": {"flavorRef": str(bigger.id)}}
    answer = await client.post(f"{COMPUTE}/servers/{sid}/action", json=resize, headers=alice)
    assert answer.status_code == 202, answer.text
    resized = await wait(client, alice, sid, "STOPPED")
    assert resized["flavor"]["id"] == str(bigger.id)
    after_resize = await _held(engines, user)
    assert after_resize["cyclades.disk"] == created["cyclades.disk"]
    assert after_resize["cyclades.total_ram"] - created["cyclades.total_ram"] == 1 << 30

    assert (await client.delete(f"{COMPUTE}/servers/{sid}", headers=alice)).status_code == 204
    for _ in range(500):
        if not await _volumes(client, alice):
            break
        await asyncio.sleep(0.01)
    assert await _held(engines, user) == before  # the volume's 3 GiB too, nothing more

    # a server on its own disk still holds its flavor's
    plain = await _server(client, setup, alice)
    held = await _held(engines, user)
    assert held["cyclades.disk"] - before["cyclades.disk"] == flavor.disk * GiB
    gone = await client.delete(f"{COMPUTE}/servers/{plain['id']}", headers=alice)
    assert gone.status_code == 204


async def test_a_flavor_on_the_volume_template_spawns_every_server_by_cloning(
    client, engines, setup
):
    """A plain create (no block_device_mapping_v2) on an ext_nefos flavor boots from a
    new root volume cloned from the image's map: the flavor's disk, /dev/vda, deleted
    with the server, charged once; the create's disk carries the image as origin."""
    user, alice = setup["people"]["alice"]
    flavor = await engines.compute.create_flavor(1, 1024, 2, "ext_nefos")
    listed = (await client.get(f"{COMPUTE}/flavors/{flavor.id}", headers=alice)).json()
    assert listed["flavor"]["SNF:disk_template"] == "ext_nefos"
    before = await _held(engines, user)
    body = {"name": "cow", "imageRef": setup["image"], "flavorRef": str(flavor.id)}
    made = await client.post(f"{COMPUTE}/servers", json={"server": body}, headers=alice)
    assert made.status_code == 202, made.text
    sid = made.json()["server"]["id"]
    server = await wait(client, alice, sid, "ACTIVE")
    (root,) = server["os-extended-volumes:volumes_attached"]
    assert root["delete_on_termination"] is True
    assert server["volumes"] == [root["id"]] and server["image"]["id"] == setup["image"]
    volume = await _volume_in(client, alice, root["id"], "in-use")
    assert volume["size"] == 2 and volume["bootable"] == "true"
    assert volume["attachments"][0]["device"] == "/dev/vda"
    assert volume["volume_image_metadata"] == {"image_id": setup["image"]}
    # the image's map, nothing copied
    entries = await engines.volumes.entries(user, root["id"])
    _, record = await engines.images.data(user, setup["image"])
    assert [h for h, _ in entries.values()] == list(await engines.storage.hashmap(record))
    assert not any(owned for _, owned in entries.values())
    (disk,) = await _disks(engines, sid)
    assert disk["volume"] == root["id"] and disk["origin"] == setup["image"]
    assert disk["provider"] == "nefos" and disk["size"] == 2048
    held = await _held(engines, user)
    assert held["cyclades.disk"] - before["cyclades.disk"] == 2 * GiB  # the volume's only

    # several at once: each its own volume
    body = {**body, "name": "many", "min_count": 2, "max_count": 2}
    many = await client.post(f"{COMPUTE}/servers", json={"server": body}, headers=alice)
    assert many.status_code == 202, many.text
    listing = (await client.get(f"{COMPUTE}/servers/detail", headers=alice)).json()["servers"]
    pair = [s for s in listing if s["name"].startswith("many-")]
    assert len(pair) == 2
    roots = set()
    for each in pair:
        shown = await wait(client, alice, each["id"], "ACTIVE")
        roots.update(v["id"] for v in shown["os-extended-volumes:volumes_attached"])
    assert len(roots) == 2 and root["id"] not in roots

    for each in [sid, *(s["id"] for s in pair)]:
        answer = await client.delete(f"{COMPUTE}/servers/{each}", headers=alice)
        assert answer.status_code == 204
    for _ in range(500):
        if not await _volumes(client, alice):
            break
        await asyncio.sleep(0.01)
    assert await _volumes(client, alice) == []
    assert await _held(engines, user) == before


async def test_a_volume_template_create_fits_the_disk_quota_or_leaves_nothing(
    client, engines, setup
):
    """Three servers whose volumes need 240 GiB of a 200 GiB cyclades.disk: with
    min_count 3, 413 naming it, and neither servers nor the volumes made before the
    refusal are left; with min_count 1, two servers, as Nova fits a multiple create to
    the quota (the other resources reserved for two, not three)."""
    user, alice = setup["people"]["alice"]
    flavor = await engines.compute.create_flavor(1, 512, 80, "ext_nefos")
    before = await _held(engines, user)
    body = {"name": "fit", "imageRef": setup["image"], "flavorRef": str(flavor.id),
            "min_count": 3, "max_count": 3}  # fmt: skip
    refused = await client.post(f"{COMPUTE}/servers", json={"server": body}, headers=alice)
    assert refused.status_code == 413, refused.text
    assert "cyclades.disk" in refused.json()["overLimit"]["message"]
    assert await _volumes(client, alice) == []
    assert (await client.get(f"{COMPUTE}/servers", headers=alice)).json()["servers"] == []
    assert await _held(engines, user) == before

    body["min_count"] = 1
    made = await client.post(f"{COMPUTE}/servers", json={"server": body}, headers=alice)
    assert made.status_code == 202, made.text
    servers = (await client.get(f"{COMPUTE}/servers", headers=alice)).json()["servers"]
    assert sorted(s["name"] for s in servers) == ["fit-1", "fit-2"]
    for each in servers:
        await wait(client, alice, each["id"], "ACTIVE")
    held = await _held(engines, user)
    assert held["cyclades.disk"] - before["cyclades.disk"] == 160 * GiB
    assert held["cyclades.vm"] - before["cyclades.vm"] == 2
    assert held["cyclades.ram"] - before["cyclades.ram"] == 2 * 512 * (1 << 20)
    assert len(await _volumes(client, alice)) == 2
    for each in servers:
        assert (
            await client.delete(f"{COMPUTE}/servers/{each['id']}", headers=alice)
        ).status_code == 204
    for _ in range(500):
        if not await _volumes(client, alice):
            break
        await asyncio.sleep(0.01)
    assert await _held(engines, user) == before


async def test_a_volume_created_with_server_id_attaches_to_it(client, engines, setup):
    """Cyclades's server_id in a volume create: the volume attaches to the caller's
    server; another user's server, or none, is 404 and leaves no volume (nor quota)."""
    user, alice = setup["people"]["alice"]
    bob_id, bob = setup["people"]["bob"]
    server = await _server(client, setup, alice)
    sid = server["id"]
    before = (await usage(engines, user, "cyclades.disk"))[0]
    body = {"volume": {"size": 1, "display_name": "data", "server_id": int(sid)}}
    made = await client.post("/cyclades/volume/v2.0/volumes", json=body, headers=alice)
    assert made.status_code == 202, made.text
    volume = made.json()["volume"]
    assert volume["status"] in ("attaching", "in-use")
    shown = await _volume_in(client, alice, volume["id"], "in-use")
    assert shown["attachments"][0]["server_id"] == sid
    assert shown["attachments"][0]["device"] == "/dev/vdb"
    listed = (await client.get(_attachments(sid), headers=alice)).json()["volumeAttachments"]
    assert [a["volumeId"] for a in listed] == [volume["id"]]
    assert (await _disks(engines, sid))[0]["volume"] == volume["id"]
    assert (await usage(engines, user, "cyclades.disk"))[0] - before == GiB

    # bob names alice's server (and a server that does not exist): 404, nothing made
    bob_before = (await usage(engines, bob_id, "cyclades.disk"))[0]
    for target in (sid, "999999", "junk"):
        body = {"volume": {"size": 1, "server_id": target}}
        refused = await client.post(f"{CINDER}/volumes", json=body, headers=bob)
        assert refused.status_code == 404, refused.text
        assert "itemNotFound" in refused.json()
    assert await _volumes(client, bob) == []
    assert (await usage(engines, bob_id, "cyclades.disk"))[0] == bob_before
    # not a server id at all: 400
    body = {"volume": {"size": 1, "server_id": {"id": sid}}}
    assert (await client.post(f"{CINDER}/volumes", json=body, headers=alice)).status_code == 400
    assert [v["id"] for v in await _volumes(client, alice)] == [volume["id"]]


async def test_the_reconciler_settles_attachments_by_the_backends_disks(client, engines, setup):
    """Lost events and changes behind nefos's back, through the embedded backend's fault
    double: an in-use volume whose disk is gone is detached, an attach or a detach whose
    event never came is settled by the instance's disks, a disk nefos does not record
    is reported; each is a finding, fixed only with fix."""
    import datetime as dt

    from nefos.backends.base import disk_name, instance_name
    from nefos.compute.reconcile import reconcile_servers

    _, alice = setup["people"]["alice"]
    _, bob = setup["people"]["bob"]
    server = await _server(client, setup, alice)
    sid, name = server["id"], instance_name(int(server["id"]))
    cluster = engines.compute.cluster(await engines.compute.backend("embedded"))
    lost, stuck_in, stuck_out = [await _volume(client, alice) for _ in range(3)]

    def about(findings, volume):
        return [f for f in findings if f.server_id == int(sid) and volume["id"] in f.problem]

    # in-use, and its disk removed on the cluster by hand
    body = {"volumeAttachment": {"volumeId": lost["id"]}}
    assert (await client.post(_attachments(sid), json=body, headers=alice)).status_code == 200
    await _volume_in(client, alice, lost["id"], "in-use")
    await cluster.idle()
    cluster.state.read()
    kept = [d for d in cluster.state.instances[name]["volumes"] if d["volume"] != lost["id"]]
    cluster.change_behind_back(name, volumes=kept)
    (seen,) = about(await reconcile_servers(engines.compute), lost)
    assert not seen.fixed and "in-use" in seen.problem and "has no" in seen.problem
    assert (await _volume_in(client, alice, lost["id"], "in-use"))["attachments"]
    (seen,) = about(await reconcile_servers(engines.compute, fix=True), lost)
    assert seen.fixed
    shown = await _volume_in(client, alice, lost["id"], "available")
    assert shown["attachments"] == []
    assert about(await reconcile_servers(engines.compute), lost) == []

    # an attach, then a detach, whose events are lost
    cluster.drop_events = 1.0
    body = {"volumeAttachment": {"volumeId": stuck_in["id"]}}
    assert (await client.post(_attachments(sid), json=body, headers=alice)).status_code == 200
    await cluster.idle()
    await _volume_in(client, alice, stuck_in["id"], "attaching")
    cluster.drop_events = 0.0
    body = {"volumeAttachment": {"volumeId": stuck_out["id"]}}
    assert (await client.post(_attachments(sid), json=body, headers=alice)).status_code == 200
    await _volume_in(client, alice, stuck_out["id"], "in-use")
    cluster.drop_events = 1.0
    detach = await client.delete(f"{_attachments(sid)}/{stuck_out['id']}", headers=alice)
    assert detach.status_code == 202
    await cluster.idle()
    cluster.drop_events = 0.0
    await _volume_in(client, alice, stuck_out["id"], "detaching")
    # a job just ended may still have its event on the way: left alone while recent
    findings = await reconcile_servers(engines.compute, fix=True)
    assert about(findings, stuck_in) == [] and about(findings, stuck_out) == []
    findings = await reconcile_servers(engines.compute, fix=True, stale_after=dt.timedelta(0))
    ((attach,), (detach,)) = about(findings, stuck_in), about(findings, stuck_out)
    assert attach.fixed and "attaching" in attach.problem
    assert detach.fixed and "detaching" in detach.problem
    await _volume_in(client, alice, stuck_in["id"], "in-use")
    assert (await _volume_in(client, alice, stuck_out["id"], "available"))["attachments"] == []
    listed = (await client.get(_attachments(sid), headers=alice)).json()["volumeAttachments"]
    assert [a["volumeId"] for a in listed] == [stuck_in["id"]]

    # a disk of bob's volume put on alice's instance by hand: reported, bob's untouched
    bobs = await _volume(client, bob)
    cluster.state.read()
    disks = cluster.state.instances[name]["volumes"]
    cluster.change_behind_back(name, volumes=[*disks, {"name": disk_name(bobs["id"])}])
    findings = await reconcile_servers(engines.compute, fix=True)
    (odd,) = about(findings, bobs)
    assert not odd.fixed and "does not attach" in odd.problem
    await _volume_in(client, bob, bobs["id"], "available")
    diagnostics = (await client.get(f"{COMPUTE}/servers/{sid}", headers=alice)).json()
    notes = [d["message"] for d in diagnostics["server"]["diagnostics"]]
    assert any(lost["id"] in n and "available" in n for n in notes)


async def test_only_a_bootable_volume_boots_a_server(client, engines, setup):
    """Nova's check: the owner's os-set_bootable decides (a blank volume is not)."""
    _, alice = setup["people"]["alice"]
    blank = await _volume(client, alice)
    refused = await _boot(client, setup, alice, _bdm("volume", blank["id"]))
    assert refused.status_code == 400 and "not bootable" in refused.text
    body = {"volume": {"size": 1, "imageRef": setup["image"], "name": "system"}}
    system = (await client.post(f"{CINDER}/volumes", json=body, headers=alice)).json()["volume"]
    action = f"{CINDER}/volumes/{system['id']}/action"
    off = {"os-set_bootable": {"bootable": False}}
    assert (await client.post(action, json=off, headers=alice)).status_code == 200
    refused = await _boot(client, setup, alice, _bdm("volume", system["id"]))
    assert refused.status_code == 400 and "not bootable" in refused.text
    on = {"os-set_bootable": {"bootable": True}}
    assert (await client.post(action, json=on, headers=alice)).status_code == 200
    made = await _boot(client, setup, alice, _bdm("volume", system["id"]))
    assert made.status_code == 202, made.text
    await wait(client, alice, made.json()["server"]["id"], "ACTIVE")
    servers = (await client.get(f"{COMPUTE}/servers", headers=alice)).json()["servers"]
    assert len(servers) == 1
