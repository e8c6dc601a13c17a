"""Reading objects: a version, its metadata, its map and its bytes.

Apart because every other part reads through here: a write, a sharing change or a public
link starts from the current version, and a GET streams its blocks from here.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from nefos.blocks import BLOCK_SIZE
from nefos.core import errors
from nefos.core.db import Database
from nefos.storage import nodes
from nefos.storage.models import CURRENT, HISTORY, Attribute, Node, Version
from nefos.storage.records import (
    USER_DOMAIN,
    ObjectRecord,
    check_object_args,
    object_path,
    object_record,
    version_record,
)
from nefos.storage.statements import CURRENT_VERSION, SOME_VERSION
from nefos.storage.stores import BlockMissing, BlockStore

# blocks a read asks the store for at once, ahead of the one it sends: disks and RADOS
# serve a few reads at once faster than one after another; bounds memory per request
READ_AHEAD = 4


class Reader:
    """Versions, their metadata domains and their data, as stored."""

    def __init__(self, db: Database, store: BlockStore):
        self.db = db
        self.store = store

    async def get_object(
        self, account: str, container: str, name: str, version: int | None = None
    ) -> ObjectRecord:
        """The current version, or version ``version`` (current or history)."""
        check_object_args(account, container, name)
        async with self.db.reading() as conn:
            rows = await version_rows(conn, account, container, name, version)
        return version_record(account, container, name, rows)

    async def hashmap(self, record: ObjectRecord) -> list[str]:
        return await self._hashes(record.map_name, record.hash, record.name)

    async def _hashes(self, map_name: str, hash_: str, what: str) -> list[str]:
        """A version's block hashes. One block needs no map: the Merkle hash of a
        one-hash map is that hash, so the version's hash is its map."""
        if not map_name:
            return [hash_]
        try:
            return await self.store.get_map(map_name)
        except BlockMissing as exc:
            raise errors.Unavailable(f"The map of {what!r} is missing") from exc

    def read(
        self, record: ObjectRecord, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        """The bytes ``[start, end)`` of a version: blocks zero-padded, cut to the size."""
        if 0 < record.size <= BLOCK_SIZE:
            # One block is named by the version's hash (see _hashes): no map to read.
            return self._read_block(record, start, end)
        return self.read_map(record.map_name, record.hash, record.size, start, end, record.name)

    async def _read_block(
        self, record: ObjectRecord, start: int, end: int | None
    ) -> AsyncIterator[bytes]:
        end = record.size if end is None else min(end, record.size)
        if start < 0 or start > end:
            raise errors.InvalidInput(f"Bad range {start}-{end} of {record.size} bytes")
        if start == end:
            return
        try:
            (raw,) = await self.store.get_blocks([record.hash])
        except BlockMissing as exc:
            raise errors.Unavailable(f"Blocks of {record.name!r} are missing") from exc
        yield raw.ljust(record.size, b"\0")[start:end]

    async def read_map(
        self,
        map_name: str,
        hash_: str,
        size: int,
        start: int = 0,
        end: int | None = None,
        what: str = "",
    ) -> AsyncIterator[bytes]:
        """:meth:`read` by the version's map and hash, for callers that pinned them (a
        server's build reads the image it was created from, whatever the file is now)."""
        what = what or map_name or hash_
        end = size if end is None else min(end, size)
        if start < 0 or start > end:
            raise errors.InvalidInput(f"Bad range {start}-{end} of {size} bytes")
        if start == end:
            return
        hashes = await self._hashes(map_name, hash_, what)
        indexes = iter(range(start // BLOCK_SIZE, (end - 1) // BLOCK_SIZE + 1))
        reads: deque[tuple[int, asyncio.Future[list[bytes]]]] = deque()

        def read_next() -> None:
            index = next(indexes, None)
            if index is not None:
                reads.append((index, asyncio.ensure_future(self.store.get_blocks([hashes[index]]))))

        for _ in range(READ_AHEAD):
            read_next()
        try:
            while reads:
                index, read = reads.popleft()
                try:
                    (raw,) = await read
                except BlockMissing as exc:
                    raise errors.Unavailable(f"Blocks of {what!r} are missing") from exc
                read_next()  # while this one is sent
                offset = index * BLOCK_SIZE
                block = raw.ljust(min(BLOCK_SIZE, size - offset), b"\0")
                yield block[max(start - offset, 0) : end - offset]
        finally:  # the reader failed or went away: drop the reads ahead
            for _, read in reads:
                if not read.cancel() and not read.cancelled():
                    read.exception()  # a failure no one will await, seen

    async def versions(
        self, account: str, container: str, name: str
    ) -> list[tuple[int, dt.datetime]]:
        """``(serial, mtime)`` of the current and history versions, oldest first."""
        check_object_args(account, container, name)
        async with self.db.session() as s:
            node = await nodes.node(s, object_path(account, container, name))
            if node is None:
                raise errors.NotFound(f"No object {container}/{name}")
            rows = (
                await s.execute(
                    select(Version.serial, Version.mtime)
                    .where(Version.node_id == node.id, Version.cluster.in_((CURRENT, HISTORY)))
                    .order_by(Version.serial)
                )
            ).all()
        if not rows:
            raise errors.NotFound(f"No object {container}/{name}")
        return [(serial, mtime) for serial, mtime in rows]

    # -- other metadata domains (images) ------------------------------------------------

    async def domain_meta(self, record: ObjectRecord, domain: str) -> dict[str, str]:
        async with self.db.session() as s:
            return await attributes(s, record.serial, domain)

    async def find_uuid(self, object_uuid: uuid.UUID) -> ObjectRecord:
        """The current version of the object with this UUID (an image id)."""
        async with self.db.session() as s:
            row = await s.execute(
                select(Node.path, Version)
                .join(Version, Version.node_id == Node.id)
                .where(Version.uuid == object_uuid, Version.cluster == CURRENT)
                .order_by(Version.serial.desc())
                .limit(1)
            )
            found = row.first()
            if found is None:
                raise errors.NotFound(f"No object {object_uuid}")
            path, version = found
            meta = await attributes(s, version.serial, USER_DOMAIN)
        account, container, name = path.split("/", 2)
        return object_record(account, container, name, version, meta)

    async def with_domain_key(
        self, domain: str, key: str
    ) -> list[tuple[ObjectRecord, dict[str, str]]]:
        """Every current object that has ``key`` in ``domain``, with that domain's
        values (all registered images, for the image service to filter)."""
        async with self.db.session() as s:
            rows = (
                await s.execute(
                    select(Node.path, Version)
                    .join(Version, Version.node_id == Node.id)
                    .join(Attribute, Attribute.serial == Version.serial)
                    .where(
                        Version.cluster == CURRENT,
                        Attribute.domain == domain,
                        Attribute.key == key,
                    )
                )
            ).all()
            serials = [version.serial for _, version in rows]
            values: dict[int, dict[str, str]] = {}
            for start in range(0, len(serials), 500):
                found = await s.execute(
                    select(Attribute.serial, Attribute.key, Attribute.value).where(
                        Attribute.serial.in_(serials[start : start + 500]),
                        Attribute.domain == domain,
                    )
                )
                for serial, name, value in found:
                    values.setdefault(serial, {})[name] = value
        records = []
        for path, version in rows:
            account, container, name = path.split("/", 2)
            record = object_record(account, container, name, version, {})
            records.append((record, values.get(version.serial, {})))
        return records


async def version_rows(
    conn: AsyncConnection, account: str, container: str, name: str, version: int | None
) -> list[Row[Any]]:
    """One statement for the version and its metadata (a row per key): every GET and
    HEAD starts here. NotFound when there is no such version."""
    path = object_path(account, container, name)
    if version is None:
        rows = (await CURRENT_VERSION(conn, {"path": path})).all()
    else:
        rows = (await SOME_VERSION(conn, {"path": path, "version": version})).all()
    if not rows:
        what = f" version {version}" if version is not None else ""
        raise errors.NotFound(f"No object {container}/{name}{what}")
    return list(rows)


async def attributes(s: AsyncSession | AsyncConnection, serial: int, domain: str) -> dict[str, str]:
    rows = await s.execute(
        select(Attribute.key, Attribute.value).where(
            Attribute.serial == serial, Attribute.domain == domain
        )
    )
    return {key: value for key, value in rows}
