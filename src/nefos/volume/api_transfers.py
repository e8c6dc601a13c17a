"""Cinder's volume transfers at ``/volume/v3[/<project_id>]/os-volume-transfer`` (and
v2): offer a volume, list and show one's offers, take one back, accept another's with
its id and key (``nefos.volume.transfers``). ``openstack volume transfer request``
drives these."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from nefos.volume import api_views as views
from nefos.volume.api import Call, body_of, call, ref, refuse_unknown, text
from nefos.volume.api import route as volume_route
from nefos.volume.models import VolumeTransfer

router = APIRouter()
PATH = "/os-volume-transfer"


def route(path: str, methods: list[str]):  # type: ignore[no-untyped-def]
    return volume_route(path, methods, on=router)


def transfer(c: Call, found: VolumeTransfer, detail: bool = True) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": str(found.id),
        "name": found.name,
        "volume_id": str(found.volume_id),
        "links": views.links(c.wire, PATH.lstrip("/"), found.id),
    }
    if detail:
        item["created_at"] = views.time(found.created)
    return item


@route(PATH, ["POST"])
async def create_transfer(request: Request) -> Response:
    c = await call(request)
    body = await body_of(request, "transfer")
    refuse_unknown(body, {"volume_id", "name"}, "transfer")
    offer = await c.transfers.create(
        c.user, ref(body.get("volume_id"), "volume_id"), text(body, "name") or ""
    )
    return c.reply({"transfer": {**transfer(c, offer.transfer), "auth_key": offer.auth_key}}, 202)


@route(PATH, ["GET"])
async def list_transfers(request: Request) -> Response:
    c = await call(request)
    found = await c.transfers.listing(c.user)
    return c.reply({"transfers": [transfer(c, t, detail=False) for t in found]})


@route(PATH + "/detail", ["GET"])
async def list_transfers_detail(request: Request) -> Response:
    c = await call(request)
    return c.reply({"transfers": [transfer(c, t) for t in await c.transfers.listing(c.user)]})


@route(PATH + "/{transfer_id}", ["GET"])
async def show_transfer(request: Request, transfer_id: str) -> Response:
    c = await call(request)
    return c.reply({"transfer": transfer(c, await c.transfers.get(c.user, transfer_id))})


@route(PATH + "/{transfer_id}", ["DELETE"])
async def delete_transfer(request: Request, transfer_id: str) -> Response:
    c = await call(request)
    await c.transfers.delete(c.user, transfer_id)
    return c.empty(202)


@route(PATH + "/{transfer_id}/accept", ["POST"])
async def accept_transfer(request: Request, transfer_id: str) -> Response:
    """Anyone with the id and the key; the volume joins their token's project."""
    c = await call(request)
    body = await body_of(request, "accept")
    refuse_unknown(body, {"auth_key"}, "accept")
    done = await c.transfers.accept(c.user, c.project, transfer_id, body.get("auth_key"))
    return c.reply({"transfer": transfer(c, done, detail=False)}, 202)
