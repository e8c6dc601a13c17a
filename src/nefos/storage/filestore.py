"""The ``file`` block store (the interface is ``nefos.storage.stores.BlockStore``).

Local files under the data directory, fanned out by the first hex digits of the name.
Each write goes to a temporary name, is fsynced, renamed into place and its directory
fsynced, so an acknowledged block or map survives a crash whole, and a crash mid-write
leaves only a temporary file behind. Blocks of 1 MiB or more are written and read around
the page cache (O_DIRECT), as Swift drops big objects from it: a big transfer would
otherwise evict what readers use, and copying through the cache costs more CPU than the
disk (on a virtual machine whose cache pages are given back to the host, several times
more). Smaller blocks written at the same time are made durable together
(``group_sync``, on by default where libc has ``syncfs``): written to temporary names,
one ``syncfs`` of the store's filesystem, renamed, a second ``syncfs``, instead of an
fsync of each file and its directory: a small PUT costs its share of two flushes, and no
thread wake-ups of its own. Several big blocks given in one call (``nefos volumed``'s
write-back) are grouped the same way, in that call's thread. The price: ``syncfs`` also
flushes whatever else is dirty on
that filesystem, so a store that shares its filesystem with heavy buffered writers is
better off without it.

Extents (a volume's own blocks, changed in place) are files under ``extents/<owner>/``,
written with ``pwrite`` at their offsets (runs of 1 MiB or more around the page cache,
as blocks are) and made durable by the same ``syncfs`` (or an fsync of each, and of a
new file's directory). A crash may leave an extent with some of its latest runs and not
others, which is what a disk gives for writes it never acknowledged as flushed.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import datetime as dt
import errno
import fcntl
import hashlib
import itertools
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from nefos.blocks import BLOCK_SIZE, EMPTY_HASH, Buffer, is_hash, stripped
from nefos.storage.direct import ALIGN, aligned_buffer, aligned_copy, padded, read_all, write_all
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

HELD = "~gc"  # the suffix of a file collect has renamed aside
DIRECT_MIN = 1 << 20  # blocks at least this big are written with O_DIRECT
INLINE_READ = 64 * 1024  # blocks this small are read on the event loop when cached
_temporary_names = itertools.count()  # with the pid, unique without asking for randomness


def _libc_syncfs() -> Callable[[int], None] | None:
    """``syncfs(2)`` (Python's ``os`` has none), or None where libc lacks it."""
    try:
        function = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int]

    def syncfs(fd: int) -> None:
        if function(fd) != 0:  # ctypes lets go of the GIL for the call
            number = ctypes.get_errno()
            raise OSError(number, os.strerror(number))

    return syncfs


_syncfs = _libc_syncfs()


def _syncfs_of(folder: Path) -> None:
    """``syncfs`` of the filesystem that holds ``folder`` (only with group sync)."""
    assert _syncfs is not None
    fd = os.open(folder, os.O_RDONLY)
    try:
        _syncfs(fd)
    finally:
        os.close(fd)


class FileStore:
    def __init__(self, root: Path, group_sync: bool = True):
        self.root = root
        self.blocks = root / "blocks"
        self.maps = root / "maps"
        self.extents = root / "extents"
        self.blocks.mkdir(parents=True, exist_ok=True)
        self.maps.mkdir(parents=True, exist_ok=True)
        self._recovered = False  # collect's leftovers, looked for once per store
        self.direct_min: int | None = DIRECT_MIN  # None: the filesystem refuses O_DIRECT
        self.group_sync = group_sync and _syncfs is not None
        # Blocks being written, by name: a block is visible under its name a moment
        # before it is durable, and a writer that found it then would commit a
        # reference to something a crash could take away. Others wait for the writer.
        self._writing: dict[str, threading.Event] = {}
        self._writing_lock = threading.Lock()
        self._queued: list[tuple[Buffer, asyncio.Future[Put]]] = []  # the next group
        self._flusher: asyncio.Task[None] | None = None

    def _block_path(self, name: str) -> Path:
        if not is_hash(name):
            raise ValueError(f"bad block hash {name!r}")
        return self.blocks / name[:2] / name[2:4] / name

    def _map_path(self, name: str) -> Path:
        check_map_name(name)
        return self.maps / name[:2] / name

    def _write(self, path: Path, data: Buffer) -> None:
        """Durable write: temporary file, fsync, rename, fsync of the directory."""
        temporary = self._write_temporary(path, data, sync=True)
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

    def _write_temporary(self, path: Path, data: Buffer, sync: bool) -> Path:
        """``data`` in a new file next to ``path``, to be renamed over it."""
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}-{next(_temporary_names)}.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        try:
            if self.direct_min is None or memoryview(data).nbytes < self.direct_min:
                write_all(fd, data)
            else:
                self._write_direct(fd, data)
            if sync:
                os.fsync(fd)
        except BaseException:
            os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise
        os.close(fd)
        return temporary

    def _write_direct(self, fd: int, data: Buffer) -> None:
        """Write around the page cache; where the filesystem refuses (EINVAL), write
        through it, from then on."""
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        try:
            fcntl.fcntl(fd, fcntl.F_SETFL, flags | os.O_DIRECT)
            write_all(fd, aligned_copy(data))
            os.ftruncate(fd, memoryview(data).nbytes)
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise
            self.direct_min = None
            fcntl.fcntl(fd, fcntl.F_SETFL, flags)
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            write_all(fd, data)

    @staticmethod
    def _touch(path: Path) -> bool:
        """Mark a stored file as put now (its mtime); False when it is not there. Not
        fsynced: after a crash an older mtime only matters to an upload that died too."""
        try:
            os.utime(path)
        except FileNotFoundError:
            return False
        return True

    def _claim(self, name: str) -> threading.Event:
        """This thread's turn to write (or touch) block ``name``: it waits for another
        thread's write of it to end, durable or failed. Release it with ``_release``."""
        while True:
            with self._writing_lock:
                other = self._writing.get(name)
                if other is None:
                    mine = self._writing[name] = threading.Event()
                    return mine
            other.wait()

    def _release(self, name: str, claim: threading.Event) -> None:
        with self._writing_lock:
            del self._writing[name]
        claim.set()

    def _put_blocks(self, blocks: Sequence[Buffer]) -> list[Put]:
        """Each block written and fsynced on its own (big blocks; small ones without
        ``group_sync``). One claim at a time, so a group never waits on a thread that
        waits on it."""
        puts = []
        for block in blocks:
            data = stripped(block)
            name = hashlib.sha256(data).hexdigest()
            written = False
            if name != EMPTY_HASH:
                path = self._block_path(name)
                claim = self._claim(name)
                try:
                    if not self._touch(path):
                        self._write(path, data)
                        written = True
                finally:
                    self._release(name, claim)
            puts.append((name, written))
        return puts

    def _put_group(self, blocks: Sequence[Buffer]) -> list[Put | OSError]:
        """Blocks of concurrent writers made durable together: temporary files, syncfs
        (their data and names), renames, syncfs (the new names). Each block's put, or
        the error that kept it from the disk."""
        names: list[str] = []
        claims: dict[str, threading.Event] = {}
        written: list[tuple[str, Path, Path]] = []  # name, temporary, final
        failed: dict[str, OSError] = {}
        try:
            for block in blocks:
                data = stripped(block)
                name = hashlib.sha256(data).hexdigest()
                names.append(name)
                if name == EMPTY_HASH or name in claims:
                    continue
                claims[name] = self._claim(name)
                path = self._block_path(name)
                if self._touch(path):
                    continue
                try:
                    written.append((name, self._write_temporary(path, data, sync=False), path))
                except OSError as exc:
                    failed[name] = exc
            if written:
                self._sync_renames(written, failed)
        finally:
            for name, claim in claims.items():
                self._release(name, claim)
        puts: list[Put | OSError] = []
        new = {name for name, _, _ in written}  # each written once, for its first writer
        for name in names:
            puts.append(failed.get(name, (name, name in new)))
            new.discard(name)
        return puts

    def _sync_renames(
        self, written: list[tuple[str, Path, Path]], failed: dict[str, OSError]
    ) -> None:
        assert _syncfs is not None
        renamed: list[str] = []
        fd = os.open(self.blocks, os.O_RDONLY)  # errors are reported from its opening on
        try:
            _syncfs(fd)
            for name, temporary, path in written:
                try:
                    os.replace(temporary, path)
                except OSError as exc:
                    failed[name] = exc
                else:
                    renamed.append(name)
            _syncfs(fd)
        except OSError as exc:
            failed.update((name, exc) for name, _, _ in written if name not in failed)
        finally:
            os.close(fd)
            for name, temporary, _ in written:
                if name not in renamed:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(temporary)

    async def put_blocks(self, blocks: Sequence[Buffer]) -> list[str]:
        return [name for name, _ in await self._put(blocks)]

    async def put_block(self, block: Buffer) -> Put:
        (put,) = await self._put([block])
        return put

    async def _put(self, blocks: Sequence[Buffer]) -> list[Put]:
        big = any(memoryview(b).nbytes >= DIRECT_MIN for b in blocks)
        if self.group_sync and big and len(blocks) > 1:
            # Several big blocks in one call (volumed's write-back): made durable
            # together in this call's thread, two syncfs instead of two fsyncs each.
            puts = []
            for outcome in await asyncio.to_thread(self._put_group, blocks):
                if isinstance(outcome, OSError):
                    raise outcome
                puts.append(outcome)
            return puts
        if not self.group_sync or big:
            return await asyncio.to_thread(self._put_blocks, blocks)
        loop = asyncio.get_running_loop()
        waiting = []
        for block in blocks:
            future: asyncio.Future[Put] = loop.create_future()
            self._queued.append((block, future))
            waiting.append(future)
        flusher = self._flusher
        if flusher is None or flusher.done() or flusher.get_loop() is not loop:
            self._flusher = loop.create_task(self._flush())
        return list(await asyncio.gather(*(asyncio.shield(f) for f in waiting)))

    async def _flush(self) -> None:
        """Write the queued blocks as one group, then those queued meanwhile, until none
        wait: one group at a time, so each is as big as the writers of its moment."""
        while self._queued:
            group, self._queued = self._queued, []
            try:
                outcomes: list[Put | BaseException] = list(
                    await asyncio.to_thread(self._put_group, [b for b, _ in group])
                )
            except asyncio.CancelledError:  # the loop is closing: nobody is left to answer
                for _, future in group + self._queued:
                    future.cancel()
                raise
            except Exception as exc:  # each writer gets it as its own error
                outcomes = [exc] * len(group)
            for (_, future), outcome in zip(group, outcomes, strict=True):
                if future.done():
                    continue
                if isinstance(outcome, BaseException):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)

    def _read_named(self, names: Sequence[str], path_of: Callable[[str], Path]) -> list[bytes]:
        """Each named file's bytes (the zero block's are empty, from no file); raises
        BlockMissing naming every absent one."""
        found, absent = [], []
        for name in names:
            if name == EMPTY_HASH:
                found.append(b"")
                continue
            try:
                found.append(self._read(path_of(name)))
            except FileNotFoundError:
                absent.append(name)
        if absent:
            raise BlockMissing(absent)
        return found

    def _get_blocks(self, hashes: Sequence[str]) -> list[bytes]:
        return self._read_named(hashes, self._block_path)

    async def get_blocks(self, hashes: Sequence[str]) -> list[bytes]:
        if len(hashes) == 1 and hashes[0] != EMPTY_HASH:
            found = self._read_cached(self._block_path(hashes[0]))
            if found is not None:
                return [found]
        return await asyncio.to_thread(self._get_blocks, hashes)

    def _read(self, path: Path) -> bytes:
        """A block's bytes. Big blocks are read around the page cache (O_DIRECT), as
        they were written: reading one through it costs fresh cache pages, which on a
        virtual machine whose free pages go back to the host cost several times the
        read (256 MiB GETs here: 0.12-0.15 s of server CPU direct, 0.3-0.75 buffered)."""
        fd = os.open(path, os.O_RDONLY)
        try:
            size = os.fstat(fd).st_size
            if self.direct_min is not None and size >= self.direct_min:
                read = self._read_direct(fd, size)
                if read is not None:
                    return read
            return read_all(fd, size)
        finally:
            os.close(fd)

    def _read_direct(self, fd: int, size: int) -> bytes | None:
        """None where the filesystem refuses O_DIRECT (then reads go through the cache,
        from then on, as writes do)."""
        units = padded(size)
        view = memoryview(aligned_buffer(units))
        try:
            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_DIRECT)
            got = 0
            while got < size:  # whole ALIGN units until the end of the file
                read = os.preadv(fd, [view[got:units]], got)
                if read == 0 or read % ALIGN:
                    got += read
                    break
                got += read
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise
            self.direct_min = None
            return None
        if got >= size:
            return bytes(view[:size])
        # A direct read may stop short of the end (seen under memory pressure, at the
        # file's last partial unit): the rest through the page cache, from where it stopped.
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_DIRECT)
        return bytes(view[:got]) + read_all(fd, size - got, got)

    @staticmethod
    def _read_cached(path: Path) -> bytes | None:
        """A small block that is in the page cache, read without waiting for the disk
        (RWF_NOWAIT): the thread hop it saves costs more than the read, on every small
        GET. None when the block is big, absent, or not all cached: a thread reads it.
        Opening the file may still wait for the disk if its inode is not cached."""
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return None
        try:
            size = os.fstat(fd).st_size
            if size > INLINE_READ:
                return None
            buffer = bytearray(size)
            if size and os.preadv(fd, [buffer], 0, os.RWF_NOWAIT) != size:
                return None
            return bytes(buffer)
        except OSError:  # not cached (EAGAIN), or a filesystem without RWF_NOWAIT
            return None
        finally:
            os.close(fd)

    def _missing(self, hashes: Sequence[str], touch: bool) -> list[str]:
        seen: set[str] = set()
        absent = []
        for name in hashes:
            if name in seen or name == EMPTY_HASH:
                continue
            seen.add(name)
            path = self._block_path(name)
            if not touch:
                if not path.exists():
                    absent.append(name)
                continue
            claim = self._claim(name)  # the caller will reference it: it must be durable
            try:
                if not self._touch(path):
                    absent.append(name)
            finally:
                self._release(name, claim)
        return absent

    async def missing(self, hashes: Sequence[str], touch: bool = False) -> list[str]:
        return await asyncio.to_thread(self._missing, hashes, touch)

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
        await asyncio.to_thread(self._write, self._map_path(name), encode_map(hashes))

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

    @staticmethod
    def _held(path: Path) -> Path:
        """Where collect holds a file while it decides ("~" is in no block or map name,
        and the leading dot keeps it out of listings)."""
        return path.with_name(f".{path.name}{HELD}")

    @staticmethod
    def _put_back(held: Path, path: Path) -> None:
        """Return a held file to its name, unless a writer has put a new one there (or
        another collect's recovery has already put it back)."""
        try:
            os.link(held, path)
        except (FileExistsError, FileNotFoundError):
            pass
        else:
            directory = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
        with contextlib.suppress(FileNotFoundError):
            held.unlink()

    def _recover(self) -> None:
        """Put back what a collect killed between its rename and its second look left
        held: a writer may have touched it, and committed, since."""
        if self._recovered:
            return
        for root, pattern in ((self.blocks, f"*/*/.*{HELD}"), (self.maps, f"*/.*{HELD}")):
            for held in root.glob(pattern):
                self._put_back(held, held.with_name(held.name[1 : -len(HELD)]))
        self._recovered = True

    def _collect(self, paths: list[tuple[str, Path]], before: float, dry_run: bool) -> list[str]:
        """Rename each old file aside, then look at its mtime again: a writer's touch
        lands either before the rename (the held file is young and goes back) or after
        it (the touch finds nothing and the writer writes the block anew)."""
        if not dry_run:
            self._recover()
        collected = []
        for name, path in paths:
            try:
                if path.stat().st_mtime >= before:
                    continue
            except FileNotFoundError:
                continue
            if dry_run:
                collected.append(name)
                continue
            held = self._held(path)
            try:
                os.rename(path, held)
            except FileNotFoundError:
                continue
            try:
                young = held.stat().st_mtime >= before
            except FileNotFoundError:  # a concurrent collect's recovery put it back
                continue
            if young:
                self._put_back(held, path)
                continue
            with contextlib.suppress(FileNotFoundError):
                held.unlink()
                collected.append(name)
        return collected

    async def collect(
        self, kind: Kind, names: Sequence[str], before: dt.datetime, dry_run: bool = False
    ) -> list[str]:
        where = self._block_path if kind == "block" else self._map_path
        paths = [(name, where(name)) for name in names if name != EMPTY_HASH]
        return await asyncio.to_thread(self._collect, paths, before.timestamp(), dry_run)

    # -- extents ---------------------------------------------------------------------------

    def _extent_path(self, name: str) -> Path:
        owner, index = split_extent(name)
        return self.extents / owner / index

    def _open_extent(self, path: Path, fresh: bool) -> tuple[int, bool]:
        """An extent's file, opened for writing, and whether this made it (its directory
        then needs the new name made durable)."""
        flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if fresh else 0)
        try:
            existed = path.exists()
            return os.open(path, flags, 0o640), not existed
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
            return os.open(path, flags, 0o640), True

    def _write_run(self, fd: int, offset: int, data: Buffer) -> None:
        view = memoryview(data).cast("B")
        length = len(view)
        direct = (
            self.direct_min is not None
            and length >= self.direct_min
            and offset % ALIGN == 0
            and length % ALIGN == 0
        )
        if direct:
            flags = fcntl.fcntl(fd, fcntl.F_GETFL)
            try:
                fcntl.fcntl(fd, fcntl.F_SETFL, flags | os.O_DIRECT)
                aligned = aligned_copy(view)
                done = 0
                while done < length:
                    done += os.pwrite(fd, aligned[done:length], offset + done)
                return
            except OSError as exc:
                if exc.errno != errno.EINVAL:
                    raise
                self.direct_min = None
            finally:
                fcntl.fcntl(fd, fcntl.F_SETFL, flags)
        done = 0
        while done < length:
            done += os.pwrite(fd, view[done:], offset + done)

    def _write_extents(self, writes: Sequence[ExtentWrite], durable: bool) -> None:
        opened: list[int] = []
        made: set[Path] = set()  # directories holding new names
        try:
            for write in writes:
                path = self._extent_path(write.name)
                fd, new = self._open_extent(path, write.fresh)
                if not write.fresh and os.fstat(fd).st_nlink > 1:
                    fd = self._unshare(path, fd)
                opened.append(fd)
                if new:
                    made.add(path.parent)
                for offset, data in write.runs:
                    if offset < 0 or offset + memoryview(data).nbytes > BLOCK_SIZE:
                        raise ValueError(f"a run past the end of extent {write.name}")
                    self._write_run(fd, offset, data)
            if not opened or not durable:
                return
            if self.group_sync:
                assert _syncfs is not None
                _syncfs(opened[0])
                return
            for fd in opened:
                os.fsync(fd)
            for directory in made | {d.parent for d in made}:
                self._sync_file(directory)
        finally:
            for fd in opened:
                os.close(fd)

    async def write_extents(self, writes: Sequence[ExtentWrite], durable: bool = True) -> None:
        await asyncio.to_thread(self._write_extents, writes, durable)

    def _sync_extents(self, names: Sequence[str]) -> None:
        """One ``syncfs`` for them all; without it, an fsync of each and of its owner's
        directory (and of the directory above, which holds the owner's)."""
        if not names:
            return
        if self.group_sync:
            _syncfs_of(self.extents)
            return
        directories = set()
        for name in names:
            path = self._extent_path(name)
            with contextlib.suppress(FileNotFoundError):  # dropped meanwhile
                self._sync_file(path)
            directories.add(path.parent)
        for directory in directories | {self.extents}:
            with contextlib.suppress(FileNotFoundError):
                self._sync_file(directory)

    async def sync_extents(self, names: Sequence[str]) -> None:
        await asyncio.to_thread(self._sync_extents, names)

    def _read_extents(self, names: Sequence[str]) -> list[bytes]:
        return self._read_named(names, self._extent_path)  # (no extent is named EMPTY_HASH)

    async def read_extent(self, name: str) -> bytes:
        (data,) = await asyncio.to_thread(self._read_extents, [name])
        return data

    def _seal(self, names: Sequence[str], move: bool) -> list[str]:
        if move:
            sync_each = not self.group_sync
            sealed = [self._seal_by_link(name, sync_each) for name in names]
            if not sync_each:
                _syncfs_of(self.blocks)
            return sealed
        contents = self._read_extents(names)
        if self.group_sync and len(contents) > 1:
            puts: list[Put] = []
            for outcome in self._put_group(contents):
                if isinstance(outcome, OSError):
                    raise outcome
                puts.append(outcome)
        else:
            puts = self._put_blocks(contents)
        return [name for name, _ in puts]

    async def seal_extents(self, names: Sequence[str], move: bool = False) -> list[str]:
        return await asyncio.to_thread(self._seal, names, move)

    def _seal_by_link(self, name: str, sync: bool) -> str:
        """Seal an extent its owner is about to drop: its file becomes the block too (a
        hard link, cut to the block's canonical length: only trailing zeros go, which
        the extent reads as anyway), so nothing is copied. Should the owner never drop
        it (a crash before its commit), the next write into the extent finds the file
        shared and writes into a copy (``_unshare``)."""
        path = self._extent_path(name)
        try:
            data = self._read(path)
        except FileNotFoundError:
            raise BlockMissing([name]) from None
        content = stripped(data)
        block = hashlib.sha256(content).hexdigest()
        if block == EMPTY_HASH:
            return block
        target = self._block_path(block)
        claim = self._claim(block)
        try:
            if self._touch(target):
                return block
            target.parent.mkdir(parents=True, exist_ok=True)
            temporary = target.with_name(f".{block}.{os.getpid()}-{next(_temporary_names)}.tmp")
            os.link(path, temporary)
            try:
                os.truncate(temporary, len(content))
                # Put now, for gc: the extent's file may be older than gc's grace, and
                # the owner's map names the block only once it commits.
                os.utime(temporary)
                if sync:
                    self._sync_file(temporary)
                os.replace(temporary, target)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(temporary)
                raise
            if sync:
                self._sync_file(target.parent)
        finally:
            self._release(block, claim)
        return block

    @staticmethod
    def _sync_file(path: Path) -> None:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _unshare(self, path: Path, fd: int) -> int:
        """An extent whose file is also a block (sealed by link, its owner's commit
        lost): copy it to a file of its own before writing into it, so the block keeps
        its bytes. Returns the new file's descriptor (the old one is closed)."""
        try:
            data = self._read(path)
            temporary = path.with_name(f".{path.name}.{os.getpid()}-{next(_temporary_names)}.tmp")
            fresh = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
            try:
                write_all(fresh, data)
                os.fsync(fresh)
                os.replace(temporary, path)
            except BaseException:
                os.close(fresh)
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(temporary)
                raise
        finally:
            os.close(fd)
        return fresh

    async def delete_extents(self, names: Sequence[str]) -> None:
        paths = [self._extent_path(name) for name in names]
        await asyncio.to_thread(self._delete, paths)

    def _extent_names(self, owner: str) -> list[str]:
        try:
            found = os.listdir(self.extents / check_extent_owner(owner))
        except FileNotFoundError:
            return []
        return sorted(f"{owner}.{index}" for index in found if not index.startswith("."))

    async def extent_names(self, owner: str) -> list[str]:
        return await asyncio.to_thread(self._extent_names, owner)

    async def close(self) -> None:
        return None
