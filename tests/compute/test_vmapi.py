"""The vmapi: a server's build configuration once, its pinned image while the build runs.

No cluster: the embedded backend takes the create job, and the update path is driven by
hand (no dispatcher), so the build stays "in flight" for as long as a test needs.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from nefos.backends import base
from nefos.backends.base import InstanceSpec
from nefos.backends.ops import CreateInstance, Op
from nefos.blocks import BLOCK_SIZE, hashmap, merkle
from nefos.compute.service import Compute
from nefos.compute.vmapi import digest
from nefos.compute.vmapi_models import BuildSecret
from nefos.server.engines import Engines
from tests.compute.conftest import stream

# Two blocks and a bit, with a zero tail in the first block (hashed without it).
IMAGE = b"NEFOS-IMAGE first\n" + bytes(BLOCK_SIZE - 18) + b"x" * (BLOCK_SIZE + 1000)


async def _build(engines: Engines, data: bytes = IMAGE) -> dict[str, Any]:
    """A user, an image, and a server being built: its config_url, as the job got it."""
    compute: Compute = engines.compute
    await compute.ensure_embedded()
    user_row, _ = await engines.identity.create_user(f"vm-{uuid.uuid4().hex[:6]}@example.org")
    user = str(user_row.id)
    await engines.storage.create_container(user, "images")
    await engines.storage.put_object(user, "images", "disk", stream(data))
    image = await engines.images.register(
        user, f"pithos://{user}/images/disk", "Disk", properties={"OSFAMILY": "linux"}
    )
    flavor = next(iter(await compute.flavors()), None) or await compute.create_flavor(1, 128, 1)
    cluster = compute.cluster(await compute.backend("embedded"))
    specs: list[InstanceSpec] = []
    submit = cluster.submit

    async def recording(op: Op) -> int:
        if isinstance(op, CreateInstance):
            specs.append(op.spec)
        return await submit(op)

    cluster.submit = recording  # type: ignore[method-assign]
    view, password = await compute.create_server(user, "built", str(image.id), flavor.id)
    (spec,) = specs
    return {
        "user": user,
        "image": image,
        "server": view.server.id,
        "password": password,
        "spec": spec,
        "url": spec.osparams["config_url"],
    }


def _path(url: str) -> str:
    return httpx.URL(url).path


async def test_config_once_image_while_building(
    engines: Engines, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    built = await _build(engines)
    url, spec = built["url"], built["spec"]
    secret = url.rsplit("/", 1)[1]
    assert url == f"{engines.settings.base_url}/vmapi/{secret}" and len(secret) >= 40
    # The job carries the URL and nothing secret.
    assert built["password"] not in repr(spec)

    # Only the secret's digest is stored, and the password only sealed.
    async with engines.db.session() as s:
        row = await s.scalar(select(BuildSecret).where(BuildSecret.server_id == built["server"]))
    assert row is not None and row.digest == digest(secret) and secret not in row.digest
    assert row.sealed and built["password"] not in row.sealed and "linux" not in row.sealed

    caplog.set_level(logging.INFO, logger="nefos.http")
    first = await client.get(_path(url))
    assert first.status_code == 200, first.text
    assert first.headers["cache-control"] == "no-store"
    config = first.json()
    image = built["image"]
    assert config["password"] == built["password"]
    assert config["server"] == {
        "id": built["server"],
        "name": "built",
        "instance": base.instance_name(built["server"]),
    }
    assert config["image"] == {
        "id": str(image.id),
        "name": "Disk",
        "size": len(IMAGE),
        "hash": merkle(hashmap(IMAGE)),
        "disk_format": "diskdump",
        "properties": {"OSFAMILY": "linux"},
        "url": f"{url}/image",
        "on_disk": False,  # a clone of the image (a root volume) says True
    }
    # Once: a second fetch, like a wrong or malformed secret, finds nothing.
    for path in (_path(url), "/vmapi/" + "A" * 43, "/vmapi/x", "/vmapi/" + "A" * 300):
        refused = await client.get(path)
        assert refused.status_code == 404, path
        assert refused.json()["itemNotFound"]["message"] == "No such build"
    async with engines.db.session() as s:
        row = await s.scalar(select(BuildSecret).where(BuildSecret.server_id == built["server"]))
    assert row is not None and row.sealed is None
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("nefos"))
    assert secret not in logged and "/vmapi/***" in logged  # nefos's logs mask it

    # The image as it was when the server was created, however often it is read.
    await engines.storage.put_object(
        built["user"], "images", "disk", stream(b"a newer version of the file")
    )
    for _ in range(2):
        whole = await client.get(_path(url) + "/image")
        assert whole.status_code == 200
        assert whole.content == IMAGE
        assert whole.headers["content-length"] == str(len(IMAGE))
        assert whole.headers["x-object-hash"] == merkle(hashmap(IMAGE))
    part = await client.get(
        _path(url) + "/image", headers={"Range": f"bytes={BLOCK_SIZE - 2}-{BLOCK_SIZE + 1}"}
    )
    assert part.status_code == 206 and part.content == b"\0\0xx"
    assert part.headers["content-range"] == f"bytes {BLOCK_SIZE - 2}-{BLOCK_SIZE + 1}/{len(IMAGE)}"
    assert (await client.get("/vmapi/nonsense/image")).status_code == 404

    # The create job ends (here: its success event on the update path): the build is
    # over and the secret opens nothing more.
    building = await engines.compute.server(built["user"], built["server"])
    await engines.compute.apply_event(
        {
            "instance": base.instance_name(built["server"]),
            "operation": base.OP_CREATE,
            "status": base.SUCCESS,
            "jobId": building.server.task_job_id or 1,
            "event_time": [2_000_000_000, 0],
        }
    )
    assert (await client.get(_path(url) + "/image")).status_code == 404
    async with engines.db.session() as s:
        assert await s.scalar(select(BuildSecret.digest)) is None


async def test_an_image_of_one_block_is_pinned_too(
    engines: Engines, client: httpx.AsyncClient
) -> None:
    """A one-block file has no map in the store (its hash names its block): the build
    reads that block, whatever the file becomes."""
    small = b"NEFOS-IMAGE small\n" + bytes(100)
    built = await _build(engines, small)
    record = await engines.storage.get_object(built["user"], "images", "disk")
    assert record.map_name == ""
    await engines.storage.put_object(built["user"], "images", "disk", stream(b"newer"))
    path = _path(built["url"]) + "/image"
    whole = await client.get(path)
    assert (whole.status_code, whole.content) == (200, small)
    part = await client.get(path, headers={"Range": "bytes=12-20"})
    assert (part.status_code, part.content) == (206, b"small\n\0\0\0")


async def test_storage_gc_leaves_a_building_image_alone(
    engines: Engines, client: httpx.AsyncClient, settings: Any
) -> None:
    """The image file loses the version a build reads (deleted, its history purged) and
    gc runs, as ``nefos storage gc`` wires it: the build still reads its image. After
    the build, gc takes the blocks."""
    from nefos.core.db import utcnow
    from nefos.storage.maintenance import gc
    from tests.storage.test_maintenance import age_everything

    built = await _build(engines)
    storage = engines.storage
    record = await storage.get_object(built["user"], "images", "disk")
    await storage.delete_object(built["user"], "images", "disk")
    await storage.purge(built["user"], "images", "disk", utcnow())
    await age_everything(storage.store)
    vmapi = engines.compute.vmapi
    report = await gc(storage.db, storage.store, grace=dt.timedelta(0), pinned=vmapi.pinned)
    assert (report.maps, report.blocks) == ([], [])
    image = await client.get(_path(built["url"]) + "/image")
    assert (image.status_code, image.content) == (200, IMAGE)
    async with engines.db.transaction() as s:
        await vmapi.forget(s, built["server"])
    report = await gc(storage.db, storage.store, grace=dt.timedelta(0), pinned=vmapi.pinned)
    assert report.maps == [record.map_name]
    assert sorted(report.blocks) == sorted(set(hashmap(IMAGE)))


async def test_an_expired_secret_opens_nothing(engines: Engines, client: httpx.AsyncClient) -> None:
    built = await _build(engines)
    async with engines.db.transaction() as s:
        await s.execute(
            update(BuildSecret)
            .where(BuildSecret.server_id == built["server"])
            .values(expires=BuildSecret.created)
        )
    assert (await client.get(_path(built["url"]))).status_code == 404
    assert (await client.get(_path(built["url"]) + "/image")).status_code == 404
    # The next build clears the rows of builds that never ended.
    await _build(engines)
    async with engines.db.session() as s:
        left = list(await s.scalars(select(BuildSecret.server_id)))
    assert built["server"] not in left and len(left) == 1


async def test_the_configured_internal_url_is_what_the_job_gets(engines: Engines) -> None:
    engines.settings.compute.vmapi_url = "http://10.0.0.1:9000/"
    built = await _build(engines)
    assert built["url"].startswith("http://10.0.0.1:9000/vmapi/")


async def test_racing_fetches_get_the_config_once(
    engines: Engines, client: httpx.AsyncClient
) -> None:
    built = await _build(engines)
    answers = await asyncio.gather(*(client.get(_path(built["url"])) for _ in range(5)))
    assert sorted(a.status_code for a in answers) == [200, 404, 404, 404, 404]
