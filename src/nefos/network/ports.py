"""Ports: a MAC from the network's prefix and fixed IPs from its subnets' pools.

A port asks for addresses by subnet, by address, or not at all (then one IPv4 address
from the first subnet with one free, and its SLAAC address on every IPv6 subnet). The
pools of the subnets it draws from are locked for the transaction, so concurrent
creates take turns per subnet and never get one address twice.

On a public network a user's port carries one of their floating IPs (Synnefo's rule:
public addresses are charged as floating IPs); only an administrator takes an address
of a public network's pool for a port. A user may not delete a public network's port
that holds no floating IP of theirs: it belongs to a server's default NIC (403).
"""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from nefos.core import errors
from nefos.core.db import Database, utcnow
from nefos.network import pools
from nefos.network.access import Caller, may_change, parse_id, ports_seen
from nefos.network.models import IpAddress, Network, Port, Subnet
from nefos.network.networks import Networks, check_name, where
from nefos.network.subnets import eui64, ip_pools, parse_address

PORT_FILTERS = {
    "id": Port.id,
    "name": Port.name,
    "network_id": Port.network_id,
    "device_id": Port.device_id,
    "device_owner": Port.device_owner,
    "mac_address": Port.mac,
    "status": Port.status,
    "tenant_id": Port.project,
    "project_id": Port.project,
}
MAC_TRIES = 16


def _device(value: object, what: str) -> str:
    if not isinstance(value, str) or len(value) > 64:
        raise errors.InvalidInput(f"{what} is text of at most 64 characters")
    return value


class Ports:
    def __init__(self, db: Database, networks: Networks):
        self.db = db
        self.networks = networks

    async def ports(
        self, caller: Caller, filters: Mapping[str, Sequence[str]] | None = None
    ) -> list[Port]:
        query = select(Port).where(ports_seen(caller)).options(selectinload(Port.addresses))
        query = where(query, PORT_FILTERS, filters or {}).order_by(Port.created, Port.id)
        async with self.db.session() as s:
            return list(await s.scalars(query))

    async def port(self, caller: Caller, port_id: str) -> Port:
        async with self.db.session() as s:
            return await self.seen(s, caller, port_id)

    async def seen(self, s: AsyncSession, caller: Caller, port_id: str, lock: bool = False) -> Port:
        key = parse_id(port_id, "Port")
        query = (
            select(Port)
            .where(Port.id == key, ports_seen(caller))
            .options(selectinload(Port.addresses))
            .execution_options(populate_existing=True)
        )
        found = await s.scalar(query.with_for_update() if lock else query)
        if found is None:
            raise errors.NotFound(f"Port {port_id} could not be found")
        return found

    async def create_port(
        self,
        caller: Caller,
        network_id: str,
        name: str = "",
        fixed_ips: list[dict[str, Any]] | None = None,
        device_id: str | None = None,
        device_owner: str = "",
        project: str | None = None,
        for_server: bool = False,
    ) -> Port:
        """A port as Neutron's ``POST /ports`` makes it; ``for_server``: compute makes
        it for a server's NIC (see :meth:`new_port`)."""
        check_name(name)
        if device_id is not None:
            _device(device_id, "device_id")
        _device(device_owner, "device_owner")
        project = caller.project_for(project)
        asked = parse_fixed_ips(fixed_ips)
        async with self.db.transaction() as s:
            network = await self.usable_network(s, caller, network_id)
            port = await self.new_port(
                s, caller, network, project, asked, name, device_id or None, device_owner,
                for_server,
            )  # fmt: skip
        return await self.port(caller, str(port.id))

    async def usable_network(self, s: AsyncSession, caller: Caller, network_id: str) -> Network:
        """A network the caller may put a port on: a public one, or a private one of
        theirs or shared to a project of theirs (any other: 404)."""
        network = await self.networks.seen(s, caller, network_id)
        if not network.public and not (
            caller.admin
            or network.user_id == caller.user
            or (network.shared_to_project and network.project in caller.projects)
        ):
            raise errors.NotFound(f"Network {network_id} could not be found")
        return network

    async def new_port(
        self,
        s: AsyncSession,
        caller: Caller,
        network: Network,
        project: str,
        asked: list[tuple[str | None, ipaddress.IPv4Address | ipaddress.IPv6Address | None]] | None,
        name: str = "",
        device_id: str | None = None,
        device_owner: str = "",
        for_server: bool = False,
    ) -> Port:
        """A port and its addresses, in the caller's transaction ``s``. ``for_server``:
        compute makes it for a server's NIC, so a public network gives it an address of
        its pool (a server's public NIC), and it goes with the server; it shows BUILD
        until the server's backend reports the NIC plugged in."""
        port = Port(
            network_id=network.id,
            name=name,
            user_id=caller.user,
            project=project,
            mac=await _new_mac(s, network.mac_prefix),
            device_id=device_id,
            device_owner=device_owner,
            owned_by_server=for_server,
            status="BUILD" if for_server else "DOWN",  # ACTIVE once its backend job ran
        )
        s.add(port)
        await s.flush()
        if network.public and not caller.admin and not for_server:
            await self._attach_floating(s, caller, network, port, asked)
        else:
            if network.public and not caller.admin and asked:
                raise errors.PermissionDenied(
                    f"Only an administrator picks an address of public network {network.id}"
                )
            await self._allocate(s, caller, network, port, asked, project)
        return port

    async def _attach_floating(
        self,
        s: AsyncSession,
        caller: Caller,
        network: Network,
        port: Port,
        asked: list[tuple[str | None, ipaddress.IPv4Address | ipaddress.IPv6Address | None]] | None,
    ) -> None:
        """A user's port on a public network: each fixed IP one of their floating IPs."""
        asked = asked or []
        addresses = [address for _, address in asked if address is not None]
        if not addresses or len(addresses) != len(asked):
            raise errors.PermissionDenied(
                f"A port on public network {network.id} needs a floating IP of yours "
                "(fixed_ips: [{ip_address}])"
            )
        for address in addresses:
            held = await s.scalar(
                select(IpAddress)
                .where(
                    IpAddress.network_id == network.id,
                    IpAddress.address == str(address),
                    IpAddress.floating,
                    IpAddress.user_id == caller.user,
                )
                .with_for_update()
            )
            if held is None:
                raise errors.NotFound(f"No floating IP {address} of yours on network {network.id}")
            if held.port_id is not None:
                raise errors.Conflict(f"Floating IP {address} is in use by port {held.port_id}")
            held.port_id = port.id
            held.updated = utcnow()

    async def _allocate(
        self,
        s: AsyncSession,
        caller: Caller,
        network: Network,
        port: Port,
        asked: list[tuple[str | None, ipaddress.IPv4Address | ipaddress.IPv6Address | None]] | None,
        project: str,
    ) -> None:
        subnets = {str(sub.id): sub for sub in network.subnets}
        locked = await ip_pools(s, [sub.id for sub in network.subnets if sub.ip_version == 4])
        where_ = str(network.id)

        def record(subnet: Subnet, address: str) -> None:
            s.add(
                IpAddress(
                    network_id=network.id,
                    subnet_id=subnet.id,
                    address=address,
                    ip_version=subnet.ip_version,
                    port_id=port.id,
                    user_id=port.user_id,
                    project=project,
                )
            )

        if asked is None:  # one IPv4 address, and SLAAC on every IPv6 subnet
            v4 = [sub for sub in network.subnets if sub.ip_version == 4]
            for subnet in v4:
                try:
                    record(subnet, pools.allocate_ip(locked[subnet.id], where_))
                    break
                except pools.Exhausted:
                    continue
            else:
                if v4:
                    raise pools.Exhausted(f"No more IP addresses available on network {where_}")
            for sub in network.subnets:
                if sub.ip_version == 6:
                    record(sub, str(eui64(ipaddress.ip_network(sub.cidr), port.mac)))
            return
        for subnet_id, address in asked:
            if subnet_id is not None:
                subnet = subnets.get(subnet_id)
                if subnet is None:
                    raise errors.InvalidInput(
                        f"Subnet {subnet_id} is not a subnet of network {network.id}"
                    )
                if address is not None and address not in ipaddress.ip_network(subnet.cidr):
                    raise errors.InvalidInput(
                        f"IP address {address} is not a valid IP for the specified subnet"
                    )
            else:
                assert address is not None
                subnet = next(
                    (sub for sub in network.subnets if address in ipaddress.ip_network(sub.cidr)),
                    None,
                )
                if subnet is None:
                    raise errors.InvalidInput(
                        f"IP address {address} is not a valid IP for network {network.id}"
                    )
            if subnet.ip_version == 6:
                if address is not None:
                    raise errors.InvalidInput(
                        f"IPv6 address {address} cannot be directly assigned to a port on "
                        f"subnet {subnet.id} since the subnet is configured for automatic "
                        "addresses (SLAAC)"
                    )
                record(subnet, str(eui64(ipaddress.ip_network(subnet.cidr), port.mac)))
            elif address is None:
                record(subnet, pools.allocate_ip(locked[subnet.id], where_))
            else:
                pools.take_ip(locked[subnet.id], address, where_)
                record(subnet, str(address))
        await s.flush()

    async def update_port(
        self,
        caller: Caller,
        port_id: str,
        name: str | None = None,
        device_id: object = ...,
        device_owner: str | None = None,
        network_id: str | None = None,
    ) -> Port:
        """``network_id``: the network the caller believes the port is on (kamaki sends it
        back with every change); a port never moves, so another one is refused."""
        async with self.db.transaction() as s:
            port = await self.seen(s, caller, port_id, lock=True)
            may_change(caller, port.user_id, f"port {port_id}")
            if network_id is not None and network_id != str(port.network_id):
                raise errors.InvalidInput(
                    f"Port {port_id} is on network {port.network_id}: a port cannot move"
                )
            if name is not None:
                port.name = check_name(name)
            if device_id is not ...:
                port.device_id = (
                    None if device_id in (None, "") else _device(device_id, "device_id")
                )
            if device_owner is not None:
                port.device_owner = _device(device_owner, "device_owner")
            port.updated = utcnow()
        return await self.port(caller, port_id)

    async def delete_port(self, caller: Caller, port_id: str) -> None:
        """Its fixed IPs go back to their pools; its floating IPs stay their owner's,
        detached."""
        async with self.db.transaction() as s:
            port = await self.seen(s, caller, port_id, lock=True)
            may_change(caller, port.user_id, f"port {port_id}")
            network = await s.get(Network, port.network_id)
            assert network is not None
            floating = [a for a in port.addresses if a.floating]
            if network.public and not caller.admin and not floating:
                raise errors.PermissionDenied(
                    f"Cannot delete port {port_id}: it is on public network {network.id}"
                )
            await release_port(s, port)


async def release_port(s: AsyncSession, port: Port) -> None:
    """Delete a port (loaded with its addresses) in ``s``: its fixed IPs go back to
    their pools, its floating IPs stay their owner's, detached."""
    fixed = [a for a in port.addresses if not a.floating]
    locked = await ip_pools(s, list({a.subnet_id for a in fixed if a.ip_version == 4}))
    for address in fixed:
        if address.ip_version == 4:
            pools.release_ip(locked[address.subnet_id], ipaddress.ip_address(address.address))
        await s.delete(address)
    await s.execute(
        update(IpAddress).where(IpAddress.port_id == port.id).values(port_id=None, updated=utcnow())
    )
    await s.flush()
    await s.delete(port)


def parse_fixed_ips(
    value: list[dict[str, Any]] | None,
) -> list[tuple[str | None, ipaddress.IPv4Address | ipaddress.IPv6Address | None]] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise errors.InvalidInput("fixed_ips is a list of {subnet_id, ip_address}")
    found = []
    for item in value:
        if not isinstance(item, dict) or not item or set(item) - {"subnet_id", "ip_address"}:
            raise errors.InvalidInput("fixed_ips is a list of {subnet_id, ip_address}")
        subnet = item.get("subnet_id")
        if subnet is not None:
            subnet = str(parse_id(subnet, "Subnet")) if isinstance(subnet, str) else None
            if subnet is None:
                raise errors.InvalidInput("Invalid subnet_id in fixed_ips")
        raw = item.get("ip_address")
        address = None if raw is None else parse_address(raw, "fixed_ips")
        found.append((subnet, address))
    return found


async def _new_mac(s: AsyncSession, prefix: str) -> str:
    """A MAC on the network's prefix, random below it, not used by another port (the
    unique key refuses a racing twin)."""
    digits = prefix.replace(":", "")
    for _ in range(MAC_TRIES):
        tail = secrets.token_hex(6)[: 12 - len(digits)]
        value = digits + tail
        mac = ":".join(value[i : i + 2] for i in range(0, 12, 2))
        if await s.scalar(select(Port.id).where(Port.mac == mac)) is None:
            return mac
    raise errors.Conflict(f"No free MAC address left under prefix {prefix}")
