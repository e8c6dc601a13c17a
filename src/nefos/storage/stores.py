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
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Literal, Protocol

from nefos.blocks import DIGEST_SIZE, Buffer

Kind = Literal["block", "map"]
Put = tuple[str, bool]  # a block's hash, and whether the put wrote it (it was not stored)


class BlockMissing(Exception):
    """Some requested blocks or a map are not in the store (a corrupt or partial map)."""

    def __init__(self, names: Sequence[str]):
        super().__init__(f"missing from the store: {', '.join(names[:5])}")
        self.names = list(names)


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
