"""Pithos's block upload (``POST <container>`` with raw bytes) pays for what it stores:
blocks no version uses are charged to the account until a version uses them or gc
takes them (``nefos.storage.pending``), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import uuid

import httpx
import pytest
from sqlalchemy import select

from nefos.blocks import BLOCK_SIZE, EMPTY_HASH, block_hash
from nefos.quotas.service import project_holder, user_holder
from nefos.server.engines import Engines
from nefos.storage.models import PendingBlock

PREFIX = "/object-store/v1"
KIB = 1024
OCTETS = {"Content-Type": "application/octet-stream"}


@pytest.fixture
async def user(engines: Engines) -> tuple[str, str, dict[str, str]]:
    """An account with a container ``c``: its id, its URL and its auth headers."""
    found, token = await engines.identity.create_user("uploader@example.org")
    account = str(found.id)
    auth = {"X-Auth-Token": token}
    return account, f"{PREFIX}/{account}", auth


def noise(size: int) -> bytes:
    """Random bytes the store keeps whole (no trailing zero to strip)."""
    return os.urandom(size - 1) + b"\x01"


async def limit(engines: Engines, account: str, quota: int) -> None:
    await engines.quotas.set_base_quota(uuid.UUID(account), "pithos.diskspace", quota)


async def used(engines: Engines, account: str) -> int:
    """The account's pithos.diskspace usage, as every quota check sees it."""
    (held,) = [
        h.usage_max
        for h in await engines.quotas.holdings([user_holder(account)])
        if h.resource == "pithos.diskspace" and h.source == project_holder(account)
    ]
    return held


async def pending(engines: Engines, account: str) -> dict[str, int]:
    async with engines.db.session() as s:
        rows = await s.execute(
            select(PendingBlock.hash, PendingBlock.size).where(PendingBlock.account == account)
        )
        return dict(rows.all())


async def post_blocks(client: httpx.AsyncClient, base: str, auth: dict, body: bytes, **extra):
    return await client.post(
        f"{base}/c?update&format=json", headers={**auth, **OCTETS, **extra}, content=body
    )


async def test_blocks_beyond_the_quota_are_refused_and_not_stored(client, engines, user):
    """The attack: a 64 KiB quota, and block uploads until far past it."""
    account, base, auth = user
    await limit(engines, account, 64 * KIB)
    assert (await client.put(f"{base}/c", headers=auth)).status_code == 201
    bodies = [noise(16 * KIB) for _ in range(8)]  # 128 KiB in all
    answers = [await post_blocks(client, base, auth, body) for body in bodies]
    assert [a.status_code for a in answers] == [202] * 4 + [413] * 4
    assert answers[-1].headers["content-type"].startswith("text/plain")  # Swift's fault
    assert "pithos.diskspace" in answers[-1].text
    hashes = [block_hash(body) for body in bodies]
    assert [a.json() for a in answers[:4]] == [[h] for h in hashes[:4]]
    assert await engines.store.missing(hashes) == hashes[4:]  # nothing past the quota
    assert await used(engines, account) == 64 * KIB
    assert await pending(engines, account) == dict.fromkeys(hashes[:4], 16 * KIB)
    # the same block again costs nothing more, even at the limit
    again = await post_blocks(client, base, auth, bodies[0])
    assert again.status_code == 202 and again.json() == [hashes[0]]
    assert await used(engines, account) == 64 * KIB


async def test_a_body_of_many_blocks_stops_at_the_quota(client, engines, user):
    """A body is cut into 4 MiB blocks, each charged before it is stored: the blocks
    within the quota are kept (and charged), the first one past it is not stored."""
    account, base, auth = user
    await limit(engines, account, BLOCK_SIZE + 64 * KIB)
    await client.put(f"{base}/c", headers=auth)
    body = noise(BLOCK_SIZE) + noise(BLOCK_SIZE) + noise(100)
    first, second, third = (body[i : i + BLOCK_SIZE] for i in range(0, len(body), BLOCK_SIZE))
    answer = await post_blocks(client, base, auth, body)
    assert answer.status_code == 413
    names = [block_hash(first), block_hash(second), block_hash(third)]
    assert await engines.store.missing(names) == names[1:]
    assert await used(engines, account) == BLOCK_SIZE


async def test_the_zero_block_and_trailing_zeros_cost_nothing(client, engines, user):
    account, base, auth = user
    await limit(engines, account, 64 * KIB)
    await client.put(f"{base}/c", headers=auth)
    zeros = await post_blocks(client, base, auth, bytes(BLOCK_SIZE))
    assert zeros.status_code == 202 and zeros.json() == [EMPTY_HASH]
    padded = await post_blocks(client, base, auth, b"data" + bytes(BLOCK_SIZE - 4))
    assert padded.status_code == 202 and padded.json() == [block_hash(b"data")]
    assert await used(engines, account) == 4  # what the store keeps of them
    empty = await post_blocks(client, base, auth, b"")
    assert empty.status_code == 202 and empty.json() == []


async def test_pending_blocks_used_by_a_hashmap_are_charged_once(client, engines, user):
    account, base, auth = user
    await limit(engines, account, BLOCK_SIZE + 32 * KIB)
    await client.put(f"{base}/c", headers=auth)
    data = noise(BLOCK_SIZE) + noise(16 * KIB)
    hashmap = {
        "bytes": len(data),
        "hashes": [block_hash(data[:BLOCK_SIZE]), block_hash(data[BLOCK_SIZE:])],
    }
    url = f"{base}/c/big?hashmap&format=json"
    missing = await client.put(url, headers=auth, content=json.dumps(hashmap))
    assert missing.status_code == 409
    stored = await post_blocks(client, base, auth, data)
    assert stored.status_code == 202 and stored.json() == hashmap["hashes"]
    assert await used(engines, account) == len(data)
    done = await client.put(url, headers=auth, content=json.dumps(hashmap))
    assert done.status_code == 201  # charged twice, it would be past the quota
    assert await used(engines, account) == len(data)
    assert await pending(engines, account) == {}
    head = await client.head(base, headers=auth)
    assert head.headers["X-Account-Bytes-Used"] == str(len(data))
    assert (await client.get(f"{base}/c/big", headers=auth)).content == data
    # what is left of the quota, and no more
    assert (await post_blocks(client, base, auth, noise(16 * KIB))).status_code == 202
    assert (await post_blocks(client, base, auth, b"x")).status_code == 413


async def test_pending_blocks_count_in_an_object_write(client, engines, user):
    """A user cannot upload blocks up to the quota and then an object on top."""
    account, base, auth = user
    await limit(engines, account, 64 * KIB)
    await client.put(f"{base}/c", headers=auth)
    for _ in range(3):
        assert (await post_blocks(client, base, auth, noise(16 * KIB))).status_code == 202
    refused = await client.put(f"{base}/c/o", headers=auth, content=noise(32 * KIB))
    assert refused.status_code == 413
    fits = await client.put(f"{base}/c/o", headers=auth, content=noise(16 * KIB))
    assert fits.status_code == 201
    assert await used(engines, account) == 64 * KIB
    head = await client.head(base, headers=auth)
    assert head.headers["X-Account-Bytes-Used"] == str(16 * KIB)  # pending blocks: no object


async def test_a_container_quota_counts_the_blocks_uploaded_to_it(client, engines, user):
    account, base, auth = user
    await limit(engines, account, 1 << 30)
    await client.put(f"{base}/c", headers={**auth, "X-Container-Policy-Quota": str(32 * KIB)})
    await client.put(f"{base}/other", headers=auth)
    for _ in range(2):
        assert (await post_blocks(client, base, auth, noise(16 * KIB))).status_code == 202
    assert (await post_blocks(client, base, auth, b"more")).status_code == 413
    refused = await client.put(f"{base}/c/o", headers=auth, content=b"x")
    assert refused.status_code == 413
    elsewhere = await client.put(f"{base}/other/o", headers=auth, content=b"x")
    assert elsewhere.status_code == 201


async def test_a_writer_of_a_shared_object_charges_its_owner(client, engines, user, identity):
    """Blocks posted by someone the owner lets write are charged as the version they
    are for would be: to the account, in the container's project."""
    account, base, auth = user
    await limit(engines, account, 32 * KIB)
    await client.put(f"{base}/c", headers=auth)
    await client.put(f"{base}/c/shared", headers=auth, content=b"")
    other, token = await identity.create_user("writer@example.org")
    await client.post(
        f"{base}/c/shared?update", headers={**auth, "X-Object-Sharing": f"write={other.id}"}
    )
    theirs = {"X-Auth-Token": token}
    assert (await post_blocks(client, base, theirs, noise(32 * KIB))).status_code == 202
    assert (await post_blocks(client, base, theirs, b"x")).status_code == 413
    assert await used(engines, account) == 32 * KIB
