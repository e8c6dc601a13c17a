"""Snapshots as Cinder lists and changes them, over what they are: image files.

A snapshot is made by :meth:`nefos.volume.service.Volumes.snapshot`: the file
``snapshots/<name>`` of its owner, registered as an image, and a row tying the file's
UUID to the volume it froze. Its name, description and metadata are the image's (so a
rename shows in Glance too, as in Synnefo, where Plankton held them); the metadata are
the image's properties but the two the snapshot is made with (``exclude_all_tasks``,
``volume_id``), which stay. Only the owner sees a snapshot: anyone else gets NotFound.

Deleting one unregisters the image and deletes the file (which releases its
``pithos.diskspace``) before dropping the row, so a failure half-way leaves a snapshot
that a second delete finishes; the blocks stay as long as a volume or file names them.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from nefos.core import errors
from nefos.core.db import Database
from nefos.images.service import Image, Images
from nefos.storage.service import Namespace
from nefos.volume import details
from nefos.volume.models import Snapshot

SNAPSHOTS = "snapshots"
FIXED = ("exclude_all_tasks", "volume_id")  # properties every snapshot image keeps
IMAGE_STATUSES = {  # the image's status -> the snapshot's (Cinder's words)
    "active": "available",
    "deactivated": "available",
    "queued": "creating",
    "saving": "creating",
    "killed": "error",
}


@dataclass(frozen=True)
class SnapshotView:
    """A snapshot and its image (None: the image was deleted through another API, and
    the snapshot is in error until deleted)."""

    snapshot: Snapshot
    image: Image | None

    @property
    def name(self) -> str:
        return self.snapshot.name if self.image is None else self.image.name

    @property
    def description(self) -> str:
        return "" if self.image is None else self.image.description

    @property
    def status(self) -> str:
        if self.image is None:
            return "error"
        return IMAGE_STATUSES.get(self.image.status, "error")

    @property
    def metadata(self) -> dict[str, str]:
        if self.image is None:
            return {}
        return {k: v for k, v in sorted(self.image.properties.items()) if k not in FIXED}


class Snapshots:
    def __init__(self, db: Database, images: Images, storage: Namespace):
        self.db = db
        self.images = images
        self.storage = storage

    async def listing(
        self,
        user: str,
        name: str | None = None,
        status: str | None = None,
        volume_id: str | None = None,
    ) -> list[SnapshotView]:
        """The caller's snapshots; of a name, a status or a volume if given (Cinder's
        filters; name and status are the image's, so they are matched here)."""
        async with self.db.session() as s:
            query = select(Snapshot).where(Snapshot.user_id == user).order_by(Snapshot.created)
            if volume_id is not None:
                key = _uuid_or_none(volume_id)
                if key is None:
                    return []
                query = query.where(Snapshot.volume_id == key)
            found = list(await s.scalars(query))
        views = [SnapshotView(row, await self._image(user, row)) for row in found]
        return [
            v
            for v in views
            if (name is None or v.name == name) and (status is None or v.status == status)
        ]

    async def show(self, user: str, snapshot_id: uuid.UUID | str) -> SnapshotView:
        async with self.db.session() as s:
            row = await _owned(s, user, snapshot_id)
        return SnapshotView(row, await self._image(user, row))

    async def update(
        self,
        user: str,
        snapshot_id: uuid.UUID | str,
        name: str | None = None,
        description: str | None = None,
    ) -> SnapshotView:
        """Rename or redescribe the snapshot's image (its file keeps its name)."""
        view = await self.show(user, snapshot_id)
        fields: dict[str, str] = {}
        if name is not None:
            fields["name"] = name
        if description is not None:
            fields["description"] = details.check_description(description)
        if fields:
            await self.images.update(user, _image_id(view), fields=fields)
        return await self.show(user, snapshot_id)

    async def set_metadata(
        self, user: str, snapshot_id: uuid.UUID | str, items: Mapping[str, str], replace: bool
    ) -> dict[str, str]:
        """Merge (or replace) the metadata; the fixed properties are not the caller's to
        set (InvalidInput) and stay through a replace."""
        items = details.check_metadata(items)
        taken = sorted(set(items) & set(FIXED))
        if taken:
            raise errors.InvalidInput(f"Metadata {', '.join(taken)} belong to the snapshot")
        view = await self.show(user, snapshot_id)
        merged = items if replace else {**view.metadata, **items}
        details.check_count(len(merged))
        changes: dict[str, str | None] = dict.fromkeys(view.metadata)
        changes.update(merged)
        await self.images.update(user, _image_id(view), properties=changes)
        return (await self.show(user, snapshot_id)).metadata

    async def delete_metadata_item(self, user: str, snapshot_id: uuid.UUID | str, key: str) -> None:
        view = await self.show(user, snapshot_id)
        if key not in view.metadata:
            raise errors.NotFound(f"Metadata item {key} of snapshot {snapshot_id} was not found")
        await self.images.update(user, _image_id(view), properties={key: None})

    async def delete(self, user: str, snapshot_id: uuid.UUID | str) -> None:
        async with self.db.session() as s:
            row = await _owned(s, user, snapshot_id)
        if await self._image(user, row) is not None:
            await self.images.unregister(user, row.id)
        try:
            record = await self.storage.get_object(user, SNAPSHOTS, row.name)
        except errors.NotFound:
            record = None
        if record is not None and record.uuid == row.id:  # not a later file of that name
            await self.storage.delete_object(user, SNAPSHOTS, row.name, muser=user)
        async with self.db.transaction() as s:
            await s.execute(delete(Snapshot).where(Snapshot.id == row.id))

    async def _image(self, user: str, row: Snapshot) -> Image | None:
        try:
            return await self.images.get(user, row.id)
        except errors.NotFound:
            return None


def _image_id(view: SnapshotView) -> uuid.UUID:
    if view.image is None:
        raise errors.Conflict(f"Snapshot {view.snapshot.id} lost its image; delete it")
    return view.image.id


def _uuid_or_none(value: uuid.UUID | str) -> uuid.UUID | None:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


async def _owned(s: AsyncSession, user: str, snapshot_id: uuid.UUID | str) -> Snapshot:
    key = _uuid_or_none(snapshot_id)
    found = None
    if key is not None:
        found = await s.scalar(select(Snapshot).where(Snapshot.id == key, Snapshot.user_id == user))
    if found is None:
        raise errors.NotFound(f"Snapshot {snapshot_id} could not be found")
    return found
