"""Security groups: a read view of the firewall profiles (spec §4.4).

Synnefo has no security groups: each NIC has a firewall profile, which the node turns
into a chain (``nefos.nodenet.rules``). Neutron's clients ask for groups, so each
project shows one group per profile level, named for it (``protected``, ``limited``,
``unprotected``), whose rules say what that chain lets in and out; a port's
``security_groups`` is the group of its NIC's profile. The groups are data, not rows:
their ids derive from the project and the level, and they change only through the
profile (``firewallProfile``), so creating groups or rules is refused.

Neutron's groups are stateful, as the node's chains are: replies to the guest's own
connections (DNS answers among them) pass without a rule of their own.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass

# Synnefo's firewallProfile values and the levels the node applies (and tags carry).
LEVELS = {"ENABLED": "protected", "PROTECTED": "limited", "DISABLED": "unprotected"}

_GROUPS = uuid.UUID("8c0f7a5e-8f1d-4c59-9a43-7f1b9d3e2a10")
_RULES = uuid.UUID("5b7d3a8e-2f49-4c1e-8d0a-64e1f3c9b270")
ETHERTYPES = (("IPv4", "icmp"), ("IPv6", "ipv6-icmp"))


@dataclass(frozen=True)
class Rule:
    id: str
    direction: str  # ingress | egress
    ethertype: str  # IPv4 | IPv6
    protocol: str | None = None  # None: any
    port: int | None = None  # a TCP destination port; None: any


@dataclass(frozen=True)
class SecurityGroup:
    id: str
    name: str  # the level
    profile: str  # the firewallProfile value that gives it
    project: str
    description: str
    rules: tuple[Rule, ...]


ABOUT = {
    "protected": "Firewall profile ENABLED: no new inbound connection; ICMP and the "
    "replies to the machine's own connections come in; everything goes out",
    "limited": "Firewall profile PROTECTED: as protected, and inbound SSH (TCP 22) and "
    "RDP (TCP 3389)",
    "unprotected": "Firewall profile DISABLED: everything comes in and goes out",
}


def group_id(project: str, level: str) -> str:
    return str(uuid.uuid5(_GROUPS, f"{project}/{level}"))


def _rules(group: str, level: str) -> tuple[Rule, ...]:
    def rule(direction: str, ethertype: str, protocol: str | None, port: int | None) -> Rule:
        key = f"{group}/{direction}/{ethertype}/{protocol}/{port}"
        return Rule(str(uuid.uuid5(_RULES, key)), direction, ethertype, protocol, port)

    found = [rule("egress", ethertype, None, None) for ethertype, _ in ETHERTYPES]
    for ethertype, icmp in ETHERTYPES:
        if level == "unprotected":
            found.append(rule("ingress", ethertype, None, None))
            continue
        found.append(rule("ingress", ethertype, icmp, None))
        if level == "limited":
            found += [rule("ingress", ethertype, "tcp", port) for port in (22, 3389)]
    return tuple(found)


def groups_of(projects: Iterable[str]) -> list[SecurityGroup]:
    """Every group of these projects, by project then level (as ``LEVELS`` orders them)."""
    return [
        SecurityGroup(
            group_id(project, level),
            level,
            profile,
            project,
            ABOUT[level],
            _rules(group_id(project, level), level),
        )
        for project in sorted(set(projects))
        for profile, level in LEVELS.items()
    ]


def port_group(project: str, firewall_profile: str) -> str:
    """The group a port shows: its project's group of its NIC's profile."""
    return group_id(project, LEVELS[firewall_profile])
