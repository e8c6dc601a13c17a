"""The reconciler's pass over networks, NICs and address pools (spec §2.6, §4.3).

The backends are the truth about which networks and NICs exist there; the database is
the truth about which port holds which address. One pass, per backend:

* a cluster network ``nefos-net-<id>`` nefos does not know: reported (an operator's to
  remove: it may carry another deployment's instances);
* a network the database holds active (or whose jobs' events were lost) that the
  cluster does not have: its row says removed, so the next server that needs it makes
  it again (lazily); one the cluster has connected though the row says otherwise:
  active;
* a NIC of a port that the instance no longer has: the port made for the server is
  released (its addresses back in the pools), a user's port detached;
* a NIC nefos named that no port holds: taken off the instance; one whose address is
  not its port's: given its port's again;

and over the IPv4 pools: an address the pool counts as given that no port or floating
IP holds (leaked) goes back; one held though the pool counts it free (it would be given
twice) is taken. Without ``fix`` it only reports.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from nefos.backends.base import (
    InstanceInfo,
    instance_name,
    network_id_of,
    nic_name,
)
from nefos.backends.ops import ModifyNic, RemoveNic
from nefos.compute.backend_networks import ACTIVE, PENDING, REMOVED, REMOVING, nic_params
from nefos.compute.models import Backend, BackendNetwork, Server
from nefos.compute.service import Compute
from nefos.core.db import utcnow
from nefos.network import pools
from nefos.network.models import IpAddress, Network, Pool, Port
from nefos.network.nics import nic_of
from nefos.network.ports import release_port

log = logging.getLogger("nefos.compute.reconcile")


@dataclass(frozen=True)
class Finding:
    backend: str
    server_id: int | None
    instance: str
    problem: str
    fixed: bool = False


async def reconcile_networks(
    compute: Compute, backend: Backend, fix: bool, stale_after: dt.timedelta
) -> list[Finding]:
    """The cluster's networks against the rows of ``backend``."""
    found = await compute.cluster(backend).networks()
    findings: list[Finding] = []
    now = utcnow()
    async with compute.db.transaction() as s:
        rows = {
            str(row.network_id): row
            for row in await s.scalars(
                select(BackendNetwork)
                .where(BackendNetwork.backend_id == backend.id)
                .with_for_update()
            )
        }
        known = {str(i) for i in await s.scalars(select(Network.id))}
        for name, info in sorted(found.items()):
            network_id = network_id_of(name) or ""
            if network_id not in known:
                findings.append(Finding(backend.name, None, name, "network unknown to nefos"))
                continue
            row = rows.get(network_id)
            state = row.state if row is not None else REMOVED
            if info.connected and state != ACTIVE:
                in_flight = state in (PENDING, REMOVING) and now - row.updated < stale_after  # type: ignore[union-attr]
                if in_flight:
                    continue
                problem = f"network {state} in nefos, connected on the backend"
                if fix:
                    if row is None:
                        row = BackendNetwork(
                            network_id=uuid.UUID(network_id), backend_id=backend.id
                        )
                        s.add(row)
                    row.state, row.job_id, row.updated = ACTIVE, None, now
                findings.append(Finding(backend.name, None, name, problem, fixed=fix))
        for network_id, row in sorted(rows.items()):
            name = f"nefos-net-{network_id}"
            there = name in found and bool(found[name].connected)
            stale = now - row.updated >= stale_after
            if there or row.state == REMOVED or (row.state in (PENDING, REMOVING) and not stale):
                continue
            problem = f"network {row.state} in nefos, not on the backend"
            if fix:  # made again by the next server that needs it
                row.state, row.job_id, row.updated = REMOVED, None, now
            findings.append(Finding(backend.name, None, name, problem, fixed=fix))
    for finding in findings:
        if finding.fixed:
            log.info("reconciled %s on %s: %s", finding.instance, backend.name, finding.problem)
    return findings


async def reconcile_nics(
    compute: Compute,
    backend: Backend,
    instances: dict[str, InstanceInfo],
    fix: bool,
    stale_after: dt.timedelta,
) -> list[Finding]:
    """Each settled server's ports against its instance's NICs."""
    findings: list[Finding] = []
    now = utcnow()
    async with compute.db.session() as s:
        servers = [
            server
            for server in await s.scalars(
                select(Server).where(Server.backend_id == backend.id, Server.deleted.is_(False))
            )
            if instance_name(server.id) in instances
            and (server.task is None or now - server.updated >= stale_after)
            and server.operstate != "BUILD"
        ]
    cluster = compute.cluster(backend)
    for server in servers:
        name = instance_name(server.id)
        on_instance = {nic.name: nic for nic in instances[name].nics}
        async with compute.db.transaction() as s:
            rows = (
                await s.execute(
                    select(Port, Network)
                    .join(Network, Network.id == Port.network_id)
                    .where(Port.device_id == str(server.id), Port.user_id == server.user_id)
                    .options(selectinload(Port.addresses))
                    .with_for_update(of=Port)
                )
            ).all()
            ports = {nic_name(port.id): (port, network) for port, network in rows}
            for nic, (port, _network) in sorted(ports.items()):
                if nic in on_instance or now - port.updated < stale_after:
                    continue  # a port this young may still be on its way to the instance
                held = ", ".join(a.address for a in port.addresses if not a.floating)
                problem = f"NIC {nic} ({held or 'no address'}) is not on the instance"
                if fix:
                    if port.owned_by_server:
                        await release_port(s, port)
                    else:
                        port.device_id, port.device_owner, port.updated = None, "", now
                findings.append(Finding(backend.name, server.id, name, problem, fixed=fix))
        for nic, info in sorted(on_instance.items()):
            if nic not in ports:
                problem = f"NIC {nic} on the instance holds no port"
                if fix:
                    await cluster.submit(RemoveNic(name, nic))
                findings.append(Finding(backend.name, server.id, name, problem, fixed=fix))
                continue
            port, network = ports[nic]
            wanted = nic_params(nic_of(port, network))
            if (info.ip, info.mac) != (wanted["ip"], wanted["mac"]):
                problem = (
                    f"NIC {nic} has {info.ip or 'no address'} and {info.mac}; its port "
                    f"{wanted['ip'] or 'no address'} and {wanted['mac']}"
                )
                if fix:
                    await cluster.submit(ModifyNic(name, wanted))
                findings.append(Finding(backend.name, server.id, name, problem, fixed=fix))
    return findings


async def reconcile_pools(compute: Compute, fix: bool) -> list[Finding]:
    """Each IPv4 pool's bitmap against the addresses held in its range."""
    findings: list[Finding] = []
    async with compute.db.transaction() as s:
        pool_ids = list(await s.scalars(select(Pool.id).where(Pool.kind == "ip")))
        for pool in await pools.locked(s, pool_ids):
            held = {
                ipaddress.ip_address(address)
                for address in await s.scalars(
                    select(IpAddress.address).where(IpAddress.subnet_id == pool.subnet_id)
                )
            }
            span = pools.ip_range(pool)
            bitmap = pools.Bitmap.of(pool)
            changed = False
            for index in range(bitmap.size):
                address = span.start + index
                if bitmap.is_allocated(index) and address not in held:
                    problem = f"address {address} leaked: given by its pool, held by no port"
                    if fix:
                        bitmap.put(index)
                        changed = True
                    findings.append(Finding("", None, str(address), problem, fixed=fix))
            for address in sorted(held):
                if address in span and not bitmap.is_allocated(pools.index_of(pool, address)):
                    problem = f"address {address} held, but free in its pool (given twice)"
                    if fix:
                        bitmap.take(pools.index_of(pool, address))
                        changed = True
                    findings.append(Finding("", None, str(address), problem, fixed=fix))
            if changed:
                bitmap.store(pool)
    for finding in findings:
        if finding.fixed:
            log.info("reconciled the pools: %s", finding.problem)
    return findings
