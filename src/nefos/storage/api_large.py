"""Swift's large objects in the object-store API: a dynamic one (DLO) names its segments
by an ``X-Object-Manifest`` prefix, a static one (SLO) lists them in a manifest stored as
its data (``PUT ?multipart-manifest=put``: parsed here, checked and stored by
``nefos.storage.manifests``). Reads and copies resolve both in the service
(``nefos.storage.bodies``), as the caller;
``DELETE ?multipart-manifest=delete`` removes an SLO with its segments.

An SLO segment may be a manifest itself, a byte ``range`` of its segment, or inline
``data`` (base64); the SLO's ETag is Swift's MD5 of the segments' ETags
(``etag:first-last;`` for a range).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any
from urllib.parse import quote

import orjson
from starlette.responses import Response

from nefos.core import errors
from nefos.core.faults import json_response
from nefos.storage.bodies import Body
from nefos.storage.large import SloDeleted
from nefos.storage.manifests import InlineSegment, Manifest, NamedSegment, Segment
from nefos.storage.service import Namespace, ObjectRecord
from nefos.storage.swift import (
    MAX_MANIFEST_BODY,
    Call,
    content_type_of,
    read_body,
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


def manifest_of(call: Call) -> Manifest:
    """``PUT ?multipart-manifest=put``: the manifest's body, parsed into its segments
    when the service asks (after the caller's right to write is known)."""

    async def segments() -> list[Segment]:
        try:
            document = orjson.loads(await read_body(call, MAX_MANIFEST_BODY))
        except orjson.JSONDecodeError:
            raise errors.InvalidInput("The manifest is not JSON") from None
        if not isinstance(document, list):
            raise errors.InvalidInput("A manifest is a list of segments")
        return [_segment(item) for item in document]

    return Manifest(segments, content_type_of(call), call.headers.get("etag"))


def _segment(segment: object) -> Segment:
    if isinstance(segment, dict) and set(segment) == {"data"}:
        if not isinstance(segment["data"], str):
            raise errors.InvalidInput("A data segment is base64")
        try:
            data = base64.b64decode(segment["data"], validate=True)
        except (binascii.Error, ValueError):
            raise errors.InvalidInput("A data segment is base64") from None
        if not data:
            raise errors.InvalidInput("A data segment holds at least one byte")
        return InlineSegment(data)
    if not isinstance(segment, dict) or not isinstance(segment.get("path"), str):
        raise errors.InvalidInput("Each segment has a path /<container>/<object> or data")
    unknown = set(segment) - {"path", "etag", "size_bytes", "range"}
    if unknown:
        raise errors.InvalidInput(f"Unknown segment keys: {sorted(unknown)}")
    path = segment["path"]
    wanted_etag = segment.get("etag")
    wanted_size = segment.get("size_bytes")
    wanted_range = segment.get("range")
    if not isinstance(wanted_etag, str | None) or not isinstance(wanted_range, str | None):
        raise errors.InvalidInput(f"Segment {path}: etag and range are strings")
    if wanted_size is not None and (
        isinstance(wanted_size, bool) or not isinstance(wanted_size, int)
    ):
        raise errors.InvalidInput(f"Segment {path}: size_bytes is a byte count")
    try:
        container, name = source_path(quote(path), "Segment path")
    except errors.PreconditionFailed as error:
        raise errors.InvalidInput(error.message) from None
    return NamedSegment(path, container, name, wanted_etag, wanted_size, wanted_range)


def slo_deleted(call: Call, done: SloDeleted) -> Response:
    """Swift's answer to ``DELETE ?multipart-manifest=delete``: what went, as its bulk
    delete says it (JSON when asked for, else text)."""
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
