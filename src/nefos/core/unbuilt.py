"""The services the catalog lists but nefos does not serve yet: volumes.

Their roots answer version documents (:mod:`nefos.core.versions`) so that clients can
discover them; every other path under them answers ``501`` in the service's own fault
shape, so that a client says "not implemented" rather than a puzzling "not found".
Exceptions: documents that ``openstack`` commands read next to Nova's, failing the whole
command on any error. The block storage ``limits`` (``openstack limits show``) answer an
honest empty document (no volume limits yet); the block storage quota sets
(``openstack quota show``) answer zero for every resource, which is what a project may
have of them until they are built.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from nefos.core import errors
from nefos.core.auth import current_user
from nefos.core.faults import json_response, status_of, synnefo_fault

VOLUME_PREFIXES = ("/volume/v2", "/volume/v3")
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]


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


# Cinder's and Neutron's quota keys; zero for all: nefos has none of these to give yet.
VOLUME_QUOTAS = (
    "volumes",
    "snapshots",
    "gigabytes",
    "backups",
    "backup_gigabytes",
    "per_volume_gigabytes",
    "groups",
)


async def volume_quota_set(request: Request) -> Response:
    """Cinder's quota set (``?usage=true``: with usage), zero throughout."""
    try:
        await current_user(request)
    except errors.NefosError as exc:
        return synnefo_fault(status_of(exc), exc)
    usage = request.query_params.get("usage", "").lower() in ("true", "1", "yes", "on")
    detail = usage and not request.url.path.endswith("/defaults")
    zero: Any = {"limit": 0, "in_use": 0, "reserved": 0, "allocated": 0} if detail else 0
    body = {"id": request.path_params["project_id"], **dict.fromkeys(VOLUME_QUOTAS, zero)}
    return json_response({"quota_set": body})


def router() -> APIRouter:
    """Include after the version documents: the catch-all also matches each root."""
    api = APIRouter()
    for prefix in VOLUME_PREFIXES:
        api.add_api_route(
            f"{prefix}/limits", volume_limits, methods=["GET"], include_in_schema=False
        )
        for path in ("/os-quota-sets/{project_id}", "/os-quota-sets/{project_id}/defaults"):
            api.add_api_route(
                prefix + path, volume_quota_set, methods=["GET"], include_in_schema=False
            )
    for prefixes, service, fault in ((VOLUME_PREFIXES, "block storage (Cinder)", synnefo_fault),):
        handler = _unbuilt(service, fault)
        for prefix in prefixes:
            api.add_api_route(
                f"{prefix}/{{rest:path}}", handler, methods=METHODS, include_in_schema=False
            )
    return api
