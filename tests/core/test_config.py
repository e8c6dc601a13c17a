"""Where settings come from, and in which order they win."""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from nefos.core.config import ConfigError, ensure_data_dir, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NEFOS_CONFIG", "NEFOS_DATA_DIR", "NEFOS_PORT", "NEFOS_REGION"):
        monkeypatch.delenv(name, raising=False)


def test_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    assert settings.port == 8000 and settings.host == "127.0.0.1"
    assert settings.database.endswith(str(tmp_path / "nefos-data" / "nefos.db"))
    assert settings.bus_url == "memory://"
    assert settings.base_url == "http://127.0.0.1:8000"


def test_flags_beat_environment_beat_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    config = tmp_path / "c.toml"
    config.write_text('port = 1111\nregion = "from-file"\n[limits]\njson_body_bytes = 10\n')
    assert load_settings(config).port == 1111
    monkeypatch.setenv("NEFOS_PORT", "2222")
    monkeypatch.setenv("NEFOS_LIMITS__HEADER_BYTES", "99")
    settings = load_settings(config)
    assert settings.port == 2222 and settings.region == "from-file"
    assert settings.limits.json_body_bytes == 10 and settings.limits.header_bytes == 99
    assert load_settings(config, port=3333).port == 3333


def test_config_found_from_environment_and_data_dir(tmp_path: Path, monkeypatch):
    data_dir = tmp_path / "d"
    data_dir.mkdir()
    (data_dir / "nefos.toml").write_text('region = "in-data-dir"\n')
    assert load_settings(data_dir=data_dir).region == "in-data-dir"
    monkeypatch.setenv("NEFOS_DATA_DIR", str(data_dir))
    assert load_settings().region == "in-data-dir"
    other = tmp_path / "other.toml"
    other.write_text('region = "explicit"\n')
    monkeypatch.setenv("NEFOS_CONFIG", str(other))
    assert load_settings().region == "explicit"


@pytest.mark.parametrize(
    "text",
    ["port = 'x'\n", "unknown_key = 1\n", "[oops\n", "[shibboleth]\ntrusted_proxies=['z']\n"],
)
def test_bad_config_raises_config_error(tmp_path: Path, text: str):
    config = tmp_path / "bad.toml"
    config.write_text(text)
    with pytest.raises(ConfigError):
        load_settings(config)


def test_missing_config_file(tmp_path: Path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "absent.toml")


def test_secret_key_is_stable_per_data_dir(tmp_path: Path):
    first = ensure_data_dir(load_settings(data_dir=tmp_path / "x"))
    second = ensure_data_dir(load_settings(data_dir=tmp_path / "x"))
    assert first.secret_key and first.secret_key == second.secret_key
    assert (tmp_path / "x" / "secret_key").stat().st_mode & 0o777 == 0o600


@pytest.fixture
def loose_umask() -> Iterator[None]:
    """The usual umask, 022: files made without care are readable by every user."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_loose_data_dir_is_tightened_on_start(
    tmp_path: Path, loose_umask: None, caplog: pytest.LogCaptureFixture
):
    """A data directory an older nefos (or a copy) left readable by other local users:
    the next start takes their access away and says so."""
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    (data / "secret_key").write_text("k" * 64)
    (data / "nefos.toml").write_text('region = "here"\n')
    database = sqlite3.connect(data / "nefos.db")  # SQLite's own modes: 0644 and its WAL too
    database.execute("PRAGMA journal_mode=WAL")
    database.execute("CREATE TABLE t (x)")
    database.commit()
    try:
        names = ["secret_key", "nefos.toml", "nefos.db", "nefos.db-wal", "nefos.db-shm"]
        assert mode(data) == 0o755 and {mode(data / n) for n in names} == {0o644}

        with caplog.at_level(logging.WARNING, logger="nefos.config"):
            settings = ensure_data_dir(load_settings(data_dir=data, database_url=""))
        assert settings.region == "here" and settings.secret_key == "k" * 64
        assert mode(data) == 0o700
        assert {n: mode(data / n) for n in names} == dict.fromkeys(names, 0o600)
        told = caplog.text
        for path in [data, *(data / n for n in names)]:
            assert f"{path} was open to other users (mode 0" in told
        database.execute("INSERT INTO t VALUES (1)")  # SQLite goes on as before
        database.commit()
    finally:
        database.close()

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="nefos.config"):
        ensure_data_dir(load_settings(data_dir=data, database_url=""))
    assert caplog.text == ""  # once tight, nothing to say


def test_endpoints_follow_public_url_and_overrides():
    settings = load_settings(
        public_url="https://cloud.example/", endpoints={"image": "https://img.example"}
    )
    assert settings.base_url == "https://cloud.example"
    assert settings.endpoint("compute", "/compute/v2.1") == "https://cloud.example/compute/v2.1"
