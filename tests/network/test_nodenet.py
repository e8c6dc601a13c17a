"""The node data plane without guests: the NIC contract, the rule plans, the frames the
responder builds, the install command's hook, and the responder against frames a test
writes on a veth (DHCPv6, NAK, a spoofed client address), in a namespace of its own."""

from __future__ import annotations

import ipaddress
import os
import struct
import sys
from pathlib import Path

import pytest

from nefos.nodenet import install, packets, rules
from nefos.nodenet.nic import NicError, NodeConfig, eui64, from_env, mac_filter
from tests.network.nodeplane import Netns, check_host, ganeti_env, ganeti_network

NET = ganeti_network(
    "nefos-net-7",
    ["nefos:mode:mac-filtered", "nefos:dhcp"],
    subnet="10.9.0.0/24",
    mac_prefix="aa:00:1",
)


def nic_env(**changes: str) -> dict[str, str]:
    env = ganeti_env(
        tap="tap3",
        instance="snf-7",
        mac="aa:00:10:00:00:01",
        mode="bridged",
        link="prv0",
        ip="10.9.0.5",
        nic_name="nefos-port-1",
        instance_tags=["nefos:firewall:nefos-port-1:limited"],
        network=NET,
    )
    return env | changes


def test_the_contract_is_read_from_ganetis_environment() -> None:
    nic = from_env(nic_env())
    assert (nic.mode, nic.tap, nic.ip, nic.mac_prefix, nic.dhcp, nic.slaac, nic.firewall) == (
        "mac-filtered",
        "tap3",
        "10.9.0.5",
        "aa:00:1",
        True,
        False,
        "limited",
    )
    assert from_env(nic_env(TAGS="nefos:firewall:nefos-port-2:protected")).firewall is None
    for bad in (
        {"MAC": "aa:00:10:00:00"},
        {"INTERFACE": "tap3; rm -rf /"},
        {"IP": "10.10.0.5"},
        {"MODE": "routed"},
        {"NETWORK_TAGS": "nefos:mode:vxlan"},
        {"TAGS": "nefos:firewall:nefos-port-1:open"},
        {"NETWORK_MAC_PREFIX": ""},
    ):
        with pytest.raises(NicError):
            from_env(nic_env(**bad))
    with pytest.raises(NicError, match="not a nefos NIC"):
        from_env(nic_env(NETWORK_TAGS=""))


def test_nefos_own_mac_prefix_tag_wins_over_ganetis_padded_one() -> None:
    """Ganeti holds three octets (aa:00:10); the network's five-digit prefix is in a tag,
    and isolating on Ganeti's would cut off the network's MACs aa:00:11 .. aa:00:1f."""
    tags = "nefos:mode:mac-filtered nefos:dhcp nefos:mac-prefix:aa:00:1"
    nic = from_env(nic_env(NETWORK_TAGS=tags, NETWORK_MAC_PREFIX="aa:00:10"))
    assert nic.mac_prefix == "aa:00:1"
    assert from_env(nic_env(NETWORK_MAC_PREFIX="aa:00:10")).mac_prefix == "aa:00:10"
    with pytest.raises(NicError):
        from_env(nic_env(NETWORK_TAGS="nefos:mode:mac-filtered nefos:mac-prefix:zz"))


def test_mac_prefixes_and_eui64() -> None:
    assert mac_filter("aa:00:1") == "aa:00:10:00:00:00/ff:ff:f0:00:00:00"
    assert mac_filter("aa:00:01") == "aa:00:01:00:00:00/ff:ff:ff:00:00:00"
    assert eui64("2001:db8::/64", "aa:00:00:00:00:0d") == "2001:db8::a800:ff:fe00:d"


def test_every_rule_a_plan_adds_has_its_undo() -> None:
    steps = rules.plan(from_env(nic_env()), 1500, "52:54:00:12:34:56")
    added = [
        s
        for s in steps
        if (s.run[0] in ("ebtables", "iptables", "ip6tables") and s.run[1] in ("-N", "-I"))
        or (s.run[1] == "-A" and s.run[2] in ("FORWARD", "INPUT", "OUTPUT"))
    ]
    assert added and all(s.undo for s in added)
    assert (
        "ebtables",
        "-A",
        "NEFOS-T-tap3",
        "-s",
        "!",
        "aa:00:10:00:00:00/ff:ff:f0:00:00:00",
        "-j",
        "DROP",
    ) in [s.run for s in steps]
    assert ("ip", "link", "set", "tap3", "address", "fe:54:00:12:34:56") in [s.run for s in steps]
    assert rules.profile_rules("limited", "icmp")[-3:] == [
        ("-p", "tcp", "--dport", "22", "-j", "ACCEPT"),
        ("-p", "tcp", "--dport", "3389", "-j", "ACCEPT"),
        ("-j", "DROP"),
    ]


def _discover(
    mac: str, kind: int = packets.DISCOVER, requested: str | None = None, src_mac: str | None = None
) -> bytes:
    bootp = struct.pack("!BBBB", 1, 1, 6, 0) + b"\x12\x34\x56\x78" + b"\x00" * 20
    bootp += packets.mac_bytes(mac) + b"\x00" * 202 + packets.DHCP_MAGIC + bytes([53, 1, kind])
    if requested:
        bootp += bytes([50, 4]) + ipaddress.IPv4Address(requested).packed
    bootp += b"\xff"
    ip = packets.ipv4_udp("0.0.0.0", "255.255.255.255", 68, 67, bootp)
    return packets.ethernet(
        packets.BROADCAST_MAC, packets.mac_bytes(src_mac or mac), packets.ETH_IPV4, ip
    )


def test_dhcp_answers_from_the_lease_only() -> None:
    lease = packets.Lease(
        "aa:00:10:00:00:01",
        "10.9.0.5",
        "10.9.0.0/24",
        "10.9.0.1",
        "10.9.0.1",
        "fe:00:00:00:00:01",
        ("192.0.2.53",),
        "snf-7",
        "",
        600,
        60,
    )
    request = packets.parse_dhcp(_discover("aa:00:10:00:00:01"))
    assert request is not None and request.kind == packets.DISCOVER
    offer = packets.dhcp_reply(request, lease, packets.OFFER)
    assert offer[:6] == packets.mac_bytes(lease.mac)
    assert offer[14 + 28 + 16 : 14 + 28 + 20] == ipaddress.IPv4Address("10.9.0.5").packed
    assert packets.checksum(offer[14:34]) == 0
    wrong = packets.parse_dhcp(_discover(lease.mac, packets.REQUEST, "10.9.0.6"))
    assert wrong is not None
    assert packets.dhcp_answer_kind(wrong, lease.ip, lease.server_ip) == packets.NAK


@pytest.fixture
def netns() -> Netns:
    check_host()
    ns = Netns(f"nfdpu{os.getpid()}")
    ns.create()
    yield ns
    ns.delete()


def test_the_hook_keeps_ganetis_behaviour_for_other_nics(netns: Netns, tmp_path: Path) -> None:
    if not install.NET_COMMON.exists():
        pytest.skip("Ganeti is not installed (scripts/ganeti-dev.sh install)")
    settings = NodeConfig(state_dir=tmp_path / "state")
    done = install.install(settings, tmp_path / "node.toml", tmp_path / "ganeti", start=False)
    again = install.install(settings, tmp_path / "node.toml", tmp_path / "ganeti", start=False)
    assert done.changed and again.changed == []
    netns.run("ip link add nfdpb1 type bridge")
    netns.run("ip tuntap add nfdpx1 mode tap")
    env = ganeti_env(
        tap="nfdpx1",
        instance="plain",
        mac="aa:00:00:11:22:33",
        mode="bridged",
        link="nfdpb1",
        ip=None,
    )
    netns.run(argv=[str(done.hook)], env=env)
    assert "master nfdpb1" in netns.run("ip link show nfdpx1").stdout
    assert not list((tmp_path / "state" / "bindings").glob("*"))
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "kvm-vif-bridge").write_text("#!/bin/sh\n")
    with pytest.raises(install.InstallError, match="not nefos's"):
        install.install(settings, tmp_path / "node.toml", tmp_path / "other", start=False)


def test_responder_answers_only_its_taps_binding(netns: Netns, tmp_path: Path) -> None:
    """A veth stands for the TAP: the test writes the guest's frames on its peer."""
    config = tmp_path / "node.toml"
    config.write_text(
        f'state_dir = "{tmp_path}"\ndns6 = ["2001:db8::53"]\ndomain = "example.org"\n'
    )
    netns.run("ip link add nfdpb2 type bridge")
    netns.run("ip link set nfdpb2 up")
    netns.run("ip link add nfdpv1 type veth peer name nfdpg1")
    netns.run("ip link set nfdpg1 up")
    network = ganeti_network(
        "nefos-net-8",
        ["nefos:mode:bridged", "nefos:dhcp", "nefos:slaac"],
        subnet="10.8.0.0/24",
        gateway="10.8.0.1",
        subnet6="2001:db8:8::/64",
        gateway6="2001:db8:8::1",
    )
    mac = "aa:00:00:00:08:01"
    env = ganeti_env(
        tap="nfdpv1",
        instance="snf-8",
        mac=mac,
        mode="bridged",
        link="nfdpb2",
        ip="10.8.0.8",
        network=network,
    )
    netns.node(config, "ifup", env=env)
    responder = netns.popen(
        [sys.executable, "-m", "nefos.nodenet", "--config", str(config), "responder"],
        tmp_path / "responder.log",
    )
    script = f"""
import socket, sys, time
sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
from tests.network.test_nodenet import _discover, _info_request
from nefos.nodenet import packets
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.bind(("nfdpg1", 0)); s.settimeout(0.3)
def ask(frame):
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline:
        s.send(frame)
        try:
            while True:
                got, addr = s.recvfrom(2000)
                udp4 = got[12:14] == b"\\x08\\x00" and got[23] == 17
                udp6 = got[12:14] == b"\\x86\\xdd" and got[20] == 17
                if addr[2] != 4 and packets.parse_dhcp(got) is None and (udp4 or udp6):
                    return got
        except TimeoutError:
            pass
    return None
ok = ask(_discover("{mac}"))
print("own", ok is not None and ok[14 + 28 + 16 : 14 + 28 + 20].hex())
print("chaddr", ask(_discover("aa:00:00:00:08:02", src_mac="{mac}")))
print("nak", ask(_discover("{mac}", 3, "10.8.0.9"))[14 + 28 + 240 + 2])
reply = ask(_info_request("{mac}"))
print("dhcp6", reply is not None and bytes.fromhex("20010db8000000000000000000000053") in reply)
"""
    try:
        out = netns.run(argv=[sys.executable, "-c", script], timeout=60).stdout
    finally:
        responder.terminate()
        responder.wait(10)
    assert "own 0a080008" in out, out  # 10.8.0.8
    assert "chaddr None" in out, out
    assert f"nak {packets.NAK}" in out, out
    assert "dhcp6 True" in out, out
    netns.node(config, "ifdown", "nfdpv1")
    assert "NEFOS" not in netns.run("ebtables -L").stdout


def _info_request(mac: str) -> bytes:
    client = struct.pack("!HH", 3, 1) + packets.mac_bytes(mac)
    body = bytes([packets.DHCP6_INFORMATION_REQUEST]) + b"\x01\x02\x03"
    body += struct.pack("!HH", 1, len(client)) + client
    udp = struct.pack("!HHHH", 546, 547, 8 + len(body), 0) + body
    src = packets.link_local(mac)
    ip = packets.ipv6(src, ipaddress.IPv6Address("ff02::1:2"), 17, udp, hop_limit=1)
    return packets.ethernet(
        bytes.fromhex("333300010002"), packets.mac_bytes(mac), packets.ETH_IPV6, ip
    )


def test_install_starts_the_responder_once(netns: Netns, tmp_path: Path) -> None:
    if not install.NET_COMMON.exists():
        pytest.skip("Ganeti is not installed (scripts/ganeti-dev.sh install)")
    script = f"""
from pathlib import Path
from nefos.nodenet import install
from nefos.nodenet.nic import NodeConfig
t = Path({str(tmp_path)!r})
settings = NodeConfig(state_dir=t / "state")
args = dict(pidfile=t / "pid", logfile=t / "log")
first = install.install(settings, t / "node.toml", t / "ganeti", **args)
again = install.install(settings, t / "node.toml", t / "ganeti", **args)
print(first.responder_pid == again.responder_pid, again.changed)
print(install.stop(t / "pid"), install.running(t / "pid"))
"""
    out = netns.run(argv=[sys.executable, "-c", script], timeout=60).stdout.split("\n")
    assert out[:2] == ["True []", "True None"], out


def test_a_profile_change_replaces_the_chain_of_a_running_nic(netns: Netns, tmp_path: Path) -> None:
    """The instance-modify hook's environment (as Ganeti's post phase gives it) names the
    instance's tags and NICs: the bound TAP's chain takes the new profile, and ifdown
    still removes everything."""
    config = tmp_path / "node.toml"
    config.write_text(f'state_dir = "{tmp_path}"\n')
    netns.run("ip link add nfdpb3 type bridge")
    netns.run("ip link set nfdpb3 up")
    netns.run("ip tuntap add nfdpx3 mode tap")
    mac, instance = "aa:00:00:00:09:01", "snf-9"
    network = ganeti_network("nefos-net-9", ["nefos:mode:bridged"], subnet="10.9.0.0/24")

    def nic_tags(level: str | None) -> list[str]:
        return [] if level is None else [f"nefos:firewall:nefos-port-9:{level}"]

    env = ganeti_env(
        tap="nfdpx3", instance=instance, mac=mac, mode="bridged", link="nfdpb3",
        ip="10.9.0.9", nic_name="nefos-port-9", instance_tags=nic_tags("protected"),
        network=network,
    )  # fmt: skip
    netns.node(config, "ifup", env=env)

    def chain() -> str:
        return netns.run("iptables -S nefos-fw-nfdpx3", check=False).stdout

    def after_modify(level: str | None) -> None:
        hook = {
            "PATH": env["PATH"],
            "GANETI_HOOKS_PHASE": "post",
            "GANETI_POST_INSTANCE_NAME": instance,
            "GANETI_POST_INSTANCE_TAGS": " ".join(["other", *nic_tags(level)]),
            "GANETI_POST_INSTANCE_NIC_COUNT": "1",
            "GANETI_POST_INSTANCE_NIC0_MAC": mac.upper(),
            "GANETI_POST_INSTANCE_NIC0_NAME": "nefos-port-9",
        }
        netns.node(config, "firewall", env=hook)

    assert "-A nefos-fw-nfdpx3 -j DROP" in chain()
    after_modify("unprotected")
    assert chain().splitlines()[1:] == ["-A nefos-fw-nfdpx3 -j ACCEPT"]
    assert netns.run("iptables -S FORWARD").stdout.count("-j nefos-fw-nfdpx3") == 1
    after_modify("limited")
    assert (
        "--dport 22 -j ACCEPT" in chain()
        and "--dport 22 -j ACCEPT" in netns.run("ip6tables -S nefos-fw-nfdpx3").stdout
    )
    after_modify(None)  # no profile: no chain, no jump
    assert chain() == "" and "nefos-fw" not in netns.run("iptables -S FORWARD").stdout
    after_modify("protected")
    assert "-A nefos-fw-nfdpx3 -j DROP" in chain()
    netns.node(config, "ifdown", "nfdpx3")
    assert chain() == "" and "nefos" not in netns.rules()
