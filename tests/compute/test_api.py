"""The Compute API in process: Nova's shapes and faults, in the order spec §2.4 gives."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from urllib.parse import quote

import httpx

from tests.compute.conftest import COMPUTE, wait


async def test_server_shapes_actions_and_faults(client: httpx.AsyncClient, engines, setup):
    alice_id, alice = setup["people"]["alice"]
    _, bob = setup["people"]["bob"]
    cluster = engines.compute.cluster(await engines.compute.backend("embedded"))
    cluster.delay = 1.0  # the build is still running when the stop comes
    body = {"server": {"name": "vm", "imageRef": setup["image"], "flavorRef": setup["flavor"]}}
    created = await client.post(f"{COMPUTE}/servers", json=body, headers=alice)
    assert created.status_code == 202
    server = created.json()["server"]
    assert server["status"] == "BUILD" and server["SNF:task_state"] == "BUILDING"
    # Nova's create reply has no task state (the openstack client would keep it).
    assert "OS-EXT-STS:task_state" not in server and server["OS-SRV-USG:launched_at"] is None
    assert len(server["adminPass"]) >= 10
    assert created.headers["X-OpenStack-Nova-API-Version"] == "2.1"
    server_id = server["id"]
    busy = await client.post(
        f"{COMPUTE}/servers/{server_id}/action", json={"os-stop": None}, headers=alice
    )
    assert busy.status_code == 409 and "conflict" in busy.json()
    cluster.delay = 0.02
    active = await wait(client, alice, server_id, "ACTIVE")
    assert active["OS-EXT-STS:task_state"] is None and active["OS-EXT-STS:vm_state"] == "active"
    launched = dt.datetime.fromisoformat(active["OS-SRV-USG:launched_at"])
    assert launched.tzinfo is None  # Nova's form: no zone, microseconds
    assert launched >= dt.datetime.fromisoformat(active["created"].removesuffix("Z"))
    assert active["OS-SRV-USG:terminated_at"] is None
    assert active["user_id"] == alice_id and active["flavor"]["id"] == setup["flavor"]
    assert (await client.get(f"{COMPUTE}/servers/{server_id}", headers=bob)).status_code == 404
    listed = (await client.get(f"{COMPUTE}/servers", headers=alice)).json()["servers"]
    assert [s["id"] for s in listed] == [server_id] and set(listed[0]) == {"id", "name", "links"}
    again = await client.post(
        f"{COMPUTE}/servers/{server_id}/action", json={"os-start": None}, headers=alice
    )
    assert again.status_code == 409  # already running
    await client.post(
        f"{COMPUTE}/servers/{server_id}/action", json={"os-stop": None}, headers=alice
    )
    await wait(client, alice, server_id, "STOPPED")
    unknown = await client.post(
        f"{COMPUTE}/servers/{server_id}/action", json={"levitate": {}}, headers=alice
    )
    assert unknown.status_code == 400 and "badRequest" in unknown.json()
    rebuild = await client.post(
        f"{COMPUTE}/servers/{server_id}/action", json={"rebuild": {}}, headers=alice
    )
    assert rebuild.status_code == 501
    meta = await client.post(
        f"{COMPUTE}/servers/{server_id}/metadata", json={"metadata": {"a": "1"}}, headers=alice
    )
    assert meta.json() == {"metadata": {"a": "1"}}
    item = await client.get(f"{COMPUTE}/servers/{server_id}/metadata/a", headers=alice)
    assert item.json() == {"meta": {"a": "1"}}
    renamed = await client.put(
        f"{COMPUTE}/servers/{server_id}", json={"server": {"name": "db"}}, headers=alice
    )
    assert renamed.json()["server"]["name"] == "db"
    assert (await client.delete(f"{COMPUTE}/servers/{server_id}", headers=alice)).status_code == 204
    deleted = await wait(client, alice, server_id, "DELETED")
    assert deleted["OS-SRV-USG:terminated_at"] is not None
    assert (await client.get(f"{COMPUTE}/servers", headers=alice)).json() == {"servers": []}


async def test_bad_input(client: httpx.AsyncClient, setup):
    _, alice = setup["people"]["alice"]
    _, bob = setup["people"]["bob"]
    good = {"name": "vm", "imageRef": setup["image"], "flavorRef": setup["flavor"]}
    cases = [
        ({"server": {**good, "flavorRef": "999"}}, alice, 404),
        ({"server": {**good, "imageRef": str(uuid.uuid4())}}, alice, 400),
        ({"server": good}, bob, 400),  # alice's private image
        ({"server": {**good, "name": ""}}, alice, 400),
        ({"server": {"name": "vm"}}, alice, 400),
        ({"server": {**good, "metadata": {str(i): "v" for i in range(11)}}}, alice, 413),
        ({"servers": good}, alice, 400),
    ]
    for body, auth, status in cases:
        reply = await client.post(f"{COMPUTE}/servers", json=body, headers=auth)
        assert reply.status_code == status, (body, reply.text)
    garbage = await client.post(f"{COMPUTE}/servers", content=b"{nope", headers=alice)
    assert garbage.status_code == 400
    newer = await client.get(
        f"{COMPUTE}/servers", headers={**alice, "X-OpenStack-Nova-API-Version": "2.90"}
    )
    assert newer.status_code == 406
    assert (await client.get(f"{COMPUTE}/servers")).status_code == 401


async def test_flavors_images_and_changes_since(client: httpx.AsyncClient, setup):
    _, alice = setup["people"]["alice"]
    flavors = (await client.get(f"{COMPUTE}/flavors/detail", headers=alice)).json()["flavors"]
    assert flavors[0]["SNF:disk_template"] == "file" and flavors[0]["vcpus"] == 1
    images = (await client.get(f"{COMPUTE}/images/detail", headers=alice)).json()["images"]
    assert [(i["id"], i["status"]) for i in images] == [(setup["image"], "ACTIVE")]
    since = await client.get(
        f"{COMPUTE}/servers/detail", params={"changes-since": "2100-01-01T00:00:00Z"}, headers=alice
    )
    assert since.status_code == 304
    limits = (await client.get(f"{COMPUTE}/limits", headers=alice)).json()["limits"]["absolute"]
    assert limits["maxTotalInstances"] > 0 and limits["totalInstancesUsed"] == 0


async def test_flavors_and_images_filter_and_page_in_the_database(
    client: httpx.AsyncClient, engines, setup
):
    """Nova's minDisk, minRam, is_public, marker and limit, and Synnefo's
    SNF:flavor-access, over public flavors and one granted to alice's project only."""
    alice_id, alice = setup["people"]["alice"]
    _, bob = setup["people"]["bob"]
    private = await engines.compute.create_flavor(8, 8192, 160, public=False, projects=[alice_id])
    public = [
        f["id"] for f in (await client.get(f"{COMPUTE}/flavors", headers=bob)).json()["flavors"]
    ]
    assert str(private.id) not in public and len(public) >= 3

    async def ids(auth: dict, **params: str) -> list[str]:
        reply = await client.get(f"{COMPUTE}/flavors/detail", params=params, headers=auth)
        assert reply.status_code == 200, reply.text
        return [f["id"] for f in reply.json()["flavors"]]

    assert await ids(alice) == [*public, str(private.id)]
    assert await ids(alice, minDisk="160") == [str(private.id)]
    assert await ids(alice, minRam="4096", is_public="true") == [public[2]]
    assert await ids(alice, **{"SNF:is_public": "false"}) == [str(private.id)]
    assert await ids(alice, **{"SNF:flavor-access": alice_id}) == [str(private.id)]
    assert await ids(bob, **{"SNF:flavor-access": alice_id}) == []
    assert await ids(alice, marker=public[0], limit="1") == [public[1]]
    assert await ids(alice, limit="-1") == [*public, str(private.id)]
    assert await ids(alice, limit="0") == []
    detail = await client.get(f"{COMPUTE}/flavors/{private.id}", headers=alice)
    assert detail.json()["flavor"]["SNF:flavor-access"] == [alice_id]
    assert (await client.get(f"{COMPUTE}/flavors/{private.id}", headers=bob)).status_code == 404
    for who, marker in ((bob, str(private.id)), (alice, "abc"), (alice, f"0{public[0]}")):
        reply = await client.get(f"{COMPUTE}/flavors", params={"marker": marker}, headers=who)
        assert reply.status_code == 400 and "badRequest" in reply.json(), marker

    async def images(auth: dict, **params: str) -> httpx.Response:
        return await client.get(f"{COMPUTE}/images", params=params, headers=auth)

    assert [i["id"] for i in (await images(alice)).json()["images"]] == [setup["image"]]
    assert (await images(alice, marker=setup["image"])).json()["images"] == []
    assert (await images(alice, limit="0")).json()["images"] == []
    for who, marker in ((bob, setup["image"]), (alice, str(uuid.uuid4())), (alice, "x")):
        reply = await images(who, marker=marker)
        assert reply.status_code == 400 and "badRequest" in reply.json(), marker


async def test_ids_and_numbers_are_ascii_digits_in_range(client: httpx.AsyncClient, setup):
    """``/servers/\\u0661`` is no alias of server 1 (``int()`` reads any Unicode digit),
    ``\\u00b2`` is a digit to ``str.isdigit()`` that ``int()`` refuses, and an id past the
    column's 31 bits cannot be looked up: 404 or 400, never another server nor a 500."""
    _, alice = setup["people"]["alice"]
    body = {"server": {"name": "vm", "imageRef": setup["image"], "flavorRef": setup["flavor"]}}
    created = await client.post(f"{COMPUTE}/servers", json=body, headers=alice)
    server_id = created.json()["server"]["id"]
    assert (await client.get(f"{COMPUTE}/servers/{server_id}", headers=alice)).status_code == 200
    for odd in ("\u0661" * len(server_id), "\u00b2", f" {server_id}", f"+{server_id}",
                f"0_{server_id}", "9" * 30, str(1 << 31), str(1 << 63), "\u0661" * 32):  # fmt: skip
        base = f"{COMPUTE}/servers/{quote(odd)}"
        for method, url, json in (
            ("GET", base, None),
            ("PUT", base, {"server": {"name": "renamed"}}),
            ("POST", f"{base}/action", {"reboot": {"type": "SOFT"}}),
            ("PUT", f"{base}/tags", {"tags": ["x"]}),
            ("DELETE", f"{base}/tags", None),
            ("PUT", f"{base}/tags/x", None),
            ("POST", f"{base}/metadata", {"metadata": {"a": "b"}}),
            ("DELETE", base, None),
        ):
            reply = await client.request(method, url, json=json, headers=alice)
            assert reply.status_code == 404 and "itemNotFound" in reply.json(), (method, odd)
        flavor = await client.get(f"{COMPUTE}/flavors/{quote(odd)}", headers=alice)
        assert flavor.status_code == 404, odd
    shown = (await client.get(f"{COMPUTE}/servers/{server_id}", headers=alice)).json()["server"]
    assert shown["name"] == "vm" and shown["tags"] == [] and shown["metadata"] == {}
    for path, params in (
        ("/servers", {"limit": "\u00b2"}),
        ("/servers/detail", {"limit": "\u0661"}),
        ("/images", {"limit": "1" * 5000}),
        ("/flavors", {"limit": "\u00b2"}),
        ("/flavors/detail", {"minDisk": "\u00b2"}),
        ("/flavors/detail", {"minRam": "1" * 5000}),
    ):
        reply = await client.get(f"{COMPUTE}{path}", params=params, headers=alice)
        assert reply.status_code == 400 and "badRequest" in reply.json(), (path, params)
    for name, version in (
        ("OpenStack-API-Version", "compute "),
        ("X-OpenStack-Nova-API-Version", "2.\u0661"),
        ("X-OpenStack-Nova-API-Version", "2." + "1" * 5000),
    ):
        headers = {**alice, name: version.encode()}
        reply = await client.get(f"{COMPUTE}/servers", headers=headers)
        assert reply.status_code == 406, version


async def test_a_tag_outside_latin_1_is_kept_and_served(client: httpx.AsyncClient, setup):
    """Nova takes any text as a tag but '/' and ','; the Location header that echoes it
    carries it percent-encoded (a header is Latin-1): the answer was a 500 after the tag
    had been saved."""
    _, alice = setup["people"]["alice"]
    body = {"server": {"name": "vm", "imageRef": setup["image"], "flavorRef": setup["flavor"]}}
    server_id = (await client.post(f"{COMPUTE}/servers", json=body, headers=alice)).json()[
        "server"
    ]["id"]
    url = f"{COMPUTE}/servers/{server_id}/tags"
    for tag in ("名前", "ünï", "a%b <&>", "😀"):
        added = await client.put(f"{url}/{quote(tag, safe='')}", headers=alice)
        assert added.status_code == 201, (tag, added.text)
        assert added.headers["Location"].endswith(
            f"/servers/{server_id}/tags/{quote(tag, safe='')}"
        )
        again = await client.put(added.headers["Location"], headers=alice)
        assert again.status_code == 204
        assert (await client.get(f"{url}/{quote(tag, safe='')}", headers=alice)).status_code == 204
    tags = (await client.get(url, headers=alice)).json()["tags"]
    assert sorted(tags) == sorted(["名前", "ünï", "a%b <&>", "😀"])


async def test_neighbouring_apis_answer_in_their_own_faults(client: httpx.AsyncClient, setup):
    _, alice = setup["people"]["alice"]
    network = await client.get("/network/v2.0/networks", headers=alice)
    assert network.status_code == 200 and network.json() == {"networks": []}
    volumes = await client.get("/volume/v3/volumes", headers=alice)  # built now (tests/volume)
    assert volumes.status_code == 200 and volumes.json() == {"volumes": []}
    anonymous = await client.get("/network/v2.0/ports")
    assert anonymous.status_code == 401 and "NeutronError" in anonymous.json()
    assert (await client.get("/volume/v3/types")).json()["unauthorized"]["code"] == 401
    # The roots still answer their version documents.
    assert "resources" in (await client.get("/network/v2.0/")).json()
    assert "versions" in (await client.get("/volume/v3/")).json()
    compute = (await client.get(f"{COMPUTE}/limits", headers=alice)).json()["limits"]["absolute"]
    assert compute["maxTotalInstances"] == 5
    alice_id = setup["people"]["alice"][0]
    # The network quota is networking's own (tests/network): the same floating IPs as
    # Nova's floating_ips, as the client shows the network's over Nova's.
    url = f"/network/v2.0/quotas/{alice_id}"
    for path in ("", "/default"):
        quota = (await client.get(url + path, headers=alice)).json()["quota"]
        assert quota["network"] == 5 and quota["floatingip"] == 2
    details = (await client.get(f"{url}/details", headers=alice)).json()["quota"]
    assert details["port"] == {"limit": -1, "used": 0, "reserved": 0}
    assert details["floatingip"] == {"limit": 2, "used": 0, "reserved": 0}
    anonymous = await client.get(f"{url}/details")
    assert anonymous.status_code == 401 and "NeutronError" in anonymous.json()
    _, bob = setup["people"]["bob"]
    theirs = await client.get(url, headers=bob)
    assert theirs.status_code == 403 and theirs.json()["NeutronError"]["type"] == "HTTPForbidden"


async def test_an_image_too_big_for_the_flavor_is_refused(
    client: httpx.AsyncClient, engines, setup
):
    alice_id, alice = setup["people"]["alice"]
    body = {"server": {"name": "vm", "imageRef": setup["image"], "flavorRef": setup["flavor"]}}
    flavor = (await client.get(f"{COMPUTE}/flavors/{setup['flavor']}", headers=alice)).json()
    ram, disk = flavor["flavor"]["ram"], flavor["flavor"]["disk"]
    for fields, words in (
        (
            {"min_ram": ram + 1},
            f"memory is too small for requested image: the image needs {ram + 1} MiB",
        ),
        ({"min_ram": ram, "min_disk": disk + 1}, "disk is too small for requested image"),
    ):
        await engines.images.update(alice_id, setup["image"], fields)
        refused = await client.post(f"{COMPUTE}/servers", json=body, headers=alice)
        assert refused.status_code == 400 and words in refused.json()["badRequest"]["message"]
    assert (await client.get(f"{COMPUTE}/servers", headers=alice)).json() == {"servers": []}
    await engines.images.update(alice_id, setup["image"], {"min_ram": ram, "min_disk": disk})
    assert (await client.post(f"{COMPUTE}/servers", json=body, headers=alice)).status_code == 202


async def test_flavor_and_image_refs_may_be_their_links(client: httpx.AsyncClient, setup):
    _, alice = setup["people"]["alice"]
    flavor = (await client.get(f"{COMPUTE}/flavors/{setup['flavor']}", headers=alice)).json()
    image = (await client.get(f"{COMPUTE}/images/{setup['image']}", headers=alice)).json()
    flavor_links = [link["href"] for link in flavor["flavor"]["links"]]
    image_links = [link["href"] for link in image["image"]["links"]]
    assert flavor_links[0].startswith("http") and f"{COMPUTE}/flavors/" in flavor_links[0]
    made = []
    for flavor_ref, image_ref in (
        (flavor_links[0], image_links[0]),  # self
        (flavor_links[1] + "/", image_links[1] + "?x=1"),  # bookmark, a slash, a query
        (int(setup["flavor"]), setup["image"]),  # Nova takes a number too
    ):
        body = {"server": {"name": "vm", "imageRef": image_ref, "flavorRef": flavor_ref}}
        created = await client.post(f"{COMPUTE}/servers", json=body, headers=alice)
        assert created.status_code == 202, created.text
        made.append(created.json()["server"])
    assert {s["flavor"]["id"] for s in made} == {setup["flavor"]}
    assert {s["image"]["id"] for s in made} == {setup["image"]}
    for bad in ({"id": setup["flavor"]}, [setup["flavor"]], "", "http://x/", True):
        body = {"server": {"name": "vm", "imageRef": setup["image"], "flavorRef": bad}}
        refused = await client.post(f"{COMPUTE}/servers", json=body, headers=alice)
        assert refused.status_code == 400, (bad, refused.text)
        assert "Invalid flavorRef" in refused.json()["badRequest"]["message"]
    resize = {"resize": {"flavorRef": {"id": 1}}}
    action = await client.post(
        f"{COMPUTE}/servers/{made[0]['id']}/action", json=resize, headers=alice
    )
    assert action.status_code == 400 and "Invalid flavorRef" in action.text
    assert len((await client.get(f"{COMPUTE}/servers", headers=alice)).json()["servers"]) == 3


async def test_availability_zones(client: httpx.AsyncClient, engines, setup):
    _, alice = setup["people"]["alice"]
    _, token = await engines.identity.create_user(f"op-{uuid.uuid4().hex[:6]}@x.org", admin=True)
    admin = {"X-Auth-Token": token}
    zones = (await client.get(f"{COMPUTE}/os-availability-zone", headers=alice)).json()
    nova = {"zoneName": "nova", "zoneState": {"available": True}, "hosts": None}
    assert zones == {"availabilityZoneInfo": [nova]}
    refused = await client.get(f"{COMPUTE}/os-availability-zone/detail", headers=alice)
    assert refused.status_code == 403 and "forbidden" in refused.json()
    assert (await client.get(f"{COMPUTE}/os-availability-zone")).status_code == 401
    await engines.compute.set_drained("embedded", True)
    detail = (await client.get(f"{COMPUTE}/os-availability-zone/detail", headers=admin)).json()
    [zone] = detail["availabilityZoneInfo"]
    assert zone["zoneName"] == "nova" and zone["zoneState"] == {"available": False}
    service = zone["hosts"]["embedded"]["nova-compute"]
    assert service["available"] is True and service["active"] is False
    zones = (await client.get(f"{COMPUTE}/os-availability-zone", headers=alice)).json()
    assert zones["availabilityZoneInfo"][0]["zoneState"] == {"available": False}


async def test_quota_sets(client: httpx.AsyncClient, engines, setup):
    alice_id, alice = setup["people"]["alice"]
    bob_id, bob = setup["people"]["bob"]
    _, token = await engines.identity.create_user(f"op-{uuid.uuid4().hex[:6]}@x.org", admin=True)
    admin = {"X-Auth-Token": token}
    url = f"{COMPUTE}/os-quota-sets/{alice_id}"
    shown = (await client.get(url, headers=alice)).json()["quota_set"]
    assert shown["id"] == alice_id
    assert (shown["instances"], shown["cores"], shown["ram"]) == (5, 20, 40 * 1024)
    assert shown["floating_ips"] == 2 and shown["key_pairs"] == 100
    mine = (await client.get(url, params={"user_id": alice_id}, headers=alice)).json()
    assert mine["quota_set"]["instances"] == 5
    assert (await client.get(url, headers=bob)).status_code == 403
    theirs = await client.get(url, params={"user_id": bob_id}, headers=alice)
    assert theirs.status_code == 403
    defaults = (await client.get(f"{url}/defaults", headers=bob)).json()["quota_set"]
    assert defaults["instances"] == 5 and defaults["ram"] == 40 * 1024
    body = {"server": {"name": "vm", "imageRef": setup["image"], "flavorRef": setup["flavor"]}}
    assert (await client.post(f"{COMPUTE}/servers", json=body, headers=alice)).status_code == 202
    detail = (await client.get(f"{url}/detail", headers=alice)).json()["quota_set"]
    assert detail["instances"] == {"in_use": 1, "limit": 5, "reserved": 0}
    assert detail["ram"]["in_use"] == 1024 and detail["key_pairs"]["limit"] == 100

    change = {"quota_set": {"instances": 1, "ram": "2048", "force": True}}
    assert (await client.put(url, json=change, headers=alice)).status_code == 403
    for bad in (
        {"bogus": 1},
        {"key_pairs": 5},
        {"instances": -1},
        {"cores": "many"},
        {"cores": True},
    ):
        refused = await client.put(url, json={"quota_set": {"instances": 3, **bad}}, headers=admin)
        assert refused.status_code == 400, (bad, refused.text)
    assert (await client.get(url, headers=alice)).json()["quota_set"]["instances"] == 5
    updated = await client.put(url, json=change, headers=admin)
    assert updated.status_code == 200
    assert (updated.json()["quota_set"]["instances"], updated.json()["quota_set"]["ram"]) == (
        1,
        2048,
    )
    over = await client.post(f"{COMPUTE}/servers", json=body, headers=alice)
    assert over.status_code == 413  # the new limit holds
    not_member = await client.put(url, params={"user_id": bob_id}, json=change, headers=admin)
    assert not_member.status_code == 404
    member = {"quota_set": {"cores": 3}}
    done = await client.put(url, params={"user_id": alice_id}, json=member, headers=admin)
    assert done.json()["quota_set"]["cores"] == 3


async def test_multiple_create(client: httpx.AsyncClient, engines, setup):
    """Nova's min_count and max_count: as many as the quota holds up to max_count, at
    least min_count or none, named <name>-<n>; one commission pays for all."""
    alice_id, alice = setup["people"]["alice"]
    good = {"name": "vm", "imageRef": setup["image"], "flavorRef": setup["flavor"]}
    for bad in (
        {"min_count": 0},
        {"min_count": "two"},
        {"min_count": 2.5},
        {"max_count": True},
        {"min_count": 3, "max_count": 2},
        {"max_count": 101},  # compute.max_count
        {"max_count": 2, "name": "x" * 254},  # "x...x-2" would be longer than a name
        {"return_reservation_id": "maybe"},
    ):
        refused = await client.post(
            f"{COMPUTE}/servers", json={"server": {**good, **bad}}, headers=alice
        )
        assert refused.status_code == 400 and "badRequest" in refused.json(), bad
    assert (await client.get(f"{COMPUTE}/servers", headers=alice)).json() == {"servers": []}

    two = await client.post(
        f"{COMPUTE}/servers",
        json={"server": {**good, "min_count": "2", "max_count": 2}},
        headers=alice,
    )
    assert two.status_code == 202
    first = two.json()["server"]
    assert first["name"] == "vm-1" and first["adminPass"]
    listed = (await client.get(f"{COMPUTE}/servers/detail", headers=alice)).json()["servers"]
    assert sorted(s["name"] for s in listed) == ["vm-1", "vm-2"]
    jobs = set()
    for server in listed:
        await wait(client, alice, server["id"], "ACTIVE")
        events = await engines.compute.jobs(int(server["id"]))
        assert len({e.job_id for e in events}) == 1  # each is its own build job
        jobs |= {(e.backend_id, e.job_id) for e in events}
    assert len(jobs) == 2

    # alice may hold 5 servers: 3 more fit of the 10 asked for, and she gets those 3.
    many = {**good, "name": "web", "min_count": 2, "max_count": 10}
    reserved = await client.post(
        f"{COMPUTE}/servers",
        json={"server": {**many, "return_reservation_id": True}},
        headers=alice,
    )
    assert reserved.status_code == 202
    assert re.fullmatch(r"r-[0-9a-z]{8}", reserved.json()["reservation_id"]), reserved.json()
    listed = (await client.get(f"{COMPUTE}/servers", headers=alice)).json()["servers"]
    assert sorted(s["name"] for s in listed) == ["vm-1", "vm-2", "web-1", "web-2", "web-3"]

    # None fit now: fewer than min_count is over quota, and nothing is created or held.
    detail = f"{COMPUTE}/os-quota-sets/{alice_id}/detail"
    held = (await client.get(detail, headers=alice)).json()["quota_set"]
    for counts in ({"min_count": 1, "max_count": 3}, {"min_count": 2}):
        over = await client.post(
            f"{COMPUTE}/servers", json={"server": {**good, "name": "db", **counts}}, headers=alice
        )
        assert over.status_code == 413 and "overLimit" in over.json(), over.text
    assert len((await client.get(f"{COMPUTE}/servers", headers=alice)).json()["servers"]) == 5
    assert (await client.get(detail, headers=alice)).json()["quota_set"] == held
    assert held["instances"]["in_use"] + held["instances"]["reserved"] == 5


async def test_limits_follow_the_settings(client: httpx.AsyncClient, engines, setup):
    """The limits reply shows the limits nefos enforces, from its settings."""
    _, alice = setup["people"]["alice"]
    engines.settings.compute.max_keypairs = 7
    engines.settings.compute.max_metadata = 3
    limits = (await client.get(f"{COMPUTE}/limits", headers=alice)).json()["limits"]["absolute"]
    assert limits["maxTotalKeypairs"] == 7 and limits["maxServerMeta"] == 3


async def test_every_action_in_the_table_answers_for_a_missing_server(
    client: httpx.AsyncClient, setup
):
    """Each name of the dispatch table reaches its handler, which refuses a server that
    is not there (or the action itself) rather than an unknown action."""
    from nefos.compute.api_actions import ACTIONS

    _, alice = setup["people"]["alice"]
    args = {"reboot": {"type": "HARD"}, "resize": {"flavorRef": "1"}, "console": {"type": "vnc"}}
    args["reassign"] = {"project": "p"}
    args["addFloatingIp"] = args["removeFloatingIp"] = {"address": "192.0.2.1"}
    args["firewallProfile"] = {"profile": "ENABLED", "nic": "0"}
    args["createImage"] = {"name": "image"}
    for name in ACTIONS:
        answer = await client.post(
            f"{COMPUTE}/servers/999999/action", json={name: args.get(name)}, headers=alice
        )
        expected = 403 if name == "suspend" else 404
        assert answer.status_code == expected, (name, answer.text)
    unknown = await client.post(f"{COMPUTE}/servers/999999/action", json={"x": None}, headers=alice)
    assert unknown.status_code == 400 and "Unknown action" in unknown.text
