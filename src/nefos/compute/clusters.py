"""Backends: the clusters nefos places servers on, their rows and their live clients.

A backend row names an engine (``embedded`` or ``ganeti``); :meth:`Clusters.cluster`
builds its client once per process, so the engine is chosen here and nowhere else.
RAPI passwords are sealed at rest with the deployment's secret key.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from nefos.backends.embedded import EmbeddedCluster
from nefos.backends.ops import ComputeBackend
from nefos.compute.models import Backend, Flavor, Server
from nefos.core import errors
from nefos.core.bus import Bus
from nefos.core.config import Settings
from nefos.core.db import Database, utcnow
from nefos.core.sealing import Sealer, Unsealable, sealed_length

log = logging.getLogger("nefos.compute")

# The longest RAPI password whose sealed form fits its column with room to spare
# (nefos.core.sealing.sealed_length: 213 of the 256 characters).
RAPI_PASSWORD_BYTES = 128

# Builds the simulated cluster of an ``embedded`` row: name, bus, state file, job delay.
EmbeddedFactory = Callable[[str, Bus, Path, float], ComputeBackend]


class Clusters:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        bus: Bus,
        embedded: EmbeddedFactory = EmbeddedCluster,
    ) -> None:
        """``embedded`` builds the simulated clusters (tests pass a subclass that
        injects faults)."""
        self.db = db
        self.settings = settings
        self.bus = bus
        self.embedded = embedded
        self.live: dict[str, ComputeBackend] = {}  # by backend name
        self._rapi_passwords = Sealer(settings.secret_key, "ganeti-rapi-password")

    def cluster(self, backend: Backend) -> ComputeBackend:
        """The live client of a backend row (one per process)."""
        found = self.live.get(backend.name)
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
        self.live[backend.name] = found
        return found

    async def close(self) -> None:
        for cluster in self.live.values():
            await cluster.close()
        self.live.clear()

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
                certificate=certificates(certificate),
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
        cluster = self.live.pop(name, None)
        if cluster is not None:
            await cluster.close()

    async def ensure_embedded(self) -> Backend | None:
        """``nefos up`` with no backend configured gets the simulated one."""
        if not self.settings.compute.embedded_backend or await self.backends():
            return None
        return await self.add_backend("embedded", "embedded")

    async def allocate(self, s: AsyncSession, flavor: Flavor, project: str) -> Backend:
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


def certificates(pem: str) -> str:
    if not pem:
        return ""
    from nefos.backends.ganeti import pem_certificates  # keeps private keys out of the DB

    return pem_certificates(pem)
