"""What every level of the object-store API shares: the parsed call, the limits the API
keeps (``/info`` advertises them), metadata headers and listings. The modules of each
level import from here rather than from each other.

Owners may do anything in their account; other users only what sharing grants them
(read or write below a shared path), and are told 403, never whether something exists,
when it grants nothing.

The ETag is the MD5 of the data when the server saw the data (Swift clients verify it),
else the Merkle hash (hashmap uploads); ``X-Object-Hash`` is always the Merkle hash.
"""

from __future__ import annotations

import datetime as dt
import mimetypes
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import orjson
from fastapi import Request
from starlette.responses import Response

from nefos.core import errors, http
from nefos.core.auth import Credentials
from nefos.storage import sharing
from nefos.storage.dialect import TABLE as DIALECT

# Names the API modules take from here, whatever part of the service defines them.
from nefos.storage.large import LARGE_OBJECT_KEYS as LARGE_OBJECT_KEYS
from nefos.storage.large import MANIFEST as MANIFEST
from nefos.storage.large import MAX_BULK_DELETES as MAX_BULK_DELETES
from nefos.storage.large import MAX_MANIFEST_BODY as MAX_MANIFEST_BODY
from nefos.storage.large import SLO as SLO
from nefos.storage.large import SLO_BYTES as SLO_BYTES
from nefos.storage.large import SLO_DEPTH as SLO_DEPTH
from nefos.storage.large import SLO_ETAG as SLO_ETAG
from nefos.storage.large import SLO_KEYS as SLO_KEYS
from nefos.storage.records import MAX_FILE_SIZE as MAX_FILE_SIZE
from nefos.storage.records import MAX_META_KEY, MAX_META_VALUE
from nefos.storage.records import MAX_OBJECT_SIZE as MAX_OBJECT_SIZE
from nefos.storage.records import etag_of as etag_of
from nefos.storage.service import Namespace, check_container_name, check_object_name

PREFIX = "/object-store/v1"
PUBLIC_PREFIX = "/public"
HASH_ALGORITHM = "sha256"
LISTING_LIMIT = 10000
MAX_META_HEADERS = 90
MAX_HASHMAP_BODY = 64 << 20
SMALL_BODY = 1 << 20  # bodies up to this are read whole and sent in one piece
DIRECTORY_TYPE = "application/directory"
MAX_META_OVERALL_SIZE = 4096  # Swift's bound on one request's metadata names and values
# Swift's storage policies: every container has the one policy there is (its /info);
# Swift names its only policy so when none is configured.
STORAGE_POLICY = "Policy-0"

# System headers kept with an object's user metadata, under keys no header can spell.
ENCODING, DISPOSITION = ":content-encoding", ":content-disposition"
SYSTEM_HEADERS = {
    "content-encoding": ENCODING,
    "content-disposition": DISPOSITION,
    "x-object-manifest": MANIFEST,
}


# -- Swift's wire words ------------------------------------------------------------------

# The reason phrases Swift puts in a status line (they differ from the RFC's in places:
# 413, 416, 500), as its bulk result documents show them.
REASONS = {
    200: "OK",
    201: "Created",
    202: "Accepted",
    204: "No Content",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    409: "Conflict",
    411: "Length Required",
    412: "Precondition Failed",
    413: "Request Entity Too Large",
    415: "Unsupported Media Type",
    416: "Requested Range Not Satisfiable",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


def status_line(status: int) -> str:
    return f"{status} {REASONS.get(status, 'Unknown')}"


# Swift's answers where Synnefo's spec (§1) is silent, by name: (status, text), on both
# dialects. Where the two disagree, ``storage.dialect.TABLE`` picks per endpoint. Texts
# take ``str.format`` fields. docs/swift.md lists them.
SWIFT_FAULTS: dict[str, tuple[int, str]] = {
    "account_put": (405, "The method is not allowed for this resource."),
    "account_delete": (405, "The method is not allowed for this resource."),
    "container_not_empty": (409, "There was a conflict when trying to complete your request."),
    "object_too_large": (413, "Your request is too large."),
    "length_required": (411, "Missing Content-Length header."),
    "object_name_too_long": (400, "Object name length of {length} longer than {limit}"),
    "container_name_too_long": (400, "Container name length of {length} longer than {limit}"),
    "meta_name_empty": (400, "Metadata name cannot be empty"),
    "meta_name_too_long": (400, "Metadata name too long: {header}"),
    "meta_value_too_long": (400, "Metadata value longer than {limit}: {header}"),
    "meta_too_many": (400, "Too many metadata items; max {limit}"),
    "meta_too_large": (400, "Total metadata too large; max {limit}"),
    "archive_format": (400, "Unsupported archive format"),
    "bad_url": (412, "Bad URL"),
    "bad_name": (412, "Invalid UTF8 or contains NULL"),
}


def swift_text(name: str, **fields: object) -> str:
    return SWIFT_FAULTS[name][1].format(**fields)


# -- the call --------------------------------------------------------------------------


@dataclass
class Call:
    """One request, parsed: who calls, on what, with which parameters."""

    request: Request
    storage: Namespace
    credentials: Credentials | None
    account: str
    container: str | None
    name: str | None

    @property
    def user(self) -> str:
        if self.credentials is None:
            raise self.request.scope.get("nefos.auth_error") or errors.NotAuthenticated(
                "Authentication required: pass a valid token in X-Auth-Token"
            )
        return str(self.credentials.user_id)

    @property
    def owner(self) -> bool:
        return self.user == self.account

    @property
    def query(self) -> Mapping[str, str]:
        return self.request.query_params

    @property
    def headers(self) -> Mapping[str, str]:
        return self.request.headers

    def require_owner(self) -> None:
        if not self.owner:
            raise errors.PermissionDenied("Only the account's owner may do this")

    def base_url(self) -> str:
        return self.request.app.state.settings.base_url


# -- helpers ---------------------------------------------------------------------------


def meta_headers(call: Call, prefix: str) -> tuple[dict[str, str], list[str]]:
    """User metadata from ``<prefix>-Meta-*`` and the keys of ``X-Remove-*-Meta-*``;
    values percent-decoded on the Synnefo dialect only (``meta_value_encoding``)."""
    percent = DIALECT.pick(call.request, "meta_value_encoding") == "percent"
    meta: dict[str, str] = {}
    removed: list[str] = []
    count = 0
    meta_prefix = f"{prefix}-meta-"
    remove_prefix = f"x-remove-{prefix.removeprefix('x-')}-meta-"
    size = 0
    for key, value in call.request.headers.items():
        if key.startswith(meta_prefix):
            count += 1
            suffix = key[len(meta_prefix) :]
            if not suffix:
                raise errors.InvalidInput(swift_text("meta_name_empty"))
            _check_meta_header(key, suffix, value)
            size += len(suffix) + len(value)
            meta[meta_key(suffix)] = http.header_text(value, percent_decoded=percent)
        elif key.startswith(remove_prefix):
            count += 1
            removed.append(meta_key(key[len(remove_prefix) :]))
        if count > MAX_META_HEADERS:
            raise errors.InvalidInput(swift_text("meta_too_many", limit=MAX_META_HEADERS))
        if size > MAX_META_OVERALL_SIZE:
            raise errors.InvalidInput(swift_text("meta_too_large", limit=MAX_META_OVERALL_SIZE))
    return meta, removed


def _check_meta_header(header: str, suffix: str, value: str) -> None:
    """Swift's per-header bounds, in its words (the service checks them again)."""
    if len(suffix) > MAX_META_KEY:
        raise errors.InvalidInput(swift_text("meta_name_too_long", header=header))
    if len(value) > MAX_META_VALUE:
        raise errors.InvalidInput(
            swift_text("meta_value_too_long", limit=MAX_META_VALUE, header=header)
        )


def meta_out(request: Request, prefix: str, meta: Mapping[str, str]) -> dict[str, str]:
    """User metadata as headers: the UTF-8 that was sent (OpenStack dialect), or
    percent-encoded (Synnefo dialect, spec §1.1)."""
    percent = DIALECT.pick(request, "meta_value_encoding") == "percent"
    encode = http.header_value if percent else http.as_sent
    return {
        f"{prefix}-Meta-{key}": encode(value)
        for key, value in meta.items()
        if not key.startswith(":")
    }


def limit_param(call: Call) -> int:
    """``limit``: a value that is not a whole number is ignored (Swift and Pithos alike
    list their default page then), one over the bound is 412."""
    raw = (call.query.get("limit") or "").strip()
    if not (raw.isascii() and raw.isdigit()):
        return LISTING_LIMIT
    limit = int(raw) if len(raw) <= len(str(LISTING_LIMIT)) else LISTING_LIMIT + 1
    if limit > LISTING_LIMIT:  # Swift's answer: the request cannot be served as asked
        raise errors.PreconditionFailed(f"Maximum limit is {LISTING_LIMIT}")
    return limit


# Swift reads a flag as true in any of these spellings (its config_true_value).
TRUE_WORDS = frozenset({"true", "1", "yes", "on", "t", "y"})


def reverse_param(call: Call) -> bool:
    """Swift's ``reverse``: names in descending order, and ``marker`` / ``end_marker``
    bound them from above / below, so the last name of a page is the next page's
    marker either way."""
    return (call.query.get("reverse") or "").strip().lower() in TRUE_WORDS


LISTING_TYPES = {
    "json": "application/json; charset=utf-8",
    "xml": "application/xml; charset=utf-8",
    "text": "text/plain; charset=utf-8",
}


def listing_type(request: Request) -> str:
    """The type a listing is (or, for HEAD, would be) served in, as Swift says it."""
    return LISTING_TYPES[listing_format(request.query_params, request.headers.get("accept"))]


def no_content(headers: dict[str, str], media_type: str) -> Response:
    """An account's or container's 204 (HEAD, or an empty listing) as Swift sends it:
    with the listing's type and a zero length, which swiftclient's checks expect."""
    headers = {**headers, "Content-Length": "0"}
    return Response(status_code=204, headers=headers, media_type=media_type)


def render_listing(
    request: Request,
    root: str,
    name: str,
    items: list[dict[str, Any]],
    names: list[str],
    headers: dict[str, str] | None = None,
) -> Response:
    fmt = listing_format(request.query_params, request.headers.get("accept"))
    headers = headers or {}
    if fmt == "json":
        return Response(orjson.dumps(items), 200, headers, media_type=LISTING_TYPES[fmt])
    if fmt == "xml":
        tag = {"accounts": "account", "account": "container", "container": "object"}[root]
        body = xml_listing(root, name, items, tag)
        return Response(body, 200, headers, media_type=LISTING_TYPES[fmt])
    if not names:
        return no_content(headers, LISTING_TYPES[fmt])
    body = ("\n".join(names) + "\n").encode()
    return Response(body, 200, headers, media_type=LISTING_TYPES[fmt])


def until_param(call: Call) -> dt.datetime | None:
    """``until``: seconds since the epoch (or an HTTP date), owner only."""
    raw = call.query.get("until")
    if raw is None:
        return None
    call.require_owner()
    try:
        return dt.datetime.fromtimestamp(float(raw), dt.UTC)
    except (ValueError, OverflowError, OSError):
        parsed = http.parse_http_date(raw)
        if parsed is None:
            raise errors.InvalidInput("until is a time in seconds since the epoch") from None
        return parsed


def timestamp_headers(moment: dt.datetime | None) -> dict[str, str]:
    if moment is None:
        return {}
    return {"Last-Modified": http.http_date(moment), "X-Timestamp": http.epoch(moment)}


async def require_access(call: Call, wanted: str, container: str, name: str) -> None:
    """403 unless the caller owns the account or sharing grants ``wanted``."""
    if call.owner:
        return
    granted = await call.storage.access(call.user, call.account, container, name)
    if granted is None or (wanted == sharing.WRITE and granted != sharing.WRITE):
        raise errors.PermissionDenied(f"You may not {wanted} {container}/{name}")


def content_type_of(call: Call) -> str:
    given = call.headers.get("content-type")
    if given:
        return http.header_text(given)
    assert call.name is not None
    return mimetypes.guess_type(call.name)[0] or "application/octet-stream"


def source_path(value: str, header: str) -> tuple[str, str]:
    """A ``/<container>/<object>`` header; one of another form fails the request's
    precondition (412), as in Swift."""
    path = http.decode_segment(value.split("?", 1)[0], header).lstrip("/")
    container, _, name = path.partition("/")
    if not container or not name:
        raise errors.PreconditionFailed(f"{header} is /<container>/<object>")
    return check_container_name(container), check_object_name(name)


async def read_body(call: Call, limit: int) -> bytes:
    body = bytearray()
    async for chunk in call.request.stream():
        body += chunk
        if len(body) > limit:
            raise errors.TooLarge(f"The body exceeds {limit} bytes")
    return bytes(body)


def meta_key(suffix: str) -> str:
    """``X-Object-Meta-foo_bar`` → ``Foo-Bar``: header names are case-insensitive, so
    keys are kept title-cased, with ``_`` as ``-`` (spec §1.1)."""
    return "-".join(
        part[:1].upper() + part[1:].lower() for part in suffix.replace("_", "-").split("-")
    )


# -- listing formats ---------------------------------------------------------------------


def listing_format(query: dict[str, str], accept: str | None) -> str:
    """``format=`` wins, then the Accept header; text by default (spec §1.1)."""
    wanted = (query.get("format") or "").lower()
    if wanted in ("json", "xml", "plain", "text"):
        return "text" if wanted in ("plain", "text") else wanted
    if accept:
        accept = accept.lower()
        if "application/json" in accept:
            return "json"
        if "application/xml" in accept or "text/xml" in accept:
            return "xml"
    return "text"


def xml_listing(root: str, name: str, items: Iterable[dict[str, object]], item_tag: str) -> bytes:
    """Swift's XML listing: ``<root name=..><item><field>value</field>..</item></root>``;
    ``subdir`` entries are ``<subdir name=".."><name>..</name></subdir>``."""
    out = ['<?xml version="1.0" encoding="UTF-8"?>', f"<{root} name={quoteattr(name)}>"]
    for item in items:
        if "subdir" in item:
            subdir = str(item["subdir"])
            out.append(f"<subdir name={quoteattr(subdir)}><name>{escape(subdir)}</name></subdir>")
            continue
        out.append(f"<{item_tag}>")
        for key, value in item.items():
            if isinstance(value, dict):
                inner = "".join(f"<{k}>{escape(str(v))}</{k}>" for k, v in value.items())
                out.append(f"<{key}>{inner}</{key}>")
            elif value is not None:
                out.append(f"<{key}>{escape(str(value))}</{key}>")
        out.append(f"</{item_tag}>")
    out.append(f"</{root}>")
    return "".join(out).encode()
