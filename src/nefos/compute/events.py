"""The update path: job events from the backends move servers and settle quotas.

Events arrive on the bus in the shape ``nefos.backends.base`` describes, whichever
cluster ran the job. Each is kept as job history; only a finished job newer than what
the database holds (``backendtime``) moves the server, by the transition table
(``nefos.compute.transitions``). The job that ends a task decides its commission
(accepted when the job is done, rejected otherwise); a job nefos did not ask for (an
administrator's, on the cluster) makes the quota follow with a forced commission.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from nefos.backends.base import FINAL, OP_CREATE, OP_MODIFY, OP_REMOVE, port_id_of, server_id_of
from nefos.compute import transitions
from nefos.compute.backend_networks import BackendNetworks
from nefos.compute.charges import CLIENTKEY, difference, held, provisions
from nefos.compute.models import BackendJob, Flavor, Server
from nefos.compute.transitions import diagnostic
from nefos.compute.vmapi import VmApi
from nefos.compute.volumes import ServerVolumes
from nefos.core import errors
from nefos.core.bus import Message
from nefos.core.db import Database
from nefos.network.nics import Nics
from nefos.quotas.serials import decide, settle
from nefos.quotas.service import Charge, Quotas

log = logging.getLogger("nefos.compute")


def event_time(message: Message) -> float:
    value = message.get("event_time")
    if isinstance(value, list) and len(value) == 2:
        return float(value[0]) + float(value[1]) / 1_000_000
    if isinstance(value, int | float):
        return float(value)
    raise errors.InvalidInput("An event without event_time")


def nic_changes(opcode: str, fields: dict) -> tuple[list[dict], list[str]]:
    """The NICs a job put in place (their Ganeti parameters) and the names of those it
    took away, from its ``job_fields["nics"]``: a create's list, or a modify's
    ``[["add", -1, {...}], ["modify", NAME, {...}], ["remove", NAME, {}]]``."""
    placed: list[dict] = []
    removed: list[str] = []
    for item in fields.get("nics") or []:
        if opcode == OP_CREATE and isinstance(item, dict):
            placed.append(item)
        elif isinstance(item, list) and len(item) >= 2:
            params = item[2] if len(item) > 2 and isinstance(item[2], dict) else {}
            if item[0] == "remove":
                removed.append(str(item[1]))
            elif item[0] in ("add", "modify"):
                placed.append({"name": str(item[1]), **params} if item[0] == "modify" else params)
    return placed, removed


def _ports(nics: list[dict]) -> list[str]:
    found = (port_id_of(str(nic.get("name") or "")) for nic in nics)
    return [port for port in found if port]


class Events:
    def __init__(
        self,
        db: Database,
        quotas: Quotas,
        vmapi: VmApi,
        nics: Nics,
        backend_networks: BackendNetworks,
        volumes: ServerVolumes,
    ) -> None:
        self.db = db
        self.quotas = quotas
        self.vmapi = vmapi
        self.nics = nics
        self.backend_networks = backend_networks
        self.volumes = volumes

    async def apply_event(self, message: Message) -> None:
        """One job event (spec §2.6). Idempotent: a repeated or older event changes no
        state; every event is kept as job history. Network jobs' events move the
        networks' state on their backend (``nefos.compute.backend_networks``)."""
        if message.get("type") == "ganeti-network-status":
            await self.backend_networks.apply_event(message)
            return
        instance = message.get("instance")
        opcode = message.get("operation")
        status = message.get("status")
        job_id = message.get("jobId")
        if not isinstance(instance, str) or not isinstance(opcode, str):
            raise errors.InvalidInput("An op event needs instance and operation")
        if not isinstance(status, str) or not isinstance(job_id, int):
            raise errors.InvalidInput("An op event needs status and jobId")
        server_id = server_id_of(instance)
        if server_id is None:
            return  # not one of ours
        when = event_time(message)
        logmsg = str(message.get("logmsg") or "")
        resolve: tuple[int, bool] | None = None
        forced: list[Charge] = []
        release_networks: int | None = None
        doomed: list[tuple[str, uuid.UUID]] = []
        async with self.db.transaction() as s:
            server = await s.get(Server, server_id, with_for_update=True)
            if server is None:
                return
            seen = await s.scalar(
                select(BackendJob.id).where(
                    BackendJob.server_id == server.id,
                    BackendJob.job_id == job_id,
                    BackendJob.status == status,
                )
            )
            if seen is not None:
                return  # delivered twice
            s.add(
                BackendJob(
                    server_id=server.id,
                    backend_id=server.backend_id,
                    job_id=job_id,
                    opcode=opcode,
                    status=status,
                    logmsg=logmsg[:10000],
                    event_time=when,
                )
            )
            if when <= server.backendtime:
                return  # older than what we know: history only
            transitions.job_seen(server, opcode, status, job_id)
            if status not in FINAL:
                return
            before = await held(s, server)
            if opcode == OP_CREATE:
                await self.vmapi.forget(s, server.id)  # the build is over, either way
            result = transitions.result_of(status, logmsg)
            ended = transitions.job_ended(server, opcode, job_id, result, when)
            done = ended.outcome.done
            if ended.outcome.note is not None:
                level, text = ended.outcome.note
                s.add(diagnostic(server.id, level, text.format(opcode=opcode, logmsg=logmsg)))
            if ended.outcome.operstate == "DESTROYED":  # its NICs went with the instance
                await self.nics.release_server(s, server.id, server.user_id)
                doomed = await self.volumes.server_gone(s, server)
            if opcode in (OP_CREATE, OP_MODIFY):
                fields = message.get("job_fields") or {}
                succeeded = result == transitions.SUCCEEDED
                await self.volumes.apply_disks(s, server, fields, succeeded, opcode == OP_CREATE)
            if result == transitions.SUCCEEDED and opcode == OP_MODIFY:
                await self._apply_new_flavor(s, server, message)
            if opcode in (OP_CREATE, OP_MODIFY, OP_REMOVE):
                gone = await self._apply_nics(s, server, opcode, result, message, logmsg)
                if gone and server.backend_id is not None:
                    release_networks = server.backend_id
            if result == transitions.SUCCEEDED and opcode == OP_CREATE:
                server.build_percentage = 100
                server.launched = dt.datetime.fromtimestamp(when, dt.UTC)
            if ended.ended_task:
                if ended.serial is not None:
                    await decide(s, CLIENTKEY, ended.serial, accept=done)
                    resolve = (ended.serial, done)
            elif done:
                # A job nefos did not ask for (an administrator's, on the cluster): the
                # quota follows what happened, with a forced commission (spec §2.6).
                delta = difference(await held(s, server), before)
                forced = provisions(server.user_id, server.project, delta, +1)
        if doomed:  # after the commit: detached now, so each is deleted as its owner would
            await self.volumes.delete_volumes(doomed)
        if release_networks is not None:  # after the commit: its ports are gone now
            await self.backend_networks.release_unused(release_networks)
        if resolve is not None:
            await settle(self.db, self.quotas, CLIENTKEY, *resolve)
        if forced:
            try:
                await self.quotas.issue(
                    CLIENTKEY, forced, f"cyclades event {job_id}", force=True, auto_accept=True
                )
            except errors.NefosError as exc:  # the reconciler's pass corrects it later
                log.warning("could not follow job %s in quotas: %s", job_id, exc.message)

    async def _apply_nics(
        self,
        s: AsyncSession,
        server: Server,
        opcode: str,
        result: str,
        message: Message,
        logmsg: str,
    ) -> bool:
        """What a finished job did to the instance's NICs: the ports it plugged in are
        ACTIVE (ERROR if it failed), their networks active on the backend. Returns
        whether NICs went away (the server, or some of its NICs), so networks the
        backend no longer needs can go too."""
        if opcode == OP_REMOVE:
            return result != transitions.FAILED
        placed, removed = nic_changes(opcode, message.get("job_fields") or {})
        done = result == transitions.SUCCEEDED
        await self.nics.mark(s, _ports(placed), "ACTIVE" if done else "ERROR")
        if not done:
            return False
        if server.backend_id is not None:
            networks = [str(nic.get("network")) for nic in placed if nic.get("network")]
            await self.backend_networks.seen_in_use(s, server.backend_id, networks)
        if (placed or removed) and opcode == OP_MODIFY and "without hotplugging" in logmsg:
            s.add(
                diagnostic(
                    server.id,
                    "INFO",
                    "The NIC change reaches the guest at its next reboot: its hypervisor "
                    "could not plug it in while it runs",
                )
            )
        return bool(removed)

    async def _apply_new_flavor(self, s: AsyncSession, server: Server, message: Message) -> None:
        beparams = (message.get("job_fields") or {}).get("beparams") or {}
        vcpus, memory = beparams.get("vcpus"), beparams.get("memory")
        current = await s.get(Flavor, server.flavor_id)
        assert current is not None
        if vcpus is None or memory is None:
            return
        flavor = await s.scalar(
            select(Flavor).where(
                Flavor.vcpus == vcpus,
                Flavor.ram == memory,
                Flavor.disk == current.disk,
                Flavor.disk_template == current.disk_template,
            )
        )
        if flavor is not None:
            server.flavor_id = flavor.id
