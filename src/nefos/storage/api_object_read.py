"""The object level's reads: HEAD and GET on
``/object-store/v1/<account>/<container>/<object>``, and how an object is served
(conditional requests, ranges, multipart byteranges), public links included.

Pithos adds ``?version`` (a version number, or ``list``) and ``?hashmap``; a large
object serves its segments' data, or with ``multipart-manifest=get`` its own.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import AsyncIterator
from urllib.parse import quote
from xml.sax.saxutils import quoteattr

import orjson
from fastapi import Request
from starlette.responses import Response, StreamingResponse

from nefos.blocks import BLOCK_SIZE
from nefos.core import errors, http
from nefos.core.dialects import public_path
from nefos.core.faults import json_response
from nefos.storage import sharing
from nefos.storage.api_large import as_put, body_of, read_all
from nefos.storage.bodies import Body
from nefos.storage.service import DELETE_AT, Namespace, ObjectRecord, ObjectSharing
from nefos.storage.swift import (
    DISPOSITION,
    ENCODING,
    HASH_ALGORITHM,
    MANIFEST,
    PUBLIC_PREFIX,
    SLO,
    SMALL_BODY,
    Call,
    etag_of,
    listing_format,
    meta_out,
    require_access,
    timestamp_headers,
)


def object_headers(call: Call | None, record: ObjectRecord, body: Body) -> dict[str, str]:
    headers = {
        "Content-Type": http.as_sent(record.type or "application/octet-stream"),
        "ETag": body.etag,
        "Accept-Ranges": "bytes",
        **timestamp_headers(record.mtime),
    }
    if call is None:  # public links show only the basics
        return headers
    headers.update(
        {
            "X-Object-Hash": record.hash,
            "X-Object-UUID": str(record.uuid),
            "X-Object-Version": str(record.serial),
            "X-Object-Version-Timestamp": http.epoch(record.mtime),
            "X-Object-Modified-By": record.muser,
            **meta_out(call.request, "X-Object", record.meta),
        }
    )
    if record.meta.get(ENCODING):
        headers["Content-Encoding"] = http.as_sent(record.meta[ENCODING])
    if record.meta.get(DISPOSITION):
        headers["Content-Disposition"] = http.header_value(record.meta[DISPOSITION])
    if record.meta.get(MANIFEST):
        # Its own percent-encoding is syntax, so UTF-8 goes back as UTF-8.
        headers["X-Object-Manifest"] = http.as_sent(record.meta[MANIFEST])
    if record.meta.get(SLO):
        headers["X-Static-Large-Object"] = "True"
    if record.meta.get(DELETE_AT):
        headers["X-Delete-At"] = record.meta[DELETE_AT]
    return headers


def _sharing_headers(call: Call, record: ObjectRecord, seen: ObjectSharing) -> dict[str, str]:
    """Spec §1.5: sharing for the latest version only; public URL to the owner only."""
    headers: dict[str, str] = {}
    shared = seen.sharing
    if shared.path is not None:
        headers["X-Object-Sharing"] = shared.header()
        own_path = f"{record.account}/{record.container}/{record.name}"
        if shared.path != own_path:
            headers["X-Object-Shared-By"] = http.header_value(shared.path.split("/", 1)[1])
    if call.owner:
        if seen.public_token:
            public = public_path(call.request, f"{PUBLIC_PREFIX}/{seen.public_token}")
            headers["X-Object-Public"] = call.base_url() + public
    elif seen.access:
        headers["X-Object-Allowed-To"] = seen.access
    return headers


async def object_read(call: Call) -> Response:
    assert call.container is not None and call.name is not None
    await require_access(call, sharing.READ, call.container, call.name)
    if call.query.get("version") == "list":
        versions = await call.storage.versions(call.account, call.container, call.name)
        body = {"versions": [[serial, http.epoch(mtime)] for serial, mtime in versions]}
        fmt = listing_format(call.query, call.headers.get("accept"))
        if fmt == "xml":
            xml = "".join(
                f'<version timestamp="{http.epoch(m)}">{s}</version>' for s, m in versions
            )
            return Response(
                f'<?xml version="1.0" encoding="UTF-8"?><object name={quoteattr(call.name)}>'
                f"{xml}</object>",
                media_type="application/xml",
            )
        return json_response(body)
    raw_version = call.query.get("version")
    version = http.version_number(raw_version, "version")
    seen = None
    if version is None:
        record, seen = await call.storage.get_object_shared(
            call.user, call.account, call.container, call.name
        )
    else:
        record = await call.storage.get_object(call.account, call.container, call.name, version)
    if "hashmap" in call.query:
        return await _hashmap_reply(call, record)
    if call.query.get("multipart-manifest") == "get" and record.meta.get(SLO):
        data = await read_all(call.storage, record)
        headers = object_headers(call, record, Body.whole(record))
        headers["X-Static-Large-Object"] = "True"
        if call.query.get("format") == "raw":  # what a multipart-manifest=put would take
            data = orjson.dumps([as_put(segment) for segment in orjson.loads(data)])
            headers["ETag"] = hashlib.md5(data, usedforsecurity=False).hexdigest()
            return Response(data, 200, headers)
        headers["Content-Type"] = "application/json; charset=utf-8"
        return Response(data, 200, headers)
    if call.query.get("multipart-manifest") == "get":  # a DLO's own data, as written
        body = Body.whole(record)
    else:
        body = await body_of(call, record)
    headers = object_headers(call, record, body)
    if seen is not None:
        headers.update(_sharing_headers(call, record, seen))
    return await serve(call.request, call.storage, record, body, headers)


async def _hashmap_reply(call: Call, record: ObjectRecord) -> Response:
    hashes = await call.storage.hashmap(record) if record.size else []
    body = {
        "block_hash": HASH_ALGORITHM,
        "block_size": BLOCK_SIZE,
        "bytes": record.size,
        "hashes": hashes,
    }
    headers = object_headers(call, record, Body.whole(record))
    headers.pop("Content-Type")
    if http.check_preconditions(call.headers, etag_of(record), record.mtime, reading=True):
        return Response(status_code=304, headers=headers)
    if listing_format(call.query, None) == "xml":
        inner = "".join(f"<hash>{h}</hash>" for h in hashes)
        xml = (
            f'<?xml version="1.0" encoding="UTF-8"?><object name={quoteattr(record.name)} '
            f'bytes="{record.size}" block_size="{BLOCK_SIZE}" block_hash="{HASH_ALGORITHM}">'
            f"{inner}</object>"
        )
        return Response(xml, 200, headers, media_type="application/xml")
    return json_response(body, 200, headers)


async def _primed(stream: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The stream with its first chunk read already: a large object whose first segment
    cannot be read (gone, changed, not the caller's) is refused with its own status
    before the reply starts; a later one can only cut the reply short."""
    first = await anext(stream, None)

    async def rest() -> AsyncIterator[bytes]:
        if first is not None:
            yield first
        async for chunk in stream:
            yield chunk

    return rest()


async def serve(
    request: Request,
    storage: Namespace,
    record: ObjectRecord,
    body: Body,
    headers: dict[str, str],
) -> Response:
    """Conditional requests, ranges and the body (or just the headers for HEAD)."""
    try:
        if http.check_preconditions(request.headers, body.etag, record.mtime, reading=True):
            headers.pop("Content-Type", None)
            return Response(status_code=304, headers=headers)
        ranges = None
        if http.range_applies(request.headers, body.etag, record.mtime):
            ranges = http.parse_ranges(request.headers.get("range"), body.size)
    except (errors.PreconditionFailed, errors.RangeNotSatisfiable) as refusal:
        # Swift's 412 and 416 still describe the object, so a client can tell why.
        described = {k: v for k, v in headers.items() if k != "Content-Type"}
        refusal.headers = {**described, **(refusal.headers or {})}
        raise
    disposition = request.query_params.get("disposition-type")
    if disposition in ("inline", "attachment"):
        filename = quote(record.name.rsplit("/", 1)[-1])
        headers["Content-Disposition"] = f"{disposition}; filename*=UTF-8''{filename}"
    head = request.method == "HEAD"
    if ranges is None:
        headers["Content-Length"] = str(body.size)
        if head or body.size == 0:
            return Response(status_code=200, headers=headers)
        stream = storage.read_body(body, 0, body.size)
        if body.size <= SMALL_BODY:  # read whole: a streamed reply costs more than it
            return Response(b"".join([chunk async for chunk in stream]), 200, headers)
        return StreamingResponse(await _primed(stream), 200, headers)
    if len(ranges) == 1:
        start, end = ranges[0]
        headers["Content-Range"] = http.content_range(start, end, body.size)
        headers["Content-Length"] = str(end - start)
        if head:
            return Response(status_code=206, headers=headers)
        return StreamingResponse(await _primed(storage.read_body(body, start, end)), 206, headers)
    boundary = secrets.token_hex(16)
    content_type = headers.pop("Content-Type")
    preambles = [
        (
            f"--{boundary}\r\nContent-Type: {content_type}\r\n"
            f"Content-Range: {http.content_range(start, end, body.size)}\r\n\r\n"
        ).encode("latin-1")
        for start, end in ranges
    ]
    closing = f"--{boundary}--\r\n".encode()
    length = sum(
        len(p) + (end - start) + 2 for p, (start, end) in zip(preambles, ranges, strict=True)
    )
    headers["Content-Length"] = str(length + len(closing))
    headers["Content-Type"] = f"multipart/byteranges; boundary={boundary}"
    if head:
        return Response(status_code=206, headers=headers)

    async def parts() -> AsyncIterator[bytes]:
        for preamble, (start, end) in zip(preambles, ranges, strict=True):
            yield preamble
            async for chunk in storage.read_body(body, start, end):
                yield chunk
            yield b"\r\n"
        yield closing

    return StreamingResponse(parts(), 206, headers)
