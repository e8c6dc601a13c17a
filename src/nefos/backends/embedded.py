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
    FIREWALL_TAG,
    NETWORK_PREFIX,
    NETWORK_ROUTING_KEY,
    NIC_PREFIX,
    OP_ROUTING_KEY,
    QUEUED,
    RUNNING,
    SUCCESS,
    ClusterInfo,
    ConsoleInfo,
    InstanceInfo,
    NetworkInfo,
    NicInfo,
    firewall_tag,
    volume_id_of,
)
from nefos.backends.ops import (
    AddNic,
    AttachDisk,
    ConnectNetwork,
    CreateInstance,
    CreateNetwork,
    DetachDisk,
    ModifyInstance,
    ModifyNic,
    NetworkOp,
    Op,
    RebootInstance,
    RemoveInstance,
    RemoveNetwork,
    RemoveNic,
    SetFirewall,
    ShutdownInstance,
    StartupInstance,
)
from nefos.core import errors
from nefos.core.bus import Bus, Message

MEMORY_MIB = 64 * 1024
DISK_MIB = 1024 * 1024
CPUS = 32
GROUP = "default"  # the simulated cluster's one node group
# Ganeti names the ExtStorage template "ext" (a flavor says ext_<provider>, spec §2.7).
DISK_TEMPLATES = (
    "file", "diskless", "plain", "drbd", "sharedfile", "rbd", "ext", "ext_archipelago",
)  # fmt: skip

# What a job does to the simulated cluster when it runs: None, or why it failed.
Effect = Callable[[], str | None]


def _now() -> list[int]:
    seconds = time.time()
    return [int(seconds), int((seconds % 1) * 1_000_000)]


class Plan(NamedTuple):
    """One job as the cluster will run it: its effect, the ``job_fields`` its events
    carry (as Ganeti's opcode fields), and the jobs that must succeed before it runs."""

    effect: Effect
    fields: dict[str, Any]
    depends: tuple[int, ...] = ()


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
            return {"next_job": 1, "instances": {}, "networks": {}}

    def read(self) -> None:
        on_disk = self._load()
        self._loaded["instances"] = on_disk["instances"]
        self._loaded["networks"] = on_disk.get("networks", {})
        self._loaded["next_job"] = max(self._loaded["next_job"], on_disk["next_job"])

    def write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self._loaded))
        os.replace(temporary, self.path)

    @property
    def instances(self) -> dict[str, dict[str, Any]]:
        return self._loaded["instances"]

    @property
    def networks(self) -> dict[str, dict[str, Any]]:
        return self._loaded.setdefault("networks", {})

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
        self._ended: dict[int, asyncio.Future[str]] = {}  # job id -> its final status

    # -- jobs -------------------------------------------------------------------------------

    async def submit(self, op: Op | NetworkOp) -> int:
        plan = self.plan(op)
        job_id = self.state.take_job_id()
        self._ended[job_id] = asyncio.get_running_loop().create_future()
        if isinstance(op, CreateNetwork | ConnectNetwork | RemoveNetwork):
            target, kind = op.network, "network"
        else:
            target, kind = op.instance, "instance"
        task = asyncio.get_running_loop().create_task(
            self._run(job_id, op.OPCODE, target, kind, plan)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return job_id

    def plan(self, op: Op | NetworkOp) -> Plan:
        """How this cluster runs each operation: the one place that interprets them."""
        match op:
            case CreateInstance(spec=spec):
                disks = [dict(v) for v in spec.volumes] or [{"size": spec.disk * 1024}]
                fields = {
                    "beparams": {"vcpus": spec.vcpus, "memory": spec.memory},
                    "disks": disks,
                    "nics": spec.nics,
                }
                return Plan(self._create(op), fields, spec.depends)
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
            case AddNic(instance=instance, nic=nic, depends=depends):
                fields = {"nics": [["add", -1, nic]]}
                return Plan(self._change_nic(instance, nic["name"], nic), fields, depends)
            case ModifyNic(instance=instance, nic=nic, depends=depends):
                fields = {"nics": [["modify", nic["name"], nic]]}
                effect = self._change_nic(instance, nic["name"], nic, replace=True)
                return Plan(effect, fields, depends)
            case RemoveNic(instance=instance, name=name):
                fields = {"nics": [["remove", name, {}]]}
                return Plan(self._change_nic(instance, name, None), fields)
            case AttachDisk(instance=instance, disk=disk):
                fields = {"disks": [["add", -1, disk]]}
                return Plan(self._change_disk(instance, disk["name"], disk), fields)
            case DetachDisk(instance=instance, name=name):
                fields = {"disks": [["detach", name, {}]]}
                return Plan(self._change_disk(instance, name, None), fields)
            case SetFirewall(instance=instance, nic=nic, level=level):
                return Plan(self._set_firewall(instance, nic, level), {"kind": "instance"})
            case CreateNetwork(spec=spec, depends=depends):
                return Plan(self._add_network(spec.name, spec.subnet, spec.tags), {}, depends)
            case ConnectNetwork(network=network, mode=mode, link=link, depends=depends):
                fields = {"network_mode": mode, "network_link": link}
                return Plan(self._connect(network, (mode, link)), fields, depends)
            case RemoveNetwork(network=network, depends=depends):
                return Plan(self._remove_network(network), {}, depends)
            case _:
                assert_never(op)

    async def report(self, event: Message) -> None:
        """Publish one job event, as ``nefos ganeti eventd`` does for a real cluster."""
        await self.bus.publish(OP_ROUTING_KEY, event)

    async def _publish(
        self,
        job_id: int,
        opcode: str,
        target: tuple[str, str],
        status: str,
        logmsg: str,
        fields: dict,
    ) -> None:
        kind, name = target
        event = {
            "type": f"ganeti-{'op' if kind == 'instance' else 'network'}-status",
            kind: name,
            "operation": opcode,
            "status": status,
            "jobId": job_id,
            "cluster": self.name,
            "logmsg": logmsg,
            "event_time": _now(),
            "job_fields": fields,
        }
        if kind == "instance":
            await self.report(event)
        else:
            await self.bus.publish(NETWORK_ROUTING_KEY, event)

    async def _dependencies(self, depends: tuple[int, ...]) -> str | None:
        """Wait for the jobs this one depends on; why it cannot run, if one failed. A job
        this process does not know ran before it started, and counts as done."""
        for job_id in depends:
            ended = self._ended.get(job_id)
            status = SUCCESS if ended is None else await asyncio.shield(ended)
            if status != SUCCESS:
                return f"Dependency job {job_id} has status '{status}', not 'success'"
        return None

    async def _run(self, job_id: int, opcode: str, name: str, kind: str, plan: Plan) -> None:
        target = (kind, name)
        await self._publish(job_id, opcode, target, QUEUED, "", plan.fields)
        status = ERROR
        try:
            problem = await self._dependencies(plan.depends)
            lock = self._locks.setdefault(f"{kind}:{name}", asyncio.Lock())
            async with lock:  # Ganeti runs one job per instance (or network) at a time
                if problem is None:
                    await asyncio.sleep(self.delay / 2)
                    await self._publish(job_id, opcode, target, RUNNING, "", plan.fields)
                    await asyncio.sleep(self.delay / 2)
                    self.state.read()  # another process (an operator command) may have changed it
                    problem = plan.effect()
                    if problem is None:
                        self.state.write()
                status = ERROR if problem else SUCCESS
                await self._publish(job_id, opcode, target, status, problem or "", plan.fields)
        finally:
            ended = self._ended.get(job_id)
            if ended is not None and not ended.done():
                ended.set_result(status)

    # -- effects ----------------------------------------------------------------------------

    def _require(self, instance: str) -> str | None:
        return None if instance in self.state.instances else f"Instance '{instance}' not known"

    def _create(self, op: CreateInstance) -> Effect:
        spec = op.spec

        def apply() -> str | None:
            if spec.name in self.state.instances:
                return f"Instance '{spec.name}' is already in the cluster"
            for nic in spec.nics:
                problem = self._network_usable(nic)
                if problem is not None:
                    return problem
            self.state.instances[spec.name] = {
                "running": True,
                "vcpus": spec.vcpus,
                "memory": spec.memory,
                "disk": spec.disk,
                "nics": [dict(nic) for nic in spec.nics],
                "tags": list(spec.tags),
                "volumes": [dict(v) for v in spec.volumes],
            }
            return None

        return apply

    def _network_usable(self, nic: dict[str, Any]) -> str | None:
        """A NIC on a network needs it on the cluster and connected, as Ganeti does."""
        name = nic.get("network")
        if not name:
            return None
        network = self.state.networks.get(name)
        if network is None:
            return f"Network '{name}' not known"
        if GROUP not in network["groups"]:
            return f"Network '{name}' is not connected to the node group"
        return None

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
                problem = self._network_usable(nic)
                if problem is not None:
                    return problem
                nics.append(dict(nic))
            elif at is None:
                return f"Instance '{instance}' has no NIC named '{name}'"
            elif nic is not None:
                nics[at] = dict(nic)
            else:
                del nics[at]
            return None

        return apply

    def _change_disk(self, instance: str, name: str, disk: dict[str, Any] | None) -> Effect:
        """Plug in (``disk``) or unplug (None) the volume disk ``name``: only the record
        changes, since no guest runs here."""

        def apply() -> str | None:
            problem = self._require(instance)
            if problem is not None:
                return problem
            disks = self.state.instances[instance].setdefault("volumes", [])
            at = next((i for i, item in enumerate(disks) if item.get("name") == name), None)
            if disk is not None:
                if at is not None:
                    return f"Instance '{instance}' already has a disk named '{name}'"
                disks.append(dict(disk))
            elif at is None:
                return f"Instance '{instance}' has no disk named '{name}'"
            else:
                del disks[at]
            return None

        return apply

    def _set_firewall(self, instance: str, nic: str, level: str) -> Effect:
        def apply() -> str | None:
            problem = self._require(instance)
            if problem is not None:
                return problem
            record = self.state.instances[instance]
            stale = f"{FIREWALL_TAG}{nic}:"
            tags = [t for t in record.get("tags", []) if not t.startswith(stale)]
            record["tags"] = [*tags, firewall_tag(nic, level)]
            return None

        return apply

    def _add_network(self, name: str, subnet: str | None, tags: tuple[str, ...]) -> Effect:
        def apply() -> str | None:
            if name in self.state.networks:
                return f"Network '{name}' already exists"
            self.state.networks[name] = {"subnet": subnet, "tags": list(tags), "groups": {}}
            return None

        return apply

    def _connect(self, name: str, wiring: tuple[str, str] | None) -> Effect:
        def apply() -> str | None:
            network = self.state.networks.get(name)
            if network is None:
                return f"Network '{name}' not known"
            if wiring is None:
                network["groups"].pop(GROUP, None)
            else:
                network["groups"][GROUP] = list(wiring)
            return None

        return apply

    def _remove_network(self, name: str) -> Effect:
        def apply() -> str | None:
            network = self.state.networks.get(name)
            if network is None:
                return f"Network '{name}' not known"
            in_use = any(
                nic.get("network") == name
                for instance in self.state.instances.values()
                for nic in instance.get("nics", [])
            )
            if in_use:  # Ganeti refuses to disconnect it, and the removal never runs
                return f"Network '{name}' is still used by instances"
            del self.state.networks[name]  # disconnected and removed
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
            name: InstanceInfo(
                name,
                bool(i["running"]),
                int(i["vcpus"]),
                int(i["memory"]),
                nics=tuple(
                    NicInfo(n["name"], n.get("network") or "", n.get("ip"), n.get("mac") or "")
                    for n in i.get("nics", [])
                    if str(n.get("name") or "").startswith(NIC_PREFIX)
                ),
                tags=tuple(t for t in i.get("tags", []) if t.startswith(FIREWALL_TAG)),
                disks=tuple(
                    str(d["name"])
                    for d in i.get("volumes", [])
                    if volume_id_of(str(d.get("name") or ""))
                ),
            )
            for name, i in self.state.instances.items()
        }

    async def networks(self) -> dict[str, NetworkInfo]:
        self.state.read()
        return {
            name: NetworkInfo(
                name,
                n.get("subnet"),
                {group: (wiring[0], wiring[1]) for group, wiring in n["groups"].items()},
                tuple(n.get("tags", [])),
            )
            for name, n in self.state.networks.items()
            if name.startswith(NETWORK_PREFIX)
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
