"""ifup and ifdown of one NIC: run the plan of ``rules``, record its undo in the binding.

Ganeti 3.0 runs no script when a NIC goes away (QEMU's exit or a hot unplug deletes the
TAP): ``ifdown`` is run by the responder when it sees a bound TAP vanish, by hand
(``python -m nefos.nodenet ifdown``), and by every ifup for the TAP name it reuses.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Mapping
from pathlib import Path

from nefos.nodenet import binding, rules
from nefos.nodenet.binding import Binding
from nefos.nodenet.nic import Nic, NodeConfig, from_env

log = logging.getLogger("nefos.nodenet")


class CommandFailed(RuntimeError):
    """A command of the plan failed: the NIC is left without any of its rules."""


def run(argv: tuple[str, ...] | list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(list(argv), capture_output=True, text=True)
    if check and result.returncode != 0:
        raise CommandFailed(f"{' '.join(argv)}: {result.stderr.strip() or result.returncode}")
    return result


def ifup(env: Mapping[str, str], config: NodeConfig) -> Binding:
    """Set the NIC of ``env`` up; all or nothing (a failing step undoes the ones before)."""
    nic = from_env(env)
    directory = config.bindings_dir
    with binding.locked(directory, nic.tap):
        _teardown(directory, nic.tap)
        done: list[list[str]] = []
        try:
            for step in rules.plan(nic, _mtu(nic), _tap_mac(nic.tap)):
                run(step.run)
                if step.undo is not None:
                    done.insert(0, list(step.undo))
        except CommandFailed:
            for undo in done:
                run(undo, check=False)
            raise
        bound = _binding(nic, config, done)
        binding.write(directory, bound)
    log.info("ifup %s of %s: %s on %s", nic.tap, nic.instance, nic.mode, nic.link)
    return bound


def ifdown(tap: str, config: NodeConfig, ifindex: int | None = None) -> bool:
    """Remove every rule and route ``tap``'s ifup added, and its binding. With ``ifindex``,
    only if the binding is still that TAP's (an ifup of a new TAP of that name wins)."""
    directory = config.bindings_dir
    with binding.locked(directory, tap):
        if ifindex is not None:
            current = binding.read(directory, tap)
            if current is None or current.ifindex != ifindex:
                return False
        _teardown(directory, tap)
    log.info("ifdown %s", tap)
    return True


def _teardown(directory: Path, tap: str) -> None:
    old = binding.read(directory, tap)
    if old is not None:
        for undo in old.undo:
            run(undo, check=False)
    else:  # no record: remove whatever nefos may have left under this name
        for command in rules.stale_ebtables(tap):
            run(command, check=False)
        for tool in ("iptables", "ip6tables"):
            listing = run((tool, "-S", "FORWARD"), check=False).stdout
            for command in rules.stale_iptables(tap, listing):
                run((tool, *command), check=False)
    binding.remove(directory, tap)


def _mtu(nic: Nic) -> int | None:
    if nic.ganeti_mode != "bridged":
        return None
    try:
        return int(Path(f"/sys/class/net/{nic.link}/mtu").read_text())
    except (OSError, ValueError):
        raise CommandFailed(f"bridge {nic.link} does not exist") from None


def _tap_mac(tap: str) -> str:
    try:
        return Path(f"/sys/class/net/{tap}/address").read_text().strip()
    except OSError:
        raise CommandFailed(f"TAP {tap} does not exist") from None


def _binding(nic: Nic, config: NodeConfig, undo: list[list[str]]) -> Binding:
    ifindex = int(Path(f"/sys/class/net/{nic.tap}/ifindex").read_text())
    return Binding(
        tap=nic.tap,
        ifindex=ifindex,
        instance=nic.instance,
        mac=nic.mac,
        mode=nic.mode,
        router_dev=nic.link if nic.ganeti_mode == "bridged" else nic.tap,
        ip=nic.ip,
        subnet=nic.subnet,
        gateway=nic.gateway,
        subnet6=nic.subnet6,
        gateway6=nic.gateway6,
        eui64=nic.eui64,
        dhcp=nic.dhcp,
        slaac=nic.slaac,
        dns=config.dns,
        dns6=config.dns6,
        domain=config.domain,
        firewall=nic.firewall,
        network=nic.network,
        undo=undo,
    )
