"""``nf`` as a user runs it, against ``nefos up``: every command through the console
script, and the block protocol measured by what actually crossed the wire."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from nefos.blocks import BLOCK_SIZE, hashmap, merkle
from nefos.client import ClientError, Cloud, Files
from tests.conftest import Server

NF = str(Path(sys.executable).with_name("nf"))
MiB = 1 << 20


@dataclass
class Run:
    code: int
    raw: bytes
    err: str

    @property
    def out(self) -> str:
        return self.raw.decode()

    def json(self) -> Any:
        return json.loads(self.raw)


@pytest.fixture(scope="module")
def nf(server: Server, tmp_path_factory: pytest.TempPathFactory):
    """``nf`` with the admin's token, or another one; nothing read from ``~``."""
    config = tmp_path_factory.mktemp("nf") / "nf.toml"

    def run(*args: str | Path, token: str | None = None, check: bool = True) -> Run:
        env = {k: v for k, v in os.environ.items() if not k.startswith("NF_")}
        env |= {"NF_CONFIG": str(config), "NF_URL": server.url}
        env["NF_TOKEN"] = token or server.admin_token
        done = subprocess.run(
            [NF, *map(str, args)], env=env, capture_output=True, timeout=60, check=False
        )
        result = Run(done.returncode, done.stdout, done.stderr.decode())
        if check and done.returncode:
            raise AssertionError(f"nf {' '.join(map(str, args))}: {result.err}")
        return result

    return run


@pytest.fixture(scope="module")
def files(server: Server) -> Iterator[Files]:
    """The library, for setting up and checking what the commands under test did (a
    subprocess per step would make the suite slow, not more real)."""
    with Cloud(server.url, server.admin_token) as cloud:
        yield cloud.files()


def put(files: Files, path: str, data: bytes) -> None:
    container, name = path.split("/", 1)
    files.put(container, name, data)


@pytest.fixture(scope="module")
def bob(server: Server) -> tuple[str, str]:
    created = server.nefos("user", "create", "bob@example.org")
    fields = dict(line.split(": ", 1) for line in created.stdout.splitlines())
    return fields["uuid"], fields["token"]


def test_upload_and_download_move_only_the_blocks_that_differ(nf, files, tmp_path: Path):
    files.create_container("data")
    data = bytearray(os.urandom(9 * MiB))  # blocks of 4, 4 and 1 MiB
    local = tmp_path / "big.bin"
    local.write_bytes(data)

    first = nf("file", "upload", local, "data/big.bin", "--json").json()
    assert (first["blocks"], first["blocks_sent"], first["bytes_sent"]) == (3, 3, 9 * MiB)

    data[5_000_000] ^= 0xFF  # one byte of the second block
    local.write_bytes(data)
    second = nf("file", "upload", local, "data/big.bin").out
    assert second == "uploaded data/big.bin: 9 MiB, sent 4 MiB (1 of 3 blocks)\n"
    info = nf("file", "info", "data/big.bin", "--json").json()
    assert info["X-Object-Hash"] == merkle(hashmap(bytes(data)))
    assert info["Content-Length"] == str(9 * MiB)

    again = nf("file", "upload", local, "data/big.bin", "--json").json()
    assert again["bytes_sent"] == 0

    copy = tmp_path / "copy.bin"
    fresh = nf("file", "download", "data/big.bin", copy, "--json").json()
    assert (fresh["blocks_fetched"], fresh["bytes_fetched"]) == (3, 9 * MiB)
    assert copy.read_bytes() == data

    spoiled = bytearray(data)
    spoiled[100] ^= 0x01  # the first block
    copy.write_bytes(spoiled)
    repaired = nf("file", "download", "data/big.bin", copy, "--json").json()
    assert (repaired["blocks_fetched"], repaired["bytes_fetched"]) == (1, BLOCK_SIZE)
    assert repaired["blocks_kept"] == 2
    assert copy.read_bytes() == data

    # An interrupted download left the first block and a bit: only the rest comes.
    resumed_to = tmp_path / "resumed.bin"
    Path(f"{resumed_to}.nfpart").write_bytes(data[: BLOCK_SIZE + 100])
    resumed = nf("file", "download", "data/big.bin", resumed_to, "--json").json()
    assert resumed["bytes_fetched"] == 9 * MiB - BLOCK_SIZE
    assert resumed_to.read_bytes() == data
    assert not Path(f"{resumed_to}.nfpart").exists()

    assert nf("file", "cat", "data/big.bin").raw == data


def test_versions_keep_what_was_overwritten(nf, files, tmp_path: Path):
    files.create_container("versioned")
    put(files, "versioned/notes.txt", b"first\n")
    put(files, "versioned/notes.txt", b"second\n")
    versions = nf("file", "versions", "versioned/notes.txt", "--json").json()
    assert len(versions) == 2
    assert versions[0]["version"] < versions[1]["version"]
    oldest = str(versions[0]["version"])
    assert nf("file", "cat", "versioned/notes.txt", "--version", oldest).out == "first\n"
    nf("file", "download", "versioned/notes.txt", tmp_path, "--version", oldest)
    assert (tmp_path / "notes.txt").read_text() == "first\n"


def names(files: Files, container: str) -> list[str]:
    return [item["name"] for item in files.objects(container)]


def test_folders_copy_move_and_delete(nf, files, tmp_path: Path):
    files.create_container("docs")
    nf("file", "mkdir", "docs/reports")
    local = tmp_path / "a.txt"
    local.write_text("alpha\n")
    nf("file", "upload", local, "docs/reports/")
    assert files.object_info("docs", "reports")["Content-Type"] == "application/directory"
    top = nf("file", "list", "docs", "--json").json()
    assert [item.get("subdir") or item["name"] for item in top] == ["reports", "reports/"]
    inside = nf("file", "list", "docs/reports", "--json").json()
    assert [item["name"] for item in inside] == ["reports/a.txt"]

    nf("file", "copy", "docs/reports/a.txt", "docs/reports/b.txt")
    a, b = (files.object_info("docs", f"reports/{n}") for n in ("a.txt", "b.txt"))
    assert a["X-Object-Hash"] == b["X-Object-Hash"] and a["X-Object-UUID"] != b["X-Object-UUID"]

    nf("file", "move", "docs/reports/b.txt", "docs/moved.txt")
    assert files.object_info("docs", "moved.txt")["X-Object-UUID"] == b["X-Object-UUID"]
    gone = nf("file", "info", "docs/reports/b.txt", check=False)
    assert (gone.code, gone.err) == (1, "error: docs/reports/b.txt: Not Found (HTTP 404)\n")

    nf("file", "delete", "docs/moved.txt")
    nf("file", "delete", "docs/reports", "--recursive")
    assert names(files, "docs") == []

    missing = nf("file", "copy", "docs/nothing", "docs/x", check=False)
    assert missing.code == 1 and "docs/nothing" in missing.err and "HTTP 404" in missing.err


def test_recursive_copy_and_move(nf, files):
    files.create_container("tree")
    files.mkdir("tree", "src")
    put(files, "tree/src/a.txt", b"alpha\n")
    nf("file", "copy", "tree/src", "tree/copied", "--recursive")
    nf("file", "move", "tree/src", "tree/moved", "--recursive")
    assert names(files, "tree") == ["copied", "copied/a.txt", "moved", "moved/a.txt"]


def test_publish_gives_a_link_that_needs_no_token(nf, files):
    files.create_container("public")
    put(files, "public/pub.txt", b"for everyone\n")
    url = nf("file", "publish", "public/pub.txt").out.strip()
    assert url.startswith("http")
    public = httpx.get(url, timeout=10)
    assert public.status_code == 200 and public.text == "for everyone\n"
    assert files.object_info("public", "pub.txt")["X-Object-Public"] == url
    nf("file", "unpublish", "public/pub.txt")
    assert httpx.get(url, timeout=10).status_code == 404
    assert "X-Object-Public" not in files.object_info("public", "pub.txt")


def test_sharing_with_a_user_and_a_group(nf, files, server: Server, bob, tmp_path: Path):
    bob_uuid, bob_token = bob
    files.create_container("shared")
    put(files, "shared/shared.txt", b"for bob\n")
    put(files, "shared/group.txt", b"for friends\n")
    owner = ("-A", server.admin_uuid)

    refused = nf("file", "cat", "shared/shared.txt", *owner, token=bob_token, check=False)
    assert refused.code == 1 and "HTTP 403" in refused.err
    sharing = nf("file", "share", "shared/shared.txt", "--read", bob_uuid).out.strip()
    assert sharing == f"read={bob_uuid}"
    into = tmp_path / "bob.txt"
    nf("file", "download", "shared/shared.txt", into, *owner, token=bob_token)
    assert into.read_text() == "for bob\n"
    listed = nf("file", "list", "shared", *owner, "--json", token=bob_token).json()
    assert [item["name"] for item in listed] == ["shared.txt"]
    with Cloud(server.url, bob_token) as as_bob:
        bobs = as_bob.files()
        bobs.create_container("mine")
        nf("file", "copy", "shared/shared.txt", "mine", *owner, token=bob_token)
        assert b"".join(bobs.iter_bytes("mine", "shared.txt")) == b"for bob\n"

    nf("group", "create", "friends", bob_uuid)
    assert nf("group", "list", "--json").json() == {"friends": [bob_uuid]}
    files.share("shared", "group.txt", read=[f"{server.admin_uuid}:friends"])
    assert nf("file", "cat", "shared/group.txt", *owner, token=bob_token).out == "for friends\n"
    nf("group", "delete", "friends")
    assert files.groups() == {}
    after = nf("file", "cat", "shared/group.txt", *owner, token=bob_token, check=False)
    assert after.code == 1 and "HTTP 403" in after.err

    nf("file", "unshare", "shared/shared.txt")
    assert "X-Object-Sharing" not in files.object_info("shared", "shared.txt")


def test_containers_with_policies(nf, files, tmp_path: Path):
    nf("container", "create", "pol", "--quota", "6M", "--versioning", "none")
    info = nf("container", "info", "pol", "--json").json()
    assert info["X-Container-Policy-Quota"] == str(6 * MiB)
    assert info["X-Container-Policy-Versioning"] == "none"
    assert info["X-Container-Block-Size"] == str(BLOCK_SIZE)
    twice = nf("container", "create", "pol", check=False)
    assert twice.code == 1 and "already exists" in twice.err

    listed = nf("container", "list", "--json").json()
    assert listed == files.containers()
    assert {c["name"]: c for c in listed}["pol"]["x_container_policy"]["versioning"] == "none"

    nf("container", "modify", "pol", "--versioning", "auto")
    assert files.container_info("pol")["X-Container-Policy-Versioning"] == "auto"

    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(7 * MiB))
    over = nf("file", "upload", big, "pol/big.bin", check=False)
    assert over.code == 1 and "HTTP 413" in over.err

    put(files, "pol/small.txt", b"small\n")
    shown = nf("container", "list").out  # sizes for people; --json above keeps bytes
    row = next(line for line in shown.splitlines() if " pol " in line)
    assert "6 B" in row and "6 MiB" in row and str(6 * MiB) not in shown, shown
    not_empty = nf("container", "delete", "pol", check=False)
    assert not_empty.code == 1 and "HTTP 409" in not_empty.err
    nf("container", "delete", "pol", "--recursive")
    with pytest.raises(ClientError) as missing:
        files.container_info("pol")
    assert missing.value.status == 404


def test_emptying_a_container_keeps_it(nf, files):
    files.create_container("scratch")
    put(files, "scratch/x.txt", b"x")
    nf("container", "empty", "scratch")
    assert names(files, "scratch") == []


def test_sync_uploads_what_changed_and_deletes_what_went(nf, files, tmp_path: Path):
    files.create_container("backup")
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "one.txt").write_text("one\n")
    (tree / "sub" / "two.txt").write_text("two\n")
    (tree / "sub" / "blob.bin").write_bytes(os.urandom(MiB))

    first = nf("file", "sync", tree, "backup/home", "--json").json()
    assert sorted(first["uploaded"]) == ["home/one.txt", "home/sub/blob.bin", "home/sub/two.txt"]
    assert first["bytes_sent"] == MiB + 8

    (tree / "one.txt").unlink()
    (tree / "sub" / "two.txt").write_text("TWO\n")
    (tree / "three.txt").write_text("three\n")
    preview = nf("file", "sync", tree, "backup/home", "--delete", "--dry-run", "--json").json()
    assert preview["deleted"] == ["home/one.txt"] and preview["bytes_sent"] == 0
    assert "home/one.txt" in names(files, "backup")  # a dry run changes nothing
    told = nf("file", "sync", tree, "backup/home", "--delete", "--dry-run", "--no-progress").out
    assert told.splitlines()[-1] == (
        "would upload 2, would delete 1, 1 unchanged; nothing sent (dry run)"
    ), told
    assert "uploaded" not in told and "deleted" not in told
    assert "home/one.txt" in names(files, "backup")

    done = nf("file", "sync", tree, "backup/home", "--delete", "--json").json()
    assert sorted(done["uploaded"]) == ["home/sub/two.txt", "home/three.txt"]
    assert done["deleted"] == ["home/one.txt"]
    assert done["skipped"] == ["home/sub/blob.bin"]
    assert done["bytes_sent"] == len("TWO\n") + len("three\n")
    assert names(files, "backup") == ["home/sub/blob.bin", "home/sub/two.txt", "home/three.txt"]
    assert b"".join(files.iter_bytes("backup", "home/sub/two.txt")) == b"TWO\n"


def test_configuration_file_and_identity_url(server: Server, tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("NF_")}
    env["NF_CONFIG"] = str(tmp_path / "nf.toml")

    def nf_file(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [NF, *args], env=env, capture_output=True, text=True, timeout=60, check=False
        )

    assert nf_file("config", "set", "url", f"{server.url}/identity/v2.0").returncode == 0
    assert nf_file("config", "set", "token", server.admin_token).returncode == 0
    me = nf_file("user", "info", "--json")
    assert me.returncode == 0, me.stderr
    record = json.loads(me.stdout)
    assert record["uuid"] == server.admin_uuid
    assert record["object_store"] == f"{server.url}/pithos/object-store/v1/{server.admin_uuid}"

    nf_file("config", "set", "token", "not-a-token")
    refused = nf_file("container", "list")
    assert refused.returncode == 1 and "token was refused" in refused.stderr
