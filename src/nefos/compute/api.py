"""The Compute API (Nova 2.1, with Synnefo's extensions) at ``/compute/v2.1`` and
``/compute/v2.0``: servers, actions, metadata, flavors and the images view.

Every request that changes a server answers at once (202) with the server still in
its old state; the backend's job events move it (see ``compute/events.py``). Faults
are Nova's, ``{"itemNotFound": {"code", "message", "details"}}``.
"""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from nefos.compute import api_nics, api_volumes, quota_sets
from nefos.compute.api_actions import action
from nefos.compute.api_listing import next_link, server_query, with_count
from nefos.compute.backend_networks import FIREWALL_LEVELS
from nefos.compute.dialect import FLAVOR_EXTRAS, IMAGE_EXTRAS, SERVER_EXTRAS
from nefos.compute.dialect import TABLE as DIALECT
from nefos.compute.flavors import FlavorQuery
from nefos.compute.nova import (
    PREFIXES,
    caller,
    check_microversion,
    empty,
    json_body,
    member_projects,
    ref,
    reply,
)
from nefos.compute.service import (
    Compute,
    ServerView,
)
from nefos.core import errors
from nefos.core.auth import current_admin, current_user
from nefos.core.dialects import public_path
from nefos.core.numbers import INT64_MIN, ascii_int, ascii_uuid
from nefos.images.catalog import ImageQuery
from nefos.images.service import Image, Images

VM_STATES = {  # Nova's vm_state for each status
    "BUILD": "building",
    "ACTIVE": "active",
    "REBOOT": "active",
    "STOPPED": "stopped",
    "RESIZE": "stopped",
    "ERROR": "error",
    "DELETED": "deleted",
}
ZONE = "nova"  # backends have no zone or group of their own yet: one zone, as Nova's default

router = APIRouter()


_reply = reply


def _accepted() -> Response:
    return empty(202)


@dataclass(frozen=True)
class Wire:
    """How one request's answers are written: its endpoint's links and the dialect's
    choices (``compute.dialect``), read from the table once per request."""

    base: str
    stopped: str  # the name of STOPPED
    server_drops: frozenset[str]
    profiles_as_groups: bool  # security_groups: the NICs' firewall profiles, or "default"
    flavor_drops: frozenset[str]
    image_drops: frozenset[str]

    def status(self, status: str) -> str:
        return self.stopped if status == "STOPPED" else status


def _wire(request: Request) -> Wire:
    path = request.url.path
    prefix = next(p for p in PREFIXES if path.startswith(p))
    return Wire(
        base=request.app.state.settings.base_url + public_path(request, prefix),
        stopped=DIALECT.pick(request, "stopped_status"),
        server_drops=SERVER_EXTRAS - DIALECT.pick(request, "server_extras"),
        profiles_as_groups=DIALECT.pick(request, "server_security_groups") == "profiles",
        flavor_drops=FLAVOR_EXTRAS - DIALECT.pick(request, "flavor_extras"),
        image_drops=IMAGE_EXTRAS - DIALECT.pick(request, "image_extras"),
    )


def _without(item: dict[str, Any], drops: frozenset[str]) -> dict[str, Any]:
    for key in drops:
        del item[key]
    return item


def _links(base: str, kind: str, item_id: Any) -> list[dict[str, str]]:
    return [
        {"rel": "self", "href": f"{base}/{kind}/{item_id}"},
        {"rel": "bookmark", "href": f"{base.rsplit('/', 1)[0]}/{kind}/{item_id}"},
    ]


def _time(moment: dt.datetime | None) -> str | None:
    """ISO 8601 in UTC with a Z, as Nova writes times (isoformat: a listing formats
    thousands of these, and strftime is several times slower)."""
    if moment is None:
        return None
    if moment.tzinfo is not dt.UTC:
        moment = moment.astimezone(dt.UTC)
    return moment.isoformat(timespec="seconds")[:-6] + "Z"  # drop "+00:00"


def _usage_time(moment: dt.datetime | None) -> str | None:
    """Nova writes the OS-SRV-USG times without a zone and with microseconds."""
    if moment is None:
        return None
    return moment.astimezone(dt.UTC).replace(tzinfo=None).isoformat(timespec="microseconds")


def _server(
    wire: Wire,
    view: ServerView,
    detail: bool = True,
    flavors: dict[int, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """``flavors``: the flavor references already made for this listing (one per flavor,
    shared: a thousand-server listing is rendered in one request)."""
    server = view.server
    base = wire.base
    item: dict[str, Any] = {
        "id": str(server.id),
        "name": server.name,
        "links": _links(base, "servers", server.id),
    }
    if not detail:
        return item
    status = view.status
    task_state = view.task_state
    key_names = view.key_names
    flavor_ref = None if flavors is None else flavors.get(server.flavor_id)
    if flavor_ref is None:
        flavor_ref = {
            "id": str(server.flavor_id),
            "links": _links(base, "flavors", server.flavor_id),
        }
        if flavors is not None:
            flavors[server.flavor_id] = flavor_ref
    item.update(
        {
            "status": wire.status(status),
            "SNF:task_state": task_state,
            "OS-EXT-STS:task_state": task_state.lower() or None,
            "OS-EXT-STS:vm_state": VM_STATES.get(status, "error"),
            "OS-EXT-STS:power_state": 1 if status == "ACTIVE" else 4,
            "progress": 100 if status == "ACTIVE" else server.build_percentage,
            "user_id": server.user_id,
            "tenant_id": server.project,
            "shared_to_project": server.shared_to_project,
            "created": _time(server.created),
            "updated": _time(server.updated),
            "OS-SRV-USG:launched_at": _usage_time(server.launched),
            "OS-SRV-USG:terminated_at": _usage_time(server.updated) if server.deleted else None,
            "flavor": flavor_ref,
            "image": {"id": server.image_id, "links": _links(base, "images", server.image_id)},
            "metadata": view.metadata,
            "tags": view.tags,
            "addresses": api_nics.addresses(view.nics),
            "attachments": api_nics.attachments(view.nics),
            "volumes": api_volumes.volume_ids(view),
            "os-extended-volumes:volumes_attached": api_volumes.volumes_attached(view),
            "hostId": "",
            "accessIPv4": "",
            "accessIPv6": "",
            "key_name": key_names[0] if key_names else None,
            "SNF:key_names": key_names,
            "security_groups": _security_groups(view, wire),
            "OS-DCF:diskConfig": "MANUAL",
            "OS-EXT-AZ:availability_zone": ZONE,
            "config_drive": "",
            "deleted": server.deleted,
            "suspended": False,
            "diagnostics": _diagnostics_of(view),
        }
    )
    return _without(item, wire.server_drops)


def _security_groups(view: ServerView, wire: Wire) -> list[dict[str, str]]:
    """The groups of the server's NICs (``nefos.network.security_groups``: one per
    firewall level), each once; Cyclades's constant on its dialect."""
    if not wire.profiles_as_groups:
        return [{"name": "default"}]
    levels = {FIREWALL_LEVELS[nic.firewall] for nic in view.nics}
    return [{"name": level} for level in sorted(levels)]


def _diagnostics_of(view: ServerView) -> list[dict[str, Any]]:
    return [
        {
            "level": d.level,
            "created": _time(d.created),
            "source": d.source,
            "source_date": _time(d.source_date),
            "message": d.message,
            "details": d.details,
        }
        for d in view.diagnostics
    ]


class _Rendered:
    """Servers' listing JSON by what it shows (``ServerView.version``): a listing of a
    thousand servers renders only those that changed since the last one. Bounded; an
    entry is dropped oldest first, and a stale one is never served, since the key is the
    whole content."""

    def __init__(self, size: int = 20_000):
        self.size = size
        self.items: dict[tuple[Any, ...], orjson.Fragment] = {}

    def server(
        self, wire: Wire, view: ServerView, detail: bool, flavors: dict[int, dict[str, Any]]
    ) -> Any:
        if view.version is None:
            return _server(wire, view, detail, flavors)
        key = (wire, detail, view.version)
        found = self.items.get(key)
        if found is None:
            found = orjson.Fragment(orjson.dumps(_server(wire, view, detail, flavors)))
            if len(self.items) >= self.size:
                for old in list(self.items)[: self.size // 10]:
                    del self.items[old]
            self.items[key] = found
        return found


_rendered = _Rendered()


def _flavor(
    wire: Wire, flavor: Any, detail: bool = True, access: list[str] | None = None
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": str(flavor.id),
        "name": flavor.name,
        "links": _links(wire.base, "flavors", flavor.id),
    }
    if detail:
        item.update(
            {
                "ram": flavor.ram,
                "disk": flavor.disk,
                "vcpus": flavor.vcpus,
                "swap": "",
                "OS-FLV-EXT-DATA:ephemeral": 0,
                "OS-FLV-DISABLED:disabled": False,
                "rxtx_factor": 1.0,
                "os-flavor-access:is_public": flavor.public,
                "SNF:disk_template": flavor.disk_template,
                "SNF:allow_create": flavor.allow_create,
                "SNF:volume_type": None,
                "SNF:flavor-access": access or [],
            }
        )
        _without(item, wire.flavor_drops)
    return item


def _image(wire: Wire, image: Image, detail: bool = True) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": str(image.id),
        "name": image.name,
        "links": _links(wire.base, "images", image.id),
    }
    if detail:
        item.update(
            {
                "status": "ACTIVE" if image.status == "active" else "SAVING",
                "progress": 100 if image.status == "active" else 0,
                "minDisk": image.min_disk,
                "minRam": image.min_ram,
                "created": _time(image.created_at),
                "updated": _time(image.updated_at),
                "metadata": image.properties,
                "OS-EXT-IMG-SIZE:size": image.size,
                "user_id": image.owner,
                "tenant_id": image.owner,
                "is_public": image.is_public,
            }
        )
        _without(item, wire.image_drops)
    return item


# -- servers ---------------------------------------------------------------------------------


async def _list_servers(request: Request, detail: bool) -> Response:
    credentials, compute = await caller(request)
    wire = _wire(request)
    params = request.query_params
    query = server_query(params, request.app.state.settings.limits, wire.status)
    counted = with_count(params)
    projects = await member_projects(request, credentials)
    views = await compute.listing(str(credentials.user_id), query, projects)
    if query.changes_since is not None and not views and query.after is None:
        return empty(304)
    flavors: dict[int, dict[str, Any]] = {}
    answer: dict[str, Any] = {
        "servers": [_rendered.server(wire, v, detail, flavors) for v in views]
    }
    if views and len(views) == query.limit:
        path = f"{wire.base}/servers" + ("/detail" if detail else "")
        answer["servers_links"] = next_link(path, params, views[-1].server.id)
    if counted:
        answer["count"] = await compute.count(str(credentials.user_id), query, projects)
    return _reply(answer)


def _body_object(body: Any, key: str) -> dict[str, Any]:
    value = body.get(key) if isinstance(body, dict) else None
    if not isinstance(value, dict):
        raise errors.InvalidInput(f'The body is {{"{key}": {{...}}}}')
    return value


def _count(value: Any, key: str) -> int:
    """Nova's positive integer: a number or a string of digits, at least 1."""
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise errors.InvalidInput(f"Invalid {key}: a whole number of at least 1")
    return value


def _flag(value: Any, key: str) -> bool:
    """Nova's boolean parameter: true or false, or one of the strings it reads as them."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "1", "yes", "on"):
        return True
    if isinstance(value, str) and value.lower() in ("false", "0", "no", "off"):
        return False
    raise errors.InvalidInput(f"Invalid {key}: true or false")


async def _create_server(request: Request) -> Response:
    credentials, compute = await caller(request)
    spec = _body_object(await json_body(request), "server")
    boot_volume, local_image = api_volumes.parse_block_devices(spec.get("block_device_mapping_v2"))
    for key in ("name", "flavorRef"):
        if key not in spec:
            raise errors.InvalidInput(f"Missing server attribute {key}")
    if spec.get("imageRef"):
        image_ref = ref(spec["imageRef"], "imageRef")
    elif local_image is not None or boot_volume is not None:
        image_ref = local_image or ""  # a root volume names its image
    elif "imageRef" in spec:
        image_ref = ref(spec["imageRef"], "imageRef")
    else:
        raise errors.InvalidInput("Missing server attribute imageRef")
    flavor_ref = ref(spec["flavorRef"], "flavorRef")
    key_names = spec.get("SNF:key_names")
    if key_names is None:
        key_names = [spec["key_name"]] if spec.get("key_name") else []
    if not isinstance(key_names, list) or not all(isinstance(k, str) for k in key_names):
        raise errors.InvalidInput("key_name is a keypair's name")
    project = spec.get("project")
    if project is not None and not isinstance(project, str):
        raise errors.InvalidInput("project is a project UUID")
    min_count = _count(spec.get("min_count", 1), "min_count")
    max_count = _count(spec.get("max_count", min_count), "max_count")
    most = compute.settings.compute.max_count
    if min_count > max_count:
        raise errors.InvalidInput("min_count is at most max_count")
    if max_count > most:
        raise errors.InvalidInput(f"At most {most} servers in one request")
    reservation = _flag(spec.get("return_reservation_id", False), "return_reservation_id")
    user = str(credentials.user_id)
    views, password = await compute.create_servers(
        user,
        spec["name"],
        image_ref,
        flavor_ref,
        project=project or str(credentials.project_id),
        projects=await member_projects(request, credentials),
        metadata=spec.get("metadata") or {},
        key_names=key_names,
        tags=spec.get("tags") or [],
        admin_password=spec.get("adminPass"),
        personality=spec.get("personality"),
        user_data=spec.get("user_data"),
        min_count=min_count,
        max_count=max_count,
        networks=api_nics.parse_networks(spec.get("networks")),
        boot_volume=boot_volume,
    )
    if reservation:
        # Nova's reservation id names the request's servers; nefos keeps no record of
        # it, so it serves only clients that wait for this reply's shape.
        return _reply({"reservation_id": f"r-{secrets.token_hex(4)}"}, 202)
    body = _server(_wire(request), views[0])
    body["adminPass"] = password
    # Nova's create reply carries no task state, and the openstack client keeps any
    # field of it that the later, refreshed server has empty: a "building" here would
    # show beside the ACTIVE of `server create --wait`. Synnefo's SNF:task_state stays.
    del body["OS-EXT-STS:task_state"]
    return _reply({"server": body}, 202)


async def _show_server(request: Request, server_id: str) -> Response:
    credentials, compute = await caller(request)
    projects = await member_projects(request, credentials)
    view = await compute.server(str(credentials.user_id), server_id, projects)
    return _reply({"server": _server(_wire(request), view)})


async def _update_server(request: Request, server_id: str) -> Response:
    credentials, compute = await caller(request)
    spec = _body_object(await json_body(request), "server")
    user = str(credentials.user_id)
    if "name" in spec:
        view = await compute.rename(user, server_id, spec["name"])
    else:  # nothing nefos keeps changes: the server as it is
        view = await compute.server(user, server_id)
    return _reply({"server": _server(_wire(request), view)})


async def _delete_server(request: Request, server_id: str) -> Response:
    credentials, compute = await caller(request)
    await compute.delete_server(str(credentials.user_id), server_id)
    return empty(204)


async def _diagnostics(request: Request, server_id: str) -> Response:
    credentials, compute = await caller(request)
    projects = await member_projects(request, credentials)
    view = await compute.server(str(credentials.user_id), server_id, projects)
    return _reply(_diagnostics_of(view))


# -- tags (spec §2.1; Nova's server tags) ------------------------------------------------------


async def _tags(request: Request, server_id: str) -> Response:
    credentials, compute = await caller(request)
    user = str(credentials.user_id)
    if request.method == "GET":
        return _reply({"tags": (await compute.server(user, server_id)).tags})
    if request.method == "DELETE":
        await compute.delete_tags(user, server_id)
        return empty(204)
    body = await json_body(request)
    if not isinstance(body, dict) or set(body) != {"tags"}:
        raise errors.InvalidInput('The body is {"tags": ["<tag>", ...]}')
    return _reply({"tags": await compute.set_tags(user, server_id, body["tags"])})


async def _tag(request: Request, server_id: str, tag: str) -> Response:
    credentials, compute = await caller(request)
    user = str(credentials.user_id)
    if request.method == "GET":
        if tag not in (await compute.server(user, server_id)).tags:
            raise errors.NotFound(f"No tag {tag!r}")
        return empty(204)
    if request.method == "DELETE":
        await compute.delete_tags(user, server_id, tag)
        return empty(204)
    created = await compute.add_tag(user, server_id, tag)
    response = empty(201 if created else 204)
    # A tag is any text (Nova's rule): the header carries it percent-encoded, as a
    # header must be Latin-1.
    response.headers["Location"] = (
        f"{_wire(request).base}/servers/{server_id}/tags/{quote(tag, safe='')}"
    )
    return response


# -- metadata --------------------------------------------------------------------------------


async def _metadata(request: Request, server_id: str) -> Response:
    credentials, compute = await caller(request)
    user = str(credentials.user_id)
    if request.method == "GET":
        return _reply({"metadata": (await compute.server(user, server_id)).metadata})
    body = await json_body(request)
    metadata = body.get("metadata") if isinstance(body, dict) else None
    if not isinstance(metadata, dict):
        raise errors.InvalidInput('The body is {"metadata": {...}}')
    merged = await compute.set_metadata(user, server_id, metadata, replace=request.method == "PUT")
    return _reply({"metadata": merged})


async def _metadata_item(request: Request, server_id: str, key: str) -> Response:
    credentials, compute = await caller(request)
    user = str(credentials.user_id)
    if request.method == "GET":
        metadata = (await compute.server(user, server_id)).metadata
        if key not in metadata:
            raise errors.NotFound(f"No metadata item {key!r}")
        return _reply({"meta": {key: metadata[key]}})
    if request.method == "DELETE":
        await compute.delete_metadata(user, server_id, key)
        return empty(204)
    body = await json_body(request)
    meta = body.get("meta") if isinstance(body, dict) else None
    if not isinstance(meta, dict) or list(meta) != [key]:
        raise errors.InvalidInput('The body is {"meta": {"<key>": "<value>"}} for this key')
    await compute.set_metadata(user, server_id, meta, replace=False)
    return _reply({"meta": meta})


# -- flavors and images --------------------------------------------------------------------------


def _page_limit(request: Request) -> int | None:
    """Nova's ``limit``: a whole number; a negative one is no limit."""
    raw = request.query_params.get("limit")
    if raw is None:
        return None
    limit = ascii_int(raw, INT64_MIN)
    if limit is None:
        raise errors.InvalidInput("limit is a whole number")
    return limit if limit >= 0 else None


def _flavor_query(request: Request) -> FlavorQuery:
    params = request.query_params
    public = params.get("SNF:is_public") or params.get("is_public")
    least: dict[str, int | None] = {}
    for key in ("minDisk", "minRam"):
        raw = params.get(key)
        least[key] = None if raw is None else ascii_int(raw)
        if raw is not None and least[key] is None:
            raise errors.InvalidInput(f"{key} is a whole number")
    return FlavorQuery(
        access=params.get("SNF:flavor-access"),
        public=(public.lower() == "true")
        if public is not None and public.lower() in ("true", "false")
        else None,
        min_disk=least["minDisk"],
        min_ram=least["minRam"],
        after=params.get("marker"),
        limit=_page_limit(request),
    )


async def _list_flavors(request: Request, detail: bool) -> Response:
    credentials, compute = await caller(request)
    query = _flavor_query(request)
    projects = await member_projects(request, credentials)
    listed = await compute.flavor_listing(projects, query)
    wire = _wire(request)
    return _reply({"flavors": [_flavor(wire, f.flavor, detail, f.access) for f in listed]})


async def _show_flavor(request: Request, flavor_id: str) -> Response:
    credentials, compute = await caller(request)
    projects = await member_projects(request, credentials)
    shown = await compute.shown_flavor(flavor_id, projects)
    return _reply({"flavor": _flavor(_wire(request), shown.flavor, access=shown.access)})


def _image_query(request: Request) -> ImageQuery:
    """Compute's images view: what Plankton lists the caller, by id."""
    marker = request.query_params.get("marker")
    after = None
    if marker is not None:
        after = ascii_uuid(marker)
        if after is None or str(after) != marker:
            raise errors.InvalidInput(f"Marker {marker} not found")
    return ImageQuery(member_status="accepted", after=after, limit=_page_limit(request))


async def _list_images(request: Request, detail: bool) -> Response:
    credentials, _ = await caller(request)
    query = _image_query(request)
    images: Images = request.app.state.engines.images
    found = await images.listing(str(credentials.user_id), query)
    wire = _wire(request)
    return _reply({"images": [_image(wire, i, detail) for i in found]})


async def _show_image(request: Request, image_id: str) -> Response:
    credentials, _ = await caller(request)
    images: Images = request.app.state.engines.images
    image = await images.get(str(credentials.user_id), image_id)
    return _reply({"image": _image(_wire(request), image)})


async def _limits(request: Request) -> Response:
    """Nova's absolute limits, read from the caller's quotas in its token's project."""
    credentials, compute = await caller(request)
    found = await compute.limits(str(credentials.user_id), str(credentials.project_id))
    absolute = {
        "maxTotalInstances": found.max_instances,
        "totalInstancesUsed": found.instances_used,
        "maxTotalCores": found.max_cores,
        "totalCoresUsed": found.cores_used,
        "maxTotalRAMSize": found.max_ram_mib,
        "totalRAMUsed": found.ram_used_mib,
        "maxServerMeta": found.max_server_meta,
        "maxImageMeta": found.max_image_meta,
        "maxPersonality": found.max_personality,
        "maxPersonalitySize": found.max_personality_size,
        "maxTotalKeypairs": found.max_keypairs,
        "maxServerGroups": 0,
        "maxServerGroupMembers": 0,
        "totalServerGroupsUsed": 0,
        "maxSecurityGroups": 0,
        "maxSecurityGroupRules": 0,
        "totalSecurityGroupsUsed": 0,
        "maxTotalFloatingIps": 0,
        "totalFloatingIpsUsed": 0,
    }
    return _reply({"limits": {"rate": [], "absolute": absolute}})


async def _zones(request: Request) -> Response:
    """Nova's availability zones: ``nova``, available while a backend takes new servers."""
    _, compute = await caller(request)
    backends = await compute.backends()
    open_ = any(not b.offline and not b.drained for b in backends)
    return _reply(
        {
            "availabilityZoneInfo": [
                {"zoneName": ZONE, "zoneState": {"available": open_}, "hosts": None}
            ]
        }
    )


async def _zones_detail(request: Request) -> Response:
    """The admin's view: each backend is a host whose one service is ``nova-compute``,
    active unless drained, available unless offline."""
    check_microversion(request)
    await current_admin(request)
    compute: Compute = request.app.state.engines.compute
    backends = await compute.backends()
    hosts = {
        b.name: {
            "nova-compute": {
                "available": not b.offline,
                "active": not b.drained,
                "updated_at": _time(b.refreshed),
            }
        }
        for b in backends
    }
    open_ = any(not b.offline and not b.drained for b in backends)
    zone = {"zoneName": ZONE, "zoneState": {"available": open_}, "hosts": hosts}
    return _reply({"availabilityZoneInfo": [zone]})


async def _quota_caller(request: Request, project_id: str) -> tuple[uuid.UUID, uuid.UUID | None]:
    """The project and member a quota-set request names; a non-admin may read only
    their own quotas and those of the projects they belong to."""
    check_microversion(request)
    credentials = await current_user(request)
    project = ascii_uuid(project_id)
    raw_user = request.query_params.get("user_id")
    user = None if raw_user is None else ascii_uuid(raw_user)
    if project is None or (raw_user is not None and user is None):
        raise errors.NotFound(f"No quotas for project {project_id}")
    if not credentials.is_admin and (
        str(project) not in await member_projects(request, credentials)
        or (user is not None and user != credentials.user_id)
    ):
        raise errors.PermissionDenied("You may read only your own quotas")
    return project, user


async def _quota_set(request: Request, project_id: str) -> Response:
    project, user = await _quota_caller(request, project_id)
    engines = request.app.state.engines
    found = await quota_sets.quota_set(engines.quotas, engines.settings, project, user)
    return _reply({"quota_set": {"id": project_id, **{k: v.limit for k, v in found.items()}}})


async def _quota_set_detail(request: Request, project_id: str) -> Response:
    project, user = await _quota_caller(request, project_id)
    engines = request.app.state.engines
    found = await quota_sets.quota_set(engines.quotas, engines.settings, project, user)
    items = {
        k: {"in_use": v.in_use, "limit": v.limit, "reserved": v.reserved} for k, v in found.items()
    }
    return _reply({"quota_set": {"id": project_id, **items}})


async def _quota_set_defaults(request: Request, project_id: str) -> Response:
    check_microversion(request)
    await current_user(request)
    engines = request.app.state.engines
    found = quota_sets.defaults(engines.quotas, engines.settings)
    return _reply({"quota_set": {"id": project_id, **found}})


async def _update_quota_set(request: Request, project_id: str) -> Response:
    """The admin sets a project's limits, or with ``user_id`` one member's in it."""
    check_microversion(request)
    await current_admin(request)
    project, user = await _quota_caller(request, project_id)
    engines = request.app.state.engines
    changes = quota_sets.parse_update(
        engines.settings, _body_object(await json_body(request), "quota_set")
    )
    await quota_sets.update(engines.quotas, project, user, changes)
    found = await quota_sets.quota_set(engines.quotas, engines.settings, project, user)
    return _reply({"quota_set": {k: v.limit for k, v in found.items()}})


async def list_servers(request: Request) -> Response:
    return await _list_servers(request, False)


async def list_servers_detail(request: Request) -> Response:
    return await _list_servers(request, True)


async def list_flavors(request: Request) -> Response:
    return await _list_flavors(request, False)


async def list_flavors_detail(request: Request) -> Response:
    return await _list_flavors(request, True)


async def list_images(request: Request) -> Response:
    return await _list_images(request, False)


async def list_images_detail(request: Request) -> Response:
    return await _list_images(request, True)


def _routes() -> None:
    for prefix in PREFIXES:
        add = router.add_api_route
        add(f"{prefix}/servers", list_servers, methods=["GET"])
        add(f"{prefix}/servers/detail", list_servers_detail, methods=["GET"])
        add(f"{prefix}/servers", _create_server, methods=["POST"])
        add(f"{prefix}/servers/{{server_id}}", _show_server, methods=["GET"])
        add(f"{prefix}/servers/{{server_id}}", _update_server, methods=["PUT"])
        add(f"{prefix}/servers/{{server_id}}", _delete_server, methods=["DELETE"])
        add(f"{prefix}/servers/{{server_id}}/action", action, methods=["POST"])
        add(f"{prefix}/servers/{{server_id}}/ips", api_nics.ips, methods=["GET"])
        add(
            f"{prefix}/servers/{{server_id}}/ips/{{network}}",
            api_nics.ips_of_network,
            methods=["GET"],
        )
        interfaces = f"{prefix}/servers/{{server_id}}/os-interface"
        add(interfaces, api_nics.list_interfaces, methods=["GET"])
        add(interfaces, api_nics.attach_interface, methods=["POST"])
        add(f"{interfaces}/{{port_id}}", api_nics.show_interface, methods=["GET"])
        add(f"{interfaces}/{{port_id}}", api_nics.detach_interface, methods=["DELETE"])
        disks = f"{prefix}/servers/{{server_id}}/os-volume_attachments"
        add(disks, api_volumes.list_attachments, methods=["GET"])
        add(disks, api_volumes.attach, methods=["POST"])
        add(f"{disks}/{{volume_id}}", api_volumes.show_attachment, methods=["GET"])
        add(f"{disks}/{{volume_id}}", api_volumes.detach, methods=["DELETE"])
        add(f"{prefix}/servers/{{server_id}}/diagnostics", _diagnostics, methods=["GET"])
        add(f"{prefix}/servers/{{server_id}}/tags", _tags, methods=["GET", "PUT", "DELETE"])
        add(f"{prefix}/servers/{{server_id}}/tags/{{tag}}", _tag, methods=["GET", "PUT", "DELETE"])
        add(f"{prefix}/servers/{{server_id}}/metadata", _metadata, methods=["GET", "POST", "PUT"])
        add(
            f"{prefix}/servers/{{server_id}}/metadata/{{key}}",
            _metadata_item,
            methods=["GET", "PUT", "DELETE"],
        )
        add(f"{prefix}/flavors", list_flavors, methods=["GET"])
        add(f"{prefix}/flavors/detail", list_flavors_detail, methods=["GET"])
        add(f"{prefix}/flavors/{{flavor_id}}", _show_flavor, methods=["GET"])
        add(f"{prefix}/images", list_images, methods=["GET"])
        add(f"{prefix}/images/detail", list_images_detail, methods=["GET"])
        add(f"{prefix}/images/{{image_id}}", _show_image, methods=["GET"])
        add(f"{prefix}/limits", _limits, methods=["GET"])
        add(f"{prefix}/os-availability-zone", _zones, methods=["GET"])
        add(f"{prefix}/os-quota-sets/{{project_id}}", _quota_set, methods=["GET"])
        add(f"{prefix}/os-quota-sets/{{project_id}}", _update_quota_set, methods=["PUT"])
        add(f"{prefix}/os-quota-sets/{{project_id}}/detail", _quota_set_detail, methods=["GET"])
        add(f"{prefix}/os-quota-sets/{{project_id}}/defaults", _quota_set_defaults, methods=["GET"])
        add(f"{prefix}/os-availability-zone/detail", _zones_detail, methods=["GET"])


_routes()
