"""Moving file data with the block protocol: only what the other side lacks travels.

* **Upload** (kamaki's protocol, spec §1.2): hash the file in the container's blocks,
  ``PUT ?hashmap``; the server answers 201, or 409 with the hashes it lacks; those
  blocks go up in parallel (``POST <container>?update``, one block per request, each
  answer checked against our hash), then the hashmap is PUT again.
* **Download**: ``GET ?hashmap``, hash the local file where the object has its blocks,
  fetch only the blocks that differ (parallel ``Range`` GETs pinned to the version the
  hashmap came from), write them in place, cut the file to size, check the whole file's
  Merkle root against ``X-Object-Hash``. The work happens under ``<dest>.nfpart`` and is
  renamed to ``<dest>`` only once it checks out, so an interrupted download never looks
  finished; running it again resumes, because the blocks already there match.
* **Sync**: a directory tree up to a container prefix, uploading files whose hash the
  server does not already have under that name, optionally deleting the rest.
"""

from __future__ import annotations

import mimetypes
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Protocol

from nefos.blocks import HASH_ALGORITHM, block_count, block_hash
from nefos.client.errors import ClientError, TransferError
from nefos.client.files import DIRECTORY_TYPES, OCTET_STREAM, Files
from nefos.client.local import (
    DownloadPlan,
    LocalMap,
    block_length,
    hash_blocks,
    hash_file,
    plan_download,
    plan_upload,
)

DEFAULT_WORKERS = 6
PARTIAL_SUFFIX = ".nfpart"


class Reporter(Protocol):
    """Progress, as a transfer goes through its phases (hashing, uploading, ...).

    ``advance`` is called from worker threads; rich's progress bars are thread-safe.
    """

    def phase(self, description: str, total: int) -> None: ...

    def advance(self, amount: int) -> None: ...


class Silent:
    def phase(self, description: str, total: int) -> None:
        pass

    def advance(self, amount: int) -> None:
        pass


@dataclass(frozen=True)
class UploadResult:
    container: str
    name: str
    size: int
    object_hash: str
    blocks: int
    blocks_sent: int
    bytes_sent: int  # block data actually sent, the measure of what the protocol saved
    version: str | None = None


@dataclass(frozen=True)
class DownloadResult:
    container: str
    name: str
    path: str
    size: int
    object_hash: str
    blocks: int
    blocks_fetched: int
    bytes_fetched: int
    blocks_kept: int


@dataclass
class SyncResult:
    uploaded: list[str] = field(default_factory=list)  # names; on a dry run, to upload
    skipped: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    bytes_sent: int = 0


def _check_algorithm(algorithm: str, target: str) -> None:
    if algorithm != HASH_ALGORITHM:
        raise ClientError(0, f"the server hashes blocks with {algorithm}; nf knows sha256", target)


def content_type_of(path: Path) -> str:
    return mimetypes.guess_type(path.name)[0] or OCTET_STREAM


# -- upload -------------------------------------------------------------------------------


def upload(
    files: Files,
    path: Path,
    container: str,
    name: str,
    *,
    content_type: str | None = None,
    headers: Mapping[str, str] | None = None,
    workers: int = DEFAULT_WORKERS,
    reporter: Reporter | None = None,
    local: LocalMap | None = None,
) -> UploadResult:
    """Upload a file, sending only the blocks the server lacks.

    ``local`` is the file's hashes if the caller already has them (sync does), so a
    file is read once to hash it and again only for the blocks that must go.
    """
    reporter = reporter or Silent()
    path = Path(path)
    target = f"{container}/{name}"
    block_size, algorithm = files.block_params(container)
    _check_algorithm(algorithm, container)
    if local is None or local.block_size != block_size:
        reporter.phase(f"hashing {path.name}", path.stat().st_size)
        local = hash_file(path, block_size, reporter.advance)
    content_type = content_type or content_type_of(path)
    blocks_sent = bytes_sent = 0
    for _ in range(3):  # the first PUT, and after each round of sending
        missing, reply = files.put_hashmap(
            container, name, local.size, local.hashes, content_type=content_type, headers=headers
        )
        if not missing:
            break
        try:
            plan = plan_upload(local, missing)
        except ValueError as exc:
            raise TransferError(str(exc), target) from None
        reporter.phase(f"uploading {path.name}", sum(local.block_length(i) for _, i in plan))
        bytes_sent += _send_blocks(files, target, local, plan, workers, reporter)
        blocks_sent += len(plan)
    else:
        raise TransferError("the server still lacks blocks that were sent", target)
    etag = reply.get("ETag", "").strip('"').lower()
    if len(etag) == len(local.object_hash) and etag != local.object_hash:
        raise TransferError(f"the server stored hash {etag}, not {local.object_hash}", target)
    return UploadResult(
        container=container,
        name=name,
        size=local.size,
        object_hash=local.object_hash,
        blocks=len(local.hashes),
        blocks_sent=blocks_sent,
        bytes_sent=bytes_sent,
        version=reply.get("X-Object-Version"),
    )


def _send_blocks(
    files: Files,
    target: str,
    local: LocalMap,
    plan: Sequence[tuple[str, int]],
    workers: int,
    reporter: Reporter,
) -> int:
    container = target.split("/", 1)[0]
    with open(local.path, "rb") as source:
        fd = source.fileno()

        def send(digest: str, index: int) -> int:
            data = os.pread(fd, local.block_length(index), index * local.block_size)
            if block_hash(data) != digest:
                raise TransferError(f"the file changed while uploading (block {index})", target)
            answered = files.put_block(container, data)
            if answered != [digest]:
                raise TransferError(f"the server hashed block {index} as {answered}", target)
            reporter.advance(len(data))
            return len(data)

        return sum(_parallel(workers, [partial(send, d, i) for d, i in plan]))


def _parallel(workers: int, tasks: Sequence[Callable[[], int]]) -> list[int]:
    """Run tasks on a thread pool. The first failure, or an interrupt, cancels what has
    not started (at most ``workers`` blocks finish) and is raised, so a refused block or
    a Ctrl-C stops the transfer at once."""
    if not tasks:
        return []
    pool = ThreadPoolExecutor(max_workers=max(1, min(workers, len(tasks))))
    try:
        futures: list[Future[int]] = [pool.submit(task) for task in tasks]
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        for future in done:
            error = future.exception()
            if error is not None:
                raise error
        return [future.result() for future in futures]
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


# -- download -------------------------------------------------------------------------------


def partial_path(dest: Path) -> Path:
    return dest.with_name(dest.name + PARTIAL_SUFFIX)


def download(
    files: Files,
    container: str,
    name: str,
    dest: Path,
    *,
    version: int | None = None,
    workers: int = DEFAULT_WORKERS,
    reporter: Reporter | None = None,
) -> DownloadResult:
    """Make ``dest`` the object, fetching only the blocks it does not already have."""
    reporter = reporter or Silent()
    dest = Path(dest)
    target = f"{container}/{name}"
    remote = files.hashmap(container, name, version=version)
    _check_algorithm(remote.block_hash, target)
    size, block_size = remote.size, remote.block_size
    hashes = remote.hashes if size else []
    if len(hashes) != block_count(size, block_size):
        raise TransferError(f"{len(hashes)} block hashes for {size} bytes", target)
    pinned = str(version) if version is not None else remote.version

    part = partial_path(dest)
    if not part.exists() and dest.exists():
        os.replace(dest, part)  # update the old copy in place, under the unfinished name
    local_size = part.stat().st_size if part.exists() else 0
    reporter.phase(f"checking {dest.name}", min(local_size, size))
    plan = plan_download(hashes, hash_blocks(part, size, block_size, reporter.advance))

    reporter.phase(f"downloading {dest.name}", plan.fetch_bytes(size, block_size))

    def fetch(start: int, length: int) -> bytes:
        return files.read_range(container, name, start, length, version=pinned)

    try:
        fetched = apply_plan(part, plan, size, block_size, fetch, workers, reporter.advance)
    except TransferError as exc:
        raise TransferError(exc.message, target) from None

    reporter.phase(f"verifying {dest.name}", size)
    result = hash_file(part, block_size, reporter.advance)
    if result.object_hash != remote.object_hash:
        raise TransferError(
            f"the download hashes to {result.object_hash}, not {remote.object_hash}; "
            "run it again to repair it",
            target,
        )
    os.replace(part, dest)
    return DownloadResult(
        container=container,
        name=name,
        path=str(dest),
        size=size,
        object_hash=result.object_hash,
        blocks=len(hashes),
        blocks_fetched=sum(len(i) for i in plan.fetch.values()),
        bytes_fetched=fetched,
        blocks_kept=plan.kept,
    )


def apply_plan(
    path: Path,
    plan: DownloadPlan,
    size: int,
    block_size: int,
    fetch: Callable[[int, int], bytes],
    workers: int = DEFAULT_WORKERS,
    advance: Callable[[int], None] | None = None,
) -> int:
    """Carry out a download plan on the file at ``path``: fetch each block once with
    ``fetch(start, length)``, check it, write it wherever the object repeats it, write
    the zero blocks, and cut the file to ``size``. Returns the bytes fetched.

    ``fetch`` is the seam between the plan and the network, so the rule that turns a
    stale file into the object is tested on local bytes.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:

        def one(digest: str, indexes: list[int]) -> int:
            length = block_length(indexes[0], size, block_size)
            data = fetch(indexes[0] * block_size, length)
            if len(data) != length or block_hash(data) != digest:
                raise TransferError(f"block {indexes[0]} does not match its hash")
            for index in indexes:
                os.pwrite(fd, data, index * block_size)
            if advance:
                advance(length)
            return length

        fetched = sum(_parallel(workers, [partial(one, d, i) for d, i in plan.fetch.items()]))
        for index in plan.zero:
            os.pwrite(fd, bytes(block_length(index, size, block_size)), index * block_size)
        os.ftruncate(fd, size)
        os.fsync(fd)
    finally:
        os.close(fd)
    return fetched


# -- sync ---------------------------------------------------------------------------------


def local_tree(root: Path) -> tuple[dict[str, Path], set[str]]:
    """Files (by relative POSIX path) and directories under ``root``; unfinished
    downloads are not content to upload."""
    found: dict[str, Path] = {}
    directories: set[str] = set()
    for folder, dirnames, filenames in os.walk(root):
        dirnames.sort()
        base = Path(folder)
        relative = base.relative_to(root).as_posix()
        if relative != ".":
            directories.add(relative)
        for filename in sorted(filenames):
            path = base / filename
            if filename.endswith(PARTIAL_SUFFIX) or not path.is_file():
                continue
            found[(path.relative_to(root)).as_posix()] = path
    return found, directories


def sync(
    files: Files,
    root: Path,
    container: str,
    prefix: str = "",
    *,
    delete: bool = False,
    dry_run: bool = False,
    workers: int = DEFAULT_WORKERS,
    reporter: Reporter | None = None,
    on_change: Callable[[str, str], None] | None = None,
) -> SyncResult:
    """Make ``container/prefix`` hold the files of ``root``: upload new and changed
    files (compared by Merkle hash, so an unchanged file costs a local read and nothing
    on the wire), and with ``delete`` remove remote objects that have no local file.
    Directory objects survive ``delete`` while the local directory exists."""
    reporter = reporter or Silent()
    root = Path(root)
    if not root.is_dir():
        raise ClientError(0, "not a directory", str(root))
    prefix = prefix.strip("/")
    prefix = prefix + "/" if prefix else ""
    block_size, algorithm = files.block_params(container)
    _check_algorithm(algorithm, container)
    remote = {o["name"]: o for o in files.objects(container, prefix=prefix) if "name" in o}
    local_files, local_dirs = local_tree(root)
    result = SyncResult()
    note = on_change or (lambda action, name: None)

    for relative, path in local_files.items():
        name = prefix + relative
        reporter.phase(f"hashing {relative}", path.stat().st_size)
        local = hash_file(path, block_size, reporter.advance)
        have = remote.get(name)
        if (
            have is not None
            and have.get("x_object_hash") == local.object_hash
            and have.get("content_type") not in DIRECTORY_TYPES
        ):
            result.skipped.append(name)
            continue
        if not dry_run:
            sent = upload(
                files, path, container, name, workers=workers, reporter=reporter, local=local
            )
            result.bytes_sent += sent.bytes_sent
        result.uploaded.append(name)
        note("upload", name)

    if delete:
        keep = {prefix + r for r in local_files} | {prefix + d for d in local_dirs}
        for name in sorted(set(remote) - keep, reverse=True):
            if not dry_run:
                try:
                    files.delete(container, name)
                except ClientError as exc:
                    if exc.status != 404:
                        raise
            result.deleted.append(name)
            note("delete", name)
    return result
