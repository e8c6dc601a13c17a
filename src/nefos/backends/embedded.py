"""The embedded backend: a simulated cluster inside the nefos process.

It follows Ganeti's job model (each request is a job that goes queued → running →
success or error, one job per instance at a time, with delays) and reports through
the same bus events as ``nefos ganeti eventd``, so the dispatcher, quotas and
reconciler run exactly as against a real cluster. It runs no guest, and says so
(``ClusterInfo.runs_guests``); its instances keep their NICs (MAC, address, link), but
no packet flows. Its instances and job counter live in a JSON file under
the data directory, so a restart keeps them, as a real cluster would.

It injects no faults: tests that need lost events, failing jobs or changes made behind
nefos's back use a subclass of their own (``tests/backends/faulty.py``), which overrides
:meth:`EmbeddedCluster.plan` and :meth:`EmbeddedCluster.report`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple, assert_never

from nefos.backends.base import (
    ERROR,
    OP_ROUTING_KEY,
    QUEUED,
    RUNNING,
    SUCCESS,
    ClusterInfo,
    ConsoleInfo,
    InstanceInfo,
)
from nefos.backends.ops import (
    AddNic,
    CreateInstance,
    ModifyInstance,
    ModifyNic,
    Op,
    RebootInstance,
    RemoveInstance,
    RemoveNic,
    ShutdownInstance,
    StartupInstance,
)
from nefos.core import errors
from nefos.core.bus import Bus, Message

MEMORY_MIB = 64 * 1024
DISK_MIB = 1024 * 1024
CPUS = 32
DISK_TEMPLATES = ("file", "diskless", "plain", "drbd", "sharedfile", "rbd", "ext_archipelago")

# What a job does to the simulated cluster when it runs: None, or why it failed.
Effect = Callable[[], str | None]


def _now() -> list[int]:
    seconds = time.time()
    return [int(seconds), int((seconds % 1) * 1_000_000)]


class Plan(NamedTuple):
    """One job as the cluster will run it: its effect, and the ``job_fields`` its
    events carry (as Ganeti's opcode fields)."""

    effect: Effect
    fields: dict[str, Any]


class InstanceFile:
    """The simulated cluster's persistent state: its instances and next job id, in one
    JSON file that every process of the deployment (an operator command too) shares.
    Read it again before acting on it, write it after a change."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._loaded = self._load()

    def _load(self) -> dict[str, Any]:
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return {"next_job": 1, "instances": {}}

    def read(self) -> None:
        on_disk = self._load()
        self._loaded["instances"] = on_disk["instances"]
        self._loaded["next_job"] = max(self._loaded["next_job"], on_disk["next_job"])

    def write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self._loaded))
        os.replace(temporary, self.path)

    @property
    def instances(self) -> dict[str, dict[str, Any]]:
        return self._loaded["instances"]

    def take_job_id(self) -> int:
        """The next job id, written at once so no other process hands it out too."""
        self.read()
        job_id = self._loaded["next_job"]
        self._loaded["next_job"] = job_id + 1
        self.write()
        return job_id


class EmbeddedCluster:
    def __init__(self, name: str, bus: Bus, state: Path, delay: float = 0.5):
        self.name = name
        self.bus = bus
        self.state = InstanceFile(state)
        self.delay = delay
        self._locks: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    # -- jobs -------------------------------------------------------------------------------

    async def submit(self, op: Op) -> int:
        plan = self.plan(op)
        job_id = self.state.take_job_id()
        task = asyncio.get_running_loop().create_task(
            self._run(job_id, op.OPCODE, op.instance, plan)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return job_id

    def plan(self, op: Op) -> Plan:
        """How this cluster runs each operation: the one place that interprets them."""
        match op:
            case CreateInstance(spec=spec):
                fields = {
                    "beparams": {"vcpus": spec.vcpus, "memory": spec.memory},
                    "disks": [{"size": spec.disk * 1024}],
                    "nics": spec.nics,
                }
                return Plan(self._create(op), fields)
            case StartupInstance(instance=instance):
                return Plan(self._set_running(instance, True), {})
            case ShutdownInstance(instance=instance):
                return Plan(self._set_running(instance, False), {})
            case RebootInstance(instance=instance, hard=hard):
                fields = {"reboot_type": "hard" if hard else "soft"}
                return Plan(self._set_running(instance, True), fields)
            case ModifyInstance(instance=instance, vcpus=vcpus, memory=memory):
                fields = {"beparams": {"vcpus": vcpus, "memory": memory}}
                return Plan(self._modify(instance, vcpus, memory), fields)
            case RemoveInstance(instance=instance):
                return Plan(self._remove(instance), {})
            case AddNic(instance=instance, nic=nic):
                return Plan(self._change_nic(instance, nic["name"], nic), {"nics": [["add", nic]]})
            case ModifyNic(instance=instance, nic=nic):
                fields = {"nics": [["modify", nic["name"], nic]]}
                return Plan(self._change_nic(instance, nic["name"], nic, replace=True), fields)
            case RemoveNic(instance=instance, name=name):
                return Plan(self._change_nic(instance, name, None), {"nics": [["remove", name]]})
            case _:
                assert_never(op)

    async def report(self, event: Message) -> None:
        """Publish one job event, as ``nefos ganeti eventd`` does for a real cluster."""
        await self.bus.publish(OP_ROUTING_KEY, event)

    async def _publish(
        self, job_id: int, opcode: str, instance: str, status: str, logmsg: str, fields: dict
    ) -> None:
        await self.report(
            {
                "type": "ganeti-op-status",
                "instance": instance,
                "operation": opcode,
                "status": status,
                "jobId": job_id,
                "cluster": self.name,
                "logmsg": logmsg,
                "event_time": _now(),
                "job_fields": fields,
            }
        )

    async def _run(self, job_id: int, opcode: str, instance: str, plan: Plan) -> None:
        await self._publish(job_id, opcode, instance, QUEUED, "", plan.fields)
        lock = self._locks.setdefault(instance, asyncio.Lock())
        async with lock:  # Ganeti runs one job per instance at a time
            await asyncio.sleep(self.delay / 2)
            await self._publish(job_id, opcode, instance, RUNNING, "", plan.fields)
            await asyncio.sleep(self.delay / 2)
            self.state.read()  # another process (an operator command) may have changed it
            problem = plan.effect()
            if problem is None:
                self.state.write()
            status = ERROR if problem else SUCCESS
            await self._publish(job_id, opcode, instance, status, problem or "", plan.fields)

    # -- effects ----------------------------------------------------------------------------

    def _require(self, instance: str) -> str | None:
        return None if instance in self.state.instances else f"Instance '{instance}' not known"

    def _create(self, op: CreateInstance) -> Effect:
        spec = op.spec

        def apply() -> str | None:
            if spec.name in self.state.instances:
                return f"Instance '{spec.name}' is already in the cluster"
            self.state.instances[spec.name] = {
                "running": True,
                "vcpus": spec.vcpus,
                "memory": spec.memory,
                "disk": spec.disk,
                "nics": [dict(nic) for nic in spec.nics],
            }
            return None

        return apply

    def _set_running(self, instance: str, running: bool) -> Effect:
        def apply() -> str | None:
            problem = self._require(instance)
            if problem is None:
                self.state.instances[instance]["running"] = running
            return problem

        return apply

    def _modify(self, instance: str, vcpus: int, memory: int) -> Effect:
        def apply() -> str | None:
            problem = self._require(instance)
            if problem is None:
                self.state.instances[instance].update(vcpus=vcpus, memory=memory)
            return problem

        return apply

    def _change_nic(
        self, instance: str, name: str, nic: dict[str, Any] | None, replace: bool = False
    ) -> Effect:
        """Add (``nic``), replace (``replace``) or remove (``nic`` None) the NIC ``name``:
        only the record changes, since no packet flows here."""

        def apply() -> str | None:
            problem = self._require(instance)
            if problem is not None:
                return problem
            nics = self.state.instances[instance].setdefault("nics", [])
            at = next((i for i, item in enumerate(nics) if item.get("name") == name), None)
            if nic is not None and not replace:
                if at is not None:
                    return f"Instance '{instance}' already has a NIC named '{name}'"
                nics.append(dict(nic))
            elif at is None:
                return f"Instance '{instance}' has no NIC named '{name}'"
            elif nic is not None:
                nics[at] = dict(nic)
            else:
                del nics[at]
            return None

        return apply

    def _remove(self, instance: str) -> Effect:
        def apply() -> str | None:
            problem = self._require(instance)
            self.state.instances.pop(instance, None)
            return problem

        return apply

    # -- what the cluster reports -------------------------------------------------------------

    async def instances(self) -> dict[str, InstanceInfo]:
        self.state.read()
        return {
            name: InstanceInfo(name, bool(i["running"]), int(i["vcpus"]), int(i["memory"]))
            for name, i in self.state.instances.items()
        }

    async def info(self) -> ClusterInfo:
        instances = self.state.instances
        used_memory = sum(int(i["memory"]) for i in instances.values() if i["running"])
        used_disk = sum(int(i.get("disk", 0)) * 1024 for i in instances.values())
        return ClusterInfo(
            mfree=MEMORY_MIB - used_memory,
            mtotal=MEMORY_MIB,
            dfree=DISK_MIB - used_disk,
            dtotal=DISK_MIB,
            ctotal=CPUS,
            pinst_cnt=len(instances),
            disk_templates=DISK_TEMPLATES,
            hypervisor="embedded",
            runs_guests=False,
        )

    async def console(self, instance: str) -> ConsoleInfo:
        raise errors.Conflict("This server's backend runs no guest, so it has no console")

    async def idle(self) -> None:
        """Wait for the jobs in flight (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
