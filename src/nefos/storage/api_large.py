"""Swift's large objects in the object-store API: a dynamic one (DLO) names its segments
by an ``X-Object-Manifest`` prefix, a static one (SLO) lists them in a manifest stored as
its data (``PUT ?multipart-manifest=put``). Both are resolved at read into a ``Body`` of
pieces; ``DELETE ?multipart-manifest=delete`` removes an SLO with its segments. Kept
apart from the object level, whose reads, writes and copies all use it.

An SLO segment may be a manifest itself, a byte ``range`` of its segment, or inline
``data`` (base64); the SLO's ETag is Swift's MD5 of the segments' ETags
(``etag:first-last;`` for a range).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

import orjson
from starlette.responses import Response

from nefos.core import errors
from nefos.core.faults import json_response
from nefos.storage import http, sharing
from nefos.storage.service import Namespace, ObjectRecord
from nefos.storage.swift import (
    MANIFEST,
    MAX_MANIFEST_BODY,
    MAX_SLO_SEGMENTS,
    SLO,
    SLO_BYTES,
    SLO_ETAG,
    Call,
    content_type_of,
    etag_of,
    read_body,
    require_access,
    source_path,
)

# A piece of a body: bytes [start, end) of an object, or of data a manifest holds inline.
Piece = tuple[ObjectRecord | bytes, int, int]


@dataclass
class Body:
    """What a read serves: one object, or the segments of a large object."""

    size: int
    etag: str
    parts: list[Piece]


async def body_of(call: Call, record: ObjectRecord) -> Body:
    """Resolve large-object manifests into their segments (Swift's DLO and SLO)."""
    if record.meta.get(SLO):
        parts = await _slo_parts(call.storage, record, depth=0)
        size = sum(end - start for _, start, end in parts)
        return Body(size, f'"{record.meta[SLO_ETAG]}"', parts)
    if record.meta.get(MANIFEST):
        container, _, prefix = record.meta[MANIFEST].lstrip("/").partition("/")
        container = unquote(container)
        prefix = unquote(prefix)
        try:
            entries = await call.storage.list_objects(record.account, container, prefix=prefix)
        except errors.NotFound:
            entries = []
        segments = [
            e
            for e in entries
            if isinstance(e, ObjectRecord)
            and (container, e.name) != (record.container, record.name)
        ]
        etag = hashlib.md5(
            "".join(etag_of(e) for e in segments).encode(), usedforsecurity=False
        ).hexdigest()
        size = sum(e.size for e in segments)
        return Body(size, f'"{etag}"', [(e, 0, e.size) for e in segments])
    return Body(record.size, etag_of(record), [(record, 0, record.size)])


MAX_SLO_DEPTH = 10  # manifests of manifests, as deep as Swift follows them


async def _slo_parts(storage: Namespace, record: ObjectRecord, depth: int) -> list[Piece]:
    """A static large object's data as pieces of ordinary objects: each segment whole
    or its ``range``, a segment that is itself a manifest expanded in turn."""
    if depth > MAX_SLO_DEPTH:
        raise errors.Conflict("Static large objects nest too deep")
    parts: list[Piece] = []
    for segment in orjson.loads(await read_all(storage, record)):
        if "data" in segment:
            data = base64.b64decode(segment["data"])
            parts.append((data, 0, len(data)))
            continue
        container, _, name = segment["name"].lstrip("/").partition("/")
        part = await storage.get_object(record.account, container, name)
        inner: list[Piece] = (
            await _slo_parts(storage, part, depth + 1)
            if part.meta.get(SLO)
            else [(part, 0, part.size)]
        )
        if segment.get("range"):
            size = sum(end - start for _, start, end in inner)
            try:
                ranges = http.parse_ranges(f"bytes={segment['range']}", size) or [(0, size)]
            except errors.RangeNotSatisfiable:
                raise errors.Conflict(f"Segment {segment['name']} changed since") from None
            inner = _slice(inner, *ranges[0])
        parts.extend(inner)
    return parts


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


async def read_all(storage: Namespace, record: ObjectRecord) -> bytes:
    if record.size > MAX_MANIFEST_BODY:
        raise errors.InvalidInput("A manifest is too large")
    return b"".join([chunk async for chunk in storage.read(record)])


async def read_range(storage: Namespace, body: Body, start: int, end: int) -> AsyncIterator[bytes]:
    offset = 0
    for source, first, last in body.parts:
        length = last - first
        if offset + length > start and offset < end:
            lo = max(start - offset, 0) + first
            hi = min(end - offset, length) + first
            if isinstance(source, bytes):
                yield source[lo:hi]
            else:
                async for chunk in storage.read(source, lo, hi):
                    yield chunk
        offset += length
        if offset >= end:
            break


def as_put(segment: dict[str, Any]) -> dict[str, Any]:
    """A stored SLO segment in the form a manifest PUT names it (Swift's ``format=raw``)."""
    if "data" in segment:
        return segment
    put = {"path": segment["name"], "etag": segment["hash"], "size_bytes": segment["bytes"]}
    if "range" in segment:
        put["range"] = segment["range"]
    return put


async def put_slo(call: Call, meta: dict[str, str]) -> ObjectRecord:
    """Swift's static large object: the manifest is stored as the object's data and
    resolved on read; segments stay ordinary objects."""
    assert call.container is not None and call.name is not None
    try:
        segments = orjson.loads(await read_body(call, MAX_MANIFEST_BODY))
    except orjson.JSONDecodeError:
        raise errors.InvalidInput("The manifest is not JSON") from None
    if not isinstance(segments, list) or not segments or len(segments) > MAX_SLO_SEGMENTS:
        raise errors.InvalidInput(f"A manifest lists 1 to {MAX_SLO_SEGMENTS} segments")
    stored = []
    etags = []
    total = 0
    for segment in segments:
        if isinstance(segment, dict) and set(segment) == {"data"}:
            try:
                data = base64.b64decode(str(segment["data"]), validate=True)
            except (binascii.Error, ValueError):
                raise errors.InvalidInput("A data segment is base64") from None
            if not data:
                raise errors.InvalidInput("A data segment holds at least one byte")
            stored.append({"data": base64.b64encode(data).decode()})
            etags.append(hashlib.md5(data, usedforsecurity=False).hexdigest())
            total += len(data)
            continue
        if not isinstance(segment, dict) or not isinstance(segment.get("path"), str):
            raise errors.InvalidInput("Each segment has a path /<container>/<object> or data")
        unknown = set(segment) - {"path", "etag", "size_bytes", "range"}
        if unknown:
            raise errors.InvalidInput(f"Unknown segment keys: {sorted(unknown)}")
        try:
            container, name = source_path(quote(segment["path"]), "Segment path")
        except errors.PreconditionFailed as error:
            raise errors.InvalidInput(error.message) from None
        if (container, name) == (call.container, call.name):
            raise errors.InvalidInput("A manifest cannot be a segment of itself")
        await require_access(call, sharing.READ, container, name)
        try:
            part = await call.storage.get_object(call.account, container, name)
        except errors.NotFound:
            raise errors.InvalidInput(f"Segment {segment['path']} does not exist") from None
        nested = bool(part.meta.get(SLO))
        # A segment that is a manifest itself stands for its data, as its HEAD says.
        etag = part.meta[SLO_ETAG] if nested else etag_of(part)
        size = int(part.meta[SLO_BYTES]) if nested else part.size
        wanted_etag = segment.get("etag")
        if wanted_etag and wanted_etag.strip('"') != etag:
            raise errors.InvalidInput(f"Segment {segment['path']}: ETag mismatch")
        wanted_size = segment.get("size_bytes")
        if wanted_size is not None and wanted_size != size:
            raise errors.InvalidInput(f"Segment {segment['path']}: size mismatch")
        entry: dict[str, Any] = {
            "name": f"/{container}/{name}",
            "hash": etag,
            "bytes": size,
            "content_type": part.type,
            "last_modified": http.iso(part.mtime),
        }
        length = size
        wanted_range = segment.get("range")
        if wanted_range is not None:
            try:
                ranges = (
                    http.parse_ranges(f"bytes={wanted_range}", size)
                    if isinstance(wanted_range, str)
                    else None
                )
            except errors.RangeNotSatisfiable:
                ranges = None
            if ranges is None or len(ranges) != 1:
                raise errors.InvalidInput(f"Segment {segment['path']}: bad range")
            start, end = ranges[0]
            length = end - start
            entry["range"] = f"{start}-{end - 1}"
            etags.append(f"{etag}:{entry['range']};")
        else:
            etags.append(etag)
        if nested:
            entry["sub_slo"] = True
        stored.append(entry)
        total += length
    slo_etag = hashlib.md5("".join(etags).encode(), usedforsecurity=False).hexdigest()
    client_etag = (call.headers.get("etag") or "").strip('"')
    if client_etag and client_etag != slo_etag:
        raise errors.ChecksumMismatch("The ETag given is not the manifest's")
    meta = {**meta, SLO: "1", SLO_BYTES: str(total), SLO_ETAG: slo_etag}
    manifest = orjson.dumps(stored)

    async def data() -> AsyncIterator[bytes]:
        yield manifest

    return await call.storage.put_object(
        call.account,
        call.container,
        call.name,
        data(),
        content_type=content_type_of(call),
        meta=meta,
        muser=call.user,
    )


async def delete_slo(call: Call) -> Response:
    assert call.container is not None and call.name is not None
    record = await call.storage.get_object(call.account, call.container, call.name)
    deleted = not_found = 0

    async def delete_segments(manifest: ObjectRecord, depth: int) -> None:
        """Segments first, a nested manifest's own segments before it."""
        nonlocal deleted, not_found
        if depth > MAX_SLO_DEPTH:
            raise errors.Conflict("Static large objects nest too deep")
        for segment in orjson.loads(await read_all(call.storage, manifest)):
            if "data" in segment:
                continue
            container, _, name = segment["name"].lstrip("/").partition("/")
            try:
                if segment.get("sub_slo"):
                    inner = await call.storage.get_object(call.account, container, name)
                    if inner.meta.get(SLO):
                        await delete_segments(inner, depth + 1)
                await call.storage.delete_object(call.account, container, name, call.user)
                deleted += 1
            except errors.NotFound:
                not_found += 1

    if record.meta.get(SLO):
        await delete_segments(record, 0)
    await call.storage.delete_object(call.account, call.container, call.name, call.user)
    deleted += 1
    result = {
        "Number Deleted": deleted,
        "Number Not Found": not_found,
        "Response Status": "200 OK",
        "Response Body": "",
        "Errors": [],
    }
    if "json" in (call.headers.get("accept") or ""):
        return json_response(result)
    text = "".join(f"{key}: {value}\n" for key, value in result.items() if key != "Errors")
    return Response(text, 200, media_type="text/plain")
