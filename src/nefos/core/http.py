"""HTTP details the APIs share that are no domain logic: byte ranges, conditional
requests, header encoding, whole numbers from headers and timestamps.

The object store uses all of it; compute's VM API and images serve byte ranges and
decode headers with the same rules. Kept apart from the routes so the rules (which
follow Swift and RFC 9110) can be read and tested on their own.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import email.utils
import re
from urllib.parse import quote, unquote, unquote_to_bytes

from nefos.core import errors
from nefos.core.numbers import INT32_MAX, INT64_MAX, ascii_int

_RANGE_SPEC = re.compile(r"^\s*([0-9]*)\s*-\s*([0-9]*)\s*$")
MAX_RANGES = 100  # Swift refuses more than this many ranges as abuse
ISO_FORMAT = "%Y-%m-%dT%H:%M:%S.%f"


# -- names in paths and headers ---------------------------------------------------------


def whole_number(raw: str, what: str, limit: int = INT64_MAX) -> int:
    """A count, size, version or time from a header or the query: ASCII digits only, at
    most ``limit`` (``nefos.core.numbers`` says why Python's own parsers will not do)."""
    value = ascii_int(raw.strip(), 0, limit)
    if value is None:
        raise errors.InvalidInput(f"{what} is a whole number of at most {limit}")
    return value


def version_number(raw: str | None, what: str) -> int | None:
    """A version (serial) asked for, or None if none is: serials are 32-bit columns."""
    return None if raw is None else whole_number(raw, what, INT32_MAX)


def decode_segment(raw: str, what: str) -> str:
    """A percent-encoded path part as text; bytes that are not UTF-8 are refused
    (Swift: 412 "Invalid UTF8 or contains NULL"; we answer 400 as the spec lists)."""
    try:
        # Starlette hands paths and headers over as latin-1 text: back to the bytes
        # sent, which may be UTF-8 unescaped as well as percent-encoded.
        sent = raw.encode("latin-1")
    except UnicodeEncodeError:
        sent = raw.encode("utf-8")
    try:
        text = unquote_to_bytes(sent).decode("utf-8")
    except UnicodeDecodeError:
        raise errors.InvalidInput(f"{what} is not valid UTF-8") from None
    if "\0" in text:
        raise errors.InvalidInput(f"{what} contains NUL")
    return text


def header_text(raw: str, percent_decoded: bool = True) -> str:
    """A header value as the client meant it: servers see latin-1 characters, clients
    send UTF-8 bytes (swiftclient) or percent-encoded UTF-8 (kamaki). A value whose
    percent signs are its own syntax (``X-Object-Manifest``, a URL-encoded path) is
    kept as sent: ``percent_decoded=False``."""
    try:
        text = raw.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        raise errors.InvalidInput("A header value is not valid UTF-8") from None
    if "%" in text and percent_decoded:
        with contextlib.suppress(UnicodeDecodeError):
            text = unquote(text, errors="strict")
    if "\0" in text:
        raise errors.InvalidInput("A header value contains NUL")
    return text


def header_value(text: str) -> str:
    """Outgoing values: non-ASCII is percent-encoded (spec §1.1)."""
    return text if text.isascii() else quote(text, safe=" !#$&'()*+,/:;=?@[]~")


def as_sent(text: str) -> str:
    """Outgoing values Swift gives back byte for byte (Content-Type, Content-Encoding,
    X-Object-Manifest): their UTF-8, as the latin-1 text ASGI servers write unchanged.
    Percent-encoding them would change what clients compare with what they sent."""
    return text if text.isascii() else text.encode().decode("latin-1")


# -- time ------------------------------------------------------------------------------


def whole_second(moment: dt.datetime) -> dt.datetime:
    """A time as HTTP dates give it: rounded up, as Swift rounds, so a Last-Modified
    is never before the change it reports (and a listing's exact time, rounded up,
    equals it)."""
    if moment.microsecond:
        moment += dt.timedelta(microseconds=1_000_000 - moment.microsecond)
    return moment


def http_date(moment: dt.datetime) -> str:
    return email.utils.format_datetime(whole_second(moment).astimezone(dt.UTC), usegmt=True)


def parse_http_date(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed is None:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def iso(moment: dt.datetime | None) -> str | None:
    """Listing timestamps as Swift writes them: ISO 8601, microseconds, UTC, no zone."""
    return moment.astimezone(dt.UTC).strftime(ISO_FORMAT) if moment else None


def epoch(moment: dt.datetime) -> str:
    return f"{moment.timestamp():.5f}"


# -- conditional requests ----------------------------------------------------------------


def _etags(value: str) -> list[str]:
    return [tag.strip().removeprefix("W/").strip('"') for tag in value.split(",") if tag.strip()]


def etag_matches(header: str, etag: str) -> bool:
    tags = _etags(header)
    return "*" in tags or etag.strip('"') in tags


def check_preconditions(
    headers: dict[str, str], etag: str, modified: dt.datetime, reading: bool
) -> bool:
    """RFC 9110 §13.2.2 order. Returns True when a read should answer 304; raises
    PreconditionFailed for 412."""
    modified = whole_second(modified)
    if_match = headers.get("if-match")
    if if_match is not None and not etag_matches(if_match, etag):
        raise errors.PreconditionFailed("If-Match does not match")
    # Both hold or the request fails, as Swift and Pithos check them (RFC 9110 would
    # skip the date when If-Match is given).
    since = parse_http_date(headers.get("if-unmodified-since"))
    if since is not None and modified > since:
        raise errors.PreconditionFailed("Modified since If-Unmodified-Since")
    if_none_match = headers.get("if-none-match")
    if if_none_match is not None:
        if etag_matches(if_none_match, etag):
            if reading:
                return True
            raise errors.PreconditionFailed("If-None-Match matches")
    elif reading:
        since = parse_http_date(headers.get("if-modified-since"))
        if since is not None and modified <= since:
            return True
    return False


def range_applies(headers: dict[str, str], etag: str, modified: dt.datetime) -> bool:
    """If-Range: serve the range only if the validator still holds."""
    validator = headers.get("if-range")
    if validator is None:
        return True
    date = parse_http_date(validator)
    if date is not None:
        return whole_second(modified) <= date
    return etag_matches(validator, etag) and "*" not in validator


# -- byte ranges ---------------------------------------------------------------------------


def parse_ranges(value: str | None, size: int) -> list[tuple[int, int]] | None:
    """``Range: bytes=...`` as half-open ``(start, end)`` pairs, or None to serve the
    whole body (no header, or one Swift ignores as malformed). Raises
    RangeNotSatisfiable when no range overlaps the data."""
    if not value:
        return None
    unit, _, specs = value.partition("=")
    if unit.strip().lower() != "bytes" or not specs.strip():
        return None
    parts = specs.split(",")
    if len(parts) > MAX_RANGES:
        return None
    ranges: list[tuple[int, int]] = []
    for part in parts:
        match = _RANGE_SPEC.match(part)
        if match is None:
            return None
        first, last = match.groups()
        if not first and not last:
            return None
        if not first:
            suffix = int(last)
            if suffix == 0:
                continue
            ranges.append((max(size - suffix, 0), size))
            continue
        start = int(first)
        end = int(last) + 1 if last else size
        if last and int(last) < start:
            return None
        if start >= size:
            continue
        ranges.append((start, min(end, size)))
    if not ranges:
        raise errors.RangeNotSatisfiable(
            "Requested range not satisfiable", headers={"Content-Range": f"bytes */{size}"}
        )
    return ranges


def content_range(start: int, end: int, size: int) -> str:
    return f"bytes {start}-{end - 1}/{size}"


def parse_content_range(value: str) -> tuple[int | None, int | None]:
    """Pithos data updates: ``bytes a-b/*`` or ``bytes a-/*`` writes at a (b, if given,
    bounds the length), ``bytes */*`` appends. Returns (offset or None, last or None)."""
    match = re.match(r"^\s*bytes\s+(\*|([0-9]+)-([0-9]*))\s*/\s*(\*|[0-9]+)\s*$", value)
    if match is None:
        raise errors.InvalidInput(f"Bad Content-Range {value!r}")
    if match.group(1) == "*":
        return None, None
    start = int(match.group(2))
    last = int(match.group(3)) if match.group(3) else None
    if last is not None and last < start:
        raise errors.RangeNotSatisfiable(f"Bad Content-Range {value!r}")
    return start, last
