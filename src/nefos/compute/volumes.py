"""A server's volumes on the compute side: ``os-volume_attachments`` and what the
update path does to volumes.

An attach or a detach is a job of no task, as a NIC change is (``nefos.compute.nics``):
the server keeps its state while the volume moves through its own states
(``nefos.volume.attachments``). The effect path begins the step with the server row
locked, so that a delete cannot slip in between, then submits the disk record
(``AttachDisk``, ``DetachDisk``: a disk hotplug on Ganeti, a record on the embedded
backend). The job's event ends the step (:meth:`ServerVolumes.apply_disks`); a backend
that refuses the job ends it at once as failed, and the user is told in a diagnostic.
When the server goes, its volumes are detached and those marked
``delete_on_termination`` are deleted (:meth:`ServerVolumes.server_gone`).

A server's root disk is a volume when its create says so (``block_device_mapping_v2``)
and whenever its flavor is on the volume disk template (``ext_nefos``, the disk
template of the volume type, ``nefos.volume.types``): then a plain create boots from a
new volume cloned from the image's map (:func:`cloned_root`), so every such server
spawns with no image data copied, as Synnefo's ``ext_archipelago`` servers do.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from nefos.backends.base import disk_name, instance_name, volume_id_of
from nefos.backends.ops import AttachDisk, DetachDisk, Op
from nefos.compute.checks import parse_id
from nefos.compute.clusters import Clusters
from nefos.compute.models import Backend, Flavor, Server
from nefos.compute.transitions import diagnostic
from nefos.compute.views import ServerReader
from nefos.core import errors
from nefos.core.db import Database
from nefos.volume import attachments
from nefos.volume.attachments import Attached
from nefos.volume.details import Details
from nefos.volume.models import Volume
from nefos.volume.service import Volumes
from nefos.volume.types import TYPES

log = logging.getLogger("nefos.compute")

MiB, GiB = 1 << 20, 1 << 30


@dataclass(frozen=True)
class BootVolume:
    """A server's root disk as a volume (``block_device_mapping_v2``, boot index 0): a
    new volume made from an image or a snapshot (``size`` bytes, None: the source's),
    or an existing volume of the caller's. ``delete_on_termination`` None: keep what
    the volume says (a new volume: False)."""

    source: str  # image, snapshot or volume
    source_id: str
    size: int | None = None
    delete_on_termination: bool | None = None


def on_volume_template(flavor: Flavor) -> bool:
    """Whether servers of the flavor live on a volume type's disk template, whose disks
    are nefos volumes (``ext_nefos``)."""
    return any(flavor.disk_template == found.disk_template for found in TYPES)


def cloned_root(flavor: Flavor, image_id: str) -> BootVolume | None:
    """The root volume a plain create gets on a volume disk template flavor: a clone of
    the image's map of the flavor's disk, which goes with its server (Synnefo's root
    volume of ``flavor.disk`` GiB, spec §2.2). None: the server has its own disk."""
    if not on_volume_template(flavor):
        return None
    return BootVolume("image", image_id, size=flavor.disk * GiB, delete_on_termination=True)


def disk_params(
    volume_id: uuid.UUID, size: int, provider: str, origin: str | None = None
) -> dict[str, object]:
    """Ganeti's parameters of the disk that is this volume (``size`` in bytes), served
    by nefos's ExtStorage ``provider`` (``compute.volume_provider``). ``origin``: the
    image or snapshot a root volume was cloned from (Synnefo's clone providers get it;
    the ``nefos`` provider finds the volume by ``volume`` and only reads ``origin`` for
    a volume it must make, which also needs an ``owner``)."""
    found: dict[str, object] = {
        "name": disk_name(volume_id),
        "size": -(-size // MiB),
        "provider": provider,
        "volume": str(volume_id),
        "access": "userspace",
    }
    if origin:
        found["origin"] = origin
    return found


def disk_changes(fields: dict) -> list[tuple[str, uuid.UUID | int]]:
    """The volumes a job attached or detached, from its ``job_fields["disks"]``: a
    modify's ``[["add", -1, {"name": "nefos-vol-<id>", ...}]]`` or ``[["detach", NAME,
    {}]]``, or a create's disks ``[{"name": "nefos-vol-<id>", ...}]``. Ganeti rewrites a
    detach's disk name into the disk's index before it saves the job, so a detach may
    name its volume by that index (an ``int``: ``ServerVolumes.apply_disks`` finds it)."""
    found: list[tuple[str, uuid.UUID | int]] = []
    for item in fields.get("disks") or []:
        if isinstance(item, dict):  # a create's disk
            volume = volume_id_of(str(item.get("name") or ""))
            if volume is not None:
                item = ["add", -1, item]
        if not isinstance(item, list) or len(item) < 2:
            continue
        params = item[2] if len(item) > 2 and isinstance(item[2], dict) else {}
        action = {"add": "attach", "detach": "detach", "remove": "detach"}.get(item[0])
        if action == "detach" and isinstance(item[1], int) and not isinstance(item[1], bool):
            found.append((action, item[1]))
            continue
        name = str(params.get("name") or "") if item[0] == "add" else str(item[1])
        volume = volume_id_of(name)
        if action is None or volume is None:
            continue
        try:
            found.append((action, uuid.UUID(volume)))
        except ValueError:
            continue
    return found


class ServerVolumes:
    def __init__(
        self,
        db: Database,
        clusters: Clusters,
        reader: ServerReader,
        volumes: Volumes,
        provider: str = "nefos",
    ) -> None:
        self.db = db
        self.provider = provider
        self.clusters = clusters
        self.reader = reader
        self.volumes = volumes

    async def attachments(self, user: str, server_id: int | str) -> list[Attached]:
        """The server's volumes (the caller's server: NotFound otherwise)."""
        view = await self.reader.server(user, server_id)
        return list(view.volumes)

    async def attachment(self, user: str, server_id: int | str, volume_id: str) -> Attached:
        for found in await self.attachments(user, server_id):
            if str(found.volume_id) == volume_id:
                return found
        raise errors.NotFound(f"Volume {volume_id} is not attached to server {server_id}")

    async def prepare_boot(
        self, user: str, project: str, boot: BootVolume
    ) -> tuple[uuid.UUID, str, bool]:
        """Before a create: the root volume, made now from an image or a snapshot (a
        clone of its map: no data copied; charged ``cyclades.disk``, 413 past it), or
        the caller's existing one. Returns its id, the image the server boots (the
        source's), and whether it was made here (so a create refused later deletes it)."""
        if boot.source == "volume":
            volume = await self.volumes.get(user, boot.source_id)
            if not volume.bootable:  # Nova's check; its owner sets it (os-set_bootable)
                raise errors.InvalidInput(f"Block Device {volume.id} is not bootable")
            if volume.source_kind not in ("image", "snapshot"):
                raise errors.InvalidInput(
                    f"Volume {volume.id} was not made from an image: it cannot boot a server"
                )
            return volume.id, volume.source_id, False
        extra = Details(delete_on_termination=bool(boot.delete_on_termination))
        if boot.source == "snapshot":
            made = await self.volumes.create_from_snapshot(
                user, boot.source_id, boot.size, project=project, extra=extra
            )
        else:
            try:
                made = await self.volumes.create_from_image(
                    user, boot.source_id, boot.size, project=project, extra=extra
                )
            except errors.NotFound:
                raise errors.InvalidInput(f"No image {boot.source_id}") from None
        return made.id, made.source_id, True

    async def attach_root(
        self, s: AsyncSession, user: str, server_id: int, volume_id: uuid.UUID, boot: BootVolume
    ) -> dict[str, object]:
        """In the create's transaction: the volume becomes the server's root disk
        (attaching until the build's event); returns its disk parameters for the job."""
        found = await attachments.begin_attach(
            s, user, volume_id, server_id, boot_index=0,
            delete_on_termination=boot.delete_on_termination,
        )  # fmt: skip
        volume = await s.get(Volume, found.volume_id)
        assert volume is not None
        origin = volume.source_id if volume.source_kind in ("image", "snapshot") else None
        return disk_params(volume.id, volume.size, self.provider, origin)

    async def create_image(
        self, user: str, server_id: int | str, name: str, metadata: dict[str, str]
    ) -> str:
        """Nova's ``createImage`` of a server booted from a volume: a snapshot of its root
        volume, which is an image already (``nefos.volume.service.Volumes.snapshot``: the
        map frozen as ``snapshots/<name>``, no data copied, ``pithos.diskspace``
        charged). Returns the image's id. A server on its own disk has no volume to
        snapshot: not supported (NotImplementedYet), said as such."""
        view = await self.reader.server(user, server_id)
        root = next((v for v in view.volumes if v.boot_index == 0), None)
        if root is None:
            raise errors.NotImplementedYet(
                f"createImage of server {view.server.id} is not supported: only a server "
                "booted from a volume (block_device_mapping_v2) can be imaged, by a "
                "snapshot of its root volume; this one runs on its own disk"
            )
        if root.status != "in-use":
            raise errors.Conflict(
                f"Cannot create an image of server {view.server.id} while its root volume "
                f"is {root.status}"
            )
        _, image = await self.volumes.snapshot(
            user, root.volume_id, name, metadata=metadata, force=True
        )
        return str(image.id)

    async def _server(self, s: AsyncSession, user: str, server_id: int | str) -> Server:
        """The caller's server, locked, in a state that takes a disk change."""
        wanted = parse_id(server_id)
        server = None if wanted is None else await s.get(Server, wanted, with_for_update=True)
        if server is None or server.user_id != user or server.deleted:
            raise errors.NotFound(f"No server {server_id}")
        if server.task == "DESTROY":
            raise errors.Conflict(f"Server {server.id} is being deleted")
        if server.operstate not in ("STARTED", "STOPPED") or server.backend_id is None:
            raise errors.Conflict(
                f"Cannot change the volumes of server {server.id} while it is {server.operstate}"
            )
        return server

    async def attach(self, user: str, server_id: int | str, volume_id: str) -> Attached:
        """``os-volume_attachments`` POST: the caller's volume starts attaching to the
        caller's server; the job's event finishes it."""
        async with self.db.transaction() as s:
            server = await self._server(s, user, server_id)
            found = await attachments.begin_attach(s, user, volume_id, server.id)
            volume = await s.get(Volume, found.volume_id)
            assert volume is not None
            size = volume.size
            backend = await s.get(Backend, server.backend_id)
            assert backend is not None
            running = server.operstate == "STARTED"
        params = disk_params(found.volume_id, size, self.provider)
        op = AttachDisk(instance_name(server.id), params, hotplug=running)
        await self._submit(backend, server.id, "attach", found.volume_id, op)
        return found

    async def detach(self, user: str, server_id: int | str, volume_id: str) -> None:
        """``os-volume_attachments`` DELETE: the volume starts detaching."""
        async with self.db.transaction() as s:
            server = await self._server(s, user, server_id)
            found = await attachments.begin_detach(s, user, server.id, volume_id)
            backend = await s.get(Backend, server.backend_id)
            assert backend is not None
            running = server.operstate == "STARTED"
        op = DetachDisk(instance_name(server.id), disk_name(found.volume_id), hotplug=running)
        await self._submit(backend, server.id, "detach", found.volume_id, op)

    async def _submit(
        self, backend: Backend, server_id: int, action: str, volume_id: uuid.UUID, op: Op
    ) -> None:
        try:
            await self.clusters.cluster(backend).submit(op)
        except Exception as exc:  # the cluster refused: the volume goes back, the user is told
            log.warning("backend %s refused a disk job: %s", backend.name, exc)
            async with self.db.transaction() as s:
                await attachments.end(s, action, server_id, volume_id, ok=False)
                text = f"The backend refused to {action} volume {volume_id}: {exc}"
                s.add(diagnostic(server_id, "WARNING", text))
            raise errors.Unavailable(f"The backend refused to {action} the volume") from exc

    # -- the update path ---------------------------------------------------------------------

    async def apply_disks(
        self, s: AsyncSession, server: Server, fields: dict, succeeded: bool, create: bool
    ) -> None:
        """A finished modify or create job: the volumes it attached or detached move on
        (or back, if it failed), inside the event's transaction. A failed create leaves
        its root volume attached to the server in ERROR, as Nova keeps its block device
        mapping: the server's deletion releases it (or deletes it)."""
        if create and not succeeded:
            return
        for action, named in disk_changes(fields):
            volume_id = named
            if isinstance(named, int):
                volume_id = await attachments.at_disk_index(s, server.id, named)
                if volume_id is None:
                    log.warning("server %s: no volume is its disk %d", server.id, named)
                    continue
            moved = await attachments.end(s, action, server.id, volume_id, ok=succeeded)
            if moved and not succeeded:
                s.add(diagnostic(server.id, "WARNING", f"Could not {action} volume {volume_id}"))

    async def server_gone(self, s: AsyncSession, server: Server) -> list[tuple[str, uuid.UUID]]:
        """The server is destroyed: its volumes are detached; returns those to delete
        (``delete_on_termination``) once the event's transaction commits."""
        return await attachments.release_server(s, server.id)

    async def delete_volumes(self, doomed: list[tuple[str, uuid.UUID]]) -> None:
        """Delete the volumes a destroyed server took with it, each as its owner (its
        ``cyclades.disk`` released)."""
        for owner, volume_id in doomed:
            try:
                await self.volumes.delete(owner, volume_id)
            except errors.NefosError as exc:  # already gone, or attached again meanwhile
                log.warning("volume %s not deleted with its server: %s", volume_id, exc.message)
