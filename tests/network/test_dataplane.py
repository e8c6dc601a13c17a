"""The node data plane with real guests: nefos's ifup (called with the environment Ganeti
3.0 gives it), its responder, and four QEMU TCG guests in a network namespace of ours.

- A and B: one MAC_FILTERED network (prefix aa:00:1) on a shared bridge; A is protected.
- C: eth0 on another MAC_FILTERED network (aa:00:2), same bridge, same subnet's numbers;
  eth1 on a public routed network with DHCP and SLAAC.
Three guests boot together once (each TCG boot costs seconds, more on a busy machine) and
the tests share them, in file order; the last one tears every NIC down and compares the
rules with those of the start.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from nefos.nodenet.nic import eui64
from tests.network.nodeplane import (
    Guest,
    Netns,
    build_initrd,
    check_host,
    ganeti_env,
    ganeti_network,
)

# Its TCG guests answer DHCP and ping on timers: under ``make test``'s workers it runs on
# the worker of the Ganeti tests (whose guests would otherwise share the two cores with
# these), one guest-booting module at a time.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ganeti")]
BRIDGE = "nfdpbr0"
PRIVATE = dict(subnet="10.77.0.0/24")
PUBLIC = dict(
    subnet="198.51.100.0/24",
    gateway="198.51.100.1",
    subnet6="2001:db8:77::/64",
    gateway6="2001:db8:77::1",
)


@dataclass
class Plane:
    ns: Netns
    config: Path
    state: Path
    guests: dict[str, Guest]
    envs: dict[str, dict[str, str]]
    rules_before: str
    responder: subprocess.Popen[bytes]
    workdir: Path


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Plane]:
    check_host()
    workdir = tmp_path_factory.mktemp("dataplane")
    kernel, initrd = build_initrd(workdir)
    ns = Netns(f"nfdp{os.getpid()}")
    ns.create()
    state = workdir / "state"
    config = workdir / "node.toml"
    config.write_text(
        f'state_dir = "{state}"\ndns = ["192.0.2.53"]\ndns6 = ["2001:db8::53"]\n'
        'domain = "vm.example.org"\nra_interval = 3\n'
    )
    guests: dict[str, Guest] = {}
    responder = None
    try:
        ns.run(f"ip link add {BRIDGE} type bridge")
        ns.run(f"ip link set {BRIDGE} type bridge stp_state 0 forward_delay 0")
        ns.run(f"ip link set {BRIDGE} up")
        ns.run("ip addr add 198.51.100.1/32 dev lo")
        ns.run("ip -6 addr add 2001:db8:77::1/128 dev lo")
        ns.run("sysctl -qw net.bridge.bridge-nf-call-iptables=1")
        ns.run("sysctl -qw net.bridge.bridge-nf-call-ip6tables=1")
        net1 = ganeti_network(
            "nefos-net-1",
            ["nefos:mode:mac-filtered", "nefos:dhcp"],
            mac_prefix="aa:00:1",
            **PRIVATE,
        )
        net2 = ganeti_network(
            "nefos-net-2",
            ["nefos:mode:mac-filtered", "nefos:dhcp"],
            mac_prefix="aa:00:2",
            **PRIVATE,
        )
        public = ganeti_network(
            "nefos-net-3", ["nefos:mode:routed", "nefos:dhcp", "nefos:slaac"], **PUBLIC
        )
        specs = {
            "a": (
                "aa:00:10:00:00:0a",
                "10.77.0.10",
                net1,
                "bridged",
                BRIDGE,
                ["nefos:firewall:nefos-port-a:protected"],
            ),
            "b": ("aa:00:10:00:00:0b", "10.77.0.11", net1, "bridged", BRIDGE, []),
            "c": ("aa:00:20:00:00:0c", "10.77.0.12", net2, "bridged", BRIDGE, []),
            "d": ("aa:00:00:00:00:0d", "198.51.100.5", public, "routed", "main", []),
        }
        rules_before = ns.rules()
        envs = {}
        for name, (mac, ip, network, mode, link, tags) in specs.items():
            tap = f"nfdpt{name}{os.getpid() % 10000}"
            ns.run(f"ip tuntap add {tap} mode tap")
            envs[name] = ganeti_env(
                tap=tap,
                instance=f"snf-{name}.vm.example.org",
                mac=mac,
                mode=mode,
                link=link,
                ip=ip,
                nic_name=f"nefos-port-{name}",
                instance_tags=["other:tag", *tags],
                network=network,
            )
            ns.node(config, "ifup", env=envs[name])
        for name, nics in {"a": ["a"], "b": ["b"], "c": ["c", "d"]}.items():
            pairs = [(envs[nic]["INTERFACE"], envs[nic]["MAC"]) for nic in nics]
            guests[name] = Guest(ns, name, pairs, workdir)
        responder = ns.popen(
            [sys.executable, "-m", "nefos.nodenet", "--config", str(config), "responder"],
            workdir / "responder.log",
        )
        for guest in guests.values():
            guest.start(kernel, initrd)
            guest.connect()
        for guest in guests.values():
            guest.wait_booted(timeout=240)
        yield Plane(ns, config, state, guests, envs, rules_before, responder, workdir)
    finally:
        for guest in guests.values():
            guest.stop()
        if responder is not None:
            responder.terminate()
            responder.wait(10)
        ns.delete()


def lease(output: str) -> dict[str, str]:
    found = re.search(r"@@LEASE (.*)", output)
    assert found, output
    return dict(item.split("=", 1) for item in found.group(1).split())


def test_private_guests_get_their_addresses_by_dhcp_and_ping_each_other(plane: Plane) -> None:
    a, b = plane.guests["a"], plane.guests["b"]
    status, out = a.dhcp()
    assert status == 0, out
    assert lease(out) == {
        "ip": "10.77.0.10",
        "mask": "24",
        "router": "none",
        "dns": "192.0.2.53",
        "hostname": "snf-a",
        "server": "169.254.169.254",
    }
    status, out = b.dhcp()
    assert status == 0 and lease(out)["ip"] == "10.77.0.11", out
    status, out = a.sh("ping -c 2 -W 2 10.77.0.11")
    assert status == 0, out
    status, out = b.sh("ping -c 2 -W 2 10.77.0.10")
    assert status == 0, out


def test_another_private_network_on_the_same_bridge_cannot_reach_them(plane: Plane) -> None:
    c = plane.guests["c"]
    status, out = c.dhcp()
    assert status == 0 and lease(out)["ip"] == "10.77.0.12", out  # its own network's DHCP
    for target in ("10.77.0.10", "10.77.0.11"):
        status, out = c.sh(f"ping -c 2 -W 1 {target}")
        assert status != 0 and "100% packet loss" in out, out
    status, out = plane.guests["b"].sh("ping -c 2 -W 1 10.77.0.12")
    assert status != 0, out


def test_public_guest_gets_ipv4_by_dhcp_and_ipv6_by_slaac(plane: Plane) -> None:
    d = plane.guests["c"]
    status, out = d.dhcp("eth1")
    assert status == 0, out
    assert lease(out) | {"dns": ""} == {
        "ip": "198.51.100.5",
        "mask": "24",
        "router": "198.51.100.1",
        "dns": "",
        "hostname": "snf-d",
        "server": "198.51.100.1",
    }
    expected = eui64(PUBLIC["subnet6"], "aa:00:00:00:00:0d")
    status, out = d.sh(
        "for i in $(seq 20); do ip -6 addr show dev eth1 scope global | grep -q 'inet6 .* scope "
        "global' && ! ip -6 addr show dev eth1 | grep -q tentative && break; sleep 0.5; done; "
        "ip -6 addr show dev eth1 scope global; ip -6 route",
        timeout=40,
    )
    assert f"inet6 {expected}/64" in out, out  # printed by the guest on its serial console
    assert "default via fe80::" in out, out
    status, out = d.sh("ping -c 2 -W 2 198.51.100.1")
    assert status == 0, out
    status, out = d.sh("ping6 -c 2 -W 2 2001:db8:77::1")
    assert status == 0, out
    for ping in (["ping", "198.51.100.5"], ["ping6", expected]):  # inbound: routed to it
        done = plane.ns.run(argv=["busybox", *ping, "-c", "1", "-W", "3"], check=False)
        assert done.returncode == 0, done.stdout + done.stderr


def test_protected_guest_drops_inbound_new_tcp_while_outbound_works(plane: Plane) -> None:
    a, b = plane.guests["a"], plane.guests["b"]
    a.sh("rm -f /tmp/in; nc -l -p 8081 >/tmp/in & true")
    b.sh("rm -f /tmp/in; nc -l -p 8082 >/tmp/in & true")
    time.sleep(0.5)
    status, out = b.sh("echo inbound | nc -w 3 10.77.0.10 8081")  # to protected A: dropped
    assert status != 0, out
    status, out = a.sh("echo outbound | nc -w 3 10.77.0.11 8082")  # from A: its replies pass
    assert status == 0, out
    time.sleep(0.5)
    assert b.sh("cat /tmp/in")[1].strip() == "outbound"
    assert a.sh("cat /tmp/in")[1].strip() == ""
    status, out = b.sh("ping -c 1 -W 2 10.77.0.10")  # ICMP passes the protected profile
    assert status == 0, out


def test_a_spoofed_mac_is_dropped_and_gets_no_other_guests_binding(plane: Plane) -> None:
    b = plane.guests["b"]
    spoof = "ip link set eth0 down; ip link set eth0 address aa:00:10:00:00:0a; ip link set eth0 up"
    status, out = b.sh(f"ip addr flush dev eth0; {spoof}")
    assert status == 0, out
    status, out = b.sh("udhcpc -i eth0 -s /udhcpc.sh -t 3 -T 1 -A 1 -n -q")
    assert status != 0 and "@@LEASE" not in out, out  # not A's address, not any
    status, out = b.sh("ip addr add 10.77.0.11/24 dev eth0; ping -c 2 -W 1 10.77.0.10")
    assert status != 0, out  # anti-spoof: frames with A's MAC from B's TAP are dropped
    restore = (
        "ip link set eth0 down; ip link set eth0 address aa:00:10:00:00:0b; ip link set eth0 up"
    )
    b.sh(f"ip addr flush dev eth0; {restore}")
    status, out = b.dhcp()
    assert status == 0 and lease(out)["ip"] == "10.77.0.11", out


def test_ifdown_and_a_vanished_tap_leave_no_rule_behind(plane: Plane) -> None:
    bindings = plane.state / "bindings"
    taps = {name: env["INTERFACE"] for name, env in plane.envs.items()}
    assert sorted(p.stem for p in bindings.glob("*.json")) == sorted(taps.values())
    for name in ("a", "b"):
        plane.ns.node(plane.config, "ifdown", taps[name])
    plane.guests["c"].stop()  # Ganeti 3.0 runs no ifdown: QEMU exits, its TAPs go away
    for name in ("c", "d"):
        plane.ns.run(f"ip tuntap del {taps[name]} mode tap")
    deadline = time.monotonic() + 10
    while list(bindings.glob("*.json")) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not list(bindings.glob("*.json"))
    assert plane.ns.rules() == plane.rules_before
    assert plane.responder.poll() is None, (plane.workdir / "responder.log").read_text()
