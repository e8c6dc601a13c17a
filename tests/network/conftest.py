"""Two users and an administrator of networks, on each database."""

from __future__ import annotations

import uuid

import pytest

from nefos.network.service import Caller, NetworkService
from nefos.quotas.service import project_holder, user_holder
from nefos.server.engines import Engines

NETWORK = "/network/v2.0"
SYNNEFO_NETWORK = "/cyclades/network/v2.0"


@pytest.fixture
def net(engines: Engines) -> NetworkService:
    return engines.network


@pytest.fixture
async def people(engines: Engines) -> dict[str, tuple[Caller, dict[str, str]]]:
    """alice, bob (the attacker) and root (an administrator): each a caller for the
    service and the headers of a token for the API."""
    found = {}
    for name in ("alice", "bob", "root"):
        user, token = await engines.identity.create_user(
            f"{name}-{uuid.uuid4().hex[:6]}@example.org", admin=name == "root"
        )
        caller = Caller(str(user.id), admin=name == "root")
        found[name] = (caller, {"X-Auth-Token": token})
    return found


async def holding(engines: Engines, user: str, resource: str) -> tuple[int, int]:
    for found in await engines.quotas.holdings([user_holder(user)]):
        if found.resource == resource and found.source == project_holder(user):
            return found.usage_min, found.usage_max
    raise AssertionError(f"no holding of {resource}")
