"""Glance v2 over HTTP (in process, on SQLite and PostgreSQL): the calls openstackclient,
openstacksdk and tempest make, with Glance's status codes, and the image as the same
object the object store serves."""

from __future__ import annotations

import hashlib
import os
import uuid

import httpx
import pytest

from nefos.identity.service import Identity
from nefos.server.engines import Engines

V2 = "/image/v2"
PATCH = {"Content-Type": "application/openstack-images-v2.1-json-patch"}
DATA = {"Content-Type": "application/octet-stream"}


@pytest.fixture
async def people(identity: Identity) -> dict[str, tuple[str, dict[str, str]]]:
    found = {}
    for name in ("alice", "bob", "carol"):
        user, token = await identity.create_user(f"{name}@example.org")
        found[name] = (str(user.id), {"X-Auth-Token": token})
    return found


async def create(client: httpx.AsyncClient, auth: dict, **body) -> dict:
    response = await client.post(f"{V2}/images", headers=auth, json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def patch(client: httpx.AsyncClient, auth: dict, image_id: str, ops: list, **headers):
    return await client.patch(
        f"{V2}/images/{image_id}", headers={**auth, **PATCH, **headers}, json=ops
    )


async def listed(client: httpx.AsyncClient, auth: dict, **params) -> list[str]:
    response = await client.get(f"{V2}/images", headers=auth, params=params)
    assert response.status_code == 200, response.text
    return [image["name"] for image in response.json()["images"]]


async def test_create_upload_download_is_one_object_in_the_object_store(client, people):
    owner, auth = people["alice"]
    created = await client.post(
        f"{V2}/images",
        headers=auth,
        json={
            "name": "debian",
            "disk_format": "raw",
            "container_format": "bare",
            "tags": ["base"],
            "min_ram": 512,
            "os_distro": "debian",
        },
    )
    assert created.status_code == 201
    image = created.json()
    image_id = image["id"]
    assert created.headers["Location"].endswith(f"/image/v2/images/{image_id}")
    assert image["status"] == "queued"
    assert image["size"] is None and image["checksum"] is None
    assert image["visibility"] == "shared"  # Glance's default since Ocata
    assert image["owner"] == owner
    assert image["os_distro"] == "debian"  # custom properties sit at the top level
    assert image["tags"] == ["base"] and image["min_ram"] == 512
    assert image["self"] == f"/v2/images/{image_id}"
    assert image["file"] == f"/v2/images/{image_id}/file"
    assert image["schema"] == "/v2/schemas/image"
    assert image["created_at"].endswith("Z") and "." not in image["created_at"]
    assert (await client.get(f"{V2}/images/{image_id}/file", headers=auth)).status_code == 204

    data = os.urandom(5 * 1024 * 1024 + 123)  # more than one 4 MiB block
    wrong_type = await client.put(
        f"{V2}/images/{image_id}/file",
        headers={**auth, "Content-Type": "application/json"},
        content=data,
    )
    assert wrong_type.status_code == 415
    uploaded = await client.put(
        f"{V2}/images/{image_id}/file", headers={**auth, **DATA}, content=data
    )
    assert uploaded.status_code == 204
    shown = (await client.get(f"{V2}/images/{image_id}", headers=auth)).json()
    md5 = hashlib.md5(data).hexdigest()
    assert shown["status"] == "active"
    assert shown["size"] == len(data)
    assert shown["checksum"] == md5
    assert shown["os_hash_algo"] is None and shown["os_hash_value"] is None

    downloaded = await client.get(f"{V2}/images/{image_id}/file", headers=auth)
    assert downloaded.status_code == 200
    assert downloaded.content == data
    assert downloaded.headers["Content-MD5"] == md5
    assert downloaded.headers["Content-Type"] == "application/octet-stream"
    part = await client.get(
        f"{V2}/images/{image_id}/file", headers={**auth, "Range": "bytes=10-19"}
    )
    assert part.status_code == 206
    assert part.content == data[10:20]
    assert part.headers["Content-Range"] == f"bytes 10-19/{len(data)}"

    again = await client.put(f"{V2}/images/{image_id}/file", headers={**auth, **DATA}, content=b"x")
    assert again.status_code == 409  # only a queued image takes data

    # One object, two views: the data is the file images/<id> in the owner's account.
    stored = await client.get(f"/object-store/v1/{owner}/images/{image_id}", headers=auth)
    assert stored.status_code == 200
    assert stored.content == data
    assert stored.headers["X-Object-UUID"] == image_id


async def test_a_registered_file_is_a_v2_image(client, people, engines: Engines):
    """Plankton's registration (the v1 path) and Glance v2 see the same image."""
    owner, auth = people["alice"]
    base = f"/object-store/v1/{owner}"
    assert (await client.put(f"{base}/disks", headers=auth)).status_code == 201
    data = b"disk image bytes" * 1000
    put = await client.put(f"{base}/disks/d.img", headers=auth, content=data)
    assert put.status_code == 201
    registered = await engines.images.register(
        owner, f"pithos://{owner}/disks/d.img", "registered", properties={"OS": "debian"}
    )
    shown = (await client.get(f"{V2}/images/{registered.id}", headers=auth)).json()
    assert shown["name"] == "registered"
    assert shown["size"] == len(data)
    assert shown["checksum"] == hashlib.md5(data).hexdigest()
    assert shown["OS"] == "debian"
    assert shown["disk_format"] == "diskdump"
    downloaded = await client.get(f"{V2}/images/{registered.id}/file", headers=auth)
    assert downloaded.content == data
    assert "registered" in await listed(client, auth)


async def test_upload_over_quota_is_413(client, people, engines: Engines):
    owner, auth = people["alice"]
    await engines.quotas.set_base_quota(uuid.UUID(owner), "pithos.diskspace", 1000)
    image = await create(client, auth, name="big", disk_format="raw", container_format="bare")
    response = await client.put(
        f"{V2}/images/{image['id']}/file", headers={**auth, **DATA}, content=b"x" * 2000
    )
    assert response.status_code == 413
    shown = (await client.get(f"{V2}/images/{image['id']}", headers=auth)).json()
    assert shown["status"] == "queued"


async def test_list_filters_sorting_and_pagination(client, people):
    _, auth = people["alice"]
    sizes = {"a": 10, "b": 30, "c": 20, "d": 40}
    ids = {}
    for name, size in sizes.items():
        image = await create(
            client,
            auth,
            name=name,
            disk_format="qcow2" if name in "ab" else "raw",
            container_format="bare",
            tags=["even"] if size % 20 == 0 else ["odd"],
            flavor="small" if name == "a" else "big",
        )
        ids[name] = image["id"]
        response = await client.put(
            f"{V2}/images/{image['id']}/file", headers={**auth, **DATA}, content=b"x" * size
        )
        assert response.status_code == 204
    await create(client, auth, name="e", disk_format="raw", container_format="ovf")  # queued

    assert await listed(client, auth) == ["e", "d", "c", "b", "a"]  # newest first
    assert await listed(client, auth, sort_key="name", sort_dir="asc") == list("abcde")
    assert await listed(client, auth, sort="size:desc,name:asc") == ["d", "b", "c", "a", "e"]
    assert await listed(client, auth, name="c") == ["c"]
    assert sorted(await listed(client, auth, name="in:a,d")) == ["a", "d"]
    assert sorted(await listed(client, auth, disk_format="qcow2")) == ["a", "b"]
    assert await listed(client, auth, container_format="ovf") == ["e"]
    assert await listed(client, auth, status="queued") == ["e"]
    assert sorted(await listed(client, auth, tag="even")) == ["c", "d"]
    assert sorted(await listed(client, auth, size_min="20", size_max="30")) == ["b", "c"]
    assert await listed(client, auth, flavor="small") == ["a"]
    assert await listed(client, auth, id=ids["b"]) == ["b"]

    seen: list[str] = []
    url = f"{V2}/images?limit=2&sort_key=name&sort_dir=asc"
    pages = 0
    while url:
        page = (await client.get(url, headers=auth)).json()
        assert page["first"] == "/v2/images?limit=2&sort_key=name&sort_dir=asc"
        assert page["schema"] == "/v2/schemas/images"
        seen += [image["name"] for image in page["images"]]
        pages += 1
        url = f"{V2}{page['next'][len('/v2') :]}" if "next" in page else ""
    assert seen == list("abcde")
    assert pages == 3  # 2 + 2 + 1: the last page is not full, so no next link
    after_b = await listed(client, auth, marker=ids["b"], sort_key="name", sort_dir="asc")
    assert after_b == ["c", "d", "e"]

    for params in (
        {"marker": str(uuid.uuid4())},
        {"limit": "x"},
        {"limit": "-1"},
        {"sort_key": "owner"},
        {"sort_dir": "up"},
        {"sort": "name:asc", "sort_key": "name"},
        {"visibility": "everyone"},
        {"member_status": "maybe"},
        {"size_min": "big"},
        {"name": "like:x"},
    ):
        response = await client.get(f"{V2}/images", headers=auth, params=params)
        assert response.status_code == 400, params


async def test_patch_operations(client, people):
    _, auth = people["alice"]
    image = await create(
        client, auth, name="old", disk_format="raw", container_format="bare", keep="yes"
    )
    image_id = image["id"]
    response = await patch(
        client,
        auth,
        image_id,
        [
            {"op": "replace", "path": "/name", "value": "new"},
            {"op": "add", "path": "/os_distro", "value": "debian"},
            {"op": "replace", "path": "/min_disk", "value": 2},
            {"op": "replace", "path": "/tags", "value": ["x", "y"]},
            {"op": "replace", "path": "/protected", "value": True},
            {"op": "replace", "path": "/disk_format", "value": "qcow2"},
            {"op": "remove", "path": "/keep"},
        ],
    )
    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated["name"] == "new"
    assert updated["os_distro"] == "debian"
    assert updated["min_disk"] == 2
    assert updated["tags"] == ["x", "y"]
    assert updated["protected"] is True
    assert updated["disk_format"] == "qcow2"
    assert "keep" not in updated
    assert (await client.get(f"{V2}/images/{image_id}", headers=auth)).json() == updated

    # The v2.0 (draft 4) media type: {"replace": path}; an add of something present is 409.
    old_style = await patch(
        client,
        auth,
        image_id,
        [{"replace": "/os_distro", "value": "ubuntu"}],
        **{"Content-Type": "application/openstack-images-v2.0-json-patch"},
    )
    assert old_style.status_code == 200
    assert old_style.json()["os_distro"] == "ubuntu"
    present = await patch(
        client,
        auth,
        image_id,
        [{"add": "/os_distro", "value": "x"}],
        **{"Content-Type": "application/openstack-images-v2.0-json-patch"},
    )
    assert present.status_code == 409

    wrong_type = await patch(client, auth, image_id, [], **{"Content-Type": "application/json"})
    assert wrong_type.status_code == 415
    assert "openstack-images-v2.1-json-patch" in wrong_type.headers["Accept-Patch"]
    for path in ("/id", "/status", "/size", "/checksum", "/created_at", "/self", "/owner"):
        response = await patch(
            client, auth, image_id, [{"op": "replace", "path": path, "value": "x"}]
        )
        assert response.status_code == 403, path
    for ops, status in (
        ([{"op": "remove", "path": "/name"}], 403),  # attributes may not be removed
        ([{"op": "remove", "path": "/nothing"}], 409),
        ([{"op": "replace", "path": "/nothing", "value": "x"}], 409),
        ([{"op": "replace", "path": "/visibility", "value": "everyone"}], 400),
        ([{"op": "replace", "path": "/min_ram", "value": "lots"}], 400),
        ([{"op": "replace", "path": "/disk_format", "value": "floppy"}], 400),
        ([{"op": "add", "path": "/prop", "value": 5}], 400),  # properties are strings
        ([{"op": "move", "path": "/name", "from": "/x"}], 400),
        ([{"op": "replace", "path": "name", "value": "x"}], 400),
        ([{"op": "replace", "path": "/a/b", "value": "x"}], 400),
        ([{"op": "replace", "path": "/name"}], 400),
        ({"op": "replace"}, 400),
    ):
        response = await patch(client, auth, image_id, ops)
        assert response.status_code == status, (ops, response.text)
    malformed = await client.patch(
        f"{V2}/images/{image_id}", headers={**auth, **PATCH}, content=b"[{"
    )
    assert malformed.status_code == 400
    shown = (await client.get(f"{V2}/images/{image_id}", headers=auth)).json()
    assert shown == updated | {"os_distro": "ubuntu", "updated_at": shown["updated_at"]}


async def test_visibility_between_users(client, people):
    alice, a_auth = people["alice"]
    bob, b_auth = people["bob"]
    _, c_auth = people["carol"]
    private = await create(client, a_auth, name="private", visibility="private")
    shared = await create(client, a_auth, name="shared", visibility="shared")
    public = await create(client, a_auth, name="public", visibility="public")
    community = await create(client, a_auth, name="community", visibility="community")

    assert sorted(await listed(client, a_auth)) == ["community", "private", "public", "shared"]
    # A private image is invisible to others; a shared one only to members.
    for auth in (b_auth, c_auth):
        assert await listed(client, auth) == ["public"]
        for image in (private, shared):
            response = await client.get(f"{V2}/images/{image['id']}", headers=auth)
            assert response.status_code == 404
            assert response.headers["content-type"].startswith("text/plain")
            assert response.text.startswith("404 Not Found\n\n")
        assert (await client.get(f"{V2}/images/{public['id']}", headers=auth)).status_code == 200
        # Community images: readable by id, listed only when asked for.
        assert (await client.get(f"{V2}/images/{community['id']}", headers=auth)).status_code == 200
        assert await listed(client, auth, visibility="community") == ["community"]

    added = await client.post(
        f"{V2}/images/{shared['id']}/members", headers=a_auth, json={"member": bob}
    )
    assert added.status_code == 200
    # Pending: bob may read it by id, but it is not in his default listing (Glance).
    assert (await client.get(f"{V2}/images/{shared['id']}", headers=b_auth)).status_code == 200
    assert await listed(client, b_auth) == ["public"]
    assert await listed(client, b_auth, visibility="shared", member_status="pending") == ["shared"]
    assert await listed(client, b_auth, visibility="shared") == []
    accepted = await client.put(
        f"{V2}/images/{shared['id']}/members/{bob}", headers=b_auth, json={"status": "accepted"}
    )
    assert accepted.status_code == 200
    assert sorted(await listed(client, b_auth)) == ["public", "shared"]
    assert await listed(client, b_auth, visibility="shared") == ["shared"]
    assert await listed(client, b_auth, visibility="private") == []
    assert await listed(client, c_auth) == ["public"]
    assert (await client.get(f"{V2}/images/{shared['id']}", headers=c_auth)).status_code == 404
    assert sorted(await listed(client, c_auth, visibility="all")) == ["community", "public"]

    # Making the private image public shows it to everyone.
    await patch(
        client, a_auth, private["id"], [{"op": "replace", "path": "/visibility", "value": "public"}]
    )
    assert sorted(await listed(client, c_auth)) == ["private", "public"]
    assert await listed(client, c_auth, owner=alice, visibility="public") == ["public", "private"]


async def test_members_lifecycle(client, people):
    alice, a_auth = people["alice"]
    bob, b_auth = people["bob"]
    carol, c_auth = people["carol"]
    private = await create(client, a_auth, name="p", visibility="private")
    refused = await client.post(
        f"{V2}/images/{private['id']}/members", headers=a_auth, json={"member": bob}
    )
    assert refused.status_code == 403
    assert "Only shared images have members" in refused.text
    assert (
        await client.get(f"{V2}/images/{private['id']}/members", headers=a_auth)
    ).status_code == 403

    image = await create(client, a_auth, name="s")
    members_url = f"{V2}/images/{image['id']}/members"
    assert (await client.get(members_url, headers=a_auth)).json() == {
        "members": [],
        "schema": "/v2/schemas/members",
    }
    added = (await client.post(members_url, headers=a_auth, json={"member": bob})).json()
    assert added["member_id"] == bob
    assert added["image_id"] == image["id"]
    assert added["status"] == "pending"
    assert added["schema"] == "/v2/schemas/member"
    assert {"created_at", "updated_at"} <= set(added)
    assert (await client.post(members_url, headers=a_auth, json={"member": bob})).status_code == 409
    assert (await client.post(members_url, headers=a_auth, json={})).status_code == 400
    assert (
        await client.post(members_url, headers=a_auth, json={"member": carol})
    ).status_code == 200

    owner_view = (await client.get(members_url, headers=a_auth)).json()["members"]
    assert sorted(m["member_id"] for m in owner_view) == sorted([bob, carol])
    bob_view = (await client.get(members_url, headers=b_auth)).json()["members"]
    assert [m["member_id"] for m in bob_view] == [bob]  # a member sees only itself
    shown = await client.get(f"{members_url}/{bob}", headers=b_auth)
    assert shown.status_code == 200 and shown.json()["status"] == "pending"
    assert (await client.get(f"{members_url}/{carol}", headers=b_auth)).status_code == 404
    # Members may not add members; only the member may set its own status.
    assert (
        await client.post(members_url, headers=b_auth, json={"member": alice})
    ).status_code == 403
    by_owner = await client.put(f"{members_url}/{bob}", headers=a_auth, json={"status": "accepted"})
    assert by_owner.status_code == 403
    bad = await client.put(f"{members_url}/{bob}", headers=b_auth, json={"status": "maybe"})
    assert bad.status_code == 400
    assert (await client.put(f"{members_url}/{bob}", headers=b_auth, json={})).status_code == 400
    rejected = await client.put(f"{members_url}/{bob}", headers=b_auth, json={"status": "rejected"})
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    assert await listed(client, b_auth, visibility="shared", member_status="rejected") == ["s"]
    # Members cannot change or delete the image, nor remove members.
    rename = await patch(
        client, b_auth, image["id"], [{"op": "replace", "path": "/name", "value": "x"}]
    )
    assert rename.status_code == 403
    assert (await client.delete(f"{V2}/images/{image['id']}", headers=b_auth)).status_code == 403
    assert (await client.delete(f"{members_url}/{bob}", headers=b_auth)).status_code == 403

    assert (await client.delete(f"{members_url}/{bob}", headers=a_auth)).status_code == 204
    assert (await client.delete(f"{members_url}/{bob}", headers=a_auth)).status_code == 404
    assert (await client.get(f"{V2}/images/{image['id']}", headers=b_auth)).status_code == 404
    assert (await client.get(f"{V2}/images/{image['id']}", headers=c_auth)).status_code == 200


async def test_tags(client, people):
    _, auth = people["alice"]
    _, b_auth = people["bob"]
    image = await create(client, auth, name="t", visibility="public")
    tags_url = f"{V2}/images/{image['id']}/tags"
    assert (await client.put(f"{tags_url}/one", headers=auth)).status_code == 204
    assert (await client.put(f"{tags_url}/two", headers=auth)).status_code == 204
    assert (await client.put(f"{tags_url}/one", headers=auth)).status_code == 204
    shown = (await client.get(f"{V2}/images/{image['id']}", headers=auth)).json()
    assert shown["tags"] == ["one", "two"]
    assert (await client.delete(f"{tags_url}/one", headers=auth)).status_code == 204
    assert (await client.delete(f"{tags_url}/one", headers=auth)).status_code == 404
    assert (await client.put(f"{tags_url}/mine", headers=b_auth)).status_code == 403
    shown = (await client.get(f"{V2}/images/{image['id']}", headers=auth)).json()
    assert shown["tags"] == ["two"]


async def test_protected_image_is_not_deleted(client, people):
    owner, auth = people["alice"]
    image = await create(client, auth, name="keep", protected=True)
    await client.put(f"{V2}/images/{image['id']}/file", headers={**auth, **DATA}, content=b"data")
    response = await client.delete(f"{V2}/images/{image['id']}", headers=auth)
    assert response.status_code == 403
    assert (await client.get(f"{V2}/images/{image['id']}", headers=auth)).status_code == 200
    await patch(
        client, auth, image["id"], [{"op": "replace", "path": "/protected", "value": False}]
    )
    assert (await client.delete(f"{V2}/images/{image['id']}", headers=auth)).status_code == 204
    assert (await client.get(f"{V2}/images/{image['id']}", headers=auth)).status_code == 404
    assert (await client.delete(f"{V2}/images/{image['id']}", headers=auth)).status_code == 404
    # The file the image API made goes with it.
    gone = await client.get(f"/object-store/v1/{owner}/images/{image['id']}", headers=auth)
    assert gone.status_code == 404


async def test_bad_input(client, people):
    _, auth = people["alice"]
    _, b_auth = people["bob"]
    for body, status in (
        ({"name": "x", "disk_format": "floppy"}, 400),
        ({"name": "x", "container_format": "box"}, 400),
        ({"name": "x", "visibility": "everyone"}, 400),
        ({"name": "x", "min_ram": "lots"}, 400),
        ({"name": "x", "protected": "yes"}, 400),
        ({"name": "x", "tags": "one"}, 400),
        ({"name": "x", "os_distro": 7}, 400),
        ({"name": "x", "id": "not-a-uuid"}, 400),
        ({"name": "x", "status": "active"}, 403),
        ({"name": "x", "size": 10}, 403),
        ({"name": "x", "checksum": "abc"}, 403),
        ({"name": "x", "self": "/v2/images/x"}, 403),
        ({"name": "x", "owner": str(uuid.uuid4())}, 403),
        ({"name": "x", "deleted": "true"}, 403),
        (["name"], 400),
    ):
        response = await client.post(f"{V2}/images", headers=auth, json=body)
        assert response.status_code == status, (body, response.text)
    malformed = await client.post(
        f"{V2}/images", headers={**auth, "Content-Type": "application/json"}, content=b"{"
    )
    assert malformed.status_code == 400
    assert malformed.text.startswith("400 Bad Request\n\n")

    chosen = str(uuid.uuid4())
    assert (await create(client, auth, id=chosen, name="mine"))["id"] == chosen
    duplicate = await client.post(f"{V2}/images", headers=auth, json={"id": chosen})
    assert duplicate.status_code == 409

    assert (await client.get(f"{V2}/images/{uuid.uuid4()}", headers=auth)).status_code == 404
    assert (await client.get(f"{V2}/images/nonsense", headers=auth)).status_code == 404
    private = await create(client, auth, name="secret", visibility="private")
    for method in ("GET", "DELETE"):
        response = await client.request(method, f"{V2}/images/{private['id']}", headers=b_auth)
        assert response.status_code == 404, method
    upload = await client.put(
        f"{V2}/images/{private['id']}/file", headers={**b_auth, **DATA}, content=b"x"
    )
    assert upload.status_code == 404
    anonymous = await client.get(f"{V2}/images")
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"].startswith("Keystone")
    assert anonymous.text.startswith("401 Unauthorized\n\n")


async def test_schemas_and_discovery(client, people):
    _, auth = people["alice"]
    image = (await client.get(f"{V2}/schemas/image", headers=auth)).json()
    assert image["name"] == "image"
    assert image["additionalProperties"] == {"type": "string"}
    assert "raw" in image["properties"]["disk_format"]["enum"]
    assert image["properties"]["status"]["readOnly"] is True
    images = (await client.get(f"{V2}/schemas/images", headers=auth)).json()
    assert images["properties"]["images"]["items"]["name"] == "image"
    assert {link["rel"] for link in images["links"]} == {"first", "next", "describedby"}
    member = (await client.get(f"{V2}/schemas/member", headers=auth)).json()
    assert member["properties"]["status"]["enum"] == ["pending", "accepted", "rejected"]
    members = (await client.get(f"{V2}/schemas/members", headers=auth)).json()
    assert members["properties"]["members"]["items"]["name"] == "member"
    assert (await client.get(f"{V2}/schemas/task", headers=auth)).status_code == 404
    info = (await client.get(f"{V2}/info/import", headers=auth)).json()
    assert info["import-methods"]["value"] == []
    assert (await client.get(f"{V2}/info/stores", headers=auth)).status_code == 404
    # The version document at the root is untouched by the image routes.
    root = await client.get(V2)
    assert root.status_code == 300
    assert root.json()["versions"][0]["id"] == "v2.9"


async def test_description_and_hidden_images(client, people, engines: Engines):
    owner, auth = people["alice"]
    image = await create(client, auth, name="h", description="A test image", os_hidden=True)
    assert image["description"] == "A test image"
    assert image["os_hidden"] is True
    # Plankton keeps the description as an image field, which v1 shows as such.
    assert (await engines.images.get(owner, image["id"])).description == "A test image"
    assert await listed(client, auth) == []  # hidden images stay out of default listings
    assert await listed(client, auth, os_hidden="True") == ["h"]
    ops = [
        {"op": "replace", "path": "/description", "value": "Better"},
        {"op": "replace", "path": "/os_hidden", "value": False},
    ]
    updated = (await patch(client, auth, image["id"], ops)).json()
    assert updated["description"] == "Better" and updated["os_hidden"] is False
    assert await listed(client, auth) == ["h"]
    removed = await patch(client, auth, image["id"], [{"op": "remove", "path": "/description"}])
    assert "description" not in removed.json()
    again = await patch(client, auth, image["id"], [{"op": "remove", "path": "/description"}])
    assert again.status_code == 409


async def test_numbers_are_ascii_and_in_range(client, people):
    """A limit in Unicode digits is no number (``int()`` reads ``\\u0661`` as 1), and a
    count past Glance's Integer column is refused before it is written: an integer past
    64 bits was stored, then answered 500, as no JSON encoder here writes it."""
    _, auth = people["alice"]
    image = await create(client, auth, name="n")
    for params in ({"limit": "\u0661"}, {"limit": "1" * 5000}, {"size_min": "\u00b2"}):
        response = await client.get(f"{V2}/images", headers=auth, params=params)
        assert response.status_code == 400, (params, response.text)
    for key in ("min_disk", "min_ram"):
        for value in (1 << 31, 1 << 63, 1 << 70):
            response = await client.post(f"{V2}/images", headers=auth, json={key: value})
            assert response.status_code == 400, (key, value, response.text)
            replaced = await patch(
                client, auth, image["id"], [{"op": "replace", "path": f"/{key}", "value": value}]
            )
            assert replaced.status_code == 400, (key, value, replaced.text)
    listed = (await client.get(f"{V2}/images", headers=auth)).json()["images"]
    assert [(i["id"], i["min_disk"], i["min_ram"]) for i in listed] == [(image["id"], 0, 0)]
