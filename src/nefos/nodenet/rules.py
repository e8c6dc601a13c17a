"""The commands that attach a NIC and isolate it, each with the command that undoes it.

A plan is data (``Step``: argv to run, argv that undoes it), built by pure functions and
tested as such; ``ifup`` runs it and records the undo half in the binding, so ``ifdown``
removes exactly what was added, even after the node's settings changed.

- Bridged NICs of nefos networks: per TAP ebtables chains ``NEFOS-F-<tap>`` (frames from
  the guest: its own MAC only; on public networks its own IPv4 in IP and ARP; no DHCP
  server replies or router advertisements where nefos serves them; DHCP requests stop
  here, the responder has them already) and, on mac-filtered networks, ``NEFOS-T-<tap>``
  (frames to the guest: only from its network's MAC prefix). Both hook FORWARD and
  INPUT/OUTPUT, as multicast goes through the latter (snf-network's docs/ebtables.rst).
- Routed NICs: the TAP alone, a /32 (and EUI-64 /128) route in the network's routing
  table, ``ip rule iif <tap>`` into it, proxy ARP, and the same source checks in
  iptables/ip6tables FORWARD.
- Firewall profiles (spec §4.4, snf-network.ferm): a chain ``nefos-fw-<tap>`` per NIC in
  iptables and ip6tables, jumped to from FORWARD for packets leaving to the TAP
  (``physdev`` when bridged). protected: replies, DNS answers and ICMP; limited: also SSH
  and RDP; unprotected: everything.
"""

from __future__ import annotations

from dataclasses import dataclass

from nefos.nodenet.nic import Nic, mac_filter

COMMENT = ["-m", "comment", "--comment", "nefos"]


@dataclass(frozen=True)
class Step:
    run: tuple[str, ...]
    undo: tuple[str, ...] | None = None


def chains(tap: str) -> tuple[str, str, str]:
    """ebtables' from-guest and to-guest chains and the firewall chain of ``tap``."""
    return f"NEFOS-F-{tap}", f"NEFOS-T-{tap}", f"nefos-fw-{tap}"


def plan(nic: Nic, bridge_mtu: int | None = None, tap_mac: str | None = None) -> list[Step]:
    """Every step of the NIC's ifup, in order."""
    steps = attach(nic, bridge_mtu, tap_mac)
    if nic.ganeti_mode == "bridged":
        steps += bridge_filters(nic)
    else:
        steps += routed_filters(nic)
    if nic.firewall:
        steps += firewall(nic)
    return steps


def attach(nic: Nic, bridge_mtu: int | None, tap_mac: str | None = None) -> list[Step]:
    tap = nic.tap
    if nic.ganeti_mode == "bridged":
        steps = []
        if tap_mac:  # fe:...: the bridge never takes a TAP's MAC as its own (Ganeti's fix_mac)
            steps.append(Step(("ip", "link", "set", tap, "address", "fe" + tap_mac[2:])))
        steps.append(Step(("ip", "link", "set", tap, "up")))
        if bridge_mtu:
            steps.append(Step(("ip", "link", "set", tap, "mtu", str(bridge_mtu))))
        steps.append(
            Step(
                ("ip", "link", "set", tap, "master", nic.link),
                ("ip", "link", "set", tap, "nomaster"),
            )
        )
        return steps
    table = ("table", nic.link)
    steps = [
        Step(("ip", "link", "set", tap, "up")),
        Step(("sysctl", "-qw", f"net.ipv4.conf.{tap}.proxy_arp=1")),
        Step(("sysctl", "-qw", f"net.ipv4.conf.{tap}.forwarding=1")),
        Step(("sysctl", "-qw", f"net.ipv6.conf.{tap}.forwarding=1")),
        Step(("ip", "rule", "add", "iif", tap, *table), ("ip", "rule", "del", "iif", tap, *table)),
    ]
    if nic.ip:
        route = ("route", "replace", f"{nic.ip}/32", "dev", tap, "proto", "static", *table)
        steps.append(Step(("ip", *route), ("ip", "route", "del", f"{nic.ip}/32", *table)))
    if nic.eui64:
        steps.append(
            Step(
                ("ip", "-6", "rule", "add", "iif", tap, *table),
                ("ip", "-6", "rule", "del", "iif", tap, *table),
            )
        )
        steps.append(
            Step(
                ("ip", "-6", "route", "replace", f"{nic.eui64}/128", "dev", tap, *table),
                ("ip", "-6", "route", "del", f"{nic.eui64}/128", *table),
            )
        )
    return steps


def bridge_filters(nic: Nic) -> list[Step]:
    from_guest, to_guest, _ = chains(nic.tap)
    steps = _ebchain(from_guest, [("FORWARD", "-i"), ("INPUT", "-i")], nic.tap)
    rules: list[tuple[str, ...]] = [("-s", "!", nic.mac, "-j", "DROP")]
    rules.append(("-p", "IPv4", "--ip-proto", "udp", "--ip-dport", "67", "-j", "DROP"))
    if nic.dhcp:
        rules.append(("-p", "IPv4", "--ip-proto", "udp", "--ip-sport", "67", "-j", "DROP"))
    if nic.slaac:
        ra = ("--ip6-proto", "ipv6-icmp", "--ip6-icmp-type", "router-advertisement")
        rules.append(("-p", "IPv6", *ra, "-j", "DROP"))
    if nic.mode == "bridged" and nic.ip:  # a public address: nobody else's
        rules.append(("-p", "IPv4", "--ip-src", "!", nic.ip, "-j", "DROP"))
        rules.append(("-p", "ARP", "--arp-ip-src", "!", nic.ip, "-j", "DROP"))
    steps += [Step(("ebtables", "-A", from_guest, *rule)) for rule in rules]
    if nic.mode == "mac-filtered" and nic.mac_prefix:
        steps += _ebchain(to_guest, [("FORWARD", "-o"), ("OUTPUT", "-o")], nic.tap)
        allowed = mac_filter(nic.mac_prefix)
        steps.append(Step(("ebtables", "-A", to_guest, "-s", "!", allowed, "-j", "DROP")))
    return steps


def routed_filters(nic: Nic) -> list[Step]:
    steps = []
    for tool, address in (("iptables", nic.ip), ("ip6tables", nic.eui64)):
        if address is None:
            continue
        rule = ("FORWARD", "-i", nic.tap, "!", "-s", address, *COMMENT, "-j", "DROP")
        steps.append(Step((tool, "-I", *rule), (tool, "-D", *rule)))
    return steps


def firewall(nic: Nic) -> list[Step]:
    _, _, chain = chains(nic.tap)
    if nic.ganeti_mode == "bridged":
        match = ("-m", "physdev", "--physdev-out", nic.tap, "--physdev-is-bridged")
    else:
        match = ("-o", nic.tap)
    steps = []
    for tool, icmp in (("iptables", "icmp"), ("ip6tables", "ipv6-icmp")):
        steps.append(Step((tool, "-N", chain), (tool, "-X", chain)))
        steps.append(Step((tool, "-F", chain), (tool, "-F", chain)))  # undone before -X
        for rule in profile_rules(nic.firewall or "unprotected", icmp):
            steps.append(Step((tool, "-A", chain, *rule)))
        jump = ("FORWARD", *match, *COMMENT, "-j", chain)
        steps.append(Step((tool, "-I", *jump), (tool, "-D", *jump)))
    return steps


def profile_rules(profile: str, icmp: str) -> list[tuple[str, ...]]:
    """The chain of a profile (spec §4.4), stateful where Synnefo's was not: replies to
    the guest's own connections pass whatever their protocol."""
    if profile == "unprotected":
        return [("-j", "ACCEPT")]
    rules: list[tuple[str, ...]] = [
        ("-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"),
        ("-p", "udp", "--sport", "53", "-j", "ACCEPT"),
        ("-p", icmp, "-j", "ACCEPT"),
    ]
    if profile == "limited":
        rules += [
            ("-p", "tcp", "--dport", "22", "-j", "ACCEPT"),
            ("-p", "tcp", "--dport", "3389", "-j", "ACCEPT"),
        ]
    return [*rules, ("-j", "DROP")]


def _ebchain(chain: str, hooks: list[tuple[str, str]], tap: str) -> list[Step]:
    steps = [Step(("ebtables", "-N", chain, "-P", "RETURN"), ("ebtables", "-X", chain))]
    steps.append(Step(("ebtables", "-F", chain), ("ebtables", "-F", chain)))
    for hook, direction in hooks:
        rule = (hook, direction, tap, "-j", chain)
        steps.append(Step(("ebtables", "-A", *rule), ("ebtables", "-D", *rule)))
    return steps


def stale_ebtables(tap: str) -> list[tuple[str, ...]]:
    """Commands that remove the ebtables chains an earlier NIC of this TAP name may have
    left when its binding is lost: tried one by one, their failures ignored."""
    from_guest, to_guest, _ = chains(tap)
    hooks = {
        from_guest: [("FORWARD", "-i"), ("INPUT", "-i")],
        to_guest: [("FORWARD", "-o"), ("OUTPUT", "-o")],
    }
    commands: list[tuple[str, ...]] = []
    for chain, pairs in hooks.items():
        for hook, direction in pairs:
            commands.append(("ebtables", "-D", hook, direction, tap, "-j", chain))
        commands += [("ebtables", "-F", chain), ("ebtables", "-X", chain)]
    return commands


def stale_iptables(tap: str, listing: str) -> list[tuple[str, ...]]:
    """From ``iptables -S FORWARD``'s ``listing``, the deletes of nefos's rules for ``tap``
    (the jump to its firewall chain, its source checks); then the chain itself."""
    _, _, fw = chains(tap)
    commands: list[tuple[str, ...]] = []
    for line in listing.splitlines():
        words = line.split()
        if words[:2] != ["-A", "FORWARD"]:
            continue
        mine = ("-j" in words and words[words.index("-j") + 1] == fw) or (
            "nefos" in words and ("-i" in words and words[words.index("-i") + 1] == tap)
        )
        if mine:
            commands.append(("-D", *words[1:]))
    return [*commands, ("-F", fw), ("-X", fw)]
