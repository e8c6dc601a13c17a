"""The Block Storage API as the real clients drive it: python-openstackclient's
``volume`` and ``limits`` commands and openstacksdk, unmodified, against ``nefos up``."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from openstack.exceptions import BadRequestException

from tests.conftest import Server
from tests.e2e.test_server import openstack as run_openstack
from tests.e2e.test_server import sdk, side_by_side


def admin(server: Server, *args: str):
    return run_openstack(
        server, server.admin_email, server.admin_password, server.admin_email, *args
    )


def ok(result) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def os_json(server: Server, *args: str):
    return json.loads(ok(admin(server, *args, "-f", "json")))


@pytest.fixture(scope="module")
def bob(server: Server) -> tuple[str, str]:
    email, password = "bob-volumes@example.org", "bob-volume-password"
    server.invoke("user", "create", email, "--password-stdin", input=password + "\n")
    return email, password


def as_bob(server: Server, bob: tuple[str, str], *args: str):
    email, password = bob
    return run_openstack(server, email, password, email, *args)


def test_openstack_volume_lifecycle(server: Server, tmp_path: Path):
    made = os_json(server, "volume", "create", "--size", "1", "v1")
    assert made["status"] == "available" and made["size"] == 1 and made["type"] == "nefos"
    listed = os_json(server, "volume", "list")
    assert [(v["Name"], v["Status"], v["Size"]) for v in listed] == [("v1", "available", 1)]
    ok(admin(server, "volume", "set", "--name", "v1b", "--description", "scratch",
             "--property", "tier=gold", "--size", "2", "v1"))  # fmt: skip
    shown = os_json(server, "volume", "show", "v1b")
    assert shown["description"] == "scratch" and shown["properties"] == {"tier": "gold"}
    assert shown["size"] == 2 and shown["id"] == made["id"]
    # from an image: its blocks, no copy; bootable
    source = tmp_path / "disk.raw"
    source.write_bytes(os.urandom(3 * 1024 * 1024))
    image = os_json(server, "image", "create", "--disk-format", "raw", "--container-format",
                    "bare", "--file", str(source), "vol-image")  # fmt: skip
    booted = os_json(server, "volume", "create", "--size", "1", "--image", image["id"], "v2")
    assert booted["bootable"] in (True, "true") and booted["status"] == "available"
    # a snapshot, and a volume from it
    snapshot = os_json(server, "volume", "snapshot", "create", "--volume", "v1b", "s1")
    assert snapshot["status"] == "available" and snapshot["size"] == 2
    snapshots = os_json(server, "volume", "snapshot", "list")
    assert [s["Name"] for s in snapshots] == ["s1"]
    restored = os_json(server, "volume", "create", "--snapshot", "s1", "v3")
    assert restored["snapshot_id"] == snapshot["id"] and restored["size"] == 2
    clone = os_json(server, "volume", "create", "--source", "v3", "--size", "3", "v4")
    assert clone["source_volid"] == restored["id"] and clone["size"] == 3
    # limits show the volumes: 2 + 1 + 2 + 3 GiB in 4 volumes, 1 snapshot
    rows = {r["Name"]: r["Value"] for r in os_json(server, "limits", "show", "--absolute")}
    assert rows["total_volumes_used"] == 4 and rows["total_gigabytes_used"] == 8
    assert rows["max_total_volume_gigabytes"] == 200 and rows["total_snapshots_used"] == 1
    ok(admin(server, "volume", "snapshot", "delete", "s1"))
    ok(admin(server, "volume", "delete", "v1b", "v2", "v3", "v4"))
    remaining = side_by_side(
        lambda: os_json(server, "volume", "list"),
        lambda: os_json(server, "volume", "snapshot", "list"),
    )
    assert remaining == [[], []]


def test_another_users_volume_is_not_found(server: Server, bob):
    made = os_json(server, "volume", "create", "--size", "1", "private-volume")
    try:
        theirs = side_by_side(
            lambda: as_bob(server, bob, "volume", "show", made["id"]),
            lambda: as_bob(server, bob, "volume", "delete", made["id"]),
            lambda: as_bob(
                server, bob, "volume", "snapshot", "create", "--volume", made["id"], "x"
            ),
        )
        for refused in theirs:
            # "403" alone may sit inside the volume's id in the client's message
            assert refused.returncode != 0
            assert "HTTP 403" not in refused.stderr and "orbidden" not in refused.stderr
        assert os_json(server, "volume", "show", made["id"])["status"] == "available"
    finally:
        ok(admin(server, "volume", "delete", made["id"]))


def test_openstacksdk_volumes_and_snapshots(server: Server):
    conn = sdk(server)
    volume = conn.block_storage.create_volume(size=1, name="sdk-volume")
    try:
        volume = conn.block_storage.wait_for_status(volume, "available", wait=30)
        assert volume.size == 1
        assert volume.id in [v.id for v in conn.block_storage.volumes()]
        snapshot = conn.block_storage.create_snapshot(volume_id=volume.id, name="sdk-snap")
        snapshot = conn.block_storage.wait_for_status(snapshot, "available", wait=30)
        copy = conn.block_storage.create_volume(snapshot_id=snapshot.id, name="sdk-copy")
        assert conn.block_storage.get_volume(copy.id).snapshot_id == snapshot.id
        # one a page: the client follows volumes_links; newest first, none twice
        paged = [v.id for v in conn.block_storage.volumes(limit=1)]
        assert paged.index(copy.id) < paged.index(volume.id) and len(set(paged)) == len(paged)
        conn.block_storage.extend_volume(copy, 2)
        assert conn.block_storage.get_volume(copy.id).size == 2
        # The CLI raises --size to the source's itself; the API refuses a smaller one.
        with pytest.raises(BadRequestException, match="smaller"):
            conn.block_storage.create_volume(source_volid=copy.id, size=1)
        conn.block_storage.delete_volume(copy)
        conn.block_storage.delete_snapshot(snapshot)
        conn.block_storage.wait_for_delete(snapshot, wait=30)
        limits = conn.block_storage.get_limits()
        assert limits.absolute.total_volumes_used == 1
    finally:
        conn.block_storage.delete_volume(volume)
    assert conn.block_storage.find_volume("sdk-volume") is None
    conn.close()


def _until(server: Server, volume: str, status: str) -> dict:
    for _ in range(60):
        shown = os_json(server, "volume", "show", volume)
        if shown["status"] == status:
            return shown
        time.sleep(0.5)
    raise AssertionError(f"volume {volume} is {shown['status']}, not {status}")


def test_openstack_server_add_and_remove_volume(server: Server, bob, tmp_path: Path):
    disk = tmp_path / "tiny.img"
    disk.write_bytes(b"\x00" * 4096 + b"attach test")
    ok(admin(server, "image", "create", "--file", str(disk), "--disk-format", "raw",
             "--container-format", "bare", "attach-image"))  # fmt: skip
    vm = os_json(server, "server", "create", "--image", "attach-image", "--flavor",
                 "C1R1024D20file", "--wait", "attach-vm")  # fmt: skip
    data = os_json(server, "volume", "create", "--size", "1", "data")
    attached = os_json(server, "server", "add", "volume", "attach-vm", "data")
    assert attached["Volume ID"] == data["id"] and attached["Server ID"] == vm["id"]
    assert attached["Device"] == "/dev/vdb"
    in_use = _until(server, "data", "in-use")
    (attachment,) = in_use["attachments"]
    assert attachment["server_id"] == vm["id"] and attachment["device"] == "/dev/vdb"
    shown = os_json(server, "server", "show", "attach-vm")
    assert [v["id"] for v in shown["volumes_attached"]] == [data["id"]]
    listed = os_json(server, "server", "volume", "list", "attach-vm")
    assert [(v["Volume ID"], v["Device"]) for v in listed] == [(data["id"], "/dev/vdb")]
    # bad input: attached volumes are not deleted; another user's server is not found
    refused = admin(server, "volume", "delete", "data")
    assert refused.returncode != 0 and "in-use" in refused.stderr
    bobs = ok(as_bob(server, bob, "volume", "create", "--size", "1", "bobs", "-f", "value",
                     "-c", "id")).strip()  # fmt: skip
    theirs = as_bob(server, bob, "server", "add", "volume", vm["id"], bobs)
    assert theirs.returncode != 0 and "HTTP 403" not in theirs.stderr
    ok(admin(server, "server", "remove", "volume", "attach-vm", "data"))
    assert _until(server, "data", "available")["attachments"] == []
    assert os_json(server, "server", "volume", "list", "attach-vm") == []
    ok(admin(server, "server", "delete", "--wait", "attach-vm"))
    ok(admin(server, "volume", "delete", "data"))
    ok(as_bob(server, bob, "volume", "delete", bobs))


def test_openstack_server_create_boot_from_volume(server: Server, tmp_path: Path):
    disk = tmp_path / "bfv.img"
    disk.write_bytes(b"\x00" * 4096 + b"boot from volume")
    image = os_json(server, "image", "create", "--file", str(disk), "--disk-format", "raw",
                    "--container-format", "bare", "bfv-image")  # fmt: skip
    vm = os_json(server, "server", "create", "--image", "bfv-image", "--boot-from-volume", "1",
                 "--flavor", "C1R1024D20file", "--wait", "bfv-vm")  # fmt: skip
    assert vm["status"] == "ACTIVE"
    (root,) = vm["volumes_attached"]
    volume = _until(server, root["id"], "in-use")
    assert volume["attachments"][0]["device"] == "/dev/vda" and volume["size"] == 1
    assert volume["volume_image_metadata"]["image_id"] == image["id"]
    listed = os_json(server, "server", "volume", "list", "bfv-vm")
    assert [v["Volume ID"] for v in listed] == [root["id"]]
    # createImage: a snapshot of the root volume, an image at once
    snap = os_json(server, "server", "image", "create", "--name", "bfv-snap", "--wait", "bfv-vm")
    assert snap["name"] == "bfv-snap" and snap["status"] == "active"
    snapshots = os_json(server, "volume", "snapshot", "list")
    assert [s["ID"] for s in snapshots if s["Name"] == "bfv-snap"] == [snap["id"]]
    plain = admin(server, "server", "create", "--image", "bfv-image", "--flavor",
                  "C1R1024D20file", "--wait", "plain-vm")  # fmt: skip
    assert plain.returncode == 0, plain.stderr
    refused = admin(server, "server", "image", "create", "--name", "nope", "plain-vm")
    assert refused.returncode != 0 and "booted from a volume" in refused.stderr
    ok(admin(server, "server", "delete", "--wait", "plain-vm"))
    ok(admin(server, "volume", "snapshot", "delete", "bfv-snap"))
    # the root volume stays after the server (no --delete-on-termination)
    ok(admin(server, "server", "delete", "--wait", "bfv-vm"))
    _until(server, root["id"], "available")
    ok(admin(server, "volume", "delete", root["id"]))
    ok(admin(server, "image", "delete", "bfv-image"))


def test_openstack_volume_flags_zones_and_upload_to_image(server: Server):
    """`volume create --bootable`, `volume set --read-only/--non-bootable`, `image
    create --volume`, the volume zones and the default type, as an operator's user
    types them."""
    ok(admin(server, "volume", "create", "--size", "1", "--bootable", "flags"))
    # the client sets the flag after the create (os-set_bootable), then prints the create
    assert os_json(server, "volume", "show", "flags")["bootable"] in (True, "true")
    ok(admin(server, "volume", "set", "--read-only", "--non-bootable", "flags"))
    shown = os_json(server, "volume", "show", "flags")
    assert shown["bootable"] in (False, "false") and shown["properties"] == {"readonly": "True"}
    zones = os_json(server, "availability", "zone", "list", "--volume")
    assert [(z["Zone Name"], z["Zone Status"]) for z in zones] == [("nova", "available")]
    (default,) = os_json(server, "volume", "type", "list", "--default")
    assert default["Name"] == "nefos"
    uploaded = os_json(server, "image", "create", "--volume", "flags", "flags-image")
    image = os_json(server, "image", "show", uploaded["image_id"])
    assert image["name"] == "flags-image" and image["status"] == "active"
    assert image["size"] == 1 << 30 and image["visibility"] == "private"
    ok(admin(server, "image", "delete", uploaded["image_id"]))
    ok(admin(server, "volume", "delete", "flags"))


def test_openstack_volume_transfer(server: Server, bob):
    """`volume transfer request create` by the owner, `... accept` by another user."""
    made = os_json(server, "volume", "create", "--size", "1", "gift")
    offer = os_json(server, "volume", "transfer", "request", "create", "--name", "to-bob", "gift")
    assert offer["volume_id"] == made["id"] and len(offer["auth_key"]) == 16
    listed = os_json(server, "volume", "transfer", "request", "list")
    assert [(t["ID"], t["Name"]) for t in listed] == [(offer["id"], "to-bob")]
    assert os_json(server, "volume", "show", made["id"])["status"] == "awaiting-transfer"
    accepted = as_bob(
        server, bob, "volume", "transfer", "request", "accept",
        "--auth-key", offer["auth_key"], offer["id"], "-f", "json",
    )  # fmt: skip
    assert json.loads(ok(accepted))["volume_id"] == made["id"]
    shown = json.loads(ok(as_bob(server, bob, "volume", "show", made["id"], "-f", "json")))
    assert shown["status"] == "available" and shown["name"] == "gift"
    assert admin(server, "volume", "show", made["id"]).returncode != 0
    assert os_json(server, "volume", "transfer", "request", "list") == []
    ok(as_bob(server, bob, "volume", "delete", made["id"]))
