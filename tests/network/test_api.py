"""The Network API in process: Neutron's shapes, Synnefo's forms, rights and faults."""

from __future__ import annotations

import datetime as dt
import uuid

import httpx

from nefos.nodenet.rules import profile_rules
from nefos.quotas.project_rules import Actor
from nefos.server.engines import Engines
from tests.network.conftest import NETWORK, SYNNEFO_NETWORK


def fault(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    return response.json()["NeutronError"]


async def make_net(
    client: httpx.AsyncClient, auth: dict, cidr: str = "10.0.0.0/24"
) -> tuple[str, str]:
    created = await client.post(
        f"{NETWORK}/networks", json={"network": {"name": "lan"}}, headers=auth
    )
    assert created.status_code == 201, created.text
    network = created.json()["network"]
    subnet = await client.post(
        f"{NETWORK}/subnets",
        json={"subnet": {"network_id": network["id"], "cidr": cidr, "ip_version": 4}},
        headers=auth,
    )
    assert subnet.status_code == 201, subnet.text
    return network["id"], subnet.json()["subnet"]["id"]


async def test_version_document_and_auth(client: httpx.AsyncClient):
    root = (await client.get(NETWORK)).json()
    assert {r["collection"] for r in root["resources"]} >= {"networks", "ports", "floatingips"}
    unauthorized = await client.get(f"{NETWORK}/networks")
    assert fault(unauthorized, 401)["type"] == "HTTPUnauthorized"


async def test_network_lifecycle_on_both_dialects(client: httpx.AsyncClient, people):
    auth = people["alice"][1]
    network_id, subnet_id = await make_net(client, auth)
    shown = (await client.get(f"{NETWORK}/networks/{network_id}", headers=auth)).json()["network"]
    assert shown["subnets"] == [subnet_id] and shown["status"] == "ACTIVE"
    assert shown["router:external"] is False and shown["shared"] is False and shown["mtu"] == 1500
    assert "type" not in shown and "user_id" not in shown  # Neutron's fields only
    synnefo = (await client.get(f"{SYNNEFO_NETWORK}/networks/detail", headers=auth)).json()
    [item] = synnefo["networks"]
    assert item["type"] == "MAC_FILTERED" and item["public"] is False
    assert item["SNF:floating_ip_pool"] is False and item["user_id"] == item["tenant_id"]
    assert item["links"][0]["href"].endswith(f"/cyclades/network/v2.0/networks/{network_id}")
    # type is input on both dialects
    typed = await client.post(
        f"{SYNNEFO_NETWORK}/networks", json={"network": {"name": "x", "type": "MAC_FILTERED"}},
        headers=auth,
    )  # fmt: skip
    assert typed.status_code == 201 and typed.json()["network"]["type"] == "MAC_FILTERED"
    refused = await client.post(
        f"{NETWORK}/networks", json={"network": {"type": "PHYSICAL_VLAN"}}, headers=auth
    )
    assert fault(refused, 403)["type"] == "HTTPForbidden"
    renamed = await client.put(
        f"{NETWORK}/networks/{network_id}", json={"network": {"name": "wan"}}, headers=auth
    )
    assert renamed.json()["network"]["name"] == "wan"
    by_name = await client.get(f"{NETWORK}/networks", params={"name": "wan"}, headers=auth)
    assert [n["id"] for n in by_name.json()["networks"]] == [network_id]
    fields = await client.get(f"{NETWORK}/networks", params={"fields": "id"}, headers=auth)
    assert all(set(n) == {"id"} for n in fields.json()["networks"])
    assert (
        await client.delete(f"{NETWORK}/networks/{network_id}", headers=auth)
    ).status_code == 204
    fault(await client.get(f"{NETWORK}/networks/{network_id}", headers=auth), 404)


async def test_ports_and_bad_input(client: httpx.AsyncClient, people):
    alice, bob = people["alice"][1], people["bob"][1]
    network_id, subnet_id = await make_net(client, alice)
    port = await client.post(
        f"{NETWORK}/ports",
        json={"port": {"network_id": network_id, "fixed_ips": [{"ip_address": "10.0.0.7"}],
                       "device_id": "vm-1", "device_owner": "compute:nova"}},
        headers=alice,
    )  # fmt: skip
    assert port.status_code == 201, port.text
    body = port.json()["port"]
    assert body["fixed_ips"] == [{"subnet_id": subnet_id, "ip_address": "10.0.0.7"}]
    assert (body["device_id"], body["device_owner"], body["status"]) == (
        "vm-1",
        "compute:nova",
        "DOWN",
    )
    synnefo = (await client.get(f"{SYNNEFO_NETWORK}/ports/{body['id']}", headers=alice)).json()
    assert synnefo["port"]["fixed_ips"] == [{"subnet": subnet_id, "ip_address": "10.0.0.7"}]
    taken = await client.post(
        f"{NETWORK}/ports",
        json={"port": {"network_id": network_id, "fixed_ips": [{"ip_address": "10.0.0.7"}]}},
        headers=alice,
    )
    assert "already in use" in fault(taken, 409)["message"]
    outside = await client.post(
        f"{NETWORK}/ports",
        json={"port": {"network_id": network_id, "fixed_ips": [{"ip_address": "10.1.0.7"}]}},
        headers=alice,
    )
    fault(outside, 400)
    gateway = await client.post(
        f"{NETWORK}/subnets",
        json={
            "subnet": {"network_id": network_id, "cidr": "10.2.0.0/24", "gateway_ip": "10.3.0.1"}
        },
        headers=alice,
    )
    fault(gateway, 400)
    overlap = await client.post(
        f"{NETWORK}/subnets",
        json={"subnet": {"network_id": network_id, "cidr": "10.0.0.0/16"}},
        headers=alice,
    )
    assert "overlaps" in fault(overlap, 400)["message"]
    in_use = await client.delete(f"{NETWORK}/networks/{network_id}", headers=alice)
    fault(in_use, 409)
    # bob: alice's network and port do not exist
    for path in (f"networks/{network_id}", f"ports/{body['id']}", f"subnets/{subnet_id}"):
        fault(await client.get(f"{NETWORK}/{path}", headers=bob), 404)
        fault(await client.delete(f"{NETWORK}/{path}", headers=bob), 404)
    assert (await client.get(f"{NETWORK}/ports", headers=bob)).json() == {"ports": []}
    listed = await client.get(f"{NETWORK}/ports", params={"network_id": network_id}, headers=alice)
    assert [p["id"] for p in listed.json()["ports"]] == [body["id"]]
    assert (await client.delete(f"{NETWORK}/ports/{body['id']}", headers=alice)).status_code == 204


async def test_floating_ips_public_ports_and_quota(
    client: httpx.AsyncClient, people, engines: Engines
):
    (alice_caller, alice), (_, bob), (root, _) = people["alice"], people["bob"], people["root"]
    net = engines.network
    public = await net.create_network(root, "public", "CUSTOM", floating_ip_pool=True)
    await net.create_subnet(root, str(public.id), "192.0.2.0/24")
    created = await client.post(f"{NETWORK}/floatingips", json={"floatingip": {}}, headers=alice)
    assert created.status_code == 201, created.text
    fip = created.json()["floatingip"]
    assert fip["floating_ip_address"] == "192.0.2.2" and fip["port_id"] is None
    assert fip["floating_network_id"] == str(public.id) and "user_id" not in fip
    fault(await client.get(f"{NETWORK}/floatingips/{fip['id']}", headers=bob), 404)
    fault(await client.delete(f"{NETWORK}/floatingips/{fip['id']}", headers=bob), 404)
    detail = await client.get(f"{SYNNEFO_NETWORK}/floatingips/detail", headers=alice)
    assert detail.json()["floatingips"][0]["user_id"] == alice_caller.user
    quota = await client.get(f"{NETWORK}/quotas/{alice_caller.user}/details", headers=alice)
    assert quota.json()["quota"]["floatingip"] == {"limit": 2, "used": 1, "reserved": 0}
    assert quota.json()["quota"]["network"] == {"limit": 5, "used": 0, "reserved": 0}
    fault(await client.get(f"{NETWORK}/quotas/{alice_caller.user}", headers=bob), 403)
    # a port of the public network, made by the operator for alice: she may not delete it
    port = await net.create_port(root, str(public.id))
    async with net.db.transaction() as s:
        from nefos.network.models import Port

        (await s.get(Port, port.id)).user_id = alice_caller.user
    fault(await client.delete(f"{NETWORK}/ports/{port.id}", headers=alice), 403)
    # one with her floating IP she may
    own = await client.post(
        f"{NETWORK}/ports",
        json={"port": {"network_id": str(public.id),
                       "fixed_ips": [{"ip_address": fip["floating_ip_address"]}]}},
        headers=alice,
    )  # fmt: skip
    assert own.status_code == 201, own.text
    fault(await client.delete(f"{NETWORK}/floatingips/{fip['id']}", headers=alice), 409)
    assert (
        await client.delete(f"{NETWORK}/ports/{own.json()['port']['id']}", headers=alice)
    ).status_code == 204
    moved = await client.post(
        f"{NETWORK}/floatingips/{fip['id']}/action",
        json={"reassign": {"project": alice_caller.user, "shared_to_project": True}},
        headers=alice,
    )
    assert moved.status_code == 200, moved.text
    fault(await client.post(
        f"{NETWORK}/floatingips/{fip['id']}/action", json={"reassign": {"project": "elsewhere"}},
        headers=alice,
    ), 403)  # fmt: skip
    assert (
        await client.delete(f"{NETWORK}/floatingips/{fip['id']}", headers=alice)
    ).status_code == 204
    exhausted = await client.post(
        f"{NETWORK}/networks", json={"network": {"name": "n"}}, headers=alice
    )
    assert exhausted.status_code == 201


async def new_project(engines: Engines, owner: str, capacities: dict[str, int]) -> str:
    """An approved project of ``owner``'s with these member capacities."""
    resources = {
        name: {"project_capacity": 4 * most, "member_capacity": most}
        for name, most in capacities.items()
    }
    end = dt.datetime.now(dt.UTC) + dt.timedelta(days=30)
    project_id, app_id = await engines.projects.submit(
        Actor(uuid.UUID(owner), False),
        {"name": f"p-{uuid.uuid4().hex[:8]}", "end_date": end, "resources": resources},
    )
    await engines.projects.application_action(None, project_id, "approve", app_id)
    return str(project_id)


async def test_over_quota_is_neutrons_409_and_says_what_and_where(
    client: httpx.AsyncClient, engines: Engines, people
):
    """An over-quota network or floating IP names the resource, how much is used of
    which limit and the project by its name (never a holder's raw id), and carries the
    commission's data, as the compute API's overLimit does."""
    caller, alice = people["alice"]
    for index in range(5):
        await client.post(
            f"{NETWORK}/networks", json={"network": {"name": f"n{index}"}}, headers=alice
        )
    over = await client.post(f"{NETWORK}/networks", json={"network": {"name": "x"}}, headers=alice)
    refusal = fault(over, 409)
    assert refusal["type"] == "OverQuota"
    message = refusal["message"]
    assert "cyclades.network.private (Number of private networks)" in message, message
    assert "your personal project" in message and "5 of a limit of 5" in message, message
    assert caller.user not in message and "user:" not in message, message
    assert refusal["data"]["limit"] == 5 and refusal["data"]["usage"] == 5
    assert refusal["data"]["provision"]["resource"] == "cyclades.network.private"

    # In a project of its own name, for floating IPs: the project's name.
    root = people["root"][0]
    pool = await engines.network.create_network(
        root, "pool", "CUSTOM", public=True, floating_ip_pool=True
    )
    await engines.network.create_subnet(root, str(pool.id), "192.0.2.0/28")
    project = await new_project(engines, caller.user, {"cyclades.floating_ip": 1})
    await engines.projects.enroll(None, project, caller.user)
    body = {"floatingip": {"floating_network_id": str(pool.id), "project": project}}
    taken = await client.post(f"{NETWORK}/floatingips", json=body, headers=alice)
    assert taken.status_code == 201, taken.text
    refused = fault(await client.post(f"{NETWORK}/floatingips", json=body, headers=alice), 409)
    name = (await engines.projects.get_project(None, project)).name
    assert f"project {name!r}" in refused["message"], refused["message"]
    assert "cyclades.floating_ip (Number of floating IPs)" in refused["message"]
    assert "1 of a limit of 1" in refused["message"] and project not in refused["message"]


def _lets_in(rules: list[dict], ethertype: str) -> set[tuple[str | None, int | None]]:
    return {
        (r["protocol"], r["port_range_min"])
        for r in rules
        if r["direction"] == "ingress" and r["ethertype"] == ethertype
    }


def _node_lets_in(level: str, icmp: str) -> set[tuple[str | None, int | None]]:
    """What the node's chain of a level accepts that is not a reply (nefos.nodenet)."""
    found: set[tuple[str | None, int | None]] = set()
    for rule in profile_rules(level, icmp):
        if rule[-1] != "ACCEPT" or "--ctstate" in rule or "--sport" in rule:
            continue  # replies (DNS answers among them) pass a stateful group anyway
        protocol = rule[rule.index("-p") + 1] if "-p" in rule else None
        port = int(rule[rule.index("--dport") + 1]) if "--dport" in rule else None
        found.add((protocol, port))
    return found


async def test_security_groups_show_the_firewall_profiles(
    client: httpx.AsyncClient, engines: Engines, people
):
    """One group per profile level in each of the caller's projects, whose ingress
    rules are what the node's chain of that level lets in; a port shows its profile's
    group, and follows a profile change; groups and rules cannot be made."""
    caller, alice = people["alice"]
    _, bob = people["bob"]
    groups = (await client.get(f"{NETWORK}/security-groups", headers=alice)).json()
    by_name = {g["name"]: g for g in groups["security_groups"]}
    assert set(by_name) == {"protected", "limited", "unprotected"}
    assert {g["project_id"] for g in by_name.values()} == {caller.user}
    for level, group in by_name.items():
        for ethertype, icmp in (("IPv4", "icmp"), ("IPv6", "ipv6-icmp")):
            rules = group["security_group_rules"]
            assert _lets_in(rules, ethertype) == _node_lets_in(level, icmp), (level, ethertype)
            assert (None, None) in {
                (r["protocol"], r["port_range_min"])
                for r in rules
                if r["direction"] == "egress" and r["ethertype"] == ethertype
            }
    assert _lets_in(by_name["limited"]["security_group_rules"], "IPv4") == {
        ("icmp", None), ("tcp", 22), ("tcp", 3389)
    }  # fmt: skip
    protected = by_name["protected"]
    shown = await client.get(f"{NETWORK}/security-groups/{protected['id']}", headers=alice)
    assert shown.json()["security_group"] == protected
    named = await client.get(
        f"{NETWORK}/security-groups", params={"name": "limited"}, headers=alice
    )
    assert [g["id"] for g in named.json()["security_groups"]] == [by_name["limited"]["id"]]
    fault(await client.get(f"{NETWORK}/security-groups/{protected['id']}", headers=bob), 404)
    rules = await client.get(
        f"{NETWORK}/security-group-rules",
        params={"security_group_id": protected["id"], "direction": "ingress"},
        headers=alice,
    )
    listed = rules.json()["security_group_rules"]
    assert {r["protocol"] for r in listed} == {"icmp", "ipv6-icmp"}
    one = await client.get(f"{NETWORK}/security-group-rules/{listed[0]['id']}", headers=alice)
    assert one.json()["security_group_rule"] == listed[0]
    fault(await client.get(f"{NETWORK}/security-group-rules/{listed[0]['id']}", headers=bob), 404)

    network_id, _ = await make_net(client, alice)
    port = (
        await client.post(
            f"{NETWORK}/ports", json={"port": {"network_id": network_id}}, headers=alice
        )
    ).json()["port"]
    assert port["security_groups"] == [by_name["unprotected"]["id"]]
    await engines.network.nics.set_firewall(port["id"], "ENABLED")  # what firewallProfile does
    again = (await client.get(f"{NETWORK}/ports/{port['id']}", headers=alice)).json()["port"]
    assert again["security_groups"] == [protected["id"]]
    same = await client.put(
        f"{NETWORK}/ports/{port['id']}",
        json={"port": {"security_groups": [protected["id"]]}},
        headers=alice,
    )
    assert same.status_code == 200
    other = await client.put(
        f"{NETWORK}/ports/{port['id']}",
        json={"port": {"security_groups": [by_name["unprotected"]["id"]]}},
        headers=alice,
    )
    assert "firewallProfile" in fault(other, 400)["message"]
    made = await client.post(
        f"{NETWORK}/ports",
        json={"port": {"network_id": network_id, "security_groups": [protected["id"]]}},
        headers=alice,
    )
    fault(made, 400)
    fault(await client.post(f"{NETWORK}/security-groups", json={}, headers=alice), 501)
    fault(await client.post(f"{NETWORK}/security-group-rules", json={}, headers=alice), 501)
