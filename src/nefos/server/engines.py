"""What one process holds for its lifetime: the database, the bus, the domain services.

The API server and every ``nefos`` command build the same ``Engines``, so a command
acts on the deployment exactly as the server would; nothing here imports HTTP code.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable

from nefos.backends.base import NETWORK_BINDING, OP_BINDING
from nefos.backends.embedded import EmbeddedCluster
from nefos.compute.clusters import EmbeddedFactory
from nefos.compute.keypairs import Keypairs
from nefos.compute.reconcile import reconcile_servers
from nefos.compute.service import Compute
from nefos.core import claims
from nefos.core.bus import Bus, Subscription, create_bus
from nefos.core.config import Settings
from nefos.core.db import Database
from nefos.core.mail import Mailer
from nefos.identity.accounts import Accounts
from nefos.identity.service import Identity
from nefos.images.service import Images
from nefos.network.service import NetworkService
from nefos.quotas.history import UsageHistory
from nefos.quotas.projects import Projects
from nefos.quotas.service import Quotas
from nefos.storage.filestore import FileStore
from nefos.storage.maintenance import GcReport, Pinned, gc, pins
from nefos.storage.service import Namespace
from nefos.storage.stores import BlockStore
from nefos.volume.service import Volumes
from nefos.volume.snapshots import Snapshots
from nefos.volume.transfers import Transfers

log = logging.getLogger("nefos.engines")
GC_CLAIM = "storage-gc"
PRUNE_CLAIM = "quota-log-prune"
PRUNE_SECONDS = 3600.0


def open_store(settings: Settings) -> BlockStore:
    """The block store the configuration names (``[storage] backend``): the choice of
    engine is made here, at the root, so no caller and neither engine knows the other."""
    conf = settings.storage
    if conf.backend == "file":
        return FileStore(conf.path or settings.data_dir / "storage", conf.group_sync)
    from nefos.storage.rados import RadosStore  # librados comes from the system

    return RadosStore(conf.rados_conffile, conf.rados_pool, conf.rados_user)


class Engines:
    def __init__(
        self,
        settings: Settings,
        database: Database | None = None,
        bus: Bus | None = None,
        embedded: EmbeddedFactory = EmbeddedCluster,
    ):
        """``embedded`` builds the simulated clusters (tests pass one that injects faults)."""
        self.settings = settings
        self.db = database or Database(settings.database)
        self.bus = bus or create_bus(settings.bus_url)
        self.identity = Identity(self.db, settings)
        self.mailer = Mailer(settings.mail, settings.base_url)
        self.accounts = Accounts(self.identity, self.mailer, settings)
        self.quotas = Quotas(self.db, settings)
        self.identity.user_created.append(self.quotas.init_user)
        self.usage_history = UsageHistory(self.db, settings)
        self.projects = Projects(self.db, settings, self.identity, self.quotas)
        self.identity.member_projects = self.projects.member_projects
        self.store = open_store(settings)
        self.storage = Namespace(self.db, settings, self.store, self.quotas)
        self.images = Images(self.storage)
        self.keypairs = Keypairs(self.db, settings.compute.max_keypairs)
        self.network = NetworkService(self.db, settings, self.quotas)
        self.volumes = Volumes(
            self.db, settings, self.store, self.storage, self.images, self.quotas
        )
        self.compute = Compute(
            self.db, settings, self.bus, self.quotas, self.images, self.keypairs, embedded,
            self.network, self.volumes,
        )  # fmt: skip
        self.snapshots = Snapshots(self.db, self.images, self.storage)
        self.transfers = Transfers(self.db, self.volumes)
        # What references blocks besides the namespace's versions, for gc and fsck.
        self.block_pins: Pinned = pins(self.compute.vmapi.pinned, self.volumes.pinned)
        self._dispatcher: Subscription | None = None
        self._reconciler: asyncio.Task[None] | None = None
        self._expirer: asyncio.Task[None] | None = None
        self._collector: asyncio.Task[None] | None = None
        self._pruner: asyncio.Task[None] | None = None
        # who claims periodic work (nefos.core.claims), as an operator would look for it
        self.process = f"{socket.gethostname()[:80]}:{os.getpid()}:{id(self):x}"

    async def start(self) -> None:
        await self.bus.start()

    async def start_dispatcher(self) -> None:
        """Apply backend job events in this process (the update path)."""
        if self._dispatcher is None:
            self._dispatcher = await self.bus.subscribe(
                self.settings.compute.dispatcher_queue,
                [OP_BINDING, NETWORK_BINDING],
                self.compute.apply_event,
            )

    async def start_reconciler(self) -> None:
        """Reconcile servers with their backends periodically, in the background."""
        interval = self.settings.compute.reconcile_seconds
        if interval and self._reconciler is None:
            self._reconciler = _every(interval, self._reconcile, "reconcile")

    async def _reconcile(self) -> None:
        await reconcile_servers(self.compute, fix=True)

    async def start_expirer(self) -> None:
        """Delete expired objects (X-Delete-At) periodically, in the background."""
        interval = self.settings.storage.expire_seconds
        if interval and self._expirer is None:
            self._expirer = _every(interval, self._expire, "object expiry")

    async def _expire(self) -> None:
        while await self.storage.expire(time.time()):
            pass  # a full batch may leave more

    async def start_collector(self) -> None:
        """Collect unused maps and blocks periodically: every API process runs the loop,
        and of them one per interval does the work (``nefos.core.claims``)."""
        interval = self.settings.storage.gc_seconds
        if interval and self._collector is None:
            self._collector = _every(interval, self._collect, "block collection")

    async def _collect(self) -> None:
        await self.collect()

    async def collect(self) -> GcReport | None:
        """One pass of gc if this process claims this interval's (None: another did)."""
        if not await claims.claim(
            self.db, GC_CLAIM, self.settings.storage.gc_seconds, self.process
        ):
            return None
        grace = dt.timedelta(seconds=self.settings.storage.gc_grace_seconds)
        report = await gc(
            self.db, self.store, grace=grace, pinned=self.block_pins, quotas=self.quotas
        )
        log.info(
            "gc deleted %d maps and %d blocks, released %d uploaded blocks",
            len(report.maps),
            len(report.blocks),
            report.uploads,
        )
        if report.stopped:
            log.error("gc: %s", report.stopped)
        return report

    async def start_pruner(self) -> None:
        """Delete quota log rows past ``usage_history_days`` hourly: every API process
        runs the loop, one per hour does the work."""
        if self.settings.usage_history_days and self._pruner is None:
            self._pruner = _every(PRUNE_SECONDS, self._prune, "quota log pruning")

    async def _prune(self) -> None:
        if await claims.claim(self.db, PRUNE_CLAIM, PRUNE_SECONDS, self.process):
            gone = await self.usage_history.prune()
            log.info("pruned %d quota log rows older than %d days", gone,
                     self.settings.usage_history_days)  # fmt: skip

    async def close(self) -> None:
        for task in (self._reconciler, self._expirer, self._collector, self._pruner):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._reconciler = self._expirer = self._collector = self._pruner = None
        if self._dispatcher is not None:
            await self._dispatcher.cancel()
            self._dispatcher = None
        await self.compute.close()
        await self.mailer.close()
        await self.bus.close()
        await self.store.close()
        await self.db.close()


def _every(interval: float, work: Callable[[], Awaitable[None]], what: str) -> asyncio.Task[None]:
    """Run ``work`` every ``interval`` seconds until cancelled."""

    async def loop() -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await work()
            except Exception:  # a bad pass must not end the loop; the next one retries
                log.exception("periodic %s failed", what)

    return asyncio.get_running_loop().create_task(loop())
