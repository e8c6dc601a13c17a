"""The object store tried as an attacker would (security issue 17): a share grants only
what it names, large objects expand within bounds, and nothing a request touches on the
caller's behalf escapes the caller's own rights. Each test performs the attack and
shows it refused, with nothing read, written or deleted."""

from __future__ import annotations

import hashlib
import json
import uuid
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass

import httpx
import pytest

from nefos.blocks import block_hash
from nefos.core.config import Settings
from nefos.identity.service import Identity

PREFIX = "/object-store/v1"
SECRET = b"alice's private words"
DOC = b"the shared document"


@dataclass
class Person:
    uuid: str
    auth: dict[str, str]

    @property
    def base(self) -> str:
        return f"{PREFIX}/{self.uuid}"


@dataclass
class Scene:
    """alice's account: ``private/secret``, shared with nobody, and ``shared/doc``, which
    bob may write and carol may read; dave holds no share at all."""

    alice: Person
    bob: Person
    carol: Person
    dave: Person

    @property
    def doc(self) -> str:
        return f"{self.alice.base}/shared/doc"

    @property
    def secret(self) -> str:
        return f"{self.alice.base}/private/secret"


@pytest.fixture
async def scene(client: httpx.AsyncClient, identity: Identity) -> Scene:
    people = {}
    for name in ("alice", "bob", "carol", "dave"):
        user, token = await identity.create_user(f"{name}@example.org")
        people[name] = Person(str(user.id), {"X-Auth-Token": token})
    scene = Scene(**people)
    auth = scene.alice.auth
    for container in ("private", "shared"):
        assert (await client.put(f"{scene.alice.base}/{container}", headers=auth)).is_success
    assert (await client.put(scene.secret, headers=auth, content=SECRET)).status_code == 201
    assert (await client.put(scene.doc, headers=auth, content=DOC)).status_code == 201
    sharing = f"write={scene.bob.uuid};read={scene.carol.uuid}"
    shared = await client.post(f"{scene.doc}?update", headers={**auth, "X-Object-Sharing": sharing})
    assert shared.status_code == 202
    return scene


async def _content(client: httpx.AsyncClient, url: str, person: Person) -> bytes:
    response = await client.get(url, headers=person.auth)
    assert response.status_code == 200, response.text
    return response.content


def _slo(*paths: str) -> bytes:
    return json.dumps([{"path": path} for path in paths]).encode()


async def test_a_dlo_set_by_a_writer_reads_nothing_its_reader_may_not(client, scene):
    """bob points the shared object at alice's private container: nobody but alice
    reads her objects through it, whatever share they hold."""
    manifest = {**scene.bob.auth, "X-Object-Manifest": "private/"}
    assert (await client.post(scene.doc, headers=manifest)).status_code == 202
    for person in (scene.bob, scene.carol):
        for method in ("GET", "HEAD"):
            response = await client.request(method, scene.doc, headers=person.auth)
            assert response.status_code == 403, (person, method)
            assert SECRET not in response.content
    dave = await client.get(scene.doc, headers=scene.dave.auth)
    assert dave.status_code == 403
    # A manifest written with PUT is the same as one set with POST.
    put = await client.put(scene.doc, headers={**manifest, "Content-Length": "0"})
    assert put.status_code == 201
    assert (await client.get(scene.doc, headers=scene.bob.auth)).status_code == 403
    # Its owner reads what it names, and a reader reads it once its segments are shared.
    assert await _content(client, scene.doc, scene.alice) == SECRET
    share = {**scene.alice.auth, "X-Object-Sharing": f"read={scene.carol.uuid}"}
    assert (await client.post(f"{scene.secret}?update", headers=share)).status_code == 202
    assert await _content(client, scene.doc, scene.carol) == SECRET
    assert (await client.get(scene.doc, headers=scene.bob.auth)).status_code == 403


async def test_a_partial_update_takes_data_only_from_what_the_caller_may_read(client, scene):
    for person in (scene.bob, scene.carol, scene.dave):
        update = {**person.auth, "X-Source-Object": "/private/secret"}
        response = await client.post(scene.doc, headers=update)
        assert response.status_code == 403, person
    assert await _content(client, scene.doc, scene.alice) == DOC
    # What bob may read he may take: his own object's bytes, appended.
    await client.put(f"{scene.bob.base}/mine", headers=scene.bob.auth)
    own = f"{scene.bob.base}/mine/words"
    assert (await client.put(own, headers=scene.bob.auth, content=b"+bob")).status_code == 201
    update = {
        **scene.bob.auth,
        "X-Source-Object": "/mine/words",
        "X-Source-Account": scene.bob.uuid,
    }
    assert (await client.post(scene.doc, headers=update)).status_code == 204
    assert await _content(client, scene.doc, scene.alice) == DOC + b"+bob"


async def test_a_manifest_copied_into_another_account_names_only_what_the_caller_reads(
    client, scene
):
    """bob's own manifest names /private/secret in his account; copied over alice's
    shared object it would name hers."""
    bob = scene.bob
    for container in ("private", "c"):
        await client.put(f"{bob.base}/{container}", headers=bob.auth)
    await client.put(f"{bob.base}/private/secret", headers=bob.auth, content=b"bob's own")
    made = await client.put(
        f"{bob.base}/c/m?multipart-manifest=put", headers=bob.auth, content=_slo("/private/secret")
    )
    assert made.status_code == 201
    copy = await client.request(
        "COPY",
        f"{bob.base}/c/m?multipart-manifest=get",
        headers={**bob.auth, "Destination": "/shared/doc", "Destination-Account": scene.alice.uuid},
    )
    assert copy.status_code == 403
    pulled = await client.put(
        f"{scene.doc}?multipart-manifest=get",
        headers={
            **bob.auth,
            "X-Copy-From": "/c/m",
            "X-Copy-From-Account": bob.uuid,
            "Content-Length": "0",
        },
    )
    assert pulled.status_code == 403
    assert await _content(client, scene.doc, scene.alice) == DOC
    # Within his own account the copy is his to make.
    own = await client.request(
        "COPY",
        f"{bob.base}/c/m?multipart-manifest=get",
        headers={**bob.auth, "Destination": "/c/m2"},
    )
    assert own.status_code == 201
    assert await _content(client, f"{bob.base}/c/m2", bob) == b"bob's own"


async def test_a_static_manifest_reads_and_deletes_only_as_its_caller_may(client, scene):
    """alice's own manifest on the shared object names her private object: sharing the
    manifest shares neither reading nor deleting what it names."""
    alice = scene.alice
    made = await client.put(
        f"{scene.doc}?multipart-manifest=put", headers=alice.auth, content=_slo("/private/secret")
    )
    assert made.status_code == 201
    assert await _content(client, scene.doc, alice) == SECRET
    for person in (scene.bob, scene.carol, scene.dave):
        response = await client.get(scene.doc, headers=person.auth)
        assert response.status_code == 403, person
        assert SECRET not in response.content
    # The manifest itself is what the share names: its holders read it as it is stored.
    raw = await client.get(f"{scene.doc}?multipart-manifest=get", headers=scene.carol.auth)
    assert raw.status_code == 200
    for person in (scene.bob, scene.carol, scene.dave):
        gone = await client.delete(f"{scene.doc}?multipart-manifest=delete", headers=person.auth)
        assert gone.status_code == 403, person
    assert await _content(client, scene.secret, alice) == SECRET
    assert await _content(client, scene.doc, alice) == SECRET
    # Given write on the segment too, bob deletes both.
    share = {**alice.auth, "X-Object-Sharing": f"write={scene.bob.uuid}"}
    assert (await client.post(f"{scene.secret}?update", headers=share)).status_code == 202
    assert await _content(client, scene.doc, scene.bob) == SECRET
    gone = await client.delete(
        f"{scene.doc}?multipart-manifest=delete",
        headers={**scene.bob.auth, "Accept": "application/json"},
    )
    assert gone.status_code == 200
    assert gone.json()["Number Deleted"] == 2
    assert (await client.head(scene.secret, headers=alice.auth)).status_code == 404


async def test_a_public_link_serves_only_segments_published_themselves(client, scene):
    alice = scene.alice
    await client.put(
        f"{scene.doc}?multipart-manifest=put", headers=alice.auth, content=_slo("/private/secret")
    )
    publish = {**alice.auth, "X-Object-Public": "true"}
    await client.post(f"{scene.doc}?update", headers=publish)
    link = (await client.head(scene.doc, headers=alice.auth)).headers["X-Object-Public"]
    public = await client.get(link)
    assert public.status_code == 403
    assert SECRET not in public.content
    await client.post(f"{scene.secret}?update", headers=publish)
    assert (await client.get(link)).content == SECRET


# -- large objects are bounded ----------------------------------------------------------------


async def _tree(client: httpx.AsyncClient, person: Person, fanout: int, depth: int) -> str:
    """A static large object ``fanout`` segments wide at each of ``depth`` levels, over
    one-byte objects ``a``, ``b``...: its data spells them in order."""
    base = f"{person.base}/t"
    await client.put(base, headers=person.auth)
    names = []
    for i in range(fanout**depth):
        name = f"leaf{i:04d}"
        await client.put(f"{base}/{name}", headers=person.auth, content=bytes([97 + i % 26]))
        names.append(name)
    level = 0
    while len(names) > 1:
        level += 1
        grouped = []
        for i in range(0, len(names), fanout):
            manifest = f"m{level}-{i // fanout}"
            paths = [f"/t/{name}" for name in names[i : i + fanout]]
            made = await client.put(
                f"{base}/{manifest}?multipart-manifest=put",
                headers=person.auth,
                content=_slo(*paths),
            )
            assert made.status_code == 201, made.text
            grouped.append(manifest)
        names = grouped
    return f"{base}/{names[0]}"


def _spelled(count: int) -> bytes:
    return bytes(97 + i % 26 for i in range(count))


async def test_head_answers_from_stored_totals_and_get_expands_only_what_it_reads(client, scene):
    alice = scene.alice
    top = await _tree(client, alice, fanout=3, depth=3)
    assert await _content(client, top, alice) == _spelled(27)
    last = f"{alice.base}/t/leaf0026"
    assert (await client.delete(last, headers=alice.auth)).status_code == 204
    # HEAD expands nothing: it says what the PUT stored, as Swift's does.
    head = await client.head(top, headers=alice.auth)
    assert head.status_code == 200
    assert head.headers["Content-Length"] == "27"
    # A range before the missing segment never reaches it; the whole object does.
    first = await client.get(top, headers={**alice.auth, "Range": "bytes=0-8"})
    assert first.status_code == 206
    assert first.content == _spelled(9)
    assert (await client.get(top, headers=alice.auth)).status_code == 404
    # A segment that changed size since the manifest was written fails the read.
    await client.put(last, headers=alice.auth, content=b"longer")
    assert (await client.get(top, headers=alice.auth)).status_code == 409


async def test_manifests_nest_and_list_only_within_the_limits(client, scene, settings: Settings):
    alice = scene.alice
    settings.storage.slo_max_depth = 2
    settings.storage.slo_max_segments = 4
    await _tree(client, alice, fanout=2, depth=2)  # two levels of manifests: allowed
    third = await client.put(
        f"{alice.base}/t/m3?multipart-manifest=put",
        headers=alice.auth,
        content=_slo("/t/m2-0"),
    )
    assert third.status_code == 400
    assert "nest" in third.text
    wide = await client.put(
        f"{alice.base}/t/wide?multipart-manifest=put",
        headers=alice.auth,
        content=_slo(*["/t/leaf0000"] * 5),
    )
    assert wide.status_code == 400
    for name in ("m3", "wide"):
        assert (await client.head(f"{alice.base}/t/{name}", headers=alice.auth)).status_code == 404
    info = (await client.get("/info")).json()
    assert info["slo"]["max_manifest_segments"] == 4


@pytest.mark.parametrize(
    "segment",
    [
        {"path": "/c/a", "etag": 5},
        {"path": "/c/a", "size_bytes": "1"},
        {"path": "/c/a", "size_bytes": True},
        {"path": "/c/a", "range": 7},
        {"path": 3},
        {"data": 5},
        {"data": ["x"]},
        "a string",
        None,
    ],
)
async def test_a_manifest_with_values_of_the_wrong_type_is_refused(client, scene, segment):
    alice = scene.alice
    await client.put(f"{alice.base}/c", headers=alice.auth)
    await client.put(f"{alice.base}/c/a", headers=alice.auth, content=b"a")
    etag = hashlib.md5(b"a").hexdigest()
    good = json.dumps([{"path": "/c/a", "etag": etag}]).encode()
    bad = json.dumps([segment]).encode()
    url = f"{alice.base}/c/m?multipart-manifest=put"
    assert (await client.put(url, headers=alice.auth, content=bad)).status_code == 400
    assert (await client.head(f"{alice.base}/c/m", headers=alice.auth)).status_code == 404
    assert (await client.put(url, headers=alice.auth, content=good)).status_code == 201


# -- sizes are checked before anything is written ----------------------------------------------


async def _stored(engines) -> tuple[set[str], set[str]]:
    store = engines.storage.store
    return set(await store.map_names()), set(await store.block_names())


async def _version(client: httpx.AsyncClient, url: str, person: Person) -> str:
    return (await client.head(url, headers=person.auth)).headers["X-Object-Version"]


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"X-Object-Bytes": "8796093022208"}, 413),  # 8 TiB: beyond what an object holds
        ({"X-Object-Bytes": "99999999999999999999999"}, 400),  # beyond 64 bits
        ({"X-Object-Bytes": str(1 << 30)}, 413),  # within the limits, beyond the quota
        ({"Content-Range": "bytes 1000000000000000-1000000000000002/*"}, 413),
        ({"Content-Range": f"bytes {1 << 30}-{(1 << 30) + 2}/*"}, 413),  # over the quota
    ],
)
async def test_a_size_change_refused_writes_nothing(client, scene, engines, headers, status):
    alice = scene.alice
    await engines.quotas.set_base_quota(uuid.UUID(alice.uuid), "pithos.diskspace", 1 << 20)
    before = await _stored(engines)
    version = await _version(client, scene.doc, alice)
    body = b"abc" if "Content-Range" in headers else b""
    response = await client.post(
        scene.doc,
        headers={**alice.auth, **headers, "Content-Type": "application/octet-stream"},
        content=body,
    )
    assert response.status_code == status, response.text
    assert await _stored(engines) == before
    assert await _version(client, scene.doc, alice) == version
    assert await _content(client, scene.doc, alice) == DOC
    # Within the quota the same update is made.
    grown = await client.post(scene.doc, headers={**alice.auth, "X-Object-Bytes": "100"})
    assert grown.status_code == 204
    assert await _content(client, scene.doc, alice) == DOC + bytes(100 - len(DOC))


# -- no server error on any input ------------------------------------------------------------


def _raw(value: str) -> bytes:
    """A header value's bytes: latin-1 where it can be (the server then reads back the
    very characters), else UTF-8."""
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode()


@pytest.mark.parametrize(
    ("method", "where", "params", "headers"),
    [
        ("GET", "doc", {"version": "²"}, {}),
        ("GET", "doc", {"version": "\u0661"}, {}),
        ("GET", "doc", {"version": "99999999999999999999"}, {}),
        ("POST", "doc", {}, {"X-Object-Bytes": "²"}),
        ("POST", "doc", {}, {"X-Object-Bytes": "\u0661"}),
        ("POST", "container", {}, {"X-Container-Policy-Quota": "²"}),
        ("POST", "container", {}, {"X-Container-Policy-Quota": str(1 << 64)}),
        ("PUT", "copy", {}, {"X-Copy-From": "/shared/doc", "X-Source-Version": "²"}),
        ("PUT", "copy", {}, {"X-Copy-From": "/shared/doc", "X-Source-Version": str(1 << 64)}),
        ("POST", "doc", {}, {"X-Source-Object": "/shared/doc", "X-Source-Version": "²"}),
        ("POST", "doc", {}, {"Content-Range": "bytes \u0661-\u0662/*"}),
        ("PUT", "copy", {}, {"X-Delete-After": "²"}),
        ("DELETE", "doc", {}, {"X-If-Delete-At": "²"}),
    ],
)
async def test_unicode_digits_and_huge_numbers_are_refused(
    client, scene, engines, method, where, params, headers
):
    alice = scene.alice
    url = {
        "doc": scene.doc,
        "copy": f"{alice.base}/shared/copy",
        "container": f"{alice.base}/shared",
        "account": alice.base,
    }[where]
    before = await _stored(engines)
    version = await _version(client, scene.doc, alice)
    sent = {key: _raw(value) for key, value in headers.items()}  # as bytes on the wire
    response = await client.request(
        method, url, params=params, headers={**alice.auth, **sent}, content=b""
    )
    assert response.status_code == 400, response.text
    assert await _stored(engines) == before
    assert await _version(client, scene.doc, alice) == version
    assert (await client.head(f"{alice.base}/shared/copy", headers=alice.auth)).status_code == 404
    container = await client.head(f"{alice.base}/shared", headers=alice.auth)
    assert "X-Container-Policy-Quota" not in container.headers or (
        container.headers["X-Container-Policy-Quota"] == "0"
    )


@pytest.mark.parametrize("path", ["///", "//x", "//x/y", "/c//"])
async def test_empty_path_segments_are_a_bad_path(client, scene, path):
    response = await client.get(f"{PREFIX}/{scene.alice.uuid}{path}", headers=scene.alice.auth)
    assert response.status_code in (400, 404), response.text
    assert (await client.get(f"{PREFIX}/{path}", headers=scene.alice.auth)).status_code < 500


async def test_names_that_are_markup_are_escaped_in_xml(client, scene):
    alice = scene.alice
    name = "a<b>&c\"d'"
    url = f"{alice.base}/shared/{name}"
    assert (await client.put(url, headers=alice.auth, content=b"x")).status_code == 201
    for where, params in (
        (f"{alice.base}/shared", {"format": "xml"}),
        (url, {"hashmap": "", "format": "xml"}),
        (url, {"version": "list", "format": "xml"}),
    ):
        response = await client.get(where, params=params, headers=alice.auth)
        assert response.status_code == 200
        document = ElementTree.fromstring(response.content)
        found = {element.get("name") for element in document.iter()} | {
            element.text for element in document.iter("name")
        }
        assert name in found, (where, response.text)


# -- existence is not revealed -----------------------------------------------------------------


async def test_a_stranger_cannot_tell_what_exists(client, scene):
    """Without a share, an existing container or object and a missing one answer alike
    (status, and body but for the path it names), to a user with a share elsewhere in
    the account or none."""
    alice = scene.alice.base
    pairs = [
        (f"{alice}/private", f"{alice}/nothing"),
        (f"{alice}/private/secret", f"{alice}/private/nothing"),
        (f"{alice}/private/secret", f"{alice}/nothing/nothing"),
        (f"{alice}/shared/other", f"{alice}/shared/nothing"),
    ]
    await client.put(f"{alice}/shared/other", headers=scene.alice.auth, content=b"x")
    for person in (scene.bob, scene.dave):
        for existing, missing in pairs:
            for method in ("HEAD", "GET", "POST", "PUT", "DELETE", "COPY"):
                headers = {**person.auth, "Destination": "/shared/doc"}
                answers = [
                    await client.request(method, url, headers=headers, content=b"")
                    for url in (existing, missing)
                ]
                seen = [
                    (a.status_code, a.content.replace(url[len(alice) + 1 :].encode(), b"<path>"))
                    for a, url in zip(answers, (existing, missing), strict=True)
                ]
                assert seen[0] == seen[1], (person, method, existing, seen)
                assert answers[0].status_code in (403, 405), (person, method, existing, seen)


# -- the block-hash oracle ---------------------------------------------------------------------


async def _hashmap_put(client: httpx.AsyncClient, person: Person, url: str, data: bytes):
    hashmap = {"bytes": len(data), "hashes": [block_hash(data)]}
    return await client.put(
        f"{url}?hashmap&format=json", headers=person.auth, content=json.dumps(hashmap)
    )


async def test_a_hashmap_put_tells_nobody_what_other_accounts_store(client, scene, engines):
    """dave guesses alice's private content, and carol asks after her share of it ended:
    the block is missing to both until they send it, though the store has it."""
    await client.put(f"{scene.dave.base}/mine", headers=scene.dave.auth)
    guess = f"{scene.dave.base}/mine/guess"
    stored = set(await engines.storage.store.block_names())
    refused = await _hashmap_put(client, scene.dave, guess, SECRET)
    assert refused.status_code == 409
    assert refused.json() == [block_hash(SECRET)]
    read = await client.get(f"{scene.doc}?hashmap&format=json", headers=scene.carol.auth)
    (seen,) = read.json()["hashes"]
    await client.post(f"{scene.doc}?update", headers={**scene.alice.auth, "X-Object-Sharing": ""})
    await client.put(f"{scene.carol.base}/mine", headers=scene.carol.auth)
    rebuilt = await client.put(
        f"{scene.carol.base}/mine/doc?hashmap&format=json",
        headers=scene.carol.auth,
        content=json.dumps({"bytes": len(DOC), "hashes": [seen]}),
    )
    assert rebuilt.status_code == 409
    # Sent, the block is dave's to name; the store keeps the one copy it had.
    sent = await client.post(
        f"{scene.dave.base}/mine?update",
        headers={**scene.dave.auth, "Content-Type": "application/octet-stream"},
        content=SECRET,
    )
    assert sent.status_code == 202
    assert (await _hashmap_put(client, scene.dave, guess, SECRET)).status_code == 201
    assert set(await engines.storage.store.block_names()) == stored
    # alice names her own blocks without sending them.
    again = await _hashmap_put(client, scene.alice, f"{scene.alice.base}/private/again", SECRET)
    assert again.status_code == 201


async def test_any_stored_block_serves_a_hashmap_put_where_configured(
    client, scene, settings: Settings
):
    settings.storage.hashmap_reuse = "any"  # Synnefo's behaviour, the oracle open
    await client.put(f"{scene.dave.base}/mine", headers=scene.dave.auth)
    guess = f"{scene.dave.base}/mine/guess"
    assert (await _hashmap_put(client, scene.dave, guess, SECRET)).status_code == 201
    assert await _content(client, guess, scene.dave) == SECRET


async def test_no_write_right_learns_nothing_from_a_put_post_copy_or_delete(client, scene):
    """dave, who holds no share, against alice's objects through every typed call of the
    object level: each is 403 before any body is read or any condition is compared, and
    nothing of alice's changes."""
    dave = scene.dave
    await client.put(f"{dave.base}/mine", headers=dave.auth)
    attempts = {
        "hashmap body never parsed": client.put(
            f"{scene.secret}?hashmap", headers=dave.auth, content=b"not json"
        ),
        "manifest body never parsed": client.put(
            f"{scene.secret}?multipart-manifest=put", headers=dave.auth, content=b"not json"
        ),
        "If-Match not compared": client.put(
            scene.secret, headers={**dave.auth, "If-Match": "*"}, content=b"x"
        ),
        "copy of a source he cannot read": client.put(
            f"{dave.base}/mine/stolen",
            headers={**dave.auth, "X-Copy-From": "/private/secret",
                     "X-Copy-From-Account": scene.alice.uuid},
        ),
        "data from a source he cannot read": client.post(
            f"{dave.base}/mine/stolen",
            headers={**dave.auth, "X-Source-Object": "/private/secret",
                     "X-Source-Account": scene.alice.uuid},
        ),
        "metadata": client.post(scene.secret, headers={**dave.auth, "X-Object-Meta-A": "b"}),
        "a manifest's delete": client.delete(
            f"{scene.secret}?multipart-manifest=delete", headers=dave.auth
        ),
        "a delete": client.delete(scene.secret, headers=dave.auth),
        "a tree's delete": client.delete(f"{scene.secret}?delimiter=/", headers=dave.auth),
    }  # fmt: skip
    for what, attempt in attempts.items():
        answer = await attempt
        assert answer.status_code == 403, (what, answer.status_code, answer.text)
    read = await client.get(scene.secret, headers=scene.alice.auth)
    assert read.status_code == 200 and read.content == SECRET
    assert "x-object-meta-a" not in read.headers
    # bob may write shared/doc, but only alice shares it on.
    sharing = await client.post(
        scene.doc, headers={**scene.bob.auth, "X-Object-Sharing": f"read={dave.uuid}"}
    )
    assert sharing.status_code == 403
    assert (await client.get(scene.doc, headers=dave.auth)).status_code == 403
