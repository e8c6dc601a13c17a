"""Where blocks and maps live: one small interface (``BlockStore``), two engines.

* ``file`` (default): local files under the data directory (``nefos.storage.filestore``).
* ``rados``: a Ceph RADOS pool through librados (``nefos.storage.rados``).

The composition root picks one from the configuration (``nefos.server.engines.open_store``);
the callers see only this interface, and this module imports neither engine.

Blocks are stored canonically (without trailing zeros, see ``nefos.blocks``)
under their hex hash; the all-zero block is never stored and always present. A map is
a named list of block hashes (an object version's hashmap), stored as raw digests.
Putting a block that is already there writes no data, which is what makes deduplication
free; it only refreshes the block's put time.

Put times are what keeps garbage collection (``nefos.storage.maintenance``) from racing
writers: a writer about to reference a stored block puts it (or asks ``missing`` with
``touch``), which marks it as put now, and ``collect`` deletes only what was last put
before a cutoff, deciding and deleting atomically per object. So a block a writer has
just relied on is either kept, or was deleted before the writer looked and so gets
written again.

**Extents** are the other kind of object: the blocks a volume owns, changed in place
(``nefos.volume.devices``). An extent is named by its owner (a volume's id in hex) and
its index, holds up to one block of bytes (reads past its end are zeros), and is
written at any offset without reading or hashing the rest, which is what lets a disk's
writes cost what the bytes cost. It is never shared: what another map needs from it is
sealed first (``seal_extents``), a content-addressed copy. Nothing here collects
extents; their owner deletes them (the volume, when it drops or seals one).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from nefos.blocks import DIGEST_SIZE, Buffer

Kind = Literal["block", "map"]
Put = tuple[str, bool]  # a block's hash, and whether the put wrote it (it was not stored)


class BlockMissing(Exception):
    """Some requested blocks or a map are not in the store (a corrupt or partial map)."""

    def __init__(self, names: Sequence[str]):
        super().__init__(f"missing from the store: {', '.join(names[:5])}")
        self.names = list(names)


@dataclass(frozen=True)
class ExtentWrite:
    """Bytes for one extent: each run is (offset, bytes) inside the block. ``fresh``: the
    extent starts empty, whatever an earlier one of that name held (its owner never
    committed a reference to that one)."""

    name: str
    runs: Sequence[tuple[int, Buffer]]
    fresh: bool = False


class BlockStore(Protocol):
    async def put_blocks(self, blocks: Sequence[Buffer]) -> list[str]:
        """Store blocks; return their hashes. Idempotent; durable when it returns. A
        block already stored is not written again, only marked as put now. The buffers
        are read in place (no copy) and not kept: the caller reuses them after."""

    async def put_block(self, block: Buffer) -> Put:
        """``put_blocks`` of one block, saying too whether this put wrote it (False: it
        was stored already, or is the zero block). An upload learns from it that its
        body repeats stored data (``nefos.storage.upload``)."""

    async def get_blocks(self, hashes: Sequence[str]) -> list[bytes]:
        """The canonical bytes of each block (pad to the block size to read); raises
        BlockMissing."""

    async def missing(self, hashes: Sequence[str], touch: bool = False) -> list[str]:
        """Those of ``hashes`` the store lacks, in order, without repeats. ``touch``: the
        caller is about to reference the others (a hashmap PUT), so mark them as put now
        and ``collect`` leaves them alone for its grace period."""

    async def delete_blocks(self, hashes: Sequence[str]) -> None:
        """Remove blocks now, whatever their put time (gc uses ``collect``); absent ones
        are ignored."""

    async def block_names(self) -> list[str]:
        """Every stored block's hash (for fsck and gc)."""

    async def put_map(self, name: str, hashes: Sequence[str]) -> None:
        """Store a map under ``name``, replacing any earlier one; durable on return."""

    async def get_map(self, name: str) -> list[str]:
        """A stored map; raises BlockMissing."""

    async def delete_map(self, name: str) -> None: ...

    async def map_names(self) -> list[str]: ...

    async def collect(
        self, kind: Kind, names: Sequence[str], before: dt.datetime, dry_run: bool = False
    ) -> list[str]:
        """Delete those of ``names`` last put before ``before``; return them (a dry run
        deletes nothing). Checking the put time and deleting is atomic per object against
        a concurrent put or touch of it, so gc never removes what a writer just relied on.
        Absent names are skipped."""

    async def write_extents(self, writes: Sequence[ExtentWrite], durable: bool = True) -> None:
        """Write runs into extents in place, making each extent that did not exist;
        durable when it returns (all of them), unless not ``durable``: then only once
        ``sync_extents`` has returned for them. The buffers are not kept."""

    async def sync_extents(self, names: Sequence[str]) -> None:
        """Make what was written into these extents durable, with their names."""

    async def read_extent(self, name: str) -> bytes:
        """An extent's bytes, which may end before the block does (the rest is zeros);
        raises BlockMissing."""

    async def seal_extents(self, names: Sequence[str], move: bool = False) -> list[str]:
        """Store each extent's bytes as a content-addressed block (durable on return, as
        ``put_blocks``) and return its hash; the extents stay. ``move``: the caller
        writes none of these extents until it has removed them (it points its map at
        the blocks instead), so the store may give a block the extent's own storage
        rather than a copy. Raises BlockMissing."""

    async def delete_extents(self, names: Sequence[str]) -> None:
        """Remove extents; absent ones are ignored."""

    async def extent_names(self, owner: str) -> list[str]:
        """The extents ``owner`` has in the store."""

    async def close(self) -> None: ...


def extent_name(owner: str, index: int) -> str:
    """The extent ``index`` of ``owner`` (hex, as a volume id's ``.hex``)."""
    return f"{check_extent_owner(owner)}.{index:x}"


def split_extent(name: str) -> tuple[str, str]:
    """An extent name's owner and hex index; ValueError for anything else."""
    owner, dot, index = name.partition(".")
    if not dot or not index or len(index) > 16 or not _is_hex(index):
        raise ValueError(f"bad extent name {name!r}")
    return check_extent_owner(owner), index


def is_extent(name: str) -> bool:
    """Whether a map entry names an extent (a block's hash has no dot)."""
    return "." in name


def check_extent_owner(owner: str) -> str:
    if len(owner) != 32 or not _is_hex(owner):
        raise ValueError(f"bad extent owner {owner!r}")
    return owner


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdef" for c in text)


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
