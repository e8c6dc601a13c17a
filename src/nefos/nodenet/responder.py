"""The node's DHCPv4 / RA / DHCPv6 responder: nfdhcpd rebuilt on AF_PACKET sockets.

One raw socket per bound TAP. A frame read on a TAP's socket is answered only from that
TAP's binding, and only if its Ethernet source (and, for DHCP, the client hardware
address) is the binding's MAC: a guest that spoofs another guest's MAC gets nothing, never
that guest's address. The answer is written on the same socket, so it goes to that guest
alone, straight into its TAP (no bridge, no filter in between). Packet sockets see a frame
before the bridge does; the ifup's ebtables rules then drop the guest's DHCP requests, so
they never flood the other ports.

Why AF_PACKET and not NFQUEUE (nfdhcpd's choice): the TAP is the socket, so the binding
cannot be mistaken; it needs no compiled extension (NetfilterQueue has no Debian package)
and no iptables rule of its own; engines.md saw both work. A TAP deleted under a socket
makes its reads fail with ENETDOWN: the socket is closed, and the binding, whose TAP is
gone, is torn down (Ganeti 3.0 has no ifdown hook).

Bindings are read again every ``poll`` seconds (a few small files);
RAs go out to every SLAAC binding every ``ra_interval`` seconds and answer each RS.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import selectors
import signal
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from nefos.nodenet import binding as bindings
from nefos.nodenet import packets
from nefos.nodenet.binding import Binding
from nefos.nodenet.ifup import ifdown
from nefos.nodenet.nic import NodeConfig

log = logging.getLogger("nefos.nodenet.responder")
ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
GONE = {errno.ENETDOWN, errno.ENXIO, errno.ENODEV, errno.EBADF}


@dataclass
class Port:
    binding: Binding
    sock: socket.socket


class Responder:
    def __init__(self, config: NodeConfig, poll: float = 1.0) -> None:
        self.config = config
        self.poll = poll
        self.selector = selectors.DefaultSelector()
        self.ports: dict[str, Port] = {}
        self._next_ra = 0.0
        self.answered = 0

    # -- bindings ------------------------------------------------------------------------

    def refresh(self) -> None:
        """Open sockets for new bindings, close those of removed or replaced ones, and tear
        down bindings whose TAP is gone."""
        found = bindings.read_all(self.config.bindings_dir)
        for tap, port in list(self.ports.items()):
            current = found.get(tap)
            if current is None or current != port.binding:
                self._close(tap)
        for tap, bound in found.items():
            if not _tap_is(tap, bound.ifindex):
                self._close(tap)
                if ifdown(tap, self.config, ifindex=bound.ifindex):
                    log.info("%s is gone: its rules and binding removed", tap)
                continue
            if tap not in self.ports:
                self._open(bound)

    def _open(self, bound: Binding) -> None:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        try:
            sock.bind((bound.tap, 0))
        except OSError as exc:
            sock.close()
            log.warning("cannot listen on %s: %s", bound.tap, exc)
            return
        sock.setblocking(False)
        self.ports[bound.tap] = Port(bound, sock)
        self.selector.register(sock, selectors.EVENT_READ, bound.tap)
        log.info("listening on %s for %s (%s)", bound.tap, bound.instance, bound.mac)
        if bound.slaac and bound.subnet6:
            self._send_ra(self.ports[bound.tap], None)

    def _close(self, tap: str) -> None:
        port = self.ports.pop(tap, None)
        if port is None:
            return
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(port.sock)
        port.sock.close()

    # -- the loop ------------------------------------------------------------------------

    def serve(self, stop_after: float | None = None) -> None:
        deadline = None if stop_after is None else time.monotonic() + stop_after
        next_refresh = 0.0
        while deadline is None or time.monotonic() < deadline:
            now = time.monotonic()
            if now >= next_refresh:
                self.refresh()
                next_refresh = now + self.poll
            if now >= self._next_ra:
                self.periodic_ra()
                self._next_ra = now + self.config.ra_interval
            timeout = max(0.0, min(next_refresh, self._next_ra) - time.monotonic())
            for key, _ in self.selector.select(timeout):
                self._read(key.data)

    def _read(self, tap: str) -> None:
        port = self.ports.get(tap)
        if port is None:
            return
        while True:
            try:
                frame, address = port.sock.recvfrom(65535)
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno in GONE:
                    log.info("%s went away", tap)
                    self._close(tap)
                    self.refresh()
                    return
                raise
            if address[2] == PACKET_OUTGOING:
                continue  # what we, or the bridge, send to the guest
            try:
                self.handle(port, frame)
            except OSError as exc:
                if exc.errno not in GONE:
                    raise
                self._close(tap)
                return

    def handle(self, port: Port, frame: bytes) -> None:
        bound = port.binding
        if packets.mac_text(frame[6:12]) != bound.mac:
            return  # spoofed: the anti-spoof rules drop it, and we answer nothing
        request = packets.parse_dhcp(frame)
        if request is not None:
            self._answer_dhcp(port, request)
            return
        message = packets.parse_ipv6(frame)
        if message is None or not bound.subnet6:
            return
        if message.kind == "rs" and bound.slaac:
            self._send_ra(port, bound.mac)
        elif message.kind == "dhcp6-info":
            router_mac = _mac_of(bound.router_dev)
            port.sock.send(
                packets.dhcp6_reply(message, router_mac, bound.mac, bound.dns6, bound.domain)
            )
            self.answered += 1
            log.info("DHCPv6 reply to %s on %s", bound.mac, bound.tap)

    def _answer_dhcp(self, port: Port, request: packets.DhcpRequest) -> None:
        bound = port.binding
        if not bound.dhcp or not bound.ip or not bound.subnet:
            return
        if request.chaddr != bound.mac:
            log.warning(
                "DHCP for %s on %s (bound to %s): ignored", request.chaddr, bound.tap, bound.mac
            )
            return
        server_ip = bound.gateway or self.config.dhcp_server_ip
        kind = packets.dhcp_answer_kind(request, bound.ip, server_ip)
        if kind is None:
            return
        lease = packets.Lease(
            mac=bound.mac,
            ip=bound.ip,
            subnet=bound.subnet,
            gateway=bound.gateway,
            server_ip=server_ip,
            server_mac=_mac_of(bound.router_dev),
            dns=bound.dns,
            hostname=bound.hostname,
            domain=bound.domain,
            lease_seconds=self.config.lease_seconds,
            renew_seconds=self.config.renew_seconds,
        )
        port.sock.send(packets.dhcp_reply(request, lease, kind))
        self.answered += 1
        log.info("DHCP %d→%d for %s on %s: %s", request.kind, kind, bound.mac, bound.tap, bound.ip)

    def _send_ra(self, port: Port, dst_mac: str | None) -> None:
        bound = port.binding
        assert bound.subnet6
        lifetime = self.config.router_lifetime if bound.gateway6 else 0
        frame = packets.router_advertisement(
            _mac_of(bound.router_dev),
            bound.subnet6,
            bound.dns6,
            lifetime,
            self.config.ra_interval,
            dst_mac,
            on_link=bound.mode != "routed",
        )
        try:
            port.sock.send(frame)
        except OSError as exc:
            if exc.errno not in GONE:
                raise
            return
        self.answered += 1

    def periodic_ra(self) -> None:
        for port in list(self.ports.values()):
            if port.binding.slaac and port.binding.subnet6:
                self._send_ra(port, None)

    def close(self) -> None:
        for tap in list(self.ports):
            self._close(tap)
        self.selector.close()


def _tap_is(tap: str, ifindex: int) -> bool:
    try:
        return int(Path(f"/sys/class/net/{tap}/ifindex").read_text()) == ifindex
    except (OSError, ValueError):
        return False


def _mac_of(device: str) -> str:
    return Path(f"/sys/class/net/{device}/address").read_text().strip()


def run_forever(config: NodeConfig, pidfile: Path | None = None) -> None:
    """The daemon's body: serve until killed; the pid file names this process."""
    if pidfile is not None:
        pidfile.parent.mkdir(parents=True, exist_ok=True)
        pidfile.write_text(f"{os.getpid()}\n")
    signal.signal(signal.SIGTERM, _exit)
    responder = Responder(config)
    try:
        responder.serve()
    finally:
        responder.close()
        if pidfile is not None:
            pidfile.unlink(missing_ok=True)


def _exit(signum: int, frame: object) -> None:
    raise SystemExit(0)
