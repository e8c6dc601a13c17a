"""An object's PUT as the caller asks it: the data itself, a Pithos hashmap of stored
blocks, a static large object's manifest, or a copy or move; with its metadata, the
If-Match / If-None-Match it is conditional on, and the sharing it sets.

The caller must be able to write the object; only its owner shares or publishes, which is
checked before anything is written. The conditions are checked against the current
version (spec §1.5: ``*`` for any, else its ETags; 412 when they fail).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from nefos.core import errors, http
from nefos.storage import sharing
from nefos.storage.copies import Copier, CopyRequest
from nefos.storage.manifests import Manifest, Manifests
from nefos.storage.permissions import Permissions
from nefos.storage.reads import Reader
from nefos.storage.records import MAX_FILE_SIZE, ObjectRecord, etag_of
from nefos.storage.updates import SharingChange, require_sharing_rights
from nefos.storage.writes import Writer


@dataclass(frozen=True)
class Data:
    """The object's bytes, as they arrive."""

    chunks: AsyncIterator[bytes]
    content_type: str
    etag: str | None = None  # the client's MD5, checked before the version is visible
    size_hint: int | None = None


@dataclass(frozen=True)
class Hashmap:
    """Pithos: the object made of blocks the store has (409 names those it lacks).
    ``read`` reads and parses the body (size, hashes) once the caller may write."""

    read: Callable[[], Awaitable[tuple[int, list[str]]]]
    content_type: str


@dataclass(frozen=True)
class PutRequest:
    user: str
    account: str
    container: str
    name: str
    body: Data | Hashmap | Manifest | CopyRequest  # a copy carries its own metadata
    meta: dict[str, str] = field(default_factory=dict)
    sharing: SharingChange | None = None
    if_match: str | None = None
    if_none_match: str | None = None


class Putter:
    def __init__(
        self,
        reader: Reader,
        writer: Writer,
        permissions: Permissions,
        manifests: Manifests,
        copier: Copier,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.permissions = permissions
        self.manifests = manifests
        self.copier = copier

    async def put(self, request: PutRequest) -> ObjectRecord:
        user, account, container, name = (
            request.user, request.account, request.container, request.name,
        )  # fmt: skip
        # Before the conditions, so a 412 tells nobody else what is there (a copy checks
        # its destination again, with its source: the price of one query for a sharer).
        await self.permissions.require(user, account, container, name, sharing.WRITE)
        require_sharing_rights(user, account, request.sharing)
        await self._check_conditions(request)
        body, meta = request.body, request.meta
        if isinstance(body, Data):
            record = await self.writer.put_object(
                account, container, name, body.chunks,
                content_type=body.content_type, meta=meta, muser=user, etag=body.etag,
                max_size=MAX_FILE_SIZE, size_hint=body.size_hint,
            )  # fmt: skip
        elif isinstance(body, Hashmap):
            size, hashes = await body.read()
            record = await self.writer.put_hashmap(
                account, container, name, size, hashes,
                content_type=body.content_type, meta=meta, muser=user,
            )  # fmt: skip
        elif isinstance(body, Manifest):
            record = await self.manifests.put_slo(user, account, container, name, body, meta)
        else:
            record = await self.copier.copy(body)
        if request.sharing is not None:
            change = request.sharing
            await self.permissions.share(account, container, name, change.grants, change.public)
        return record

    async def _check_conditions(self, request: PutRequest) -> None:
        if request.if_match is None and request.if_none_match is None:
            return
        try:
            current = await self.reader.get_object(request.account, request.container, request.name)
            etag: str | None = etag_of(current)
        except errors.NotFound:
            etag = None
        if request.if_match is not None and (
            etag is None or not http.etag_matches(request.if_match, etag)
        ):
            raise errors.PreconditionFailed("If-Match does not match the object")
        if (
            request.if_none_match is not None
            and etag is not None
            and http.etag_matches(request.if_none_match, etag)
        ):
            raise errors.PreconditionFailed("If-None-Match matches the object")
