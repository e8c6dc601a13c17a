"""A volume's map as arithmetic: which blocks a byte range touches, and the Pithos
hashmap a map becomes. Pure, so the service's transactions stay short.

A map is ``{position: hash}`` for the blocks that are not all zeros; a position the map
lacks reads as zeros (``H(b"")``, the block no store keeps). Bytes past a volume's size
inside its last block are zeros too: nothing writes past the end, and every source a
volume starts from (an image, a file, another volume) is no larger than it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from nefos.blocks import BLOCK_SIZE, EMPTY_HASH, block_count
from nefos.core import errors


@dataclass(frozen=True)
class Piece:
    """The part of one block a byte range covers: bytes ``[start, end)`` of block
    ``position``, which holds ``length`` bytes of the volume (short only at its end)."""

    position: int
    start: int
    end: int
    length: int

    @property
    def whole(self) -> bool:
        """The range covers every byte of the block the volume has: a write of it needs
        no read of the old block."""
        return self.start == 0 and self.end == self.length


def check_range(offset: int, length: int, size: int, verb: str) -> None:
    """A read or write must lie inside the volume: a block device has no bytes past its
    end, and a write there is refused rather than growing it (extend does that)."""
    for value, what in ((offset, "offset"), (length, "length")):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise errors.InvalidInput(f"The {what} is a whole number of bytes, at least 0")
    if offset + length > size:
        raise errors.InvalidInput(
            f"Cannot {verb} bytes {offset}-{offset + length} of a volume of {size} bytes"
        )


def pieces(offset: int, length: int, size: int, block_size: int = BLOCK_SIZE) -> list[Piece]:
    """The blocks ``[offset, offset + length)`` touches, in order."""
    found = []
    position = offset // block_size
    end = offset + length
    while position * block_size < end:
        base = position * block_size
        found.append(
            Piece(
                position,
                max(offset, base) - base,
                min(end, base + block_size) - base,
                min(block_size, size - base),
            )
        )
        position += 1
    return found


def entries_of(hashes: list[str]) -> dict[int, str]:
    """A Pithos hashmap as a map: its non-zero blocks by position."""
    return {position: h for position, h in enumerate(hashes) if h != EMPTY_HASH}


def hashmap_of(entries: Mapping[int, str], size: int, block_size: int = BLOCK_SIZE) -> list[str]:
    """A map as the hashmap of a Pithos file of ``size`` bytes: a block's hash is that
    of its bytes without trailing zeros, so a last block cut at ``size`` has the same
    name as the whole zero-padded block the volume holds."""
    count = block_count(size, block_size)
    if any(position >= count for position in entries):
        raise ValueError("a map entry lies past the volume's size")
    return [entries.get(position, EMPTY_HASH) for position in range(count)] or [EMPTY_HASH]
