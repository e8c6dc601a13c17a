"""Volume and snapshot listings paged and sorted as Cinder does it: newest first,
``limit``/``marker``/``offset``, ``sort`` (and the older ``sort_key``/``sort_dir``), a
next link on a full page that keeps the filters; Cinder's 400 and 404 for bad paging."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx

from tests.volume.conftest import SYNNEFO, V3
from tests.volume.test_api import create, fault

SIZES = {"d": 3, "b": 1, "e": 2, "a": 2, "c": 1}  # made in this order


async def listing(client: httpx.AsyncClient, auth: dict, path: str, **params) -> dict:
    answer = await client.get(path, params=params, headers=auth)
    assert answer.status_code == 200, answer.text
    return answer.json()


def names(body: dict, key: str = "volumes", field: str = "name") -> list[str]:
    return [item[field] for item in body[key]]


async def test_volumes_are_paged_and_sorted(client: httpx.AsyncClient, people):
    _, alice = people["alice"]
    _, bob = people["bob"]
    made = {}
    for name, size in SIZES.items():
        made[name] = (await create(client, alice, name=name, size=size))["id"]
    detail = f"{V3}/volumes/detail"
    assert names(await listing(client, alice, detail)) == ["c", "a", "e", "b", "d"]  # newest
    assert names(await listing(client, alice, detail, sort="name:asc")) == list("abcde")
    by_size = await listing(client, alice, detail, sort="size:desc,name")
    assert names(by_size) == ["d", "e", "a", "c", "b"]  # a key without a direction: desc
    old_style = await listing(client, alice, detail, sort_key="size", sort_dir="asc")
    assert names(old_style) == ["b", "c", "e", "a", "d"]  # ties by created_at, as size's dir

    # pages of two, each linking to the next with the filters and the order kept
    seen, body = [], await listing(client, alice, f"{V3}/volumes", limit="2", sort="name:asc")
    while True:
        seen += names(body)
        assert set(body["volumes"][0]) == {"id", "name", "links"}
        links = body.get("volumes_links", [])
        if not links:
            break
        (link,) = links
        assert link["rel"] == "next"
        query = parse_qs(urlsplit(link["href"]).query)
        assert query["sort"] == ["name:asc"] and query["limit"] == ["2"]
        assert query["marker"] == [body["volumes"][-1]["id"]]
        body = (await client.get(link["href"], headers=alice)).json()
    assert seen == list("abcde")
    after = await listing(client, alice, detail, sort="name:asc", marker=made["b"], limit="2")
    assert names(after) == ["c", "d"]
    filtered = await listing(client, alice, detail, status="available", limit="1", offset="1")
    assert names(filtered) == ["a"] and "status=available" in filtered["volumes_links"][0]["href"]
    assert (await listing(client, alice, detail, limit="0"))["volumes"] == []
    # the Synnefo dialect sorts the same names (its field is display_name)
    synnefo = await listing(client, alice, f"{SYNNEFO}/volumes/detail", sort="name:asc")
    assert names(synnefo, field="display_name") == list("abcde")

    bad = [
        {"limit": "-1"},
        {"limit": "many"},
        {"offset": "x"},
        {"sort": "secret:asc"},
        {"sort": "name:up"},
        {"sort": "name", "sort_key": "size"},
        {"sort_key": "metadata"},
    ]
    for params in bad:
        fault(await client.get(detail, params=params, headers=alice), 400, "badRequest")
    for marker in ("no-such-volume", made["a"]):  # bob does not see alice's
        answer = await client.get(detail, params={"marker": marker}, headers=bob)
        fault(answer, 404, "itemNotFound")


async def test_snapshots_are_paged_and_sorted(client: httpx.AsyncClient, people):
    _, alice = people["alice"]
    volume = await create(client, alice)
    for name in ("s2", "s3", "s1"):
        body = {"snapshot": {"volume_id": volume["id"], "name": name}}
        taken = await client.post(f"{V3}/snapshots", json=body, headers=alice)
        assert taken.status_code == 202, taken.text
    detail = f"{V3}/snapshots/detail"
    key = "snapshots"
    assert names(await listing(client, alice, detail), key) == ["s1", "s3", "s2"]
    first = await listing(client, alice, f"{V3}/snapshots", sort="name:asc", limit="2")
    assert names(first, key) == ["s1", "s2"]
    (link,) = first["snapshots_links"]
    rest = (await client.get(link["href"], headers=alice)).json()
    assert names(rest, key) == ["s3"] and "snapshots_links" not in rest
    fault(await client.get(detail, params={"sort": "image"}, headers=alice), 400, "badRequest")
