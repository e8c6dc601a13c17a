"""The services the catalog lists but nefos does not serve yet: networking and volumes.

Their roots answer version documents (:mod:`nefos.core.versions`) so that clients can
discover them; every other path under them answers ``501`` in the service's own fault
shape, so that a client says "not implemented" rather than a puzzling "not found".
Exceptions: documents that ``openstack`` commands read next to Nova's, failing the whole
command on any error. The block storage ``limits`` (``openstack limits show``) answer an
honest empty document (no volume limits yet); the block storage quota sets and the
networking quotas (``openstack quota show``) answer zero for every resource, which is
what a project may have of them until they are built, but for the floating IPs, whose
quota exists already.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from nefos.core import errors
from nefos.core.auth import current_user
from nefos.core.faults import json_response, status_of, synnefo_fault

NETWORK_PREFIXES = ("/network/v2.0",)
VOLUME_PREFIXES = ("/volume/v2", "/volume/v3")
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]

NEUTRON_TYPES = {
    401: "HTTPUnauthorized",
    403: "HTTPForbidden",
    404: "HTTPNotFound",
    501: "HTTPNotImplemented",
}

# The limit, use and reservation of a project's floating IPs (the composition root
# passes compute's, which reads the quotas this module may not import).
FloatingIps = Callable[[Request, str], Awaitable[tuple[int, int, int]]]


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
NETWORK_QUOTAS = (
    "network",
    "subnet",
    "subnetpool",
    "port",
    "router",
    "floatingip",
    "security_group",
    "security_group_rule",
    "rbac_policy",
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


def _network_quota(floating_ips: FloatingIps | None) -> Any:
    async def network_quota(request: Request, project_id: str) -> Response:
        """Neutron's quota (``/details``: limit, used and reserved): zero throughout
        but for the floating IPs, whose quota exists already (Nova's ``floating_ips``):
        ``openstack quota show`` lets the network's value win over Nova's."""
        try:
            await current_user(request)
            held = (0, 0, 0) if floating_ips is None else await floating_ips(request, project_id)
        except errors.NefosError as exc:
            return neutron_fault(status_of(exc), exc)
        body: dict[str, Any] = dict.fromkeys(NETWORK_QUOTAS, (0, 0, 0))
        body["floatingip"] = held
        if request.url.path.endswith("/details"):
            shape = {k: {"limit": v[0], "used": v[1], "reserved": v[2]} for k, v in body.items()}
            return json_response({"quota": shape})
        return json_response({"quota": {k: v[0] for k, v in body.items()}})

    return network_quota


def router(floating_ips: FloatingIps | None = None) -> APIRouter:
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
    for prefix in NETWORK_PREFIXES:
        for path in ("", "/default", "/details"):
            api.add_api_route(
                f"{prefix}/quotas/{{project_id}}{path}",
                _network_quota(floating_ips),
                methods=["GET"],
                include_in_schema=False,
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
