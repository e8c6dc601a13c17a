"""Swift's large objects in the object-store API: a dynamic one (DLO) names its segments
by an ``X-Object-Manifest`` prefix, a static one (SLO) lists them in a manifest stored as
its data (``PUT ?multipart-manifest=put``, checked and stored here). Reads and copies
resolve both in the service (``nefos.storage.bodies``), as the caller;
``DELETE ?multipart-manifest=delete`` removes an SLO with its segments.

An SLO segment may be a manifest itself, a byte ``range`` of its segment, or inline
``data`` (base64); the SLO's ETag is Swift's MD5 of the segments' ETags
(``etag:first-last;`` for a range).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import orjson
from starlette.responses import Response

from nefos.core import errors, http
from nefos.core.faults import json_response
from nefos.storage import sharing
from nefos.storage.bodies import Body
from nefos.storage.service import Namespace, ObjectRecord
from nefos.storage.swift import (
    MAX_MANIFEST_BODY,
    SLO,
    SLO_BYTES,
    SLO_DEPTH,
    SLO_ETAG,
    Call,
    content_type_of,
    etag_of,
    read_body,
    require_access,
    source_path,
)


async def body_of(call: Call, record: ObjectRecord) -> Body:
    """What a read of ``record`` serves, large objects resolved as the caller."""
    return await call.storage.body(None if call.credentials is None else call.user, record)


async def read_all(storage: Namespace, record: ObjectRecord) -> bytes:
    if record.size > MAX_MANIFEST_BODY:
        raise errors.InvalidInput("A manifest is too large")
    return b"".join([chunk async for chunk in storage.read(record)])


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
    resolved on read; segments stay ordinary objects. Its size, ETag and nesting depth
    are stored with it, so HEAD expands nothing and GET never nests deeper than allowed."""
    assert call.container is not None and call.name is not None
    limits = call.storage.settings.storage
    try:
        segments = orjson.loads(await read_body(call, MAX_MANIFEST_BODY))
    except orjson.JSONDecodeError:
        raise errors.InvalidInput("The manifest is not JSON") from None
    if not isinstance(segments, list) or not segments or len(segments) > limits.slo_max_segments:
        raise errors.InvalidInput(f"A manifest lists 1 to {limits.slo_max_segments} segments")
    stored = []
    etags = []
    total = 0
    depth = 1
    for segment in segments:
        if isinstance(segment, dict) and set(segment) == {"data"}:
            if not isinstance(segment["data"], str):
                raise errors.InvalidInput("A data segment is base64")
            try:
                data = base64.b64decode(segment["data"], validate=True)
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
        wanted_etag = segment.get("etag")
        wanted_size = segment.get("size_bytes")
        wanted_range = segment.get("range")
        if not isinstance(wanted_etag, str | None) or not isinstance(wanted_range, str | None):
            raise errors.InvalidInput(f"Segment {segment['path']}: etag and range are strings")
        if wanted_size is not None and (
            isinstance(wanted_size, bool) or not isinstance(wanted_size, int)
        ):
            raise errors.InvalidInput(f"Segment {segment['path']}: size_bytes is a byte count")
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
        if nested:
            depth = max(depth, int(part.meta.get(SLO_DEPTH) or 1) + 1)
            if depth > limits.slo_max_depth:
                raise errors.InvalidInput(
                    f"Static large objects nest at most {limits.slo_max_depth} deep"
                )
        if wanted_etag and wanted_etag.strip('"') != etag:
            raise errors.InvalidInput(f"Segment {segment['path']}: ETag mismatch")
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
        if wanted_range is not None:
            try:
                ranges = http.parse_ranges(f"bytes={wanted_range}", size)
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
        if length == 0:
            raise errors.InvalidInput(f"Segment {segment['path']} is empty")
        if nested:
            entry["sub_slo"] = True
        stored.append(entry)
        total += length
    slo_etag = hashlib.md5("".join(etags).encode(), usedforsecurity=False).hexdigest()
    client_etag = (call.headers.get("etag") or "").strip('"')
    if client_etag and client_etag != slo_etag:
        raise errors.ChecksumMismatch("The ETag given is not the manifest's")
    markers = {SLO: "1", SLO_BYTES: str(total), SLO_ETAG: slo_etag, SLO_DEPTH: str(depth)}
    manifest = orjson.dumps(stored)

    async def data() -> AsyncIterator[bytes]:
        yield manifest

    return await call.storage.put_object(
        call.account,
        call.container,
        call.name,
        data(),
        content_type=content_type_of(call),
        meta={**meta, **markers},
        muser=call.user,
    )


async def delete_slo(call: Call) -> Response:
    """The manifest and its segments (the storage service's ``delete_slo``, which
    checks the caller's rights on every object before it deletes any)."""
    assert call.container is not None and call.name is not None
    done = await call.storage.delete_slo(call.user, call.account, call.container, call.name)
    deleted, not_found = done.deleted, done.not_found
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
