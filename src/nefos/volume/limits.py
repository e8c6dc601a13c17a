"""Cinder's limits and quota set, read from nefos's quotas.

Synnefo holds one resource for disks, ``cyclades.disk`` (bytes; server disks and
volumes alike), and counts neither volumes nor snapshots; snapshots are files and
hold ``pithos.diskspace`` with the rest of the user's files. So Cinder's gigabytes are
``cyclades.disk`` in GiB, the counts are unlimited (Cinder's -1) with the caller's
real numbers as their use, and what nefos has none of (backups, groups) is 0.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from nefos.quotas.models import NO_SOURCE
from nefos.quotas.service import Quotas, project_holder, user_holder
from nefos.volume.service import DISK, MAX_SIZE, Volumes

GiB = 1 << 30
UNLIMITED = -1


def gigabytes(size: int) -> int:
    """Bytes as Cinder's whole GiB, rounded up (a volume made from a 5 MiB image is
    1 GiB to Cinder, as it would have to be)."""
    return -(-size // GiB)


@dataclass(frozen=True)
class QuotaItem:
    limit: int
    in_use: int
    reserved: int  # taken by commissions not yet decided


async def absolute(quotas: Quotas, volumes: Volumes, user: str, project: str) -> dict[str, int]:
    """The caller's absolute limits in the token's project (``/limits``)."""
    holdings = await quotas.holdings([user_holder(user)], [project_holder(project)])
    disk = next((h for h in holdings if h.resource == DISK), None)
    count_volumes, count_snapshots = await volumes.counts(user)
    return {
        "maxTotalVolumeGigabytes": 0 if disk is None else disk.limit // GiB,
        "totalGigabytesUsed": 0 if disk is None else gigabytes(disk.usage_max),
        "maxTotalVolumes": UNLIMITED,
        "totalVolumesUsed": count_volumes,
        "maxTotalSnapshots": UNLIMITED,
        "totalSnapshotsUsed": count_snapshots,
        "maxTotalBackups": 0,
        "totalBackupsUsed": 0,
        "maxTotalBackupGigabytes": 0,
        "totalBackupGigabytesUsed": 0,
    }


async def quota_set(quotas: Quotas, volumes: Volumes, project: uuid.UUID) -> dict[str, QuotaItem]:
    """The project's Cinder quota set; a project without holdings reads as 0 gigabytes.
    Snapshots in use are those of the project's volumes (a snapshot is a file of its
    owner, not a thing of a project)."""
    holdings = await quotas.holdings([project_holder(project)], [NO_SOURCE])
    disk = next((h for h in holdings if h.resource == DISK), None)
    count_volumes, count_snapshots = await volumes.project_counts(str(project))
    items = {
        "gigabytes": QuotaItem(0, 0, 0)
        if disk is None
        else QuotaItem(
            disk.limit // GiB,
            gigabytes(disk.usage_min),
            gigabytes(disk.usage_max) - gigabytes(disk.usage_min),
        ),
        "volumes": QuotaItem(UNLIMITED, count_volumes, 0),
        "snapshots": QuotaItem(UNLIMITED, count_snapshots, 0),
        "per_volume_gigabytes": QuotaItem(MAX_SIZE // GiB, 0, 0),
        "backups": QuotaItem(0, 0, 0),
        "backup_gigabytes": QuotaItem(0, 0, 0),
        "groups": QuotaItem(0, 0, 0),
    }
    return items
