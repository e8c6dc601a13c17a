"""Snapshots in the Block Storage API (``/volume/v3[/<project_id>]/snapshots`` and v2).

A snapshot is a file in the owner's ``snapshots`` container registered as an image
(``nefos.volume.snapshots``): creating one charges ``pithos.diskspace`` (413 naming it
past the quota), its name is the file's (a name already used there is 409), and it
lists among the owner's images too. Another user's snapshot is 404.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from nefos.core import errors
from nefos.volume import api_views as views
from nefos.volume.api import (
    body_of,
    call,
    flag,
    metadata_item,
    named_item,
    query,
    ref,
    refuse_unknown,
    text,
)
from nefos.volume.api import route as volume_route
from nefos.volume.paging import next_links, page, paging_of

router = APIRouter()
CREATE_KEYS = {
    "volume_id", "force", "name", "display_name", "description", "display_description",
    "metadata",
}  # fmt: skip
UPDATE_KEYS = {"name", "display_name", "description", "display_description"}


def route(path: str, methods: list[str]):  # type: ignore[no-untyped-def]
    return volume_route(path, methods, on=router)


# The fields a snapshot listing sorts by (``?sort=``).
SNAPSHOT_SORT = frozenset({
    "id", "name", "display_name", "description", "display_description", "size", "status",
    "created_at", "updated_at", "volume_id",
})  # fmt: skip


@route("/snapshots", ["GET"])
async def list_snapshots(request: Request) -> Response:
    return await _snapshot_listing(request, "/snapshots")


@route("/snapshots/detail", ["GET"])
async def list_snapshots_detail(request: Request) -> Response:
    return await _snapshot_listing(request, "/snapshots/detail")


async def _snapshot_listing(request: Request, path: str) -> Response:
    """Filtered (``name``, ``status``, ``volume_id``), sorted and paged."""
    c = await call(request)
    paging = paging_of(request.query_params, SNAPSHOT_SORT)
    found = await c.snapshots.listing(c.user, **query(request, "name", "status", "volume_id"))
    shown = page([views.snapshot(c.wire, s) for s in found], paging)
    body: dict[str, Any] = {"snapshots": shown}
    if links := next_links(paging, shown, c.wire.base + path, request.query_params):
        body["snapshots_links"] = links
    return c.reply(body)


@route("/snapshots", ["POST"])
async def create_snapshot(request: Request) -> Response:
    """``volume_id`` (required), ``name`` (Cyclades's default: "Snapshot of volume
    '<id>'"), ``description``, ``metadata``, ``force`` (snapshot a volume in use)."""
    c = await call(request)
    body = await body_of(request, "snapshot")
    refuse_unknown(body, CREATE_KEYS, "snapshot")
    volume_id = ref(body.get("volume_id"), "volume_id")
    name = text(body, "name", "display_name") or f"Snapshot of volume '{volume_id}'"
    made, _ = await c.volumes.snapshot(
        c.user,
        volume_id,
        name,
        description=text(body, "description", "display_description") or "",
        metadata=body.get("metadata") or {},
        force=flag(body.get("force", False), "force"),
    )
    shown = await c.snapshots.show(c.user, made.id)
    return c.reply({"snapshot": views.snapshot(c.wire, shown)}, 202)


@route("/snapshots/{snapshot_id}", ["GET"])
async def show_snapshot(request: Request, snapshot_id: str) -> Response:
    c = await call(request)
    found = await c.snapshots.show(c.user, snapshot_id)
    return c.reply({"snapshot": views.snapshot(c.wire, found)})


@route("/snapshots/{snapshot_id}", ["PUT"])
async def update_snapshot(request: Request, snapshot_id: str) -> Response:
    c = await call(request)
    body = await body_of(request, "snapshot")
    refuse_unknown(body, UPDATE_KEYS, "snapshot")
    if not body:
        raise errors.InvalidInput("Nothing to update")
    updated = await c.snapshots.update(
        c.user,
        snapshot_id,
        name=text(body, "name", "display_name"),
        description=text(body, "description", "display_description"),
    )
    return c.reply({"snapshot": views.snapshot(c.wire, updated)})


@route("/snapshots/{snapshot_id}", ["DELETE"])
async def delete_snapshot(request: Request, snapshot_id: str) -> Response:
    c = await call(request)
    await c.snapshots.delete(c.user, snapshot_id)
    return c.empty(202)


@route("/snapshots/{snapshot_id}/metadata", ["GET"])
async def show_snapshot_metadata(request: Request, snapshot_id: str) -> Response:
    c = await call(request)
    return c.reply({"metadata": (await c.snapshots.show(c.user, snapshot_id)).metadata})


@route("/snapshots/{snapshot_id}/metadata", ["POST", "PUT"])
async def set_snapshot_metadata(request: Request, snapshot_id: str) -> Response:
    """POST merges, PUT replaces."""
    c = await call(request)
    items = await body_of(request, "metadata")
    replace = request.method == "PUT"
    found = await c.snapshots.set_metadata(c.user, snapshot_id, items, replace)
    return c.reply({"metadata": found})


@route("/snapshots/{snapshot_id}/metadata/{key}", ["GET"])
async def show_snapshot_metadata_item(request: Request, snapshot_id: str, key: str) -> Response:
    c = await call(request)
    found = (await c.snapshots.show(c.user, snapshot_id)).metadata
    return c.reply(metadata_item(found, key, "snapshot", snapshot_id))


@route("/snapshots/{snapshot_id}/metadata/{key}", ["PUT"])
async def set_snapshot_metadata_item(request: Request, snapshot_id: str, key: str) -> Response:
    c = await call(request)
    item = await named_item(request, key)
    await c.snapshots.set_metadata(c.user, snapshot_id, item, replace=False)
    return c.reply({"meta": item})


@route("/snapshots/{snapshot_id}/metadata/{key}", ["DELETE"])
async def delete_snapshot_metadata_item(request: Request, snapshot_id: str, key: str) -> Response:
    c = await call(request)
    await c.snapshots.delete_metadata_item(c.user, snapshot_id, key)
    return c.empty(200)
