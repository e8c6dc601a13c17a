"""Reading and writing files around the page cache (O_DIRECT): its rules on aligned
buffers, offsets and lengths, kept apart from the file store that follows them.

O_DIRECT transfers whole ``ALIGN`` units from page-aligned memory. Python's buffers
are not page-aligned, so data goes through one page-aligned buffer per thread (an
anonymous ``mmap``), kept for the thread's next transfer.
"""

from __future__ import annotations

import errno
import mmap
import os
import threading

from nefos.blocks import BLOCK_SIZE, Buffer

ALIGN = 4096  # O_DIRECT's unit for buffers, offsets and lengths (any disk's block divides it)
ZEROS = bytes(ALIGN)
_per_thread = threading.local()  # each thread's page-aligned buffer


def padded(size: int) -> int:
    """``size`` rounded up to whole ``ALIGN`` units, as O_DIRECT transfers them."""
    return -(-size // ALIGN) * ALIGN


def aligned_buffer(size: int) -> mmap.mmap:
    """This thread's page-aligned buffer, of ``size`` bytes at least (O_DIRECT reads and
    writes go through it); ``size`` is a whole number of ``ALIGN`` units."""
    buffer = getattr(_per_thread, "buffer", None)
    if buffer is None or len(buffer) < size:
        buffer = _per_thread.buffer = mmap.mmap(-1, max(size, BLOCK_SIZE))
    return buffer


def read_all(fd: int, size: int, offset: int = 0) -> bytes:
    """``size`` bytes from ``offset``: a file that ends sooner is an error, never a
    shorter block (its hash would no longer be its name)."""
    chunks, retries = [], 3
    while size > 0:
        chunk = os.pread(fd, size, offset)
        if not chunk:
            if retries == 0:
                raise OSError(errno.EIO, f"block file ended {size} bytes early")
            retries -= 1
            continue
        chunks.append(chunk)
        size -= len(chunk)
        offset += len(chunk)
    return b"".join(chunks) if len(chunks) != 1 else chunks[0]


def aligned_copy(data: Buffer) -> memoryview:
    """``data`` copied into this thread's page-aligned buffer, zero-padded to whole
    ``ALIGN`` units, as O_DIRECT needs (the file is cut to its length afterwards)."""
    source = memoryview(data).cast("B")
    length = len(source)
    whole = padded(length)
    view = memoryview(aligned_buffer(whole))
    view[:length] = source
    view[length:whole] = ZEROS[: whole - length]
    return view[:whole]


def write_all(fd: int, data: Buffer) -> None:
    view = memoryview(data).cast("B")
    while view:
        view = view[os.write(fd, view) :]
