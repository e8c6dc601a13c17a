"""A small NBD client for tests: what QEMU does on the wire, with control over when
requests go out (the crash test needs to know which flushes were acknowledged).
Written from the protocol's description, independently of the server."""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path

OPT_REPLY_MAGIC = 0x3E889045565A9


class NbdError(Exception):
    pass


class NbdClient:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader = reader
        self.writer = writer
        self.size = 0
        self.flags = 0
        self.block_sizes: tuple[int, int, int] | None = None  # minimum, preferred, maximum
        self.cookie = 0

    @classmethod
    async def connect(cls, socket_path: Path | str, export: str) -> NbdClient:
        reader, writer = await asyncio.open_unix_connection(str(socket_path))
        client = cls(reader, writer)
        await client._go(export)
        return client

    async def _go(self, export: str) -> None:
        hello = await self.reader.readexactly(18)
        if hello[:16] != b"NBDMAGICIHAVEOPT":
            raise NbdError(f"not a newstyle server: {hello!r}")
        self.writer.write(struct.pack(">I", 1 | 2))  # fixed newstyle, no zeroes
        # Ask for structured replies first, as QEMU does: it must be refused cleanly.
        self._option(8, b"")
        kind, _ = await self._option_reply(8)
        if kind != (1 << 31) + 1:
            raise NbdError(f"STRUCTURED_REPLY answered {kind:#x}")
        name = export.encode()
        self._option(7, struct.pack(">I", len(name)) + name + struct.pack(">H", 0))
        while True:
            kind, data = await self._option_reply(7)
            if kind == 1:
                return
            if kind == 3:
                (info,) = struct.unpack(">H", data[:2])
                if info == 0:
                    self.size, self.flags = struct.unpack(">QH", data[2:12])
                elif info == 3:
                    self.block_sizes = struct.unpack(">III", data[2:14])
                continue
            raise NbdError(f"GO refused: {kind:#x} {data!r}")

    def _option(self, option: int, data: bytes) -> None:
        self.writer.write(b"IHAVEOPT" + struct.pack(">II", option, len(data)) + data)

    async def _option_reply(self, option: int) -> tuple[int, bytes]:
        magic, got, kind, length = struct.unpack(">QIII", await self.reader.readexactly(20))
        if magic != OPT_REPLY_MAGIC or got != option:
            raise NbdError("bad option reply")
        return kind, await self.reader.readexactly(length)

    async def _request(
        self, kind: int, offset: int, length: int, data: bytes = b"", flags: int = 0
    ) -> bytes:
        self.cookie += 1
        header = struct.pack(">IHHQQI", 0x25609513, flags, kind, self.cookie, offset, length)
        self.writer.write(header + data)
        await self.writer.drain()
        magic, error, cookie = struct.unpack(">IIQ", await self.reader.readexactly(16))
        if magic != 0x67446698 or cookie != self.cookie:
            raise NbdError("bad reply")
        if error:
            raise NbdError(f"error {error}")
        return await self.reader.readexactly(length) if kind == 0 else b""

    async def pipeline(self, requests: list[tuple[int, int, bytes]]) -> dict[int, bytes]:
        """Send every ``(kind, offset, data or length)`` request before reading any
        reply, then take the replies in whatever order they come (NBD matches them by
        cookie). Each request's answer by its index: a read's bytes, else b""."""
        sent: dict[int, tuple[int, int, int]] = {}
        for index, (kind, offset, body) in enumerate(requests):
            self.cookie += 1
            length = len(body) if isinstance(body, bytes) else body
            data = body if kind == 1 else b""
            header = struct.pack(">IHHQQI", 0x25609513, 0, kind, self.cookie, offset, length)
            self.writer.write(header + data)
            sent[self.cookie] = (index, kind, length)
        await self.writer.drain()
        answers: dict[int, bytes] = {}
        self.order: list[int] = []  # the indexes in the order their replies came
        while sent:
            magic, error, cookie = struct.unpack(">IIQ", await self.reader.readexactly(16))
            if magic != 0x67446698 or cookie not in sent:
                raise NbdError("bad reply")
            index, kind, length = sent.pop(cookie)
            if error:
                raise NbdError(f"error {error} for request {index}")
            answers[index] = await self.reader.readexactly(length) if kind == 0 else b""
            self.order.append(index)
        return answers

    async def read(self, offset: int, length: int) -> bytes:
        return await self._request(0, offset, length)

    async def write(self, offset: int, data: bytes, fua: bool = False) -> None:
        await self._request(1, offset, len(data), data, flags=1 if fua else 0)

    async def flush(self) -> None:
        await self._request(3, 0, 0)

    async def trim(self, offset: int, length: int) -> None:
        await self._request(4, offset, length)

    async def write_zeroes(self, offset: int, length: int) -> None:
        await self._request(6, offset, length)

    async def close(self) -> None:
        self.writer.write(struct.pack(">IHHQQI", 0x25609513, 0, 2, 0, 0, 0))
        await self.writer.drain()
        self.writer.close()
