"""Cross-cutting HTTP concerns, each a small pure-ASGI middleware.

The app lists them in one place (``nefos.server.app.MIDDLEWARE``), outermost first:

* :class:`SecurityHeaders`: ``X-Content-Type-Options: nosniff`` and ``Referrer-Policy:
  no-referrer`` on every response; on the web pages also a strict
  Content-Security-Policy (``frame-ancestors 'none'``), ``X-Frame-Options: DENY`` and
  ``Cache-Control: no-store``. Outermost, so even a last-resort 500 carries them.
* :class:`RequestId`: gives every request an id (``X-Openstack-Request-Id`` and Swift's
  ``X-Trans-Id``, taken from the client's ``X-Openstack-Request-Id``/``X-Request-Id`` if
  well-formed; under the Swift prefixes it is Swift's transaction id, ``tx`` + 21 hex
  digits + ``-`` + the Unix time in 10 hex digits, in both headers, as Swift's clients and
  functional tests expect), logs one access line per request, and turns any escaped exception into a
  500 fault (a client that went away mid-request is logged as 499, not as an error).
* :class:`RequestLimits`: refuses oversized headers (400), a NUL in the URL of an API that
  does not read its raw path itself (400), and oversized bodies on the JSON APIs (413),
  before any route reads them; streaming prefixes (object data) are exempt from the last.
* :class:`Authentication`: resolves ``X-Auth-Token`` (header, or ``?X-Auth-Token=`` where
  Synnefo accepts it) once, into ``scope["nefos.credentials"]``; a token from an
  application credential that does not allow the request leaves no credentials and a
  403 for the routes that need them.
"""

from __future__ import annotations

import logging
import random
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qsl

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nefos.core import errors
from nefos.core.auth import Credentials, refusal
from nefos.core.config import Limits
from nefos.core.faults import FaultRouter
from nefos.core.logging import request_id
from nefos.core.numbers import ascii_int

log = logging.getLogger("nefos.http")

_VALID_REQUEST_ID = re.compile(r"^req-[0-9a-f-]{36}$")
_SECRET_IN_PATH = re.compile(r"(/tokens/|/vmapi/)[^/]+")


def _new_request_id() -> str:
    # Request ids need to be unique, not secret: skip uuid4's system call per request.
    return f"req-{uuid.UUID(int=random.getrandbits(128), version=4)}"


def _new_trans_id() -> str:
    """Swift's transaction id: 21 random hex digits, then when (clients parse the time)."""
    return f"tx{random.getrandbits(84):021x}-{int(time.time()):010x}"


# What the access log says of a request whose client went away before its answer (as
# nginx logs it): an upload cut short is the client's doing, not a server error.
CLIENT_CLOSED = 499


EVERY_RESPONSE = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer")]

# The pages load their own stylesheet and nothing else: no script, no inline code, no
# framing by any site (clickjacking). No form-action: a login's redirects go on to a
# client's weblogin callback, which browsers would check against it.
PAGE_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'"
)
PAGES = [
    (b"content-security-policy", PAGE_POLICY.encode()),
    (b"x-frame-options", b"DENY"),
    (b"cache-control", b"no-store"),  # the account page shows the API token
]


class SecurityHeaders:
    """Headers that keep browsers from misreading answers.

    ``nosniff`` everywhere: a browser never runs an object served as ``text/plain`` as
    a page or a script. ``no-referrer``: a URL that carries a token (a weblogin
    hand-off, ``?X-Auth-Token=``) never reaches the next site. Under ``pages`` (the
    web login) the :data:`PAGES` headers too, unless the route set them.
    """

    def __init__(self, app: ASGIApp, pages: str):
        self.app = app
        self.pages = pages

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        page = path == self.pages or path.startswith(self.pages + "/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.extend(EVERY_RESPONSE)
                if page:
                    present = {name.lower() for name, _ in headers}
                    headers.extend(item for item in PAGES if item[0] not in present)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class RequestId:
    def __init__(self, app: ASGIApp, faults: FaultRouter, trans_id_prefixes: tuple[str, ...] = ()):
        self.app = app
        self.faults = faults
        self.trans_id_prefixes = trans_id_prefixes  # paths that get Swift's form of id

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = _header(scope, b"x-openstack-request-id") or _header(scope, b"x-request-id")
        if self.trans_id_prefixes and scope["path"].startswith(self.trans_id_prefixes):
            rid = _new_trans_id()
        else:
            rid = given if given and _VALID_REQUEST_ID.match(given) else _new_request_id()
        token = request_id.set(rid)
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                headers = list(message.get("headers", []))
                # Swift's clients log X-Trans-Id, OpenStack's the other: both name it.
                headers.append((b"x-openstack-request-id", rid.encode()))
                headers.append((b"x-trans-id", rid.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except ClientDisconnect:
            status = CLIENT_CLOSED  # nobody is left to answer, and nothing went wrong here
        except Exception:
            log.exception("unhandled error")
            if not response_started:
                fault = self.faults.response(
                    scope["path"], errors.NefosError("Internal server error"), 500
                )
                await fault(scope, receive, send_with_id)
        finally:
            path = _SECRET_IN_PATH.sub(r"\1***", scope["path"])  # tokens never reach logs
            log.info(
                "%s %s %s",
                scope["method"],
                path,
                status,
                extra={
                    "method": scope["method"],
                    "path": path,
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    "client": (scope.get("client") or ("", 0))[0],
                },
            )
            request_id.reset(token)


class RequestLimits:
    def __init__(
        self,
        app: ASGIApp,
        faults: FaultRouter,
        limits: Limits,
        streaming_prefixes: tuple[str, ...] = (),
        raw_path_prefixes: tuple[str, ...] = (),
    ):
        self.app = app
        self.faults = faults
        self.limits = limits
        self.streaming_prefixes = streaming_prefixes
        self.raw_path_prefixes = raw_path_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        query = scope["query_string"]
        if ("\0" in path and not path.startswith(self.raw_path_prefixes)) or (
            b"%00" in query or b"\0" in query
        ):
            # No name, id or filter holds a NUL (PostgreSQL cannot even store one); the
            # object store reads its raw path and says so in its own words.
            await self._refuse(
                scope, receive, send, errors.InvalidInput("The URL contains a NUL (%00)"), 400
            )
            return
        total = 0
        for name, value in scope["headers"]:
            total += len(name) + len(value)
            if len(value) > self.limits.header_value_bytes:
                await self._refuse(
                    scope,
                    receive,
                    send,
                    errors.InvalidInput(
                        f"Header {name.decode('latin-1')} is longer than "
                        f"{self.limits.header_value_bytes} bytes"
                    ),
                    400,
                )
                return
        if total > self.limits.header_bytes:
            await self._refuse(
                scope,
                receive,
                send,
                errors.InvalidInput(f"Request headers exceed {self.limits.header_bytes} bytes"),
                400,
            )
            return
        if path.startswith(self.streaming_prefixes):
            await self.app(scope, receive, send)
            return
        limit = self.limits.json_body_bytes
        length = _header(scope, b"content-length")
        if length is not None:
            size = ascii_int(length)
            if size is None:
                await self._refuse(
                    scope, receive, send, errors.InvalidInput("Invalid Content-Length"), 400
                )
                return
            if size > limit:
                await self._refuse(scope, receive, send, _too_large(limit), 413)
                return
        await self.app(scope, _counting(receive, limit), send)

    async def _refuse(
        self, scope: Scope, receive: Receive, send: Send, error: errors.NefosError, status: int
    ) -> None:
        await self.faults.response(scope["path"], error, status)(scope, receive, send)


def _too_large(limit: int) -> errors.TooLarge:
    return errors.TooLarge(f"Request body exceeds {limit} bytes")


def _counting(receive: Receive, limit: int) -> Receive:
    """Stop a chunked body that grows past the limit (no Content-Length to check first)."""
    seen = 0

    async def receive_counted() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise _too_large(limit)
        return message

    return receive_counted


Authenticator = Callable[[str], Awaitable[Credentials]]


class Authentication:
    """Resolves the caller's token once per request.

    ``authenticate(token)`` returns the credentials or raises
    :class:`~nefos.core.errors.NotAuthenticated`; the error is kept in the scope so that
    only routes that need a user refuse the request (version documents stay public).
    """

    def __init__(self, app: ASGIApp, authenticate: Authenticator):
        self.app = app
        self.authenticate = authenticate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope["nefos.credentials"] = None
            token = _header(scope, b"x-auth-token")
            if token is None and b"X-Auth-Token" in scope["query_string"]:
                query = dict(parse_qsl(scope["query_string"].decode("latin-1")))
                token = query.get("X-Auth-Token")
            if token:
                try:
                    credentials = await self.authenticate(token)
                except errors.NotAuthenticated as exc:
                    scope["nefos.auth_error"] = exc
                else:
                    refused = refusal(credentials, scope["method"], scope["path"])
                    if refused is None:
                        scope["nefos.credentials"] = credentials
                    else:
                        scope["nefos.auth_error"] = refused
        await self.app(scope, receive, send)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None
