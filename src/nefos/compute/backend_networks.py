"""Networks on backends: made lazily where a server first needs them, removed when unused.

A nefos network reaches a cluster as a cluster network named ``nefos-net-<id>`` (its
subnets, gateways, the MAC prefix of a MAC-filtered network, and the tags the node
scripts read, docs/network.md "Ganeti"), connected to the node groups in its mode on
its link. Each (network, backend) has one :class:`BackendNetwork` row:

    removed --ensure--> pending --connect job succeeded--> active
    active --no NIC there uses it--> removing --removal succeeded--> removed

:meth:`BackendNetworks.ensure` runs before a job that puts a NIC on the network (a
server's create, a NIC added): it submits the add and connect jobs if the network is
not there, and returns the jobs the NIC's job must wait for (Ganeti's ``depends``), so
the instance never reaches the cluster before its networks. The states move on the
network jobs' events (:meth:`BackendNetworks.apply_event`), on instance events that show
a NIC on the network (it must be active), and on the reconciler's findings.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from nefos.backends.base import (
    FINAL,
    OP_NETWORK_CONNECT,
    OP_NETWORK_REMOVE,
    SUCCESS,
    NetworkSpec,
    firewall_tag,
    network_id_of,
    network_name,
    nic_name,
)
from nefos.backends.ops import ConnectNetwork, CreateNetwork, RemoveNetwork
from nefos.compute.clusters import Clusters
from nefos.compute.models import Backend, BackendNetwork, Server
from nefos.core import errors
from nefos.core.bus import Message
from nefos.core.db import Database, utcnow
from nefos.network.flavors import FLAVORS, POOL
from nefos.network.models import Network, Port
from nefos.network.nics import Nic
from nefos.network.security_groups import LEVELS

log = logging.getLogger("nefos.compute")

PENDING, ACTIVE, REMOVING, REMOVED = "pending", "active", "removing", "removed"
# A removal's disconnect locks the node group's instances optimistically: an instance
# made or removed meanwhile (the network's last servers going together) fails it, and
# Ganeti says to retry. A failed removal is tried again this many times in a row.
REMOVAL_RETRIES = 5
# Synnefo's firewallProfile values and the levels the node scripts apply (spec §4.4).
FIREWALL_LEVELS = LEVELS  # one table: the node's levels, and the security groups' names


def firewall_tags(nics: Iterable[Nic]) -> list[str]:
    """The instance tags that give each NIC its firewall profile."""
    return [firewall_tag(nic_name(n.port_id), FIREWALL_LEVELS[n.firewall]) for n in nics]


def nic_params(nic: Nic) -> dict[str, Any]:
    """Ganeti's parameters of a NIC: its name, its network's cluster name, its MAC and
    its first fixed IPv4 address (a NIC made to hold a floating IP: that one). Mode and
    link come from the network's connection, as Ganeti wants when a NIC names one."""
    ipv4 = [a for a in nic.addresses if a.version == 4]
    fixed = next((a.address for a in ipv4 if not a.floating), None)
    floating = next((a.address for a in ipv4 if a.floating), None)
    return {
        "name": nic_name(nic.port_id),
        "network": network_name(nic.network_id),
        "ip": fixed or floating,
        "mac": nic.mac,
    }


def three_octets(prefix: str) -> str:
    """Ganeti wants a MAC prefix of three octets; nefos's pool gives prefixes of five
    hex digits (``aa:00:1``, Synnefo's, for the mask ff:ff:f0:00:00:00): padded with a
    zero digit (``aa:00:10``), whose first five digits are still the prefix."""
    digits = prefix.replace(":", "").ljust(6, "0")[:6]
    return ":".join(digits[i : i + 2] for i in range(0, 6, 2))


def network_spec(network: Network) -> NetworkSpec:
    """The cluster network of ``network`` (its subnets loaded)."""
    v4 = next((sub for sub in network.subnets if sub.ip_version == 4), None)
    v6 = next((sub for sub in network.subnets if sub.ip_version == 6), None)
    kind = FLAVORS[network.flavor]
    tags = [f"nefos:mode:{kind.node_mode}"]
    if v4 is not None and v4.dhcp:
        tags.append("nefos:dhcp")
    if v6 is not None and v6.slaac:
        tags.append("nefos:slaac")
    if kind.mac_prefix == POOL:
        tags.append(f"nefos:mac-prefix:{network.mac_prefix}")
    return NetworkSpec(
        name=network_name(network.id),
        subnet=v4.cidr if v4 else None,
        gateway=v4.gateway if v4 else None,
        subnet6=v6.cidr if v6 else None,
        gateway6=v6.gateway if v6 else None,
        mac_prefix=three_octets(network.mac_prefix) if kind.mac_prefix == POOL else None,
        tags=tuple(tags),
    )


def wiring(network: Network, backend: Backend) -> tuple[str, str]:
    """Mode and link of the network's connection on ``backend``: its own link (the
    shared MAC-filtered bridge, its bridge from the pool, its routing table), except
    that a public bridged (CUSTOM) network uses the backend's public bridge, its
    ``default_link``, when the backend names one."""
    if network.flavor == "CUSTOM" and backend.default_link:
        return network.mode, backend.default_link
    return network.mode, network.link


class BackendNetworks:
    def __init__(self, db: Database, clusters: Clusters) -> None:
        self.db = db
        self.clusters = clusters
        self._failed_removals: dict[tuple[uuid.UUID, int], int] = {}

    async def _row(self, s: AsyncSession, network_id: uuid.UUID, backend_id: int) -> BackendNetwork:
        """The row, locked; made (``removed``) if missing, a racing twin tolerated."""
        query = (
            select(BackendNetwork)
            .where(BackendNetwork.network_id == network_id, BackendNetwork.backend_id == backend_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        found = await s.scalar(query)
        if found is not None:
            return found
        try:
            async with s.begin_nested():
                s.add(BackendNetwork(network_id=network_id, backend_id=backend_id, state=REMOVED))
        except IntegrityError:
            pass  # another request made it meanwhile
        found = await s.scalar(query)
        assert found is not None
        return found

    async def ensure(self, backend: Backend, network_ids: Iterable[str]) -> tuple[int, ...]:
        """Make the networks usable on ``backend``; the jobs a job using them must wait
        for. A cluster that refuses a network job raises (the caller's job is refused)."""
        depends: list[int] = []
        cluster = self.clusters.cluster(backend)
        for network_id in dict.fromkeys(network_ids):
            key = uuid.UUID(network_id)
            async with self.db.transaction() as s:
                row = await self._row(s, key, backend.id)
                if row.state == ACTIVE:
                    continue
                if row.state == PENDING and row.job_id is not None:
                    depends.append(row.job_id)
                    continue
                network = await s.scalar(
                    select(Network).where(Network.id == key).options(selectinload(Network.subnets))
                )
                if network is None:
                    raise errors.NotFound(f"Network {network_id} could not be found")
                after = (row.job_id,) if row.state == REMOVING and row.job_id else ()
                spec = network_spec(network)
                added = await cluster.submit(CreateNetwork(spec, depends=after))
                mode, link = wiring(network, backend)
                connected = await cluster.submit(ConnectNetwork(spec.name, mode, link, (added,)))
                row.state, row.job_id, row.logmsg, row.updated = PENDING, connected, "", utcnow()
                depends.append(connected)
                log.info("network %s on %s: add job %s, connect job %s",
                         network_id, backend.name, added, connected)  # fmt: skip
        return tuple(depends)

    async def apply_event(self, message: Message) -> None:
        """A job on a network (``ganeti-network-status``): the connect or removal that
        the row waits for moves it; another job (an administrator's) changes nothing."""
        name, status, job_id = message.get("network"), message.get("status"), message.get("jobId")
        if not isinstance(name, str) or not isinstance(status, str) or not isinstance(job_id, int):
            raise errors.InvalidInput("A network event needs network, status and jobId")
        network_id = network_id_of(name)
        if network_id is None or status not in FINAL:
            return
        try:
            key = uuid.UUID(network_id)
        except ValueError:
            return
        retry = False
        async with self.db.transaction() as s:
            backend = await s.scalar(select(Backend).where(Backend.name == message.get("cluster")))
            if backend is None:
                return
            row = await s.get(BackendNetwork, (key, backend.id), with_for_update=True)
            if row is None or row.job_id != job_id:
                return
            opcode = message.get("operation")
            logmsg = str(message.get("logmsg") or "")[:4000]
            if opcode == OP_NETWORK_CONNECT and row.state == PENDING:
                row.state = ACTIVE if status == SUCCESS else REMOVED
            elif opcode == OP_NETWORK_REMOVE and row.state == REMOVING:
                row.state = REMOVED if status == SUCCESS else ACTIVE
                if status == SUCCESS:
                    self._failed_removals.pop((key, backend.id), None)
                else:
                    retry = self._count_failed_removal(key, backend.id)
            else:
                return
            row.job_id = None
            row.logmsg = "" if status == SUCCESS else logmsg
            row.updated = utcnow()
        if retry:
            log.warning("removal of %s from %s failed, trying again: %s", name,
                        backend.name, logmsg)  # fmt: skip
            await self.release_unused(backend.id)

    def _count_failed_removal(self, network_id: uuid.UUID, backend_id: int) -> bool:
        """Whether a failed removal may be tried again (the count is this process's)."""
        key = (network_id, backend_id)
        self._failed_removals[key] = self._failed_removals.get(key, 0) + 1
        if self._failed_removals[key] <= REMOVAL_RETRIES:
            return True
        del self._failed_removals[key]
        return False

    async def seen_in_use(self, s: AsyncSession, backend_id: int, names: Iterable[str]) -> None:
        """An instance there has NICs on these cluster networks: they are active."""
        for name in names:
            network_id = network_id_of(name)
            if network_id is None:
                continue
            try:
                key = uuid.UUID(network_id)
            except ValueError:
                continue
            row = await s.get(BackendNetwork, (key, backend_id), with_for_update=True)
            if row is not None and row.state == PENDING:
                row.state, row.job_id, row.updated = ACTIVE, None, utcnow()

    async def in_use(self, s: AsyncSession, network_id: uuid.UUID, backend_id: int) -> bool:
        """Whether a server of ``backend_id`` that is not gone has a port on the network."""
        devices = await s.scalars(
            select(Port.device_id).where(Port.network_id == network_id, Port.device_id.is_not(None))
        )
        servers = {int(d) for d in devices if d and d.isdigit()}
        if not servers:
            return False
        used = await s.scalar(
            select(Server.id)
            .where(
                Server.id.in_(servers), Server.backend_id == backend_id, Server.deleted.is_(False)
            )
            .limit(1)
        )
        return used is not None

    async def release_unused(self, backend_id: int) -> list[str]:
        """Remove from the backend the active networks no NIC there uses any more;
        returns their cluster names."""
        async with self.db.session() as s:
            backend = await s.get(Backend, backend_id)
            candidates = list(
                await s.scalars(
                    select(BackendNetwork.network_id).where(
                        BackendNetwork.backend_id == backend_id, BackendNetwork.state == ACTIVE
                    )
                )
            )
        if backend is None:
            return []
        removed = []
        for network_id in candidates:
            async with self.db.transaction() as s:
                row = await s.get(BackendNetwork, (network_id, backend_id), with_for_update=True)
                if (
                    row is None
                    or row.state != ACTIVE
                    or await self.in_use(s, network_id, backend_id)
                ):
                    continue
                name = network_name(network_id)
                try:
                    job_id = await self.clusters.cluster(backend).submit(RemoveNetwork(name))
                except errors.NefosError as exc:  # tried again at the next release or pass
                    log.warning("backend %s refused to remove %s: %s", backend.name, name, exc)
                    continue
                row.state, row.job_id, row.updated = REMOVING, job_id, utcnow()
                removed.append(name)
        return removed
