"""The frames the responder reads and writes: DHCPv4 (RFC 2131/2132), router
solicitations and advertisements (RFC 4861, RDNSS RFC 8106), DHCPv6 information requests
(RFC 8415). Pure functions over bytes, so they are tested without a network; only what
a guest sends is parsed, and anything malformed is ``None``.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

ETH_IPV4, ETH_IPV6 = 0x0800, 0x86DD
BROADCAST_MAC = b"\xff" * 6
ALL_NODES_MAC = bytes.fromhex("333300000001")
ALL_NODES = ipaddress.IPv6Address("ff02::1")
DHCP_MAGIC = b"\x63\x82\x53\x63"
DISCOVER, OFFER, REQUEST, DECLINE, ACK, NAK, RELEASE, INFORM = 1, 2, 3, 4, 5, 6, 7, 8
ROUTER_SOLICITATION, ROUTER_ADVERTISEMENT = 133, 134
DHCP6_INFORMATION_REQUEST, DHCP6_REPLY = 11, 7


def mac_bytes(mac: str) -> bytes:
    return bytes.fromhex(mac.replace(":", ""))


def mac_text(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)


def link_local(mac: str) -> ipaddress.IPv6Address:
    raw = mac_bytes(mac)
    interface = bytes([raw[0] ^ 0x02]) + raw[1:3] + b"\xff\xfe" + raw[3:]
    return ipaddress.IPv6Address(b"\xfe\x80" + b"\x00" * 6 + interface)


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


# ---------------------------------------------------------------------------------------
# building


def ethernet(dst: bytes, src: bytes, kind: int, payload: bytes) -> bytes:
    return dst + src + struct.pack("!H", kind) + payload


def ipv4_udp(src: str, dst: str, sport: int, dport: int, payload: bytes) -> bytes:
    s, d = ipaddress.IPv4Address(src).packed, ipaddress.IPv4Address(dst).packed
    length = 8 + len(payload)
    pseudo = s + d + struct.pack("!BBH", 0, 17, length)
    udp = struct.pack("!HHHH", sport, dport, length, 0) + payload
    udp_sum = checksum(pseudo + udp) or 0xFFFF
    udp = udp[:6] + struct.pack("!H", udp_sum) + udp[8:]
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0x10, 20 + length, 0, 0, 64, 17, 0, s, d)
    header = header[:10] + struct.pack("!H", checksum(header)) + header[12:]
    return header + udp


def ipv6(
    src: ipaddress.IPv6Address,
    dst: ipaddress.IPv6Address,
    proto: int,
    payload: bytes,
    hop_limit: int = 255,
) -> bytes:
    pseudo = src.packed + dst.packed + struct.pack("!I3xB", len(payload), proto)
    offset = 2 if proto == 58 else 6  # where the checksum sits: ICMPv6 or UDP
    total = checksum(pseudo + payload)
    if proto == 17 and total == 0:
        total = 0xFFFF
    payload = payload[:offset] + struct.pack("!H", total) + payload[offset + 2 :]
    header = struct.pack("!IHBB", 6 << 28, len(payload), proto, hop_limit)
    return header + src.packed + dst.packed + payload


# ---------------------------------------------------------------------------------------
# DHCPv4


@dataclass(frozen=True)
class DhcpRequest:
    kind: int
    xid: bytes
    flags: int
    ciaddr: str
    chaddr: str
    requested: str | None
    server_id: str | None
    client_mac: str  # the Ethernet source


def parse_dhcp(frame: bytes) -> DhcpRequest | None:
    """A client's DHCP message (UDP to port 67) in an Ethernet frame, else None."""
    if len(frame) < 14 + 20 + 8 + 240 or struct.unpack("!H", frame[12:14])[0] != ETH_IPV4:
        return None
    ip = frame[14:]
    ihl = (ip[0] & 0x0F) * 4
    if ip[0] >> 4 != 4 or ip[9] != 17 or len(ip) < ihl + 8 + 240:
        return None
    dport = struct.unpack("!H", ip[ihl + 2 : ihl + 4])[0]
    bootp = ip[ihl + 8 :]
    if dport != 67 or bootp[0] != 1 or bootp[1] != 1 or bootp[2] != 6:
        return None
    if bootp[236:240] != DHCP_MAGIC:
        return None
    options = _dhcp_options(bootp[240:])
    kind = options.get(53, b"")
    if len(kind) != 1:
        return None
    requested = options.get(50)
    server = options.get(54)
    return DhcpRequest(
        kind=kind[0],
        xid=bootp[4:8],
        flags=struct.unpack("!H", bootp[10:12])[0],
        ciaddr=str(ipaddress.IPv4Address(bootp[12:16])),
        chaddr=mac_text(bootp[28:34]),
        requested=str(ipaddress.IPv4Address(requested))
        if requested and len(requested) == 4
        else None,
        server_id=str(ipaddress.IPv4Address(server)) if server and len(server) == 4 else None,
        client_mac=mac_text(frame[6:12]),
    )


def _dhcp_options(data: bytes) -> dict[int, bytes]:
    options: dict[int, bytes] = {}
    i = 0
    while i < len(data):
        code = data[i]
        if code == 0:
            i += 1
            continue
        if code == 255 or i + 1 >= len(data):
            break
        length = data[i + 1]
        options.setdefault(code, data[i + 2 : i + 2 + length])
        i += 2 + length
    return options


@dataclass(frozen=True)
class Lease:
    """What one binding gives: the answer is built from this and nothing of the request
    but its transaction id and flags."""

    mac: str
    ip: str
    subnet: str
    gateway: str | None
    server_ip: str
    server_mac: str
    dns: tuple[str, ...]
    hostname: str
    domain: str
    lease_seconds: int
    renew_seconds: int


def dhcp_reply(request: DhcpRequest, lease: Lease, kind: int) -> bytes:
    """OFFER, ACK or NAK for ``request``, to the binding's MAC."""
    network = ipaddress.IPv4Network(lease.subnet)
    yiaddr = lease.ip if kind in (OFFER, ACK) and request.kind != INFORM else "0.0.0.0"
    bootp = struct.pack("!BBBB", 2, 1, 6, 0) + request.xid + struct.pack("!HH", 0, request.flags)
    bootp += ipaddress.IPv4Address(request.ciaddr if request.kind == INFORM else "0.0.0.0").packed
    bootp += ipaddress.IPv4Address(yiaddr).packed
    bootp += ipaddress.IPv4Address(lease.server_ip).packed + b"\x00" * 4
    bootp += mac_bytes(lease.mac) + b"\x00" * 10 + b"\x00" * 192 + DHCP_MAGIC
    options = [(53, bytes([kind])), (54, ipaddress.IPv4Address(lease.server_ip).packed)]
    if kind != NAK:
        if request.kind != INFORM:
            options += [
                (51, struct.pack("!I", lease.lease_seconds)),
                (58, struct.pack("!I", lease.renew_seconds)),
                (59, struct.pack("!I", lease.lease_seconds * 7 // 8)),
            ]
        options += [(1, network.netmask.packed), (28, network.broadcast_address.packed)]
        if lease.gateway:
            options.append((3, ipaddress.IPv4Address(lease.gateway).packed))
        if lease.dns:
            options.append((6, b"".join(ipaddress.IPv4Address(a).packed for a in lease.dns)))
        options.append((12, lease.hostname.encode()[:63]))
        if lease.domain:
            options.append((15, lease.domain.encode()[:255]))
    for code, value in options:
        bootp += bytes([code, len(value)]) + value
    bootp += b"\xff"
    bootp += b"\x00" * max(0, 300 - len(bootp))  # BOOTP's minimum, which some clients want
    if kind == NAK or request.flags & 0x8000:
        dst_ip, dst_mac = "255.255.255.255", BROADCAST_MAC
    else:
        dst_ip, dst_mac = yiaddr if yiaddr != "0.0.0.0" else request.ciaddr, mac_bytes(lease.mac)
    packet = ipv4_udp(lease.server_ip, dst_ip, 67, 68, bootp)
    return ethernet(dst_mac, mac_bytes(lease.server_mac), ETH_IPV4, packet)


def dhcp_answer_kind(request: DhcpRequest, lease_ip: str, server_ip: str) -> int | None:
    """The answer a request gets (RFC 2131 §4.3): None for none at all."""
    if request.kind == DISCOVER:
        return OFFER
    if request.kind == INFORM:
        return ACK
    if request.kind != REQUEST:
        return None  # RELEASE, DECLINE: nothing to free, the address is the NIC's
    if request.server_id is not None and request.server_id != server_ip:
        return None  # the client chose another server
    wanted = request.requested or (request.ciaddr if request.ciaddr != "0.0.0.0" else None)
    return ACK if wanted == lease_ip else NAK


# ---------------------------------------------------------------------------------------
# IPv6: router solicitations and advertisements, DHCPv6 information requests


@dataclass(frozen=True)
class Ipv6Message:
    src_mac: str
    src: ipaddress.IPv6Address
    kind: str  # "rs" | "dhcp6-info"
    transaction: bytes = b""
    client_id: bytes = b""


def parse_ipv6(frame: bytes) -> Ipv6Message | None:
    """A router solicitation or a DHCPv6 information request, else None."""
    if len(frame) < 14 + 40 + 4 or struct.unpack("!H", frame[12:14])[0] != ETH_IPV6:
        return None
    ip = frame[14:]
    proto = ip[6]
    src = ipaddress.IPv6Address(ip[8:24])
    body = ip[40 : 40 + struct.unpack("!H", ip[4:6])[0]]
    src_mac = mac_text(frame[6:12])
    if proto == 0 and len(body) >= 8:  # hop-by-hop options, as with MLD; skip them
        proto, body = body[0], body[(body[1] + 1) * 8 :]
    if proto == 58 and len(body) >= 8 and body[0] == ROUTER_SOLICITATION:
        return Ipv6Message(src_mac, src, "rs")
    if proto == 17 and len(body) >= 12 and struct.unpack("!H", body[2:4])[0] == 547:
        message = body[8:]
        if message[0] != DHCP6_INFORMATION_REQUEST:
            return None
        options = _dhcp6_options(message[4:])
        return Ipv6Message(src_mac, src, "dhcp6-info", message[1:4], options.get(1, b""))
    return None


def _dhcp6_options(data: bytes) -> dict[int, bytes]:
    options: dict[int, bytes] = {}
    i = 0
    while i + 4 <= len(data):
        code, length = struct.unpack("!HH", data[i : i + 4])
        options.setdefault(code, data[i + 4 : i + 4 + length])
        i += 4 + length
    return options


def router_advertisement(
    router_mac: str,
    prefix: str,
    dns6: tuple[str, ...],
    lifetime: int,
    interval: float,
    dst_mac: str | None = None,
    on_link: bool = True,
) -> bytes:
    """An RA from ``router_mac``'s link-local address with ``prefix`` for SLAAC
    (autonomous; on-link unless routed, where every address is reached through the
    router, as proxy ARP does for IPv4), the DNS servers (RDNSS) and O set when there are
    DNS servers to ask DHCPv6 for; to all nodes, through ``dst_mac`` when it answers a
    solicitation."""
    network = ipaddress.IPv6Network(prefix)
    valid = max(int(interval * 3), 600)
    other = 0x40 if dns6 else 0
    ra = struct.pack("!BBHBBHII", ROUTER_ADVERTISEMENT, 0, 0, 64, other, lifetime, 0, 0)
    ra += bytes([1, 1]) + mac_bytes(router_mac)
    ra += struct.pack(
        "!BBBBIII", 3, 4, network.prefixlen, 0xC0 if on_link else 0x40, valid, valid, 0
    )
    ra += network.network_address.packed
    if dns6:
        ra += struct.pack("!BBHI", 25, 1 + 2 * len(dns6), 0, valid)
        ra += b"".join(ipaddress.IPv6Address(a).packed for a in dns6)
    packet = ipv6(link_local(router_mac), ALL_NODES, 58, ra)
    dst = mac_bytes(dst_mac) if dst_mac else ALL_NODES_MAC
    return ethernet(dst, mac_bytes(router_mac), ETH_IPV6, packet)


def dhcp6_reply(
    message: Ipv6Message, router_mac: str, client_mac: str, dns6: tuple[str, ...], domain: str
) -> bytes:
    """REPLY to an information request: the DNS servers and search domain."""
    body = bytes([DHCP6_REPLY]) + message.transaction
    body += _option6(1, message.client_id) if message.client_id else b""
    body += _option6(2, struct.pack("!HH", 3, 1) + mac_bytes(router_mac))  # DUID-LL
    if dns6:
        body += _option6(23, b"".join(ipaddress.IPv6Address(a).packed for a in dns6))
    if domain:
        labels = b"".join(bytes([len(p)]) + p.encode() for p in domain.strip(".").split("."))
        body += _option6(24, labels + b"\x00")
    udp = struct.pack("!HHHH", 547, 546, 8 + len(body), 0) + body
    dst = message.src if message.src.is_link_local else link_local(client_mac)
    packet = ipv6(link_local(router_mac), dst, 17, udp)
    return ethernet(mac_bytes(client_mac), mac_bytes(router_mac), ETH_IPV6, packet)


def _option6(code: int, value: bytes) -> bytes:
    return struct.pack("!HH", code, len(value)) + value
