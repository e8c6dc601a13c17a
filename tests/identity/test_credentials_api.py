"""Keystone v3 application credentials, access rules and OS-EC2 credentials over HTTP,
in process: as their owner, as another user, as an admin, and with the tokens they get."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from nefos.core.db import Database
from nefos.identity.models import ApplicationCredential
from nefos.identity.service import Identity

V3 = "/identity/v3"


@dataclass
class Person:
    id: str
    email: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"X-Auth-Token": self.token}


async def person(identity: Identity, name: str, admin: bool = False) -> Person:
    user, token = await identity.create_user(f"{name}@example.org", admin=admin)
    return Person(str(user.id), user.email, token)


@pytest.fixture
async def alice(identity: Identity) -> Person:
    return await person(identity, "alice")


@pytest.fixture
async def bob(identity: Identity) -> Person:
    return await person(identity, "bob")


async def create(
    client: httpx.AsyncClient, who: Person, token: str | None = None, **fields: Any
) -> httpx.Response:
    body = {"application_credential": {"name": "app", **fields}}
    return await client.post(
        f"{V3}/users/{who.id}/application_credentials",
        json=body,
        headers={"X-Auth-Token": token or who.token},
    )


async def login(client: httpx.AsyncClient, **given: Any) -> httpx.Response:
    body = {
        "auth": {
            "identity": {"methods": ["application_credential"], "application_credential": given}
        }
    }
    return await client.post(f"{V3}/auth/tokens", json=body)


async def app_token(client: httpx.AsyncClient, who: Person, **fields: Any) -> tuple[dict, str]:
    created = await create(client, who, **fields)
    assert created.status_code == 201, created.text
    credential = created.json()["application_credential"]
    issued = await login(client, id=credential["id"], secret=credential["secret"])
    assert issued.status_code == 201, issued.text
    return credential, issued.headers["X-Subject-Token"]


async def test_create_shows_the_secret_once_and_a_token_carries_the_credential(
    client: httpx.AsyncClient, alice: Person
):
    created = await create(client, alice, description="backups", name="backups")
    assert created.status_code == 201, created.text
    credential = created.json()["application_credential"]
    assert credential["name"] == "backups" and credential["description"] == "backups"
    assert credential["project_id"] == alice.id  # the creating token's project
    assert [r["name"] for r in credential["roles"]] == ["member", "reader"]
    assert credential["unrestricted"] is False and credential["expires_at"] is None
    assert credential["access_rules"] == [] and len(credential["secret"]) >= 64
    url = f"{V3}/users/{alice.id}/application_credentials"
    shown = (await client.get(f"{url}/{credential['id']}", headers=alice.headers)).json()
    listed = (await client.get(url, headers=alice.headers)).json()["application_credentials"]
    by_name = await client.get(url, params={"name": "backups"}, headers=alice.headers)
    none = await client.get(url, params={"name": "other"}, headers=alice.headers)
    assert "secret" not in shown["application_credential"]
    assert [c["id"] for c in listed] == [credential["id"]] and "secret" not in listed[0]
    assert [c["id"] for c in by_name.json()["application_credentials"]] == [credential["id"]]
    assert none.json()["application_credentials"] == []

    issued = await login(client, id=credential["id"], secret=credential["secret"])
    assert issued.status_code == 201, issued.text
    token = issued.json()["token"]
    assert token["methods"] == ["application_credential"]
    assert token["project"]["id"] == alice.id and token["user"]["id"] == alice.id
    assert token["application_credential"] == {
        "id": credential["id"],
        "name": "backups",
        "restricted": True,
    }
    assert [r["name"] for r in token["roles"]] == ["member", "reader"]
    headers = {"X-Auth-Token": issued.headers["X-Subject-Token"]}
    assert (await client.get(f"{V3}/users/{alice.id}", headers=headers)).status_code == 200
    # The same token, validated as a service validates it.
    checked = await client.get(
        f"{V3}/auth/tokens",
        headers={**alice.headers, "X-Subject-Token": issued.headers["X-Subject-Token"]},
    )
    assert checked.json()["token"]["application_credential"]["id"] == credential["id"]


async def test_login_by_name_and_user(client: httpx.AsyncClient, alice: Person):
    created = (await create(client, alice, secret="my own secret")).json()
    assert created["application_credential"]["secret"] == "my own secret"
    by_id = await login(client, name="app", secret="my own secret", user={"id": alice.id})
    by_name = await login(
        client,
        name="app",
        secret="my own secret",
        user={"name": alice.email, "domain": {"id": "default"}},
    )
    assert by_id.status_code == by_name.status_code == 201
    wrong = await login(client, name="app", secret="not it", user={"id": alice.id})
    unknown = await login(client, name="nope", secret="my own secret", user={"id": alice.id})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["error"]["code"] == 401
    scoped = {
        "auth": {
            "identity": {
                "methods": ["application_credential"],
                "application_credential": {"name": "app", "secret": "my own secret",
                                           "user": {"id": alice.id}},
            },
            "scope": {"project": {"id": alice.id}},
        }
    }  # fmt: skip
    assert (await client.post(f"{V3}/auth/tokens", json=scoped)).status_code == 401


async def test_expiry(client: httpx.AsyncClient, alice: Person, db: Database):
    past = await create(client, alice, expires_at="2001-01-01T00:00:00Z")
    assert past.status_code == 400
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    credential, token = await app_token(client, alice, expires_at=soon.isoformat())
    assert credential["expires_at"].startswith(soon.strftime("%Y-%m-%dT%H:%M:%S"))
    checked = await client.get(
        f"{V3}/auth/tokens", headers={**alice.headers, "X-Subject-Token": token}
    )
    expires = dt.datetime.fromisoformat(checked.json()["token"]["expires_at"])
    assert expires <= soon + dt.timedelta(seconds=1)  # no token outlives its credential
    async with db.transaction() as s:
        await s.execute(
            update(ApplicationCredential).values(
                expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
            )
        )
    expired = await login(client, id=credential["id"], secret=credential["secret"])
    assert expired.status_code == 401 and "expired" in expired.json()["error"]["message"]


async def test_roles_are_a_subset_of_the_creators(
    client: httpx.AsyncClient, alice: Person, identity: Identity
):
    admin_only = await create(client, alice, roles=[{"name": "admin"}])
    unknown = await create(client, alice, roles=[{"name": "wizard"}])
    assert admin_only.status_code == 400 and "unassigned role" in admin_only.text
    assert unknown.status_code == 404
    credential, token = await app_token(client, alice, roles=[{"name": "reader"}])
    assert [r["name"] for r in credential["roles"]] == ["reader"]
    headers = {"X-Auth-Token": token}
    assert (await client.get(f"{V3}/auth/projects", headers=headers)).status_code == 200
    # A reader reads and does nothing else, whatever the API.
    wrote = await client.post("/account/v1.0/feedback", json={"feedback_msg": "hi"},
                              headers=headers)  # fmt: skip
    assert wrote.status_code == 403
    # An admin's credential without the admin role makes no admin token.
    root = await person(identity, "root", admin=True)
    _, plain = await app_token(client, root, roles=[{"id": "member"}])
    assert (await client.get(f"{V3}/users", headers={"X-Auth-Token": plain})).status_code == 403
    _, full = await app_token(client, root, name="full")
    assert (await client.get(f"{V3}/users", headers={"X-Auth-Token": full})).status_code == 200


async def test_restricted_tokens_manage_no_credentials(client: httpx.AsyncClient, alice: Person):
    restricted, token = await app_token(client, alice)
    again = await create(client, alice, token=token, name="child")
    assert again.status_code == 403, again.text
    assert "application_credential" in again.json()["error"]["message"]
    ec2 = await client.post(
        f"{V3}/users/{alice.id}/credentials/OS-EC2", json={}, headers={"X-Auth-Token": token}
    )
    assert ec2.status_code == 403
    url = f"{V3}/users/{alice.id}/application_credentials/{restricted['id']}"
    assert (await client.delete(url, headers={"X-Auth-Token": token})).status_code == 403
    _, free = await app_token(client, alice, name="free", unrestricted=True)
    child = await create(client, alice, token=free, name="child")
    assert child.status_code == 201, child.text


async def test_duplicate_names_conflict(client: httpx.AsyncClient, alice: Person, bob: Person):
    assert (await create(client, alice)).status_code == 201
    assert (await create(client, alice)).status_code == 409
    assert (await create(client, bob)).status_code == 201  # names are per user


async def test_deleting_a_credential_ends_its_tokens(client: httpx.AsyncClient, alice: Person):
    credential, token = await app_token(client, alice)
    headers = {"X-Auth-Token": token}
    assert (await client.get(f"{V3}/auth/projects", headers=headers)).status_code == 200
    url = f"{V3}/users/{alice.id}/application_credentials/{credential['id']}"
    assert (await client.delete(url, headers=alice.headers)).status_code == 204
    assert (await client.get(f"{V3}/auth/projects", headers=headers)).status_code == 401
    assert (await client.get(url, headers=alice.headers)).status_code == 404
    again = await login(client, id=credential["id"], secret=credential["secret"])
    assert again.status_code == 401


async def test_app_credential_tokens_keep_their_limits(client: httpx.AsyncClient, alice: Person):
    """A token made from one (the token method) is bound the same; as a v2.0 password
    (Synnefo takes a token there) it gets nothing."""
    credential, token = await app_token(client, alice, roles=[{"name": "reader"}])
    body = {"auth": {"identity": {"methods": ["token"], "token": {"id": token}}}}
    renewed = await client.post(f"{V3}/auth/tokens", json=body)
    assert renewed.status_code == 201, renewed.text
    assert renewed.json()["token"]["application_credential"]["id"] == credential["id"]
    assert [r["name"] for r in renewed.json()["token"]["roles"]] == ["reader"]
    v2 = {"auth": {"passwordCredentials": {"username": alice.email, "password": token}}}
    assert (await client.post("/identity/v2.0/tokens", json=v2)).status_code == 401


async def test_access_rules(client: httpx.AsyncClient, alice: Person):
    rules = [
        {"service": "identity", "method": "GET", "path": "/v3/users/{user_id}"},
        {"service": "compute", "method": "GET", "path": "/v2.1/flavors/**"},
        {"service": "compute", "method": "GET", "path": "/v2.1/flavors"},
    ]
    credential, token = await app_token(client, alice, access_rules=rules)
    assert sorted(r["path"] for r in credential["access_rules"]) == [
        "/v2.1/flavors", "/v2.1/flavors/**", "/v3/users/{user_id}",
    ]  # fmt: skip
    headers = {"X-Auth-Token": token}
    assert (await client.get(f"{V3}/users/{alice.id}", headers=headers)).status_code == 200
    assert (await client.get("/compute/v2.1/flavors", headers=headers)).status_code == 200
    detail = await client.get("/compute/v2.1/flavors/detail", headers=headers)
    assert detail.status_code == 200
    outside = await client.get(f"{V3}/auth/projects", headers=headers)
    assert outside.status_code == 403 and outside.json()["error"]["code"] == 403
    nova = await client.get("/compute/v2.1/servers", headers=headers)
    assert nova.status_code == 403 and "forbidden" in nova.json()  # Nova's fault format
    # The v2.0 compute path is another one: the rule names /v2.1.
    assert (await client.get("/compute/v2.0/flavors", headers=headers)).status_code == 403
    # Version documents need no token and stay open.
    assert (await client.get("/compute/", headers=headers)).status_code in (200, 300)

    listed = await client.get(f"{V3}/users/{alice.id}/access_rules", headers=alice.headers)
    assert listed.status_code == 200
    rule_ids = {r["path"]: r["id"] for r in listed.json()["access_rules"]}
    assert len(rule_ids) == 3
    reused = await create(
        client, alice, name="again", access_rules=[{"id": rule_ids["/v2.1/flavors"]}]
    )
    assert reused.status_code == 201, reused.text
    assert [r["id"] for r in reused.json()["application_credential"]["access_rules"]] == [
        rule_ids["/v2.1/flavors"]
    ]
    rule_url = f"{V3}/users/{alice.id}/access_rules/{rule_ids['/v2.1/flavors']}"
    assert (await client.get(rule_url, headers=alice.headers)).status_code == 200
    assert (await client.delete(rule_url, headers=alice.headers)).status_code == 403  # in use
    for made in (credential["id"], reused.json()["application_credential"]["id"]):
        url = f"{V3}/users/{alice.id}/application_credentials/{made}"
        assert (await client.delete(url, headers=alice.headers)).status_code == 204
    assert (await client.delete(rule_url, headers=alice.headers)).status_code == 204
    bad = await create(client, alice, name="bad", access_rules=[{"service": "compute"}])
    assert bad.status_code == 400
    going = [{"service": "compute", "method": "GO", "path": "/"}]
    bad_method = await create(client, alice, name="bad", access_rules=going)
    assert bad_method.status_code == 400


async def test_others_see_nothing(
    client: httpx.AsyncClient, alice: Person, bob: Person, identity: Identity
):
    credential, _ = await app_token(client, alice, access_rules=[
        {"service": "compute", "method": "GET", "path": "/v2.1/servers"}])  # fmt: skip
    mine = f"{V3}/users/{bob.id}/application_credentials"
    hers = f"{V3}/users/{alice.id}/application_credentials"
    assert (await client.get(f"{mine}/{credential['id']}", headers=bob.headers)).status_code == 404
    assert (
        await client.delete(f"{mine}/{credential['id']}", headers=bob.headers)
    ).status_code == 404
    assert (await client.get(hers, headers=bob.headers)).status_code == 403
    assert (await client.get(f"{hers}/{credential['id']}", headers=bob.headers)).status_code == 403
    assert (await create(client, alice, token=bob.token, name="x")).status_code == 403
    rules = f"{V3}/users/{alice.id}/access_rules"
    assert (await client.get(rules, headers=bob.headers)).status_code == 403
    rule_id = credential["access_rules"][0]["id"]
    borrowed = await create(client, bob, name="borrow", access_rules=[{"id": rule_id}])
    assert borrowed.status_code == 404
    root = await person(identity, "root", admin=True)
    seen = await client.get(hers, headers=root.headers)
    assert [c["id"] for c in seen.json()["application_credentials"]] == [credential["id"]]
    assert (await client.get(hers, headers={})).status_code == 401


# -- OS-EC2 -----------------------------------------------------------------------------


async def test_ec2_credentials(client: httpx.AsyncClient, alice: Person, bob: Person):
    url = f"{V3}/users/{alice.id}/credentials/OS-EC2"
    created = await client.post(url, json={"tenant_id": alice.id}, headers=alice.headers)
    assert created.status_code == 201, created.text
    key = created.json()["credential"]
    assert key["user_id"] == alice.id and key["tenant_id"] == alice.id
    assert len(key["access"]) == 32 and len(key["secret"]) == 32 and key["trust_id"] is None
    default = await client.post(url, headers=alice.headers)  # the token's project
    assert default.json()["credential"]["tenant_id"] == alice.id
    listed = (await client.get(url, headers=alice.headers)).json()["credentials"]
    assert {k["access"] for k in listed} == {key["access"], default.json()["credential"]["access"]}
    shown = await client.get(f"{url}/{key['access']}", headers=alice.headers)
    assert shown.json()["credential"]["secret"] == key["secret"]  # sealed, not hashed

    foreign = await client.post(url, json={"tenant_id": bob.id}, headers=alice.headers)
    assert foreign.status_code == 404  # not a project of hers
    assert (await client.get(url, headers=bob.headers)).status_code == 403
    bobs = f"{V3}/users/{bob.id}/credentials/OS-EC2/{key['access']}"
    assert (await client.get(bobs, headers=bob.headers)).status_code == 404
    assert (await client.delete(bobs, headers=bob.headers)).status_code == 404

    assert (await client.delete(f"{url}/{key['access']}", headers=alice.headers)).status_code == 204
    assert (await client.get(f"{url}/{key['access']}", headers=alice.headers)).status_code == 404
