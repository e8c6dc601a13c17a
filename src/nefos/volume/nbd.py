"""The NBD protocol, server side, as QEMU speaks it (the protocol's doc, proto.md).

Fixed newstyle negotiation only: ``NBD_OPT_EXPORT_NAME``, ``NBD_OPT_GO``,
``NBD_OPT_INFO``, ``NBD_OPT_LIST`` and ``NBD_OPT_ABORT`` are answered; every other
option, ``NBD_OPT_STRUCTURED_REPLY`` among them, gets ``NBD_REP_ERR_UNSUP``, which
clients take as "simple replies only". Transmission: READ, WRITE (with FUA), FLUSH,
TRIM, WRITE_ZEROES (with FUA) and DISC. Requests of one connection are served
concurrently, up to ``IN_FLIGHT`` at once, and each is answered when it is done, as the
protocol allows (replies are matched by their cookie): QEMU keeps several reads in
flight, and one read waiting for the store no longer holds up the others. The handle
must take concurrent calls; a FLUSH covers the writes answered before it, and DISC waits
for every request under way, then flushes.

What is served is asked of an ``Exports`` (``nefos.volume.volumed``): this module knows
the wire, not volumes.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import struct
from collections.abc import Sequence
from typing import Protocol

log = logging.getLogger("nefos.volumed.nbd")

NBDMAGIC = b"NBDMAGIC"
IHAVEOPT = b"IHAVEOPT"
REPLY_MAGIC = 0x3E889045565A9
REQUEST_MAGIC = 0x25609513
SIMPLE_REPLY_MAGIC = 0x67446698

FLAG_FIXED_NEWSTYLE = 1
FLAG_NO_ZEROES = 2
CLIENT_FIXED_NEWSTYLE = 1
CLIENT_NO_ZEROES = 2

OPT_EXPORT_NAME = 1
OPT_ABORT = 2
OPT_LIST = 3
OPT_INFO = 6
OPT_GO = 7

REP_ACK = 1
REP_SERVER = 2
REP_INFO = 3
REP_ERR_UNSUP = (1 << 31) + 1
REP_ERR_POLICY = (1 << 31) + 2
REP_ERR_INVALID = (1 << 31) + 3
REP_ERR_UNKNOWN = (1 << 31) + 6

INFO_EXPORT = 0
INFO_BLOCK_SIZE = 3

TX_HAS_FLAGS = 1
TX_READ_ONLY = 2
TX_SEND_FLUSH = 4
TX_SEND_FUA = 8
TX_SEND_TRIM = 32
TX_SEND_WRITE_ZEROES = 64

CMD_READ = 0
CMD_WRITE = 1
CMD_DISC = 2
CMD_FLUSH = 3
CMD_TRIM = 4
CMD_WRITE_ZEROES = 6
CMD_FLAG_FUA = 1

MAX_REQUEST = 32 << 20  # the largest READ or WRITE a client may send (INFO_BLOCK_SIZE)
MAX_OPTION = 64 << 10
IN_FLIGHT = 16  # requests of one connection served at once (the reader waits past it)
SOCKET_BUFFER = 4 << 20
SEND_CHUNK = 256 << 10  # a read's payload goes out in slices of this (see _serve)

TRANSMISSION_FLAGS = (
    TX_HAS_FLAGS | TX_SEND_FLUSH | TX_SEND_FUA | TX_SEND_TRIM | TX_SEND_WRITE_ZEROES
)

REQUEST = struct.Struct(">IHHQQI")
SIMPLE_REPLY = struct.Struct(">IIQ")
OPTION_REPLY = struct.Struct(">QIII")


class Reception(Protocol):
    """Where a write's payload is received in place (``Handle.receive``): its bytes
    fill ``views`` one after the other."""

    views: Sequence[memoryview]

    def release(self) -> None:
        """The payload will not arrive (the client went away)."""


class Handle(Protocol):
    """One client's open export."""

    size: int
    read_only: bool
    """Writes, trims and zeroes get EPERM. The export does not say it is read-only
    (NBD_FLAG_READ_ONLY): QEMU would then refuse to open it for a writable disk, and
    Ganeti's KVM makes every disk writable."""

    async def read(self, offset: int, length: int) -> bytes | bytearray: ...

    def receive(self, offset: int, length: int) -> Reception | None:
        """Where this write's payload may arrive, or None: a buffer of its own. The
        write is then ``write(offset, reception, fua)``."""

    async def write(self, offset: int, data: bytes | bytearray | Reception, fua: bool) -> None: ...

    async def flush(self) -> None: ...

    async def zero(self, offset: int, length: int, fua: bool) -> None: ...

    async def close(self) -> None: ...


class Exports(Protocol):
    preferred_block: int
    """NBD_INFO_BLOCK_SIZE's preferred size (a power of 2 up to 32 MiB): aligned writes
    of it need no read of what they replace. QEMU sizes its requests by it; ``qemu-img
    convert`` writes that much at a time."""

    def names(self) -> list[str]: ...

    async def size_of(self, name: str) -> int | None:
        """The export's size, or None if there is no such export (INFO)."""

    async def open(self, name: str) -> Handle | None:
        """The export opened for this client, or None: no such export, or it is open
        already (one writer per volume)."""


class ProtocolError(Exception):
    """The client broke the protocol: the connection is dropped."""


class Connection(asyncio.BufferedProtocol):
    """One client's connection (``loop.create_unix_server(lambda: Connection(exports),
    path)``), serving it from ``connection_made`` on. Bytes are received straight into
    the buffer that wants them: a write's payload into the block it patches when the
    handle offers one (``Handle.receive``), else into a buffer of its own, so the only
    copy is the kernel's (asyncio's streams copy each byte twice more, a cost that
    showed in the write benchmark); the rest into a fixed buffer. It serves as both the
    reader and the writer of the functions below."""

    BUFFER = 256 << 10  # larger than any header or option (MAX_OPTION)

    def __init__(self, exports: Exports):
        self.exports = exports
        self.buffer = bytearray(self.BUFFER)
        self.view = memoryview(self.buffer)
        self.start = self.end = 0  # unread bytes: buffer[start:end]
        self.target: memoryview | None = None  # a payload being received in place
        self.filled = 0
        self.arrived: asyncio.Future[None] | None = None
        self.gone = False
        self.reading_paused = False
        self.writable = asyncio.Event()
        self.writable.set()
        self.transport: asyncio.Transport | None = None
        self.task: asyncio.Task[None] | None = None

    # -- asyncio.BufferedProtocol ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # Room for a 4 MiB read's reply in the socket: sent in one call, not
            # copied into the transport's buffer (capped by net.core.wmem_max).
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_BUFFER)
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCKET_BUFFER)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.task = asyncio.ensure_future(serve_client(self, self, self.exports))

    def get_buffer(self, sizehint: int) -> memoryview:
        if self.target is not None:
            return self.target[self.filled :]
        if self.end == len(self.buffer):
            self._compact()
        return self.view[self.end :]

    def _compact(self) -> None:
        """Move the unread bytes to the front of the buffer."""
        kept = self.end - self.start
        if kept:
            self.buffer[:kept] = self.view[self.start : self.end]
        self.start, self.end = 0, kept

    def buffer_updated(self, nbytes: int) -> None:
        if self.target is not None:
            self.filled += nbytes
            if self.filled == len(self.target):
                self.target = None
                self._wake()
            return
        self.end += nbytes
        if self.end == len(self.buffer) and self.start == 0 and self.transport is not None:
            self.transport.pause_reading()  # full: wait for the reader to take some
            self.reading_paused = True
        self._wake()

    def eof_received(self) -> bool:
        self.gone = True
        self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.gone = True
        self._wake()
        self.writable.set()

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()

    def _wake(self) -> None:
        if self.arrived is not None and not self.arrived.done():
            self.arrived.set_result(None)

    async def _arrival(self) -> None:
        if self.gone:
            raise asyncio.IncompleteReadError(b"", None)
        if self.reading_paused and self.transport is not None:
            self.reading_paused = False
            self.transport.resume_reading()
        self.arrived = asyncio.get_running_loop().create_future()
        await self.arrived

    # -- the reader's and the writer's calls ----------------------------------------------

    async def readexactly(self, n: int) -> bytes:
        """``n`` bytes (at most the buffer's size)."""
        while self.end - self.start < n:
            if len(self.buffer) - self.start < n:
                self._compact()  # make room at the end
            await self._arrival()
        data = bytes(self.view[self.start : self.start + n])
        self.start += n
        return data

    async def payload(self, n: int) -> bytearray:
        """``n`` bytes received into a new buffer of their own."""
        out = bytearray(n)
        await self.payload_into(memoryview(out))
        return out

    async def payload_into(self, out: memoryview) -> None:
        """``len(out)`` bytes received into ``out``: what is buffered already is
        copied, the rest arrives there from the socket."""
        n = len(out)
        taken = min(n, self.end - self.start)
        out[:taken] = self.view[self.start : self.start + taken]
        self.start += taken
        if taken < n:
            self.target, self.filled = out[taken:], 0
            if self.reading_paused and self.transport is not None:
                self.reading_paused = False
                self.transport.resume_reading()
            while self.target is not None:
                if self.gone:
                    self.target = None
                    raise asyncio.IncompleteReadError(b"", n)
                self.arrived = asyncio.get_running_loop().create_future()
                await self.arrived
        return out

    def write(self, data: bytes | bytearray | memoryview) -> None:
        assert self.transport is not None
        self.transport.write(data)

    async def drain(self) -> None:
        await self.writable.wait()
        if self.is_closing():
            raise ConnectionResetError("the client went away")

    def is_closing(self) -> bool:
        return self.gone or self.transport is None or self.transport.is_closing()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def serve_client(reader: Connection, writer: Connection, exports: Exports) -> None:
    """Negotiate, then serve one client until it disconnects."""
    handle: Handle | None = None
    try:
        handle = await _negotiate(reader, writer, exports)
        if handle is not None:
            await _transmit(reader, writer, handle)
    except (asyncio.IncompleteReadError, ConnectionError):
        pass  # the client went away; what it had flushed is durable
    except ProtocolError as exc:
        log.warning("dropping an NBD client: %s", exc)
    finally:
        if handle is not None:
            try:
                await handle.close()
            except Exception:
                log.exception("closing an export failed")
        writer.close()


async def _negotiate(reader: Connection, writer: Connection, exports: Exports) -> Handle | None:
    writer.write(NBDMAGIC + IHAVEOPT + struct.pack(">H", FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES))
    await writer.drain()
    (client_flags,) = struct.unpack(">I", await reader.readexactly(4))
    if not client_flags & CLIENT_FIXED_NEWSTYLE:
        raise ProtocolError("the client does not speak fixed newstyle")
    no_zeroes = bool(client_flags & CLIENT_NO_ZEROES)
    while True:
        magic, option, length = struct.unpack(">8sII", await reader.readexactly(16))
        if magic != IHAVEOPT:
            raise ProtocolError("bad option magic")
        if length > MAX_OPTION:
            raise ProtocolError(f"an option of {length} bytes")
        data = await reader.readexactly(length)
        if option == OPT_EXPORT_NAME:
            handle = await exports.open(data.decode("utf-8", "replace"))
            if handle is None:
                return None  # the only answer this old option allows: hang up
            writer.write(struct.pack(">QH", handle.size, TRANSMISSION_FLAGS))
            if not no_zeroes:
                writer.write(bytes(124))
            await writer.drain()
            return handle
        if option == OPT_ABORT:
            _reply(writer, option, REP_ACK)
            await writer.drain()
            return None
        if option == OPT_LIST:
            if length:
                _reply(writer, option, REP_ERR_INVALID, b"LIST takes no data")
            else:
                for name in exports.names():
                    raw = name.encode()
                    _reply(writer, option, REP_SERVER, struct.pack(">I", len(raw)) + raw)
                _reply(writer, option, REP_ACK)
        elif option in (OPT_INFO, OPT_GO):
            handle = await _info_or_go(writer, option, data, exports)
            if handle is not None:
                return handle
        else:
            _reply(writer, option, REP_ERR_UNSUP, b"not supported")
        await writer.drain()


async def _info_or_go(
    writer: Connection, option: int, data: bytes, exports: Exports
) -> Handle | None:
    if len(data) < 6:
        _reply(writer, option, REP_ERR_INVALID, b"short request")
        return None
    (name_length,) = struct.unpack(">I", data[:4])
    if 4 + name_length + 2 > len(data):
        _reply(writer, option, REP_ERR_INVALID, b"bad name length")
        return None
    name = data[4 : 4 + name_length].decode("utf-8", "replace")
    handle: Handle | None = None
    if option == OPT_GO:
        handle = await exports.open(name)
        size = None if handle is None else handle.size
    else:
        size = await exports.size_of(name)
    if size is None:
        reason = b"unknown export, or it is open already" if option == OPT_GO else b"unknown"
        _reply(writer, option, REP_ERR_UNKNOWN, reason)
        return None
    _reply(writer, option, REP_INFO, struct.pack(">HQH", INFO_EXPORT, size, TRANSMISSION_FLAGS))
    _reply(
        writer,
        option,
        REP_INFO,
        struct.pack(">HIII", INFO_BLOCK_SIZE, 1, exports.preferred_block, MAX_REQUEST),
    )
    _reply(writer, option, REP_ACK)
    await writer.drain()
    return handle


def _reply(writer: Connection, option: int, kind: int, data: bytes = b"") -> None:
    writer.write(OPTION_REPLY.pack(REPLY_MAGIC, option, kind, len(data)) + data)


async def _transmit(reader: Connection, writer: Connection, handle: Handle) -> None:
    slots = asyncio.Semaphore(IN_FLIGHT)
    sending = asyncio.Lock()
    under_way: set[asyncio.Task[None]] = set()
    try:
        while True:
            magic, flags, kind, cookie, offset, length = REQUEST.unpack(
                await reader.readexactly(REQUEST.size)
            )
            if magic != REQUEST_MAGIC:
                raise ProtocolError("bad request magic")
            if kind == CMD_DISC:
                if under_way:
                    await asyncio.wait(under_way)
                await handle.flush()  # QEMU flushes first; a plain client may not
                return
            data: bytes | bytearray | Reception = b""
            if kind == CMD_WRITE:
                if length > MAX_REQUEST:
                    raise ProtocolError(f"a write of {length} bytes")
                place = None if handle.read_only else handle.receive(offset, length)
                if place is None:
                    data = await reader.payload(length)
                else:
                    try:
                        for view in place.views:
                            await reader.payload_into(view)
                    except BaseException:
                        place.release()
                        raise
                    data = place
            await slots.acquire()
            task = asyncio.ensure_future(
                _serve(writer, sending, handle, kind, flags, cookie, offset, length, data)
            )
            under_way.add(task)
            task.add_done_callback(under_way.discard)
            task.add_done_callback(lambda _: slots.release())
    finally:
        if under_way:  # the client went: let what it sent finish before the handle closes
            await asyncio.wait(under_way)


async def _serve(
    writer: Connection,
    sending: asyncio.Lock,
    handle: Handle,
    kind: int,
    flags: int,
    cookie: int,
    offset: int,
    length: int,
    data: bytes | bytearray | Reception,
) -> None:
    """One request, answered when done. A reply goes out under ``sending``, so the
    replies of concurrent requests never interleave; a read's payload goes in slices,
    each waiting for the socket to take the last: the transport copies what the socket
    does not take at once, and a 4 MiB bytes object sliced after a short send is copied
    whole again."""
    fua = bool(flags & CMD_FLAG_FUA)
    error = _check(kind, offset, length, handle.size, handle.read_only)
    payload: bytes | bytearray = b""
    if error and not isinstance(data, bytes | bytearray):
        data.release()  # the size shrank since it was received (it never does today)
    if not error:
        try:
            if kind == CMD_READ:
                payload = await handle.read(offset, length)
            elif kind == CMD_WRITE:
                await handle.write(offset, data, fua)
            elif kind == CMD_FLUSH:
                await handle.flush()
            elif kind in (CMD_TRIM, CMD_WRITE_ZEROES):
                await handle.zero(offset, length, fua)
        except Exception:
            log.exception("NBD request %d at %d+%d failed", kind, offset, length)
            error = errno.EIO
    with contextlib.suppress(ConnectionError):  # the reader notices the client is gone
        async with sending:
            if writer.is_closing():
                return
            writer.write(SIMPLE_REPLY.pack(SIMPLE_REPLY_MAGIC, error, cookie))
            if kind == CMD_READ and not error:
                view = memoryview(payload)
                for start in range(0, len(view), SEND_CHUNK):
                    writer.write(view[start : start + SEND_CHUNK])
                    await writer.drain()
            await writer.drain()


def _check(kind: int, offset: int, length: int, size: int, read_only: bool) -> int:
    """The errno a request gets before it is tried (0: go ahead)."""
    if kind not in (CMD_READ, CMD_WRITE, CMD_FLUSH, CMD_TRIM, CMD_WRITE_ZEROES):
        return errno.EINVAL
    if read_only and kind in (CMD_WRITE, CMD_TRIM, CMD_WRITE_ZEROES):
        return errno.EPERM
    if kind == CMD_FLUSH:
        return 0
    if kind == CMD_READ and length > MAX_REQUEST:
        return errno.EINVAL
    if offset + length > size:
        return errno.ENOSPC if kind in (CMD_WRITE, CMD_WRITE_ZEROES) else errno.EINVAL
    return 0
