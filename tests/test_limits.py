"""Request limits come from settings (issue 19, move 5): lowered here, each API refuses
past the setting, and what it publishes is the number it enforces."""

from __future__ import annotations

import uuid

import httpx
import pytest

from nefos.core.config import Settings
from nefos.server.engines import Engines

PATCH = {"Content-Type": "application/openstack-images-v2.1-json-patch"}
V1 = "/cyclades/image/v1.0"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.limits.image_properties = 3
    settings.limits.quota_provisions = 2
    settings.limits.quota_serials = 2
    settings.limits.user_catalog_names = 2
    return settings


async def person(engines: Engines, admin: bool = False) -> tuple[str, dict[str, str]]:
    user, token = await engines.identity.create_user(
        f"limits-{uuid.uuid4().hex[:8]}@example.org", admin=admin
    )
    return str(user.id), {"X-Auth-Token": token}


async def test_image_properties_are_held_to_the_setting_and_shown_by_compute(
    client: httpx.AsyncClient, engines: Engines
):
    user, auth = await person(engines)
    limits = await client.get("/compute/v2.1/limits", headers=auth)
    assert limits.json()["limits"]["absolute"]["maxImageMeta"] == 3

    # Glance v2: a create past the quota is 413 and makes nothing.
    many = {f"p{n}": "x" for n in range(4)}
    refused = await client.post("/image/v2/images", json={"name": "big", **many}, headers=auth)
    assert refused.status_code == 413, refused.text
    listed = (await client.get("/image/v2/images", headers=auth)).json()["images"]
    assert listed == []
    made = await client.post(
        "/image/v2/images", json={"name": "ok", "a": "1", "b": "2", "c": "3"}, headers=auth
    )
    assert made.status_code == 201, made.text
    image_id = made.json()["id"]
    add = [{"op": "add", "path": "/d", "value": "4"}]
    over = await client.patch(f"/image/v2/images/{image_id}", json=add, headers={**auth, **PATCH})
    assert over.status_code == 413
    shown = (await client.get(f"/image/v2/images/{image_id}", headers=auth)).json()
    assert "d" not in shown and shown["c"] == "3"  # nothing half-written
    # A change that adds no property passes at the quota.
    swap = [{"op": "remove", "path": "/c"}, {"op": "add", "path": "/d", "value": "4"}]
    swapped = await client.patch(
        f"/image/v2/images/{image_id}", json=swap, headers={**auth, **PATCH}
    )
    assert swapped.status_code == 200 and swapped.json()["d"] == "4"

    # Plankton (Glance v1) registers a file with properties under the same quota.
    await engines.storage.create_container(user, "pithos")

    async def disk():
        yield b"disk"

    await engines.storage.put_object(user, "pithos", "disk.img", disk())
    headers = {
        **auth,
        "X-Image-Meta-Name": "v1",
        "X-Image-Meta-Location": f"pithos://{user}/pithos/disk.img",
        **{f"X-Image-Meta-Property-P{n}": "x" for n in range(4)},
    }
    assert (await client.post(f"{V1}/images/", headers=headers)).status_code == 413


async def test_astakos_request_caps_are_settings(client: httpx.AsyncClient, engines: Engines):
    user, _ = await person(engines)
    _, service = await person(engines, admin=True)
    one = {"holder": user, "source": None, "resource": "cyclades.vm", "quantity": 1}
    too_many = await client.post(
        "/account/v1.0/commissions", json={"provisions": [one] * 3}, headers=service
    )
    assert too_many.status_code == 400 and "At most 2 provisions" in too_many.text
    assert (await client.get("/account/v1.0/commissions", headers=service)).json() == []
    fits = await client.post(
        "/account/v1.0/commissions", json={"provisions": [one] * 2}, headers=service
    )
    assert fits.status_code == 201, fits.text
    serial = fits.json()["serial"]
    bulk = await client.post(
        "/account/v1.0/commissions/action", json={"accept": [serial, 1, 2]}, headers=service
    )
    assert bulk.status_code == 400
    assert (await client.get("/account/v1.0/commissions", headers=service)).json() == [serial]
    done = await client.post(
        "/account/v1.0/commissions/action", json={"accept": [serial]}, headers=service
    )
    assert done.status_code == 200 and done.json()["accepted"] == [serial]

    ids = [user, str(uuid.uuid4()), str(uuid.uuid4())]
    catalogs = await client.post(
        "/account/v1.0/user_catalogs", json={"uuids": ids}, headers=service
    )
    assert catalogs.status_code == 400
    catalogs = await client.post(
        "/account/v1.0/user_catalogs", json={"uuids": ids[:2]}, headers=service
    )
    assert catalogs.status_code == 200 and user in catalogs.json()["uuid_catalog"]
