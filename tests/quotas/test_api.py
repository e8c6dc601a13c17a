"""The quota API over HTTP: resources, quotas, commissions, in Synnefo's shapes."""

from __future__ import annotations

import httpx
import pytest

from nefos.identity.service import Identity
from nefos.quotas.resources import RESOURCES

VM = "cyclades.vm"


@pytest.fixture
async def people(identity: Identity) -> dict[str, tuple[str, str]]:
    user, user_token = await identity.create_user("user@example.org")
    service, service_token = await identity.create_user("pithos@example.org", admin=True)
    other, other_token = await identity.create_user("cyclades@example.org", admin=True)
    return {
        "user": (str(user.id), user_token),
        "service": (str(service.id), service_token),
        "other": (str(other.id), other_token),
    }


def auth(token: str) -> dict[str, str]:
    return {"X-Auth-Token": token}


def provisions(user: str, quantity: int) -> list[dict]:
    return [
        {"holder": user, "source": user, "resource": VM, "quantity": quantity},
        {"holder": user, "source": None, "resource": VM, "quantity": quantity},
    ]


async def test_resources_are_public(client: httpx.AsyncClient):
    response = await client.get("/account/v1.0/resources")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == set(RESOURCES)
    assert body["pithos.diskspace"]["unit"] == "bytes"
    assert body[VM]["system_default"] == RESOURCES[VM].default
    assert body["astakos.pending_app"]["allow_in_projects"] is False


async def test_user_quotas(client: httpx.AsyncClient, people):
    uuid, token = people["user"]
    response = await client.get("/account/v1.0/quotas", headers=auth(token))
    assert response.status_code == 200
    mine = response.json()
    assert list(mine) == [uuid]  # the system project
    vm = mine[uuid][VM]
    limit = RESOURCES[VM].default
    assert vm == {
        "limit": limit,
        "usage": 0,
        "pending": 0,
        "project_limit": limit,
        "project_usage": 0,
        "project_pending": 0,
    }
    assert (await client.get("/account/v1.0/quotas")).status_code == 401


async def test_commission_lifecycle(client: httpx.AsyncClient, people):
    uuid, _ = people["user"]
    _, service = people["service"]
    issued = await client.post(
        "/account/v1.0/commissions",
        json={"name": "vm build", "provisions": provisions(uuid, 2)},
        headers=auth(service),
    )
    assert issued.status_code == 201, issued.text
    serial = issued.json()["serial"]
    assert (await client.get("/account/v1.0/commissions", headers=auth(service))).json() == [serial]
    shown = (await client.get(f"/account/v1.0/commissions/{serial}", headers=auth(service))).json()
    assert shown["serial"] == serial and shown["name"] == "vm build"
    assert shown["provisions"][0] == {
        "holder": f"user:{uuid}",
        "source": f"project:{uuid}",
        "resource": VM,
        "quantity": 2,
    }
    assert shown["provisions"][1]["source"] is None
    quotas = await client.get(f"/account/v1.0/service_quotas?user={uuid}", headers=auth(service))
    assert quotas.json()[uuid][uuid][VM]["pending"] == 2
    done = await client.post(
        f"/account/v1.0/commissions/{serial}/action", json={"accept": ""}, headers=auth(service)
    )
    assert done.status_code == 200
    again = await client.post(
        f"/account/v1.0/commissions/{serial}/action", json={"reject": ""}, headers=auth(service)
    )
    assert again.status_code == 409
    assert again.json()["conflict"]["code"] == 409
    projects = await client.get(
        f"/account/v1.0/service_project_quotas?project={uuid}", headers=auth(service)
    )
    assert projects.json()[uuid][VM] == {"limit": RESOURCES[VM].default, "usage": 2, "pending": 0}
    mine = await client.get("/account/v1.0/quotas", headers=auth(people["user"][1]))
    assert mine.json()[uuid][VM]["usage"] == 2


async def test_over_limit_is_413_with_data(client: httpx.AsyncClient, people):
    uuid, _ = people["user"]
    _, service = people["service"]
    response = await client.post(
        "/account/v1.0/commissions",
        json={"provisions": provisions(uuid, RESOURCES[VM].default + 1)},
        headers=auth(service),
    )
    assert response.status_code == 413
    fault = response.json()["overLimit"]
    assert fault["data"]["name"] == "NoCapacityError"
    assert fault["data"]["provision"]["resource"] == VM


async def test_another_services_serial(client: httpx.AsyncClient, people):
    uuid, _ = people["user"]
    _, service = people["service"]
    _, other = people["other"]
    serial = (
        await client.post(
            "/account/v1.0/commissions",
            json={"provisions": provisions(uuid, 1)},
            headers=auth(service),
        )
    ).json()["serial"]
    stolen = await client.post(
        f"/account/v1.0/commissions/{serial}/action", json={"accept": ""}, headers=auth(other)
    )
    assert stolen.status_code == 404
    assert (await client.get("/account/v1.0/commissions", headers=auth(other))).json() == []
    bulk = await client.post(
        "/account/v1.0/commissions/action",
        json={"accept": [serial], "reject": []},
        headers=auth(other),
    )
    assert bulk.json()["accepted"] == []
    assert bulk.json()["failed"][0][0] == serial
    assert "itemNotFound" in bulk.json()["failed"][0][1]
    mine = await client.post(
        "/account/v1.0/commissions/action",
        json={"accept": [], "reject": [serial]},
        headers=auth(service),
    )
    assert mine.json() == {"accepted": [], "rejected": [serial], "failed": []}


async def test_users_cannot_run_commissions(client: httpx.AsyncClient, people):
    uuid, token = people["user"]
    response = await client.post(
        "/account/v1.0/commissions", json={"provisions": provisions(uuid, 1)}, headers=auth(token)
    )
    assert response.status_code == 403
    assert (
        await client.get("/account/v1.0/service_quotas", headers=auth(token))
    ).status_code == 403


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"provisions": []},
        {"provisions": [{"holder": "x", "resource": VM, "quantity": 1}]},
        {"provisions": [{"holder": "user:1", "resource": VM, "quantity": "1"}]},
        {"provisions": [{"holder": "user:1", "resource": VM, "quantity": 1.5}]},
        {"provisions": [{"holder": "user:1", "resource": VM}]},
        {"provisions": [{"holder": "user:1", "resource": VM, "quantity": 1, "extra": 1}]},
        {"provisions": "all"},
        {"force": "yes", "provisions": []},
    ],
)
async def test_malformed_commissions(client: httpx.AsyncClient, people, body):
    _, service = people["service"]
    response = await client.post("/account/v1.0/commissions", json=body, headers=auth(service))
    assert response.status_code == 400, response.text
    assert response.json()["badRequest"]["message"]
    assert (await client.get("/account/v1.0/commissions", headers=auth(service))).json() == []


async def test_unknown_resource_and_holder(client: httpx.AsyncClient, people):
    uuid, _ = people["user"]
    _, service = people["service"]
    unknown_resource = await client.post(
        "/account/v1.0/commissions",
        json={"provisions": [{"holder": uuid, "source": uuid, "resource": "x.y", "quantity": 1}]},
        headers=auth(service),
    )
    assert unknown_resource.status_code == 400
    stranger = "00000000-0000-0000-0000-000000000001"
    unknown_holder = await client.post(
        "/account/v1.0/commissions",
        json={"provisions": provisions(stranger, 1)},
        headers=auth(service),
    )
    assert unknown_holder.status_code == 404
    bad_action = await client.post(
        "/account/v1.0/commissions/1/action",
        json={"accept": "", "reject": ""},
        headers=auth(service),
    )
    assert bad_action.status_code == 400
