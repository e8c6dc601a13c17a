"""Glance v2's edges past the image CRUD (in process, on SQLite and PostgreSQL): a clean
404 for an id that names no image, deactivate/reactivate, and the metadata-definitions
schemas, as owner, admin and stranger."""

from __future__ import annotations

import uuid

import httpx
import pytest

from nefos.identity.service import Identity

V1 = "/image/v1"
V2 = "/image/v2"
PATCH = {"Content-Type": "application/openstack-images-v2.1-json-patch"}
DATA = {"Content-Type": "application/octet-stream"}

# Not UUIDs: text, a UUID in Arabic-Indic digits (uuid.UUID reads them as hex), a
# superscript, an over-long id, a percent-escaped byte that is no UTF-8.
MALFORMED = (
    "not-a-uuid",
    "\u0661" * 32,
    "\u00b2",
    "a" * 5000,
    "%ff",
    "12345678-1234-1234-1234-12345678901\u0662",
)


@pytest.fixture
async def people(identity: Identity) -> dict[str, tuple[str, dict[str, str]]]:
    found = {}
    for name, admin in (("owner", False), ("stranger", False), ("admin", True)):
        user, token = await identity.create_user(f"{name}@example.org", admin=admin)
        found[name] = (str(user.id), {"X-Auth-Token": token})
    return found


async def active_image(client: httpx.AsyncClient, auth: dict, **body) -> str:
    created = await client.post(
        f"{V2}/images",
        headers=auth,
        json={"name": "img", "disk_format": "raw", "container_format": "bare", **body},
    )
    assert created.status_code == 201, created.text
    image_id = created.json()["id"]
    uploaded = await client.put(
        f"{V2}/images/{image_id}/file", headers={**auth, **DATA}, content=b"disk" * 100
    )
    assert uploaded.status_code == 204, uploaded.text
    return image_id


def glance_404(response: httpx.Response) -> None:
    assert response.status_code == 404, (response.request.url, response.text)
    assert response.text.startswith("404 Not Found\n\n"), response.text


def v2_calls(image_id: str) -> list[tuple[str, str, dict, bytes | None]]:
    base = f"{V2}/images/{image_id}"
    json_body = {"Content-Type": "application/json"}
    return [
        ("GET", base, {}, None),
        ("DELETE", base, {}, None),
        ("PATCH", base, PATCH, b'[{"op": "replace", "path": "/name", "value": "x"}]'),
        ("PATCH", base, PATCH, b"[{"),
        ("PUT", base + "/file", DATA, b"data"),
        ("PUT", base + "/file", {"Content-Type": "text/plain"}, b"data"),
        ("GET", base + "/file", {}, None),
        ("PUT", base + "/tags/t", {}, None),
        ("DELETE", base + "/tags/t", {}, None),
        ("GET", base + "/members", {}, None),
        ("POST", base + "/members", json_body, b'{"member": "someone"}'),
        ("POST", base + "/members", json_body, b"{"),
        ("GET", base + "/members/someone", {}, None),
        ("PUT", base + "/members/someone", json_body, b'{"status": "accepted"}'),
        ("DELETE", base + "/members/someone", {}, None),
        ("POST", base + "/actions/deactivate", {}, None),
        ("POST", base + "/actions/reactivate", {}, None),
    ]


async def test_a_malformed_image_id_is_404_on_every_v2_route(client, people):
    for who in ("owner", "admin"):
        _, auth = people[who]
        for image_id in MALFORMED:
            for method, url, headers, body in v2_calls(image_id):
                response = await client.request(
                    method, url, headers={**auth, **headers}, content=body
                )
                glance_404(response)


async def test_a_malformed_image_id_still_needs_a_token(client):
    for method, url, headers, body in v2_calls("not-a-uuid"):
        response = await client.request(method, url, headers=headers, content=body)
        assert response.status_code == 401, (url, response.text)


async def test_a_malformed_image_id_is_404_on_every_v1_route(client, people):
    _, auth = people["owner"]
    for image_id in MALFORMED:
        base = f"{V1}/images/{image_id}"
        for method, url in (
            ("HEAD", base),
            ("GET", base),
            ("PUT", base),
            ("DELETE", base),
            ("GET", base + "/members"),
            ("PUT", base + "/members"),
            ("PUT", base + "/members/someone"),
            ("DELETE", base + "/members/someone"),
        ):
            response = await client.request(method, url, headers=auth)
            assert response.status_code == 404, (method, url, response.text)
            if method != "HEAD":
                assert response.json()["itemNotFound"]["code"] == 404


async def act(client: httpx.AsyncClient, auth: dict, image_id: str, action: str):
    return await client.post(f"{V2}/images/{image_id}/actions/{action}", headers=auth)


async def status(client: httpx.AsyncClient, auth: dict, image_id: str) -> str:
    shown = await client.get(f"{V2}/images/{image_id}", headers=auth)
    assert shown.status_code == 200, shown.text
    return shown.json()["status"]


async def test_only_an_admin_deactivates_and_then_only_an_admin_downloads(client, people):
    _, owner = people["owner"]
    _, stranger = people["stranger"]
    _, admin = people["admin"]
    image_id = await active_image(client, owner, visibility="public")
    for auth in (owner, stranger):
        for action in ("deactivate", "reactivate"):
            refused = await act(client, auth, image_id, action)
            assert refused.status_code == 403, refused.text
            assert refused.text.startswith("403 Forbidden\n\n")
    assert await status(client, owner, image_id) == "active"

    for _ in range(2):  # a second deactivate is no error
        held = await act(client, admin, image_id, "deactivate")
        assert held.status_code == 204 and held.content == b""
    for auth in (owner, stranger, admin):
        assert await status(client, auth, image_id) == "deactivated"
    for auth in (owner, stranger):
        download = await client.get(f"{V2}/images/{image_id}/file", headers=auth)
        assert download.status_code == 403, download.text
        assert "deactivated" in download.text
    download = await client.get(f"{V2}/images/{image_id}/file", headers=admin)
    assert download.status_code == 200 and download.content == b"disk" * 100
    listed = await client.get(f"{V2}/images", headers=owner, params={"status": "deactivated"})
    assert [i["id"] for i in listed.json()["images"]] == [image_id]
    # Metadata stays the owner's to change; the status does not.
    renamed = await client.patch(
        f"{V2}/images/{image_id}",
        headers={**owner, **PATCH},
        json=[{"op": "replace", "path": "/name", "value": "renamed"}],
    )
    assert renamed.status_code == 200 and renamed.json()["status"] == "deactivated"
    forced = await client.patch(
        f"{V2}/images/{image_id}",
        headers={**owner, **PATCH},
        json=[{"op": "replace", "path": "/status", "value": "active"}],
    )
    assert forced.status_code == 403
    assert await status(client, owner, image_id) == "deactivated"

    for _ in range(2):
        released = await act(client, admin, image_id, "reactivate")
        assert released.status_code == 204
    assert await status(client, owner, image_id) == "active"
    download = await client.get(f"{V2}/images/{image_id}/file", headers=stranger)
    assert download.status_code == 200 and download.content == b"disk" * 100


async def test_an_admin_holds_an_image_it_cannot_see(client, people):
    """A private image is hidden from the admin's listing, not from its hold."""
    _, owner = people["owner"]
    _, admin = people["admin"]
    image_id = await active_image(client, owner, visibility="private")
    assert (await act(client, admin, image_id, "deactivate")).status_code == 204
    assert await status(client, owner, image_id) == "deactivated"
    download = await client.get(f"{V2}/images/{image_id}/file", headers=owner)
    assert download.status_code == 403


async def test_deactivate_only_from_active_or_deactivated(client, people):
    _, owner = people["owner"]
    _, admin = people["admin"]
    queued = await client.post(f"{V2}/images", headers=owner, json={"name": "empty"})
    image_id = queued.json()["id"]
    for action in ("deactivate", "reactivate"):
        refused = await act(client, admin, image_id, action)
        assert refused.status_code == 409, refused.text
        assert refused.text.startswith("409 Conflict\n\n")
    assert await status(client, owner, image_id) == "queued"
    for action in ("deactivate", "reactivate"):
        glance_404(await act(client, admin, str(uuid.uuid4()), action))


async def test_registering_the_file_anew_keeps_the_hold(client, people):
    """Plankton's register rewrites an image's fields; the owner may not use it to
    lift an admin's hold."""
    owner_id, owner = people["owner"]
    _, admin = people["admin"]
    image_id = await active_image(client, owner)
    assert (await act(client, admin, image_id, "deactivate")).status_code == 204
    again = await client.post(
        f"{V1}/images/",
        headers={
            **owner,
            "X-Image-Meta-Name": "again",
            "X-Image-Meta-Location": f"pithos://{owner_id}/images/{image_id}",
        },
    )
    assert again.status_code == 200, again.text
    assert await status(client, owner, image_id) == "deactivated"


METADEF_SCHEMAS = {
    "namespace": ("namespace", ["namespace"]),
    "resource_type": ("resource_type_association", ["name"]),
    "object": ("object", ["name"]),
    "tag": ("tag", ["name"]),
    "property": ("property", ["title", "type"]),
}
METADEF_COLLECTIONS = {
    "namespaces": ("namespaces", "namespace"),
    "resource_types": ("resource_type_associations", "resource_type"),
    "objects": ("objects", "object"),
    "tags": ("tags", "tag"),
}


async def test_metadefs_schemas_for_every_user(client, people):
    for who in ("owner", "stranger", "admin"):
        _, auth = people[who]
        found = {}
        for name in [*METADEF_SCHEMAS, *METADEF_COLLECTIONS, "properties"]:
            response = await client.get(f"{V2}/schemas/metadefs/{name}", headers=auth)
            assert response.status_code == 200, (name, response.text)
            assert response.headers["content-type"].startswith("application/json")
            found[name] = response.json()
        for name, (title, required) in METADEF_SCHEMAS.items():
            assert found[name]["name"] == title
            assert found[name]["required"] == required
            assert set(required) <= set(found[name]["properties"])
        for name, (key, item) in METADEF_COLLECTIONS.items():
            assert found[name]["name"] == key
            listed = found[name]["properties"]
            assert listed[key] == {"type": "array", "items": found[item]}
            assert {"first", "next", "schema"} <= set(listed)
        namespace = found["namespace"]["properties"]
        assert namespace["visibility"]["enum"] == ["public", "private"]
        assert namespace["namespace"]["maxLength"] == 80
        assert namespace["objects"]["items"] == found["object"]["properties"]
        defined = found["properties"]["properties"]["properties"]["additionalProperties"]
        assert {k: v for k, v in found["property"].items() if k != "name"} == defined
        assert "integer" in defined["properties"]["type"]["enum"]


async def test_metadefs_catalog_is_empty_and_needs_a_token(client, people):
    _, auth = people["stranger"]
    listed = await client.get(f"{V2}/metadefs/namespaces", headers=auth)
    assert listed.status_code == 200
    assert listed.json() == {
        "namespaces": [],
        "schema": "/v2/schemas/metadefs/namespaces",
        "first": "/v2/metadefs/namespaces",
    }
    types = await client.get(f"{V2}/metadefs/resource_types", headers=auth)
    assert types.json() == {"resource_types": []}
    glance_404(await client.get(f"{V2}/metadefs/namespaces/OS::Compute::Quota", headers=auth))
    glance_404(await client.get(f"{V2}/schemas/metadefs/nothing", headers=auth))
    for url in ("/schemas/metadefs/namespace", "/metadefs/namespaces"):
        assert (await client.get(V2 + url)).status_code == 401
