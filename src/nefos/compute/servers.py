"""Servers on the effect path: a request checks, charges, records and submits.

A request validates what it asks, checks rights, issues the quota commission, picks a
backend (spec §2.7), records the intent (``task``, through ``nefos.compute.transitions``)
and submits the job as an operation record (``nefos.backends.ops``); the caller gets the
server at once, still in its old state, and the update path (``nefos.compute.events``)
moves it when the job's events arrive.

A create's commission is accepted at once (as Synnefo does: a server that fails to
build keeps its quota until deleted); start, shutdown, resize and delete commissions
wait for their job.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterable
from typing import Any

import orjson
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from nefos.backends.base import InstanceSpec, instance_name
from nefos.backends.ops import (
    CreateInstance,
    ModifyInstance,
    Op,
    RebootInstance,
    RemoveInstance,
    ShutdownInstance,
    StartupInstance,
)
from nefos.compute import transitions
from nefos.compute.backend_networks import BackendNetworks, firewall_tags, nic_params
from nefos.compute.charges import CLIENTKEY, charges, difference, held, provisions
from nefos.compute.checks import (
    check_counts,
    check_fits,
    check_metadata,
    check_name,
    check_personality,
    check_tags,
    check_user_data,
    fitting,
    new_password,
)
from nefos.compute.clusters import Clusters
from nefos.compute.console import ConsoleProxy, console_for
from nefos.compute.flavors import Flavors
from nefos.compute.keypairs import Keypairs
from nefos.compute.models import Backend, Flavor, Server, ServerMetadata, ServerTag
from nefos.compute.transitions import RUNNING_STATES, diagnostic
from nefos.compute.views import ServerReader, ServerView
from nefos.compute.vmapi import Customization, VmApi
from nefos.compute.volumes import BootVolume, ServerVolumes, cloned_root
from nefos.core import errors
from nefos.core.config import Settings
from nefos.core.db import Database, utcnow
from nefos.images.service import Image, Images
from nefos.network.access import Caller
from nefos.network.nics import Nic, NicRequest, Nics
from nefos.quotas.serials import Settlement, decide, settle, settled
from nefos.quotas.service import Quotas
from nefos.storage.service import ObjectRecord

log = logging.getLogger("nefos.compute")


class Servers:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        quotas: Quotas,
        images: Images,
        keypairs: Keypairs,
        vmapi: VmApi,
        consoles: ConsoleProxy,
        clusters: Clusters,
        flavors: Flavors,
        reader: ServerReader,
        nics: Nics,
        backend_networks: BackendNetworks,
        volumes: ServerVolumes,
    ) -> None:
        self.db = db
        self.settings = settings
        self.quotas = quotas
        self.images = images
        self.keypairs = keypairs
        self.vmapi = vmapi
        self.consoles = consoles
        self.clusters = clusters
        self.flavors = flavors
        self.reader = reader
        self.nics = nics
        self.backend_networks = backend_networks
        self.volumes = volumes
        self._allocation = asyncio.Lock()  # one create places its servers at a time

    def _metadata_fits(self, metadata: Any) -> dict[str, str]:
        return check_metadata(metadata, self.settings.compute.max_metadata)

    def _tags_fit(self, tags: Any) -> list[str]:
        return check_tags(tags, self.settings.compute.max_tags)

    async def create_server(
        self, user: str, name: str, image_id: str, flavor_id: int | str, **options: Any
    ) -> tuple[ServerView, str]:
        """One server (BUILD) and its admin password, shown only now: :meth:`create_servers`
        with its defaults of one, which says what ``options`` may be."""
        views, password = await self.create_servers(user, name, image_id, flavor_id, **options)
        return views[0], password

    async def create_servers(
        self,
        user: str,
        name: str,
        image_id: str,
        flavor_id: int | str,
        project: str | None = None,
        projects: Iterable[str] = (),
        metadata: dict[str, str] | None = None,
        key_names: list[str] | None = None,
        tags: list[str] | None = None,
        admin_password: str | None = None,
        personality: Any = None,
        user_data: Any = None,
        min_count: int = 1,
        max_count: int = 1,
        networks: list[NicRequest] | None = None,
        boot_volume: BootVolume | None = None,
    ) -> tuple[list[ServerView], str]:
        """Nova's multiple create: as many servers as the quota holds up to ``max_count``,
        but at least ``min_count`` or none. One commission pays for all of them, so two
        requests racing for the last of a quota cannot each get part of what they asked;
        each server is still its own backend job. Servers are named ``<name>-<n>`` when
        there are several, as Nova names them; they share the one admin password, the
        only one the caller is shown. Each build gets the password, keys, personality and
        user data once from the vmapi (sealed until then, never in the job).

        ``networks`` asks for NICs (see ``nefos.network.nics``); none asked gives one on
        the default public network. The ports are made in the create's transaction, as
        the caller: a create refused on the way leaves none.

        ``boot_volume``: the root disk is a volume (``nefos.compute.volumes``), made
        first when it comes from an image or a snapshot and deleted again if the create
        is refused; the server boots the image the volume came from. Without one, a
        flavor on the volume disk template (``ext_nefos``) gives each server a root
        volume of its own all the same: a clone of the image's map, of the flavor's
        disk, deleted with the server (``nefos.compute.volumes.cloned_root``)."""
        check_counts(min_count, max_count, self.settings.compute.max_count)
        if boot_volume is not None and max_count > 1:
            raise errors.InvalidInput("Multiple instances cannot boot from one volume")
        check_name(name)
        if max_count > 1:  # the longest name the servers may get must fit too
            check_name(f"{name}-{max_count}")
            if any(request.port is not None for request in networks or []):
                raise errors.InvalidInput("Multiple instances cannot be created with a port")
        project = project or user
        allowed = {user, *projects}
        if project not in allowed:
            raise errors.PermissionDenied(f"You are not a member of project {project}")
        flavor = await self.flavors.flavor(flavor_id, allowed)
        if not flavor.allow_create:
            raise errors.InvalidInput(f"Flavor {flavor.id} cannot be used for new servers")
        metadata = self._metadata_fits(metadata or {})
        tags = self._tags_fit(tags or [])
        if admin_password is not None and (
            not isinstance(admin_password, str)
            or not 0 < len(admin_password) <= 255
            or any(ord(c) < 32 for c in admin_password)
        ):  # the build writes it into the guest's /etc/shadow: one line, no controls
            raise errors.InvalidInput("adminPass is 1 to 255 characters, no control characters")
        files = check_personality(personality)
        user_data = check_user_data(user_data)
        if boot_volume is None:
            clone = cloned_root(flavor, image_id)  # None: the server's own disk
            return await self._create(
                user, name, image_id, flavor, project, allowed, metadata, key_names, tags,
                admin_password, files, user_data, min_count, max_count, networks, None,
                clone,
            )  # fmt: skip
        root, image_id, made = await self.volumes.prepare_boot(user, project, boot_volume)
        try:
            return await self._create(
                user, name, image_id, flavor, project, allowed, metadata, key_names, tags,
                admin_password, files, user_data, min_count, max_count, networks,
                (root, boot_volume),
            )  # fmt: skip
        except BaseException:
            if made:  # the create was refused: nothing uses the volume made for it
                await self._forget_roots(user, [root])
            raise

    async def _forget_roots(self, user: str, volume_ids: list[uuid.UUID]) -> None:
        """Delete root volumes made for a create that was refused (their
        ``cyclades.disk`` released); one attached after all stays with its server."""
        for volume_id in volume_ids:
            try:
                await self.volumes.volumes.delete(user, volume_id)
            except errors.NefosError as exc:
                log.warning("root volume %s kept: %s", volume_id, exc.message)

    async def _create(
        self,
        user: str,
        name: str,
        image_id: str,
        flavor: Flavor,
        project: str,
        allowed: set[str],
        metadata: dict[str, str],
        key_names: list[str] | None,
        tags: list[str],
        admin_password: str | None,
        files: Any,
        user_data: Any,
        min_count: int,
        max_count: int,
        networks: list[NicRequest] | None,
        root: tuple[uuid.UUID, BootVolume] | None,
        clone: BootVolume | None = None,
    ) -> tuple[list[ServerView], str]:
        """The create once its arguments are checked (and its root volume made).
        ``clone``: each server gets a new root volume so made, once the quota says how
        many servers there are (deleted again if the create is refused after that)."""
        public_keys = []
        for key_name in key_names or []:
            try:
                public_keys.append((await self.keypairs.get(user, key_name)).public_key)
            except errors.NotFound:
                raise errors.InvalidInput("Invalid key_name provided") from None
        try:
            image, record = await self.images.data(user, image_id)
        except errors.NotFound:
            raise errors.InvalidInput(f"No image {image_id}") from None
        except errors.PermissionDenied:  # deactivated: its data is held from everyone
            raise errors.InvalidInput(f"Image {image_id} is not active") from None
        if image.status != "active" or record is None:
            raise errors.InvalidInput(f"Image {image_id} is not ready")
        check_fits(flavor, image)
        password = admin_password or new_password()
        customization = Customization(tuple(public_keys), files, user_data)
        on_volume = root is not None or clone is not None
        resources = charges(flavor, running=True, root_volume=on_volume)
        # each server: where, its build's URL, NICs and root volume's disk
        created: list[tuple[int, Backend, str, list[Nic], list[dict[str, Any]]]] = []
        caller = Caller(user, frozenset(allowed), project=project)
        made: list[uuid.UUID] = []
        try:
            async with settled(self.db, self.quotas, CLIENTKEY) as settlement:
                count, serial = await self._issue_for_count(
                    settlement, user, project, name, resources, min_count, max_count
                )
                roots = [root] * count if root is not None else []
                if clone is not None:  # each its own volume, charged cyclades.disk
                    count = await self._make_roots(
                        settlement, serial, user, project, name, resources, clone, count,
                        min_count, made,
                    )  # fmt: skip
                    roots = [(volume_id, clone) for volume_id in made]
                async with self._allocation, settlement.transaction() as s:
                    for index in range(count):
                        label = f"{name}-{index + 1}" if count > 1 else name
                        backend = await self.clusters.allocate(s, flavor, project)
                        server_id, config_url = await self._add_server(
                            s,
                            user,
                            label,
                            project,
                            flavor,
                            image,
                            record,
                            backend,
                            key_names or [],
                            metadata,
                            tags,
                            password,
                            customization,
                            root_volume=on_volume,
                        )
                        nics = await self.nics.attach_for_create(
                            s, caller, server_id, networks, project
                        )
                        disks = []
                        if roots:
                            disks = [
                                await self.volumes.attach_root(s, user, server_id, *roots[index])
                            ]
                        created.append((server_id, backend, config_url, nics, disks))
        except BaseException:
            await self._forget_roots(user, made)
            raise
        for server_id, backend, config_url, nics, disks in created:
            await self._build(user, server_id, flavor, image, backend, config_url, nics, disks)
        return [await self.reader.server(user, item[0]) for item in created], password

    async def _make_roots(
        self,
        settlement: Settlement,
        serial: int,
        user: str,
        project: str,
        name: str,
        resources: dict[str, int],
        clone: BootVolume,
        count: int,
        min_count: int,
        made: list[uuid.UUID],
    ) -> int:
        """A root volume for each of ``count`` servers, into ``made``; as many as
        ``cyclades.disk`` allows if that is at least ``min_count`` (Nova's rule, as for
        the other resources). The other resources are then reserved for that many.
        Returns how many servers there are."""
        for index in range(count):
            try:
                made.append((await self.volumes.prepare_boot(user, project, clone))[0])
            except errors.OverQuota:
                if index < min_count:
                    raise
                # the reservation for `count` servers gives way to one for `index`
                await settlement.withdraw(serial)
                wanted = {resource: quantity * index for resource, quantity in resources.items()}
                await settlement.issue(
                    provisions(user, project, wanted, +1), name=f"cyclades create {name}"[:255]
                )
                return index
        return count

    async def _issue_for_count(
        self,
        settlement: Settlement,
        user: str,
        project: str,
        name: str,
        resources: dict[str, int],
        min_count: int,
        max_count: int,
    ) -> tuple[int, int]:
        """Reserve the quota of the most servers that fit, from ``max_count`` down to
        ``min_count``; the refusal of each try says how much of the resource it hit is
        left, so the next try asks for what fits of that at once. Returns the count
        and the commission's serial."""
        count = max_count
        while True:
            wanted = {resource: quantity * count for resource, quantity in resources.items()}
            try:
                serial = await settlement.issue(
                    provisions(user, project, wanted, +1), name=f"cyclades create {name}"[:255]
                )
                return count, serial
            except errors.OverQuota as exc:
                fits = fitting(exc, count)
                if fits is None or min(fits, count - 1) < min_count:
                    raise
                count = min(fits, count - 1)

    async def _add_server(
        self,
        s: AsyncSession,
        user: str,
        name: str,
        project: str,
        flavor: Flavor,
        image: Image,
        record: ObjectRecord,
        backend: Backend,
        key_names: list[str],
        metadata: dict[str, str],
        tags: list[str],
        password: str,
        customization: Customization,
        root_volume: bool = False,
    ) -> tuple[int, str]:
        """One server of a create, its metadata and tags, and its build's sealed secrets;
        returns its id and the URL its build fetches them from."""
        server = Server(
            name=name,
            user_id=user,
            project=project,
            flavor_id=flavor.id,
            image_id=str(image.id),
            backend_id=backend.id,
            operstate="BUILD",
            task="BUILD",
            key_names=orjson.dumps(key_names).decode(),
            root_volume=root_volume,
        )
        s.add(server)
        await s.flush()
        for key, value in metadata.items():
            s.add(ServerMetadata(server_id=server.id, key=key, value=value))
        for tag in tags:
            s.add(ServerTag(server_id=server.id, tag=tag))
        # Secrets reach the build through the vmapi, never through the job.
        # A root volume is a clone of the image: the OS provider only customises it.
        config_url = await self.vmapi.issue(
            s, server.id, name, image, record, password, customization, root_volume
        )
        return server.id, config_url

    async def _build(
        self,
        user: str,
        server_id: int,
        flavor: Flavor,
        image: Image,
        backend: Backend,
        config_url: str,
        nics: list[Nic],
        volumes: list[dict[str, Any]],
    ) -> None:
        params = [nic_params(nic) for nic in nics]
        if not params and backend.default_link:
            params = [{"link": backend.default_link}]
        try:  # the networks first: the create job waits for them (Ganeti's depends)
            depends = await self.backend_networks.ensure(backend, [n.network_id for n in nics])
        except Exception as exc:
            await self._refused(server_id, "BUILD", backend, exc)
            return
        spec = InstanceSpec(
            name=instance_name(server_id),
            vcpus=flavor.vcpus,
            memory=flavor.ram,
            disk=flavor.disk,
            disk_template=flavor.disk_template,
            os="snf-image+default",
            image={
                "id": str(image.id),
                "location": image.location,
                "size": image.size,
                "checksum": image.checksum,
                "properties": image.properties,
            },
            nics=params,
            tags=[f"nefos:user:{user}", *firewall_tags(nics)],
            osparams={"config_url": config_url},
            depends=depends,
            volumes=tuple(volumes),
        )
        await self._submit(server_id, "BUILD", CreateInstance(spec))

    async def _submit(self, server_id: int, task: str, op: Op) -> None:
        """Send the job; record its id so the update path knows which job ends the task.
        A backend that refuses the job ends the task as the job's failure would (a build
        in ERROR), with a diagnostic."""
        async with self.db.session() as s:
            server = await s.get(Server, server_id)
            assert server is not None and server.backend_id is not None
            backend = await s.get(Backend, server.backend_id)
            assert backend is not None
        try:
            job_id = await self.clusters.cluster(backend).submit(op)
        except Exception as exc:  # the cluster is unreachable or refused: tell the user
            await self._refused(server_id, task, backend, exc)
            return
        async with self.db.transaction() as s:
            server = await s.get(Server, server_id, with_for_update=True)
            assert server is not None
            transitions.submitted(server, task, job_id)

    async def _refused(self, server_id: int, task: str, backend: Backend, exc: Exception) -> None:
        """The backend refused ``task``'s job (or one it needed first): the task ends as
        its job's failure would, with a diagnostic, and its commission is rejected."""
        log.warning("backend %s refused a job for server %s: %s", backend.name, server_id, exc)
        async with self.db.transaction() as s:
            server = await s.get(Server, server_id, with_for_update=True)
            assert server is not None
            if task == "BUILD":  # no instance will hold its NICs
                await self.vmapi.forget(s, server.id)
                await self.nics.release_server(s, server.id, server.user_id)
            serial = transitions.refused(server, task)
            s.add(diagnostic(server.id, "ERROR", f"The backend refused the job: {exc}"))
            if serial is not None:
                await decide(s, CLIENTKEY, serial, accept=False)
        if serial is not None:
            await settle(self.db, self.quotas, CLIENTKEY, serial, accept=False)

    # -- actions ------------------------------------------------------------------------------

    async def _start_task(
        self,
        user: str,
        server_id: int | str,
        task: str,
        resources: dict[str, int] | None = None,
        sign: int = 0,
    ) -> Server:
        """Check the state, issue the task's commission (decided by its job), and record
        the task; the job is submitted by the caller."""
        view = await self.reader.server(user, server_id)
        server = view.server
        assert isinstance(server, Server)
        transitions.require(server, task, view.status)
        commission = provisions(server.user_id, server.project, resources or {}, sign)
        async with settled(self.db, self.quotas, CLIENTKEY) as settlement:
            serial = None
            if commission:
                serial = await settlement.issue(
                    commission, name=f"cyclades {task.lower()} {server.id}", accept=None
                )
            async with settlement.transaction() as s:
                row = await s.get(Server, server.id, with_for_update=True)
                assert row is not None
                previous = transitions.begin(row, task, serial)
                if previous is not None:  # a destroy overtakes an unfinished task
                    await decide(s, CLIENTKEY, previous, accept=False)
        if previous is not None:
            await settle(self.db, self.quotas, CLIENTKEY, previous, accept=False)
        return row

    async def start(self, user: str, server_id: int | str) -> None:
        view = await self.reader.server(user, server_id)
        resources = charges(view.flavor, running=True, existing=False)
        server = await self._start_task(user, server_id, "START", resources, +1)
        name = instance_name(server.id)
        await self._submit(server.id, "START", StartupInstance(name))

    async def shutdown(self, user: str, server_id: int | str) -> None:
        view = await self.reader.server(user, server_id)
        resources = charges(view.flavor, running=True, existing=False)
        server = await self._start_task(user, server_id, "STOP", resources, -1)
        name = instance_name(server.id)
        await self._submit(server.id, "STOP", ShutdownInstance(name))

    async def reboot(self, user: str, server_id: int | str, hard: bool = False) -> None:
        server = await self._start_task(user, server_id, "REBOOT")
        name = instance_name(server.id)
        await self._submit(server.id, "REBOOT", RebootInstance(name, hard))

    async def resize(
        self, user: str, server_id: int | str, flavor_id: int | str, projects: Iterable[str] = ()
    ) -> None:
        """Spec §2.4: only CPU and RAM may change, on a stopped server."""
        view = await self.reader.server(user, server_id)
        flavor = await self.flavors.flavor(flavor_id, {user, *projects})
        old = view.flavor
        if (flavor.disk, flavor.disk_template) != (old.disk, old.disk_template):
            raise errors.InvalidInput("A resize changes only CPUs and RAM")
        if flavor.id == old.id:
            raise errors.InvalidInput("The server already has this flavor")
        on_volume = view.server.root_volume
        delta = difference(
            charges(flavor, running=False, root_volume=on_volume),
            charges(old, running=False, root_volume=on_volume),
        )
        server = await self._start_task(user, server_id, "RESIZE", delta, +1)
        name = instance_name(server.id)
        await self._submit(server.id, "RESIZE", ModifyInstance(name, flavor.vcpus, flavor.ram))

    async def delete_server(self, user: str | None, server_id: int | str) -> None:
        view = await self.reader.server(user, server_id)
        running = view.server.operstate in RUNNING_STATES
        resources = charges(view.flavor, running=running, root_volume=view.server.root_volume)
        server = await self._start_task(view.server.user_id, server_id, "DESTROY", resources, -1)
        name = instance_name(server.id)
        await self._submit(server.id, "DESTROY", RemoveInstance(name))

    async def rename(self, user: str, server_id: int | str, name: str) -> ServerView:
        check_name(name)
        async with self.db.transaction() as s:
            server = await s.get(Server, int((await self.reader.server(user, server_id)).server.id))
            assert server is not None
            if server.deleted:
                raise errors.InvalidInput(f"Server {server.id} is deleted")
            server.name = name
            server.updated = utcnow()
        return await self.reader.server(user, server_id)

    async def set_metadata(
        self, user: str, server_id: int | str, metadata: dict[str, str], replace: bool
    ) -> dict[str, str]:
        view = await self.reader.server(user, server_id)
        merged = dict(metadata) if replace else {**view.metadata, **metadata}
        self._metadata_fits(merged)
        async with self.db.transaction() as s:
            await s.execute(
                delete(ServerMetadata).where(ServerMetadata.server_id == view.server.id)
            )
            for key, value in merged.items():
                s.add(ServerMetadata(server_id=view.server.id, key=key, value=value))
            row = await s.get(Server, view.server.id)
            assert row is not None
            row.updated = utcnow()
        return merged

    async def delete_metadata(self, user: str, server_id: int | str, key: str) -> None:
        view = await self.reader.server(user, server_id)
        if key not in view.metadata:
            raise errors.NotFound(f"No metadata item {key!r}")
        async with self.db.transaction() as s:
            await s.execute(
                delete(ServerMetadata).where(
                    ServerMetadata.server_id == view.server.id, ServerMetadata.key == key
                )
            )
            await self._touch(s, view.server.id)  # changes-since must see it

    async def set_tags(self, user: str, server_id: int | str, tags: Any) -> list[str]:
        """Replace every tag (allowed in any state but deleted, spec §2.4)."""
        tags = self._tags_fit(tags)
        server = await self._changeable(user, server_id)
        async with self.db.transaction() as s:
            await s.execute(delete(ServerTag).where(ServerTag.server_id == server.id))
            s.add_all(ServerTag(server_id=server.id, tag=tag) for tag in tags)
            await self._touch(s, server.id)
        return sorted(tags)

    async def add_tag(self, user: str, server_id: int | str, tag: str) -> bool:
        """True if the tag is new (Nova answers 201 then, 204 if it was there)."""
        self._tags_fit([tag])
        server = await self._changeable(user, server_id)
        async with self.db.transaction() as s:
            present = select(ServerTag.tag).where(ServerTag.server_id == server.id)
            tags = list(await s.scalars(present.with_for_update()))
            if tag in tags:
                return False
            if len(tags) >= self.settings.compute.max_tags:
                raise errors.InvalidInput(f"At most {self.settings.compute.max_tags} tags")
            s.add(ServerTag(server_id=server.id, tag=tag))
            await self._touch(s, server.id)
        return True

    async def delete_tags(self, user: str, server_id: int | str, tag: str | None = None) -> None:
        """One tag (404 if absent) or, with ``tag`` None, all of them."""
        server = await self._changeable(user, server_id)
        async with self.db.transaction() as s:
            query = delete(ServerTag).where(ServerTag.server_id == server.id)
            if tag is not None:
                query = query.where(ServerTag.tag == tag)
            removed = (await s.execute(query)).rowcount
            if tag is not None and not removed:
                raise errors.NotFound(f"No tag {tag!r}")
            await self._touch(s, server.id)

    async def reassign(
        self,
        user: str,
        server_id: int | str,
        project: str,
        projects: Iterable[str],
        shared_to_project: bool | None = None,
    ) -> None:
        """Move a server to another of the owner's projects: one commission releases
        what it holds in the old project and takes it in the new one (413 if that does
        not fit). With a job in flight the outcome of its commission is still open, so
        what the server holds is not yet known: 409 until the job ends."""
        server = await self._changeable(user, server_id)
        if project not in {user, *projects}:
            raise errors.PermissionDenied(f"You are not a member of project {project}")
        old = server.project
        async with self.db.session() as s:
            holds = await held(s, server)
        moved = []
        if project != old:
            moved = provisions(user, old, holds, -1) + provisions(user, project, holds, +1)
        async with settled(self.db, self.quotas, CLIENTKEY) as settlement:
            if server.task is not None:
                raise errors.Conflict(f"Server {server.id} is busy ({server.task})")
            if moved:
                await settlement.issue(moved, name=f"cyclades reassign {server.id}")
            async with settlement.transaction() as s:
                row = await s.get(Server, server.id, with_for_update=True)
                assert row is not None
                if (row.task, row.project, row.operstate, row.flavor_id, row.deleted) != (
                    None, old, server.operstate, server.flavor_id, False,
                ):  # fmt: skip
                    raise errors.Conflict(f"Server {row.id} changed meanwhile; try again")
                row.project = project
                if shared_to_project is not None:
                    row.shared_to_project = shared_to_project
                row.updated = utcnow()

    async def console(self, user: str, server_id: int | str, kind: str) -> dict[str, Any]:
        """A one-time VNC ticket to a running server's console (spec §2.4): the proxy's
        host and port and a random password; the cluster's own VNC address is never
        shown. ``vnc-ws`` is the same over WebSocket (noVNC). ``expires`` (UTC, a nefos
        addition) is when the ticket closes if nobody has connected, so a client that
        cannot connect can tell an expired ticket from an unreachable proxy."""
        if kind == "vnc-wss":
            raise errors.NotImplementedYet("vnc-wss needs TLS on the console proxy: use vnc-ws")
        if kind not in ("vnc", "vnc-ws"):
            raise errors.InvalidInput(f"Unknown console type {kind!r}: vnc or vnc-ws")
        view = await self.reader.server(user, server_id)
        if view.server.deleted:
            raise errors.InvalidInput(f"Server {view.server.id} is deleted")
        if view.status != "ACTIVE":
            raise errors.InvalidInput("Server not in ACTIVE state")
        async with self.db.session() as s:
            backend = await s.get(Backend, view.server.backend_id)
        assert backend is not None
        ticket = await console_for(
            self.consoles,
            self.clusters.cluster(backend),
            instance_name(view.server.id),
            websocket=kind == "vnc-ws",
        )
        return {
            "type": kind,
            "host": ticket.host,
            "port": ticket.port,
            "password": ticket.password,
            "expires": ticket.expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }

    async def _changeable(self, user: str, server_id: int | str) -> Server:
        view = await self.reader.server(user, server_id)
        if view.server.deleted:
            raise errors.InvalidInput(f"Server {view.server.id} is deleted")
        return view.server

    async def _touch(self, s: AsyncSession, server_id: int) -> None:
        row = await s.get(Server, server_id)
        assert row is not None
        row.updated = utcnow()
