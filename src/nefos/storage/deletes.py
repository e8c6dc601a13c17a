"""An object's DELETE as the caller asks it: the object (a deleted marker; history
stays), everything below it too (``?delimiter=``), a static large object with its
segments (``?multipart-manifest=delete``), or its versions before a moment
(``?until=``); Swift's ``X-If-Delete-At`` makes it conditional on the object's expiry.

The caller must be able to write the object; the tree and SLO deletes check every
object they touch as the caller, before any is deleted.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from nefos.core import errors
from nefos.storage import sharing
from nefos.storage.large import LargeObjects, SloDeleted
from nefos.storage.maintenance import Maintenance
from nefos.storage.permissions import Permissions
from nefos.storage.reads import Reader
from nefos.storage.records import DELETE_AT
from nefos.storage.trees import Trees
from nefos.storage.writes import Writer


@dataclass(frozen=True)
class DeleteRequest:
    user: str
    account: str
    container: str
    name: str
    delimiter: str | None = None
    manifest: bool = False  # the SLO and its segments
    until: dt.datetime | None = None  # its history before then, not the object
    if_delete_at: int | None = None  # only if the object expires at this second


class Deleter:
    def __init__(
        self,
        reader: Reader,
        writer: Writer,
        trees: Trees,
        permissions: Permissions,
        large: LargeObjects,
        maintenance: Maintenance,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.trees = trees
        self.permissions = permissions
        self.large = large
        self.maintenance = maintenance

    async def delete(self, request: DeleteRequest) -> SloDeleted | None:
        """What an SLO delete did; None for the others."""
        user, account, container, name = (
            request.user, request.account, request.container, request.name,
        )  # fmt: skip
        await self.permissions.require(user, account, container, name, sharing.WRITE)
        if request.manifest:
            return await self.large.delete_slo(user, account, container, name)
        if request.if_delete_at is not None:  # Swift: delete only if it still expires then
            record = await self.reader.get_object(account, container, name)
            if int(record.meta.get(DELETE_AT) or -1) != request.if_delete_at:
                raise errors.PreconditionFailed("X-If-Delete-At and X-Delete-At do not match")
        if request.until is not None:
            await self.maintenance.purge(account, container, name, request.until)
        elif request.delimiter:
            await self.trees.delete_tree(user, account, container, name, request.delimiter)
        else:
            await self.writer.delete_object(account, container, name, user)
        return None
