"""The block model, bit-exact with Synnefo's Pithos.

A file is cut into blocks of ``block_size`` (4 MiB) bytes, the last one short. A block
is named by the SHA-256 of its bytes *after trailing zero bytes are stripped*, so an
all-zero block is named ``H(b"")`` and never needs storing, and a block reads back
zero-padded. The object's hash is the Merkle root of its block hashes: no hashes give
``H(b"")``, one gives itself, more are padded with all-zero digests to a power of two
and hashed pairwise (``H(left || right)``) up to one root. Hashes travel as lowercase hex.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence

BLOCK_SIZE = 4 * 1024 * 1024
HASH_ALGORITHM = "sha256"
DIGEST_SIZE = 32
ZERO_DIGEST = bytes(DIGEST_SIZE)
EMPTY_HASH = hashlib.sha256(b"").hexdigest()


Buffer = bytes | bytearray | memoryview
SCAN = 64 * 1024  # the window trailing zeros are looked for in, from the end


def content_length(block: Buffer) -> int:
    """The length of ``block`` without its trailing zero bytes, found without copying
    the whole block (uploads hand over 4 MiB buffers): zeros are scanned from the end a
    window at a time."""
    view = memoryview(block).cast("B")
    end = len(view)
    while end:
        start = max(end - SCAN, 0)
        kept = len(bytes(view[start:end]).rstrip(b"\0"))
        if kept:
            return start + kept
        end = start
    return 0


def stripped(block: Buffer) -> memoryview:
    """A block's canonical bytes as a view into it (no copy), for hashing and writing.
    Most blocks end in a non-zero byte, which one look at the last byte settles."""
    view = memoryview(block).cast("B")
    if view and view[-1]:
        return view
    return view[: content_length(view)]


def block_hash(block: Buffer) -> str:
    """The name of a block: SHA-256 of the block without its trailing zero bytes.
    hashlib releases the GIL on large buffers, so worker threads hash in parallel."""
    return hashlib.sha256(stripped(block)).hexdigest()


def canonical(block: Buffer) -> bytes:
    """What is stored for a block: its bytes without trailing zeros."""
    return bytes(stripped(block))


def split(data: Buffer, block_size: int = BLOCK_SIZE) -> Iterator[memoryview]:
    view = memoryview(data)
    for start in range(0, len(view), block_size):
        yield view[start : start + block_size]


def block_count(size: int, block_size: int = BLOCK_SIZE) -> int:
    return -(-size // block_size)


def hashmap(data: Buffer, block_size: int = BLOCK_SIZE) -> list[str]:
    """The block hashes of ``data``; an empty object's hashmap is ``[H(b"")]``."""
    hashes = [block_hash(block) for block in split(data, block_size)]
    return hashes or [EMPTY_HASH]


def merkle(hashes: Sequence[str]) -> str:
    """The object hash of a hashmap (hex in, hex out)."""
    if not hashes:
        return EMPTY_HASH
    if len(hashes) == 1:
        return hashes[0]
    level = [bytes.fromhex(h) for h in hashes]
    width = 2
    while width < len(level):
        width *= 2
    level += [ZERO_DIGEST] * (width - len(level))
    while len(level) > 1:
        level = [hashlib.sha256(level[i] + level[i + 1]).digest() for i in range(0, len(level), 2)]
    return level[0].hex()


def is_hash(value: str) -> bool:
    return len(value) == 2 * DIGEST_SIZE and all(c in "0123456789abcdef" for c in value)


def check_hashmap(size: int, hashes: Iterable[str], block_size: int = BLOCK_SIZE) -> list[str]:
    """A client's hashmap, validated against the size it claims (Synnefo's 400 cases)."""
    hashes = list(hashes)
    if size < 0:
        raise ValueError("negative size")
    if any(not isinstance(h, str) or not is_hash(h) for h in hashes):
        raise ValueError("hashes must be lowercase hex SHA-256 digests")
    if size == 0:
        if hashes not in ([], [EMPTY_HASH]):
            raise ValueError("an empty object has the hashmap [] or [H('')]")
        return [EMPTY_HASH]
    if len(hashes) != block_count(size, block_size):
        raise ValueError(
            f"{len(hashes)} hashes for {size} bytes; want {block_count(size, block_size)}"
        )
    return hashes
