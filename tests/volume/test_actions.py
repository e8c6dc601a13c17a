"""Cinder's volume actions besides os-extend: os-set_bootable, os-update_readonly_flag,
os-retype and os-volume_upload_image; the default type and the availability zones.
Each as the owner, as another user and with bad input."""

from __future__ import annotations

import uuid

import httpx
import pytest

from nefos.blocks import BLOCK_SIZE
from nefos.core import errors
from nefos.images.service import Image
from nefos.server.engines import Engines
from nefos.volume.models import Volume
from nefos.volume.types import NEFOS
from tests.volume.conftest import V2, V3
from tests.volume.test_api import create, fault


async def act(client: httpx.AsyncClient, auth: dict, volume_id: str, action: dict):
    return await client.post(f"{V3}/volumes/{volume_id}/action", json=action, headers=auth)


async def shown(client: httpx.AsyncClient, auth: dict, volume_id: str) -> dict:
    return (await client.get(f"{V3}/volumes/{volume_id}", headers=auth)).json()["volume"]


async def image_start(engines: Engines, image: Image, length: int) -> bytes:
    """The image file's first ``length`` bytes, from its hashmap's blocks."""
    record = await engines.storage.get_object(image.owner, image.container, image.path)
    hashes = (await engines.storage.hashmap(record))[: -(-length // BLOCK_SIZE)]
    blocks = await engines.store.get_blocks(hashes)  # stored without trailing zeros
    return b"".join(block.ljust(BLOCK_SIZE, b"\0") for block in blocks)[:length]


async def set_status(engines: Engines, volume_id: str, status: str) -> None:
    async with engines.db.transaction() as s:
        (await s.get(Volume, uuid.UUID(volume_id))).status = status


async def test_bootable_flag(client: httpx.AsyncClient, people, image: str):
    _, alice = people["alice"]
    blank = await create(client, alice)
    assert blank["bootable"] == "false"
    answer = await act(client, alice, blank["id"], {"os-set_bootable": {"bootable": True}})
    assert answer.status_code == 200 and answer.content == b""
    assert (await shown(client, alice, blank["id"]))["bootable"] == "true"
    # a clone is as bootable as its source; a volume from an image starts bootable
    clone = await create(client, alice, source_volid=blank["id"])
    assert clone["bootable"] == "true"
    from_image = await create(client, alice, imageRef=image)
    assert from_image["bootable"] == "true"
    off = await act(client, alice, from_image["id"], {"os-set_bootable": {"bootable": "False"}})
    assert off.status_code == 200
    assert (await shown(client, alice, from_image["id"]))["bootable"] == "false"
    for bad in ({"bootable": "maybe"}, {}, {"bootable": True, "x": 1}, {"bootable": None}):
        refused = await act(client, alice, blank["id"], {"os-set_bootable": bad})
        fault(refused, 400, "badRequest")
    assert (await shown(client, alice, blank["id"]))["bootable"] == "true"


async def test_read_only_flag(client: httpx.AsyncClient, engines: Engines, people):
    """Shown among the metadata once set (not in the metadata resource); changed only
    while available."""
    _, alice = people["alice"]
    volume = await create(client, alice, metadata={"tier": "gold"})
    assert "readonly" not in volume["metadata"]
    answer = await act(client, alice, volume["id"], {"os-update_readonly_flag": {"readonly": True}})
    assert answer.status_code == 202
    assert (await shown(client, alice, volume["id"]))["metadata"] == {
        "tier": "gold",
        "readonly": "True",
    }
    own = await client.get(f"{V3}/volumes/{volume['id']}/metadata", headers=alice)
    assert own.json() == {"metadata": {"tier": "gold"}}
    assert (await engines.volumes.get(people["alice"][0], volume["id"])).readonly is True
    await set_status(engines, volume["id"], "in-use")
    busy = await act(client, alice, volume["id"], {"os-update_readonly_flag": {"readonly": False}})
    assert "in-use" in fault(busy, 400, "badRequest")["message"]
    await set_status(engines, volume["id"], "available")
    answer = await act(
        client, alice, volume["id"], {"os-update_readonly_flag": {"readonly": "false"}}
    )
    assert answer.status_code == 202
    assert (await shown(client, alice, volume["id"]))["metadata"]["readonly"] == "False"
    bad = await act(client, alice, volume["id"], {"os-update_readonly_flag": {"readonly": 1}})
    fault(bad, 400, "badRequest")


async def test_retype_to_the_same_or_an_unknown_type(client: httpx.AsyncClient, people):
    _, alice = people["alice"]
    volume = await create(client, alice)
    same = await act(client, alice, volume["id"], {"os-retype": {"new_type": NEFOS.name}})
    assert "same as original" in fault(same, 400, "badRequest")["message"]
    unknown = await act(client, alice, volume["id"], {"os-retype": {"new_type": "gold"}})
    fault(unknown, 404, "itemNotFound")
    fault(await act(client, alice, volume["id"], {"os-retype": {}}), 400, "badRequest")


async def test_upload_to_image_shares_the_blocks(
    client: httpx.AsyncClient, engines: Engines, people, image: str
):
    """The volume becomes the image images/<name> (its bytes, no copy), private, with
    Cinder's answer; the volume stays available and has no snapshot."""
    alice_id, alice = people["alice"]
    volume = await create(client, alice, imageRef=image, size=1)
    await engines.volumes.write(alice_id, volume["id"], 7, b"changed")
    body = {"os-volume_upload_image": {"image_name": "golden", "disk_format": "raw"}}
    answer = await act(client, alice, volume["id"], body)
    assert answer.status_code == 202, answer.text
    uploaded = answer.json()["os-volume_upload_image"]
    assert uploaded["id"] == volume["id"] and uploaded["status"] == "uploading"
    assert uploaded["image_name"] == "golden" and uploaded["disk_format"] == "raw"
    assert uploaded["container_format"] == "bare" and uploaded["size"] == 1
    made = await engines.images.get(alice_id, uploaded["image_id"])
    assert made.visibility == "private" and made.location.endswith("/images/golden")
    assert made.properties["volume_id"] == volume["id"]
    first = await engines.volumes.read(alice_id, volume["id"], 0, 8 << 20)
    assert first[:7] == bytes(range(7)) and first[7:14] == b"changed"
    assert await image_start(engines, made, 8 << 20) == first
    assert (await shown(client, alice, volume["id"]))["status"] == "available"
    snapshots = await client.get(f"{V3}/snapshots", headers=alice)
    assert snapshots.json() == {"snapshots": []}
    # the volume's next write does not change the image (its blocks are shared now)
    await engines.volumes.write(alice_id, volume["id"], 0, b"later")
    assert await image_start(engines, made, 8 << 20) == first

    again = await act(client, alice, volume["id"], body)
    assert "exists" in fault(again, 409, "conflict")["message"]
    await set_status(engines, volume["id"], "in-use")
    busy = {"os-volume_upload_image": {"image_name": "busy"}}
    fault(await act(client, alice, volume["id"], busy), 400, "badRequest")
    forced = {"os-volume_upload_image": {"image_name": "busy", "force": "true"}}
    assert (await act(client, alice, volume["id"], forced)).status_code == 202
    for bad in (
        {},
        {"image_name": ""},
        {"image_name": "x", "visibility": "everyone"},
        {"image_name": "x", "disk_format": "floppy"},
        {"image_name": "x", "size": 1},
    ):
        refused = await act(client, alice, volume["id"], {"os-volume_upload_image": bad})
        fault(refused, 400, "badRequest")
    with pytest.raises(errors.NotFound):  # nothing was left of the refused ones
        await engines.storage.get_object(alice_id, "images", "x")


async def test_another_users_volume_takes_no_action(client: httpx.AsyncClient, people):
    _, alice = people["alice"]
    _, bob = people["bob"]
    volume = await create(client, alice)
    for action in (
        {"os-set_bootable": {"bootable": True}},
        {"os-update_readonly_flag": {"readonly": True}},
        {"os-retype": {"new_type": NEFOS.name}},
        {"os-volume_upload_image": {"image_name": "stolen"}},
    ):
        fault(await act(client, bob, volume["id"], action), 404, "itemNotFound")
    after = await shown(client, alice, volume["id"])
    assert after["bootable"] == "false" and after["metadata"] == {}
    images = await client.get("/image/v2/images", headers=bob)
    assert [i["name"] for i in images.json()["images"]] == []


async def test_default_type_and_availability_zones(client: httpx.AsyncClient, people):
    _, alice = people["alice"]
    for base in (V3, V2):
        default = await client.get(f"{base}/types/default", headers=alice)
        assert default.json()["volume_type"]["id"] == NEFOS.id
        zones = await client.get(f"{base}/os-availability-zone", headers=alice)
        assert zones.json() == {
            "availabilityZoneInfo": [{"zoneName": "nova", "zoneState": {"available": True}}]
        }
    fault(await client.get(f"{V3}/os-availability-zone"), 401, "unauthorized")
