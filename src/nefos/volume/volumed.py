"""``nefos volumed``: the block server on a Ganeti node (Archipelago's role, rebuilt).

One process per node. It holds the deployment's configuration, so it reaches the
database and the block store (files or RADOS) as every ``nefos`` command does: that
configuration is the node's credential, readable by root only, and makes the node an
administrator of volumes. It listens on two unix sockets in its run directory (mode
0600, root only):

* ``nbd.sock``: NBD (``nefos.volume.nbd``). Export names are volume ids; only volumes
  attached on this node are served, each to one client at a time (a second open is
  refused: a volume has one writer). Optionally the same on a loopback TCP port, for
  benchmarks and tools that cannot open a unix socket; anyone on the host can reach a
  port, so it is off unless asked for.
* ``control.sock``: one JSON request per line, one JSON answer per line, for the
  ``nefos`` ExtStorage provider's scripts (``nefos.volume.extstorage``): create,
  remove, grow, attach, detach, snapshot, setinfo, verify, info. A peer that is not
  root (or volumed's own user) is refused (SO_PEERCRED).

Which volumes are attached is kept as empty files under ``attached/`` in the run
directory, so a restarted volumed serves the same exports again and QEMU reconnects.
Each action on a volume is taken as the volume's owner through the volume service, so
quotas, sizes and sources are checked as for an API call.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import struct
import uuid
from pathlib import Path
from typing import Any

from nefos.blocks import BLOCK_SIZE
from nefos.core import errors
from nefos.core.db import Database
from nefos.storage.stores import BlockStore
from nefos.volume import nbd
from nefos.volume.devices import DIRTY_BLOCKS, SEAL_AFTER, Device, DeviceError, Reception
from nefos.volume.extstorage import (
    CONTROL_SOCKET,
    NBD_SOCKET,
    PARAMETERS,
    Refused,
    volume_id_for,
)
from nefos.volume.service import Volumes

log = logging.getLogger("nefos.volumed")
MiB = 1 << 20
MAX_LINE = 64 << 10
HANDOVER_SECONDS = 2.0  # a client reconnecting may arrive before its old connection's end


class OpenVolume:
    """One client's handle on a device (``nbd.Handle``). The device takes the client's
    concurrent requests, and the control channel's flush (a snapshot's, a detach's)
    beside them."""

    def __init__(self, server: Volumed, name: str, device: Device, read_only: bool = False):
        self.server = server
        self.name = name
        self.device = device
        self.read_only = read_only  # its owner's flag (os-update_readonly_flag)
        self.released = asyncio.Event()
        self.sealer: asyncio.Task[None] | None = None
        if server.seal_after > 0:
            self.sealer = asyncio.ensure_future(device.seal_idle(server.seal_after))

    @property
    def size(self) -> int:
        return self.device.size

    async def read(self, offset: int, length: int) -> bytes | bytearray:
        return await self.device.read(offset, length)

    def receive(self, offset: int, length: int) -> Reception | None:
        return self.device.receive(offset, length)

    async def write(self, offset: int, data: bytes | bytearray | Reception, fua: bool) -> None:
        if isinstance(data, Reception):
            await self.device.land(data)
        else:
            await self.device.write(offset, data)
        if fua:
            await self.device.flush()

    async def flush(self) -> None:
        await self.device.flush()

    async def zero(self, offset: int, length: int, fua: bool) -> None:
        await self.device.zero(offset, length)
        if fua:
            await self.device.flush()

    async def close(self) -> None:
        try:
            await self.stop_sealing()
            await self.flush()
        finally:
            self.server.opened.pop(self.name, None)
            self.released.set()
            log.info(
                "%s closed (%d extents written, %d sealed)",
                self.name,
                self.device.blocks_written,
                self.device.blocks_sealed,
            )

    async def stop_sealing(self) -> None:
        """Stop the idle sealer between its batches (a batch cut short would leave
        blocks no map names, for gc: harmless, but wasted)."""
        if self.sealer is None:
            return
        sealer, self.sealer = self.sealer, None
        async with self.device.write_back_turn:  # not in the middle of a batch
            sealer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sealer


class Volumed:
    # A whole block is what a write should be (nbd.Exports): it replaces the block
    # without reading it, where a part of a shared block is first filled in from it.
    # qemu-img writes this much at a time, and 1 GiB went a fifth faster for it.
    preferred_block = BLOCK_SIZE

    def __init__(
        self,
        db: Database,
        store: BlockStore,
        volumes: Volumes,
        run_dir: Path,
        dirty_blocks: int = DIRTY_BLOCKS,
        seal_after: float = SEAL_AFTER,
    ):
        self.db = db
        self.store = store
        self.volumes = volumes
        self.run_dir = Path(run_dir)
        self.attached_dir = self.run_dir / "attached"
        self.dirty_blocks = dirty_blocks
        self.seal_after = seal_after  # seconds; 0: extents are sealed only when asked
        self.opened: dict[str, OpenVolume] = {}
        self.servers: list[asyncio.AbstractServer] = []

    # -- serving --------------------------------------------------------------------------

    async def start(self, tcp_port: int | None = None) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.attached_dir.mkdir(exist_ok=True, mode=0o700)
        loop = asyncio.get_running_loop()
        for name in (NBD_SOCKET, CONTROL_SOCKET):
            path = self.run_dir / name
            with contextlib.suppress(FileNotFoundError):
                path.unlink()  # a socket left by a volumed that was killed
            old = os.umask(0o177)
            try:
                if name == NBD_SOCKET:
                    server = await loop.create_unix_server(self._nbd_client, path)
                else:
                    server = await asyncio.start_unix_server(self._control, path, limit=MAX_LINE)
                self.servers.append(server)
            finally:
                os.umask(old)
        if tcp_port is not None:
            self.servers.append(await loop.create_server(self._nbd_client, "127.0.0.1", tcp_port))
        log.info("serving volumes in %s", self.run_dir)

    async def close(self) -> None:
        for server in self.servers:
            server.close()
        for opened in list(self.opened.values()):
            with contextlib.suppress(Exception):
                await opened.stop_sealing()
                await opened.flush()

    def _nbd_client(self) -> nbd.Connection:
        return nbd.Connection(self)

    # -- nbd.Exports ----------------------------------------------------------------------

    def names(self) -> list[str]:
        return sorted(p.name for p in self.attached_dir.iterdir() if not p.name.startswith("."))

    def _attached(self, name: str) -> uuid.UUID | None:
        try:
            key = uuid.UUID(name)
        except ValueError:
            return None
        return key if (self.attached_dir / str(key)).exists() else None

    async def size_of(self, name: str) -> int | None:
        key = self._attached(name)
        if key is None:
            return None
        owner = await self.volumes.owner_of(key)
        return None if owner is None else (await self.volumes.get(owner, key)).size

    async def open(self, name: str) -> OpenVolume | None:
        key = self._attached(name)
        if key is None:
            return None
        current = self.opened.get(str(key))
        if current is not None:  # one writer: wait a moment for it to go, else refuse
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(current.released.wait(), HANDOVER_SECONDS)
            if str(key) in self.opened:
                return None
        owner = await self.volumes.owner_of(key)
        if owner is None:
            return None
        # The flag changes only while no server has the volume (Cinder's rule), so the
        # one read at open holds for the whole connection.
        read_only = bool((await self.volumes.get(owner, key)).readonly)
        try:
            device = await Device.open(self.db, self.store, key, self.dirty_blocks)
        except DeviceError:
            return None
        opened = OpenVolume(self, str(key), device, read_only)
        self.opened[str(key)] = opened
        log.info("%s opened (%d bytes%s)", key, device.size, ", read-only" if read_only else "")
        return opened

    # -- the control channel --------------------------------------------------------------

    async def _control(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if not _trusted(writer.get_extra_info("socket")):
                answer: dict[str, Any] = {"ok": False, "error": "only root may administer volumes"}
            else:
                try:
                    request = json.loads(await reader.readline())
                    answer = {"ok": True, **await self.act(request["action"], request["env"])}
                except (Refused, errors.NefosError) as exc:
                    answer = {"ok": False, "error": str(exc)}
                except (ValueError, KeyError, TypeError) as exc:
                    answer = {"ok": False, "error": f"bad request: {exc}"}
            writer.write(json.dumps(answer).encode() + b"\n")
            await writer.drain()
        except Exception:
            log.exception("control request failed")
        finally:
            writer.close()

    async def act(self, action: str, env: dict[str, str]) -> dict[str, Any]:
        """One ExtStorage action, from Ganeti's environment for it (``VOL_NAME``,
        ``VOL_SIZE`` in MiB, ``EXTP_*`` disk parameters...)."""
        handler = getattr(self, f"_do_{action}", None)
        if handler is None:
            raise Refused(f"unknown action {action!r}")
        key = volume_id_for(env)
        log.info("%s %s", action, key)
        result: dict[str, Any] = await handler(key, env)
        return result

    async def _owner(self, key: uuid.UUID) -> str:
        owner = await self.volumes.owner_of(key)
        if owner is None:
            raise Refused(f"volume {key} does not exist")
        return owner

    async def _do_create(self, key: uuid.UUID, env: dict[str, str]) -> dict[str, Any]:
        size = _mebibytes(env, "VOL_SIZE")
        owner = await self.volumes.owner_of(key)
        if owner is not None:  # made by the API (EXTP_VOLUME), or a create retried
            volume = await self.volumes.get(owner, key)
            if size > volume.size:
                volume = await self.volumes.extend(owner, key, size)
            return {"volume": str(key), "size": volume.size}
        owner = env.get("EXTP_OWNER") or None
        origin = _uuid_param(env, "EXTP_ORIGIN")
        origin_owner = None if origin is None else await self.volumes.owner_of(origin)
        # The source is read as the new volume's owner: a volume of theirs, or an image
        # they can see (a clone of another user's volume is NotFound, as in the API).
        if origin is not None and origin_owner is not None:
            volume = await self.volumes.clone(owner or origin_owner, origin, size=size, new_id=key)
        elif owner is None:
            raise Refused("a new volume needs its owner: the disk parameter owner=<user id>")
        elif origin is not None:
            volume = await self.volumes.create_from_image(owner, origin, size=size, new_id=key)
        else:
            volume = await self.volumes.create(owner, size, new_id=key)
        return {"volume": str(key), "size": volume.size}

    async def _do_remove(self, key: uuid.UUID, env: dict[str, str]) -> dict[str, Any]:
        """Ganeti removes the disk (its instance, or the disk itself, goes away). A disk
        that nefos's API made of a volume (``EXTP_VOLUME``) is only released: the volume
        outlives the instance, as a Cinder volume outlives a Nova server, and nefos
        keeps or deletes it by its own record (``delete_on_termination``). A disk Ganeti
        made (no ``volume`` parameter) is the volume, and goes with it."""
        owner = await self.volumes.owner_of(key)
        if str(key) in self.opened:
            raise Refused(f"volume {key} is open by a client; detach it first")
        (self.attached_dir / str(key)).unlink(missing_ok=True)
        if owner is not None and not env.get("EXTP_VOLUME"):  # removing twice is done
            await self.volumes.delete(owner, key)
        return {"volume": str(key)}

    async def _do_grow(self, key: uuid.UUID, env: dict[str, str]) -> dict[str, Any]:
        owner = await self._owner(key)
        size = _mebibytes(env, "VOL_NEW_SIZE")
        volume = await self.volumes.get(owner, key)
        if size > volume.size:
            volume = await self.volumes.extend(owner, key, size)
            opened = self.opened.get(str(key))
            if opened is not None:
                opened.device.resize(volume.size)
        return {"volume": str(key), "size": volume.size}

    async def _do_attach(self, key: uuid.UUID, env: dict[str, str]) -> dict[str, Any]:
        await self._owner(key)
        marker = self.attached_dir / str(key)
        marker.touch()
        return {"volume": str(key), "socket": str(self.run_dir / NBD_SOCKET)}

    async def _do_detach(self, key: uuid.UUID, env: dict[str, str]) -> dict[str, Any]:
        """No new client may open the volume; one still connected keeps it (QEMU is
        stopped before Ganeti detaches) and its writes are flushed now."""
        (self.attached_dir / str(key)).unlink(missing_ok=True)
        opened = self.opened.get(str(key))
        if opened is not None:
            await opened.flush()
        return {"volume": str(key)}

    async def _do_snapshot(self, key: uuid.UUID, env: dict[str, str]) -> dict[str, Any]:
        """The volume as it is now, flushed first, frozen as ``snapshots/<name>`` of its
        owner (an image): ``VOL_SNAPSHOT_NAME``."""
        owner = await self._owner(key)
        name = env.get("VOL_SNAPSHOT_NAME") or ""
        if not name:
            raise Refused("VOL_SNAPSHOT_NAME is empty")
        # Its extents become blocks here, once: the snapshot names them, and so does the
        # volume, until it writes them again (then copied up, as spec §6 says). A volume
        # no client has open is opened for this, as a client would be (one writer).
        opened = self.opened.get(str(key))
        transient = opened is None
        if transient:
            opened = await self.open(str(key))  # None: not attached on this node
        if opened is not None:
            try:
                await opened.flush()
                await opened.device.seal()
            finally:
                if transient:
                    await opened.close()
        snapshot, image = await self.volumes.snapshot(owner, key, name)
        return {"volume": str(key), "snapshot": str(snapshot.id), "image": str(image.id)}

    async def _do_setinfo(self, key: uuid.UUID, env: dict[str, str]) -> dict[str, Any]:
        """Ganeti's metadata (``originstname+<instance>``) is not kept: nefos knows which
        server a volume is attached to from its own records. The volume must exist."""
        await self._owner(key)
        log.info("%s: Ganeti metadata %r", key, env.get("VOL_METADATA", ""))
        return {"volume": str(key)}

    async def _do_verify(self, key: uuid.UUID, env: dict[str, str]) -> dict[str, Any]:
        for name in PARAMETERS:
            if name != "owner" or env.get("EXTP_OWNER"):
                _uuid_param(env, f"EXTP_{name.upper()}")
        return {"volume": str(key)}

    async def _do_info(self, key: uuid.UUID, env: dict[str, str]) -> dict[str, Any]:
        owner = await self._owner(key)
        volume = await self.volumes.get(owner, key)
        opened = self.opened.get(str(key))
        return {
            "volume": str(key),
            "owner": owner,
            "size": volume.size,
            "attached": self._attached(str(key)) is not None,
            "open": opened is not None,
            "dirty": 0 if opened is None else len(opened.device.dirty),
        }


def _mebibytes(env: dict[str, str], name: str) -> int:
    try:
        size = int(env[name]) * MiB
    except (KeyError, ValueError):
        raise Refused(f"{name} is not a size in MiB: {env.get(name)!r}") from None
    if size <= 0:
        raise Refused(f"{name} must be more than 0")
    return size


def _uuid_param(env: dict[str, str], name: str) -> uuid.UUID | None:
    value = env.get(name) or None
    if value is None:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        raise Refused(f"{name} is not an id: {value!r}") from None


def _trusted(sock: socket.socket | None) -> bool:
    if sock is None:
        return False
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _, uid, _ = struct.unpack("3i", creds)
    return uid in (0, os.geteuid())
