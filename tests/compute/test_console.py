"""The console proxy against a small real RFB server, driven by a real RFB client.

Both ends speak the protocol byte by byte as RFC 6143 has it; the only thing shared
with the code under test is the DES answer, which is itself checked against OpenSSL.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from nefos.backends.base import ConsoleInfo
from nefos.backends.embedded import EmbeddedCluster
from nefos.compute.console import ConsoleProxy, ConsoleTicket, console_for, vnc_response
from nefos.core import errors
from nefos.core.bus import MemoryBus
from nefos.core.config import Compute

NAME = b"nefos test guest"
WIDTH, HEIGHT = 800, 600
PIXEL_FORMAT = bytes([32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0])


@dataclass
class FakeVnc:
    """A VNC server (RFB 3.8) that wants ``password``, or nothing when None, sends a
    ServerInit named ``NAME`` and then echoes whatever its client sends."""

    password: str | None = None
    flood: int = 0  # bytes to send after ServerInit, as fast as they are taken
    sent: int = 0
    connections: int = 0
    versions: list[bytes] = field(default_factory=list)
    shared: list[int] = field(default_factory=list)
    server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.sockets[0].getsockname()[1]

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            writer.write(b"RFB 003.008\n")
            self.versions.append(await reader.readexactly(12))
            writer.write(bytes([1, 2 if self.password is not None else 1]))
            chosen = (await reader.readexactly(1))[0]
            if self.password is not None:
                assert chosen == 2
                challenge = b"fixed challenge!"
                writer.write(challenge)
                if await reader.readexactly(16) != vnc_response(challenge, self.password):
                    reason = b"Wrong VNC password"
                    writer.write(struct.pack("!II", 1, len(reason)) + reason)
                    return
            writer.write(struct.pack("!I", 0))
            self.shared.append((await reader.readexactly(1))[0])
            writer.write(struct.pack("!HH", WIDTH, HEIGHT) + PIXEL_FORMAT)
            writer.write(struct.pack("!I", len(NAME)) + NAME)
            chunk = bytes(1 << 20)
            while self.sent < self.flood:
                writer.write(chunk)
                await writer.drain()
                self.sent += len(chunk)
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@contextlib.asynccontextmanager
async def fake_vnc(password: str | None = None, flood: int = 0) -> AsyncIterator[FakeVnc]:
    vnc = FakeVnc(password, flood)
    vnc.server = await asyncio.start_server(vnc.serve, "127.0.0.1", 0)
    try:
        yield vnc
    finally:
        vnc.server.close()


@pytest.fixture
async def proxy() -> AsyncIterator[ConsoleProxy]:
    proxy = ConsoleProxy("127.0.0.1", "0", seconds=5)
    await proxy.start()
    yield proxy
    await proxy.close()


class RfbClient:
    """A VNC viewer's side of the handshake, at a chosen RFB version (3, 7 or 8)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, ticket: ConsoleTicket) -> RfbClient:
        return cls(*await asyncio.open_connection(ticket.host, ticket.port))

    async def authenticate(self, password: str, minor: int = 8) -> tuple[int, str]:
        """SecurityResult (0 is OK) and, for a failure in 3.8, the reason."""
        assert await self.read(12) == b"RFB 003.008\n"
        self.writer.write(f"RFB 003.00{minor}\n".encode())
        if minor == 3:
            assert struct.unpack("!I", await self.read(4)) == (2,)
        else:
            assert await self.read(2) == bytes([1, 2])  # one type offered: VNC auth
            self.writer.write(bytes([2]))
        self.writer.write(vnc_response(await self.read(16), password))
        (result,) = struct.unpack("!I", await self.read(4))
        if result and minor == 8:
            (length,) = struct.unpack("!I", await self.read(4))
            return result, (await self.read(length)).decode()
        return result, ""

    async def init(self) -> tuple[int, int, bytes]:
        """ClientInit (shared), then the ServerInit's size and name."""
        self.writer.write(bytes([1]))
        width, height = struct.unpack("!HH", await self.read(4))
        assert await self.read(16) == PIXEL_FORMAT
        (length,) = struct.unpack("!I", await self.read(4))
        return width, height, await self.read(length)

    async def read(self, size: int) -> bytes:
        return await asyncio.wait_for(self.reader.readexactly(size), 5)

    async def closed(self) -> bool:
        """The proxy closed the connection (EOF or reset) within a few seconds."""
        try:
            return await asyncio.wait_for(self.reader.read(), 5) is not None
        except ConnectionError:
            return True

    def close(self) -> None:
        self.writer.close()


async def refused(host: str, port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection(host, port)
    except ConnectionRefusedError:
        return True
    writer.close()
    return False


def listening_ports() -> set[int]:
    """TCP ports this machine listens on, from the kernel's own table."""
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A":  # TCP_LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def test_vnc_response_is_des_with_bit_reversed_key() -> None:
    # openssl enc -des-ecb -nopad -K 0e86ceceeef64e26 (the bytes of "password", each
    # one's bits reversed by hand) of "0123456789abcdef".
    expected = bytes.fromhex("5645abeb5f1e6475e8feb11beb66ea19")
    assert vnc_response(b"0123456789abcdef", "password") == expected
    assert vnc_response(b"0123456789abcdef", "password and more") == expected  # 8 bytes only
    assert vnc_response(b"0123456789abcdef", "passwore") != expected


@pytest.mark.parametrize("minor", [3, 7, 8])
@pytest.mark.parametrize("target_password", [None, "cluster!"])
async def test_client_gets_server_init_and_a_relay_both_ways(
    proxy: ConsoleProxy, minor: int, target_password: str | None
) -> None:
    async with fake_vnc(target_password) as vnc:
        ticket = await proxy.open("127.0.0.1", vnc.port, target_password)
        assert (ticket.host, len(ticket.password)) == ("127.0.0.1", 8)
        assert vnc.connections == 0  # nothing is dialled before a client authenticates
        client = await RfbClient.connect(ticket)
        try:
            assert await client.authenticate(ticket.password, minor) == (0, "")
            assert await client.init() == (WIDTH, HEIGHT, NAME)
            assert vnc.versions == [b"RFB 003.008\n"] and vnc.shared == [1]
            # More than any buffer on the way, so the relay has to wait for the reader.
            payload = bytes(range(256)) * 8192
            client.writer.write(payload)
            assert await client.read(len(payload)) == payload
        finally:
            client.close()


async def test_a_client_that_does_not_read_holds_the_server_back(proxy: ConsoleProxy) -> None:
    """The proxy reads from the instance only as fast as the client takes: what is in
    flight stays within the sockets' buffers instead of piling up in the proxy."""
    async with fake_vnc(flood=256 << 20) as vnc:
        ticket = await proxy.open("127.0.0.1", vnc.port)
        client = await RfbClient.connect(ticket)
        try:
            assert await client.authenticate(ticket.password) == (0, "")
            assert await client.init() == (WIDTH, HEIGHT, NAME)
            await asyncio.sleep(1)
            assert 0 < vnc.sent < 32 << 20
            received = 0
            while received < 64 << 20:  # and it all flows once the client reads
                received += len(await asyncio.wait_for(client.reader.read(1 << 20), 5))
            assert vnc.sent >= received
        finally:
            client.close()


class WebSocketReader:
    """noVNC's view: the proxy's binary messages as one byte stream."""

    def __init__(self, ws: ClientConnection):
        self.ws, self.buffer = ws, b""

    async def read(self, size: int) -> bytes:
        while len(self.buffer) < size:
            message = await asyncio.wait_for(self.ws.recv(), 5)
            assert isinstance(message, bytes)
            self.buffer += message
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data


async def test_a_websocket_client_like_novnc(proxy: ConsoleProxy) -> None:
    async with fake_vnc() as vnc:
        ticket = await proxy.open("127.0.0.1", vnc.port, websocket=True)
        url = f"ws://{ticket.host}:{ticket.port}/"
        async with connect(url, subprotocols=[Subprotocol("binary")], compression=None) as ws:
            assert ws.subprotocol == "binary"
            stream = WebSocketReader(ws)
            assert await stream.read(12) == b"RFB 003.008\n"
            await ws.send(b"RFB 003.008\n")
            assert await stream.read(2) == bytes([1, 2])
            await ws.send(bytes([2]))
            await ws.send(vnc_response(await stream.read(16), ticket.password))
            assert await stream.read(4) == bytes(4)
            await ws.send(bytes([1]))
            assert await stream.read(4) == struct.pack("!HH", WIDTH, HEIGHT)
            assert await stream.read(16) == PIXEL_FORMAT
            assert await stream.read(4 + len(NAME)) == struct.pack("!I", len(NAME)) + NAME
            payload = bytes(range(256)) * 1024
            for part in (payload[:1000], payload[1000:]):  # messages need not match RFB's
                await ws.send(part)
            assert await stream.read(len(payload)) == payload
            with pytest.raises(OSError):
                await connect(url)
            assert vnc.connections == 1


async def test_wrong_password_is_refused_with_a_reason(proxy: ConsoleProxy) -> None:
    async with fake_vnc() as vnc:
        ticket = await proxy.open("127.0.0.1", vnc.port)
        client = await RfbClient.connect(ticket)
        wrong = ticket.password[::-1] if ticket.password[::-1] != ticket.password else "x"
        assert await client.authenticate(wrong) == (1, "Authentication failed")
        assert await client.closed()
        client.close()
        assert vnc.connections == 0
        assert await refused(ticket.host, ticket.port)  # and the ticket is spent


async def test_one_connection_per_ticket(proxy: ConsoleProxy) -> None:
    async with fake_vnc() as vnc:
        ticket = await proxy.open("127.0.0.1", vnc.port)
        first = await RfbClient.connect(ticket)
        assert await first.read(12) == b"RFB 003.008\n"
        assert await refused(ticket.host, ticket.port)
        assert proxy.listening == []
        first.close()


async def test_unreachable_console_is_told_to_the_client(proxy: ConsoleProxy) -> None:
    async with fake_vnc(password="cluster!") as vnc:
        for password in ["not it", None]:  # the cluster's password is another, or none
            ticket = await proxy.open("127.0.0.1", vnc.port, password)
            client = await RfbClient.connect(ticket)
            result = await client.authenticate(ticket.password)
            assert result == (1, "The server's console is not reachable")
            client.close()
        assert vnc.shared == []  # it never got as far as ClientInit
        port = vnc.port
    ticket = await proxy.open("127.0.0.1", port)  # now nothing listens there
    client = await RfbClient.connect(ticket)
    assert await client.authenticate(ticket.password) == (
        1,
        "The server's console is not reachable",
    )
    client.close()


async def test_ticket_expires_and_a_silent_client_is_dropped() -> None:
    proxy = ConsoleProxy("127.0.0.1", "0", seconds=0.3)
    try:
        async with fake_vnc() as vnc:
            unused = await proxy.open("127.0.0.1", vnc.port)
            silent = await proxy.open("127.0.0.1", vnc.port)
            assert set(proxy.listening) == {unused.port, silent.port}
            client = await RfbClient.connect(silent)
            await asyncio.sleep(0.5)
            assert await refused(unused.host, unused.port)
            assert unused.port not in listening_ports()
            assert await client.read(12) == b"RFB 003.008\n"
            assert await client.closed()  # it never answered, so it is cut off
            client.close()
            assert vnc.connections == 0
    finally:
        await proxy.close()


async def test_close_ends_tickets_and_sessions() -> None:
    proxy = ConsoleProxy("127.0.0.1", "0", seconds=30)
    async with fake_vnc() as vnc:
        waiting = [await proxy.open("127.0.0.1", vnc.port) for _ in range(3)]
        live = await proxy.open("127.0.0.1", vnc.port)
        client = await RfbClient.connect(live)
        assert await client.authenticate(live.password) == (0, "")
        assert await client.init() == (WIDTH, HEIGHT, NAME)
        assert {t.port for t in waiting} <= listening_ports()

        await proxy.close()
        assert not {t.port for t in [*waiting, live]} & listening_ports()
        for ticket in waiting:
            assert await refused(ticket.host, ticket.port)
        assert await client.closed()
        client.close()
        with pytest.raises(errors.Unavailable):
            await proxy.open("127.0.0.1", vnc.port)


def free_port_pair() -> int:
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        with socket.socket() as neighbour:
            try:
                neighbour.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no two free ports in a row")


async def test_ports_come_from_the_configured_range() -> None:
    first = free_port_pair()
    settings = Compute(console_ports=f"{first}-{first + 1}", console_seconds=0.3)
    proxy = ConsoleProxy.from_settings(settings)
    try:
        async with fake_vnc() as vnc:
            tickets = [await proxy.open("127.0.0.1", vnc.port) for _ in range(2)]
            assert sorted(t.port for t in tickets) == [first, first + 1]
            with pytest.raises(errors.Unavailable, match="Every console port is in use"):
                await proxy.open("127.0.0.1", vnc.port)
            await asyncio.sleep(0.5)  # both expire, and their ports are free again
            again = await proxy.open("127.0.0.1", vnc.port)
            assert again.port in (first, first + 1)
    finally:
        await proxy.close()


@pytest.mark.parametrize("ports", ["6000-5999", "abc", "0-10", "70000"])
def test_bad_port_settings_are_refused(ports: str) -> None:
    with pytest.raises((errors.InvalidInput, ValueError)):
        ConsoleProxy.from_settings(Compute(console_ports=ports))


class VncCluster:
    name = "fake"

    def __init__(self, port: int):
        self.port = port

    async def console(self, instance: str) -> ConsoleInfo:
        assert instance == "snf-7"
        return ConsoleInfo("vnc", "127.0.0.1", self.port, None)


async def test_console_for_a_server(proxy: ConsoleProxy, tmp_path: Path) -> None:
    async with fake_vnc() as vnc:
        ticket = await console_for(proxy, VncCluster(vnc.port), "snf-7")  # type: ignore[arg-type]
        client = await RfbClient.connect(ticket)
        assert await client.authenticate(ticket.password) == (0, "")
        assert await client.init() == (WIDTH, HEIGHT, NAME)
        client.close()

    embedded = EmbeddedCluster("embedded", MemoryBus(), tmp_path / "embedded.json")
    with pytest.raises(errors.Conflict, match="runs no guest, so it has no console"):
        await console_for(proxy, embedded, "snf-7")
    assert proxy.listening == []
