"""python-openstackclient's compute commands, unmodified, against ``nefos up`` (the
embedded backend): servers go through the effect and update paths end to end."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.conftest import Server
from tests.e2e.test_server import openstack, sdk, side_by_side


@pytest.fixture(scope="module")
def image(server: Server, tmp_path_factory: pytest.TempPathFactory) -> str:
    disk = tmp_path_factory.mktemp("image") / "disk.img"
    disk.write_bytes(b"\x00" * 4096 + b"not a real disk")
    created = openstack(
        server, *_admin(server), "image", "create", "--file", str(disk),
        "--disk-format", "raw", "--container-format", "bare", "tiny", "-f", "json",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    return json.loads(created.stdout)["id"]


def _admin(server: Server) -> tuple[str, str, str]:
    return server.admin_email, server.admin_password, server.admin_email


def os_json(server: Server, *args: str) -> object:
    done = openstack(server, *_admin(server), *args, "-f", "json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def os_run(server: Server, *args: str) -> None:
    done = openstack(server, *_admin(server), *args)
    assert done.returncode == 0, done.stderr


def wait_status(server: Server, server_id: str, status: str) -> None:
    for _ in range(60):
        shown = os_json(server, "server", "show", server_id)
        if shown["status"] == status and not shown.get("OS-EXT-STS:task_state"):
            return
        time.sleep(0.5)
    raise AssertionError(f"server {server_id} is {shown['status']}, not {status}")


def test_flavor_list(server: Server):
    flavors = os_json(server, "flavor", "list")
    assert {f["Name"] for f in flavors} >= {"C1R1024D20file", "C2R2048D40file"}


def test_limits_zones_and_quotas(server: Server):
    limits, networks, zones, quotas = side_by_side(
        lambda: os_json(server, "limits", "show", "--absolute"),
        lambda: openstack(server, *_admin(server), "network", "list"),
        lambda: os_json(server, "availability", "zone", "list", "--compute", "--long"),
        lambda: os_json(server, "quota", "show", "--usage"),  # compute, volume, network
    )
    rows = {q["Resource"]: (q["Limit"], q["In Use"]) for q in quotas}
    assert rows["instances"] == (5, 0) and rows["floating_ips"] == (2, 0)
    # Volumes count against cyclades.disk, not a number of volumes (Synnefo has none): -1.
    assert rows["volumes"] == (-1, 0) and rows["networks"] == (5, 0)
    assert [(z["Zone Name"], z["Zone Status"], z["Host Name"]) for z in zones] == [
        ("nova", "available", "embedded")
    ]
    assert {row["Name"]: row["Value"] for row in limits}["max_total_instances"] == 5
    assert networks.returncode == 0, networks.stderr  # networking is built (test_network_clients)


def test_server_lifecycle(server: Server, image: str, tmp_path: Path):
    created = os_json(  # the image and flavor by name, which the client resolves
        server, "server", "create", "--image", "tiny", "--flavor", "C1R1024D20file",
        "--property", "role=web", "--wait", "web",
    )  # fmt: skip
    assert created["status"] == "ACTIVE"
    assert created["OS-EXT-STS:task_state"] is None and created["OS-SRV-USG:launched_at"]
    assert created["image"].startswith("tiny") and not any(k.startswith("SNF:") for k in created)
    server_id = created["id"]
    listed = os_json(server, "server", "list")
    assert [(s["Name"], s["Status"]) for s in listed] == [("web", "ACTIVE")]
    os_run(server, "server", "stop", server_id)
    wait_status(server, server_id, "SHUTOFF")  # the OpenStack dialect (kamaki's: STOPPED)
    os_run(server, "server", "start", server_id)
    wait_status(server, server_id, "ACTIVE")
    os_run(server, "server", "reboot", "--hard", "--wait", server_id)
    assert os_json(server, "server", "show", server_id)["status"] == "ACTIVE"
    os_run(server, "server", "delete", "--wait", server_id)
    # The operator command in process (``nefos server`` runs as a process in
    # tests/compute/test_cli.py), beside the client's listing.
    listed, jobs = side_by_side(
        lambda: os_json(server, "server", "list"),
        lambda: server.invoke("server", "show", server_id, check=False),
    )
    assert listed == []
    if jobs.returncode == 0:  # the operator view lists the backend jobs
        assert "OP_INSTANCE_REMOVE" in jobs.stdout


def test_bad_requests_answer_in_nova_faults(server: Server, image: str):
    unknown_flavor, missing = side_by_side(
        lambda: openstack(
            server, *_admin(server), "server", "create", "--image", image, "--flavor", "999", "x"
        ),
        lambda: openstack(server, *_admin(server), "server", "show", "12345"),
    )
    assert unknown_flavor.returncode != 0
    assert missing.returncode != 0
    assert "No Server found for 12345" in missing.stderr


def test_server_create_min_max(server: Server, image: str):
    """`--min`/`--max` create that many servers, or as many of them as the quota holds
    (5 servers), and none at all when fewer than --min fit."""
    flavor = ("--image", image, "--flavor", "C1R1024D20file")
    first = os_json(
        server, "server", "create", *flavor, "--min", "3", "--max", "3", "--wait", "web"
    )
    assert first["name"] == "web-1" and first["status"] == "ACTIVE"
    names = sorted(s["Name"] for s in os_json(server, "server", "list"))
    assert names == ["web-1", "web-2", "web-3"]
    over = openstack(
        server, *_admin(server), "server", "create", *flavor, "--min", "3", "--max", "3", "db"
    )
    assert over.returncode != 0 and "413" in over.stderr, over.stderr
    assert len(os_json(server, "server", "list")) == 3  # none of the three
    os_run(server, "server", "create", *flavor, "--min", "1", "--max", "5", "db")
    listed = os_json(server, "server", "list")
    assert sorted(s["Name"] for s in listed) == ["db-1", "db-2", "web-1", "web-2", "web-3"]
    os_run(server, "server", "delete", "--wait", *(s["ID"] for s in listed))
    assert os_json(server, "server", "list") == []


def test_openstacksdk_waits_for_shutoff(server: Server, image: str):
    """openstacksdk's waits compare the status by name: Nova's names on the v3 endpoints."""
    conn = sdk(server)
    try:
        flavor = conn.compute.find_flavor("C1R1024D20file")
        made = conn.compute.create_server(name="sdk", image_id=image, flavor_id=flavor.id)
        made = conn.compute.wait_for_server(made, status="ACTIVE", wait=60, interval=0.5)
        conn.compute.stop_server(made)
        stopped = conn.compute.wait_for_server(made, status="SHUTOFF", wait=60, interval=0.5)
        assert stopped.status == "SHUTOFF" and stopped.vm_state == "stopped"
        conn.compute.delete_server(made)
        conn.compute.wait_for_delete(made, wait=60, interval=0.5)
    finally:
        conn.close()
