"""Copies and moves of one object, or of a tree (Pithos's ``?delimiter=``), as the
caller asks them with ``X-Copy-From``, ``X-Move-From``, COPY or MOVE.

A copy shares the source's map: no data moves. Two copies take the data instead, as
Swift makes them: of a byte range (the ``Range`` header), and of a large object (its
segments joined, as the caller may read them), unless the manifest itself is asked for.
The caller must be able to read the source (write it, to move it) and write the
destination; a static large object copied into another account must name only objects
there the caller can read, as when its manifest is PUT.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nefos.core import errors, http
from nefos.storage import sharing
from nefos.storage.bodies import Bodies
from nefos.storage.large import LARGE_OBJECT_KEYS, MANIFEST, SLO
from nefos.storage.permissions import Permissions
from nefos.storage.reads import Reader
from nefos.storage.records import MAX_FILE_SIZE, ObjectRecord
from nefos.storage.trees import Trees
from nefos.storage.writes import Writer


@dataclass(frozen=True)
class CopyRequest:
    """One copy or move, parsed from the request: source, destination and options."""

    user: str
    source_account: str
    container: str
    name: str
    dest_account: str
    dest_container: str
    dest_name: str
    meta: dict[str, str] = field(default_factory=dict)
    move: bool = False
    delimiter: str | None = None  # a tree: also everything below name + delimiter
    version: int | None = None  # of the source (copies only)
    content_type: str | None = None  # None: the source's
    fresh: bool = False  # Swift's X-Fresh-Metadata: the user metadata is ``meta`` alone
    byte_range: str | None = None  # a Range header: the copy is of those bytes
    manifest_itself: bool = False  # ?multipart-manifest=get: a large object's manifest


class Copier:
    def __init__(
        self,
        reader: Reader,
        writer: Writer,
        trees: Trees,
        permissions: Permissions,
        bodies: Bodies,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.trees = trees
        self.permissions = permissions
        self.bodies = bodies

    async def copy(self, request: CopyRequest) -> ObjectRecord:
        """The copy (or the moved object); of a tree, the named object's or the first."""
        if request.move and request.version is not None:
            raise errors.InvalidInput("X-Source-Version is a version number (copies only)")
        if request.delimiter:
            return await self.trees.copy_tree(
                request.user, request.source_account, request.container, request.name,
                request.dest_account, request.dest_container, request.dest_name,
                request.delimiter, move=request.move, meta=request.meta,
                version=request.version, content_type=request.content_type,
                fresh=request.fresh, kept_when_fresh=LARGE_OBJECT_KEYS,
            )  # fmt: skip
        wanted = sharing.WRITE if request.move else sharing.READ
        try:
            await self.permissions.require(
                request.user, request.source_account, request.container, request.name, wanted
            )
        except errors.PermissionDenied:
            raise errors.PermissionDenied(
                f"You may not read {request.container}/{request.name}"
            ) from None
        await self.permissions.require(
            request.user,
            request.dest_account,
            request.dest_container,
            request.dest_name,
            sharing.WRITE,
        )
        if request.move:
            if request.source_account != request.dest_account:
                raise errors.PermissionDenied("Objects move only within an account")
            return await self.writer.move_object(
                request.dest_account, request.container, request.name,
                request.dest_container, request.dest_name,
                meta=request.meta, muser=request.user,
            )  # fmt: skip
        source = await self.reader.get_object(
            request.source_account, request.container, request.name, request.version
        )
        large = bool(source.meta.get(MANIFEST) or source.meta.get(SLO))
        if request.byte_range or (large and not request.manifest_itself):
            return await self._copy_data(request, source)
        if source.meta.get(SLO) and request.source_account != request.dest_account:
            await self.bodies.require_segments(request.user, request.dest_account, source)
        meta = request.meta
        if request.fresh:  # a copied manifest stays one: its markers are part of its data
            markers = {k: source.meta[k] for k in LARGE_OBJECT_KEYS if k in source.meta}
            meta = {**markers, **meta}
        return await self.writer.copy_object(
            request.dest_account, request.container, request.name,
            request.dest_container, request.dest_name,
            version=request.version, meta=meta, muser=request.user,
            source_account=request.source_account, content_type=request.content_type,
            fresh=request.fresh,
        )  # fmt: skip

    async def _copy_data(self, request: CopyRequest, source: ObjectRecord) -> ObjectRecord:
        """A large object's data (its segments joined: the copy is an ordinary object),
        or the byte range asked for."""
        body = await self.bodies.body(request.user, source)
        start, end = 0, body.size
        ranges = http.parse_ranges(request.byte_range, body.size)
        if ranges is not None:
            if len(ranges) > 1:
                raise errors.InvalidInput("A copy takes one byte range")
            start, end = ranges[0]
        kept = (
            {}
            if request.fresh
            else {k: v for k, v in source.meta.items() if k not in LARGE_OBJECT_KEYS}
        )
        return await self.writer.put_object(
            request.dest_account,
            request.dest_container,
            request.dest_name,
            self.bodies.read(body, start, end),
            content_type=request.content_type or source.type,
            meta={**kept, **request.meta},
            muser=request.user,
            max_size=MAX_FILE_SIZE,
            size_hint=end - start,
        )
