"""Volumes attached to servers: the volume side of an attach and a detach.

Compute drives them (``nefos.compute.volumes``): inside its own transaction, with the
server row locked, it begins an attach or a detach here, submits the backend job (a
disk hotplug), and when the job's event arrives it ends the step here, done or failed.
The volume's status moves only by ``nefos.volume.states.MOVES``:

    available --begin--> attaching --done--> in-use --begin--> detaching --done--> available
                          (failed: back to available)           (failed: back to in-use)

The attachment row (:class:`VolumeAttachment`) lives from the start of the attach to
the end of the detach, so the server document and the volume document show the same
attachment, with one id (Cinder's ``attachment_id``). A volume is attached to one
server at a time (the row's volume is unique): nefos volumes are not multiattach.

Each function takes the caller's session and changes rows only; rights are the
caller's: another user's volume is NotFound, as in the Block Storage API.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from nefos.core import errors
from nefos.core.db import utcnow
from nefos.volume import states
from nefos.volume.models import Volume, VolumeAttachment

ROOT_DEVICE = "/dev/vda"  # a server's own disk (its image's, or its root volume)
DEVICES = tuple(f"/dev/vd{letter}" for letter in "bcdefghijklmnopqrstuvwxyz")


@dataclass(frozen=True)
class Attached:
    """One volume of a server, as both documents show it."""

    attachment_id: uuid.UUID
    volume_id: uuid.UUID
    server_id: int
    device: str
    boot_index: int | None
    delete_on_termination: bool
    status: str  # the volume's: attaching, in-use or detaching
    created: dt.datetime
    updated: dt.datetime | None = None  # the volume's last change (its step's start)


def _key(value: uuid.UUID | str) -> uuid.UUID:
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except ValueError:
        raise errors.NotFound(f"Volume {value} could not be found") from None


async def _volume(s: AsyncSession, user: str, volume_id: uuid.UUID | str) -> Volume:
    query = (
        select(Volume)
        .where(Volume.id == _key(volume_id), Volume.user_id == user)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    found = await s.scalar(query)
    if found is None:
        raise errors.NotFound(f"Volume {volume_id} could not be found")
    return found


def _attached(row: VolumeAttachment, volume: Volume) -> Attached:
    return Attached(
        row.id,
        row.volume_id,
        row.server_id,
        row.device,
        row.boot_index,
        volume.delete_on_termination,
        volume.status,
        row.created,
        volume.updated,
    )


async def begin_attach(
    s: AsyncSession,
    user: str,
    volume_id: uuid.UUID | str,
    server_id: int,
    boot_index: int | None = None,
    delete_on_termination: bool | None = None,
) -> Attached:
    """The volume (``user``'s) starts attaching to the server as its next free device
    (``/dev/vda`` for a root volume, ``boot_index`` 0). A volume that is not
    available is refused as Nova refuses it (Cinder's reserve fails: 400).
    ``delete_on_termination``: set it on the volume (None: keep its own)."""
    volume = await _volume(s, user, volume_id)
    if volume.status != states.AVAILABLE:
        raise errors.InvalidInput(
            f"Invalid volume: volume {volume.id} status must be available to attach, "
            f"but the current status is {volume.status}"
        )
    if boot_index == 0:
        device = ROOT_DEVICE
    else:
        taken = set(
            await s.scalars(
                select(VolumeAttachment.device).where(VolumeAttachment.server_id == server_id)
            )
        )
        device = next((d for d in DEVICES if d not in taken), "")
        if not device:
            raise errors.InvalidInput(f"Server {server_id} has no free device for a volume")
    if delete_on_termination is not None:
        volume.delete_on_termination = delete_on_termination
    row = VolumeAttachment(
        volume_id=volume.id,
        server_id=server_id,
        device=device,
        boot_index=boot_index,
        created=utcnow(),
    )
    s.add(row)
    states.move(volume, "attach", "begin")
    await s.flush()
    return _attached(row, volume)


async def begin_detach(
    s: AsyncSession, user: str, server_id: int, volume_id: uuid.UUID | str
) -> Attached:
    """The volume starts detaching from the server. Not attached to it: NotFound, as
    Nova says; its root volume: InvalidInput; attaching or detaching: Conflict."""
    key = _key(volume_id)
    row = await s.scalar(
        select(VolumeAttachment).where(
            VolumeAttachment.server_id == server_id, VolumeAttachment.volume_id == key
        )
    )
    if row is None:
        raise errors.NotFound(f"Volume {volume_id} is not attached to server {server_id}")
    volume = await _volume(s, user, key)
    if row.boot_index == 0:
        raise errors.InvalidInput("Cannot detach a root device volume")
    if not states.move(volume, "detach", "begin"):
        raise errors.Conflict(f"Cannot detach volume {volume.id} while it is {volume.status}")
    return _attached(row, volume)


async def end(s: AsyncSession, action: str, server_id: int, volume_id: uuid.UUID, ok: bool) -> bool:
    """A backend job that attached or detached the volume ended: the volume moves on
    (``ok``) or back. Returns whether anything changed (False: a repeated event, or a
    volume no longer attached to this server)."""
    row = await s.scalar(
        select(VolumeAttachment).where(
            VolumeAttachment.server_id == server_id, VolumeAttachment.volume_id == volume_id
        )
    )
    volume = await s.get(Volume, volume_id, with_for_update=True, populate_existing=True)
    if row is None or volume is None:
        return False
    if not states.move(volume, action, "done" if ok else "failed"):
        return False
    if volume.status == states.AVAILABLE:  # a detach done, or an attach that failed
        await s.delete(row)
    return True


async def at_disk_index(s: AsyncSession, server_id: int, index: int) -> uuid.UUID | None:
    """The volume that is the server's Ganeti disk ``index``, for a job that names it
    so. The volume detaching, if only one is; otherwise the instance's disks are in
    the order they were attached (an add appends, a detach closes the gap), after the
    server's own disk when it has no root volume, as the attachments were made."""
    rows = (
        await s.execute(
            select(VolumeAttachment.volume_id, VolumeAttachment.boot_index, Volume.status)
            .join(Volume, Volume.id == VolumeAttachment.volume_id)
            .where(VolumeAttachment.server_id == server_id)
            .order_by(VolumeAttachment.created, VolumeAttachment.id)
        )
    ).all()
    detaching = [volume for volume, _, status in rows if status == states.DETACHING]
    if len(detaching) == 1:
        return detaching[0]
    own_disk = 0 if any(boot == 0 for _, boot, _ in rows) else 1
    position = index - own_disk
    return rows[position][0] if 0 <= position < len(rows) else None


async def settle(
    s: AsyncSession, server_id: int, volume_id: uuid.UUID, present: bool
) -> str | None:
    """The reconciler found the server's instance with the volume's disk (``present``)
    or without it, and no event will say so: the volume takes the status that follows
    (``states.seen_on_backend``), and its attachment ends if the disk is not there.
    Returns the new status, None if nothing changed (it moved meanwhile). A root
    volume is never detached here: a server without its root disk is the operator's."""
    row = await s.scalar(
        select(VolumeAttachment).where(
            VolumeAttachment.server_id == server_id, VolumeAttachment.volume_id == volume_id
        )
    )
    volume = await s.get(Volume, volume_id, with_for_update=True, populate_existing=True)
    if row is None or volume is None or (row.boot_index == 0 and not present):
        return None
    wanted = states.seen_on_backend(volume.status, present)
    if wanted is None:
        return None
    volume.status = wanted
    volume.updated = utcnow()
    if wanted == states.AVAILABLE:
        await s.delete(row)
    return wanted


async def release_server(s: AsyncSession, server_id: int) -> list[tuple[str, uuid.UUID]]:
    """The server is gone: each of its volumes is detached (available again). Returns
    the (owner, id) of those to delete with it (``delete_on_termination``), for the
    caller to delete once this transaction commits (a delete settles quota)."""
    rows = list(
        await s.scalars(select(VolumeAttachment).where(VolumeAttachment.server_id == server_id))
    )
    doomed = []
    for row in rows:
        volume = await s.get(Volume, row.volume_id, with_for_update=True, populate_existing=True)
        if volume is None:
            continue
        volume.status = states.AVAILABLE  # whatever step it was in: the server is gone
        if volume.delete_on_termination:
            doomed.append((volume.user_id, volume.id))
    await s.execute(delete(VolumeAttachment).where(VolumeAttachment.server_id == server_id))
    return doomed


async def of_servers(s: AsyncSession, server_ids: Iterable[int]) -> dict[int, list[Attached]]:
    """Each server's volumes, root first then by device, in one query."""
    ids = list(server_ids)
    found: dict[int, list[Attached]] = {i: [] for i in ids}
    if not ids:
        return found
    rows = await s.execute(
        select(VolumeAttachment, Volume)
        .join(Volume, Volume.id == VolumeAttachment.volume_id)
        .where(VolumeAttachment.server_id.in_(ids))
        .order_by(VolumeAttachment.server_id, VolumeAttachment.device)
    )
    for row, volume in rows.all():
        found[row.server_id].append(_attached(row, volume))
    return found


async def of_volumes(
    s: AsyncSession, volume_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, list[Attached]]:
    """Each volume's attachment (none or one), in one query."""
    ids = list(volume_ids)
    found: dict[uuid.UUID, list[Attached]] = {i: [] for i in ids}
    if not ids:
        return found
    rows = await s.execute(
        select(VolumeAttachment, Volume)
        .join(Volume, Volume.id == VolumeAttachment.volume_id)
        .where(VolumeAttachment.volume_id.in_(ids))
    )
    for row, volume in rows.all():
        found[row.volume_id].append(_attached(row, volume))
    return found
