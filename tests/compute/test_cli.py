"""Operators' compute commands (``nefos flavor|backend|server``) against the deployment
the in-process services also use: each group's first command runs the installed script
as a process, the rest run in process (``invoke_nefos``: no process start each)."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import importlib.util
import json
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import text
from typer.testing import CliRunner

from nefos.cli.main import app
from nefos.compute.models import Server
from nefos.compute.service import Compute, ServerView
from nefos.core.config import Settings
from nefos.server.engines import Engines
from tests.conftest import free_port, invoke_nefos, nefos_in_process, run_nefos


async def nefos_json(settings: Settings, *args: str) -> Any:
    done = await invoke_nefos(settings, *args, "--json")
    return json.loads(done.stdout)


async def stream(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def until(compute: Compute, server_id: int, status: str) -> ServerView:
    """The server once its job ended in ``status`` (generous: the suite may be busy)."""
    deadline = asyncio.get_running_loop().time() + 30
    while True:
        view = await compute.server(None, server_id)
        if view.status == status and not view.server.task:
            return view
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"server {server_id} stayed {view.status} ({view.server.task})")
        await asyncio.sleep(0.02)


def sizes(vcpus: int, ram: int, disk: int) -> tuple[str, ...]:
    return ("--vcpus", str(vcpus), "--ram", str(ram), "--disk", str(disk))


def self_signed_pem(host: str) -> str:
    """A certificate and its key in one file, as Ganeti's rapi.pem holds them."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    return (private + certificate.public_bytes(serialization.Encoding.PEM)).decode()


def ganeti_client_exists() -> bool:
    return importlib.util.find_spec("nefos.backends.ganeti") is not None


# Flavors and backends do not involve the bus: one bus is enough for them.
ONE_BUS = pytest.mark.parametrize("engines", ["memory"], indirect=True)


@ONE_BUS
async def test_flavor_create_list_delete(settings: Settings, engines: Engines):
    user, _ = await engines.identity.create_user("flavors@example.org")
    # The installed script, end to end; the other commands run in process.
    created = await run_nefos(settings, "flavor", "create", *sizes(2, 2048, 40))
    assert "C2R2048D40file created" in created.stdout
    private = await nefos_json(
        settings, "flavor", "create", *sizes(4, 4096, 80), "--disk-template", "drbd",
        "--name", "big", "--private", "--project", str(user.id),
    )  # fmt: skip
    assert isinstance(private, dict)
    assert private["public"] is False and private["projects"] == [str(user.id)]

    listed = await nefos_json(settings, "flavor", "list")
    assert isinstance(listed, list)
    by_name = {f["name"]: f for f in listed}
    assert set(by_name) == {"C2R2048D40file", "big"}
    assert by_name["C2R2048D40file"]["vcpus"] == 2 and by_name["C2R2048D40file"]["public"]
    assert by_name["big"]["disk_template"] == "drbd"
    assert by_name["big"]["projects"] == [str(user.id)]
    # What the service (and so the API) sees: the private flavor only for that project.
    assert [f.name for f in await engines.compute.flavors([str(user.id)])] == [
        "C2R2048D40file",
        "big",
    ]
    assert [f.name for f in await engines.compute.flavors([str(uuid.uuid4())])] == [
        "C2R2048D40file"
    ]
    table = (await invoke_nefos(settings, "flavor", "list")).stdout
    assert "C2R2048D40file" in table and str(user.id) in table

    again = await invoke_nefos(settings, "flavor", "create", *sizes(2, 2048, 40), check=False)
    assert again.returncode == 1 and "exists" in again.stderr
    unknown = await invoke_nefos(
        settings, "flavor", "create", *sizes(1, 1, 1), "--private", "--project", "nope",
        check=False,
    )  # fmt: skip
    assert unknown.returncode == 1 and "No project nope" in unknown.stderr
    public_grant = await invoke_nefos(
        settings, "flavor", "create", *sizes(1, 1, 1), "--project", str(user.id), check=False
    )
    assert public_grant.returncode == 1 and "--private" in public_grant.stderr
    bad = await invoke_nefos(settings, "flavor", "create", *sizes(0, 1, 1), check=False)
    assert bad.returncode == 1 and "vcpus" in bad.stderr

    deleted = await invoke_nefos(settings, "flavor", "delete", str(by_name["big"]["id"]))
    assert "deleted" in deleted.stdout
    assert [f["name"] for f in await nefos_json(settings, "flavor", "list")] == ["C2R2048D40file"]
    gone = await invoke_nefos(settings, "flavor", "delete", str(by_name["big"]["id"]), check=False)
    assert gone.returncode == 1 and "No flavor" in gone.stderr


@ONE_BUS
async def test_backend_add_list_drain_remove(settings: Settings, engines: Engines):
    # The installed script, end to end; the other commands run in process.
    added = await run_nefos(
        settings, "backend", "add", "sim", "--kind", "embedded", "--default-link", "br0"
    )
    assert "simulated, runs no guest" in added.stdout
    listed = await nefos_json(settings, "backend", "list")
    assert isinstance(listed, list) and len(listed) == 1
    (sim,) = listed
    assert sim["name"] == "sim" and sim["kind"] == "embedded"
    assert sim["guests"] == "simulated, runs no guest; NICs get addresses, no packet flows"
    assert sim["drained"] is False and sim["offline"] is False and sim["public"] is True
    assert sim["mtotal"] > 0 and sim["dfree"] > 0 and sim["ctotal"] > 0
    assert "file" in sim["disk_templates"] and sim["refreshed"]
    table = (await invoke_nefos(settings, "backend", "list")).stdout
    assert "simulated, runs no guest" in table and "instances" in table

    shown = (await invoke_nefos(settings, "backend", "show", "sim")).stdout
    assert "default_link: br0" in shown and "kind: embedded" in shown
    assert "os_type: noop" in shown
    bad_os = await invoke_nefos(
        settings, "backend", "add", "x", "--kind", "embedded", "--os-type", "a b", check=False
    )
    assert bad_os.returncode == 1 and "OS type" in bad_os.stderr

    await invoke_nefos(settings, "backend", "drain", "sim")
    assert (await engines.compute.backend("sim")).drained is True
    assert (await nefos_json(settings, "backend", "show", "sim"))["drained"] is True
    await invoke_nefos(settings, "backend", "undrain", "sim")
    assert (await engines.compute.backend("sim")).drained is False
    refreshed = await invoke_nefos(settings, "backend", "refresh", "sim")
    assert "0 instances" in refreshed.stdout

    twice = await invoke_nefos(settings, "backend", "add", "sim", "--kind", "embedded", check=False)
    assert twice.returncode == 1 and "exists" in twice.stderr
    bad_kind = await invoke_nefos(settings, "backend", "add", "x", "--kind", "xen", check=False)
    assert bad_kind.returncode == 2
    missing = await invoke_nefos(settings, "backend", "drain", "nope", check=False)
    assert missing.returncode == 1 and "No backend 'nope'" in missing.stderr

    await invoke_nefos(settings, "backend", "remove", "sim")
    assert await nefos_json(settings, "backend", "list") == []


def test_ganeti_backend_is_refused_without_its_client(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
):
    """A deployment whose Ganeti client cannot be imported says so and records nothing
    (run in process: a subprocess cannot be made to lack the module)."""
    monkeypatch.setitem(sys.modules, "nefos.backends.ganeti", None)  # import fails
    monkeypatch.setenv("NEFOS_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("NEFOS_DATABASE_URL", settings.database)
    runner = CliRunner()
    refused = runner.invoke(
        app,
        ["backend", "add", "cluster1", "--kind", "ganeti", "--url", "https://ganeti:5080",
         "--username", "nefos", "--password-stdin"],
        input="pw\n",
    )  # fmt: skip
    assert refused.exit_code == 1, refused.output
    assert "the Ganeti backend is not available yet" in refused.output
    listed = runner.invoke(app, ["backend", "list", "--json"])
    assert listed.exit_code == 0 and json.loads(listed.stdout) == []


@pytest.mark.skipif(not ganeti_client_exists(), reason="no Ganeti client yet")
async def test_unreachable_ganeti_fails_clearly(settings: Settings, tmp_path: Path):
    url = f"https://127.0.0.1:{free_port()}"
    not_pem = tmp_path / "rapi.txt"
    not_pem.write_text("not a certificate\n")
    bad = await invoke_nefos(settings, "backend", "add", "cluster1", "--kind", "ganeti",
                             "--url", url, "--certificate", str(not_pem), check=False)  # fmt: skip
    assert bad.returncode == 1 and "no PEM CERTIFICATE block" in bad.stderr
    assert await nefos_json(settings, "backend", "list") == []

    rapi_pem = tmp_path / "rapi.pem"
    rapi_pem.write_text(self_signed_pem("ganeti.example.org"))
    refused = await invoke_nefos(
        settings, "backend", "add", "cluster1", "--kind", "ganeti", "--url", url,
        "--username", "nefos", "--password-stdin", "--certificate", str(rapi_pem),
        check=False, input="pw\n",
    )  # fmt: skip
    assert refused.returncode == 1
    assert "unreachable" in refused.stderr and "Traceback" not in refused.stderr
    # Recorded all the same (the service adds, then asks): the operator is told so.
    assert "nefos backend remove cluster1" in refused.stderr
    (shown,) = await nefos_json(settings, "backend", "list")
    assert shown["guests"] == "unknown until refreshed"
    assert shown["password"] == "***" and shown["certificate"] == "pinned"
    await invoke_nefos(settings, "backend", "remove", "cluster1")


@contextmanager
def fake_rapi(user: str, password: str) -> Iterator[tuple[str, list[str]]]:
    """A Ganeti RAPI on loopback (plain HTTP) answering the capacity reads to one user
    and password and refusing any other with 401, as Ganeti does; yields its URL and
    the Authorization header of every request."""
    expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    seen: list[str] = []
    node = {"name": "n1", "vm_capable": True, "cnodes": 1, "mfree": 3072, "mtotal": 4096}
    answers = {
        "/2/nodes": [{**node, "dfree": 10240, "dtotal": 20480, "ctotal": 4, "pinst_cnt": 0}],
        "/2/info": {"enabled_disk_templates": ["file"], "default_hypervisor": "kvm"},
    }

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            given = self.headers.get("Authorization", "")
            seen.append(given)
            found = answers.get(self.path.partition("?")[0])
            status, body = (200, found) if given == expected and found else (401, {"code": 401})
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


async def stored_password(engines: Engines, name: str) -> str:
    """The password column as the database holds it, read past the ORM."""
    async with engines.db.session() as s:
        query = text("SELECT password FROM compute_backends WHERE name = :name")
        return (await s.execute(query, {"name": name})).scalar_one()


@ONE_BUS
@pytest.mark.skipif(not ganeti_client_exists(), reason="no Ganeti client yet")
async def test_rapi_password_is_sealed_at_rest(settings: Settings, engines: Engines):
    """Someone with a copy of the database, without the data directory's key, does not
    get the cluster's RAPI password; nefos still logs in with it."""
    password = "rapi-Secret-4711"
    with fake_rapi("nefos", password) as (url, seen):
        added = await invoke_nefos(
            settings, "backend", "add", "g1", "--kind", "ganeti", "--url", url,
            "--username", "nefos", "--password-stdin", input=password + "\n",
        )  # fmt: skip
        assert "backend g1 added" in added.stdout and "real guests" in added.stdout
        stored = await stored_password(engines, "g1")
        assert stored.startswith("enc1:") and password not in stored
        if settings.database.startswith("sqlite"):
            database = Path(settings.database.partition(":///")[2])
            for path in (database, database.with_name(database.name + "-wal")):
                assert password.encode() not in path.read_bytes()

        # Another process, the same deployment: it opens the password and logs in.
        seen.clear()
        refreshed = await invoke_nefos(settings, "backend", "refresh", "g1")
        assert "mem 3072/4096 MiB" in refreshed.stdout and set(seen) == {seen[0]}
        assert base64.b64decode(seen[0].split()[1]).decode() == f"nefos:{password}"

        # A password an older nefos stored in plain text still works, and is sealed at
        # the next start (or `nefos db upgrade`).
        async with engines.db.transaction() as s:
            await s.execute(
                text("UPDATE compute_backends SET password = :p WHERE name = 'g1'"), {"p": password}
            )
        await invoke_nefos(settings, "backend", "refresh", "g1")
        upgraded = await invoke_nefos(settings, "db", "upgrade")
        assert "sealed the RAPI passwords of 1 backends" in upgraded.stdout
        resealed = await stored_password(engines, "g1")
        assert resealed.startswith("enc1:") and resealed != stored
        assert await engines.compute.seal_backend_passwords() == 0  # nothing left plain
        await invoke_nefos(settings, "backend", "refresh", "g1")

        # Another key (another deployment, or a lost key file) opens nothing.
        env = {
            "NEFOS_DATA_DIR": str(settings.data_dir),
            "NEFOS_DATABASE_URL": settings.database,
            "NEFOS_SECRET_KEY": "not-this-deployments-key",
        }
        seen.clear()
        stranger = await asyncio.to_thread(
            partial(nefos_in_process, "backend", "refresh", "g1", env=env, check=False)
        )
        assert stranger.returncode == 1 and "sealed with another secret key" in stranger.stderr
        assert seen == []  # nothing was sent to the cluster

    # A password too long to seal in its column is refused, and nothing is written.
    long = await invoke_nefos(
        settings, "backend", "add", "g2", "--kind", "ganeti", "--url", url,
        "--username", "nefos", "--password-stdin", input="x" * 129 + "\n", check=False,
    )  # fmt: skip
    assert long.returncode == 1 and "at most 128 bytes" in long.stderr
    assert [b.name for b in await engines.compute.backends()] == ["g1"]


def test_backend_add_reads_no_password_from_the_command_line(settings: Settings):
    env = {"NEFOS_DATA_DIR": str(settings.data_dir), "NEFOS_DATABASE_URL": settings.database}
    add = ("backend", "add", "g1", "--kind", "ganeti", "--url", "https://g.test:5080")
    in_argv = nefos_in_process(*add, "--username", "u", "--password", "pw", env=env, check=False)
    assert in_argv.returncode == 2 and "No such option: --password" in in_argv.stderr
    blind = nefos_in_process(*add, "--username", "u", env=env, check=False)
    assert blind.returncode == 2 and "--password-stdin" in blind.stderr
    no_user = nefos_in_process(*add, "--password-stdin", env=env, check=False, input="pw\n")
    assert no_user.returncode == 2 and "--username" in no_user.stderr
    assert json.loads(nefos_in_process("backend", "list", "--json", env=env).stdout) == []


def test_eventd_takes_no_bus_password_in_its_command_line(tmp_path: Path):
    """The bus URL's password goes in the environment or the configuration; on the
    master, eventd leaves no data directory behind either."""
    env = {"NEFOS_DATA_DIR": str(tmp_path / "data")}
    bus = f"amqp://nefos:bus-secret@127.0.0.1:{free_port()}/"  # nothing listens
    refused = nefos_in_process("ganeti", "eventd", "--cluster", "g1", "--bus", bus, env=env,
                               check=False)  # fmt: skip
    assert refused.returncode == 2 and "NEFOS_BUS_URL" in refused.stderr
    assert "bus-secret" not in refused.stderr
    memory = nefos_in_process(
        "ganeti", "eventd", "--cluster", "g1", env={**env, "NEFOS_BUS_URL": "memory://"},
        check=False,
    )  # fmt: skip
    assert memory.returncode == 2 and "amqp:// bus URL" in memory.stderr
    assert not (tmp_path / "data").exists()


@ONE_BUS  # the commands run on their own engines, not on the test's bus
async def test_server_list_and_show_with_job_history(settings: Settings, engines: Engines):
    compute = engines.compute
    await engines.start_dispatcher()
    await compute.ensure_embedded()
    owner, _ = await engines.identity.create_user("vm-owner@example.org")
    other, _ = await engines.identity.create_user("other@example.org")
    uid = str(owner.id)
    await engines.storage.create_container(uid, "images")
    await engines.storage.put_object(uid, "images", "debian", stream(b"disk image"))
    image = await engines.images.register(uid, f"pithos://{uid}/images/debian", "Debian")
    flavor = await compute.create_flavor(1, 512, 10)
    view, _ = await compute.create_server(uid, "web", str(image.id), flavor.id, tags=["prod"])
    server_id = view.server.id
    await until(compute, server_id, "ACTIVE")

    # The installed script, end to end; the other commands run in process.
    listed = json.loads((await run_nefos(settings, "server", "list", "--json")).stdout)
    assert isinstance(listed, list)
    (row,) = listed
    assert row["id"] == server_id and row["name"] == "web"
    assert row["owner"] == "vm-owner@example.org" and row["user_id"] == uid
    assert row["status"] == "ACTIVE" and row["task"] == ""
    assert row["flavor"] == flavor.name and row["backend"] == "embedded"
    mine = await nefos_json(settings, "server", "list", "--user", "vm-owner@example.org")
    assert [s["id"] for s in mine] == [server_id]
    assert await nefos_json(settings, "server", "list", "--user", str(other.id)) == []
    table = (await invoke_nefos(settings, "server", "list")).stdout
    assert "vm-owner@example.org" in table and "ACTIVE" in table

    shown = await nefos_json(settings, "server", "show", str(server_id))
    assert isinstance(shown, dict)
    assert shown["instance"] == f"snf-{server_id}" and shown["operstate"] == "STARTED"
    assert shown["tags"] == ["prod"] and shown["image"] == str(image.id)
    assert [(j["opcode"], j["status"]) for j in shown["jobs"]] == [
        ("OP_INSTANCE_CREATE", "queued"),
        ("OP_INSTANCE_CREATE", "running"),
        ("OP_INSTANCE_CREATE", "success"),
    ]
    assert len({j["job_id"] for j in shown["jobs"]}) == 1
    text = (await invoke_nefos(settings, "server", "show", str(server_id))).stdout
    assert "backend jobs" in text and "OP_INSTANCE_CREATE" in text and "status: ACTIVE" in text

    busy = await invoke_nefos(settings, "backend", "remove", "embedded", check=False)
    assert busy.returncode == 1 and "still has servers" in busy.stderr

    await compute.delete_server(uid, server_id)
    await until(compute, server_id, "DELETED")
    assert await nefos_json(settings, "server", "list") == []
    everything = await nefos_json(settings, "server", "list", "--all")
    assert [(s["id"], s["status"], s["deleted"]) for s in everything] == [
        (server_id, "DELETED", True)
    ]
    shown = await nefos_json(settings, "server", "show", str(server_id))
    assert ("OP_INSTANCE_REMOVE", "success") in [(j["opcode"], j["status"]) for j in shown["jobs"]]
    missing = await invoke_nefos(settings, "server", "show", "999999", check=False)
    assert missing.returncode == 1 and "No server 999999" in missing.stderr


@ONE_BUS  # the commands run on their own engines, not on the test's bus
async def test_reconcile_servers_reports_and_fixes(settings: Settings, engines: Engines):
    """A server whose instance vanished from the cluster: reported (exit 1), fixed with
    --fix, and then every server agrees (exit 0)."""
    await engines.start_dispatcher()
    compute = engines.compute
    await compute.ensure_embedded()
    (flavor, *_) = await compute.ensure_default_flavors()
    user, _ = await engines.identity.create_user(f"r-{uuid.uuid4().hex[:6]}@example.org")
    owner = str(user.id)
    await engines.storage.create_container(owner, "images")
    await engines.storage.put_object(owner, "images", "os", stream(b"disk"))
    image = await engines.images.register(owner, f"pithos://{owner}/images/os", "OS")
    view, _ = await compute.create_server(owner, "vm", str(image.id), flavor.id)
    await until(compute, view.server.id, "ACTIVE")
    cluster = compute.cluster(await compute.backend("embedded"))
    cluster.change_behind_back(f"snf-{view.server.id}", running=None)  # type: ignore[attr-defined]
    async with engines.db.transaction() as s:  # as if the server were built long ago
        row = await s.get(Server, view.server.id)
        assert row is not None
        row.updated = row.updated - dt.timedelta(hours=1)
    # The installed script, end to end; the other commands run in process.
    found = await run_nefos(settings, "reconcile", "servers", check=False)
    assert found.returncode == 1 and "missing in the backend" in found.stdout
    fixed = await invoke_nefos(settings, "reconcile", "servers", "--fix", "--json", check=False)
    assert json.loads(fixed.stdout)[0]["fixed"] is True
    clean = await invoke_nefos(settings, "reconcile", "servers")
    assert "agrees" in clean.stdout
    assert (await compute.server(owner, view.server.id)).status == "DELETED"
