"""fsck of what volume maps name besides blocks: their extents (``nefos storage
fsck``; the store's own fsck sees blocks and maps only)."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from nefos.core.db import Database
from nefos.storage.maintenance import Problem
from nefos.storage.stores import BlockStore
from nefos.volume.models import EXTENT_ENTRY, VolumeBlock

EXTENTS = "(volume extents)"  # the path of fsck's problem with them


async def check_extents(db: Database, store: BlockStore) -> list[Problem]:
    """fsck of the extents volume maps name (``nefos storage fsck``; the store's
    fsck sees blocks and maps only): each must be in the store. One a volumed drops
    while this looks (sealed, or written as zeros) is no problem."""
    async with db.session() as s:
        rows = (
            await s.execute(select(VolumeBlock.volume_id, VolumeBlock.hash).where(EXTENT_ENTRY))
        ).all()
    named: dict[uuid.UUID, set[str]] = {}
    for volume_id, name in rows:
        named.setdefault(volume_id, set()).add(name)
    missing = []
    for volume_id, names in named.items():
        stored = set(await store.extent_names(volume_id.hex))
        missing += sorted(names - stored)
    if missing:
        async with db.session() as s:
            still = set(
                await s.scalars(select(VolumeBlock.hash).where(VolumeBlock.hash.in_(missing)))
            )
        missing = [name for name in missing if name in still]
    if not missing:
        return []
    detail = f"{len(missing)} of {len(rows)} extents volume maps name are missing"
    return [Problem(0, EXTENTS, "extents-missing", detail, tuple(missing))]
