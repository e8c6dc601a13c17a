"""``nefos image``: operators upload and register system images that every user lists."""

from __future__ import annotations

import json
import os
from pathlib import Path

from nefos.blocks import BLOCK_SIZE, block_hash, merkle
from nefos.core.config import Settings
from nefos.server.engines import Engines
from tests.conftest import invoke_nefos, run_nefos

V1 = "/cyclades/image/v1.0"  # Plankton, as kamaki reaches it (the Synnefo dialect)


async def register(settings: Settings, *args: str, process: bool = False) -> dict:
    """``nefos image register ... --json``, in process unless ``process`` (the installed
    script, end to end)."""
    run = run_nefos if process else invoke_nefos
    done = await run(settings, "image", "register", *args, "--json")
    return json.loads(done.stdout)


async def test_register_uploads_once_and_publishes(
    settings: Settings, engines: Engines, client, tmp_path: Path
):
    admin, _ = await engines.identity.create_user(settings.admin_email, admin=True)
    _, bob_token = await engines.identity.create_user("bob@example.org")
    data = os.urandom(2 * BLOCK_SIZE + 1000)
    image_file = tmp_path / "debian-12.diskdump"
    image_file.write_bytes(data)
    hashes = [block_hash(data[i : i + BLOCK_SIZE]) for i in range(0, len(data), BLOCK_SIZE)]

    first = await register(
        settings, str(image_file), "--name", "Debian 12",
        "--property", "osfamily=linux", "--property", "root_partition=1", process=True,
    )  # fmt: skip
    assert (first["blocks"], first["sent_blocks"], first["sent_bytes"]) == (3, 3, len(data))
    assert first["owner"] == str(admin.id) and first["visibility"] == "public"
    assert first["location"] == f"pithos://{admin.id}/images/debian-12.diskdump"
    assert first["checksum"] == merkle(hashes)
    stored = set(await engines.store.block_names())
    assert set(hashes) <= stored

    listed = json.loads((await invoke_nefos(settings, "image", "list", "--json")).stdout)
    assert [(i["id"], i["name"], i["owner_email"], i["size"], i["visibility"]) for i in listed] == [
        (first["id"], "Debian 12", settings.admin_email, len(data), "public")
    ]
    table = (await invoke_nefos(settings, "image", "list")).stdout
    assert first["id"] in table and "Debian 12" in table and "public" in table

    # Another user sees it as a public image through Plankton's API.
    bob_auth = {"X-Auth-Token": bob_token}
    (seen,) = (await client.get(f"{V1}/images/detail", headers=bob_auth)).json()
    assert seen["id"] == first["id"] and seen["is_public"] is True
    assert seen["owner"] == str(admin.id) and seen["size"] == len(data)
    assert seen["properties"] == {"osfamily": "linux", "root_partition": "1"}
    assert seen["status"] == "AVAILABLE"

    # The same file again: nothing sent, nothing stored, the same image.
    again = await register(settings, str(image_file), "--name", "Debian 12 (again)")
    assert (again["sent_blocks"], again["sent_bytes"]) == (0, 0)
    assert again["id"] == first["id"]
    assert set(await engines.store.block_names()) == stored
    assert again["properties"] == {}  # re-registering sets the fields anew

    # A changed last block: only that block is sent, and the image keeps its id.
    changed = data[: 2 * BLOCK_SIZE] + os.urandom(1000)
    image_file.write_bytes(changed)
    updated = await register(settings, str(image_file), "--name", "Debian 12.1")
    assert (updated["sent_blocks"], updated["sent_bytes"]) == (1, 1000)
    assert updated["id"] == first["id"]
    got = await client.get(
        f"/object-store/v1/{admin.id}/images/debian-12.diskdump", headers=bob_auth
    )
    assert got.status_code == 200 and got.content == changed  # public: anyone reads it


async def test_register_private_for_an_owner(
    settings: Settings, engines: Engines, client, tmp_path: Path
):
    bob, bob_token = await engines.identity.create_user("bob@example.org")
    _, carol_token = await engines.identity.create_user("carol@example.org")
    image_file = tmp_path / "tiny.img"
    image_file.write_bytes(b"tiny image")
    done = await register(
        settings, str(image_file), "--name", "Tiny", "--owner", "bob@example.org", "--private",
        "--path", "os/tiny.img", "--disk-format", "extdump",
    )  # fmt: skip
    assert done["owner"] == str(bob.id) and done["visibility"] == "private"
    assert done["location"] == f"pithos://{bob.id}/images/os/tiny.img"
    assert done["disk_format"] == "extdump"
    bob_sees = await client.get(f"{V1}/images/", headers={"X-Auth-Token": bob_token})
    assert [i["id"] for i in bob_sees.json()] == [done["id"]]
    carol_sees = await client.get(f"{V1}/images/", headers={"X-Auth-Token": carol_token})
    assert carol_sees.json() == []


async def test_bad_register_arguments(settings: Settings, engines: Engines, tmp_path: Path):
    image_file = tmp_path / "x.img"
    image_file.write_bytes(b"x")
    no_admin = await invoke_nefos(settings, "image", "register", str(image_file), "--name", "X",
                                  check=False)  # fmt: skip
    assert no_admin.returncode == 1 and "admin" in no_admin.stderr
    await engines.identity.create_user(settings.admin_email, admin=True)
    bad_property = await invoke_nefos(
        settings, "image", "register", str(image_file), "--name", "X", "--property", "novalue",
        check=False,
    )  # fmt: skip
    assert bad_property.returncode == 2
    bad_format = await invoke_nefos(
        settings, "image", "register", str(image_file), "--name", "X", "--disk-format", "floppy",
        check=False,
    )  # fmt: skip
    assert bad_format.returncode == 1 and "disk format" in bad_format.stderr
    listed = json.loads((await invoke_nefos(settings, "image", "list", "--json")).stdout)
    assert listed == []
