"""What compute asks of a cluster, and what a cluster tells compute back.

The effect path hands a cluster an operation (a record of ``nefos.backends.ops``, where
the ``ComputeBackend`` interface lives beside the records it takes) and gets a job id at
once; the outcome arrives later as job events on the bus (the update path), in the
shape Synnefo's snf-ganeti-eventd publishes (spec §2.6), whichever cluster ran it:

    routing key  ganeti.<prefix>.event.op
    {"type": "ganeti-op-status", "instance": "snf-12", "operation": "OP_INSTANCE_CREATE",
     "status": "success", "jobId": 7, "cluster": "<backend name>", "logmsg": "...",
     "event_time": [sec, usec], "job_fields": {...}}

Instances are named ``snf-<server id>``; statuses are Ganeti's job statuses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

INSTANCE_PREFIX = "snf-"
OP_ROUTING_KEY = "ganeti.snf.event.op"
OP_BINDING = "ganeti.*.event.op"
# Jobs on networks (spec §2.6 ``ganeti-network-status``), and the names nefos gives its
# networks and NICs on a cluster (the node data plane reads them: docs/network.md).
NETWORK_ROUTING_KEY = "ganeti.snf.event.network"
NETWORK_BINDING = "ganeti.*.event.network"
NETWORK_PREFIX = "nefos-net-"
NIC_PREFIX = "nefos-port-"
DISK_PREFIX = "nefos-vol-"  # a disk that is a nefos volume (docs/volumes.md)

# Ganeti opcodes the update path understands.
OP_CREATE = "OP_INSTANCE_CREATE"
OP_STARTUP = "OP_INSTANCE_STARTUP"
OP_SHUTDOWN = "OP_INSTANCE_SHUTDOWN"
OP_REBOOT = "OP_INSTANCE_REBOOT"
OP_MODIFY = "OP_INSTANCE_SET_PARAMS"
OP_REMOVE = "OP_INSTANCE_REMOVE"
OP_NETWORK_ADD = "OP_NETWORK_ADD"
OP_NETWORK_CONNECT = "OP_NETWORK_CONNECT"
OP_NETWORK_DISCONNECT = "OP_NETWORK_DISCONNECT"
OP_NETWORK_REMOVE = "OP_NETWORK_REMOVE"
OP_TAGS_SET = "OP_TAGS_SET"

# Job statuses, and those after which a job never changes again.
QUEUED, WAITING, RUNNING = "queued", "waiting", "running"
SUCCESS, ERROR, CANCELED = "success", "error", "canceled"
FINAL = (SUCCESS, ERROR, CANCELED)


def instance_name(server_id: int) -> str:
    return f"{INSTANCE_PREFIX}{server_id}"


def server_id_of(instance: str) -> int | None:
    if not instance.startswith(INSTANCE_PREFIX):
        return None
    rest = instance[len(INSTANCE_PREFIX) :]
    return int(rest) if rest.isdigit() else None


def network_name(network_id: object) -> str:
    return f"{NETWORK_PREFIX}{network_id}"


def network_id_of(name: str) -> str | None:
    return name[len(NETWORK_PREFIX) :] if name.startswith(NETWORK_PREFIX) else None


def nic_name(port_id: object) -> str:
    return f"{NIC_PREFIX}{port_id}"


def port_id_of(name: str) -> str | None:
    return name[len(NIC_PREFIX) :] if name.startswith(NIC_PREFIX) else None


def disk_name(volume_id: object) -> str:
    return f"{DISK_PREFIX}{volume_id}"


def volume_id_of(name: str) -> str | None:
    return name[len(DISK_PREFIX) :] if name.startswith(DISK_PREFIX) else None


# A NIC's firewall profile is an instance tag the node scripts read:
# ``nefos:firewall:<nic name>:<protected|limited|unprotected>``.
FIREWALL_TAG = "nefos:firewall:"
FIREWALL_LEVELS = ("protected", "limited", "unprotected")


def firewall_tag(nic: str, level: str) -> str:
    return f"{FIREWALL_TAG}{nic}:{level}"


@dataclass(frozen=True)
class NetworkSpec:
    """A nefos network as a cluster network (Ganeti's ``OP_NETWORK_ADD`` fields): its
    IPv4 and IPv6 subnets and gateways, the MAC prefix of a MAC-filtered network (three
    octets), and the tags that tell the node scripts how to wire it."""

    name: str
    subnet: str | None
    gateway: str | None = None
    subnet6: str | None = None
    gateway6: str | None = None
    mac_prefix: str | None = None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class NicInfo:
    """A NIC of an instance as the cluster reports it (for the reconciler)."""

    name: str
    network: str
    ip: str | None
    mac: str


@dataclass(frozen=True)
class NetworkInfo:
    """A network as the cluster reports it: where it is connected (group -> (mode,
    link)) and its tags."""

    name: str
    subnet: str | None
    connected: dict[str, tuple[str, str]]
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class InstanceSpec:
    """A new instance, as the effect path asks for it (no secrets: the OS provider
    fetches those once from nefos itself, at ``osparams["config_url"]``, the vmapi).

    ``osparams`` are the OS provider's parameters (Ganeti's ``osparams``); a backend
    that installs no OS (the embedded one) ignores them."""

    name: str
    vcpus: int
    memory: int  # MiB
    disk: int  # GiB
    disk_template: str
    os: str
    image: dict[str, Any]  # id, location, map name, size, properties
    nics: list[dict[str, Any]] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    osparams: dict[str, str] = field(default_factory=dict)
    # Jobs that must succeed before this one runs (the networks its NICs are on).
    depends: tuple[int, ...] = ()
    # The root disk as a nefos volume (its disk parameters, ``nefos.compute.volumes``):
    # then the instance's disks are these, not a new disk of ``disk`` GiB.
    volumes: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class InstanceInfo:
    """An instance as the cluster reports it (for the reconciler)."""

    name: str
    running: bool
    vcpus: int
    memory: int
    nics: tuple[NicInfo, ...] = ()
    tags: tuple[str, ...] = ()
    # The names of its disks that are nefos volumes (``nefos-vol-<id>``); None when the
    # cluster does not say, so the reconciler leaves the attachments alone.
    disks: tuple[str, ...] | None = None


@dataclass(frozen=True)
class ClusterInfo:
    mfree: int
    mtotal: int
    dfree: int
    dtotal: int
    ctotal: int
    pinst_cnt: int
    disk_templates: tuple[str, ...]
    hypervisor: str
    runs_guests: bool  # False for the embedded backend, which only simulates


@dataclass(frozen=True)
class ConsoleInfo:
    """Where an instance's console listens, as its cluster tells it: ``kind`` is
    Ganeti's console kind (``vnc``; nefos relays no other), ``password`` the one the
    VNC server wants, None for none."""

    kind: str
    host: str
    port: int
    password: str | None = None
