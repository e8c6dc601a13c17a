"""An object's POST (Swift and Pithos): its metadata replaced or merged, its data
updated in place (Pithos: at an offset, appended, taken from another object, truncated
or extended), and its sharing and public link set, as the caller asks them.

The caller must be able to write the object; only its owner changes sharing or
publishes. A data update takes another object's bytes only if the caller can read that
object: a share of this object grants nothing on others.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from nefos.core import errors
from nefos.storage import sharing
from nefos.storage.large import SLO_KEYS
from nefos.storage.permissions import Permissions
from nefos.storage.reads import Reader
from nefos.storage.records import MAX_OBJECT_SIZE, ObjectRecord
from nefos.storage.writes import Writer


@dataclass(frozen=True)
class SharingChange:
    """``X-Object-Sharing`` (who reads, who writes) and ``X-Object-Public``, parsed;
    None leaves that part as it is."""

    grants: tuple[list[str], list[str]] | None = None
    public: bool | None = None


@dataclass(frozen=True)
class DataSource:
    """Another object whose bytes a data update writes (Pithos's ``X-Source-Object``)."""

    account: str
    container: str
    name: str
    version: int | None = None


@dataclass(frozen=True)
class DataUpdate:
    """Bytes written at ``offset`` (None: appended), from ``chunks`` or ``source``, up to
    ``last`` (the Content-Range's end); then the size set to ``truncate``."""

    chunks: AsyncIterator[bytes] | None = None
    length: int | None = None
    offset: int | None = None
    last: int | None = None
    source: DataSource | None = None
    truncate: int | None = None


@dataclass(frozen=True)
class ObjectUpdate:
    user: str
    account: str
    container: str
    name: str
    meta: dict[str, str] = field(default_factory=dict)  # an empty value removes a key
    rewrite_meta: bool = False  # a new version with ``meta`` (and ``content_type``)
    replace_meta: bool = False  # POST without ``update``: the user metadata is ``meta``
    content_type: str | None = None
    data: DataUpdate | None = None
    sharing: SharingChange | None = None


def require_sharing_rights(user: str, account: str, change: SharingChange | None) -> None:
    """Only the owner shares or publishes (checked before a write, so a refused header
    leaves nothing behind)."""
    if change is None or user == account:
        return
    if change.grants is not None:
        raise errors.PermissionDenied("Only the owner may change sharing")
    raise errors.PermissionDenied("Only the owner may publish")


class Updater:
    def __init__(self, reader: Reader, writer: Writer, permissions: Permissions) -> None:
        self.reader = reader
        self.writer = writer
        self.permissions = permissions

    async def update(self, request: ObjectUpdate) -> ObjectRecord:
        """The object as it is after the update."""
        user, account, container, name = (
            request.user, request.account, request.container, request.name,
        )  # fmt: skip
        await self.permissions.require(user, account, container, name, sharing.WRITE)
        change = request.sharing
        require_sharing_rights(user, account, change)
        if request.data is not None:
            record = await self._update_data(request, request.data)
            if request.meta:
                record = await self.writer.update_meta(
                    account, container, name, request.meta, muser=user
                )
        elif request.rewrite_meta:
            meta = dict(request.meta)
            if request.replace_meta:
                # Swift and Pithos: a POST without update replaces the user metadata,
                # but keeps the large-object markers that are part of the data.
                current = await self.reader.get_object(account, container, name)
                meta.update({k: current.meta[k] for k in SLO_KEYS if k in current.meta})
            record = await self.writer.update_meta(
                account, container, name, meta,
                replace=request.replace_meta, content_type=request.content_type, muser=user,
            )  # fmt: skip
        else:
            record = await self.reader.get_object(account, container, name)
        if change is not None:
            await self.permissions.share(account, container, name, change.grants, change.public)
        return record

    async def _update_data(self, request: ObjectUpdate, data: DataUpdate) -> ObjectRecord:
        chunks, length = data.chunks, data.length
        if data.source is not None:
            source = data.source
            try:
                await self.permissions.require(
                    request.user, source.account, source.container, source.name, sharing.READ
                )
            except errors.PermissionDenied:
                raise errors.PermissionDenied(
                    f"You may not read {source.container}/{source.name}"
                ) from None
            record = await self.reader.get_object(
                source.account, source.container, source.name, source.version
            )
            end = record.size
            if data.last is not None and data.offset is not None:
                end = min(record.size, data.last - data.offset + 1)
            chunks, length = self.reader.read(record, 0, end), end
        return await self.writer.update_data(
            request.account, request.container, request.name, chunks,
            offset=data.offset, truncate=data.truncate, muser=request.user,
            length=length, max_size=MAX_OBJECT_SIZE,
        )  # fmt: skip
