"""A server's NICs on the compute side: NIC changes become backend jobs, and the
server actions that change NICs (``os-interface``, ``addFloatingIp``,
``removeFloatingIp``) go through networking as the caller.

Networking owns ports and addresses (``nefos.network.nics``); it tells compute of a
NIC added, changed or removed on an existing server through :meth:`ServerNics.nic_changed`,
whoever made the change (these actions, or a Neutron port created or deleted with the
server's id as ``device_id``). A NIC change is a job of no task: the server keeps its
state, and the job shows in its history; a backend that refuses it leaves a diagnostic.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from nefos.backends.base import instance_name, nic_name
from nefos.backends.ops import AddNic, ModifyNic, Op, RemoveNic, SetFirewall
from nefos.compute.backend_networks import FIREWALL_LEVELS, BackendNetworks, nic_params
from nefos.compute.checks import parse_id
from nefos.compute.clusters import Clusters
from nefos.compute.models import Backend, Server
from nefos.compute.transitions import diagnostic
from nefos.compute.views import ServerReader
from nefos.core import errors
from nefos.core.db import Database
from nefos.network.access import Caller
from nefos.network.models import IpAddress, Port
from nefos.network.nics import DEVICE_OWNER, Nic, NicChange, Nics
from nefos.network.service import NetworkService

log = logging.getLogger("nefos.compute")


class ServerNics:
    def __init__(
        self,
        db: Database,
        network: NetworkService,
        clusters: Clusters,
        reader: ServerReader,
        backend_networks: BackendNetworks,
    ) -> None:
        self.db = db
        self.network = network
        self.nics: Nics = network.nics
        self.clusters = clusters
        self.reader = reader
        self.backend_networks = backend_networks

    async def nic_changed(self, change: NicChange) -> None:
        """Networking changed a NIC of server ``change.server``: send the job, if the
        server is its port owner's and still there."""
        if not change.server.isdigit():
            return  # a device that is not a server
        async with self.db.session() as s:
            server = await s.get(Server, int(change.server))
            if server is None or server.user_id != change.user or server.deleted:
                return
            if server.operstate in ("DESTROYED", "ERROR") or server.backend_id is None:
                return
            backend = await s.get(Backend, server.backend_id)
            assert backend is not None
        name = instance_name(server.id)
        running = server.operstate == "STARTED"  # a hotplug, where the hypervisor can
        op: Op
        try:
            if change.kind == "remove":
                op = RemoveNic(name, nic_name(change.nic.port_id), hotplug=running)
            else:
                depends = await self.backend_networks.ensure(backend, [change.nic.network_id])
                params = nic_params(change.nic)
                if change.kind == "add":
                    op = AddNic(name, params, hotplug=running, depends=depends)
                else:
                    op = ModifyNic(name, params, hotplug=running, depends=depends)
            await self.clusters.cluster(backend).submit(op)
            if change.kind == "add":
                await self.nics.set_status([change.nic.port_id], "BUILD")
        except Exception as exc:  # the cluster refused: the port stays, the user is told
            log.warning(
                "backend %s refused a NIC job for server %s: %s", backend.name, server.id, exc
            )
            async with self.db.transaction() as s:
                s.add(
                    diagnostic(server.id, "WARNING", f"The backend refused the NIC change: {exc}")
                )

    async def set_firewall(
        self, user: str, server_id: int | str, port_id: str, profile: str
    ) -> None:
        """Synnefo's ``firewallProfile`` action: the NIC's profile (ENABLED, PROTECTED or
        DISABLED) recorded on its port, and sent to the backend as the instance's tag."""
        if profile not in FIREWALL_LEVELS:
            raise errors.InvalidInput(
                f"firewallProfile is one of {', '.join(sorted(FIREWALL_LEVELS))}"
            )
        server, nics = await self.interfaces(user, server_id)
        if server.operstate == "BUILD" or server.task == "BUILD":
            raise errors.Conflict(f"Server {server.id} is being built")
        if server.operstate == "ERROR" or server.backend_id is None:
            raise errors.InvalidInput(f"Server {server.id} is in ERROR")
        nic = next((n for n in nics if n.port_id == port_id), None)
        if nic is None:
            raise errors.NotFound(f"Server {server.id} has no NIC {port_id}")
        await self.nics.set_firewall(port_id, profile)
        async with self.db.session() as s:
            backend = await s.get(Backend, server.backend_id)
            assert backend is not None
        op = SetFirewall(instance_name(server.id), nic_name(port_id), FIREWALL_LEVELS[profile])
        await self.clusters.cluster(backend).submit(op)

    def _caller(self, user: str, projects: Iterable[str], project: str | None = None) -> Caller:
        return Caller(user, frozenset(projects), project=project or user)

    async def _live(self, user: str, server_id: int | str) -> Server:
        view = await self.reader.server(user, server_id)
        server = view.server
        assert isinstance(server, Server)
        if server.deleted or server.task == "DESTROY":
            raise errors.Conflict(f"Server {server.id} is being deleted")
        return server

    async def interfaces(self, user: str, server_id: int | str) -> tuple[Server, list[Nic]]:
        server = await self._live(user, server_id)
        found = await self.nics.server_nics({server.id: server.user_id})
        return server, found.get(server.id, [])

    async def attach_interface(
        self,
        user: str,
        projects: Iterable[str],
        server_id: int | str,
        network_id: str | None = None,
        port_id: str | None = None,
        fixed_ip: str | None = None,
    ) -> Nic:
        """``os-interface`` POST: a new port on a network, or a port of the caller's."""
        server = await self._live(user, server_id)
        caller = self._caller(user, projects, server.project)
        device = str(server.id)
        if port_id is not None:
            port = await self.network.port(caller, port_id)  # 404 as Nova answers
            if port.device_id:
                raise errors.Conflict(f"Port {port_id} is still in use")
            await self.network.update_port(
                caller, port_id, device_id=device, device_owner=DEVICE_OWNER
            )
            found, nic = await self.nics.port_nic(port_id)
            await self.nics.notify("add", nic, found)
            return nic
        if network_id is None:
            raise errors.InvalidInput("interfaceAttachment needs net_id or port_id")
        fixed = None if fixed_ip is None else [{"ip_address": fixed_ip}]
        port = await self.network.port_service.create_port(
            caller,
            network_id,
            fixed_ips=fixed,
            device_id=device,
            device_owner=DEVICE_OWNER,
            project=server.project,
            for_server=True,
        )
        found, nic = await self.nics.port_nic(str(port.id))
        await self.nics.notify("add", nic, found)
        return nic

    async def detach_interface(self, user: str, server_id: int | str, port_id: str) -> None:
        """``os-interface`` DELETE: a port made for the server goes; a user's port is
        only detached, as Nova leaves it."""
        server, nics = await self.interfaces(user, server_id)
        nic = next((n for n in nics if n.port_id == port_id), None)
        if nic is None:
            raise errors.NotFound(f"Port {port_id} is not attached to server {server.id}")
        caller = self._caller(user, (), server.project)
        port = await self.network.port(caller, port_id)
        if port.owned_by_server:
            await self.network.delete_port(caller, port_id)  # tells nic_changed
            return
        await self.network.update_port(caller, port_id, device_id=None, device_owner="")
        await self.nics.notify("remove", nic, _detached(port, str(server.id)))

    async def add_floating_ip(
        self,
        user: str,
        projects: Iterable[str],
        server_id: int | str,
        address: str,
        fixed_address: str | None = None,
    ) -> IpAddress:
        """Nova's ``addFloatingIp``, as Synnefo does it: the floating IP comes on a new
        NIC of the server, on the floating IP's network (a node routes a NIC's own
        address and does no NAT). ``fixed_address``, Nova's choice of the address to
        NAT to, has nothing to choose here; it must still be one of the server's."""
        server, nics = await self.interfaces(user, server_id)
        if fixed_address is not None and not any(
            a.address == fixed_address for n in nics for a in n.addresses
        ):
            raise errors.InvalidInput(f"Server {server.id} has no fixed address {fixed_address}")
        caller = self._caller(user, projects, server.project)
        return await self.nics.add_floating_ip_to_server(
            caller, address, str(server.id), server.user_id
        )

    async def is_server_of(self, user: str, device: str) -> bool:
        """Whether ``device`` (a port's ``device_id``) names a live server of ``user``."""
        wanted = parse_id(device)
        if wanted is None:
            return False
        async with self.db.session() as s:
            server = await s.get(Server, wanted)
        return (
            server is not None
            and server.user_id == user
            and not server.deleted
            and server.task != "DESTROY"
            and server.operstate != "DESTROYED"
        )

    async def remove_floating_ip(
        self, user: str, projects: Iterable[str], server_id: int | str, address: str
    ) -> None:
        server, nics = await self.interfaces(user, server_id)
        on_server = any(a.address == address and a.floating for n in nics for a in n.addresses)
        if not on_server:
            raise errors.Conflict(
                f"Floating IP {address} is not associated with server {server.id}"
            )
        caller = self._caller(user, projects, server.project)
        await self.network.attach_floating_ip(caller, address, None, by_address=True)


def _detached(port: Port, device: str) -> Port:
    """The port as it was on the server, for the change that takes it off."""
    port.device_id = device
    return port
