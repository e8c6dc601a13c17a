"""Static large objects (Swift's SLO) in the service: the rights a caller has on the
segments a manifest names, and the delete of a manifest with its segments.

A manifest is an object whose data lists its segments (JSON) and whose metadata
carries :data:`SLO`. Rights on segments are asked as the caller, in the manifest's
account, at the time of the request: a share of the manifest grants nothing on its
segments, and a manifest somebody else wrote grants nothing either.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import orjson

from nefos.core import errors
from nefos.core.config import Settings
from nefos.storage import sharing
from nefos.storage.permissions import Permissions
from nefos.storage.reads import Reader
from nefos.storage.records import ObjectRecord
from nefos.storage.writes import Writer

# Object metadata of a static large object, under keys no header can spell.
SLO, SLO_BYTES, SLO_ETAG, SLO_DEPTH = ":slo", ":slo-bytes", ":slo-etag", ":slo-depth"
SLO_KEYS = (SLO, SLO_BYTES, SLO_ETAG, SLO_DEPTH)
# A dynamic large object (Swift's DLO): its data are the objects under this prefix.
MANIFEST = ":manifest"
# What makes an object a large one: kept when its user metadata is replaced.
LARGE_OBJECT_KEYS = (MANIFEST, *SLO_KEYS)
MAX_MANIFEST_BODY = 8 << 20
MAX_BULK_DELETES = 10000  # Swift's bound on one bulk delete, and on one SLO's segments


async def read_manifest(reader: Reader, record: ObjectRecord) -> bytes:
    if record.size > MAX_MANIFEST_BODY:
        raise errors.InvalidInput("A manifest is too large")
    return b"".join([chunk async for chunk in reader.read(record)])


@dataclass
class SegmentRights:
    """Whether ``user`` (None: an anonymous reader of a public link) may read or
    delete the objects a large object in ``account`` names. Read rights are asked
    once per container; an anonymous reader reads only segments published themselves."""

    reader: Reader
    permissions: Permissions
    account: str
    user: str | None
    readable: dict[str, Callable[[str], bool]] = field(default_factory=dict)

    async def require(self, wanted: str, container: str, name: str) -> None:
        if self.user == self.account:
            return
        if wanted == sharing.READ:
            readable = self.readable.get(container)
            if readable is None:
                readable = await self._readable_in(container)
                self.readable[container] = readable
            if readable(name):
                return
        elif self.user is not None:
            granted = await self.permissions.access(self.user, self.account, container, name)
            if granted == sharing.WRITE:
                return
        raise errors.PermissionDenied(f"You may not {wanted} segment {container}/{name}")

    async def _readable_in(self, container: str) -> Callable[[str], bool]:
        if self.user is None:
            published = await self.permissions.public_names(self.account, container)
            return published.__contains__
        return await self.permissions.readable_filter(self.user, self.account, container)


@dataclass(frozen=True)
class SloDeleted:
    deleted: int
    not_found: int


class LargeObjects:
    def __init__(
        self, settings: Settings, reader: Reader, writer: Writer, permissions: Permissions
    ) -> None:
        self.settings = settings
        self.reader = reader
        self.writer = writer
        self.permissions = permissions

    def rights(self, user: str | None, account: str) -> SegmentRights:
        return SegmentRights(self.reader, self.permissions, account, user)

    async def delete_slo(self, user: str, account: str, container: str, name: str) -> SloDeleted:
        """Swift's ``?multipart-manifest=delete``: the manifest and its segments (a nested
        manifest's own first). The caller's right to delete each object is checked,
        the manifest's too, before any is deleted, so a share of the manifest deletes
        nothing else of the owner's. An object that is no manifest is deleted alone."""
        rights = self.rights(user, account)
        await rights.require(sharing.WRITE, container, name)
        record = await self.reader.get_object(account, container, name)
        max_depth = self.settings.storage.slo_max_depth
        doomed: list[tuple[str, str]] = []

        async def gather(manifest: ObjectRecord, depth: int) -> None:
            if depth >= max_depth:
                raise errors.Conflict("Static large objects nest too deep")
            for segment in orjson.loads(await read_manifest(self.reader, manifest)):
                if "data" in segment:
                    continue
                part_container, _, part = segment["name"].lstrip("/").partition("/")
                if segment.get("sub_slo"):
                    try:
                        inner = await self.reader.get_object(account, part_container, part)
                    except errors.NotFound:
                        inner = None
                    if inner is not None and inner.meta.get(SLO):
                        await gather(inner, depth + 1)
                doomed.append((part_container, part))
                if len(doomed) > MAX_BULK_DELETES:
                    raise errors.InvalidInput(f"At most {MAX_BULK_DELETES} segments per delete")

        if record.meta.get(SLO):
            await gather(record, 0)
        for part_container, part in doomed:
            await rights.require(sharing.WRITE, part_container, part)
        deleted = not_found = 0
        for part_container, part in doomed:
            try:
                await self.writer.delete_object(account, part_container, part, user)
                deleted += 1
            except errors.NotFound:
                not_found += 1
        await self.writer.delete_object(account, container, name, user)
        return SloDeleted(deleted + 1, not_found)
