"""A tar archive read as it arrives, for Swift's ``extract-archive``: one member at a
time, its data as a stream, never the whole archive (or a whole member) in memory.

Python's ``tarfile`` wants a blocking file; the request body is an async stream. So the
framing is done here, over 512-byte records, and ``tarfile.TarInfo.frombuf`` parses each
header (checksum, ustar prefix, base-256 sizes). The extensions that rename or resize
the next member are applied: POSIX pax headers (``x`` per member, ``g`` global) and GNU
long names (``L``, ``K``). Each of those is read whole, so it is bounded by
``max_header_bytes``: a larger one makes the archive invalid rather than fill memory.

Decompression is incremental and bounded too: each step hands out at most ``CHUNK``
bytes however well the input compresses, so a small gzip of many zeros (a tar bomb)
costs time proportional to what it expands to, never memory.

Errors: :class:`InvalidArchive` for anything that is not a readable tar (bad checksum,
truncated data, a corrupt stream); the caller reports it as Swift does ("Invalid Tar
File: ...").
"""

from __future__ import annotations

import bz2
import tarfile
import zlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

RECORD = 512
CHUNK = 1 << 20
COMPRESSIONS = ("", "gz", "bz2")

# Member types whose header's size counts data that follows it: regular files and
# types this reader does not know (as tarfile does). Links, directories and devices
# carry none whatever their size field says.
_DATA_LESS = {
    tarfile.LNKTYPE,
    tarfile.SYMTYPE,
    tarfile.DIRTYPE,
    tarfile.CHRTYPE,
    tarfile.BLKTYPE,
    tarfile.FIFOTYPE,
}
_REGULAR = {tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE}
_PAX = {tarfile.XHDTYPE, tarfile.SOLARIS_XHDTYPE}


class InvalidArchive(Exception):
    """The body is not a tar archive this reader can follow."""


@dataclass
class Member:
    """One archive entry: its final name and size (extensions applied), and the pax
    records that were given for it (Swift reads ``*.xattr.user.*`` from them)."""

    name: str
    size: int
    regular: bool
    pax: dict[str, str] = field(default_factory=dict)


def decompressor(compression: str) -> Callable[[bytes], list[bytes]]:
    """A function from compressed input to decompressed pieces of at most CHUNK each;
    after the end of the compressed stream, further input is ignored (tar pads)."""
    if compression == "":
        return lambda data: [data] if data else []
    if compression == "gz":
        engine = zlib.decompressobj(16 + zlib.MAX_WBITS)

        def gunzip(data: bytes) -> list[bytes]:
            out = []
            while data and not engine.eof:
                out.append(engine.decompress(data, CHUNK))
                data = engine.unconsumed_tail
            return out

        return gunzip
    if compression == "bz2":
        bunzip = bz2.BZ2Decompressor()

        def bunzip2(data: bytes) -> list[bytes]:
            out = []
            while not bunzip.eof:
                piece = bunzip.decompress(data, CHUNK)
                data = b""
                out.append(piece)
                if bunzip.needs_input:
                    break
            return out

        return bunzip2
    raise ValueError(f"unknown compression {compression!r}")


class TarStream:
    """Members of the archive in ``chunks``; read each member's data (or not) before
    asking for the next, which skips whatever was left of it."""

    def __init__(
        self, chunks: AsyncIterator[bytes], compression: str, max_header_bytes: int
    ) -> None:
        self._chunks = chunks
        self._decompress = decompressor(compression)
        self._pending: list[bytes] = []
        self._buffer = bytearray()
        self._ended = False
        self._left = 0  # data bytes of the current member not yet read
        self._padding = 0  # bytes after them up to the next record
        self._global_pax: dict[str, str] = {}  # pax ``g`` records: every later member
        self.max_header_bytes = max_header_bytes
        self.expanded = 0  # bytes of tar read so far, after decompression

    async def _fill(self, wanted: int) -> None:
        """Buffer at least ``wanted`` bytes, or everything left."""
        while len(self._buffer) < wanted:
            if self._pending:
                self._buffer += self._pending.pop(0)
                continue
            if self._ended:
                return
            try:
                raw = await anext(self._chunks)
            except StopAsyncIteration:
                self._ended = True
                continue
            try:
                self._pending = [piece for piece in self._decompress(raw) if piece]
            except (zlib.error, OSError, EOFError) as error:
                raise InvalidArchive(f"corrupt compressed stream: {error}") from None

    async def _take(self, size: int) -> bytes:
        """Exactly ``size`` bytes (at most CHUNK at a time from callers)."""
        await self._fill(size)
        if len(self._buffer) < size:
            raise InvalidArchive("unexpected end of data")
        out = bytes(self._buffer[:size])
        del self._buffer[:size]
        self.expanded += size
        return out

    async def _skip(self, size: int) -> None:
        while size:
            step = min(size, CHUNK)
            await self._take(step)
            size -= step

    async def data(self) -> AsyncIterator[bytes]:
        """The current member's data, in pieces of at most CHUNK bytes."""
        while self._left:
            piece = await self._take(min(self._left, CHUNK))
            self._left -= len(piece)
            yield piece

    async def _extension(self, size: int) -> bytes:
        if size > self.max_header_bytes:
            limit = self.max_header_bytes
            raise InvalidArchive(f"a member header of {size} bytes (at most {limit})")
        body = await self._take(size)
        await self._skip(-size % RECORD)
        return body

    async def next(self) -> Member | None:
        """The next member (skipping the rest of the previous one); None at the end."""
        await self._skip(self._left + self._padding)
        self._left = self._padding = 0
        pax: dict[str, str] = {}
        long_name: str | None = None
        extension_bytes = 0
        while True:
            await self._fill(RECORD)
            if len(self._buffer) < RECORD:
                if not self._buffer and self.expanded:
                    return None  # some writers omit the two zero records at the end
                raise InvalidArchive("unexpected end of data")
            record = await self._take(RECORD)
            if record == bytes(RECORD):
                return None
            try:
                info = tarfile.TarInfo.frombuf(record, "utf-8", "surrogateescape")
            except tarfile.HeaderError as error:
                raise InvalidArchive(str(error) or "bad header") from None
            if info.size < 0:
                raise InvalidArchive("a negative member size")
            if info.type in _PAX or info.type == tarfile.XGLTYPE:
                extension_bytes += info.size
                records = _pax_records(await self._extension(info.size))
                if info.type == tarfile.XGLTYPE:
                    self._global_pax.update(records)
                else:
                    pax.update(records)
            elif info.type in (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK):
                extension_bytes += info.size
                text = (await self._extension(info.size)).split(b"\0", 1)[0]
                if info.type == tarfile.GNUTYPE_LONGNAME:
                    long_name = text.decode("utf-8", "surrogateescape")
            elif info.type == tarfile.GNUTYPE_SPARSE:
                raise InvalidArchive("GNU sparse members are not supported")
            else:
                break
            if extension_bytes > self.max_header_bytes:
                raise InvalidArchive(f"member headers over {self.max_header_bytes} bytes")
        given = {**self._global_pax, **pax}
        name = given.get("path") or long_name or info.name
        size = info.size
        if "size" in given:
            try:
                size = int(given["size"])
            except ValueError:
                raise InvalidArchive("a pax size that is not a number") from None
            if size < 0:
                raise InvalidArchive("a negative member size")
        if info.type not in _DATA_LESS:
            self._left, self._padding = size, -size % RECORD
        return Member(name=name, size=size, regular=info.type in _REGULAR, pax=pax)


def _pax_records(body: bytes) -> dict[str, str]:
    """POSIX pax records, ``"<length> <key>=<value>\\n"`` each, length counting all."""
    records: dict[str, str] = {}
    at = 0
    while at < len(body):
        if body[at:] == bytes(len(body) - at):
            break  # NUL padding
        space = body.find(b" ", at)
        if space < 0 or not body[at:space].isdigit():
            raise InvalidArchive("a bad pax record")
        length = int(body[at:space])
        end = at + length
        if length <= space - at + 1 or end > len(body) or body[end - 1 : end] != b"\n":
            raise InvalidArchive("a bad pax record")
        key, equals, value = body[space + 1 : end - 1].partition(b"=")
        if not equals:
            raise InvalidArchive("a bad pax record")
        records[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
        at = end
    return records
