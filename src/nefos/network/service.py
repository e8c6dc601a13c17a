"""Networking (Cyclades): one entry point for the API, the server wiring and the CLI.

:class:`NetworkService` builds the collaborators and hands their operations on under
one name; the work lives in:

* ``networks``: networks by flavor, the private network quota, MAC prefix and bridge pools;
* ``subnets``: IPv4 subnets and their allocation ranges, IPv6 subnets by SLAAC;
* ``ports``: ports, their MACs and fixed IPs;
* ``floating``: floating IPs and their quota;
* ``pools``: the bitmaps every allocation goes through;
* ``access``: who sees and changes what;
* ``security_groups``: the firewall profiles as Neutron's security groups (a read view);
* ``nics``: servers' NICs: the ports compute makes and releases, floating IPs on servers,
  projects' default networks.

A port with a server's id as ``device_id`` is one of its NICs: creating or deleting
one, or attaching a floating IP to it, is handed to compute (``nics.devices``) as a
NIC change, which becomes a backend job; the port shows BUILD until the job's event
turns it ACTIVE.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from nefos.core import errors
from nefos.core.config import Settings
from nefos.core.db import Database
from nefos.network.access import Caller
from nefos.network.floating import FLOATING_IPS, FloatingIps
from nefos.network.models import Network, Port, Subnet
from nefos.network.networks import PRIVATE_NETWORKS, Networks
from nefos.network.nics import Nics
from nefos.network.ports import Ports
from nefos.network.security_groups import SecurityGroup, groups_of
from nefos.network.subnets import Subnets
from nefos.quotas.models import NO_SOURCE
from nefos.quotas.service import Quotas, project_holder, user_holder

__all__ = ["Caller", "NetworkService", "QuotaItem"]

UNLIMITED = -1


@dataclass(frozen=True)
class QuotaItem:
    limit: int
    used: int
    reserved: int


class NetworkService:
    def __init__(self, db: Database, settings: Settings, quotas: Quotas):
        self.db = db
        self.settings = settings
        self.quotas = quotas
        self.nets = Networks(db, settings, quotas)
        self.subnet_service = Subnets(db, settings, self.nets)
        self.port_service = Ports(db, self.nets)
        self.floating = FloatingIps(db, quotas, self.nets)
        self.nics = Nics(db, settings, self.port_service)

        # Networks.
        self.networks = self.nets.networks
        self.network = self.nets.network
        self.create_network = self.nets.create_network
        self.update_network = self.nets.update_network
        self.delete_network = self.nets.delete_network
        self.reassign_network = self.nets.reassign_network
        self.resize_shared_pool = self.nets.resize_shared_pool
        # Subnets.
        self.subnets = self.subnet_service.subnets
        self.subnet = self.subnet_service.subnet
        self.create_subnet = self.subnet_service.create_subnet
        self.update_subnet = self.subnet_service.update_subnet
        self.delete_subnet = self.subnet_service.delete_subnet
        self.add_range = self.subnet_service.add_range
        # Ports.
        self.ports = self.port_service.ports
        self.port = self.port_service.port
        self.update_port = self.port_service.update_port
        # Floating IPs.
        self.floating_ips = self.floating.floating_ips
        self.floating_ip = self.floating.floating_ip
        self.create_floating_ip = self.floating.create_floating_ip
        self.delete_floating_ip = self.floating.delete_floating_ip
        self.reassign_floating_ip = self.floating.reassign_floating_ip
        self.attach_floating_ip = self.nics.attach_floating_ip
        # A project's default network (the operator's).
        self.project_network = self.nics.project_network
        self.set_project_network = self.nics.set_project_network

    async def create_port(self, caller: Caller, network_id: str, **options: Any) -> Port:
        """:meth:`Ports.create_port`; a port made with a server's id as ``device_id``
        is a NIC added to that server. Such a port is read again after its job is sent,
        so the answer says BUILD: kamaki's ``port create --wait`` waits while the status
        it was given lasts, and a DOWN it never sees again would end its wait at once."""
        port = await self.port_service.create_port(caller, network_id, **options)
        if port.device_id:
            _, nic = await self.nics.port_nic(str(port.id))
            await self.nics.notify("add", nic, port)
            port = await self.port_service.port(caller, str(port.id))
        return port

    async def delete_port(self, caller: Caller, port_id: str) -> None:
        """:meth:`Ports.delete_port`; a server's port goes as a NIC removed from it."""
        port = await self.port_service.port(caller, port_id)
        nic = None
        if port.device_id:
            _, nic = await self.nics.port_nic(port_id)
        await self.port_service.delete_port(caller, port_id)
        if nic is not None:
            await self.nics.notify("remove", nic, port)

    def security_groups(self, caller: Caller) -> list[SecurityGroup]:
        """The groups the caller sees: those of the projects they belong to (one per
        firewall profile level; ``nefos.network.security_groups``)."""
        return groups_of(caller.projects)

    async def quota(
        self, caller: Caller, project: str, user: str | None = None
    ) -> dict[str, QuotaItem]:
        """Neutron's quota of a project (or of one member in it, ``user``): networks and
        floating IPs are holdings; subnets and ports have no limit, and show their count;
        routers and subnet pools do not exist here (0)."""
        if not caller.admin and (
            project not in caller.projects or (user is not None and user != caller.user)
        ):
            raise errors.PermissionDenied("You may read only your own quotas")
        holder = project_holder(project) if user is None else user_holder(user)
        source = NO_SOURCE if user is None else project_holder(project)
        found = {h.resource: h for h in await self.quotas.holdings([holder]) if h.source == source}
        items: dict[str, QuotaItem] = {}
        for key, resource in (("network", PRIVATE_NETWORKS), ("floatingip", FLOATING_IPS)):
            holding = found.get(resource)
            items[key] = (
                QuotaItem(0, 0, 0)
                if holding is None
                else QuotaItem(
                    holding.limit, holding.usage_min, holding.usage_max - holding.usage_min
                )
            )
        async with self.db.session() as s:
            ports = select(func.count()).select_from(Port).where(Port.project == project)
            subnets = (
                select(func.count())
                .select_from(Subnet)
                .join(Network, Network.id == Subnet.network_id)
                .where(Network.project == project, ~Network.public)
            )
            if user is not None:
                ports = ports.where(Port.user_id == user)
                subnets = subnets.where(Network.user_id == user)
            items["port"] = QuotaItem(UNLIMITED, await s.scalar(ports) or 0, 0)
            items["subnet"] = QuotaItem(UNLIMITED, await s.scalar(subnets) or 0, 0)
        groups = groups_of([project])
        items["security_group"] = QuotaItem(len(groups), len(groups), 0)
        items["security_group_rule"] = QuotaItem(UNLIMITED, sum(len(g.rules) for g in groups), 0)
        for key in ("subnetpool", "router", "rbac_policy"):
            items[key] = QuotaItem(0, 0, 0)
        return items

    def default_quota(self, items: dict[str, QuotaItem]) -> dict[str, QuotaItem]:
        """What a new user's system project starts with (``[quota_defaults]``)."""
        found = dict(items)
        for key, resource in (("network", PRIVATE_NETWORKS), ("floatingip", FLOATING_IPS)):
            found[key] = QuotaItem(self.quotas.default_limit(resource), 0, 0)
        return found
