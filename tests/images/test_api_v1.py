"""Glance v1 at ``/image/v1`` as Plankton serves it to kamaki (spec §5), in process on
SQLite and PostgreSQL: images are object-store files with metadata."""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote, unquote

import httpx
import pytest

from nefos.blocks import BLOCK_SIZE, block_hash, merkle
from nefos.identity.service import Identity
from nefos.server.engines import Engines

STORE = "/object-store/v1"
V1 = "/cyclades/image/v1.0"  # Plankton, as kamaki reaches it (the Synnefo dialect)


class Person:
    def __init__(self, uuid: str, token: str):
        self.uuid = uuid
        self.auth = {"X-Auth-Token": token}

    def file(self, path: str) -> str:
        return f"{STORE}/{self.uuid}/{path}"

    def location(self, path: str) -> str:
        return f"pithos://{self.uuid}/{path}"


@pytest.fixture
async def people(identity: Identity) -> dict[str, Person]:
    found = {}
    for name in ("alice", "bob", "carol"):
        user, token = await identity.create_user(f"{name}@example.org")
        found[name] = Person(str(user.id), token)
    return found


@pytest.fixture
def alice(people: dict[str, Person]) -> Person:
    return people["alice"]


@pytest.fixture
def bob(people: dict[str, Person]) -> Person:
    return people["bob"]


@pytest.fixture
def carol(people: dict[str, Person]) -> Person:
    return people["carol"]


async def upload(client: httpx.AsyncClient, who: Person, path: str, data: bytes) -> httpx.Response:
    """A file put through the object store; returns its HEAD."""
    container = path.split("/", 1)[0]
    await client.put(who.file(container), headers=who.auth)
    put = await client.put(who.file(path), headers=who.auth, content=data)
    assert put.status_code == 201, put.text
    return await client.head(who.file(path), headers=who.auth)


async def register(
    client: httpx.AsyncClient, who: Person, location: str, name: str = "Debian", **meta: str
) -> httpx.Response:
    """POST /images/ as kamaki sends it: fields and properties as headers."""
    headers = {**who.auth, "X-Image-Meta-Name": name, "X-Image-Meta-Location": location}
    for key, value in meta.items():
        if key.startswith("property_"):
            headers[f"X-Image-Meta-Property-{key[len('property_') :]}"] = value
        else:
            headers[f"X-Image-Meta-{key.replace('_', '-')}"] = value
    return await client.post(f"{V1}/images/", headers=headers)


def meta(response: httpx.Response) -> dict[str, Any]:
    """The ``X-Image-Meta-*`` headers as kamaki's ``get_meta`` reads them."""
    fields: dict[str, Any] = {"properties": {}}
    for key, value in response.headers.items():
        key = key.lower()
        if key.startswith("x-image-meta-property-"):
            name = key[len("x-image-meta-property-") :].replace("-", "_")
            fields["properties"][name] = unquote(value)
        elif key.startswith("x-image-meta-"):
            fields[key[len("x-image-meta-") :]] = unquote(value)
    return fields


def fault(response: httpx.Response, status: int, name: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert list(body) == [name]
    assert body[name]["code"] == status
    return body[name]["message"]


async def listing(client: httpx.AsyncClient, who: Person, detail: bool = True, **query: str):
    url = f"{V1}/images/detail" if detail else f"{V1}/images/"
    response = await client.get(url, headers=who.auth, params=query)
    assert response.status_code == 200, response.text
    return response.json()


async def test_register_answers_the_image_as_headers_and_body(client, alice):
    data = os.urandom(BLOCK_SIZE + 500)
    head = await upload(client, alice, "images/debian.img", data)
    name = "Debian 12 «bookworm»"
    registered = await register(
        client,
        alice,
        alice.location("images/debian.img"),
        quote(name),  # kamaki quotes values
        property_osfamily="linux",
        property_Root_Partition="1",
        is_public="False",
        description=quote("Plain Debian, no extras"),
    )
    assert registered.status_code == 200, registered.text
    fields = meta(registered)
    assert fields["id"] == head.headers["X-Object-UUID"]
    assert fields["name"] == name
    assert fields["checksum"] == head.headers["X-Object-Hash"]
    assert fields["checksum"] == merkle(
        [block_hash(data[:BLOCK_SIZE]), block_hash(data[BLOCK_SIZE:])]
    )
    assert fields["size"] == str(len(data))
    assert fields["location"] == alice.location("images/debian.img")
    assert fields["status"] == "AVAILABLE"
    assert fields["is-public"] == "False"
    assert fields["owner"] == alice.uuid
    assert fields["disk-format"] == "diskdump" and fields["container-format"] == "bare"
    assert fields["description"] == "Plain Debian, no extras"
    assert fields["properties"] == {"osfamily": "linux", "root_partition": "1"}
    body = registered.json()["image"]
    assert body["id"] == fields["id"] and body["name"] == name
    assert body["properties"] == {"osfamily": "linux", "root_partition": "1"}
    assert body["deleted_at"] is None and body["is_snapshot"] is False

    head_image = await client.head(f"{V1}/images/{fields['id']}", headers=alice.auth)
    assert head_image.status_code == 200
    assert meta(head_image) == fields
    (listed,) = await listing(client, alice)
    assert listed == body
    assert set(listed) == {
        "id", "name", "status", "disk_format", "container_format", "size", "checksum",
        "location", "created_at", "updated_at", "deleted_at", "is_public", "owner",
        "properties", "is_snapshot", "description",
    }  # fmt: skip
    (summary,) = await listing(client, alice, detail=False)
    assert summary == {
        key: body[key]
        for key in ("id", "name", "status", "disk_format", "container_format", "size")
    }
    # Plankton's GET is 501: the data is read through the object store.
    got = await client.get(f"{V1}/images/{fields['id']}", headers=alice.auth)
    assert "pithos://" in fault(got, 501, "notImplemented")


async def test_listing_filters_and_sorts(client, alice):
    sizes = {"small": 10, "medium": 2000, "large": 300000}
    ids = {}
    for name, size in sizes.items():
        await upload(client, alice, f"images/{name}", os.urandom(size))
        extra = {"container_format": "ovf"} if name == "medium" else {}
        done = await register(client, alice, alice.location(f"images/{name}"), name, **extra)
        ids[name] = done.headers["x-image-meta-id"]

    def names(found: list[dict]) -> list[str]:
        return [i["name"] for i in found]

    assert names(await listing(client, alice)) == ["large", "medium", "small"]  # created desc
    assert names(await listing(client, alice, sort_key="size", sort_dir="asc")) == [
        "small", "medium", "large",
    ]  # fmt: skip
    assert names(await listing(client, alice, sort_key="name", sort_dir="desc")) == [
        "small", "medium", "large",
    ]  # fmt: skip
    by_id = await listing(client, alice, detail=False, sort_key="id", sort_dir="asc")
    assert [i["id"] for i in by_id] == sorted(ids.values())
    assert names(await listing(client, alice, name="medium")) == ["medium"]
    assert names(await listing(client, alice, container_format="ovf")) == ["medium"]
    assert names(await listing(client, alice, disk_format="diskdump", sort_key="size")) == [
        "large", "medium", "small",
    ]  # fmt: skip
    assert names(await listing(client, alice, size_min="2000", size_max="2000")) == ["medium"]
    assert names(await listing(client, alice, size_max="1999")) == ["small"]
    assert len(await listing(client, alice, status="AVAILABLE")) == 3
    assert len(await listing(client, alice, status="available")) == 3
    assert await listing(client, alice, status="SAVING") == []
    for bad in ({"sort_key": "owner"}, {"sort_dir": "up"}, {"size_min": "big"},
                {"size_max": "1" * 5000}):  # fmt: skip
        response = await client.get(f"{V1}/images/detail", headers=alice.auth, params=bad)
        fault(response, 400, "badRequest")


async def test_update_merges_properties_and_changes_fields(client, alice, bob):
    await upload(client, alice, "images/os.img", b"x" * 1000)
    done = await register(
        client, alice, alice.location("images/os.img"), property_osfamily="linux",
        property_users="root",
    )  # fmt: skip
    image_id = done.headers["x-image-meta-id"]
    url = f"{V1}/images/{image_id}"

    merged = await client.put(
        url,
        headers={
            **alice.auth,
            "X-Image-Meta-Name": "Renamed",
            "X-Image-Meta-Property-Root-Partition": "2",
            "X-Image-Meta-Property-Users": "root%20user",
            "X-Image-Meta-Status": "AVAILABLE",  # unchanged: accepted
        },
    )
    assert merged.status_code == 200, merged.text
    fields = meta(merged)
    assert fields["name"] == "Renamed"
    assert fields["properties"] == {
        "osfamily": "linux",
        "users": "root user",
        "root_partition": "2",
    }
    assert merged.json()["image"]["properties"] == fields["properties"]
    assert fields["id"] == image_id  # same file, same image

    removed = await client.put(url, headers={**alice.auth, "X-Image-Meta-Property-Users": ""})
    assert meta(removed)["properties"] == {"osfamily": "linux", "root_partition": "2"}

    purged = await client.put(
        url,
        headers={
            **alice.auth,
            "X-Glance-Registry-Purge-Props": "true",
            "X-Image-Meta-Property-OS": "Debian",
        },
    )
    assert meta(purged)["properties"] == {"os": "Debian"}
    assert meta(purged)["name"] == "Renamed"

    public = await client.put(url, headers={**alice.auth, "X-Image-Meta-Is-Public": "true"})
    assert meta(public)["is-public"] == "True"
    assert [i["id"] for i in await listing(client, bob)] == [image_id]
    private = await client.put(url, headers={**alice.auth, "X-Image-Meta-Is-Public": "false"})
    assert meta(private)["is-public"] == "False"
    assert await listing(client, bob) == []

    for headers in (
        {"X-Image-Meta-Status": "ERROR"},
        {"X-Image-Meta-Id": image_id},
        {"X-Image-Meta-Location": alice.location("images/other")},
        {"X-Image-Meta-Disk-Format": "floppy"},
        {"X-Image-Meta-Owner": bob.uuid},
        {"X-Image-Meta-Is-Public": "perhaps"},
    ):
        bad = await client.put(url, headers={**alice.auth, **headers})
        fault(bad, 400, "badRequest")
    await client.put(url, headers={**alice.auth, "X-Image-Meta-Is-Public": "true"})
    stranger = await client.put(url, headers={**bob.auth, "X-Image-Meta-Name": "Mine"})
    fault(stranger, 403, "forbidden")
    assert meta(await client.head(url, headers=alice.auth))["name"] == "Renamed"


async def test_visibility_private_public_and_members(client, alice, bob, carol):
    await upload(client, alice, "images/shared.img", b"shared" * 100)
    await upload(client, alice, "images/public.img", b"public" * 100)
    shared = (await register(client, alice, alice.location("images/shared.img"), "S")).headers[
        "x-image-meta-id"
    ]
    public = (
        await register(client, alice, alice.location("images/public.img"), "P", is_public="true")
    ).headers["x-image-meta-id"]

    async def seen(who: Person) -> set[str]:
        return {i["id"] for i in await listing(client, who)}

    assert await seen(alice) == {shared, public}
    assert await seen(bob) == await seen(carol) == {public}
    assert (await client.head(f"{V1}/images/{shared}", headers=bob.auth)).status_code == 404
    assert (await client.head(f"{V1}/images/{public}", headers=carol.auth)).status_code == 200

    members_url = f"{V1}/images/{shared}/members"
    replaced = await client.put(
        members_url, headers=alice.auth, json={"memberships": [{"member_id": bob.uuid}]}
    )
    assert replaced.status_code == 204, replaced.text
    assert await seen(bob) == {shared, public}
    assert await seen(carol) == {public}
    assert (await client.head(f"{V1}/images/{shared}", headers=bob.auth)).status_code == 200
    # A member reads the image's file through the object store.
    read = await client.get(alice.file("images/shared.img"), headers=bob.auth)
    assert read.status_code == 200 and read.content == b"shared" * 100
    members = (await client.get(members_url, headers=alice.auth)).json()
    assert members == {"members": [{"member_id": bob.uuid, "can_share": False}]}

    added = await client.put(f"{members_url}/{carol.uuid}", headers=alice.auth)
    assert added.status_code == 204
    assert await seen(carol) == {shared, public}
    listed = (await client.get(members_url, headers=alice.auth)).json()["members"]
    assert {m["member_id"] for m in listed} == {bob.uuid, carol.uuid}

    def shared_ids(response: httpx.Response) -> list[str]:
        assert response.status_code == 200, response.text
        return [s["image_id"] for s in response.json()["shared_images"]]

    by_owner = await client.get(f"{V1}/shared-images/{bob.uuid}", headers=alice.auth)
    assert shared_ids(by_owner) == [shared]
    assert by_owner.json()["shared_images"][0]["can_share"] is False
    by_member = await client.get(f"{V1}/shared-images/{bob.uuid}", headers=bob.auth)
    assert shared_ids(by_member) == [shared]
    nosy = await client.get(f"{V1}/shared-images/{bob.uuid}", headers=carol.auth)
    assert shared_ids(nosy) == []

    meddling = await client.put(f"{members_url}/{carol.uuid}", headers=bob.auth)
    fault(meddling, 403, "forbidden")
    removed = await client.delete(f"{members_url}/{bob.uuid}", headers=alice.auth)
    assert removed.status_code == 204
    again = await client.delete(f"{members_url}/{bob.uuid}", headers=alice.auth)
    assert again.status_code == 204  # idempotent, as in Plankton
    assert await seen(bob) == {public}
    assert (await client.get(alice.file("images/shared.img"), headers=bob.auth)).status_code == 403
    assert await seen(carol) == {shared, public}
    cleared = await client.put(members_url, headers=alice.auth, json={"memberships": []})
    assert cleared.status_code == 204
    assert await seen(carol) == {public}
    for body in ({"memberships": [{"id": bob.uuid}]}, {"members": []}, [1]):
        bad = await client.put(members_url, headers=alice.auth, json=body)
        fault(bad, 400, "badRequest")
    not_json = await client.put(members_url, headers=alice.auth, content=b"{")
    fault(not_json, 400, "badRequest")


async def test_unregister_keeps_the_file(client, alice, bob):
    data = os.urandom(3000)
    await upload(client, alice, "images/keep.img", data)
    done = await register(client, alice, alice.location("images/keep.img"), is_public="true")
    image_id = done.headers["x-image-meta-id"]
    forbidden = await client.delete(f"{V1}/images/{image_id}", headers=bob.auth)
    fault(forbidden, 403, "forbidden")
    gone = await client.delete(f"{V1}/images/{image_id}", headers=alice.auth)
    assert gone.status_code == 204
    assert (await client.head(f"{V1}/images/{image_id}", headers=alice.auth)).status_code == 404
    assert await listing(client, alice) == [] and await listing(client, bob) == []
    kept = await client.get(alice.file("images/keep.img"), headers=alice.auth)
    assert kept.status_code == 200 and kept.content == data
    # No longer public: the file went back to private with the image.
    assert (await client.get(alice.file("images/keep.img"), headers=bob.auth)).status_code == 403
    missing = await client.delete(f"{V1}/images/{image_id}", headers=alice.auth)
    fault(missing, 404, "itemNotFound")


async def test_the_image_follows_its_file(client, alice):
    head = await upload(client, alice, "images/a.img", os.urandom(5000))
    done = await register(client, alice, alice.location("images/a.img"), "A")
    image_id = done.headers["x-image-meta-id"]
    assert image_id == head.headers["X-Object-UUID"]

    moved = await client.put(
        alice.file("images/b.img"), headers={**alice.auth, "X-Move-From": "/images/a.img"}
    )
    assert moved.status_code == 201
    after = meta(await client.head(f"{V1}/images/{image_id}", headers=alice.auth))
    assert after["location"] == alice.location("images/b.img")
    assert after["name"] == "A" and after["checksum"] == head.headers["X-Object-Hash"]

    copied = await client.put(
        alice.file("images/c.img"), headers={**alice.auth, "X-Copy-From": "/images/b.img"}
    )
    assert copied.status_code == 201
    copy_uuid = (await client.head(alice.file("images/c.img"), headers=alice.auth)).headers[
        "X-Object-UUID"
    ]
    found = {i["id"]: i for i in await listing(client, alice)}
    assert set(found) == {image_id, copy_uuid} and copy_uuid != image_id
    assert found[copy_uuid]["location"] == alice.location("images/c.img")
    assert found[copy_uuid]["name"] == "A"

    deleted = await client.delete(alice.file("images/b.img"), headers=alice.auth)
    assert deleted.status_code == 204
    assert [i["id"] for i in await listing(client, alice)] == [copy_uuid]
    assert (await client.head(f"{V1}/images/{image_id}", headers=alice.auth)).status_code == 404


def count_calls(engines: Engines, monkeypatch: pytest.MonkeyPatch, *names: str) -> dict[str, int]:
    """Wrap store methods on the engines the app uses, counting their calls."""
    calls = dict.fromkeys(names, 0)
    for name in names:
        original: Callable[..., Awaitable[Any]] = getattr(engines.store, name)

        async def counted(*args: Any, _name: str = name, _original=original, **kwargs: Any):
            calls[_name] += 1
            return await _original(*args, **kwargs)

        monkeypatch.setattr(engines.store, name, counted)
    return calls


async def test_registering_a_gib_reads_no_data(client, alice, engines, monkeypatch):
    """Registration is metadata on the file: a 1 GiB image costs what a 1 MiB one does,
    because neither reads a block nor the map (no timing needed to show it)."""
    await client.put(alice.file("images"), headers=alice.auth)
    block = os.urandom(BLOCK_SIZE)
    stored = await client.post(
        alice.file("images") + "?update&format=json",
        headers={**alice.auth, "Content-Type": "application/octet-stream"},
        content=block,
    )
    assert stored.status_code == 202
    hashes = [block_hash(block)] * 256
    big = await client.put(
        alice.file("images/big.img") + "?hashmap&format=json",
        headers=alice.auth,
        content=json.dumps({"bytes": 256 * BLOCK_SIZE, "hashes": hashes}).encode(),
    )
    assert big.status_code == 201, big.text
    await upload(client, alice, "images/small.img", os.urandom(1 << 20))

    calls = count_calls(engines, monkeypatch, "get_blocks", "get_map", "put_blocks", "put_map")
    done = await register(client, alice, alice.location("images/big.img"), "Big")
    assert done.status_code == 200, done.text
    assert meta(done)["size"] == str(1 << 30)
    assert meta(done)["checksum"] == merkle(hashes)
    small = await register(client, alice, alice.location("images/small.img"), "Small")
    assert small.status_code == 200
    assert calls == {"get_blocks": 0, "get_map": 0, "put_blocks": 0, "put_map": 0}


async def test_bad_registrations(client, alice, bob):
    head = await upload(client, alice, "images/ok.img", b"ok" * 1000)
    location = alice.location("images/ok.img")
    url = f"{V1}/images/"

    no_name = await client.post(url, headers={**alice.auth, "X-Image-Meta-Location": location})
    assert "Name" in fault(no_name, 400, "badRequest")
    no_location = await client.post(url, headers={**alice.auth, "X-Image-Meta-Name": "x"})
    assert "Location" in fault(no_location, 400, "badRequest")
    for extra in (
        {"size": "5"},
        {"size": "many"},
        {"size": "1" * 5000},  # past int()'s digit limit: was a 500
        {"size": str(1 << 64)},
        {"checksum": "0" * 64},
        {"disk_format": "floppy"},
        {"container_format": "crate"},
        {"id": head.headers["X-Object-UUID"]},
        {"store": "swift"},
        {"owner": bob.uuid},
        {"is_public": "maybe"},
        {"colour": "blue"},
    ):
        bad = await register(client, alice, location, **extra)
        fault(bad, 400, "badRequest")
    malformed = await register(client, alice, "swift://somewhere/else")
    fault(malformed, 400, "badRequest")
    missing = await register(client, alice, alice.location("images/nothing.img"))
    fault(missing, 404, "itemNotFound")
    no_container = await register(client, alice, alice.location("nowhere/nothing.img"))
    fault(no_container, 404, "itemNotFound")
    not_yours = await register(client, bob, location)
    fault(not_yours, 403, "forbidden")
    anonymous = await client.post(
        url, headers={"X-Image-Meta-Name": "x", "X-Image-Meta-Location": location}
    )
    fault(anonymous, 401, "unauthorized")
    assert await listing(client, alice) == []  # nothing was registered

    matching = await register(
        client, alice, location, size=str(2000), checksum=head.headers["X-Object-Hash"],
        owner=alice.uuid, store="pithos",
    )  # fmt: skip
    assert matching.status_code == 200, matching.text
    unknown = await client.head(f"{V1}/images/not-an-id", headers=alice.auth)
    assert unknown.status_code == 404
