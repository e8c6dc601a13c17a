"""What a server holds of its project's quota: one mapping, used by every path.

A server holds ``cyclades.vm``, ``cyclades.total_cpu``, ``cyclades.total_ram`` and
``cyclades.disk`` while it exists, and ``cyclades.cpu`` and ``cyclades.ram`` while it
runs (spec §3.3). Create, the actions (a resize is the difference of two flavors'
charges), the update path and the reconciler all ask :func:`charges` and never spell a
resource themselves, so a new resource (a volume's disk, a network's addresses) is one
line here.

A server whose root disk is a volume (``Server.root_volume``: booted from a volume, or
on the volume disk template) holds no ``cyclades.disk`` of its flavor: the volume holds
its own, so the disk is charged once, as Synnefo charges a server's disk through its
root volume.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy.ext.asyncio import AsyncSession

from nefos.compute.models import Flavor, Server
from nefos.compute.transitions import RUNNING_STATES
from nefos.quotas.service import Charge, charge

CLIENTKEY = "cyclades"  # the quota client that compute's commissions belong to
MiB, GiB = 1 << 20, 1 << 30


def charges(
    flavor: Flavor, running: bool, existing: bool = True, root_volume: bool = False
) -> dict[str, int]:
    """What a server of ``flavor`` holds: while it exists (``existing``) and while it
    runs (``running``); both False is nothing. ``root_volume``: its disk is a volume,
    which holds ``cyclades.disk`` itself."""
    found: dict[str, int] = {}
    if existing:
        found.update(
            {
                "cyclades.vm": 1,
                "cyclades.total_cpu": flavor.vcpus,
                "cyclades.total_ram": flavor.ram * MiB,
            }
        )
        if not root_volume:
            found["cyclades.disk"] = flavor.disk * GiB
    if running:
        found.update({"cyclades.cpu": flavor.vcpus, "cyclades.ram": flavor.ram * MiB})
    return found


def difference(after: Mapping[str, int], before: Mapping[str, int]) -> dict[str, int]:
    """What changes from holding ``before`` to holding ``after`` (zeros left out)."""
    delta = {r: after.get(r, 0) - before.get(r, 0) for r in {*before, *after}}
    return {r: quantity for r, quantity in sorted(delta.items()) if quantity}


def provisions(user: str, project: str, resources: Mapping[str, int], sign: int) -> list[Charge]:
    """The provisions of a commission that charges (``sign`` +1) or releases (-1)
    ``resources`` to ``user`` in ``project``."""
    found: list[Charge] = []
    for resource, quantity in resources.items():
        found += charge(user, project, resource, sign * quantity)
    return found


async def held(s: AsyncSession, server: Server) -> dict[str, int]:
    """What a server in its current state holds of its project's quota."""
    if server.deleted:
        return {}
    flavor = await s.get(Flavor, server.flavor_id)
    assert flavor is not None
    running = server.operstate in RUNNING_STATES
    return charges(flavor, running=running, root_volume=server.root_volume)
