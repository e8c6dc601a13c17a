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
from nefos.compute.volumes import BootVolume
from nefos.core import errors
from nefos.volume.attachments import Attached

GiB = 1 << 30
SOURCES = ("image", "snapshot", "volume")


def _flag(value: Any, key: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
        return value.lower() in ("true", "1")
    raise errors.InvalidInput(f"Invalid {key}: true or false")


def parse_block_devices(value: Any) -> tuple[BootVolume | None, str | None]:
    """``block_device_mapping_v2`` of a create: the root volume asked for (None: the
    server's own disk from its image), and the image a local root disk names (the
    openstack client sends one beside ``imageRef``). nefos takes one root disk (boot
    index 0): a local one from an image, or a volume from an image, a snapshot or a
    volume; any other disk is attached after the create (``os-volume_attachments``)."""
    if value is None:
        return None, None
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise errors.InvalidInput("block_device_mapping_v2 is a list of objects")
    boot: BootVolume | None = None
    image: str | None = None
    for item in value:
        source = item.get("source_type")
        default = "local" if source in ("image", "blank") else "volume"
        destination = item.get("destination_type") or default
        uuid = item.get("uuid")
        if str(item.get("boot_index")) != "0":
            raise errors.InvalidInput(
                "Only the root disk (boot_index 0) is supported in block_device_mapping_v2: "
                "attach other volumes with os-volume_attachments after the create"
            )
        if boot is not None or image is not None:
            raise errors.InvalidInput("Only one block device may have boot_index 0")
        if source not in SOURCES or destination not in ("local", "volume"):
            raise errors.InvalidInput(
                f"Block devices of source_type {source!r} and destination_type "
                f"{destination!r} are not supported"
            )
        if not isinstance(uuid, str) or not uuid:
            raise errors.InvalidInput("A block device needs the uuid of its source")
        if destination == "local":
            if source != "image":
                raise errors.InvalidInput("Only an image can be a local root disk")
            image = uuid
            continue
        size = item.get("volume_size")
        if size is not None and (isinstance(size, bool) or not isinstance(size, int | str)):
            raise errors.InvalidInput("volume_size is a number of GiB")
        if size is not None:
            try:
                size = int(size)
            except ValueError:
                raise errors.InvalidInput("volume_size is a number of GiB") from None
            if size <= 0:
                raise errors.InvalidInput("volume_size is a positive number of GiB")
        if source == "image" and size is None:
            raise errors.InvalidInput(
                "Images with destination_type 'volume' need to have a non-zero size specified"
            )
        delete = item.get("delete_on_termination")
        boot = BootVolume(
            source,
            uuid,
            None if size is None or source == "volume" else size * GiB,
            None if delete is None else _flag(delete, "delete_on_termination"),
        )
    return boot, image


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
