"""Copies, moves and deletes of a whole tree: an object and everything below it.

Pithos's ``?delimiter=`` on COPY, MOVE and DELETE, and a container emptied by DELETE
with a delimiter, touch any number of objects. They are read a page at a time (by name,
from the last one done), never listed whole, so a tree of any size is done to its end.

Each object is copied, moved or deleted in a transaction of its own (``Writer``): a
crash midway leaves every object either done or untouched, never half-moved, and the
tree as a whole partly done, as a client that asked object by object would have left
it. What the caller may do is checked on every object of the tree, as the caller,
before any is changed: a refusal changes nothing. An object that appears meanwhile is
checked when it is reached.

A copy into its own tree (``a/`` to ``a/b/``) must not copy its copies: objects written
after the operation started (a version serial above the one it noted) in the
destination's part of the names are passed over.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from sqlalchemy import func, select

from nefos.core import errors
from nefos.storage import sharing
from nefos.storage.listings import Lister
from nefos.storage.permissions import Permissions
from nefos.storage.reads import Reader
from nefos.storage.records import ObjectRecord, check_account, check_container_name
from nefos.storage.statements import VERSIONS
from nefos.storage.writes import Writer

TREE_PAGE = 1000  # objects of a tree read per query


class Trees:
    """Operations on an object and all below it, as the user who asks."""

    def __init__(self, reader: Reader, lister: Lister, writer: Writer, permissions: Permissions):
        self.db = reader.db
        self.reader = reader
        self.lister = lister
        self.writer = writer
        self.permissions = permissions

    async def copy_tree(
        self,
        user: str,
        source_account: str,
        container: str,
        name: str,
        dest_account: str,
        dest_container: str,
        dest_name: str,
        delimiter: str,
        *,
        move: bool = False,
        meta: dict[str, str] | None = None,
        version: int | None = None,
        content_type: str | None = None,
        fresh: bool = False,
        kept_when_fresh: tuple[str, ...] = (),
        page: int = TREE_PAGE,
    ) -> ObjectRecord:
        """Copy (or ``move``) the object ``name``, if there is one, and every object
        below ``name`` + ``delimiter`` to ``dest_name`` and below it, each on the source's
        map (no data moves). ``meta``, ``content_type`` and ``fresh`` apply to each as
        ``Writer.copy_object`` takes them; ``version`` to the named object only; with
        ``fresh``, the keys ``kept_when_fresh`` stay (what makes an object what it is,
        such as a large object's manifest). Returns the named object's copy, or the
        first one below it; NotFound when there is nothing to copy."""
        if move and source_account != dest_account:
            raise errors.PermissionDenied("Objects move only within an account")
        below = name.rstrip(delimiter) + delimiter
        target = dest_name.rstrip(delimiter) + delimiter
        started = await self._last_serial()

        def destination(entry: str) -> str:
            return dest_name if entry == name else target + entry[len(below) :]

        def ours(record: ObjectRecord) -> bool:
            """A version this operation (or a writer since it started) put where it
            writes: not part of the tree it copies."""
            if record.serial <= started:
                return False
            if (record.account, record.container) != (dest_account, dest_container):
                return False
            return record.name == dest_name or record.name.startswith(target)

        wanted = sharing.WRITE if move else sharing.READ
        async for record in self._tree(source_account, container, name, below, page, fresh):
            if not ours(record):
                await self.permissions.require(user, source_account, container, record.name, wanted)
                await self.permissions.require(
                    user, dest_account, dest_container, destination(record.name), sharing.WRITE
                )
        first: ObjectRecord | None = None
        named: ObjectRecord | None = None
        async for record in self._tree(source_account, container, name, below, page, fresh):
            if ours(record):
                continue
            await self.permissions.require(user, source_account, container, record.name, wanted)
            dest = destination(record.name)
            await self.permissions.require(user, dest_account, dest_container, dest, sharing.WRITE)
            given = dict(meta or {})
            if fresh:
                kept = {k: record.meta[k] for k in kept_when_fresh if k in record.meta}
                given = {**kept, **given}
            if move:
                done = await self.writer.move_object(
                    dest_account, container, record.name, dest_container, dest,
                    meta=given, muser=user,
                )  # fmt: skip
            else:
                done = await self.writer.copy_object(
                    dest_account, container, record.name, dest_container, dest,
                    version=version if record.name == name else None, meta=given, muser=user,
                    source_account=source_account, content_type=content_type, fresh=fresh,
                )  # fmt: skip
            first = first or done
            if record.name == name:
                named = done
        if first is None:
            raise errors.NotFound(f"No object {container}/{name}")
        return named or first

    async def delete_tree(
        self,
        user: str,
        account: str,
        container: str,
        name: str,
        delimiter: str,
        page: int = TREE_PAGE,
    ) -> int:
        """Delete the object ``name``, if there is one, and every object below ``name``
        + ``delimiter`` (deleted markers: history stays); how many. NotFound when there
        is none."""
        below = name.rstrip(delimiter) + delimiter
        async for record in self._tree(account, container, name, below, page):
            await self.permissions.require(user, account, container, record.name, sharing.WRITE)
        deleted = 0
        async for record in self._tree(account, container, name, below, page):
            await self.permissions.require(user, account, container, record.name, sharing.WRITE)
            try:
                await self.writer.delete_object(account, container, record.name, user)
            except errors.NotFound:
                continue  # deleted meanwhile
            deleted += 1
        if not deleted:
            raise errors.NotFound(f"No object {container}/{name}")
        return deleted

    async def empty_container(
        self, account: str, container: str, muser: str = "", page: int = TREE_PAGE
    ) -> int:
        """Delete every object of a container (Pithos's DELETE with a delimiter: the
        container stays); how many. Only its owner asks, so no rights are checked."""
        deleted = 0
        marker: str | None = None
        while True:
            entries = await self.lister.list_objects(account, container, marker=marker, limit=page)
            for entry in entries:
                marker = entry.name
                try:
                    await self.writer.delete_object(account, container, entry.name, muser)
                except errors.NotFound:
                    continue
                deleted += 1
            if len(entries) < page:
                return deleted

    async def _tree(
        self,
        account: str,
        container: str,
        name: str,
        below: str,
        page: int,
        with_meta: bool = False,
    ) -> AsyncIterator[ObjectRecord]:
        """The objects whose names start with ``below``, by name, a page at a time from
        the last one given; then the object ``name``, if there is one. It comes last as
        the others may inherit their sharing from it (a directory object), and sharing
        follows an object moved or ends with one deleted."""
        check_account(account)
        check_container_name(container)
        if page < 1:
            raise errors.InvalidInput("A page holds at least one object")
        marker: str | None = None
        while True:
            entries = await self.lister.list_objects(
                account, container, prefix=below, marker=marker, limit=page, with_meta=with_meta
            )
            for entry in entries:
                assert isinstance(entry, ObjectRecord)  # no delimiter: no subdirs
                marker = entry.name
                if entry.name != name:
                    yield entry
            if len(entries) < page:
                break
        try:
            named: ObjectRecord | None = await self.reader.get_object(account, container, name)
        except errors.NotFound:
            named = None
        if named is not None:
            yield named

    async def _last_serial(self) -> int:
        async with self.db.session() as s:
            return int(await s.scalar(select(func.max(VERSIONS.c.serial))) or 0)
