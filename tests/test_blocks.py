"""The block model against the spec's test vectors (Synnefo's Pithos, bit-exact)."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nefos.blocks import (
    BLOCK_SIZE,
    EMPTY_HASH,
    block_hash,
    canonical,
    check_hashmap,
    hashmap,
    merkle,
)

VECTORS = [
    (b"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    (b"hello", "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"),
    (
        b"a" * BLOCK_SIZE + b"b",
        "565546ad93383e225e7cf808fb4d527a54dec54826a5c34a24c1f19a03c62583",
    ),
    (
        b"a" * (2 * BLOCK_SIZE) + b"b",
        "72aa258124828dc76f6b8b9e8da850c7eaf424dcbcd82c7850090b447775f266",
    ),
]


@pytest.mark.parametrize(("data", "expected"), VECTORS, ids=["empty", "hello", "2blk", "3blk"])
def test_spec_vectors(data: bytes, expected: str):
    assert merkle(hashmap(data)) == expected


def test_trailing_zeros_do_not_change_a_block_name():
    assert block_hash(b"abc") == block_hash(b"abc\0\0\0")
    assert block_hash(bytes(BLOCK_SIZE)) == EMPTY_HASH
    assert canonical(b"abc\0\0") == b"abc"
    assert block_hash(b"\0abc") != block_hash(b"abc")


def test_hashmap_shapes():
    assert hashmap(b"") == [EMPTY_HASH]
    assert len(hashmap(b"x" * BLOCK_SIZE)) == 1
    assert len(hashmap(b"x" * (BLOCK_SIZE + 1))) == 2
    assert hashmap(b"xy", block_size=1) == [
        hashlib.sha256(b"x").hexdigest(),
        hashlib.sha256(b"y").hexdigest(),
    ]


def test_merkle_pads_to_a_power_of_two():
    h = [hashlib.sha256(bytes([i])).digest() for i in range(3)]
    zero = bytes(32)
    left = hashlib.sha256(h[0] + h[1]).digest()
    right = hashlib.sha256(h[2] + zero).digest()
    assert merkle([x.hex() for x in h]) == hashlib.sha256(left + right).hexdigest()
    assert merkle([h[0].hex()]) == h[0].hex()
    assert merkle([]) == EMPTY_HASH


@given(st.binary(max_size=64), st.integers(min_value=1, max_value=16))
def test_hashmap_round_trips_through_its_blocks(data: bytes, block_size: int):
    """Blocks stored canonically and zero-padded on read give back the data."""
    hashes = hashmap(data, block_size)
    blocks = [canonical(data[i : i + block_size]) for i in range(0, len(data), block_size)]
    rebuilt = b"".join(b.ljust(block_size, b"\0") for b in blocks)[: len(data)]
    assert rebuilt == data
    assert [block_hash(b) for b in blocks] == (hashes if data else [])


@pytest.mark.parametrize(
    ("size", "hashes"),
    [
        (-1, []),
        (1, []),
        (BLOCK_SIZE + 1, [EMPTY_HASH]),
        (1, ["ABC"]),
        (1, [EMPTY_HASH.upper()]),
        (0, [EMPTY_HASH, EMPTY_HASH]),
    ],
)
def test_bad_hashmaps(size: int, hashes: list[str]):
    with pytest.raises(ValueError):
        check_hashmap(size, hashes)


def test_good_hashmaps():
    assert check_hashmap(0, []) == [EMPTY_HASH]
    assert check_hashmap(0, [EMPTY_HASH]) == [EMPTY_HASH]
    assert check_hashmap(5, [EMPTY_HASH]) == [EMPTY_HASH]
