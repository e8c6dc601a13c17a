"""``nefos volumed``: the node's block server for volumes (``nefos.volume.volumed``).

It runs on every Ganeti node that hosts servers on the ``ext`` disk template, with the
deployment's configuration (database and block store: the node's credential, root's
to read). SIGTERM or SIGINT flush every open volume before it exits; SIGKILL loses only
writes no client saw flushed.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import signal
from pathlib import Path
from typing import Annotated

import typer

from nefos.cli.common import ConfigFile, DataDir, check_schema, settings_for
from nefos.core.logging import configure_logging
from nefos.server.engines import Engines
from nefos.volume.devices import DIRTY_BLOCKS, SEAL_AFTER
from nefos.volume.extstorage import DEFAULT_RUN_DIR, SEND_BUFFER, WMEM_DEFAULT
from nefos.volume.volumed import Volumed

log = logging.getLogger("nefos.volumed")


def volumed(
    run_dir: Annotated[
        Path,
        typer.Option(
            "--run-dir", help="Where the sockets (nbd.sock, control.sock) and exports live"
        ),
    ] = DEFAULT_RUN_DIR,
    tcp_port: Annotated[
        int | None,
        typer.Option(
            "--tcp-port",
            help="Also serve NBD on 127.0.0.1:PORT (any local user can reach it: tests "
            "and benchmarks only)",
        ),
    ] = None,
    dirty_mib: Annotated[
        int,
        typer.Option(
            "--dirty-mib",
            help="Unflushed writes kept in memory per volume before write-back starts",
        ),
    ] = DIRTY_BLOCKS * 4,
    seal_after: Annotated[
        float,
        typer.Option(
            "--seal-after",
            help="Seconds a volume's block must go unwritten before it is hashed into "
            "a content-addressed block in the background (0: only at a snapshot or clone)",
        ),
    ] = SEAL_AFTER,
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING")] = "INFO",
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Serve volumes to QEMU over NBD, with copy-on-write over the block store."""
    settings = settings_for(config, data_dir)
    configure_logging(log_level.upper(), "text")

    async def run() -> None:
        await check_schema(settings)
        engines = Engines(settings)
        server = Volumed(
            engines.db,
            engines.store,
            engines.volumes,
            run_dir,
            max(1, dirty_mib // 4),
            seal_after=seal_after,
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await server.start(tcp_port)
        try:
            await stop.wait()
        finally:
            log.info("stopping: flushing open volumes")
            await server.close()
            await engines.store.close()
            await engines.db.close()

    keep_freed_memory()
    hint = socket_buffer_hint()
    if hint:
        log.warning("%s", hint)
    asyncio.run(run())


def socket_buffer_hint(setting: Path = WMEM_DEFAULT) -> str | None:
    """Advice when the node's default socket send buffer is small
    (``extstorage.tune_socket_buffers`` says why it matters). None when it is big
    enough, or unknown."""
    try:
        value = int(setting.read_text())
    except (OSError, ValueError):
        return None
    if value >= SEND_BUFFER:
        return None
    return (
        f"net.core.wmem_default is {value} bytes, so QEMU sends each 4 MiB NBD write "
        f"to volumed in about {-(-SEND_BUFFER // max(1, value))} pieces: "
        f"`nefos ganeti install-extstorage` (or `sysctl -w net.core.wmem_default="
        f"{SEND_BUFFER}`) before QEMU starts makes sequential writes about a fifth "
        "faster (docs/volumes.md, Tuning a node)"
    )


def keep_freed_memory() -> None:
    """Let glibc's malloc keep freed 4 MiB buffers for reuse rather than give them back
    to the kernel: volumed allocates one per block it reads or writes, and each fresh
    mapping costs a page fault per 4 KiB on first touch, which on this path cost more
    than the copy itself. Freed memory stays in the heap, up to 256 MiB above what is in
    use. Elsewhere than glibc, nothing changes."""
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return
    m_trim_threshold, m_mmap_threshold = -1, -3
    mallopt(m_mmap_threshold, 32 << 20)  # its largest value: 4 MiB blocks come from the heap
    mallopt(m_trim_threshold, 256 << 20)
