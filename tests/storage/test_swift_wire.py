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


async def test_metadata_values_are_utf8_on_openstack_and_percent_encoded_on_synnefo(
    client, identity
):
    """A value travels as swiftclient sends it (UTF-8, a % kept) on the OpenStack endpoint,
    and as kamaki does (percent-encoded both ways) on Synnefo's; it is one value."""
    base, auth = await alice(identity)
    synnefo = "/pithos" + base
    await client.put(f"{base}/c", headers=auth)
    await client.put(f"{base}/c/o", headers=auth, content=b"x")
    for level, url in (("Account", base), ("Container", f"{base}/c"), ("Object", f"{base}/c/o")):
        header = f"X-{level}-Meta-Word"
        sent = "snö 50%25".encode()
        stored = await client.post(url, headers={**auth, header: sent})
        assert stored.status_code in (202, 204), stored.text
        raw = dict((await client.head(url, headers=auth)).headers.raw)
        assert raw[header.lower().encode()] == sent  # byte for byte, the % literal
        pithos = dict((await client.head(synnefo + url[len(base) :], headers=auth)).headers.raw)
        assert pithos[header.lower().encode()] == b"sn%C3%B6 50%2525"
        # kamaki's percent-encoded value is decoded on its endpoint, kept on Swift's.
        await client.post(synnefo + url[len(base) :], headers={**auth, header: "sn%C3%B6"})
        raw = dict((await client.head(url, headers=auth)).headers.raw)
        assert raw[header.lower().encode()] == "snö".encode()
        await client.post(url, headers={**auth, header: "sn%C3%B6"})
        raw = dict((await client.head(url, headers=auth)).headers.raw)
        assert raw[header.lower().encode()] == b"sn%C3%B6"


async def test_path_lists_objects_only_on_openstack_and_subdirs_too_on_synnefo(client, identity):
    base, auth = await alice(identity)
    await client.put(f"{base}/c", headers=auth)
    for name in ("d/", "d/f", "d/sub/", "d/sub/g", "d/deep/h", "/lead/x"):
        assert (await client.put(f"{base}/c/{name}", headers=auth)).status_code == 201
    swift = await client.get(f"{base}/c?path=d", headers=auth)
    assert swift.text.splitlines() == ["d/f", "d/sub/"]  # no "d/deep/", not "d/" itself
    top = await client.get(f"{base}/c?path=", headers=auth)
    assert top.text.splitlines() == ["d/"]  # "/" is no object, only a virtual directory
    pithos = await client.get(f"/pithos{base}/c?path=d", headers=auth)
    assert pithos.text.splitlines() == ["d/deep/", "d/f", "d/sub/"]


async def test_names_not_utf8_or_with_nul_are_412_on_openstack_and_400_on_synnefo(client, identity):
    base, auth = await alice(identity)
    await client.put(f"{base}/c", headers=auth)
    for name in ("abc%00def", "%FFabc", "c/a%00b"):
        swift = await client.put(f"{base}/{name}", headers=auth, content=b"")
        assert (swift.status_code, swift.text) == (412, "Invalid UTF8 or contains NULL")
        pithos = await client.put(f"/pithos{base}/{name}", headers=auth, content=b"")
        assert pithos.status_code == 400, pithos.text
    listing = await client.get(base, headers=auth)
    assert listing.text.splitlines() == ["c"]
    assert (await client.get(f"{base}/c", headers=auth)).status_code == 204


async def test_a_write_to_the_version_only_path_is_a_bad_url(client, identity):
    _, auth = await alice(identity)
    for method in ("PUT", "POST", "DELETE"):
        for path in (PREFIX, PREFIX + "/", "/pithos" + PREFIX):
            answer = await client.request(method, path, headers=auth)
            assert (answer.status_code, answer.text) == (412, "Bad URL"), (method, path)


async def test_a_limit_that_is_no_whole_number_lists_the_default_page(client, identity):
    """Swift and Pithos both ignore such a limit; Unicode digits are still no number."""
    base, auth = await alice(identity)
    for name in ("a", "b", "c"):
        await client.put(f"{base}/{name}", headers=auth)
    for limit in ("5000.0", "²", "\u0661", "x", ""):
        listing = await client.get(base, params={"limit": limit}, headers=auth)
        assert listing.text.splitlines() == ["a", "b", "c"], limit
    assert (await client.get(base, params={"limit": "2"}, headers=auth)).text == "a\nb\n"
    assert (await client.get(base, params={"limit": "10001"}, headers=auth)).status_code == 412
    huge = await client.get(base, params={"limit": "9" * 40}, headers=auth)
    assert huge.status_code == 412


async def test_bulk_delete_works_at_every_level_on_the_accounts_paths(client, identity):
    """Swift's bulk filter reads ?bulk-delete on any path; the body names account paths."""
    base, auth = await alice(identity)
    await client.put(f"{base}/c", headers=auth)
    await client.put(f"{base}/c/o", headers=auth, content=b"x")
    await client.put(f"{base}/c/p", headers=auth, content=b"x")
    done = await client.request(
        "DELETE",
        f"{base}/c/o?bulk-delete",
        headers={**auth, "Accept": "application/json"},
        content="c/o\n/c/p\n",
    )
    assert done.status_code == 200
    assert done.json()["Number Deleted"] == 2, done.text
    assert (await client.get(f"{base}/c", headers=auth)).status_code == 204
