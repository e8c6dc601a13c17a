"""What a volume carries besides its map: description, type, metadata, and the rules
on them (Cinder's and Cyclades's limits), kept apart from the map arithmetic.

Metadata are at most :data:`MAX_METADATA` pairs (Cyclades's
``CYCLADES_VOLUME_MAX_METADATA``), keys and values at most 255 characters (Cinder's
columns); a key is never empty.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from nefos.core import errors
from nefos.volume.attachments import Attached, of_volumes
from nefos.volume.models import Volume, VolumeMetadata
from nefos.volume.types import DEFAULT, find_type

MAX_METADATA = 10
MAX_META_LENGTH = 255
MAX_DESCRIPTION = 255


@dataclass(frozen=True)
class Details:
    """The fields a new volume starts with besides its size, name and source."""

    description: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)
    volume_type: str = DEFAULT.id
    delete_on_termination: bool = False


@dataclass(frozen=True)
class VolumeView:
    """A volume with its metadata, as the API renders it."""

    volume: Volume
    metadata: dict[str, str]
    attachments: list[Attached] = field(default_factory=list)


def check_details(details: Details) -> Details:
    """The details with the type resolved to its id (a name is taken too); InvalidInput
    or NotFound (an unknown type) otherwise."""
    check_description(details.description)
    check_metadata(details.metadata)
    if not isinstance(details.volume_type, str):
        raise errors.InvalidInput("A volume type is named by its id or name")
    volume_type = find_type(details.volume_type)
    if not volume_type.detachable:
        raise errors.InvalidInput(
            f"Volumes of type {volume_type.name} exist only as a server's disk"
        )
    if not isinstance(details.delete_on_termination, bool):
        raise errors.InvalidInput("delete_on_termination is true or false")
    return Details(
        details.description,
        dict(details.metadata),
        volume_type.id,
        details.delete_on_termination,
    )


def check_description(description: object) -> str:
    if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
        raise errors.InvalidInput(f"A description is text of at most {MAX_DESCRIPTION} characters")
    return description


def check_metadata(metadata: object) -> dict[str, str]:
    if not isinstance(metadata, Mapping):
        raise errors.InvalidInput("Metadata are an object of text keys and values")
    for key, value in metadata.items():
        if not isinstance(key, str) or not 0 < len(key) <= MAX_META_LENGTH:
            raise errors.InvalidInput(
                f"A metadata key is text of 1 to {MAX_META_LENGTH} characters"
            )
        if not isinstance(value, str) or len(value) > MAX_META_LENGTH:
            raise errors.InvalidInput(
                f"The value of metadata {key!r} is text of at most {MAX_META_LENGTH} characters"
            )
    return dict(metadata)


def check_count(count: int) -> None:
    if count > MAX_METADATA:
        raise errors.InvalidInput(f"A volume has at most {MAX_METADATA} metadata items")


async def metadata_of(s: AsyncSession, volume_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, dict]:
    """Each volume's metadata, in one query for a whole listing."""
    found: dict[uuid.UUID, dict[str, str]] = {v: {} for v in volume_ids}
    if not volume_ids:
        return found
    rows = await s.execute(
        select(VolumeMetadata.volume_id, VolumeMetadata.key, VolumeMetadata.value)
        .where(VolumeMetadata.volume_id.in_(list(volume_ids)))
        .order_by(VolumeMetadata.key)
    )
    for volume_id, key, value in rows:
        found[volume_id][key] = value
    return found


async def set_metadata(
    s: AsyncSession, volume: Volume, items: Mapping[str, str], replace: bool
) -> dict[str, str]:
    """Merge ``items`` into the volume's metadata (or replace it), inside the caller's
    transaction; at most :data:`MAX_METADATA` remain (InvalidInput, nothing changed)."""
    items = check_metadata(items)
    current = {} if replace else (await metadata_of(s, [volume.id]))[volume.id]
    merged = {**current, **items}
    check_count(len(merged))
    await s.execute(delete(VolumeMetadata).where(VolumeMetadata.volume_id == volume.id))
    if merged:
        await s.execute(
            insert(VolumeMetadata),
            [{"volume_id": volume.id, "key": k, "value": v} for k, v in merged.items()],
        )
    return dict(sorted(merged.items()))


async def view(s: AsyncSession, volume: Volume) -> VolumeView:
    metadata = (await metadata_of(s, [volume.id]))[volume.id]
    return VolumeView(volume, metadata, (await of_volumes(s, [volume.id]))[volume.id])
