"""Where blocks and maps live: one small interface, two engines.

* ``file`` (default): local files under the data directory, fanned out by the first
  hex digits of the name; each write goes to a temporary name, is fsynced, renamed into
  place and its directory fsynced, so an acknowledged block or map survives a crash
  whole, and a crash mid-write leaves only a temporary file behind.
* ``rados``: a Ceph RADOS pool through librados (``nefos.storage.rados``).

Blocks are stored canonically (without trailing zeros, see ``nefos.storage.blocks``)
under their hex hash; the all-zero block is never stored and always present. A map is
a named list of block hashes (an object version's hashmap), stored as raw digests.
Putting what is already there is a no-op, which is what makes deduplication free.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from nefos.core.config import Settings
from nefos.storage.blocks import DIGEST_SIZE, EMPTY_HASH, block_hash, canonical, is_hash


class BlockMissing(Exception):
    """Some requested blocks or a map are not in the store (a corrupt or partial map)."""

    def __init__(self, names: Sequence[str]):
        super().__init__(f"missing from the store: {', '.join(names[:5])}")
        self.names = list(names)


class BlockStore(Protocol):
    async def put_blocks(self, blocks: Sequence[bytes]) -> list[str]:
        """Store blocks; return their hashes. Idempotent; durable when it returns."""

    async def get_blocks(self, hashes: Sequence[str]) -> list[bytes]:
        """The canonical bytes of each block (pad to the block size to read); raises
        BlockMissing."""

    async def missing(self, hashes: Sequence[str]) -> list[str]:
        """Those of ``hashes`` the store lacks, in order, without repeats."""

    async def delete_blocks(self, hashes: Sequence[str]) -> None:
        """Remove blocks (garbage collection); absent ones are ignored."""

    async def block_names(self) -> list[str]:
        """Every stored block's hash (for fsck and gc)."""

    async def put_map(self, name: str, hashes: Sequence[str]) -> None:
        """Store a map under ``name``, replacing any earlier one; durable on return."""

    async def get_map(self, name: str) -> list[str]:
        """A stored map; raises BlockMissing."""

    async def delete_map(self, name: str) -> None: ...

    async def map_names(self) -> list[str]: ...

    async def close(self) -> None: ...


def check_map_name(name: str) -> str:
    if not name or len(name) > 200 or not all(c.isalnum() or c in "-_." for c in name):
        raise ValueError(f"bad map name {name!r}")
    if name in (".", ".."):
        raise ValueError(f"bad map name {name!r}")
    return name


def encode_map(hashes: Sequence[str]) -> bytes:
    return b"".join(bytes.fromhex(h) for h in hashes)


def decode_map(raw: bytes) -> list[str]:
    if len(raw) % DIGEST_SIZE:
        raise ValueError("a map's length is not a multiple of the digest size")
    return [raw[i : i + DIGEST_SIZE].hex() for i in range(0, len(raw), DIGEST_SIZE)]


class FileStore:
    def __init__(self, root: Path):
        self.root = root
        self.blocks = root / "blocks"
        self.maps = root / "maps"
        self.blocks.mkdir(parents=True, exist_ok=True)
        self.maps.mkdir(parents=True, exist_ok=True)

    def _block_path(self, name: str) -> Path:
        if not is_hash(name):
            raise ValueError(f"bad block hash {name!r}")
        return self.blocks / name[:2] / name[2:4] / name

    def _map_path(self, name: str) -> Path:
        check_map_name(name)
        return self.maps / name[:2] / name

    @staticmethod
    def _write(path: Path, data: bytes, replace: bool) -> None:
        """Durable write: temporary file, fsync, rename, fsync of the directory."""
        if not replace and path.exists():
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    def _put_blocks(self, blocks: Sequence[bytes]) -> list[str]:
        names = []
        for block in blocks:
            name = block_hash(block)
            names.append(name)
            if name != EMPTY_HASH:
                self._write(self._block_path(name), canonical(block), replace=False)
        return names

    async def put_blocks(self, blocks: Sequence[bytes]) -> list[str]:
        return await asyncio.to_thread(self._put_blocks, blocks)

    def _get_blocks(self, hashes: Sequence[str]) -> list[bytes]:
        found, absent = [], []
        for name in hashes:
            if name == EMPTY_HASH:
                found.append(b"")
                continue
            try:
                found.append(self._block_path(name).read_bytes())
            except FileNotFoundError:
                absent.append(name)
        if absent:
            raise BlockMissing(absent)
        return found

    async def get_blocks(self, hashes: Sequence[str]) -> list[bytes]:
        return await asyncio.to_thread(self._get_blocks, hashes)

    def _missing(self, hashes: Sequence[str]) -> list[str]:
        seen: set[str] = set()
        absent = []
        for name in hashes:
            if name in seen or name == EMPTY_HASH:
                continue
            seen.add(name)
            if not self._block_path(name).exists():
                absent.append(name)
        return absent

    async def missing(self, hashes: Sequence[str]) -> list[str]:
        return await asyncio.to_thread(self._missing, hashes)

    def _delete(self, paths: list[Path]) -> None:
        for path in paths:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    async def delete_blocks(self, hashes: Sequence[str]) -> None:
        paths = [self._block_path(h) for h in hashes if h != EMPTY_HASH]
        await asyncio.to_thread(self._delete, paths)

    @staticmethod
    def _names(root: Path, depth: int) -> list[str]:
        pattern = "/".join(["*"] * (depth + 1))
        return sorted(p.name for p in root.glob(pattern) if not p.name.startswith("."))

    async def block_names(self) -> list[str]:
        return await asyncio.to_thread(self._names, self.blocks, 2)

    async def put_map(self, name: str, hashes: Sequence[str]) -> None:
        if not all(is_hash(h) for h in hashes):
            raise ValueError("a map holds hex SHA-256 block hashes")
        await asyncio.to_thread(self._write, self._map_path(name), encode_map(hashes), True)

    def _get_map(self, name: str) -> list[str]:
        try:
            return decode_map(self._map_path(name).read_bytes())
        except FileNotFoundError:
            raise BlockMissing([f"map {name}"]) from None

    async def get_map(self, name: str) -> list[str]:
        return await asyncio.to_thread(self._get_map, name)

    async def delete_map(self, name: str) -> None:
        await asyncio.to_thread(self._delete, [self._map_path(name)])

    async def map_names(self) -> list[str]:
        return await asyncio.to_thread(self._names, self.maps, 1)

    async def close(self) -> None:
        return None


def open_store(settings: Settings) -> BlockStore:
    """The block store the configuration names (``[storage] backend``)."""
    conf = settings.storage
    if conf.backend == "file":
        return FileStore(conf.path or settings.data_dir / "storage")
    from nefos.storage.rados import RadosStore  # librados comes from the system

    return RadosStore(conf.rados_conffile, conf.rados_pool, conf.rados_user)
