"""The services the catalog lists but nefos does not serve yet: networking and volumes.

Their roots answer version documents (:mod:`nefos.core.versions`) so that clients can
discover them; every other path under them answers ``501`` in the service's own fault
shape, so that a client says "not implemented" rather than a puzzling "not found".
One exception: the block storage ``limits`` document, which ``openstack limits show``
reads next to Nova's and fails the whole command on any error. It answers an honest
empty document (no volume limits yet), so the command still shows the compute limits.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from nefos.core import errors
from nefos.core.auth import current_user
from nefos.core.faults import json_response, status_of, synnefo_fault

NETWORK_PREFIXES = ("/network/v2.0",)
VOLUME_PREFIXES = ("/volume/v2", "/volume/v3")
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]

NEUTRON_TYPES = {401: "HTTPUnauthorized", 501: "HTTPNotImplemented"}


def neutron_fault(status: int, error: errors.NefosError) -> Response:
    """Neutron's shape: ``{"NeutronError": {"type", "message", "detail"}}``."""
    kind = NEUTRON_TYPES.get(status, "HTTPError")
    return json_response(
        {"NeutronError": {"type": kind, "message": error.message, "detail": ""}}, status
    )


def _unbuilt(service: str, fault: Callable[[int, errors.NefosError], Response]) -> Any:
    async def not_implemented(request: Request) -> Response:
        # A caller without a valid token learns nothing, not even what is missing.
        try:
            await current_user(request)
        except errors.NefosError as exc:
            return fault(status_of(exc), exc)
        message = (
            f"nefos does not serve the {service} API yet: {request.url.path} is not implemented"
        )
        return fault(501, errors.NotImplementedYet(message))

    return not_implemented


async def volume_limits(request: Request) -> Response:
    """Cinder's limits document, empty: no volume quotas exist until volumes land."""
    try:
        await current_user(request)
    except errors.NefosError as exc:
        return synnefo_fault(status_of(exc), exc)
    return json_response({"limits": {"rate": [], "absolute": {}}})


def router() -> APIRouter:
    """Include after the version documents: the catch-all also matches each root."""
    api = APIRouter()
    for prefix in VOLUME_PREFIXES:
        api.add_api_route(
            f"{prefix}/limits", volume_limits, methods=["GET"], include_in_schema=False
        )
    for prefixes, service, fault in (
        (NETWORK_PREFIXES, "networking (Neutron)", neutron_fault),
        (VOLUME_PREFIXES, "block storage (Cinder)", synnefo_fault),
    ):
        handler = _unbuilt(service, fault)
        for prefix in prefixes:
            api.add_api_route(
                f"{prefix}/{{rest:path}}", handler, methods=METHODS, include_in_schema=False
            )
    return api
