"""Floating IPs: public addresses a project holds, charged as ``cyclades.floating_ip``.

A floating IP is an address of a public network marked as a floating IP pool; with no
network named, the first such network (oldest first) with a free address gives it, and
none left is a 409. It is attached by creating a port with it (``nefos.network.ports``);
it cannot be released while attached.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from nefos.core import errors
from nefos.core.db import Database
from nefos.network import pools
from nefos.network.access import Caller, floating_ips_seen, may_change, parse_id
from nefos.network.models import IpAddress, Network
from nefos.network.networks import CLIENTKEY, Networks, issue_explained, reassign, where
from nefos.network.subnets import ip_pools, parse_address
from nefos.quotas.serials import settled
from nefos.quotas.service import Quotas, charge

FLOATING_IPS = "cyclades.floating_ip"
FLOATING_FILTERS = {
    "id": IpAddress.id,
    "floating_network_id": IpAddress.network_id,
    "floating_ip_address": IpAddress.address,
    "port_id": IpAddress.port_id,
    "tenant_id": IpAddress.project,
    "project_id": IpAddress.project,
}


class FloatingIps:
    def __init__(self, db: Database, quotas: Quotas, networks: Networks):
        self.db = db
        self.quotas = quotas
        self.networks = networks

    async def floating_ips(
        self, caller: Caller, filters: Mapping[str, Sequence[str]] | None = None
    ) -> list[IpAddress]:
        query = (
            select(IpAddress)
            .where(IpAddress.floating, floating_ips_seen(caller))
            .options(selectinload(IpAddress.port))
        )
        query = where(query, FLOATING_FILTERS, filters or {})
        async with self.db.session() as s:
            return list(await s.scalars(query.order_by(IpAddress.created, IpAddress.id)))

    async def floating_ip(self, caller: Caller, ip_id: str) -> IpAddress:
        async with self.db.session() as s:
            return await self._seen(s, caller, ip_id)

    async def _seen(
        self, s: AsyncSession, caller: Caller, ip_id: str, lock: bool = False
    ) -> IpAddress:
        key = parse_id(ip_id, "Floating IP")
        query = (
            select(IpAddress)
            .where(IpAddress.id == key, IpAddress.floating, floating_ips_seen(caller))
            .options(selectinload(IpAddress.port))
            .execution_options(populate_existing=True)
        )
        found = await s.scalar(query.with_for_update() if lock else query)
        if found is None:
            raise errors.NotFound(f"Floating IP {ip_id} could not be found")
        return found

    async def create_floating_ip(
        self,
        caller: Caller,
        network_id: str | None = None,
        address: str | None = None,
        project: str | None = None,
    ) -> IpAddress:
        project = caller.project_for(project)
        wanted = None if address is None else parse_address(address, "floating_ip_address")
        if wanted is not None and network_id is None:
            raise errors.InvalidInput("A floating_ip_address needs its floating_network_id")
        async with settled(self.db, self.quotas, CLIENTKEY) as settlement:
            await issue_explained(
                settlement,
                self.quotas,
                charge(caller.user, project, FLOATING_IPS, 1),
                "cyclades floating ip create",
            )
            async with settlement.transaction() as s:
                if network_id is not None:
                    network = await self.networks.seen(s, caller, network_id)
                    if not (network.public and network.floating_ip_pool):
                        raise errors.InvalidInput(f"Network {network_id} is not a floating IP pool")
                    candidates = [network]
                else:
                    candidates = list(
                        await s.scalars(
                            select(Network)
                            .where(Network.public, Network.floating_ip_pool)
                            .options(selectinload(Network.subnets))
                            .order_by(Network.created, Network.id)
                        )
                    )
                row = await self._take(s, caller, project, candidates, wanted)
        return await self.floating_ip(caller, str(row.id))

    async def _take(
        self,
        s: AsyncSession,
        caller: Caller,
        project: str,
        candidates: list[Network],
        wanted: ipaddress.IPv4Address | ipaddress.IPv6Address | None,
    ) -> IpAddress:
        for network in candidates:
            v4 = [sub for sub in network.subnets if sub.ip_version == 4]
            locked = await ip_pools(s, [sub.id for sub in v4])
            for subnet in v4:
                if wanted is not None:
                    if wanted not in ipaddress.ip_network(subnet.cidr):
                        continue
                    pools.take_ip(locked[subnet.id], wanted, str(network.id))
                    address = str(wanted)
                else:
                    try:
                        address = pools.allocate_ip(locked[subnet.id], str(network.id))
                    except pools.Exhausted:
                        continue
                row = IpAddress(
                    network_id=network.id,
                    subnet_id=subnet.id,
                    address=address,
                    ip_version=4,
                    floating=True,
                    user_id=caller.user,
                    project=project,
                )
                s.add(row)
                await s.flush()
                return row
            if wanted is not None:
                raise errors.InvalidInput(
                    f"IP address {wanted} is not a valid IP for network {network.id}"
                )
        if len(candidates) == 1:
            raise pools.Exhausted(f"No more IP addresses available on network {candidates[0].id}")
        raise pools.Exhausted("No more IP addresses available in any floating IP pool")

    async def delete_floating_ip(self, caller: Caller, ip_id: str) -> None:
        found = await self.floating_ip(caller, ip_id)
        may_change(caller, found.user_id, f"floating IP {ip_id}")
        async with settled(self.db, self.quotas, CLIENTKEY) as settlement:
            await settlement.issue(
                charge(found.user_id, found.project, FLOATING_IPS, -1),
                name=f"cyclades floating ip delete {found.id}",
            )
            async with settlement.transaction() as s:
                row = await self._seen(s, caller, ip_id, lock=True)
                if row.project != found.project:
                    raise errors.Conflict(f"Floating IP {ip_id} changed meanwhile; try again")
                if row.port_id is not None:
                    raise errors.Conflict(f"Floating IP {ip_id} is in use by port {row.port_id}")
                locked = await ip_pools(s, [row.subnet_id])
                pools.release_ip(locked[row.subnet_id], ipaddress.ip_address(row.address))
                await s.delete(row)

    async def reassign_floating_ip(
        self, caller: Caller, ip_id: str, project: str, shared_to_project: bool | None = None
    ) -> IpAddress:
        found = await self.floating_ip(caller, ip_id)
        may_change(caller, found.user_id, f"floating IP {ip_id}")

        async def row(s: AsyncSession) -> IpAddress:
            return await self._seen(s, caller, ip_id, lock=True)

        await reassign(
            self.db, self.quotas, caller, found, row, project, shared_to_project,
            FLOATING_IPS, "floating IP",
        )  # fmt: skip
        return await self.floating_ip(caller, ip_id)
