"""The project API (``/account/v1.0/projects``) over HTTP, in process: Synnefo's shapes,
its faults, and bad requests that write nothing."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from nefos.core.db import Database, utcnow
from nefos.identity.service import Identity
from nefos.quotas.projects import PENDING_APP
from nefos.quotas.service import Quotas, charge, project_holder, user_holder
from tests.quotas.test_projects import snapshot

BASE = "/account/v1.0/projects"
VM = "cyclades.vm"
END = (utcnow() + dt.timedelta(days=30)).isoformat()
ISO = "%Y-%m-%dT%H:%M:%S.%fZ"


class Caller:
    def __init__(self, user_id: uuid.UUID, email: str, token: str):
        self.id = str(user_id)
        self.email = email
        self.headers = {"X-Auth-Token": token}


async def caller(identity: Identity, name: str, admin: bool = False) -> Caller:
    email = f"{name}-{uuid.uuid4().hex[:6]}@example.org"
    user, token = await identity.create_user(email, admin=admin)
    return Caller(user.id, email, token)


def application(**overrides: Any) -> dict[str, Any]:
    return {"name": f"p-{uuid.uuid4().hex[:10]}", "end_date": END, **overrides}


async def create(client: httpx.AsyncClient, who: Caller, **overrides: Any) -> tuple[str, int]:
    response = await client.post(BASE, json=application(**overrides), headers=who.headers)
    assert response.status_code == 201, response.text
    body = response.json()
    return body["id"], body["application"]


async def act(client: httpx.AsyncClient, who: Caller, project: str, body: dict) -> httpx.Response:
    return await client.post(f"{BASE}/{project}/action", json=body, headers=who.headers)


async def approved(client: httpx.AsyncClient, owner: Caller, admin: Caller, **overrides) -> str:
    project, app = await create(client, owner, **overrides)
    response = await act(client, admin, project, {"approve": {"app_id": app, "reason": "ok"}})
    assert response.status_code == 200, response.text
    return project


@pytest.fixture
def quotas(engines) -> Quotas:
    return engines.quotas


@pytest.fixture
async def people(identity: Identity) -> dict[str, Caller]:
    return {
        "alice": await caller(identity, "alice"),
        "bob": await caller(identity, "bob"),
        "admin": await caller(identity, "admin", admin=True),
    }


async def test_application_approval_and_the_project_document(
    client: httpx.AsyncClient, people: dict[str, Caller], quotas: Quotas
):
    alice, admin = people["alice"], people["admin"]
    resources = {VM: {"project_capacity": 8, "member_capacity": 5}}
    project, app = await create(
        client, alice, name="alpha.example.org", resources=resources, max_members=3, private=True
    )
    shown = await client.get(f"{BASE}/{project}", headers=alice.headers)
    assert shown.status_code == 200
    body = shown.json()
    assert body["state"] == "uninitialized" and body["last_application"]["state"] == "pending"
    refused = await act(client, alice, project, {"approve": {"app_id": app}})
    assert refused.status_code == 403 and "forbidden" in refused.json()
    response = await act(client, admin, project, {"approve": {"app_id": str(app), "reason": "ok"}})
    assert response.status_code == 200, response.text
    body = (await client.get(f"{BASE}/{project}", headers=alice.headers)).json()
    assert set(body) == {
        "id",
        "state",
        "creation_date",
        "name",
        "owner",
        "homepage",
        "description",
        "end_date",
        "join_policy",
        "leave_policy",
        "max_members",
        "private",
        "system_project",
        "resources",
        "last_application",
    }
    assert (body["id"], body["state"], body["name"], body["owner"]) == (
        project,
        "active",
        "alpha.example.org",
        alice.id,
    )
    assert (body["join_policy"], body["leave_policy"], body["max_members"]) == (
        "moderated",
        "auto",
        3,
    )
    assert body["private"] is True and body["system_project"] is False
    assert body["resources"][VM] == resources[VM] and PENDING_APP not in body["resources"]
    assert body["last_application"]["id"] == app
    assert body["last_application"]["state"] == "approved"
    assert body["last_application"]["applicant"] == alice.id
    for key in ("creation_date", "end_date"):
        dt.datetime.strptime(body[key], ISO)
    (vm,) = [h for h in await quotas.holdings([project_holder(project)]) if h.resource == VM]
    assert vm.limit == 8
    suspended = await act(client, admin, project, {"suspend": {"reason": "audit"}})
    assert suspended.status_code == 200
    body = (await client.get(f"{BASE}/{project}", headers=admin.headers)).json()
    assert body["state"] == "suspended"
    dt.datetime.strptime(body["deactivation_date"], ISO)


async def test_listing_modes_and_filters(client: httpx.AsyncClient, people: dict[str, Caller]):
    alice, bob, admin = people["alice"], people["bob"], people["admin"]
    public = await approved(client, alice, admin, join_policy="auto")
    private = await approved(client, alice, admin, join_policy="auto", private=True)
    pending, _ = await create(client, alice)

    async def ids(who: Caller, **params: str) -> set[str]:
        response = await client.get(BASE, params=params, headers=who.headers)
        assert response.status_code == 200, response.text
        return {p["id"] for p in response.json()}

    assert await ids(bob) == {public, bob.id}
    assert await ids(alice) == {public, private, pending, alice.id}
    assert {public, private, pending, alice.id, bob.id} <= await ids(admin)
    assert await ids(alice, state="uninitialized") == {pending}
    assert await ids(admin, owner=alice.id) == {public, private, pending, alice.id}
    assert await ids(bob, mode="member") == {bob.id}
    hidden = await client.get(f"{BASE}/{private}", headers=bob.headers)
    assert hidden.status_code == 404 and "itemNotFound" in hidden.json()
    joined = await client.post(
        f"{BASE}/memberships", json={"join": {"project": private}}, headers=bob.headers
    )
    assert joined.status_code == 201
    assert await ids(bob, mode="member") == {private, bob.id}
    seen = (await client.get(f"{BASE}/{private}", headers=bob.headers)).json()
    assert "last_application" not in seen  # the owner's and admins' business
    named = await client.get(BASE, params={"name": seen["name"]}, headers=bob.headers)
    assert [p["id"] for p in named.json()] == [private]
    for params in ({"mode": "everything"}, {"state": "asleep"}, {"owner": "x"}):
        response = await client.get(BASE, params=params, headers=bob.headers)
        assert response.status_code == 400, params
        assert "badRequest" in response.json()
    assert (await client.get(BASE)).status_code == 401


async def test_memberships_over_http(client: httpx.AsyncClient, people: dict[str, Caller], engines):
    alice, bob, admin = people["alice"], people["bob"], people["admin"]
    resources = {VM: {"project_capacity": 8, "member_capacity": 5}}
    project = await approved(client, alice, admin, resources=resources)
    response = await client.post(
        f"{BASE}/memberships", json={"join": {"project": project}}, headers=bob.headers
    )
    assert response.status_code == 201, response.text
    membership = response.json()["id"]
    url = f"{BASE}/memberships/{membership}"
    mine = (await client.get(url, headers=bob.headers)).json()
    assert (mine["state"], mine["user"], mine["project"]) == ("requested", bob.id, project)
    assert mine["allowed_actions"] == ["cancel"]
    dt.datetime.strptime(mine["requested"], ISO)
    assert mine["accepted"] is None and mine["removed"] is None
    owners = (await client.get(url, headers=alice.headers)).json()
    assert owners["allowed_actions"] == ["accept", "reject"]
    refused = await client.post(f"{url}/action", json={"accept": "me"}, headers=bob.headers)
    assert refused.status_code == 403
    accepted = await client.post(f"{url}/action", json={"accept": "welcome"}, headers=alice.headers)
    assert accepted.status_code == 200, accepted.text
    await engines.quotas.issue("svc", charge(bob.id, project, VM, 5), auto_accept=True)
    listed = await client.get(
        f"{BASE}/memberships", params={"project": project}, headers=alice.headers
    )
    assert [(m["id"], m["state"]) for m in listed.json()] == [(membership, "accepted")]
    left = await client.post(f"{url}/action", json={"leave": None}, headers=bob.headers)
    assert left.status_code == 200
    again = await client.post(f"{url}/action", json={"leave": ""}, headers=bob.headers)
    assert again.status_code == 409 and "conflict" in again.json()
    (h,) = [
        h
        for h in await engines.quotas.holdings([user_holder(bob.id)])
        if h.resource == VM and h.source == project_holder(project)
    ]
    assert (h.limit, h.usage_max) == (0, 5)  # removed: no more, and what is held stays
    enrolled = await client.post(
        f"{BASE}/memberships",
        json={"enroll": {"project": project, "user": bob.email}},
        headers=alice.headers,
    )
    assert enrolled.status_code == 201 and enrolled.json()["id"] == membership
    stranger = await client.get(url, headers=admin.headers)
    assert stranger.status_code == 200  # admins see all
    for missing in (f"{BASE}/memberships/{1 << 40}", f"{BASE}/memberships/abc"):
        assert (await client.get(missing, headers=bob.headers)).status_code == 404


async def test_a_hidden_project_is_refused_as_a_missing_one(
    client: httpx.AsyncClient, people: dict[str, Caller], db: Database
):
    """Whatever bob asks of a private project he may not see, he gets the answer he
    gets for one that does not exist: a 404 with the same message, and nothing
    written. Joining by id stays open where the join policy allows it."""
    alice, bob, admin = people["alice"], people["bob"], people["admin"]
    hidden = await approved(client, alice, admin, join_policy="closed", private=True)
    pending, app = await create(client, alice, private=True)
    missing = str(uuid.uuid4())

    async def attempts(project: str, app_id: int) -> list[httpx.Response]:
        enroll = {"enroll": {"project": project, "user": admin.email}}
        return [
            await client.get(f"{BASE}/{project}", headers=bob.headers),
            await client.put(f"{BASE}/{project}", json={"comments": "x"}, headers=bob.headers),
            await act(client, bob, project, {"suspend": {}}),
            await act(client, bob, project, {"cancel": {"app_id": app_id}}),
            await act(client, bob, project, {"approve": {"app_id": app_id}}),
            await client.post(f"{BASE}/memberships", json=enroll, headers=bob.headers),
            await client.post(
                f"{BASE}/memberships", json={"join": {"project": project}}, headers=bob.headers
            ),
        ]

    before = await snapshot(db)
    for project, app_id in ((hidden, app), (pending, app)):
        seen = await attempts(project, app_id)
        absent = await attempts(missing, app_id)
        for hidden_reply, missing_reply in zip(seen, absent, strict=True):
            assert hidden_reply.status_code == missing_reply.status_code == 404, (
                hidden_reply.request.method,
                hidden_reply.request.url,
                hidden_reply.text,
            )
            assert hidden_reply.text == missing_reply.text.replace(missing, project)
    assert await snapshot(db) == before
    listed = await client.get(
        f"{BASE}/memberships", params={"project": hidden}, headers=bob.headers
    )
    assert listed.json() == []
    # The owner still gets the refusals that tell her what is wrong.
    closed = await client.post(
        f"{BASE}/memberships",
        json={"enroll": {"project": hidden, "user": "nobody@example.org"}},
        headers=alice.headers,
    )
    assert closed.status_code == 404 and "No user" in closed.text
    suspend = await act(client, alice, hidden, {"suspend": {}})
    assert suspend.status_code == 403


async def test_membership_and_commission_ids_are_ascii_digits_in_range(
    client: httpx.AsyncClient, people: dict[str, Caller], db: Database
):
    """``²`` is a digit to ``str.isdigit`` but not to ``int``, and ``\\u0661`` is 1 to
    ``int``; past 31 bits no row can match: each is 404, never 500 nor another row."""
    alice, bob, admin = people["alice"], people["bob"], people["admin"]
    project = await approved(client, alice, admin, join_policy="auto")
    joined = await client.post(
        f"{BASE}/memberships", json={"join": {"project": project}}, headers=bob.headers
    )
    membership = joined.json()["id"]
    assert membership < 10
    issued = await client.post(
        "/account/v1.0/commissions",
        json={"provisions": [{"holder": bob.id, "source": bob.id, "resource": VM, "quantity": 1}]},
        headers=admin.headers,
    )
    serial = issued.json()["serial"]
    assert serial < 10
    before = await snapshot(db)
    for odd in ("\u00b2", "\u0661", "\u0660" + str(membership), f" {membership}", f"+{membership}",
                f"{membership}_0", "9" * 30, str(1 << 31), str(1 << 63), "1" * 5000):  # fmt: skip
        url = f"{BASE}/memberships/{quote(odd)}"
        for response in (
            await client.get(url, headers=bob.headers),
            await client.post(f"{url}/action", json={"leave": ""}, headers=bob.headers),
        ):
            assert response.status_code == 404 and "itemNotFound" in response.json(), odd
        url = f"/account/v1.0/commissions/{quote(odd)}"
        for response in (
            await client.get(url, headers=admin.headers),
            await client.post(f"{url}/action", json={"accept": ""}, headers=admin.headers),
        ):
            assert response.status_code == 404 and "itemNotFound" in response.json(), odd
    for app_id in ("\u0661", str(1 << 40), "9" * 30):
        response = await act(client, admin, project, {"approve": {"app_id": app_id}})
        assert response.status_code in (400, 404), (app_id, response.text)
    bulk = await client.post(
        "/account/v1.0/commissions/action",
        json={"accept": [1 << 40, -5], "reject": [(1 << 63) - 1]},
        headers=admin.headers,
    )
    assert bulk.status_code == 200, bulk.text
    assert [code for _, fault in bulk.json()["failed"] for code in fault] == ["itemNotFound"] * 3
    beyond = await client.post(
        "/account/v1.0/commissions/action", json={"reject": [1 << 64]}, headers=admin.headers
    )
    assert beyond.status_code == 400 and "badRequest" in beyond.json()
    assert await snapshot(db) == before


async def test_pending_applications_over_quota_are_413(
    client: httpx.AsyncClient, people: dict[str, Caller], db: Database
):
    alice = people["alice"]
    for _ in range(2):
        await create(client, alice)
    before = await snapshot(db)
    response = await client.post(BASE, json=application(), headers=alice.headers)
    assert response.status_code == 413
    assert response.json()["overLimit"]["data"]["provision"]["resource"] == PENDING_APP
    assert await snapshot(db) == before


async def test_modification_cancel_and_dismiss(client: httpx.AsyncClient, people, engines):
    alice, bob, admin = people["alice"], people["bob"], people["admin"]
    project = await approved(client, alice, admin)
    refused = await client.put(f"{BASE}/{project}", json={"name": "x"}, headers=bob.headers)
    assert refused.status_code == 403
    response = await client.put(
        f"{BASE}/{project}",
        json={"description": "more", "max_members": None},
        headers=alice.headers,
    )
    assert response.status_code == 201, response.text
    app = response.json()["application"]
    assert response.json()["id"] == project
    denied = await act(client, admin, project, {"deny": {"app_id": app, "reason": "no"}})
    assert denied.status_code == 200
    dismissed = await act(client, alice, project, {"dismiss": {"app_id": app}})
    assert dismissed.status_code == 200
    body = (await client.get(f"{BASE}/{project}", headers=alice.headers)).json()
    assert body["state"] == "active" and body["last_application"]["state"] == "dismissed"
    for app_id in (app + 1000, 1 << 40):
        unknown = await act(client, admin, project, {"approve": {"app_id": app_id}})
        assert unknown.status_code == 404
    missing = await act(client, admin, str(uuid.uuid4()), {"suspend": {}})
    assert missing.status_code == 404
    system = await act(client, admin, alice.id, {"suspend": {}})
    assert system.status_code == 409


BAD_APPLICATIONS = [
    {"name": None},
    {"name": 7},
    {"end_date": (utcnow() - dt.timedelta(days=1)).isoformat()},
    {"end_date": "soon"},
    {"join_policy": "open"},
    {"max_members": "10"},
    {"max_members": -1},
    {"private": "yes"},
    {"owner": "nobody"},
    {"resources": {"cyclades.nope": {"project_capacity": 1, "member_capacity": 1}}},
    {"resources": {VM: {"project_capacity": -1, "member_capacity": 0}}},
    {"resources": {VM: {"project_capacity": 1.5, "member_capacity": 0}}},
    {"resources": {VM: {"project_capacity": 1, "member_capacity": 0, "extra": 1}}},
    {"unexpected": True},
]
BAD_ACTIONS = [
    {},
    {"frobnicate": {}},
    {"suspend": {}, "terminate": {}},
    {"approve": {}},
    {"approve": {"app_id": "one"}},
    {"suspend": {"reason": 5}},
    {"suspend": "now"},
]
BAD_MEMBERSHIP_REQUESTS = [
    {},
    {"join": {}},
    {"join": {"project": 5}},
    {"join": {"project": "p"}, "enroll": {"project": "p", "user": "u"}},
    {"invite": {"project": "p"}},
]


async def test_bad_requests_are_400_and_write_nothing(
    client: httpx.AsyncClient, people: dict[str, Caller], db: Database
):
    alice, admin = people["alice"], people["admin"]
    project = await approved(client, alice, admin, join_policy="auto")
    joined = await client.post(
        f"{BASE}/memberships", json={"join": {"project": project}}, headers=people["bob"].headers
    )
    membership = joined.json()["id"]
    before = await snapshot(db)
    attempts: list[tuple[str, str, Any]] = []
    for bad in BAD_APPLICATIONS:
        body = {k: v for k, v in application(**bad).items() if v is not None}
        attempts.append(("POST", BASE, body))
        if "name" not in bad:
            attempts.append(("PUT", f"{BASE}/{project}", bad))
    attempts += [("POST", f"{BASE}/{project}/action", body) for body in BAD_ACTIONS]
    attempts += [("POST", f"{BASE}/memberships", body) for body in BAD_MEMBERSHIP_REQUESTS]
    for body in ({}, {"leave": 1}, {"leave": "", "cancel": ""}, {"promote": ""}):
        attempts.append(("POST", f"{BASE}/memberships/{membership}/action", body))
    for method, url, body in attempts:
        response = await client.request(method, url, json=body, headers=admin.headers)
        assert response.status_code == 400, (method, url, body, response.text)
        assert "badRequest" in response.json()
    broken = await client.post(BASE, content=b"{not json", headers=admin.headers)
    assert broken.status_code == 400
    assert await snapshot(db) == before


async def test_members_scope_tokens_to_their_projects(
    client: httpx.AsyncClient, people: dict[str, Caller]
):
    alice, bob, admin = people["alice"], people["bob"], people["admin"]
    project = await approved(client, alice, admin, join_policy="auto")

    def scoped(who: Caller, project_id: str) -> dict:
        return {
            "auth": {
                "identity": {"methods": ["token"], "token": {"id": who.headers["X-Auth-Token"]}},
                "scope": {"project": {"id": project_id}},
            }
        }

    outsider = await client.post("/identity/v3/auth/tokens", json=scoped(bob, project))
    assert outsider.status_code == 401
    joined = await client.post(
        f"{BASE}/memberships", json={"join": {"project": project}}, headers=bob.headers
    )
    assert joined.status_code == 201, joined.text
    member = await client.post("/identity/v3/auth/tokens", json=scoped(bob, project))
    assert member.status_code == 201, member.text
    assert member.json()["token"]["project"]["id"] == project
    listed = await client.get("/identity/v3/auth/projects", headers=bob.headers)
    assert [p["id"] for p in listed.json()["projects"]] == [bob.id, project]
