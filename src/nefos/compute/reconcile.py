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
* commissions left pending by a crash: settled (``quotas.serials.reconcile``).

Without ``fix`` it only reports.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from nefos.backends.base import InstanceInfo, instance_name, server_id_of
from nefos.backends.ops import RemoveInstance
from nefos.compute.models import Backend, Diagnostic, Flavor, Server
from nefos.compute.service import CLIENTKEY, Compute, _charges, _resources
from nefos.core import errors
from nefos.core.db import utcnow
from nefos.quotas.serials import decide, reconcile, settle

log = logging.getLogger("nefos.compute.reconcile")

STALE_AFTER = dt.timedelta(minutes=10)  # a task or build older than this lost its events


@dataclass(frozen=True)
class Finding:
    backend: str
    server_id: int | None
    instance: str
    problem: str
    fixed: bool = False


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


async def _finish_task(s: AsyncSession, server: Server, accept: bool) -> int | None:
    serial = server.serial
    server.task, server.task_job_id, server.serial = None, None, None
    if serial is not None:
        await decide(s, CLIENTKEY, serial, accept=accept)
    return serial


async def _gone(compute: Compute, server_id: int, flavors: dict[int, Flavor]) -> None:
    """The backend has no such instance: the server is deleted, its quota released."""
    async with compute.db.transaction() as s:
        server = await s.get(Server, server_id, with_for_update=True)
        if server is None or server.deleted:
            return
        destroying = server.task == "DESTROY"
        running = server.operstate in ("BUILD", "STARTED")
        serial = await _finish_task(s, server, accept=destroying)
        server.operstate, server.deleted = "DESTROYED", True
        server.updated = utcnow()
        s.add(_note(server.id, "The server was not found on its backend"))
        user, project = server.user_id, server.project
    if serial is not None:
        await settle(compute.db, compute.quotas, CLIENTKEY, serial, accept=destroying)
    if not destroying:  # the delete's commission would have released it; nothing did
        resources = _resources(flavors[server.flavor_id], running=running)
        await _force(compute, _charges(user, project, resources, -1), f"reconcile {server_id}")


async def _set_state(
    compute: Compute, server_id: int, wanted: str, flavors: dict[int, Flavor]
) -> None:
    async with compute.db.transaction() as s:
        server = await s.get(Server, server_id, with_for_update=True)
        if server is None or server.deleted or server.operstate == wanted:
            return
        target = {"START": "STARTED", "STOP": "STOPPED", "REBOOT": "STARTED"}
        task_done = server.task is not None and target.get(server.task) == wanted
        charged = server.serial is not None and task_done
        serial = await _finish_task(s, server, accept=task_done)
        was_running = server.operstate in ("BUILD", "STARTED")
        server.operstate = wanted
        server.updated = utcnow()
        if wanted == "STARTED" and server.launched is None:  # its build's event was lost
            server.launched = server.updated
        s.add(_note(server.id, f"The backend shows the server {wanted.lower()}"))
        user, project, flavor = server.user_id, server.project, flavors[server.flavor_id]
    if serial is not None:
        await settle(compute.db, compute.quotas, CLIENTKEY, serial, accept=task_done)
    now_running = wanted == "STARTED"
    if was_running != now_running and not charged:
        running = _resources(flavor, running=True, existing=False)
        sign = 1 if now_running else -1
        await _force(compute, _charges(user, project, running, sign), f"reconcile {server_id}")


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
        running = server.operstate in ("BUILD", "STARTED")
    delta = {
        "cyclades.total_cpu": match.vcpus - old.vcpus,
        "cyclades.total_ram": (match.ram - old.ram) << 20,
    }
    if running:
        delta["cyclades.cpu"] = delta["cyclades.total_cpu"]
        delta["cyclades.ram"] = delta["cyclades.total_ram"]
    delta = {k: v for k, v in delta.items() if v}
    if delta:
        await _force(compute, _charges(user, project, delta, +1), f"reconcile {server_id}")


async def _force(compute: Compute, provisions: list, name: str) -> None:
    """Quotas follow reality even past a limit (Synnefo's forced commissions)."""
    if not provisions:
        return
    try:
        await compute.quotas.issue(CLIENTKEY, provisions, name, force=True, auto_accept=True)
    except errors.NefosError as exc:
        log.warning("could not correct quotas (%s): %s", name, exc.message)


def _note(server_id: int, message: str) -> Diagnostic:
    return Diagnostic(server_id=server_id, level="WARNING", source="reconciler", message=message)
