"""Volume types: which disk template a volume lives on (Cyclades's ``VolumeType``).

Synnefo ties a type to a Ganeti disk template, and only ``ext_*`` templates (its
ExtStorage providers, Archipelago's among them) make disks that can be detached and
snapshotted; a volume of another type exists only as a server's disk (spec §2.5, §6).
A nefos volume is always a map over the block store, which Ganeti reaches through the
``nefos`` ExtStorage provider (``ext_nefos``), so that is the one type this API makes
volumes of. Server disks on Ganeti's own templates (``file``, ``drbd``...) are not
volumes of this API until the compute integration makes them so.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from nefos.core import errors


@dataclass(frozen=True)
class VolumeType:
    id: str
    name: str
    disk_template: str
    description: str

    @property
    def detachable(self) -> bool:
        return self.disk_template.startswith("ext_")

    @property
    def extra_specs(self) -> dict[str, str]:
        """Cinder's extra specs, carrying Synnefo's two fields."""
        return {
            "SNF:disk_template": self.disk_template,
            "SNF:detachable": str(self.detachable).lower(),
        }


NEFOS = VolumeType(
    id=str(uuid.uuid5(uuid.NAMESPACE_URL, "nefos:volume-type:ext_nefos")),
    name="nefos",
    disk_template="ext_nefos",
    description="Copy-on-write maps over the block store (Archipelago's model)",
)
TYPES: tuple[VolumeType, ...] = (NEFOS,)
DEFAULT = NEFOS


def find_type(ref: str) -> VolumeType:
    """A type by id or by name, as Cinder takes ``volume_type``; NotFound otherwise."""
    for volume_type in TYPES:
        if ref in (volume_type.id, volume_type.name):
            return volume_type
    raise errors.NotFound(f"Volume type {ref} could not be found")
