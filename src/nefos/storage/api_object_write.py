"""The object level's writes: PUT, POST, DELETE, COPY and MOVE on
``/object-store/v1/<account>/<container>/<object>``.

PUT takes the data, a Pithos hashmap of stored blocks (``?hashmap``), an SLO manifest, or
a copy or move (``X-Copy-From`` / ``X-Move-From``), for which no data moves: only the map
is shared, unless a large object or a range is copied. POST replaces user metadata
unless ``update`` is given (Swift and Pithos both; account and container POST merge),
updates data in place (Pithos), or takes an HTML form upload. DELETE removes the object
(with a delimiter, all below it too; with ``until``, its versions before then). A write
may set when the object expires (``X-Delete-At`` / ``X-Delete-After``).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable

import orjson
from starlette.responses import Response

from nefos.core import errors, http
from nefos.storage import sharing
from nefos.storage.api_large import manifest_of, slo_deleted
from nefos.storage.copies import CopyRequest
from nefos.storage.deletes import DeleteRequest
from nefos.storage.manifests import Manifest
from nefos.storage.puts import Data, Hashmap, PutRequest
from nefos.storage.service import DELETE_AT, ObjectRecord
from nefos.storage.swift import (
    MANIFEST,
    MAX_FILE_SIZE,
    MAX_HASHMAP_BODY,
    MAX_OBJECT_SIZE,
    SLO,
    SLO_ETAG,
    SYSTEM_HEADERS,
    TRUE_WORDS,
    Call,
    content_type_of,
    etag_of,
    meta_headers,
    read_body,
    require_access,
    source_path,
    swift_text,
    timestamp_headers,
    until_param,
)
from nefos.storage.updates import (
    DataSource,
    DataUpdate,
    ObjectUpdate,
    SharingChange,
)


def _object_meta(call: Call) -> tuple[dict[str, str], list[str]]:
    meta, removed = meta_headers(call, "x-object")
    for header, key in SYSTEM_HEADERS.items():
        value = call.headers.get(header)
        if value is not None:
            meta[key] = http.header_text(value, percent_decoded=key != MANIFEST)
    delete_at = delete_at_header(call)
    if delete_at is not None:
        meta[DELETE_AT] = delete_at
    return meta, removed


LAST_SECOND = 9_999_999_999  # the latest X-Delete-At Swift keeps: ten digits


def delete_at_header(call: Call) -> str | None:
    """Swift's object expiry: ``X-Delete-After`` seconds from now, else ``X-Delete-At``
    (epoch seconds), as the ten-digit second Swift stores; None when neither is given."""
    now = time.time()
    after = call.headers.get("x-delete-after")
    if after is not None:
        moment = int(now) + _signed(after, "X-Delete-After")
        if moment <= now:
            raise errors.InvalidInput("X-Delete-After in past")
        return f"{min(moment, LAST_SECOND):010d}"
    raw = call.headers.get("x-delete-at")
    if raw is None:
        return None
    moment = _signed(raw, "X-Delete-At")
    if moment <= now:
        raise errors.InvalidInput("X-Delete-At in past")
    return f"{min(moment, LAST_SECOND):010d}"


def _signed(raw: str, header: str) -> int:
    """Swift's expiry headers: ASCII digits, maybe negative (then in the past), of any
    size (a time beyond the last ten-digit second is clamped to it)."""
    text = raw.strip()
    digits = text.removeprefix("-")
    if not (digits.isascii() and digits.isdigit()) or len(digits) > 100:
        raise errors.InvalidInput(f"Non-integer {header}")
    return int(text)


def _sharing_change(call: Call) -> SharingChange | None:
    """``X-Object-Sharing`` and ``X-Object-Public``, parsed (400 on bad syntax)."""
    sharing_header = call.headers.get("x-object-sharing")
    public_header = call.headers.get("x-object-public")
    if sharing_header is None and public_header is None:
        return None
    grants = None
    if sharing_header is not None:
        grants = sharing.parse_sharing(http.header_text(sharing_header))
    public = None
    if public_header is not None:
        value = public_header.strip().lower()
        if value not in ("true", "false", ""):
            raise errors.InvalidInput("X-Object-Public is true or false")
        public = value == "true"
    return SharingChange(grants, public)


def _written(record: ObjectRecord, status: int = 201) -> Response:
    return Response(
        status_code=status,
        headers={
            "ETag": etag_of(record),
            "X-Object-Version": str(record.serial),
            **timestamp_headers(record.mtime),
        },
    )


async def object_put(call: Call) -> Response:
    assert call.container is not None and call.name is not None
    meta, _ = _object_meta(call)
    body: Data | Hashmap | Manifest | CopyRequest
    if "hashmap" in call.query:
        body = Hashmap(_hashmap_of(call), content_type_of(call))
    elif call.headers.get("x-copy-from") or call.headers.get("x-move-from"):
        body = _copy_from(call, meta)
    elif call.query.get("multipart-manifest") == "put":
        body = manifest_of(call)
    else:
        _require_length(call)
        body = Data(
            call.request.stream(),
            content_type_of(call),
            etag=call.headers.get("etag"),
            size_hint=_declared_length(call),
        )
    record = await call.storage.put(
        PutRequest(
            user=call.user,
            account=call.account,
            container=call.container,
            name=call.name,
            body=body,
            meta=meta,
            sharing=_sharing_change(call),
            if_match=call.headers.get("if-match"),
            if_none_match=call.headers.get("if-none-match"),
        )
    )
    response = _written(record)
    if record.meta.get(SLO):
        response.headers["ETag"] = f'"{record.meta[SLO_ETAG]}"'
    return response


def _declared_length(call: Call) -> int | None:
    """The Content-Length, once ``_require_length`` has checked it (None: chunked)."""
    length = call.headers.get("content-length")
    return http.whole_number(length, "Content-Length") if length is not None else None


def _require_length(call: Call) -> None:
    length = call.headers.get("content-length")
    chunked = "chunked" in (call.headers.get("transfer-encoding") or "").lower()
    if length is None and not chunked:
        raise errors.LengthRequired(swift_text("length_required"))
    if length is not None and http.whole_number(length, "Content-Length") > MAX_FILE_SIZE:
        raise errors.TooLarge(swift_text("object_too_large"))


def _hashmap_of(call: Call) -> Callable[[], Awaitable[tuple[int, list[str]]]]:
    """``PUT ?hashmap``'s body, read and parsed when the service asks."""

    async def read() -> tuple[int, list[str]]:
        try:
            document = orjson.loads(await read_body(call, MAX_HASHMAP_BODY))
        except orjson.JSONDecodeError:
            raise errors.InvalidInput("The hashmap is not JSON") from None
        if not isinstance(document, dict) or not isinstance(document.get("hashes"), list):
            raise errors.InvalidInput('A hashmap is {"bytes": N, "hashes": [...]}')
        size = document.get("bytes")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise errors.InvalidInput("The hashmap's bytes is a byte count")
        if size > MAX_OBJECT_SIZE:
            raise errors.TooLarge("The object is too large")
        return size, document["hashes"]

    return read


def _copy_request(
    call: Call,
    source: tuple[str, str, str],
    destination: tuple[str, str, str],
    meta: dict[str, str],
    move: bool,
) -> CopyRequest:
    """A copy or move as the service takes it: (account, container, name) each way;
    with ``?delimiter=`` also everything below the source (spec §1.5)."""
    given_type = (
        call.headers.get("content-type") if "ignore_content_type" not in call.query else None
    )
    return CopyRequest(
        user=call.user,
        source_account=source[0],
        container=source[1],
        name=source[2],
        dest_account=destination[0],
        dest_container=destination[1],
        dest_name=destination[2],
        meta=meta,
        move=move,
        delimiter=call.query.get("delimiter") or None,
        version=http.version_number(call.headers.get("x-source-version"), "X-Source-Version"),
        content_type=http.header_text(given_type) if given_type else None,
        fresh=(call.headers.get("x-fresh-metadata") or "").strip().lower() in TRUE_WORDS,
        byte_range=call.headers.get("range"),
        manifest_itself=call.query.get("multipart-manifest") == "get",
    )


def _copy_from(call: Call, meta: dict[str, str]) -> CopyRequest:
    """``X-Copy-From`` / ``X-Move-From``: no data moves, only the map is shared."""
    assert call.container is not None and call.name is not None
    moving = call.headers.get("x-move-from")
    header = "X-Move-From" if moving else "X-Copy-From"
    container, name = source_path(moving or call.headers["x-copy-from"], header)
    source_account = (
        call.headers.get("x-source-account")
        or call.headers.get("x-copy-from-account")  # Swift's name for it
        or call.account
    )
    destination = (call.account, call.container, call.name)
    return _copy_request(
        call, (source_account, container, name), destination, meta, move=bool(moving)
    )


async def object_post(call: Call) -> Response:
    assert call.container is not None and call.name is not None
    content_type = (call.headers.get("content-type") or "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        return await _form_upload(call)
    user = call.user
    meta, removed = _object_meta(call)
    data = _data_update(call, content_type)
    update = "update" in call.query
    rewrite = data is None and (
        not update
        or bool(meta or removed)
        or any(k.startswith("x-object-meta-") or k in SYSTEM_HEADERS for k in call.headers)
    )
    if rewrite:
        meta.update(dict.fromkeys(removed, ""))
    new_type = call.headers.get("content-type") if content_type else None
    record = await call.storage.update(
        ObjectUpdate(
            user=user,
            account=call.account,
            container=call.container,
            name=call.name,
            meta=meta,
            rewrite_meta=rewrite,
            replace_meta=not update,
            content_type=http.header_text(new_type) if rewrite and new_type else None,
            data=data,
            sharing=_sharing_change(call),
        )
    )
    return _written(record, 204) if data is not None else Response(status_code=202)


def _data_update(call: Call, content_type: str) -> DataUpdate | None:
    """Pithos partial updates (spec §1.5), when the POST carries one: write at an
    offset, append, take data from another object, truncate or extend."""
    wanted = (
        "content-range" in call.headers
        or "x-source-object" in call.headers
        or "x-object-bytes" in call.headers
        or (
            content_type == "application/octet-stream"
            and (
                http.whole_number(call.headers.get("content-length") or "0", "Content-Length") > 0
                or "chunked" in (call.headers.get("transfer-encoding") or "")
            )
        )
    )
    if not wanted:
        return None
    offset: int | None = None
    last: int | None = None
    if "content-range" in call.headers:
        offset, last = http.parse_content_range(call.headers["content-range"])
    chunks: AsyncIterator[bytes] | None = None
    length: int | None = None
    source: DataSource | None = None
    if call.headers.get("x-source-object"):
        container, name = source_path(call.headers["x-source-object"], "X-Source-Object")
        raw_version = call.headers.get("x-source-version")
        source = DataSource(
            call.headers.get("x-source-account") or call.account,
            container,
            name,
            http.version_number(raw_version, "X-Source-Version"),
        )
    elif "content-range" in call.headers or call.headers.get("content-length", "0") != "0":
        _require_length(call)
        length = _declared_length(call)
        if (
            last is not None
            and offset is not None
            and length is not None
            and length != last - offset + 1
        ):
            raise errors.RangeNotSatisfiable("Content-Range and Content-Length disagree")
        chunks = call.request.stream()
    raw_truncate = call.headers.get("x-object-bytes")
    truncate = None if raw_truncate is None else http.whole_number(raw_truncate, "X-Object-Bytes")
    return DataUpdate(chunks, length, offset, last, source, truncate)


async def _form_upload(call: Call) -> Response:
    """Pithos HTML-form upload: the file in field ``X-Object-Data`` (token in the query)."""
    assert call.container is not None and call.name is not None
    await require_access(call, sharing.WRITE, call.container, call.name)
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
    if_delete_at = call.headers.get("x-if-delete-at")
    wanted = None
    if if_delete_at is not None:
        try:
            wanted = http.whole_number(if_delete_at, "X-If-Delete-At")
        except errors.InvalidInput:
            raise errors.InvalidInput("Bad X-If-Delete-At header value") from None
    manifest = call.query.get("multipart-manifest") == "delete"
    done = await call.storage.delete(
        DeleteRequest(
            user=call.user,
            account=call.account,
            container=call.container,
            name=call.name,
            delimiter=call.query.get("delimiter") or None,
            manifest=manifest,
            until=None if manifest else until_param(call),
            if_delete_at=wanted,
        )
    )
    return slo_deleted(call, done) if done is not None else Response(status_code=204)


async def object_copy_move(call: Call) -> Response:
    """The COPY and MOVE methods: ``Destination: /<container>/<object>``."""
    assert call.container is not None and call.name is not None
    destination = call.headers.get("destination")
    if not destination:
        raise errors.PreconditionFailed("Give a Destination header")
    dest_container, dest_name = source_path(destination, "Destination")
    dest_account = call.headers.get("destination-account") or call.account
    meta, _ = _object_meta(call)
    request = _copy_request(
        call,
        (call.account, call.container, call.name),
        (dest_account, dest_container, dest_name),
        meta,
        move=call.request.method == "MOVE",
    )
    return _written(await call.storage.copy(request))
