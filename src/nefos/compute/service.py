"""Servers and flavors (Cyclades), over compute backends, on the effect and update paths.

Effect path (a request): validate, check rights, issue the quota commission, pick a
backend (spec §2.7), record the intent (``task``) and submit the job; the caller gets
the server at once, still in its old state. Update path (:meth:`Compute.apply_event`):
job events from the bus move ``operstate`` only for finished successful jobs, only if
newer than ``backendtime``; the job that finishes the task clears it and decides its
commission (accept on success, reject otherwise).

Quotas (charged to the server's project): ``cyclades.vm``, ``cyclades.total_cpu``,
``cyclades.total_ram`` and ``cyclades.disk`` while the server exists; ``cyclades.cpu``
and ``cyclades.ram`` while it runs. A create's commission is accepted at once (as
Synnefo does: a server that fails to build keeps its quota until deleted); start,
shutdown and delete commissions wait for their job.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import logging
import secrets
import string
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from nefos.backends import base
from nefos.backends.base import ComputeBackend, InstanceSpec, instance_name, server_id_of
from nefos.backends.embedded import EmbeddedCluster
from nefos.backends.ops import (
    CreateInstance,
    ModifyInstance,
    Op,
    RebootInstance,
    RemoveInstance,
    ShutdownInstance,
    StartupInstance,
)
from nefos.compute.console import ConsoleProxy, console_for
from nefos.compute.keypairs import Keypairs
from nefos.compute.models import (
    Backend,
    BackendJob,
    Diagnostic,
    Flavor,
    FlavorAccess,
    Server,
    ServerMetadata,
    ServerTag,
)
from nefos.compute.vmapi import Customization, VmApi
from nefos.core import errors
from nefos.core.bus import Bus, Message
from nefos.core.config import Settings
from nefos.core.db import Database, utcnow
from nefos.core.numbers import INT32_MAX, ascii_int
from nefos.core.sealing import Sealer, Unsealable, sealed_length
from nefos.images.service import Image, Images
from nefos.quotas.serials import Settlement, decide, settle, settled
from nefos.quotas.service import Charge, Quotas, charge
from nefos.storage.service import ObjectRecord

log = logging.getLogger("nefos.compute")

# The longest RAPI password whose sealed form fits its column with room to spare
# (nefos.core.sealing.sealed_length: 213 of the 256 characters).
RAPI_PASSWORD_BYTES = 128

CLIENTKEY = "cyclades"
MiB, GiB = 1 << 20, 1 << 30
STATUS = {
    "BUILD": "BUILD",
    "ERROR": "ERROR",
    "STOPPED": "STOPPED",
    "STARTED": "ACTIVE",
    "DESTROYED": "DELETED",
    "RESIZE": "RESIZE",
}
TASK_STATE = {
    "BUILD": "BUILDING",
    "START": "STARTING",
    "STOP": "STOPPING",
    "REBOOT": "REBOOTING",
    "DESTROY": "DESTROYING",
    "RESIZE": "RESIZING",
}
TASK_OPCODE = {
    "BUILD": base.OP_CREATE,
    "START": base.OP_STARTUP,
    "STOP": base.OP_SHUTDOWN,
    "REBOOT": base.OP_REBOOT,
    "DESTROY": base.OP_REMOVE,
    "RESIZE": base.OP_MODIFY,
}
OPERSTATE_AFTER = {
    base.OP_CREATE: "STARTED",
    base.OP_STARTUP: "STARTED",
    base.OP_REBOOT: "STARTED",
    base.OP_SHUTDOWN: "STOPPED",
    base.OP_REMOVE: "DESTROYED",
}
RUNNING_STATES = ("BUILD", "STARTED")
DISK_TEMPLATES = ("file", "diskless", "plain", "drbd", "sharedfile", "rbd", "ext_archipelago")
MAX_NAME = 255
DEFAULT_FLAVORS = ((1, 1024, 20), (2, 2048, 40), (4, 4096, 80))  # vcpus, MiB, GiB


@dataclass(slots=True)
class ServerRecord:
    """A server row read for a listing only: plain attributes, no ORM identity map or
    instrumentation (a third of a thousand-server listing's time went there)."""

    id: int
    name: str
    user_id: str
    project: str
    flavor_id: int
    image_id: str
    backend_id: int | None
    operstate: str
    backendtime: float
    task: str | None
    task_job_id: int | None
    serial: int | None
    job_status: str
    job_opcode: str
    build_percentage: int
    key_names: str
    shared_to_project: bool
    deleted: bool
    created: dt.datetime
    updated: dt.datetime
    launched: dt.datetime | None


# Table columns, not ORM attributes: a Core select skips the ORM's row loading.
SERVER_COLUMNS = tuple(Server.__table__.c[name] for name in ServerRecord.__slots__)


@dataclass(frozen=True)
class ServerView:
    """A server as the API shows it: the row and what it derives."""

    # The ORM row, or for listings a plain record with the same attribute names.
    server: Server | ServerRecord
    flavor: Flavor
    metadata: dict[str, str]
    tags: list[str]
    diagnostics: list[Diagnostic] = field(default_factory=list)
    # Everything the listing view shows, as one hashable value (None: not a listing):
    # equal versions render equal JSON, so a listing renders only what changed.
    version: tuple[Any, ...] | None = None

    @property
    def status(self) -> str:
        s = self.server
        if s.deleted:
            return "DELETED"
        status = STATUS.get(s.operstate, "UNKNOWN")
        in_flight = s.job_status in (base.QUEUED, base.WAITING, base.RUNNING)
        if status == "ACTIVE" and s.job_opcode == base.OP_REBOOT and in_flight:
            return "REBOOT"
        if status == "STOPPED" and s.job_opcode == base.OP_MODIFY and in_flight:
            return "RESIZE"
        return status

    @property
    def task_state(self) -> str:
        return TASK_STATE.get(self.server.task or "", "")

    @property
    def progress(self) -> int:
        return 100 if self.status == "ACTIVE" else self.server.build_percentage

    @property
    def key_names(self) -> list[str]:
        raw = self.server.key_names
        return [] if raw == "[]" else orjson.loads(raw)


def _id(value: int | str) -> int | None:
    """A server's or flavor's id as the API gives it: ASCII digits that an Integer column
    holds (``/servers/\\u0661`` is not server 1, and ``/servers/<30 digits>`` no overflow)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value if 0 < value <= INT32_MAX else None
    return ascii_int(value, 1, INT32_MAX)


def _check_fits(flavor: Flavor, image: Image) -> None:
    """Nova's check of an image's ``min_ram`` (MiB) and ``min_disk`` (GiB), in its words
    and then with the numbers: a server too small for its image would not boot."""
    if image.min_ram > flavor.ram:
        raise errors.InvalidInput(
            "Flavor's memory is too small for requested image: the image needs "
            f"{image.min_ram} MiB (min_ram), flavor {flavor.id} has {flavor.ram} MiB"
        )
    if image.min_disk > flavor.disk:
        raise errors.InvalidInput(
            "Flavor's disk is too small for requested image: the image needs "
            f"{image.min_disk} GiB (min_disk), flavor {flavor.id} has {flavor.disk} GiB"
        )


def flavor_name(vcpus: int, ram: int, disk: int, disk_template: str) -> str:
    return f"C{vcpus}R{ram}D{disk}{disk_template}"


def _resources(flavor: Flavor, running: bool, existing: bool = True) -> dict[str, int]:
    found: dict[str, int] = {}
    if existing:
        found.update(
            {
                "cyclades.vm": 1,
                "cyclades.total_cpu": flavor.vcpus,
                "cyclades.total_ram": flavor.ram * MiB,
                "cyclades.disk": flavor.disk * GiB,
            }
        )
    if running:
        found.update({"cyclades.cpu": flavor.vcpus, "cyclades.ram": flavor.ram * MiB})
    return found


def _charges(user: str, project: str, resources: dict[str, int], sign: int) -> list[Charge]:
    provisions: list[Charge] = []
    for resource, quantity in resources.items():
        provisions += charge(user, project, resource, sign * quantity)
    return provisions


def _event_time(message: Message) -> float:
    value = message.get("event_time")
    if isinstance(value, list) and len(value) == 2:
        return float(value[0]) + float(value[1]) / 1_000_000
    if isinstance(value, int | float):
        return float(value)
    raise errors.InvalidInput("An event without event_time")


def _check_counts(min_count: Any, max_count: Any, most: int) -> None:
    for key, value in (("min_count", min_count), ("max_count", max_count)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise errors.InvalidInput(f"{key} is a whole number of at least 1")
    if min_count > max_count:
        raise errors.InvalidInput("min_count is at most max_count")
    if max_count > most:
        raise errors.InvalidInput(f"At most {most} servers in one request")


def _fitting(refusal: errors.OverQuota, count: int) -> int | None:
    """How many servers fit in what is left of the holding a commission for ``count``
    of them hit (None: the refusal does not say)."""
    data = refusal.data if isinstance(refusal.data, dict) else {}
    provision, limit, usage = data.get("provision"), data.get("limit"), data.get("usage")
    if not isinstance(provision, dict) or not isinstance(limit, int) or not isinstance(usage, int):
        return None
    each = provision.get("quantity", 0) // count
    return max(limit - usage, 0) // each if each > 0 else None


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
        raise errors.InvalidInput(f"A server name has 1 to {MAX_NAME} characters")
    if any(ord(c) < 32 for c in name):
        raise errors.InvalidInput("A server name has no control characters")
    return name


def new_password(length: int = 12) -> str:
    """Synnefo's rule for generated admin passwords: upper, lower and digits."""
    alphabet = string.ascii_letters + string.digits
    while True:
        password = "".join(secrets.choice(alphabet) for _ in range(length))
        if (
            any(c.islower() for c in password)
            and any(c.isupper() for c in password)
            and any(c.isdigit() for c in password)
        ):
            return password


MAX_PERSONALITY = 5  # files per server (Nova's and Synnefo's default)
MAX_PERSONALITY_SIZE = 10240  # bytes per file, decoded
MAX_USER_DATA = 65535  # bytes, decoded (Nova's column size)


def _base64(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise errors.InvalidInput(f"{what} is base64 text")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise errors.InvalidInput(f"{what} is not valid base64") from None


def check_personality(personality: Any) -> tuple[dict[str, Any], ...]:
    """Files to put in the guest, checked as Nova does: 413 past the limits, 400 for
    anything malformed. Contents stay base64: the build decodes them."""
    if personality is None:
        return ()
    if not isinstance(personality, list):
        raise errors.InvalidInput("personality is a list of files")
    if len(personality) > MAX_PERSONALITY:
        raise errors.OverQuota(f"Maximum number of personalities ({MAX_PERSONALITY}) exceeded")
    files = []
    for item in personality:
        if not isinstance(item, dict):
            raise errors.InvalidInput("A personality item is an object with path and contents")
        path = item.get("path")
        if not isinstance(path, str) or not path.startswith("/") or len(path) > 255:
            raise errors.InvalidInput("A personality path is absolute, at most 255 characters")
        if "\0" in path or "/../" in f"{path}/":
            raise errors.InvalidInput(f"Bad personality path {path!r}")
        contents = item.get("contents", "")
        if len(_base64(contents, "Personality contents")) > MAX_PERSONALITY_SIZE:
            raise errors.OverQuota(
                f"Personality file content too long (at most {MAX_PERSONALITY_SIZE} bytes)"
            )
        entry: dict[str, Any] = {"path": path, "contents": contents}
        for key in ("owner", "group"):
            if item.get(key) is not None:
                if not isinstance(item[key], str) or not item[key]:
                    raise errors.InvalidInput(f"A personality {key} is a name")
                entry[key] = item[key]
        if item.get("mode") is not None:
            mode = item["mode"]
            if not isinstance(mode, int) or isinstance(mode, bool) or not 0 <= mode <= 0o7777:
                raise errors.InvalidInput("A personality mode is an integer (e.g. 420 = 0644)")
            entry["mode"] = mode
        files.append(entry)
    return tuple(files)


def check_user_data(user_data: Any) -> str | None:
    if user_data is None:
        return None
    if len(_base64(user_data, "user_data")) > MAX_USER_DATA:
        raise errors.InvalidInput(f"user_data is at most {MAX_USER_DATA} bytes")
    return user_data


class Compute:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        bus: Bus,
        quotas: Quotas,
        images: Images,
        keypairs: Keypairs | None = None,
        embedded: Callable[[str, Bus, Path, float], ComputeBackend] = EmbeddedCluster,
    ):
        """``embedded`` builds the simulated cluster of an ``embedded`` backend row (tests
        pass a subclass that injects faults)."""
        self.db = db
        self.embedded = embedded
        self.keypairs = keypairs or Keypairs(db, settings.compute.max_keypairs)
        self.settings = settings
        self.bus = bus
        self.quotas = quotas
        self.images = images
        self.vmapi = VmApi(db, settings, images.storage)
        self.consoles = ConsoleProxy.from_settings(settings.compute)
        self._rapi_passwords = Sealer(settings.secret_key, "ganeti-rapi-password")
        self._clusters: dict[str, ComputeBackend] = {}
        self._allocation = asyncio.Lock()

    # -- clusters ---------------------------------------------------------------------------

    def cluster(self, backend: Backend) -> ComputeBackend:
        """The live client of a backend row (one per process)."""
        found = self._clusters.get(backend.name)
        if found is not None:
            return found
        if backend.kind == "embedded":
            state = Path(self.settings.data_dir) / "embedded" / f"{backend.name}.json"
            found = self.embedded(
                backend.name, self.bus, state, self.settings.compute.embedded_delay
            )
        elif backend.kind == "ganeti":
            from nefos.backends.ganeti import GanetiCluster  # httpx client, loaded on use

            try:
                password = self._rapi_passwords.unseal(backend.password)
            except Unsealable:
                raise errors.Unavailable(
                    f"The RAPI password of backend {backend.name} cannot be read: it was "
                    "sealed with another secret key than this deployment's"
                ) from None
            found = GanetiCluster(
                backend.name,
                backend.url,
                backend.username,
                password,
                certificate=backend.certificate,
                os_type=backend.os_type or "noop",
            )
        else:
            raise errors.InvalidInput(f"Unknown backend kind {backend.kind!r}")
        self._clusters[backend.name] = found
        return found

    async def close(self) -> None:
        await self.consoles.close()
        for cluster in self._clusters.values():
            await cluster.close()
        self._clusters.clear()

    async def add_backend(
        self,
        name: str,
        kind: str,
        url: str = "",
        username: str = "",
        password: str = "",
        default_link: str = "",
        public: bool = True,
        certificate: str = "",
        os_type: str = "noop",
    ) -> Backend:
        """``certificate``: the cluster's RAPI certificate (PEM text), which RAPI
        connections are verified against; only its certificate blocks are kept."""
        if not name or len(name) > 128 or not all(c.isalnum() or c in "-_." for c in name):
            raise errors.InvalidInput("A backend name has 1 to 128 letters, digits, - _ .")
        if kind not in ("embedded", "ganeti"):
            raise errors.InvalidInput("A backend is embedded or ganeti")
        if not os_type or len(os_type) > 64 or any(c.isspace() for c in os_type):
            raise errors.InvalidInput("An OS type is a Ganeti OS name such as nefos+default")
        if kind == "ganeti" and not url:
            raise errors.InvalidInput("A Ganeti backend needs its RAPI URL")
        if len(password.encode()) > RAPI_PASSWORD_BYTES:
            raise errors.InvalidInput(f"A RAPI password has at most {RAPI_PASSWORD_BYTES} bytes")
        sealed = self._rapi_passwords.seal(password)
        async with self.db.transaction() as s:
            if await s.scalar(select(Backend).where(Backend.name == name)):
                raise errors.Conflict(f"Backend {name!r} exists")
            row = Backend(
                name=name,
                kind=kind,
                url=url,
                username=username,
                password=sealed,
                default_link=default_link,
                public=public,
                certificate=_certificates(certificate),
                os_type=os_type,
            )
            s.add(row)
        return await self.refresh_backend(name)

    async def seal_backend_passwords(self) -> int:
        """Seal the RAPI passwords stored in plain text (by nefos before sealing); run at
        every start, so an upgraded deployment keeps none past its first. Returns how
        many were sealed."""
        width = Backend.__table__.c.password.type.length
        sealed = 0
        async with self.db.transaction() as s:
            for row in await s.scalars(select(Backend).where(Backend.password != "")):
                if Sealer.is_sealed(row.password):
                    continue
                if width is not None and sealed_length(len(row.password.encode())) > width:
                    log.warning(
                        "the RAPI password of backend %s is too long to seal: it stays in "
                        "plain text until the backend is added again with a shorter one",
                        row.name,
                    )
                    continue
                row.password = self._rapi_passwords.seal(row.password)
                sealed += 1
        if sealed:
            log.info("sealed the RAPI passwords of %d backends", sealed)
        return sealed

    async def refresh_backend(self, name: str) -> Backend:
        """Ask the cluster for its capacity and templates (``nefos backend refresh``)."""
        row = await self.backend(name)
        info = await self.cluster(row).info()
        async with self.db.transaction() as s:
            row = await s.get(Backend, row.id)
            assert row is not None
            row.mfree, row.mtotal = info.mfree, info.mtotal
            row.dfree, row.dtotal = info.dfree, info.dtotal
            row.ctotal, row.pinst_cnt = info.ctotal, info.pinst_cnt
            row.disk_templates = ",".join(info.disk_templates)
            row.hypervisor = info.hypervisor
            row.refreshed = utcnow()
        return await self.backend(name)

    async def backend(self, name: str) -> Backend:
        async with self.db.session() as s:
            row = await s.scalar(select(Backend).where(Backend.name == name))
        if row is None:
            raise errors.NotFound(f"No backend {name!r}")
        return row

    async def backends(self) -> list[Backend]:
        async with self.db.session() as s:
            return list(await s.scalars(select(Backend).order_by(Backend.id)))

    async def set_drained(self, name: str, drained: bool) -> Backend:
        async with self.db.transaction() as s:
            row = await s.scalar(select(Backend).where(Backend.name == name))
            if row is None:
                raise errors.NotFound(f"No backend {name!r}")
            row.drained = drained
        return await self.backend(name)

    async def remove_backend(self, name: str) -> None:
        async with self.db.transaction() as s:
            row = await s.scalar(select(Backend).where(Backend.name == name))
            if row is None:
                raise errors.NotFound(f"No backend {name!r}")
            used = await s.scalar(
                select(Server.id).where(Server.backend_id == row.id, Server.deleted.is_(False))
            )
            if used is not None:
                raise errors.Conflict(f"Backend {name!r} still has servers")
            await s.delete(row)
        cluster = self._clusters.pop(name, None)
        if cluster is not None:
            await cluster.close()

    async def ensure_embedded(self) -> Backend | None:
        """``nefos up`` with no backend configured gets the simulated one."""
        if not self.settings.compute.embedded_backend or await self.backends():
            return None
        return await self.add_backend("embedded", "embedded")

    async def _allocate(self, s: AsyncSession, flavor: Flavor, project: str) -> Backend:
        """Spec §2.7: enabled backends that fit and support the template, least loaded."""
        rows = list(
            await s.scalars(
                select(Backend).where(Backend.drained.is_(False), Backend.offline.is_(False))
            )
        )
        rows = [b for b in rows if b.public]
        template = "ext" if flavor.disk_template.startswith("ext_") else flavor.disk_template
        rows = [
            b
            for b in rows
            if template in b.disk_templates.split(",")
            or flavor.disk_template in b.disk_templates.split(",")
        ]
        if not rows:
            raise errors.Unavailable("No available backends")
        fitting = [
            b
            for b in rows
            if b.dfree > flavor.disk * 1024
            and b.mfree > flavor.ram
            and (b.pinst_cnt + 1) * 4 / max(b.ctotal, 1) < 3
        ]
        rows = fitting or rows

        def score(b: Backend) -> float:
            instances = 0.5 * (b.pinst_cnt + 1) * 4 / (max(b.ctotal, 1) * 3)
            memory = 1 - b.mfree / b.mtotal if b.mtotal else 1
            disk = 1 - b.dfree / b.dtotal if b.dtotal else 1
            return instances + 0.5 * (memory + disk)

        chosen = min(rows, key=score)
        chosen.mfree -= flavor.ram
        chosen.dfree -= flavor.disk * 1024
        chosen.pinst_cnt += 1
        return chosen

    # -- flavors ----------------------------------------------------------------------------

    async def create_flavor(
        self,
        vcpus: int,
        ram: int,
        disk: int,
        disk_template: str = "file",
        name: str | None = None,
        public: bool = True,
        projects: Iterable[str] = (),
    ) -> Flavor:
        for value, what in ((vcpus, "vcpus"), (ram, "ram"), (disk, "disk")):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise errors.InvalidInput(f"A flavor's {what} is a whole number of at least 1")
        if disk_template not in DISK_TEMPLATES and not disk_template.startswith("ext_"):
            raise errors.InvalidInput(f"Unknown disk template {disk_template!r}")
        name = name or flavor_name(vcpus, ram, disk, disk_template)
        async with self.db.transaction() as s:
            clash = await s.scalar(
                select(Flavor).where(
                    (Flavor.name == name)
                    | (
                        (Flavor.vcpus == vcpus)
                        & (Flavor.ram == ram)
                        & (Flavor.disk == disk)
                        & (Flavor.disk_template == disk_template)
                    )
                )
            )
            if clash is not None:
                raise errors.Conflict(f"Flavor {clash.name} exists with these values")
            flavor = Flavor(
                name=name, vcpus=vcpus, ram=ram, disk=disk, disk_template=disk_template,
                public=public,
            )  # fmt: skip
            s.add(flavor)
            await s.flush()
            for project in projects:
                s.add(FlavorAccess(flavor_id=flavor.id, project=project))
        return flavor

    async def ensure_default_flavors(self) -> list[Flavor]:
        """A first deployment gets a few flavors, so a new user can start a server at
        once; an operator's own flavors (or deleting these) are never overridden."""
        async with self.db.session() as s:
            if await s.scalar(select(Flavor.id).limit(1)) is not None:
                return []
        return [
            await self.create_flavor(vcpus, ram, disk, "file")
            for vcpus, ram, disk in DEFAULT_FLAVORS
        ]

    async def flavors(self, projects: Iterable[str] | None = None) -> list[Flavor]:
        """Usable flavors: public ones, and those granted to one of ``projects``
        (None: all, for operators)."""
        async with self.db.session() as s:
            rows = list(
                await s.scalars(select(Flavor).where(Flavor.deleted.is_(False)).order_by(Flavor.id))
            )
            if projects is None:
                return rows
            granted = set(
                await s.scalars(
                    select(FlavorAccess.flavor_id).where(FlavorAccess.project.in_(list(projects)))
                )
            )
        return [f for f in rows if f.public or f.id in granted]

    async def flavor_access(self, projects: Iterable[str]) -> dict[int, list[str]]:
        """Which of ``projects`` each non-public flavor is granted to (``SNF:flavor-access``):
        a caller learns only about its own projects."""
        async with self.db.session() as s:
            rows = await s.execute(
                select(FlavorAccess.flavor_id, FlavorAccess.project)
                .where(FlavorAccess.project.in_(list(projects)))
                .order_by(FlavorAccess.project)
            )
            found: dict[int, list[str]] = {}
            for flavor_id, project in rows:
                found.setdefault(flavor_id, []).append(project)
        return found

    async def flavor(self, flavor_id: int | str, projects: Iterable[str] | None = None) -> Flavor:
        wanted = _id(flavor_id)
        if wanted is None:
            raise errors.NotFound(f"No flavor {flavor_id}")
        for flavor in await self.flavors(projects):
            if flavor.id == wanted:
                return flavor
        raise errors.NotFound(f"No flavor {flavor_id}")

    async def delete_flavor(self, flavor_id: int) -> None:
        async with self.db.transaction() as s:
            flavor = await s.get(Flavor, flavor_id)
            if flavor is None or flavor.deleted:
                raise errors.NotFound(f"No flavor {flavor_id}")
            flavor.deleted = True
            flavor.name = f"deleted:{flavor.id}:{flavor.name}"[:255]

    # -- reading servers -----------------------------------------------------------------------

    async def _view(self, s: AsyncSession, server: Server, diagnostics: bool = True) -> ServerView:
        flavor = await s.get(Flavor, server.flavor_id)
        assert flavor is not None
        meta = await s.execute(
            select(ServerMetadata.key, ServerMetadata.value).where(
                ServerMetadata.server_id == server.id
            )
        )
        tags = await s.scalars(
            select(ServerTag.tag).where(ServerTag.server_id == server.id).order_by(ServerTag.tag)
        )
        found: list[Diagnostic] = []
        if diagnostics:
            found = list(
                await s.scalars(
                    select(Diagnostic)
                    .where(Diagnostic.server_id == server.id)
                    .order_by(Diagnostic.id.desc())
                )
            )
        return ServerView(server, flavor, dict(meta.all()), list(tags), found)

    async def server(
        self, user: str | None, server_id: int | str, projects: Iterable[str] = ()
    ) -> ServerView:
        """A server of ``user`` (None: any, for operators); deleted ones too. With
        ``projects`` (the caller's), also one shared to one of them: only reading takes
        those, every change is the owner's."""
        wanted = _id(server_id)
        if wanted is None:
            raise errors.NotFound(f"No server {server_id}")
        async with self.db.session() as s:
            server = await s.get(Server, wanted)
            if server is None or (
                user is not None
                and server.user_id != user
                and not (server.shared_to_project and server.project in set(projects))
            ):
                raise errors.NotFound(f"No server {server_id}")
            return await self._view(s, server)

    async def servers(
        self,
        user: str | None,
        changes_since: dt.datetime | None = None,
        include_deleted: bool = False,
        projects: Iterable[str] = (),
    ) -> list[ServerView]:
        """``user``'s servers and those shared to one of ``projects`` (None: all)."""
        wanted = []
        shared_in = list(projects)
        if user is not None and shared_in:
            wanted.append(
                (Server.user_id == user)
                | (Server.shared_to_project.is_(True) & Server.project.in_(shared_in))
            )
        elif user is not None:
            wanted.append(Server.user_id == user)
        if changes_since is not None:
            wanted.append(Server.updated > changes_since)
        elif not include_deleted:
            wanted.append(Server.deleted.is_(False))
        # A detailed listing of a thousand servers is one API call: Core rows rather
        # than ORM objects (identity-mapped instances cost more than the query), and
        # metadata and tags joined on the same filter rather than asked for by id.
        async with self.db.session() as s:
            query = select(*SERVER_COLUMNS).where(*wanted).order_by(Server.id)
            rows = (await s.execute(query)).all()
            if not rows:
                return []
            flavors = {f.id: f for f in await s.scalars(select(Flavor))}
            metadata: dict[int, dict[str, str]] = {}
            tags: dict[int, list[str]] = {}
            for server_id, key, value in await s.execute(
                select(ServerMetadata.server_id, ServerMetadata.key, ServerMetadata.value)
                .join(Server, Server.id == ServerMetadata.server_id)
                .where(*wanted)
            ):
                metadata.setdefault(server_id, {})[key] = value
            for server_id, tag in await s.execute(
                select(ServerTag.server_id, ServerTag.tag)
                .join(Server, Server.id == ServerTag.server_id)
                .where(*wanted)
                .order_by(ServerTag.tag)
            ):
                tags.setdefault(server_id, []).append(tag)
        views = []
        for row in rows:
            record = ServerRecord(*row)
            meta, labels = metadata.get(record.id, {}), tags.get(record.id, [])
            version = (tuple(row), tuple(meta.items()), tuple(labels))
            views.append(ServerView(record, flavors[record.flavor_id], meta, labels, [], version))
        return views

    async def jobs(self, server_id: int) -> list[BackendJob]:
        async with self.db.session() as s:
            return list(
                await s.scalars(
                    select(BackendJob)
                    .where(BackendJob.server_id == server_id)
                    .order_by(BackendJob.id)
                )
            )

    # -- creating servers ------------------------------------------------------------------------

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
    ) -> tuple[list[ServerView], str]:
        """Nova's multiple create: as many servers as the quota holds up to ``max_count``,
        but at least ``min_count`` or none. One commission pays for all of them, so two
        requests racing for the last of a quota cannot each get part of what they asked;
        each server is still its own backend job. Servers are named ``<name>-<n>`` when
        there are several, as Nova names them; they share the one admin password, the
        only one the caller is shown. Each build gets the password, keys, personality and
        user data once from the vmapi (sealed until then, never in the job)."""
        _check_counts(min_count, max_count, self.settings.compute.max_count)
        _check_name(name)
        if max_count > 1:  # the longest name the servers may get must fit too
            _check_name(f"{name}-{max_count}")
        project = project or user
        allowed = {user, *projects}
        if project not in allowed:
            raise errors.PermissionDenied(f"You are not a member of project {project}")
        flavor = await self.flavor(flavor_id, allowed)
        if not flavor.allow_create:
            raise errors.InvalidInput(f"Flavor {flavor.id} cannot be used for new servers")
        metadata = self._check_metadata(metadata or {})
        tags = self._check_tags(tags or [])
        if admin_password is not None and (
            not isinstance(admin_password, str)
            or not 0 < len(admin_password) <= 255
            or any(ord(c) < 32 for c in admin_password)
        ):  # the build writes it into the guest's /etc/shadow: one line, no controls
            raise errors.InvalidInput("adminPass is 1 to 255 characters, no control characters")
        files = check_personality(personality)
        user_data = check_user_data(user_data)
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
        _check_fits(flavor, image)
        password = admin_password or new_password()
        customization = Customization(tuple(public_keys), files, user_data)
        resources = _resources(flavor, running=True)
        created: list[tuple[int, Backend, str]] = []  # server, where, its build's URL
        async with settled(self.db, self.quotas, CLIENTKEY) as settlement:
            count = await self._issue_for_count(
                settlement, user, project, name, resources, min_count, max_count
            )
            async with self._allocation, settlement.transaction() as s:
                for index in range(count):
                    label = f"{name}-{index + 1}" if count > 1 else name
                    backend = await self._allocate(s, flavor, project)
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
                    )
                    created.append((server_id, backend, config_url))
        for server_id, backend, config_url in created:
            await self._build(user, server_id, flavor, image, backend, config_url)
        return [await self.server(user, server_id) for server_id, _, _ in created], password

    async def _issue_for_count(
        self,
        settlement: Settlement,
        user: str,
        project: str,
        name: str,
        resources: dict[str, int],
        min_count: int,
        max_count: int,
    ) -> int:
        """Reserve the quota of the most servers that fit, from ``max_count`` down to
        ``min_count``; the refusal of each try says how much of the resource it hit is
        left, so the next try asks for what fits of that at once."""
        count = max_count
        while True:
            provisions = _charges(user, project, {k: v * count for k, v in resources.items()}, +1)
            try:
                await settlement.issue(provisions, name=f"cyclades create {name}"[:255])
                return count
            except errors.OverQuota as exc:
                fits = _fitting(exc, count)
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
        )
        s.add(server)
        await s.flush()
        for key, value in metadata.items():
            s.add(ServerMetadata(server_id=server.id, key=key, value=value))
        for tag in tags:
            s.add(ServerTag(server_id=server.id, tag=tag))
        # Secrets reach the build through the vmapi, never through the job.
        config_url = await self.vmapi.issue(
            s, server.id, name, image, record, password, customization
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
    ) -> None:
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
            nics=[{"link": backend.default_link}] if backend.default_link else [],
            tags=[f"nefos:user:{user}"],
            osparams={"config_url": config_url},
        )
        await self._submit(server_id, "BUILD", CreateInstance(spec))

    def _check_metadata(self, metadata: Any) -> dict[str, str]:
        if not isinstance(metadata, dict):
            raise errors.InvalidInput("metadata is an object of strings")
        if len(metadata) > self.settings.compute.max_metadata:
            raise errors.OverQuota(
                f"At most {self.settings.compute.max_metadata} metadata items per server"
            )
        for key, value in metadata.items():
            if not isinstance(key, str) or not key or len(key) > 255:
                raise errors.InvalidInput("A metadata key has 1 to 255 characters")
            if not isinstance(value, str) or len(value) > 255:
                raise errors.InvalidInput("A metadata value is text of at most 255 characters")
        return metadata

    def _check_tags(self, tags: Any) -> list[str]:
        if not isinstance(tags, list) or len(tags) > self.settings.compute.max_tags:
            raise errors.InvalidInput(f"At most {self.settings.compute.max_tags} tags")
        for tag in tags:
            if not isinstance(tag, str) or not tag or len(tag) > 60 or "/" in tag or "," in tag:
                raise errors.InvalidInput(f"Bad tag {tag!r}: 1 to 60 characters, no / or ,")
        return list(dict.fromkeys(tags))

    async def _submit(self, server_id: int, task: str, op: Op) -> None:
        """Send the job; record its id so the update path knows which job ends the task.
        A backend that refuses the job leaves the server in ERROR with a diagnostic."""
        async with self.db.session() as s:
            server = await s.get(Server, server_id)
            assert server is not None and server.backend_id is not None
            backend = await s.get(Backend, server.backend_id)
            assert backend is not None
        try:
            job_id = await self.cluster(backend).submit(op)
        except Exception as exc:  # the cluster is unreachable or refused: tell the user
            log.warning("backend %s refused a job for server %s: %s", backend.name, server_id, exc)
            async with self.db.transaction() as s:
                server = await s.get(Server, server_id, with_for_update=True)
                assert server is not None
                if task == "BUILD":
                    server.operstate = "ERROR"
                    await self.vmapi.forget(s, server.id)
                serial, server.serial = server.serial, None
                server.task, server.task_job_id = None, None
                server.updated = utcnow()
                s.add(_diagnostic(server.id, "ERROR", f"The backend refused the job: {exc}"))
                if serial is not None:
                    await decide(s, CLIENTKEY, serial, accept=False)
            if serial is not None:
                await settle(self.db, self.quotas, CLIENTKEY, serial, accept=False)
            return
        async with self.db.transaction() as s:
            server = await s.get(Server, server_id, with_for_update=True)
            assert server is not None
            if server.task == task and server.task_job_id is None:
                server.task_job_id = job_id

    # -- actions ------------------------------------------------------------------------------

    async def _start_task(
        self,
        user: str,
        server_id: int | str,
        task: str,
        allowed: tuple[str, ...],
        resources: dict[str, int] | None = None,
        sign: int = 0,
    ) -> Server:
        """Check the state (spec §2.4 order), issue the task's commission (decided by
        its job), and record the task; the job is submitted by the caller."""
        view = await self.server(user, server_id)
        server = view.server
        if server.deleted:
            raise errors.InvalidInput(f"Server {server.id} is deleted")
        if task != "DESTROY":
            if server.task is not None:
                if server.operstate == "BUILD":
                    raise errors.Conflict(f"Server {server.id} is being built")
                raise errors.InvalidInput(f"Server {server.id} is busy ({server.task})")
            if server.operstate == "ERROR":
                raise errors.InvalidInput(f"Server {server.id} is in ERROR")
            if server.operstate == "BUILD":
                raise errors.Conflict(f"Server {server.id} is being built")
            if server.operstate not in allowed:
                raise errors.Conflict(f"Cannot {task.lower()} a server in state {view.status}")
        elif server.task == "DESTROY":
            raise errors.Conflict(f"Server {server.id} is already being deleted")
        provisions = _charges(server.user_id, server.project, resources or {}, sign)
        async with settled(self.db, self.quotas, CLIENTKEY) as settlement:
            serial = None
            if provisions:
                serial = await settlement.issue(
                    provisions, name=f"cyclades {task.lower()} {server.id}", accept=None
                )
            async with settlement.transaction() as s:
                row = await s.get(Server, server.id, with_for_update=True)
                assert row is not None
                if row.task is not None and task != "DESTROY":
                    raise errors.Conflict(f"Server {row.id} is busy ({row.task})")
                previous = row.serial
                row.task, row.task_job_id, row.serial = task, None, serial
                row.updated = utcnow()
                if previous is not None:  # a destroy overtakes an unfinished task
                    await decide(s, CLIENTKEY, previous, accept=False)
        if previous is not None:
            await settle(self.db, self.quotas, CLIENTKEY, previous, accept=False)
        return row

    async def start(self, user: str, server_id: int | str) -> None:
        view = await self.server(user, server_id)
        resources = _resources(view.flavor, running=True, existing=False)
        server = await self._start_task(user, server_id, "START", ("STOPPED",), resources, +1)
        name = instance_name(server.id)
        await self._submit(server.id, "START", StartupInstance(name))

    async def shutdown(self, user: str, server_id: int | str) -> None:
        view = await self.server(user, server_id)
        resources = _resources(view.flavor, running=True, existing=False)
        server = await self._start_task(user, server_id, "STOP", ("STARTED",), resources, -1)
        name = instance_name(server.id)
        await self._submit(server.id, "STOP", ShutdownInstance(name))

    async def reboot(self, user: str, server_id: int | str, hard: bool = False) -> None:
        server = await self._start_task(user, server_id, "REBOOT", ("STARTED", "STOPPED"))
        name = instance_name(server.id)
        await self._submit(server.id, "REBOOT", RebootInstance(name, hard))

    async def resize(
        self, user: str, server_id: int | str, flavor_id: int | str, projects: Iterable[str] = ()
    ) -> None:
        """Spec §2.4: only CPU and RAM may change, on a stopped server."""
        view = await self.server(user, server_id)
        flavor = await self.flavor(flavor_id, {user, *projects})
        old = view.flavor
        if (flavor.disk, flavor.disk_template) != (old.disk, old.disk_template):
            raise errors.InvalidInput("A resize changes only CPUs and RAM")
        if flavor.id == old.id:
            raise errors.InvalidInput("The server already has this flavor")
        delta = {
            "cyclades.total_cpu": flavor.vcpus - old.vcpus,
            "cyclades.total_ram": (flavor.ram - old.ram) * MiB,
        }
        server = await self._start_task(
            user, server_id, "RESIZE", ("STOPPED",), {k: v for k, v in delta.items() if v}, +1
        )
        name = instance_name(server.id)
        await self._submit(server.id, "RESIZE", ModifyInstance(name, flavor.vcpus, flavor.ram))

    async def delete_server(self, user: str | None, server_id: int | str) -> None:
        view = await self.server(user, server_id)
        running = view.server.operstate in RUNNING_STATES
        resources = _resources(view.flavor, running=running)
        server = await self._start_task(
            view.server.user_id, server_id, "DESTROY", (), resources, -1
        )
        name = instance_name(server.id)
        await self._submit(server.id, "DESTROY", RemoveInstance(name))

    async def rename(self, user: str, server_id: int | str, name: str) -> ServerView:
        _check_name(name)
        async with self.db.transaction() as s:
            server = await s.get(Server, int((await self.server(user, server_id)).server.id))
            assert server is not None
            if server.deleted:
                raise errors.InvalidInput(f"Server {server.id} is deleted")
            server.name = name
            server.updated = utcnow()
        return await self.server(user, server_id)

    async def set_metadata(
        self, user: str, server_id: int | str, metadata: dict[str, str], replace: bool
    ) -> dict[str, str]:
        view = await self.server(user, server_id)
        merged = dict(metadata) if replace else {**view.metadata, **metadata}
        self._check_metadata(merged)
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
        view = await self.server(user, server_id)
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
        tags = self._check_tags(tags)
        server = await self._changeable(user, server_id)
        async with self.db.transaction() as s:
            await s.execute(delete(ServerTag).where(ServerTag.server_id == server.id))
            s.add_all(ServerTag(server_id=server.id, tag=tag) for tag in tags)
            await self._touch(s, server.id)
        return sorted(tags)

    async def add_tag(self, user: str, server_id: int | str, tag: str) -> bool:
        """True if the tag is new (Nova answers 201 then, 204 if it was there)."""
        self._check_tags([tag])
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
            holds = await self._charged(s, server)
        provisions = []
        if project != old:
            provisions = _charges(user, old, holds, -1) + _charges(user, project, holds, +1)
        async with settled(self.db, self.quotas, CLIENTKEY) as settlement:
            if server.task is not None:
                raise errors.Conflict(f"Server {server.id} is busy ({server.task})")
            if provisions:
                await settlement.issue(provisions, name=f"cyclades reassign {server.id}")
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
        shown. ``vnc-ws`` is the same over WebSocket (noVNC)."""
        if kind == "vnc-wss":
            raise errors.NotImplementedYet("vnc-wss needs TLS on the console proxy: use vnc-ws")
        if kind not in ("vnc", "vnc-ws"):
            raise errors.InvalidInput(f"Unknown console type {kind!r}: vnc or vnc-ws")
        view = await self.server(user, server_id)
        if view.server.deleted:
            raise errors.InvalidInput(f"Server {view.server.id} is deleted")
        if view.status != "ACTIVE":
            raise errors.InvalidInput("Server not in ACTIVE state")
        async with self.db.session() as s:
            backend = await s.get(Backend, view.server.backend_id)
        assert backend is not None
        ticket = await console_for(
            self.consoles,
            self.cluster(backend),
            instance_name(view.server.id),
            websocket=kind == "vnc-ws",
        )
        return {"type": kind, "host": ticket.host, "port": ticket.port, "password": ticket.password}

    async def _changeable(self, user: str, server_id: int | str) -> Server:
        view = await self.server(user, server_id)
        if view.server.deleted:
            raise errors.InvalidInput(f"Server {view.server.id} is deleted")
        return view.server

    async def _touch(self, s: AsyncSession, server_id: int) -> None:
        row = await s.get(Server, server_id)
        assert row is not None
        row.updated = utcnow()

    # -- the update path -------------------------------------------------------------------------

    async def apply_event(self, message: Message) -> None:
        """One job event (spec §2.6). Idempotent: a repeated or older event changes no
        state; every event is kept as job history."""
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
        event_time = _event_time(message)
        logmsg = str(message.get("logmsg") or "")
        resolve: tuple[int, bool] | None = None
        forced: list[Charge] = []
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
                    event_time=event_time,
                )
            )
            if event_time <= server.backendtime:
                return  # older than what we know: history only
            server.job_status, server.job_opcode = status, opcode
            server.updated = utcnow()
            if (
                server.task is not None
                and server.task_job_id is None
                and TASK_OPCODE.get(server.task) == opcode
            ):
                server.task_job_id = job_id  # the event beat the submitter's record
            if status not in base.FINAL:
                return
            server.backendtime = event_time
            success = status == base.SUCCESS
            before = await self._charged(s, server)
            if opcode == base.OP_CREATE:
                await self.vmapi.forget(s, server.id)  # the build is over, either way
            if success:
                if opcode in OPERSTATE_AFTER:
                    server.operstate = OPERSTATE_AFTER[opcode]
                if opcode == base.OP_REMOVE:
                    server.deleted = True
                if opcode == base.OP_MODIFY:
                    await self._apply_new_flavor(s, server, message)
                if opcode == base.OP_CREATE:
                    server.build_percentage = 100
                    server.launched = dt.datetime.fromtimestamp(event_time, dt.UTC)
            elif opcode == base.OP_CREATE:
                server.operstate = "ERROR"
                s.add(_diagnostic(server.id, "ERROR", f"Building the server failed: {logmsg}"))
            elif opcode == base.OP_REMOVE and "not known" in logmsg:
                server.operstate, server.deleted = "DESTROYED", True  # already gone
                success = True
            else:
                s.add(_diagnostic(server.id, "WARNING", f"{opcode} failed: {logmsg}"))
            if server.task_job_id == job_id:
                if server.serial is not None:
                    await decide(s, CLIENTKEY, server.serial, accept=success)
                    resolve = (server.serial, success)
                server.task, server.task_job_id, server.serial = None, None, None
            elif success:
                # A job nefos did not ask for (an administrator's, on the cluster): the
                # quota follows what happened, with a forced commission (spec §2.6).
                after = await self._charged(s, server)
                delta = {r: after.get(r, 0) - before.get(r, 0) for r in {*before, *after}}
                forced = _charges(server.user_id, server.project, delta, +1)
                forced = [p for p in forced if p.quantity]
        if resolve is not None:
            await settle(self.db, self.quotas, CLIENTKEY, *resolve)
        if forced:
            try:
                await self.quotas.issue(
                    CLIENTKEY, forced, f"cyclades event {job_id}", force=True, auto_accept=True
                )
            except errors.NefosError as exc:  # the reconciler's pass corrects it later
                log.warning("could not follow job %s in quotas: %s", job_id, exc.message)

    async def _charged(self, s: AsyncSession, server: Server) -> dict[str, int]:
        """What a server in its current state holds of its project's quota."""
        if server.deleted:
            return {}
        flavor = await s.get(Flavor, server.flavor_id)
        assert flavor is not None
        return _resources(flavor, running=server.operstate in RUNNING_STATES)

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


def _certificates(pem: str) -> str:
    if not pem:
        return ""
    from nefos.backends.ganeti import pem_certificates  # keeps private keys out of the DB

    return pem_certificates(pem)


def _diagnostic(server_id: int, level: str, message: str) -> Diagnostic:
    return Diagnostic(server_id=server_id, level=level, source="nefos", message=message)


def new_server_uuid() -> str:
    return str(uuid.uuid4())
