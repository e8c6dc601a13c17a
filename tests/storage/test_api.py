"""The object-store API over HTTP (in process, on SQLite and PostgreSQL): Swift's
behaviour and Pithos's extensions as spec §1 states them, on the Synnefo-dialect endpoint
kamaki uses (the OpenStack one differs only as storage.dialect says: test_dialects)."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import json
import os
import re
import time
from email.utils import format_datetime, parsedate_to_datetime

import httpx
import pytest

from nefos.blocks import BLOCK_SIZE, block_hash, merkle
from nefos.core import http
from nefos.identity.service import Identity
from nefos.quotas.service import project_holder, user_holder

PREFIX = "/pithos/object-store/v1"


@pytest.fixture
async def people(identity: Identity) -> dict[str, tuple[str, dict[str, str]]]:
    found = {}
    for name in ("alice", "bob", "carol"):
        user, token = await identity.create_user(f"{name}@example.org")
        found[name] = (str(user.id), {"X-Auth-Token": token})
    return found


@pytest.fixture
def alice(people) -> tuple[str, dict[str, str]]:
    account, headers = people["alice"]
    return f"{PREFIX}/{account}", headers


async def put(client: httpx.AsyncClient, url: str, headers: dict, data: bytes = b"", **extra):
    return await client.put(url, headers={**headers, **extra}, content=data)


async def test_tempauth_login_gives_storage_url_and_token(client, identity, people):
    account, headers = people["alice"]
    token = headers["X-Auth-Token"]
    response = await client.get(
        PREFIX, headers={"X-Auth-User": "alice@example.org", "X-Auth-Key": token}
    )
    assert response.status_code == 200
    assert response.headers["X-Storage-Url"].endswith(f"{PREFIX}/{account}")
    assert response.headers["X-Auth-Token"] == token
    wrong = await client.get(
        PREFIX, headers={"X-Auth-User": "alice@example.org", "X-Auth-Key": "x"}
    )
    assert wrong.status_code == 401
    assert wrong.headers["content-type"].startswith("text/plain")
    anonymous = await client.get(f"{PREFIX}/{account}")
    assert anonymous.status_code == 401


async def test_containers_and_listing_formats(client, alice):
    base, auth = alice
    assert (await client.get(base, headers=auth)).status_code == 204  # empty text listing
    assert (await client.get(base, headers=auth, params={"format": "json"})).json() == []
    assert (await put(client, f"{base}/photos", auth)).status_code == 201
    assert (await put(client, f"{base}/photos", auth)).status_code == 202
    assert (await put(client, f"{base}/docs", auth)).status_code == 201
    listing = await client.get(base, headers=auth)
    assert listing.text == "docs\nphotos\n"
    items = (await client.get(base, headers=auth, params={"format": "json"})).json()
    assert [i["name"] for i in items] == ["docs", "photos"]
    assert items[0]["x_container_policy"]["versioning"] == "auto"
    xml = await client.get(base, headers={**auth, "Accept": "application/xml"})
    assert "<container><name>docs</name>" in xml.text
    limited = await client.get(base, headers=auth, params={"limit": "1", "marker": "docs"})
    assert limited.text == "photos\n"
    head = await client.head(f"{base}/photos", headers=auth)
    assert head.status_code == 204
    assert head.headers["X-Container-Block-Size"] == str(BLOCK_SIZE)
    assert head.headers["X-Container-Block-Hash"] == "sha256"
    assert head.headers["X-Container-Object-Count"] == "0"


async def test_listings_page_forwards_and_in_reverse_as_swift_does(client, alice):
    base, auth = alice

    async def names(url: str, **params: str) -> list[str]:
        response = await client.get(url, headers=auth, params=params)
        assert response.status_code in (200, 204)
        return response.text.splitlines()

    for container in ("a", "b", "c", "d"):
        await put(client, f"{base}/{container}", auth)
    assert await names(base, reverse="true") == ["d", "c", "b", "a"]
    assert await names(base, end_marker="c") == ["a", "b"]
    # Reversed, marker bounds from above and end_marker from below.
    assert await names(base, reverse="on", marker="d", end_marker="a") == ["c", "b"]
    assert await names(base, reverse="false") == ["a", "b", "c", "d"]
    for name in ("x1", "x2", "y/1", "y/2", "z"):
        await put(client, f"{base}/a/{name}", auth, b"data")
    objects = f"{base}/a"
    assert await names(objects, reverse="1") == ["z", "y/2", "y/1", "x2", "x1"]
    assert await names(objects, reverse="yes", delimiter="/") == ["z", "y/", "x2", "x1"]
    assert await names(objects, reverse="t", marker="y/2", end_marker="x1") == ["y/1", "x2"]
    # Paging in reverse: each page's last name is the next page's marker.
    pages, marker = [], ""
    while page := await names(objects, reverse="true", limit="2", marker=marker):
        pages.append(page)
        marker = page[-1]
    assert pages == [["z", "y/2"], ["y/1", "x2"], ["x1"]]
    assert await names(objects, end_marker="y/1", prefix="x") == ["x1", "x2"]


async def test_object_round_trip_and_headers(client, alice):
    base, auth = alice
    await put(client, f"{base}/c", auth)
    data = os.urandom(BLOCK_SIZE + 1000)
    md5 = hashlib.md5(data).hexdigest()
    created = await put(
        client,
        f"{base}/c/dir/file.bin",
        auth,
        data,
        **{"Content-Type": "application/x-test", "X-Object-Meta-Color": "blue", "ETag": md5},
    )
    assert created.status_code == 201
    assert created.headers["ETag"] == md5
    got = await client.get(f"{base}/c/dir/file.bin", headers=auth)
    assert got.content == data
    assert got.headers["Content-Type"] == "application/x-test"
    assert got.headers["X-Object-Meta-Color"] == "blue"
    hashes = [block_hash(data[:BLOCK_SIZE]), block_hash(data[BLOCK_SIZE:])]
    assert got.headers["X-Object-Hash"] == merkle(hashes)
    assert got.headers["X-Object-Version"] == created.headers["X-Object-Version"]
    listing = await client.get(f"{base}/c", headers=auth, params={"format": "json"})
    (item,) = listing.json()
    assert item["name"] == "dir/file.bin"
    assert item["bytes"] == len(data)
    assert item["hash"] == md5
    assert item["x_object_hash"] == merkle(hashes)
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$", item["last_modified"])
    delimited = await client.get(f"{base}/c", headers=auth, params={"delimiter": "/"})
    assert delimited.text == "dir/\n"
    path = await client.get(f"{base}/c", headers=auth, params={"path": "dir", "format": "json"})
    assert [i["name"] for i in path.json()] == ["dir/file.bin"]


async def test_bad_uploads_write_nothing(client, alice):
    base, auth = alice
    await put(client, f"{base}/c", auth)
    mismatch = await put(client, f"{base}/c/o", auth, b"data", ETag="0" * 32)
    assert mismatch.status_code == 422
    for name in ("a/%2e%2e/b", "%2E%2E", "a%00b", "%ff%fe", "x" * 1025):
        response = await put(client, f"{base}/c/{name}", auth, b"data")
        assert response.status_code == 400, name
        assert response.headers["content-type"].startswith("text/plain")
    too_many = {f"X-Object-Meta-K{i}": "v" for i in range(91)}
    assert (await put(client, f"{base}/c/o", auth, b"d", **too_many)).status_code == 400
    too_long = await put(client, f"{base}/c/o", auth, b"d", **{"X-Object-Meta-K": "v" * 257})
    assert too_long.status_code == 400
    assert (await put(client, f"{base}/{'c' * 257}", auth)).status_code == 400
    assert (await client.get(f"{base}/c", headers=auth)).status_code == 204  # still empty
    unlengthed = await client.send(
        client.build_request("PUT", f"{base}/c/o", headers=auth, content=b"x"),
    )
    assert unlengthed.status_code == 201  # httpx sends Content-Length
    request = client.build_request("PUT", f"{base}/c/p", headers=auth)
    del request.headers["Content-Length"]
    assert (await client.send(request)).status_code == 411


async def test_ranges_and_conditions(client, alice):
    base, auth = alice
    await put(client, f"{base}/c", auth)
    data = bytes(range(256)) * 4
    etag = (await put(client, f"{base}/c/o", auth, data)).headers["ETag"]
    one = await client.get(f"{base}/c/o", headers={**auth, "Range": "bytes=10-19"})
    assert one.status_code == 206
    assert one.content == data[10:20]
    assert one.headers["Content-Range"] == f"bytes 10-19/{len(data)}"
    suffix = await client.get(f"{base}/c/o", headers={**auth, "Range": "bytes=-5"})
    assert suffix.content == data[-5:]
    multi = await client.get(f"{base}/c/o", headers={**auth, "Range": "bytes=0-1,100-102"})
    assert multi.status_code == 206
    boundary = multi.headers["Content-Type"].split("boundary=")[1]
    parts = multi.content.split(f"--{boundary}".encode())[1:-1]
    assert [p.split(b"\r\n\r\n", 1)[1][:-2] for p in parts] == [data[0:2], data[100:103]]
    assert int(multi.headers["Content-Length"]) == len(multi.content)
    beyond = await client.get(f"{base}/c/o", headers={**auth, "Range": "bytes=5000-"})
    assert beyond.status_code == 416
    assert beyond.headers["Content-Range"] == f"bytes */{len(data)}"
    junk = await client.get(f"{base}/c/o", headers={**auth, "Range": "bytes=z-"})
    assert junk.status_code == 200  # Swift ignores a malformed Range
    assert (
        await client.get(f"{base}/c/o", headers={**auth, "If-None-Match": etag})
    ).status_code == 304
    assert (
        await client.get(f"{base}/c/o", headers={**auth, "If-Match": "nope"})
    ).status_code == 412
    modified = (await client.head(f"{base}/c/o", headers=auth)).headers["Last-Modified"]
    since = await client.get(f"{base}/c/o", headers={**auth, "If-Modified-Since": modified})
    assert since.status_code == 304
    stale = await client.get(
        f"{base}/c/o", headers={**auth, "Range": "bytes=0-1", "If-Range": '"other"'}
    )
    assert stale.status_code == 200 and stale.content == data
    exists = await put(client, f"{base}/c/o", auth, b"new", **{"If-None-Match": "*"})
    assert exists.status_code == 412
    current = hashlib.md5(data).hexdigest()
    for conditions, status in (
        ({"If-Match": "other"}, 412),
        ({"If-None-Match": f'"{current}"'}, 412),
        ({"If-Match": f'"{current}"', "If-None-Match": "other"}, 201),
    ):  # a PUT replaces only the version its conditions name (spec §1.5)
        assert (await put(client, f"{base}/c/o", auth, b"new", **conditions)).status_code == status
    fresh = await put(client, f"{base}/c/none", auth, b"x", **{"If-Match": "*"})
    assert fresh.status_code == 412  # If-Match needs an object to match


async def test_hashmap_protocol_as_kamaki_speaks_it(client, alice):
    base, auth = alice
    await put(client, f"{base}/c", auth)
    data = os.urandom(2 * BLOCK_SIZE + 17)
    blocks = [data[i : i + BLOCK_SIZE] for i in range(0, len(data), BLOCK_SIZE)]
    hashmap = {"bytes": len(data), "hashes": [block_hash(b) for b in blocks]}
    url = f"{base}/c/big?hashmap&format=json"
    first = await put(client, url, auth, json.dumps(hashmap).encode())
    assert first.status_code == 409
    assert first.json() == hashmap["hashes"]
    for block in blocks:
        stored = await client.post(
            f"{base}/c?update&format=json",
            headers={**auth, "Content-Type": "application/octet-stream"},
            content=block,
        )
        assert stored.status_code == 202
        assert stored.json() == [block_hash(block)]
    done = await put(client, url, auth, json.dumps(hashmap).encode())
    assert done.status_code == 201
    assert (await client.get(f"{base}/c/big", headers=auth)).content == data
    got = (await client.get(url, headers=auth)).json()
    assert got == {**hashmap, "block_hash": "sha256", "block_size": BLOCK_SIZE}
    bad = await put(client, url, auth, json.dumps({"bytes": 5, "hashes": []}).encode())
    assert bad.status_code == 400


async def test_versions_copy_move(client, alice):
    base, auth = alice
    await put(client, f"{base}/c", auth)
    v1 = (await put(client, f"{base}/c/o", auth, b"one")).headers["X-Object-Version"]
    await put(client, f"{base}/c/o", auth, b"two")
    listed = (await client.get(f"{base}/c/o", headers=auth, params={"version": "list"})).json()
    assert [v[0] for v in listed["versions"]] == [int(v1), int(v1) + 1]
    old = await client.get(f"{base}/c/o", headers=auth, params={"version": v1})
    assert old.content == b"one"
    restored = await put(
        client, f"{base}/c/o", auth, **{"X-Copy-From": "/c/o", "X-Source-Version": v1}
    )
    assert restored.status_code == 201
    assert (await client.get(f"{base}/c/o", headers=auth)).content == b"one"
    uuid = (await client.head(f"{base}/c/o", headers=auth)).headers["X-Object-UUID"]
    copied = await client.request("COPY", f"{base}/c/o", headers={**auth, "Destination": "/c/copy"})
    assert copied.status_code == 201
    assert (await client.head(f"{base}/c/copy", headers=auth)).headers["X-Object-UUID"] != uuid
    moved = await put(client, f"{base}/c/renamed", auth, **{"X-Move-From": "/c/o"})
    assert moved.status_code == 201
    assert (await client.head(f"{base}/c/renamed", headers=auth)).headers["X-Object-UUID"] == uuid
    assert (await client.head(f"{base}/c/o", headers=auth)).status_code == 404


async def test_sharing_groups_and_public_links(client, people, alice):
    base, auth = alice
    alice_id = people["alice"][0]
    bob_id, bob = people["bob"]
    carol_id, carol = people["carol"]
    await put(client, f"{base}/c", auth)
    await put(client, f"{base}/c/docs", auth, **{"Content-Type": "application/directory"})
    await put(client, f"{base}/c/docs/a.txt", auth, b"secret a")
    await put(client, f"{base}/c/private.txt", auth, b"private")
    assert (await client.get(f"{base}/c/docs/a.txt", headers=bob)).status_code == 403
    assert (await client.get(f"{base}/c", headers=bob)).status_code == 403
    assert (await client.head(base, headers=bob)).status_code == 403
    shared = await client.post(
        f"{base}/c/docs?update", headers={**auth, "X-Object-Sharing": f"read={bob_id}"}
    )
    assert shared.status_code == 202
    readable = await client.get(f"{base}/c/docs/a.txt", headers=bob)
    assert readable.content == b"secret a"
    assert readable.headers["X-Object-Shared-By"] == "c/docs"
    assert readable.headers["X-Object-Allowed-To"] == "read"
    assert (await put(client, f"{base}/c/docs/a.txt", bob, b"mine")).status_code == 403
    assert (await client.get(f"{base}/c/private.txt", headers=bob)).status_code == 403
    assert (await client.get(f"{base}/c", headers=bob)).text == "docs\ndocs/a.txt\n"
    assert (await client.get(PREFIX, headers=bob)).text == f"{alice_id}\n"
    assert (await client.get(f"{base}/c/docs/a.txt", headers=carol)).status_code == 403
    group = await client.post(base, headers={**auth, "X-Account-Group-Friends": carol_id})
    assert group.status_code == 202
    account_headers = (await client.head(base, headers=auth)).headers
    assert account_headers["X-Account-Group-Friends"] == carol_id
    assert int(account_headers[f"X-Account-Policy-Quota-{alice_id}"]) > 0
    await client.post(
        f"{base}/c/docs?update",
        headers={**auth, "X-Object-Sharing": f"write={alice_id}:friends"},
    )
    assert (await put(client, f"{base}/c/docs/b.txt", carol, b"from carol")).status_code == 201
    assert (await client.get(f"{base}/c/docs/a.txt", headers=bob)).status_code == 403
    bad = await client.post(f"{base}/c/docs?update", headers={**auth, "X-Object-Sharing": "write"})
    assert bad.status_code == 400
    published = await client.post(
        f"{base}/c/private.txt?update", headers={**auth, "X-Object-Public": "true"}
    )
    assert published.status_code == 202
    link = (await client.head(f"{base}/c/private.txt", headers=auth)).headers["X-Object-Public"]
    token = link.rsplit("/", 1)[1]
    assert re.fullmatch(r"[0-9A-Za-z]{16}", token)
    assert link.endswith(f"/pithos/public/{token}")  # on the dialect it was asked through
    assert (await client.get(link)).content == b"private"
    public = await client.get(f"/public/{token}")
    assert public.content == b"private"
    assert "X-Object-Hash" not in public.headers
    moved = await put(client, f"{base}/c/renamed.txt", auth, **{"X-Move-From": "/c/private.txt"})
    assert moved.status_code == 201
    assert (await client.get(f"/public/{token}")).content == b"private"  # the link follows
    renamed = (await client.head(f"{base}/c/renamed.txt", headers=auth)).headers
    assert renamed["X-Object-Public"] == link
    await client.post(f"{base}/c/renamed.txt?update", headers={**auth, "X-Object-Public": "false"})
    assert (await client.get(f"/public/{token}")).status_code == 404
    assert (await client.get(f"{base}/c/docs/b.txt", headers=carol)).status_code == 200
    await client.delete(f"{base}/c/docs", headers=auth)
    await put(client, f"{base}/c/docs", auth, b"a new file at the shared path")
    # Deleting the shared path ended its sharing: nothing below it is shared any more.
    assert (await client.get(f"{base}/c/docs", headers=carol)).status_code == 403
    assert (await client.get(f"{base}/c/docs/b.txt", headers=carol)).status_code == 403


async def test_metadata_updates(client, alice):
    base, auth = alice
    await put(client, f"{base}/c", auth, **{"X-Container-Meta-A": "1"})
    await client.post(f"{base}/c", headers={**auth, "X-Container-Meta-B": "2"})
    head = await client.head(f"{base}/c", headers=auth)
    assert (head.headers["X-Container-Meta-A"], head.headers["X-Container-Meta-B"]) == ("1", "2")
    await client.post(f"{base}/c", headers={**auth, "X-Remove-Container-Meta-A": "x"})
    assert "X-Container-Meta-A" not in (await client.head(f"{base}/c", headers=auth)).headers
    await put(client, f"{base}/c/o", auth, b"x", **{"X-Object-Meta-A": "1", "X-Object-Meta-B": "2"})
    await client.post(f"{base}/c/o?update", headers={**auth, "X-Object-Meta-C": "3"})
    merged = (await client.head(f"{base}/c/o", headers=auth)).headers
    assert {merged["X-Object-Meta-A"], merged["X-Object-Meta-C"]} == {"1", "3"}
    await client.post(f"{base}/c/o", headers={**auth, "X-Object-Meta-D": "4"})
    replaced = (await client.head(f"{base}/c/o", headers=auth)).headers
    assert "X-Object-Meta-A" not in replaced and replaced["X-Object-Meta-D"] == "4"
    bad_policy = await put(client, f"{base}/d", auth, **{"X-Container-Policy-Color": "red"})
    assert bad_policy.status_code == 400


async def test_partial_updates_append_truncate(client, alice):
    base, auth = alice
    await put(client, f"{base}/c", auth)
    data = os.urandom(BLOCK_SIZE + 100)
    await put(client, f"{base}/c/o", auth, data)
    octets = {"Content-Type": "application/octet-stream"}
    patch = await client.post(
        f"{base}/c/o",
        headers={**auth, **octets, "Content-Range": f"bytes {BLOCK_SIZE - 2}-{BLOCK_SIZE + 1}/*"},
        content=b"ABCD",
    )
    assert patch.status_code == 204
    expected = data[: BLOCK_SIZE - 2] + b"ABCD" + data[BLOCK_SIZE + 2 :]
    assert (await client.get(f"{base}/c/o", headers=auth)).content == expected
    await client.post(
        f"{base}/c/o", headers={**auth, **octets, "Content-Range": "bytes */*"}, content=b"tail"
    )
    expected += b"tail"
    assert (await client.get(f"{base}/c/o", headers=auth)).content == expected
    await client.post(
        f"{base}/c/o", headers={**auth, "X-Object-Bytes": "10", "X-Source-Object": "/c/o"}
    )
    assert (await client.get(f"{base}/c/o", headers=auth)).content == expected[:10]
    await client.post(f"{base}/c/o", headers={**auth, "X-Object-Bytes": "20"})
    grown = (await client.get(f"{base}/c/o", headers=auth)).content
    assert grown == expected[:10] + bytes(10)  # old bytes past the cut never come back
    more = os.urandom(BLOCK_SIZE)  # one block (no map of its own) grows past one block
    await client.post(
        f"{base}/c/o", headers={**auth, **octets, "Content-Range": "bytes */*"}, content=more
    )
    assert (await client.get(f"{base}/c/o", headers=auth)).content == grown + more


async def test_container_quota_and_delete_rules(client, alice):
    base, auth = alice
    await put(client, f"{base}/c", auth, **{"X-Container-Policy-Quota": "10"})
    assert (await put(client, f"{base}/c/a", auth, b"12345678")).status_code == 201
    over = await put(client, f"{base}/c/b", auth, b"12345")
    assert over.status_code == 413
    assert (await client.get(f"{base}/c", headers=auth)).text == "a\n"
    assert (await client.delete(f"{base}/c", headers=auth)).status_code == 409
    assert (await client.delete(f"{base}/c/missing", headers=auth)).status_code == 404
    emptied = await client.delete(f"{base}/c", headers=auth, params={"delimiter": "/"})
    assert emptied.status_code == 204
    assert (await client.head(f"{base}/c", headers=auth)).headers["X-Container-Object-Count"] == "0"
    assert (await client.delete(f"{base}/c", headers=auth)).status_code == 204
    assert (await client.head(f"{base}/c", headers=auth)).status_code == 404


async def test_recursive_copy_and_move(client, alice):
    base, auth = alice
    await put(client, f"{base}/c", auth)
    await put(client, f"{base}/c/src", auth, **{"Content-Type": "application/directory"})
    await put(client, f"{base}/c/src/a.txt", auth, b"a")
    await put(client, f"{base}/c/src/sub/b.txt", auth, b"b")
    copied = await put(client, f"{base}/c/dst?delimiter=/", auth, **{"X-Copy-From": "/c/src"})
    assert copied.status_code == 201
    moved = await client.request(
        "MOVE", f"{base}/c/src?delimiter=/", headers={**auth, "Destination": "/c/mv"}
    )
    assert moved.status_code == 201
    listing = (await client.get(f"{base}/c", headers=auth)).text.split()
    assert listing == ["dst", "dst/a.txt", "dst/sub/b.txt", "mv", "mv/a.txt", "mv/sub/b.txt"]


async def test_bulk_delete_and_manifests(client, alice):
    base, auth = alice
    await put(client, f"{base}/c", auth)
    for index in range(3):
        await put(client, f"{base}/c/seg/{index}", auth, f"part{index}".encode())
    await put(client, f"{base}/c/whole", auth, **{"X-Object-Manifest": "c/seg/"})
    whole = await client.get(f"{base}/c/whole", headers=auth)
    assert whole.content == b"part0part1part2"
    assert whole.headers["X-Object-Manifest"] == "c/seg/"
    assert (
        await client.get(f"{base}/c/whole", headers={**auth, "Range": "bytes=4-6"})
    ).content == b"0pa"
    segments = [
        {"path": f"/c/seg/{i}", "etag": hashlib.md5(f"part{i}".encode()).hexdigest()}
        for i in (2, 0)
    ]
    slo = await put(
        client, f"{base}/c/slo?multipart-manifest=put", auth, json.dumps(segments).encode()
    )
    assert slo.status_code == 201
    assert (await client.get(f"{base}/c/slo", headers=auth)).content == b"part2part0"
    bad = [{"path": "/c/seg/0", "etag": "0" * 32}]
    refused = await put(
        client, f"{base}/c/bad?multipart-manifest=put", auth, json.dumps(bad).encode()
    )
    assert refused.status_code == 400
    body = "/c/seg/0\n/c/seg/1\n/c/nothing\n"
    result = await client.post(
        f"{base}?bulk-delete",
        headers={**auth, "Accept": "application/json", "Content-Type": "text/plain"},
        content=body,
    )
    assert result.json()["Number Deleted"] == 2
    assert result.json()["Number Not Found"] == 1
    info = await client.get("/info")
    assert "slo" in info.json() and "bulk_delete" in info.json()


async def test_until_lists_the_past_and_purges_history(client, alice):
    base, auth = alice
    await put(client, f"{base}/c", auth)
    await put(client, f"{base}/c/kept", auth, b"1")
    await put(client, f"{base}/c/gone", auth, b"1")
    await asyncio.sleep(0.05)
    then = time.time()
    await asyncio.sleep(0.05)
    await client.delete(f"{base}/c/gone", headers=auth)
    await put(client, f"{base}/c/later", auth, b"1")
    await put(client, f"{base}/c/kept", auth, b"2")
    now = (await client.get(f"{base}/c", headers=auth)).text.split()
    assert now == ["kept", "later"]
    past = await client.get(f"{base}/c", headers=auth, params={"until": f"{then:.6f}"})
    assert past.text.split() == ["gone", "kept"]
    assert "X-Container-Until-Timestamp" in past.headers
    versions = await client.get(f"{base}/c/kept", headers=auth, params={"version": "list"})
    assert len(versions.json()["versions"]) == 2
    purged = await client.delete(f"{base}/c", headers=auth, params={"until": f"{time.time():.6f}"})
    assert purged.status_code == 204
    versions = await client.get(f"{base}/c/kept", headers=auth, params={"version": "list"})
    assert len(versions.json()["versions"]) == 1
    assert (await client.get(f"{base}/c/kept", headers=auth)).content == b"2"
    past = await client.get(f"{base}/c", headers=auth, params={"until": f"{then:.6f}"})
    assert past.status_code == 204  # the history it showed is gone


async def test_html_form_upload(client, alice):
    """Pithos: a multipart/form-data POST with the file in X-Object-Data creates the
    object, the token coming in the query string as a browser form sends it."""
    base, auth = alice
    await put(client, f"{base}/c", auth)
    token = auth["X-Auth-Token"]
    posted = await client.post(
        f"{base}/c/from-form.txt",
        params={"X-Auth-Token": token},
        files={"X-Object-Data": ("notes.txt", b"typed in a browser", "text/plain")},
    )
    assert posted.status_code == 201
    got = await client.get(f"{base}/c/from-form.txt", headers=auth)
    assert got.content == b"typed in a browser"
    assert got.headers["Content-Type"].startswith("text/plain")
    missing = await client.post(
        f"{base}/c/other", params={"X-Auth-Token": token}, files={"other": ("a", b"x")}
    )
    assert missing.status_code == 400


# -- what Swift's own clients and functional tests rely on ------------------------------


async def test_listings_say_their_type_and_containers_their_time(client, alice):
    base, auth = alice
    created = await put(client, f"{base}/box", auth)
    assert created.status_code == 201
    empty = await client.get(f"{base}/box", headers=auth)
    assert (empty.status_code, empty.headers["content-type"]) == (204, "text/plain; charset=utf-8")
    head = await client.head(f"{base}/box", headers=auth, params={"format": "json"})
    assert head.headers["content-type"] == "application/json; charset=utf-8"
    for checked in (head, await client.head(base, headers=auth)):  # what swiftclient checks
        assert checked.headers["Content-Length"] == "0"
        assert checked.headers["Accept-Ranges"] == "bytes"
    # swiftclient finds the capabilities beside the version in the storage URL.
    capabilities = await client.get("/object-store/info")
    assert capabilities.status_code == 200 and "slo" in capabilities.json()
    assert head.headers["X-Storage-Policy"] == "Policy-0"
    first = head.headers["Last-Modified"]  # a container has one before any write
    listing = await client.get(base, headers=auth, params={"format": "json"})
    assert listing.headers["content-type"] == "application/json; charset=utf-8"
    assert listing.json()[0]["last_modified"] and listing.json()[0]["storage_policy"] == "Policy-0"
    xml = await client.get(base, headers=auth, params={"format": "xml"})
    assert "<last_modified>" in xml.text and "<storage_policy>Policy-0" in xml.text
    await asyncio.sleep(1.01)  # Last-Modified counts whole seconds
    posted = await client.post(f"{base}/box", headers={**auth, "X-Container-Meta-A": "1"})
    assert posted.status_code == 202
    second = (await client.head(f"{base}/box", headers=auth)).headers["Last-Modified"]
    assert second != first
    too_many = await client.get(base, headers=auth, params={"limit": "10001"})
    assert too_many.status_code == 412


async def test_account_listing_rolls_names_up_at_a_delimiter(client, alice):
    base, auth = alice
    for name in ("test", "test-bar", "test-foo", "other"):
        await put(client, f"{base}/{name}", auth)
    plain = await client.get(base, headers=auth, params={"delimiter": "-"})
    assert plain.text == "other\ntest\ntest-\n"
    items = (
        await client.get(base, headers=auth, params={"delimiter": "-", "format": "json"})
    ).json()
    assert items[-1] == {"subdir": "test-"}
    backwards = await client.get(base, headers=auth, params={"delimiter": "-", "reverse": "on"})
    assert backwards.text == "test-\ntest\nother\n"
    after = await client.get(base, headers=auth, params={"delimiter": "-", "marker": "test-"})
    assert after.status_code == 204  # the page that ended with test- left nothing out


async def test_refusals_describe_the_object_and_name_the_request(client, alice):
    base, auth = alice
    await put(client, f"{base}/c", auth)
    await put(client, f"{base}/c/o", auth, b"hello")
    etag = hashlib.md5(b"hello").hexdigest()
    failed = await client.get(f"{base}/c/o", headers={**auth, "If-Match": "bogus"})
    assert (failed.status_code, failed.headers["ETag"]) == (412, etag)
    unsatisfiable = await client.get(f"{base}/c/o", headers={**auth, "Range": "bytes=9-"})
    assert unsatisfiable.status_code == 416
    assert unsatisfiable.headers["Content-Range"] == "bytes */5"
    assert unsatisfiable.headers["ETag"] == etag
    assert failed.headers["X-Trans-Id"] == failed.headers["X-Openstack-Request-Id"]
    anonymous = await client.get(f"{base}/c/o")
    assert anonymous.status_code == 401 and "Swift realm" in anonymous.headers["WWW-Authenticate"]
    nowhere = await client.request("COPY", f"{base}/c/o", headers=auth)
    assert nowhere.status_code == 412
    malformed = await client.request("COPY", f"{base}/c/o", headers={**auth, "Destination": "c"})
    assert malformed.status_code == 412


async def test_copies_with_fresh_metadata_a_range_or_from_an_account(client, people, alice):
    base, auth = alice
    account = base.rsplit("/", 1)[1]
    await put(client, f"{base}/c", auth)
    await put(
        client, f"{base}/c/o", auth, b"0123456789",
        **{"X-Object-Meta-Old": "1", "Content-Disposition": "inline"},
    )  # fmt: skip
    fresh = await client.request(
        "COPY",
        f"{base}/c/o",
        headers={
            **auth,
            "Destination": "/c/fresh",
            "X-Fresh-Metadata": "true",
            "X-Object-Meta-New": "2",
        },
    )
    assert fresh.status_code == 201
    copied = await client.head(f"{base}/c/fresh", headers=auth)
    assert copied.headers["X-Object-Meta-New"] == "2"
    assert "X-Object-Meta-Old" not in copied.headers
    assert "Content-Disposition" not in copied.headers
    ranged = await client.request(
        "COPY", f"{base}/c/o", headers={**auth, "Destination": "/c/part", "Range": "bytes=2-4"}
    )
    assert ranged.status_code == 201
    part = await client.get(f"{base}/c/part", headers=auth)
    assert part.content == b"234" and part.headers["X-Object-Meta-Old"] == "1"
    assert part.headers["ETag"] == hashlib.md5(b"234").hexdigest()
    by_swift_name = await put(
        client, f"{base}/c/again", auth,
        **{"X-Copy-From": "/c/o", "X-Copy-From-Account": account},
    )  # fmt: skip
    assert by_swift_name.status_code == 201
    assert (await client.get(f"{base}/c/again", headers=auth)).content == b"0123456789"


async def test_dynamic_large_objects_as_swift_keeps_them(client, alice):
    base, auth = alice
    await put(client, f"{base}/c", auth)
    for letter in "ab":
        await put(client, f"{base}/c/seg%25ff/{letter}", auth, letter.encode() * 3)
    made = await put(client, f"{base}/c/man", auth, b"own", **{"X-Object-Manifest": "c/seg%25ff/"})
    assert made.status_code == 201
    whole = await client.get(f"{base}/c/man", headers=auth)
    assert whole.content == b"aaabbb"  # the header is URL-encoded: %25 is a percent sign
    assert whole.headers["X-Object-Manifest"] == "c/seg%25ff/"
    itself = await client.get(f"{base}/c/man", headers=auth, params={"multipart-manifest": "get"})
    assert itself.content == b"own"
    utf8 = "c/ünï/".encode()  # UTF-8 in a header comes back as the same bytes
    await put(client, f"{base}/c/man2", auth, b"", **{"X-Object-Manifest": utf8})
    head = await client.head(f"{base}/c/man2", headers=auth)
    assert dict(head.headers.raw)[b"x-object-manifest"] == utf8
    copied = await client.request("COPY", f"{base}/c/man", headers={**auth, "Destination": "c/cp"})
    assert copied.status_code == 201
    await put(client, f"{base}/c/seg%25ff/c", auth, b"ccc")  # the copy holds the data itself
    copy = await client.get(f"{base}/c/cp", headers=auth)
    assert copy.content == b"aaabbb" and "X-Object-Manifest" not in copy.headers
    kept = await client.request(
        "COPY", f"{base}/c/man?multipart-manifest=get", headers={**auth, "Destination": "c/m2"}
    )
    assert kept.status_code == 201
    assert (await client.get(f"{base}/c/m2", headers=auth)).content == b"aaabbbccc"
    await client.post(f"{base}/c/man", headers=auth)  # a POST without the header ends it
    assert (await client.get(f"{base}/c/man", headers=auth)).content == b"own"


async def test_static_large_objects_nest_take_ranges_and_inline_data(client, alice):
    base, auth = alice
    await put(client, f"{base}/c", auth)
    md5 = {}
    for letter in "abc":
        data = letter.encode() * 4
        md5[letter] = hashlib.md5(data).hexdigest()
        await put(client, f"{base}/c/{letter}", auth, data)
    inner = [{"path": f"/c/{x}", "etag": md5[x], "size_bytes": 4} for x in "ab"]
    made = await put(
        client, f"{base}/c/inner?multipart-manifest=put", auth, json.dumps(inner).encode()
    )
    assert made.status_code == 201
    inner_etag = hashlib.md5((md5["a"] + md5["b"]).encode()).hexdigest()
    assert made.headers["ETag"] == f'"{inner_etag}"'
    outer = [
        {"path": "/c/inner", "etag": inner_etag, "size_bytes": 8, "range": "-6"},
        {"data": base64.b64encode(b"--").decode()},
        {"path": "/c/c", "range": "1-2"},
    ]
    wanted = hashlib.md5(
        (f"{inner_etag}:2-7;" + hashlib.md5(b"--").hexdigest() + f"{md5['c']}:1-2;").encode()
    ).hexdigest()
    wrong = await put(
        client, f"{base}/c/outer?multipart-manifest=put", auth, json.dumps(outer).encode(),
        ETag="0" * 32,
    )  # fmt: skip
    assert wrong.status_code == 422
    made = await put(
        client, f"{base}/c/outer?multipart-manifest=put", auth, json.dumps(outer).encode(),
        ETag=wanted,
    )  # fmt: skip
    assert made.status_code == 201
    whole = await client.get(f"{base}/c/outer", headers=auth)
    assert whole.content == b"aabbbb--cc"
    assert whole.headers["ETag"] == f'"{wanted}"'
    part = await client.get(f"{base}/c/outer", headers={**auth, "Range": "bytes=3-8"})
    assert part.content == b"bbb--c"
    listed = {
        item["name"]: item
        for item in (await client.get(f"{base}/c", headers=auth, params={"format": "json"})).json()
    }  # an SLO is listed at its whole size, with its own ETag beside the manifest's
    assert (listed["outer"]["bytes"], listed["outer"]["slo_etag"]) == (10, f'"{wanted}"')
    assert (listed["inner"]["bytes"], listed["a"]["bytes"]) == (8, 4)
    assert "slo_etag" not in listed["a"]
    stored = (
        await client.get(f"{base}/c/outer", headers=auth, params={"multipart-manifest": "get"})
    ).json()
    assert stored[0]["sub_slo"] is True and stored[0]["range"] == "2-7"
    itself = [{"path": "/c/self"}]
    refused = await put(
        client, f"{base}/c/self?multipart-manifest=put", auth, json.dumps(itself).encode()
    )
    assert refused.status_code == 400
    gone = await client.delete(
        f"{base}/c/outer", headers={**auth, "Accept": "application/json"},
        params={"multipart-manifest": "delete"},
    )  # fmt: skip
    assert gone.json()["Number Deleted"] == 5  # a, b, inner, c and outer itself
    left = await client.get(f"{base}/c", headers=auth)
    assert left.status_code == 204


async def test_a_refused_container_write_changes_nothing(client, alice):
    base, auth = alice
    too_long = await put(client, f"{base}/new", auth, **{"X-Container-Meta-" + "k" * 129: "v"})
    assert too_long.status_code == 400
    assert (await client.head(f"{base}/new", headers=auth)).status_code == 404
    unknown = await put(client, f"{base}/new", auth, **{"X-Storage-Policy": "gold"})
    assert unknown.status_code == 400
    assert (await client.head(f"{base}/new", headers=auth)).status_code == 404
    named = await put(client, f"{base}/new", auth, **{"X-Storage-Policy": "policy-0"})
    assert named.status_code == 201
    empty = await put(client, f"{base}/other", auth, **{"X-Storage-Policy": ""})
    assert empty.status_code == 201  # an empty header asks for the default one
    refused = await client.post(
        f"{base}/new",
        headers={**auth, "X-Container-Policy-Quota": "5", "X-Container-Meta-X": "v" * 257},
    )
    assert refused.status_code == 400
    head = await client.head(f"{base}/new", headers=auth)
    assert head.headers["X-Container-Policy-Quota"] == "0"  # the quota did not change
    missing = await client.post(f"{base}/absent", headers={**auth, "X-Container-Meta-A": "1"})
    assert missing.status_code == 404


async def test_objects_expire_at_x_delete_at_and_the_expirer_frees_them(client, engines, alice):
    base, auth = alice
    account = base.rsplit("/", 1)[1]
    await put(client, f"{base}/c", auth)
    for bad, header in (("soon", "X-Delete-After"), ("1.5", "X-Delete-At"), ("12", "X-Delete-At")):
        refused = await put(client, f"{base}/c/x", auth, b"x", **{header: bad})
        assert refused.status_code == 400
    assert (await client.head(f"{base}/c/x", headers=auth)).status_code == 404
    far = await put(client, f"{base}/c/far", auth, b"x", **{"X-Delete-After": "1" + "0" * 20})
    head = await client.head(f"{base}/c/far", headers=auth)
    # Clamped to the latest second Swift keeps.
    assert (far.status_code, head.headers["X-Delete-At"]) == (201, "9999999999")
    later = int(time.time()) + 3600
    await put(client, f"{base}/c/kept", auth, b"kept", **{"X-Delete-At": str(later)})
    head = await client.head(f"{base}/c/kept", headers=auth)
    assert head.headers["X-Delete-At"] == f"{later:010d}"
    mismatch = await client.delete(f"{base}/c/kept", headers={**auth, "X-If-Delete-At": "7"})
    assert mismatch.status_code == 412
    await client.post(f"{base}/c/kept", headers={**auth, "X-Object-Meta-A": "1"})
    assert "X-Delete-At" not in (await client.head(f"{base}/c/kept", headers=auth)).headers
    # Long enough for a loaded CI machine to PUT, COPY and GET before it expires.
    expires = time.time() + 4
    await put(client, f"{base}/c/brief", auth, b"12345", **{"X-Delete-After": "4"})
    copied = await client.request(
        "COPY", f"{base}/c/brief", headers={**auth, "Destination": "/c/copy"}
    )
    assert copied.status_code == 201  # a copy expires with its source, as in Swift
    assert (await client.get(f"{base}/c/brief", headers=auth)).content == b"12345"
    await asyncio.sleep(expires - time.time() + 1.1)
    for name in ("brief", "copy"):
        assert (await client.get(f"{base}/c/{name}", headers=auth)).status_code == 404
    listed = await client.get(f"{base}/c", headers=auth)
    assert listed.text == "brief\ncopy\nfar\nkept\n"  # listed until the expirer runs
    assert await engines.storage.expire(time.time()) == 2
    assert await engines.storage.expire(time.time()) == 0
    assert (await client.get(f"{base}/c", headers=auth)).text == "far\nkept\n"
    usage = await client.head(base, headers=auth)
    assert usage.headers["X-Account-Bytes-Used"] == "5"
    charged = [
        h.usage_max
        for h in await engines.quotas.holdings([user_holder(account)])
        if h.resource == "pithos.diskspace" and h.source == project_holder(account)
    ]
    assert charged == [5]  # the expired objects' quota came back


async def test_the_server_runs_the_expirer_in_the_background(client, engines, settings, alice):
    base, auth = alice
    settings.storage.expire_seconds = 0.05
    await engines.start_expirer()
    await put(client, f"{base}/c", auth)
    await put(client, f"{base}/c/brief", auth, b"x", **{"X-Delete-After": "1"})
    deadline = time.monotonic() + 10
    while (await client.get(f"{base}/c", headers=auth)).status_code != 204:
        assert time.monotonic() < deadline, "the expirer never deleted the object"
        await asyncio.sleep(0.1)


async def test_path_listings_dates_and_conditions_as_swift_has_them(client, alice):
    base, auth = alice
    await put(client, f"{base}/c", auth)
    for name in ("/d/", "/d/f", "/top", "d/", "d/f", "d/sub/g"):
        await put(client, f"{base}/c/{name}", auth, b"x")
    below = await client.get(f"{base}/c", headers=auth, params={"path": "/"})
    assert below.text == "/d/\n/top\n"  # names may start with the delimiter
    inside = await client.get(f"{base}/c", headers=auth, params={"path": "d"})
    assert inside.text == "d/f\nd/sub/\n"  # the directory object is not below itself
    backwards = await client.get(f"{base}/c", headers=auth, params={"path": "d/", "reverse": "1"})
    assert backwards.text == "d/sub/\nd/f\n"
    listed = (await client.get(f"{base}/c", headers=auth, params={"format": "json"})).json()
    exact = dt.datetime.fromisoformat(listed[-1]["last_modified"])
    head = await client.head(f"{base}/c/{listed[-1]['name']}", headers=auth)
    rounded = parsedate_to_datetime(head.headers["Last-Modified"]).replace(tzinfo=None)
    assert rounded >= exact and rounded - exact < dt.timedelta(seconds=1)  # rounded up
    etag = head.headers["ETag"]
    earlier = format_datetime(exact - dt.timedelta(days=1), usegmt=False)
    both = await client.get(
        f"{base}/c/d/f", headers={**auth, "If-Match": etag, "If-Unmodified-Since": earlier}
    )
    assert both.status_code == 412  # every condition given must hold
    # UTF-8 sent unescaped in a path, as some clients do, reaches us as latin-1 text.
    assert http.decode_segment("ünï".encode().decode("latin-1"), "Object name") == "ünï"
    assert http.decode_segment("%C3%BCn%C3%AF", "Object name") == "ünï"
    refused = await client.put(f"{base}/c/bad", headers={**auth, "X-Delete-At": "soon"})
    assert refused.text == "Non-integer X-Delete-At"


async def test_a_manifest_read_raw_can_be_put_again(client, alice):
    base, auth = alice
    await put(client, f"{base}/c", auth)
    await put(client, f"{base}/c/a", auth, b"aaaa")
    segments = [{"path": "/c/a", "etag": hashlib.md5(b"aaaa").hexdigest(), "size_bytes": 4}]
    await put(
        client, f"{base}/c/m?multipart-manifest=put", auth, json.dumps(segments).encode(),
        **{"Content-Type": "text/x-mine"},
    )  # fmt: skip
    raw = await client.get(
        f"{base}/c/m", headers=auth, params={"multipart-manifest": "get", "format": "raw"}
    )
    assert raw.json() == segments
    assert raw.headers["Content-Type"] == "text/x-mine"
    assert raw.headers["ETag"] == hashlib.md5(raw.content).hexdigest()
    again = await put(client, f"{base}/c/m2?multipart-manifest=put", auth, raw.content)
    assert again.status_code == 201
    assert (await client.get(f"{base}/c/m2", headers=auth)).content == b"aaaa"


async def test_a_container_says_which_object_metadata_its_objects_use(client, people, alice):
    base, auth = alice
    await put(client, f"{base}/c", auth)
    await put(client, f"{base}/c/a", auth, b"a", **{"X-Object-Meta-Color": "red"})
    both = {"X-Object-Meta-Size": "2", "X-Object-Meta-Color": "b"}
    await put(client, f"{base}/c/b", auth, b"b", **both)
    head = await client.head(f"{base}/c", headers=auth)
    assert head.headers["X-Container-Object-Meta"] == "Color,Size"
    await client.delete(f"{base}/c/b", headers=auth)
    listing = await client.get(f"{base}/c", headers=auth)
    assert listing.headers["X-Container-Object-Meta"] == "Color"
    _, bob = people["bob"]
    await client.post(f"{base}/c/a", headers={**auth, "X-Object-Sharing": "read=*"})
    shared = await client.head(f"{base}/c", headers=bob)
    assert "X-Container-Object-Meta" not in shared.headers  # the owner's to know


async def test_non_ascii_header_values_leave_objects_readable(client, people, alice):
    """An object whose Content-Type was not ASCII answered every GET and HEAD with 500
    (Starlette writes header values as latin-1). Swift gives Content-Type and
    Content-Encoding back as the UTF-8 that was sent; other values Pithos percent-encodes
    (spec §1.1)."""
    base, auth = alice
    bob_id, bob = people["bob"]
    snow = "text/☃; charset=utf-8"
    await put(client, f"{base}/c", auth)
    await put(client, f"{base}/c/päth", auth, **{"Content-Type": "application/directory"})
    sent = {"Content-Type": snow.encode(), "Content-Encoding": "☃zip".encode()}
    created = await put(client, f"{base}/c/päth/f", auth, b"snow data", **sent)
    assert created.status_code == 201
    for method in ("GET", "HEAD"):
        got = await client.request(method, f"{base}/c/päth/f", headers=auth)
        assert got.status_code == 200, got.text
        raw = dict(got.headers.raw)
        assert raw[b"content-type"] == snow.encode()
        assert raw[b"content-encoding"] == "☃zip".encode()
    ranges = await client.get(f"{base}/c/päth/f", headers={**auth, "Range": "bytes=0-1,4-5"})
    assert ranges.status_code == 206
    assert f"Content-Type: {snow}\r\n".encode() in ranges.content
    shared = await client.post(
        f"{base}/c/päth?update", headers={**auth, "X-Object-Sharing": f"read={bob_id}"}
    )
    assert shared.status_code == 202
    seen = await client.head(f"{base}/c/päth/f", headers=bob)
    assert seen.status_code == 200
    assert seen.headers["X-Object-Shared-By"] == "c/p%C3%A4th"


async def test_an_upload_the_client_abandons_is_logged_not_failed(settings, engines, alice, caplog):
    """A client that hangs up mid-body is no server error: no 500 and no traceback in
    the log (it filled the error log during Swift's functional tests), a 499 access
    line, and no object."""
    from nefos.server.app import create_app

    base, auth = alice
    app = create_app(settings, engines)
    messages = [
        {"type": "http.request", "body": b"x" * 1000, "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[dict] = []

    async def receive() -> dict:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    path = f"{base}/c/cut"
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "PUT",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"x-auth-token", auth["X-Auth-Token"].encode()), (b"content-length", b"9999")],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
        "root_path": "",
        "state": {},
    }
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=settings.base_url) as client:
        await put(client, f"{base}/c", auth)
        caplog.set_level("INFO", logger="nefos.http")
        caplog.clear()  # only the abandoned upload's own line
        await app(scope, receive, send)
        assert sent == []
        assert "unhandled error" not in caplog.text
        assert [r.status for r in caplog.records if hasattr(r, "status")] == [499]
        assert (await client.head(path, headers=auth)).status_code == 404
