"""The local half of the block protocol: hashing as the server does, and the plans
that decide which blocks travel."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nefos.blocks import BLOCK_SIZE, EMPTY_HASH, block_hash, hashmap, merkle
from nefos.client.local import (
    block_length,
    hash_blocks,
    hash_file,
    plan_download,
    plan_upload,
)
from nefos.client.transfer import apply_plan

BS = 8  # small blocks keep the cases readable; the rules do not depend on the size


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_hash_file_is_the_servers_hashmap(tmp_path: Path):
    data = os.urandom(5 * BS + 3)
    local = hash_file(write(tmp_path / "f", data), BS)
    assert local.hashes == hashmap(data, BS)
    assert local.size == len(data)
    assert local.object_hash == merkle(hashmap(data, BS))
    assert [local.block_length(i) for i in range(6)] == [BS] * 5 + [3]


def test_hash_file_matches_the_spec_vectors(tmp_path: Path):
    assert hash_file(write(tmp_path / "e", b""), BLOCK_SIZE).hashes == [EMPTY_HASH]
    assert hash_file(write(tmp_path / "e", b""), BLOCK_SIZE).object_hash == EMPTY_HASH
    two = hash_file(write(tmp_path / "a", b"a" * BLOCK_SIZE + b"b"), BLOCK_SIZE)
    assert two.object_hash == "565546ad93383e225e7cf808fb4d527a54dec54826a5c34a24c1f19a03c62583"


def test_hash_file_reports_progress(tmp_path: Path):
    seen: list[int] = []
    hash_file(write(tmp_path / "f", bytes(2 * BS + 1)), BS, seen.append)
    assert seen == [BS, BS, 1]


def test_block_length():
    assert [block_length(i, 2 * BS + 1, BS) for i in range(4)] == [BS, BS, 1, 0]


def test_hash_blocks_of_a_missing_file_keeps_nothing(tmp_path: Path):
    assert hash_blocks(tmp_path / "none", 3 * BS, BS) == [None, None, None]


def test_hash_blocks_reads_where_the_object_has_its_blocks(tmp_path: Path):
    data = b"0123456789abcdefXYZ"  # 2 full blocks and 3 bytes
    path = write(tmp_path / "f", data)
    # The object is one byte longer than the file: the last block is read short.
    assert hash_blocks(path, len(data) + 1, BS) == [
        block_hash(data[:8]),
        block_hash(data[8:16]),
        block_hash(b"XYZ"),
    ]
    # The object is shorter: its last block is cut where the object ends.
    assert hash_blocks(path, 10, BS) == [block_hash(data[:8]), block_hash(data[8:10])]
    assert hash_blocks(path, 4 * BS, BS)[3] is None


def test_plan_download_fetches_only_differing_blocks_once():
    a, b, c = (block_hash(bytes([n]) * BS) for n in (1, 2, 3))
    plan = plan_download([a, b, c, b], [a, None, c, "stale"])
    assert plan.fetch == {b: [1, 3]}
    assert plan.kept == 2
    assert plan.fetch_bytes(4 * BS, BS) == BS


def test_plan_download_writes_zero_blocks_instead_of_fetching_them():
    a = block_hash(b"a" * BS)
    plan = plan_download([a, EMPTY_HASH, EMPTY_HASH], [a, "junk", None])
    assert plan.fetch == {}
    assert plan.zero == [1]  # block 2 lies past the end: extending the file zeroes it
    assert plan.kept == 2


def test_plan_upload_sends_each_missing_hash_once_from_its_first_block(tmp_path: Path):
    data = b"A" * BS + b"B" * BS + b"A" * BS + b"C"
    local = hash_file(write(tmp_path / "f", data), BS)
    a, _, _, c = local.hashes
    assert plan_upload(local, [c, a, a]) == [(c, 3), (a, 0)]
    with pytest.raises(ValueError, match="not in the file"):
        plan_upload(local, [block_hash(b"other")])


def download_locally(tmp_path: Path, remote: bytes, local: bytes | None) -> tuple[bytes, int]:
    """What the download engine does to a local file, with the remote object's bytes
    standing where the network would be."""
    path = tmp_path / "f"
    if local is None:
        path.unlink(missing_ok=True)
    else:
        path.write_bytes(local)
    remote_hashes = hashmap(remote, BS) if remote else []
    plan = plan_download(remote_hashes, hash_blocks(path, len(remote), BS))
    fetched = apply_plan(path, plan, len(remote), BS, lambda s, n: remote[s : s + n], workers=3)
    return path.read_bytes(), fetched


def test_apply_plan_repairs_one_corrupted_block(tmp_path: Path):
    remote = os.urandom(4 * BS + 5)
    local = bytearray(remote)
    local[2 * BS + 1] ^= 0xFF
    result, fetched = download_locally(tmp_path, remote, bytes(local))
    assert result == remote
    assert fetched == BS


def test_apply_plan_resumes_a_partial_file(tmp_path: Path):
    remote = os.urandom(4 * BS + 5)
    result, fetched = download_locally(tmp_path, remote, remote[: 2 * BS + 3])
    assert result == remote
    assert fetched == 2 * BS + 5  # the block the partial file ends in, and the rest


def test_apply_plan_refuses_a_block_that_does_not_match(tmp_path: Path):
    remote = os.urandom(2 * BS)
    path = tmp_path / "f"
    plan = plan_download(hashmap(remote, BS), hash_blocks(path, len(remote), BS))
    with pytest.raises(Exception, match="does not match its hash"):
        apply_plan(path, plan, len(remote), BS, lambda s, n: bytes(n))


edits = st.lists(st.tuples(st.integers(0, 80), st.binary(min_size=1, max_size=3)), max_size=4)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    remote=st.binary(max_size=80).map(lambda b: b.replace(b"\1", b"\0")),  # zeros are common
    base=st.sampled_from(["none", "same", "edited", "other"]),
    cut=st.integers(0, 90),
    changes=edits,
)
def test_apply_plan_always_yields_the_object(tmp_path, remote, base, cut, changes):
    if base == "none":
        local = None
    else:
        start = bytearray(remote if base != "other" else bytes(len(remote) + 7))
        if base == "edited":
            for offset, patch in changes:
                start[offset : offset + len(patch)] = patch
        local = bytes(start[:cut])
    result, fetched = download_locally(tmp_path, remote, local)
    assert result == remote
    assert fetched <= len(remote)
