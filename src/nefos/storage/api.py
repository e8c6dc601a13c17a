"""The object-store API: OpenStack Swift's, with Pithos's extensions (spec §1).

``/object-store/v1/<account>[/<container>[/<object>]]``; the account is the owner's
UUID. Names come from the raw request path, so bytes that are not UTF-8 or a ``%00`` are
refused rather than silently replaced. Errors are plain text with the spec's status
codes (``faults.swift_fault``). What every level shares (the call, limits, listings, who
may do what) is in ``swift``.

Swift and Pithos differ in two places; we take the one that keeps both kinds of client
working: account and container POST merge metadata (Swift; kamaki always sends
``update``, which merges too), object POST replaces user metadata unless ``update`` is
given (both).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import time
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import quote

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response, StreamingResponse

from nefos.core import errors
from nefos.core.faults import json_response
from nefos.storage import http, sharing
from nefos.storage.api_account import (
    account_forbidden,
    account_get,
    account_head,
    account_post,
)
from nefos.storage.api_container import (
    container_delete,
    container_get,
    container_head,
    container_post,
    container_put,
)
from nefos.storage.api_large import (
    Body,
    _as_put,
    _body,
    _delete_slo,
    _put_slo,
    _read_all,
    _read_range,
)
from nefos.storage.blocks import BLOCK_SIZE
from nefos.storage.service import (
    DELETE_AT,
    Namespace,
    ObjectRecord,
    ObjectSharing,
    check_container_name,
    check_object_name,
)
from nefos.storage.swift import (
    DISPOSITION,
    ENCODING,
    HASH_ALGORITHM,
    LARGE_OBJECT_KEYS,
    LISTING_LIMIT,
    MANIFEST,
    MAX_BULK_DELETES,
    MAX_FILE_SIZE,
    MAX_HASHMAP_BODY,
    MAX_MANIFEST_BODY,
    MAX_META_HEADERS,
    MAX_SLO_SEGMENTS,
    PREFIX,
    PUBLIC_PREFIX,
    SLO,
    SLO_BYTES,
    SLO_ETAG,
    SMALL_BODY,
    STORAGE_POLICY,
    SYSTEM_HEADERS,
    TRUE_WORDS,
    Call,
    _content_type,
    _etag,
    _listing,
    _meta_headers,
    _meta_out,
    _read_body,
    _require,
    _source_path,
    _timestamp,
    _until,
)

OBJECT_METHODS = ["GET", "HEAD", "PUT", "POST", "DELETE", "COPY", "MOVE"]

router = APIRouter()


# -- the call --------------------------------------------------------------------------


def _split_path(request: Request) -> tuple[str, str | None, str | None]:
    raw = request.scope.get("raw_path") or request.url.path.encode()
    path = raw.decode("latin-1").split("?", 1)[0][len(PREFIX) + 1 :]
    account, _, rest = path.partition("/")
    container, _, name = rest.partition("/")
    return (
        http.decode_segment(account, "Account"),
        http.decode_segment(container, "Container name") if container else None,
        http.decode_segment(name, "Object name") if name else None,
    )


async def root(request: Request) -> Response:
    """TempAuth-style login (``X-Auth-User``/``X-Auth-Key`` = e-mail or UUID / API
    token or password), or, with a token, the accounts that share with the caller."""
    user = request.headers.get("x-auth-user") or request.headers.get("x-storage-user")
    key = request.headers.get("x-auth-key") or request.headers.get("x-storage-pass")
    identity = request.app.state.identity
    settings = request.app.state.settings
    if user is not None or key is not None:
        if not user or not key:
            raise errors.NotAuthenticated("Give both X-Auth-User and X-Auth-Key")
        found = await identity.password_login(user.split(":")[-1], key)
        try:
            credentials = await identity.authenticate(key)
            token = key
        except errors.NotAuthenticated:
            issued = await identity.issue_token(found, methods=("password",))
            token, credentials = issued.token, await identity.authenticate(issued.token)
        storage_url = f"{settings.endpoint('object-store', PREFIX)}/{found.id}"
        seconds = int((credentials.expires_at - dt.datetime.now(dt.UTC)).total_seconds())
        return Response(
            status_code=200,
            headers={
                "X-Storage-Url": storage_url,
                "X-Auth-Token": token,
                "X-Storage-Token": token,
                "X-Auth-Token-Expires": str(max(seconds, 0)),
            },
        )
    credentials = request.scope.get("nefos.credentials")
    if credentials is None:
        raise request.scope.get("nefos.auth_error") or errors.NotAuthenticated(
            "Authentication required"
        )
    storage: Namespace = request.app.state.engines.storage
    accounts = await storage.shared_with(str(credentials.user_id))
    items = [{"name": name, "last_modified": http.iso(mtime)} for name, mtime in accounts]
    return _listing(request, "accounts", "", items, [name for name, _ in accounts])


async def dispatch(request: Request) -> Response:
    account, container, name = _split_path(request)
    call = Call(
        request=request,
        storage=request.app.state.engines.storage,
        credentials=request.scope.get("nefos.credentials"),
        account=account,
        container=container,
        name=name,
    )
    call.user  # noqa: B018 -- every object-store call needs a caller
    if name is not None:
        check_object_name(name)
        handlers = OBJECT
    elif container is not None:
        check_container_name(container)
        handlers = CONTAINER
    else:
        handlers = ACCOUNT
    handler = handlers.get(request.method)
    if handler is None:
        raise errors.NotAllowedMethod(f"{request.method} is not allowed here")
    return await handler(call)


ACCOUNT: dict[str, Callable[[Call], Any]] = {
    "HEAD": account_head,
    "GET": account_get,
    "POST": account_post,
    "PUT": account_forbidden,
    "DELETE": account_forbidden,
}


CONTAINER: dict[str, Callable[[Call], Any]] = {
    "HEAD": container_head,
    "GET": container_get,
    "PUT": container_put,
    "POST": container_post,
    "DELETE": container_delete,
}


# -- objects: reading ---------------------------------------------------------------------


def _object_headers(call: Call | None, record: ObjectRecord, body: Body) -> dict[str, str]:
    headers = {
        "Content-Type": http.as_sent(record.type or "application/octet-stream"),
        "ETag": body.etag,
        "Accept-Ranges": "bytes",
        **_timestamp(record.mtime),
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
            **_meta_out("X-Object", record.meta),
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
            headers["X-Object-Public"] = f"{call.base_url()}{PUBLIC_PREFIX}/{seen.public_token}"
    elif seen.access:
        headers["X-Object-Allowed-To"] = seen.access
    return headers


async def object_read(call: Call) -> Response:
    assert call.container is not None and call.name is not None
    await _require(call, sharing.READ, call.container, call.name)
    if call.query.get("version") == "list":
        versions = await call.storage.versions(call.account, call.container, call.name)
        body = {"versions": [[serial, http.epoch(mtime)] for serial, mtime in versions]}
        fmt = http.listing_format(call.query, call.headers.get("accept"))
        if fmt == "xml":
            xml = "".join(
                f'<version timestamp="{http.epoch(m)}">{s}</version>' for s, m in versions
            )
            return Response(
                f'<?xml version="1.0" encoding="UTF-8"?><object name="{call.name}">{xml}</object>',
                media_type="application/xml",
            )
        return json_response(body)
    version = call.query.get("version")
    if version is not None and not version.isdigit():
        raise errors.InvalidInput("version is a version number or 'list'")
    seen = None
    if version is None:
        record, seen = await call.storage.get_object_shared(
            call.user, call.account, call.container, call.name
        )
    else:
        record = await call.storage.get_object(
            call.account, call.container, call.name, int(version)
        )
    if "hashmap" in call.query:
        return await _hashmap_reply(call, record)
    if call.query.get("multipart-manifest") == "get" and record.meta.get(SLO):
        data = await _read_all(call.storage, record)
        headers = _object_headers(call, record, Body(record.size, _etag(record), []))
        headers["X-Static-Large-Object"] = "True"
        if call.query.get("format") == "raw":  # what a multipart-manifest=put would take
            data = orjson.dumps([_as_put(segment) for segment in orjson.loads(data)])
            headers["ETag"] = hashlib.md5(data, usedforsecurity=False).hexdigest()
            return Response(data, 200, headers)
        headers["Content-Type"] = "application/json; charset=utf-8"
        return Response(data, 200, headers)
    if call.query.get("multipart-manifest") == "get":  # a DLO's own data, as written
        body = Body(record.size, _etag(record), [(record, 0, record.size)])
    else:
        body = await _body(call, record)
    headers = _object_headers(call, record, body)
    if seen is not None:
        headers.update(_sharing_headers(call, record, seen))
    return await _serve(call.request, call.storage, record, body, headers)


async def _hashmap_reply(call: Call, record: ObjectRecord) -> Response:
    hashes = await call.storage.hashmap(record) if record.size else []
    body = {
        "block_hash": HASH_ALGORITHM,
        "block_size": BLOCK_SIZE,
        "bytes": record.size,
        "hashes": hashes,
    }
    headers = _object_headers(call, record, Body(record.size, _etag(record), []))
    headers.pop("Content-Type")
    if http.check_preconditions(call.headers, _etag(record), record.mtime, reading=True):
        return Response(status_code=304, headers=headers)
    if http.listing_format(call.query, None) == "xml":
        inner = "".join(f"<hash>{h}</hash>" for h in hashes)
        xml = (
            f'<?xml version="1.0" encoding="UTF-8"?><object name="{record.name}" '
            f'bytes="{record.size}" block_size="{BLOCK_SIZE}" block_hash="{HASH_ALGORITHM}">'
            f"{inner}</object>"
        )
        return Response(xml, 200, headers, media_type="application/xml")
    return json_response(body, 200, headers)


async def _serve(
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
        stream = _read_range(storage, body, 0, body.size)
        if body.size <= SMALL_BODY:  # read whole: a streamed reply costs more than it
            return Response(b"".join([chunk async for chunk in stream]), 200, headers)
        return StreamingResponse(stream, 200, headers)
    if len(ranges) == 1:
        start, end = ranges[0]
        headers["Content-Range"] = http.content_range(start, end, body.size)
        headers["Content-Length"] = str(end - start)
        if head:
            return Response(status_code=206, headers=headers)
        return StreamingResponse(_read_range(storage, body, start, end), 206, headers)
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
            async for chunk in _read_range(storage, body, start, end):
                yield chunk
            yield b"\r\n"
        yield closing

    return StreamingResponse(parts(), 206, headers)


# -- objects: writing -------------------------------------------------------------------


def _object_meta(call: Call) -> tuple[dict[str, str], list[str]]:
    meta, removed = _meta_headers(call, "x-object")
    for header, key in SYSTEM_HEADERS.items():
        value = call.headers.get(header)
        if value is not None:
            meta[key] = http.header_text(value, percent_decoded=key != MANIFEST)
    delete_at = _delete_at(call)
    if delete_at is not None:
        meta[DELETE_AT] = delete_at
    return meta, removed


LAST_SECOND = 9_999_999_999  # the latest X-Delete-At Swift keeps: ten digits


def _delete_at(call: Call) -> str | None:
    """Swift's object expiry: ``X-Delete-After`` seconds from now, else ``X-Delete-At``
    (epoch seconds), as the ten-digit second Swift stores; None when neither is given."""
    now = time.time()
    after = call.headers.get("x-delete-after")
    if after is not None:
        try:
            moment = int(now + int(after))
        except ValueError:
            raise errors.InvalidInput("Non-integer X-Delete-After") from None
        if moment <= now:
            raise errors.InvalidInput("X-Delete-After in past")
        return f"{min(moment, LAST_SECOND):010d}"
    raw = call.headers.get("x-delete-at")
    if raw is None:
        return None
    try:
        moment = int(raw)
    except ValueError:
        raise errors.InvalidInput("Non-integer X-Delete-At") from None
    if moment <= now:
        raise errors.InvalidInput("X-Delete-At in past")
    return f"{min(moment, LAST_SECOND):010d}"


async def _apply_sharing(call: Call, container: str, name: str) -> None:
    """``X-Object-Sharing`` and ``X-Object-Public`` on a write (owner only)."""
    sharing_header = call.headers.get("x-object-sharing")
    public_header = call.headers.get("x-object-public")
    if sharing_header is None and public_header is None:
        return
    call.require_owner()
    if sharing_header is not None:
        read, write = sharing.parse_sharing(http.header_text(sharing_header))
        await call.storage.set_sharing(call.account, container, name, read, write)
    if public_header is not None:
        value = public_header.strip().lower()
        if value not in ("true", "false", ""):
            raise errors.InvalidInput("X-Object-Public is true or false")
        await call.storage.set_public(call.account, container, name, value == "true")


def _check_sharing_headers(call: Call) -> None:
    """Validate before writing anything, so a bad header leaves nothing behind."""
    value = call.headers.get("x-object-sharing")
    if value is not None:
        if not call.owner:
            raise errors.PermissionDenied("Only the owner may change sharing")
        sharing.parse_sharing(http.header_text(value))
    public = call.headers.get("x-object-public")
    if public is not None:
        if not call.owner:
            raise errors.PermissionDenied("Only the owner may publish")
        if public.strip().lower() not in ("true", "false", ""):
            raise errors.InvalidInput("X-Object-Public is true or false")


def _written(record: ObjectRecord, status: int = 201) -> Response:
    return Response(
        status_code=status,
        headers={
            "ETag": _etag(record),
            "X-Object-Version": str(record.serial),
            **_timestamp(record.mtime),
        },
    )


async def object_put(call: Call) -> Response:
    assert call.container is not None and call.name is not None
    await _require(call, sharing.WRITE, call.container, call.name)
    _check_sharing_headers(call)
    await _check_write_conditions(call)
    meta, _ = _object_meta(call)
    if "hashmap" in call.query:
        record = await _put_hashmap(call, meta)
    elif call.headers.get("x-copy-from") or call.headers.get("x-move-from"):
        record = await _put_from(call, meta)
    elif call.query.get("multipart-manifest") == "put":
        record = await _put_slo(call, meta)
    else:
        _require_length(call)
        record = await call.storage.put_object(
            call.account,
            call.container,
            call.name,
            call.request.stream(),
            content_type=_content_type(call),
            meta=meta,
            muser=call.user,
            etag=call.headers.get("etag"),
            max_size=MAX_FILE_SIZE,
            size_hint=_declared_length(call),
        )
    await _apply_sharing(call, call.container, call.name)
    response = _written(record)
    if record.meta.get(SLO):
        response.headers["ETag"] = f'"{record.meta[SLO_ETAG]}"'
    return response


async def _check_write_conditions(call: Call) -> None:
    """A PUT's If-Match / If-None-Match against the object it would replace (spec
    §1.5): ``*`` for any current version, else its ETags; 412 when they fail."""
    assert call.container is not None and call.name is not None
    if_match = call.headers.get("if-match")
    if_none_match = call.headers.get("if-none-match")
    if if_match is None and if_none_match is None:
        return
    try:
        current = await call.storage.get_object(call.account, call.container, call.name)
        etag: str | None = _etag(current)
    except errors.NotFound:
        etag = None
    if if_match is not None and (etag is None or not http.etag_matches(if_match, etag)):
        raise errors.PreconditionFailed("If-Match does not match the object")
    if if_none_match is not None and etag is not None and http.etag_matches(if_none_match, etag):
        raise errors.PreconditionFailed("If-None-Match matches the object")


def _declared_length(call: Call) -> int | None:
    """The Content-Length, once ``_require_length`` has checked it (None: chunked)."""
    length = call.headers.get("content-length")
    return int(length) if length is not None else None


def _require_length(call: Call) -> None:
    length = call.headers.get("content-length")
    chunked = "chunked" in (call.headers.get("transfer-encoding") or "").lower()
    if length is None and not chunked:
        raise errors.LengthRequired("Give Content-Length or send the body chunked")
    if length is not None:
        if not length.isdigit():
            raise errors.InvalidInput("Invalid Content-Length")
        if int(length) > MAX_FILE_SIZE:
            raise errors.TooLarge(f"An object has at most {MAX_FILE_SIZE} bytes")


async def _put_hashmap(call: Call, meta: dict[str, str]) -> ObjectRecord:
    assert call.container is not None and call.name is not None
    try:
        document = orjson.loads(await _read_body(call, MAX_HASHMAP_BODY))
    except orjson.JSONDecodeError:
        raise errors.InvalidInput("The hashmap is not JSON") from None
    if not isinstance(document, dict) or not isinstance(document.get("hashes"), list):
        raise errors.InvalidInput('A hashmap is {"bytes": N, "hashes": [...]}')
    size = document.get("bytes")
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise errors.InvalidInput("The hashmap's bytes is a byte count")
    if size > MAX_FILE_SIZE * 1024:
        raise errors.TooLarge("The object is too large")
    return await call.storage.put_hashmap(
        call.account,
        call.container,
        call.name,
        size,
        document["hashes"],
        content_type=_content_type(call),
        meta=meta,
        muser=call.user,
    )


async def _put_from(call: Call, meta: dict[str, str]) -> ObjectRecord:
    """``X-Copy-From`` / ``X-Move-From``: no data moves, only the map is shared."""
    assert call.container is not None and call.name is not None
    moving = call.headers.get("x-move-from")
    header = "X-Move-From" if moving else "X-Copy-From"
    container, name = _source_path(moving or call.headers["x-copy-from"], header)
    source_account = (
        call.headers.get("x-source-account")
        or call.headers.get("x-copy-from-account")  # Swift's name for it
        or call.account
    )
    return await _copy_tree(
        call, source_account, container, name, call.account, call.container, call.name,
        meta, move=bool(moving),
    )  # fmt: skip


async def _copy_tree(
    call: Call,
    source_account: str,
    container: str,
    name: str,
    dest_account: str,
    dest_container: str,
    dest_name: str,
    meta: dict[str, str],
    move: bool,
) -> ObjectRecord:
    """One object, or with ``?delimiter=`` also everything below it (spec §1.5), each
    object copied or moved on its own (the source path need not exist itself)."""
    delimiter = call.query.get("delimiter")
    done: ObjectRecord | None = None
    try:
        done = await _copy(
            call, source_account, container, name, dest_account, dest_container, dest_name,
            meta, move,
        )  # fmt: skip
    except errors.NotFound:
        if not delimiter:
            raise
    if delimiter:
        below = name.rstrip(delimiter) + delimiter
        target = dest_name.rstrip(delimiter) + delimiter
        entries = await call.storage.list_objects(source_account, container, prefix=below)
        for entry in entries:
            copied = await _copy(
                call, source_account, container, entry.name, dest_account, dest_container,
                target + entry.name[len(below) :], meta, move,
            )  # fmt: skip
            done = done or copied
    if done is None:
        raise errors.NotFound(f"No object {container}/{name}")
    return done


async def _copy(
    call: Call,
    source_account: str,
    container: str,
    name: str,
    dest_account: str,
    dest_container: str,
    dest_name: str,
    meta: dict[str, str],
    move: bool,
) -> ObjectRecord:
    version = call.headers.get("x-source-version")
    if version is not None and (move or not version.isdigit()):
        raise errors.InvalidInput("X-Source-Version is a version number (copies only)")
    source_call = Call(call.request, call.storage, call.credentials, source_account, None, None)
    if not source_call.owner:
        granted = await call.storage.access(call.user, source_account, container, name)
        if granted is None or (move and granted != sharing.WRITE):
            raise errors.PermissionDenied(f"You may not read {container}/{name}")
    dest_call = Call(call.request, call.storage, call.credentials, dest_account, None, None)
    await _require(dest_call, sharing.WRITE, dest_container, dest_name)
    given_type = (
        call.headers.get("content-type") if "ignore_content_type" not in call.query else None
    )
    fresh = (call.headers.get("x-fresh-metadata") or "").strip().lower() in TRUE_WORDS
    if not move:
        source = await call.storage.get_object(
            source_account, container, name, int(version) if version else None
        )
        large = bool(source.meta.get(MANIFEST) or source.meta.get(SLO))
        if call.headers.get("range") or (large and call.query.get("multipart-manifest") != "get"):
            return await _copy_data(
                call, source, dest_account, dest_container, dest_name, meta, fresh,
                http.header_text(given_type) if given_type else None,
            )  # fmt: skip
        if fresh:  # a copied manifest stays one: its markers are part of its data
            markers = {k: source.meta[k] for k in LARGE_OBJECT_KEYS if k in source.meta}
            meta = {**markers, **meta}
    if move:
        if source_account != dest_account:
            raise errors.PermissionDenied("Objects move only within an account")
        return await call.storage.move_object(
            dest_account, container, name, dest_container, dest_name, meta=meta, muser=call.user
        )
    return await call.storage.copy_object(
        dest_account,
        container,
        name,
        dest_container,
        dest_name,
        version=int(version) if version else None,
        meta=meta,
        muser=call.user,
        source_account=source_account,
        content_type=http.header_text(given_type) if given_type else None,
        fresh=fresh,
    )


async def _copy_data(
    call: Call,
    source: ObjectRecord,
    dest_account: str,
    dest_container: str,
    dest_name: str,
    meta: dict[str, str],
    fresh: bool,
    content_type: str | None,
) -> ObjectRecord:
    """Swift's copies that are not of the source's map: a large object's data (its
    segments, joined: the copy is an ordinary object), or the byte range asked for."""
    body = await _body(call, source)
    start, end = 0, body.size
    ranges = http.parse_ranges(call.headers.get("range"), body.size)
    if ranges is not None:
        if len(ranges) > 1:
            raise errors.InvalidInput("A copy takes one byte range")
        start, end = ranges[0]
    kept = {} if fresh else {k: v for k, v in source.meta.items() if k not in LARGE_OBJECT_KEYS}
    return await call.storage.put_object(
        dest_account,
        dest_container,
        dest_name,
        _read_range(call.storage, body, start, end),
        content_type=content_type or source.type,
        meta={**kept, **meta},
        muser=call.user,
        max_size=MAX_FILE_SIZE,
        size_hint=end - start,
    )


async def object_post(call: Call) -> Response:
    assert call.container is not None and call.name is not None
    content_type = (call.headers.get("content-type") or "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        return await _form_upload(call)
    await _require(call, sharing.WRITE, call.container, call.name)
    _check_sharing_headers(call)
    meta, removed = _object_meta(call)
    data_update = (
        "content-range" in call.headers
        or "x-source-object" in call.headers
        or "x-object-bytes" in call.headers
        or (
            content_type == "application/octet-stream"
            and (
                int(call.headers.get("content-length") or 0) > 0
                or "chunked" in (call.headers.get("transfer-encoding") or "")
            )
        )
    )
    if data_update:
        record = await _update_data(call)
        if meta:
            record = await call.storage.update_meta(
                call.account, call.container, call.name, meta, muser=call.user
            )
        await _apply_sharing(call, call.container, call.name)
        return _written(record, 204)
    update = "update" in call.query
    has_meta = bool(meta or removed) or any(
        k.startswith("x-object-meta-") or k in SYSTEM_HEADERS for k in call.headers
    )
    if has_meta or not update:
        for key in removed:
            meta[key] = ""
        current = await call.storage.get_object(call.account, call.container, call.name)
        if not update:
            # Swift and Pithos: a POST without update replaces the user metadata, but
            # keeps the large-object markers that are part of the data.
            for key in (SLO, SLO_BYTES, SLO_ETAG):
                if key in current.meta:
                    meta[key] = current.meta[key]
        if has_meta or not update:
            new_type = call.headers.get("content-type") if content_type else None
            await call.storage.update_meta(
                call.account,
                call.container,
                call.name,
                meta,
                replace=not update,
                content_type=http.header_text(new_type) if new_type else None,
                muser=call.user,
            )
    else:
        await call.storage.get_object(call.account, call.container, call.name)
    await _apply_sharing(call, call.container, call.name)
    return Response(status_code=202)


async def _update_data(call: Call) -> ObjectRecord:
    """Pithos partial updates: write at an offset, append, take data from another
    object, truncate or extend (spec §1.5)."""
    assert call.container is not None and call.name is not None
    offset: int | None = None
    last: int | None = None
    if "content-range" in call.headers:
        offset, last = http.parse_content_range(call.headers["content-range"])
    chunks: AsyncIterator[bytes] | None = None
    source = call.headers.get("x-source-object")
    if source:
        container, name = _source_path(source, "X-Source-Object")
        source_account = call.headers.get("x-source-account") or call.account
        version = call.headers.get("x-source-version")
        if source_account != call.account:
            granted = await call.storage.access(call.user, source_account, container, name)
            if granted is None:
                raise errors.PermissionDenied(f"You may not read {container}/{name}")
        record = await call.storage.get_object(
            source_account, container, name, int(version) if version and version.isdigit() else None
        )
        end = record.size if last is None or offset is None else min(record.size, last - offset + 1)
        chunks = call.storage.read(record, 0, end)
    elif "content-range" in call.headers or call.headers.get("content-length", "0") != "0":
        _require_length(call)
        length = call.headers.get("content-length")
        if (
            last is not None
            and offset is not None
            and length is not None
            and int(length) != last - offset + 1
        ):
            raise errors.RangeNotSatisfiable("Content-Range and Content-Length disagree")
        chunks = call.request.stream()
    truncate = call.headers.get("x-object-bytes")
    if truncate is not None and not truncate.isdigit():
        raise errors.InvalidInput("X-Object-Bytes is a byte count")
    return await call.storage.update_data(
        call.account,
        call.container,
        call.name,
        chunks,
        offset=offset,
        truncate=int(truncate) if truncate is not None else None,
        muser=call.user,
    )


async def _form_upload(call: Call) -> Response:
    """Pithos HTML-form upload: the file in field ``X-Object-Data`` (token in the query)."""
    assert call.container is not None and call.name is not None
    await _require(call, sharing.WRITE, call.container, call.name)
    async with call.request.form(max_files=1, max_fields=10) as form:
        upload = form.get("X-Object-Data")
        if upload is None or isinstance(upload, str):
            raise errors.InvalidInput("The form has no file field X-Object-Data")

        async def chunks() -> AsyncIterator[bytes]:
            while chunk := await upload.read(1 << 20):
                yield chunk

        record = await call.storage.put_object(
            call.account,
            call.container,
            call.name,
            chunks(),
            content_type=upload.content_type or "application/octet-stream",
            muser=call.user,
            max_size=MAX_FILE_SIZE,
        )
    return _written(record)


async def object_delete(call: Call) -> Response:
    assert call.container is not None and call.name is not None
    await _require(call, sharing.WRITE, call.container, call.name)
    if call.query.get("multipart-manifest") == "delete":
        return await _delete_slo(call)
    if_delete_at = call.headers.get("x-if-delete-at")
    if if_delete_at is not None:  # Swift: delete only if it still expires then
        if not if_delete_at.strip().isdigit():
            raise errors.InvalidInput("Bad X-If-Delete-At header value")
        record = await call.storage.get_object(call.account, call.container, call.name)
        if int(record.meta.get(DELETE_AT) or -1) != int(if_delete_at):
            raise errors.PreconditionFailed("X-If-Delete-At and X-Delete-At do not match")
    until = _until(call)
    if until is not None:
        await call.storage.purge(call.account, call.container, call.name, until)
        return Response(status_code=204)
    delimiter = call.query.get("delimiter")
    deleted = 0
    try:
        await call.storage.delete_object(call.account, call.container, call.name, call.user)
        deleted += 1
    except errors.NotFound:
        if not delimiter:
            raise
    if delimiter:
        below = call.name.rstrip(delimiter) + delimiter
        for entry in await call.storage.list_objects(call.account, call.container, prefix=below):
            await _require(call, sharing.WRITE, call.container, entry.name)
            await call.storage.delete_object(call.account, call.container, entry.name, call.user)
            deleted += 1
        if not deleted:
            raise errors.NotFound(f"No object {call.container}/{call.name}")
    return Response(status_code=204)


async def object_copy_move(call: Call) -> Response:
    """The COPY and MOVE methods: ``Destination: /<container>/<object>``."""
    assert call.container is not None and call.name is not None
    destination = call.headers.get("destination")
    if not destination:
        raise errors.PreconditionFailed("Give a Destination header")
    dest_container, dest_name = _source_path(destination, "Destination")
    dest_account = call.headers.get("destination-account") or call.account
    meta, _ = _object_meta(call)
    record = await _copy_tree(
        call, call.account, call.container, call.name, dest_account, dest_container, dest_name,
        meta, move=call.request.method == "MOVE",
    )  # fmt: skip
    return _written(record)


OBJECT: dict[str, Callable[[Call], Any]] = {
    "HEAD": object_read,
    "GET": object_read,
    "PUT": object_put,
    "POST": object_post,
    "DELETE": object_delete,
    "COPY": object_copy_move,
    "MOVE": object_copy_move,
}


# -- public links and capabilities -------------------------------------------------------


async def public_object(request: Request) -> Response:
    """A published object: no token needed, basic headers only (spec §1.7)."""
    storage: Namespace = request.app.state.engines.storage
    record = await storage.resolve_public(request.path_params["token"])
    call = Call(request, storage, None, record.account, record.container, record.name)
    body = await _body(call, record)
    headers = _object_headers(None, record, body)
    return await _serve(request, storage, record, body, headers)


@router.get("/info")
@router.get("/object-store/info")
async def info(request: Request) -> Response:
    """Swift's capabilities document; swiftclient reads it to choose SLO and bulk delete,
    at the storage URL with its last two parts (version, account) replaced by ``info``."""
    return json_response(
        {
            "swift": {
                "version": "2.35.0",
                "max_file_size": MAX_FILE_SIZE,
                "max_meta_name_length": 128,
                "max_meta_value_length": 256,
                "max_meta_count": MAX_META_HEADERS,
                "max_object_name_length": 1024,
                "max_container_name_length": 256,
                "container_listing_limit": LISTING_LIMIT,
                "account_listing_limit": LISTING_LIMIT,
                "max_header_size": request.app.state.settings.limits.header_value_bytes,
                "extra_header_count": 0,
                "strict_cors_mode": True,
                "policies": [{"name": STORAGE_POLICY, "default": True}],
            },
            "slo": {
                "max_manifest_segments": MAX_SLO_SEGMENTS,
                "max_manifest_size": MAX_MANIFEST_BODY,
                "min_segment_size": 1,
            },
            "bulk_delete": {
                "max_deletes_per_request": MAX_BULK_DELETES,
                "max_failed_deletes": 1000,
            },
            "tempauth": {"account_acls": False},
            "pithos": {"block_size": BLOCK_SIZE, "block_hash": HASH_ALGORITHM},
        }
    )


# Plain Starlette routes, not FastAPI's: these handlers take the request and build their
# own response, so FastAPI's per-request dependency and response handling is pure cost
# (measured: a small object's HEAD 1.17 -> 1.10 CPU ms).
router.add_route(PREFIX, root, methods=["GET", "HEAD"])
router.add_route(PREFIX + "/", root, methods=["GET", "HEAD"])
router.add_route(PREFIX + "/{rest:path}", dispatch, methods=[*OBJECT_METHODS, "OPTIONS"])
router.add_route(PUBLIC_PREFIX + "/{token}", public_object, methods=["GET", "HEAD"])
