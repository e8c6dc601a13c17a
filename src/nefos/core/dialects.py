"""Two wire dialects over one cloud: OpenStack's for OpenStack clients, Synnefo's for kamaki.

Where the two ecosystems disagree (a stopped server is ``SHUTOFF`` or ``STOPPED``; a
container POST answers 204 or 202), a client of one breaks on the other's answer. So every
API is served twice, and the endpoint a request arrives on chooses the dialect:

* the **OpenStack** dialect on the paths the Keystone v3 catalog publishes (``/compute/v2.1``,
  ``/object-store/v1``, ``/image``, ...), and on every path not listed below;
* the **Synnefo** dialect on the paths the v2.0 catalog publishes, each a Synnefo-style
  prefix (``/cyclades/compute/v2.0``, ``/pithos/object-store/v1``, ...) over one of the
  former.

:class:`Dialects` maps a Synnefo-style prefix onto the path the routes know, before any
of them sees the request, so data, rights and behaviour cannot differ between the two:
only the wire details that each API's :class:`Table` names do. Handlers ask the table
(``TABLE.pick(request, "stopped_status")``), never the dialect itself, so every difference
is a row that ``tests/test_dialects.py`` walks against both endpoints and
``docs/dialects.md`` lists.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send


class Dialect(enum.Enum):
    OPENSTACK = "openstack"
    SYNNEFO = "synnefo"


_DIALECT = "nefos.dialect"
_ENDPOINTS = "nefos.endpoints"


@dataclass(frozen=True)
class Endpoint:
    """One Synnefo-dialect prefix and the route prefix it stands for."""

    public: str  # e.g. "/cyclades/compute/v2.0"
    routes: str  # e.g. "/compute/v2.0"


class Dialects:
    """Pure-ASGI middleware: a request under a Synnefo-style prefix is routed as the
    OpenStack path it stands for, marked Synnefo.

    ``path`` and ``raw_path`` are both rewritten, because the object store decodes its
    names from the raw path. The endpoints are kept with the request, so links in replies
    stay on the dialect the client came through (:func:`public_path`).
    """

    def __init__(self, app: ASGIApp, endpoints: Iterable[Endpoint]):
        self.app = app
        # Longest first, so "/pithos/public" never shadows a longer sibling.
        self.endpoints = sorted(endpoints, key=lambda e: len(e.public), reverse=True)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            scope = self.route(scope)
        await self.app(scope, receive, send)

    def route(self, scope: Scope) -> Scope:
        path: str = scope["path"]
        for endpoint in self.endpoints:
            public = endpoint.public
            if path == public or path.startswith(public + "/"):
                rest = path[len(public) :]
                scope = dict(scope)
                scope["path"] = endpoint.routes + rest
                raw = scope.get("raw_path")
                if raw is not None and raw.startswith(public.encode()):
                    scope["raw_path"] = endpoint.routes.encode() + raw[len(public) :]
                scope[_DIALECT] = Dialect.SYNNEFO
                scope[_ENDPOINTS] = self.endpoints
                return scope
        return scope


def dialect_of(request: Request) -> Dialect:
    return request.scope.get(_DIALECT, Dialect.OPENSTACK)


def public_path(request: Request, path: str) -> str:
    """``path`` (as the routes know it) as a client of this request's dialect reaches it:
    a link in a Synnefo-dialect reply stays on Synnefo-dialect endpoints."""
    for endpoint in request.scope.get(_ENDPOINTS, ()):
        routes = endpoint.routes
        if path == routes or path.startswith(routes + "/"):
            return endpoint.public + path[len(routes) :]
    return path


@dataclass(frozen=True)
class Difference:
    """One wire detail on which OpenStack and Synnefo disagree, and why each says so."""

    name: str
    openstack: Any
    synnefo: Any
    why: str


class Table:
    """The differences of one API: the only place its handlers learn their dialect from."""

    def __init__(self, api: str, *differences: Difference):
        self.api = api
        self._rows = {d.name: d for d in differences}
        if len(self._rows) != len(differences):
            raise ValueError(f"{api}: two differences share a name")

    def pick(self, request: Request, name: str) -> Any:
        row = self._rows[name]
        return row.synnefo if dialect_of(request) is Dialect.SYNNEFO else row.openstack

    def row(self, name: str) -> Difference:
        return self._rows[name]

    def __iter__(self) -> Iterator[Difference]:
        return iter(self._rows.values())
