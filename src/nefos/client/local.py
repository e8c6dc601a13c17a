"""The local half of the block protocol: hash files the way the server does, and plan
which blocks must travel.

Everything here is pure or reads local files only, so the rules that decide what is
sent and fetched are tested without a server. The block model itself (trailing-zero
stripping, Merkle root) is :mod:`nefos.blocks`, shared with the server so the two
cannot disagree.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from nefos.blocks import EMPTY_HASH, block_count, block_hash, merkle

Advance = Callable[[int], None]


@dataclass(frozen=True)
class LocalMap:
    """A local file cut into the server's blocks."""

    path: Path
    size: int
    block_size: int
    hashes: list[str]  # [H("")] for an empty file, as the server keeps it

    @property
    def object_hash(self) -> str:
        return merkle(self.hashes)

    def block_length(self, index: int) -> int:
        return block_length(index, self.size, self.block_size)


def block_length(index: int, size: int, block_size: int) -> int:
    """The length of block ``index`` of a ``size``-byte object: the last one is short."""
    return max(0, min(block_size, size - index * block_size))


def hash_file(path: Path, block_size: int, advance: Advance | None = None) -> LocalMap:
    """Hash a file block by block, reading it once, never whole in memory."""
    hashes = []
    size = 0
    with open(path, "rb") as source:
        while block := source.read(block_size):
            hashes.append(block_hash(block))
            size += len(block)
            if advance:
                advance(len(block))
    return LocalMap(Path(path), size, block_size, hashes or [EMPTY_HASH])


def hash_blocks(
    path: Path, size: int, block_size: int, advance: Advance | None = None
) -> list[str | None]:
    """The hashes of a local file's blocks where a ``size``-byte object has its blocks.

    A block the file ends inside is hashed as far as it goes: because hashes ignore
    trailing zeros, a short block still matches when the rest of it is zeros, which the
    file gets when it is extended to ``size``. Past the end of the file the answer is
    ``None`` (nothing to keep), except for blocks that are all zeros remotely.
    """
    count = block_count(size, block_size)
    hashes: list[str | None] = []
    if not Path(path).exists():
        return [None] * count
    with open(path, "rb") as source:
        local_size = os.fstat(source.fileno()).st_size
        for index in range(count):
            if index * block_size >= local_size:
                hashes += [None] * (count - index)
                break
            data = source.read(block_length(index, size, block_size))
            hashes.append(block_hash(data))
            if advance:
                advance(len(data))
    return hashes


@dataclass(frozen=True)
class DownloadPlan:
    """What it takes to turn a local file into the remote object."""

    fetch: dict[str, list[int]]  # block hash -> the block indexes that hold it
    zero: list[int] = field(default_factory=list)  # all-zero blocks: written, not fetched
    kept: int = 0  # blocks the local file already has

    def fetch_bytes(self, size: int, block_size: int) -> int:
        """Bytes to download: each distinct block once."""
        return sum(block_length(i[0], size, block_size) for i in self.fetch.values())


def plan_download(remote: Sequence[str], local: Sequence[str | None]) -> DownloadPlan:
    """Fetch each block the local file lacks, once even if the object repeats it; write
    all-zero blocks locally instead of fetching them; keep the rest.

    The plan assumes the file is cut or extended to the object's size at the end, which
    is what turns a kept short last block, or a missing all-zero tail, into the object.
    """
    fetch: dict[str, list[int]] = {}
    zero = []
    kept = 0
    for index, wanted in enumerate(remote):
        have = local[index] if index < len(local) else None
        if have == wanted or (have is None and wanted == EMPTY_HASH):
            kept += 1  # past the end, zeros come from extending the file to its size
        elif wanted == EMPTY_HASH:
            zero.append(index)
        else:
            fetch.setdefault(wanted, []).append(index)
    return DownloadPlan(fetch, zero, kept)


def plan_upload(local: LocalMap, missing: Sequence[str]) -> list[tuple[str, int]]:
    """The (hash, block index) pairs to send for the hashes the server lacks, each once.

    The server can only ask for hashes we sent; anything else means the hashmap it saw
    is not ours, so we stop rather than send the wrong data.
    """
    first: dict[str, int] = {}
    for index, digest in enumerate(local.hashes):
        first.setdefault(digest, index)
    plan = []
    for digest in dict.fromkeys(missing):
        if digest not in first:
            raise ValueError(f"the server asks for block {digest}, which is not in the file")
        plan.append((digest, first[digest]))
    return plan
