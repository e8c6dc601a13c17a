"""A NIC as Ganeti describes it to its ifup script, and the node's own settings.

Ganeti 3.0 (``hv_base.ConfigureNIC``) gives the script ``INTERFACE`` (the TAP),
``INSTANCE``, ``MAC``, ``MODE`` (bridged | routed | openvswitch), ``LINK``, ``IP``,
``INTERFACE_INDEX``, ``INTERFACE_UUID``, ``INTERFACE_NAME``, ``TAGS`` (the instance's
tags, space separated) and, for a NIC on a Ganeti network, ``NETWORK_NAME``,
``NETWORK_UUID``, ``NETWORK_TAGS``, ``NETWORK_SUBNET``, ``NETWORK_GATEWAY``,
``NETWORK_SUBNET6``, ``NETWORK_GATEWAY6`` and ``NETWORK_MAC_PREFIX``. nefos reads its
own part of the contract from the tags (docs/network.md, "Data plane").
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

MODES = ("routed", "bridged", "mac-filtered", "physical-vlan")
PROFILES = ("protected", "limited", "unprotected")
DEFAULT_CONFIG = Path("/etc/nefos/node.toml")
TAP_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")
MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


class NicError(ValueError):
    """The environment does not describe a NIC this script can set up."""


@dataclass(frozen=True)
class NodeConfig:
    """The node's settings, from the file ``nefos ganeti install-network`` writes."""

    state_dir: Path = Path("/var/lib/nefos/node")
    dns: tuple[str, ...] = ()
    dns6: tuple[str, ...] = ()
    domain: str = ""
    dhcp_server_ip: str = "169.254.169.254"  # server id when the subnet has no gateway
    lease_seconds: int = 604800  # a week, as nfdhcpd
    renew_seconds: int = 3600
    ra_interval: float = 300.0
    router_lifetime: int = 1800

    @property
    def bindings_dir(self) -> Path:
        return self.state_dir / "bindings"

    @classmethod
    def load(cls, path: Path = DEFAULT_CONFIG) -> NodeConfig:
        """Read the node file; a missing file means every default (no DNS servers)."""
        try:
            raw = tomllib.loads(path.read_text())
        except FileNotFoundError:
            return cls()
        except tomllib.TOMLDecodeError as exc:
            raise NicError(f"{path}: {exc}") from None
        known = set(cls.__dataclass_fields__)
        unknown = set(raw) - known
        if unknown:
            raise NicError(f"{path}: unknown settings {', '.join(sorted(unknown))}")
        values: dict[str, object] = dict(raw)
        if "state_dir" in values:
            values["state_dir"] = Path(str(values["state_dir"]))
        for key in ("dns", "dns6"):
            if key in values:
                values[key] = tuple(str(ipaddress.ip_address(a)) for a in values[key])  # type: ignore[union-attr]
        return cls(**values)  # type: ignore[arg-type]

    def to_toml(self) -> str:
        def quoted(items: tuple[str, ...]) -> str:
            return "[" + ", ".join(f'"{item}"' for item in items) + "]"

        return (
            "# nefos node settings (nefos ganeti install-network); read by the ifup\n"
            "# script and the responder on each NIC and each start.\n"
            f'state_dir = "{self.state_dir}"\n'
            f"dns = {quoted(self.dns)}\n"
            f"dns6 = {quoted(self.dns6)}\n"
            f'domain = "{self.domain}"\n'
            f'dhcp_server_ip = "{self.dhcp_server_ip}"\n'
            f"lease_seconds = {self.lease_seconds}\n"
            f"renew_seconds = {self.renew_seconds}\n"
            f"ra_interval = {self.ra_interval}\n"
            f"router_lifetime = {self.router_lifetime}\n"
        )


@dataclass(frozen=True)
class Nic:
    """One NIC of a nefos network, as its ifup script sees it."""

    tap: str
    instance: str
    mac: str
    ganeti_mode: str  # bridged | routed
    link: str  # the bridge, or the routing table
    mode: str  # one of MODES: nefos's network flavor
    name: str = ""
    ip: str | None = None
    subnet: str | None = None
    gateway: str | None = None
    subnet6: str | None = None
    gateway6: str | None = None
    mac_prefix: str | None = None
    dhcp: bool = False
    slaac: bool = False
    firewall: str | None = None
    network: str = ""
    instance_tags: tuple[str, ...] = field(default=())

    @property
    def eui64(self) -> str | None:
        """The SLAAC address of this MAC in the network's /64, as the guest makes it."""
        return eui64(self.subnet6, self.mac) if self.subnet6 else None


def nefos_mode(env: Mapping[str, str]) -> str | None:
    """The network's nefos mode from its tags, or None for a NIC nefos does not own."""
    for tag in env.get("NETWORK_TAGS", "").split():
        if tag.startswith("nefos:mode:"):
            mode = tag.removeprefix("nefos:mode:")
            if mode not in MODES:
                raise NicError(f"unknown nefos mode {mode!r} on network {env.get('NETWORK_NAME')}")
            return mode
    return None


def firewall_profile(tags: list[str], nic_name: str) -> str | None:
    """``nefos:firewall:<nic name>:<profile>`` among the instance's tags; none: no chain."""
    if not nic_name:
        return None
    profile = None
    for tag in tags:
        head, sep, level = tag.rpartition(":")
        if sep and head == f"nefos:firewall:{nic_name}":
            if level not in PROFILES:
                raise NicError(f"unknown firewall profile {level!r} for NIC {nic_name}")
            profile = level
    return profile


def from_env(env: Mapping[str, str]) -> Nic:
    """The NIC that ``env`` describes; refuses one that is not a nefos NIC or is malformed
    (a value reaches command lines: each is checked before use)."""
    mode = nefos_mode(env)
    if mode is None:
        raise NicError("not a nefos NIC: its network has no nefos:mode tag")
    tap = env.get("INTERFACE", "")
    if not TAP_NAME.match(tap):
        raise NicError(f"bad INTERFACE {tap!r}")
    mac = env.get("MAC", "").lower()
    if not MAC.match(mac):
        raise NicError(f"bad MAC {mac!r}")
    ganeti_mode = env.get("MODE", "")
    if ganeti_mode not in ("bridged", "routed"):
        raise NicError(f"nefos networks are bridged or routed, not {ganeti_mode!r}")
    link = env.get("LINK", "")
    if not re.match(r"^[A-Za-z0-9_.-]{1,64}$", link) or (
        ganeti_mode == "bridged" and not TAP_NAME.match(link)
    ):
        raise NicError(f"bad LINK {link!r}")
    expected = "routed" if mode == "routed" else "bridged"
    if ganeti_mode != expected:
        raise NicError(f"a {mode} network is connected {expected}, not {ganeti_mode}")
    network_tags = env.get("NETWORK_TAGS", "").split()
    tags = env.get("TAGS", "").split()
    name = env.get("INTERFACE_NAME", "")
    ip = _address(env.get("IP"), 4, "IP")
    subnet = _network(env.get("NETWORK_SUBNET"), 4, "NETWORK_SUBNET")
    subnet6 = _network(env.get("NETWORK_SUBNET6"), 6, "NETWORK_SUBNET6")
    # Ganeti keeps only three octets; nefos's own prefix (Synnefo's five hex digits, a /20)
    # rides in a network tag, and is the one that isolates when present.
    tagged = [t.split(":", 2)[2] for t in network_tags if t.startswith("nefos:mac-prefix:")]
    prefix = (tagged[0] if tagged else env.get("NETWORK_MAC_PREFIX", "")).lower() or None
    if prefix is not None and not re.match(r"^[0-9a-f]{2}(:[0-9a-f]{2}){0,4}(:[0-9a-f])?$", prefix):
        raise NicError(f"bad NETWORK_MAC_PREFIX {prefix!r}")
    if mode == "mac-filtered" and prefix is None:
        raise NicError("a mac-filtered network needs NETWORK_MAC_PREFIX")
    if (
        ip is not None
        and subnet is not None
        and ipaddress.ip_address(ip) not in (ipaddress.ip_network(subnet))
    ):
        raise NicError(f"IP {ip} is outside {subnet}")
    instance = env.get("INSTANCE", "")
    if not re.match(r"^[A-Za-z0-9_.-]{1,255}$", instance):
        raise NicError(f"bad INSTANCE {instance!r}")
    return Nic(
        tap=tap,
        instance=instance,
        mac=mac,
        ganeti_mode=ganeti_mode,
        link=link,
        mode=mode,
        name=name,
        ip=ip,
        subnet=subnet,
        gateway=_address(env.get("NETWORK_GATEWAY"), 4, "NETWORK_GATEWAY"),
        subnet6=subnet6,
        gateway6=_address(env.get("NETWORK_GATEWAY6"), 6, "NETWORK_GATEWAY6"),
        mac_prefix=prefix,
        dhcp="nefos:dhcp" in network_tags,
        slaac="nefos:slaac" in network_tags,
        firewall=firewall_profile(tags, name),
        network=env.get("NETWORK_NAME", ""),
        instance_tags=tuple(tags),
    )


def eui64(subnet6: str, mac: str) -> str:
    """The modified EUI-64 address of ``mac`` in ``subnet6`` (RFC 4291 appendix A)."""
    octets = bytes.fromhex(mac.replace(":", ""))
    interface = bytes([octets[0] ^ 0x02]) + octets[1:3] + b"\xff\xfe" + octets[3:]
    network = ipaddress.IPv6Network(subnet6)
    return str(network.network_address + int.from_bytes(interface, "big"))


def mac_filter(prefix: str) -> str:
    """``aa:00:1`` → ``aa:00:10:00:00:00/ff:ff:f0:00:00:00``: every hex digit of the
    prefix counts, so nefos's 5-digit pool values (spec §4.3's mask) and Ganeti's 3-octet
    ones both isolate exactly their own MACs."""
    digits = prefix.replace(":", "")
    value = digits.ljust(12, "0")
    mask = ("f" * len(digits)).ljust(12, "0")

    def colons(hex12: str) -> str:
        return ":".join(hex12[i : i + 2] for i in range(0, 12, 2))

    return f"{colons(value)}/{colons(mask)}"


def _address(value: str | None, version: int, what: str) -> str | None:
    if not value:
        return None
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        raise NicError(f"bad {what} {value!r}") from None
    if address.version != version:
        raise NicError(f"{what} {value} is not IPv{version}")
    return str(address)


def _network(value: str | None, version: int, what: str) -> str | None:
    if not value:
        return None
    try:
        network = ipaddress.ip_network(value)
    except ValueError:
        raise NicError(f"bad {what} {value!r}") from None
    if network.version != version:
        raise NicError(f"{what} {value} is not IPv{version}")
    return str(network)
