"""The volume disk records (``AttachDisk``, ``DetachDisk``, a create's root volume) as
the Ganeti backend sends them, over a fake RAPI: no cluster needed. The same records
the embedded backend completes (tests/compute/test_volumes.py) become Ganeti's disk
hotplug and an ``ext`` instance over the ``nefos`` ExtStorage provider."""

from __future__ import annotations

import json
import uuid

import httpx

from nefos.backends.base import InstanceSpec
from nefos.backends.ganeti import GanetiCluster
from nefos.backends.ops import AttachDisk, CreateInstance, DetachDisk
from nefos.compute.volumes import disk_changes, disk_params


def _fake(seen: list[httpx.Request]) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/2/nodes":
            return httpx.Response(200, json=[{"name": "n1", "vm_capable": True, "cnodes": 1}])
        return httpx.Response(200, json=len(seen))

    return httpx.MockTransport(handle)


async def test_disk_records_become_ganeti_disk_changes() -> None:
    seen: list[httpx.Request] = []
    cluster = GanetiCluster("g", "https://g.test:5080", "u", "p", transport=_fake(seen))
    volume = uuid.uuid4()
    params = disk_params(volume, (1 << 30) + 1, "nefos")  # a byte past 1 GiB: 1025 MiB
    assert params == {
        "name": f"nefos-vol-{volume}",
        "size": 1025,
        "provider": "nefos",
        "volume": str(volume),
        "access": "userspace",
    }
    await cluster.submit(AttachDisk("snf-1", params, hotplug=True))
    attach = seen[-1]
    assert (attach.method, attach.url.path) == ("PUT", "/2/instances/snf-1/modify")
    body = json.loads(attach.content)
    assert body["disks"] == [["add", -1, params]] and body["hotplug_if_possible"] is True
    await cluster.submit(DetachDisk("snf-1", params["name"]))
    body = json.loads(seen[-1].content)
    assert body["disks"] == [["detach", params["name"], {}]]  # never "remove"
    assert "hotplug_if_possible" not in body

    spec = InstanceSpec("snf-2", 1, 128, 20, "file", "snf-image+default", {}, volumes=(params,))
    await cluster.submit(CreateInstance(spec))
    created = json.loads(seen[-1].content)
    assert created["disk_template"] == "ext" and created["disks"] == [params]
    await cluster.close()

    # what the update path reads back from the jobs' fields
    assert disk_changes({"disks": [["add", -1, params]]}) == [("attach", volume)]
    assert disk_changes({"disks": [["detach", params["name"], {}]]}) == [("detach", volume)]
    assert disk_changes({"disks": [params, {"size": 1024}]}) == [("attach", volume)]
    assert disk_changes({"disks": [["add", -1, {"name": "other"}], "junk"]}) == []
    # Ganeti saves a detach with the disk's index in place of its name
    assert disk_changes({"disks": [["detach", 1, {}]]}) == [("detach", 1)]


async def test_a_server_on_the_volume_template_is_created_over_its_cloned_root() -> None:
    """A flavor on ext_nefos: the create carries the root volume nefos cloned (its id,
    the image as origin, Synnefo's clone-provider shape), never a new disk of the
    flavor's size for the OS provider to fill."""
    seen: list[httpx.Request] = []
    cluster = GanetiCluster("g", "https://g.test:5080", "u", "p", transport=_fake(seen))
    volume, image = uuid.uuid4(), str(uuid.uuid4())
    params = disk_params(volume, 2 << 30, "nefos", origin=image)
    assert params["origin"] == image and params["volume"] == str(volume)
    spec = InstanceSpec(
        "snf-3", 1, 1024, 2, "ext_nefos", "snf-image+default", {}, volumes=(params,)
    )
    await cluster.submit(CreateInstance(spec))
    created = json.loads(seen[-1].content)
    assert created["disk_template"] == "ext"
    assert created["disks"] == [
        {
            "name": f"nefos-vol-{volume}",
            "size": 2048,
            "provider": "nefos",
            "volume": str(volume),
            "access": "userspace",
            "origin": image,
        }
    ]
    assert disk_changes({"disks": created["disks"]}) == [("attach", volume)]
    await cluster.close()


async def test_the_instance_listing_names_its_volume_disks() -> None:
    """The reconciler compares attachments with ``disk.names`` of the bulk listing;
    a cluster that does not list them says nothing (None), not "no disks"."""
    volume = uuid.uuid4()
    listing = [
        {"name": "snf-1", "disk.names": [f"nefos-vol-{volume}", "other", None]},
        {"name": "snf-2"},
    ]

    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=listing)

    transport = httpx.MockTransport(handle)
    cluster = GanetiCluster("g", "https://g.test:5080", "u", "p", transport=transport)
    found = await cluster.instances()
    assert found["snf-1"].disks == (f"nefos-vol-{volume}",)
    assert found["snf-2"].disks is None
    await cluster.close()
