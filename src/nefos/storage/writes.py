"""Writing objects: what a new version holds, and the commit it ends in.

New data, copies and moves, metadata, updates in place and expiry each work out the
version to write here and hand it to ``nefos.storage.commits``; apart so that those
operations read as what they do, not how the transaction does it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

from nefos import blocks
from nefos.blocks import BLOCK_SIZE, EMPTY_HASH
from nefos.core import errors
from nefos.core.config import Settings
from nefos.core.db import Database, utcnow
from nefos.quotas.service import Quotas, charge
from nefos.storage import commits, known, nodes, pending
from nefos.storage.commits import Commits, Plan, VersionData, Write
from nefos.storage.models import CURRENT
from nefos.storage.permissions import Permissions
from nefos.storage.reads import Reader
from nefos.storage.records import (
    CLIENTKEY,
    RESOURCE,
    ObjectRecord,
    check_account,
    check_container_name,
    check_domains,
    check_meta,
    check_object_args,
    check_type,
    content_of,
    object_path,
)
from nefos.storage.statements import COPY_MD5, COPY_OF_SIZE
from nefos.storage.stores import BlockMissing, BlockStore
from nefos.storage.upload import Copies, store_stream

INLINE_HASH = 256 * 1024  # smaller blocks are hashed on the loop: a thread hop costs more


class Writer:
    """New versions of objects: data, copies, moves, metadata, deletes. ``reader`` gives
    the versions they start from; ``commits`` makes them current."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        store: BlockStore,
        quotas: Quotas,
        reader: Reader,
        commits: Commits,
        permissions: Permissions,
    ):
        self.db = db
        self.settings = settings
        self.store = store
        self.quotas = quotas
        self.reader = reader
        self.commits = commits
        self.permissions = permissions

    async def put_object(
        self,
        account: str,
        container: str,
        name: str,
        chunks: AsyncIterator[bytes],
        content_type: str = "application/octet-stream",
        meta: dict[str, str] | None = None,
        muser: str = "",
        etag: str | None = None,
        max_size: int | None = None,
        domains: dict[str, dict[str, str]] | None = None,
        uuid: uuid.UUID | None = None,
        size_hint: int | None = None,
    ) -> ObjectRecord:
        """Store a stream as the new current version, a few blocks at a time. ``etag``
        (an MD5 the client computed) is checked before anything becomes visible;
        beyond ``max_size`` bytes the upload is refused. ``domains`` replace whole
        metadata domains other than the user's (the image service's ``plankton``).
        ``size_hint`` (the declared length): a body of one block at most is stored
        before anything is read, as refusing it early would save nothing."""
        small = size_hint is not None and size_hint <= BLOCK_SIZE
        meta, plan = await self._check_write(
            account, container, name, content_type, meta, read_plan=not small
        )
        copies = Copies(self._copy_of_size, self._copy_md5)
        stored = await store_stream(
            self.store, chunks, max_size=max_size, copies=copies, declared=size_hint
        )
        if etag is not None and etag.strip('"').lower() != stored.md5:
            raise errors.ChecksumMismatch("The data does not match the ETag given")
        data = await self._new_map(stored.size, stored.hashes, content_type, meta, stored.md5)
        data.known = stored.hashes
        data.domains = check_domains(domains)
        data.uuid = uuid  # None: the path's own, or a fresh one
        return await self._commit_new(account, container, name, muser, data, plan)

    async def _copy_of_size(self, size: int) -> bool:
        """Whether some version of more than one block has this size: the hint that an
        upload of that size may repeat it (``nefos.storage.upload``)."""
        async with self.db.reading() as conn:
            return (await COPY_OF_SIZE(conn, {"size": size})).first() is not None

    async def _copy_md5(self, hashes: list[str], size: int) -> str | None:
        """The MD5 of a version holding these bytes, if one does: the same Merkle hash
        and size name the same bytes, so its MD5 is the body's. Any account's will do:
        the caller sent the bytes, so the answer tells them nothing they lack."""
        params = {"hash": blocks.merkle(hashes), "size": size}
        async with self.db.reading() as conn:
            return (await COPY_MD5(conn, params)).scalar()

    async def _check_write(
        self,
        account: str,
        container: str,
        name: str,
        content_type: str,
        meta: dict[str, str] | None,
        read_plan: bool = True,
    ) -> tuple[dict[str, str], Plan | None]:
        """What every new object is checked for before any block is stored; with
        ``read_plan``, the reads the commit needs are made now too (a missing container
        or a full quota is refused before the body arrives; the commit checks they
        still hold)."""
        check_object_args(account, container, name)
        check_type(content_type)
        checked = check_meta(meta)
        if not read_plan:
            return checked, None
        async with self.db.reading() as conn:  # the write checks it again
            plan = await commits.read_plan(conn, account, [(container, name)])
        return checked, plan

    async def _commit_new(
        self,
        account: str,
        container: str,
        name: str,
        muser: str,
        data: VersionData,
        plan: Plan | None,
    ) -> ObjectRecord:
        (done,) = await self.commits.commit(account, muser, [Write(container, name, data)], plan)
        if data.meta is None:  # the user's metadata carried forward: as stored
            return await self.reader.get_object(account, container, name, done.serial)
        # As written, not read back: the same fields in ObjectRecord's order.
        return ObjectRecord(
            account,
            container,
            name,
            done.serial,
            *content_of(data),
            done.uuid,
            done.mtime,
            muser,
            CURRENT,
            dict(data.meta),
        )

    async def put_hashmap(
        self,
        account: str,
        container: str,
        name: str,
        size: int,
        hashes: Sequence[str],
        content_type: str = "application/octet-stream",
        meta: dict[str, str] | None = None,
        muser: str = "",
    ) -> ObjectRecord:
        """Commit an object from blocks already stored; Conflict with ``data["missing"]``
        (the hashes to upload, in order) when the store lacks some, or when ``muser``'s
        account never had them and ``storage.hashmap_reuse`` is "known"
        (``nefos.storage.known``). A size beyond the quota is refused before any block
        is touched: a refused PUT keeps nothing young for gc."""
        try:
            hashes = blocks.check_hashmap(size, hashes)
        except ValueError as exc:
            raise errors.InvalidInput(str(exc)) from None
        meta, plan = await self._check_write(account, container, name, content_type, meta)
        await self.commits.check_growth(account, container, name, size, using=hashes)
        unsent: set[str] = set()
        if self.settings.storage.hashmap_reuse == "known":
            async with self.db.session() as s:
                unsent = await known.unknown(s, muser or account, hashes)
        # touch: the blocks found are about to be referenced, so gc must spare them.
        lacking = set(await self.store.missing([h for h in hashes if h not in unsent], True))
        missing = [h for h in dict.fromkeys(hashes) if h in unsent or h in lacking]
        if missing:
            raise errors.Conflict("Missing blocks", data={"missing": missing})
        data = await self._new_map(size, hashes, content_type, meta, "")
        data.known = hashes
        data.pending = tuple(h for h in dict.fromkeys(hashes) if h != EMPTY_HASH)
        return await self._commit_new(account, container, name, muser, data, plan)

    async def had_blocks(self, account: str, hashes: Sequence[str]) -> None:
        """``account`` has had these blocks: an operator sends a file's blocks to the
        store itself (``nefos image register``), holding its bytes, so the account's
        hashmap PUT may name any of them (``nefos.storage.known``)."""
        check_account(account)
        async with self.db.write() as conn:
            await known.remember(conn, [account], hashes)

    async def upload_blocks(
        self, uploader: str, account: str, container: str, chunks: AsyncIterator[bytes]
    ) -> list[str]:
        """Pithos's block upload: store a body as blocks for a later hashmap PUT and say
        their hashes ([] for an empty body). The uploader must own the container or be
        able to write somewhere in it. Each block is charged to the account before
        it is stored (``nefos.storage.pending``): past the quota the upload stops with
        OverQuota, the blocks before that point stored and charged, none after it."""
        check_account(account)
        check_container_name(container)
        if not await self.permissions.writes_in(uploader, account, container):
            raise errors.PermissionDenied("You may not write in this container")
        await self.permissions.containers.container(account, container)

        async def admit(block: memoryview) -> None:
            data = blocks.stripped(block)
            if not data:
                return  # the zero block is never stored
            name = (
                await asyncio.to_thread(blocks.block_hash, data)
                if len(data) >= INLINE_HASH
                else blocks.block_hash(data)
            )
            await self._charge_block(account, container, name, len(data), uploader)

        stored = await store_stream(self.store, chunks, md5=False, admit=admit)
        return stored.hashes if stored.size else []

    async def _charge_block(
        self, account: str, container: str, name: str, size: int, uploader: str
    ) -> None:
        """One block of an upload, charged in one transaction unless already pending;
        the account and its uploader have had it from then on."""
        async with self.db.write() as conn:
            policy = await commits.policy(conn, account, container, lock=True)
            await known.remember(conn, {account, uploader}, [name])
            if not await pending.record(
                conn, account, name, size, policy.project, policy.id, utcnow()
            ):
                return
            if policy.quota:
                _, used, _ = await nodes.container_stats(conn, policy.id)
                used += await pending.in_container(conn, policy.id)  # this block's included
                if used > policy.quota:
                    raise errors.OverQuota(
                        f"Container {container!r} quota exceeded",
                        data={"limit": policy.quota, "usage": used - size, "requested": size},
                    )
            provisions = charge(account, policy.project, RESOURCE, size)
            await self.quotas.take(conn, CLIENTKEY, provisions, name=f"pithos {account} blocks")

    async def delete_object(self, account: str, container: str, name: str, muser: str = "") -> int:
        """Add a deleted marker (history stays) and release the object's size."""
        check_object_args(account, container, name)
        return (await self.commits.commit(account, muser, [Write(container, name, None)]))[0].serial

    async def copy_object(
        self,
        account: str,
        container: str,
        name: str,
        dest_container: str,
        dest_name: str,
        version: int | None = None,
        meta: dict[str, str] | None = None,
        muser: str = "",
        source_account: str | None = None,
        content_type: str | None = None,
        fresh: bool = False,
    ) -> ObjectRecord:
        """A new object on the same map and hash (no data moves) with a new UUID; every
        metadata domain is copied, the user's overlaid with ``meta`` (or, ``fresh``,
        replaced by it: Swift's ``X-Fresh-Metadata``). The source may be in
        ``source_account`` (the caller checks the right to read it)."""
        check_object_args(account, dest_container, dest_name)
        source = await self.reader.get_object(source_account or account, container, name, version)
        if content_type is not None:
            source = dataclasses.replace(source, type=check_type(content_type))
        data = self._reuse(source, meta, keep_uuid=False, fresh=fresh)
        if source.account != account:  # the caller could read it: the account has had it
            data.known = await self.reader.hashmap(source) if source.size else []
        write = Write(dest_container, dest_name, data)
        serial = (await self.commits.commit(account, muser, [write]))[0].serial
        return await self.reader.get_object(account, dest_container, dest_name, serial)

    async def move_object(
        self,
        account: str,
        container: str,
        name: str,
        dest_container: str,
        dest_name: str,
        meta: dict[str, str] | None = None,
        muser: str = "",
    ) -> ObjectRecord:
        """Rename: the destination takes the source's map, hash and UUID; the source
        gets a deleted marker, in the same transaction."""
        check_object_args(account, dest_container, dest_name)
        source = await self.reader.get_object(account, container, name)
        if (container, name) == (dest_container, dest_name):
            return source
        data = self._reuse(source, meta, keep_uuid=True)
        writes = [
            Write(
                dest_container,
                dest_name,
                data,
                moved_from=object_path(account, container, name),
            ),
            Write(container, name, None, base=source.serial),  # a moved-over source: retry
        ]
        serial = (await self.commits.commit(account, muser, writes))[0].serial
        return await self.reader.get_object(account, dest_container, dest_name, serial)

    async def set_domain(
        self,
        account: str,
        container: str,
        name: str,
        domain: str,
        values: dict[str, str],
        muser: str = "",
        expect_serial: int | None = None,
    ) -> ObjectRecord:
        """A new version on the same map whose ``domain`` holds exactly ``values``
        (the image service registers and edits images this way; no data moves).
        ``expect_serial``: fail with Conflict if the object changed since."""
        current = await self.reader.get_object(account, container, name)
        if expect_serial is not None and current.serial != expect_serial:
            raise errors.Conflict(f"{container}/{name} changed meanwhile")
        data = _same_data(current, domains=check_domains({domain: values}))
        return await self._rewrite(current, data, muser)

    # -- updating objects in place -------------------------------------------------------------

    async def update_meta(
        self,
        account: str,
        container: str,
        name: str,
        meta: dict[str, str],
        replace: bool = False,
        content_type: str | None = None,
        muser: str = "",
    ) -> ObjectRecord:
        """A new version on the same map with user metadata replaced or merged (an empty
        value deletes a key when merging)."""
        current = await self.reader.get_object(account, container, name)
        merged = {} if replace else dict(current.meta)
        for key, value in check_meta(meta).items():
            if value or replace:
                merged[key] = value
            else:
                merged.pop(key, None)
        data = _same_data(
            current,
            type=check_type(content_type) if content_type is not None else current.type,
            meta=check_meta({k: v for k, v in merged.items() if v}),
        )
        return await self._rewrite(current, data, muser)

    async def _rewrite(self, current: ObjectRecord, data: VersionData, muser: str) -> ObjectRecord:
        """Commit ``data`` as the version after ``current`` (Conflict if another came
        between) and read it back."""
        write = Write(current.container, current.name, data, base=current.serial)
        serial = (await self.commits.commit(current.account, muser, [write]))[0].serial
        return await self.reader.get_object(
            current.account, current.container, current.name, serial
        )

    async def update_data(
        self,
        account: str,
        container: str,
        name: str,
        chunks: AsyncIterator[bytes] | None,
        offset: int | None = None,
        truncate: int | None = None,
        muser: str = "",
        length: int | None = None,
        max_size: int | None = None,
    ) -> ObjectRecord:
        """Spec §1.5 POST data update: write ``chunks`` (``length`` bytes, if known) at
        ``offset`` (None appends), then set the size to ``truncate`` if given. Only
        touched blocks are rebuilt; the rest of the map is reused, and a zero-extended
        block keeps its hash. The sizes it will reach are checked against ``max_size``
        and the quota before any block or map is stored: a refused update writes
        nothing, and no size grows the map beyond ``max_size``."""
        current = await self.reader.get_object(account, container, name)
        size = current.size
        position = size if offset is None else offset
        if position < 0 or (truncate is not None and truncate < 0):
            raise errors.InvalidInput("Offsets and sizes are byte counts")
        reach = max(size, position + (length or 0)) if chunks is not None else size
        final = truncate if truncate is not None else reach
        if max_size is not None and max(reach, final, position) > max_size:
            raise errors.TooLarge(f"An object has at most {max_size} bytes")
        if final > size:
            await self.commits.check_growth(account, container, name, final)
        hashes = list(await self.reader.hashmap(current)) if current.size else []
        had = set(hashes)
        if chunks is not None:
            hashes, size = await self._write_at(current, hashes, size, position, chunks, max_size)
        if truncate is not None:
            hashes, size = await self._resize(current.name, hashes, size, truncate)
        hashes = hashes or [EMPTY_HASH]
        data = await self._new_map(size, hashes, current.type, current.meta, "")
        data.known = [h for h in hashes if h not in had]  # the rest the account had before
        data.uuid = current.uuid
        data.source_serial = current.serial
        return await self._rewrite(current, data, muser)

    async def _block(self, name: str, hashes: list[str], size: int, index: int) -> bytearray:
        """Block ``index`` as readers see it (zero-padded to its length in ``size``)."""
        if index >= len(hashes):
            return bytearray()
        try:
            (raw,) = await self.store.get_blocks([hashes[index]])
        except BlockMissing as exc:
            raise errors.Unavailable(f"Blocks of {name!r} are missing") from exc
        return bytearray(raw.ljust(min(BLOCK_SIZE, size - index * BLOCK_SIZE), b"\0"))

    async def _write_at(
        self,
        record: ObjectRecord,
        hashes: list[str],
        size: int,
        position: int,
        chunks: AsyncIterator[bytes],
        max_size: int | None = None,
    ) -> tuple[list[str], int]:
        index = position // BLOCK_SIZE
        block: bytearray | None = None
        written = False

        async def flush() -> None:
            nonlocal block
            assert block is not None
            (digest,) = await self.store.put_blocks([block])
            while len(hashes) <= index:
                hashes.append(EMPTY_HASH)  # a gap reads as zeros
            hashes[index] = digest
            block = None

        async for chunk in chunks:
            view = memoryview(chunk)
            while view:
                if block is None:
                    block = await self._block(record.name, hashes, size, index)
                within = position - index * BLOCK_SIZE
                take = min(BLOCK_SIZE - within, len(view))
                if len(block) < within:
                    block.extend(bytes(within - len(block)))
                block[within : within + take] = view[:take]
                view = view[take:]
                position += take
                if max_size is not None and position > max_size:
                    raise errors.TooLarge(f"An object has at most {max_size} bytes")
                written = True
                size = max(size, position)
                if position % BLOCK_SIZE == 0:
                    await flush()
                    index += 1
        if block is not None:
            await flush()
        if not written and position > size:
            size = position
        blocks_needed = -(-size // BLOCK_SIZE)
        hashes.extend([EMPTY_HASH] * (blocks_needed - len(hashes)))
        return hashes, size

    async def _resize(
        self, name: str, hashes: list[str], size: int, new_size: int
    ) -> tuple[list[str], int]:
        """Truncate or zero-extend; a block cut in the middle is rebuilt so old bytes
        past the new end can never reappear when the object grows again."""
        blocks_needed = -(-new_size // BLOCK_SIZE)
        if new_size < size:
            hashes = hashes[:blocks_needed]
            tail = new_size % BLOCK_SIZE
            if tail:
                block = await self._block(name, hashes, size, blocks_needed - 1)
                (hashes[-1],) = await self.store.put_blocks([memoryview(block)[:tail]])
        else:
            hashes = hashes + [EMPTY_HASH] * (blocks_needed - len(hashes))
        return hashes, new_size

    async def _new_map(
        self, size: int, hashes: list[str], content_type: str, meta: dict[str, str], md5: str
    ) -> VersionData:
        """Store the map under a name never used before (a crash leaves it as garbage).
        A one-block version stores none (``map_name`` ""; see :meth:`_hashes`): for a
        small object the map file was one more file created and fsynced per write."""
        map_name = ""
        if len(hashes) > 1:
            map_name = secrets.token_hex(16)
            await self.store.put_map(map_name, hashes)
        return VersionData(size, content_type, blocks.merkle(hashes), md5, map_name, None, meta)

    def _reuse(
        self,
        source: ObjectRecord,
        meta: dict[str, str] | None,
        keep_uuid: bool,
        fresh: bool = False,
    ) -> VersionData:
        merged = {} if fresh else dict(source.meta)
        merged.update(check_meta(meta))
        merged = {key: value for key, value in merged.items() if value}  # "": removed
        return _same_data(source, uuid=source.uuid if keep_uuid else None, meta=check_meta(merged))


def _same_data(record: ObjectRecord, **changes: Any) -> VersionData:
    """A new version's content on ``record``'s map (no data moves): its size, type,
    hashes and UUID, its metadata and other domains copied from it, unless ``changes``
    says otherwise."""
    data = VersionData(
        size=record.size,
        type=record.type,
        hash=record.hash,
        checksum=record.checksum,
        map_name=record.map_name,
        uuid=record.uuid,
        meta=None,
        source_serial=record.serial,
    )
    return dataclasses.replace(data, **changes)
