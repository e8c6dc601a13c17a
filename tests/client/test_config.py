"""Where nf finds its cloud: the file, the environment, and the URL forms it accepts."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from nefos.client import config
from nefos.client.cloud import endpoint_url, object_store_url
from nefos.client.errors import ClientError
from nefos.core.config import Settings
from nefos.identity.catalog import v2_catalog


def test_config_path_precedence(tmp_path: Path):
    assert config.config_path({"NF_CONFIG": str(tmp_path / "x.toml")}) == tmp_path / "x.toml"
    assert config.config_path({"XDG_CONFIG_HOME": str(tmp_path)}) == tmp_path / "nefos" / "nf.toml"
    assert config.config_path({}) == Path.home() / ".config" / "nefos" / "nf.toml"


def test_values_round_trip_through_a_private_file(tmp_path: Path):
    path = tmp_path / "sub" / "nf.toml"
    assert config.read(path) == {}
    token = 'a"b\\c\u00e9'
    config.set_value(path, "url", "http://127.0.0.1:8000/")
    config.set_value(path, "token", token)
    assert config.read(path) == {"url": "http://127.0.0.1:8000", "token": token}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    config.unset_value(path, "token")
    assert config.read(path) == {"url": "http://127.0.0.1:8000"}


def test_unknown_keys_and_bad_urls_are_refused(tmp_path: Path):
    path = tmp_path / "nf.toml"
    with pytest.raises(config.ConfigError, match="unknown key"):
        config.set_value(path, "colour", "blue")
    with pytest.raises(config.ConfigError, match="not an http"):
        config.set_value(path, "url", "127.0.0.1:8000")
    path.write_text("url = [")
    with pytest.raises(config.ConfigError, match="cannot read"):
        config.read(path)


def test_the_environment_overrides_the_file(tmp_path: Path):
    path = tmp_path / "nf.toml"
    config.write(path, {"url": "http://file:1", "token": "filetoken"})
    env = {"NF_CONFIG": str(path), "NF_TOKEN": "envtoken"}
    loaded = config.load(env)
    assert (loaded.url, loaded.token) == ("http://file:1", "envtoken")
    assert loaded.sources == {"url": "file", "token": "NF_TOKEN"}
    assert config.load({"NF_CONFIG": str(tmp_path / "none"), "NF_URL": "http://e:2"}).url == (
        "http://e:2"
    )


@pytest.mark.parametrize(
    ("given", "identity"),
    [
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000/identity/v2.0"),
        ("http://127.0.0.1:8000/", "http://127.0.0.1:8000/identity/v2.0"),
        ("https://cloud.example.org/identity/v2.0", "https://cloud.example.org/identity/v2.0"),
        ("https://c.example.org/identity/v2.0/tokens", "https://c.example.org/identity/v2.0"),
        (
            "https://accounts.example.org/astakos/identity/v2.0/",
            "https://accounts.example.org/astakos/identity/v2.0",
        ),
        ("https://c.example.org/prefix", "https://c.example.org/prefix/identity/v2.0"),
    ],
)
def test_identity_url_accepts_the_base_or_the_identity_endpoint(given: str, identity: str):
    assert config.identity_url(given) == identity


def test_the_object_store_is_found_by_type_in_nefos_own_catalog():
    catalog = v2_catalog(Settings(public_url="https://cloud.example.org"))
    assert endpoint_url(catalog, "identity") == "https://cloud.example.org/astakos/identity/v2.0"
    assert (
        object_store_url(catalog, "u-1") == "https://cloud.example.org/pithos/object-store/v1/u-1"
    )
    with pytest.raises(ClientError, match="no 'dns' service"):
        endpoint_url(catalog, "dns")
