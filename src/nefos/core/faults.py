"""API faults: one table from error kind to status, and each API's own body shape.

Services raise :mod:`nefos.core.errors`; the app turns them into responses here, picking
the body shape by the request path (Keystone v3 speaks ``{"error": {...}}``; Synnefo's
APIs and Nova speak ``{"itemNotFound": {...}}``). Middleware uses the same function, so a
refusal before routing looks exactly like one from a route.
"""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus

import orjson
from starlette.responses import Response

from nefos.core import errors

STATUS: dict[type[errors.NefosError], int] = {
    errors.InvalidInput: 400,
    errors.NotAuthenticated: 401,
    errors.PermissionDenied: 403,
    errors.NotFound: 404,
    errors.NotAllowedMethod: 405,
    errors.NotAcceptable: 406,
    errors.Conflict: 409,
    errors.TooLarge: 413,
    errors.OverQuota: 413,
    errors.LengthRequired: 411,
    errors.PreconditionFailed: 412,
    errors.RangeNotSatisfiable: 416,
    errors.ChecksumMismatch: 422,
    errors.UnsupportedMedia: 415,
    errors.NotImplementedYet: 501,
    errors.Unavailable: 503,
    errors.Throttled: 429,
}

ERROR_FOR_STATUS: dict[int, type[errors.NefosError]] = {
    400: errors.InvalidInput,
    401: errors.NotAuthenticated,
    403: errors.PermissionDenied,
    404: errors.NotFound,
    405: errors.NotAllowedMethod,
    406: errors.NotAcceptable,
    409: errors.Conflict,
    411: errors.LengthRequired,
    412: errors.PreconditionFailed,
    413: errors.TooLarge,
    416: errors.RangeNotSatisfiable,
    422: errors.ChecksumMismatch,
    429: errors.Throttled,
    415: errors.UnsupportedMedia,
    501: errors.NotImplementedYet,
    503: errors.Unavailable,
}

SYNNEFO_NAMES = {
    400: "badRequest",
    401: "unauthorized",
    403: "forbidden",
    404: "itemNotFound",
    405: "notAllowed",
    406: "notAcceptable",
    409: "conflict",
    413: "overLimit",
    415: "badMediaType",
    429: "overLimit",
    500: "internalServerError",
    501: "notImplemented",
    503: "serviceUnavailable",
}


def status_of(error: Exception) -> int:
    for kind in type(error).__mro__:
        if kind in STATUS:
            return STATUS[kind]
    return 500


FaultStyle = Callable[[int, errors.NefosError], Response]


def json_response(
    body: object, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(orjson.dumps(body), status, headers, media_type="application/json")


def synnefo_fault(status: int, error: errors.NefosError) -> Response:
    """Synnefo's (and Nova's) shape: ``{"itemNotFound": {"code", "message", "details"}}``."""
    name = SYNNEFO_NAMES.get(status, "internalServerError")
    body: dict[str, object] = {"code": status, "message": error.message, "details": error.details}
    if error.data is not None:
        body["data"] = error.data
    return json_response({name: body}, status)


def swift_fault(status: int, error: errors.NefosError) -> Response:
    """The object store's (Swift's and Pithos's) shape: the message as plain text; a
    409 with data (the missing blocks of a hashmap PUT) carries that data as JSON."""
    if error.data and "missing" in error.data:
        return json_response(error.data["missing"], status)
    response = Response(error.message, status, error.headers, media_type="text/plain")
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Swift realm="object-store"'
    return response


def keystone_fault(status: int, error: errors.NefosError) -> Response:
    """Keystone's shape: ``{"error": {"code", "title", "message"}}``."""
    try:
        title = HTTPStatus(status).phrase
    except ValueError:
        title = "Error"
    response = json_response(
        {"error": {"code": status, "title": title, "message": error.message}}, status
    )
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Keystone uri="identity"'
    return response


class FaultRouter:
    """Chooses each path's fault style: the longest registered prefix wins."""

    def __init__(self, default: FaultStyle = synnefo_fault):
        self.default = default
        self._styles: list[tuple[str, FaultStyle]] = []

    def register(self, prefix: str, style: FaultStyle) -> None:
        self._styles.append((prefix, style))
        self._styles.sort(key=lambda item: len(item[0]), reverse=True)

    def style_for(self, path: str) -> FaultStyle:
        for prefix, style in self._styles:
            if path.startswith(prefix):
                return style
        return self.default

    def response(self, path: str, error: errors.NefosError, status: int | None = None) -> Response:
        response = self.style_for(path)(status or status_of(error), error)
        for name, value in (error.headers or {}).items():  # e.g. a 429's Retry-After
            response.headers[name] = value
        return response
