"""Glance v2's edges past the image CRUD (in process, on SQLite and PostgreSQL): a clean
404 for an id that names no image, deactivate/reactivate, and the metadata-definitions
schemas, as owner, admin and stranger."""

from __future__ import annotations

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
