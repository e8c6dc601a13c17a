"""``nf`` without a cloud: configuration, argument forms and the failures a user meets
before any request is sent."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import typer
from typer.testing import CliRunner

from nefos.client.cli import app
from nefos.client.cli_files import _destination
from nefos.client.console import object_path, parse_size, split_path
from nefos.client.errors import ClientError, response_message
from nefos.client.files import headers_dict, query, sharing_header
from nefos.client.transfer import local_tree

NF = str(Path(sys.executable).with_name("nf"))


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "nf.toml"
    monkeypatch.setenv("NF_CONFIG", str(path))
    monkeypatch.delenv("NF_URL", raising=False)
    monkeypatch.delenv("NF_TOKEN", raising=False)
    return path


def nf(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_config_set_and_show(env: Path, monkeypatch: pytest.MonkeyPatch):
    assert nf("config", "set", "url", "http://127.0.0.1:8000/")[0] == 0
    assert nf("config", "set", "token", "secret-token-1234")[0] == 0
    code, stdout, _ = nf("config", "show")
    assert code == 0
    assert f"file: {env}" in stdout
    assert "url: http://127.0.0.1:8000\n" in stdout
    assert "token: …1234" in stdout and "secret" not in stdout
    assert "token: secret-token-1234" in nf("config", "show", "--reveal")[1]
    monkeypatch.setenv("NF_URL", "http://other:9000")
    assert "url: http://other:9000  (from NF_URL)" in nf("config", "show")[1]


def test_config_refuses_unknown_keys(env: Path):
    code, _, stderr = nf("config", "set", "colour", "blue")
    assert code == 2 and "unknown key 'colour'" in stderr


def test_commands_need_a_url_and_a_token(env: Path, monkeypatch: pytest.MonkeyPatch):
    code, _, stderr = nf("file", "list")
    assert code == 2 and "nf config set url" in stderr
    monkeypatch.setenv("NF_URL", "http://127.0.0.1:9")
    code, _, stderr = nf("container", "list")
    assert code == 2 and "nf config set token" in stderr


def test_an_unreachable_cloud_is_a_clear_error(env: Path):
    environ = {**os.environ, "NF_CONFIG": str(env), "NF_URL": "http://127.0.0.1:9"}
    environ["NF_TOKEN"] = "t"
    done = subprocess.run(
        [NF, "file", "list", "c"], env=environ, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 1
    assert "cannot reach http://127.0.0.1:9/identity/v2.0/tokens" in done.stderr


def test_paths():
    assert split_path("c") == ("c", "")
    assert split_path("/c/a/b.txt") == ("c", "a/b.txt")
    assert object_path("c/dir/") == ("c", "dir/")
    with pytest.raises(typer.BadParameter):
        object_path("c/")
    with pytest.raises(typer.BadParameter):
        split_path("/")


def test_destinations_keep_or_replace_the_name():
    assert _destination("a/b.txt", "c2") == ("c2", "a/b.txt")
    assert _destination("a/b.txt", "c2/x/") == ("c2", "x/b.txt")
    assert _destination("a/b.txt", "c2/new.txt") == ("c2", "new.txt")


def test_sizes():
    assert parse_size("0") == 0
    assert parse_size("512M") == 512 << 20
    assert parse_size("20GiB") == 20 << 30
    with pytest.raises(typer.BadParameter):
        parse_size("lots")


def test_wire_forms():
    assert query(hashmap=True, format="json") == "?hashmap&format=json"
    assert query(version=None, prefix="a b/") == "?prefix=a+b%2F"
    assert query() == ""
    assert sharing_header(["u1", "u2"], ["u3"]) == "read=u1,u2; write=u3"
    assert sharing_header(write=["*"]) == "write=*"
    assert sharing_header() == ""


def test_server_messages():
    text = httpx.Response(409, text="Container is not empty\n")
    assert response_message(text) == "Container is not empty"
    fault = httpx.Response(404, json={"itemNotFound": {"code": 404, "message": "No such user"}})
    assert response_message(fault) == "No such user"
    assert response_message(httpx.Response(404)) == "Not Found"
    assert str(ClientError(404, "Not Found", "c/o")) == "c/o: Not Found (HTTP 404)"


def test_local_tree_skips_unfinished_downloads(tmp_path: Path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "top.txt").write_text("x")
    (tmp_path / "a" / "b" / "deep.bin").write_text("y")
    (tmp_path / "a" / "big.iso.nfpart").write_text("z")
    files, directories = local_tree(tmp_path)
    assert sorted(files) == ["a/b/deep.bin", "top.txt"]
    assert directories == {"a", "a/b"}


def test_header_names_read_as_people_write_them():
    headers = httpx.Headers({"x-object-uuid": "u", "etag": "e", "x-object-hash": "h"})
    assert headers_dict(headers) == {"X-Object-UUID": "u", "ETag": "e", "X-Object-Hash": "h"}


def _command_paths(command, prefix=()):
    yield prefix
    for name, sub in getattr(command, "commands", {}).items():
        yield from _command_paths(sub, (*prefix, name))


def test_every_command_has_working_help():
    """Help texts are rich markup: a stray ``[/x]`` breaks ``--help`` at run time."""
    import typer
    from typer.testing import CliRunner

    from nefos.cli.main import app as nefos_app
    from nefos.client.cli import app as nf_app

    runner = CliRunner()
    for cli in (nf_app, nefos_app):
        for path in _command_paths(typer.main.get_command(cli)):
            result = runner.invoke(cli, [*path, "--help"])
            assert result.exit_code == 0, (path, result.output, result.exception)
