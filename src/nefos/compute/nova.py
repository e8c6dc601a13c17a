"""What every Compute API route shares: the microversion it speaks and the headers that
say so. Kept apart from the route modules so they need not import each other."""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from nefos.core import errors
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
