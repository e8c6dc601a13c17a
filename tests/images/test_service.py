"""The image service over the storage namespace: images are files with metadata, so
registration, moves and copies move no data (spec §5)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import pytest

from nefos.core import errors
from nefos.images.service import Images
from nefos.server.engines import Engines
from nefos.storage.service import Namespace


async def stream(data: bytes) -> AsyncIterator[bytes]:
    yield data


@pytest.fixture
async def users(engines: Engines) -> tuple[str, str, str]:
    found = []
    for name in ("owner", "member", "stranger"):
        user, _ = await engines.identity.create_user(f"{name}-{uuid.uuid4().hex[:6]}@example.org")
        found.append(str(user.id))
    return found[0], found[1], found[2]


@pytest.fixture
def images(engines: Engines) -> Images:
    return engines.images


@pytest.fixture
def storage(engines: Engines) -> Namespace:
    return engines.storage


async def test_register_is_metadata_on_the_file(images: Images, storage: Namespace, users):
    owner, _, _ = users
    await storage.create_container(owner, "pithos")
    record = await storage.put_object(owner, "pithos", "debian.img", stream(os.urandom(5000)))
    image = await images.register(
        owner,
        f"pithos://{owner}/pithos/debian.img",
        "Debian",
        properties={"osfamily": "linux", "root_partition": "1"},
    )
    assert image.id == record.uuid
    assert (image.size, image.checksum) == (record.size, record.hash)
    assert image.properties == {"osfamily": "linux", "root_partition": "1"}
    assert image.visibility == "private" and image.status == "active"
    after = await storage.get_object(owner, "pithos", "debian.img")
    assert after.map_name == record.map_name  # no data written
    moved = await storage.move_object(owner, "pithos", "debian.img", "pithos", "os/debian.img")
    assert (await images.get(owner, image.id)).path == "os/debian.img"
    copy = await storage.copy_object(owner, "pithos", "os/debian.img", "pithos", "copy.img")
    assert copy.uuid != moved.uuid
    listed = {i.id: i.name for i in await images.visible(owner)}
    assert listed == {image.id: "Debian", copy.uuid: "Debian"}
    await storage.delete_object(owner, "pithos", "copy.img")
    assert [i.id for i in await images.visible(owner)] == [image.id]


async def test_visibility_follows_sharing(images: Images, storage: Namespace, users):
    owner, member, stranger = users
    await storage.create_container(owner, "c")
    await storage.put_object(owner, "c", "img", stream(b"disk"))
    image = await images.register(owner, f"pithos://{owner}/c/img", "img")
    for user in (member, stranger):
        with pytest.raises(errors.NotFound):
            await images.get(user, image.id)
    await images.set_members(owner, image.id, [member])
    assert (await images.get(member, image.id)).visibility == "shared"
    assert await storage.access(member, owner, "c", "img") == "read"
    assert image.id not in [i.id for i in await images.visible(member)]  # pending
    await images.set_member_status(member, image.id, member, "accepted")
    assert image.id in [i.id for i in await images.visible(member)]
    with pytest.raises(errors.NotFound):
        await images.get(stranger, image.id)
    await images.update(owner, image.id, {"visibility": "public"})
    assert (await images.get(stranger, image.id)).is_public
    assert await storage.access(stranger, owner, "c", "img") == "read"
    with pytest.raises(errors.PermissionDenied):
        await images.update(stranger, image.id, {"name": "mine"})
    await images.update(owner, image.id, {"visibility": "private"})
    with pytest.raises(errors.NotFound):
        await images.get(stranger, image.id)


async def test_bad_registrations(images: Images, storage: Namespace, users):
    owner, other, _ = users
    await storage.create_container(owner, "c")
    await storage.put_object(owner, "c", "img", stream(b"disk"))
    location = f"pithos://{owner}/c/img"
    with pytest.raises(errors.InvalidInput):
        await images.register(owner, "http://elsewhere/img", "x")
    with pytest.raises(errors.InvalidInput):
        await images.register(owner, location, "x", disk_format="floppy")
    with pytest.raises(errors.InvalidInput):
        await images.register(owner, location, "x", size=5)
    with pytest.raises(errors.InvalidInput):
        await images.register(owner, location, "x", checksum="0" * 64)
    with pytest.raises(errors.NotFound):
        await images.register(owner, f"pithos://{owner}/c/none", "x")
    with pytest.raises(errors.PermissionDenied):
        await images.register(other, location, "x")
    assert await images.visible(owner) == []


async def test_queued_upload_and_delete(images: Images, storage: Namespace, users):
    owner, _, _ = users
    image = await images.create(owner, name="cirros", disk_format="qcow2")
    assert image.status == "queued" and image.size == 0
    assert image.container_format is None
    with pytest.raises(errors.InvalidInput):  # Glance: formats before data
        await images.upload(owner, image.id, stream(b"data"))
    image = await images.update(owner, image.id, {"container_format": "bare"})
    assert (await images.data(owner, image.id))[1] is None
    data = os.urandom(10_000)
    uploaded = await images.upload(owner, image.id, stream(data))
    assert uploaded.id == image.id and uploaded.status == "active"
    assert uploaded.size == len(data) and uploaded.disk_format == "qcow2"
    record = await storage.get_object(owner, "images", str(image.id))
    assert record.uuid == image.id
    with pytest.raises(errors.Conflict):
        await images.upload(owner, image.id, stream(b"again"))
    await images.update(owner, image.id, {"protected": True})
    with pytest.raises(errors.PermissionDenied):
        await images.delete(owner, image.id)
    await images.update(owner, image.id, {"protected": False})
    await images.delete(owner, image.id)
    with pytest.raises(errors.NotFound):
        await images.get(owner, image.id)
    with pytest.raises(errors.NotFound):
        await storage.get_object(owner, "images", str(image.id))


async def test_unregister_keeps_the_file(images: Images, storage: Namespace, users):
    owner, _, _ = users
    await storage.create_container(owner, "c")
    await storage.put_object(owner, "c", "img", stream(b"disk"))
    image = await images.register(owner, f"pithos://{owner}/c/img", "img", is_public=True)
    await images.unregister(owner, image.id)
    assert await images.visible(owner) == []
    assert (await storage.get_object(owner, "c", "img")).size == 4
    assert (await storage.sharing(owner, "c", "img")).path is None  # no longer public
