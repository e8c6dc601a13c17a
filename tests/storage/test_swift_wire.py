"""What Swift sends on every answer, and says when it refuses (in process, on SQLite and
PostgreSQL): transaction ids, a type on empty answers, per-policy usage, and Swift's
texts for limits and conflicts where Synnefo's spec leaves the words open."""

from __future__ import annotations

import re
import time

from nefos.identity.service import Identity
from nefos.storage.swift import SWIFT_FAULTS

PREFIX = "/object-store/v1"
TRANS_ID = re.compile(r"^tx[0-9a-f]{21}-([0-9a-f]{10})$")


async def alice(identity: Identity) -> tuple[str, dict[str, str]]:
    user, token = await identity.create_user("alice@example.org")
    return f"{PREFIX}/{user.id}", {"X-Auth-Token": token}


async def test_every_answer_has_a_swift_transaction_id_and_a_type(client, identity):
    base, auth = await alice(identity)
    answers = [
        await client.head(base, headers=auth),
        await client.put(f"{base}/c", headers=auth),
        await client.post(f"{base}/c", headers={**auth, "X-Container-Meta-A": "1"}),
        await client.put(f"{base}/c/o", headers=auth, content=b"data"),
        await client.head(f"{base}/c", headers=auth),
        await client.delete(f"{base}/c/o", headers=auth),
        await client.get(f"{base}/c/missing", headers=auth),
        await client.get("/info"),
    ]
    for answer in answers:
        trans_id = answer.headers["X-Trans-Id"]
        assert answer.headers["X-Openstack-Request-Id"] == trans_id
        stamp = TRANS_ID.match(trans_id)
        assert stamp, trans_id
        assert abs(int(stamp.group(1), 16) - time.time()) < 60
        assert answer.headers["content-type"], answer
    assert len({answer.headers["X-Trans-Id"] for answer in answers}) == len(answers)
    assert answers[0].headers["content-type"] == "text/plain; charset=utf-8"
    assert answers[4].headers["content-type"] == "text/plain; charset=utf-8"
    assert answers[5].status_code == 204
    assert answers[5].headers["content-type"] == "text/html; charset=UTF-8"
    json_head = await client.head(f"{base}/c", headers={**auth, "Accept": "application/json"})
    assert json_head.headers["content-type"] == "application/json; charset=utf-8"
    # Other APIs keep OpenStack's request ids.
    other = await client.get("/identity/v3")
    assert other.headers["X-Openstack-Request-Id"].startswith("req-")


async def test_accounts_and_containers_name_their_storage_policy(client, identity):
    base, auth = await alice(identity)
    empty = await client.head(base, headers=auth)
    assert not [h for h in empty.headers if h.lower().startswith("x-account-storage-policy")]
    await client.put(f"{base}/c", headers=auth)
    await client.put(f"{base}/d", headers=auth)
    await client.put(f"{base}/c/o", headers=auth, content=b"12345")
    for answer in (await client.head(base, headers=auth), await client.get(base, headers=auth)):
        assert answer.headers["X-Account-Storage-Policy-Policy-0-Container-Count"] == "2"
        assert answer.headers["X-Account-Storage-Policy-Policy-0-Object-Count"] == "1"
        assert answer.headers["X-Account-Storage-Policy-Policy-0-Bytes-Used"] == "5"
    assert (await client.head(f"{base}/c", headers=auth)).headers["X-Storage-Policy"] == "Policy-0"
    info = (await client.get("/info")).json()["swift"]
    assert info["policies"] == [{"name": "Policy-0", "default": True}]
    assert info["max_meta_overall_size"] == 4096


async def test_limits_and_conflicts_in_swifts_words(client, identity):
    base, auth = await alice(identity)
    await client.put(f"{base}/c", headers=auth)
    long_name = await client.put(f"{base}/c/{'o' * 1025}", headers=auth, content=b"")
    assert (long_name.status_code, long_name.text) == (
        400,
        "Object name length of 1025 longer than 1024",
    )
    long_container = await client.put(f"{base}/{'c' * 257}", headers=auth)
    assert long_container.text == "Container name length of 257 longer than 256"
    many = {f"X-Object-Meta-K{n}": "v" for n in range(91)}
    too_many = await client.put(f"{base}/c/o", headers={**auth, **many}, content=b"")
    assert (too_many.status_code, too_many.text) == (400, "Too many metadata items; max 90")
    big = {f"X-Object-Meta-K{n}": "v" * 250 for n in range(17)}
    too_big = await client.put(f"{base}/c/o", headers={**auth, **big}, content=b"")
    assert (too_big.status_code, too_big.text) == (400, "Total metadata too large; max 4096")
    name = await client.put(
        f"{base}/c/o", headers={**auth, "X-Object-Meta-" + "k" * 129: "v"}, content=b""
    )
    assert name.text == "Metadata name too long: x-object-meta-" + "k" * 129
    value = await client.post(f"{base}/c", headers={**auth, "X-Container-Meta-V": "v" * 257})
    assert value.text == "Metadata value longer than 256: x-container-meta-v"
    await client.put(f"{base}/c/o", headers=auth, content=b"x")
    busy = await client.delete(f"{base}/c", headers=auth)
    assert (busy.status_code, busy.text) == (409, SWIFT_FAULTS["container_not_empty"][1])
    for method in ("PUT", "DELETE"):
        refused = await client.request(method, base, headers=auth)
        assert refused.status_code == 405
        assert refused.text == "The method is not allowed for this resource."
        assert refused.headers["Allow"] == "HEAD, GET, POST"
    assert (await client.head(f"{base}/c/o", headers=auth)).status_code == 200


async def test_where_swift_and_synnefo_differ_each_endpoint_answers_its_own(client, identity):
    """storage.dialect: Swift's 204 on the OpenStack endpoint, Pithos's 202 on Synnefo's."""
    base, auth = await alice(identity)
    await client.put(f"{base}/c", headers=auth)
    for prefix, status in ((PREFIX, 204), ("/pithos" + PREFIX, 202)):
        account = prefix + base[len(PREFIX) :]
        assert (await client.post(account, headers=auth)).status_code == status
        assert (await client.post(f"{account}/c", headers=auth)).status_code == status
