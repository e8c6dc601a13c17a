"""python-openstackclient's network commands, unmodified, against ``nefos up``: the
network control plane end to end (no server NICs yet: those come with the next slice)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import Server
from tests.e2e.test_server import openstack, side_by_side


def _admin(server: Server) -> tuple[str, str, str]:
    return server.admin_email, server.admin_password, server.admin_email


def os_json(server: Server, *args: str) -> object:
    done = openstack(server, *_admin(server), *args, "-f", "json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout) if done.stdout.strip() else None


def os_run(server: Server, *args: str) -> None:
    done = openstack(server, *_admin(server), *args)
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def public(server: Server) -> str:
    """The operator's floating IP pool, made with `nefos network create`."""
    made = server.nefos(
        "network", "create", "public", "--public", "--floating-ip-pool",
        "--subnet", "192.0.2.0/24", "--gateway", "192.0.2.1",
        "--range", "192.0.2.10-192.0.2.19", "--json",
    )  # fmt: skip
    return json.loads(made.stdout)["id"]


def test_network_subnet_and_port_lifecycle(server: Server, public: str):
    created = os_json(server, "network", "create", "lan")
    assert created["name"] == "lan" and created["status"] == "ACTIVE"
    assert created["router:external"] in (False, "Internal")
    network_id = created["id"]
    subnet = os_json(
        server, "subnet", "create", "--network", "lan", "--subnet-range", "10.0.0.0/24",
        "--allocation-pool", "start=10.0.0.100,end=10.0.0.199", "lan-v4",
    )  # fmt: skip
    assert subnet["cidr"] == "10.0.0.0/24" and subnet["gateway_ip"] == "10.0.0.1"
    listed = os_json(server, "network", "list")
    assert {n["Name"] for n in listed} == {"lan", "public"}
    shown = os_json(server, "network", "show", "lan")
    assert shown["id"] == network_id and subnet["id"] in str(shown["subnets"])
    port = os_json(server, "port", "create", "--network", "lan", "nic")
    assert "10.0.0.100" in str(port["fixed_ips"]) and port["mac_address"].startswith("aa:00:")
    fixed = os_json(
        server, "port", "create", "--network", "lan", "--fixed-ip", "ip-address=10.0.0.150", "nic2"
    )
    assert "10.0.0.150" in str(fixed["fixed_ips"])
    taken = openstack(
        server, *_admin(server), "port", "create", "--network", "lan",
        "--fixed-ip", "ip-address=10.0.0.150", "nic3",
    )  # fmt: skip
    assert taken.returncode != 0 and "already in use" in taken.stderr
    ports = os_json(server, "port", "list", "--network", "lan")
    assert sorted(p["Name"] for p in ports) == ["nic", "nic2"]
    busy = openstack(server, *_admin(server), "network", "delete", "lan")
    assert busy.returncode != 0 and "in use" in busy.stderr
    os_run(server, "port", "delete", port["id"], fixed["id"])
    os_run(server, "network", "delete", "lan")
    assert [n["Name"] for n in os_json(server, "network", "list")] == ["public"]


def test_floating_ips_and_quota(server: Server, public: str):
    created = os_json(server, "floating", "ip", "create", "public")
    assert created["floating_ip_address"] == "192.0.2.10"
    assert created["floating_network_id"] == public
    listed, quotas = side_by_side(
        lambda: os_json(server, "floating", "ip", "list"),
        lambda: os_json(server, "quota", "show", "--usage"),
    )
    assert [f["Floating IP Address"] for f in listed] == ["192.0.2.10"]
    rows = {q["Resource"]: (q["Limit"], q["In Use"]) for q in quotas}
    assert rows["floating_ips"] == (2, 1), rows  # the network's value over Nova's
    assert rows["networks"] == (5, 0)
    os_run(server, "floating", "ip", "delete", created["id"])
    assert os_json(server, "floating", "ip", "list") == []
