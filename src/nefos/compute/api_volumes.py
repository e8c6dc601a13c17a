"""Nova's ``os-volume_attachments`` (microversion 2.1) and a server's volumes in its
document.

    GET    /servers/<id>/os-volume_attachments              {"volumeAttachments": [...]}
    POST   /servers/<id>/os-volume_attachments              {"volumeAttachment": {"volumeId"}}
    GET    /servers/<id>/os-volume_attachments/<volume id>  {"volumeAttachment": {...}}
    DELETE /servers/<id>/os-volume_attachments/<volume id>  202

An attachment is ``{"id", "volumeId", "serverId", "device"}``, its id the volume's as
in Nova 2.1. A ``device`` in the request is accepted and not honoured (as Nova's libvirt
driver since Liberty): the next free ``/dev/vdX`` is taken.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from starlette.responses import Response

from nefos.compute.nova import caller, empty, json_body, reply
from nefos.compute.service import ServerView
from nefos.core import errors
from nefos.volume.attachments import Attached


def _attachment(found: Attached) -> dict[str, Any]:
    return {
        "id": str(found.volume_id),
        "volumeId": str(found.volume_id),
        "serverId": str(found.server_id),
        "device": found.device,
    }


def volumes_attached(view: ServerView) -> list[dict[str, Any]]:
    """``os-extended-volumes:volumes_attached``: Nova's ``id``, with 2.3's
    ``delete_on_termination``."""
    return [
        {"id": str(v.volume_id), "delete_on_termination": v.delete_on_termination}
        for v in view.volumes
    ]


def volume_ids(view: ServerView) -> list[str]:
    """Cyclades's ``volumes``: the ids of the server's volumes."""
    return [str(v.volume_id) for v in view.volumes]


async def list_attachments(request: Request, server_id: str) -> Response:
    credentials, compute = await caller(request)
    found = await compute.volume_attachments(str(credentials.user_id), server_id)
    return reply({"volumeAttachments": [_attachment(a) for a in found]})


async def show_attachment(request: Request, server_id: str, volume_id: str) -> Response:
    credentials, compute = await caller(request)
    found = await compute.volume_attachment(str(credentials.user_id), server_id, volume_id)
    return reply({"volumeAttachment": _attachment(found)})


async def attach(request: Request, server_id: str) -> Response:
    credentials, compute = await caller(request)
    body = await json_body(request)
    spec = body.get("volumeAttachment")
    if not isinstance(spec, dict):
        raise errors.InvalidInput('The body is {"volumeAttachment": {"volumeId": ...}}')
    volume_id = spec.get("volumeId")
    if not isinstance(volume_id, str) or not volume_id:
        raise errors.InvalidInput("volumeAttachment needs volumeId")
    device = spec.get("device")
    if device is not None and not isinstance(device, str):
        raise errors.InvalidInput("Invalid device: text expected")
    found = await compute.attach_volume(str(credentials.user_id), server_id, volume_id)
    return reply({"volumeAttachment": _attachment(found)})


async def detach(request: Request, server_id: str, volume_id: str) -> Response:
    credentials, compute = await caller(request)
    await compute.detach_volume(str(credentials.user_id), server_id, volume_id)
    return empty(202)
