"""The reconciler: the backends are the truth about servers; the database follows.

Events can be lost (a dead event daemon, a broker restart) and administrators change
instances on the cluster directly; one pass of :func:`reconcile_servers` compares every
backend's instances with the servers the database places there (spec §2.6):

* a server the backend does not have: deleted (unless it is still being built);
* an instance nefos does not know (``snf-<id>`` with no live server): removed;
* running or stopped, or CPU and RAM, differing from the database: the database is
  corrected as if the event had arrived, and quotas follow with a forced commission;
* a task whose job's outcome never arrived: settled from what the backend shows, and
  its commission accepted or rejected accordingly;
* a volume whose attachment the instance's disks contradict: an ``in-use`` volume
  whose disk the instance lacks is detached (``available``); one ``attaching`` or
  ``detaching`` for longer than a job takes is settled by whether the disk is there; a
  disk of a volume nefos does not record as attached is reported;
* a port made for a server that is gone (its NIC left behind by a lost event): released,
  its addresses back in their pools;
* networks, NICs and address pools (``nefos.compute.reconcile_networks``);
* commissions left pending by a crash: settled (``quotas.serials.reconcile``).

A server's state moves through ``nefos.compute.transitions`` (``observed``), by the same
table as the update path; quotas through ``nefos.compute.charges``. Without ``fix`` it
only reports.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Awaitable, Callable
from functools import partial

from sqlalchemy import select

from nefos.backends.base import InstanceInfo, instance_name, server_id_of, volume_id_of
from nefos.backends.ops import RemoveInstance
from nefos.compute import transitions
from nefos.compute.charges import CLIENTKEY, charges, difference, provisions
from nefos.compute.models import Backend, Diagnostic, Flavor, Server
from nefos.compute.reconcile_networks import (
    Finding,
    reconcile_networks,
    reconcile_nics,
    reconcile_pools,
)
from nefos.compute.service import Compute
from nefos.compute.transitions import RUNNING_STATES, diagnostic
from nefos.core import errors
from nefos.core.db import utcnow
from nefos.quotas.serials import decide, reconcile, settle
from nefos.volume import attachments, states
from nefos.volume.attachments import Attached

log = logging.getLogger("nefos.compute.reconcile")

STALE_AFTER = dt.timedelta(minutes=10)  # a task or build older than this lost its events


__all__ = ["Finding", "reconcile_servers"]


async def reconcile_servers(
    compute: Compute, fix: bool = False, stale_after: dt.timedelta = STALE_AFTER
) -> list[Finding]:
    findings: list[Finding] = []
    for backend in await compute.backends():
        if backend.offline:
            continue
        try:
            instances = await compute.cluster(backend).instances()
        except Exception as exc:  # an unreachable cluster is reported, never guessed at
            findings.append(Finding(backend.name, None, "", f"backend unreachable: {exc}"))
            continue
        findings += await _reconcile_backend(compute, backend, instances, fix, stale_after)
        try:
            findings += await reconcile_networks(compute, backend, fix, stale_after)
        except Exception as exc:
            findings.append(Finding(backend.name, None, "", f"networks unreadable: {exc}"))
        findings += await reconcile_nics(compute, backend, instances, fix, stale_after)
    findings += await _orphan_ports(compute, fix)
    findings += await reconcile_pools(compute, fix)
    if fix:
        await reconcile(compute.db, compute.quotas, CLIENTKEY)
    return findings


async def _reconcile_backend(
    compute: Compute,
    backend: Backend,
    instances: dict[str, InstanceInfo],
    fix: bool,
    stale_after: dt.timedelta,
) -> list[Finding]:
    findings: list[Finding] = []
    async with compute.db.session() as s:
        servers = list(
            await s.scalars(
                select(Server).where(Server.backend_id == backend.id, Server.deleted.is_(False))
            )
        )
        flavors = {f.id: f for f in await s.scalars(select(Flavor))}
        attached = await attachments.of_servers(s, [server.id for server in servers])
    known = {instance_name(server.id) for server in servers}
    now = utcnow()
    for server in servers:
        name = instance_name(server.id)
        instance = instances.get(name)
        stale = now - server.updated > stale_after
        if instance is None:
            if server.operstate == "BUILD" and not stale:
                continue  # its create job may still be running
            if server.task == "DESTROY" or server.operstate != "BUILD" or stale:
                findings.append(
                    await _fixed(
                        compute, fix, backend, server, name, "missing in the backend",
                        partial(_gone, compute, server.id, flavors),
                    )
                )  # fmt: skip
            continue
        if server.task is not None and not stale:
            continue  # a job is in flight; its events will come
        findings += await _reconcile_disks(
            compute, backend, server, instance, attached[server.id], fix, now - stale_after
        )
        wanted = "STARTED" if instance.running else "STOPPED"
        if server.operstate != wanted:
            problem = f"operstate {server.operstate}, backend says {wanted}"
            findings.append(
                await _fixed(
                    compute, fix, backend, server, name, problem,
                    partial(_set_state, compute, server.id, wanted, flavors),
                )
            )  # fmt: skip
        flavor = flavors[server.flavor_id]
        if (instance.vcpus, instance.memory) != (flavor.vcpus, flavor.ram):
            problem = (
                f"flavor {flavor.vcpus} CPUs/{flavor.ram} MiB, backend has "
                f"{instance.vcpus}/{instance.memory}"
            )
            findings.append(
                await _fixed(
                    compute, fix, backend, server, name, problem,
                    partial(_set_flavor, compute, server.id, instance, flavors),
                )
            )  # fmt: skip
    for name in sorted(set(instances) - known):
        server_id = server_id_of(name)
        if server_id is None:
            continue  # not nefos's instance
        finding = Finding(backend.name, server_id, name, "unknown to nefos")
        if fix:
            await compute.cluster(backend).submit(RemoveInstance(name))
            finding = Finding(backend.name, server_id, name, finding.problem, fixed=True)
        findings.append(finding)
    return findings


async def _reconcile_disks(
    compute: Compute,
    backend: Backend,
    server: Server,
    instance: InstanceInfo,
    volumes: list[Attached],
    fix: bool,
    stale_before: dt.datetime,
) -> list[Finding]:
    """The server's attachments against its instance's disks (``nefos-vol-<id>``)."""
    if instance.disks is None:
        return []  # the cluster does not list disk names: nothing to compare
    name = instance_name(server.id)
    present = set()
    for disk in instance.disks:
        try:
            present.add(uuid.UUID(volume_id_of(disk) or ""))
        except ValueError:
            continue
    findings = []
    for found in volumes:
        has_disk = found.volume_id in present
        wanted = states.seen_on_backend(found.status, has_disk)
        in_flight = found.status != states.IN_USE and (
            found.updated is None or found.updated > stale_before
        )
        if wanted is None or in_flight:
            continue  # agrees, or its job's event may still come
        where = "has" if has_disk else "has no"
        problem = f"volume {found.volume_id} {found.status}, backend {where} its disk"
        if found.boot_index == 0 and not has_disk:  # not detached: the operator's to see
            findings.append(Finding(backend.name, server.id, name, problem + " (root disk)"))
            continue
        if not fix:
            findings.append(Finding(backend.name, server.id, name, problem))
            continue
        async with compute.db.transaction() as s:
            done = await attachments.settle(s, server.id, found.volume_id, has_disk)
            if done is not None:
                s.add(_note(server.id, f"Volume {found.volume_id} is {done}: {problem}"))
        if done is not None:
            log.info("reconciled server %s on %s: %s", server.id, backend.name, problem)
        findings.append(Finding(backend.name, server.id, name, problem, fixed=done is not None))
    recorded = {found.volume_id for found in volumes}
    for volume_id in sorted(present - recorded, key=str):
        problem = f"backend has a disk of volume {volume_id} that nefos does not attach here"
        findings.append(Finding(backend.name, server.id, name, problem))
    return findings


async def _fixed(
    compute: Compute,
    fix: bool,
    backend: Backend,
    server: Server,
    name: str,
    problem: str,
    repair: Callable[[], Awaitable[None]],
) -> Finding:
    if not fix:
        return Finding(backend.name, server.id, name, problem)
    await repair()
    log.info("reconciled server %s on %s: %s", server.id, backend.name, problem)
    return Finding(backend.name, server.id, name, problem, fixed=True)


async def _gone(compute: Compute, server_id: int, flavors: dict[int, Flavor]) -> None:
    """The backend has no such instance: the server is deleted, its quota released, its
    volumes detached (those marked ``delete_on_termination`` deleted)."""
    async with compute.db.transaction() as s:
        server = await s.get(Server, server_id, with_for_update=True)
        if server is None or server.deleted:
            return
        seen = transitions.observed(server, "DESTROYED")
        if seen.serial is not None:
            await decide(s, CLIENTKEY, seen.serial, accept=seen.done)
        s.add(_note(server.id, "The server was not found on its backend"))
        await compute.nics.release_server(s, server.id, server.user_id)
        doomed = await compute.server_volumes.server_gone(s, server)
        user, project = server.user_id, server.project
    await compute.server_volumes.delete_volumes(doomed)  # detached now: deleted as their owner
    if seen.serial is not None:
        await settle(compute.db, compute.quotas, CLIENTKEY, seen.serial, accept=seen.done)
    if not seen.done:  # the delete's commission would have released it; nothing did
        resources = charges(
            flavors[server.flavor_id], running=seen.was_running, root_volume=server.root_volume
        )
        await _force(compute, provisions(user, project, resources, -1), f"reconcile {server_id}")


async def _orphan_ports(compute: Compute, fix: bool) -> list[Finding]:
    """Ports made for servers that no longer exist (or are deleted): released."""
    findings = []
    async with compute.db.transaction() as s:
        alive = set(await s.scalars(select(Server.id).where(Server.deleted.is_(False))))
        for server_id, user in await compute.nics.orphans(s, alive):
            name = instance_name(server_id)
            if not fix:
                findings.append(Finding("", server_id, name, "ports of a server that is gone"))
                continue
            for done in await compute.nics.release_server(s, server_id, user):
                log.info("reconciled ports of server %s: %s", server_id, done)
                findings.append(Finding("", server_id, name, done, fixed=True))
    return findings


async def _set_state(
    compute: Compute, server_id: int, wanted: str, flavors: dict[int, Flavor]
) -> None:
    async with compute.db.transaction() as s:
        server = await s.get(Server, server_id, with_for_update=True)
        if server is None or server.deleted or server.operstate == wanted:
            return
        seen = transitions.observed(server, wanted)
        charged = seen.serial is not None and seen.done  # its commission pays for it
        if seen.serial is not None:
            await decide(s, CLIENTKEY, seen.serial, accept=seen.done)
        if wanted == "STARTED" and server.launched is None:  # its build's event was lost
            server.launched = server.updated
        s.add(_note(server.id, f"The backend shows the server {wanted.lower()}"))
        user, project, flavor = server.user_id, server.project, flavors[server.flavor_id]
    if seen.serial is not None:
        await settle(compute.db, compute.quotas, CLIENTKEY, seen.serial, accept=seen.done)
    now_running = wanted in RUNNING_STATES
    if seen.was_running != now_running and not charged:
        running = charges(flavor, running=True, existing=False)
        sign = 1 if now_running else -1
        await _force(compute, provisions(user, project, running, sign), f"reconcile {server_id}")


async def _set_flavor(
    compute: Compute, server_id: int, instance: InstanceInfo, flavors: dict[int, Flavor]
) -> None:
    async with compute.db.transaction() as s:
        server = await s.get(Server, server_id, with_for_update=True)
        if server is None or server.deleted:
            return
        old = flavors[server.flavor_id]
        match = next(
            (
                f
                for f in flavors.values()
                if (f.vcpus, f.ram, f.disk, f.disk_template)
                == (instance.vcpus, instance.memory, old.disk, old.disk_template)
            ),
            None,
        )
        if match is None:
            match = Flavor(
                name=f"C{instance.vcpus}R{instance.memory}D{old.disk}{old.disk_template}",
                vcpus=instance.vcpus,
                ram=instance.memory,
                disk=old.disk,
                disk_template=old.disk_template,
                public=False,
                allow_create=False,
            )
            s.add(match)
            await s.flush()
            flavors[match.id] = match
        server.flavor_id = match.id
        server.updated = utcnow()
        s.add(_note(server.id, f"The backend shows flavor {match.name}"))
        user, project = server.user_id, server.project
        running, on_volume = server.operstate in RUNNING_STATES, server.root_volume
    delta = difference(
        charges(match, running, root_volume=on_volume), charges(old, running, root_volume=on_volume)
    )
    if delta:
        await _force(compute, provisions(user, project, delta, +1), f"reconcile {server_id}")


async def _force(compute: Compute, provisions: list, name: str) -> None:
    """Quotas follow reality even past a limit (Synnefo's forced commissions)."""
    if not provisions:
        return
    try:
        await compute.quotas.issue(CLIENTKEY, provisions, name, force=True, auto_accept=True)
    except errors.NefosError as exc:
        log.warning("could not correct quotas (%s): %s", name, exc.message)


def _note(server_id: int, message: str) -> Diagnostic:
    return diagnostic(server_id, "WARNING", message, source="reconciler")
