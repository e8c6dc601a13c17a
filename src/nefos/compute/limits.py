"""Nova's absolute limits (``GET /limits``): what a caller may hold in its token's
project and holds now, and the per-server limits the deployment's settings set.

The quota numbers are the caller's holdings in the project, in the units Nova counts
(RAM in MiB); a resource the caller holds nothing of there reads 0 of 0.
"""

from __future__ import annotations

from dataclasses import dataclass

from nefos.compute.charges import MiB
from nefos.compute.checks import MAX_PERSONALITY, MAX_PERSONALITY_SIZE
from nefos.core.config import Settings
from nefos.quotas.service import Quotas


@dataclass(frozen=True)
class AbsoluteLimits:
    max_instances: int
    instances_used: int
    max_cores: int
    cores_used: int
    max_ram_mib: int
    ram_used_mib: int
    max_server_meta: int
    max_image_meta: int
    max_personality: int
    max_personality_size: int
    max_keypairs: int


class Limits:
    def __init__(self, settings: Settings, quotas: Quotas) -> None:
        self.settings = settings
        self.quotas = quotas

    async def limits(self, user: str, project: str) -> AbsoluteLimits:
        holdings = await self.quotas.holdings([f"user:{user}"])
        mine = {h.resource: h for h in holdings if h.source == f"project:{project}"}

        def limit(resource: str, unit: int = 1) -> tuple[int, int]:
            holding = mine.get(resource)
            if holding is None:
                return 0, 0
            return holding.limit // unit, holding.usage_max // unit

        instances, instances_used = limit("cyclades.vm")
        cores, cores_used = limit("cyclades.total_cpu")
        ram, ram_used = limit("cyclades.total_ram", MiB)
        return AbsoluteLimits(
            max_instances=instances,
            instances_used=instances_used,
            max_cores=cores,
            cores_used=cores_used,
            max_ram_mib=ram,
            ram_used_mib=ram_used,
            max_server_meta=self.settings.compute.max_metadata,
            max_image_meta=self.settings.limits.image_properties,
            max_personality=MAX_PERSONALITY,
            max_personality_size=MAX_PERSONALITY_SIZE,
            max_keypairs=self.settings.compute.max_keypairs,
        )
