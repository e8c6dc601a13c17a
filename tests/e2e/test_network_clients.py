"""python-openstackclient's network commands, unmodified, against ``nefos up``: the
network control plane end to end (no server NICs yet: those come with the next slice)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
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


def test_server_nics_and_floating_ips(server: Server, public: str, tmp_path: Path):
    """Issue 20's CLI flows on servers: `server create --network`, `port create
    --device` (a NIC added to the running server), `server add/remove floating ip`
    (no NAT: the floating IP comes on a NIC of its own network), on the embedded
    backend, where the addresses are real and no packet flows."""
    disk = tmp_path / "disk.img"
    disk.write_bytes(b"\x00" * 4096)
    image, lan = side_by_side(
        lambda: os_json(
            server,
            "image",
            "create",
            "--file",
            str(disk),
            "--disk-format",
            "raw",
            "--container-format",
            "bare",
            "nic-image",
        ),
        lambda: os_json(server, "network", "create", "vm-lan"),
    )
    os_json(
        server, "subnet", "create", "--network", lan["id"], "--subnet-range", "10.1.0.0/24", "v4"
    )
    created = os_json(
        server, "server", "create", "--image", image["id"], "--flavor", "C1R1024D20file",
        "--network", "vm-lan", "--wait", "vm",
    )  # fmt: skip
    assert created["status"] == "ACTIVE"
    assert created["addresses"] in ({"vm-lan": ["10.1.0.2"]}, "vm-lan=10.1.0.2"), created
    server_id = created["id"]
    floating, port = side_by_side(
        lambda: os_json(server, "floating", "ip", "create", "public"),
        lambda: os_json(
            server,
            "port",
            "create",
            "--network",
            "vm-lan",
            "--device",
            server_id,
            "--device-owner",
            "compute:nova",
            "second",
        ),
    )
    address = floating["floating_ip_address"]
    assert port["device_id"] == server_id and "10.1.0.3" in str(port["fixed_ips"])
    os_run(server, "server", "add", "floating", "ip", server_id, address)
    shown, ports = side_by_side(
        lambda: os_json(server, "server", "show", server_id),
        lambda: os_json(server, "port", "list", "--server", server_id),
    )
    text = str(shown["addresses"])
    assert "10.1.0.2" in text and "10.1.0.3" in text and address in text, shown["addresses"]
    assert len(ports) == 3  # the first NIC, the one added, the floating IP's own
    held = os_json(server, "floating", "ip", "show", address)
    assert held["port_id"] in {p["ID"] for p in ports}  # a NIC of the public network
    os_run(server, "server", "remove", "floating", "ip", server_id, address)
    shown, released = side_by_side(
        lambda: os_json(server, "server", "show", server_id),
        lambda: os_json(server, "floating", "ip", "show", address),
    )
    assert address not in str(shown["addresses"]) and released["port_id"] is None
    os_run(server, "server", "delete", "--wait", server_id)
    os_run(server, "floating", "ip", "delete", address)
    left = os_json(server, "port", "list", "--network", "vm-lan")
    assert [p["Name"] for p in left] == ["second"]  # a user's port is only detached
    os_run(server, "port", "delete", "second")
    os_run(server, "network", "delete", "vm-lan")


def test_a_server_on_the_public_network_floating_ip_and_security_groups(
    server: Server, public: str, tmp_path: Path
):
    """The case Synnefo's model exists for: the server's NIC is on the public network
    already, with a fixed address of its own. `server add floating ip` (Neutron's PUT
    with that port) gives the server a second NIC there, holding the floating IP, which
    the node can route; `server remove floating ip` takes that NIC away, and the
    floating IP stays allocated, charged once. Its NIC's security group is its firewall
    profile's."""
    disk = tmp_path / "disk.img"
    disk.write_bytes(b"\x00" * 4096)
    image = os_json(
        server, "image", "create", "--file", str(disk), "--disk-format", "raw",
        "--container-format", "bare", "public-image",
    )  # fmt: skip
    created = os_json(
        server, "server", "create", "--image", image["id"], "--flavor", "C1R1024D20file",
        "--network", "public", "--wait", "on-public",
    )  # fmt: skip
    server_id = created["id"]
    (first,) = os_json(server, "port", "list", "--server", server_id)
    fixed = first["Fixed IP Addresses"]
    floating = os_json(server, "floating", "ip", "create", "public")
    address = floating["floating_ip_address"]
    assert address not in str(fixed)
    os_run(server, "server", "add", "floating", "ip", server_id, address)
    shown, ports, held = side_by_side(
        lambda: os_json(server, "server", "show", server_id),
        lambda: os_json(server, "port", "list", "--server", server_id),
        lambda: os_json(server, "floating", "ip", "show", address),
    )
    assert address in str(shown["addresses"]), shown["addresses"]
    assert len(ports) == 2 and held["port_id"] != first["ID"]
    (holder,) = [p for p in ports if p["ID"] == held["port_id"]]
    assert address in str(holder["Fixed IP Addresses"])  # the NIC's own address
    rows = {q["Resource"]: q["In Use"] for q in os_json(server, "quota", "show", "--usage")}
    assert rows["floating_ips"] == 1
    os_run(server, "server", "remove", "floating", "ip", server_id, address)
    shown, ports, released = side_by_side(
        lambda: os_json(server, "server", "show", server_id),
        lambda: os_json(server, "port", "list", "--server", server_id),
        lambda: os_json(server, "floating", "ip", "show", address),
    )
    assert address not in str(shown["addresses"]) and released["port_id"] is None
    assert [p["ID"] for p in ports] == [first["ID"]]
    rows = {q["Resource"]: q["In Use"] for q in os_json(server, "quota", "show", "--usage")}
    assert rows["floating_ips"] == 1

    # Security groups are the firewall profiles: the NIC's group follows its profile.
    groups = {g["Name"]: g["ID"] for g in os_json(server, "security", "group", "list")}
    assert set(groups) == {"protected", "limited", "unprotected"}
    shown_port = os_json(server, "port", "show", first["ID"])
    assert shown_port["security_group_ids"] == [groups["unprotected"]]
    changed = httpx.post(
        f"{server.url}/compute/v2.1/servers/{server_id}/action",
        json={"firewallProfile": {"profile": "PROTECTED", "nic": first["ID"]}},
        headers={"X-Auth-Token": server.admin_token},
    )
    assert changed.status_code == 202, changed.text
    shown_port = os_json(server, "port", "show", first["ID"])
    assert shown_port["security_group_ids"] == [groups["limited"]]
    rules = os_json(server, "security", "group", "rule", "list", "limited", "--ingress")
    assert {(r["IP Protocol"], r["Port Range"]) for r in rules} >= {
        ("tcp", "22:22"),
        ("tcp", "3389:3389"),
    }
    os_run(server, "server", "delete", "--wait", server_id)
    os_run(server, "floating", "ip", "delete", address)
