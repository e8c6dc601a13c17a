"""Linux inotify on one directory, read from the asyncio event loop (ctypes, no package).

Ganeti's job queue is a directory of small files, each rewritten by renaming a new copy
onto it, so a watch of the directory tells the event daemon which job changed the moment
it changes, without reading anything else.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import errno
import os
import struct
from dataclasses import dataclass

IN_CLOSE_WRITE = 0x00000008
IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_DELETE_SELF = 0x00000400
IN_MOVE_SELF = 0x00000800
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_ONLYDIR = 0x01000000
_IN_NONBLOCK = os.O_NONBLOCK
_IN_CLOEXEC = os.O_CLOEXEC
_HEADER = struct.Struct("iIII")  # wd, mask, cookie, len


@dataclass(frozen=True)
class Event:
    mask: int
    name: str


def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.inotify_init1.argtypes = [ctypes.c_int]
    libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
    return libc


class Inotify:
    """One inotify instance watching one directory; raises OSError where there is no
    inotify (another OS, or the watch limit reached), so callers can fall back."""

    def __init__(self, directory: str | os.PathLike[str], mask: int) -> None:
        try:
            libc = _libc()
            init, add_watch = libc.inotify_init1, libc.inotify_add_watch
        except (OSError, AttributeError) as exc:
            raise OSError(errno.ENOSYS, f"inotify is not available: {exc}") from exc
        fd = init(_IN_NONBLOCK | _IN_CLOEXEC)
        if fd < 0:
            code = ctypes.get_errno()
            raise OSError(code, f"inotify_init1: {os.strerror(code)}")
        self.fd = fd
        if add_watch(fd, os.fsencode(directory), mask | IN_ONLYDIR) < 0:
            code = ctypes.get_errno()
            os.close(fd)
            raise OSError(code, f"inotify_add_watch {directory}: {os.strerror(code)}")
        self._buffer = b""
        self._readable = asyncio.Event()
        asyncio.get_running_loop().add_reader(fd, self._readable.set)

    async def read(self) -> list[Event]:
        """The next events, waiting for at least one."""
        while True:
            self._readable.clear()
            try:
                data = os.read(self.fd, 64 * 1024)
            except BlockingIOError:
                await self._readable.wait()
                continue
            return self._parse(data)

    def _parse(self, data: bytes) -> list[Event]:
        events: list[Event] = []
        data = self._buffer + data
        offset = 0
        while offset + _HEADER.size <= len(data):
            _, mask, _, length = _HEADER.unpack_from(data, offset)
            end = offset + _HEADER.size + length
            if end > len(data):
                break
            raw = data[offset + _HEADER.size : end].rstrip(b"\0")
            events.append(Event(mask, os.fsdecode(raw)))
            offset = end
        self._buffer = data[offset:]
        return events

    def close(self) -> None:
        if self.fd >= 0:
            asyncio.get_running_loop().remove_reader(self.fd)
            os.close(self.fd)
            self.fd = -1
