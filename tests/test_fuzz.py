"""Random requests over every route family of every API, as two users: no server error,
no write after a refusal, nothing of one user's shown to the other.

The world: alice and bob each with servers, images, keypairs, objects and projects,
alice's things named with secret markers, and an admin with a pending commission.
Hypothesis then draws requests from a table of route templates, filling each
placeholder with a real id of either user or with what clients get wrong: ASCII and
Unicode digits, integers past 64 bits, UUIDs in odd forms, empty path segments, names
with ``<&>%``, NULs and characters outside Latin-1; with random query parameters,
headers and JSON bodies. Every answer must be below 500 (501, a deliberate "not
implemented", aside) and, on the JSON APIs, a fault in the API's own shape; a write
that is refused must leave the database as it was; and no answer to bob or to an
anonymous caller may hold one of alice's markers that the request did not carry.

Bounded and reproducible: one world per database serves every family; each route gets
its own run of ``EXAMPLES`` examples from a seed of its own (a draw of routes clusters
on a few), with no shrinking (the world changes as requests succeed, so a smaller replay
would not meet the same world). Every problem of a run is gathered and reported at the
end, with where the server logged its traceback.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import logging
import os
import traceback
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, seed
from hypothesis import settings as fuzz_settings
from hypothesis import strategies as st
from sqlalchemy import select, text

from nefos.core.config import Settings, ensure_data_dir
from nefos.core.db import Base
from nefos.migrations.models import load_all
from nefos.server.app import create_app
from nefos.server.engines import Engines
from tests.conftest import DATABASES, fresh_database

FAMILIES = ["identity", "account", "compute", "image", "object-store", "volume"]
# Per route and database: the suite's budget is well under a minute. Set
# NEFOS_FUZZ_EXAMPLES to search longer by hand.
EXAMPLES = int(os.environ.get("NEFOS_FUZZ_EXAMPLES", "6"))

# -- values --------------------------------------------------------------------------------

# Digits to str.isdigit() or int() that are not ASCII: superscripts, Arabic-Indic, NKo,
# Devanagari, Lao, fullwidth, mathematical; and numbers that are no digits at all.
UNICODE_DIGITS = [
    "\u00b2", "\u0661", "\u0663", "\u06f4", "\u07c1", "\u0966", "\u0ed1", "\uff11",
    "\U0001d7d9", "\u00b9", "\u00bd", "\u216b", "\u3007",
]  # fmt: skip
HUGE = [
    str((1 << 31) - 1),
    str(1 << 31),
    str((1 << 63) - 1),
    str(1 << 63),
    str(1 << 64),
    str(-(1 << 63) - 1),
    "9" * 30,
    "1" * 5000,  # past int()'s digit limit
]
ODD_NUMBERS = ["0", "-1", "+1", " 1", "1 ", "1_0", "1.5", "1e3", "0x10", "", "NaN", "-0", "007"]
NAMES = [
    "a",
    "<&>",
    "a&b<c>'\"",
    "%",
    "%25",
    "%zz",
    "名前",
    "ünï",
    "😀",
    ".",
    "..",
    " ",
    "a/b",
    "a?b#c",
    "x" * 300,
    "\u2028",
    "\\",
    "a\x00b",
    "",
    "/",
    "a//b",
]


def weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """One of ``choices`` in proportion to its weight (``one_of`` draws evenly)."""
    table = [strategy for weight, strategy in choices for _ in range(weight)]
    return st.integers(0, len(table) - 1).flatmap(lambda i: table[i])


numbers = weighted(
    (2, st.integers(-3, 20).map(str)),
    (2, st.sampled_from(ODD_NUMBERS)),
    (3, st.sampled_from(UNICODE_DIGITS)),
    (2, st.text(st.sampled_from("0123456789" + "".join(UNICODE_DIGITS)), min_size=1, max_size=4)),
    (2, st.sampled_from(HUGE)),
)
uuids = st.one_of(
    st.uuids().map(str),
    st.uuids().map(lambda u: u.hex),
    st.uuids().map(lambda u: "{" + str(u).upper() + "}"),
    st.just("\u0661" * 32),
    st.just("urn:uuid:" + "0" * 32),
)
names = st.one_of(
    st.sampled_from(NAMES),
    st.text(st.characters(exclude_categories=("Cs",)), max_size=10),
)
junk = st.one_of(numbers, uuids, names)

json_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(1 << 70), 1 << 70),
    st.sampled_from([0, 1, -1, (1 << 31), (1 << 63), 1 << 64, -(1 << 64)]),
    st.floats(allow_nan=False, allow_infinity=False),
    junk,
)
any_json = st.recursive(
    json_leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)

# -- the route table -----------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    """A route family's request shape: ``{kind}`` placeholders in the path are filled
    with ids of that kind (a real one or junk); ``body`` is a template whose ``"$kind"``
    strings are filled the same way (dict keys are each optional)."""

    method: str
    path: str
    query: tuple[str, ...] = ()
    headers: tuple[str, ...] = ()
    body: Any = None


NOVA_QUERY = ("limit", "marker", "changes-since", "status", "name")
SERVER_QUERY = (*NOVA_QUERY, "image", "flavor", "ip", "ip6", "sort_key", "sort_dir")
FLAVOR_QUERY = ("minDisk", "minRam", "limit", "marker", "is_public", "SNF:flavor-access")
NOVA_HEADERS = ("X-OpenStack-Nova-API-Version", "OpenStack-API-Version")
SERVER_BODY = {
    "server": {
        "name": "$name",
        "imageRef": "$image",
        "flavorRef": "$flavor",
        "metadata": {"$key": "$name"},
        "tags": ["$tag"],
        "key_name": "$keypair",
        "SNF:key_names": ["$keypair"],
        "project": "$project",
        "adminPass": "$name",
        "personality": [{"path": "$name", "contents": "$name"}],
        "user_data": "$name",
    }
}
ACTIONS = {
    "start": None,
    "os-start": None,
    "os-stop": None,
    "shutdown": None,
    "reboot": {"type": "$name"},
    "resize": {"flavorRef": "$flavor"},
    "reassign": {"project": "$project", "shared_to_project": "$any"},
    "console": {"type": "$name"},
    "os-getVNCConsole": {"type": "$name"},
    "rebuild": {},
    "suspend": None,
    "$name": "$any",
}
APPLICATION = {
    "name": "$name",
    "owner": "$user",
    "homepage": "$name",
    "description": "$name",
    "comments": "$name",
    "start_date": "$date",
    "end_date": "$date",
    "join_policy": "$policy",
    "leave_policy": "$policy",
    "max_members": "$int",
    "private": "$any",
    "resources": {"$resource": {"project_capacity": "$int", "member_capacity": "$int"}},
}
PROJECT_ACTIONS = {
    name: {"reason": "$name", "app_id": "$app"}
    for name in ("approve", "deny", "cancel", "dismiss", "suspend", "unsuspend", "terminate")
}
IMAGE_V2_QUERY = (
    "limit", "marker", "member_status", "visibility", "sort_key", "sort_dir", "sort", "tag",
    "name", "status", "size_min", "size_max", "created_at", "os_hidden", "id",
)  # fmt: skip
IMAGE_V1_QUERY = (
    "name", "container_format", "disk_format", "status", "size_min", "size_max", "sort_key",
    "sort_dir", "marker", "limit", "is_public",
)  # fmt: skip
IMAGE_V1_HEADERS = (
    "X-Image-Meta-Name", "X-Image-Meta-Location", "X-Image-Meta-Is-Public",
    "X-Image-Meta-Min-Disk", "X-Image-Meta-Min-Ram", "X-Image-Meta-Size",
    "X-Image-Meta-Property-Os", "X-Image-Meta-Disk-Format", "X-Image-Meta-Owner",
    "X-Image-Meta-Id", "X-Glance-Registry-Purge-Props", "X-Image-Meta-Container-Format",
)  # fmt: skip
IMAGE_V2_BODY = {
    "name": "$name",
    "id": "$image",
    "disk_format": "$name",
    "container_format": "$name",
    "visibility": "$visibility",
    "min_disk": "$int",
    "min_ram": "$int",
    "protected": "$any",
    "tags": ["$tag"],
    "os_hidden": "$any",
    "owner": "$user",
    "$key": "$any",
}
LISTING_QUERY = (
    "format", "limit", "marker", "end_marker", "prefix", "delimiter", "path", "until", "shared",
    "public", "reverse", "meta", "update", "version",
)  # fmt: skip
OBJECT_QUERY = (
    "version", "hashmap", "format", "multipart-manifest", "until", "disposition-type",
    "update", "limit",
)  # fmt: skip
STORE_HEADERS = (
    "X-Container-Policy-Quota", "X-Container-Policy-Versioning", "X-Account-Policy-Quota",
    "X-Container-Meta-Marker", "X-Account-Meta-Marker", "X-Account-Group-Team",
    "X-Container-Read", "X-Container-Write", "X-Container-Sharing", "X-Container-Policy-Project",
    "X-Auth-User", "X-Auth-Key", "X-Storage-Policy", "Accept",
)  # fmt: skip
OBJECT_HEADERS = (
    "X-Object-Bytes", "X-Source-Version", "X-Copy-From", "X-Move-From", "Destination",
    "X-Source-Account", "X-Object-Manifest", "X-Static-Large-Object", "X-Object-Sharing",
    "X-Object-Public", "Range", "If-Match", "If-None-Match", "If-Modified-Since",
    "If-Unmodified-Since", "If-Range", "X-Delete-At", "X-Delete-After", "Content-Type",
    "X-Object-Meta-Marker", "Content-Range", "ETag", "X-Fresh-Metadata", "Content-Encoding",
    "Content-Disposition", "Destination-Account", "X-Copy-From-Account", "Accept",
)  # fmt: skip
SLO = [{"path": "$path", "etag": "$any", "size_bytes": "$any", "range": "$any"}]
HASHMAP = {"bytes": "$any", "hashes": ["$any"], "block_hash": "$any", "block_size": "$any"}

NOVA = "/compute/{nova}"
PROJECTS = "/account/v1.0/projects"
V2 = "/image/v2/images"
CINDER = "/volume/v3"
SYNNEFO_CINDER = "/cyclades/volume/v2.0"
VOLUME_BODY = {
    "volume": {
        "size": "$int", "name": "$name", "display_name": "$name", "metadata": {"$key": "$any"},
        "imageRef": "$image", "snapshot_id": "$snapshot", "source_volid": "$volume",
        "volume_type": "$name", "project": "$project", "description": "$any",
    }
}  # fmt: skip
VOLUME_UPDATE = {"name": "$name", "description": "$any", "delete_on_termination": "$any"}
EXTEND = {"os-extend": {"new_size": "$int"}}
REASSIGN = {"reassign": {"project": "$project"}}
METADATA = {"metadata": {"$key": "$any"}}
SNAPSHOT_BODY = {"volume_id": "$volume", "name": "$name", "force": "$any", "metadata": "$any"}
V1 = "/image/v1"
STORE = "/object-store/v1"

ROUTES: dict[str, list[Route]] = {
    "identity": [
        Route(
            "POST",
            "/identity/v2.0/tokens",
            body={
                "auth": {
                    "token": {"id": "$token"},
                    "passwordCredentials": {"username": "$user", "password": "$token"},
                    "tenantName": "$project",
                    "tenantId": "$project",
                }
            },
        ),
        Route("GET", "/identity/v2.0/tokens/{token}", ("belongsTo",)),
        Route(
            "POST",
            "/identity/v3/auth/tokens",
            ("nocatalog",),
            body={
                "auth": {
                    "identity": {
                        "methods": ["$method"],
                        "password": {
                            "user": {
                                "id": "$user",
                                "name": "$user",
                                "domain": {"id": "$name", "name": "$name"},
                                "password": "$token",
                            }
                        },
                        "token": {"id": "$token"},
                    },
                    "scope": {"project": {"id": "$project", "name": "$name"}, "domain": "$any"},
                }
            },
        ),
        Route("GET", "/identity/v3/auth/tokens", ("nocatalog",), ("X-Subject-Token",)),
        Route("HEAD", "/identity/v3/auth/tokens", (), ("X-Subject-Token",)),
        Route("DELETE", "/identity/v3/auth/tokens", (), ("X-Subject-Token",)),
        Route("GET", "/identity/v3/auth/{name}"),
        Route("GET", "/identity/v3/users/{user}"),
        Route("GET", "/identity/v3/users/{user}/projects"),
        Route("GET", "/identity/v3/projects/{project}"),
        Route("GET", "/identity/v3/domains/{name}"),
        Route("GET", "/identity/{name}"),
        Route(
            "POST",
            "/account/v1.0/user_catalogs",
            body={"uuids": ["$user"], "displaynames": ["$user"]},
        ),
        Route(
            "POST",
            "/account/v1.0/service/user_catalogs",
            body={"uuids": ["$user"], "displaynames": ["$any"]},
        ),
        Route(
            "POST",
            "/account/v1.0/feedback",
            body={"feedback_msg": "$name", "feedback_data": "$any"},
        ),
        Route("GET", "/ui/login", ("next",)),
        Route("POST", "/ui/login", body="$form"),
        Route("GET", "/ui/login/oidc/{name}", ("next",)),
        Route("GET", "/ui/weblogin", ("next",)),
        Route("GET", "/ui/account"),
    ],
    "account": [
        Route("GET", "/account/v1.0/{name}"),
        Route("GET", "/account/v1.0/quotas"),
        Route("GET", "/account/v1.0/service_quotas", ("user",)),
        Route("GET", "/account/v1.0/service_project_quotas", ("project",)),
        Route(
            "POST",
            "/account/v1.0/commissions",
            body={
                "force": "$any",
                "auto_accept": "$any",
                "name": "$name",
                "provisions": [
                    {
                        "holder": "$holder",
                        "source": "$holder",
                        "resource": "$resource",
                        "quantity": "$int",
                    }
                ],
            },
        ),
        Route("GET", "/account/v1.0/commissions"),
        Route("GET", "/account/v1.0/commissions/{serial}"),
        Route(
            "POST",
            "/account/v1.0/commissions/{serial}/action",
            body={"accept": "$any", "reject": "$any"},
        ),
        Route(
            "POST",
            "/account/v1.0/commissions/action",
            body={"accept": ["$serial"], "reject": ["$serial"]},
        ),
        Route("GET", PROJECTS, ("state", "owner", "name", "mode")),
        Route("POST", PROJECTS, body=APPLICATION),
        Route("GET", PROJECTS + "/{project}"),
        Route("PUT", PROJECTS + "/{project}", body=APPLICATION),
        Route("POST", PROJECTS + "/{project}/action", body=PROJECT_ACTIONS),
        Route("GET", PROJECTS + "/memberships", ("project",)),
        Route(
            "POST",
            PROJECTS + "/memberships",
            body={
                "join": {"project": "$project"},
                "enroll": {"project": "$project", "user": "$user"},
            },
        ),
        Route("GET", PROJECTS + "/memberships/{membership}"),
        Route(
            "POST",
            PROJECTS + "/memberships/{membership}/action",
            body={a: "$name" for a in ("leave", "cancel", "accept", "reject", "remove", "join")},
        ),
    ],
    "compute": [
        Route("GET", NOVA + "/servers", SERVER_QUERY, NOVA_HEADERS),
        Route("GET", NOVA + "/servers/detail", SERVER_QUERY, NOVA_HEADERS),
        Route("POST", NOVA + "/servers", (), NOVA_HEADERS, SERVER_BODY),
        Route("GET", NOVA + "/servers/{server}", (), NOVA_HEADERS),
        Route("PUT", NOVA + "/servers/{server}", (), NOVA_HEADERS, {"server": {"name": "$name"}}),
        Route("DELETE", NOVA + "/servers/{server}"),
        Route("POST", NOVA + "/servers/{server}/action", (), NOVA_HEADERS, ACTIONS),
        Route("GET", NOVA + "/servers/{server}/ips"),
        Route("GET", NOVA + "/servers/{server}/diagnostics"),
        Route("GET", NOVA + "/servers/{server}/tags"),
        Route("PUT", NOVA + "/servers/{server}/tags", body={"tags": ["$tag"]}),
        Route("DELETE", NOVA + "/servers/{server}/tags"),
        Route("GET", NOVA + "/servers/{server}/tags/{tag}"),
        Route("PUT", NOVA + "/servers/{server}/tags/{tag}"),
        Route("DELETE", NOVA + "/servers/{server}/tags/{tag}"),
        Route("GET", NOVA + "/servers/{server}/metadata"),
        Route("POST", NOVA + "/servers/{server}/metadata", body={"metadata": {"$key": "$any"}}),
        Route("PUT", NOVA + "/servers/{server}/metadata", body={"metadata": {"$key": "$name"}}),
        Route("GET", NOVA + "/servers/{server}/metadata/{key}"),
        Route("PUT", NOVA + "/servers/{server}/metadata/{key}", body={"meta": {"$key": "$any"}}),
        Route("DELETE", NOVA + "/servers/{server}/metadata/{key}"),
        Route("GET", NOVA + "/flavors", FLAVOR_QUERY),
        Route("GET", NOVA + "/flavors/detail", FLAVOR_QUERY),
        Route("GET", NOVA + "/flavors/{flavor}"),
        Route("GET", NOVA + "/images", ("limit", "marker")),
        Route("GET", NOVA + "/images/detail", ("limit", "marker")),
        Route("GET", NOVA + "/images/{image}"),
        Route("GET", NOVA + "/limits"),
        Route("GET", NOVA + "/os-keypairs"),
        Route(
            "POST",
            NOVA + "/os-keypairs",
            body={"keypair": {"name": "$keypair", "public_key": "$any", "type": "$name"}},
        ),
        Route("GET", NOVA + "/os-keypairs/{keypair}"),
        Route("DELETE", NOVA + "/os-keypairs/{keypair}"),
        Route("GET", "/vmapi/{name}"),
        Route("GET", "/vmapi/{name}/image"),
        Route("GET", "/compute/{name}"),
    ],
    "image": [
        Route("POST", V2, body=IMAGE_V2_BODY),
        Route("GET", V2, IMAGE_V2_QUERY),
        Route("GET", V2 + "/{image}"),
        Route("DELETE", V2 + "/{image}"),
        Route(
            "PATCH",
            V2 + "/{image}",
            (),
            ("Content-Type",),
            [{"op": "$op", "path": "$jsonpath", "value": "$any"}],
        ),
        Route("PUT", V2 + "/{image}/file", (), ("Content-Type", "Content-Length"), "$bytes"),
        Route("GET", V2 + "/{image}/file", (), ("Range",)),
        Route("PUT", V2 + "/{image}/tags/{tag}"),
        Route("DELETE", V2 + "/{image}/tags/{tag}"),
        Route("GET", V2 + "/{image}/members"),
        Route("POST", V2 + "/{image}/members", body={"member": "$user"}),
        Route("GET", V2 + "/{image}/members/{user}"),
        Route("PUT", V2 + "/{image}/members/{user}", body={"status": "$status"}),
        Route("DELETE", V2 + "/{image}/members/{user}"),
        Route("GET", "/image/v2/schemas/{name}"),
        Route("GET", "/image/v2/info/{name}"),
        Route("GET", V1 + "/images", IMAGE_V1_QUERY),
        Route("GET", V1 + "/images/detail", IMAGE_V1_QUERY),
        Route("POST", V1 + "/images", (), IMAGE_V1_HEADERS, "$bytes"),
        Route("HEAD", V1 + "/images/{image}"),
        Route("GET", V1 + "/images/{image}"),
        Route("PUT", V1 + "/images/{image}", (), IMAGE_V1_HEADERS),
        Route("DELETE", V1 + "/images/{image}"),
        Route("GET", V1 + "/images/{image}/members"),
        Route(
            "PUT",
            V1 + "/images/{image}/members",
            body={"memberships": [{"member_id": "$user", "can_share": "$any"}]},
        ),
        Route("PUT", V1 + "/images/{image}/members/{user}"),
        Route("DELETE", V1 + "/images/{image}/members/{user}"),
        Route("GET", V1 + "/shared-images/{user}"),
    ],
    "volume": [
        Route("GET", CINDER + "/volumes", ("name", "status")),
        Route("GET", CINDER + "/volumes/detail", ("name", "status")),
        Route("POST", CINDER + "/volumes", body=VOLUME_BODY),
        Route("POST", SYNNEFO_CINDER + "/volumes", body=VOLUME_BODY),
        Route("GET", CINDER + "/volumes/{volume}"),
        Route("GET", "/volume/v3/{project}/volumes/{volume}"),
        Route("PUT", CINDER + "/volumes/{volume}", body={"volume": VOLUME_UPDATE}),
        Route("DELETE", CINDER + "/volumes/{volume}"),
        Route("GET", CINDER + "/volumes/{volume}/metadata"),
        Route("POST", CINDER + "/volumes/{volume}/metadata", body={"metadata": {"$key": "$any"}}),
        Route("PUT", CINDER + "/volumes/{volume}/metadata", body={"metadata": {"$key": "$name"}}),
        Route("GET", CINDER + "/volumes/{volume}/metadata/{key}"),
        Route("PUT", CINDER + "/volumes/{volume}/metadata/{key}", body={"meta": {"$key": "$any"}}),
        Route("DELETE", CINDER + "/volumes/{volume}/metadata/{key}"),
        Route(
            "POST", CINDER + "/volumes/{volume}/action", body={"os-extend": {"new_size": "$int"}}
        ),
        Route(
            "POST", CINDER + "/volumes/{volume}/action", body={"reassign": {"project": "$project"}}
        ),
        Route("GET", CINDER + "/snapshots/detail", ("name", "status", "volume_id")),
        Route("POST", CINDER + "/snapshots", body={"snapshot": SNAPSHOT_BODY}),
        Route("GET", SYNNEFO_CINDER + "/snapshots/{snapshot}"),
        Route("PUT", CINDER + "/snapshots/{snapshot}", body={"snapshot": {"name": "$name"}}),
        Route("DELETE", CINDER + "/snapshots/{snapshot}"),
        Route(
            "POST", CINDER + "/snapshots/{snapshot}/metadata", body={"metadata": {"$key": "$any"}}
        ),
        Route("DELETE", CINDER + "/snapshots/{snapshot}/metadata/{key}"),
        Route("GET", CINDER + "/types/{name}"),
        Route("GET", CINDER + "/limits"),
        Route("GET", CINDER + "/os-quota-sets/{project}", ("usage",)),
    ],
    "object-store": [
        Route("GET", STORE, (), ("X-Auth-User", "X-Auth-Key", "X-Storage-User", "X-Storage-Pass")),
        Route("GET", "/object-store/info"),
        Route("GET", STORE + "/{account}", LISTING_QUERY, STORE_HEADERS),
        Route("HEAD", STORE + "/{account}", LISTING_QUERY, STORE_HEADERS),
        Route("POST", STORE + "/{account}", LISTING_QUERY, STORE_HEADERS),
        Route("GET", STORE + "/{container_path}", LISTING_QUERY, STORE_HEADERS),
        Route("HEAD", STORE + "/{container_path}", LISTING_QUERY, STORE_HEADERS),
        Route("PUT", STORE + "/{container_path}", LISTING_QUERY, STORE_HEADERS),
        Route("POST", STORE + "/{container_path}", LISTING_QUERY, STORE_HEADERS, "$bytes"),
        Route("DELETE", STORE + "/{container_path}", LISTING_QUERY, STORE_HEADERS),
        Route("GET", STORE + "/{object_path}", OBJECT_QUERY, OBJECT_HEADERS),
        Route("HEAD", STORE + "/{object_path}", OBJECT_QUERY, OBJECT_HEADERS),
        Route("PUT", STORE + "/{object_path}", OBJECT_QUERY, OBJECT_HEADERS, "$bytes"),
        Route("PUT", STORE + "/{object_path}", OBJECT_QUERY, OBJECT_HEADERS, SLO),
        Route("PUT", STORE + "/{object_path}", OBJECT_QUERY, OBJECT_HEADERS, HASHMAP),
        Route("POST", STORE + "/{object_path}", OBJECT_QUERY, OBJECT_HEADERS),
        Route("DELETE", STORE + "/{object_path}", OBJECT_QUERY, OBJECT_HEADERS),
        Route("COPY", STORE + "/{object_path}", OBJECT_QUERY, OBJECT_HEADERS),
        Route("MOVE", STORE + "/{object_path}", OBJECT_QUERY, OBJECT_HEADERS),
        Route("GET", STORE + "/{account}/{container}/{object}", OBJECT_QUERY, OBJECT_HEADERS),
        Route("PUT", STORE + "/{account}/{container}/{object}", OBJECT_QUERY, OBJECT_HEADERS),
        Route("GET", "/public/{public}", (), ("Range", "If-Match")),
    ],
}

# Query and header values of these names are numbers more often than not.
NUMERIC = {
    "limit", "minDisk", "minRam", "size_min", "size_max", "version", "until", "X-Object-Bytes",
    "X-Source-Version", "X-Container-Policy-Quota", "X-Account-Policy-Quota", "X-Delete-At",
    "X-Delete-After", "Content-Length", "X-Image-Meta-Min-Disk", "X-Image-Meta-Min-Ram",
    "X-Image-Meta-Size", "X-OpenStack-Nova-API-Version",
}  # fmt: skip


# -- the world -----------------------------------------------------------------------------


@dataclass
class World:
    client: httpx.AsyncClient
    engines: Engines
    tokens: dict[str, str]
    ids: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # kind -> owner -> ids
    markers: list[str] = field(default_factory=list)  # in alice's private names
    names: list[str] = field(default_factory=list)  # those names
    # The database's digest as last taken, while nothing can have changed it since (no
    # write succeeded, no job ran): most requests are refused, and each needs a "before".
    digest: dict[str, str] | None = None

    def add(self, kind: str, *values: Any, owner: str = "") -> None:
        self.ids.setdefault(kind, {}).setdefault(owner, []).extend(str(v) for v in values)

    def real(self, kind: str, owner: str | None = None) -> list[str]:
        found = self.ids.get(kind, {})
        if owner is not None:
            return found.get(owner, [])
        return [value for values in found.values() for value in values]

    def marker(self, what: str) -> str:
        """A name of alice's; the marker is its tail, letters and digits that read the
        same in JSON, XML, a URL or a header."""
        marker = f"zq{uuid.uuid4().hex[:10]}"
        self.markers.append(marker)
        self.names.append(f"{what}-{marker}")
        return self.names[-1]


def _ok(response: httpx.Response) -> httpx.Response:
    assert response.status_code < 300, (response.request.url, response.status_code, response.text)
    return response


async def build_world(settings: Settings, engines: Engines) -> World:
    await engines.start_dispatcher()
    await engines.compute.ensure_embedded()
    flavors = await engines.compute.ensure_default_flavors()
    app = create_app(settings, engines)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
    client = httpx.AsyncClient(transport=transport, base_url=settings.base_url, timeout=30)
    identity = engines.identity
    tokens, users = {}, {}
    for name in ("alice", "bob", "admin"):
        user, token = await identity.create_user(
            f"{name}-{uuid.uuid4().hex[:6]}@example.org",
            password="secret-pw",
            admin=name == "admin",
        )
        tokens[name], users[name] = token, user
    world = World(client, engines, tokens)
    for who, user in users.items():
        world.add("user", user.id, user.email, owner=who)
        world.add("token", tokens[who], owner=who)
        world.add("project", user.id, owner=who)
        world.add("holder", f"user:{user.id}", f"project:{user.id}", owner=who)
        world.add("account", user.id, owner=who)
    world.add("flavor", *(f.id for f in flavors))
    world.add("resource", "cyclades.vm", "pithos.diskspace", "astakos.pending_app")
    world.add("method", "password", "token")
    world.add("policy", "auto", "moderated", "closed")
    world.add("visibility", "public", "private", "shared", "community")
    world.add("status", "accepted", "rejected", "pending")
    world.add("op", "add", "replace", "remove")
    world.add("jsonpath", "/name", "/tags", "/min_disk", "/visibility", "/x")
    world.add("date", (dt.datetime.now(dt.UTC) + dt.timedelta(days=30)).isoformat(), "2000-01-01")
    world.add("key", "role", "x")

    def auth(who: str) -> dict[str, str]:
        return {"X-Auth-Token": tokens[who]}

    # Object store: alice's container and objects carry markers; one object is public.
    for who in ("alice", "bob"):
        account = str(users[who].id)
        base = f"{STORE}/{account}"
        secret = who == "alice"
        container = world.marker("box") if secret else "bobs"
        _ok(await client.put(f"{base}/{container}", headers=auth(who)))
        objects = [world.marker("doc"), world.marker("a<&>b")] if secret else ["b1", "b&<2>"]
        for name in objects:
            url = f"{base}/{container}/{quote(name, safe='')}"
            data = (world.marker("data") if secret else "bob's data").encode()
            _ok(await client.put(url, headers=auth(who), content=data))
        _ok(await client.put(f"{base}/shared", headers=auth(who)))
        _ok(
            await client.put(
                f"{base}/shared/open",
                headers={**auth(who), "X-Object-Public": "true"},
                content=b"x",
            )
        )
        public = await client.head(f"{base}/shared/open", headers=auth(who))
        world.add("public", public.headers["X-Object-Public"].rsplit("/", 1)[-1], owner=who)
        world.add("container", container, "shared", owner=who)
        world.add("object", *objects, "open", owner=who)
        world.add("path", *(f"/{container}/{o}" for o in objects), owner=who)
        world.add("container_path", f"{account}/{container}", f"{account}/shared", owner=who)
        world.add("object_path", f"{account}/shared/open", owner=who)
        world.add("object_path", *(f"{account}/{container}/{o}" for o in objects), owner=who)

    # Images: a private one each (alice's named with a marker), through v2.
    for who in ("alice", "bob"):
        secret = who == "alice"
        tag = world.marker("itag") if secret else "btag"
        body = {
            "name": world.marker("image") if secret else "bobs-image",
            "disk_format": "raw",
            "container_format": "bare",
            "visibility": "private",
            "tags": [tag],
        }
        image = (_ok(await client.post(V2, json=body, headers=auth(who)))).json()
        _ok(
            await client.put(
                f"{V2}/{image['id']}/file",
                headers={**auth(who), "Content-Type": "application/octet-stream"},
                content=b"disk",
            )
        )
        world.add("image", image["id"], owner=who)
        world.add("tag", tag, owner=who)

    # Keypairs and servers.
    for who in ("alice", "bob"):
        secret = who == "alice"
        keypair = world.marker("key") if secret else "bobkey"
        _ok(
            await client.post(
                "/compute/v2.1/os-keypairs", json={"keypair": {"name": keypair}}, headers=auth(who)
            )
        )
        world.add("keypair", keypair, owner=who)
        for _ in range(2 if secret else 1):
            tag = world.marker("tag") if secret else "bobtag"
            spec = {
                "name": world.marker("vm") if secret else "bobvm",
                "imageRef": world.real("image", who)[0],
                "flavorRef": str(flavors[0].id),
                "metadata": {"role": world.marker("meta") if secret else "bobmeta"},
                "tags": [tag],
            }
            created = await client.post(
                "/compute/v2.1/servers", json={"server": spec}, headers=auth(who)
            )
            world.add("server", (_ok(created)).json()["server"]["id"], owner=who)
            world.add("tag", tag, owner=who)

    # Projects: alice's private one, and the admin's public one that bob joined.
    end = (dt.datetime.now(dt.UTC) + dt.timedelta(days=30)).isoformat()
    for who, private in (("alice", True), ("admin", False)):
        name = world.marker("proj") if private else f"open-{uuid.uuid4().hex[:6]}"
        fields = {"name": name, "end_date": end, "private": private, "join_policy": "auto"}
        created = (_ok(await client.post(PROJECTS, json=fields, headers=auth(who)))).json()
        approve = {"approve": {"app_id": created["application"]}}
        _ok(
            await client.post(
                f"{PROJECTS}/{created['id']}/action", json=approve, headers=auth("admin")
            )
        )
        world.add("project", created["id"], owner=who)
        world.add("app", created["application"], owner=who)
        world.add("holder", f"project:{created['id']}", owner=who)
    public_project = world.real("project", "admin")[-1]
    joined = await client.post(
        f"{PROJECTS}/memberships", json={"join": {"project": public_project}}, headers=auth("bob")
    )
    world.add("membership", (_ok(joined)).json()["id"], owner="bob")

    # Volumes and a snapshot of alice's named with markers; a volume of bob's.
    for who in ("alice", "bob"):
        secret = who == "alice"
        spec = {
            "size": 1,
            "name": world.marker("vol") if secret else "bobvol",
            "metadata": {"role": world.marker("vmeta") if secret else "bobmeta"},
        }
        made = await client.post(CINDER + "/volumes", json={"volume": spec}, headers=auth(who))
        volume = (_ok(made)).json()["volume"]["id"]
        world.add("volume", volume, owner=who)
        snap = {"volume_id": volume, "name": world.marker("snap") if secret else "bobsnap"}
        taken = await client.post(CINDER + "/snapshots", json={"snapshot": snap}, headers=auth(who))
        world.add("snapshot", (_ok(taken)).json()["snapshot"]["id"], owner=who)

    # A pending commission of the admin's.
    issued = await client.post(
        "/account/v1.0/commissions",
        json={
            "provisions": [
                {"holder": f"user:{users['bob'].id}", "source": f"project:{users['bob'].id}",
                 "resource": "cyclades.vm", "quantity": 1}
            ]
        },
        headers=auth("admin"),
    )  # fmt: skip
    world.add("serial", (_ok(issued)).json()["serial"], owner="admin")
    await quiet(world)
    return world


async def quiet(world: World) -> None:
    """Wait until no job is in flight (a server with a task, a commission or a serial
    not yet settled): the update path writes on its own time, and a refused request
    must be judged on a database nobody else touches."""
    busy = text(
        "SELECT (SELECT count(*) FROM compute_servers WHERE task IS NOT NULL)"
        " + (SELECT count(*) FROM commissions WHERE state = 'pending'"
        " AND clientkey IN ('cyclades', 'astakos', 'pithos'))"
        " + (SELECT count(*) FROM quota_serials WHERE NOT resolved)"
    )
    for _ in range(500):
        async with world.engines.db.session() as s:
            if not await s.scalar(busy):
                return
        world.digest = None
        await asyncio.sleep(0.01)
    raise AssertionError("jobs stayed in flight")


async def snapshot(world: World) -> dict[str, str]:
    """Every table's rows, digested: what a refused request must leave unchanged."""
    load_all()
    digests = {}
    async with world.engines.db.session() as s:
        for table in sorted(Base.metadata.tables.values(), key=lambda t: t.name):
            order = list(table.primary_key.columns) or list(table.columns)
            rows = (await s.execute(select(table).order_by(*order))).all()
            digests[table.name] = hashlib.sha256(repr(rows).encode()).hexdigest()
    return digests


# -- drawing a request ---------------------------------------------------------------------


def value_of(world: World, kind: str, caller: str = "") -> st.SearchStrategy[Any]:
    """Mostly a real value of ``kind``: the caller's own, or another user's (what a
    refusal must not reveal); junk otherwise."""
    if kind == "any":
        return any_json
    if kind == "int":
        return st.one_of(json_leaves, st.integers(-(1 << 70), 1 << 70))
    if kind == "name":
        return st.one_of(names, st.sampled_from(world.names or ["x"]))
    own = world.real(kind, caller)
    theirs = [v for owner, values in world.ids.get(kind, {}).items() if owner != caller
              for v in values]  # fmt: skip
    return weighted(
        (5 if own else 0, st.sampled_from(own or ["-"])),
        (3 if theirs else 0, st.sampled_from(theirs or ["-"])),
        (2, junk),
    )


def body_of(world: World, template: Any, caller: str) -> st.SearchStrategy[Any]:
    if isinstance(template, str) and template.startswith("$"):
        return value_of(world, template[1:], caller)
    if isinstance(template, dict):
        fixed: dict[Any, st.SearchStrategy[Any]] = {}
        optional: dict[Any, st.SearchStrategy[Any]] = {}
        keyed = []
        for key, value in template.items():
            if key.startswith("$"):  # a key drawn from values: a dict of a few of them
                keyed.append(
                    st.dictionaries(
                        value_of(world, key[1:], caller).map(str),
                        body_of(world, value, caller),
                        max_size=3,
                    )
                )
            else:
                optional[key] = body_of(world, value, caller)
        drawn = st.fixed_dictionaries(fixed, optional=optional)
        for extra in keyed:
            drawn = st.tuples(drawn, extra).map(lambda pair: {**pair[1], **pair[0]})
        return drawn
    if isinstance(template, list):
        return st.lists(st.one_of(*(body_of(world, t, caller) for t in template)), max_size=3)
    return st.just(template)


def encode_header(value: str) -> bytes:
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode()


@dataclass
class Request:
    caller: str
    method: str
    path: str
    params: list[tuple[str, str]]
    headers: list[tuple[bytes, bytes]]
    content: bytes | None

    def carries(self, marker: str) -> bool:
        """Whether the caller sent the marker itself (an answer may echo it)."""
        sent = [self.path.encode(), repr(self.params).encode(), self.content or b""]
        sent += [value for _, value in self.headers]
        return any(marker.encode() in part for part in sent)

    def __str__(self) -> str:
        body = (self.content or b"")[:300]
        return (
            f"{self.caller}: {self.method} {self.path} params={self.params} "
            f"headers={self.headers} body={body!r}"
        )


@st.composite
def requests(draw: st.DrawFn, world: World, route: Route) -> Request:
    caller = draw(st.sampled_from(["bob", "alice", "anonymous", "bob", "admin", "alice", "bob"]))
    path = route.path
    segments = path.split("/")
    for i, segment in enumerate(segments):
        if segment.startswith("{") and segment.endswith("}"):
            kind = segment[1:-1]
            if kind == "nova":
                value = draw(st.sampled_from(["v2.1", "v2.0"]))
            else:
                value = str(draw(value_of(world, kind, caller)))
            whole = kind.endswith("_path") or draw(st.booleans())  # else a '/' is a %2F
            segments[i] = quote(value, safe="/" if whole else "")
    path = "/".join(segments)
    params = []
    for name in (
        draw(st.lists(st.sampled_from(route.query), max_size=3, unique=True)) if route.query else []
    ):
        strategy = numbers if name in NUMERIC else st.one_of(value_of(world, "name"), numbers)
        params.append((name, draw(strategy)))
    headers: list[tuple[bytes, bytes]] = []
    if caller != "anonymous":
        headers.append((b"X-Auth-Token", world.tokens[caller].encode()))
    for name in (
        draw(st.lists(st.sampled_from(route.headers), max_size=3, unique=True))
        if route.headers
        else []
    ):
        strategy = (
            numbers
            if name in NUMERIC
            else st.one_of(
                value_of(world, "name"),
                numbers,
                value_of(world, "path", caller),
                value_of(world, "user", caller),
            )
        )
        value = draw(strategy.filter(lambda v: not set(v) & set("\r\n\x00")))
        headers.append((name.encode(), encode_header(value)))
    content = None
    if route.body is not None:
        if route.body == "$bytes":
            content = draw(st.binary(max_size=64))
        elif route.body == "$form":
            form = draw(
                st.dictionaries(
                    st.sampled_from(["email", "password", "next", "csrf"]), names, max_size=3
                )
            )
            content = "&".join(f"{quote(k)}={quote(v)}" for k, v in form.items()).encode()
            headers.append((b"Content-Type", b"application/x-www-form-urlencoded"))
        else:
            kind = draw(st.sampled_from(["template", "template", "template", "json", "garbage"]))
            if kind == "template":
                body = draw(body_of(world, route.body, caller))
            elif kind == "json":
                body = draw(any_json)
            else:
                body = None
                content = draw(st.sampled_from([b"{", b"", b"\xff\xfe", b"[1,", b"null"]))
            if kind != "garbage":
                content = json.dumps(body, ensure_ascii=draw(st.booleans())).encode()
            if not any(k.lower() == b"content-type" for k, _ in headers):
                headers.append((b"Content-Type", b"application/json"))
    return Request(caller, route.method, path, params, headers, content)


# The requests issue 17 lists as answering 500, sent first each run: (family, caller,
# method, path, query, headers, body), with ``{kind}`` an id of the caller's own.
ISSUE_17 = [
    ("object-store", "alice", "GET", STORE + "/{object_path}", [("version", "\u00b2")], [], None),
    ("object-store", "alice", "GET", STORE + "/{container_path}", [("limit", "\u00b2")], [], None),
    ("object-store", "alice", "PUT", STORE + "/{object_path}", [],
     [("X-Object-Bytes", "\u00b2")], b"x"),
    ("object-store", "alice", "POST", STORE + "/{container_path}", [],
     [("X-Container-Policy-Quota", "\u00b2")], None),
    ("object-store", "alice", "PUT", STORE + "/{container_path}/copy", [],
     [("X-Copy-From", "{path}"), ("X-Source-Version", "\u00b2")], None),
    ("object-store", "alice", "GET", STORE + "/{account}///", [], [], None),
    ("object-store", "alice", "PUT", STORE + "/{container_path}/slo",
     [("multipart-manifest", "put")], [], b'[{"path": 5, "etag": [], "size_bytes": "x"}]'),
    ("object-store", "alice", "GET", STORE + "/{container_path}", [("format", "xml")], [], None),
    ("object-store", "alice", "GET", STORE + "/{object_path}",
     [("hashmap", ""), ("format", "xml")], [], None),
    ("object-store", "alice", "GET", STORE + "/{object_path}",
     [("version", str(1 << 64))], [], None),
    ("account", "bob", "GET", PROJECTS + "/memberships/\u00b2", [], [], None),
    ("account", "admin", "GET", "/account/v1.0/commissions/" + str(1 << 64), [], [], None),
    ("account", "admin", "POST", "/account/v1.0/commissions/action", [], [],
     b'{"accept": [18446744073709551616]}'),
    ("compute", "alice", "GET", "/compute/v2.1/servers/\u0661", [], [], None),
    ("compute", "alice", "GET", "/compute/v2.1/servers/" + str(1 << 64), [], [], None),
    ("compute", "alice", "PUT", "/compute/v2.1/servers/{server}/tags/\u540d\u524d", [], [], None),
    ("compute", "alice", "GET", "/compute/v2.1/flavors/detail", [("minDisk", "\u00b2")], [], None),
    ("image", "alice", "POST", V2, [], [], b'{"name": "n", "min_disk": 18446744073709551616}'),
    ("image", "alice", "GET", V2, [("limit", "\u00b2")], [], None),
]  # fmt: skip


def issue_requests(world: World, family: str) -> list[Request]:
    found = []
    for listed, caller, method, path, query, headers, body in ISSUE_17:
        if listed != family:
            continue

        def own(text: str, caller: str = caller) -> str:
            for kind in ("object_path", "container_path", "account", "server", "path"):
                if "{" + kind + "}" in text:
                    text = text.replace("{" + kind + "}", world.real(kind, caller)[0])
            return text

        sent = [(b"X-Auth-Token", world.tokens[caller].encode())]
        sent += [(k.encode(), encode_header(own(v))) for k, v in headers]
        found.append(Request(caller, method, quote(own(path)), query, sent, body))
    return found


# -- the checks ----------------------------------------------------------------------------

WRITES = {"PUT", "POST", "DELETE", "PATCH", "COPY", "MOVE"}


def fault_shape_problem(path: str, response: httpx.Response) -> str | None:
    """A refusal on a JSON API must be that API's JSON fault."""
    if path.startswith(("/object-store", "/public", "/image/v2", "/ui")) or not response.content:
        return None
    try:
        body = response.json()
    except ValueError:
        return "a fault that is not JSON"
    if path.startswith("/identity/v3"):
        ok = (
            isinstance(body.get("error"), dict)
            and body["error"].get("code") == response.status_code
        )
    else:
        ok = (
            isinstance(body, dict)
            and len(body) == 1
            and isinstance(next(iter(body.values())), dict)
            and next(iter(body.values())).get("code") == response.status_code
        )
    return None if ok else f"a fault not in the API's shape: {response.text[:200]}"


class Errors(logging.Handler):
    """The server's last logged traceback, to say where a 500 came from."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.last = ""

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.exc_info[1] is not None:
            frames = traceback.extract_tb(record.exc_info[2])
            ours = [f for f in frames if "/nefos/" in f.filename][-3:] + frames[-1:]
            where = " <- ".join(
                f"{f.filename.rsplit('/', 2)[-2:]}:{f.lineno}" for f in reversed(ours)
            )
            self.last = f"{type(record.exc_info[1]).__name__}: {record.exc_info[1]} at {where}"


async def check(world: World, request: Request, errors_seen: Errors) -> list[str]:
    write = request.method in WRITES
    if write:
        await quiet(world)
        if world.digest is None:
            world.digest = await snapshot(world)
    before = world.digest
    errors_seen.last = ""
    response = await world.client.request(
        request.method,
        request.path,
        params=request.params,
        headers=request.headers,
        content=request.content,
    )
    problems = []
    status = response.status_code
    if status >= 500 and status != 501:
        problems.append(f"{status} for {request}\n    {errors_seen.last}")
    elif 400 <= status < 500:
        shape = fault_shape_problem(request.path, response)
        if shape:
            problems.append(f"{status} {shape} for {request}")
    if write and 400 <= status < 500:
        world.digest = await snapshot(world)
        if before is not None and world.digest != before:
            changed = sorted(t for t in before if before[t] != world.digest.get(t))
            problems.append(f"{status} but {', '.join(changed)} changed, for {request}")
    elif write:
        world.digest = None
    if request.caller in ("bob", "anonymous"):
        shown = response.text + " " + " ".join(f"{k}: {v}" for k, v in response.headers.items())
        for marker in world.markers:
            if marker in shown and not request.carries(marker):
                problems.append(f"{status} shows alice's {marker} to {request.caller}: {request}")
                break
    return problems


# -- the test ------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=DATABASES)
def fuzzed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[asyncio.Runner, World]]:
    """One world per database for every family (building it is most of a family's
    time), on an event loop of its own: hypothesis drives each request from outside."""
    directory = tmp_path_factory.mktemp("fuzz")
    with fresh_database(request, directory) as url, asyncio.Runner() as runner:
        settings = Settings(data_dir=directory / "data", database_url=url, log_level="WARNING")
        settings = ensure_data_dir(settings)
        settings.compute.embedded_delay = 0.01
        engines = Engines(settings)
        runner.run(engines.start())
        try:
            world = runner.run(build_world(settings, engines))
            yield runner, world
            runner.run(world.client.aclose())
        finally:
            runner.run(engines.close())


@pytest.mark.parametrize(
    "family",
    FAMILIES,
)
def test_no_server_error_on_any_input(fuzzed: tuple[asyncio.Runner, World], family: str) -> None:
    runner, world = fuzzed
    errors_seen = Errors()
    logging.getLogger("nefos").addHandler(errors_seen)
    problems: list[str] = []

    def fuzz(route: Route) -> None:
        """Each route's own run, seeded by the route: one derandomized function would
        draw the same choices for every route."""

        @fuzz_settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @seed(zlib.crc32(f"{route.method} {route.path} {route.body!r}".encode()))
        @given(st.data())
        def one(data: st.DataObject) -> None:
            request = data.draw(requests(world, route))
            problems.extend(runner.run(check(world, request, errors_seen)))

        one()

    try:
        for request in issue_requests(world, family):
            problems.extend(runner.run(check(world, request, errors_seen)))
        # Each route its share (a draw of routes clusters on a few); deletions last, so
        # that the other routes meet the world's things.
        for route in sorted(ROUTES[family], key=lambda r: r.method in ("DELETE", "MOVE")):
            fuzz(route)
    finally:
        logging.getLogger("nefos").removeHandler(errors_seen)
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems[:40])
