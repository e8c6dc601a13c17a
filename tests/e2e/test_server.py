"""``nefos up`` as users run it, driven by real clients and the operator commands."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import httpx
import openstack as openstack_sdk
import pytest

from tests.conftest import (
    NEFOS,
    Server,
    _start_server,
    _stop_server,
    free_port,
    nefos_in_process,
    wait_until_up,
)

OPENSTACK = str(Path(sys.executable).with_name("openstack"))
T = TypeVar("T")


def side_by_side(*runs: Callable[[], T]) -> list[T]:
    """Independent client runs at once (each pays the client's start-up, a second or
    more): their results in order."""
    with ThreadPoolExecutor(len(runs)) as pool:
        return list(pool.map(lambda run: run(), runs))


def sdk(server: Server) -> openstack_sdk.connection.Connection:
    """An openstacksdk connection as the admin, on the v3 (OpenStack-dialect) endpoints."""
    return openstack_sdk.connect(
        auth_url=f"{server.url}/identity/v3",
        username=server.admin_email,
        password=server.admin_password,
        project_name=server.admin_email,
        user_domain_name="Default",
        project_domain_name="Default",
    )


def openstack(server: Server, user: str, password: str, project: str, *args: str):
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    return subprocess.run(
        [
            OPENSTACK,
            "--os-auth-url",
            f"{server.url}/identity/v3",
            "--os-username",
            user,
            f"--os-password={password}",  # a generated password may start with "-"
            "--os-project-name",
            project,
            "--os-user-domain-name",
            "Default",
            "--os-project-domain-name",
            "Default",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_help_lists_the_commands():
    result = subprocess.run([NEFOS, "--help"], capture_output=True, text=True, check=True)
    for command in ("up", "serve", "db", "user", "config"):
        assert command in result.stdout
    users = subprocess.run([NEFOS, "user", "--help"], capture_output=True, text=True, check=True)
    for command in (
        "create",
        "list",
        "show",
        "activate",
        "deactivate",
        "token",
        "renew-token",
        "set-password",
        "link",
    ):
        assert command in users.stdout


def test_up_printed_a_working_admin(server: Server):
    response = httpx.get(f"{server.url}/identity/v2.0/tokens/{server.admin_token}", timeout=10)
    assert response.status_code == 200
    assert response.json()["access"]["user"]["id"] == server.admin_uuid


def test_up_prints_the_credentials_once_it_answers_and_a_token_hint_that_works(
    server: Server, tmp_path: Path
):
    printed = server.output.read_text()
    assert printed.index("Application startup complete") < printed.index("  password:")
    # stderr is a file here: JSON lines, without uvicorn's ANSI-coloured copies.
    assert '"logger":"uvicorn.error"' in printed and "color_message" not in printed
    assert "\x1b" not in printed and "\\u001b" not in printed
    hint = next(
        line.split("its token later: ", 1)[1]
        for line in printed.splitlines()
        if "its token later: " in line
    )
    # Exactly as printed, from another directory, with no NEFOS_* to help it.
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEFOS_")}
    env["PATH"] = f"{Path(NEFOS).parent}{os.pathsep}{env.get('PATH', '')}"
    done = subprocess.run(
        hint, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == server.admin_token


def test_up_on_a_taken_port_fails_before_creating_anything(tmp_path: Path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        data_dir = tmp_path / "cloud"
        done = subprocess.run(
            [NEFOS, "up", "--data-dir", str(data_dir), "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
            env={k: v for k, v in os.environ.items() if not k.startswith("NEFOS_")},
        )
    assert done.returncode == 1
    assert f"127.0.0.1:{port} is already in use" in done.stderr and "--port" in done.stderr
    assert "password" not in done.stdout + done.stderr
    assert not (data_dir / "nefos.db").exists()  # no database, so no admin in it


def test_openstack_cli_token_issue(server: Server):
    result = openstack(
        server,
        server.admin_email,
        server.admin_password,
        server.admin_email,
        "token",
        "issue",
        "-f",
        "json",
    )
    assert result.returncode == 0, result.stderr
    issued = json.loads(result.stdout)
    assert issued["user_id"] == server.admin_uuid
    assert issued["project_id"] == server.admin_uuid
    check = httpx.get(
        f"{server.url}/identity/v3/auth/tokens",
        headers={"X-Auth-Token": issued["id"], "X-Subject-Token": issued["id"]},
        timeout=10,
    )
    assert check.status_code == 200


def test_openstack_cli_projects_and_users(server: Server):
    """The admin's project and user commands; ``quota set`` finds a project by name
    through ``/v3/projects?name=``."""
    credentials = (server.admin_email, server.admin_password, server.admin_email)
    system = f"system:{server.admin_uuid}"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return openstack(server, *credentials, *args)

    mine, everyone, users, user, quota_set = side_by_side(
        lambda: run("project", "list", "--my-projects", "-f", "json"),
        lambda: run("project", "list", "-f", "json"),
        lambda: run("user", "list", "-f", "json"),
        lambda: run("user", "show", server.admin_uuid, "-f", "json"),
        lambda: run("quota", "set", "--instances", "7", system),
    )
    for done in (mine, everyone, users, user, quota_set):
        assert done.returncode == 0, done.stderr
    assert [p["ID"] for p in json.loads(mine.stdout)] == [server.admin_uuid]
    assert {"ID": server.admin_uuid, "Name": system} in json.loads(everyone.stdout)
    assert {"ID": server.admin_uuid, "Name": server.admin_email} in json.loads(users.stdout)
    assert json.loads(user.stdout)["name"] == server.admin_email
    quotas = json.loads(run("quota", "show", "--compute", system, "-f", "json").stdout)
    assert next(q["Limit"] for q in quotas if q["Resource"] == "instances") == 7


def test_openstack_cli_wrong_password_fails(server: Server):
    result = openstack(
        server, server.admin_email, "not-the-password", server.admin_email, "token", "issue"
    )
    assert result.returncode != 0
    assert "401" in result.stderr or "authenticate" in result.stderr.lower()


def test_kamaki_shaped_v2_request(server: Server):
    """What kamaki 0.16 sends first: POST <identity>/tokens with the token and tenant."""
    response = httpx.post(
        f"{server.url}/astakos/identity/v2.0/tokens",
        content=json.dumps(
            {"auth": {"token": {"id": server.admin_token}, "tenantName": server.admin_uuid}}
        ),
        headers={"Content-Type": "application/json", "User-Agent": "kamaki/0.16"},
        timeout=10,
    )
    assert response.status_code == 200
    access = response.json()["access"]
    names = {s["name"]: s for s in access["serviceCatalog"]}
    assert "astakos_account" in names
    store = names["pithos_object-store"]["endpoints"][0]["publicURL"]
    assert store == f"{server.url}/pithos/object-store/v1"  # the Synnefo dialect's
    assert access["token"]["id"] == server.admin_token
    account = httpx.head(
        f"{store}/{server.admin_uuid}", headers={"X-Auth-Token": server.admin_token}, timeout=10
    )
    assert account.status_code == 204


def test_operator_commands_act_on_the_running_cloud(server: Server):
    """Operator commands, each a process apart from the server's: the first is the
    installed script, the rest run in this one (``Server.invoke``)."""
    created = server.nefos("user", "create", "op@example.org", "--password-stdin", input="pw1\n")
    fields = dict(line.split(": ", 1) for line in created.stdout.splitlines())
    uuid, token = fields["uuid"], fields["token"]

    def valid(token: str) -> int:
        return httpx.get(f"{server.url}/identity/v2.0/tokens/{token}", timeout=10).status_code

    def becomes(token: str, status: int) -> bool:
        """Another process's change shows within token_cache_seconds (2 s by default)."""
        deadline = time.monotonic() + 4
        while valid(token) != status:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        return True

    assert valid(token) == 200
    assert server.invoke("user", "token", "op@example.org").stdout.strip() == token

    listed = json.loads(server.invoke("user", "list", "--json").stdout)
    assert {u["email"] for u in listed} >= {"op@example.org", server.admin_email}
    shown = json.loads(server.invoke("user", "show", uuid, "--json").stdout)
    assert shown["logins"] == [{"provider": "local", "identifier": "op@example.org"}]

    server.invoke("user", "deactivate", "op@example.org")
    assert becomes(token, 404)
    server.invoke("user", "activate", uuid)
    assert becomes(token, 200)

    renewed = server.invoke("user", "renew-token", "op@example.org").stdout.strip()
    assert becomes(token, 404) and valid(renewed) == 200

    server.invoke("user", "set-password", "op@example.org", "--password-stdin", input="pw2\n")
    result = openstack(server, "op@example.org", "pw2", "op@example.org", "token", "issue")
    assert result.returncode == 0, result.stderr

    server.invoke("user", "link", "op@example.org", "--provider", "campus", "--identifier", "s1")
    shown = json.loads(server.invoke("user", "show", "op@example.org", "--json").stdout)
    assert {"provider": "campus", "identifier": "s1"} in shown["logins"]


def test_operator_command_errors(server: Server):
    duplicate = server.invoke("user", "create", server.admin_email, check=False)
    assert duplicate.returncode == 1
    assert "already exists" in duplicate.stderr
    missing = server.invoke("user", "show", "ghost@example.org", check=False)
    assert missing.returncode == 1
    bad = server.invoke("user", "create", "not-an-email", check=False)
    assert bad.returncode == 1 and "Invalid e-mail" in bad.stderr


def test_restart_keeps_the_deployment(tmp_path: Path):
    first = _start_server(tmp_path)
    try:
        admin_token = first.admin_token
    finally:
        _stop_server(first)
    port = free_port()
    log = tmp_path / "again.out"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [NEFOS, "up", "--data-dir", str(first.data_dir), "--port", str(port)],
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_up(process, url, log)
        response = httpx.get(f"{url}/identity/v2.0/tokens/{admin_token}", timeout=10)
        assert response.status_code == 200
        assert "An admin account was created" not in log.read_text()
    finally:
        process.terminate()
        process.wait(15)


def test_db_upgrade_serve_and_config(tmp_path: Path):
    data_dir = tmp_path / "prod"
    data_dir.mkdir()
    port = free_port()
    config = tmp_path / "nefos.toml"
    config.write_text(
        f'data_dir = "{data_dir}"\n'
        f"port = {port}\n"
        'public_url = "https://cloud.example.org"\n'
        'region = "athens"\n'
        "[endpoints]\n"
        'object-store = "https://files.example.org"\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEFOS_")}
    refused = subprocess.run(
        [NEFOS, "serve", "--config", str(config)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert refused.returncode == 1 and "nefos db upgrade" in refused.stderr
    alone = subprocess.run(
        [NEFOS, "serve", "--config", str(config), "--workers", "2"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    # The default in-process bus would be one per worker.
    assert alone.returncode == 1 and "bus_url" in alone.stderr
    subprocess.run(
        [NEFOS, "db", "upgrade", "--config", str(config)], check=True, env=env, timeout=60
    )
    shown = json.loads(
        subprocess.run(
            [NEFOS, "config", "show"],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
            env={**env, "NEFOS_CONFIG": str(config)},
        ).stdout
    )
    assert shown["region"] == "athens" and shown["secret_key"] == "***"
    unset = {name: None for name in os.environ if name.startswith("NEFOS_")}
    created = nefos_in_process(
        "user", "create", "p@example.org", "--config", str(config), env=unset
    )
    token = created.stdout.split("token: ")[1].strip()
    process = subprocess.Popen(
        [NEFOS, "serve", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_up(process, url)
        response = httpx.post(
            f"{url}/identity/v2.0/tokens", json={"auth": {"token": {"id": token}}}, timeout=10
        )
        catalog = {s["type"]: s for s in response.json()["access"]["serviceCatalog"]}
        assert catalog["object-store"]["endpoints"][0]["publicURL"] == (
            "https://files.example.org/pithos/object-store/v1"
        )
        assert catalog["compute"]["endpoints"][0]["publicURL"] == (
            "https://cloud.example.org/cyclades/compute/v2.0"
        )
        assert catalog["compute"]["endpoints"][0]["region"] == "athens"
    finally:
        process.terminate()
        process.wait(15)


@pytest.mark.parametrize("bad", ["port = 'eighty'\n", "no_such_setting = 1\n", "[broken\n"])
def test_bad_config_is_a_clear_error(tmp_path: Path, bad: str):
    config = tmp_path / "bad.toml"
    config.write_text(bad)
    # In process: `config show` runs as a process in test_db_upgrade_serve_and_config.
    result = nefos_in_process("config", "show", "--config", str(config), env={}, check=False)
    assert result.returncode == 2
    assert "error" in result.stderr and "Traceback" not in result.stderr
