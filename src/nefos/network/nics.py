"""Servers' NICs, as networking sees them: the ports compute makes for a server (in
compute's own transaction, so a create that fails leaves no address behind), what a
server's ports show, and floating IPs attached to servers.

A NIC is a port whose ``device_id`` is the server's id and whose owner is the server's
owner (a port of someone else naming the server is not its NIC). Ports compute makes
(``owned_by_server``) go with the server; a user's port passed in by id is only
detached, as Nova leaves it.

A change to a running server's NICs (a port created, deleted or given a floating IP)
is handed to :attr:`Nics.devices`, which compute sets: it turns the change into a
backend job. Networking never imports compute.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Literal, Protocol

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from nefos.core import errors
from nefos.core.config import Settings
from nefos.core.db import Database, utcnow
from nefos.network.access import Caller, floating_ips_seen, may_change, parse_id, ports_seen
from nefos.network.models import IpAddress, Network, Port, ProjectNetwork
from nefos.network.ports import Ports, parse_fixed_ips, release_port
from nefos.network.subnets import parse_address

DEVICE_OWNER = "compute:nova"  # Nova's compute:<availability zone>; nefos has one zone


@dataclass(frozen=True)
class NicRequest:
    """One item of a server create's ``networks``: a network (with an optional fixed
    IP), or a port of the caller's."""

    network: str | None = None
    port: str | None = None
    fixed_ip: str | None = None


@dataclass(frozen=True)
class NicAddress:
    address: str
    version: int
    floating: bool
    subnet_id: str


@dataclass(frozen=True)
class Nic:
    """A server's NIC as the server document and the backend job see it."""

    port_id: str
    network_id: str
    network_name: str
    mac: str
    mode: str
    link: str
    addresses: tuple[NicAddress, ...] = field(default_factory=tuple)
    firewall: str = "DISABLED"  # Synnefo's firewallProfile: DISABLED, ENABLED, PROTECTED
    status: str = "DOWN"  # the port's: BUILD, ACTIVE, DOWN, ERROR


@dataclass(frozen=True)
class NicChange:
    """A NIC of a server added, changed or removed outside the server's create or delete."""

    kind: Literal["add", "modify", "remove"]
    server: str  # the port's device_id
    user: str  # the port's owner: only their own server takes it
    nic: Nic


class Devices(Protocol):
    async def nic_changed(self, change: NicChange) -> None: ...

    async def is_server_of(self, user: str, device: str) -> bool:
        """Whether ``device`` is a live server of ``user``'s (a port naming it is its NIC)."""
        ...


def nic_of(port: Port, network: Network) -> Nic:
    return Nic(
        port_id=str(port.id),
        network_id=str(network.id),
        network_name=network.name or str(network.id),
        mac=port.mac,
        mode=network.mode,
        link=network.link,
        firewall=port.firewall_profile,
        status=port.status,
        addresses=tuple(
            NicAddress(a.address, a.ip_version, a.floating, str(a.subnet_id))
            for a in sorted(port.addresses, key=lambda a: (a.floating, a.ip_version, a.created))
        ),
    )


class Nics:
    def __init__(self, db: Database, settings: Settings, ports: Ports) -> None:
        self.db = db
        self.settings = settings
        self.ports = ports
        self.networks = ports.networks
        self.devices: Devices | None = None

    async def default_network(self, s: AsyncSession, project: str | None = None) -> Network | None:
        """The network a server of ``project`` created without ``networks`` gets: the
        project's own default (:meth:`set_project_network`), else ``[network]
        default_public_network`` (by id or name); None if neither is set."""
        if project is not None:
            own = await s.scalar(
                select(Network)
                .join(ProjectNetwork, ProjectNetwork.network_id == Network.id)
                .where(ProjectNetwork.project == project)
                .options(selectinload(Network.subnets))
            )
            if own is not None:
                return own
        wanted = self.settings.network.default_public_network
        if not wanted:
            return None
        found = await _public_networks(s, wanted)
        if not found:
            raise errors.Conflict(f"The default public network {wanted!r} does not exist")
        return found[0]

    async def project_network(self, project: str) -> Network | None:
        """The project's own default network, if an operator named one."""
        async with self.db.session() as s:
            return await s.scalar(
                select(Network)
                .join(ProjectNetwork, ProjectNetwork.network_id == Network.id)
                .where(ProjectNetwork.project == project)
            )

    async def set_project_network(self, project: str, network: str | None) -> Network | None:
        """An operator names the public network (by id or name) that servers of
        ``project`` created without ``networks`` get, over the deployment's default;
        None takes it away. It goes when its network is deleted."""
        async with self.db.transaction() as s:
            if network is None:
                await s.execute(delete(ProjectNetwork).where(ProjectNetwork.project == project))
                return None
            found = await _public_networks(s, network)
            if not found:
                raise errors.NotFound(f"Public network {network} could not be found")
            if len(found) > 1:
                raise errors.Conflict(
                    f"{len(found)} public networks are named {network}: give its id"
                )
            row = await s.get(ProjectNetwork, project, with_for_update=True)
            if row is None:
                s.add(ProjectNetwork(project=project, network_id=found[0].id))
            else:
                row.network_id, row.updated = found[0].id, utcnow()
            return found[0]

    async def attach_for_create(
        self,
        s: AsyncSession,
        caller: Caller,
        server_id: int,
        requests: list[NicRequest] | None,
        project: str,
    ) -> list[Nic]:
        """The NICs of a new server, in its create's transaction ``s``: the ports asked
        for, or one on the default public network when none is asked. Refusals are
        Nova's: an unknown network or port is 400, a port in use 409. ``requests``
        None asks for the default; an empty list for no NIC at all."""
        device = str(server_id)
        if requests is None:
            network = await self.default_network(s, project)
            if network is None:
                return []
            port = await self.ports.new_port(
                s, caller, network, project, None, "", device, DEVICE_OWNER, for_server=True
            )
            return [await self._nic(s, port.id)]
        nics = []
        for request in requests:
            if request.port is not None:
                port_id = await self._take_port(s, caller, request.port, device)
            else:
                assert request.network is not None
                try:
                    network = await self.ports.usable_network(s, caller, request.network)
                except errors.NotFound as exc:
                    raise errors.InvalidInput(exc.message) from None
                asked = None
                if request.fixed_ip is not None:
                    asked = parse_fixed_ips([{"ip_address": request.fixed_ip}])
                port = await self.ports.new_port(
                    s, caller, network, project, asked, "", device, DEVICE_OWNER, for_server=True
                )
                port_id = port.id
            nics.append(await self._nic(s, port_id))
        return nics

    async def _take_port(
        self, s: AsyncSession, caller: Caller, port_ref: str, device: str
    ) -> uuid.UUID:
        try:
            key = parse_id(port_ref, "Port")
        except errors.NotFound as exc:
            raise errors.InvalidInput(exc.message) from None
        port = await s.scalar(
            select(Port).where(Port.id == key, ports_seen(caller)).with_for_update()
        )
        if port is None:
            raise errors.InvalidInput(f"Port {port_ref} could not be found")
        if port.device_id:
            raise errors.Conflict(f"Port {port_ref} is still in use")
        port.device_id, port.device_owner, port.updated = device, DEVICE_OWNER, utcnow()
        return port.id

    async def _nic(self, s: AsyncSession, port_id: uuid.UUID) -> Nic:
        port = await s.scalar(
            select(Port)
            .where(Port.id == port_id)
            .options(selectinload(Port.addresses))
            .execution_options(populate_existing=True)
        )
        assert port is not None
        network = await s.get(Network, port.network_id)
        assert network is not None
        return nic_of(port, network)

    async def server_nics(self, owners: dict[int, str]) -> dict[int, list[Nic]]:
        """The NICs of servers (id -> owner), oldest port first: one query for a listing."""
        if not owners:
            return {}
        found: dict[int, list[Nic]] = {}
        async with self.db.session() as s:
            rows = await s.execute(
                select(Port, Network)
                .join(Network, Network.id == Port.network_id)
                .where(Port.device_id.in_([str(key) for key in owners]))
                .options(selectinload(Port.addresses))
                .order_by(Port.created, Port.id)
            )
            for port, network in rows.all():
                server = int(port.device_id or 0)
                if owners.get(server) == port.user_id:
                    found.setdefault(server, []).append(nic_of(port, network))
        return found

    async def release_server(self, s: AsyncSession, server_id: int, user: str) -> list[str]:
        """A server is gone: the ports made for it are deleted (their addresses back in
        the pools, floating IPs detached), the user's own ports detached. Returns what
        was done, one line each, for the server's diagnostics or the reconciler."""
        ports = await s.scalars(
            select(Port)
            .where(Port.device_id == str(server_id), Port.user_id == user)
            .options(selectinload(Port.addresses))
            .with_for_update()
        )
        done = []
        for port in list(ports):
            if port.owned_by_server:
                addresses = ", ".join(a.address for a in port.addresses if not a.floating)
                await release_port(s, port)
                done.append(f"port {port.id} released ({addresses or 'no address'})")
            else:
                port.device_id, port.device_owner, port.updated = None, "", utcnow()
                done.append(f"port {port.id} detached")
        return done

    async def orphans(self, s: AsyncSession, alive: set[int]) -> list[tuple[int, str]]:
        """Servers named by compute-owned ports that are not in ``alive``: (server, user)."""
        rows = await s.execute(
            select(Port.device_id, Port.user_id)
            .where(Port.owned_by_server, Port.device_owner == DEVICE_OWNER)
            .distinct()
        )
        found = []
        for device, user in rows.all():
            if device and device.isdigit() and int(device) not in alive:
                found.append((int(device), user))
        return found

    # -- NIC changes on a server that exists --------------------------------------------

    async def set_status(self, port_ids: list[str], status: str) -> None:
        """Ports as their backend reported them (ACTIVE once plugged in, ERROR when the
        job that plugged them failed), or BUILD while the job runs."""
        if not port_ids:
            return
        keys = [uuid.UUID(p) for p in port_ids]
        async with self.db.transaction() as s:
            for port in await s.scalars(select(Port).where(Port.id.in_(keys)).with_for_update()):
                if port.status != status:
                    port.status, port.updated = status, utcnow()

    async def mark(self, s: AsyncSession, port_ids: list[str], status: str) -> None:
        """As :meth:`set_status`, inside the caller's transaction."""
        keys = [uuid.UUID(p) for p in port_ids]
        if keys:
            for port in await s.scalars(select(Port).where(Port.id.in_(keys)).with_for_update()):
                if port.status != status:
                    port.status, port.updated = status, utcnow()

    async def set_firewall(self, port_id: str, profile: str) -> None:
        async with self.db.transaction() as s:
            port = await s.get(Port, parse_id(port_id, "Port"), with_for_update=True)
            if port is None:
                raise errors.NotFound(f"Port {port_id} could not be found")
            port.firewall_profile, port.updated = profile, utcnow()

    async def notify(self, kind: Literal["add", "modify", "remove"], nic: Nic, port: Port) -> None:
        if self.devices is not None and port.device_id:
            await self.devices.nic_changed(NicChange(kind, port.device_id, port.user_id, nic))

    async def port_nic(self, port_id: str) -> tuple[Port, Nic]:
        async with self.db.session() as s:
            nic = await self._nic(s, parse_id(port_id, "Port"))
            port = await s.get(Port, uuid.UUID(nic.port_id))
            assert port is not None
            return port, nic

    async def attach_floating_ip(
        self, caller: Caller, ip_ref: str, port_id: str | None, by_address: bool = False
    ) -> IpAddress:
        """Neutron's ``PUT /floatingips/<id>``: associate a floating IP (by id, or by
        address) with port ``port_id``, or dissociate it (None).

        A floating IP is the address of a NIC of its own network, as in Synnefo: the
        node routes a NIC's one address and does no NAT, so a port that has a fixed
        IPv4 of its own cannot take it as a second one. Associating with a server's
        port puts it on a new NIC of that server, on the floating IP's network (the
        answer's ``port_id`` is that NIC); only a port of that network with no IPv4 of
        its own takes it itself. A port on no server of its owner is Neutron's 404 for a
        port the floating IP cannot reach (python-openstackclient then tries the
        server's next port)."""
        if port_id is None:
            return await self._detach_floating_ip(caller, ip_ref, by_address)
        port = await self.ports.port(caller, port_id)  # another user's: 404
        device = port.device_id
        if not device or not await self._is_server_of(port.user_id, device):
            raise errors.NotFound(
                f"Port {port_id} is not a NIC of a server, so floating IP {ip_ref} cannot "
                "be associated with it"
            )
        return await self._float_on_server(caller, ip_ref, by_address, device, port.user_id, port)

    async def add_floating_ip_to_server(
        self, caller: Caller, address: str, server: str, owner: str
    ) -> IpAddress:
        """Nova's ``addFloatingIp`` (compute has checked that ``server`` is ``owner``'s):
        the floating IP comes on a new NIC of the server, on its own network."""
        return await self._float_on_server(caller, address, True, server, owner, None)

    async def _is_server_of(self, user: str, device: str) -> bool:
        return self.devices is not None and await self.devices.is_server_of(user, device)

    async def _float_on_server(
        self,
        caller: Caller,
        ip_ref: str,
        by_address: bool,
        device: str,
        owner: str,
        through: Port | None,
    ) -> IpAddress:
        """Put a floating IP on server ``device`` of ``owner``: onto ``through`` (the
        port the request named) if that port is of the floating IP's network and has no
        IPv4 address, else onto a new NIC made for it. Quota is not touched: the
        floating IP holds its ``cyclades.floating_ip`` whether it is attached or not,
        and a port is charged nothing."""
        change: tuple[Literal["add", "modify"], uuid.UUID] | None = None
        async with self.db.transaction() as s:
            row = await self._floating(s, caller, ip_ref, by_address)
            may_change(caller, row.user_id, f"floating IP {ip_ref}")
            if row.user_id != owner:  # an administrator's request across two users
                raise errors.NotFound(
                    f"Floating IP {ip_ref} could not be found for the server's owner"
                )
            ip_id = row.id
            if row.port_id is not None:
                holder = await s.get(Port, row.port_id)
                if holder is None or holder.device_id != device:
                    raise errors.Conflict(
                        f"Floating IP {row.address} is already associated with port {row.port_id}"
                    )
            else:  # already on this server: nothing to do
                change = await self._hold(s, caller, row, device, owner, through)
        if change is not None:
            port_now, nic_now = await self.port_nic(str(change[1]))
            await self.notify(change[0], nic_now, port_now)
        return await self._floating_ip_row(ip_id)

    async def _hold(
        self,
        s: AsyncSession,
        caller: Caller,
        row: IpAddress,
        device: str,
        owner: str,
        through: Port | None,
    ) -> tuple[Literal["add", "modify"], uuid.UUID]:
        """In ``s``: the port that now holds floating IP ``row`` on server ``device``."""
        port = None
        if through is not None:
            port = await self.ports.seen(s, caller, str(through.id), lock=True)
            if port.device_id != device:
                raise errors.Conflict(f"Port {port.id} changed meanwhile; try again")
        if (
            port is not None
            and port.network_id == row.network_id
            and not any(a.ip_version == 4 for a in port.addresses)
        ):
            row.port_id, row.updated = port.id, utcnow()
            return ("modify", port.id)
        network = await s.scalar(  # new_port allocates from its subnets
            select(Network)
            .where(Network.id == row.network_id)
            .options(selectinload(Network.subnets))
            .execution_options(populate_existing=True)
        )
        assert network is not None
        maker = caller if caller.user == owner else Caller(owner, project=row.project)
        nic = await self.ports.new_port(
            s, maker, network, row.project, [], "", device, DEVICE_OWNER, for_server=True
        )
        row.port_id, row.updated = nic.id, utcnow()
        return ("add", nic.id)

    async def _detach_floating_ip(self, caller: Caller, ip_ref: str, by_address: bool) -> IpAddress:
        """Dissociate a floating IP: it stays its owner's, allocated. A NIC made to hold
        it (compute's, with no other address) is removed from its server; a user's own
        port only loses the address."""
        removed: tuple[Port, Nic] | None = None
        modified: uuid.UUID | None = None
        async with self.db.transaction() as s:
            row = await self._floating(s, caller, ip_ref, by_address)
            may_change(caller, row.user_id, f"floating IP {ip_ref}")
            ip_id, old = row.id, row.port_id
            if old is not None:
                row.port_id, row.updated = None, utcnow()
                await s.flush()
                port = await s.scalar(
                    select(Port).where(Port.id == old).options(selectinload(Port.addresses))
                    .execution_options(populate_existing=True)
                )  # fmt: skip
                assert port is not None
                if port.owned_by_server and not port.addresses and port.device_id:
                    network = await s.get(Network, port.network_id)
                    assert network is not None
                    removed = (port, nic_of(port, network))
                    await release_port(s, port)
                else:
                    modified = old
        if removed is not None:
            await self.notify("remove", removed[1], removed[0])
        if modified is not None:
            port_now, nic_now = await self.port_nic(str(modified))
            await self.notify("modify", nic_now, port_now)
        return await self._floating_ip_row(ip_id)

    async def _floating_ip_row(self, ip_id: uuid.UUID) -> IpAddress:
        async with self.db.session() as s:
            found = await s.scalar(
                select(IpAddress).where(IpAddress.id == ip_id).options(selectinload(IpAddress.port))
            )
            assert found is not None
            return found

    async def _floating(
        self, s: AsyncSession, caller: Caller, ip_ref: str, by_address: bool
    ) -> IpAddress:
        query = select(IpAddress).where(IpAddress.floating, floating_ips_seen(caller))
        if by_address:
            address = parse_address(ip_ref, "address")
            query = query.where(IpAddress.address == str(address))
        else:
            query = query.where(IpAddress.id == parse_id(ip_ref, "Floating IP"))
        found = await s.scalar(query.with_for_update().execution_options(populate_existing=True))
        if found is None:
            raise errors.NotFound(f"Floating IP {ip_ref} could not be found")
        return found


async def _public_networks(s: AsyncSession, ref: str) -> list[Network]:
    """Public networks by id, else by name, oldest first."""
    query = select(Network).where(Network.public).options(selectinload(Network.subnets))
    try:
        query = query.where(Network.id == uuid.UUID(ref))
    except ValueError:
        query = query.where(Network.name == ref)
    return list(await s.scalars(query.order_by(Network.created, Network.id)))
