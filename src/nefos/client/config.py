"""Where ``nf`` finds its cloud: a small TOML file plus environment overrides.

The file is ``$NF_CONFIG``, else ``$XDG_CONFIG_HOME/nefos/nf.toml``, else
``~/.config/nefos/nf.toml``. It holds the cloud ``url`` and the user's ``token``, as
kamaki's ``~/.kamakirc`` does; ``NF_URL`` and ``NF_TOKEN`` override it, so a script or a
test can point ``nf`` at a cloud without writing a file. The file is written ``0600``
because the token is a password.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

KEYS = ("url", "token")
ENV = {"url": "NF_URL", "token": "NF_TOKEN"}
IDENTITY_PATH = "/identity/v2.0"


class ConfigError(Exception):
    """A configuration file that cannot be read, or a key nf does not know."""


@dataclass(frozen=True)
class Settings:
    url: str | None
    token: str | None
    path: Path
    sources: dict[str, str]  # key -> "file" | the environment variable it came from


def config_path(env: Mapping[str, str] = os.environ) -> Path:
    if env.get("NF_CONFIG"):
        return Path(env["NF_CONFIG"]).expanduser()
    base = Path(env["XDG_CONFIG_HOME"]) if env.get("XDG_CONFIG_HOME") else Path.home() / ".config"
    return base / "nefos" / "nf.toml"


def read(path: Path) -> dict[str, str]:
    """The file's values; a missing file is an empty configuration, not an error."""
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    return {k: v for k, v in data.items() if k in KEYS and isinstance(v, str)}


def write(path: Path, values: Mapping[str, str]) -> None:
    """Replace the file with ``values``, readable by its owner only."""
    unknown = set(values) - set(KEYS)
    if unknown:
        raise ConfigError(f"unknown key {sorted(unknown)[0]!r}; nf knows {', '.join(KEYS)}")
    # A JSON string is a valid TOML basic string (same escapes), so no TOML writer is needed.
    text = "".join(f"{key} = {json.dumps(values[key])}\n" for key in KEYS if key in values)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".new")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as sink:
        sink.write(text)
    os.replace(partial, path)


def set_value(path: Path, key: str, value: str) -> None:
    if key not in KEYS:
        raise ConfigError(f"unknown key {key!r}; nf knows {', '.join(KEYS)}")
    if key == "url":
        value = normalize_url(value)
    values = read(path)
    values[key] = value
    write(path, values)


def unset_value(path: Path, key: str) -> None:
    if key not in KEYS:
        raise ConfigError(f"unknown key {key!r}; nf knows {', '.join(KEYS)}")
    values = read(path)
    values.pop(key, None)
    write(path, values)


def load(env: Mapping[str, str] = os.environ) -> Settings:
    """The effective settings: the file, then the environment on top."""
    path = config_path(env)
    values: dict[str, str | None] = dict(read(path))
    sources = {key: "file" for key in values}
    for key, variable in ENV.items():
        if env.get(variable):
            values[key] = env[variable]
            sources[key] = variable
    return Settings(values.get("url"), values.get("token"), path, sources)


def normalize_url(url: str) -> str:
    """A cloud URL as given by a user: the base (``http://host:8000``) or, kamaki-style,
    the identity endpoint (``.../identity/v2.0``). Either is kept as typed, minus a
    trailing slash, so ``nf config show`` shows what the user set."""
    url = url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{url!r} is not an http(s) URL like http://127.0.0.1:8000")
    return url


def identity_url(url: str) -> str:
    """The Keystone v2.0 endpoint of a cloud URL.

    A URL whose path ends in ``/v2.0`` (or ``/v2.0/tokens``) already is one; anything else
    is the cloud's base URL, under which nefos serves ``/identity/v2.0``.
    """
    parts = urlsplit(normalize_url(url))
    path = parts.path.rstrip("/").removesuffix("/tokens")
    if not path.endswith("/v2.0"):
        path += IDENTITY_PATH
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))
