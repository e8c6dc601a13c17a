"""Swift's bulk middleware: ``extract-archive`` and ``bulk-delete``.

``PUT /object-store/v1/<account>[/<container>[/<prefix>]]?extract-archive=tar|tar.gz|tar.bz2``
stores each regular file of the archive in the body as an object under that path; at
the account level the first part of each member's path names its container, created if
missing (files with no container part are ignored, as in Swift). Directories, links and
devices are skipped. ``POST /object-store/v1/<account>?bulk-delete`` deletes the
``/container[/object]`` lines of its body, objects first (the storage service's
``bulk_delete``), stopping after ``bulk_max_failed_deletes`` refusals.

Both answer 200 whatever happened, with Swift's result document (``Response Status``,
``Response Body``, ``Errors`` and counts) in the type the ``Accept`` header picks:
text/plain (the default), JSON or XML. Swift sends that 200 at once and spaces while it
works, to keep proxies from timing out; nefos answers when done (docs/swift.md).

Each member is a write of its own, made as the caller: the caller's rights on its path,
the container's and the project's quota (checked against the member's declared size
before any block is stored, and again at commit) and Swift's name and size limits. A
refused member is reported in ``Errors`` and leaves nothing behind; after
``bulk_max_failed_extractions`` refusals the rest of the archive is not read. Members
with an absolute path or a ``.``/``..`` segment are refused (Swift strips a leading
``/``; nefos does not guess what such an archive meant). An archive that cannot be read
(bad checksum, truncated, corrupt compression, a member header over
``MAX_MEMBER_HEADER``) ends the extraction: what was stored before stays, as in Swift.
"""

from __future__ import annotations

import logging
import mimetypes
from typing import Any
from urllib.parse import quote, unquote
from xml.sax.saxutils import escape

import orjson
from starlette.responses import Response

from nefos.core import errors, http
from nefos.core.faults import status_of
from nefos.storage import sharing
from nefos.storage.api_object_write import delete_at_header
from nefos.storage.records import DELETE_AT, MAX_CONTAINER_NAME, MAX_OBJECT_NAME
from nefos.storage.service import check_container_name, check_object_name
from nefos.storage.swift import (
    MAX_BULK_DELETES,
    MAX_FILE_SIZE,
    MAX_MANIFEST_BODY,
    TRUE_WORDS,
    Call,
    meta_headers,
    meta_key,
    require_access,
    status_line,
)
from nefos.storage.tarstream import InvalidArchive, Member, TarStream

log = logging.getLogger(__name__)

ARCHIVE_TYPES = {"tar": "", "tar.gz": "gz", "tar.bz2": "bz2"}
RESULT_TYPES = ("text/plain", "application/json", "application/xml", "text/xml")
# Swift's bound on a reported path: the longest container, "/", object, "/".
MAX_PATH_LENGTH = MAX_OBJECT_NAME + MAX_CONTAINER_NAME + 2
# pax records and GNU long names of one member, read whole: far above any real name
# with its metadata, far below what would strain memory.
MAX_MEMBER_HEADER = 256 * 1024
_XATTR_PREFIXES = ("SCHILY.xattr.user.", "LIBARCHIVE.xattr.user.")


# -- the result document -------------------------------------------------------------


def result_type(accept: str | None) -> str | None:
    """The first of :data:`RESULT_TYPES` the Accept header takes, best quality first;
    text/plain when there is none; None when it takes none (Swift: 406 in the body)."""
    if not accept or not accept.strip():
        return RESULT_TYPES[0]
    ranges: list[tuple[float, int, str]] = []
    for position, part in enumerate(accept.split(",")):
        kind, *params = [piece.strip().lower() for piece in part.split(";")]
        quality = 1.0
        for param in params:
            if param.startswith("q="):
                try:
                    quality = float(param[2:])
                except ValueError:
                    quality = 0.0
        if quality > 0 and kind:
            ranges.append((-quality, position, kind))
    for _, _, kind in sorted(ranges):
        major, _, minor = kind.partition("/")
        for offered in RESULT_TYPES:
            offered_major, _, offered_minor = offered.partition("/")
            if major in ("*", offered_major) and minor in ("*", offered_minor):
                return offered
    return None


def render_result(
    media_type: str | None, result: dict[str, Any], failures: list[list[str]], root: str
) -> Response:
    """Swift's bulk result: JSON with ``Errors`` as [path, status] pairs; XML with
    snake_case tags under ``root``; else ``Key: value`` lines then ``Errors:``."""
    if media_type == "application/json":
        body = orjson.dumps({**result, "Errors": failures})
    elif media_type is not None and media_type.endswith("/xml"):
        lines = [f'<?xml version="1.0" encoding="UTF-8"?>\n<{root}>\n']
        for key in sorted(result):
            tag = key.replace(" ", "_").lower()
            lines.append(f"<{tag}>{escape(str(result[key]))}</{tag}>\n")
        lines.append("<errors>\n")
        for path, status in failures:
            lines.append(
                f"<object><name>{escape(path)}</name><status>{escape(status)}</status></object>\n"
            )
        lines.append(f"</errors>\n</{root}>\n")
        body = "".join(lines).encode()
    else:
        text = "".join(f"{key}: {result[key]}\n" for key in sorted(result))
        text += "Errors:\n" + "".join(f"{path}, {status}\n" for path, status in failures)
        body = text.encode()
    return Response(body, 200, media_type=media_type or "text/plain")


# -- extract-archive -----------------------------------------------------------------


class _Abort(Exception):
    """Ends the whole extraction with this status and body (Swift's HTTPException)."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(body)
        self.status, self.body = status, body


class _Extraction:
    """One archive's extraction: what every member shares, and the running result."""

    def __init__(self, call: Call, base: str) -> None:
        self.call = call
        self.base = base
        settings = call.request.app.state.settings.storage
        self.max_containers = settings.bulk_max_containers_per_extraction
        self.max_failures = settings.bulk_max_failed_extractions
        self.created = 0
        self.containers_created = 0
        self.containers_seen: set[str] = set()
        self.failures: list[list[str]] = []
        self.failed_status = 400  # 502 once a member fails on the server's side
        given_type = call.headers.get("content-type")
        detect = (call.headers.get("x-detect-content-type") or "").lower() in TRUE_WORDS
        self.content_type = None if detect or not given_type else http.header_text(given_type)
        meta, _ = meta_headers(call, "x-object")
        expiry = delete_at_header(call)
        if expiry is not None:
            meta[DELETE_AT] = expiry
        self.meta = meta

    def fail(self, path: str, status: int) -> None:
        self.failures.append([quote(path[:MAX_PATH_LENGTH]), status_line(status)])
        if status >= 500:
            self.failed_status = 502

    async def member(self, tar: TarStream, member: Member) -> None:
        if not member.regular:
            return
        path = member.name.removeprefix("./")
        full = f"{self.base}/{path}" if self.base else path
        if "/" not in full:
            return  # a file at the account level has no container: Swift ignores it
        container, _, name = full.partition("/")
        try:
            full.encode("utf-8")
        except UnicodeEncodeError:
            self.fail(full.encode("utf-8", "surrogateescape").decode("latin-1"), 412)
            return
        try:
            if path.startswith("/"):
                raise errors.InvalidInput("An absolute path in the archive")
            if member.size > MAX_FILE_SIZE:
                raise errors.TooLarge("Your request is too large.")
            check_container_name(container)
            check_object_name(name)
            await self.write(tar, member, container, name)
            self.created += 1
        except errors.NefosError as error:
            self.fail(full, status_of(error))

    async def write(self, tar: TarStream, member: Member, container: str, name: str) -> None:
        call = self.call
        await require_access(call, sharing.WRITE, container, name)
        if container not in self.containers_seen:
            await self.ensure_container(container)
            self.containers_seen.add(container)
        content_type, meta = self.member_type_and_meta(member, name)
        await call.storage.check_growth(call.account, container, name, member.size)
        await call.storage.put_object(
            call.account,
            container,
            name,
            tar.data(),
            content_type=content_type,
            meta=meta,
            muser=call.user,
            max_size=MAX_FILE_SIZE,
            size_hint=member.size,
        )

    async def ensure_container(self, container: str) -> None:
        """Swift creates a missing container for the caller who may create one (the
        owner); ``bulk_max_containers_per_extraction`` bounds how many one archive
        makes, and reaching past it ends the extraction."""
        call = self.call
        try:
            await call.storage.container(call.account, container)
            return
        except errors.NotFound:
            if not call.owner:
                raise
        if self.containers_created >= self.max_containers:
            raise _Abort(400, f"More than {self.max_containers} containers to create from tar.")
        if await call.storage.create_container(call.account, container):
            self.containers_created += 1

    def member_type_and_meta(self, member: Member, name: str) -> tuple[str, dict[str, str]]:
        """The request's type and metadata, overlaid by the member's extended
        attributes ``user.mime_type`` and ``user.meta.*`` as GNU or BSD tar store them."""
        content_type = self.content_type
        meta = dict(self.meta)
        for key, value in member.pax.items():
            for prefix in _XATTR_PREFIXES:
                if not key.startswith(prefix):
                    continue
                attribute = key[len(prefix) :]
                if attribute == "mime_type":
                    content_type = value
                elif attribute.startswith("meta.") and attribute[5:]:
                    meta[meta_key(attribute[5:])] = value
        if content_type is None:
            content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        return content_type, meta

    async def run(self, compression: str) -> None:
        tar = TarStream(self.call.request.stream(), compression, MAX_MEMBER_HEADER)
        while len(self.failures) < self.max_failures:
            member = await tar.next()
            if member is None:
                break
            await self.member(tar, member)


async def extract_archive(call: Call) -> Response:
    """Swift's ``?extract-archive``: the archive in the body, stored as objects."""
    wanted = (call.query.get("extract-archive") or "").lower().strip(".")
    if wanted not in ARCHIVE_TYPES:
        raise errors.InvalidInput("Unsupported archive format")
    media_type = result_type(call.headers.get("accept"))
    base = "/".join(part for part in (call.container, call.name) if part).rstrip("/")
    extraction = _Extraction(call, base)
    result: dict[str, Any] = {
        "Response Status": status_line(201),
        "Response Body": "",
        "Number Files Created": 0,
    }
    try:
        if media_type is None:
            raise _Abort(406, "")
        chunked = "chunked" in (call.headers.get("transfer-encoding") or "").lower()
        if call.headers.get("content-length") is None and not chunked:
            raise _Abort(411, "Length required.")
        await extraction.run(ARCHIVE_TYPES[wanted])
        if extraction.failures:
            result["Response Status"] = status_line(extraction.failed_status)
        elif not extraction.created:
            result["Response Status"] = status_line(400)
            result["Response Body"] = "Invalid Tar File: No Valid Files"
    except _Abort as abort:
        result["Response Status"] = status_line(abort.status)
        result["Response Body"] = abort.body
    except InvalidArchive as error:
        result["Response Status"] = status_line(400)
        result["Response Body"] = f"Invalid Tar File: {error}"
    except errors.NefosError as error:  # e.g. the caller's token ran out mid-archive
        result["Response Status"] = status_line(status_of(error))
        result["Response Body"] = error.message
    result["Number Files Created"] = extraction.created
    return render_result(media_type, result, extraction.failures, "extract")


# -- bulk-delete ---------------------------------------------------------------------


async def bulk_delete(call: Call) -> Response:
    """Swift's ``?bulk-delete``: a text/plain body of URL-encoded ``/container[/object]``
    lines; objects are deleted before containers, so their containers can empty."""
    media_type = result_type(call.headers.get("accept"))
    result: dict[str, Any] = {
        "Response Status": status_line(200),
        "Response Body": "",
        "Number Deleted": 0,
        "Number Not Found": 0,
    }
    failures: list[list[str]] = []
    try:
        given_type = call.headers.get("content-type")
        if media_type is None or (given_type and not given_type.startswith("text/plain")):
            raise _Abort(406, "")
        paths = await _delete_paths(call)
        limit = call.request.app.state.settings.storage.bulk_max_failed_deletes
        done = await call.storage.bulk_delete(call.user, call.account, paths, limit)
        result["Number Deleted"] = done.deleted
        result["Number Not Found"] = done.not_found
        failures += [[quote(path), status_line(status_of(e))] for path, e in done.failures]
        if done.stopped:
            result["Response Status"] = status_line(400)
            result["Response Body"] = "Max delete failures exceeded"
        elif failures:
            result["Response Status"] = status_line(400)
        elif not (result["Number Deleted"] or result["Number Not Found"]):
            result["Response Status"] = status_line(400)
            result["Response Body"] = "Invalid bulk delete."
    except _Abort as abort:
        result["Response Status"] = status_line(abort.status)
        result["Response Body"] = abort.body
    return render_result(media_type, result, failures, "delete")


async def _delete_paths(call: Call) -> list[str]:
    body = bytearray()
    async for chunk in call.request.stream():
        body += chunk
        if len(body) > MAX_MANIFEST_BODY:
            raise _Abort(413, "The bulk-delete body is too large")
    lines = [line.strip() for line in body.decode("utf-8", "replace").splitlines()]
    paths = [unquote(line) for line in lines if line]
    if len(paths) > MAX_BULK_DELETES:
        raise _Abort(413, f"Maximum Bulk Deletes: {MAX_BULK_DELETES} per request")
    return paths
