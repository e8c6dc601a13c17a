"""The Block Storage API in process: Cinder's shapes on /volume/v3 and /volume/v2 (with
and without the project id), Cyclades's on /cyclades/volume/v2.0, rights, quotas and
faults."""

from __future__ import annotations

import datetime as dt
import uuid

import httpx
import pytest

from nefos.core import errors
from nefos.quotas.projects import Actor
from nefos.quotas.service import project_holder, user_holder
from nefos.server.engines import Engines
from nefos.volume.models import Volume
from nefos.volume.types import NEFOS
from tests.volume.conftest import SYNNEFO, V2, V3, GiB


def fault(response: httpx.Response, status: int, name: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()[name]
    assert body["code"] == status and body["message"]
    return body


async def create(client: httpx.AsyncClient, auth: dict, base: str = V3, **volume) -> dict:
    volume.setdefault("size", 1)
    made = await client.post(f"{base}/volumes", json={"volume": volume}, headers=auth)
    assert made.status_code == 202, made.text
    return made.json()["volume"]


async def test_version_documents_and_auth(client: httpx.AsyncClient, people):
    for base in (V3, V2, SYNNEFO):
        assert (await client.get(base + "/")).json()["versions"]
        fault(await client.get(f"{base}/volumes"), 401, "unauthorized")
    root = await client.get("/volume")
    assert root.status_code == 300 and {v["id"] for v in root.json()["versions"]} == {
        "v3.0",
        "v2.0",
    }


async def test_project_id_in_the_path_or_not(client: httpx.AsyncClient, people):
    alice_id, alice = people["alice"]
    made = await create(client, alice, f"{V3}/{alice_id}", name="v1")
    assert made["links"][0]["href"].endswith(f"{V3}/{alice_id}/volumes/{made['id']}")
    for base in (V3, f"{V3}/{alice_id}", V2, f"{V2}/{alice_id}"):
        shown = await client.get(f"{base}/volumes/{made['id']}", headers=alice)
        assert shown.status_code == 200 and shown.json()["volume"]["name"] == "v1"
    v3 = await client.get(f"{V3}/volumes", headers=alice)
    assert v3.headers["OpenStack-API-Version"] == "volume 3.0"
    bob_id = people["bob"][0]
    wrong = await client.get(f"{V3}/{bob_id}/volumes", headers=alice)
    assert "project_id" in fault(wrong, 400, "badRequest")["message"]
    too_new = await client.get(
        f"{V3}/volumes", headers={**alice, "OpenStack-API-Version": "volume 3.70"}
    )
    fault(too_new, 406, "notAcceptable")
    latest = {**alice, "OpenStack-API-Version": "volume latest"}
    assert (await client.get(f"{V3}/volumes", headers=latest)).status_code == 200


async def test_volume_lifecycle(client: httpx.AsyncClient, people):
    alice_id, alice = people["alice"]
    made = await create(
        client, alice, name="data", description="scratch", metadata={"a": "1"}, size=2
    )
    assert made["status"] == "available" and made["size"] == 2
    assert made["volume_type"] == NEFOS.name and made["attachments"] == []
    assert made["metadata"] == {"a": "1"} and made["bootable"] == "false"
    assert made["os-vol-tenant-attr:tenant_id"] == alice_id and made["user_id"] == alice_id
    assert "display_name" not in made and "tenant_id" not in made  # Cinder's fields only
    volume_id = made["id"]
    listed = (await client.get(f"{V3}/volumes", headers=alice)).json()["volumes"]
    assert [set(v) for v in listed] == [{"id", "name", "links"}]
    detail = (await client.get(f"{V3}/volumes/detail", headers=alice)).json()["volumes"]
    assert detail[0]["description"] == "scratch"
    updated = await client.put(
        f"{V3}/volumes/{volume_id}",
        json={"volume": {"name": "renamed", "description": "d", "metadata": {"b": "2"}}},
        headers=alice,
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["volume"]["name"] == "renamed"
    assert updated.json()["volume"]["metadata"] == {"b": "2"}
    # metadata: merge, replace, one item, delete an item
    url = f"{V3}/volumes/{volume_id}/metadata"
    merged = await client.post(url, json={"metadata": {"c": "3"}}, headers=alice)
    assert merged.json()["metadata"] == {"b": "2", "c": "3"}
    replaced = await client.put(url, json={"metadata": {"d": "4"}}, headers=alice)
    assert replaced.json()["metadata"] == {"d": "4"}
    item = await client.put(f"{url}/e", json={"meta": {"e": "5"}}, headers=alice)
    assert item.json() == {"meta": {"e": "5"}}
    assert (await client.get(f"{url}/e", headers=alice)).json() == {"meta": {"e": "5"}}
    assert (await client.delete(f"{url}/e", headers=alice)).status_code == 200
    fault(await client.delete(f"{url}/e", headers=alice), 404, "itemNotFound")
    assert (await client.get(url, headers=alice)).json() == {"metadata": {"d": "4"}}
    mismatch = await client.put(f"{url}/x", json={"meta": {"y": "1"}}, headers=alice)
    fault(mismatch, 400, "badRequest")
    too_many = {str(i): "v" for i in range(11)}
    fault(await client.put(url, json={"metadata": too_many}, headers=alice), 400, "badRequest")
    # extend
    action = f"{V3}/volumes/{volume_id}/action"
    extended = await client.post(action, json={"os-extend": {"new_size": 3}}, headers=alice)
    assert extended.status_code == 202, extended.text
    shown = (await client.get(f"{V3}/volumes/{volume_id}", headers=alice)).json()["volume"]
    assert shown["size"] == 3
    shrink = await client.post(action, json={"os-extend": {"new_size": 1}}, headers=alice)
    fault(shrink, 400, "badRequest")
    # delete
    assert (await client.delete(f"{V3}/volumes/{volume_id}", headers=alice)).status_code == 202
    fault(await client.get(f"{V3}/volumes/{volume_id}", headers=alice), 404, "itemNotFound")


async def test_sources_image_snapshot_and_volume(
    client: httpx.AsyncClient, engines: Engines, people, image: str
):
    alice_id, alice = people["alice"]
    from_image = await create(client, alice, name="boot", imageRef=image, size=1)
    assert from_image["bootable"] == "true"
    assert from_image["volume_image_metadata"] == {"image_id": image}
    assert from_image["snapshot_id"] is None and from_image["source_volid"] is None
    # The volume reads the image's bytes: its map is the image's.
    entries = await engines.volumes.entries(alice_id, from_image["id"])
    assert len(entries) == 2 and not any(owned for _, owned in entries.values())
    no_size = await client.post(
        f"{V3}/volumes", json={"volume": {"imageRef": image}}, headers=alice
    )
    fault(no_size, 400, "badRequest")
    taken = await client.post(
        f"{V3}/snapshots",
        json={"snapshot": {"volume_id": from_image["id"], "name": "snap", "metadata": {"k": "v"}}},
        headers=alice,
    )
    assert taken.status_code == 202, taken.text
    snapshot = taken.json()["snapshot"]
    assert snapshot["status"] == "available" and snapshot["size"] == 1
    assert snapshot["volume_id"] == from_image["id"] and snapshot["metadata"] == {"k": "v"}
    # the snapshot is a file and an image of alice's
    record = await engines.storage.get_object(alice_id, "snapshots", "snap")
    assert str(record.uuid) == snapshot["id"]
    image_of = await engines.images.get(alice_id, snapshot["id"])
    assert image_of.properties["exclude_all_tasks"] == "yes"
    from_snapshot = await create(client, alice, snapshot_id=snapshot["id"], size=None)
    assert from_snapshot["snapshot_id"] == snapshot["id"] and from_snapshot["size"] == 1
    assert await engines.volumes.entries(alice_id, from_snapshot["id"]) == entries
    clone = await create(client, alice, source_volid=from_snapshot["id"], size=2)
    assert clone["source_volid"] == from_snapshot["id"] and clone["size"] == 2
    both = await client.post(
        f"{V3}/volumes",
        json={"volume": {"size": 1, "imageRef": image, "source_volid": clone["id"]}},
        headers=alice,
    )
    fault(both, 400, "badRequest")
    # snapshots: list, show, update, metadata, delete
    listed = (await client.get(f"{V3}/snapshots/detail", headers=alice)).json()["snapshots"]
    assert [s["id"] for s in listed] == [snapshot["id"]]
    url = f"{V3}/snapshots/{snapshot['id']}"
    renamed = await client.put(
        url, json={"snapshot": {"name": "golden", "description": "d"}}, headers=alice
    )
    assert renamed.json()["snapshot"]["name"] == "golden"
    assert (await engines.images.get(alice_id, snapshot["id"])).name == "golden"
    meta = await client.post(f"{url}/metadata", json={"metadata": {"x": "1"}}, headers=alice)
    assert meta.json()["metadata"] == {"k": "v", "x": "1"}
    fixed = await client.post(
        f"{url}/metadata", json={"metadata": {"volume_id": "x"}}, headers=alice
    )
    fault(fixed, 400, "badRequest")
    assert (await client.delete(f"{url}/metadata/k", headers=alice)).status_code == 200
    assert (await client.get(f"{url}/metadata", headers=alice)).json() == {"metadata": {"x": "1"}}
    assert (await client.delete(url, headers=alice)).status_code == 202
    fault(await client.get(url, headers=alice), 404, "itemNotFound")
    with pytest.raises(errors.NotFound):
        await engines.storage.get_object(alice_id, "snapshots", "snap")
    # the volume made from it keeps its blocks
    assert await engines.volumes.entries(alice_id, from_snapshot["id"]) == entries


async def test_size_below_the_source_is_refused(client: httpx.AsyncClient, people, image):
    _, alice = people["alice"]
    big = await create(client, alice, size=2)
    small = await client.post(
        f"{V3}/volumes", json={"volume": {"size": 1, "source_volid": big["id"]}}, headers=alice
    )
    assert "smaller" in fault(small, 400, "badRequest")["message"]
    for bad in (0, -1, "x", 1.5, True):
        refused = await client.post(f"{V3}/volumes", json={"volume": {"size": bad}}, headers=alice)
        fault(refused, 400, "badRequest")


async def test_another_users_volumes_and_snapshots_are_not_found(
    client: httpx.AsyncClient, people, image
):
    _, alice = people["alice"]
    _, bob = people["bob"]
    volume = await create(client, alice, name="mine")
    taken = await client.post(
        f"{V3}/snapshots", json={"snapshot": {"volume_id": volume["id"]}}, headers=alice
    )
    snapshot = taken.json()["snapshot"]
    assert snapshot["name"] == f"Snapshot of volume '{volume['id']}'"
    v, s = f"{V3}/volumes/{volume['id']}", f"{V3}/snapshots/{snapshot['id']}"
    attempts = [
        client.get(v, headers=bob),
        client.put(v, json={"volume": {"name": "x"}}, headers=bob),
        client.delete(v, headers=bob),
        client.get(f"{v}/metadata", headers=bob),
        client.post(f"{v}/metadata", json={"metadata": {"a": "b"}}, headers=bob),
        client.post(f"{v}/action", json={"os-extend": {"new_size": 5}}, headers=bob),
        client.get(s, headers=bob),
        client.put(s, json={"snapshot": {"name": "x"}}, headers=bob),
        client.delete(s, headers=bob),
        client.post(f"{s}/metadata", json={"metadata": {"a": "b"}}, headers=bob),
        client.post(f"{V3}/snapshots", json={"snapshot": {"volume_id": volume["id"]}}, headers=bob),
        client.post(
            f"{V3}/volumes", json={"volume": {"size": 1, "source_volid": volume["id"]}},
            headers=bob,
        ),
        client.post(f"{V3}/volumes", json={"volume": {"snapshot_id": snapshot["id"]}}, headers=bob),
        client.post(f"{V3}/volumes", json={"volume": {"size": 1, "imageRef": image}}, headers=bob),
    ]  # fmt: skip
    for attempt in attempts:
        fault(await attempt, 404, "itemNotFound")
    assert (await client.get(f"{V3}/volumes", headers=bob)).json() == {"volumes": []}
    assert (await client.get(f"{V3}/snapshots", headers=bob)).json() == {"snapshots": []}
    shown = (await client.get(v, headers=alice)).json()["volume"]
    assert shown["name"] == "mine" and shown["size"] == 1
    assert (await client.get(s, headers=alice)).status_code == 200


async def test_malformed_bodies_and_unknown_keys(client: httpx.AsyncClient, people):
    _, alice = people["alice"]
    volume = await create(client, alice)
    url = f"{V3}/volumes/{volume['id']}"
    bad = [
        client.post(f"{V3}/volumes", content=b"{", headers=alice),
        client.post(f"{V3}/volumes", json=[], headers=alice),
        client.post(f"{V3}/volumes", json={"size": 1}, headers=alice),
        client.post(f"{V3}/volumes", json={"volume": {"size": 1}, "x": 1}, headers=alice),
        client.post(f"{V3}/volumes", json={"volume": {"size": 1, "name": 5}}, headers=alice),
        client.post(f"{V3}/volumes", json={"volume": {"size": 1, "metadata": []}}, headers=alice),
        client.put(url, json={"volume": {"size": 5}}, headers=alice),
        client.put(url, json={"volume": {}}, headers=alice),
        client.post(f"{url}/action", json={"os-extend": {"new_size": 2, "x": 1}}, headers=alice),
        client.post(f"{url}/action", json={"os-extend": {}}, headers=alice),
        client.post(f"{url}/action", json={"os-reset_status": {}}, headers=alice),
        client.post(
            f"{V3}/snapshots", json={"snapshot": {"volume_id": volume["id"], "x": 1}},
            headers=alice,
        ),
        client.post(f"{V3}/snapshots", json={"snapshot": {}}, headers=alice),
    ]  # fmt: skip
    for attempt in bad:
        fault(await attempt, 400, "badRequest")
    unknown_type = await client.post(
        f"{V3}/volumes", json={"volume": {"size": 1, "volume_type": "gold"}}, headers=alice
    )
    fault(unknown_type, 404, "itemNotFound")
    on_server = await client.post(
        f"{V3}/volumes", json={"volume": {"size": 1, "server_id": "1"}}, headers=alice
    )
    fault(on_server, 404, "itemNotFound")  # no such server: no volume left behind
    assert len((await client.get(f"{V3}/volumes", headers=alice)).json()["volumes"]) == 1


async def test_over_quota_is_413_naming_the_resource(
    client: httpx.AsyncClient, engines: Engines, people
):
    alice_id, alice = people["alice"]
    await engines.quotas.set_base_quota(uuid.UUID(alice_id), "cyclades.disk", 2 * GiB)
    volume = await create(client, alice, size=2)
    over = await client.post(f"{V3}/volumes", json={"volume": {"size": 1}}, headers=alice)
    assert "cyclades.disk" in fault(over, 413, "overLimit")["message"]
    extend = await client.post(
        f"{V3}/volumes/{volume['id']}/action", json={"os-extend": {"new_size": 3}}, headers=alice
    )
    assert "cyclades.disk" in fault(extend, 413, "overLimit")["message"]
    await engines.quotas.set_base_quota(uuid.UUID(alice_id), "pithos.diskspace", 1 << 20)
    await engines.volumes.write(alice_id, volume["id"], 0, b"x" * (4 << 20))
    snap = await client.post(
        f"{V3}/snapshots", json={"snapshot": {"volume_id": volume["id"]}}, headers=alice
    )
    assert "pithos.diskspace" in fault(snap, 413, "overLimit")["message"]
    assert (await client.get(f"{V3}/snapshots", headers=alice)).json() == {"snapshots": []}
    assert len((await client.get(f"{V3}/volumes", headers=alice)).json()["volumes"]) == 1


async def test_limits_and_quota_sets(client: httpx.AsyncClient, people):
    alice_id, alice = people["alice"]
    volume = await create(client, alice, size=3)
    await client.post(
        f"{V3}/snapshots", json={"snapshot": {"volume_id": volume["id"]}}, headers=alice
    )
    absolute = (await client.get(f"{V3}/limits", headers=alice)).json()["limits"]["absolute"]
    assert absolute["maxTotalVolumeGigabytes"] == 200 and absolute["totalGigabytesUsed"] == 3
    assert absolute["totalVolumesUsed"] == 1 and absolute["totalSnapshotsUsed"] == 1
    assert absolute["maxTotalVolumes"] == -1 and absolute["maxTotalSnapshots"] == -1
    fault(await client.get(f"{V3}/limits"), 401, "unauthorized")
    url = f"{V2}/os-quota-sets/{alice_id}"
    shown = (await client.get(url, headers=alice)).json()["quota_set"]
    assert shown["id"] == alice_id and shown["gigabytes"] == 200 and shown["volumes"] == -1
    used = (await client.get(url, params={"usage": "True"}, headers=alice)).json()["quota_set"]
    assert used["gigabytes"]["in_use"] == 3 and used["volumes"]["in_use"] == 1
    defaults = (await client.get(f"{url}/defaults", headers=alice)).json()["quota_set"]
    assert defaults["gigabytes"] == 200
    _, bob = people["bob"]
    fault(await client.get(url, headers=bob), 403, "forbidden")


async def test_reassign_moves_the_charge(client: httpx.AsyncClient, engines: Engines, people):
    alice_id, alice = people["alice"]
    volume = await create(client, alice, size=1)
    action = f"{SYNNEFO}/volumes/{volume['id']}/action"
    elsewhere = str(uuid.uuid4())
    refused = await client.post(action, json={"reassign": {"project": elsewhere}}, headers=alice)
    fault(refused, 403, "forbidden")
    shared = await client.post(
        action, json={"reassign": {"project": alice_id, "shared_to_project": True}}, headers=alice
    )
    fault(shared, 403, "forbidden")
    actor = Actor(uuid.UUID(alice_id), False)
    resources = {"cyclades.disk": {"project_capacity": 4 * GiB, "member_capacity": 2 * GiB}}
    end = dt.datetime.now(dt.UTC) + dt.timedelta(days=30)
    project, application = await engines.projects.submit(
        actor, {"name": f"p-{uuid.uuid4().hex[:8]}", "end_date": end, "resources": resources}
    )
    await engines.projects.application_action(None, project, "approve", application)
    await engines.projects.enroll(None, project, alice_id)  # an owner is a member once enrolled
    moved = await client.post(action, json={"reassign": {"project": str(project)}}, headers=alice)
    assert moved.status_code == 200, moved.text
    shown = (await client.get(f"{SYNNEFO}/volumes/{volume['id']}", headers=alice)).json()
    assert shown["volume"]["tenant_id"] == str(project)
    holdings = {
        (h.source, h.resource): h.usage_max
        for h in await engines.quotas.holdings([user_holder(alice_id)])
    }
    assert holdings[(project_holder(project), "cyclades.disk")] == GiB
    assert holdings[(project_holder(alice_id), "cyclades.disk")] == 0
    # past the project's member capacity: 413, and the volume stays where it is
    big = await create(client, alice, size=3)
    over = await client.post(
        f"{SYNNEFO}/volumes/{big['id']}/action",
        json={"reassign": {"project": str(project)}},
        headers=alice,
    )
    assert "cyclades.disk" in fault(over, 413, "overLimit")["message"]
    shown = (await client.get(f"{SYNNEFO}/volumes/{big['id']}", headers=alice)).json()
    assert shown["volume"]["tenant_id"] == alice_id


async def test_types_on_both_dialects(client: httpx.AsyncClient, people):
    _, alice = people["alice"]
    [cinder] = (await client.get(f"{V3}/types", headers=alice)).json()["volume_types"]
    assert cinder["name"] == "nefos" and "SNF:disk_template" not in cinder
    assert cinder["extra_specs"] == {"SNF:disk_template": "ext_nefos", "SNF:detachable": "true"}
    [synnefo] = (await client.get(f"{SYNNEFO}/types", headers=alice)).json()["volume_types"]
    assert synnefo["SNF:disk_template"] == "ext_nefos" and synnefo["SNF:detachable"] is True
    one = await client.get(f"{V3}/types/{cinder['id']}", headers=alice)
    assert one.json()["volume_type"]["id"] == cinder["id"]
    by_name = await create(client, alice, volume_type="nefos")
    assert by_name["volume_type"] == "nefos"
    fault(await client.get(f"{V3}/types/nope", headers=alice), 404, "itemNotFound")


async def test_kamaki_shaped_requests_on_the_synnefo_dialect(client: httpx.AsyncClient, people):
    """What kamaki's CycladesBlockStorageClient sends and reads (display_name, 202s)."""
    alice_id, alice = people["alice"]
    made = await client.post(
        f"{SYNNEFO}/volumes",
        json={"volume": {"size": 1, "display_name": "k", "display_description": "d"}},
        headers=alice,
    )
    assert made.status_code == 202, made.text
    volume = made.json()["volume"]
    assert volume["display_name"] == "k" and "name" not in volume
    listed = (await client.get(f"{SYNNEFO}/volumes/detail", headers=alice)).json()["volumes"]
    assert listed[0]["display_description"] == "d" and listed[0]["tenant_id"] == alice_id
    assert listed[0]["volume_type"] == NEFOS.id
    assert listed[0]["links"][0]["href"].endswith(f"{SYNNEFO}/volumes/{volume['id']}")
    updated = await client.put(
        f"{SYNNEFO}/volumes/{volume['id']}",
        json={"volume": {"display_name": "k2", "delete_on_termination": True}},
        headers=alice,
    )
    assert updated.json()["volume"]["display_name"] == "k2"
    assert updated.json()["volume"]["delete_on_termination"] is True
    snap = await client.post(
        f"{SYNNEFO}/snapshots",
        json={"snapshot": {"volume_id": volume["id"], "force": False, "display_name": "s"}},
        headers=alice,
    )
    assert snap.status_code == 202, snap.text
    assert snap.json()["snapshot"]["status"] == "AVAILABLE"
    assert snap.json()["snapshot"]["display_name"] == "s"
    snapshot_id = snap.json()["snapshot"]["id"]
    assert (
        await client.delete(f"{SYNNEFO}/snapshots/{snapshot_id}", headers=alice)
    ).status_code == 202
    assert (
        await client.delete(f"{SYNNEFO}/volumes/{volume['id']}", headers=alice)
    ).status_code == 202


async def test_a_volume_in_use_is_not_deleted_or_extended(
    client: httpx.AsyncClient, engines: Engines, people
):
    """The status table (attachments will set in-use): Cinder's 400s, nothing changed;
    a snapshot of a volume in use needs force."""
    _, alice = people["alice"]
    volume = await create(client, alice)
    async with engines.db.transaction() as s:
        row = await s.get(Volume, uuid.UUID(volume["id"]))
        row.status = "in-use"
    url = f"{V3}/volumes/{volume['id']}"
    fault(await client.delete(url, headers=alice), 400, "badRequest")
    extend = await client.post(f"{url}/action", json={"os-extend": {"new_size": 2}}, headers=alice)
    fault(extend, 400, "badRequest")
    unforced = {"snapshot": {"volume_id": volume["id"], "name": "a"}}
    fault(await client.post(f"{V3}/snapshots", json=unforced, headers=alice), 400, "badRequest")
    forced = {"snapshot": {"volume_id": volume["id"], "name": "b", "force": True}}
    assert (await client.post(f"{V3}/snapshots", json=forced, headers=alice)).status_code == 202
    assert (await client.get(url, headers=alice)).json()["volume"]["status"] == "in-use"
