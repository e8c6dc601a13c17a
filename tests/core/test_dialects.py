"""The dialect mapping on its own: which prefix routes where, and what links say."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from nefos.core.dialects import (
    Dialect,
    Dialects,
    Difference,
    Endpoint,
    Table,
    dialect_of,
    public_path,
)
from nefos.identity.catalog import SERVICES, synnefo_endpoints

ENDPOINTS = [
    Endpoint("/cyclades/compute/v2.0", "/compute/v2.0"),
    Endpoint("/pithos/object-store/v1", "/object-store/v1"),
    Endpoint("/pithos/public", "/public"),
]


def routed(path: str, raw: bytes | None = None) -> Request:
    scope = {"type": "http", "path": path, "raw_path": raw or path.encode(), "headers": []}
    return Request(Dialects(app=None, endpoints=ENDPOINTS).route(scope))  # type: ignore[arg-type]


def test_a_synnefo_prefix_routes_as_the_path_it_stands_for():
    request = routed("/cyclades/compute/v2.0/servers/detail")
    assert request.scope["path"] == "/compute/v2.0/servers/detail"
    assert dialect_of(request) is Dialect.SYNNEFO


def test_the_raw_path_keeps_its_encoding():
    request = routed("/pithos/object-store/v1/a/c/x y", b"/pithos/object-store/v1/a/c/x%20y")
    assert request.scope["raw_path"] == b"/object-store/v1/a/c/x%20y"


@pytest.mark.parametrize(
    "path", ["/compute/v2.1/servers", "/cyclades/compute/v2.00/servers", "/pithos/publicity"]
)
def test_every_other_path_is_openstack_and_untouched(path: str):
    request = routed(path)
    assert request.scope["path"] == path
    assert dialect_of(request) is Dialect.OPENSTACK


def test_links_stay_on_the_dialect_the_client_came_through():
    synnefo = routed("/pithos/object-store/v1/a/c/o")
    assert public_path(synnefo, "/public/abc") == "/pithos/public/abc"
    assert public_path(synnefo, "/compute/v2.0/servers/1") == "/cyclades/compute/v2.0/servers/1"
    openstack = routed("/object-store/v1/a/c/o")
    assert public_path(openstack, "/public/abc") == "/public/abc"


def test_a_table_answers_by_dialect_and_refuses_two_rows_of_one_name():
    table = Table("x", Difference("status", "SHUTOFF", "STOPPED", "why"))
    assert table.pick(routed("/cyclades/compute/v2.0/servers"), "status") == "STOPPED"
    assert table.pick(routed("/compute/v2.0/servers"), "status") == "SHUTOFF"
    with pytest.raises(ValueError):
        Table("x", Difference("a", 1, 2, ""), Difference("a", 1, 2, ""))


def test_every_v2_catalog_endpoint_is_a_synnefo_prefix_over_real_routes():
    mapped = {e.public: e.routes for e in synnefo_endpoints()}
    for service in SERVICES:
        if service.v3_only or service.type == "astakos_weblogin":
            continue
        assert mapped[service.v2_path] == service.routes
        assert service.v2_path.split("/")[1] in ("astakos", "cyclades", "pithos")
