"""A static large object's manifest PUT (Swift's ``?multipart-manifest=put``), checked and
stored as the caller asks it.

The manifest is stored as the object's data and resolved on read (``bodies``); its
segments stay ordinary objects of the same account, each of which the caller must be
able to read now. Its size, ETag and nesting depth are stored with it, so a HEAD expands
nothing and a GET never nests deeper than allowed. A segment is inline data, or an
object (a manifest itself, or a byte range of one); the SLO's ETag is Swift's MD5 of the
segments' ETags (``etag:first-last;`` for a range).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson

from nefos.core import errors, http
from nefos.core.config import Settings
from nefos.storage import sharing
from nefos.storage.large import SLO, SLO_BYTES, SLO_DEPTH, SLO_ETAG
from nefos.storage.permissions import Permissions
from nefos.storage.reads import Reader
from nefos.storage.records import MAX_FILE_SIZE, ObjectRecord, etag_of
from nefos.storage.writes import Writer


@dataclass(frozen=True)
class InlineSegment:
    data: bytes


@dataclass(frozen=True)
class NamedSegment:
    """An object of the manifest's account, as the manifest names it (``path``)."""

    path: str
    container: str
    name: str
    etag: str | None = None
    size: int | None = None
    byte_range: str | None = None  # "first-last", as Swift's segment ``range``


Segment = InlineSegment | NamedSegment


@dataclass(frozen=True)
class Manifest:
    """``segments`` reads and parses the request's body: it is called once the caller
    is known to be allowed to write, so nobody else makes the server read a manifest."""

    segments: Callable[[], Awaitable[list[Segment]]]
    content_type: str
    etag: str | None = None  # the client's ETag of the whole, checked


class Manifests:
    def __init__(
        self, settings: Settings, reader: Reader, writer: Writer, permissions: Permissions
    ) -> None:
        self.settings = settings
        self.reader = reader
        self.writer = writer
        self.permissions = permissions

    async def put_slo(
        self,
        user: str,
        account: str,
        container: str,
        name: str,
        manifest: Manifest,
        meta: dict[str, str],
    ) -> ObjectRecord:
        limits = self.settings.storage
        segments = await manifest.segments()
        if not segments or len(segments) > limits.slo_max_segments:
            raise errors.InvalidInput(f"A manifest lists 1 to {limits.slo_max_segments} segments")
        stored: list[dict[str, Any]] = []
        etags = []
        total = 0
        depth = 1
        for segment in segments:
            if isinstance(segment, InlineSegment):
                stored.append({"data": base64.b64encode(segment.data).decode()})
                etags.append(hashlib.md5(segment.data, usedforsecurity=False).hexdigest())
                total += len(segment.data)
                continue
            if (segment.container, segment.name) == (container, name):
                raise errors.InvalidInput("A manifest cannot be a segment of itself")
            await self.permissions.require(
                user, account, segment.container, segment.name, sharing.READ
            )
            try:
                part = await self.reader.get_object(account, segment.container, segment.name)
            except errors.NotFound:
                raise errors.InvalidInput(f"Segment {segment.path} does not exist") from None
            entry, etag, length, nested_depth = _entry(segment, part, limits.slo_max_depth)
            depth = max(depth, nested_depth)
            etags.append(etag)
            stored.append(entry)
            total += length
        slo_etag = hashlib.md5("".join(etags).encode(), usedforsecurity=False).hexdigest()
        if manifest.etag and manifest.etag.strip('"') != slo_etag:
            raise errors.ChecksumMismatch("The ETag given is not the manifest's")
        markers = {SLO: "1", SLO_BYTES: str(total), SLO_ETAG: slo_etag, SLO_DEPTH: str(depth)}
        data = orjson.dumps(stored)

        async def chunks() -> AsyncIterator[bytes]:
            yield data

        return await self.writer.put_object(
            account, container, name, chunks(),
            content_type=manifest.content_type, meta={**meta, **markers}, muser=user,
            max_size=MAX_FILE_SIZE,
        )  # fmt: skip


def _entry(
    segment: NamedSegment, part: ObjectRecord, max_depth: int
) -> tuple[dict[str, Any], str, int, int]:
    """The stored entry of a segment, the ETag it adds, its length and the depth the
    manifest reaches through it."""
    nested = bool(part.meta.get(SLO))
    # A segment that is a manifest itself stands for its data, as its HEAD says.
    etag = part.meta[SLO_ETAG] if nested else etag_of(part)
    size = int(part.meta[SLO_BYTES]) if nested else part.size
    depth = 1
    if nested:
        depth = int(part.meta.get(SLO_DEPTH) or 1) + 1
        if depth > max_depth:
            raise errors.InvalidInput(f"Static large objects nest at most {max_depth} deep")
    if segment.etag and segment.etag.strip('"') != etag:
        raise errors.InvalidInput(f"Segment {segment.path}: ETag mismatch")
    if segment.size is not None and segment.size != size:
        raise errors.InvalidInput(f"Segment {segment.path}: size mismatch")
    entry: dict[str, Any] = {
        "name": f"/{segment.container}/{segment.name}",
        "hash": etag,
        "bytes": size,
        "content_type": part.type,
        "last_modified": http.iso(part.mtime),
    }
    length = size
    added = etag
    if segment.byte_range is not None:
        try:
            ranges = http.parse_ranges(f"bytes={segment.byte_range}", size)
        except errors.RangeNotSatisfiable:
            ranges = None
        if ranges is None or len(ranges) != 1:
            raise errors.InvalidInput(f"Segment {segment.path}: bad range")
        start, end = ranges[0]
        length = end - start
        entry["range"] = f"{start}-{end - 1}"
        added = f"{etag}:{entry['range']};"
    if length == 0:
        raise errors.InvalidInput(f"Segment {segment.path} is empty")
    if nested:
        entry["sub_slo"] = True
    return entry, added, length, depth
