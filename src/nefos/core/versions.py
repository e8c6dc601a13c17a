"""Version documents at every API prefix root, unauthenticated.

OpenStack clients discover what an endpoint speaks by GETting its root before anything
else, and each service answers in its own shape; these are those shapes. The
``MAX_MICROVERSION`` values are raised by the issues that add the features.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from nefos.core.faults import json_response

COMPUTE_MAX_MICROVERSION = "2.1"
VOLUME_MAX_MICROVERSION = "3.0"
IDENTITY_V3 = "v3.14"

Doc = Callable[[str], Any]


def _links(href: str) -> list[dict[str, str]]:
    return [{"rel": "self", "href": href}]


def identity_v3(base: str) -> dict[str, Any]:
    return {
        "id": IDENTITY_V3,
        "status": "stable",
        "updated": "2020-04-07T00:00:00Z",
        "links": _links(f"{base}/identity/v3/"),
        "media-types": [
            {"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}
        ],
    }


def identity_v2(base: str) -> dict[str, Any]:
    return {
        "id": "v2.0",
        "status": "deprecated",
        "updated": "2016-08-04T00:00:00Z",
        "links": _links(f"{base}/identity/v2.0/"),
        "media-types": [
            {"base": "application/json", "type": "application/vnd.openstack.identity-v2.0+json"}
        ],
    }


def compute(base: str, version: str) -> dict[str, Any]:
    current = version == "v2.1"
    return {
        "id": version,
        "status": "CURRENT" if current else "SUPPORTED",
        "version": COMPUTE_MAX_MICROVERSION if current else "",
        "min_version": "2.1" if current else "",
        "updated": "2013-07-23T11:33:21Z" if current else "2011-01-21T11:33:21Z",
        "links": _links(f"{base}/compute/{version}/"),
        "media-types": [
            {
                "base": "application/json",
                "type": f"application/vnd.openstack.compute+json;version={version[1:]}",
            }
        ],
    }


def volume(base: str, version: str) -> dict[str, Any]:
    current = version == "v3"
    return {
        "id": "v3.0" if current else "v2.0",
        "status": "CURRENT" if current else "DEPRECATED",
        "version": VOLUME_MAX_MICROVERSION if current else "",
        "min_version": "3.0" if current else "",
        "updated": "2023-03-01T00:00:00Z",
        "links": _links(f"{base}/volume/{version}/"),
        "media-types": [
            {
                "base": "application/json",
                "type": f"application/vnd.openstack.volume+json;version={version[1:]}",
            }
        ],
    }


def image(base: str) -> list[dict[str, Any]]:
    v2 = [
        {"id": v, "status": status, "links": _links(f"{base}/image/v2/")}
        for v, status in (("v2.9", "CURRENT"), ("v2.0", "SUPPORTED"))
    ]
    return [*v2, {"id": "v1.0", "status": "DEPRECATED", "links": _links(f"{base}/image/v1/")}]


def network(base: str) -> dict[str, Any]:
    return {"id": "v2.0", "status": "CURRENT", "links": _links(f"{base}/network/v2.0/")}


NETWORK_RESOURCES = (
    ("network", "networks"),
    ("subnet", "subnets"),
    ("port", "ports"),
    ("floatingip", "floatingips"),
    ("security_group", "security-groups"),
    ("security_group_rule", "security-group-rules"),
    ("quota", "quotas"),
)


def network_resources(base: str) -> list[dict[str, Any]]:
    """Neutron's v2.0 root: the collections it serves."""
    return [
        {
            "name": name,
            "collection": collection,
            "links": _links(f"{base}/network/v2.0/{collection}"),
        }
        for name, collection in NETWORK_RESOURCES
    ]


def account(base: str) -> dict[str, Any]:
    return {"id": "v1.0", "status": "CURRENT", "links": _links(f"{base}/account/v1.0/")}


def _documents() -> dict[str, tuple[int, Doc]]:
    return {
        "/identity": (300, lambda b: {"versions": {"values": [identity_v3(b), identity_v2(b)]}}),
        "/identity/v3": (200, lambda b: {"version": identity_v3(b)}),
        "/identity/v2.0": (200, lambda b: {"version": identity_v2(b)}),
        "/account": (200, lambda b: {"versions": [account(b)]}),
        "/account/v1.0": (200, lambda b: {"version": account(b)}),
        "/compute": (200, lambda b: {"versions": [compute(b, "v2.0"), compute(b, "v2.1")]}),
        "/compute/v2.0": (200, lambda b: {"version": compute(b, "v2.0")}),
        "/compute/v2.1": (200, lambda b: {"version": compute(b, "v2.1")}),
        "/network": (200, lambda b: {"versions": [network(b)]}),
        "/network/v2.0": (200, lambda b: {"resources": network_resources(b)}),
        "/volume": (300, lambda b: {"versions": [volume(b, "v3"), volume(b, "v2")]}),
        "/volume/v2": (200, lambda b: {"versions": [volume(b, "v2")]}),
        "/volume/v3": (200, lambda b: {"versions": [volume(b, "v3")]}),
        "/image": (300, lambda b: {"versions": image(b)}),
        "/image/v1": (300, lambda b: {"versions": image(b)}),
        "/image/v2": (300, lambda b: {"versions": image(b)}),
    }


def _handler(status: int, document: Doc) -> Callable[[Request], Any]:
    async def version_document(request: Request) -> Response:
        return json_response(document(str(request.base_url).rstrip("/")), status)

    return version_document


def router() -> APIRouter:
    """Routes for every root, with and without the trailing slash (clients send both)."""
    api = APIRouter()
    for path, (status, document) in _documents().items():
        handler = _handler(status, document)
        for route in (path, path + "/"):
            api.add_api_route(route, handler, methods=["GET"], include_in_schema=False)
    return api
