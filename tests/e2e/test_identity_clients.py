"""python-openstackclient's identity commands, unmodified, against ``nefos up``:
application credentials (and every command authenticated with one), access rules,
EC2 credentials, projects and users as a member sees them, and the client
configuration ``nefos user config`` hands out."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import Server
from tests.e2e.test_server import OPENSTACK, openstack, side_by_side

BOB = ("bob@example.org", "bob's password")


@pytest.fixture(scope="module")
def bob(server: Server) -> str:
    created = server.invoke("user", "create", BOB[0], "--password-stdin", input=BOB[1] + "\n")
    return created.stdout.split("uuid:")[1].split()[0]


def as_bob(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    return openstack(server, BOB[0], BOB[1], BOB[0], *args)


def bob_json(server: Server, *args: str) -> object:
    done = as_bob(server, *args, "-f", "json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def run(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None):
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    return subprocess.run(
        [OPENSTACK, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**clean, **(env or {})},
        cwd=cwd,
    )


def with_credential(server: Server, credential: dict, *args: str):
    return run(
        "--os-auth-type", "v3applicationcredential",
        "--os-auth-url", f"{server.url}/identity/v3",
        "--os-application-credential-id", credential["ID"],
        f"--os-application-credential-secret={credential['Secret']}",
        *args,
    )  # fmt: skip


def test_application_credential_runs_the_clients(server: Server, bob: str):
    credential = bob_json(server, "application", "credential", "create", "app")
    assert credential["Project ID"] == bob and credential["Secret"]
    issued, servers, images, shown = side_by_side(
        lambda: with_credential(server, credential, "token", "issue", "-f", "json"),
        lambda: with_credential(server, credential, "server", "list", "-f", "json"),
        lambda: with_credential(server, credential, "image", "list", "-f", "json"),
        lambda: with_credential(server, credential, "user", "show", bob, "-f", "json"),
    )
    for done in (issued, servers, images, shown):
        assert done.returncode == 0, done.stderr
    assert json.loads(issued.stdout)["project_id"] == bob
    assert json.loads(servers.stdout) == []
    assert json.loads(shown.stdout)["name"] == BOB[0]
    # A restricted credential's token makes no further credentials (Keystone's rule).
    child = with_credential(server, credential, "application", "credential", "create", "child")
    assert child.returncode != 0 and "403" in child.stderr
    listed = bob_json(server, "application", "credential", "list")
    assert [c["Name"] for c in listed] == ["app"]
    os_done = as_bob(server, "application", "credential", "delete", "app")
    assert os_done.returncode == 0, os_done.stderr
    gone = with_credential(server, credential, "token", "issue")
    assert gone.returncode != 0 and "401" in gone.stderr


def test_access_rules_refuse_what_they_do_not_name(server: Server, bob: str):
    rules = json.dumps([{"service": "image", "method": "GET", "path": "/v2/images"}])
    credential = bob_json(
        server, "application", "credential", "create", "--access-rules", rules, "images-only"
    )
    images, servers = side_by_side(
        lambda: with_credential(server, credential, "image", "list"),
        lambda: with_credential(server, credential, "server", "list"),
    )
    assert images.returncode == 0, images.stderr
    assert servers.returncode != 0 and "403" in servers.stderr
    listed = bob_json(server, "access", "rule", "list")
    assert [(r["Service"], r["Method"], r["Path"]) for r in listed] == [
        ("image", "GET", "/v2/images")
    ]


def test_another_users_credential_is_not_found(server: Server, bob: str):
    admin = (server.admin_email, server.admin_password, server.admin_email)
    made = openstack(server, *admin, "application", "credential", "create", "ops", "-f", "json")
    assert made.returncode == 0, made.stderr
    theirs = json.loads(made.stdout)["ID"]
    shown, deleted = side_by_side(
        lambda: as_bob(server, "application", "credential", "show", theirs),
        lambda: as_bob(server, "application", "credential", "delete", theirs),
    )
    assert shown.returncode != 0 and deleted.returncode != 0
    still = openstack(server, *admin, "application", "credential", "show", theirs)
    assert still.returncode == 0, still.stderr


def test_ec2_credentials(server: Server, bob: str):
    created = bob_json(server, "ec2", "credentials", "create")
    assert created["project_id"] == bob and created["user_id"] == bob
    listed = bob_json(server, "ec2", "credentials", "list")
    assert [c["Access"] for c in listed] == [created["access"]]
    shown = bob_json(server, "ec2", "credentials", "show", created["access"])
    assert shown["secret"] == created["secret"]
    deleted = as_bob(server, "ec2", "credentials", "delete", created["access"])
    assert deleted.returncode == 0, deleted.stderr
    assert bob_json(server, "ec2", "credentials", "list") == []


def test_projects_and_users_as_a_member(server: Server, bob: str):
    projects, project, user, users = side_by_side(
        lambda: as_bob(server, "project", "list", "-f", "json"),
        lambda: as_bob(server, "project", "show", bob, "-f", "json"),
        lambda: as_bob(server, "user", "show", BOB[0], "-f", "json"),
        lambda: as_bob(server, "user", "list"),
    )
    for done in (projects, project, user):
        assert done.returncode == 0, done.stderr
    # Keystone's policy: a member lists the projects it belongs to, not everyone's.
    assert [p["ID"] for p in json.loads(projects.stdout)] == [bob]
    assert json.loads(project.stdout)["name"] == f"system:{bob}"
    assert json.loads(user.stdout)["id"] == bob
    assert users.returncode != 0 and "403" in users.stderr  # listing users is the admin's
    stranger = as_bob(server, "project", "show", server.admin_uuid)
    assert stranger.returncode != 0


def test_generated_configuration_works(server: Server, bob: str, tmp_path: Path):
    for name, extra in (("token", ()), ("app", ("--application-credential", "laptop"))):
        home = tmp_path / name
        home.mkdir()
        server.invoke(
            "user", "config", BOB[0], "--cloud", "mine", "-o", str(home / "clouds.yaml"),
            "--url", server.url, *extra,
        )  # fmt: skip
        assert (home / "clouds.yaml").stat().st_mode & 0o777 == 0o600
        text = (home / "clouds.yaml").read_text()
        assert f"{server.url}/identity/v3" in text
        issued = run("--os-cloud", "mine", "token", "issue", "-f", "json", cwd=home)
        assert issued.returncode == 0, issued.stderr
        assert json.loads(issued.stdout)["project_id"] == bob
        rc = server.invoke(
            "user", "config", BOB[0], "--format", "openrc", "--url", server.url,
            *(("--application-credential", "desk") if extra else ()),
        ).stdout  # fmt: skip
        (home / "openrc").write_text(rc)
        sourced = subprocess.run(
            ["bash", "-c", f". {home / 'openrc'} && {OPENSTACK} server list -f json"],
            capture_output=True,
            text=True,
            timeout=120,
            env={k: v for k, v in os.environ.items() if not k.startswith("OS_")},
        )
        assert sourced.returncode == 0, sourced.stderr
        assert json.loads(sourced.stdout) == []
    kamakirc = server.invoke(
        "user", "config", BOB[0], "--format", "kamakirc", "--url", server.url
    ).stdout
    assert f"url = {server.url}/astakos/identity/v2.0" in kamakirc  # the Synnefo dialect
    refused = server.invoke(
        "user", "config", BOB[0], "--format", "kamakirc", "--application-credential", "x",
        check=False,
    )  # fmt: skip
    assert refused.returncode != 0
