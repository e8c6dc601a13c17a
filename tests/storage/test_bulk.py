"""Swift's bulk extract-archive and bulk delete over HTTP (in process, on SQLite and
PostgreSQL): what each member becomes, the result document in each format, rights and
quota as the caller, and archives built to hurt."""

from __future__ import annotations

import io
import tarfile
import zlib
from collections.abc import AsyncIterator

import pytest

from nefos.identity.service import Identity

PREFIX = "/object-store/v1"


@pytest.fixture
async def people(identity: Identity) -> dict[str, tuple[str, dict[str, str]]]:
    found = {}
    for name in ("alice", "bob"):
        user, token = await identity.create_user(f"{name}@example.org")
        found[name] = (str(user.id), {"X-Auth-Token": token})
    return found


def archive(
    members: list[tuple[str, bytes]],
    mode: str = "w",
    extra: list[tarfile.TarInfo] | None = None,
    pax: dict[str, dict[str, str]] | None = None,
) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode=mode, format=tarfile.PAX_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.pax_headers = (pax or {}).get(name, {})
            tar.addfile(info, io.BytesIO(data))
        for info in extra or []:
            tar.addfile(info)
    return out.getvalue()


def link(name: str, target: str, kind: bytes) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


async def extract(client, url: str, auth: dict, body: bytes, kind: str = "tar", **headers):
    response = await client.put(
        url,
        params={"extract-archive": kind},
        headers={**auth, "Accept": "application/json", **headers},
        content=body,
    )
    assert response.status_code == 200, response.text
    return response.json()


async def names(client, url: str, auth: dict) -> list[str]:
    listing = await client.get(url, headers=auth, params={"format": "json"})
    if listing.status_code == 404:
        return []
    return [item["name"] for item in listing.json()]


async def test_a_tar_becomes_objects_with_their_types_and_metadata(client, people):
    account, auth = people["alice"]
    base = f"{PREFIX}/{account}"
    body = archive(
        [("./docs/a.txt", b"alpha"), ("docs/b.json", b"{}"), ("tagged.bin", b"x" * 10)],
        extra=[
            link("docs/link", "a.txt", tarfile.SYMTYPE),
            link("docs/hard", "docs/a.txt", tarfile.LNKTYPE),
            link("docs/sub", "", tarfile.DIRTYPE),
        ],
        pax={
            "tagged.bin": {
                "SCHILY.xattr.user.mime_type": "application/x-tagged",
                "SCHILY.xattr.user.meta.lunch": "burger",
                "SCHILY.xattr.user.other": "ignored",
            }
        },
    )
    result = await extract(client, f"{base}/c", auth, body, **{"X-Object-Meta-Batch": "7"})
    assert result == {
        "Response Status": "201 Created",
        "Response Body": "",
        "Number Files Created": 3,
        "Errors": [],
    }
    assert await names(client, f"{base}/c", auth) == ["docs/a.txt", "docs/b.json", "tagged.bin"]
    got = await client.get(f"{base}/c/docs/a.txt", headers=auth)
    assert got.content == b"alpha" and got.headers["content-type"].startswith("text/plain")
    assert got.headers["X-Object-Meta-Batch"] == "7"
    tagged = await client.head(f"{base}/c/tagged.bin", headers=auth)
    assert tagged.headers["content-type"] == "application/x-tagged"
    assert tagged.headers["X-Object-Meta-Lunch"] == "burger"
    assert "X-Object-Meta-Other" not in tagged.headers
    info = (await client.get("/info")).json()
    assert info["bulk_upload"] == {
        "max_containers_per_extraction": 10000,
        "max_failed_extractions": 1000,
    }


async def test_chunked_compressed_archives_at_the_account_and_a_prefix(client, people):
    account, auth = people["alice"]
    base = f"{PREFIX}/{account}"
    body = archive([("one/x", b"1"), ("two/y/z", b"22"), ("loose", b"ignored")], mode="w:gz")

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: chunked
        for at in range(0, len(body), 100):
            yield body[at : at + 100]

    response = await client.put(
        base, params={"extract-archive": "tar.gz"}, headers=auth, content=chunks()
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "Number Files Created: 2\n" in response.text
    assert response.text.endswith("Response Status: 201 Created\nErrors:\n")
    assert await names(client, base, auth) == ["one", "two"]
    assert (await client.get(f"{base}/two/y/z", headers=auth)).content == b"22"
    bz2 = archive([("deep/file", b"bz")], mode="w:bz2")
    xml = await client.put(
        f"{base}/one/pre/fix",
        params={"extract-archive": "tar.bz2"},
        headers={**auth, "Accept": "application/xml"},
        content=bz2,
    )
    assert xml.headers["content-type"].startswith("application/xml")
    assert "<number_files_created>1</number_files_created>" in xml.text
    assert "<response_status>201 Created</response_status>" in xml.text
    assert (await client.get(f"{base}/one/pre/fix/deep/file", headers=auth)).content == b"bz"
    refused = await client.put(base, params={"extract-archive": "zip"}, headers=auth, content=b"")
    assert refused.status_code == 400 and refused.text == "Unsupported archive format"
    odd = await client.put(
        base,
        params={"extract-archive": "tar"},
        headers={**auth, "Accept": "image/png"},
        content=archive([("c/x", b"1")]),
    )
    assert odd.status_code == 200 and "Response Status: 406 Not Acceptable" in odd.text


async def test_a_second_user_writes_only_where_sharing_lets_them(client, people):
    alice, alice_auth = people["alice"]
    bob, bob_auth = people["bob"]
    base = f"{PREFIX}/{alice}"
    await client.put(f"{base}/c", headers=alice_auth)
    body = archive([("a", b"1"), ("b/c", b"2")])
    result = await extract(client, f"{base}/c", bob_auth, body)
    assert result["Number Files Created"] == 0
    assert result["Response Status"] == "400 Bad Request"
    assert result["Errors"] == [["c/a", "403 Forbidden"], ["c/b/c", "403 Forbidden"]]
    at_account = await extract(client, base, bob_auth, archive([("new/x", b"1")]))
    assert at_account["Errors"] == [["new/x", "403 Forbidden"]]
    assert await names(client, base, alice_auth) == ["c"]
    assert await names(client, f"{base}/c", alice_auth) == []
    folder = {"X-Object-Sharing": f"write={bob}", "Content-Type": "application/directory"}
    await client.put(f"{base}/c/in", headers={**alice_auth, **folder})
    result = await extract(client, f"{base}/c/in", bob_auth, body)
    assert result["Number Files Created"] == 2, result
    assert await names(client, f"{base}/c", alice_auth) == ["in", "in/a", "in/b/c"]
    written = await client.head(f"{base}/c/in/a", headers=alice_auth)
    assert written.headers["X-Object-Modified-By"] == bob


async def test_hostile_archives_are_refused_cleanly(client, people, settings):
    account, auth = people["alice"]
    base = f"{PREFIX}/{account}"
    await client.put(f"{base}/c", headers={**auth, "X-Container-Policy-Quota": "1000"})
    escaping = archive(
        [("../up", b"1"), ("a/../../up", b"2"), ("/etc/passwd", b"3"), ("ok", b"4")],
        extra=[link("evil", "/etc/shadow", tarfile.SYMTYPE), link("h", "/etc", tarfile.LNKTYPE)],
    )
    result = await extract(client, f"{base}/c", auth, escaping)
    assert result["Number Files Created"] == 1
    assert sorted(result["Errors"]) == [
        ["c/../up", "400 Bad Request"],
        ["c//etc/passwd", "400 Bad Request"],
        ["c/a/../../up", "400 Bad Request"],
    ]
    assert await names(client, f"{base}/c", auth) == ["ok"]
    only_links = archive([], extra=[link("l", "ok", tarfile.SYMTYPE)])
    nothing = await extract(client, f"{base}/c", auth, only_links)
    assert nothing["Response Status"] == "400 Bad Request"
    assert nothing["Response Body"] == "Invalid Tar File: No Valid Files"

    # A gzip of 64 MiB of zeros, far over the container's quota: refused, not stored.
    zeros = io.BytesIO()
    with tarfile.open(fileobj=zeros, mode="w:gz") as tar:
        info = tarfile.TarInfo("bomb")
        info.size = 64 << 20
        tar.addfile(info, io.BytesIO(bytes(info.size)))
        small = tarfile.TarInfo("after")
        small.size = 5
        tar.addfile(small, io.BytesIO(b"after"))
    assert len(zeros.getvalue()) < 200_000
    bomb = await extract(client, f"{base}/c", auth, zeros.getvalue(), "tar.gz")
    assert bomb["Errors"] == [["c/bomb", "413 Request Entity Too Large"]]
    assert bomb["Number Files Created"] == 1
    assert await names(client, f"{base}/c", auth) == ["after", "ok"]

    # A pax header of 1 MiB: the archive is invalid, nothing after it is read.
    huge = archive([("big", b"x")], pax={"big": {"comment": "y" * (1 << 20)}})
    refused = await extract(client, f"{base}/c", auth, huge)
    assert refused["Response Status"] == "400 Bad Request"
    assert refused["Response Body"].startswith("Invalid Tar File: ")
    assert "big" not in await names(client, f"{base}/c", auth)

    corrupt = await extract(client, f"{base}/c", auth, b"not a tar at all" * 64)
    assert corrupt["Response Body"].startswith("Invalid Tar File: ")
    garbage = await extract(client, f"{base}/c", auth, b"\x1f\x8b" + b"junk" * 100, "tar.gz")
    assert garbage["Response Body"].startswith("Invalid Tar File: ")
    whole = archive([("first", b"1"), ("second", b"2" * 3000)])
    truncated = await extract(client, f"{base}/c", auth, whole[:2048])
    assert truncated["Response Body"].startswith("Invalid Tar File: ")
    assert truncated["Number Files Created"] == 1  # what came before stays, as in Swift
    assert "second" not in await names(client, f"{base}/c", auth)

    settings.storage.bulk_max_failed_extractions = 2
    many = archive([(f"../{n}", b"x") for n in range(5)] + [("late", b"1")])
    stopped = await extract(client, f"{base}/c", auth, many)
    assert len(stopped["Errors"]) == 2 and stopped["Number Files Created"] == 0
    settings.storage.bulk_max_containers_per_extraction = 1
    spread = await extract(client, base, auth, archive([("k1/a", b"1"), ("k2/b", b"2")]))
    assert spread["Response Body"] == "More than 1 containers to create from tar."
    assert "k2" not in await names(client, base, auth)


async def test_bulk_delete_answers_in_swifts_words(client, people):
    account, auth = people["alice"]
    base = f"{PREFIX}/{account}"
    await extract(client, base, auth, archive([("c/a", b"1"), ("c/b", b"2")]))
    result = await client.post(
        f"{base}?bulk-delete",
        headers={**auth, "Accept": "application/json", "Content-Type": "text/plain"},
        content="/c/a\n/c/missing\n/c\n",
    )
    assert result.json() == {
        "Number Deleted": 1,
        "Number Not Found": 1,
        "Response Status": "400 Bad Request",
        "Response Body": "",
        "Errors": [["/c", "409 Conflict"]],
    }
    done = await client.request("DELETE", f"{base}?bulk-delete", headers=auth, content="/c/b\n/c\n")
    assert done.text.startswith("Number Deleted: 2\nNumber Not Found: 0\n")
    assert await names(client, base, auth) == []
    wrong_type = await client.post(
        f"{base}?bulk-delete", headers={**auth, "Content-Type": "application/json"}, content="[]"
    )
    assert "406 Not Acceptable" in wrong_type.text
    empty = await client.post(f"{base}?bulk-delete", headers=auth, content="")
    assert "Response Body: Invalid bulk delete.\n" in empty.text


def test_the_tar_reader_expands_in_bounded_pieces():
    """A gzip member of 64 MiB of zeros arrives in pieces of at most CHUNK."""
    from nefos.storage.tarstream import decompressor

    zeros = zlib.compressobj(wbits=31)
    packed = zeros.compress(bytes(64 << 20)) + zeros.flush()
    pieces = decompressor("gz")(packed)
    assert sum(map(len, pieces)) == 64 << 20 and max(map(len, pieces)) <= 1 << 20


async def test_bulk_delete_stops_after_max_failed_deletes(client, people, settings):
    """Swift's ``max_failed_deletes``: /info publishes the setting, and after that many
    refused paths the rest are left alone and the result says why."""
    account, auth = people["alice"]
    base = f"{PREFIX}/{account}"
    settings.storage.bulk_max_failed_deletes = 2
    info = await client.get("/info")
    assert info.json()["bulk_delete"]["max_failed_deletes"] == 2
    await extract(client, base, auth, archive([("k1/a", b"1"), ("k2/b", b"2"), ("k3/c", b"3")]))
    result = await client.post(
        f"{base}?bulk-delete",
        headers={**auth, "Accept": "application/json"},
        content="/k1\n/k2\n/k3\n/k3/c\n",
    )
    assert result.json() == {
        "Number Deleted": 1,  # the object goes first; then two full containers refuse
        "Number Not Found": 0,
        "Response Status": "400 Bad Request",
        "Response Body": "Max delete failures exceeded",
        "Errors": [["/k1", "409 Conflict"], ["/k2", "409 Conflict"]],
    }
    assert await names(client, base, auth) == ["k1", "k2", "k3"]  # k3 was not reached
