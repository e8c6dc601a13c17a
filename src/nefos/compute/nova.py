"""What every Compute API route shares: the microversion it speaks and the headers that
say so, the caller, and the parsing of a body and of references. Kept apart from the
route modules so they need not import each other."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from nefos.compute.service import Compute
from nefos.core import errors
from nefos.core.auth import Credentials, current_user
from nefos.core.body import parse_json
from nefos.core.faults import json_response

PREFIXES = ("/compute/v2.1", "/compute/v2.0")
MICROVERSION = "2.1"
VERSION_HEADERS = {
    "X-OpenStack-Nova-API-Version": MICROVERSION,
    "OpenStack-API-Version": f"compute {MICROVERSION}",
    "Vary": "OpenStack-API-Version, X-OpenStack-Nova-API-Version",
}
_MINOR = re.compile(r"\s*2\.([0-9]+)\s*")  # ASCII: \d is any Unicode digit


def check_microversion(request: Request) -> None:
    """Nova answers 406 for a microversion it does not speak."""
    wanted = request.headers.get("x-openstack-nova-api-version")
    header = request.headers.get("openstack-api-version", "")
    if header.lower().startswith("compute "):
        wanted = header[len("compute ") :]
    if wanted is None or wanted.strip().lower() == "latest":
        return
    match = _MINOR.fullmatch(wanted)
    if match is None or match.group(1).lstrip("0") not in ("", "1"):  # 2.0 and 2.1
        raise errors.NotAcceptable(f"Version {wanted} is not supported by the API (max 2.1)")


def reply(body: Any, status: int = 200) -> Response:
    return json_response(body, status, dict(VERSION_HEADERS))


def empty(status: int) -> Response:
    return Response(status_code=status, headers=dict(VERSION_HEADERS))


async def caller(request: Request) -> tuple[Credentials, Compute]:
    """The caller, once the microversion it asks for is one this API speaks."""
    check_microversion(request)
    credentials = await current_user(request)
    return credentials, request.app.state.engines.compute


async def json_body(request: Request) -> dict[str, Any]:
    """The body as a JSON object (Nova takes JSON only); 400 otherwise."""
    return parse_json(dict[str, Any], await request.body())


def own_projects(credentials: Credentials) -> list[str]:
    return [str(credentials.user_id), str(credentials.project_id)]


async def member_projects(request: Request, credentials: Credentials) -> list[str]:
    """Every project the caller may use: its own, its token's and those it is a member
    of (a server may go to any of them, whatever project the token is scoped to)."""
    members = await request.app.state.engines.projects.member_projects(credentials.user_id)
    return list(dict.fromkeys([*own_projects(credentials), *map(str, members)]))


def ref(value: Any, key: str) -> str:
    """An id, or a link to it as this API gives them (``href`` of ``links``): Nova takes
    the last segment of the URL's path, so a query or a trailing slash changes nothing."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise errors.InvalidInput(f"Invalid {key} provided: an id or a URL")
    if "/" in value:
        value = urlsplit(value).path.rstrip("/").rsplit("/", 1)[-1]
    if not value:
        raise errors.InvalidInput(f"Invalid {key} provided: an id or a URL")
    return value
