"""The ``rados`` block store: blocks and maps as objects in one Ceph RADOS pool.

Blocks are ``blk.<hex hash>`` holding their canonical bytes (the zero block is never
stored), maps are ``map.<name>`` holding the raw digests (``encode_map``). librados
acknowledges ``write_full`` only once the OSDs have committed it, so a returned put is
durable. Its calls block, so each batch runs in one worker thread off the event loop.

Put times are object mtimes, which librados takes from the writer's clock. A block found
present is touched by one compound operation that compares its tail and sets an xattr
with an explicit mtime (RADOS keeps the old mtime when a write op gives none), so a
touch never creates a truncated or empty block where gc has just deleted one. Collect
deletes with ``assert_version``: an object touched since it was looked at is kept. The
version of a stat is only readable per I/O context, so those calls use one of their own.

Extents (a volume's own blocks, changed in place) are objects ``<index>`` in the
namespace ``ext.<owner>`` of the pool, so an owner's extents list without listing the
pool, and ``block_names`` never sees them. A write of runs is one compound operation
per extent (truncated first when fresh), acknowledged once committed.

The ``rados`` module is Debian's python3-rados (there is no PyPI route); it is imported
here only, so the file store works on machines without Ceph.
"""

from __future__ import annotations

import asyncio
import calendar
import contextlib
import datetime as dt
import math
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import rados

from nefos.blocks import BLOCK_SIZE, EMPTY_HASH, Buffer, block_hash, canonical, is_hash
from nefos.storage.stores import (
    BlockMissing,
    ExtentWrite,
    Kind,
    Put,
    check_extent_owner,
    check_map_name,
    decode_map,
    encode_map,
    split_extent,
)

BLOCK_PREFIX = "blk."
MAP_PREFIX = "map."
EXTENT_NAMESPACE = "ext."
CONNECT_TIMEOUT = 30  # seconds; a wrong mon address fails instead of hanging
PUT_XATTR = "nefos.put"  # set (empty) by a touch, for its mtime
PROBE = 8  # tail bytes a touch compares, so it only ever touches the right, whole block
TOUCH_ATTEMPTS = 3


def _block_object(name: str) -> str:
    if not is_hash(name):
        raise ValueError(f"bad block hash {name!r}")
    return BLOCK_PREFIX + name


def _map_object(name: str) -> str:
    return MAP_PREFIX + check_map_name(name)


class RadosStore:
    def __init__(self, conffile: Path, pool: str, user: str = "admin"):
        self.conffile = Path(conffile)
        self.pool = pool
        self.user = user
        self._cluster: Any = None
        self._ioctx: Any = None
        self._lock = threading.Lock()

    def _io(self) -> Any:
        """The pool's I/O context, connecting on first use so that building a store (at
        startup, in tests) never needs a reachable cluster."""
        with self._lock:
            if self._ioctx is None:
                cluster = rados.Rados(conffile=str(self.conffile), rados_id=self.user)
                try:
                    cluster.connect(timeout=CONNECT_TIMEOUT)
                    self._ioctx = cluster.open_ioctx(self.pool)
                except BaseException:
                    cluster.shutdown()
                    raise
                self._cluster = cluster
            return self._ioctx

    @contextlib.contextmanager
    def _private_io(self) -> Iterator[Any]:
        """An I/O context for one worker thread, whose ``get_last_version`` is ours."""
        self._io()
        io = self._cluster.open_ioctx(self.pool)
        try:
            yield io
        finally:
            io.close()

    @staticmethod
    def _now() -> int:
        """A touch's mtime: whole seconds, rounded up so it never looks older than it is."""
        return math.ceil(time.time())

    @staticmethod
    def _operate(io: Any, key: str, build: Any) -> bool:
        """Run one compound write op; False when any step of it failed (nothing applied)."""
        op = io.create_write_op()
        try:
            build(op)
            io.operate_write_op(op, key, mtime=RadosStore._now())
        except rados.Error:
            return False
        finally:
            io.release_write_op(op)
        return True

    @classmethod
    def _touch_block(cls, io: Any, key: str, data: bytes) -> bool:
        """Mark a stored block as put now; False when it is absent or not whole."""
        tail = data[-PROBE:]

        def build(op: Any) -> None:
            op.cmpext(tail, len(data) - len(tail))
            op.set_xattr(PUT_XATTR, b"")

        return cls._operate(io, key, build)

    @classmethod
    def _touch_versioned(cls, io: Any, key: str) -> bool:
        """Mark a stored object as put now without knowing its bytes: stat, then touch
        only that version of it (the stat's version needs a private I/O context)."""
        for _ in range(TOUCH_ATTEMPTS):
            try:
                io.stat(key)
            except rados.ObjectNotFound:
                return False
            version = io.get_last_version()

            def build(op: Any, version: int = version) -> None:
                op.assert_version(version)
                op.set_xattr(PUT_XATTR, b"")

            if cls._operate(io, key, build):
                return True
        return False  # it kept changing: call it missing, the caller puts it again

    @staticmethod
    def _exists(io: Any, key: str) -> bool:
        try:
            io.stat(key)
        except rados.ObjectNotFound:
            return False
        return True

    @staticmethod
    def _read(io: Any, key: str) -> bytes:
        """A whole object; raises rados.ObjectNotFound. librados reads need a length (and
        refuse 0), hence the stat."""
        size, _ = io.stat(key)
        return io.read(key, length=size) if size else b""

    def _put_blocks(self, blocks: Sequence[Buffer]) -> list[Put]:
        io = self._io()
        puts = []
        for block in blocks:
            name = block_hash(block)
            written = False
            if name != EMPTY_HASH:
                key, data = BLOCK_PREFIX + name, canonical(block)
                if not self._touch_block(io, key, data):
                    io.write_full(key, data)
                    written = True
            puts.append((name, written))
        return puts

    async def put_blocks(self, blocks: Sequence[Buffer]) -> list[str]:
        return [name for name, _ in await asyncio.to_thread(self._put_blocks, blocks)]

    async def put_block(self, block: Buffer) -> Put:
        (put,) = await asyncio.to_thread(self._put_blocks, [block])
        return put

    def _get_blocks(self, keys: list[str | None]) -> list[bytes]:
        io = self._io()
        found, absent = [], []
        for key in keys:
            if key is None:
                found.append(b"")
                continue
            try:
                found.append(self._read(io, key))
            except rados.ObjectNotFound:
                absent.append(key.removeprefix(BLOCK_PREFIX))
        if absent:
            raise BlockMissing(absent)
        return found

    async def get_blocks(self, hashes: Sequence[str]) -> list[bytes]:
        keys = [None if h == EMPTY_HASH else _block_object(h) for h in hashes]
        return await asyncio.to_thread(self._get_blocks, keys)

    def _missing(self, names: list[str], touch: bool) -> list[str]:
        if not touch:
            io = self._io()
            return [name for name in names if not self._exists(io, BLOCK_PREFIX + name)]
        with self._private_io() as io:
            return [name for name in names if not self._touch_versioned(io, BLOCK_PREFIX + name)]

    async def missing(self, hashes: Sequence[str], touch: bool = False) -> list[str]:
        unique = [h for h in dict.fromkeys(hashes) if h != EMPTY_HASH]
        for name in unique:
            _block_object(name)
        return await asyncio.to_thread(self._missing, unique, touch)

    def _delete(self, keys: list[str]) -> None:
        io = self._io()
        for key in keys:
            with contextlib.suppress(rados.ObjectNotFound):
                io.remove_object(key)

    async def delete_blocks(self, hashes: Sequence[str]) -> None:
        keys = [_block_object(h) for h in hashes if h != EMPTY_HASH]
        await asyncio.to_thread(self._delete, keys)

    def _names(self, prefix: str) -> list[str]:
        io = self._io()
        return sorted(
            obj.key.removeprefix(prefix) for obj in io.list_objects() if obj.key.startswith(prefix)
        )

    async def block_names(self) -> list[str]:
        return await asyncio.to_thread(self._names, BLOCK_PREFIX)

    def _put_map(self, key: str, raw: bytes) -> None:
        self._io().write_full(key, raw)

    async def put_map(self, name: str, hashes: Sequence[str]) -> None:
        if not all(is_hash(h) for h in hashes):
            raise ValueError("a map holds hex SHA-256 block hashes")
        await asyncio.to_thread(self._put_map, _map_object(name), encode_map(hashes))

    def _get_map(self, key: str) -> list[str]:
        io = self._io()  # a missing pool is a configuration error, not a missing map
        try:
            return decode_map(self._read(io, key))
        except rados.ObjectNotFound:
            raise BlockMissing([f"map {key.removeprefix(MAP_PREFIX)}"]) from None

    async def get_map(self, name: str) -> list[str]:
        return await asyncio.to_thread(self._get_map, _map_object(name))

    async def delete_map(self, name: str) -> None:
        await asyncio.to_thread(self._delete, [_map_object(name)])

    async def map_names(self) -> list[str]:
        return await asyncio.to_thread(self._names, MAP_PREFIX)

    def _collect(self, keys: list[tuple[str, str]], before: float, dry_run: bool) -> list[str]:
        collected = []
        with self._private_io() as io:
            for name, key in keys:
                try:
                    _, mtime = io.stat(key)
                except rados.ObjectNotFound:
                    continue
                version = io.get_last_version()
                # stat gives whole local seconds; count the object as put at the end of its
                # second, so rounding never makes it look older than it is
                if calendar.timegm(mtime) - mtime.tm_gmtoff + 1 > before:
                    continue

                def build(op: Any, version: int = version) -> None:
                    op.assert_version(version)
                    op.remove()

                if dry_run or self._operate(io, key, build):
                    collected.append(name)
        return collected

    async def collect(
        self, kind: Kind, names: Sequence[str], before: dt.datetime, dry_run: bool = False
    ) -> list[str]:
        where = _block_object if kind == "block" else _map_object
        keys = [(name, where(name)) for name in names if name != EMPTY_HASH]
        return await asyncio.to_thread(self._collect, keys, before.timestamp(), dry_run)

    # -- extents ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def _extent_io(self, owner: str) -> Iterator[Any]:
        """An I/O context in ``owner``'s extent namespace (a namespace is per context,
        so each call has its own)."""
        with self._private_io() as io:
            io.set_namespace(EXTENT_NAMESPACE + check_extent_owner(owner))
            yield io

    def _write_extents(self, writes: Sequence[ExtentWrite]) -> None:
        for write in writes:
            owner, index = split_extent(write.name)
            with self._extent_io(owner) as io:
                op = io.create_write_op()
                try:
                    if write.fresh:
                        op.truncate(0)
                    for offset, data in write.runs:
                        if offset < 0 or offset + memoryview(data).nbytes > BLOCK_SIZE:
                            raise ValueError(f"a run past the end of extent {write.name}")
                        op.write(bytes(data), offset)
                    io.operate_write_op(op, index)
                finally:
                    io.release_write_op(op)

    async def write_extents(self, writes: Sequence[ExtentWrite], durable: bool = True) -> None:
        # A write RADOS acknowledges is committed: durable either way.
        await asyncio.to_thread(self._write_extents, writes)

    async def sync_extents(self, names: Sequence[str]) -> None:
        return None  # every acknowledged write is durable already

    def _read_extents(self, names: Sequence[str]) -> list[bytes]:
        found, absent = [], []
        for name in names:
            owner, index = split_extent(name)
            with self._extent_io(owner) as io:
                try:
                    found.append(self._read(io, index))
                except rados.ObjectNotFound:
                    absent.append(name)
        if absent:
            raise BlockMissing(absent)
        return found

    async def read_extent(self, name: str) -> bytes:
        (data,) = await asyncio.to_thread(self._read_extents, [name])
        return data

    def _seal(self, names: Sequence[str]) -> list[str]:
        return [name for name, _ in self._put_blocks(self._read_extents(names))]

    async def seal_extents(self, names: Sequence[str], move: bool = False) -> list[str]:
        # RADOS has no way to give one object's data to another: always a copy.
        return await asyncio.to_thread(self._seal, names)

    def _delete_extents(self, names: Sequence[str]) -> None:
        for name in names:
            owner, index = split_extent(name)
            with self._extent_io(owner) as io, contextlib.suppress(rados.ObjectNotFound):
                io.remove_object(index)

    async def delete_extents(self, names: Sequence[str]) -> None:
        await asyncio.to_thread(self._delete_extents, names)

    def _extent_names(self, owner: str) -> list[str]:
        with self._extent_io(owner) as io:
            return sorted(f"{owner}.{obj.key}" for obj in io.list_objects())

    async def extent_names(self, owner: str) -> list[str]:
        return await asyncio.to_thread(self._extent_names, owner)

    def _close(self) -> None:
        with self._lock:
            if self._ioctx is not None:
                self._ioctx.close()
            if self._cluster is not None:
                self._cluster.shutdown()
            self._ioctx = self._cluster = None

    async def close(self) -> None:
        await asyncio.to_thread(self._close)
