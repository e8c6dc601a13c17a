"""What a read or a copy of an object takes: its own data, or the segments of a Swift
large object, resolved as the caller at the time of the request.

A dynamic large object (``MANIFEST``: a container and prefix) is the objects under that
prefix, each of which the caller must be able to read. A static one (``SLO``) lists its
segments in its data; it is expanded only as far as it is read, so its size and ETag
come from what its PUT stored, and a segment is checked when it is reached. An SLO
segment may be a manifest itself, a byte ``range`` of its segment, or inline ``data``
(base64). Reads and copies both come here, so a copy can never take bytes its caller
could not read.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import orjson

from nefos.core import errors
from nefos.core.config import Settings
from nefos.storage import sharing
from nefos.storage.large import (
    MANIFEST,
    SLO,
    SLO_BYTES,
    SLO_ETAG,
    LargeObjects,
    SegmentRights,
    read_manifest,
)
from nefos.storage.listings import Lister
from nefos.storage.reads import Reader
from nefos.storage.records import ObjectRecord, etag_of

# A piece of a body: bytes [start, end) of an object, or of data a manifest holds inline.
Piece = tuple[ObjectRecord | bytes, int, int]


@dataclass
class Body:
    """The data a read serves, as pieces: ``pieces(start, end)`` yields those that make
    bytes [start, end)."""

    size: int
    etag: str
    pieces: Callable[[int, int], AsyncIterator[Piece]]

    @classmethod
    def of_pieces(cls, size: int, etag: str, parts: list[Piece]) -> Body:
        async def pieces(start: int, end: int) -> AsyncIterator[Piece]:
            for piece in _slice(parts, start, end):
                yield piece

        return cls(size, etag, pieces)

    @classmethod
    def whole(cls, record: ObjectRecord) -> Body:
        """The object's own data, as written (a manifest's too)."""
        return cls.of_pieces(record.size, etag_of(record), [(record, 0, record.size)])


def segment_length(segment: dict[str, Any]) -> int:
    """How many bytes a stored SLO segment adds to the whole."""
    if "data" in segment:
        return len(base64.b64decode(segment["data"]))
    if "range" in segment:
        first, _, last = segment["range"].partition("-")
        return int(last) - int(first) + 1
    return int(segment["bytes"])


def _slice(parts: list[Piece], start: int, end: int) -> list[Piece]:
    """The pieces that make bytes [start, end) of the data ``parts`` make."""
    sliced: list[Piece] = []
    offset = 0
    for source, first, last in parts:
        length = last - first
        lo, hi = max(start - offset, 0), min(end - offset, length)
        if lo < hi:
            sliced.append((source, first + lo, first + hi))
        offset += length
    return sliced


class Bodies:
    """Large objects resolved for a caller (``user`` None: an anonymous reader of a
    public link, who reads only segments published themselves)."""

    def __init__(
        self, settings: Settings, reader: Reader, lister: Lister, large: LargeObjects
    ) -> None:
        self.settings = settings
        self.reader = reader
        self.lister = lister
        self.large = large

    async def body(self, user: str | None, record: ObjectRecord) -> Body:
        rights = self.large.rights(user, record.account)
        if record.meta.get(SLO):
            size = int(record.meta[SLO_BYTES])
            max_depth = self.settings.storage.slo_max_depth

            async def pieces(start: int, end: int) -> AsyncIterator[Piece]:
                async for piece in _slo_pieces(rights, record, start, end, 0, max_depth):
                    yield piece

            return Body(size, f'"{record.meta[SLO_ETAG]}"', pieces)
        if record.meta.get(MANIFEST):
            return await self._dynamic(rights, record)
        return Body.whole(record)

    async def _dynamic(self, rights: SegmentRights, record: ObjectRecord) -> Body:
        container, _, prefix = record.meta[MANIFEST].lstrip("/").partition("/")
        container = unquote(container)
        prefix = unquote(prefix)
        try:
            entries = await self.lister.list_objects(record.account, container, prefix=prefix)
        except errors.NotFound:
            entries = []
        segments = [
            e
            for e in entries
            if isinstance(e, ObjectRecord)
            and (container, e.name) != (record.container, record.name)
        ]
        for segment in segments:  # the listing is the caller's, as in Swift
            await rights.require(sharing.READ, container, segment.name)
        etag = hashlib.md5(
            "".join(etag_of(e) for e in segments).encode(), usedforsecurity=False
        ).hexdigest()
        size = sum(e.size for e in segments)
        return Body.of_pieces(size, f'"{etag}"', [(e, 0, e.size) for e in segments])

    async def read(self, body: Body, start: int, end: int) -> AsyncIterator[bytes]:
        """Bytes [start, end) of ``body``."""
        async for source, first, last in body.pieces(start, end):
            if isinstance(source, bytes):
                yield source[first:last]
            else:
                async for chunk in self.reader.read(source, first, last):
                    yield chunk

    async def require_segments(self, user: str, account: str, manifest: ObjectRecord) -> None:
        """A manifest that lands in ``account`` (a copy) names objects there: the caller
        must be able to read each, as when a manifest is PUT."""
        rights = self.large.rights(user, account)
        for segment in orjson.loads(await read_manifest(self.reader, manifest)):
            if "data" not in segment:
                container, _, name = segment["name"].lstrip("/").partition("/")
                await rights.require(sharing.READ, container, name)


async def _slo_pieces(
    rights: SegmentRights,
    manifest: ObjectRecord,
    start: int,
    end: int,
    depth: int,
    max_depth: int,
) -> AsyncIterator[Piece]:
    """Bytes [start, end) of a static large object, as pieces of ordinary objects:
    segments before ``start`` are skipped by the sizes the manifest stored, and a
    segment that is a manifest itself is read only when its bytes are reached. A
    segment the caller may not read, or that changed size since, ends the read."""
    if depth >= max_depth:
        raise errors.Conflict("Static large objects nest too deep")
    offset = 0
    for segment in orjson.loads(await read_manifest(rights.reader, manifest)):
        length = segment_length(segment)
        lo, hi = max(start - offset, 0), min(end - offset, length)
        offset += length
        if lo >= hi:
            if offset >= end:
                return
            continue
        if "data" in segment:
            yield base64.b64decode(segment["data"]), lo, hi
            continue
        container, _, name = segment["name"].lstrip("/").partition("/")
        await rights.require(sharing.READ, container, name)
        part = await rights.reader.get_object(manifest.account, container, name)
        nested = bool(part.meta.get(SLO))
        size = int(part.meta[SLO_BYTES]) if nested else part.size
        if size != segment["bytes"]:
            raise errors.Conflict(f"Segment {segment['name']} changed since")
        first = int(segment["range"].partition("-")[0]) if "range" in segment else 0
        if nested:
            inner = _slo_pieces(rights, part, first + lo, first + hi, depth + 1, max_depth)
            async for piece in inner:
                yield piece
        else:
            yield part, first + lo, first + hi
        if offset >= end:
            return
