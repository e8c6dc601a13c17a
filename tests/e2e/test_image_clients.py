"""Glance v2 as the real clients drive it: python-openstackclient's ``image`` commands
and openstacksdk, unmodified, against ``nefos up``."""

from __future__ import annotations

import hashlib
import json
import os
from functools import partial
from pathlib import Path

import httpx
import pytest

from tests.conftest import Server
from tests.e2e.test_server import openstack as run_openstack
from tests.e2e.test_server import sdk, side_by_side

CREATE = ("image", "create", "--disk-format", "raw", "--container-format", "bare")


def admin(server: Server, *args: str):
    return run_openstack(
        server, server.admin_email, server.admin_password, server.admin_email, *args
    )


def ok(result) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def ok_delete(server: Server, image_id: str) -> None:
    ok(admin(server, "image", "delete", image_id))


@pytest.fixture(scope="module")
def bob(server: Server) -> tuple[str, str, str]:
    """A second user with a password: (e-mail, password, uuid)."""
    email, password = "bob@example.org", "bob-secret-password"
    created = server.invoke("user", "create", email, "--password-stdin", input=password + "\n")
    printed = dict(line.split(":", 1) for line in created.stdout.splitlines() if ":" in line)
    return email, password, printed["uuid"].strip()


def as_bob(server: Server, bob: tuple[str, str, str], *args: str):
    email, password, _ = bob
    return run_openstack(server, email, password, email, *args)


def test_openstack_image_lifecycle(server: Server, tmp_path: Path):
    data = os.urandom(5 * 1024 * 1024 + 7)
    source = tmp_path / "disk.raw"
    source.write_bytes(data)
    properties = ["--property", "os_distro=debian", "--file", str(source)]
    created = json.loads(ok(admin(server, *CREATE, *properties, "cli-image", "-f", "json")))
    image_id = created["id"]
    assert created["status"] == "active"
    assert created["size"] == len(data)
    assert created["checksum"] == hashlib.md5(data).hexdigest()
    assert created["owner"] == server.admin_uuid

    listed, shown = side_by_side(
        lambda: json.loads(ok(admin(server, "image", "list", "-f", "json"))),
        lambda: json.loads(ok(admin(server, "image", "show", "cli-image", "-f", "json"))),
    )
    assert {"ID": image_id, "Name": "cli-image", "Status": "active"} in listed
    assert shown["id"] == image_id
    assert shown["properties"]["os_distro"] == "debian"

    ok(admin(server, "image", "set", "--property", "flavor=tiny", "--tag", "base", image_id))
    shown = json.loads(ok(admin(server, "image", "show", image_id, "-f", "json")))
    assert shown["properties"]["flavor"] == "tiny"
    assert shown["tags"] == ["base"]

    saved = tmp_path / "saved.raw"
    ok(admin(server, "image", "save", "--file", str(saved), image_id))
    assert saved.read_bytes() == data
    # The same bytes are the file images/<id> in the owner's object store account.
    stored = httpx.get(
        f"{server.url}/object-store/v1/{server.admin_uuid}/images/{image_id}",
        headers={"X-Auth-Token": server.admin_token},
        timeout=30,
    )
    assert stored.status_code == 200
    assert stored.content == data

    ok(admin(server, "image", "delete", image_id))
    gone, ids = side_by_side(
        lambda: admin(server, "image", "show", image_id),
        lambda: ok(admin(server, "image", "list", "-f", "value", "-c", "ID")),
    )
    assert gone.returncode != 0
    assert image_id not in ids


def test_openstack_image_visibility_between_users(server: Server, bob, tmp_path: Path):
    _, _, bob_uuid = bob
    source = tmp_path / "small.raw"
    source.write_bytes(b"small image")
    visibilities = ("private", "shared", "public")

    def create(visibility: str) -> str:
        created = admin(
            server, *CREATE, "--file", str(source), f"--{visibility}", visibility, "-f", "json"
        )
        return json.loads(ok(created))["id"]

    created = side_by_side(*(partial(create, visibility) for visibility in visibilities))
    ids = dict(zip(visibilities, created, strict=True))

    def bob_sees() -> set[str]:
        return set(ok(as_bob(server, bob, "image", "list", "-f", "value", "-c", "ID")).split())

    seen, private = side_by_side(
        bob_sees, lambda: as_bob(server, bob, "image", "show", ids["private"])
    )
    assert ids["public"] in seen
    assert not {ids["private"], ids["shared"]} & seen
    assert private.returncode != 0

    member = json.loads(
        ok(admin(server, "image", "add", "project", ids["shared"], bob_uuid, "-f", "json"))
    )
    assert member["status"] == "pending"
    assert ids["shared"] not in bob_sees()  # not until bob accepts it
    ok(as_bob(server, bob, "image", "set", "--accept", "--project", bob_uuid, ids["shared"]))
    saved = tmp_path / "bob.raw"
    seen, members, _ = side_by_side(
        bob_sees,
        lambda: json.loads(
            ok(admin(server, "image", "member", "list", ids["shared"], "-f", "json"))
        ),
        # Members read the image but may not delete it.
        lambda: ok(as_bob(server, bob, "image", "save", "--file", str(saved), ids["shared"])),
    )
    assert ids["shared"] in seen
    assert ids["private"] not in seen
    assert [(m["Member ID"], m["Status"]) for m in members] == [(bob_uuid, "accepted")]
    assert saved.read_bytes() == b"small image"
    assert as_bob(server, bob, "image", "delete", ids["shared"]).returncode != 0
    side_by_side(*(partial(ok_delete, server, image_id) for image_id in ids.values()))


def test_openstacksdk_create_list_download(server: Server):
    conn = sdk(server)
    data = os.urandom(100_000)
    image = conn.image.create_image(
        "sdk-image",
        data=data,
        disk_format="qcow2",
        container_format="bare",
        validate_checksum=True,
        allow_duplicates=True,
    )
    try:
        assert conn.image.get_image(image.id).status == "active"
        assert image.id in [i.id for i in conn.image.images()]
        # Paging follows Glance's "next" links.
        assert image.id in [i.id for i in conn.image.images(limit=1)]
        assert conn.image.download_image(image).content == data
        conn.image.update_image(image, name="sdk-renamed")
        assert conn.image.find_image("sdk-renamed").id == image.id
    finally:
        conn.image.delete_image(image)
    assert conn.image.find_image(image.id) is None
    conn.close()


def test_bad_input_answers_as_glance(server: Server):
    auth = {"X-Auth-Token": server.admin_token}
    bad = httpx.post(
        f"{server.url}/image/v2/images",
        headers=auth,
        json={"name": "x", "disk_format": "floppy"},
        timeout=10,
    )
    assert bad.status_code == 400
    assert bad.text.startswith("400 Bad Request\n\n")
    missing = httpx.get(f"{server.url}/image/v2/images/{'0' * 32}", headers=auth, timeout=10)
    assert missing.status_code == 404


def test_openstack_image_deactivate_and_activate(server: Server, bob, tmp_path: Path):
    """``openstack image set --deactivate``: the admin's hold that ``image show`` reads
    and that keeps the data from others; another user may not lift it (openstacksdk
    does not check the action's answer, so the test reads the status back)."""
    source = tmp_path / "held.raw"
    source.write_bytes(b"held" * 256)
    created = admin(server, *CREATE, "--public", "--file", str(source), "held", "-f", "json")
    image_id = json.loads(ok(created))["id"]
    ok(admin(server, "image", "set", "--deactivate", image_id))
    shown = json.loads(ok(admin(server, "image", "show", image_id, "-f", "json")))
    assert shown["status"] == "deactivated"
    as_bob(server, bob, "image", "set", "--activate", image_id)  # the CLI ignores a 403
    shown = json.loads(ok(as_bob(server, bob, "image", "show", image_id, "-f", "json")))
    assert shown["status"] == "deactivated"
    refused = as_bob(server, bob, "image", "save", "--file", str(tmp_path / "x"), image_id)
    assert refused.returncode != 0
    ok(admin(server, "image", "set", "--activate", image_id))
    shown = json.loads(ok(as_bob(server, bob, "image", "show", image_id, "-f", "json")))
    assert shown["status"] == "active"
    ok(as_bob(server, bob, "image", "save", "--file", str(tmp_path / "y"), image_id))
    assert (tmp_path / "y").read_bytes() == b"held" * 256
    ok_delete(server, image_id)
