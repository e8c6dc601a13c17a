"""How the Block Storage API writes volumes, snapshots and types: Cinder's documents,
with the wire details of the request's dialect (``nefos.volume.dialect``) read once per
request into a :class:`Wire`."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from nefos.core.dialects import public_path
from nefos.volume import states
from nefos.volume.attachments import Attached
from nefos.volume.details import VolumeView
from nefos.volume.dialect import SNAPSHOT_EXTRAS, TABLE, TYPE_EXTRAS, VOLUME_EXTRAS
from nefos.volume.limits import gigabytes
from nefos.volume.models import Volume
from nefos.volume.snapshots import SnapshotView
from nefos.volume.types import DEFAULT, TYPES, VolumeType

ZONE = "nova"  # one availability zone, as Nova's and Cinder's default
SOURCES = {"image": "image_id", "snapshot": "snapshot_id", "volume": "source_volid"}


@dataclass(frozen=True)
class Wire:
    base: str  # the URL the request came through, up to and with the project id
    name_key: str
    description_key: str
    volume_drops: frozenset[str]
    type_by: str  # "name" or "id"
    snapshot_upper: bool
    snapshot_drops: frozenset[str]
    type_drops: frozenset[str]
    in_use: str  # how the dialect spells Cinder's in-use

    def status(self, internal: str) -> str:
        """A volume's status as this dialect shows it."""
        return self.in_use if internal == states.IN_USE else internal

    def status_filter(self, given: str) -> str:
        """A ``?status=`` in the dialect's spelling, as the volumes are recorded."""
        return states.IN_USE if given == self.in_use else given


def wire(request: Request, prefix: str) -> Wire:
    """``prefix``: the routes' prefix this request matched (``/volume/v3[/<project>]``)."""
    name_key, description_key = TABLE.pick(request, "name_keys")
    return Wire(
        base=request.app.state.settings.base_url + public_path(request, prefix),
        name_key=name_key,
        description_key=description_key,
        volume_drops=VOLUME_EXTRAS - TABLE.pick(request, "volume_extras"),
        type_by=TABLE.pick(request, "volume_type_ref"),
        snapshot_upper=TABLE.pick(request, "snapshot_status") == "AVAILABLE",
        snapshot_drops=SNAPSHOT_EXTRAS - TABLE.pick(request, "snapshot_extras"),
        type_drops=TYPE_EXTRAS - TABLE.pick(request, "type_extras"),
        in_use=TABLE.pick(request, "volume_in_use"),
    )


def time(moment: dt.datetime | None) -> str | None:
    """Cinder's times: UTC, microseconds, no zone."""
    if moment is None:
        return None
    return moment.astimezone(dt.UTC).replace(tzinfo=None).isoformat(timespec="microseconds")


def links(w: Wire, kind: str, item_id: object) -> list[dict[str, str]]:
    href = f"{w.base}/{kind}/{item_id}"
    return [{"rel": "self", "href": href}, {"rel": "bookmark", "href": href}]


def _type_of(type_id: str) -> VolumeType:
    return next((t for t in TYPES if t.id == type_id), DEFAULT)


def _drop(item: dict[str, Any], drops: frozenset[str]) -> dict[str, Any]:
    for key in drops:
        item.pop(key, None)
    return item


def volume(w: Wire, found: VolumeView, detail: bool = True) -> dict[str, Any]:
    v = found.volume
    item: dict[str, Any] = {"id": str(v.id), w.name_key: v.name, "links": links(w, "volumes", v.id)}
    if not detail:
        return item
    sources = dict.fromkeys(SOURCES.values())
    if v.source_kind in SOURCES:
        sources[SOURCES[v.source_kind]] = v.source_id
    if v.source_kind == "snapshot":  # Cinder says where the snapshot's image came from
        sources["image_id"] = None
    volume_type = _type_of(v.volume_type)
    item.update(
        {
            w.description_key: v.description,
            "status": w.status(v.status),
            "size": gigabytes(v.size),
            "availability_zone": ZONE,
            "created_at": time(v.created),
            "updated_at": time(v.updated),
            "attachments": [_attachment(a, v.id) for a in found.attachments if a.status in SHOWN],
            "volume_type": getattr(volume_type, w.type_by),
            "snapshot_id": sources["snapshot_id"],
            "source_volid": sources["source_volid"],
            "metadata": _with_flags(found.metadata, v),
            "bootable": "true" if v.bootable else "false",
            "encrypted": False,
            "multiattach": False,
            "replication_status": None,
            "consistencygroup_id": None,
            "user_id": v.user_id,
            "os-vol-tenant-attr:tenant_id": v.project,
            "tenant_id": v.project,
            "deleted": False,
            "delete_on_termination": v.delete_on_termination,
            "shared_to_project": False,
        }
    )
    if sources["image_id"] is not None:
        item["volume_image_metadata"] = {"image_id": sources["image_id"]}
    return _drop(item, w.volume_drops)


def _with_flags(metadata: dict[str, str], volume: Volume) -> dict[str, str]:
    """Cinder shows the read-only flag among the metadata, over a key of that name,
    once it was set."""
    if volume.readonly is None:
        return metadata
    return {**metadata, "readonly": str(volume.readonly)}


# Cinder lists an attachment once it is attached (in-use), until its detach ends.
SHOWN = (states.IN_USE, states.DETACHING)


def _attachment(found: Attached, volume_id: object) -> dict[str, Any]:
    return {
        "id": str(volume_id),
        "attachment_id": str(found.attachment_id),
        "volume_id": str(volume_id),
        "server_id": str(found.server_id),
        "host_name": None,
        "device": found.device,
        "attached_at": time(found.created),
    }


def snapshot(w: Wire, found: SnapshotView, detail: bool = True) -> dict[str, Any]:
    row = found.snapshot
    status = found.status.upper() if w.snapshot_upper else found.status
    done = found.status == "available"
    item: dict[str, Any] = {
        "id": str(row.id),
        w.name_key: found.name,
        w.description_key: found.description,
        "status": status,
        "size": gigabytes(row.size),
        "volume_id": str(row.volume_id),
        "created_at": time(row.created),
        "updated_at": time(found.image.updated_at if found.image else row.created),
        "metadata": found.metadata,
        "os-extended-snapshot-attributes:progress": "100%" if done else "0%",
        "os-extended-snapshot-attributes:project_id": row.user_id,
        "user_id": row.user_id,
        "tenant_id": row.user_id,
        "links": links(w, "snapshots", row.id),
    }
    return _drop(item, w.snapshot_drops)


def volume_type(w: Wire, found: VolumeType) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": found.id,
        "name": found.name,
        "description": found.description,
        "is_public": True,
        "os-volume-type-access:is_public": True,
        "extra_specs": found.extra_specs,
        "qos_specs_id": None,
        "SNF:disk_template": found.disk_template,
        "SNF:detachable": found.detachable,
        "deleted": False,
    }
    return _drop(item, w.type_drops)
