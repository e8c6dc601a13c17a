"""Usage over time (``GET /account/v1.0/usage``), derived from the provision log.

Commissions go through the real quotaholder; only the log rows' times are moved
afterwards, to place each change at a known second without sleeping.
"""

from __future__ import annotations

import datetime as dt
import uuid

import httpx
import pytest
from sqlalchemy import func, select, update

from nefos.core.db import utcnow
from nefos.identity.service import Identity
from nefos.quotas.history import MAX_POINTS
from nefos.quotas.models import ProvisionLog
from nefos.quotas.service import Quotas, charge
from nefos.server.engines import Engines

VM = "cyclades.vm"
KEY = "cyclades"


def auth(token: str) -> dict[str, str]:
    return {"X-Auth-Token": token}


def iso(moment: dt.datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


async def change(engines: Engines, user: uuid.UUID, quantity: int, at: dt.datetime) -> None:
    """An accepted commission of ``quantity`` VMs to ``user``, logged at ``at``."""
    quotas: Quotas = engines.quotas
    serial = await quotas.issue(KEY, charge(user, user, VM, quantity))
    await quotas.accept(KEY, serial)
    async with engines.db.transaction() as s:
        await s.execute(
            update(ProvisionLog).where(ProvisionLog.serial == serial).values(log_time=at)
        )


@pytest.fixture
async def people(identity: Identity) -> dict[str, tuple[uuid.UUID, str]]:
    found = {}
    for name, admin in (("ann", False), ("bob", False), ("root", True)):
        user, token = await identity.create_user(f"{name}@example.org", admin=admin)
        found[name] = (user.id, token)
    return found


@pytest.fixture
def start() -> dt.datetime:
    """A minute boundary 50 minutes ago: the first step of the series below."""
    return (utcnow() - dt.timedelta(minutes=50)).replace(second=0, microsecond=0)


@pytest.fixture
async def history(engines: Engines, people, start: dt.datetime) -> None:
    """Ann: 2 VMs in step 0, 3 more that live 30 s in step 1, one gone in step 3, and a
    pending import of 4 now (reserved, not used)."""
    ann = people["ann"][0]
    await change(engines, ann, 2, start + dt.timedelta(seconds=10))
    await change(engines, ann, 3, start + dt.timedelta(seconds=70))
    await change(engines, ann, -3, start + dt.timedelta(seconds=100))
    await change(engines, ann, -1, start + dt.timedelta(seconds=200))
    await engines.quotas.issue(KEY, charge(ann, ann, VM, 4))


def window(start: dt.datetime, **extra: str) -> dict[str, str]:
    return {
        "since": iso(start),
        "until": iso(start + dt.timedelta(seconds=300)),
        "step": "60",
        **extra,
    }


async def test_a_users_series(client: httpx.AsyncClient, people, start, history):
    ann, token = people["ann"]
    answer = await client.get(
        "/account/v1.0/usage", params=window(start, resource=VM), headers=auth(token)
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["step"] == 60
    begin = int(start.timestamp())
    assert body["times"] == [begin + 60 * i for i in range(1, 6)]
    [series] = body["series"]
    assert series["project"] == str(ann) and series["holder"] == f"user:{ann}"
    assert series["resource"] == VM and series["limit"] > 0 and series["unit"] == ""
    assert series["usage"] == [2, 2, 2, 1, 1]
    assert series["peak"] == [2, 5, 2, 2, 1]  # three machines that lived 30 s show
    # the pending import is in the quota's usage, not in what was used
    quotas = (await client.get("/account/v1.0/quotas", headers=auth(token))).json()
    assert quotas[str(ann)][VM]["usage"] == 5


async def test_every_resource_by_default(client: httpx.AsyncClient, people, start, history):
    token = people["ann"][1]
    answer = await client.get("/account/v1.0/usage", headers=auth(token))
    body = answer.json()
    resources = {s["resource"] for s in body["series"]}
    assert VM in resources and "pithos.diskspace" in resources
    assert len(body["times"]) <= 200 and body["step"] == 600  # a day: 144 points
    vm = next(s for s in body["series"] if s["resource"] == VM)
    assert vm["usage"][-1] == 1 and max(vm["peak"]) == 5
    assert all(v == 0 for s in body["series"] if s["resource"] != VM for v in s["usage"])


async def test_the_project_in_all(client: httpx.AsyncClient, people, start, history):
    ann, token = people["ann"]
    params = window(start, resource=VM, scope="project", project=str(ann))
    answer = await client.get("/account/v1.0/usage", params=params, headers=auth(token))
    [series] = answer.json()["series"]
    assert series["holder"] == f"project:{ann}" and series["project"] == str(ann)
    assert series["usage"] == [2, 2, 2, 1, 1]
    # an administrator sees it too; another user does not
    root_token = people["root"][1]
    seen = await client.get("/account/v1.0/usage", params=params, headers=auth(root_token))
    assert seen.json()["series"] == [series]
    refused = await client.get("/account/v1.0/usage", params=params, headers=auth(people["bob"][1]))
    assert refused.status_code == 403
    assert "owner" in refused.text


async def test_rights_on_users(client: httpx.AsyncClient, people, start, history):
    ann = str(people["ann"][0])
    bob_token, root_token = people["bob"][1], people["root"][1]
    params = window(start, resource=VM, user=ann)
    refused = await client.get("/account/v1.0/usage", params=params, headers=auth(bob_token))
    assert refused.status_code == 403
    assert "own usage" in refused.json()["forbidden"]["message"]
    seen = await client.get("/account/v1.0/usage", params=params, headers=auth(root_token))
    assert seen.json()["series"][0]["usage"] == [2, 2, 2, 1, 1]
    # bob's own series in ann's project: he holds nothing there
    params = window(start, resource=VM, project=ann)
    mine = await client.get("/account/v1.0/usage", params=params, headers=auth(bob_token))
    assert mine.status_code == 200 and mine.json()["series"] == []
    anonymous = await client.get("/account/v1.0/usage", params=params)
    assert anonymous.status_code == 401


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"step": "1", "since": "2025-01-01T00:00:00Z"}, f"more than {MAX_POINTS} points"),
        ({"step": "0"}, "whole number"),
        ({"step": "ten"}, "whole number"),
        ({"since": "yesterday"}, "ISO 8601"),
        ({"since": "2999-01-01T00:00:00Z"}, "earlier than"),
        ({"resource": "cyclades.nothing"}, "Unknown resource"),
        ({"scope": "everyone"}, "scope is user or project"),
        ({"scope": "project"}, "needs a project"),
        ({"project": "not-a-uuid"}, "not a UUID"),
    ],
)
async def test_bad_questions(client: httpx.AsyncClient, people, params, words):
    answer = await client.get("/account/v1.0/usage", params=params, headers=auth(people["ann"][1]))
    assert answer.status_code == 400, answer.text
    assert words in answer.json()["badRequest"]["message"]


async def test_the_least_step_is_named(client: httpx.AsyncClient, people):
    until = utcnow().replace(microsecond=0)
    params = {"step": "60", "since": iso(until - dt.timedelta(days=365)), "until": iso(until)}
    answer = await client.get("/account/v1.0/usage", params=params, headers=auth(people["ann"][1]))
    assert answer.status_code == 400
    assert "at least 63072 s" in answer.json()["badRequest"]["message"]


async def test_an_unknown_project(client: httpx.AsyncClient, people):
    params = {"scope": "project", "project": str(uuid.uuid4())}
    answer = await client.get("/account/v1.0/usage", params=params, headers=auth(people["root"][1]))
    assert answer.status_code == 404


async def test_retention(client: httpx.AsyncClient, engines: Engines, settings, people):
    """Rows past the retention are pruned; times before it have no value, later ones
    stay exact (they need only the rows after them)."""
    ann, token = people["ann"]
    now = utcnow()
    await change(engines, ann, 2, now - dt.timedelta(days=3))
    await change(engines, ann, 1, now - dt.timedelta(hours=12))
    settings.usage_history_days = 1
    assert await engines.usage_history.prune() == 2  # the user's and the project's rows
    async with engines.db.session() as s:
        assert await s.scalar(select(func.count()).select_from(ProvisionLog)) == 2
    params = {"resource": VM, "since": iso(now - dt.timedelta(days=4)), "step": "86400"}
    body = (await client.get("/account/v1.0/usage", params=params, headers=auth(token))).json()
    assert body["kept_since"] is not None
    usage = body["series"][0]["usage"]
    assert usage[:3] == [None, None, None]  # ends 3, 2 and 1 days ago: before retention
    assert usage[3] == 3
    settings.usage_history_days = 0
    assert await engines.usage_history.prune() == 0
