"""Networks: create by flavor (spec §4.2), read by the caller's rights, rename, reassign
and delete, with the private network quota and the MAC prefix and bridge pools.

A private network holds ``cyclades.network.private`` of its project while it exists;
create and delete pay through a commission settled with the change (``quotas.serials``),
as servers do. Public networks are the operator's and charge nobody.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

from sqlalchemy import Select, delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from nefos.core import errors
from nefos.core.config import Settings
from nefos.core.db import Database, utcnow
from nefos.network import pools
from nefos.network.access import Caller, may_change, networks_seen, parse_id
from nefos.network.flavors import FLAVORS, OWN, POOL, routed_link
from nefos.network.models import IpAddress, Network, Pool, Port, Subnet
from nefos.quotas.serials import Settlement, settled
from nefos.quotas.service import Charge, Quotas, charge

CLIENTKEY = "cyclades"  # the quota client network commissions belong to, as compute's
PRIVATE_NETWORKS = "cyclades.network.private"
MAX_NAME = 255

# Listing filters (Neutron's query parameters) and the columns they compare.
NETWORK_FILTERS = {
    "id": Network.id,
    "name": Network.name,
    "status": Network.state,
    "tenant_id": Network.project,
    "project_id": Network.project,
    "router:external": Network.external_router,
    "type": Network.flavor,
    "public": Network.public,
    "SNF:floating_ip_pool": Network.floating_ip_pool,
}


def check_name(name: object, what: str = "name") -> str:
    if not isinstance(name, str) or len(name) > MAX_NAME:
        raise errors.InvalidInput(f"{what} is text of at most {MAX_NAME} characters")
    return name


def where(query: Select, columns: Mapping[str, object], filters: Mapping[str, Sequence[str]]):  # type: ignore[type-arg]
    """``query`` narrowed by the filters it knows (each a list of accepted values: a
    repeated parameter is an OR, as in Neutron); filters it does not know are ignored."""
    for key, values in filters.items():
        column = columns.get(key)
        if column is None or not values:
            continue
        python_type = column.type.python_type  # type: ignore[attr-defined]
        parsed: list[object] = []
        for value in values:
            if python_type is bool:
                parsed.append(value.lower() in ("true", "1", "yes"))
            elif python_type is int:
                try:
                    parsed.append(int(value))
                except ValueError:
                    raise errors.InvalidInput(f"Invalid value for {key}: {value!r}") from None
            elif python_type is uuid.UUID:  # not device_id: text, a server's id
                try:
                    parsed.append(parse_id(value, key))
                except errors.NotFound:
                    parsed.append(None)  # matches nothing
            else:
                parsed.append(value)
        query = query.where(column.in_([p for p in parsed if p is not None]))  # type: ignore[attr-defined]
    return query


class Networks:
    def __init__(self, db: Database, settings: Settings, quotas: Quotas):
        self.db = db
        self.settings = settings
        self.quotas = quotas

    # -- reading ------------------------------------------------------------------------

    async def networks(
        self, caller: Caller, filters: Mapping[str, Sequence[str]] | None = None
    ) -> list[Network]:
        query = select(Network).where(networks_seen(caller)).options(selectinload(Network.subnets))
        query = where(query, NETWORK_FILTERS, filters or {}).order_by(Network.created, Network.id)
        async with self.db.session() as s:
            return list(await s.scalars(query))

    async def network(self, caller: Caller, network_id: str) -> Network:
        found = await self.seen(None, caller, network_id)
        return found

    async def seen(
        self, s: AsyncSession | None, caller: Caller, network_id: str, lock: bool = False
    ) -> Network:
        """The network if ``caller`` sees it (NotFound otherwise), in session ``s`` so
        subnets, ports and floating IPs change it in their own transaction; ``lock``
        holds the row until that transaction ends."""
        key = parse_id(network_id, "Network")
        query = (
            select(Network)
            .where(Network.id == key, networks_seen(caller))
            .options(selectinload(Network.subnets))
        )
        if lock:
            query = query.with_for_update()
        if s is None:
            async with self.db.session() as own:
                found = await own.scalar(query)
        else:
            found = await s.scalar(query.execution_options(populate_existing=True))
        if found is None:
            raise errors.NotFound(f"Network {network_id} could not be found")
        return found

    # -- changing -----------------------------------------------------------------------

    async def create_network(
        self,
        caller: Caller,
        name: str = "",
        flavor: str | None = None,
        project: str | None = None,
        public: bool = False,
        floating_ip_pool: bool = False,
        shared_to_project: bool = False,
    ) -> Network:
        """Users create private networks of the enabled flavors; administrators any
        flavor, and public networks (a floating IP pool is public)."""
        check_name(name)
        enabled = self.settings.network.enabled_flavors
        flavor = flavor or (enabled[0] if enabled else "MAC_FILTERED")
        if flavor not in FLAVORS:
            raise errors.InvalidInput(f"Invalid network type {flavor!r}: one of {sorted(FLAVORS)}")
        if (public or floating_ip_pool) and not caller.admin:
            raise errors.PermissionDenied("Only administrators create public networks")
        if not caller.admin and flavor not in enabled:
            raise errors.PermissionDenied(f"Networks of type {flavor} are not enabled")
        public = public or floating_ip_pool
        project = caller.project_for(project)
        kind = FLAVORS[flavor]
        conf = self.settings.network
        async with settled(self.db, self.quotas, CLIENTKEY) as settlement:
            if not public:
                await issue_explained(
                    settlement,
                    self.quotas,
                    charge(caller.user, project, PRIVATE_NETWORKS, 1),
                    f"cyclades network create {name}"[:255],
                )
            async with settlement.transaction() as s:
                network = Network(
                    name=name,
                    user_id=caller.user,
                    project=project,
                    shared_to_project=shared_to_project,
                    flavor=flavor,
                    mode=kind.mode,
                    link="",
                    mac_prefix=conf.default_mac_prefix,
                    public=public,
                    floating_ip_pool=floating_ip_pool,
                    external_router=floating_ip_pool,
                )
                s.add(network)
                await s.flush()
                if kind.link == "default":
                    network.link = conf.default_bridge
                elif kind.link == "mac_filtered":
                    network.link = conf.mac_filtered_bridge
                elif kind.link == OWN:
                    network.link = routed_link(network.id)
                else:
                    pool = await self._shared_pool(s, pools.BRIDGE)
                    index = pools.allocate_value(pool, "bridges for PHYSICAL_VLAN networks")
                    network.link = pools.bridge_value(pool, index)
                if kind.mac_prefix == POOL:
                    pool = await self._shared_pool(s, pools.MAC_PREFIX)
                    index = pools.allocate_value(pool, "MAC prefixes for private networks")
                    network.mac_prefix = pools.mac_prefix_value(pool, index)
        return await self.network(caller, str(network.id))

    async def _shared_pool(self, s: AsyncSession, kind: str) -> Pool:
        """The deployment's pool of MAC prefixes or bridges, locked; made at first use
        from the settings."""
        conf = self.settings.network
        query = select(Pool).where(Pool.kind == kind, Pool.subnet_id.is_(None)).with_for_update()
        found = await s.scalar(query.execution_options(populate_existing=True))
        if found is not None:
            return found
        if kind == pools.MAC_PREFIX:
            found = pools.new_mac_prefix_pool(conf.mac_prefix_pool_base, conf.mac_prefix_pool_size)
        else:
            found, _ = pools.new_pool(pools.BRIDGE, conf.bridge_pool_base, conf.bridge_pool_size)
        s.add(found)
        await s.flush()
        return found

    async def resize_shared_pool(self, kind: str, size: int) -> int:
        """Grow or shrink the MAC prefix or bridge pool (not below a value in use);
        returns the values in use."""
        if kind not in (pools.MAC_PREFIX, pools.BRIDGE):
            raise errors.InvalidInput(f"No shared pool {kind!r}")
        async with self.db.transaction() as s:
            pool = await self._shared_pool(s, kind)
            bitmap = pools.Bitmap.of(pool)
            old = bitmap.size
            bitmap.resize(size)
            if kind == pools.MAC_PREFIX:
                for index in range(old, size):
                    if not pools.mac_prefix_usable(pools.mac_prefix_value(pool, index)):
                        bitmap.reserve(index)
            bitmap.store(pool)
            return bitmap.used()

    async def update_network(self, caller: Caller, network_id: str, name: str | None) -> Network:
        """Rename (None keeps the name: Neutron's PUT of other fields, which nefos keeps)."""
        if name is not None:
            check_name(name)
        async with self.db.transaction() as s:
            network = await self.seen(s, caller, network_id, lock=True)
            may_change(caller, network.user_id, f"network {network_id}")
            if name is not None:
                network.name = name
            network.updated = utcnow()
        return await self.network(caller, network_id)

    async def delete_network(self, caller: Caller, network_id: str) -> None:
        """409 while a port or a floating IP is on it; the subnets and their pools go
        with it, its MAC prefix and bridge go back to their pools."""
        network = await self.network(caller, network_id)
        may_change(caller, network.user_id, f"network {network_id}")
        async with settled(self.db, self.quotas, CLIENTKEY) as settlement:
            if not network.public:
                await settlement.issue(
                    charge(network.user_id, network.project, PRIVATE_NETWORKS, -1),
                    name=f"cyclades network delete {network.id}",
                )
            async with settlement.transaction() as s:
                row = await self.seen(s, caller, network_id, lock=True)
                if (row.public, row.project, row.user_id) != (
                    network.public,
                    network.project,
                    network.user_id,
                ):
                    raise errors.Conflict(f"Network {network_id} changed meanwhile; try again")
                in_use = await s.scalar(
                    select(Port.id).where(Port.network_id == row.id).limit(1)
                ) or await s.scalar(
                    select(IpAddress.id).where(IpAddress.network_id == row.id).limit(1)
                )
                if in_use is not None:
                    raise errors.Conflict(
                        f"Unable to complete operation on network {network_id}. "
                        "There are one or more ports or floating IPs still in use on it."
                    )
                await self._release_wiring(s, row)
                await s.execute(delete(Subnet).where(Subnet.network_id == row.id))
                await s.execute(delete(Network).where(Network.id == row.id))

    async def _release_wiring(self, s: AsyncSession, network: Network) -> None:
        kind = FLAVORS.get(network.flavor)
        if kind is None:
            return
        if kind.mac_prefix == POOL:
            pool = await self._shared_pool(s, pools.MAC_PREFIX)
            digits = pool.base.replace(":", "")
            index = int(network.mac_prefix.replace(":", ""), 16) - int(digits, 16)
            pools.release_value(pool, index)
        if kind.link == POOL:
            pool = await self._shared_pool(s, pools.BRIDGE)
            suffix = network.link.removeprefix(pool.base)
            if suffix.isdigit():
                pools.release_value(pool, int(suffix) - 1)

    async def reassign_network(
        self,
        caller: Caller,
        network_id: str,
        project: str,
        shared_to_project: bool | None = None,
    ) -> Network:
        """Move a network to another project of its owner: one commission releases the
        private network quota in the old project and takes it in the new one."""
        network = await self.network(caller, network_id)
        may_change(caller, network.user_id, f"network {network_id}")
        if network.public:
            raise errors.InvalidInput("Public networks belong to no project")

        async def row(s: AsyncSession) -> Network:
            return await self.seen(s, caller, network_id, lock=True)

        await reassign(
            self.db, self.quotas, caller, network, row, project, shared_to_project,
            PRIVATE_NETWORKS, "network",
        )  # fmt: skip
        return await self.network(caller, network_id)


class Reassignable(Protocol):
    """A network or a floating IP: what one project holds of its owner's quota."""

    id: Any
    user_id: str
    project: str
    shared_to_project: bool
    updated: dt.datetime


async def reassign(
    db: Database,
    quotas: Quotas,
    caller: Caller,
    found: Reassignable,
    row: Callable[[AsyncSession], Awaitable[Reassignable]],
    project: Any,
    shared_to_project: bool | None,
    resource: str,
    kind: str,
) -> None:
    """Cyclades's reassign: move ``found`` (a network or floating IP the caller may
    change) to another project of its owner's, with one commission that releases
    ``resource`` in the old project and takes it in the new one; ``row`` reads it again
    locked, and a project changed meanwhile is a conflict, not a double charge."""
    if not isinstance(project, str) or not project:
        raise errors.InvalidInput("Missing 'project' attribute.")
    if not caller.admin and project not in caller.projects:
        raise errors.PermissionDenied(f"You are not a member of project {project}")
    old = found.project
    async with settled(db, quotas, CLIENTKEY) as settlement:
        if project != old:
            await issue_explained(
                settlement,
                quotas,
                charge(found.user_id, old, resource, -1)
                + charge(found.user_id, project, resource, 1),
                f"cyclades {kind.lower()} reassign {found.id}",
            )
        async with settlement.transaction() as s:
            locked = await row(s)
            if locked.project != old:
                raise errors.Conflict(
                    f"{kind[0].upper()}{kind[1:]} {found.id} changed meanwhile; try again"
                )
            locked.project = project
            if shared_to_project is not None:
                locked.shared_to_project = shared_to_project
            locked.updated = utcnow()


async def issue_explained(
    settlement: Settlement, quotas: Quotas, charges: Sequence[Charge], name: str
) -> None:
    """Issue a commission; a refusal says which resource of which project, how much is
    used and of what limit (:meth:`Quotas.explained`), never a holder's raw id."""
    try:
        await settlement.issue(charges, name=name)
    except errors.OverQuota as exc:
        raise await quotas.explained(exc) from None
