"""Nova's os-keypairs (microversion 2.1) in process, on both databases and buses, and
python-openstackclient's keypair commands against ``nefos up``."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from nefos.compute.keypairs import MAX_KEYPAIRS, Keypairs
from nefos.core import errors
from nefos.identity.service import Identity
from nefos.server.engines import Engines
from tests.conftest import Server
from tests.e2e.test_server import openstack, side_by_side

# Keypairs never touch the bus: one bus is enough.
ONE_BUS = pytest.mark.parametrize("engines", ["memory"], indirect=True)
COMPUTE = "/compute/v2.1/os-keypairs"
V20 = "/compute/v2.0/os-keypairs"
SSH_KEYGEN = shutil.which("ssh-keygen")


def openssh(key: object) -> str:
    return (
        key.public_key()
        .public_bytes(  # type: ignore[attr-defined]
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        )
        .decode()
    )


def ed25519_key() -> str:
    return openssh(ed25519.Ed25519PrivateKey.generate())


def ssh_keygen(*args: str) -> str:
    """OpenSSH's own reading of a key, to check ours independently."""
    return subprocess.run(
        [SSH_KEYGEN or "ssh-keygen", *args], capture_output=True, text=True, check=True
    ).stdout


def md5_fingerprint_by_ssh_keygen(public_key: str, tmp_path: Path) -> str:
    path = tmp_path / "key.pub"
    path.write_text(public_key + "\n")
    return ssh_keygen("-l", "-E", "md5", "-f", str(path)).split()[1].removeprefix("MD5:")


class Person:
    def __init__(self, uuid: str, token: str):
        self.uuid = uuid
        self.auth = {"X-Auth-Token": token}


@pytest.fixture
async def alice(identity: Identity) -> Person:
    user, token = await identity.create_user("alice@example.org")
    return Person(str(user.id), token)


@pytest.fixture
async def bob(identity: Identity) -> Person:
    user, token = await identity.create_user("bob@example.org")
    return Person(str(user.id), token)


async def create(
    client: httpx.AsyncClient, who: Person, name: str, public_key: str | None = None
) -> httpx.Response:
    body: dict[str, str] = {"name": name}
    if public_key is not None:
        body["public_key"] = public_key
    return await client.post(COMPUTE, json={"keypair": body}, headers=who.auth)


@ONE_BUS
@pytest.mark.parametrize(
    "private",
    [
        ed25519.Ed25519PrivateKey.generate(),
        rsa.generate_private_key(65537, 2048),
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP384R1()),
        ec.generate_private_key(ec.SECP521R1()),
    ],
    ids=["ed25519", "rsa", "ecdsa-256", "ecdsa-384", "ecdsa-521"],
)
async def test_import_shows_nova_fingerprint(
    client: httpx.AsyncClient, alice: Person, private: object, tmp_path: Path
):
    public_key = openssh(private) + " alice@laptop"
    created = await create(client, alice, "laptop", public_key + "\n")
    assert created.status_code == 200, created.text
    assert created.headers["OpenStack-API-Version"] == "compute 2.1"
    keypair = created.json()["keypair"]
    assert set(keypair) == {"name", "public_key", "fingerprint", "user_id"}
    assert keypair["name"] == "laptop"
    assert keypair["public_key"] == public_key  # the comment kept, the newline not
    assert keypair["user_id"] == alice.uuid
    if SSH_KEYGEN:
        assert keypair["fingerprint"] == md5_fingerprint_by_ssh_keygen(public_key, tmp_path)
    assert len(keypair["fingerprint"].split(":")) == 16

    shown = await client.get(f"{COMPUTE}/laptop", headers=alice.auth)
    assert shown.status_code == 200
    detail = shown.json()["keypair"]
    assert detail["fingerprint"] == keypair["fingerprint"]
    assert detail["public_key"] == public_key
    assert detail["user_id"] == alice.uuid
    assert detail["deleted"] is False and detail["deleted_at"] is None
    assert detail["updated_at"] is None
    assert isinstance(detail["id"], int)
    assert detail["created_at"].count(":") == 2 and "+" not in detail["created_at"]
    assert "private_key" not in detail


@ONE_BUS
async def test_generate_returns_the_private_key_once(
    client: httpx.AsyncClient, alice: Person, tmp_path: Path
):
    created = await create(client, alice, "made-here")
    assert created.status_code == 200, created.text
    keypair = created.json()["keypair"]
    private_key = keypair["private_key"]
    assert private_key.startswith("-----BEGIN RSA PRIVATE KEY-----")
    loaded = serialization.load_pem_private_key(private_key.encode(), password=None)
    assert isinstance(loaded, rsa.RSAPrivateKey) and loaded.key_size == 2048
    assert keypair["public_key"].split()[:2] == openssh(loaded).split()
    if SSH_KEYGEN:  # OpenSSH reads the private key and derives the same public key
        path = tmp_path / "id_rsa"
        path.write_text(private_key)
        path.chmod(0o600)
        derived = ssh_keygen("-y", "-f", str(path)).split()
        assert derived[:2] == keypair["public_key"].split()[:2]
        fingerprint = md5_fingerprint_by_ssh_keygen(keypair["public_key"], tmp_path)
        assert keypair["fingerprint"] == fingerprint
    shown = (await client.get(f"{COMPUTE}/made-here", headers=alice.auth)).json()["keypair"]
    assert "private_key" not in shown
    assert shown["public_key"] == keypair["public_key"]
    listed = (await client.get(COMPUTE, headers=alice.auth)).json()["keypairs"]
    assert "private_key" not in listed[0]["keypair"]


@ONE_BUS
async def test_list_show_delete_on_both_versions(client: httpx.AsyncClient, alice: Person):
    assert (await client.get(COMPUTE, headers=alice.auth)).json() == {"keypairs": []}
    first, second = ed25519_key(), ed25519_key()
    assert (await create(client, alice, "b key", first)).status_code == 200
    made = await client.post(
        V20, json={"keypair": {"name": "a.key@home", "public_key": second}}, headers=alice.auth
    )
    assert made.status_code == 200
    for prefix in (COMPUTE, V20):
        listed = (await client.get(prefix, headers=alice.auth)).json()["keypairs"]
        assert [k["keypair"]["name"] for k in listed] == ["a.key@home", "b key"]
        assert set(listed[0]["keypair"]) == {"name", "public_key", "fingerprint"}
        assert listed[1]["keypair"]["public_key"] == first
    shown = await client.get(f"{V20}/b key", headers=alice.auth)
    assert shown.status_code == 200 and shown.json()["keypair"]["public_key"] == first

    deleted = await client.delete(f"{COMPUTE}/b key", headers=alice.auth)
    assert deleted.status_code == 202 and deleted.content == b""
    missing = await client.get(f"{COMPUTE}/b key", headers=alice.auth)
    assert missing.status_code == 404
    assert missing.json()["itemNotFound"]["code"] == 404
    again = await client.delete(f"{V20}/b key", headers=alice.auth)
    assert again.status_code == 404 and "itemNotFound" in again.json()
    listed = (await client.get(COMPUTE, headers=alice.auth)).json()["keypairs"]
    assert [k["keypair"]["name"] for k in listed] == ["a.key@home"]


@ONE_BUS
@pytest.mark.parametrize(
    "name",
    ["", " padded", "padded ", "x" * 256, "slash/ed", "semi;colon", "tab\there", "καλημέρα", 7],
)
async def test_bad_names(client: httpx.AsyncClient, alice: Person, name: object):
    for public_key in (ed25519_key(), None):
        body: dict[str, object] = {"name": name}
        if public_key:
            body["public_key"] = public_key
        refused = await client.post(COMPUTE, json={"keypair": body}, headers=alice.auth)
        assert refused.status_code == 400, refused.text
        assert refused.json()["badRequest"]["code"] == 400
    assert (await client.get(COMPUTE, headers=alice.auth)).json() == {"keypairs": []}


@ONE_BUS
async def test_longest_name_is_fine(client: httpx.AsyncClient, alice: Person):
    name = "k" * 255
    assert (await create(client, alice, name, ed25519_key())).status_code == 200
    assert (await client.get(f"{COMPUTE}/{name}", headers=alice.auth)).status_code == 200


def _bad_keys() -> dict[str, str]:
    """Each bad key by a name of its own: the keys are new every run, and test ids must
    be the same in every process of one run (pytest-xdist's workers compare them)."""
    ed = ed25519_key()
    kind, blob = ed.split()
    rsa_blob = openssh(rsa.generate_private_key(65537, 1024)).split()[1]
    return {
        "empty": "",
        "not-a-key": "not a key",
        "type-only": "ssh-rsa",
        "short-blob": "ssh-rsa AAAA",
        "truncated": f"ssh-ed25519 {blob[:-8]}",
        "blob-says-ed25519": f"ssh-rsa {blob}",
        "blob-says-rsa": f"ssh-ed25519 {rsa_blob}",
        "dss": f"ssh-dss {blob}",  # a type sshd no longer accepts
        "two-keys": f"{ed}\n{ed}",  # would add a second line to authorized_keys
        "bad-base64": f"{kind} {blob}!!",
        "pem": "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----",
    }


BAD_KEYS = _bad_keys()


@ONE_BUS
@pytest.mark.parametrize("public_key", BAD_KEYS.values(), ids=BAD_KEYS.keys())
async def test_bad_keys(client: httpx.AsyncClient, alice: Person, public_key: str):
    refused = await create(client, alice, "bad", public_key)
    assert refused.status_code == 400, refused.text
    assert "badRequest" in refused.json()
    assert (await client.get(f"{COMPUTE}/bad", headers=alice.auth)).status_code == 404


@ONE_BUS
async def test_bad_bodies(client: httpx.AsyncClient, alice: Person):
    for body in (
        b"",
        b"[]",
        b"{}",
        b'{"keypair": {}}',
        b'{"keypair": {"name": "k", "user_id": "someone"}}',
        b'{"keypair": {"name": "k", "public_key": 5}}',
        b'{"keypair": {"name": "k", "type": "x509"}}',
    ):
        refused = await client.post(COMPUTE, content=body, headers=alice.auth)
        assert refused.status_code == 400, (body, refused.text)
        assert "badRequest" in refused.json()
    typed = await client.post(
        COMPUTE,
        json={"keypair": {"name": "typed", "type": "ssh", "public_key": ed25519_key()}},
        headers=alice.auth,
    )
    assert typed.status_code == 200


@ONE_BUS
async def test_duplicates_conflict(client: httpx.AsyncClient, alice: Person, bob: Person):
    key = ed25519_key()
    assert (await create(client, alice, "mine", key)).status_code == 200
    for public_key in (ed25519_key(), None):
        clash = await create(client, alice, "mine", public_key)
        assert clash.status_code == 409, clash.text
        assert clash.json()["conflict"]["code"] == 409
    shown = (await client.get(f"{COMPUTE}/mine", headers=alice.auth)).json()["keypair"]
    assert shown["public_key"] == key  # the first one stays
    # Names are per user; the same key may be imported under several names.
    assert (await create(client, bob, "mine", key)).status_code == 200
    assert (await create(client, alice, "mine-too", key)).status_code == 200


@ONE_BUS
async def test_other_users_keys_are_invisible(
    client: httpx.AsyncClient, alice: Person, bob: Person
):
    key = ed25519_key()
    assert (await create(client, alice, "secret", key)).status_code == 200
    assert (await client.get(COMPUTE, headers=bob.auth)).json() == {"keypairs": []}
    assert (await client.get(f"{COMPUTE}/secret", headers=bob.auth)).status_code == 404
    assert (await client.delete(f"{COMPUTE}/secret", headers=bob.auth)).status_code == 404
    shown = await client.get(f"{COMPUTE}/secret", headers=alice.auth)
    assert shown.status_code == 200 and shown.json()["keypair"]["public_key"] == key


@ONE_BUS
async def test_anonymous_and_unknown_versions(client: httpx.AsyncClient, alice: Person):
    assert (await client.get(COMPUTE)).status_code == 401
    assert (await client.post(COMPUTE, json={"keypair": {"name": "k"}})).status_code == 401
    newer = await client.get(
        COMPUTE, headers={**alice.auth, "OpenStack-API-Version": "compute 2.10"}
    )
    assert newer.status_code == 406
    for header in (
        {"OpenStack-API-Version": "compute 2.1"},
        {"X-OpenStack-Nova-API-Version": "2.1"},
    ):
        assert (await client.get(COMPUTE, headers={**alice.auth, **header})).status_code == 200


@ONE_BUS
async def test_per_user_limit_is_nova_403(client: httpx.AsyncClient, alice: Person, bob: Person):
    key = ed25519_key()
    for n in range(MAX_KEYPAIRS):
        made = await create(client, alice, f"key-{n:03d}", key)
        assert made.status_code == 200, made.text
    for public_key in (key, None):
        over = await create(client, alice, "one-too-many", public_key)
        assert over.status_code == 403, over.text
        assert "too many key pairs" in over.json()["forbidden"]["message"]
    assert len((await client.get(COMPUTE, headers=alice.auth)).json()["keypairs"]) == MAX_KEYPAIRS
    assert (await create(client, bob, "first", key)).status_code == 200  # per user
    assert (await client.delete(f"{COMPUTE}/key-000", headers=alice.auth)).status_code == 202
    assert (await create(client, alice, "room-again", None)).status_code == 200


@ONE_BUS
async def test_service_without_http(engines: Engines):
    """The domain functions, as the compute service and the CLI would call them."""
    keypairs = Keypairs(engines.db, limit=2)
    user = "00000000-0000-0000-0000-000000000001"
    generated = await keypairs.generate(user, "one")
    assert generated.keypair.public_key.endswith(" Generated-by-nefos")
    imported = await keypairs.import_key(user, "two", ed25519_key())
    assert [k.name for k in await keypairs.list(user)] == ["one", "two"]
    assert (await keypairs.get(user, "two")).fingerprint == imported.fingerprint
    with pytest.raises(errors.OverQuota):
        await keypairs.import_key(user, "three", ed25519_key())
    with pytest.raises(errors.Conflict):
        await keypairs.generate(user, "one")
    await keypairs.delete(user, "one")
    with pytest.raises(errors.NotFound):
        await keypairs.get(user, "one")
    with pytest.raises(errors.NotFound):
        await keypairs.delete(user, "one")
    with pytest.raises(errors.InvalidInput):
        await keypairs.import_key(user, "three", ed25519_key(), type="x509")


# -- python-openstackclient against `nefos up` ----------------------------------------------


def test_openstack_cli_keypairs(server: Server, tmp_path: Path):
    credentials = (server.admin_email, server.admin_password, server.admin_email)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        done = openstack(server, *credentials, "keypair", *args)
        assert done.returncode == 0, done.stderr
        return done

    # Independent commands run side by side: each one pays the client's start-up.
    # The client generates the pair itself, prints the private half and imports the public.
    public_path = tmp_path / "laptop.pub"
    public_path.write_text(ed25519_key() + " me@laptop\n")
    private, imported = side_by_side(
        lambda: run("create", "made-by-client").stdout,
        lambda: json.loads(
            run("create", "--public-key", str(public_path), "laptop", "-f", "json").stdout
        ),
    )
    assert "PRIVATE KEY-----" in private
    loaded = serialization.load_ssh_private_key(private.encode(), password=None)
    assert imported["name"] == "laptop"
    listed, shown, public = side_by_side(
        lambda: json.loads(run("list", "-f", "json").stdout),
        lambda: json.loads(run("show", "made-by-client", "-f", "json").stdout),
        lambda: run("show", "--public-key", "made-by-client").stdout,
    )
    assert sorted(k["Name"] for k in listed) == ["laptop", "made-by-client"]
    assert {k["Fingerprint"] for k in listed} >= {imported["fingerprint"]}
    assert shown["user_id"] == server.admin_uuid
    assert shown["fingerprint"] in {k["Fingerprint"] for k in listed}
    assert public.split()[:2] == openssh(loaded).split()[:2]

    run("delete", "made-by-client", "laptop")
    listed, gone = side_by_side(
        lambda: json.loads(run("list", "-f", "json").stdout),
        lambda: openstack(server, *credentials, "keypair", "delete", "laptop"),
    )
    assert listed == []
    assert gone.returncode != 0
