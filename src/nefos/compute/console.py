"""Server consoles: a one-time VNC authentication proxy (Synnefo's vncauthproxy).

A cluster's VNC servers listen on its nodes, unauthenticated or behind one password
shared by the whole cluster, so users are never sent there. Each console request opens
a ticket instead: a port of its own on the proxy host and a random password. The one
client that connects in time must pass standard VNC authentication with that password;
only then does the proxy dial the instance's VNC server, authenticate there as the
cluster requires, and relay bytes both ways until either side closes::

    VNC client ──RFB, VNC auth (ticket password)──► proxy :port ──RFB──► node:5900+N

A ticket's port closes after its first connection, or after ``console_seconds`` when
nobody came; the connection itself must authenticate within that time too, and its port
is not handed out again until it ends. A wrong password is told why (RFB 3.8's failure
reason) and closed. Clients may speak RFB 3.3, 3.7 or 3.8, over TCP or, for a WebSocket
ticket (noVNC in a browser; Synnefo's ``vnc-ws``), inside binary WebSocket messages; the
instance's server is spoken to in its own version, up to 3.8, with no authentication or
VNC authentication (VeNCrypt/TLS is not spoken).

:func:`console_for` is the whole path for a server: ask its cluster where the console
is, then open a ticket to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hmac
import logging
import secrets
import string
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes
from websockets.exceptions import InvalidState
from websockets.frames import Frame, Opcode
from websockets.server import ServerProtocol

from nefos.core import errors

if TYPE_CHECKING:
    from nefos.backends.ops import ComputeBackend
    from nefos.core.config import Compute as ComputeSettings

log = logging.getLogger("nefos.compute.console")

SECURITY_INVALID, SECURITY_NONE, SECURITY_VNC = 0, 1, 2
PASSWORD_LENGTH = 8  # VNC authentication uses the first 8 bytes of a password, no more
_ALPHABET = string.ascii_letters + string.digits
CONNECT_SECONDS = 10.0  # to reach the instance's VNC server and pass its handshake
CHUNK = 64 * 1024


class RfbError(Exception):
    """A handshake that cannot go on; the message is what the VNC client is told."""


def vnc_response(challenge: bytes, password: str) -> bytes:
    """The answer to a VNC authentication challenge: the challenge DES-encrypted with the
    password as key, padded or cut to 8 bytes, each byte's bits reversed (a quirk of the
    original VNC code every implementation keeps). Triple DES with one key thrice is
    DES."""
    key = password.encode("latin-1", "replace")[:8].ljust(8, b"\0")
    key = bytes(int(f"{byte:08b}"[::-1], 2) for byte in key)
    encryptor = Cipher(TripleDES(key * 3), modes.ECB()).encryptor()
    return encryptor.update(challenge) + encryptor.finalize()


def _version(line: bytes) -> int:
    """The RFB minor version a ``RFB xxx.yyy\\n`` line means (RFC 6143 §7.1.1: anything
    unknown is 3.3; Apple's 3.889 and later ones are 3.8)."""
    if len(line) != 12 or not line.startswith(b"RFB 003.") or line[-1:] != b"\n":
        raise RfbError("Not an RFB peer")
    try:
        minor = int(line[8:11])
    except ValueError as exc:
        raise RfbError("Not an RFB peer") from exc
    return 8 if minor >= 8 else 7 if minor == 7 else 3


async def _reason(reader: asyncio.StreamReader) -> str:
    (length,) = struct.unpack("!I", await reader.readexactly(4))
    return (await reader.readexactly(min(length, 4096))).decode("latin-1")


def _binary(_: ServerProtocol, offered: Sequence[str]) -> str | None:
    """noVNC asks for the ``binary`` subprotocol, or for none; both are the same bytes."""
    return "binary" if "binary" in offered else None


class _WebSocket:
    """A client that speaks RFB inside WebSocket messages, seen as the reader and writer
    a plain TCP client is: the accepted connection framed and unframed by websockets'
    sans-I/O protocol, so a WebSocket ticket listens, expires and closes like any."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self._reader, self._writer = reader, writer
        self._ws = ServerProtocol(select_subprotocol=_binary)
        self._buffer = bytearray()
        self.transport = writer.transport

    async def accept(self) -> None:
        while not (events := self._ws.events_received()):
            if not await self._receive():
                raise asyncio.IncompleteReadError(b"", None)
        response = self._ws.accept(events[0])  # type: ignore[arg-type]
        self._ws.send_response(response)
        self._flush()
        if response.status_code != 101:
            raise RfbError(f"not a WebSocket handshake: {self._ws.handshake_exc}")

    async def _receive(self) -> bool:
        data = await self._reader.read(CHUNK)
        if data:
            self._ws.receive_data(data)
        else:
            self._ws.receive_eof()
        self._flush()  # pongs and the closing handshake
        return bool(data)

    async def _fill(self) -> bool:
        """More bytes into the buffer; False at the end of the stream."""
        while True:
            for frame in self._ws.events_received():
                if not isinstance(frame, Frame):
                    continue
                if frame.opcode in (Opcode.BINARY, Opcode.CONT):
                    self._buffer += frame.data
                elif frame.opcode is Opcode.TEXT:
                    raise RfbError("text messages (base64) are not supported: use binary")
            if self._buffer:
                return True
            if not await self._receive():
                return False

    async def readexactly(self, size: int) -> bytes:
        while len(self._buffer) < size:
            if not await self._fill():
                raise asyncio.IncompleteReadError(bytes(self._buffer), size)
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    async def read(self, size: int) -> bytes:
        if not self._buffer and not await self._fill():
            return b""
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    def write(self, data: bytes) -> None:
        self._ws.send_binary(data)
        self._flush()

    async def drain(self) -> None:
        await self._writer.drain()

    def close(self) -> None:
        with contextlib.suppress(InvalidState):  # already closing or closed
            self._ws.send_close()
            self._flush()
        self._writer.close()

    async def wait_closed(self) -> None:
        await self._writer.wait_closed()

    def _flush(self) -> None:
        for data in self._ws.data_to_send():
            if data:
                self._writer.write(data)
            elif self._writer.can_write_eof():  # b"" asks for a half-close
                self._writer.write_eof()


_Reader = asyncio.StreamReader | _WebSocket
_Writer = asyncio.StreamWriter | _WebSocket


@dataclass(frozen=True)
class ConsoleTicket:
    """Where one VNC client may connect, once, before ``expires`` (UTC)."""

    host: str
    port: int
    password: str
    expires: datetime


@dataclass
class _Ticket:
    target: tuple[str, int, str | None]
    websocket: bool = False
    public: ConsoleTicket = ConsoleTicket("", 0, "", datetime.min.replace(tzinfo=UTC))
    server: asyncio.Server | None = None
    timer: asyncio.TimerHandle | None = None
    used: bool = False
    tasks: set[asyncio.Task[None]] = field(default_factory=set)


def parse_ports(ports: str) -> range:
    """``"0"`` (any free port) or ``"LOW-HIGH"``, inclusive."""
    low, _, high = ports.partition("-")
    first, last = int(low), int(high or low)
    if not 0 <= first <= last <= 65535 or (first == 0 and last != 0):
        raise errors.InvalidInput(f"Console ports {ports!r}: give 0 or a range LOW-HIGH")
    return range(first, last + 1)


class ConsoleProxy:
    """Console tickets, each a listening port of its own; :meth:`close` ends them all,
    sessions included."""

    def __init__(self, host: str = "127.0.0.1", ports: str = "0", seconds: float = 60.0):
        self.host = host
        self.ports = parse_ports(ports)
        self.seconds = seconds
        self._tickets: dict[int, _Ticket] = {}
        self._next = 0  # where the search for a free port in the range starts
        self._closed = False

    @classmethod
    def from_settings(cls, compute: ComputeSettings) -> ConsoleProxy:
        return cls(compute.console_host, compute.console_ports, compute.console_seconds)

    async def start(self) -> None:
        """Nothing listens until a ticket is opened; here for the engines' lifecycle."""
        self._closed = False

    async def close(self) -> None:
        self._closed = True
        tickets, self._tickets = list(self._tickets.values()), {}
        for ticket in tickets:
            self._stop_listening(ticket)
        tasks = [task for ticket in tickets for task in ticket.tasks]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for ticket in tickets:
            if ticket.server is not None:
                await ticket.server.wait_closed()

    @property
    def listening(self) -> list[int]:
        """Ports of tickets still waiting for their client."""
        return [port for port, t in self._tickets.items() if t.server and t.server.is_serving()]

    async def open(
        self,
        target_host: str,
        target_port: int,
        target_password: str | None = None,
        websocket: bool = False,
    ) -> ConsoleTicket:
        """A ticket to the VNC server at ``target_host:target_port`` (which wants
        ``target_password``, or no authentication when None). With ``websocket`` the
        client speaks RFB inside WebSocket binary messages (noVNC, Synnefo's
        ``vnc-ws``) instead of plain TCP."""
        if self._closed:
            raise errors.Unavailable("The console proxy is shut down")
        ticket = _Ticket((target_host, target_port, target_password), websocket)

        def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            if ticket.used:  # a second client, accepted before the listener closed
                writer.transport.abort()
                return
            ticket.used = True
            self._stop_listening(ticket)
            task = asyncio.get_running_loop().create_task(self._session(ticket, reader, writer))
            ticket.tasks.add(task)
            task.add_done_callback(lambda _: self._forget(ticket))

        ticket.server = await self._listen(connected)
        port = ticket.server.sockets[0].getsockname()[1]
        password = "".join(secrets.choice(_ALPHABET) for _ in range(PASSWORD_LENGTH))
        expires = datetime.now(UTC) + timedelta(seconds=self.seconds)
        ticket.public = ConsoleTicket(self.host, port, password, expires)
        self._tickets[port] = ticket
        ticket.timer = asyncio.get_running_loop().call_later(self.seconds, self._expire, ticket)
        log.info("console ticket on %s:%d to %s:%d", self.host, port, target_host, target_port)
        return ticket.public

    async def _listen(
        self, connected: Callable[[asyncio.StreamReader, asyncio.StreamWriter], None]
    ) -> asyncio.Server:
        """A listener on the first free port of the range, searched from where the last
        search stopped, so a port just given up is not handed out again at once."""
        candidates = list(self.ports)
        start = self._next % len(candidates)
        for port in candidates[start:] + candidates[:start]:
            if port and port in self._tickets:
                continue
            try:
                server = await asyncio.start_server(connected, self.host, port, backlog=1)
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise errors.Unavailable(f"Console proxy cannot listen: {exc}") from exc
                continue
            self._next = candidates.index(port) + 1
            return server
        raise errors.Unavailable("Every console port is in use; try again in a minute")

    def _stop_listening(self, ticket: _Ticket) -> None:
        if ticket.timer is not None:
            ticket.timer.cancel()
        if ticket.server is not None:
            ticket.server.close()

    def _expire(self, ticket: _Ticket) -> None:
        if not ticket.used:
            log.info("console ticket on port %d expired unused", ticket.public.port)
            self._stop_listening(ticket)
            self._forget(ticket)

    def _forget(self, ticket: _Ticket) -> None:
        if self._tickets.get(ticket.public.port) is ticket:
            del self._tickets[ticket.public.port]

    # -- one connection ----------------------------------------------------------------------

    async def _session(
        self, ticket: _Ticket, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        client: _Reader = reader
        stream: _Writer = writer
        target: asyncio.StreamWriter | None = None
        port = ticket.public.port
        closing = False
        try:
            async with asyncio.timeout(self.seconds):
                if ticket.websocket:
                    client = stream = _WebSocket(reader, writer)
                    await client.accept()
                version, target_reader, target = await self._handshake(ticket, client, stream)
                target.write(await client.readexactly(1))  # ClientInit: shared or not
            log.info("console on port %d connected (RFB 3.%d)", port, version)
            await _relay(client, stream, target_reader, target)
        except asyncio.CancelledError:
            closing = True
            raise
        except TimeoutError:
            log.info("console on port %d: the client did not authenticate in time", port)
        except RfbError as exc:
            log.info("console on port %d refused: %s", port, exc)
        except (OSError, asyncio.IncompleteReadError) as exc:
            log.info("console on port %d ended: %s", port, exc or type(exc).__name__)
        finally:
            await asyncio.gather(*(_end(s, closing) for s in (stream, target) if s is not None))

    async def _handshake(
        self, ticket: _Ticket, reader: _Reader, writer: _Writer
    ) -> tuple[int, asyncio.StreamReader, asyncio.StreamWriter]:
        """The server side of RFB toward the client up to its SecurityResult, with the
        instance's side done between the client's answer and its SecurityResult, so a
        console that cannot be reached is reported to the client as a failure."""
        writer.write(b"RFB 003.008\n")
        version = _version(await reader.readexactly(12))
        if version == 3:
            writer.write(struct.pack("!I", SECURITY_VNC))
        else:
            writer.write(bytes([1, SECURITY_VNC]))
            if (await reader.readexactly(1))[0] != SECURITY_VNC:
                raise RfbError("The client chose a security type other than VNC")
        challenge = secrets.token_bytes(16)
        writer.write(challenge)
        answer = await reader.readexactly(16)
        if not hmac.compare_digest(answer, vnc_response(challenge, ticket.public.password)):
            await _refuse(writer, version, "Authentication failed")
            raise RfbError("wrong password")
        host, port, password = ticket.target
        try:
            async with asyncio.timeout(CONNECT_SECONDS):
                target_reader, target = await asyncio.open_connection(host, port)
                try:
                    await _authenticate(target_reader, target, password)
                except BaseException:
                    target.close()
                    raise
        except (OSError, TimeoutError, asyncio.IncompleteReadError, RfbError) as exc:
            await _refuse(writer, version, "The server's console is not reachable")
            raise RfbError(f"the console at {host}:{port} failed: {exc!r}") from exc
        writer.write(struct.pack("!I", 0))  # SecurityResult: OK
        return version, target_reader, target


async def _refuse(writer: _Writer, version: int, reason: str) -> None:
    """SecurityResult failed; only RFB 3.8 carries a reason."""
    writer.write(struct.pack("!I", 1))
    if version == 8:
        text = reason.encode()
        writer.write(struct.pack("!I", len(text)) + text)
    with contextlib.suppress(OSError):
        await writer.drain()


async def _authenticate(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, password: str | None
) -> None:
    """The client side of RFB toward the instance's VNC server, up to its SecurityResult:
    no authentication if it offers that, else VNC authentication with ``password``. Its
    version need not be the client's: both handshakes end where every version agrees."""
    version = _version(await reader.readexactly(12))
    writer.write(f"RFB 003.00{version}\n".encode())
    if version == 3:
        (chosen,) = struct.unpack("!I", await reader.readexactly(4))
        if chosen == SECURITY_INVALID:
            raise RfbError(f"refused: {await _reason(reader)}")
    else:
        count = (await reader.readexactly(1))[0]
        if count == 0:
            raise RfbError(f"refused: {await _reason(reader)}")
        offered = set(await reader.readexactly(count))
        if SECURITY_NONE in offered:
            chosen = SECURITY_NONE
        elif SECURITY_VNC in offered and password is not None:
            chosen = SECURITY_VNC
        else:
            raise RfbError(f"no security type nefos can use among {sorted(offered)}")
        writer.write(bytes([chosen]))
    if chosen == SECURITY_VNC:
        if password is None:
            raise RfbError("it wants a password and nefos has none")
        writer.write(vnc_response(await reader.readexactly(16), password))
    elif chosen != SECURITY_NONE:
        raise RfbError(f"unsupported security type {chosen}")
    if chosen == SECURITY_VNC or version == 8:
        (result,) = struct.unpack("!I", await reader.readexactly(4))
        if result != 0:
            reason = await _reason(reader) if version == 8 else "authentication failed"
            raise RfbError(f"refused: {reason}")


async def _end(stream: _Writer, at_once: bool) -> None:
    """Close, letting what is queued go out, unless the proxy is closing or the peer
    takes no more: then drop the connection."""
    if not at_once:
        stream.close()
        with contextlib.suppress(OSError, TimeoutError):
            await asyncio.wait_for(stream.wait_closed(), 5)
            return
    stream.transport.abort()


async def _pump(reader: _Reader, writer: _Writer) -> None:
    """Copy until end of stream; waiting for each write to drain before reading more is
    what keeps a slow reader from filling the proxy's memory."""
    while data := await reader.read(CHUNK):
        writer.write(data)
        await writer.drain()


async def _relay(
    client_reader: _Reader,
    client: _Writer,
    target_reader: asyncio.StreamReader,
    target: asyncio.StreamWriter,
) -> None:
    """Both directions until either ends: RFB has no use for a half-closed session."""
    pumps = [
        asyncio.ensure_future(_pump(client_reader, target)),
        asyncio.ensure_future(_pump(target_reader, client)),
    ]
    try:
        done, _ = await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for pump in pumps:
            pump.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)
    for pump in done:
        if (exc := pump.exception()) is not None and not isinstance(exc, OSError):
            raise exc


async def console_for(
    proxy: ConsoleProxy, cluster: ComputeBackend, instance: str, websocket: bool = False
) -> ConsoleTicket:
    """A ticket to ``instance``'s console on ``cluster``: the cluster says where its VNC
    server is (or raises ``Conflict`` when it has none to offer), the proxy opens the way."""
    console = await cluster.console(instance)
    return await proxy.open(console.host, console.port, console.password, websocket)
