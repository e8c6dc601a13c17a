"""Backend operations as data: what nefos asks of a cluster, one frozen record each.

As Ganeti's opcodes, a record says what to do and nothing about how: the effect path
builds one and hands it to :meth:`ComputeBackend.submit`, and each backend interprets
the records in one place (a ``match`` over :data:`Op`). A record knows its Ganeti
opcode, which is also what the update path reads back in the job's events, so the
transition table (``nefos.compute.transitions``) keys on the same names.

A new operation (the NIC and disk operations networks and volumes bring) is one more
record here, added to :data:`Op`; every backend's ``match`` then has to handle it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from nefos.backends.base import (
    OP_CREATE,
    OP_MODIFY,
    OP_NETWORK_ADD,
    OP_NETWORK_CONNECT,
    OP_NETWORK_REMOVE,
    OP_REBOOT,
    OP_REMOVE,
    OP_SHUTDOWN,
    OP_STARTUP,
    OP_TAGS_SET,
    ClusterInfo,
    ConsoleInfo,
    InstanceInfo,
    InstanceSpec,
    NetworkInfo,
    NetworkSpec,
)


@dataclass(frozen=True)
class CreateInstance:
    """Build a new instance and start it (``spec.name`` names it)."""

    OPCODE: ClassVar[str] = OP_CREATE
    spec: InstanceSpec

    @property
    def instance(self) -> str:
        return self.spec.name


@dataclass(frozen=True)
class StartupInstance:
    OPCODE: ClassVar[str] = OP_STARTUP
    instance: str


@dataclass(frozen=True)
class ShutdownInstance:
    """``grace_seconds``: how long the guest may take to power off before it is cut."""

    OPCODE: ClassVar[str] = OP_SHUTDOWN
    instance: str
    grace_seconds: int = 120


@dataclass(frozen=True)
class RebootInstance:
    """``hard``: reset the virtual machine rather than ask the guest to restart."""

    OPCODE: ClassVar[str] = OP_REBOOT
    instance: str
    hard: bool = False


@dataclass(frozen=True)
class ModifyInstance:
    """A resize: new CPUs and memory (MiB); the disk never changes."""

    OPCODE: ClassVar[str] = OP_MODIFY
    instance: str
    vcpus: int
    memory: int


@dataclass(frozen=True)
class RemoveInstance:
    OPCODE: ClassVar[str] = OP_REMOVE
    instance: str


@dataclass(frozen=True)
class AddNic:
    """Plug a NIC in: ``nic`` holds Ganeti's NIC parameters (``name``, ``nefos-port-<port
    id>``; ``network``, the cluster network's name; ``mac``; ``ip``). ``hotplug``: the
    instance runs, so the NIC should reach the guest now, where the hypervisor can
    (elsewhere it does at the next boot). ``depends``: jobs that must succeed first (the
    network's)."""

    OPCODE: ClassVar[str] = OP_MODIFY
    instance: str
    nic: dict[str, Any]
    hotplug: bool = False
    depends: tuple[int, ...] = ()


@dataclass(frozen=True)
class ModifyNic:
    """Change the NIC named ``nic["name"]`` to these parameters (its addresses changed)."""

    OPCODE: ClassVar[str] = OP_MODIFY
    instance: str
    nic: dict[str, Any]
    hotplug: bool = False
    depends: tuple[int, ...] = ()


@dataclass(frozen=True)
class RemoveNic:
    """Unplug the NIC named ``name`` (``nefos-port-<port id>``)."""

    OPCODE: ClassVar[str] = OP_MODIFY
    instance: str
    name: str
    hotplug: bool = False


@dataclass(frozen=True)
class AttachDisk:
    """Plug a volume in as a disk: ``disk`` holds Ganeti's disk parameters (``name``,
    ``nefos-vol-<volume id>``; ``size`` in MiB; ``provider`` ``nefos``; ``volume``, the
    volume's id; ``access`` ``userspace``), so that on Ganeti the ``nefos`` ExtStorage
    provider finds the volume and QEMU opens it through ``nefos volumed``. ``hotplug``:
    the instance runs, so the disk should reach the guest now."""

    OPCODE: ClassVar[str] = OP_MODIFY
    instance: str
    disk: dict[str, Any]
    hotplug: bool = False


@dataclass(frozen=True)
class DetachDisk:
    """Unplug the disk named ``name`` (``nefos-vol-<volume id>``) and keep the volume:
    Ganeti's ``detach``, never ``remove`` (which would remove the volume)."""

    OPCODE: ClassVar[str] = OP_MODIFY
    instance: str
    name: str
    hotplug: bool = False


@dataclass(frozen=True)
class SetFirewall:
    """Give the NIC named ``nic`` the firewall profile ``level`` (protected, limited or
    unprotected): the instance's tag ``nefos:firewall:<nic>:<level>`` replaces any other
    of that NIC."""

    OPCODE: ClassVar[str] = OP_TAGS_SET
    instance: str
    nic: str
    level: str


# -- networks: jobs on no instance -----------------------------------------------------


@dataclass(frozen=True)
class CreateNetwork:
    """Add a network to the cluster (not yet usable: connect it)."""

    OPCODE: ClassVar[str] = OP_NETWORK_ADD
    spec: NetworkSpec
    depends: tuple[int, ...] = ()  # e.g. the removal of its former self

    @property
    def network(self) -> str:
        return self.spec.name


@dataclass(frozen=True)
class ConnectNetwork:
    """Connect the network to the cluster's node groups, ``mode`` bridged or routed, on
    ``link`` (a bridge or a routing table), once the jobs in ``depends`` succeeded."""

    OPCODE: ClassVar[str] = OP_NETWORK_CONNECT
    network: str
    mode: str
    link: str
    depends: tuple[int, ...] = ()


@dataclass(frozen=True)
class RemoveNetwork:
    """Disconnect the network from every node group, then remove it from the cluster
    (once the jobs in ``depends`` succeeded); the job id is the removal's."""

    OPCODE: ClassVar[str] = OP_NETWORK_REMOVE
    network: str
    depends: tuple[int, ...] = ()


# Every operation a backend must understand.
Op = (
    CreateInstance
    | StartupInstance
    | ShutdownInstance
    | RebootInstance
    | ModifyInstance
    | RemoveInstance
    | AddNic
    | ModifyNic
    | RemoveNic
    | AttachDisk
    | DetachDisk
    | SetFirewall
)
NetworkOp = CreateNetwork | ConnectNetwork | RemoveNetwork


class ComputeBackend(Protocol):
    name: str

    async def submit(self, op: Op | NetworkOp) -> int:
        """Start one job for ``op`` (one of the records above) and return its
        id at once; its progress arrives later as job events on the bus."""
        ...

    async def instances(self) -> dict[str, InstanceInfo]: ...

    async def networks(self) -> dict[str, NetworkInfo]:
        """The cluster's networks named ``nefos-net-...``."""
        ...

    async def info(self) -> ClusterInfo: ...

    async def console(self, instance: str) -> ConsoleInfo:
        """Its VNC console; raises ``Conflict`` when the instance has none to offer."""
        ...

    async def close(self) -> None: ...
