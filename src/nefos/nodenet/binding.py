"""Bindings: what the ifup script tells the responder about one TAP, and how to undo it.

One JSON file per TAP under ``<state_dir>/bindings/<tap>.json``, written whole to a temporary
name and renamed, so the responder never reads half of one (nfdhcpd read its
``/var/lib/nfdhcpd/<tap>`` files the same way). ``ifindex`` ties the file to one TAP: a
TAP of the same name made later is another NIC, and the responder cleans up a binding
whose TAP is gone. A lock file per TAP keeps an ifup and that cleanup apart.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Binding:
    tap: str
    ifindex: int
    instance: str
    mac: str
    mode: str
    router_dev: str  # the device whose MAC and link-local address answer the guest
    ip: str | None = None
    subnet: str | None = None
    gateway: str | None = None
    subnet6: str | None = None
    gateway6: str | None = None
    eui64: str | None = None
    dhcp: bool = False
    slaac: bool = False
    dns: tuple[str, ...] = ()
    dns6: tuple[str, ...] = ()
    domain: str = ""
    firewall: str | None = None
    network: str = ""
    undo: list[list[str]] = field(default_factory=list)  # run in order by ifdown

    @property
    def hostname(self) -> str:
        return self.instance.split(".", 1)[0]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> Binding:
        raw = json.loads(text)
        raw["dns"] = tuple(raw.get("dns", ()))
        raw["dns6"] = tuple(raw.get("dns6", ()))
        return cls(**raw)


def path(directory: Path, tap: str) -> Path:
    return directory / f"{tap}.json"


def write(directory: Path, binding: Binding) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    target = path(directory, binding.tap)
    temporary = target.with_suffix(".tmp")
    temporary.write_text(binding.to_json())
    os.replace(temporary, target)


def read(directory: Path, tap: str) -> Binding | None:
    try:
        return Binding.from_json(path(directory, tap).read_text())
    except FileNotFoundError:
        return None


def read_all(directory: Path) -> dict[str, Binding]:
    """Every binding that can be read; a broken file is skipped (the next ifup of its TAP
    rewrites it)."""
    found = {}
    for file in sorted(directory.glob("*.json")):
        try:
            binding = Binding.from_json(file.read_text())
        except (OSError, ValueError, TypeError):
            continue
        found[binding.tap] = binding
    return found


def remove(directory: Path, tap: str) -> None:
    path(directory, tap).unlink(missing_ok=True)


@contextlib.contextmanager
def locked(directory: Path, tap: str) -> Iterator[None]:
    """Hold ``tap``'s lock: one ifup, ifdown or cleanup of a TAP name at a time."""
    locks = directory / "locks"
    locks.mkdir(parents=True, exist_ok=True)
    with open(locks / tap, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
