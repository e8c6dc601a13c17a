"""The embedded backend: a simulated cluster inside the nefos process.

It follows Ganeti's job model (each request is a job that goes queued → running →
success or error, one job per instance at a time, with delays) and reports through
the same bus events as ``nefos ganeti eventd``, so the dispatcher, quotas and
reconciler run exactly as against a real cluster. It runs no guest, and says so
(``ClusterInfo.runs_guests``). Its instances and job counter live in a JSON file under
the data directory, so a restart keeps them, as a real cluster would.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nefos.backends.base import (
    ERROR,
    OP_CREATE,
    OP_MODIFY,
    OP_REBOOT,
    OP_REMOVE,
    OP_ROUTING_KEY,
    OP_SHUTDOWN,
    OP_STARTUP,
    QUEUED,
    RUNNING,
    SUCCESS,
    ClusterInfo,
    ConsoleInfo,
    InstanceInfo,
    InstanceSpec,
)
from nefos.core import errors
from nefos.core.bus import Bus

MEMORY_MIB = 64 * 1024
DISK_MIB = 1024 * 1024
CPUS = 32
DISK_TEMPLATES = ("file", "diskless", "plain", "drbd", "sharedfile", "rbd", "ext_archipelago")


def _now() -> list[int]:
    seconds = time.time()
    return [int(seconds), int((seconds % 1) * 1_000_000)]


class EmbeddedCluster:
    def __init__(self, name: str, bus: Bus, state: Path, delay: float = 0.5):
        self.name = name
        self.bus = bus
        self.state = state
        self.delay = delay
        self._failures: dict[str, list[str]] = {}
        self.drop_events = 0.0  # the share of events lost on the way (fault injection)
        self._locks: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._loaded = self._load()

    # -- persistent state ------------------------------------------------------------------

    def _load(self) -> dict[str, Any]:
        try:
            return json.loads(self.state.read_text())
        except FileNotFoundError:
            return {"next_job": 1, "instances": {}}

    def _reload(self) -> None:
        on_disk = self._load()
        self._loaded["instances"] = on_disk["instances"]
        self._loaded["next_job"] = max(self._loaded["next_job"], on_disk["next_job"])

    def _save(self) -> None:
        self.state.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.state.with_suffix(".tmp")
        temporary.write_text(json.dumps(self._loaded))
        os.replace(temporary, self.state)

    @property
    def _instances(self) -> dict[str, dict[str, Any]]:
        return self._loaded["instances"]

    # -- failure injection (tests and demos) ------------------------------------------------

    def fail_next(self, opcode: str, message: str = "Injected failure") -> None:
        """Make the next job of ``opcode`` end in error with ``message``."""
        self._failures.setdefault(opcode, []).append(message)

    def change_behind_back(self, instance: str, **changes: Any) -> None:
        """Change an instance as an administrator would on the cluster itself,
        without telling nefos (for reconciler tests); ``running=None`` removes it."""
        self._reload()
        if changes.get("running", True) is None:
            self._instances.pop(instance, None)
        else:
            self._instances.setdefault(instance, {"running": False, "vcpus": 1, "memory": 128})
            self._instances[instance].update(changes)
        self._save()

    # -- jobs -------------------------------------------------------------------------------

    def _submit(
        self, opcode: str, instance: str, apply: Callable[[], str | None], fields: dict
    ) -> int:
        self._reload()
        job_id = self._loaded["next_job"]
        self._loaded["next_job"] = job_id + 1
        self._save()
        task = asyncio.get_running_loop().create_task(
            self._run(job_id, opcode, instance, apply, fields)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return job_id

    async def _publish(
        self, job_id: int, opcode: str, instance: str, status: str, logmsg: str, fields: dict
    ) -> None:
        if self.drop_events and random.random() < self.drop_events:
            return
        await self.bus.publish(
            OP_ROUTING_KEY,
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
            },
        )

    async def _run(
        self, job_id: int, opcode: str, instance: str, apply: Callable[[], str | None], fields: dict
    ) -> None:
        await self._publish(job_id, opcode, instance, QUEUED, "", fields)
        lock = self._locks.setdefault(instance, asyncio.Lock())
        async with lock:  # Ganeti runs one job per instance at a time
            await asyncio.sleep(self.delay / 2)
            await self._publish(job_id, opcode, instance, RUNNING, "", fields)
            await asyncio.sleep(self.delay / 2)
            self._reload()  # another process (an operator command) may have changed it
            failures = self._failures.get(opcode)
            problem = failures.pop(0) if failures else apply()
            if problem is None:
                self._save()
            status = ERROR if problem else SUCCESS
            await self._publish(job_id, opcode, instance, status, problem or "", fields)

    def _require(self, instance: str) -> str | None:
        return None if instance in self._instances else f"Instance '{instance}' not known"

    async def create_instance(self, spec: InstanceSpec) -> int:
        def apply() -> str | None:
            if spec.name in self._instances:
                return f"Instance '{spec.name}' is already in the cluster"
            self._instances[spec.name] = {
                "running": True,
                "vcpus": spec.vcpus,
                "memory": spec.memory,
                "disk": spec.disk,
            }
            return None

        fields = {
            "beparams": {"vcpus": spec.vcpus, "memory": spec.memory},
            "disks": [{"size": spec.disk * 1024}],
            "nics": spec.nics,
        }
        return self._submit(OP_CREATE, spec.name, apply, fields)

    def _set_running(self, instance: str, running: bool) -> Callable[[], str | None]:
        def apply() -> str | None:
            problem = self._require(instance)
            if problem is None:
                self._instances[instance]["running"] = running
            return problem

        return apply

    async def startup(self, instance: str) -> int:
        return self._submit(OP_STARTUP, instance, self._set_running(instance, True), {})

    async def shutdown(self, instance: str, grace_seconds: int = 120) -> int:
        return self._submit(OP_SHUTDOWN, instance, self._set_running(instance, False), {})

    async def reboot(self, instance: str, hard: bool = False) -> int:
        fields = {"reboot_type": "hard" if hard else "soft"}
        return self._submit(OP_REBOOT, instance, self._set_running(instance, True), fields)

    async def modify(self, instance: str, vcpus: int, memory: int) -> int:
        def apply() -> str | None:
            problem = self._require(instance)
            if problem is None:
                self._instances[instance].update(vcpus=vcpus, memory=memory)
            return problem

        fields = {"beparams": {"vcpus": vcpus, "memory": memory}}
        return self._submit(OP_MODIFY, instance, apply, fields)

    async def remove(self, instance: str) -> int:
        def apply() -> str | None:
            problem = self._require(instance)
            self._instances.pop(instance, None)
            return problem

        return self._submit(OP_REMOVE, instance, apply, {})

    async def instances(self) -> dict[str, InstanceInfo]:
        self._reload()
        return {
            name: InstanceInfo(name, bool(i["running"]), int(i["vcpus"]), int(i["memory"]))
            for name, i in self._instances.items()
        }

    async def info(self) -> ClusterInfo:
        used_memory = sum(int(i["memory"]) for i in self._instances.values() if i["running"])
        used_disk = sum(int(i.get("disk", 0)) * 1024 for i in self._instances.values())
        return ClusterInfo(
            mfree=MEMORY_MIB - used_memory,
            mtotal=MEMORY_MIB,
            dfree=DISK_MIB - used_disk,
            dtotal=DISK_MIB,
            ctotal=CPUS,
            pinst_cnt=len(self._instances),
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
