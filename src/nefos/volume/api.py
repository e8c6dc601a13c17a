"""The Block Storage API (Cinder v3 and v2, with Cyclades's fields) at ``/volume/v3`` and
``/volume/v2``: volumes, their metadata and actions, volume types, limits and quota sets
(snapshots are in ``api_snapshots``).

Every path is served with and without the project id after the version
(``/volume/v3/<project_id>/volumes``, as Cinder's catalogs publish it and
python-cinderclient builds it; ``/volume/v3/volumes``, as Cinder serves it since 3.67
and openstacksdk reaches it through nefos's catalog). A project id that is not the
token's is Cinder's 400. Each route parses, makes one service call and renders; faults
are Cinder's, ``{"itemNotFound": {"code", "message"}}``, 413 ``overLimit`` past a quota.
Another user's volume is 404, never 403, so existence does not leak.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from nefos.core import errors
from nefos.core.auth import Credentials, current_user
from nefos.core.body import parse_json
from nefos.core.faults import json_response
from nefos.core.numbers import ascii_uuid
from nefos.volume import api_views as views
from nefos.volume import limits
from nefos.volume.details import Details
from nefos.volume.paging import next_links, page, paging_of
from nefos.volume.service import Volumes
from nefos.volume.snapshots import Snapshots
from nefos.volume.transfers import Transfers
from nefos.volume.types import DEFAULT as DEFAULT_TYPE
from nefos.volume.types import TYPES, find_type

PREFIXES = ("/volume/v3", "/volume/v2")
MICROVERSION = "3.0"
GiB = limits.GiB
_MINOR = re.compile(r"\s*3\.([0-9]+)\s*")

router = APIRouter()
Handler = Callable[..., Awaitable[Response]]


@dataclass(frozen=True)
class Call:
    """One request's caller, the services it reaches and how its answers are written."""

    credentials: Credentials
    user: str
    project: str
    volumes: Volumes
    snapshots: Snapshots
    transfers: Transfers
    # Compute's os-volume_attachments POST (user, server id, volume id): how a create
    # with Synnefo's server_id attaches, handed in by the composition root, as this
    # part does not import compute.
    attach: Callable[[str, str, str], Awaitable[object]]
    wire: views.Wire
    v3: bool

    def reply(self, body: Any, status: int = 200) -> Response:
        return json_response(body, status, _version_headers(self.v3))

    def empty(self, status: int) -> Response:
        return Response(status_code=status, headers=_version_headers(self.v3))


def _version_headers(v3: bool) -> dict[str, str] | None:
    if not v3:
        return None
    return {"OpenStack-API-Version": f"volume {MICROVERSION}", "Vary": "OpenStack-API-Version"}


def _check_microversion(request: Request) -> None:
    """Cinder answers 406 for a microversion it does not speak."""
    header = request.headers.get("openstack-api-version", "")
    if not header.lower().startswith("volume "):
        return
    wanted = header[len("volume ") :].strip()
    if wanted.lower() == "latest":
        return
    match = _MINOR.fullmatch(wanted)
    if match is None or match.group(1).lstrip("0") != "":
        raise errors.NotAcceptable(
            f"Version {wanted} is not supported by the API (min 3.0, max {MICROVERSION})"
        )


async def call(request: Request) -> Call:
    """Authenticate, and check the project id of the path against the token's."""
    path = request.url.path
    prefix = next(p for p in PREFIXES if path == p or path.startswith(p + "/"))
    v3 = prefix.endswith("v3")
    if v3:
        _check_microversion(request)
    credentials = await current_user(request)
    project = request.path_params.get("project_id")
    if project is not None:
        if project != str(credentials.project_id):
            raise errors.InvalidInput(
                f"Malformed request URL: the URL's project_id {project!r} is not the "
                f"token's ({credentials.project_id})"
            )
        prefix += "/" + project
    engines = request.app.state.engines
    return Call(
        credentials=credentials,
        user=str(credentials.user_id),
        project=str(credentials.project_id),
        volumes=engines.volumes,
        snapshots=engines.snapshots,
        transfers=engines.transfers,
        attach=engines.compute.attach_volume,
        wire=views.wire(request, prefix),
        v3=v3,
    )


def route(path: str, methods: list[str], on: APIRouter = router) -> Callable[[Handler], Handler]:
    """Register ``path`` under both versions, with and without the project id."""

    def register(handler: Handler) -> Handler:
        for prefix in PREFIXES:
            for project in ("", "/{project_id}"):
                on.add_api_route(
                    prefix + project + path, handler, methods=methods, include_in_schema=False
                )
        return handler

    return register


# -- parsing -------------------------------------------------------------------------------


async def body_of(request: Request, key: str, others: frozenset[str] = frozenset()) -> dict:
    """``{key: {...}}``: the inner object; 400 for any other shape or top-level key."""
    body = parse_json(dict[str, Any], await request.body())
    inner = body.get(key)
    if not isinstance(inner, dict):
        raise errors.InvalidInput(f"Invalid request: the body is {{{key!r}: {{...}}}}")
    unknown = set(body) - {key} - others
    if unknown:
        raise errors.InvalidInput(f"Invalid request: unknown key(s) {', '.join(sorted(unknown))}")
    return inner


def refuse_unknown(body: dict[str, Any], allowed: set[str], what: str) -> None:
    unknown = set(body) - allowed
    if unknown:
        raise errors.InvalidInput(
            f"Invalid input for {what}: unknown key(s) {', '.join(sorted(unknown))}"
        )


def text(body: dict[str, Any], *keys: str) -> str | None:
    """The first of ``keys`` present (Cinder's name and its v1 alias), as text."""
    for key in keys:
        if key in body and body[key] is not None:
            if not isinstance(body[key], str):
                raise errors.InvalidInput(f"Invalid input for {key}: text expected")
            return body[key]
    return None


def size_in_bytes(value: Any, key: str = "size") -> int:
    """Cinder's sizes are whole GiB (an integer, or its digits as text)."""
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise errors.InvalidInput(f"Invalid input for {key}: a whole number of GiB, 1 or more")
    return value * GiB


def ref(value: Any, key: str) -> str:
    if not isinstance(value, str) or not value:
        raise errors.InvalidInput(f"Invalid input for {key}: an id")
    return value


def flag(value: Any, key: str) -> bool:
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if not isinstance(value, bool):
        raise errors.InvalidInput(f"Invalid input for {key}: true or false expected")
    return value


# -- volumes -------------------------------------------------------------------------------

CREATE_TOP = frozenset({"OS-SCH-HNT:scheduler_hints"})
UPDATE_KEYS = {
    "name", "display_name", "description", "display_description", "metadata",
    "delete_on_termination",
}  # fmt: skip


def query(request: Request, *names: str) -> dict[str, str]:
    """The filters Cinder takes that nefos applies (others are ignored, as Cinder ignores
    those its configuration does not allow)."""
    return {n: request.query_params[n] for n in names if n in request.query_params}


def volume_query(request: Request, c: Call) -> dict[str, str]:
    """A volume listing's filters, its status in the dialect's spelling."""
    found = query(request, "name", "status")
    if "status" in found:
        found["status"] = c.wire.status_filter(found["status"])
    return found


# The fields a volume listing sorts by (``?sort=``), as the detailed listing shows them.
VOLUME_SORT = frozenset({
    "id", "name", "display_name", "description", "display_description", "size", "status",
    "created_at", "updated_at", "bootable", "availability_zone", "volume_type", "user_id",
    "snapshot_id", "source_volid",
})  # fmt: skip


@route("/volumes", ["GET"])
async def list_volumes(request: Request) -> Response:
    return await _volume_listing(request, detail=False)


@route("/volumes/detail", ["GET"])
async def list_volumes_detail(request: Request) -> Response:
    return await _volume_listing(request, detail=True)


async def _volume_listing(request: Request, detail: bool) -> Response:
    """Filtered (``name``, ``status``), sorted and paged (``nefos.volume.paging``)."""
    c = await call(request)
    paging = paging_of(request.query_params, VOLUME_SORT)
    found = {str(v.volume.id): v for v in await c.volumes.views(c.user, **volume_query(request, c))}
    shown = page([views.volume(c.wire, v) for v in found.values()], paging)
    if not detail:
        shown = [views.volume(c.wire, found[item["id"]], detail=False) for item in shown]
    url = f"{c.wire.base}/volumes{'/detail' if detail else ''}"
    body: dict[str, Any] = {"volumes": shown}
    if links := next_links(paging, shown, url, request.query_params):
        body["volumes_links"] = links
    return c.reply(body)


@route("/volumes", ["POST"])
async def create_volume(request: Request) -> Response:
    """From nothing, an image (``imageRef``), a snapshot (``snapshot_id``) or a volume
    (``source_volid``): at most one source; ``size`` is needed unless the source is a
    snapshot or a volume (then it defaults to theirs). ``server_id`` (Cyclades's): the
    new volume attaches to the caller's server, as ``os-volume_attachments`` would; if
    the attach is refused (another user's server: 404) the volume is deleted again."""
    c = await call(request)
    body = await body_of(request, "volume", CREATE_TOP)
    server_id = body.get("server_id")
    if server_id is not None and (
        isinstance(server_id, bool) or not isinstance(server_id, str | int)
    ):
        raise errors.InvalidInput("Invalid input for server_id: a server id")
    sources = [k for k in ("imageRef", "snapshot_id", "source_volid") if body.get(k) is not None]
    if len(sources) > 1:
        raise errors.InvalidInput(f"A volume has one source, not {' and '.join(sources)}")
    size = None if body.get("size") is None else size_in_bytes(body["size"])
    if size is None and sources in ([], ["imageRef"]):
        raise errors.InvalidInput("Invalid input for size: a volume needs a size in GiB")
    metadata = body.get("metadata")
    extra = Details(
        description=text(body, "description", "display_description") or "",
        metadata={} if metadata is None else metadata,
        volume_type=ref(body["volume_type"], "volume_type")
        if body.get("volume_type") is not None
        else TYPES[0].id,
    )
    name = text(body, "name", "display_name") or ""
    project = text(body, "project") or c.project
    source = sources[0] if sources else None
    if source == "imageRef":
        image = ref(body["imageRef"], "imageRef").rstrip("/").rsplit("/", 1)[-1]
        made = await c.volumes.create_from_image(c.user, image, size, name, project, extra)
    elif source == "snapshot_id":
        snapshot = ref(body["snapshot_id"], "snapshot_id")
        made = await c.volumes.create_from_snapshot(c.user, snapshot, size, name, project, extra)
    elif source == "source_volid":
        volume = ref(body["source_volid"], "source_volid")
        made = await c.volumes.clone(c.user, volume, size, name, project, extra)
    else:
        assert size is not None
        made = await c.volumes.create(c.user, size, name, project, extra)
    if server_id is not None:
        try:
            await c.attach(c.user, str(server_id), str(made.id))
        except BaseException:  # nothing half-made: the volume goes, its quota released
            await c.volumes.delete(c.user, made.id)
            raise
    shown = await c.volumes.show(c.user, made.id)
    return c.reply({"volume": views.volume(c.wire, shown)}, 202)


@route("/volumes/{volume_id}", ["GET"])
async def show_volume(request: Request, volume_id: str) -> Response:
    c = await call(request)
    return c.reply({"volume": views.volume(c.wire, await c.volumes.show(c.user, volume_id))})


@route("/volumes/{volume_id}", ["PUT"])
async def update_volume(request: Request, volume_id: str) -> Response:
    c = await call(request)
    body = await body_of(request, "volume")
    refuse_unknown(body, UPDATE_KEYS, "volume")
    if not body:
        raise errors.InvalidInput("Nothing to update")
    dot = body.get("delete_on_termination")
    updated = await c.volumes.update(
        c.user,
        volume_id,
        name=text(body, "name", "display_name"),
        description=text(body, "description", "display_description"),
        metadata=body.get("metadata"),
        delete_on_termination=None if dot is None else flag(dot, "delete_on_termination"),
    )
    return c.reply({"volume": views.volume(c.wire, updated)})


@route("/volumes/{volume_id}", ["DELETE"])
async def delete_volume(request: Request, volume_id: str) -> Response:
    c = await call(request)
    await c.volumes.delete(c.user, volume_id)
    return c.empty(202)


ACTIONS = ("os-extend", "os-set_bootable", "os-update_readonly_flag", "os-retype",
           "os-volume_upload_image", "reassign")  # fmt: skip


@route("/volumes/{volume_id}/action", ["POST"])
async def volume_action(request: Request, volume_id: str) -> Response:
    """Cinder's actions a volume's owner takes, and Cyclades's ``reassign``; a server's
    attachments are compute's (``os-volume_attachments``), not these."""
    c = await call(request)
    body = parse_json(dict[str, Any], await request.body())
    if len(body) != 1 or next(iter(body)) not in ACTIONS:
        raise errors.InvalidInput(f"Invalid request: the actions are {', '.join(ACTIONS)}")
    name, args = next(iter(body.items()))
    if not isinstance(args, dict):
        raise errors.InvalidInput(f"Invalid request: {name} takes an object")
    if name == "os-extend":
        refuse_unknown(args, {"new_size"}, name)
        if "new_size" not in args:
            raise errors.InvalidInput("Invalid input for os-extend: new_size is required")
        await c.volumes.extend(c.user, volume_id, size_in_bytes(args["new_size"], "new_size"))
        return c.empty(202)
    if name == "os-set_bootable":
        refuse_unknown(args, {"bootable"}, name)
        bootable = flag(args.get("bootable"), "bootable")
        await c.volumes.update(c.user, volume_id, bootable=bootable)
        return c.empty(200)
    if name == "os-update_readonly_flag":
        refuse_unknown(args, {"readonly"}, name)
        readonly = flag(args.get("readonly"), "readonly")
        await c.volumes.update(c.user, volume_id, readonly=readonly)
        return c.empty(202)
    if name == "os-retype":
        refuse_unknown(args, {"new_type", "migration_policy"}, name)
        wanted = find_type(ref(args.get("new_type"), "new_type"))
        volume = await c.volumes.get(c.user, volume_id)
        if wanted.id == volume.volume_type:
            raise errors.InvalidInput(f"New volume_type same as original: {wanted.name}")
        raise errors.InvalidInput(f"A volume cannot move to type {wanted.name}")  # never yet
    if name == "os-volume_upload_image":
        return await _upload_image(c, volume_id, args)
    refuse_unknown(args, {"project", "shared_to_project"}, "reassign")
    if args.get("shared_to_project"):
        raise errors.PermissionDenied("Sharing a volume with a project is not permitted")
    await c.volumes.reassign(c.user, volume_id, ref(args.get("project"), "project"))
    return c.empty(200)


async def _upload_image(c: Call, volume_id: str, args: dict[str, Any]) -> Response:
    """The volume as a new private image (Cinder's 202, status "uploading"). Its blocks
    are shared, not copied, so the image is active when this answers."""
    refuse_unknown(
        args,
        {"image_name", "force", "disk_format", "container_format", "visibility", "protected"},
        "os-volume_upload_image",
    )
    name = text(args, "image_name")
    if not name:
        raise errors.InvalidInput("Invalid input for os-volume_upload_image: image_name")
    volume = await c.volumes.get(c.user, volume_id)
    image = await c.volumes.upload_to_image(
        c.user,
        volume_id,
        name,
        disk_format=text(args, "disk_format") or "raw",
        container_format=text(args, "container_format") or "bare",
        visibility=text(args, "visibility") or "private",
        protected=flag(args.get("protected", False), "protected"),
        force=flag(args.get("force", False), "force"),
    )
    return c.reply(
        {
            "os-volume_upload_image": {
                "id": str(volume.id),
                "updated_at": views.time(volume.updated),
                "status": "uploading",
                "display_description": volume.description,
                "size": limits.gigabytes(volume.size),
                "volume_type": views.volume_type(c.wire, find_type(volume.volume_type)),
                "image_id": str(image.id),
                "container_format": image.container_format,
                "disk_format": image.disk_format,
                "image_name": image.name,
                "visibility": image.visibility,
                "protected": image.protected,
            }
        },
        202,
    )


# -- volume metadata -------------------------------------------------------------------------


@route("/volumes/{volume_id}/metadata", ["GET"])
async def show_metadata(request: Request, volume_id: str) -> Response:
    c = await call(request)
    return c.reply({"metadata": await c.volumes.metadata(c.user, volume_id)})


@route("/volumes/{volume_id}/metadata", ["POST", "PUT"])
async def set_metadata(request: Request, volume_id: str) -> Response:
    """POST merges, PUT replaces (Cinder's create and update-all)."""
    c = await call(request)
    items = await body_of(request, "metadata")
    replace = request.method == "PUT"
    found = await c.volumes.set_metadata(c.user, volume_id, items, replace)
    return c.reply({"metadata": found})


def metadata_item(found: dict[str, str], key: str, kind: str, owner_id: str) -> dict:
    """Cinder's ``{"meta": {key: value}}`` of one item, or its 404 (volumes and snapshots)."""
    if key not in found:
        raise errors.NotFound(f"Metadata item {key} of {kind} {owner_id} was not found")
    return {"meta": {key: found[key]}}


async def named_item(request: Request, key: str) -> dict:
    """The body of a PUT of one metadata item: exactly the item the URI names."""
    item = await body_of(request, "meta")
    if list(item) != [key]:
        raise errors.InvalidInput("Request body and URI mismatch: one item, named by the URI")
    return item


@route("/volumes/{volume_id}/metadata/{key}", ["GET"])
async def show_metadata_item(request: Request, volume_id: str, key: str) -> Response:
    c = await call(request)
    found = await c.volumes.metadata(c.user, volume_id)
    return c.reply(metadata_item(found, key, "volume", volume_id))


@route("/volumes/{volume_id}/metadata/{key}", ["PUT"])
async def set_metadata_item(request: Request, volume_id: str, key: str) -> Response:
    c = await call(request)
    item = await named_item(request, key)
    await c.volumes.set_metadata(c.user, volume_id, item, replace=False)
    return c.reply({"meta": item})


@route("/volumes/{volume_id}/metadata/{key}", ["DELETE"])
async def delete_metadata_item(request: Request, volume_id: str, key: str) -> Response:
    c = await call(request)
    await c.volumes.delete_metadata_item(c.user, volume_id, key)
    return c.empty(200)


# -- types, limits, quota sets ---------------------------------------------------------------


@route("/types", ["GET"])
async def list_types(request: Request) -> Response:
    c = await call(request)
    return c.reply({"volume_types": [views.volume_type(c.wire, t) for t in TYPES]})


@route("/types/{type_id}", ["GET"])
async def show_type(request: Request, type_id: str) -> Response:
    """A type by id or name, or ``default``: the one a volume gets when none is named."""
    c = await call(request)
    found = DEFAULT_TYPE if type_id == "default" else find_type(type_id)
    return c.reply({"volume_type": views.volume_type(c.wire, found)})


@route("/os-availability-zone", ["GET"])
async def list_zones(request: Request) -> Response:
    """Cinder's zones: one, where every volume is."""
    c = await call(request)
    zone = {"zoneName": views.ZONE, "zoneState": {"available": True}}
    return c.reply({"availabilityZoneInfo": [zone]})


@route("/limits", ["GET"])
async def show_limits(request: Request) -> Response:
    c = await call(request)
    engines = request.app.state.engines
    found = await limits.absolute(engines.quotas, c.volumes, c.user, c.project)
    return c.reply({"limits": {"rate": [], "absolute": found}})


async def _quota_project(request: Request, c: Call, project_id: str) -> Any:
    """A non-admin reads only the quotas of the projects they belong to."""
    project = ascii_uuid(project_id)
    if project is None:
        raise errors.NotFound(f"No quotas for project {project_id}")
    if not c.credentials.is_admin:
        members = await request.app.state.engines.projects.member_projects(c.credentials.user_id)
        if str(project) not in {c.user, c.project, *map(str, members)}:
            raise errors.PermissionDenied("You may read only your own projects' quotas")
    return project


@route("/os-quota-sets/{quota_project}", ["GET"])
async def show_quota_set(request: Request, quota_project: str) -> Response:
    """Cinder's quota set (``?usage=true``: with use), read-only: the limits are
    nefos's quotas, set with ``nefos quota`` or the account API."""
    c = await call(request)
    project = await _quota_project(request, c, quota_project)
    engines = request.app.state.engines
    found = await limits.quota_set(engines.quotas, c.volumes, project)
    usage = request.query_params.get("usage", "").lower() in ("true", "1", "yes", "on")
    items: dict[str, Any] = {
        k: {"limit": v.limit, "in_use": v.in_use, "reserved": v.reserved, "allocated": 0}
        if usage
        else v.limit
        for k, v in found.items()
    }
    return c.reply({"quota_set": {"id": quota_project, **items}})


@route("/os-quota-sets/{quota_project}/defaults", ["GET"])
async def show_quota_defaults(request: Request, quota_project: str) -> Response:
    c = await call(request)
    project = await _quota_project(request, c, quota_project)
    engines = request.app.state.engines
    found = await limits.quota_set(engines.quotas, c.volumes, project)
    disk = engines.quotas.default_limit(limits.DISK) // GiB
    items = {k: (disk if k == "gigabytes" else v.limit) for k, v in found.items()}
    return c.reply({"quota_set": {"id": quota_project, **items}})
