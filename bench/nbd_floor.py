"""An NBD server that stores nothing: the floor under any NBD server on this machine.

    .venv/bin/python bench/nbd_floor.py SOCKET     # serves the export "floor", 16 GiB

It speaks the same protocol code as ``nefos volumed`` (``nefos.volume.nbd``): writes are
received (into a buffer reused for every write) and dropped, reads answer zeros, flushes
return at once. What a client measures against it is the cost of the NBD hop alone:
QEMU's client, the socket's copies and the wakeups on both sides, with no disk and no
volume behind it. ``bench/volumed.py --nbd-floor`` and ``bench/volumed_guest.py`` time it
beside volumed and the raw file.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from nefos.volume import nbd

SIZE = 16 << 30
EXPORT = "floor"
ZEROS = bytes(nbd.MAX_REQUEST)


class Dropped:
    """Where a write's payload arrives: one buffer per size, overwritten every time."""

    def __init__(self, length: int):
        self.views = [memoryview(bytearray(length))]

    def release(self) -> None:
        pass


class Nothing:
    """An export that keeps nothing (``nbd.Handle``)."""

    size = SIZE
    read_only = False

    def __init__(self) -> None:
        self.places: dict[int, Dropped] = {}

    async def read(self, offset: int, length: int) -> bytes:
        return ZEROS[:length]

    def receive(self, offset: int, length: int) -> Dropped:
        place = self.places.get(length)
        if place is None:
            place = self.places[length] = Dropped(length)
        return place

    async def write(self, offset: int, data: object, fua: bool) -> None:
        pass

    async def flush(self) -> None:
        pass

    async def zero(self, offset: int, length: int, fua: bool) -> None:
        pass

    async def close(self) -> None:
        pass


class Floor:
    """The one export (``nbd.Exports``), asking for requests as volumed does."""

    preferred_block = 4 << 20

    def names(self) -> list[str]:
        return [EXPORT]

    async def size_of(self, name: str) -> int | None:
        return SIZE if name == EXPORT else None

    async def open(self, name: str) -> Nothing | None:
        return Nothing() if name == EXPORT else None


async def serve(path: str) -> None:
    loop = asyncio.get_running_loop()
    await loop.create_unix_server(lambda: nbd.Connection(Floor()), path)
    await asyncio.Event().wait()


@contextlib.contextmanager
def floor_server(socket_path: Path) -> Iterator[str]:
    """The floor server running in a process of its own, as its URI for QEMU."""
    server = subprocess.Popen([sys.executable, __file__, str(socket_path)])
    try:
        while not socket_path.exists():
            if server.poll() is not None:
                raise SystemExit("the NBD floor server did not start")
            time.sleep(0.05)
        yield f"nbd+unix:///{EXPORT}?socket={socket_path}"
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(sys.argv[1]))
