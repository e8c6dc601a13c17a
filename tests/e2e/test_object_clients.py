"""Real object-store clients, unmodified, against ``nefos up``: the ``swift`` CLI and
python-swiftclient (TempAuth and Keystone v3), openstacksdk and the ``openstack`` CLI,
and a client that speaks Pithos's hashmap protocol the way kamaki does."""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from swiftclient import client as swift_client

from nefos.blocks import block_hash
from tests.conftest import Server
from tests.e2e.test_server import openstack as openstack_cli
from tests.e2e.test_server import sdk

SWIFT = str(Path(sys.executable).with_name("swift"))
BLOCK = 4 * 1024 * 1024


def swift(server: Server, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "ST_"))}
    return subprocess.run(
        [
            SWIFT,
            "-A",
            f"{server.url}/object-store/v1",
            "-U",
            server.admin_email,
            # One argument: a token may begin with "-", which argparse would take for an option.
            f"--key={server.admin_token}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=cwd,
    )


def test_swift_cli_upload_segmented_slo_download_delete(server: Server, tmp_path: Path):
    data = os.urandom(9 * 1024 * 1024 + 123)
    (tmp_path / "big.bin").write_bytes(data)
    (tmp_path / "small.txt").write_text("hello\n")
    for args in (
        ("upload", "plain", "big.bin", "small.txt"),
        ("upload", "--use-slo", "-S", "3000000", "slo", "big.bin"),
        ("upload", "-S", "3000000", "dlo", "big.bin"),
    ):
        done = swift(server, *args, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
    listed = swift(server, "list", "plain")
    assert listed.stdout.split() == ["big.bin", "small.txt"]
    for container in ("plain", "slo", "dlo"):
        out = tmp_path / f"{container}.out"
        got = swift(server, "download", container, "big.bin", "-o", str(out))
        assert got.returncode == 0, got.stderr
        assert out.read_bytes() == data, container
    stat = swift(server, "stat", "slo", "big.bin")
    assert "Content Length: 9437307" in stat.stdout
    capabilities = swift(server, "capabilities")  # found beside the storage URL
    assert capabilities.returncode == 0 and "slo" in capabilities.stdout, capabilities.stderr
    copied = swift(server, "copy", "--destination", "/plain/joined.bin", "slo", "big.bin")
    assert copied.returncode == 0, copied.stderr  # a copy of an SLO is its data
    joined = swift(server, "stat", "plain", "joined.bin")
    assert "Content Length: 9437307" in joined.stdout
    assert "Manifest" not in joined.stdout
    assert swift(server, "post", "-m", "color:blue", "plain").returncode == 0
    assert "Meta Color: blue" in swift(server, "stat", "plain").stdout
    deleted = swift(server, "delete", "slo")
    assert deleted.returncode == 0, deleted.stderr
    segments = swift(server, "list", "slo_segments")
    assert segments.stdout.strip() == ""  # the SLO's segments went with it
    assert swift(server, "delete", "--all").returncode == 0
    assert swift(server, "list").stdout.strip() == ""


def test_swiftclient_library_with_keystone_v3(server: Server):
    connection = swift_client.Connection(
        authurl=f"{server.url}/identity/v3",
        user=server.admin_email,
        key=server.admin_password,
        auth_version="3",
        os_options={
            "project_name": server.admin_email,
            "user_domain_name": "Default",
            "project_domain_name": "Default",
        },
    )
    connection.put_container("lib")
    etag = connection.put_object("lib", "a/b.txt", b"library data", content_type="text/plain")
    assert etag == hashlib.md5(b"library data").hexdigest()
    headers, body = connection.get_object("lib", "a/b.txt")
    assert body == b"library data"
    assert headers["content-type"] == "text/plain"
    _, listing = connection.get_container("lib", delimiter="/")
    assert listing == [{"subdir": "a/"}]
    headers, body = connection.get_object("lib", "a/b.txt", headers={"Range": "bytes=8-"})
    assert body == b"data"
    with pytest.raises(swift_client.ClientException) as missing:
        connection.head_object("lib", "nothing")
    assert missing.value.http_status == 404
    connection.delete_object("lib", "a/b.txt")
    connection.delete_container("lib")


def test_openstacksdk_object_store(server: Server):
    cloud = sdk(server)
    cloud.object_store.create_container(name="sdk")
    cloud.object_store.upload_object(container="sdk", name="hello.txt", data=b"from the sdk")
    assert cloud.object_store.download_object("hello.txt", container="sdk") == b"from the sdk"
    names = [o.name for o in cloud.object_store.objects("sdk")]
    assert names == ["hello.txt"]
    cloud.object_store.set_object_metadata("hello.txt", container="sdk", color="green")
    meta = cloud.object_store.get_object_metadata("hello.txt", container="sdk")
    assert meta.metadata["color"] == "green"
    big = os.urandom(3 * 1024 * 1024)
    cloud.create_object("sdk", "segmented.bin", data=big, segment_size=1024 * 1024)
    assert cloud.object_store.download_object("segmented.bin", container="sdk") == big
    cloud.delete_object("sdk", "segmented.bin")
    cloud.object_store.delete_object("hello.txt", container="sdk")
    cloud.object_store.delete_container("sdk")
    assert "sdk" not in [c.name for c in cloud.object_store.containers()]


def test_openstack_cli_objects(server: Server, tmp_path: Path):
    credentials = (server.admin_email, server.admin_password, server.admin_email)
    source = tmp_path / "report.txt"
    source.write_text("quarterly\n")
    created = openstack_cli(server, *credentials, "container", "create", "cli")
    assert created.returncode == 0, created.stderr
    uploaded = openstack_cli(
        server, *credentials, "object", "create", "cli", str(source), "--name", "report.txt"
    )
    assert uploaded.returncode == 0, uploaded.stderr
    listed = openstack_cli(server, *credentials, "object", "list", "cli", "-f", "json")
    assert [o["Name"] for o in json.loads(listed.stdout)] == ["report.txt"]
    saved = tmp_path / "saved.txt"
    got = openstack_cli(
        server, *credentials, "object", "save", "cli", "report.txt", "--file", str(saved)
    )
    assert got.returncode == 0, got.stderr
    assert saved.read_text() == "quarterly\n"
    shown = openstack_cli(server, *credentials, "object", "show", "cli", "report.txt", "-f", "json")
    assert json.loads(shown.stdout)["content-length"] == "10"


def test_hashmap_upload_like_kamaki(server: Server):
    """HEAD the container for block size and hash, PUT ?hashmap, POST the missing blocks,
    PUT again; a re-upload with one byte changed sends one block."""
    base = f"{server.url}/object-store/v1/{server.admin_uuid}"
    auth = {"X-Auth-Token": server.admin_token}
    with httpx.Client(headers=auth, timeout=60) as http:
        assert http.put(f"{base}/sync").status_code in (201, 202)
        head = http.head(f"{base}/sync")
        block_size = int(head.headers["X-Container-Block-Size"])
        assert (block_size, head.headers["X-Container-Block-Hash"]) == (BLOCK, "sha256")

        def upload(data: bytes) -> int:
            blocks = [data[i : i + block_size] for i in range(0, len(data), block_size)]
            by_hash = {block_hash(b): b for b in blocks}
            hashmap = {"bytes": len(data), "hashes": [block_hash(b) for b in blocks]}
            url = f"{base}/sync/file.bin?hashmap&format=json"
            reply = http.put(
                url, json=hashmap, headers={"Content-Type": "application/octet-stream"}
            )
            sent = 0
            if reply.status_code == 409:
                for missing in reply.json():
                    posted = http.post(
                        f"{base}/sync?update&format=json",
                        content=by_hash[missing],
                        headers={"Content-Type": "application/octet-stream"},
                    )
                    assert posted.json() == [missing]
                    sent += len(by_hash[missing])
                reply = http.put(url, json=hashmap)
            assert reply.status_code == 201, reply.text
            return sent

        data = os.urandom(3 * BLOCK + 1000)
        assert upload(data) == len(data)
        changed = data[: BLOCK + 5] + b"!" + data[BLOCK + 6 :]
        assert upload(changed) == BLOCK
        assert http.get(f"{base}/sync/file.bin").content == changed


def readme_commands(program: str) -> list[str]:
    """The README's ``program`` command lines, continuation lines joined."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    joined = readme.replace("\\\n", " ")
    return [line.split("  #")[0] for line in joined.splitlines() if line.startswith(program + " ")]


def test_the_readme_swift_commands_work_as_printed_beside_openstack_variables(
    server: Server, tmp_path: Path
):
    """A user who set the ``openstack`` client's variables (a Keystone v3 openrc), then
    pastes the README's swift commands: TempAuth still, and a bare ``swift`` over v3."""
    commands = readme_commands("swift")
    assert len(commands) == 2 and all("'<token>'" in c for c in commands), commands
    (tmp_path / "cat.jpg").write_bytes(b"meow\n")
    (tmp_path / "disk.img").write_bytes(os.urandom(1000))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "ST_"))}
    env["PATH"] = f"{Path(SWIFT).parent}{os.pathsep}{env.get('PATH', '')}"
    env |= {
        "OS_AUTH_URL": f"{server.url}/identity/v3",
        "OS_IDENTITY_API_VERSION": "3",
        "OS_USERNAME": server.admin_email,
        "OS_PASSWORD": server.admin_password,
        "OS_PROJECT_NAME": server.admin_email,
        "OS_USER_DOMAIN_NAME": "Default",
        "OS_PROJECT_DOMAIN_NAME": "Default",
    }
    for command in commands:
        command = command.replace("http://127.0.0.1:8000", server.url)
        command = command.replace("'<token>'", shlex.quote(server.admin_token))
        done = subprocess.run(
            command, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, (command, done.stderr)
    listed = subprocess.run(
        [SWIFT, "list", "photos"], env=env, capture_output=True, text=True, timeout=120
    )
    assert listed.returncode == 0 and listed.stdout.split() == ["cat.jpg"], listed.stderr
    connection = swift_client.Connection(
        f"{server.url}/object-store/v1", server.admin_email, server.admin_token
    )
    try:
        assert connection.get_object("photos", "cat.jpg")[1] == b"meow\n"
        assert connection.head_object("backups", "disk.img")["content-length"] == "1000"
    finally:
        connection.close()
